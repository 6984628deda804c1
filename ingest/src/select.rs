//! Chooses crashes the way coredumpctl does, and opens one for reading.
//!
//! A crash argument is either a core file on disk or a match against
//! systemd-coredump's journal entries: a PID (all digits), an executable
//! path (anything with a `/`), a raw `FIELD=VALUE` match, or a command name
//! (`COREDUMP_COMM`). An existing file is a core when its first bytes are
//! those of an ELF core or of a zstd, lz4 or xz stream; an existing ELF executable
//! is matched as the crashed executable, as coredumpctl does with paths.
//! No argument selects the newest crash.
//!
//! [`Selector::records`] returns every matching record, oldest first;
//! [`Selector::open`] returns what a command needs to read one crash: the
//! record, the core file (a temporary file for a core stored inside the
//! journal), the executable and the crash text. Reading the core is left
//! to the `symbolizer` crate.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::coredump::store::{
    open_regular_nofollow, CoreAccessError, CoreFileName, DEFAULT_COREDUMP_DIR,
};
use crate::coredump::{
    CoreState, CoredumpRecord, CoredumpStore, RecordError, StoredCore, COREDUMP_MESSAGE_ID,
    RECORD_FIELDS,
};
use crate::crashtext::{self, CrashText, CrashTextError, TextOptions};
use crate::journal::export::COREDUMP_FIELD;
use crate::journal::{
    EntryStream, ExportOptions, FieldPolicy, FieldValue, Journal, JournalError, Query, SpilledValue,
};

/// Bytes read from a file to tell a core from an executable.
const SNIFF_BYTES: usize = 18;
/// `e_type` of an ELF executable, of a shared object (a PIE too), and of a
/// core.
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
#[cfg(test)]
const ET_CORE: u16 = 4;

/// One crash argument, as understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrashArg {
    /// A core file on disk.
    Path(PathBuf),
    /// `COREDUMP_PID`.
    Pid(u64),
    /// `COREDUMP_EXE`, made absolute.
    Exe(PathBuf),
    /// `COREDUMP_COMM`.
    Comm(String),
    /// A raw journal match, `FIELD=VALUE`.
    Field(String),
}

impl CrashArg {
    /// Reads a crash argument: an existing core file is a path, anything
    /// else a match.
    pub fn parse(arg: &str) -> CrashArg {
        let path = Path::new(arg);
        if path.is_file() && is_core_file(path) {
            return CrashArg::Path(path.to_path_buf());
        }
        CrashArg::parse_match(arg)
    }

    /// Reads an argument as a match only, as `gocrash list` does.
    pub fn parse_match(arg: &str) -> CrashArg {
        if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(pid) = arg.parse() {
                return CrashArg::Pid(pid);
            }
        }
        // A field match first: its value may be a path, as in
        // COREDUMP_FILENAME=/var/lib/systemd/coredump/core...
        if let Some((name, _)) = arg.split_once('=') {
            let is_field = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if is_field {
                return CrashArg::Field(arg.to_string());
            }
        }
        if arg.contains('/') {
            let path = Path::new(arg);
            return CrashArg::Exe(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
        }
        CrashArg::Comm(arg.to_string())
    }

    /// Returns the journal match, or `None` for a path.
    pub fn journal_match(&self) -> Option<String> {
        match self {
            CrashArg::Path(_) => None,
            CrashArg::Pid(pid) => Some(format!("COREDUMP_PID={pid}")),
            CrashArg::Exe(exe) => Some(format!("COREDUMP_EXE={}", exe.display())),
            CrashArg::Comm(comm) => Some(format!("COREDUMP_COMM={comm}")),
            CrashArg::Field(field) => Some(field.clone()),
        }
    }
}

impl fmt::Display for CrashArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashArg::Path(path) => write!(f, "core file {}", path.display()),
            CrashArg::Pid(pid) => write!(f, "PID {pid}"),
            CrashArg::Exe(exe) => write!(f, "executable {}", exe.display()),
            CrashArg::Comm(comm) => write!(f, "command name {comm:?}"),
            CrashArg::Field(field) => write!(f, "{field}"),
        }
    }
}

/// Reports whether a file starts like a core: an ELF core, or a compressed
/// stream (systemd-coredump compresses cores, and executables are not
/// shipped compressed). Unreadable files count as cores, so that opening
/// them reports the error.
fn is_core_file(path: &Path) -> bool {
    let mut prefix = [0u8; SNIFF_BYTES];
    let read = std::fs::File::open(path).and_then(|mut file| file.read(&mut prefix));
    let Ok(len) = read else { return true };
    let prefix = prefix.get(..len).unwrap_or_default();
    match symbolizer::decompress::Compression::detect(prefix) {
        Some(symbolizer::decompress::Compression::None) => {
            // e_type is at offset 16, in the file's byte order (EI_DATA at 5).
            let e_type = match (prefix.get(5), prefix.get(16..18)) {
                (Some(2), Some(&[hi, lo])) => u16::from_be_bytes([hi, lo]),
                (_, Some(&[lo, hi])) => u16::from_le_bytes([lo, hi]),
                _ => return true,
            };
            // Only an executable or a shared object is matched as the
            // crashed executable. Any other ELF file (a core, or one whose
            // header is damaged) is read as a core, whose error names the fault.
            e_type != ET_EXEC && e_type != ET_DYN
        }
        Some(_) => true,
        None => true,
    }
}

/// The journal, core store and filters crashes are selected from.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    pub journal: Journal,
    pub store: CoredumpStore,
    /// `--since` and `--until`, in journalctl's syntax.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only crashes of this unit (`COREDUMP_UNIT` or `COREDUMP_USER_UNIT`).
    pub unit: Option<String>,
    /// Only entries after the one with this journal cursor, to resume a
    /// listing where an earlier one ended.
    pub after_cursor: Option<String>,
}

/// Failure to select or open a crash.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("no crash matched {selection}")]
    NoMatch { selection: String },
    #[error("failed to read coredump entries from the journal")]
    Journal(#[source] JournalError),
    #[error(transparent)]
    Text(#[from] CrashTextError),
    #[error("failed to open the core of PID {pid}")]
    Core {
        pid: u32,
        #[source]
        source: CoreAccessError,
    },
    #[error("the core of PID {pid} stored in journal entry {cursor} could not be read back")]
    InlineCore { pid: u32, cursor: String },
}

impl SelectError {
    /// Reports whether nothing matched, as opposed to a failure.
    pub fn is_no_match(&self) -> bool {
        matches!(self, SelectError::NoMatch { .. })
    }
}

/// Records found, and how many entries were left out.
#[derive(Debug, Default)]
pub struct Selection {
    /// Oldest first.
    pub records: Vec<CoredumpRecord>,
    /// Entries with the coredump MESSAGE_ID that systemd-coredump did not
    /// write: forged by another process.
    pub untrusted: usize,
    /// Entries systemd-coredump wrote that lack a field every record needs
    /// (a valid COREDUMP_PID, a cursor, a time).
    pub malformed: usize,
}

/// The parts of one crash a command needs.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Read the crash text from the journal, with these options.
    pub text: Option<TextOptions>,
    /// Write a core stored inside the journal to a temporary file.
    pub inline_core: bool,
    /// Directory for that temporary file; the system's when `None`.
    pub temp_dir: Option<PathBuf>,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions {
            text: Some(TextOptions::default()),
            inline_core: true,
            temp_dir: None,
        }
    }
}

/// The core of a selected crash.
#[derive(Debug)]
pub enum CoreFile {
    /// A file in systemd-coredump's store, opened without following links.
    Stored(StoredCore),
    /// A file named on the command line.
    Given(PathBuf),
    /// The core stored inside the journal entry, copied to a temporary file
    /// that is removed when this value drops.
    Inline(Arc<SpilledValue>),
    /// No core can be read; the state gives the reason.
    Unavailable(CoreState),
}

/// One crash, ready to read.
#[derive(Debug)]
pub struct CrashSource {
    /// The journal entry; `None` for a core file without one.
    pub record: Option<CoredumpRecord>,
    pub core: CoreFile,
    /// The crash text, when requested and found.
    pub text: Option<CrashText>,
}

impl CrashSource {
    /// Returns a path to read the core from, when there is a core.
    pub fn core_path(&self) -> Option<PathBuf> {
        match &self.core {
            CoreFile::Stored(stored) => Some(stored.read_path()),
            CoreFile::Given(path) => Some(path.clone()),
            CoreFile::Inline(spilled) => Some(spilled.path().to_path_buf()),
            CoreFile::Unavailable(_) => None,
        }
    }

    /// Returns the core's path for messages: the stored or given path. A
    /// core stored inside the journal entry is named by the entry, since its
    /// temporary copy is deleted when the command ends.
    pub fn core_display_path(&self) -> Option<PathBuf> {
        match (&self.core, &self.record) {
            (CoreFile::Stored(stored), _) => Some(stored.path.clone()),
            (CoreFile::Inline(_), Some(record)) => Some(PathBuf::from(format!(
                "the core stored in the journal entry of PID {}",
                record.pid
            ))),
            _ => self.core_path(),
        }
    }

    /// Returns `COREDUMP_EXE`: the crashed executable's path.
    pub fn executable(&self) -> Option<&Path> {
        self.record.as_ref()?.exe.as_deref()
    }
}

impl Selector {
    /// Returns every record that matches all the arguments (arguments of the
    /// same kind are alternatives, as in journalctl), oldest first.
    pub fn records(&self, args: &[CrashArg]) -> Result<Selection, SelectError> {
        let query = self.query(args, false);
        let mut stream = self
            .journal
            .stream(&query, ExportOptions::default())
            .map_err(SelectError::Journal)?;
        let mut selection = Selection::default();
        while let Some(entry) = stream.next_entry().map_err(SelectError::Journal)? {
            match CoredumpRecord::from_entry(&entry) {
                Ok(record) if self.unit_matches(&record) => selection.records.push(record),
                Ok(_) => {}
                Err(error) => {
                    note_rejected(&error);
                    match error {
                        RecordError::Untrusted { .. } => selection.untrusted += 1,
                        _ => selection.malformed += 1,
                    }
                }
            }
        }
        Ok(selection)
    }

    /// Returns the newest record matching all the arguments.
    pub fn newest(&self, args: &[CrashArg]) -> Result<CoredumpRecord, SelectError> {
        let query = self.query(args, true);
        let stream = self
            .journal
            .stream(&query, ExportOptions::default())
            .map_err(SelectError::Journal)?;
        self.newest_in(stream, args)
    }

    /// Returns the newest record matching all the arguments when the
    /// journal files' hash tables can find it, else `None` (see
    /// [`Journal::stream_indexed`]).
    fn newest_indexed(&self, args: &[CrashArg]) -> Result<Option<CoredumpRecord>, SelectError> {
        let query = self.query(args, true);
        let stream = self
            .journal
            .stream_indexed(&query, ExportOptions::default())
            .map_err(SelectError::Journal)?;
        match stream.map(|stream| self.newest_in(stream, args)) {
            Some(Ok(record)) => Ok(Some(record)),
            Some(Err(error)) if !error.is_no_match() => Err(error),
            Some(Err(_)) | None => Ok(None),
        }
    }

    /// Returns the first record of `stream` that the selection takes.
    fn newest_in(
        &self,
        mut stream: EntryStream,
        args: &[CrashArg],
    ) -> Result<CoredumpRecord, SelectError> {
        let mut rejected = 0usize;
        while let Some(entry) = stream.next_entry().map_err(SelectError::Journal)? {
            match CoredumpRecord::from_entry(&entry) {
                Ok(record) if self.unit_matches(&record) => {
                    if args.iter().any(|arg| matches!(arg, CrashArg::Pid(_))) {
                        self.note_older_match(&mut stream, &record);
                    }
                    return Ok(record);
                }
                Ok(_) => {}
                Err(error) => {
                    note_rejected(&error);
                    rejected = rejected.saturating_add(1);
                }
            }
        }
        let mut selection = self.describe(args);
        if rejected > 0 {
            let entries = if rejected == 1 { "entry" } else { "entries" };
            selection.push_str(&format!(
                " (left out {rejected} {entries} with systemd-coredump's MESSAGE_ID that it \
                 did not write or that are incomplete; run with -v to see why)"
            ));
        }
        Err(SelectError::NoMatch { selection })
    }

    /// Warns when `stream`, read newest first, has another record the
    /// selection takes than `newest`: PIDs are reused, so a PID may name an
    /// older crash of another program than the one taken.
    fn note_older_match(&self, stream: &mut EntryStream, newest: &CoredumpRecord) {
        while let Ok(Some(entry)) = stream.next_entry() {
            let Ok(older) = CoredumpRecord::from_entry(&entry) else {
                continue;
            };
            if !self.unit_matches(&older) {
                continue;
            }
            let describe = |record: &CoredumpRecord| {
                let name = record
                    .exe
                    .as_ref()
                    .map(|exe| exe.display().to_string())
                    .or_else(|| record.comm.clone())
                    .unwrap_or_else(|| "?".to_owned());
                format!(
                    "{name}, {}",
                    crate::time::format_time(record.crash_time_usec())
                )
            };
            tracing::warn!(
                target: "gocrash::select",
                "more than one crash has PID {}, as PIDs are reused: taking the newest ({}), \
                 not the older one ({}); list them to pick one by its core file",
                newest.pid,
                describe(newest),
                describe(&older),
            );
            return;
        }
    }

    /// Returns the record whose entry has this cursor.
    pub fn record_at(&self, cursor: &str) -> Result<CoredumpRecord, SelectError> {
        let query = Query {
            cursor: Some(cursor.to_string()),
            output_fields: RECORD_FIELDS.iter().map(|f| f.to_string()).collect(),
            ..Query::matching([format!("MESSAGE_ID={COREDUMP_MESSAGE_ID}")])
        };
        let mut stream = self
            .journal
            .stream(&query, ExportOptions::default())
            .map_err(SelectError::Journal)?;
        let no_match = || SelectError::NoMatch {
            selection: format!("cursor {cursor}"),
        };
        // `--cursor` starts at the nearest entry when the one named is gone.
        let entry = stream.next_entry().map_err(SelectError::Journal)?;
        let entry = entry
            .filter(|entry| entry.cursor() == Some(cursor))
            .ok_or_else(no_match)?;
        CoredumpRecord::from_entry(&entry).map_err(|error| {
            note_rejected(&error);
            no_match()
        })
    }

    /// Selects one crash from a command-line argument and opens it.
    pub fn open(
        &self,
        arg: Option<&str>,
        options: &OpenOptions,
    ) -> Result<CrashSource, SelectError> {
        let arg = arg.map(CrashArg::parse);
        let (record, given) = match &arg {
            Some(CrashArg::Path(path)) => (self.record_for_file(path)?, Some(path.clone())),
            Some(other) => (Some(self.newest(std::slice::from_ref(other))?), None),
            None => (Some(self.newest(&[])?), None),
        };
        let core = match (&given, &record) {
            (Some(path), _) => CoreFile::Given(path.clone()),
            (None, Some(record)) => self.core_of(record, options)?,
            (None, None) => CoreFile::Unavailable(CoreState::None),
        };
        let text = match (&record, &options.text) {
            (Some(record), Some(text_options)) => {
                crashtext::read(&self.journal, record, text_options)?
            }
            _ => None,
        };
        Ok(CrashSource { record, core, text })
    }

    /// Finds the core of a record.
    pub fn core_of(
        &self,
        record: &CoredumpRecord,
        options: &OpenOptions,
    ) -> Result<CoreFile, SelectError> {
        match self.store.state(record) {
            CoreState::Present { .. } => {
                let stored = self
                    .store
                    .open(record)
                    .map_err(|source| SelectError::Core {
                        pid: record.pid,
                        source,
                    })?;
                Ok(CoreFile::Stored(stored))
            }
            CoreState::Journal { .. } if options.inline_core => {
                let spilled = self.inline_core(record, options.temp_dir.clone())?;
                Ok(CoreFile::Inline(spilled))
            }
            state => Ok(CoreFile::Unavailable(state)),
        }
    }

    /// Reads the `COREDUMP` field of a record's entry into a temporary file.
    pub fn inline_core(
        &self,
        record: &CoredumpRecord,
        temp_dir: Option<PathBuf>,
    ) -> Result<Arc<SpilledValue>, SelectError> {
        let query = Query {
            cursor: Some(record.cursor.clone()),
            output_fields: vec![COREDUMP_FIELD.to_string()],
            ..Query::matching([format!("MESSAGE_ID={COREDUMP_MESSAGE_ID}")])
        };
        let options = ExportOptions {
            spill_dir: temp_dir,
            ..ExportOptions::default()
        }
        .with_policy(COREDUMP_FIELD, FieldPolicy::Spill);
        let mut stream = self
            .journal
            .stream(&query, options)
            .map_err(SelectError::Journal)?;
        // `--cursor` starts at the nearest entry when the one named is gone,
        // so the cursor is compared.
        let entry = stream.next_entry().map_err(SelectError::Journal)?;
        let spilled = entry
            .filter(|entry| entry.cursor() == Some(record.cursor.as_str()))
            .and_then(|entry| match entry.field(COREDUMP_FIELD) {
                Some(FieldValue::Spilled(spilled)) => Some(Arc::clone(spilled)),
                _ => None,
            });
        spilled.ok_or_else(|| SelectError::InlineCore {
            pid: record.pid,
            cursor: record.cursor.clone(),
        })
    }

    /// Finds the journal entry of a core file by its `COREDUMP_FILENAME`: a
    /// file in the coredump store, or a copy that kept the name
    /// systemd-coredump gave it (the caller checks that the core's command
    /// name is the entry's).
    fn record_for_file(&self, path: &Path) -> Result<Option<CoredumpRecord>, SelectError> {
        let Some(name) = path.file_name() else {
            return Ok(None);
        };
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let in_store = absolute.parent() == Some(self.store.dir());
        let named_by_store = name.to_str().and_then(CoreFileName::parse).is_some();
        if !(in_store || named_by_store) || open_regular_nofollow(&absolute).is_err() {
            return Ok(None);
        }
        let stored = Path::new(DEFAULT_COREDUMP_DIR).join(name);
        let args = [CrashArg::Field(format!(
            "COREDUMP_FILENAME={}",
            stored.display()
        ))];
        // One entry has this file name, which the files' hash tables find
        // without starting journalctl. journalctl still reads the files
        // they cannot serve, and looks again when they find nothing.
        match self.newest_indexed(&args) {
            Ok(Some(record)) => return Ok(Some(record)),
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(target: "gocrash::select", %error, "cannot look the core file up in the journal files directly");
            }
        }
        match self.newest(&args) {
            Ok(record) => Ok(Some(record)),
            Err(SelectError::NoMatch { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn query(&self, args: &[CrashArg], newest_first: bool) -> Query {
        let mut matches = vec![format!("MESSAGE_ID={COREDUMP_MESSAGE_ID}")];
        matches.extend(args.iter().filter_map(CrashArg::journal_match));
        Query {
            since: self.since.clone(),
            until: self.until.clone(),
            after_cursor: self.after_cursor.clone(),
            reverse: newest_first,
            output_fields: RECORD_FIELDS.iter().map(|f| f.to_string()).collect(),
            ..Query::matching(matches)
        }
    }

    fn unit_matches(&self, record: &CoredumpRecord) -> bool {
        let Some(unit) = &self.unit else {
            return true;
        };
        let unit = unit_name(unit);
        record.unit.as_deref() == Some(unit.as_ref())
            || record.user_unit.as_deref() == Some(unit.as_ref())
    }

    /// Describes a selection for the "no crash matched" message.
    pub fn describe(&self, args: &[CrashArg]) -> String {
        self.describe_with(args, None)
    }

    /// Describes a selection narrowed further by `extra`, a filter the
    /// journal query does not apply (such as a signature).
    pub fn describe_with(&self, args: &[CrashArg], extra: Option<String>) -> String {
        let mut parts = self.describe_parts(args);
        parts.extend(extra);
        if parts.is_empty() {
            "any crash in the journal".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Returns the matches and filters of a selection, each described;
    /// empty when the selection takes every crash.
    pub fn describe_parts(&self, args: &[CrashArg]) -> Vec<String> {
        let mut parts: Vec<String> = args.iter().map(ToString::to_string).collect();
        if let Some(unit) = &self.unit {
            parts.push(format!("unit {unit}"));
        }
        if let Some(since) = &self.since {
            parts.push(format!("since {since}"));
        }
        if let Some(until) = &self.until {
            parts.push(format!("until {until}"));
        }
        if let Some(cursor) = &self.after_cursor {
            parts.push(format!("after cursor {cursor}"));
        }
        parts
    }
}

/// Logs why an entry was left out. The reason is at info level so that
/// `-v` shows it: a forged entry is worth noticing.
fn note_rejected(error: &RecordError) {
    let reason = std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_default();
    tracing::info!(target: "gocrash::select", %error, %reason, "left out a coredump entry");
}

/// Completes a unit name as `journalctl -u` does: a name without one of
/// systemd's unit type suffixes is a service.
fn unit_name(name: &str) -> std::borrow::Cow<'_, str> {
    const UNIT_TYPES: &[&str] = &[
        "service",
        "socket",
        "device",
        "mount",
        "automount",
        "swap",
        "target",
        "path",
        "timer",
        "slice",
        "scope",
    ];
    let has_type = name
        .rsplit_once('.')
        .is_some_and(|(_, suffix)| UNIT_TYPES.contains(&suffix));
    if has_type {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(format!("{name}.service"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_follow_coredumpctl() {
        assert_eq!(CrashArg::parse_match("1234"), CrashArg::Pid(1234));
        assert_eq!(
            CrashArg::parse_match("/usr/bin/app"),
            CrashArg::Exe(PathBuf::from("/usr/bin/app"))
        );
        assert_eq!(
            CrashArg::parse_match("nilpointer"),
            CrashArg::Comm("nilpointer".into())
        );
        assert_eq!(
            CrashArg::parse_match("COREDUMP_UID=1000"),
            CrashArg::Field("COREDUMP_UID=1000".into())
        );
        assert_eq!(CrashArg::parse_match("a=b"), CrashArg::Comm("a=b".into()));
        let relative = CrashArg::parse_match("bin/app");
        let CrashArg::Exe(relative) = relative else {
            panic!("bin/app is not an executable match");
        };
        assert!(relative.is_absolute());
        assert!(relative.ends_with("bin/app"));
    }

    #[test]
    fn matches_name_journal_fields() {
        assert_eq!(
            CrashArg::Pid(7).journal_match().as_deref(),
            Some("COREDUMP_PID=7")
        );
        assert_eq!(
            CrashArg::Comm("app".into()).journal_match().as_deref(),
            Some("COREDUMP_COMM=app")
        );
        assert_eq!(CrashArg::Path(PathBuf::from("/c")).journal_match(), None);
    }

    #[test]
    fn existing_files_are_sniffed() {
        let dir = tempfile::tempdir().unwrap();
        let core = dir.path().join("1234");
        let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&ET_CORE.to_le_bytes());
        std::fs::write(&core, &header).unwrap();
        assert_eq!(
            CrashArg::parse(core.to_str().unwrap()),
            CrashArg::Path(core.clone())
        );

        let exe = dir.path().join("app");
        header[16] = 2; // ET_EXEC
        std::fs::write(&exe, &header).unwrap();
        assert_eq!(
            CrashArg::parse(exe.to_str().unwrap()),
            CrashArg::Exe(exe.clone())
        );

        // A core whose e_type was damaged is still read as a core, whose
        // error then names the fault.
        let damaged = dir.path().join("damaged");
        header[16] = 0; // ET_NONE
        std::fs::write(&damaged, &header).unwrap();
        assert_eq!(
            CrashArg::parse(damaged.to_str().unwrap()),
            CrashArg::Path(damaged.clone())
        );

        let zst = dir.path().join("core.app.zst");
        std::fs::write(&zst, [0x28, 0xb5, 0x2f, 0xfd, 0, 0]).unwrap();
        assert_eq!(
            CrashArg::parse(zst.to_str().unwrap()),
            CrashArg::Path(zst.clone())
        );

        // A digit-only name that is not a file is a PID.
        assert_eq!(CrashArg::parse("4242424"), CrashArg::Pid(4242424));
    }

    #[test]
    fn selection_is_described() {
        let selector = Selector {
            unit: Some("app.service".into()),
            ..Selector::default()
        };
        assert_eq!(
            selector.describe(&[CrashArg::Pid(5)]),
            "PID 5, unit app.service"
        );
        assert_eq!(
            Selector::default().describe(&[]),
            "any crash in the journal"
        );
    }

    #[test]
    fn field_match_may_hold_a_path() {
        assert_eq!(
            CrashArg::parse_match("COREDUMP_FILENAME=/var/lib/systemd/coredump/core.x.zst"),
            CrashArg::Field("COREDUMP_FILENAME=/var/lib/systemd/coredump/core.x.zst".into())
        );
        assert_eq!(
            CrashArg::parse_match("/opt/a=b/app"),
            CrashArg::Exe(PathBuf::from("/opt/a=b/app"))
        );
    }

    #[test]
    fn unit_without_type_is_a_service() {
        assert_eq!(unit_name("web"), "web.service");
        assert_eq!(unit_name("web.service"), "web.service");
        assert_eq!(unit_name("backup.timer"), "backup.timer");
        assert_eq!(unit_name("app.v2"), "app.v2.service");
    }
}
