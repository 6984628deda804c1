//! The file's view of the program's address space: the bytes of each loaded
//! segment at its link-time virtual address.
//!
//! The pclntab reaches data outside itself (the inline trees of Go 1.18 and
//! later live in `go:func.*`, those of older releases anywhere in rodata)
//! through addresses, so it reads them through this view. Bytes a segment
//! has in memory but not in the file (`.bss`) are not part of it.

/// One loaded segment: its file bytes at a link-time virtual address.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'data> {
    pub vaddr: u64,
    pub data: &'data [u8],
    /// Whether the segment is mapped executable.
    pub executable: bool,
    /// Whether the segment is mapped writable.
    pub writable: bool,
}

impl<'data> Segment<'data> {
    /// Returns the address one past the segment's file bytes.
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.data.len() as u64)
    }

    /// Returns whether `addr` is inside the segment's file bytes.
    pub fn contains(&self, addr: u64) -> bool {
        self.vaddr <= addr && addr < self.end()
    }
}

/// Loaded segments, searched by address.
#[derive(Debug, Clone, Default)]
pub struct Memory<'data> {
    segments: Vec<Segment<'data>>,
}

impl<'data> Memory<'data> {
    /// Creates the view over `segments`, in any order.
    pub fn new(mut segments: Vec<Segment<'data>>) -> Self {
        segments.sort_by_key(|segment| segment.vaddr);
        Memory { segments }
    }

    /// Returns the segments sorted by address.
    pub fn segments(&self) -> &[Segment<'data>] {
        &self.segments
    }

    /// Returns `len` bytes at link-time address `addr`, or `None` unless one
    /// segment's file bytes contain all of them.
    pub fn read(&self, addr: u64, len: u64) -> Option<&'data [u8]> {
        let segment = self.segment_containing(addr)?;
        let start = usize::try_from(addr - segment.vaddr).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        segment.data.get(start..end)
    }

    /// Returns the bytes from `addr` to the end of its segment's file bytes.
    pub fn read_to_segment_end(&self, addr: u64) -> Option<&'data [u8]> {
        let segment = self.segment_containing(addr)?;
        let start = usize::try_from(addr - segment.vaddr).ok()?;
        segment.data.get(start..)
    }

    /// Returns the segment whose file bytes contain `addr`.
    pub fn segment_containing(&self, addr: u64) -> Option<&Segment<'data>> {
        let after = self
            .segments
            .partition_point(|segment| segment.vaddr <= addr);
        let segment = self.segments.get(after.checked_sub(1)?)?;
        segment.contains(addr).then_some(segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_inside_and_across_segments() {
        let low = [1u8, 2, 3, 4];
        let high = [9u8, 8];
        let memory = Memory::new(vec![
            Segment {
                vaddr: 0x2000,
                data: &high,
                executable: false,
                writable: true,
            },
            Segment {
                vaddr: 0x1000,
                data: &low,
                executable: true,
                writable: false,
            },
        ]);
        assert_eq!(memory.read(0x1001, 2), Some(&low[1..3]));
        assert_eq!(memory.read(0x2000, 2), Some(&high[..]));
        assert_eq!(memory.read(0x1003, 2), None);
        assert_eq!(memory.read(0x0fff, 1), None);
        assert_eq!(memory.read(0x1004, 1), None);
        assert_eq!(memory.read(u64::MAX, 1), None);
    }
}
