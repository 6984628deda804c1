//! The address space of the crashed process, as far as the core and the
//! mapped files can supply it.
//!
//! Each PT_LOAD segment covers one mapping. Its first `p_filesz` bytes are in
//! the core. The kernel left out the rest (`p_memsz` - `p_filesz`), usually
//! because it is unmodified file content such as text and read-only data. Those bytes are read from the file NT_FILE names for the address,
//! at the file offset NT_FILE gives, when [`super::files`] could open that
//! file. Every read is bounds-checked and a failure names the first address
//! that could not be read and why.

use std::borrow::Cow;
use std::path::PathBuf;

use object::Endianness;

use super::files::BackingFile;
use crate::decompress::CoreImage;

/// Maximum length of a C string read by [`Memory::read_c_string`] callers
/// that have no better bound: Linux's `PATH_MAX`.
pub const MAX_C_STRING: usize = 4096;

/// Storage of a core's bytes.
pub(crate) enum CoreBytes {
    Image(CoreImage),
    Owned(Vec<u8>),
}

impl CoreBytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            CoreBytes::Image(image) => image.bytes(),
            CoreBytes::Owned(bytes) => bytes,
        }
    }

    /// Returns how many leading bytes can be read, waiting until at least
    /// `len` can unless the core is still decompressing and its stream
    /// ends before. Without a decompression running, every byte can.
    fn readable(&self, len: u64) -> u64 {
        match self {
            CoreBytes::Image(image) => image.gate().map_or(u64::MAX, |gate| gate.wait_for(len)),
            CoreBytes::Owned(_) => u64::MAX,
        }
    }
}

/// The minimum number of bytes a read waits for while the core is still
/// decompressing, unless its segment ends before. Waiting for a few pages
/// at once keeps the waits few, and callers that parse one chunk (the first
/// page of a mapped file) get all of it.
const MIN_READY_CHUNK: u64 = 64 * 1024;

/// One PT_LOAD segment of the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    /// Offset of the segment's dumped bytes in the core file.
    pub file_offset: u64,
    /// Number of bytes the kernel dumped, from the start of the segment.
    pub filesz: u64,
    /// Number of dumped bytes really present in the core: less than
    /// `filesz` when the core was truncated.
    pub present: u64,
    /// `p_flags`: `PF_R`, `PF_W`, `PF_X` as the mapping's protection.
    pub flags: u32,
}

impl Segment {
    /// Returns the address just past the segment.
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.vaddr <= addr && addr < self.end()
    }

    pub fn is_truncated(&self) -> bool {
        self.present < self.filesz
    }
}

/// A range of NT_FILE, with the index of the local file that backs it.
#[derive(Clone, Debug)]
pub(crate) struct FileRange {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
    pub path: PathBuf,
    pub backing: Option<usize>,
}

/// Reason a range of the address space cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissingReason {
    /// The kernel dumped it, but the core file ends before it (size limits,
    /// a full disk, or a damaged compressed stream).
    Truncated,
    /// The kernel did not dump it, and the file that was mapped there could
    /// not be used.
    FileUnavailable { path: PathBuf },
}

/// A range of mapped addresses whose contents the reader cannot supply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingRange {
    pub start: u64,
    pub end: u64,
    pub reason: MissingReason,
}

/// Failure to read process memory, naming the first address that failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    #[error("address {addr:#x} is not in any segment of the core")]
    Unmapped { addr: u64 },
    #[error(
        "address {addr:#x} is in segment {segment_start:#x}..{segment_end:#x}, whose contents were not dumped, and {}",
        match path {
            Some(path) => format!("its file {} is not available", path.display()),
            None => "no file backs it".to_owned(),
        }
    )]
    NotDumped {
        addr: u64,
        segment_start: u64,
        segment_end: u64,
        path: Option<PathBuf>,
    },
    #[error(
        "address {addr:#x} lies beyond the end of the truncated core: it is at file offset {offset:#x}, \
         the core has {core_len:#x} bytes"
    )]
    Truncated {
        addr: u64,
        offset: u64,
        core_len: u64,
    },
    #[error(
        "address {addr:#x} maps to offset {offset:#x} of {path}, beyond its end at {file_len:#x}"
    )]
    BeyondFileEnd {
        addr: u64,
        path: PathBuf,
        offset: u64,
        file_len: u64,
    },
    #[error("the range of {len:#x} bytes at {addr:#x} wraps around the address space")]
    Overflow { addr: u64, len: u64 },
}

impl MemoryError {
    /// Returns the first address that could not be read.
    pub fn addr(&self) -> u64 {
        match self {
            MemoryError::Unmapped { addr }
            | MemoryError::NotDumped { addr, .. }
            | MemoryError::Truncated { addr, .. }
            | MemoryError::BeyondFileEnd { addr, .. }
            | MemoryError::Overflow { addr, .. } => *addr,
        }
    }
}

/// Source of the bytes of a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The core and, for pages it lacks, the mapped files.
    CoreAndFiles,
    /// Only the core's own bytes, for facts that must describe the crashed
    /// process rather than a file that may have changed since.
    CoreOnly,
}

/// A read-only view of the process's memory.
pub struct Memory {
    data: CoreBytes,
    /// Sorted by `vaddr`.
    segments: Vec<Segment>,
    /// Sorted by `start`.
    file_ranges: Vec<FileRange>,
    files: Vec<BackingFile>,
    endian: Endianness,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("core_len", &self.data.as_slice().len())
            .field("segments", &self.segments.len())
            .field("file_ranges", &self.file_ranges.len())
            .field("files", &self.files)
            .finish()
    }
}

impl Memory {
    pub(crate) fn new(
        data: CoreBytes,
        mut segments: Vec<Segment>,
        mut file_ranges: Vec<FileRange>,
        endian: Endianness,
    ) -> Memory {
        segments.sort_by_key(|s| s.vaddr);
        file_ranges.sort_by_key(|r| r.start);
        Memory {
            data,
            segments,
            file_ranges,
            files: Vec::new(),
            endian,
        }
    }

    /// Adds a local file and makes it back every NT_FILE range of `path`.
    pub(crate) fn attach_file(&mut self, path: &std::path::Path, file: BackingFile) {
        let index = self.files.len();
        self.files.push(file);
        for range in self.file_ranges.iter_mut().filter(|r| r.path == path) {
            range.backing = Some(index);
        }
    }

    pub(crate) fn core_bytes(&self) -> &[u8] {
        self.data.as_slice()
    }

    pub(crate) fn core_data(&self) -> &CoreBytes {
        &self.data
    }

    /// Returns the PT_LOAD segments, sorted by address.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn endian(&self) -> Endianness {
        self.endian
    }

    /// Fills `buf` with the bytes at `addr`, from the core or, for pages the
    /// kernel did not dump, from the mapped files.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.read_from(addr, buf, Source::CoreAndFiles)
    }

    /// Fills `buf` with bytes the core itself contains, ignoring mapped files.
    pub fn read_dumped(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.read_from(addr, buf, Source::CoreOnly)
    }

    /// Returns `len` bytes at `addr`: borrowed when one source contains them
    /// all, copied when the range spans several. The caller bounds `len`.
    pub fn read_bytes(&self, addr: u64, len: usize) -> Result<Cow<'_, [u8]>, MemoryError> {
        let chunk = self.chunk_at(addr, Source::CoreAndFiles)?;
        if let Some(whole) = chunk.get(..len) {
            return Ok(Cow::Borrowed(whole));
        }
        let mut buf = vec![0u8; len];
        self.read(addr, &mut buf)?;
        Ok(Cow::Owned(buf))
    }

    /// Returns the longest run of bytes starting at `addr` that one source
    /// (a core segment or a mapped file) contains without a gap.
    pub fn contiguous_at(&self, addr: u64) -> Result<&[u8], MemoryError> {
        self.chunk_at(addr, Source::CoreAndFiles)
    }

    /// Returns the longest run of bytes starting at `addr` that the core
    /// itself contains without a gap, ignoring mapped files.
    pub fn dumped_contiguous_at(&self, addr: u64) -> Result<&[u8], MemoryError> {
        self.chunk_at(addr, Source::CoreOnly)
    }

    /// Returns the `N` bytes at `addr`. The walk reads millions of words,
    /// nearly all within one segment, so that case is a single copy.
    #[inline]
    pub fn read_array<const N: usize>(&self, addr: u64) -> Result<[u8; N], MemoryError> {
        if let Some(bytes) = self
            .chunk_at(addr, Source::CoreAndFiles)
            .ok()
            .and_then(|chunk| chunk.first_chunk::<N>())
        {
            return Ok(*bytes);
        }
        let mut buf = [0u8; N];
        self.read(addr, &mut buf)?;
        Ok(buf)
    }

    pub fn read_u8(&self, addr: u64) -> Result<u8, MemoryError> {
        let [byte] = self.read_array(addr)?;
        Ok(byte)
    }

    pub fn read_u16(&self, addr: u64) -> Result<u16, MemoryError> {
        let buf = self.read_array(addr)?;
        Ok(match self.endian {
            Endianness::Little => u16::from_le_bytes(buf),
            Endianness::Big => u16::from_be_bytes(buf),
        })
    }

    pub fn read_u32(&self, addr: u64) -> Result<u32, MemoryError> {
        let buf = self.read_array(addr)?;
        Ok(match self.endian {
            Endianness::Little => u32::from_le_bytes(buf),
            Endianness::Big => u32::from_be_bytes(buf),
        })
    }

    pub fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        let buf = self.read_array(addr)?;
        Ok(match self.endian {
            Endianness::Little => u64::from_le_bytes(buf),
            Endianness::Big => u64::from_be_bytes(buf),
        })
    }

    /// Reads a NUL-terminated string of at most `max_len` bytes (without the
    /// NUL). A string that does not end within `max_len` is cut there.
    pub fn read_c_string(&self, addr: u64, max_len: usize) -> Result<Vec<u8>, MemoryError> {
        let mut out = Vec::new();
        let mut cursor = addr;
        while out.len() < max_len {
            let chunk = self.chunk_at(cursor, Source::CoreAndFiles)?;
            let wanted = chunk.get(..max_len - out.len()).unwrap_or(chunk);
            if let Some(nul) = wanted.iter().position(|&b| b == 0) {
                out.extend_from_slice(wanted.get(..nul).unwrap_or(&[]));
                return Ok(out);
            }
            out.extend_from_slice(wanted);
            // A chunk is never empty, so the cursor advances.
            cursor = cursor
                .checked_add(wanted.len() as u64)
                .ok_or(MemoryError::Overflow {
                    addr,
                    len: out.len() as u64,
                })?;
        }
        Ok(out)
    }

    fn read_from(&self, addr: u64, buf: &mut [u8], source: Source) -> Result<(), MemoryError> {
        let len = buf.len() as u64;
        if addr.checked_add(len).is_none() {
            return Err(MemoryError::Overflow { addr, len });
        }
        let mut done = 0usize;
        while let Some(rest) = buf.get_mut(done..) {
            if rest.is_empty() {
                break;
            }
            // Cannot overflow: addr + len was checked above.
            let chunk = self.chunk_at(addr + done as u64, source)?;
            let count = chunk.len().min(rest.len());
            if let (Some(to), Some(from)) = (rest.get_mut(..count), chunk.get(..count)) {
                to.copy_from_slice(from);
            }
            done += count;
        }
        Ok(())
    }

    fn segment_at(&self, addr: u64) -> Option<&Segment> {
        let after = self.segments.partition_point(|s| s.vaddr <= addr);
        let candidate = self.segments.get(after.checked_sub(1)?)?;
        candidate.contains(addr).then_some(candidate)
    }

    fn file_range_at(&self, addr: u64) -> Option<&FileRange> {
        let after = self.file_ranges.partition_point(|r| r.start <= addr);
        let candidate = self.file_ranges.get(after.checked_sub(1)?)?;
        (addr < candidate.end).then_some(candidate)
    }

    /// Returns a non-empty slice of the bytes at `addr`, as long as its
    /// source contains them contiguously.
    fn chunk_at(&self, addr: u64, source: Source) -> Result<&[u8], MemoryError> {
        let segment = self
            .segment_at(addr)
            .ok_or(MemoryError::Unmapped { addr })?;
        let within = addr - segment.vaddr;
        if within < segment.present {
            // Cannot overflow: a segment has present bytes only when
            // file_offset + present is within the core's length.
            let start = segment.file_offset + within;
            let present_end = segment.file_offset + segment.present;
            let wanted = start.saturating_add(MIN_READY_CHUNK).min(present_end);
            let end = present_end.min(self.data.readable(wanted));
            return self
                .core_bytes()
                .get(start as usize..end as usize)
                .filter(|chunk| !chunk.is_empty())
                .ok_or(MemoryError::Truncated {
                    addr,
                    offset: start,
                    core_len: self.core_bytes().len() as u64,
                });
        }
        if within < segment.filesz {
            return Err(MemoryError::Truncated {
                addr,
                offset: segment.file_offset.saturating_add(within),
                core_len: self.core_bytes().len() as u64,
            });
        }

        let not_dumped = |path: Option<PathBuf>| MemoryError::NotDumped {
            addr,
            segment_start: segment.vaddr,
            segment_end: segment.end(),
            path,
        };
        let Some(range) = self.file_range_at(addr) else {
            return Err(not_dumped(None));
        };
        let backing = match (source, range.backing.and_then(|i| self.files.get(i))) {
            (Source::CoreAndFiles, Some(file)) => file,
            _ => return Err(not_dumped(Some(range.path.clone()))),
        };
        let bytes = backing.bytes();
        let offset = range.file_offset.saturating_add(addr - range.start);
        // The chunk stops at whichever ends first: the NT_FILE range, the
        // segment or the file.
        let limit = (range.end.min(segment.end()) - addr).min(usize::MAX as u64);
        let beyond = || MemoryError::BeyondFileEnd {
            addr,
            path: backing.local_path.clone(),
            offset,
            file_len: bytes.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| beyond())?;
        let tail = bytes
            .get(start..)
            .filter(|tail| !tail.is_empty())
            .ok_or_else(beyond)?;
        Ok(tail.get(..limit as usize).unwrap_or(tail))
    }

    /// Lists the mapped ranges the reader cannot supply: dumped bytes cut
    /// off by truncation, and undumped file-backed bytes whose file is not
    /// available. Undumped anonymous memory (reservations the process never
    /// touched, guard pages) is not listed.
    pub fn missing_ranges(&self) -> Vec<MissingRange> {
        let mut missing = Vec::new();
        for segment in &self.segments {
            if segment.is_truncated() {
                missing.push(MissingRange {
                    start: segment.vaddr.saturating_add(segment.present),
                    end: segment
                        .vaddr
                        .saturating_add(segment.filesz)
                        .min(segment.end()),
                    reason: MissingReason::Truncated,
                });
            }
            let undumped_start = segment.vaddr.saturating_add(segment.filesz);
            if undumped_start >= segment.end() {
                continue;
            }
            let first = self
                .file_ranges
                .partition_point(|r| r.end <= undumped_start);
            for range in self
                .file_ranges
                .iter()
                .skip(first)
                .take_while(|r| r.start < segment.end())
            {
                let start = range.start.max(undumped_start);
                let end = range.end.min(segment.end());
                if start >= end {
                    continue;
                }
                let usable = range
                    .backing
                    .and_then(|i| self.files.get(i))
                    .is_some_and(|file| {
                        (file.bytes().len() as u64)
                            >= range.file_offset.saturating_add(end - range.start)
                    });
                if !usable {
                    let reason = MissingReason::FileUnavailable {
                        path: range.path.clone(),
                    };
                    missing.push(MissingRange { start, end, reason });
                }
            }
        }
        missing
    }
}
