//! The virtual address space a binary's `PT_LOAD` segments describe, limited
//! to the bytes the file contains (`p_filesz`). Build information before
//! Go 1.18 contains pointers, and they are followed through this view.

use object::elf;
use object::read::elf::{ElfFile64, ProgramHeader};

/// One loadable segment: where it is mapped and the file bytes backing it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadSegment<'data> {
    pub address: u64,
    pub file_offset: u64,
    pub flags: u32,
    pub bytes: &'data [u8],
}

/// A virtual address with the file offset that backs it, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The virtual address, as the binary was linked.
    pub address: u64,
    /// The file offset of that address, when a segment maps it.
    pub file_offset: Option<u64>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.file_offset {
            Some(offset) => write!(f, "address {:#x} (file offset {:#x})", self.address, offset),
            None => write!(f, "address {:#x}", self.address),
        }
    }
}

/// The `PT_LOAD` segments of one binary, in program header order.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddressSpace<'data> {
    segments: Vec<LoadSegment<'data>>,
}

impl<'data> AddressSpace<'data> {
    /// Collects the `PT_LOAD` segments of `elf`. A segment whose file bytes
    /// run past the end of a truncated file keeps the bytes that exist.
    pub fn from_elf(elf: &ElfFile64<'data>) -> Self {
        let endian = elf.endian();
        let data = elf.data();
        let mut segments = Vec::new();
        for header in elf.elf_program_headers() {
            if header.p_type(endian) != elf::PT_LOAD {
                continue;
            }
            let file_offset = header.p_offset(endian);
            let size = header.p_filesz(endian);
            let bytes = usize::try_from(file_offset)
                .ok()
                .and_then(|start| data.get(start..))
                .map(|rest| {
                    let len = usize::try_from(size).unwrap_or(usize::MAX).min(rest.len());
                    rest.get(..len).unwrap_or_default()
                })
                .unwrap_or_default();
            segments.push(LoadSegment {
                address: header.p_vaddr(endian),
                file_offset,
                flags: header.p_flags(endian).0,
                bytes,
            });
        }
        AddressSpace { segments }
    }

    /// Builds an address space from segments a test or a caller assembled.
    #[cfg(test)]
    pub fn from_segments(segments: Vec<LoadSegment<'data>>) -> Self {
        AddressSpace { segments }
    }

    pub fn segments(&self) -> &[LoadSegment<'data>] {
        &self.segments
    }

    /// Returns the file bytes from `address` to the end of the first segment
    /// that maps it, or `None` when no segment's file bytes cover it.
    pub fn bytes_from(&self, address: u64) -> Option<&'data [u8]> {
        self.segments.iter().find_map(|segment| {
            let delta = address.checked_sub(segment.address)?;
            let start = usize::try_from(delta).ok()?;
            if start >= segment.bytes.len() {
                return None;
            }
            segment.bytes.get(start..)
        })
    }

    /// Returns `address` with its file offset, for messages.
    pub fn locate(&self, address: u64) -> Location {
        let file_offset = self.segments.iter().find_map(|segment| {
            let delta = address.checked_sub(segment.address)?;
            if delta >= segment.bytes.len() as u64 {
                return None;
            }
            segment.file_offset.checked_add(delta)
        });
        Location {
            address,
            file_offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_from_stops_at_segment_end() {
        let text = [0x90u8; 16];
        let data = [1u8, 2, 3, 4];
        let space = AddressSpace::from_segments(vec![
            LoadSegment {
                address: 0x1000,
                file_offset: 0x0,
                flags: 5,
                bytes: &text,
            },
            LoadSegment {
                address: 0x2000,
                file_offset: 0x1000,
                flags: 6,
                bytes: &data,
            },
        ]);
        assert_eq!(space.bytes_from(0x2001), Some(&data[1..]));
        assert_eq!(space.bytes_from(0x100f), Some(&text[15..]));
        assert_eq!(space.bytes_from(0x1010), None);
        assert_eq!(space.bytes_from(0x2004), None);
        assert_eq!(space.bytes_from(0xfff), None);
        assert_eq!(space.locate(0x2002).file_offset, Some(0x1002));
        assert_eq!(space.locate(0x3000).file_offset, None);
    }
}
