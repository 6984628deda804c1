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
use object::read::elf::{ElfFile64, FileHeader};
use object::Endianness;

use super::files::{Backing, MappedFile};
use super::memory::Memory;
use super::notes::Auxv;
use crate::buildid::{self, BuildIds};

/// Size of the 64-bit ELF file header.
const ELF64_HEADER_SIZE: usize = 64;

/// Returns both IDs as (core, file) texts when a kind of build ID present on
/// both sides differs. A kind missing from either side proves nothing: the
/// Go 1.27 linker, for one, puts the GNU build ID outside every PT_NOTE, so
/// only the file shows it.
pub(crate) fn build_id_conflict(
    in_core: &BuildIds,
    in_file: &BuildIds,
) -> Option<(String, String)> {
    if let (Some(a), Some(b)) = (&in_core.go, &in_file.go) {
        if a != b {
            return Some((format!("Go {a}"), format!("Go {b}")));
        }
    }
    if let (Some(a), Some(b)) = (&in_core.gnu, &in_file.gnu) {
        if a != b {
            return Some((format!("GNU {a}"), format!("GNU {b}")));
        }
    }
    None
}

pub(crate) fn build_ids_empty(ids: &BuildIds) -> bool {
    ids.go.is_none() && ids.gnu.is_none()
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
    let build_ids = mapped_build_ids(memory, &exe.path, mappings);
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
    let Some(base) = file_start_address(path, mappings) else {
        return BuildIds::default();
    };
    let prefix = match memory.dumped_contiguous_at(base) {
        Ok(prefix) => prefix,
        Err(error) => {
            tracing::debug!(target: "gocrash::core", %error, path = %path.display(), "the first page is not in the core");
            return BuildIds::default();
        }
    };
    match buildid::read_from_image_prefix(prefix) {
        Ok(report) => report.ids,
        Err(error) => {
            tracing::debug!(target: "gocrash::core", %error, path = %path.display(), "no build ID in the core's copy");
            BuildIds::default()
        }
    }
}

/// Returns the address where file offset 0 of `path` is mapped.
pub(crate) fn file_start_address(path: &Path, mappings: &[MappedFile]) -> Option<u64> {
    mappings
        .iter()
        .find(|m| m.path == path && m.file_offset == 0)
        .map(|m| m.start)
}

/// The fields of an ELF header this module uses.
struct ElfHeaderFields {
    elf_type: u16,
    entry: u64,
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
    })
}

/// Reads the build IDs of an ELF file: its notes in segments and sections.
pub(crate) fn build_ids_in_file(bytes: &[u8]) -> BuildIds {
    match ElfFile64::<Endianness>::parse(bytes) {
        Ok(file) => buildid::read(&file).ids,
        Err(error) => {
            tracing::debug!(target: "gocrash::core", %error, "the mapped file is not a 64-bit ELF file");
            BuildIds::default()
        }
    }
}
