//! Opening one crash for the commands that read one: the core file named on
//! the command line, and the Go binary that crashed.
//!
//! The binary is the executable the core's NT_FILE note names, or the file
//! `--binary` gives, or the ELF file under the `--binary` directory whose
//! build ID is the core's. The build IDs in the core (read from its copy of
//! the executable's first page) must match the binary's. A mismatch is an
//! error unless `--force` turns it into a warning. A crash selected from the
//! journal (by PID, command name, executable or nothing for the newest) is
//! found by `ingest::select`, which also copies a core stored inside the
//! journal to a temporary file.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ingest::coredump::CoreState;
use ingest::select::CoreFile;
use ingest::select::{CrashArg, CrashSource, OpenOptions, Selector};
use serde::Serialize;
use symbolizer::binary::Binary;
use symbolizer::buildid::{self, BuildIds};
use symbolizer::core::{Backing, Core, CoreError, CoreOptions};
use symbolizer::decompress::{DecompressError, Progress};
use symbolizer::threads::spawn_or_return;

use crate::exit::{Status, WithStatus};

/// The maximum depth of subdirectories `--binary DIR` descends into.
const MAX_SEARCH_DEPTH: usize = 8;
/// How many directory entries `--binary DIR` looks at before giving up, so
/// that pointing it at `/` ends in bounded time.
const MAX_SEARCH_ENTRIES: usize = 100_000;
/// Decompression shorter than this shows no progress bar.
const PROGRESS_DELAY: Duration = Duration::from_millis(500);
const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];

/// Checks a CRASH argument on the command line: an empty one, or a path to
/// a directory or to a file that is not regular, names no crash. A name
/// without `/` is a command name even where the current directory has an
/// entry of that name, as a service's checkout often does.
pub fn parse_crash(arg: &str) -> Result<String, String> {
    if arg.is_empty() {
        return Err("it is empty; give a core file, a PID, an executable \
                    path, a journal match FIELD=VALUE or a command name"
            .to_owned());
    }
    if !arg.contains('/') {
        return Ok(arg.to_owned());
    }
    let path = Path::new(arg);
    if path.is_dir() {
        return Err(
            "it is a directory; give a core file in it, a PID, an executable path, a \
                    journal match FIELD=VALUE or a command name"
                .to_owned(),
        );
    }
    // A FIFO or device would block or never end; only regular files are
    // read as cores.
    if path.exists() && !path.is_file() {
        return Err(
            "it is not a regular file (a FIFO, device or socket); give a core file, a PID, \
             an executable path, a journal match FIELD=VALUE or a command name"
                .to_owned(),
        );
    }
    Ok(arg.to_owned())
}

/// The command-line arguments that select one crash, shared by the commands
/// that read one.
#[derive(Debug, Clone, clap::Args)]
pub struct CrashArgs {
    /// The crash: a core file (plain, or compressed with zstd, lz4 or xz,
    /// recognised by content), or a match against systemd-coredump's journal
    /// entries: a PID (all digits), an executable path (contains /), a
    /// journal match FIELD=VALUE, or a command name. The newest matching
    /// crash is read; without CRASH, the newest crash in the journal.
    #[arg(value_name = "CRASH", value_parser = parse_crash)]
    pub crash: Option<String>,

    /// The Go binary that crashed, instead of the executable the core
    /// names: a file, or a directory searched (8 levels deep and 100,000
    /// entries at most) for the ELF file whose Go or GNU build ID is the
    /// core's.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,

    /// Use the binary even when its build ID differs from the core's, or
    /// when the core marks the executable as replaced. The output then
    /// carries a warning.
    #[arg(long)]
    pub force: bool,

    /// Returns a compressed core before it is fully decompressed, and goes
    /// on decompressing it while it is read (see
    /// [`Core::open_in_background`]). Set by commands that call
    /// [`Core::wait_for_decompression`], never from the command line.
    #[arg(skip)]
    pub read_in_background: bool,

    /// Set by commands that read the crash text from the journal themselves
    /// (`report`), whose errors then need no hint at `gocrash report`.
    #[arg(skip)]
    pub reads_crash_text: bool,
}

/// The origin of the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BinarySource {
    /// The executable path in the core's NT_FILE note.
    Core,
    /// The file given with `--binary`.
    Argument,
    /// Found by build ID under the directory given with `--binary`.
    DirectorySearch,
}

/// The outcome of comparing the core's build IDs with the binary's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum IdCheck {
    /// At least one kind of build ID is present on both sides, and every
    /// such kind is equal.
    Matched { kinds: Vec<&'static str> },
    /// No kind of build ID is present on both sides.
    Unverified,
    /// A build ID differs, and `--force` was given.
    Forced { in_core: String, in_binary: String },
}

/// An opened crash: the core and its binary.
pub struct OpenedCrash {
    pub core: Core,
    /// The core file read: a path given, a core in systemd-coredump's
    /// store, or the temporary copy of a core stored in the journal.
    pub core_path: PathBuf,
    /// The journal's record of the crash, and the temporary file of a core
    /// stored in the journal, which is removed when this drops. `None` for
    /// a core file outside systemd-coredump's store.
    pub source: Option<CrashSource>,
    pub binary: Binary,
    pub binary_source: BinarySource,
    pub id_check: IdCheck,
    /// The core's build IDs of its executable (empty when the core lacks
    /// its first page).
    pub core_ids: BuildIds,
    pub binary_ids: BuildIds,
    /// Problems that did not stop the command, for the report.
    pub warnings: Vec<String>,
}

/// Opens the crash `args` select, looking up journal matches with
/// `selector`.
pub fn open_with(args: &CrashArgs, selector: &Selector) -> anyhow::Result<OpenedCrash> {
    open_prepared(args, selector, &EarlyWork::NONE).map(|(opened, ())| opened)
}

/// Work on the binary that runs while the crash is still being opened.
pub struct EarlyWork<'a, P, L> {
    /// Needs the binary alone. When `--binary` names a file, it runs on
    /// another thread while the core is opened, because decompressing can
    /// take a while. Otherwise it does not run, and `load` receives `None`.
    pub prepare: &'a (dyn Fn(&Binary) -> P + Sync),
    /// Needs the core and the binary, with what `prepare` returned. It runs
    /// before the build IDs are compared and before the journal lookup of a
    /// core file is awaited, so it must not trust the binary to match.
    pub load: &'a dyn Fn(&Core, &Binary, Option<P>) -> L,
}

impl EarlyWork<'static, (), ()> {
    /// No work, for commands that read the binary only after opening.
    const NONE: Self = EarlyWork {
        prepare: &|_| (),
        load: &|_, _, _| (),
    };
}

/// Opens the crash as [`open_with`] does, and returns it with the result of
/// `work.load`.
pub fn open_prepared<P: Send, L>(
    args: &CrashArgs,
    selector: &Selector,
    work: &EarlyWork<'_, P, L>,
) -> anyhow::Result<(OpenedCrash, L)> {
    let crash = args.crash.as_deref();
    if let Some(CrashArg::Path(path)) = crash.map(CrashArg::parse) {
        // The journal's record of a core file only names the crash, and
        // looking it up takes as long as decompressing a small core, so
        // the two run at once.
        return std::thread::scope(|scope| {
            let lookup = scope.spawn(|| core_file_record(crash, selector));
            open_pending(args, path, PendingSource::Lookup(lookup), work)
        });
    }
    let (core_path, source) = select_core(crash, selector)?;
    open_pending(args, core_path, PendingSource::Ready(source), work)
}

/// Runs `main` on this thread while `side`, when given, runs on a thread
/// named `name`, and returns both results. When that thread cannot start,
/// `side` runs here after `main`. A panic of `side` goes on in this thread.
pub fn run_beside<S, T, M, R>(name: &str, side: Option<S>, main: M) -> (R, Option<T>)
where
    S: FnOnce() -> T + Send,
    T: Send,
    M: FnOnce() -> R,
{
    std::thread::scope(|scope| {
        let started = side.map(|side| spawn_or_return(scope, name, side, |side| side()));
        let result = main();
        let side_result = match started {
            None => None,
            Some(Ok(handle)) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Some(Err(side)) => Some(side()),
        };
        (result, side_result)
    })
}

/// Opens a core already selected, as [`open_selected`] does, and returns
/// it with the result of `work.load`.
pub fn open_selected_prepared<P: Send, L>(
    args: &CrashArgs,
    core_path: PathBuf,
    source: Option<CrashSource>,
    work: &EarlyWork<'_, P, L>,
) -> anyhow::Result<(OpenedCrash, L)> {
    open_pending(args, core_path, PendingSource::Ready(source), work)
}

/// Opens a core already selected, with its journal record when there is
/// one, and finds its binary as `args` request.
pub fn open_selected(
    args: &CrashArgs,
    core_path: PathBuf,
    source: Option<CrashSource>,
) -> anyhow::Result<OpenedCrash> {
    open_pending(
        args,
        core_path,
        PendingSource::Ready(source),
        &EarlyWork::NONE,
    )
    .map(|(opened, ())| opened)
}

/// The journal record of a crash: known, or still being looked up.
// One value exists per command, so the size of the record does not matter.
#[allow(clippy::large_enum_variant)]
enum PendingSource<'scope> {
    Ready(Option<CrashSource>),
    Lookup(std::thread::ScopedJoinHandle<'scope, Option<CrashSource>>),
}

impl PendingSource<'_> {
    fn wait(self) -> Option<CrashSource> {
        match self {
            PendingSource::Ready(source) => source,
            PendingSource::Lookup(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        }
    }
}

fn open_pending<P: Send, L>(
    args: &CrashArgs,
    read_path: PathBuf,
    source: PendingSource<'_>,
    work: &EarlyWork<'_, P, L>,
) -> anyhow::Result<(OpenedCrash, L)> {
    let mut warnings = Vec::new();
    // A stored core is read through /proc/self/fd/N, which no message may
    // show: messages and reports name the file in the coredump store. A
    // core file given by its path is named by that path until its record
    // is found.
    let core_path = match &source {
        PendingSource::Ready(source) => source.as_ref().and_then(CrashSource::core_display_path),
        PendingSource::Lookup(_) => None,
    }
    .unwrap_or_else(|| read_path.clone());

    let (core, binary_path, binary_source, binary, prepared) = match &args.binary {
        Some(path) if path.is_dir() => {
            // The core's build IDs are needed before the binary is known, so
            // the core is opened alone and the binary found is attached after.
            let mut core = open_core(
                &read_path,
                &core_path,
                CoreOptions {
                    core_only: true,
                    ..CoreOptions::default()
                },
                false,
            )?;
            let ids = core
                .executable()
                .map(|e| e.build_ids.clone())
                .unwrap_or_default();
            let found = search_directory(path, &ids)?;
            tracing::info!(target: "gocrash::crash_input", binary = %found.display(), "found the binary by build ID");
            core.attach_executable(&found);
            let binary = Binary::open(&found);
            (core, found, BinarySource::DirectorySearch, binary, None)
        }
        Some(path) => {
            // The binary is known before the core, so it is read while the
            // core is decompressed.
            let binary = Binary::open(path);
            let mut prepared = None;
            let core = std::thread::scope(|scope| {
                let preparing = binary
                    .as_ref()
                    .ok()
                    .map(|b| scope.spawn(|| (work.prepare)(b)));
                let core = open_core(
                    &read_path,
                    &core_path,
                    CoreOptions {
                        executable: Some(path.clone()),
                        ..CoreOptions::default()
                    },
                    args.read_in_background,
                );
                prepared = preparing.map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                });
                core
            })?;
            (core, path.clone(), BinarySource::Argument, binary, prepared)
        }
        None => {
            let core = open_core(
                &read_path,
                &core_path,
                CoreOptions::default(),
                args.read_in_background,
            )?;
            let Some(exe) = core.executable() else {
                anyhow::bail!(
                    "{}: the core does not name its executable ({}); pass --binary PATH",
                    core_path.display(),
                    executable_problem(&core)
                );
            };
            let path = exe.path.clone();
            let binary = Binary::open(&path);
            (core, path, BinarySource::Core, binary, None)
        }
    };

    let binary = match binary {
        Ok(binary) => binary,
        Err(err) => {
            let source = matching_record(source.wait(), &core, &mut warnings);
            return Err(binary_error(
                err,
                &core,
                &binary_path,
                binary_source,
                source.as_ref().filter(|_| !args.reads_crash_text),
            ));
        }
    };
    // The load needs no journal record, so it runs while the lookup of a
    // core file's record may still go on.
    let loaded = (work.load)(&core, &binary, prepared);
    let source = matching_record(source.wait(), &core, &mut warnings);
    let core_path = source
        .as_ref()
        .and_then(CrashSource::core_display_path)
        .unwrap_or(core_path);

    let core_ids = core
        .executable()
        .map(|e| e.build_ids.clone())
        .unwrap_or_default();
    let binary_ids = buildid::read(binary.elf()).ids;
    let id_check = check_ids(&core_ids, &binary_ids, &core_path, &binary_path, args.force)?;
    if let IdCheck::Forced { in_core, in_binary } = &id_check {
        warnings.push(format!(
            "--force: using {} although its build ID ({in_binary}) is not the core's ({in_core}); frames and values may be wrong",
            binary_path.display()
        ));
    }
    if let Some(cut) = binary.cut_short() {
        warnings.push(format!("{}: {cut}", binary_path.display()));
    }
    if core.executable().is_none() {
        warnings.push(
            "the core does not name its executable; using --binary without a load address check"
                .to_owned(),
        );
    }

    if let Some(exe) = core.executable() {
        if exe.deleted && binary_source == BinarySource::Core {
            match &id_check {
                IdCheck::Matched { .. } => warnings.push(format!(
                    "the executable {} was replaced after the program started; the file now at that path has the same build ID, so it is used",
                    exe.path.display()
                )),
                _ if args.force => warnings.push(format!(
                    "--force: the executable {} was replaced after the program started and no build ID proves the file now there is the same build",
                    exe.path.display()
                )),
                _ => anyhow::bail!(
                    "the executable {} was replaced after the program started (the core marks it deleted), and no build ID \
                     proves the file now at that path is the build that crashed; pass --binary PATH with that build \
                     (a file, or a directory to search), or --force to use the file anyway",
                    exe.path.display()
                ),
            }
        }
        if let Backing::Failed { local_path, reason } = &exe.backing {
            let path = local_path.as_deref().unwrap_or(&binary_path);
            warnings.push(format!(
                "the pages of {} missing from the core could not be read from it ({reason})",
                path.display()
            ));
        }
    }
    if matches!(id_check, IdCheck::Unverified) {
        tracing::info!(target: "gocrash::crash_input", "neither the core nor the binary has a build ID of the same kind; the binary is trusted by its path");
    }

    let opened = OpenedCrash {
        core,
        core_path,
        source,
        binary,
        binary_source,
        id_check,
        core_ids,
        binary_ids,
        warnings,
    };
    Ok((opened, loaded))
}

/// Keeps the journal record found for a core file given by its path only
/// when the core's command name is the record's: a copy found by the name
/// systemd-coredump gave it may have been renamed from another crash.
fn matching_record(
    source: Option<CrashSource>,
    core: &Core,
    warnings: &mut Vec<String>,
) -> Option<CrashSource> {
    let mut source = source?;
    if !matches!(source.core, CoreFile::Given(_)) {
        return Some(source);
    }
    let in_core = core.process().map(|process| process.fname.as_str());
    let in_record = source.record.as_ref().and_then(|r| r.comm.as_deref());
    if let (Some(in_core), Some(in_record)) = (in_core, in_record) {
        // The kernel cuts a command name to 15 bytes in the core's notes.
        if !in_record.as_bytes().starts_with(in_core.as_bytes()) {
            warnings.push(format!(
                "the journal entry for a core of this name is for command {in_record:?}, \
                 while the core's process is {in_core:?}: the entry is not used"
            ));
            source.record = None;
            source.text = None;
        }
    }
    Some(source)
}

/// Checks that `binary` is the build whose crash left `core`, by the build
/// IDs in the core's copy of the executable's first page. A mismatch is an
/// error, or a warning when `force` is set. A core that cannot be read, or
/// that has no build ID of a kind the binary has, proves nothing and passes. Only the core's first part is read: its decompression goes
/// on in the background while the caller works, until the process exits.
pub fn check_binary_of_core(core: &CoreFile, binary: &Binary, force: bool) -> anyhow::Result<()> {
    let (read_path, shown_path) = match core {
        CoreFile::Stored(stored) => (stored.read_path(), stored.path.clone()),
        CoreFile::Given(path) => (path.clone(), path.clone()),
        CoreFile::Inline(_) | CoreFile::Unavailable(_) => return Ok(()),
    };
    let options = CoreOptions {
        shown_path: Some(shown_path.clone()),
        ..CoreOptions::default()
    };
    let opened = match Core::open_in_background(&read_path, &options, Box::new(|_| {})) {
        Ok(opened) => opened,
        Err(error) => {
            tracing::debug!(target: "gocrash::crash_input", %error, "cannot read the core, so the binary's build ID is not checked");
            return Ok(());
        }
    };
    let core_ids = opened
        .executable()
        .map(|e| e.build_ids.clone())
        .unwrap_or_default();
    let binary_ids = buildid::read(binary.elf()).ids;
    let checked = check_ids(&core_ids, &binary_ids, &shown_path, binary.path(), force);
    // The decompression is left to end with the process.
    std::mem::forget(opened);
    if let IdCheck::Forced { in_core, in_binary } = checked? {
        tracing::warn!(target: "gocrash::crash_input", "--force: using {} although its build ID ({in_binary}) is not the core's ({in_core}); the annotations may be wrong", binary.path().display());
    }
    Ok(())
}

/// Warns on stderr when `binary` is shorter than its section headers claim, for the
/// commands whose output has no place for warnings.
pub fn warn_if_cut_short(binary: &Binary) {
    if let Some(cut) = binary.cut_short() {
        tracing::warn!(target: "gocrash::binary", "{}: {cut}", binary.path().display());
    }
}

/// Looks up the journal record of the core file `crash` names: a core in
/// systemd-coredump's store has one when the journal can be read, and the
/// core is read either way.
fn core_file_record(crash: Option<&str>, selector: &Selector) -> Option<CrashSource> {
    let options = OpenOptions {
        text: None,
        ..OpenOptions::default()
    };
    match selector.open(crash, &options) {
        Ok(source) => Some(source),
        Err(error) => {
            tracing::debug!(target: "gocrash::crash_input", %error, "no journal record for the core file");
            None
        }
    }
}

/// Returns the core file the selection names: the file itself for a core
/// file, else the core of the newest journal record that matches. A
/// selection nothing matches is an error with exit code 3.
pub fn select_core(
    crash: Option<&str>,
    selector: &Selector,
) -> anyhow::Result<(PathBuf, Option<CrashSource>)> {
    let options = OpenOptions {
        text: None,
        ..OpenOptions::default()
    };
    if let Some(CrashArg::Path(path)) = crash.map(CrashArg::parse) {
        return Ok((path, core_file_record(crash, selector)));
    }
    let source = match selector.open(crash, &options) {
        Ok(source) => source,
        Err(error) if error.is_no_match() => {
            let message = match crash {
                None if selector.describe_parts(&[]).is_empty() => {
                    "the journal lists no crash recorded by systemd-coredump; pass a core file path"
                        .to_owned()
                }
                None => error.to_string(),
                // A symbolic link that loops or leads nowhere is no file
                // either, and the message names it as a link.
                Some(text) if Path::new(text).is_symlink() && !Path::new(text).exists() => {
                    let reason = std::fs::metadata(text)
                        .err()
                        .map_or_else(String::new, |e| format!(": {e}"));
                    format!(
                        "{error} ({text} is a symbolic link to no file{reason}, so it was taken \
                         as an executable path)"
                    )
                }
                Some(text) if !Path::new(text).exists() && text.contains('/') => {
                    format!("{error} ({text} is no file, so it was taken as an executable path)")
                }
                // A name with a dot is more often a mistyped file name than
                // a command name.
                Some(text) if !Path::new(text).exists() && text.contains('.') => {
                    format!("{error} (no file {text} exists, so it was taken as a command name)")
                }
                Some(_) => error.to_string(),
            };
            return Err(WithStatus {
                status: Status::NoMatch,
                message,
            }
            .into());
        }
        Err(error) => {
            return Err(
                anyhow::Error::new(error).context("cannot select the crash from the journal")
            )
        }
    };
    let Some(path) = source.core_path() else {
        let record = source.record.as_ref();
        let pid = record.map_or_else(|| "?".to_owned(), |r| r.pid.to_string());
        let exe = record
            .and_then(|r| r.exe.as_deref())
            .map(|e| format!(" ({})", e.display()))
            .unwrap_or_default();
        let state = match &source.core {
            ingest::select::CoreFile::Unavailable(state) => describe_state(state),
            _ => "no core".to_owned(),
        };
        anyhow::bail!("the crash of PID {pid}{exe} has no core to read: {state}");
    };
    let display_path = source.core_display_path().unwrap_or_else(|| path.clone());
    tracing::info!(target: "gocrash::crash_input", core = %display_path.display(), "selected the crash from the journal");
    Ok((path, Some(source)))
}

/// Says why a journal record's core cannot be read, naming the path
/// looked at: systemd-coredump's store, or the `--coredump-dir` given.
fn describe_state(state: &CoreState) -> String {
    match state {
        CoreState::Missing { path } => format!("its core file {} is missing", path.display()),
        CoreState::Inaccessible { path, reason } => {
            format!(
                "its core file {} cannot be opened ({reason})",
                path.display()
            )
        }
        CoreState::Rejected { path, reason } => {
            format!("its core file {} is not read: {reason}", path.display())
        }
        CoreState::None => {
            "systemd-coredump stored no core (see the journal entry's message)".to_owned()
        }
        CoreState::Journal { .. } => {
            "its core is stored inside the journal, and copying it out was not requested".to_owned()
        }
        CoreState::Present { .. } => "no core".to_owned(),
    }
}

/// Opens the core at `read_path`, naming it `shown_path` in the progress bar
/// (shown on a terminal when decompression takes long), in errors and in
/// what the core records: the two differ when a stored core is read through
/// /proc/self/fd. With `in_background`, a compressed core is returned before
/// it is fully decompressed.
fn open_core(
    read_path: &Path,
    shown_path: &Path,
    options: CoreOptions,
    in_background: bool,
) -> anyhow::Result<Core> {
    let options = CoreOptions {
        shown_path: Some(shown_path.to_path_buf()),
        ..options
    };
    let mut progress = ProgressReport::new(shown_path);
    let core = if in_background {
        Core::open_in_background(read_path, &options, Box::new(move |p| progress.update(p)))
    } else {
        Core::open_with_progress(read_path, &options, &mut |p| progress.update(p))
    };
    core.map_err(core_error)
}

/// A file named as a crash that is not a core at all: text, an executable,
/// a compressed stream of something else.
#[derive(Debug)]
pub struct NotACore {
    /// The error's chain of causes, with a hint when the file is text.
    message: String,
}

impl std::fmt::Display for NotACore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NotACore {}

/// Turns a failure to open a core into the command's error. A text file
/// gets a hint at the commands that read crash text.
pub fn core_error(error: CoreError) -> anyhow::Error {
    if !error.is_not_a_core() {
        return anyhow::Error::new(error);
    }
    let is_text = matches!(
        &error,
        CoreError::Image {
            source: DecompressError::UnknownFormat { is_text: true, .. },
            ..
        }
    );
    let chain = crate::render::error_chain(&error);
    let message = if is_text {
        format!(
            "{chain}; a Go crash text is read by `gocrash annotate FILE`, and a crash's text in \
             the journal by `gocrash report`"
        )
    } else {
        chain
    };
    anyhow::Error::new(NotACore { message })
}

/// Reports whether `error` is a file named as a crash that is not a core.
pub fn is_not_a_core(error: &anyhow::Error) -> bool {
    error.downcast_ref::<NotACore>().is_some()
}

/// A progress bar on stderr that appears only when stderr is a terminal and
/// the work has lasted longer than [`PROGRESS_DELAY`].
struct ProgressReport {
    started: Instant,
    enabled: bool,
    name: String,
    bar: Option<indicatif::ProgressBar>,
}

impl ProgressReport {
    fn new(path: &Path) -> ProgressReport {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        ProgressReport {
            started: Instant::now(),
            enabled: std::io::stderr().is_terminal(),
            name,
            bar: None,
        }
    }

    fn update(&mut self, progress: Progress) {
        if self.bar.is_none()
            && self.enabled
            && self.started.elapsed() >= PROGRESS_DELAY
            && progress.bytes_in < progress.total_in
        {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(progress.total_in),
                indicatif::ProgressDrawTarget::stderr(),
            );
            // The core's name comes last and is cut to the terminal's width,
            // so the bar stays on one line.
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "decompressing [{bar:30}] {bytes}/{total_bytes} {wide_msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(self.name.clone());
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(progress.bytes_in);
        }
    }
}

impl Drop for ProgressReport {
    /// Clears the bar, when one was shown, once the decompression ends.
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A spinner on stderr, when it is a terminal, for a `--binary DIR` search
/// that lasts longer than [`PROGRESS_DELAY`]: large trees take seconds.
struct SearchProgress {
    started: Instant,
    enabled: bool,
    dir: String,
    spinner: Option<indicatif::ProgressBar>,
}

impl SearchProgress {
    /// Entries between two updates, so that updating costs nothing next to
    /// reading the files.
    const EVERY: usize = 256;

    fn new(dir: &Path) -> SearchProgress {
        SearchProgress {
            started: Instant::now(),
            enabled: std::io::stderr().is_terminal(),
            dir: dir.display().to_string(),
            spinner: None,
        }
    }

    fn update(&mut self, entries: usize, elf_files: usize) {
        if !self.enabled || entries % Self::EVERY != 0 {
            return;
        }
        if self.spinner.is_none() && self.started.elapsed() >= PROGRESS_DELAY {
            let spinner = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr(),
            );
            // The message ends the line and is cut to the terminal's width.
            if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {wide_msg}") {
                spinner.set_style(style);
            }
            spinner.enable_steady_tick(Duration::from_millis(120));
            self.spinner = Some(spinner);
        }
        if let Some(spinner) = &self.spinner {
            spinner.set_message(format!(
                "searching {} for the core's build ID: {entries} entries, {elf_files} ELF files",
                self.dir
            ));
        }
    }
}

impl Drop for SearchProgress {
    /// Clears the spinner, when one was shown, once the search ends.
    fn drop(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
    }
}

/// Compares build IDs kind by kind. A kind missing from either side proves
/// nothing, because the Go 1.24+ linker puts the GNU build ID outside the
/// first page's notes, so the core lacks it.
fn compare_ids(core: &BuildIds, binary: &BuildIds) -> Result<Vec<&'static str>, (String, String)> {
    let mut matched = Vec::new();
    if let (Some(a), Some(b)) = (&core.go, &binary.go) {
        if a != b {
            return Err((format!("Go build ID {a}"), format!("Go build ID {b}")));
        }
        matched.push("go");
    }
    if let (Some(a), Some(b)) = (&core.gnu, &binary.gnu) {
        if a != b {
            return Err((format!("GNU build ID {a}"), format!("GNU build ID {b}")));
        }
        matched.push("gnu");
    }
    Ok(matched)
}

fn check_ids(
    core: &BuildIds,
    binary: &BuildIds,
    core_path: &Path,
    binary_path: &Path,
    force: bool,
) -> anyhow::Result<IdCheck> {
    match compare_ids(core, binary) {
        Ok(kinds) if kinds.is_empty() => Ok(IdCheck::Unverified),
        Ok(kinds) => Ok(IdCheck::Matched { kinds }),
        Err((in_core, in_binary)) if force => Ok(IdCheck::Forced { in_core, in_binary }),
        Err((in_core, in_binary)) => anyhow::bail!(
            "{} is not the build that crashed: it has {in_binary}, but the core {} has {in_core}; \
             pass --binary PATH with the right build, or --force to use this one anyway",
            binary_path.display(),
            core_path.display()
        ),
    }
}

/// Finds the ELF file under `dir` whose build IDs match `ids`.
fn search_directory(dir: &Path, ids: &BuildIds) -> anyhow::Result<PathBuf> {
    if ids.go.is_none() && ids.gnu.is_none() {
        anyhow::bail!(
            "the core has no build ID of its executable (its first page is missing), so {} cannot be searched; pass the binary's file path",
            dir.display()
        );
    }
    let mut pending = vec![(dir.to_path_buf(), 0usize)];
    let mut entries = 0usize;
    let mut elf_files = 0usize;
    let mut truncated = false;
    let mut cut_match = None;
    let mut progress = SearchProgress::new(dir);
    while let Some((current, depth)) = pending.pop() {
        let listing = match std::fs::read_dir(&current) {
            Ok(listing) => listing,
            Err(err) => {
                tracing::debug!(target: "gocrash::crash_input", dir = %current.display(), %err, "cannot list the directory; skipped");
                continue;
            }
        };
        let mut children: Vec<PathBuf> = listing.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            entries += 1;
            progress.update(entries, elf_files);
            if entries > MAX_SEARCH_ENTRIES {
                truncated = true;
                break;
            }
            // Symbolic links to directories are not followed, so a link
            // loop cannot keep the search going.
            let Ok(meta) = std::fs::symlink_metadata(&child) else {
                continue;
            };
            if meta.is_dir() {
                if depth < MAX_SEARCH_DEPTH {
                    pending.push((child, depth + 1));
                }
                continue;
            }
            if !child.is_file() || !has_elf_magic(&child) {
                continue;
            }
            elf_files += 1;
            // Warnings about candidates are not the user's concern; the
            // binary chosen is opened again, and warns then.
            let opened = tracing::subscriber::with_default(
                tracing::subscriber::NoSubscriber::default(),
                || Binary::open(&child),
            );
            let Ok(candidate) = opened else {
                continue;
            };
            let candidate_ids = buildid::read(candidate.elf()).ids;
            if matches!(compare_ids(ids, &candidate_ids), Ok(kinds) if !kinds.is_empty()) {
                if candidate.is_whole() {
                    return Ok(child);
                }
                // A copy cut short has the build ID of its first page; a
                // whole copy found later is taken instead.
                tracing::info!(target: "gocrash::crash_input", binary = %child.display(), "the build ID matches, but the file is cut short; looking further");
                cut_match.get_or_insert(child);
            }
        }
        if truncated {
            break;
        }
    }
    if let Some(cut) = cut_match {
        return Ok(cut);
    }
    let wanted = describe_ids(ids);
    let limit = if truncated {
        format!(" (the search stopped after {MAX_SEARCH_ENTRIES} entries)")
    } else {
        String::new()
    };
    let checked = if elf_files == 1 {
        "file was"
    } else {
        "files were"
    };
    anyhow::bail!(
        "no ELF file under {} has the core's build ID ({wanted}); {elf_files} ELF {checked} checked, {MAX_SEARCH_DEPTH} directory levels deep at most{limit}",
        dir.display()
    )
}

fn has_elf_magic(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == ELF_MAGIC
}

/// Formats build IDs for messages: `Go build ID X, GNU build ID Y`.
pub fn describe_ids(ids: &BuildIds) -> String {
    let mut parts = Vec::new();
    if let Some(go) = &ids.go {
        parts.push(format!("Go build ID {go}"));
    }
    if let Some(gnu) = &ids.gnu {
        parts.push(format!("GNU build ID {gnu}"));
    }
    if parts.is_empty() {
        "no build ID".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Explains why the binary could not be opened. `source` is the crash's
/// journal record when the crash text may still be read from the journal.
fn binary_error(
    err: symbolizer::binary::BinaryError,
    core: &Core,
    binary_path: &Path,
    binary_source: BinarySource,
    source: Option<&CrashSource>,
) -> anyhow::Error {
    let deleted =
        core.executable().is_some_and(|e| e.deleted) && binary_source == BinarySource::Core;
    if deleted {
        return anyhow::anyhow!(
            "the executable {} was deleted or replaced after the program started, and cannot be opened ({err}); \
             pass --binary PATH with the build that crashed (a file, or a directory to search)",
            binary_path.display()
        );
    }
    // The hint names the crash by its core file where there is one, since a
    // PID may name another crash too. A core stored inside the journal
    // entry has no file to name.
    let text_hint = source
        .and_then(|s| s.record.as_ref().map(|record| (s, record)))
        .filter(|(_, record)| record.may_have_journal_output())
        .map(|(source, record)| {
            let crash = match &source.core {
                CoreFile::Stored(stored) => stored.path.display().to_string(),
                CoreFile::Given(path) => path.display().to_string(),
                CoreFile::Inline(_) | CoreFile::Unavailable(_) => record.pid.to_string(),
            };
            format!(
                "; the crash text the runtime printed may still be in the journal: gocrash report {crash} shows its goroutines"
            )
        })
        .unwrap_or_default();
    let cause = format!("{:#}", anyhow::Error::new(err));
    match binary_source {
        BinarySource::Core => anyhow::anyhow!(
            "cannot open the executable the core names ({cause}); pass --binary PATH{text_hint}"
        ),
        _ => anyhow::anyhow!("cannot open the binary ({cause}){text_hint}"),
    }
}

/// Says why a core names no executable, with the damage that may explain
/// it: a core cut inside its notes loses the notes that name it.
fn executable_problem(core: &Core) -> String {
    let problem = core
        .problems()
        .iter()
        .find(|p| matches!(p, symbolizer::core::CoreProblem::NoExecutable { .. }))
        .map(|p| p.to_string())
        .unwrap_or_else(|| "no NT_FILE entry contains the entry point".to_owned());
    let damage = core
        .decompress_damage()
        .map(|damage| symbolizer::error_chain(damage))
        .or_else(|| {
            core.problems()
                .iter()
                .find(|p| matches!(p, symbolizer::core::CoreProblem::Truncated { .. }))
                .map(ToString::to_string)
        });
    match damage {
        Some(damage) => format!("{problem}, which may be lost to damage: {damage}"),
        None => problem,
    }
}

#[cfg(test)]
mod tests {
    use super::run_beside;

    #[test]
    fn run_beside_returns_both_results() {
        let (main, side) = run_beside("gocrash-test", Some(|| 2), || 1);
        assert_eq!(main, 1);
        assert_eq!(side, Some(2));
    }

    #[test]
    fn run_beside_without_side_work() {
        let (main, side) = run_beside("gocrash-test", None::<fn() -> u8>, || 1);
        assert_eq!(main, 1);
        assert_eq!(side, None);
    }
}
