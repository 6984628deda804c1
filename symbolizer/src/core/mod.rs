//! ELF cores of Linux processes (amd64 and arm64): threads and their
//! registers, the signal, the auxiliary vector, the mapped files, the
//! executable, and a memory view of the crashed address space.
//!
//! [`Core::open`] takes a core file in any format [`crate::decompress`]
//! recognises. The ELF header and program headers are parsed with `object`,
//! the notes by [`notes`], and memory reads go through [`Memory`], which fills
//! the pages the kernel did not dump from the mapped files. Damage is
//! tolerated wherever the rest stays meaningful: a bad note is skipped, a
//! truncated core stays readable up to its end, and each such event is listed
//! in [`Core::problems`]. Walking the Go runtime's structures is left to the
//! goroutine modules built on top of this one.

mod executable;
mod files;
mod memory;
mod notes;
mod regs;
#[cfg(test)]
pub(crate) mod test_builder;

use std::path::{Path, PathBuf};

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

use crate::decompress::{CoreImage, DecompressError, DecompressOptions, Progress};

pub use crate::buildid::BuildIds;
pub use executable::Executable;
pub use files::{Backing, FileBacking, FileOpener, MappedFile, MAX_FILE_MAPPINGS};
pub use memory::{Memory, MemoryError, MissingRange, MissingReason, Segment, MAX_C_STRING};
pub use notes::{
    Auxv, AuxvEntry, NoteError, ProcessInfo, SignalInfo, Thread, ThreadId, ThreadSignal, AT_BASE,
    AT_ENTRY, AT_EXECFN, AT_NULL, AT_PAGESZ, AT_PHDR, AT_PHNUM, MAX_AUXV_ENTRIES, MAX_NOTES,
    MAX_THREADS,
};
pub use regs::{Amd64Registers, Arch, Arm64Registers, Registers};

use files::BackingFile;
use memory::{CoreBytes, FileRange};
use notes::NoteSegment;

/// Maximum number of program headers read from a core. The kernel writes one
/// per mapping plus the note segment, and Linux allows 65530 mappings per
/// process by default (`vm.max_map_count`).
pub const MAX_SEGMENTS: usize = 1 << 20;

/// Index of the class byte (32-bit or 64-bit) in `e_ident`.
const EI_CLASS: usize = 4;

/// Choices the caller makes when opening a core.
#[derive(Default)]
pub struct CoreOptions {
    /// Directory for the decompressed copy of a compressed core; the system
    /// temporary directory when `None`.
    pub temp_dir: Option<PathBuf>,
    /// Local copy of the executable, used instead of the path the core
    /// names (for `--binary`, or when the program ran in a container).
    pub executable: Option<PathBuf>,
    /// Opens the other mapped files (shared libraries). Without it only the
    /// executable supplies pages missing from the core.
    pub file_opener: Option<Box<FileOpener>>,
    /// Reads the core alone: no file is opened, not even the executable, so
    /// pages the kernel did not dump stay unreadable.
    pub core_only: bool,
    /// The path that messages and [`Core::source`] give for the core, when it
    /// is read through another one, such as a `/proc/self/fd` link. When
    /// `None`, they give the path read.
    pub shown_path: Option<PathBuf>,
}

impl CoreOptions {
    fn decompress_options(&self) -> DecompressOptions {
        DecompressOptions {
            temp_dir: self.temp_dir.clone(),
            shown_path: self.shown_path.clone(),
        }
    }
}

impl std::fmt::Debug for CoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreOptions")
            .field("temp_dir", &self.temp_dir)
            .field("executable", &self.executable)
            .field("file_opener", &self.file_opener.as_ref().map(|_| "<fn>"))
            .field("core_only", &self.core_only)
            .field("shown_path", &self.shown_path)
            .finish()
    }
}

/// Failure to open a core at all. Damage inside a readable core is reported
/// through [`Core::problems`] instead.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("failed to read the core {path}")]
    Image {
        path: PathBuf,
        #[source]
        source: DecompressError,
    },
    #[error("{path} is not a 64-bit ELF file: invalid ELF header at offset 0x0")]
    Header {
        path: PathBuf,
        #[source]
        source: object::Error,
    },
    #[error("{path} is a 32-bit ELF file; only 64-bit cores (amd64, arm64) are supported")]
    Not64Bit { path: PathBuf },
    #[error("{path} is an ELF file of type {found}, not a core (ET_CORE, 4)")]
    NotCore { path: PathBuf, found: u16 },
    #[error("{path} is a core for ELF machine {machine}; only x86-64 (62) and AArch64 (183) are supported")]
    UnsupportedMachine { path: PathBuf, machine: u16 },
    #[error("{path} has an invalid program header table at offset {offset:#x}")]
    ProgramHeaders {
        path: PathBuf,
        offset: u64,
        #[source]
        source: object::Error,
    },
    #[error(
        "{path} is cut inside its program header table: the table's {expected:#x} bytes at offset \
         {offset:#x} end at {:#x}, but the file has only {actual:#x} bytes",
        offset.saturating_add(*expected)
    )]
    ProgramHeadersCut {
        path: PathBuf,
        offset: u64,
        expected: u64,
        actual: u64,
    },
    #[error("{damage}; the {kept:#x} bytes decompressed before that are not a readable core")]
    DamagedStream {
        /// The decoder's error, shown first because it explains the other.
        damage: String,
        kept: u64,
        #[source]
        source: Box<CoreError>,
    },
    #[error("{path} has {count} program headers, more than the limit of {limit}")]
    TooManySegments {
        path: PathBuf,
        count: usize,
        limit: usize,
    },
}

impl CoreError {
    /// Reports whether the file is not a core at all (text, an executable, a
    /// compressed stream of something else) rather than a damaged one.
    pub fn is_not_a_core(&self) -> bool {
        match self {
            CoreError::Image { source, .. } => matches!(
                source,
                DecompressError::UnknownFormat { .. }
                    | DecompressError::NotElf { .. }
                    | DecompressError::TooShort { .. }
            ),
            CoreError::Header { .. } | CoreError::Not64Bit { .. } | CoreError::NotCore { .. } => {
                true
            }
            _ => false,
        }
    }
}

/// Damage found in a core that is still read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoreProblem {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error(
        "the core is truncated: its program headers describe {expected:#x} bytes, the file has {actual:#x}"
    )]
    Truncated { expected: u64, actual: u64 },
    #[error("program header {index} is invalid: {reason}")]
    Segment { index: usize, reason: String },
    #[error(
        "program headers {first} and {second} both map {start:#x}..{end:#x}, so reads there may \
         return either one's bytes"
    )]
    OverlappingSegments {
        first: usize,
        second: usize,
        start: u64,
        end: u64,
    },
    #[error(
        "NT_FILE entries {first} and {second} both map {start:#x}..{end:#x}, so the pages read \
         from files there may be the wrong ones"
    )]
    OverlappingFiles {
        first: usize,
        second: usize,
        start: u64,
        end: u64,
    },
    #[error("the executable could not be identified: {reason}")]
    NoExecutable { reason: &'static str },
    #[error("the pages of {path} missing from the core cannot be read: {reason}")]
    FileNotUsed { path: PathBuf, reason: String },
}

/// A parsed ELF core.
#[derive(Debug)]
pub struct Core {
    source: Option<PathBuf>,
    arch: Arch,
    memory: Memory,
    threads: Vec<Thread>,
    process: Option<ProcessInfo>,
    siginfo: Option<SignalInfo>,
    auxv: Option<Auxv>,
    mapped_files: Vec<MappedFile>,
    executable: Option<Executable>,
    file_backings: Vec<FileBacking>,
    missing: Vec<MissingRange>,
    problems: Vec<CoreProblem>,
}

impl Core {
    /// Opens a core file (plain, zstd, lz4 or xz).
    pub fn open(path: &Path, options: &CoreOptions) -> Result<Core, CoreError> {
        Core::open_with_progress(path, options, &mut |_| {})
    }

    /// Opens a core file, reporting decompression progress to `progress`.
    pub fn open_with_progress(
        path: &Path,
        options: &CoreOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Core, CoreError> {
        let decompress = options.decompress_options();
        let shown_path = options.shown_path.as_deref().unwrap_or(path);
        let image =
            CoreImage::open(path, &decompress, progress).map_err(|source| CoreError::Image {
                path: shown_path.to_path_buf(),
                source,
            })?;
        Core::from_image(image, options)
    }

    /// Opens a core file as [`Core::open_with_progress`] does, but returns a
    /// compressed core once its headers and notes are decompressed. The rest
    /// is decompressed on a thread of its own, and a read of memory not yet
    /// decompressed waits for it. Call [`Core::wait_for_decompression`]
    /// before trusting what was read, because a damaged stream is only known
    /// at its end.
    pub fn open_in_background(
        path: &Path,
        options: &CoreOptions,
        progress: Box<dyn FnMut(Progress) + Send>,
    ) -> Result<Core, CoreError> {
        let decompress = options.decompress_options();
        let shown_path = options.shown_path.as_deref().unwrap_or(path);
        let image =
            CoreImage::open_in_background(path, &decompress, progress).map_err(|source| {
                CoreError::Image {
                    path: shown_path.to_path_buf(),
                    source,
                }
            })?;
        Core::from_image(image, options)
    }

    /// Waits for the decompression [`Core::open_in_background`] started to
    /// end. An error means the stream was damaged, and what was read from
    /// this core may lack parts it does not report as missing: open the
    /// core again with [`Core::open`], which reads it as a partial core.
    /// Returns `Ok` for a core opened otherwise, and on later calls.
    pub fn wait_for_decompression(&self) -> Result<(), DecompressError> {
        match self.memory.core_data() {
            CoreBytes::Image(image) => image.wait_for_decompression(),
            CoreBytes::Owned(_) => Ok(()),
        }
    }

    /// Parses a core already turned into ELF bytes.
    pub fn from_image(image: CoreImage, options: &CoreOptions) -> Result<Core, CoreError> {
        let source = image.source().to_path_buf();
        // The decoder's own words ("checksum mismatch") are the cause, so
        // they go with the message.
        let damage = image.damage().map(|error| crate::error_chain(error));
        let kept = image.bytes().len() as u64;
        Core::parse(CoreBytes::Image(image), Some(source), options).map_err(|error| match damage {
            // A core whose stream is cut early fails to parse because of the
            // cut, so the cut is named first.
            Some(damage) => CoreError::DamagedStream {
                damage,
                kept,
                source: Box::new(error),
            },
            None => error,
        })
    }

    /// Parses a core held in memory, for tests and fuzzing.
    pub fn from_bytes(bytes: Vec<u8>, options: &CoreOptions) -> Result<Core, CoreError> {
        Core::parse(CoreBytes::Owned(bytes), None, options)
    }

    fn parse(
        data: CoreBytes,
        source: Option<PathBuf>,
        options: &CoreOptions,
    ) -> Result<Core, CoreError> {
        let path = source.clone().unwrap_or_else(|| PathBuf::from("<memory>"));
        let layout = parse_layout(data.as_slice(), &path)?;
        let Layout {
            arch,
            endian,
            segments,
            notes: parsed,
            mut problems,
        } = layout;
        problems.extend(parsed.problems.into_iter().map(CoreProblem::Note));

        let mapped_files = parsed.files.map(|table| table.mappings).unwrap_or_default();
        problems.extend(overlapping_files(&mapped_files));
        let ranges = mapped_files
            .iter()
            .map(|m| FileRange {
                start: m.start,
                end: m.end,
                file_offset: m.file_offset,
                path: m.path.clone(),
                backing: None,
            })
            .collect();
        let mut memory = Memory::new(data, segments, ranges, endian);

        let executable = identify_executable(
            &mut memory,
            parsed.auxv.as_ref(),
            &mapped_files,
            options,
            &mut problems,
        );
        let file_backings = back_other_files(
            &mut memory,
            &mapped_files,
            executable.as_ref(),
            options,
            &mut problems,
        );
        let missing = memory.missing_ranges();
        let core = Core {
            source,
            arch,
            memory,
            threads: parsed.threads,
            process: parsed.process,
            siginfo: parsed.siginfo,
            auxv: parsed.auxv,
            mapped_files,
            executable,
            file_backings,
            missing,
            problems,
        };
        tracing::debug!(
            target: "gocrash::core",
            path = %path.display(),
            arch = core.arch.name(),
            threads = core.threads.len(),
            segments = core.memory.segments().len(),
            mapped_files = core.mapped_files.len(),
            problems = core.problems.len(),
            "opened core"
        );
        Ok(core)
    }

    /// Backs the executable's pages missing from the core with the local
    /// file at `path`, replacing any file backing them before.
    ///
    /// This serves a core opened with [`CoreOptions::core_only`] to read the
    /// build IDs its executable pages carry, whose binary was then found by
    /// those IDs: the core is decompressed and parsed once. The file is
    /// checked against the core's build IDs as [`Core::open`] checks it, and
    /// a failure is recorded in [`Core::problems`] and in the executable's
    /// backing. Does nothing when the core names no executable.
    pub fn attach_executable(&mut self, path: &Path) {
        let Some(exe) = self.executable.as_mut() else {
            return;
        };
        exe.backing = back_file(
            &mut self.memory,
            &exe.path,
            path.to_path_buf(),
            || files::open_local(path),
            &exe.build_ids,
        );
        let exe_path = exe.path.clone();
        self.problems.retain(
            |problem| !matches!(problem, CoreProblem::FileNotUsed { path, .. } if *path == exe_path),
        );
        if let Some(reason) = backing_failure(&exe.backing) {
            self.problems.push(CoreProblem::FileNotUsed {
                path: exe_path,
                reason,
            });
        }
        self.missing = self.memory.missing_ranges();
    }

    /// Returns the path the core was read from; `None` for [`Core::from_bytes`].
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Returns the threads in note order. The first is the thread that
    /// received the fatal signal: Linux writes the dumping thread's notes
    /// first.
    pub fn threads(&self) -> &[Thread] {
        &self.threads
    }

    /// Returns the thread that received the fatal signal.
    pub fn signalled_thread(&self) -> Option<&Thread> {
        self.threads.first()
    }

    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// Returns the NT_FILE entries in the kernel's order (ascending address).
    pub fn mapped_files(&self) -> &[MappedFile] {
        &self.mapped_files
    }

    /// Returns how each mapped file other than the executable is backed.
    pub fn file_backings(&self) -> &[FileBacking] {
        &self.file_backings
    }

    pub fn executable(&self) -> Option<&Executable> {
        self.executable.as_ref()
    }

    pub fn auxv(&self) -> Option<&Auxv> {
        self.auxv.as_ref()
    }

    pub fn siginfo(&self) -> Option<&SignalInfo> {
        self.siginfo.as_ref()
    }

    /// Returns NT_PRPSINFO: the command name, arguments, ids and state.
    pub fn process(&self) -> Option<&ProcessInfo> {
        self.process.as_ref()
    }

    /// Returns the mapped ranges whose contents cannot be read (see
    /// [`Memory::missing_ranges`]).
    pub fn missing_ranges(&self) -> &[MissingRange] {
        &self.missing
    }

    /// Returns the damage found while reading the core.
    pub fn problems(&self) -> &[CoreProblem] {
        &self.problems
    }

    /// Returns the decoder error when the compressed core was damaged and
    /// only its first part could be decompressed.
    pub fn decompress_damage(&self) -> Option<&DecompressError> {
        match self.memory.core_data() {
            CoreBytes::Image(image) => image.damage(),
            CoreBytes::Owned(_) => None,
        }
    }

    /// Returns true when part of the core is missing: a damaged stream or a
    /// truncated file.
    pub fn is_partial(&self) -> bool {
        self.decompress_damage().is_some()
            || self
                .problems
                .iter()
                .any(|p| matches!(p, CoreProblem::Truncated { .. }))
    }

    /// Reads the path the program was started with (`AT_EXECFN`) from the
    /// initial stack.
    pub fn execfn(&self) -> Option<Result<PathBuf, MemoryError>> {
        use std::os::unix::ffi::OsStringExt;
        let addr = self.auxv.as_ref()?.execfn()?;
        Some(
            self.memory
                .read_c_string(addr, MAX_C_STRING)
                .map(|bytes| PathBuf::from(std::ffi::OsString::from_vec(bytes))),
        )
    }
}

/// The segments and notes that the ELF header and program headers of a core
/// point to.
struct Layout {
    arch: Arch,
    endian: Endianness,
    segments: Vec<Segment>,
    notes: notes::ParsedNotes,
    problems: Vec<CoreProblem>,
}

fn parse_layout(bytes: &[u8], path: &Path) -> Result<Layout, CoreError> {
    if bytes.get(EI_CLASS) == Some(&elf::ELFCLASS32.0) {
        return Err(CoreError::Not64Bit {
            path: path.to_path_buf(),
        });
    }
    let header =
        elf::FileHeader64::<Endianness>::parse(bytes).map_err(|source| CoreError::Header {
            path: path.to_path_buf(),
            source,
        })?;
    let endian = header.endian().map_err(|source| CoreError::Header {
        path: path.to_path_buf(),
        source,
    })?;
    let elf_type = header.e_type(endian).0;
    if elf_type != elf::ET_CORE.0 {
        return Err(CoreError::NotCore {
            path: path.to_path_buf(),
            found: elf_type,
        });
    }
    let machine = header.e_machine(endian).0;
    let arch = Arch::from_e_machine(machine).ok_or(CoreError::UnsupportedMachine {
        path: path.to_path_buf(),
        machine,
    })?;
    let table_offset = header.e_phoff(endian);
    // `phnum` reads the real count of a core with PN_XNUM or more segments
    // from section header 0.
    let count = header
        .phnum(endian, bytes)
        .map_or(u64::from(header.e_phnum(endian)), |count| count as u64);
    let table_len = count.saturating_mul(u64::from(header.e_phentsize(endian)));
    let core_len = bytes.len() as u64;
    if table_offset < core_len && table_offset.saturating_add(table_len) > core_len {
        return Err(CoreError::ProgramHeadersCut {
            path: path.to_path_buf(),
            offset: table_offset,
            expected: table_len,
            actual: core_len,
        });
    }
    let phdrs =
        header
            .program_headers(endian, bytes)
            .map_err(|source| CoreError::ProgramHeaders {
                path: path.to_path_buf(),
                offset: header.e_phoff(endian),
                source,
            })?;
    if phdrs.len() > MAX_SEGMENTS {
        return Err(CoreError::TooManySegments {
            path: path.to_path_buf(),
            count: phdrs.len(),
            limit: MAX_SEGMENTS,
        });
    }

    let mut problems = Vec::new();
    let mut segments = Vec::new();
    let mut note_segments = Vec::new();
    // The program header index of each entry of `segments`.
    let mut load_indices = Vec::new();
    let mut expected_len = 0u64;
    for (index, phdr) in phdrs.iter().enumerate() {
        let p_type = phdr.p_type(endian);
        if p_type != elf::PT_LOAD && p_type != elf::PT_NOTE {
            continue;
        }
        let offset = phdr.p_offset(endian);
        let filesz = phdr.p_filesz(endian);
        let Some(file_end) = offset.checked_add(filesz) else {
            let reason = format!("offset {offset:#x} plus size {filesz:#x} overflows");
            problems.push(CoreProblem::Segment { index, reason });
            continue;
        };
        expected_len = expected_len.max(file_end);
        let present = filesz.min(core_len.saturating_sub(offset));
        if p_type == elf::PT_NOTE {
            // `present` bytes from `offset` lie inside the core, by its definition.
            let bytes = bytes
                .get(offset as usize..(offset + present) as usize)
                .unwrap_or(&[]);
            note_segments.push(NoteSegment {
                offset,
                size: filesz,
                align: phdr.p_align(endian),
                bytes,
            });
            continue;
        }
        let vaddr = phdr.p_vaddr(endian);
        let memsz = phdr.p_memsz(endian);
        if vaddr.checked_add(memsz).is_none() || filesz > memsz {
            let reason =
                format!("segment {vaddr:#x} with file size {filesz:#x} and memory size {memsz:#x}");
            problems.push(CoreProblem::Segment { index, reason });
            continue;
        }
        segments.push(Segment {
            vaddr,
            memsz,
            file_offset: offset,
            filesz,
            present,
            flags: phdr.p_flags(endian).0,
        });
        load_indices.push(index);
    }
    problems.extend(overlapping_segments(&segments, &load_indices));
    if expected_len > core_len {
        tracing::debug!(target: "gocrash::core", path = %path.display(), expected_len, core_len, "the core is truncated");
        problems.push(CoreProblem::Truncated {
            expected: expected_len,
            actual: core_len,
        });
    }

    let notes = notes::parse_notes(&note_segments, arch, endian);
    Ok(Layout {
        arch,
        endian,
        segments,
        notes,
        problems,
    })
}

/// Reports each pair of NT_FILE entries that map the same addresses. The
/// kernel lists every mapping once, so an overlap is damage, and pages read
/// from the files there could come from either.
fn overlapping_files(files: &[MappedFile]) -> Vec<CoreProblem> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| files.get(i).map_or(0, |f| f.start));
    let mut problems = Vec::new();
    let mut furthest: Option<(u64, usize)> = None;
    for &index in &order {
        let Some(file) = files.get(index) else {
            continue;
        };
        if let Some((previous_end, previous)) = furthest {
            if file.start < previous_end && file.end > file.start {
                problems.push(CoreProblem::OverlappingFiles {
                    first: previous.min(index),
                    second: previous.max(index),
                    start: file.start,
                    end: file.end.min(previous_end),
                });
            }
        }
        if furthest.is_none_or(|(previous_end, _)| file.end > previous_end) {
            furthest = Some((file.end, index));
        }
    }
    problems
}

/// Reports each pair of loaded segments that map the same addresses. The
/// kernel writes every mapping once, so an overlap is damage.
fn overlapping_segments(segments: &[Segment], indices: &[usize]) -> Vec<CoreProblem> {
    let mut order: Vec<usize> = (0..segments.len()).collect();
    order.sort_by_key(|&i| segments.get(i).map_or(0, |s| s.vaddr));
    let mut problems = Vec::new();
    // The segment reaching furthest so far, as (end, position in `segments`).
    let mut furthest: Option<(u64, usize)> = None;
    for &position in &order {
        let Some(segment) = segments.get(position) else {
            continue;
        };
        // Checked when the segment was read: `vaddr + memsz` does not overflow.
        let end = segment.vaddr.saturating_add(segment.memsz);
        if let Some((previous_end, previous)) = furthest {
            if segment.vaddr < previous_end && segment.memsz > 0 {
                problems.push(CoreProblem::OverlappingSegments {
                    first: indices.get(previous).copied().unwrap_or(previous),
                    second: indices.get(position).copied().unwrap_or(position),
                    start: segment.vaddr,
                    end: end.min(previous_end),
                });
            }
        }
        if furthest.is_none_or(|(previous_end, _)| end > previous_end) {
            furthest = Some((end, position));
        }
    }
    if !problems.is_empty() {
        tracing::warn!(target: "gocrash::core", count = problems.len(), "loaded segments overlap");
    }
    problems
}

/// Finds the executable among the mapped files and opens the local file that
/// supplies its undumped pages.
fn identify_executable(
    memory: &mut Memory,
    auxv: Option<&Auxv>,
    mapped_files: &[MappedFile],
    options: &CoreOptions,
    problems: &mut Vec<CoreProblem>,
) -> Option<Executable> {
    let Some(mapping) = executable::find_executable_path(auxv, mapped_files) else {
        let reason = match (auxv, mapped_files.is_empty()) {
            (None, _) => "the core has no NT_AUXV note",
            (Some(_), true) => "the core has no NT_FILE note",
            (Some(_), false) => "no mapped file contains AT_ENTRY or AT_PHDR",
        };
        problems.push(CoreProblem::NoExecutable { reason });
        return None;
    };
    let mut exe = executable::describe(memory, auxv, mapping, mapped_files);
    let (local_path, substituted) = match &options.executable {
        Some(path) => (path.clone(), true),
        None => (exe.path.clone(), false),
    };
    if exe.deleted && !substituted {
        tracing::info!(
            target: "gocrash::core",
            path = %exe.path.display(),
            "the executable was deleted or replaced after it started; its build ID decides whether the file now at that path is used"
        );
    }
    exe.backing = back_file(
        memory,
        &exe.path,
        local_path.clone(),
        || {
            if options.core_only {
                Ok(None)
            } else {
                files::open_local(&local_path)
            }
        },
        &exe.build_ids,
    );
    if let Some(reason) = backing_failure(&exe.backing) {
        problems.push(CoreProblem::FileNotUsed {
            path: exe.path.clone(),
            reason,
        });
    }
    Some(exe)
}

/// Opens the other mapped files through the caller's opener.
fn back_other_files(
    memory: &mut Memory,
    mapped_files: &[MappedFile],
    executable: Option<&Executable>,
    options: &CoreOptions,
    problems: &mut Vec<CoreProblem>,
) -> Vec<FileBacking> {
    let mut backings: Vec<FileBacking> = Vec::new();
    for mapping in mapped_files {
        let seen = backings.iter().any(|b| b.path == mapping.path);
        if seen || executable.is_some_and(|exe| exe.path == mapping.path) {
            continue;
        }
        let backing = match &options.file_opener {
            Some(_) if options.core_only => Backing::NotOpened,
            None => Backing::NotOpened,
            Some(opener) => {
                let in_core = executable::mapped_build_ids(memory, &mapping.path, mapped_files);
                back_file(
                    memory,
                    &mapping.path,
                    mapping.path.clone(),
                    || opener(mapping),
                    &in_core,
                )
            }
        };
        if let Some(reason) = backing_failure(&backing) {
            problems.push(CoreProblem::FileNotUsed {
                path: mapping.path.clone(),
                reason,
            });
        }
        backings.push(FileBacking {
            path: mapping.path.clone(),
            backing,
        });
    }
    backings
}

fn backing_failure(backing: &Backing) -> Option<String> {
    match backing {
        Backing::Opened { .. } | Backing::NotOpened => None,
        Backing::Failed { local_path, reason } => Some(match local_path {
            Some(path) => format!("opening {} failed: {reason}", path.display()),
            None => reason.clone(),
        }),
        Backing::BuildIdMismatch {
            local_path,
            in_core,
            in_file,
        } => Some(format!(
            "{} is another build: build ID {in_file}, the core has {in_core}",
            local_path.display()
        )),
    }
}

/// Opens and maps one file, checks its build IDs against the core's copy, and
/// attaches it to the memory view when they agree.
fn back_file(
    memory: &mut Memory,
    path: &Path,
    local_path: PathBuf,
    open: impl FnOnce() -> std::io::Result<Option<std::fs::File>>,
    in_core: &BuildIds,
) -> Backing {
    let failed = |reason: String| Backing::Failed {
        local_path: Some(local_path.clone()),
        reason,
    };
    let file = match open() {
        Ok(Some(file)) => file,
        Ok(None) => return Backing::NotOpened,
        Err(error) => return failed(error.to_string()),
    };
    if let Err(error) = files::check_regular(&file) {
        return failed(error.to_string());
    }
    let mapped = match BackingFile::map(&file, local_path.clone()) {
        Ok(mapped) => mapped,
        Err(error) => return failed(format!("memory-mapping failed: {error}")),
    };
    let in_file = executable::build_ids_in_file(mapped.bytes());
    if let Some((in_core, in_file)) = executable::build_id_conflict(in_core, &in_file) {
        return Backing::BuildIdMismatch {
            local_path,
            in_core,
            in_file,
        };
    }
    if executable::build_ids_empty(in_core) || executable::build_ids_empty(&in_file) {
        tracing::debug!(
            target: "gocrash::core",
            path = %path.display(),
            local_path = %local_path.display(),
            "no build ID to compare, so the file is trusted by its path"
        );
    }
    memory.attach_file(path, mapped);
    Backing::Opened { local_path }
}

#[cfg(test)]
mod tests;
