//! The one interface through which the runtime walk and the unwinder read
//! process memory, so that tests can hand them a few synthetic pages and
//! the real walk reads a core.

use std::cell::Cell;

pub use crate::core::MemoryError;

/// A core's memory with the executable's read-only segments (code, read-only
/// data) read from the binary where the core lacks them. The kernel leaves
/// those out of the core, and the core's reader finds them in the files
/// NT_FILE names, but that file may be gone or replaced, and a core written
/// by qemu-user has no NT_FILE note at all. Writable segments are never read
/// from the binary: the process changed them.
pub struct WithExecutable<'a> {
    pub core: &'a dyn ReadMemory,
    pub binary: &'a crate::binary::Binary,
    /// Run-time minus link-time address.
    pub bias: u64,
}

impl WithExecutable<'_> {
    /// Reads `buf` from one read-only segment of the binary.
    fn read_binary(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some(link) = addr.checked_sub(self.bias) else {
            return false;
        };
        let read_only = self.binary.segments().iter().any(|segment| {
            !segment.writable
                && link >= segment.vaddr
                && link - segment.vaddr < segment.data.len() as u64
        });
        match self.binary.read_at_vaddr(link, buf.len() as u64) {
            Some(bytes) if read_only && bytes.len() == buf.len() => {
                buf.copy_from_slice(bytes);
                true
            }
            _ => false,
        }
    }
}

impl ReadMemory for WithExecutable<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        match self.core.read(addr, buf) {
            Err(error @ (MemoryError::NotDumped { .. } | MemoryError::Unmapped { .. })) => {
                if self.read_binary(addr, buf) {
                    Ok(())
                } else {
                    Err(error)
                }
            }
            other => other,
        }
    }

    fn run_at(&self, addr: u64) -> Option<&[u8]> {
        self.core.run_at(addr)
    }
}

/// A source of process memory at run-time addresses.
pub trait ReadMemory {
    /// Fills `buf` with the bytes at `addr`, or fails naming the first
    /// address that could not be read.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    /// Returns the bytes from `addr` on that one source (a core segment, a
    /// mapped file) contains without a gap, for [`RunCache`]. `None` when
    /// the memory offers no such view.
    fn run_at(&self, _addr: u64) -> Option<&[u8]> {
        None
    }

    fn read_u8(&self, addr: u64) -> Result<u8, MemoryError> {
        let mut buf = [0u8; 1];
        self.read(addr, &mut buf)?;
        Ok(buf[0])
    }

    fn read_u32(&self, addr: u64) -> Result<u32, MemoryError> {
        let mut buf = [0u8; 4];
        self.read(addr, &mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        let mut buf = [0u8; 8];
        self.read(addr, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// Reads a little-endian unsigned value of `size` bytes (1, 2, 4 or 8).
    fn read_uint(&self, addr: u64, size: u64) -> Result<u64, MemoryError> {
        let mut buf = [0u8; 8];
        let len = usize::try_from(size.min(8)).unwrap_or(8);
        self.read(addr, &mut buf[..len])?;
        Ok(u64::from_le_bytes(buf))
    }
}

impl ReadMemory for crate::core::Memory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        crate::core::Memory::read(self, addr, buf)
    }

    fn read_u8(&self, addr: u64) -> Result<u8, MemoryError> {
        let [byte] = self.read_array(addr)?;
        Ok(byte)
    }

    fn read_u32(&self, addr: u64) -> Result<u32, MemoryError> {
        Ok(u32::from_le_bytes(self.read_array(addr)?))
    }

    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        Ok(u64::from_le_bytes(self.read_array(addr)?))
    }

    fn run_at(&self, addr: u64) -> Option<&[u8]> {
        self.contiguous_at(addr).ok()
    }
}

impl<T: ReadMemory + ?Sized> ReadMemory for &T {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        (**self).read(addr, buf)
    }

    fn run_at(&self, addr: u64) -> Option<&[u8]> {
        (**self).run_at(addr)
    }
}

/// Reads through the last run of contiguous bytes a read found. A stack
/// walk reads one word after another up the same stack, and finding the
/// core segment of each word cost more than the rest of the read. One
/// cache serves one thread.
pub struct RunCache<'m> {
    inner: &'m dyn ReadMemory,
    /// The run's first address and its bytes.
    run: Cell<(u64, &'m [u8])>,
}

impl<'m> RunCache<'m> {
    pub fn new(inner: &'m dyn ReadMemory) -> RunCache<'m> {
        RunCache {
            inner,
            run: Cell::new((0, &[])),
        }
    }

    /// Returns the `len` bytes at `addr`, from the cached run or from a run
    /// found now; `None` when no run contains them all.
    fn cached(&self, addr: u64, len: usize) -> Option<&'m [u8]> {
        let (start, bytes) = self.run.get();
        if let Some(found) = within(start, bytes, addr, len) {
            return Some(found);
        }
        let bytes = self.inner.run_at(addr)?;
        self.run.set((addr, bytes));
        within(addr, bytes, addr, len)
    }
}

/// Returns the `len` bytes at `addr` of the run of `bytes` at `start`.
fn within(start: u64, bytes: &[u8], addr: u64, len: usize) -> Option<&[u8]> {
    let from = usize::try_from(addr.checked_sub(start)?).ok()?;
    bytes.get(from..from.checked_add(len)?)
}

impl ReadMemory for RunCache<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        match self.cached(addr, buf.len()) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            // A read across runs, or one that fails, which the memory
            // explains.
            None => self.inner.read(addr, buf),
        }
    }

    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        match self
            .cached(addr, 8)
            .and_then(|bytes| bytes.first_chunk::<8>())
        {
            Some(bytes) => Ok(u64::from_le_bytes(*bytes)),
            None => self.inner.read_u64(addr),
        }
    }

    fn run_at(&self, addr: u64) -> Option<&[u8]> {
        self.inner.run_at(addr)
    }
}

/// The cache line size of x86-64 CPUs.
const CACHE_LINE: usize = 64;

/// Asks the CPU to load up to `len` bytes at `addr` into its caches, where
/// `memory` has them in one run. Finding the run waits, as a read does, for
/// a core still being decompressed; the load itself is not waited for.
///
/// A prefetch never faults and changes no value the program reads. On the
/// corpus's 10,000-goroutine core, prefetching the stacks of the next
/// goroutines made the whole run 7 to 9% faster. On other architectures
/// than x86-64 this does nothing.
pub fn prefetch(memory: &dyn ReadMemory, addr: u64, len: usize) {
    let Some(run) = memory.run_at(addr) else {
        return;
    };
    let bytes = run.get(..len.min(run.len())).unwrap_or_default();
    for line in bytes.chunks(CACHE_LINE) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE, which provides the instruction, is part of every
        // x86-64 CPU, and a prefetch neither reads nor writes program data.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = line;
    }
}

/// Sparse memory for tests: a few byte ranges at chosen addresses.
#[cfg(test)]
#[derive(Default)]
pub struct TestMemory {
    ranges: Vec<(u64, Vec<u8>)>,
}

#[cfg(test)]
impl TestMemory {
    pub fn new() -> TestMemory {
        TestMemory::default()
    }

    pub fn put(&mut self, addr: u64, bytes: &[u8]) {
        self.ranges.push((addr, bytes.to_vec()));
    }

    pub fn put_u64(&mut self, addr: u64, value: u64) {
        self.put(addr, &value.to_le_bytes());
    }

    pub fn put_u32(&mut self, addr: u64, value: u32) {
        self.put(addr, &value.to_le_bytes());
    }
}

#[cfg(test)]
impl ReadMemory for TestMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        for (i, byte) in buf.iter_mut().enumerate() {
            let at = addr + i as u64;
            let found = self.ranges.iter().rev().find_map(|(start, bytes)| {
                let offset = at.checked_sub(*start)?;
                bytes.get(usize::try_from(offset).ok()?).copied()
            });
            *byte = found.ok_or(MemoryError::Unmapped { addr: at })?;
        }
        Ok(())
    }

    /// Returns the rest of the one range that contains `addr`, when no
    /// other range overlaps it.
    fn run_at(&self, addr: u64) -> Option<&[u8]> {
        let mut containing = self
            .ranges
            .iter()
            .filter(|(start, bytes)| addr >= *start && addr - *start < bytes.len() as u64);
        let (start, bytes) = containing.next()?;
        let end = *start + bytes.len() as u64;
        let overlapped = self
            .ranges
            .iter()
            .filter(|(other, other_bytes)| *other < end && addr < *other + other_bytes.len() as u64)
            .count()
            > 1;
        if overlapped {
            return None;
        }
        bytes.get(usize::try_from(addr - *start).ok()?..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_cache_reads_as_its_memory() {
        let mut memory = TestMemory::new();
        let first: Vec<u8> = (0..16).collect();
        let second: Vec<u8> = (16..32).collect();
        memory.put(0x1000, &first);
        memory.put(0x1010, &second);
        let cache = RunCache::new(&memory);

        assert_eq!(
            cache.read_u64(0x1000).unwrap(),
            memory.read_u64(0x1000).unwrap()
        );
        assert_eq!(
            cache.read_u64(0x1008).unwrap(),
            memory.read_u64(0x1008).unwrap()
        );
        assert_eq!(
            cache.read_u64(0x1004).unwrap(),
            memory.read_u64(0x1004).unwrap()
        );
        // Across the two runs: the memory reads it.
        assert_eq!(cache.read_u64(0x100c).unwrap(), 0x1312_1110_0f0e_0d0c);
        assert_eq!(
            cache.read_u64(0x1018).unwrap(),
            memory.read_u64(0x1018).unwrap()
        );
        let mut buf = [0u8; 4];
        cache.read(0x101c, &mut buf).unwrap();
        assert_eq!(buf, [28, 29, 30, 31]);
        // Past the end, and unmapped: the memory's own errors.
        assert!(matches!(
            cache.read_u64(0x101c),
            Err(MemoryError::Unmapped { addr: 0x1020 })
        ));
        assert!(matches!(
            cache.read_u64(0x2000),
            Err(MemoryError::Unmapped { addr: 0x2000 })
        ));
    }
}
