//! An ELF executable opened for symbolization: its bytes (memory-mapped),
//! the `object` ELF view, its loaded segments, the load bias of a PIE, and
//! its `.gopclntab`.
//!
//! Opening reads the ELF headers only. A file whose section headers or
//! symbol table `object` rejects (a truncated copy, a corrupt `sh_size`) is
//! opened from a private copy without its symbol tables, or without any
//! section headers, so that the program headers still locate the pclntab. The pclntab is located on first use,
//! by section name, else by symbol, else by searching the loaded segments
//! for its header (for files whose section headers were removed), and the
//! result, error included, is kept. C code is left to [`crate::dwarf`];
//! [`Binary::c_symbolizer`] builds one over the same bytes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use object::read::elf::{ElfFile64, ProgramHeader, SectionHeader};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::dwarf::CSymbolizer;
use crate::pclntab::format::EntryEncoding;
use crate::pclntab::{moduledata, Memory, Pclntab, PclntabError, Segment};

mod repair;

const TRACE_TARGET: &str = "symbolizer::binary";

/// Section names the Go linker gives the pclntab: `.gopclntab`, and
/// `.data.rel.ro.gopclntab` in PIE and shared builds.
const PCLNTAB_SECTIONS: [&str; 2] = [".gopclntab", ".data.rel.ro.gopclntab"];

/// Names of the symbol for `go:func.*`: `go:func.*` from Go 1.20, `go.func.*` before.
const GOFUNC_SYMBOLS: [&str; 2] = ["go:func.*", "go.func.*"];

/// An error opening a binary or reading its pclntab.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BinaryError {
    #[error("{path}: cannot open")]
    Open {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A directory, FIFO, device or socket: opening a FIFO would block and a
    /// device such as /dev/zero never ends.
    #[error("{path}: not a regular file")]
    NotRegularFile { path: PathBuf },
    #[error("{path}: not a 64-bit ELF file")]
    Elf {
        path: PathBuf,
        #[source]
        source: object::read::Error,
    },
    #[error(
        "{path}: invalid {structure} at offset {offset:#x} (the file has {len:#x} bytes), and \
         the file is unusable without it"
    )]
    Damaged {
        path: PathBuf,
        structure: &'static str,
        offset: u64,
        len: u64,
        #[source]
        source: object::read::Error,
    },
    #[error(
        "{path} is cut: its program headers describe {expected:#x} bytes but the file has \
         {len:#x}, and no pclntab was found in the part that is there"
    )]
    TruncatedNoPclntab {
        path: PathBuf,
        expected: u64,
        len: u64,
    },
    #[error("{path}: not a Go binary: no .gopclntab section, no runtime.pclntab symbol, and no pclntab header in the loaded segments")]
    NoPclntab { path: PathBuf },
    #[error("{path}: invalid pclntab in {location}")]
    Pclntab {
        path: PathBuf,
        location: String,
        #[source]
        source: PclntabError,
    },
}

/// The source of a Go 1.18+ table's text start, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextStartSource {
    /// The `runtime.text` symbol.
    Symbol,
    /// `moduledata.text`, found by searching the data for the table's address.
    ModuleData,
    /// The pclntab header's word (Go 1.18 to 1.25; Go 1.26 writes 0 there).
    Header,
    /// The `.text` section: wrong by the C startup code when the binary was
    /// linked externally (cgo), where `runtime.text` follows it.
    TextSection,
    /// Function entries are absolute addresses (Go 1.17 and earlier).
    NotNeeded,
}

/// The pclntab's location and the addresses it was given.
#[derive(Debug, Clone)]
pub struct PclntabInfo {
    /// The section, symbol or segment the table was read from.
    pub location: String,
    pub vaddr: u64,
    pub text_start_source: TextStartSource,
    /// Whether funcdata (inline trees) can be located.
    pub has_funcdata: bool,
}

enum Backing {
    Map(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(map) => map,
            Backing::Owned(bytes) => bytes,
        }
    }
}

/// A Go (or any ELF64) executable.
pub struct Binary {
    // The fields borrowing `backing` come first so they drop before it.
    pclntab: OnceLock<Result<(Pclntab<'static>, PclntabInfo), BinaryError>>,
    elf: ElfFile64<'static>,
    memory: Memory<'static>,
    path: PathBuf,
    cut_short: Option<CutShort>,
    backing: Backing,
}

impl std::fmt::Debug for Binary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binary")
            .field("path", &self.path)
            .field("len", &self.data().len())
            .finish_non_exhaustive()
    }
}

/// A binary shorter than its section headers claim, as a copy cut short is: the
/// names, symbols and DWARF of the sections past its end are unreadable,
/// which otherwise shows only as missing C symbols or build information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutShort {
    /// The file's length.
    pub file_len: u64,
    /// The end of the last section with contents in the file.
    pub sections_end: u64,
}

impl std::fmt::Display for CutShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the binary is shorter than its sections ({} bytes, sections up to {:#x}): \
             a copy cut short? Section names, symbols and DWARF past its end are unavailable",
            self.file_len, self.sections_end
        )
    }
}

/// Returns how far the sections lie past the end of a file of `file_len`
/// bytes, or `None` when they all fit.
fn cut_short(elf: &ElfFile64<'_>, file_len: u64) -> Option<CutShort> {
    let endian = elf.endian();
    let sections_end = elf
        .elf_section_table()
        .iter()
        .filter(|section| section.sh_type(endian) != object::elf::SHT_NOBITS)
        .map(|section| {
            section
                .sh_offset(endian)
                .saturating_add(section.sh_size(endian))
        })
        .max()
        .unwrap_or(0);
    (sections_end > file_len).then_some(CutShort {
        file_len,
        sections_end,
    })
}

impl Binary {
    /// Memory-maps and opens the ELF file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Binary, BinaryError> {
        let path = path.as_ref().to_path_buf();
        let open_error = |source| BinaryError::Open {
            path: path.clone(),
            source: Arc::new(source),
        };
        // Checked before opening, because opening a FIFO blocks until a writer
        // appears, and again on the open file in case the path was replaced.
        let not_regular = || BinaryError::NotRegularFile { path: path.clone() };
        if !std::fs::metadata(&path).map_err(open_error)?.is_file() {
            return Err(not_regular());
        }
        let file = std::fs::File::open(&path).map_err(open_error)?;
        if !file.metadata().map_err(open_error)?.is_file() {
            return Err(not_regular());
        }
        // SAFETY: the map is read-only. Another process truncating or
        // rewriting the file while it is mapped would change or fault these
        // bytes. That is the usual contract of reading a mapped file, and
        // tools that install executables do not rewrite them in place.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(open_error)?;
        Binary::from_backing(path, Backing::Map(map))
    }

    /// Opens an ELF file already in memory; `path` names it in errors.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Binary, BinaryError> {
        Binary::from_backing(path.into(), Backing::Owned(bytes))
    }

    fn from_backing(path: PathBuf, backing: Backing) -> Result<Binary, BinaryError> {
        Binary::from_backing_with(path, backing, true)
    }

    fn from_backing_with(
        path: PathBuf,
        backing: Backing,
        may_repair: bool,
    ) -> Result<Binary, BinaryError> {
        let bytes = backing.bytes();
        // SAFETY: the slice points into `backing`'s heap buffer or mapping,
        // which does not move when `backing` moves and lives until `Binary`
        // drops. Every view made from it is stored in a field declared before
        // `backing` (so dropped first) and is handed out only with a lifetime
        // tied to `&self`.
        let bytes: &'static [u8] =
            unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) };
        let elf = match ElfFile64::parse(bytes) {
            Ok(elf) => elf,
            Err(source) if may_repair => {
                let repaired = repair::without_bad_sections(&path, bytes, source)?;
                return Binary::from_backing_with(path, Backing::Owned(repaired), false);
            }
            Err(source) => return Err(BinaryError::Elf { path, source }),
        };
        let cut_short = cut_short(&elf, bytes.len() as u64);
        if let Some(cut) = cut_short {
            tracing::debug!(target: TRACE_TARGET, path = %path.display(), %cut);
        }
        let memory = Memory::new(load_segments(&elf));
        Ok(Binary {
            pclntab: OnceLock::new(),
            elf,
            memory,
            path,
            cut_short,
            backing,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns how the file is shorter than its section headers claim, if it is.
    pub fn cut_short(&self) -> Option<CutShort> {
        self.cut_short
    }

    /// Reports whether the file contains every section and segment its headers
    /// describe, as a copy cut short does not.
    pub fn is_whole(&self) -> bool {
        self.cut_short.is_none() && self.data().len() as u64 >= self.described_len()
    }

    /// Returns the whole file.
    pub fn data(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// Returns the `object` ELF view.
    pub fn elf<'a>(&'a self) -> &'a ElfFile64<'a> {
        &self.elf
    }

    /// Returns the loaded (`PT_LOAD`) segments' file bytes by address.
    pub fn memory<'a>(&'a self) -> &'a Memory<'a> {
        &self.memory
    }

    /// Returns the loaded segments, sorted by address.
    pub fn segments<'a>(&'a self) -> &'a [Segment<'a>] {
        self.memory.segments()
    }

    /// Returns `len` bytes at link-time address `addr` from the file's
    /// loaded segments, or `None` unless one segment's file bytes hold them
    /// all (`.bss` has none).
    pub fn read_at_vaddr(&self, addr: u64, len: u64) -> Option<&[u8]> {
        self.memory.read(addr, len)
    }

    /// Returns whether the file is position-independent (`ET_DYN`): its
    /// runtime addresses are its link-time addresses plus a load bias.
    pub fn is_pie(&self) -> bool {
        self.elf.elf_header().e_type.get(self.elf.endian()) == object::elf::ET_DYN
    }

    /// Returns the page-aligned link-time address of the first loaded
    /// segment: where a loader maps the file's start.
    pub fn link_base(&self) -> u64 {
        self.segments()
            .first()
            .map_or(0, |segment| segment.vaddr & !0xfff)
    }

    /// Returns the load bias for a file whose first segment was mapped at
    /// `base` (as `/proc/PID/maps` or a core's file mappings show it), or
    /// `None` when `base` is below the link base.
    pub fn load_bias_for_base(&self, base: u64) -> Option<u64> {
        base.checked_sub(self.link_base())
    }

    /// Returns the pclntab, locating and checking it on first use.
    pub fn pclntab<'a>(&'a self) -> Result<&'a Pclntab<'a>, BinaryError> {
        match self.pclntab_entry() {
            Ok((tab, _)) => Ok(tab),
            Err(err) => Err(err.clone()),
        }
    }

    /// Returns how the pclntab was found, locating it on first use.
    pub fn pclntab_info(&self) -> Result<&PclntabInfo, BinaryError> {
        match self.pclntab_entry() {
            Ok((_, info)) => Ok(info),
            Err(err) => Err(err.clone()),
        }
    }

    fn pclntab_entry(&self) -> &Result<(Pclntab<'static>, PclntabInfo), BinaryError> {
        self.pclntab.get_or_init(|| self.locate_pclntab())
    }

    /// Builds a DWARF and symbol-table symbolizer over the same bytes, for
    /// addresses the pclntab does not cover (cgo's C code).
    pub fn c_symbolizer<'a>(&'a self) -> CSymbolizer<'a> {
        CSymbolizer::new(self.elf())
    }

    fn locate_pclntab(&self) -> Result<(Pclntab<'static>, PclntabInfo), BinaryError> {
        let symbols = GoSymbols::read(&self.elf);
        let invalid = |location: String, source| BinaryError::Pclntab {
            path: self.path.clone(),
            location,
            source,
        };

        let mut found = None;
        for name in PCLNTAB_SECTIONS {
            if let Some(section) = self.elf.section_by_name(name) {
                match section.data() {
                    Ok(data) => {
                        found = Some((format!("section {name}"), section.address(), data));
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(target: TRACE_TARGET, path = %self.path.display(), section = name, %error, "the pclntab section's header is invalid, so looking for the table by symbol and in the loaded segments");
                    }
                }
            }
        }
        if found.is_none() {
            if let Some(vaddr) = symbols.pclntab {
                if let Some(data) = self.memory.read_to_segment_end(vaddr) {
                    found = Some(("symbol runtime.pclntab".to_owned(), vaddr, data));
                }
            }
        }
        let (location, vaddr, mut tab) = match found {
            Some((location, vaddr, data)) => {
                match Pclntab::parse(data).and_then(|tab| tab.check_tables().map(|()| tab)) {
                    Ok(tab) => (location, vaddr, tab),
                    Err(source) => return Err(invalid(location, source)),
                }
            }
            None => match self.search_segments() {
                Some((vaddr, tab)) => (
                    format!("the segment at 0x{vaddr:x} (found by searching for its header)"),
                    vaddr,
                    tab,
                ),
                None => {
                    let expected = self.described_len();
                    let len = self.data().len() as u64;
                    if expected > len {
                        return Err(BinaryError::TruncatedNoPclntab {
                            path: self.path.clone(),
                            expected,
                            len,
                        });
                    }
                    return Err(BinaryError::NoPclntab {
                        path: self.path.clone(),
                    });
                }
            },
        };
        tab.set_vaddr(vaddr);
        tab.set_memory(self.memory.clone());

        let module = if symbols.text.is_none() || symbols.gofunc.is_none() {
            moduledata::find(&self.memory, &tab, vaddr)
        } else {
            None
        };
        let text_start_source = if tab.format().entry == EntryEncoding::Address {
            TextStartSource::NotNeeded
        } else if let Some(text) = symbols.text {
            tab.set_text_start(text);
            TextStartSource::Symbol
        } else if let Some(module) = module {
            tab.set_text_start(module.text);
            TextStartSource::ModuleData
        } else if let Some(text) = tab.header().text_start {
            tab.set_text_start(text);
            TextStartSource::Header
        } else if let Some(text) = self.elf.section_by_name(".text") {
            tracing::warn!(target: TRACE_TARGET, path = %self.path.display(), "no runtime.text symbol or moduledata; taking .text as the text start, which is wrong for externally linked binaries");
            tab.set_text_start(text.address());
            TextStartSource::TextSection
        } else {
            return Err(invalid(location, PclntabError::NoTextStart));
        };
        if let Some(gofunc) = symbols.gofunc.or(module.and_then(|m| m.gofunc)) {
            tab.set_gofunc(gofunc);
        } else if tab.format().entry == EntryEncoding::TextOffset {
            tracing::warn!(target: TRACE_TARGET, path = %self.path.display(), "go:func.* not found; inlined frames are unavailable");
        }
        tracing::debug!(target: TRACE_TARGET, path = %self.path.display(), %location, format = tab.format().versions, text_start = tab.text_start(), ?text_start_source, "pclntab located");
        let info = PclntabInfo {
            location,
            vaddr,
            text_start_source,
            has_funcdata: tab.has_funcdata(),
        };
        Ok((tab, info))
    }

    /// Returns the end of the last segment's file bytes, as the program
    /// headers describe them.
    fn described_len(&self) -> u64 {
        let endian = self.elf.endian();
        self.elf
            .elf_program_headers()
            .iter()
            .filter_map(|header| header.p_offset(endian).checked_add(header.p_filesz(endian)))
            .max()
            .unwrap_or(0)
    }

    /// Searches the loaded segments, non-executable ones first, for a
    /// pclntab header that passes [`Pclntab::validate`].
    fn search_segments(&self) -> Option<(u64, Pclntab<'static>)> {
        let mut segments: Vec<&Segment<'static>> = self.memory.segments().iter().collect();
        segments.sort_by_key(|segment| segment.executable);
        for segment in segments {
            // The linker aligns the table to the pointer size.
            let skip = (8 - (segment.vaddr % 8) as usize) % 8;
            let Some(data) = segment.data.get(skip..) else {
                continue;
            };
            let mut at = 0usize;
            while let Some(prefix) = data.get(at..at + 8) {
                if prefix[4] == 0
                    && prefix[5] == 0
                    && matches!(prefix[6], 1 | 2 | 4)
                    && matches!(prefix[7], 4 | 8)
                {
                    let vaddr = segment.vaddr + (skip + at) as u64;
                    if let Some(tab) = self.candidate(vaddr, &data[at..]) {
                        return Some((vaddr, tab));
                    }
                }
                at += 8;
            }
        }
        None
    }

    fn candidate(&self, vaddr: u64, data: &'static [u8]) -> Option<Pclntab<'static>> {
        let mut tab = Pclntab::parse(data).ok()?;
        if tab.is_empty() {
            return None;
        }
        // Entries are checked relative to each other, so any text start works here.
        match tab.validate().and_then(|()| tab.check_tables()) {
            Ok(()) => {
                tracing::debug!(target: TRACE_TARGET, path = %self.path.display(), vaddr, "pclntab found by searching the loaded segments");
                tab.set_vaddr(vaddr);
                Some(tab)
            }
            Err(err) => {
                tracing::trace!(target: TRACE_TARGET, vaddr, error = %err, "pclntab magic found but the table is invalid");
                None
            }
        }
    }
}

/// The Go symbols the pclntab needs, when the symbol table has them.
#[derive(Debug, Default)]
struct GoSymbols {
    text: Option<u64>,
    pclntab: Option<u64>,
    gofunc: Option<u64>,
}

impl GoSymbols {
    fn read(elf: &ElfFile64<'_>) -> GoSymbols {
        let mut symbols = GoSymbols::default();
        for symbol in elf.symbols() {
            match symbol.name_bytes() {
                Ok(b"runtime.text") => symbols.text = Some(symbol.address()),
                Ok(b"runtime.pclntab") => symbols.pclntab = Some(symbol.address()),
                Ok(name) if GOFUNC_SYMBOLS.iter().any(|g| g.as_bytes() == name) => {
                    symbols.gofunc = Some(symbol.address())
                }
                _ => {}
            }
        }
        symbols
    }
}

fn load_segments<'data>(elf: &ElfFile64<'data>) -> Vec<Segment<'data>> {
    let endian = elf.endian();
    let file = elf.data();
    elf.elf_program_headers()
        .iter()
        .filter(|header| header.p_type(endian) == object::elf::PT_LOAD)
        .filter_map(|header| {
            let flags = header.p_flags(endian);
            // A truncated file keeps the part of a segment that is there.
            let data = header.data(endian, file).ok().or_else(|| {
                let start = usize::try_from(header.p_offset(endian)).ok()?;
                let size = usize::try_from(header.p_filesz(endian)).ok()?;
                let end = start.saturating_add(size).min(file.len());
                file.get(start..end)
            })?;
            Some(Segment {
                vaddr: header.p_vaddr(endian),
                data,
                executable: flags.contains(object::elf::PF_X),
                writable: flags.contains(object::elf::PF_W),
            })
        })
        .collect()
}
