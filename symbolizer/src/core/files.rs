//! The files the process had mapped: the NT_FILE table of the core, and the
//! local files opened to supply the pages the kernel did not dump.
//!
//! The kernel leaves most read-only file-backed pages (text, rodata) out of a
//! core, so reading them needs the file itself. This module decodes NT_FILE,
//! opens and memory-maps the files the caller allows (the executable by
//! default), and rejects a file whose build ID differs from the one in the
//! core. Splicing file bytes into the address space is [`super::memory`]'s
//! job.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use object::Endianness;

use super::notes::{ByteReader, NoteError, RawNote};

/// Maximum number of NT_FILE entries read. Linux allows 65530 mappings per
/// process by default (`vm.max_map_count`); this leaves room for hosts that
/// raise it.
pub const MAX_FILE_MAPPINGS: usize = 1 << 20;

/// Suffix the kernel appends to the path of a file unlinked while mapped.
const DELETED_SUFFIX: &[u8] = b" (deleted)";

/// One file-backed mapping of the process, from NT_FILE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    /// First address of the mapping.
    pub start: u64,
    /// Address just past the mapping.
    pub end: u64,
    /// Byte offset in the file of the byte mapped at `start`.
    pub file_offset: u64,
    /// Path of the file when the core was written, without the ` (deleted)`
    /// suffix.
    pub path: PathBuf,
    /// Whether the file had been unlinked (or replaced) while mapped, which
    /// the kernel marks with a ` (deleted)` suffix. The file now at `path`, if
    /// any, is then another file.
    pub deleted: bool,
}

impl MappedFile {
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// The decoded NT_FILE note.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileTable {
    /// Page size the kernel used for the offsets in the note.
    pub page_size: u64,
    pub mappings: Vec<MappedFile>,
}

/// Decodes NT_FILE: a count, the page size, `count` triples of start, end and
/// file offset in pages, then `count` NUL-terminated paths. Returns the
/// entries that could be decoded, with the reason the rest could not.
pub(crate) fn parse_file_note(
    note: &RawNote<'_>,
    endian: Endianness,
) -> (FileTable, Option<NoteError>) {
    let invalid = |reason: String| NoteError::Invalid {
        note: "NT_FILE",
        offset: note.offset,
        reason,
    };
    let mut reader = ByteReader::new(note.desc, endian);
    let (Some(count), Some(page_size)) = (reader.u64(), reader.u64()) else {
        let error = NoteError::TooShort {
            note: "NT_FILE",
            offset: note.offset,
            expected: 16,
            found: note.desc.len(),
        };
        return (FileTable::default(), Some(error));
    };
    let mut table = FileTable {
        page_size,
        mappings: Vec::new(),
    };
    if !page_size.is_power_of_two() {
        return (
            table,
            Some(invalid(format!(
                "page size {page_size:#x} is not a power of two"
            ))),
        );
    }
    if count > MAX_FILE_MAPPINGS as u64 {
        let error = NoteError::TooMany {
            note: "NT_FILE",
            offset: note.offset,
            count,
            limit: MAX_FILE_MAPPINGS,
        };
        return (table, Some(error));
    }
    // The triples must fit before anything is allocated for them.
    let triples_size = count.saturating_mul(24);
    let available = note.desc.len().saturating_sub(16) as u64;
    if triples_size > available {
        let reason =
            format!("{count} entries need {triples_size:#x} bytes, the note has {available:#x}");
        return (table, Some(invalid(reason)));
    }

    let mut ranges = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (Some(start), Some(end), Some(page)) = (reader.u64(), reader.u64(), reader.u64())
        else {
            break;
        };
        ranges.push((start, end, page));
    }
    let names_start = reader.position();
    let mut names = note
        .desc
        .get(names_start..)
        .unwrap_or(&[])
        .split(|&b| b == 0);
    let mut problem = None;
    for (index, (start, end, page)) in ranges.into_iter().enumerate() {
        let Some(name) = names.next().filter(|name| !name.is_empty()) else {
            problem = Some(invalid(format!("{count} entries but only {index} paths")));
            break;
        };
        let Some(file_offset) = page.checked_mul(page_size) else {
            problem = Some(invalid(format!(
                "entry {index}: page offset {page:#x} overflows"
            )));
            continue;
        };
        if end < start {
            problem = Some(invalid(format!(
                "entry {index}: end {end:#x} precedes start {start:#x}"
            )));
            continue;
        }
        let (path, deleted) = match name.strip_suffix(DELETED_SUFFIX) {
            Some(path) => (path, true),
            None => (name, false),
        };
        table.mappings.push(MappedFile {
            start,
            end,
            file_offset,
            path: PathBuf::from(std::ffi::OsStr::from_bytes(path)),
            deleted,
        });
    }
    (table, problem)
}

/// Opens a file the process had mapped, given its NT_FILE entry. It returns
/// `Ok(None)` when the file should not be used (for example a library whose
/// host copy is known to differ), and an error when opening failed.
pub type FileOpener = dyn Fn(&MappedFile) -> io::Result<Option<File>> + Send + Sync;

/// A local file memory-mapped to supply pages missing from the core.
pub(crate) struct BackingFile {
    /// The file that was opened, which differs from the NT_FILE path when
    /// the caller substituted it.
    pub local_path: PathBuf,
    map: Option<Mmap>,
}

impl fmt::Debug for BackingFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackingFile")
            .field("local_path", &self.local_path)
            .field("len", &self.bytes().len())
            .finish()
    }
}

impl BackingFile {
    /// Memory-maps an opened file.
    pub fn map(file: &File, local_path: PathBuf) -> io::Result<BackingFile> {
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(BackingFile {
                local_path,
                map: None,
            });
        }
        // SAFETY: the map is read-only. A file replaced by a rename while
        // mapped keeps its old contents, which is how deploy tools install new
        // builds. A file truncated in place would raise SIGBUS on access, a
        // risk every reader of memory-mapped executables takes.
        let map = unsafe { Mmap::map(file)? };
        Ok(BackingFile {
            local_path,
            map: Some(map),
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Source of the undumped pages of one mapped file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// The file at `local_path` was opened and its build ID, where both it and
    /// the core have one, matched.
    Opened { local_path: PathBuf },
    /// No file was opened: the caller supplied no opener for this path, or
    /// the opener declined it.
    NotOpened,
    /// Opening or mapping the file failed.
    Failed {
        local_path: Option<PathBuf>,
        reason: String,
    },
    /// The file's build ID differs from the one in the core's copy of its
    /// first page, so it is another build and its bytes were not used.
    BuildIdMismatch {
        local_path: PathBuf,
        in_core: String,
        in_file: String,
    },
}

/// The backing decision for each distinct path of NT_FILE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileBacking {
    /// Path as NT_FILE names it.
    pub path: PathBuf,
    pub backing: Backing,
}

/// `O_NONBLOCK` on Linux (the same value on amd64 and arm64), so that a
/// path naming a FIFO cannot block the open.
const O_NONBLOCK: i32 = 0o4000;

/// Opens `local_path` directly, for the executable. A path in a core is
/// input like any other, so it is opened without blocking and rejected
/// unless it is a regular file.
pub(crate) fn open_local(local_path: &Path) -> io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(local_path)?;
    Ok(Some(file))
}

/// Rejects anything but a regular file (devices, FIFOs, directories), which
/// could not have been mapped as program text and may not be mappable.
pub(crate) fn check_regular(file: &File) -> io::Result<()> {
    if file.metadata()?.is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::test_builder::FileNote;

    fn parse(desc: &[u8]) -> (FileTable, Option<NoteError>) {
        parse_file_note(
            &RawNote {
                name: b"CORE",
                kind: 0x4649_4c45,
                desc,
                offset: 0x200,
            },
            Endianness::Little,
        )
    }

    #[test]
    fn file_note_entries_and_paths() {
        let desc = FileNote::new(4096)
            .entry(0x400000, 0x481000, 0, "/srv/app")
            .entry(0x481000, 0x525000, 0x81, "/srv/app")
            .entry(
                0x7f00_0000_0000,
                0x7f00_0000_2000,
                2,
                "/usr/lib/libc.so.6 (deleted)",
            )
            .build();
        let (table, problem) = parse(&desc);
        assert_eq!(problem, None);
        assert_eq!(table.page_size, 4096);
        assert_eq!(table.mappings.len(), 3);
        assert_eq!(table.mappings[1].start, 0x481000);
        assert_eq!(table.mappings[1].end, 0x525000);
        assert_eq!(table.mappings[1].file_offset, 0x81000);
        assert_eq!(table.mappings[1].path, Path::new("/srv/app"));
        assert!(!table.mappings[1].deleted);
        assert_eq!(table.mappings[2].path, Path::new("/usr/lib/libc.so.6"));
        assert!(table.mappings[2].deleted);
        assert_eq!(table.mappings[2].file_offset, 0x2000);
    }

    #[test]
    fn file_note_count_beyond_descriptor() {
        let mut desc = FileNote::new(4096).entry(0x1000, 0x2000, 0, "/a").build();
        desc[..8].copy_from_slice(&1000u64.to_le_bytes());
        let (table, problem) = parse(&desc);
        assert!(table.mappings.is_empty());
        let Some(NoteError::Invalid { offset, reason, .. }) = problem else {
            panic!("{problem:?}")
        };
        assert_eq!(offset, 0x200);
        assert!(reason.contains("1000 entries"), "{reason}");
    }

    #[test]
    fn file_note_count_over_limit() {
        let mut desc = FileNote::new(4096).build();
        desc[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let (_, problem) = parse(&desc);
        assert!(
            matches!(
                problem,
                Some(NoteError::TooMany {
                    count: u64::MAX,
                    ..
                })
            ),
            "{problem:?}"
        );
    }

    #[test]
    fn file_note_missing_paths() {
        let mut desc = FileNote::new(4096)
            .entry(0x1000, 0x2000, 0, "/a")
            .entry(0x2000, 0x3000, 1, "/b")
            .build();
        // Cut the second path and its terminator.
        desc.truncate(desc.len() - 3);
        let (table, problem) = parse(&desc);
        assert_eq!(table.mappings.len(), 1);
        assert_eq!(table.mappings[0].path, Path::new("/a"));
        assert!(
            matches!(problem, Some(NoteError::Invalid { .. })),
            "{problem:?}"
        );
    }

    #[test]
    fn file_note_bad_page_size_and_ranges() {
        let (_, problem) = parse(&FileNote::new(3000).entry(0x1000, 0x2000, 0, "/a").build());
        assert!(
            matches!(problem, Some(NoteError::Invalid { .. })),
            "{problem:?}"
        );

        let (table, problem) = parse(&FileNote::new(4096).entry(0x3000, 0x2000, 0, "/a").build());
        assert!(table.mappings.is_empty());
        assert!(
            matches!(problem, Some(NoteError::Invalid { .. })),
            "{problem:?}"
        );

        let (table, problem) = parse(
            &FileNote::new(4096)
                .entry(0x1000, 0x2000, u64::MAX, "/a")
                .build(),
        );
        assert!(table.mappings.is_empty());
        assert!(
            matches!(problem, Some(NoteError::Invalid { .. })),
            "{problem:?}"
        );

        let (table, problem) = parse(&[0u8; 8]);
        assert!(table.mappings.is_empty());
        assert!(
            matches!(problem, Some(NoteError::TooShort { found: 8, .. })),
            "{problem:?}"
        );
    }
}
