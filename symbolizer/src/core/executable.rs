//! The crashed program's executable as the core shows it: which NT_FILE
//! mapping it is, where it was loaded, and its build IDs.
//!
//! The executable is the mapped file containing `AT_ENTRY` (or, failing
//! that, `AT_PHDR`). Its ELF header and notes are read from the core's own
//! copy of its first page, which the kernel dumps for every mapped ELF file
//! under the default `coredump_filter`. The build IDs therefore describe the
//! program that crashed, even when the file on disk has since been replaced.
//! Parsing the executable's symbols and pclntab is left to [`crate`]'s
//! binary readers.

use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{FileHeader, NoteIterator, ProgramHeader};
use object::Endianness;

use super::files::{Backing, MappedFile};
use super::memory::Memory;
use super::notes::Auxv;

/// Maximum number of program headers read from an ELF image. Go binaries have
/// fewer than 15; C programs rarely more than 20.
pub const MAX_PROGRAM_HEADERS: usize = 256;

/// Maximum size of a PT_NOTE segment read for build IDs. Build-ID notes are a
/// few dozen bytes, and note segments of executables are well under a page.
const MAX_NOTE_SEGMENT: u64 = 64 * 1024;

/// Maximum length of a build ID kept. Go build IDs are four base64 hashes
/// joined by `/` (about 90 bytes); GNU build IDs are 20 bytes (SHA-1).
const MAX_BUILD_ID: usize = 1024;

/// `n_type` of the Go build ID note (`.note.go.buildid`, owner `Go`).
const NT_GO_BUILD_ID: u32 = 4;

/// Size of the 64-bit ELF file header.
const ELF64_HEADER_SIZE: usize = 64;

/// Size of a 64-bit ELF program header.
const ELF64_PROGRAM_HEADER_SIZE: usize = 56;

/// Build IDs found in an ELF image's notes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildIds {
    /// The Go build ID text (`actionID/.../contentID`).
    pub go: Option<String>,
    /// The GNU build ID bytes (`NT_GNU_BUILD_ID`).
    pub gnu: Option<Vec<u8>>,
}

impl BuildIds {
    pub fn is_empty(&self) -> bool {
        self.go.is_none() && self.gnu.is_none()
    }

    /// Returns the GNU build ID in the lowercase hex that `file` and
    /// `readelf` print.
    pub fn gnu_hex(&self) -> Option<String> {
        self.gnu
            .as_ref()
            .map(|id| id.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Returns both IDs as (core, file) texts when a kind of ID present in
    /// both differs. A kind missing from either side proves nothing.
    pub(crate) fn conflict_with(&self, other: &BuildIds) -> Option<(String, String)> {
        if let (Some(a), Some(b)) = (&self.go, &other.go) {
            if a != b {
                return Some((format!("Go {a}"), format!("Go {b}")));
            }
        }
        if let (Some(a), Some(b)) = (self.gnu_hex(), other.gnu_hex()) {
            if a != b {
                return Some((format!("GNU {a}"), format!("GNU {b}")));
            }
        }
        None
    }
}

/// The crashed program's executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executable {
    /// Path when the core was written, from NT_FILE.
    pub path: PathBuf,
    /// Whether the file had been unlinked or replaced while the program ran.
    pub deleted: bool,
    /// Address at which file offset 0 is mapped (the ELF header).
    pub base: u64,
    /// `AT_ENTRY`: the run-time entry point.
    pub entry: Option<u64>,
    /// `e_type` of the ELF header in the core: `ET_EXEC` (2) or `ET_DYN` (3)
    /// for a PIE.
    pub elf_type: Option<u16>,
    /// `e_entry` of the ELF header in the core (the link-time entry point).
    pub elf_entry: Option<u64>,
    /// Load bias: run-time address minus link-time address. 0 for a
    /// non-PIE executable.
    pub load_bias: Option<u64>,
    /// Build IDs read from the core's copy of the executable's first page.
    pub build_ids: BuildIds,
    /// Source of the executable's pages that the core lacks.
    pub backing: Backing,
}

impl Executable {
    /// Returns true when the executable is position-independent.
    pub fn is_pie(&self) -> Option<bool> {
        self.elf_type.map(|t| t == elf::ET_DYN.0)
    }
}

/// Finds the executable's NT_FILE path: the mapping that contains
/// `AT_ENTRY`, else the one that contains `AT_PHDR`.
pub(crate) fn find_executable_path<'a>(
    auxv: Option<&Auxv>,
    mappings: &'a [MappedFile],
) -> Option<&'a MappedFile> {
    let auxv = auxv?;
    let by_address = |addr: Option<u64>| addr.and_then(|a| mappings.iter().find(|m| m.contains(a)));
    by_address(auxv.entry()).or_else(|| by_address(auxv.phdr()))
}

/// Describes the executable whose mapping is `exe`, reading its header and
/// notes from the core.
pub(crate) fn describe(
    memory: &Memory,
    auxv: Option<&Auxv>,
    exe: &MappedFile,
    mappings: &[MappedFile],
) -> Executable {
    let base = file_start_address(&exe.path, mappings).unwrap_or(exe.start);
    let header = read_elf_header(memory, base);
    let entry = auxv.and_then(Auxv::entry);
    let elf_entry = header.as_ref().map(|h| h.entry);
    let elf_type = header.as_ref().map(|h| h.elf_type);
    let load_bias = match (entry, elf_entry, elf_type) {
        (Some(entry), Some(elf_entry), _) => entry.checked_sub(elf_entry),
        (None, _, Some(t)) if t == elf::ET_EXEC.0 => Some(0),
        _ => None,
    };
    if load_bias.is_none() {
        tracing::debug!(target: "gocrash::core", path = %exe.path.display(), "no load bias: AT_ENTRY or the ELF header is missing");
    }
    let build_ids = header
        .as_ref()
        .map(|h| build_ids_in_memory(memory, h, &exe.path, mappings))
        .unwrap_or_default();
    Executable {
        path: exe.path.clone(),
        deleted: exe.deleted,
        base,
        entry,
        elf_type,
        elf_entry,
        load_bias,
        build_ids,
        backing: Backing::NotOpened,
    }
}

/// Reads the build IDs of the mapped ELF file `path` from the core's copy of
/// its first page. Empty when that page is not in the core or is not ELF.
pub(crate) fn mapped_build_ids(memory: &Memory, path: &Path, mappings: &[MappedFile]) -> BuildIds {
    let header = file_start_address(path, mappings).and_then(|base| read_elf_header(memory, base));
    match header {
        Some(header) => build_ids_in_memory(memory, &header, path, mappings),
        None => BuildIds::default(),
    }
}

/// Returns the address where file offset 0 of `path` is mapped.
pub(crate) fn file_start_address(path: &Path, mappings: &[MappedFile]) -> Option<u64> {
    mappings
        .iter()
        .find(|m| m.path == path && m.file_offset == 0)
        .map(|m| m.start)
}

/// Returns the address where `offset` of the file `path` is mapped.
fn address_of_file_offset(path: &Path, offset: u64, mappings: &[MappedFile]) -> Option<u64> {
    mappings.iter().filter(|m| m.path == path).find_map(|m| {
        let within = offset.checked_sub(m.file_offset)?;
        (within < m.end.saturating_sub(m.start)).then(|| m.start + within)
    })
}

/// The fields of an ELF header this module uses.
struct ElfHeaderFields {
    elf_type: u16,
    entry: u64,
    phoff: u64,
    phnum: usize,
}

fn read_elf_header(memory: &Memory, base: u64) -> Option<ElfHeaderFields> {
    let mut bytes = [0u8; ELF64_HEADER_SIZE];
    if let Err(error) = memory.read_dumped(base, &mut bytes) {
        tracing::debug!(target: "gocrash::core", %error, "the executable's ELF header is not in the core");
        return None;
    }
    let header = elf::FileHeader64::<Endianness>::parse(&bytes[..]).ok()?;
    let endian = header.endian().ok()?;
    Some(ElfHeaderFields {
        elf_type: header.e_type(endian).0,
        entry: header.e_entry(endian),
        phoff: header.e_phoff(endian),
        phnum: usize::from(header.e_phnum(endian)).min(MAX_PROGRAM_HEADERS),
    })
}

/// Reads the build IDs of the mapped ELF file `path` from the core's copy of
/// its program headers and note segments.
fn build_ids_in_memory(
    memory: &Memory,
    header: &ElfHeaderFields,
    path: &Path,
    mappings: &[MappedFile],
) -> BuildIds {
    let mut ids = BuildIds::default();
    let Some(phdr_addr) = address_of_file_offset(path, header.phoff, mappings) else {
        return ids;
    };
    let mut table = vec![0u8; header.phnum * ELF64_PROGRAM_HEADER_SIZE];
    if let Err(error) = memory.read_dumped(phdr_addr, &mut table) {
        tracing::debug!(target: "gocrash::core", %error, "program headers of {} are not in the core", path.display());
        return ids;
    }
    let Ok((phdrs, _)) =
        object::pod::slice_from_bytes::<elf::ProgramHeader64<Endianness>>(&table, header.phnum)
    else {
        return ids;
    };
    let endian = memory.endian();
    for phdr in phdrs.iter().filter(|p| p.p_type(endian) == elf::PT_NOTE) {
        let size = phdr.p_filesz(endian).min(MAX_NOTE_SEGMENT);
        let Some(addr) = address_of_file_offset(path, phdr.p_offset(endian), mappings) else {
            continue;
        };
        let mut notes = vec![0u8; size as usize];
        match memory.read_dumped(addr, &mut notes) {
            Ok(()) => collect_build_ids(&notes, phdr.p_align(endian), endian, &mut ids),
            Err(error) => {
                tracing::debug!(target: "gocrash::core", %error, "a note segment of {} is not in the core", path.display())
            }
        }
    }
    ids
}

/// Reads the build IDs of an ELF file from its note segments.
pub(crate) fn build_ids_in_file(bytes: &[u8]) -> BuildIds {
    let mut ids = BuildIds::default();
    let Ok(header) = elf::FileHeader64::<Endianness>::parse(bytes) else {
        return ids;
    };
    let Ok(endian) = header.endian() else {
        return ids;
    };
    let Ok(phdrs) = header.program_headers(endian, bytes) else {
        return ids;
    };
    for phdr in phdrs.iter().take(MAX_PROGRAM_HEADERS) {
        if let Ok(Some(mut notes)) = phdr.notes(endian, bytes) {
            while let Ok(Some(note)) = notes.next() {
                record_build_id(note.name(), note.n_type(endian).0, note.desc(), &mut ids);
            }
        }
    }
    ids
}

fn collect_build_ids(notes: &[u8], align: u64, endian: Endianness, ids: &mut BuildIds) {
    let align = if align == 8 { 8 } else { 4 };
    let Ok(mut iter) = NoteIterator::<elf::FileHeader64<Endianness>>::new(endian, align, notes)
    else {
        return;
    };
    while let Ok(Some(note)) = iter.next() {
        record_build_id(note.name(), note.n_type(endian).0, note.desc(), ids);
    }
}

fn record_build_id(name: &[u8], kind: u32, desc: &[u8], ids: &mut BuildIds) {
    let desc = desc.get(..MAX_BUILD_ID).unwrap_or(desc);
    if name == elf::ELF_NOTE_GO && kind == NT_GO_BUILD_ID && ids.go.is_none() {
        let text = desc.split(|&b| b == 0).next().unwrap_or(desc);
        ids.go = Some(String::from_utf8_lossy(text).into_owned());
    } else if name == elf::ELF_NOTE_GNU && kind == elf::NT_GNU_BUILD_ID.0 && ids.gnu.is_none() {
        ids.gnu = Some(desc.to_vec());
    }
}
