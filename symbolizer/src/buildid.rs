//! Build IDs: the Go build ID and the GNU build ID of an ELF file, used to
//! check that a core and a binary belong together.
//!
//! The Go linker writes the Go build ID (`actionID/.../contentID`, the value
//! `go tool buildid` prints) as an ELF note named `Go\0\0` of type 4 in
//! `.note.go.buildid`, inside a `PT_NOTE` segment in the first page. Other
//! object formats carry it as the text `\xff Go build ID: "..."\n \xff` near
//! the start of text, which is read as a fallback. The GNU build ID (note
//! `GNU\0` of type `NT_GNU_BUILD_ID`) comes from the host linker with
//! external linking, and from the Go linker itself since Go 1.24.
//!
//! When Go 1.24 and later link internally, `.note.gnu.build-id` lies in the
//! first page but outside any `PT_NOTE` segment, so only the section headers
//! reach it. The first page of such a binary in a core yields the Go build ID
//! alone.
//!
//! This module reads notes only; matching a core to a binary is the core
//! reader's job.

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, NoteIterator, ProgramHeader, SectionHeader};
use object::Endianness;
use serde::{Serialize, Serializer};

const TRACE_TARGET: &str = "symbolizer::buildid";

/// The name of the note holding the Go build ID, padding included.
const GO_NOTE_NAME: &[u8] = b"Go\0\0";
/// The note type of the Go build ID (`ELF_NOTE_GOBUILDID_TAG` in the Go linker).
const GO_BUILD_ID_NOTE_TYPE: elf::NoteType = elf::NoteType(4);
/// The name of GNU notes, terminating NUL included.
const GNU_NOTE_NAME: &[u8] = b"GNU\0";
/// The longest Go build ID accepted. Go writes four 20-character hashes and
/// three slashes (83 bytes); older toolchains wrote two 32-byte hashes.
const MAX_GO_BUILD_ID_LEN: usize = 1024;
/// The longest GNU build ID accepted; linkers write 16 (md5/uuid) or 20 (sha1) bytes.
const MAX_GNU_BUILD_ID_LEN: usize = 64;
/// How much of the file is searched for the text form, as `go tool buildid` does.
const TEXT_FORM_SEARCH_LEN: usize = 32 << 10;
const TEXT_FORM_PREFIX: &[u8] = b"\xff Go build ID: \"";
const TEXT_FORM_SUFFIX: &[u8] = b"\"\n \xff";

/// A Go build ID, such as `mXguobfy.../IjQkhVaM.../eu3jpFYs.../v7zpuu2k...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct GoBuildId(pub String);

impl std::fmt::Display for GoBuildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A GNU build ID: raw bytes, shown in lowercase hex as `readelf -n` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GnuBuildId(pub Vec<u8>);

impl std::fmt::Display for GnuBuildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for GnuBuildId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The kind of place a build ID was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdSource {
    /// A note in a `PT_NOTE` segment.
    Segment,
    /// A note in an `SHT_NOTE` section outside every `PT_NOTE` segment.
    Section,
    /// The `\xff Go build ID: "..."` text near the start of the file.
    Text,
}

/// The build IDs of one ELF file. Either may be missing: Go binaries linked
/// internally before Go 1.24 have no GNU build ID, and C binaries have no Go
/// build ID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildIds {
    pub go: Option<GoBuildId>,
    #[serde(skip)]
    pub go_source: Option<IdSource>,
    pub gnu: Option<GnuBuildId>,
    #[serde(skip)]
    pub gnu_source: Option<IdSource>,
}

/// A build ID note that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BuildIdError {
    #[error("invalid ELF header or program headers")]
    Header(#[source] object::read::Error),
    #[error("invalid note in {container} at file offset {file_offset:#x}")]
    Note {
        container: String,
        file_offset: u64,
        #[source]
        source: object::read::Error,
    },
    #[error("{container} ({size:#x} bytes at file offset {file_offset:#x}) runs past the end of the file")]
    OutsideFile {
        container: String,
        file_offset: u64,
        size: u64,
    },
    #[error("{kind} build ID note at file offset {file_offset:#x} is {length} bytes long, more than the {max} accepted")]
    TooLong {
        kind: &'static str,
        file_offset: u64,
        length: usize,
        max: usize,
    },
    #[error("Go build ID note at file offset {file_offset:#x} is not UTF-8 text")]
    NotText { file_offset: u64 },
    #[error("Go build ID text at file offset {file_offset:#x} has no closing quote")]
    UnterminatedText { file_offset: u64 },
}

/// Build IDs, with the notes that could not be read on the way.
#[derive(Debug, Default)]
pub struct BuildIdReport {
    pub ids: BuildIds,
    /// Damaged notes that were skipped; the IDs found elsewhere still hold.
    pub damaged: Vec<BuildIdError>,
}

/// Reads the build IDs of a whole ELF file: notes in `PT_NOTE` segments,
/// then notes in `SHT_NOTE` sections for an ID still missing, then the
/// text form in the first 32 KiB for a missing Go build ID.
pub fn read(elf: &ElfFile64<'_>) -> BuildIdReport {
    let endian = elf.endian();
    let data = elf.data();
    let mut report = BuildIdReport::default();

    for (index, header) in elf.elf_program_headers().iter().enumerate() {
        if header.p_type(endian) != elf::PT_NOTE {
            continue;
        }
        let container = Container {
            name: format!("PT_NOTE segment {index}"),
            file_offset: header.p_offset(endian),
            align: header.p_align(endian),
            source: IdSource::Segment,
        };
        match header.data(endian, data) {
            Ok(bytes) => scan_container(Ok(bytes), endian, container, &mut report),
            Err(()) => report.damaged.push(BuildIdError::OutsideFile {
                container: container.name,
                file_offset: container.file_offset,
                size: header.p_filesz(endian),
            }),
        }
    }

    if report.ids.go.is_none() || report.ids.gnu.is_none() {
        let sections = elf.elf_section_table();
        for (index, header) in sections.iter().enumerate() {
            if header.sh_type(endian) != elf::SHT_NOTE {
                continue;
            }
            let name = sections
                .section_name(endian, header)
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let container = Container {
                name: format!("section {index} ({name})"),
                file_offset: header.sh_offset(endian),
                align: header.sh_addralign(endian),
                source: IdSource::Section,
            };
            let bytes = header.data(endian, data);
            scan_container(bytes, endian, container, &mut report);
        }
    }

    if report.ids.go.is_none() {
        let prefix = data
            .get(..TEXT_FORM_SEARCH_LEN.min(data.len()))
            .unwrap_or_default();
        match find_text_form(prefix) {
            Ok(Some(id)) => {
                report.ids.go = Some(id);
                report.ids.go_source = Some(IdSource::Text);
            }
            Ok(None) => {}
            Err(err) => report.damaged.push(err),
        }
    }

    log_damage(&report);
    report
}

/// Reads the build IDs from the start of an ELF image as a core stores it
/// (usually its first page). Only notes that `PT_NOTE` program headers
/// point to, and that lie wholly inside `bytes`, are read: section headers
/// sit at the end of the file, out of reach.
///
/// Fails only when the ELF header or the program header table is not in
/// `bytes` or is invalid.
pub fn read_from_image_prefix(bytes: &[u8]) -> Result<BuildIdReport, BuildIdError> {
    let header = elf::FileHeader64::<Endianness>::parse(bytes).map_err(BuildIdError::Header)?;
    let endian = header.endian().map_err(BuildIdError::Header)?;
    let program_headers = header
        .program_headers(endian, bytes)
        .map_err(BuildIdError::Header)?;
    let mut report = BuildIdReport::default();
    for (index, program_header) in program_headers.iter().enumerate() {
        if program_header.p_type(endian) != elf::PT_NOTE {
            continue;
        }
        let file_offset = program_header.p_offset(endian);
        let end = file_offset.checked_add(program_header.p_filesz(endian));
        if end.is_none_or(|end| end > bytes.len() as u64) {
            tracing::debug!(
                target: TRACE_TARGET,
                index,
                file_offset,
                available = bytes.len(),
                "PT_NOTE segment lies outside the bytes given; skipped"
            );
            continue;
        }
        let container = Container {
            name: format!("PT_NOTE segment {index}"),
            file_offset,
            align: program_header.p_align(endian),
            source: IdSource::Segment,
        };
        // The range was checked against `bytes` above.
        if let Ok(notes) = program_header.data(endian, bytes) {
            scan_container(Ok(notes), endian, container, &mut report);
        }
    }
    log_damage(&report);
    Ok(report)
}

/// A note segment or section, for messages and for the ID's source.
struct Container {
    name: String,
    file_offset: u64,
    align: u64,
    source: IdSource,
}

/// Records the first Go and GNU build ID among the notes in `bytes`.
fn scan_container(
    bytes: Result<&[u8], object::read::Error>,
    endian: Endianness,
    container: Container,
    report: &mut BuildIdReport,
) {
    let damaged = |source| BuildIdError::Note {
        container: container.name.clone(),
        file_offset: container.file_offset,
        source,
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(source) => return report.damaged.push(damaged(source)),
    };
    let mut notes =
        match NoteIterator::<elf::FileHeader64<Endianness>>::new(endian, container.align, bytes) {
            Ok(notes) => notes,
            Err(source) => return report.damaged.push(damaged(source)),
        };
    // The iterator stops after its first error, so the loop ends.
    loop {
        let note = match notes.next() {
            Ok(Some(note)) => note,
            Ok(None) => break,
            Err(source) => {
                report.damaged.push(damaged(source));
                break;
            }
        };
        let desc = note.desc();
        // Both slices borrow `bytes`, so the difference is the descriptor's offset in it.
        let desc_offset = (desc.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize) as u64;
        let file_offset = container.file_offset.saturating_add(desc_offset);
        let name = note.name_bytes();
        let n_type = note.n_type(endian);
        if name == GO_NOTE_NAME && n_type == GO_BUILD_ID_NOTE_TYPE && report.ids.go.is_none() {
            match go_build_id(desc, file_offset) {
                Ok(id) => {
                    report.ids.go = Some(id);
                    report.ids.go_source = Some(container.source);
                }
                Err(err) => report.damaged.push(err),
            }
        } else if name == GNU_NOTE_NAME
            && n_type == elf::NT_GNU_BUILD_ID
            && report.ids.gnu.is_none()
        {
            if desc.len() > MAX_GNU_BUILD_ID_LEN {
                report.damaged.push(BuildIdError::TooLong {
                    kind: "GNU",
                    file_offset,
                    length: desc.len(),
                    max: MAX_GNU_BUILD_ID_LEN,
                });
            } else {
                report.ids.gnu = Some(GnuBuildId(desc.to_vec()));
                report.ids.gnu_source = Some(container.source);
            }
        }
    }
}

fn go_build_id(desc: &[u8], file_offset: u64) -> Result<GoBuildId, BuildIdError> {
    if desc.len() > MAX_GO_BUILD_ID_LEN {
        return Err(BuildIdError::TooLong {
            kind: "Go",
            file_offset,
            length: desc.len(),
            max: MAX_GO_BUILD_ID_LEN,
        });
    }
    let text = std::str::from_utf8(desc).map_err(|_| BuildIdError::NotText { file_offset })?;
    Ok(GoBuildId(text.to_owned()))
}

/// Finds the text form of the Go build ID. The ID between the quotes is a
/// Go string literal; the linker writes it without escapes.
fn find_text_form(bytes: &[u8]) -> Result<Option<GoBuildId>, BuildIdError> {
    let Some(start) = find(bytes, TEXT_FORM_PREFIX) else {
        return Ok(None);
    };
    let file_offset = start as u64;
    let content_start = start + TEXT_FORM_PREFIX.len();
    let content = bytes.get(content_start..).unwrap_or_default();
    let end =
        find(content, TEXT_FORM_SUFFIX).ok_or(BuildIdError::UnterminatedText { file_offset })?;
    let id = content.get(..end).unwrap_or_default();
    go_build_id(id, file_offset).map(Some)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn log_damage(report: &BuildIdReport) {
    for err in &report.damaged {
        tracing::debug!(target: TRACE_TARGET, error = %err, "skipped a damaged build ID note");
    }
}

#[cfg(test)]
mod tests;
