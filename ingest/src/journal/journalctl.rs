//! Runs `journalctl --output=export` and streams its entries.
//!
//! `journalctl` reads every journal format the host's systemd writes (all
//! compressions, compact and regular files, several files interleaved) and
//! applies matches with the journal's own indexes, so this crate leaves the
//! on-disk format to it. [`Journal`] says which journal to read (the local
//! one, a directory, or files copied from another host) and [`Query`] what
//! to read from it; [`EntryStream`] parses the output with
//! [`super::ExportReader`] while `journalctl` is still writing it.
//!
//! Matches follow journalctl's rules: matches on the same field are ORed,
//! matches on different fields are ANDed, and a `+` term separates
//! alternatives.

use std::ffi::OsString;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use super::direct::DirectStream;
use super::export::{ExportError, ExportOptions, ExportReader};
use super::file::JournalFileError;
use super::Entry;

/// The time zone journalctl reads `--since` and `--until` in: UTC, the zone
/// gocrash prints every time in, so that a time copied from its output
/// selects what it shows.
const TIME_ZONE: &str = "UTC";

/// The program run when [`Journal::program`] is not changed.
pub const DEFAULT_JOURNALCTL: &str = "journalctl";
/// Bytes of journalctl's stderr kept for error messages; the rest is read
/// and dropped so that journalctl never blocks on a full pipe.
pub const MAX_STDERR_BYTES: usize = 16 * 1024;
/// Buffer between journalctl's stdout and the export parser.
const STDOUT_BUFFER_BYTES: usize = 256 * 1024;

/// The program or code that reads the journal files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JournalReader {
    /// `journalctl --output=export`, which reads every format the host's
    /// systemd writes.
    #[default]
    Journalctl,
    /// The crate's own reader of journal files ([`super::direct`]), for
    /// hosts without journalctl. It accepts times only as `@SECONDS`.
    Direct,
}

/// Which journal to read, and with which `journalctl`.
#[derive(Clone, Debug)]
pub struct Journal {
    /// The `journalctl` program; found through `PATH` unless it holds a `/`.
    pub program: PathBuf,
    /// Read the journal files in this directory (`--directory`), such as
    /// `/var/log/journal/remote` or a copy from another host.
    pub directory: Option<PathBuf>,
    /// Read these journal files (`--file`, globs allowed).
    pub files: Vec<PathBuf>,
    /// Interleave entries of all available journals, including other
    /// machines' (`--merge`).
    pub merge: bool,
    /// Read through journalctl or directly.
    pub reader: JournalReader,
    /// The direct reader's index of the files, made by the first query and
    /// shared by clones; take it from [`Journal::default`].
    pub scan: super::direct::ScanCache,
}

impl Default for Journal {
    fn default() -> Journal {
        Journal {
            program: PathBuf::from(DEFAULT_JOURNALCTL),
            directory: None,
            files: Vec::new(),
            merge: false,
            reader: JournalReader::default(),
            scan: super::direct::ScanCache::default(),
        }
    }
}

/// What to read from the journal.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// `FIELD=VALUE` matches, and `+` between alternatives.
    pub matches: Vec<String>,
    /// `--since`, in any syntax journalctl accepts (`2024-05-01 10:00`,
    /// `-1h`, `yesterday`, `@1714557600.5`).
    pub since: Option<String>,
    /// `--until`, same syntax as `since`.
    pub until: Option<String>,
    /// `--after-cursor`: resume after the entry with this cursor.
    pub after_cursor: Option<String>,
    /// `--cursor`: start at the entry with this cursor, or the nearest one
    /// when it is gone.
    pub cursor: Option<String>,
    /// `--lines`: only the newest this many entries.
    pub lines: Option<usize>,
    /// `--reverse`: newest entries first.
    pub reverse: bool,
    /// `--output-fields`: print only these fields (journalctl adds the
    /// cursor, timestamps and boot ID).
    pub output_fields: Vec<String>,
}

impl Query {
    /// Starts a query with these matches.
    pub fn matching<I, S>(matches: I) -> Query
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Query {
            matches: matches.into_iter().map(Into::into).collect(),
            ..Query::default()
        }
    }
}

/// Formats a time in microseconds since the Unix epoch in journalctl's
/// `@SECONDS.MICROSECONDS` syntax.
pub fn at_usec(usec: u64) -> String {
    format!("@{}.{:06}", usec / 1_000_000, usec % 1_000_000)
}

/// Failure to run journalctl or to read what it wrote.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("invalid journal match {0:?}: expected FIELD=VALUE or +")]
    InvalidMatch(String),
    #[error("failed to run {program} (is systemd's journalctl installed?)")]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("journalctl failed ({status}): {stderr} (ran `{command}`)")]
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("invalid export output from `{command}`")]
    Export {
        command: String,
        #[source]
        source: ExportError,
    },
    #[error("failed to wait for `{command}`")]
    Wait {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to read a journal file directly")]
    File(#[source] JournalFileError),
    #[error(
        "the direct journal reader takes {option} only as @SECONDS (seconds since the \
         epoch), not {value:?}; use the journalctl reader for other forms"
    )]
    UnsupportedByDirectReader { option: &'static str, value: String },
    #[error(
        "invalid {option} value {value:?} (journalctl: {message}); give a time journalctl \
         accepts, such as \"2024-05-01 10:00\", \"-1h\", \"yesterday\" or \"@1714557600\""
    )]
    InvalidTime {
        option: &'static str,
        value: String,
        /// journalctl's own message.
        message: String,
    },
    #[error("journalctl rejects the journal match {matches} (journalctl: {message}); give FIELD=VALUE with a field the journal's entries have (journalctl -o verbose shows them)")]
    RejectedMatch { matches: String, message: String },
    #[error("--since {since:?} is not before --until {until:?} (journalctl: {message})")]
    TimesOutOfOrder {
        since: String,
        until: String,
        message: String,
    },
    #[error("invalid cursor for {option}: {cursor:?}, expected s=...;i=...;t=... parts")]
    InvalidCursor {
        option: &'static str,
        cursor: String,
    },
}

impl JournalError {
    /// Reports whether the error is in a value the user gave (a match, a
    /// time or a cursor) rather than in the journal or journalctl.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(
            self,
            JournalError::InvalidMatch(_)
                | JournalError::InvalidTime { .. }
                | JournalError::TimesOutOfOrder { .. }
                | JournalError::RejectedMatch { .. }
                | JournalError::UnsupportedByDirectReader { .. }
                | JournalError::InvalidCursor { .. }
        )
    }
}

impl Journal {
    /// Returns the arguments journalctl runs with for `query`.
    pub fn arguments(&self, query: &Query) -> Result<Vec<OsString>, JournalError> {
        let mut args: Vec<OsString> = vec![
            "--output=export".into(),
            "--no-pager".into(),
            "--quiet".into(),
        ];
        if let Some(directory) = &self.directory {
            args.push(option_path("--directory=", directory));
        }
        for file in &self.files {
            // journalctl rejects relative paths in some modes, so they are
            // made absolute here.
            let absolute = std::path::absolute(file).unwrap_or_else(|_| file.clone());
            args.push(option_path("--file=", &absolute));
        }
        if self.merge {
            args.push("--merge".into());
        }
        let mut push = |name: &str, value: &Option<String>| {
            if let Some(value) = value {
                args.push(format!("{name}={value}").into());
            }
        };
        push("--since", &query.since);
        push("--until", &query.until);
        push("--after-cursor", &query.after_cursor);
        push("--cursor", &query.cursor);
        if let Some(lines) = query.lines {
            args.push(format!("--lines={lines}").into());
        }
        if query.reverse {
            args.push("--reverse".into());
        }
        if !query.output_fields.is_empty() {
            args.push(format!("--output-fields={}", query.output_fields.join(",")).into());
        }
        if !query.matches.is_empty() {
            // Ends the options, so that no match can be read as one.
            args.push("--".into());
            for term in &query.matches {
                if !is_valid_match(term) {
                    return Err(JournalError::InvalidMatch(term.clone()));
                }
                args.push(term.into());
            }
        }
        Ok(args)
    }

    /// Reads the entries `query` selects through the journal files' hash
    /// tables, with the direct reader whichever reader is set, when those
    /// tables can find them (see [`DirectStream::open_indexed`]). `None`
    /// when they cannot, and [`Journal::stream`] must read them. A lookup
    /// of a few entries by a rare field takes a few milliseconds this way,
    /// less than journalctl takes to start.
    pub fn stream_indexed(
        &self,
        query: &Query,
        options: ExportOptions,
    ) -> Result<Option<EntryStream>, JournalError> {
        let direct = DirectStream::open_indexed(self, query, options)?;
        Ok(direct.map(|direct| EntryStream {
            command: direct.describe(),
            source: StreamSource::Direct(direct),
            finished: false,
        }))
    }

    /// Starts journalctl, or opens the journal files for the direct
    /// reader, and returns the entries as they arrive.
    pub fn stream(
        &self,
        query: &Query,
        options: ExportOptions,
    ) -> Result<EntryStream, JournalError> {
        if self.reader == JournalReader::Direct {
            let direct = DirectStream::open(self, query, options)?;
            return Ok(EntryStream {
                command: direct.describe(),
                source: StreamSource::Direct(direct),
                finished: false,
            });
        }
        let args = self.arguments(query)?;
        let command = describe_command(&self.program, &args);
        tracing::debug!(target: "gocrash::journal", program = %self.program.display(), ?args, "running journalctl");
        let mut child = Command::new(&self.program)
            .args(&args)
            .env("TZ", TIME_ZONE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| JournalError::Spawn {
                program: self.program.clone(),
                source,
            })?;
        let stderr = child
            .stderr
            .take()
            .map(|pipe| std::thread::spawn(move || read_bounded(pipe, MAX_STDERR_BYTES)));
        let stdout = child.stdout.take().ok_or_else(|| JournalError::Spawn {
            program: self.program.clone(),
            source: io::Error::other("no pipe for journalctl's stdout"),
        })?;
        Ok(EntryStream {
            source: StreamSource::Journalctl(JournalctlProcess {
                reader: ExportReader::new(
                    BufReader::with_capacity(STDOUT_BUFFER_BYTES, stdout),
                    options,
                ),
                child,
                stderr,
                program: self.program.clone(),
                since: query.since.clone(),
                until: query.until.clone(),
                matches: query.matches.clone(),
            }),
            command,
            finished: false,
        })
    }

    /// Runs a query and collects every entry, for queries known to return
    /// few.
    pub fn collect(
        &self,
        query: &Query,
        options: ExportOptions,
    ) -> Result<Vec<Entry>, JournalError> {
        let mut stream = self.stream(query, options)?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.next_entry()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// Entries read from a running journalctl, or from journal files directly.
/// Dropping the stream before its end stops journalctl.
pub struct EntryStream {
    source: StreamSource,
    command: String,
    finished: bool,
}

enum StreamSource {
    Journalctl(JournalctlProcess),
    Direct(DirectStream),
}

/// A running journalctl and the parser of its output.
struct JournalctlProcess {
    reader: ExportReader<BufReader<ChildStdout>>,
    child: Child,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// The program and the query's times and matches, to find out after a
    /// failure whether journalctl rejected a time or a match.
    program: PathBuf,
    since: Option<String>,
    until: Option<String>,
    matches: Vec<String>,
}

impl JournalctlProcess {
    /// Checks whether journalctl rejects `--since` or `--until` alone, or
    /// the two together (a start after the end), and returns the error
    /// naming the option. It runs only after journalctl failed, so a
    /// successful query starts one process. It reads journalctl's exit
    /// status, not the wording of its messages.
    fn rejected_time(&self) -> Option<JournalError> {
        let since = self.since.as_deref().map(|value| ("--since", value));
        let until = self.until.as_deref().map(|value| ("--until", value));
        for option in [since, until].into_iter().flatten() {
            if let Some(message) = self.check_times(&[option]) {
                return Some(JournalError::InvalidTime {
                    option: option.0,
                    value: option.1.to_string(),
                    message,
                });
            }
        }
        let (Some(since), Some(until)) = (since, until) else {
            return None;
        };
        let message = self.check_times(&[since, until])?;
        Some(JournalError::TimesOutOfOrder {
            since: since.1.to_string(),
            until: until.1.to_string(),
            message,
        })
    }

    /// Checks whether journalctl rejects the query's matches alone, such as
    /// a field name it does not accept, and returns the error.
    fn rejected_match(&self) -> Option<JournalError> {
        if self.matches.is_empty() {
            return None;
        }
        let arguments = std::iter::once("--".to_owned()).chain(self.matches.iter().cloned());
        let message = self.check_arguments(arguments)?;
        // The coredump query's own MESSAGE_ID match is always valid, so only
        // the others are named.
        let matches: Vec<&str> = self
            .matches
            .iter()
            .map(String::as_str)
            .filter(|term| !term.starts_with("MESSAGE_ID="))
            .collect();
        Some(JournalError::RejectedMatch {
            matches: matches.join(" "),
            message,
        })
    }

    /// Runs journalctl with these time options and no output. Returns its
    /// message when it fails.
    fn check_times(&self, options: &[(&str, &str)]) -> Option<String> {
        self.check_arguments(
            options
                .iter()
                .map(|(name, value)| format!("{name}={value}")),
        )
    }

    /// Runs journalctl with `arguments` and no output, which checks them
    /// without reading the journal. Returns its message when it fails.
    fn check_arguments(&self, arguments: impl IntoIterator<Item = String>) -> Option<String> {
        let output = Command::new(&self.program)
            .args(["--lines=0", "--quiet", "--no-pager"])
            .args(arguments)
            .env("TZ", TIME_ZONE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .ok()?;
        if output.status.success() {
            return None;
        }
        let stderr = output
            .stderr
            .get(..MAX_STDERR_BYTES)
            .unwrap_or(&output.stderr);
        Some(String::from_utf8_lossy(stderr).trim().to_string())
    }
}

impl EntryStream {
    /// Returns the next entry, or `None` once journalctl has finished and
    /// exited successfully. An invalid stream or a failed journalctl is an
    /// error; the entries returned before it stay valid.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, JournalError> {
        if self.finished {
            return Ok(None);
        }
        let process = match &mut self.source {
            StreamSource::Journalctl(process) => process,
            StreamSource::Direct(direct) => {
                let entry = direct.next_entry();
                self.finished = !matches!(entry, Ok(Some(_)));
                return entry;
            }
        };
        match process.reader.next_entry() {
            Ok(Some(entry)) => Ok(Some(entry)),
            Ok(None) => {
                self.finish()?;
                Ok(None)
            }
            Err(source) => {
                // A failed journalctl explains a cut stream better than the
                // parser can. One still writing is stopped: it would block
                // on the full pipe no one reads, while this waited for it.
                if exits_soon(&mut process.child) {
                    self.finish()?;
                } else {
                    let _ = process.child.kill();
                    let _ = process.child.wait();
                    self.finished = true;
                }
                Err(JournalError::Export {
                    command: self.command.clone(),
                    source,
                })
            }
        }
    }

    /// Returns the command line, for messages.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Waits for journalctl to exit and checks its status.
    fn finish(&mut self) -> Result<(), JournalError> {
        self.finished = true;
        let StreamSource::Journalctl(process) = &mut self.source else {
            return Ok(());
        };
        let status = process.child.wait().map_err(|source| JournalError::Wait {
            command: self.command.clone(),
            source,
        })?;
        let stderr = process
            .stderr
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
        if !status.success() {
            if let Some(rejected) = process.rejected_time().or_else(|| process.rejected_match()) {
                return Err(rejected);
            }
            return Err(JournalError::Failed {
                command: self.command.clone(),
                status,
                stderr,
            });
        }
        if !stderr.is_empty() {
            tracing::warn!(target: "gocrash::journal", command = %self.command, "journalctl: {stderr}");
        }
        Ok(())
    }
}

/// How long a journalctl whose output could not be parsed may take to exit
/// on its own, when its failure is what cut the output.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Reports whether `child` exits within [`EXIT_GRACE`].
fn exits_soon(child: &mut Child) -> bool {
    let deadline = std::time::Instant::now() + EXIT_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Ok(None) | Err(_) => return false,
        }
    }
}

impl Iterator for EntryStream {
    type Item = Result<Entry, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

impl Drop for EntryStream {
    fn drop(&mut self) {
        if let (false, StreamSource::Journalctl(process)) = (self.finished, &mut self.source) {
            // The child is ours; killing it only ends a read the caller no
            // longer wants.
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}

/// Reports whether a term is `+` or `FIELD=VALUE` with a valid field name.
pub(super) fn is_valid_match(term: &str) -> bool {
    if term == "+" {
        return true;
    }
    let Some((name, _)) = term.split_once('=') else {
        return false;
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_uppercase() || first == b'_' => {
            bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        }
        _ => false,
    }
}

fn option_path(option: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(option);
    arg.push(path.as_os_str());
    arg
}

/// Returns the command line for messages. The list of output fields, which
/// runs to a thousand characters and is the same in every query, is left
/// out; `-vv` logs every argument.
fn describe_command(program: &Path, args: &[OsString]) -> String {
    let mut text = program.display().to_string();
    for arg in args {
        let arg = arg.to_string_lossy();
        text.push(' ');
        match arg.strip_prefix("--output-fields=") {
            Some(_) => text.push_str("--output-fields=..."),
            None => text.push_str(&arg),
        }
    }
    text
}

/// Reads a pipe to its end, keeping the first `limit` bytes.
fn read_bounded(mut pipe: impl Read, limit: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return kept,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return kept,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_put_matches_after_options() {
        let journal = Journal {
            directory: Some(PathBuf::from("/srv/journal")),
            merge: true,
            ..Journal::default()
        };
        let query = Query {
            matches: vec!["_PID=42".into(), "+".into(), "_COMM=app".into()],
            since: Some("-1h".into()),
            after_cursor: Some("s=abc;i=1".into()),
            lines: Some(5),
            reverse: true,
            output_fields: vec!["MESSAGE".into(), "_PID".into()],
            ..Query::default()
        };
        let args: Vec<String> = journal
            .arguments(&query)
            .unwrap()
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "--output=export",
                "--no-pager",
                "--quiet",
                "--directory=/srv/journal",
                "--merge",
                "--since=-1h",
                "--after-cursor=s=abc;i=1",
                "--lines=5",
                "--reverse",
                "--output-fields=MESSAGE,_PID",
                "--",
                "_PID=42",
                "+",
                "_COMM=app",
            ]
        );
    }

    #[test]
    fn relative_files_become_absolute() {
        let journal = Journal {
            files: vec![PathBuf::from("copy/system.journal")],
            ..Journal::default()
        };
        let args = journal.arguments(&Query::default()).unwrap();
        let file = args[3].to_string_lossy().into_owned();
        assert!(file.starts_with("--file=/"), "{file}");
        assert!(file.ends_with("/copy/system.journal"), "{file}");
    }

    #[test]
    fn matches_must_name_a_field() {
        for bad in [
            "--since=now",
            "pid=1",
            "NOEQUALS",
            "=value",
            "1X=2",
            "A-B=c",
        ] {
            let query = Query::matching([bad]);
            assert!(
                matches!(
                    Journal::default().arguments(&query),
                    Err(JournalError::InvalidMatch(_))
                ),
                "{bad}"
            );
        }
        let query = Query::matching(["COREDUMP_EXE=/usr/bin/a=b", "_PID=1"]);
        assert!(Journal::default().arguments(&query).is_ok());
    }

    #[test]
    fn at_usec_keeps_microseconds() {
        assert_eq!(at_usec(1_796_418_265_000_001), "@1796418265.000001");
        assert_eq!(at_usec(5), "@0.000005");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let journal = Journal {
            program: PathBuf::from("/nonexistent/journalctl"),
            ..Journal::default()
        };
        let error = journal
            .stream(&Query::default(), ExportOptions::default())
            .err()
            .unwrap();
        assert!(matches!(error, JournalError::Spawn { .. }), "{error}");
    }

    #[test]
    fn command_line_leaves_out_the_output_fields() {
        let args: Vec<OsString> = ["--no-pager", "--output-fields=MESSAGE,_PID", "--since=@1"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            describe_command(Path::new("journalctl"), &args),
            "journalctl --no-pager --output-fields=... --since=@1"
        );
    }

    #[test]
    fn failing_program_reports_stderr() {
        // `false` exits 1 without output, like journalctl rejecting an
        // option.
        let journal = Journal {
            program: PathBuf::from("false"),
            ..Journal::default()
        };
        let mut stream = journal
            .stream(&Query::default(), ExportOptions::default())
            .unwrap();
        let error = stream.next_entry().err().unwrap();
        assert!(matches!(error, JournalError::Failed { .. }), "{error}");
    }
}
