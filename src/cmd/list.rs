//! `gocrash list`: one line per crash systemd-coredump recorded, oldest
//! first, like `coredumpctl list`, with the Go version and the crash's
//! headline.
//!
//! The journal options shared by the commands that select crashes
//! ([`JournalArgs`]) live here too. Reading the journal and the crash text
//! is the `ingest` crate's job; this module only arranges the columns.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Context;
use ingest::coredump::{CoreState, CoredumpRecord, CoredumpStore};
use ingest::crashtext::{self, TextOptions};
use ingest::journal::{Journal, JournalReader};
use ingest::select::{CrashArg, SelectError, Selector};
pub use ingest::time::{format_rfc3339, format_time};
use serde::Serialize;

use crate::exit::{Status, WithStatus};
use crate::render::escape::{cap_line, escape_line};

/// journalctl processes run at once to read headlines. Each spends most of
/// its time opening journal files, so a few overlap well even on two cores.
const HEADLINE_WORKERS: usize = 4;
/// Hex digits of a signature id (docs/signature.md).
const SIGNATURE_DIGITS: usize = 16;
/// Maximum bytes of a headline in text output. A panic value can be 64 KiB,
/// so a longer headline is cut here and ends with its full length.
pub const MAX_HEADLINE_BYTES: usize = 512;

/// Journal and core locations and time and unit filters: the options every
/// crash-selecting command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct JournalArgs {
    /// Read the journal files in DIR (journalctl --directory), such as a
    /// copy from another host or /var/log/journal/remote.
    #[arg(short = 'D', long, value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Read this journal file (journalctl --file); repeat for several.
    #[arg(long, value_name = "FILE")]
    pub file: Vec<PathBuf>,
    /// Read the journals of all machines found, interleaved (journalctl
    /// --merge), such as an aggregator's remote journals.
    #[arg(short = 'm', long)]
    pub merge: bool,
    /// Look up the cores named in the journal in DIR, by file name, instead
    /// of /var/lib/systemd/coredump: for cores copied from another host.
    #[arg(long, value_name = "DIR")]
    pub coredump_dir: Option<PathBuf>,
    /// Only crashes recorded at or after this time, in journalctl's syntax
    /// ("2024-05-01 10:00", "-1h", "yesterday"); a time without a zone is
    /// UTC, as gocrash prints times.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only crashes recorded at or before this time, in journalctl's syntax.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Only crashes of this systemd unit (system or user unit); a name
    /// without a unit type means a .service, as with journalctl -u.
    #[arg(long, value_name = "UNIT")]
    pub unit: Option<String>,
    /// Read the journal through journalctl, or directly with gocrash's own
    /// reader for hosts without journalctl (it walks journals of systemd
    /// before 246 entry by entry, and takes --since and --until only as
    /// @SECONDS).
    #[arg(long, value_name = "READER", value_enum, default_value_t = ReaderArg::Journalctl)]
    pub journal_reader: ReaderArg,
}

/// The values of `--journal-reader`. The variants have no doc comments on
/// purpose: clap would print them as a long list in every command's help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReaderArg {
    Journalctl,
    Direct,
}

impl JournalArgs {
    /// Builds the crash selector these options describe.
    pub fn selector(&self) -> Selector {
        Selector {
            journal: Journal {
                directory: self.directory.clone(),
                files: self.file.clone(),
                merge: self.merge,
                reader: match self.journal_reader {
                    ReaderArg::Journalctl => JournalReader::Journalctl,
                    ReaderArg::Direct => JournalReader::Direct,
                },
                ..Journal::default()
            },
            store: match &self.coredump_dir {
                Some(dir) => CoredumpStore::remapped(dir),
                None => CoredumpStore::default(),
            },
            since: self.since.clone(),
            until: self.until.clone(),
            unit: self.unit.clone(),
            after_cursor: None,
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "MATCH is a PID (all digits), an executable path (contains /), a \
journal match FIELD=VALUE, or a command name (COREDUMP_COMM); matches of one kind are \
alternatives, matches of different kinds must all hold.\n\nExit status: 0 when crashes were \
listed; 1 on failure; 2 for an invalid command line (also a time or journal match \
journalctl rejects); 3 when no crash matched."
)]
pub struct Args {
    /// Only crashes matching these.
    #[arg(value_name = "MATCH")]
    pub matches: Vec<String>,
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Print a JSON array, one object per crash.
    #[arg(long)]
    pub json: bool,
    /// Only crashes with this signature (the 16 hex digits `gocrash report`
    /// and `gocrash info` print). It is computed from the journal's crash
    /// text, or from the core where there is no text, which is slower.
    #[arg(long, value_name = "SIG", value_parser = parse_signature)]
    pub signature: Option<String>,
    /// Only crashes recorded after the journal entry with this cursor (the
    /// `cursor` of a `--json` row), to resume where an earlier listing
    /// ended.
    #[arg(long, value_name = "CURSOR", value_parser = parse_cursor)]
    pub after_cursor: Option<String>,
    /// Only the N newest crashes (after the other filters).
    #[arg(short = 'n', long = "lines", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub lines: Option<u32>,
    /// Newest crashes first.
    #[arg(short, long)]
    pub reverse: bool,
}

/// Checks that `text` has the form of a journal cursor,
/// `s=...;i=...;b=...;m=...;t=...;x=...`, so that a mistyped value is a
/// usage error instead of journalctl's failure to seek.
fn parse_cursor(text: &str) -> Result<String, String> {
    const KEYS: [&str; 6] = ["s", "i", "b", "m", "t", "x"];
    let valid = text.split(';').all(|part| {
        part.split_once('=').is_some_and(|(key, value)| {
            KEYS.contains(&key) && !value.is_empty() && value.bytes().all(|b| b.is_ascii_hexdigit())
        })
    });
    if valid {
        Ok(text.to_owned())
    } else {
        Err(
            "expected a journal cursor such as the `cursor` of a `list --json` row \
             (s=...;i=...;b=...;m=...;t=...;x=..., hex values)"
                .to_owned(),
        )
    }
}

/// One crash as `list --json` prints it.
#[derive(Debug, Serialize)]
struct Row {
    /// COREDUMP_TIMESTAMP (or the entry's time), microseconds since the epoch.
    time_usec: u64,
    /// The same time as RFC 3339 in UTC.
    time: String,
    pid: u32,
    uid: Option<u32>,
    signal: Option<u32>,
    signal_name: Option<String>,
    #[serde(flatten)]
    core: CoreState,
    truncated: bool,
    unit: Option<String>,
    exe: Option<String>,
    comm: Option<String>,
    /// The Go release that built the executable, from its build
    /// information; null when it is not Go or cannot be read.
    go_version: Option<String>,
    /// "go", "not_go" (an ELF file without Go build information) or
    /// "unreadable" (missing or damaged executable).
    executable_kind: &'static str,
    #[serde(skip)]
    go: GoVersion,
    /// The crash report's first line, or the signal when the journal has no
    /// crash text.
    headline: String,
    /// The headline's length in bytes as the process printed it: longer
    /// than `headline` when the text reader cut a line over 64 KiB.
    headline_bytes: usize,
    /// Source of the headline: "text" or "signal".
    headline_source: &'static str,
    cursor: String,
    boot_id: Option<String>,
    /// The crash signature's id, with `--signature` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    /// What the signature was computed from: "text" or "core".
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_source: Option<&'static str>,
}

/// The Go version of a crashed executable, read from its build
/// information.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GoVersion {
    /// A Go binary built by this release.
    Version(String),
    /// An ELF file without Go build information.
    NotGo,
    /// The executable is missing or unreadable.
    Unknown,
}

impl GoVersion {
    /// Returns the version, when the executable is a Go binary.
    pub fn version(&self) -> Option<&str> {
        match self {
            GoVersion::Version(version) => Some(version),
            _ => None,
        }
    }

    /// Returns the kind of executable, as `list --json` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            GoVersion::Version(_) => "go",
            GoVersion::NotGo => "not_go",
            GoVersion::Unknown => "unreadable",
        }
    }

    fn column(&self) -> &str {
        match self {
            GoVersion::Version(version) => version,
            GoVersion::NotGo => "-",
            GoVersion::Unknown => "?",
        }
    }
}

/// Reads the Go version from an executable's build information.
pub fn read_go_version(path: &Path) -> GoVersion {
    let binary = match symbolizer::binary::Binary::open(path) {
        Ok(binary) => binary,
        Err(symbolizer::binary::BinaryError::Elf { .. }) => return GoVersion::NotGo,
        Err(error) => {
            tracing::debug!(target: "gocrash::list", %error, "cannot open the executable");
            return GoVersion::Unknown;
        }
    };
    match symbolizer::buildinfo::read_raw(binary.elf()) {
        Ok(raw) => GoVersion::Version(raw.go_version),
        Err(symbolizer::buildinfo::BuildInfoError::NotFound { .. }) => GoVersion::NotGo,
        Err(error) => {
            tracing::debug!(target: "gocrash::list", path = %path.display(), %error, "damaged build information");
            GoVersion::Unknown
        }
    }
}

/// Counts journal entries in words: "1 journal entry", "2 journal entries".
fn entries(count: usize) -> String {
    if count == 1 {
        "1 journal entry".to_owned()
    } else {
        format!("{count} journal entries")
    }
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let selector = Selector {
        after_cursor: args.after_cursor.clone(),
        ..args.journal.selector()
    };
    let matches: Vec<CrashArg> = args
        .matches
        .iter()
        .map(|m| CrashArg::parse_match(m))
        .collect();
    let selection = selector.records(&matches).context("cannot list crashes")?;
    if selection.malformed > 0 {
        tracing::warn!(
            target: "gocrash::list",
            "left out {}: written by systemd-coredump without a valid COREDUMP_PID, cursor or time (-v names each)",
            entries(selection.malformed)
        );
    }
    if selection.untrusted > 0 {
        tracing::warn!(
            target: "gocrash::list",
            "left out {} with the coredump message ID that systemd-coredump did not write, so forged by another process (-v names each)",
            entries(selection.untrusted)
        );
    }
    let mut records = selection.records;
    let mut signatures = Vec::new();
    if let Some(wanted) = &args.signature {
        let computed = crate::report::occurrences::signatures(&selector, &records);
        let mut kept = Vec::new();
        for (record, computed) in records.into_iter().zip(computed) {
            match computed {
                Ok(found) if found.signature.id == *wanted => {
                    kept.push(record);
                    signatures.push(found);
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::info!(target: "gocrash::list", pid = record.pid, %error, "no signature for the crash")
                }
            }
        }
        records = kept;
    }
    if let Some(lines) = args.lines {
        let older = records.len().saturating_sub(lines as usize);
        records.drain(..older);
        signatures.drain(..older.min(signatures.len()));
    }
    let mut rows = build_rows(&selector, &records);
    for (row, found) in rows.iter_mut().zip(&signatures) {
        row.signature = Some(found.signature.id.clone());
        row.signature_source = Some(found.from);
    }

    if args.reverse {
        rows.reverse();
    }

    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        crate::output::write_json(&mut stdout, &rows, crate::output::indent_stdout_json())
    } else if !rows.is_empty() {
        stdout.write_all(format_table(&rows).as_bytes())
    } else {
        Ok(())
    };
    written
        .and_then(|()| stdout.flush())
        .map_err(crate::output::stdout_error)?;
    if rows.is_empty() {
        let signature = args.signature.as_ref().map(|s| format!("signature {s}"));
        let selection = selector.describe_with(&matches, signature);
        return Err(WithStatus {
            status: Status::NoMatch,
            message: SelectError::NoMatch { selection }.to_string(),
        }
        .into());
    }
    Ok(Status::Success)
}

/// Reads a `--signature` argument, in lower case: 16 hex digits, as
/// signatures are printed. Upper-case digits are accepted.
fn parse_signature(text: &str) -> Result<String, String> {
    let id = text.trim().to_ascii_lowercase();
    if id.len() != SIGNATURE_DIGITS || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "expected {SIGNATURE_DIGITS} hex digits, such as c65a69725fc05083"
        ));
    }
    Ok(id)
}

/// Turns a selection error into the command's error, with exit status 3
/// when nothing matched.
pub fn select_error(error: SelectError) -> anyhow::Error {
    if error.is_no_match() {
        WithStatus {
            status: Status::NoMatch,
            message: error.to_string(),
        }
        .into()
    } else {
        anyhow::Error::new(error)
    }
}

/// Reads each record's core state, Go version and headline. Headlines need
/// one journal query each, so they are read by a few workers at once.
fn build_rows(selector: &Selector, records: &[CoredumpRecord]) -> Vec<Row> {
    let headlines: Vec<Mutex<Option<(String, usize)>>> =
        records.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..HEADLINE_WORKERS.min(records.len()) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(record) = records.get(index) else {
                    break;
                };
                let headline = read_headline(&selector.journal, record);
                if let Some(Ok(mut slot)) = headlines.get(index).map(Mutex::lock) {
                    *slot = headline;
                }
            });
        }
    });

    let mut versions: HashMap<PathBuf, GoVersion> = HashMap::new();
    records
        .iter()
        .zip(headlines)
        .map(|(record, headline)| {
            let go = match &record.exe {
                Some(exe) => versions
                    .entry(exe.clone())
                    .or_insert_with(|| read_go_version(exe))
                    .clone(),
                None => GoVersion::Unknown,
            };
            let headline = headline.into_inner().ok().flatten();
            let (headline, headline_bytes, headline_source) = match headline {
                Some((line, len)) => (line, len, "text"),
                None => {
                    let label = record.signal_label();
                    let len = label.len();
                    (label, len, "signal")
                }
            };
            Row {
                time_usec: record.crash_time_usec(),
                time: format_rfc3339(record.crash_time_usec()),
                pid: record.pid,
                uid: record.uid,
                signal: record.signal.as_ref().map(|s| s.number),
                signal_name: record.signal.as_ref().and_then(|s| s.name.clone()),
                core: selector.store.state(record),
                truncated: record.truncated,
                unit: record.unit_name().map(str::to_string),
                exe: record
                    .exe
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned()),
                comm: record.comm.clone(),
                go_version: go.version().map(str::to_string),
                executable_kind: go.kind(),
                go,
                headline,
                headline_bytes,
                headline_source,
                cursor: record.cursor.clone(),
                boot_id: record.boot_id.clone(),
                signature: None,
                signature_source: None,
            }
        })
        .collect()
}

/// Reads the headline of a crash and its length as the process printed it.
fn read_headline(journal: &Journal, record: &CoredumpRecord) -> Option<(String, usize)> {
    match crashtext::read(journal, record, &TextOptions::headline_only()) {
        Ok(text) => text.and_then(|text| text.headline_with_len()),
        Err(error) => {
            tracing::warn!(target: "gocrash::list", pid = record.pid, error = %anyhow::Error::new(error), "cannot read the crash text");
            None
        }
    }
}

/// Lays the rows out in aligned columns, as coredumpctl does: numbers to
/// the right, text to the left, the last column unpadded.
fn format_table(rows: &[Row]) -> String {
    let header = [
        "TIME", "PID", "SIG", "COREFILE", "UNIT", "EXE", "GO", "HEADLINE",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            [
                format_time(row.time_usec),
                row.pid.to_string(),
                row.signal_name
                    .clone()
                    .or_else(|| row.signal.map(|n| n.to_string()))
                    .unwrap_or_else(|| "-".into()),
                row.core.label(row.truncated).to_string(),
                text_cell(row.unit.as_deref()),
                exe_cell(row.exe.as_deref()),
                row.go.column().to_string(),
                escape_line(&cap_line(
                    &row.headline,
                    MAX_HEADLINE_BYTES,
                    row.headline_bytes,
                ))
                .into_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_cells = header.map(str::to_string);
    for line in std::iter::once(&header_cells).chain(&cells) {
        let mut text = String::new();
        for (index, cell) in line.iter().enumerate() {
            let width = widths[index];
            if index > 0 {
                text.push(' ');
            }
            if index == 1 {
                text.push_str(&format!("{cell:>width$}"));
            } else if index + 1 == line.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}"));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// Characters of the EXE column past which a path is shortened, so that
/// the headline stays on screen.
const MAX_EXE_CHARS: usize = 40;

/// Returns the executable's path as a table cell, shortened in its middle
/// to [`MAX_EXE_CHARS`]: the directory's start and the file name, which
/// tell programs apart, are kept. `--json` has the whole path.
fn exe_cell(exe: Option<&str>) -> String {
    let cell = text_cell(exe);
    let chars: Vec<char> = cell.chars().collect();
    if chars.len() <= MAX_EXE_CHARS {
        return cell;
    }
    let name_start = chars
        .iter()
        .rposition(|&c| c == '/')
        .map_or(0, |slash| slash + 1);
    let name = &chars[name_start..];
    // Room for the start of the directory, "…/" and the name.
    match MAX_EXE_CHARS.checked_sub(name.len() + 2) {
        Some(room) if room >= 4 => {
            let start: String = chars[..room].iter().collect();
            format!("{start}…/{}", name.iter().collect::<String>())
        }
        _ => {
            let end: String = chars[chars.len() - (MAX_EXE_CHARS - 1)..].iter().collect();
            format!("…{end}")
        }
    }
}

/// Returns a journal field as a table cell: escaped, or `-` when missing.
fn text_cell(value: Option<&str>) -> String {
    value.map_or_else(|| "-".into(), |value| escape_line(value).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursor_form_is_checked() {
        let cursor = "s=94eb673ec1fe40a4b4645d1e0194e6c0;i=36f;b=5c2e0aa8c0474f8facde8dcfcd702c47;\
                      m=2e4ead45;t=661d4f83a3c1d;x=9b70ab9900f71a76";
        assert_eq!(parse_cursor(cursor).as_deref(), Ok(cursor));
        assert!(parse_cursor("garbage").is_err());
        assert!(parse_cursor("s=;i=1").is_err());
        assert!(parse_cursor("s=zz").is_err());
        assert!(parse_cursor("q=1").is_err());
    }

    use super::*;

    #[test]
    fn times_format_like_coredumpctl() {
        assert_eq!(
            format_time(1_796_418_265_000_000),
            "Fri 2026-12-04 21:04:25 UTC"
        );
        assert_eq!(format_time(0), "Thu 1970-01-01 00:00:00 UTC");
        assert_eq!(format_rfc3339(951_782_400_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(
            format_time(951_782_400_000_000),
            "Tue 2000-02-29 00:00:00 UTC"
        );
    }

    #[test]
    fn signature_argument_is_checked() {
        assert_eq!(
            parse_signature("C65A69725FC05083").unwrap(),
            "c65a69725fc05083"
        );
        assert!(parse_signature("c65a6972").is_err());
        assert!(parse_signature("c65a69725fc0508z").is_err());
    }

    #[test]
    fn go_version_columns() {
        assert_eq!(GoVersion::Version("go1.22.3".into()).column(), "go1.22.3");
        assert_eq!(GoVersion::NotGo.column(), "-");
        assert_eq!(GoVersion::Unknown.column(), "?");
    }

    #[test]
    fn long_executable_paths_are_shortened() {
        assert_eq!(exe_cell(Some("/usr/bin/app")), "/usr/bin/app");
        assert_eq!(exe_cell(None), "-");
        let long =
            "/var/cache/gocrash/corpus/builds/1.19.8/default/manygoroutines-7aa75/manygoroutines";
        let cell = exe_cell(Some(long));
        assert_eq!(cell, "/var/cache/gocrash/corpu…/manygoroutines");
        assert_eq!(cell.chars().count(), MAX_EXE_CHARS);
        let long_name = format!("/opt/{}", "x".repeat(60));
        let cell = exe_cell(Some(&long_name));
        assert_eq!(cell.chars().count(), MAX_EXE_CHARS);
        assert!(cell.starts_with('…'), "{cell}");
        assert!(cell.ends_with("xxxx"), "{cell}");
    }

    #[test]
    fn table_aligns_columns() {
        let row = |pid: u32, headline: &str| Row {
            time_usec: 1_796_418_265_000_000,
            time: String::new(),
            pid,
            uid: Some(0),
            signal: Some(6),
            signal_name: Some("SIGABRT".into()),
            core: CoreState::None,
            truncated: false,
            unit: Some("app.service".into()),
            exe: Some("/srv/app".into()),
            comm: Some("app".into()),
            go_version: Some("go1.22.3".into()),
            executable_kind: "go",
            go: GoVersion::Version("go1.22.3".into()),
            headline: headline.into(),
            headline_bytes: headline.len(),
            headline_source: "text",
            cursor: String::new(),
            boot_id: None,
            signature: None,
            signature_source: None,
        };
        let table = format_table(&[row(7, "panic: a"), row(12345, "fatal error: b")]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "TIME                          PID SIG     COREFILE UNIT        EXE      GO       HEADLINE"
        );
        assert_eq!(
            lines[1],
            "Fri 2026-12-04 21:04:25 UTC     7 SIGABRT none     app.service /srv/app go1.22.3 panic: a"
        );
        assert_eq!(
            lines[2],
            "Fri 2026-12-04 21:04:25 UTC 12345 SIGABRT none     app.service /srv/app go1.22.3 fatal error: b"
        );

        let mut hostile = row(9, "panic: \x1b[2Jx\ny");
        hostile.exe = Some("/srv/\x1b]0;t\x07".into());
        let table = format_table(&[hostile]);
        assert!(!table.contains('\x1b'), "{table}");
        assert!(
            table.ends_with("/srv/\\x1b]0;t\\x07 go1.22.3 panic: \\x1b[2Jx\\ny\n"),
            "{table}"
        );
    }
}
