//! Checks a decompressed stream's first bytes while it streams: they must
//! start a 64-bit ELF file, and the ELF header and program header table they
//! hold give the length of the core, past which the stream is not read.
//!
//! A few bytes of zstd expand to terabytes of one repeated byte, so the
//! length a stream claims is never trusted. Only the file's extent is
//! computed here (the end of the last program header's bytes); reading the
//! core is left to [`crate::core`].

use object::elf::{FileHeader64, ProgramHeader64, PN_XNUM};
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

use crate::core::MAX_SEGMENTS;

/// Most decompressed bytes read from any stream: 1 TiB. It applies before
/// the core's program headers are known, to streams whose headers describe
/// more, and to raw streams. Linux processes of servers run by systemd rarely
/// exceed a few hundred GiB of dumped memory, and systemd-coredump itself
/// refuses cores larger than its `ExternalSizeMax` (32 GiB by default on
/// 64-bit hosts, see coredump.conf(5)).
pub const MAX_DECOMPRESSED_LEN: u64 = 1 << 40;

/// Size of an ELF64 file header.
const ELF64_HEADER_LEN: usize = 64;

/// Size of an ELF64 program header.
const ELF64_PHDR_LEN: u64 = 56;

/// Leading bytes printed when a stream is not an ELF file.
const PRINTED_PREFIX_LEN: usize = 16;

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];

/// Index of the class byte in `e_ident`, and its value for 64-bit files.
const EI_CLASS: usize = 4;
const ELFCLASS64: u8 = 2;

/// Why a stream's first bytes are not a 64-bit ELF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotElf {
    /// The stream does not start with `\x7fELF`; carries its first bytes in hex.
    Magic(String),
    /// An ELF file of another class (1 is 32-bit).
    Class(u8),
}

/// Watches the start of a decompressed stream and computes the core's length.
#[derive(Debug, Default)]
pub struct CoreExtent {
    /// The stream's first bytes, kept until the program header table is read.
    prefix: Vec<u8>,
    /// The extent once computed, never more than [`MAX_DECOMPRESSED_LEN`].
    limit: Option<u64>,
    /// The end of the ELF header, the program header table and the notes,
    /// when the program headers were read.
    headers_end: Option<u64>,
}

impl CoreExtent {
    /// Feeds the next decompressed bytes, in stream order.
    pub fn observe(&mut self, block: &[u8]) -> Result<(), NotElf> {
        if self.limit.is_some() {
            return Ok(());
        }
        let mut used = 0;
        // The first pass may complete the ELF header, which tells how long
        // the program header table is; the second takes the table.
        for _ in 0..2 {
            let needed = self.needed_prefix_len();
            let rest = block.get(used..).unwrap_or(&[]);
            let take = needed.saturating_sub(self.prefix.len()).min(rest.len());
            self.prefix
                .extend_from_slice(rest.get(..take).unwrap_or(&[]));
            used += take;
        }
        self.check_ident()?;
        self.compute_limit();
        Ok(())
    }

    /// Checks what the stream held when it ended: a stream shorter than an
    /// ELF identification still must not contradict one.
    pub fn finish(&self) -> Result<(), NotElf> {
        self.check_ident()
    }

    /// Returns the most bytes the stream may produce: the core's extent once
    /// its program headers were read, else [`MAX_DECOMPRESSED_LEN`].
    pub fn limit(&self) -> u64 {
        self.limit.unwrap_or(MAX_DECOMPRESSED_LEN)
    }

    /// Tells whether the limit is final: no more bytes need observing.
    pub fn is_settled(&self) -> bool {
        self.limit.is_some()
    }

    /// Tells whether [`CoreExtent::limit`] comes from the core's headers.
    pub fn is_described(&self) -> bool {
        self.limit.is_some_and(|limit| limit < MAX_DECOMPRESSED_LEN)
    }

    /// Returns how many leading bytes hold the ELF header, the program
    /// header table and the notes, once [`CoreExtent::is_described`].
    pub fn headers_end(&self) -> Option<u64> {
        self.headers_end.filter(|_| self.is_described())
    }

    fn check_ident(&self) -> Result<(), NotElf> {
        let magic_len = self.prefix.len().min(ELF_MAGIC.len());
        if self.prefix.get(..magic_len) != ELF_MAGIC.get(..magic_len) {
            return Err(NotElf::Magic(hex_prefix(&self.prefix)));
        }
        match self.prefix.get(EI_CLASS) {
            Some(&class) if class != ELFCLASS64 => Err(NotElf::Class(class)),
            _ => Ok(()),
        }
    }

    /// Returns how many leading bytes the extent needs: the ELF header, then
    /// the program header table it locates.
    fn needed_prefix_len(&self) -> usize {
        match self.table_end() {
            Some(end) => usize::try_from(end).unwrap_or(usize::MAX),
            None => ELF64_HEADER_LEN,
        }
    }

    /// Returns the end of the program header table when the ELF header is
    /// known and the table small enough to keep in memory.
    fn table_end(&self) -> Option<u64> {
        let (header, endian) = self.header()?;
        let count = u64::from(header.e_phnum(endian));
        // The real count of a core with PN_XNUM or more segments lies in
        // section header 0, usually at the end of the file.
        if count == u64::from(PN_XNUM) {
            return None;
        }
        let end = count
            .checked_mul(ELF64_PHDR_LEN)?
            .checked_add(header.e_phoff(endian))?;
        let max_table = (MAX_SEGMENTS as u64).saturating_mul(ELF64_PHDR_LEN);
        (end <= max_table.saturating_add(ELF64_HEADER_LEN as u64)).then_some(end)
    }

    fn header(&self) -> Option<(&FileHeader64<Endianness>, Endianness)> {
        let header = FileHeader64::<Endianness>::parse(self.prefix.as_slice()).ok()?;
        let endian = header.endian().ok()?;
        Some((header, endian))
    }

    fn compute_limit(&mut self) {
        if let Some((limit, headers_end)) = self.read_limit() {
            self.limit = Some(limit);
            self.headers_end = headers_end;
            self.prefix = Vec::new();
        }
    }

    /// Returns the limit once the kept prefix decides it, with the end of
    /// the headers and notes when the program headers could be read.
    fn read_limit(&self) -> Option<(u64, Option<u64>)> {
        let Some((header, endian)) = self.header() else {
            // An ELF header that object cannot read: the core parser says why.
            return (self.prefix.len() >= ELF64_HEADER_LEN).then_some((MAX_DECOMPRESSED_LEN, None));
        };
        let Some(table_end) = self.table_end() else {
            tracing::debug!(target: "gocrash::decompress", "no usable program header count, so the stream is capped at the fixed maximum");
            return Some((MAX_DECOMPRESSED_LEN, None));
        };
        if (self.prefix.len() as u64) < table_end {
            return None;
        }
        let (extent, headers_end) = match header.program_headers(endian, self.prefix.as_slice()) {
            Ok(phdrs) => (
                file_extent(header, endian, phdrs, table_end),
                notes_end(endian, phdrs, table_end),
            ),
            Err(_) => (None, None),
        };
        let limit = extent.map_or(MAX_DECOMPRESSED_LEN, |e| e.min(MAX_DECOMPRESSED_LEN));
        tracing::debug!(target: "gocrash::decompress", limit, "read the core's extent from its program headers");
        Some((limit, headers_end.map(|end| end.min(limit))))
    }
}

/// Returns the end of the program header table and of every PT_NOTE
/// segment, `None` when an offset plus a size overflows.
fn notes_end(
    endian: Endianness,
    phdrs: &[ProgramHeader64<Endianness>],
    table_end: u64,
) -> Option<u64> {
    let mut end = table_end.max(ELF64_HEADER_LEN as u64);
    for phdr in phdrs
        .iter()
        .filter(|p| p.p_type(endian) == object::elf::PT_NOTE)
    {
        end = end.max(phdr.p_offset(endian).checked_add(phdr.p_filesz(endian))?);
    }
    Some(end)
}

/// Returns the end of the last byte the headers place in the file, `None`
/// when an offset plus a size overflows.
fn file_extent(
    header: &FileHeader64<Endianness>,
    endian: Endianness,
    phdrs: &[ProgramHeader64<Endianness>],
    table_end: u64,
) -> Option<u64> {
    let mut extent = table_end.max(ELF64_HEADER_LEN as u64);
    let section_table = u64::from(header.e_shnum(endian))
        .checked_mul(u64::from(header.e_shentsize(endian)))?
        .checked_add(header.e_shoff(endian))?;
    extent = extent.max(section_table);
    for phdr in phdrs {
        let end = phdr.p_offset(endian).checked_add(phdr.p_filesz(endian))?;
        extent = extent.max(end);
    }
    Some(extent)
}

fn hex_prefix(bytes: &[u8]) -> String {
    let printed_bytes = bytes.get(..PRINTED_PREFIX_LEN).unwrap_or(bytes);
    let hex = printed_bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    let printable: String = printed_bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect();
    format!("{hex} (\"{printable}\")")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an ELF64 little-endian core header followed by `segments`
    /// program headers, each a (file offset, file size) pair.
    fn core_headers(segments: &[(u64, u64)]) -> Vec<u8> {
        let mut bytes = vec![0u8; ELF64_HEADER_LEN];
        bytes[..4].copy_from_slice(&ELF_MAGIC);
        bytes[4] = ELFCLASS64;
        bytes[5] = 1; // little-endian
        bytes[6] = 1; // EV_CURRENT
        bytes[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
        bytes[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        bytes[20..24].copy_from_slice(&1u32.to_le_bytes());
        bytes[32..40].copy_from_slice(&(ELF64_HEADER_LEN as u64).to_le_bytes()); // e_phoff
        bytes[52..54].copy_from_slice(&(ELF64_HEADER_LEN as u16).to_le_bytes());
        bytes[54..56].copy_from_slice(&(ELF64_PHDR_LEN as u16).to_le_bytes());
        bytes[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for &(offset, filesz) in segments {
            let mut phdr = vec![0u8; ELF64_PHDR_LEN as usize];
            phdr[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            phdr[8..16].copy_from_slice(&offset.to_le_bytes());
            phdr[32..40].copy_from_slice(&filesz.to_le_bytes());
            phdr[40..48].copy_from_slice(&filesz.to_le_bytes());
            bytes.extend_from_slice(&phdr);
        }
        bytes
    }

    #[test]
    fn extent_is_end_of_last_segment() {
        let headers = core_headers(&[(0x1000, 0x2000), (0x3000, 0x500)]);
        let mut extent = CoreExtent::default();
        extent.observe(&headers).unwrap();
        assert_eq!(extent.limit(), 0x3500);
        assert!(extent.is_described());
    }

    #[test]
    fn headers_end_covers_the_notes() {
        let mut headers = core_headers(&[(0x100, 0x300), (0x1000, 0x2000)]);
        // The first program header becomes the PT_NOTE segment.
        headers[ELF64_HEADER_LEN..ELF64_HEADER_LEN + 4].copy_from_slice(&4u32.to_le_bytes());
        let mut extent = CoreExtent::default();
        extent.observe(&headers).unwrap();
        assert_eq!(extent.limit(), 0x3000);
        assert_eq!(extent.headers_end(), Some(0x400));
    }

    #[test]
    fn extent_waits_for_the_table() {
        let headers = core_headers(&[(0x1000, 0x2000), (0x8000, 0x1000)]);
        let mut extent = CoreExtent::default();
        for byte in headers.chunks(7) {
            assert!(!extent.is_described());
            extent.observe(byte).unwrap();
        }
        assert_eq!(extent.limit(), 0x9000);
    }

    #[test]
    fn overflowing_segment_gives_fixed_cap() {
        let headers = core_headers(&[(u64::MAX - 4, 0x100)]);
        let mut extent = CoreExtent::default();
        extent.observe(&headers).unwrap();
        assert_eq!(extent.limit(), MAX_DECOMPRESSED_LEN);
    }

    #[test]
    fn huge_segment_is_capped() {
        let headers = core_headers(&[(0x1000, 1 << 50)]);
        let mut extent = CoreExtent::default();
        extent.observe(&headers).unwrap();
        assert_eq!(extent.limit(), MAX_DECOMPRESSED_LEN);
    }

    #[test]
    fn text_is_not_elf() {
        let mut extent = CoreExtent::default();
        let error = extent.observe(b"hello world\n").unwrap_err();
        let NotElf::Magic(found) = error else {
            panic!("{error:?}");
        };
        assert_eq!(
            found,
            "68 65 6c 6c 6f 20 77 6f 72 6c 64 0a (\"hello world.\")"
        );
    }

    #[test]
    fn zeros_are_not_elf() {
        let mut extent = CoreExtent::default();
        let error = extent.observe(&[0u8; 4096]).unwrap_err();
        assert!(matches!(error, NotElf::Magic(found) if found.starts_with("00 00 00 00")));
    }

    #[test]
    fn elf32_is_rejected() {
        let mut extent = CoreExtent::default();
        let error = extent.observe(b"\x7fELF\x01\x01\x01\0").unwrap_err();
        assert_eq!(error, NotElf::Class(1));
    }

    #[test]
    fn short_stream_checks_what_it_has() {
        let mut extent = CoreExtent::default();
        extent.observe(b"\x7fEL").unwrap();
        assert_eq!(extent.finish(), Ok(()));
        let mut extent = CoreExtent::default();
        assert!(extent.observe(b"\x7fX").is_err());
    }
}
