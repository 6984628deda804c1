//! The one interface through which the runtime walk and the unwinder read
//! process memory, so that tests can hand them a few synthetic pages and
//! the real walk reads a core.

pub use crate::core::MemoryError;

/// A source of process memory at run-time addresses.
pub trait ReadMemory {
    /// Fills `buf` with the bytes at `addr`, or fails naming the first
    /// address that could not be read.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

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
}

impl<T: ReadMemory + ?Sized> ReadMemory for &T {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        (**self).read(addr, buf)
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
}
