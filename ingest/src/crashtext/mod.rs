//! Rebuilds a crashed process's output, and the Go crash report in it, from
//! journald, and reports what journald lost on the way.
//!
//! A service's stdout and stderr reach journald as one stream (one
//! `_STREAM_ID` per connection) and become one entry per line, without the
//! blank lines. The crash text of a coredump record is found in three steps:
//!
//! 1. the streams the process wrote to last before the coredump entry
//!    (`_PID` = `COREDUMP_PID` in the same boot);
//! 2. those streams' lines from shortly before the crash, of that PID or of
//!    no known PID (journald could not read the sender's credentials for a
//!    piece of a line split at a PID change), joined again where journald
//!    split a line ([`assemble`]);
//! 3. the start of the runtime's report among the service's own log lines,
//!    and whether the dump ends whole ([`report`]), and journald's note about
//!    rate-limited lines of the unit ([`suppressed`]).
//!
//! Parsing the report is left to [`crate::traceback`].

pub mod assemble;
pub mod report;
pub mod suppressed;

use std::borrow::Cow;

use serde::Serialize;

use crate::coredump::CoredumpRecord;
use crate::journal::direct::FileHeads;
use crate::journal::{at_usec, Entry, ExportOptions, Journal, JournalError, Query};
use crate::signature::is_deadlock_message;
use crate::traceback::{self, ParseOptions, Traceback, Truncation};

pub use assemble::{LineBreaks, MAX_TEXT_BYTES, MAX_TEXT_LINES};
pub use report::{check_dump_end, find_report_start, headline, DumpEnd};
pub use suppressed::{Suppressed, SUPPRESSED_MESSAGE_ID};

/// How long before the crash the text is looked for by default. The runtime
/// prints its report within seconds of the abort; the rest of the window
/// contains the service's last log lines.
pub const DEFAULT_WINDOW_USEC: u64 = 10 * 60 * 1_000_000;
/// How long after the coredump entry lines of the crashed process are still
/// accepted: journald may still be draining the stream's socket buffer when
/// systemd-coredump's entry arrives.
pub const LATE_LINES_USEC: u64 = 60 * 1_000_000;
/// Lines read back from the coredump entry to find the crashed process's
/// streams.
pub const STREAM_PROBE_LINES: usize = 16;

/// Fields the text queries print.
const TEXT_FIELDS: &[&str] = &["MESSAGE", "_PID", "_LINE_BREAK", "_STREAM_ID"];

/// Options for reading a crash text.
#[derive(Clone, Debug)]
pub struct TextOptions {
    /// How far before the crash to look for the text, in microseconds. When
    /// the report starts before the window, the whole stream is read.
    pub window_usec: u64,
    /// Stop at the first goroutine header: enough for the headline, and
    /// much faster for large dumps. The end of the dump is then not checked.
    pub headline_only: bool,
    /// Stop before the second goroutine: enough for a crash's signature,
    /// which the headline and the first goroutine give, and much faster for
    /// large dumps. A deadlock's signature takes every goroutine, so its
    /// text is read whole. The end of the dump is not checked.
    pub first_goroutine_only: bool,
    /// Look for journald's rate-limit note about the unit.
    pub find_suppressed: bool,
}

impl Default for TextOptions {
    fn default() -> TextOptions {
        TextOptions {
            window_usec: DEFAULT_WINDOW_USEC,
            headline_only: false,
            first_goroutine_only: false,
            find_suppressed: true,
        }
    }
}

impl TextOptions {
    /// Options for reading only the headline.
    pub fn headline_only() -> TextOptions {
        TextOptions {
            headline_only: true,
            find_suppressed: false,
            ..TextOptions::default()
        }
    }

    /// Options for reading what a crash's signature is computed from.
    pub fn signature_only() -> TextOptions {
        TextOptions {
            first_goroutine_only: true,
            find_suppressed: false,
            ..TextOptions::default()
        }
    }

    /// Reports whether the read may stop before the end of the dump.
    fn stops_early(&self) -> bool {
        self.headline_only || self.first_goroutine_only
    }
}

/// Failure to read a crash text.
#[derive(Debug, thiserror::Error)]
#[error("failed to read the output of PID {pid} from the journal")]
pub struct CrashTextError {
    pub pid: u32,
    #[source]
    pub source: JournalError,
}

/// Changes and losses journald caused in the crash text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// Split and unreadable lines, and lines past the reader's limits.
    #[serde(flatten)]
    pub breaks: LineBreaks,
    /// journald's note that it dropped lines of the unit.
    pub suppressed: Option<Suppressed>,
    /// The process printed lines before the window that were not read; the
    /// crash report itself was inside the window.
    pub earlier_output_not_read: bool,
    /// The end of the goroutine dump: whole, cut, or not checked.
    pub dump: Option<DumpEnd>,
    /// Counts of what the traceback parser left out to stay within its
    /// limits.
    pub parser_limits: Truncation,
}

impl Loss {
    /// Reports whether part of the crash text is known to be missing.
    pub fn is_lossy(&self) -> bool {
        self.suppressed.is_some()
            || self.breaks.ended_mid_line
            || self.breaks.unreadable_lines > 0
            || self.breaks.lines_over_limit > 0
            || self.breaks.long_lines_cut > 0
            || self.parser_limits.frames > 0
            || self.parser_limits.long_lines > 0
            || self.dump.as_ref().is_some_and(DumpEnd::is_cut)
    }
}

/// A crashed process's output as journald kept it.
#[derive(Debug)]
pub struct CrashText {
    bytes: Vec<u8>,
    line_ends: Vec<usize>,
    line_times: Vec<u64>,
    /// Index of the report's first line, when a report was found.
    pub report_start: Option<usize>,
    /// The `_STREAM_ID`s read; empty for journals older than systemd 235.
    pub stream_ids: Vec<String>,
    pub loss: Loss,
    /// The report parsed; empty when no report was found.
    pub traceback: Traceback,
}

impl CrashText {
    /// Returns the whole text, each line ending in `\n`.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    pub fn line_count(&self) -> usize {
        self.line_ends.len()
    }

    /// Returns one line without its newline.
    pub fn line(&self, index: usize) -> Option<&[u8]> {
        let end = self.line_ends.get(index)?.checked_sub(1)?;
        let start = match index.checked_sub(1) {
            Some(previous) => *self.line_ends.get(previous)?,
            None => 0,
        };
        self.bytes.get(start..end)
    }

    /// Returns the lines from the report's start on: the text to parse.
    pub fn report(&self) -> &[u8] {
        let start = match self.report_start.and_then(|s| s.checked_sub(1)) {
            Some(previous) => self.line_ends.get(previous).copied().unwrap_or(0),
            None => 0,
        };
        match self.report_start {
            Some(_) => self.bytes.get(start..).unwrap_or_default(),
            None => &[],
        }
    }

    /// Returns the number of lines before the report: the service's own
    /// output.
    pub fn prelude_lines(&self) -> usize {
        self.report_start.unwrap_or(self.line_count())
    }

    /// Returns the time of the first and last line, in microseconds since
    /// the epoch.
    pub fn time_span_usec(&self) -> Option<(u64, u64)> {
        Some((*self.line_times.first()?, *self.line_times.last()?))
    }

    /// Returns the crash report's first line, rebuilt from the parsed
    /// reason.
    pub fn headline(&self) -> Option<String> {
        headline(&self.traceback)
    }

    /// Returns the headline with its length in bytes as the process
    /// printed it. The parser keeps [`traceback::MAX_LINE_BYTES`] of a
    /// line, so the length of a longer headline comes from the report's
    /// first line in the text.
    pub fn headline_with_len(&self) -> Option<(String, usize)> {
        let headline = self.headline()?;
        let first_line = self
            .report_start
            .and_then(|start| self.line(start))
            .map_or(0, <[u8]>::len);
        let len = if first_line > traceback::MAX_LINE_BYTES {
            first_line.max(headline.len())
        } else {
            headline.len()
        };
        Some((headline, len))
    }

    /// Builds a crash text from lines already joined.
    fn from_assembled(
        assembled: assemble::Assembled,
        stream_ids: Vec<String>,
        headline_only: bool,
    ) -> CrashText {
        let mut text = CrashText {
            bytes: assembled.bytes,
            line_ends: assembled.line_ends,
            line_times: assembled.line_times,
            report_start: None,
            stream_ids,
            loss: Loss {
                breaks: assembled.breaks,
                ..Loss::default()
            },
            traceback: Traceback::default(),
        };
        text.report_start = find_report_start((0..text.line_count()).filter_map(|i| text.line(i)));
        text.traceback = traceback::parse_bytes(text.report(), &ParseOptions::default());
        text.loss.parser_limits = text.traceback.truncated;
        text.loss.dump = Some(if headline_only {
            DumpEnd::Unchecked
        } else {
            dump_end(&text.traceback, text.loss.breaks.lines_over_limit)
        });
        text
    }
}

/// Checks the end of the dump, given the lines the assembler did not keep
/// (past [`MAX_TEXT_LINES`] or [`MAX_TEXT_BYTES`]). With such lines the
/// parsed text stops at the reader's limit, not where the dump stops.
fn dump_end(traceback: &Traceback, lines_over_limit: u64) -> DumpEnd {
    match check_dump_end(traceback) {
        DumpEnd::ReaderLimit {
            goroutines_kept,
            goroutines_not_kept,
            lines_not_kept,
        } => DumpEnd::ReaderLimit {
            goroutines_kept,
            goroutines_not_kept,
            lines_not_kept: lines_not_kept.saturating_add(lines_over_limit),
        },
        _ if lines_over_limit > 0 => DumpEnd::ReaderLimit {
            goroutines_kept: traceback.goroutines.len(),
            goroutines_not_kept: 0,
            lines_not_kept: lines_over_limit,
        },
        end => end,
    }
}

/// Reads the crash text of a coredump record. Returns `None` when the
/// crashed process wrote nothing to the journal (its output went to a
/// terminal or a file, or the entries are gone).
pub fn read(
    journal: &Journal,
    record: &CoredumpRecord,
    options: &TextOptions,
) -> Result<Option<CrashText>, CrashTextError> {
    let error = |source| CrashTextError {
        pid: record.pid,
        source,
    };
    if !record.may_have_journal_output() {
        tracing::debug!(target: "gocrash::crashtext", pid = record.pid, "stdout and stderr were not sockets; no text in the journal");
        return Ok(None);
    }
    let since = record.crash_time_usec().saturating_sub(options.window_usec);
    // The headline needs no pieces journald stored without a PID, so the
    // process's lines are read directly, in one query.
    let streams = if options.headline_only {
        Vec::new()
    } else {
        match probe_streams(journal, record).map_err(error)? {
            Some(streams) => streams,
            None => return Ok(None),
        }
    };
    let mut text = read_streams(journal, record, &streams, Some(since), options).map_err(error)?;
    if text.line_count() == 0 && text.loss.breaks.lines_over_limit == 0 {
        return Ok(None);
    }

    if !options.headline_only {
        let older = has_older_lines(journal, record, &streams, since).map_err(error)?;
        let report_opens_window = text
            .report_start
            .and_then(|start| text.line(start))
            .is_some_and(report::is_reason_line);
        if older && !report_opens_window {
            tracing::debug!(target: "gocrash::crashtext", pid = record.pid, "the report starts before the window; reading the whole stream");
            text = read_streams(journal, record, &streams, None, options).map_err(error)?;
        } else {
            text.loss.earlier_output_not_read = older;
        }
    }

    if options.find_suppressed {
        if let Some(unit) = record.unit_name() {
            let since = text.time_span_usec().map_or(since, |(first, _)| first);
            text.loss.suppressed = suppressed::find(
                journal,
                unit,
                record.boot_id.as_deref(),
                since,
                record.entry_time_usec,
            )
            .map_err(error)?;
        }
    }
    log_loss(record, &text);
    Ok(Some(text))
}

/// Finds the streams the process wrote to last before the coredump entry.
/// Returns `None` when it wrote nothing, and an empty list when the journal
/// predates `_STREAM_ID`.
fn probe_streams(
    journal: &Journal,
    record: &CoredumpRecord,
) -> Result<Option<Vec<String>>, JournalError> {
    // `--lines` counts from the end of the journal even with `--until`
    // (systemd 252), so the newest entries before the crash are read with
    // `--reverse` instead.
    let query = Query {
        until: Some(at_usec(record.entry_time_usec)),
        reverse: true,
        output_fields: vec!["_STREAM_ID".into()],
        ..Query::matching(process_matches(record))
    };
    let entries = read_first(journal, &query, STREAM_PROBE_LINES)?;
    if entries.is_empty() {
        return Ok(None);
    }
    let mut streams: Vec<String> = Vec::new();
    // Newest first, so the stream of the last line leads.
    for entry in &entries {
        if let Some(stream) = entry.text("_STREAM_ID") {
            if !streams.iter().any(|known| known == stream) {
                streams.push(stream.to_string());
            }
        }
    }
    Ok(Some(streams))
}

/// Runs a query and returns its first `count` entries, stopping journalctl
/// after them.
fn read_first(journal: &Journal, query: &Query, count: usize) -> Result<Vec<Entry>, JournalError> {
    let mut stream = journal.stream(query, ExportOptions::default())?;
    let mut entries = Vec::new();
    while entries.len() < count {
        match stream.next_entry()? {
            Some(entry) => entries.push(entry),
            None => break,
        }
    }
    Ok(entries)
}

/// Matches for the crashed process's stream output.
fn process_matches(record: &CoredumpRecord) -> Vec<String> {
    let mut matches = vec![
        format!("_PID={}", record.pid),
        "_TRANSPORT=stdout".to_string(),
    ];
    if let Some(boot) = &record.boot_id {
        matches.push(format!("_BOOT_ID={boot}"));
    }
    matches
}

/// Matches for the text query: the streams, or the process when the
/// journal has no stream ids.
fn text_matches(record: &CoredumpRecord, streams: &[String]) -> Vec<String> {
    if streams.is_empty() {
        return process_matches(record);
    }
    let mut matches: Vec<String> = streams.iter().map(|s| format!("_STREAM_ID={s}")).collect();
    if let Some(boot) = &record.boot_id {
        matches.push(format!("_BOOT_ID={boot}"));
    }
    matches
}

fn read_streams(
    journal: &Journal,
    record: &CoredumpRecord,
    streams: &[String],
    since_usec: Option<u64>,
    options: &TextOptions,
) -> Result<CrashText, JournalError> {
    let query = Query {
        since: since_usec.map(at_usec),
        until: Some(at_usec(
            record.entry_time_usec.saturating_add(LATE_LINES_USEC),
        )),
        output_fields: TEXT_FIELDS.iter().map(|f| f.to_string()).collect(),
        ..Query::matching(text_matches(record, streams))
    };
    let mut stream = journal.stream(&query, ExportOptions::default())?;
    let mut assembler = assemble::Assembler::new();
    let mut foreign = 0u64;
    let mut previous: Option<Entry> = None;
    let mut heads: Option<FileHeads> = None;
    let mut goroutine_headers = 0usize;
    let mut deadlock = false;
    while let Some(entry) = stream.next_entry()? {
        if !is_from_process(&entry, record.pid) {
            foreign += 1;
            continue;
        }
        if options.first_goroutine_only {
            let message = entry.bytes("MESSAGE").unwrap_or_default();
            if let Some(fatal) = message.strip_prefix(b"fatal error: ") {
                deadlock |= is_deadlock_message(&String::from_utf8_lossy(fatal));
            }
            if report::is_goroutine_header(message) {
                goroutine_headers += 1;
                if goroutine_headers == 2 && !deadlock {
                    // Dropping the stream stops journalctl.
                    break;
                }
            }
        }
        if previous.as_ref().is_some_and(|previous| {
            is_rewrite(previous, &entry, || FileHeads::read(journal), &mut heads)
        }) {
            assembler.breaks.rewritten_entries += 1;
            continue;
        }
        assembler.push(&entry);
        if options.headline_only
            && assembler
                .last_line()
                .is_some_and(report::is_goroutine_header)
        {
            // Dropping the stream stops journalctl.
            break;
        }
        previous = Some(entry);
    }
    if foreign > 0 {
        tracing::debug!(target: "gocrash::crashtext", pid = record.pid, foreign, "left out lines of other processes sharing the stream");
    }
    if assembler.breaks.rewritten_entries > 0 {
        tracing::debug!(target: "gocrash::crashtext", pid = record.pid, rewritten = assembler.breaks.rewritten_entries, "left out entries journald wrote twice at a journal file rotation");
    }
    Ok(CrashText::from_assembled(
        assembler.finish(),
        streams.to_vec(),
        options.stops_early(),
    ))
}

/// Reports whether `entry` is a second copy of `previous` that journald
/// wrote when a journal file filled up.
///
/// journald then rotates the file and appends the entry again to the new
/// one, with the same timestamps. The failed append can leave the entry in
/// the old file as well, where a reader finds it through some matches and
/// not others (seen with systemd 252 on a burst of 160,000 lines). The copy
/// has the next sequence number and is the new file's first entry. Two equal
/// lines read in one batch share timestamps too, so the file's head is what
/// tells them apart. `heads` is read on the first pair of equal neighbours.
fn is_rewrite(
    previous: &Entry,
    entry: &Entry,
    read_heads: impl FnOnce() -> FileHeads,
    heads: &mut Option<FileHeads>,
) -> bool {
    let (Some(before), Some(after)) = (previous.cursor(), entry.cursor()) else {
        return false;
    };
    let Some((seqnum_id, seqnum)) = next_in_batch(before, after) else {
        return false;
    };
    previous.bytes("MESSAGE") == entry.bytes("MESSAGE")
        && heads
            .get_or_insert_with(read_heads)
            .contains(seqnum_id, seqnum)
}

/// Returns the sequence-number ID and the sequence number of `cursor` when
/// the two journalctl cursors (`s=…;i=…;b=…;m=…;t=…;x=…`) differ only in
/// that number, one higher in `cursor`: the next entry, with the same
/// timestamps and the same fields.
pub fn next_in_batch<'a>(previous_cursor: &str, cursor: &'a str) -> Option<(&'a str, u64)> {
    let seqnum_of = |cursor: &str| {
        cursor
            .split(';')
            .find_map(|part| part.strip_prefix("i="))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
    };
    let others = |cursor: &'a str| cursor.split(';').filter(|part| !part.starts_with("i="));
    let seqnum = seqnum_of(cursor)?;
    if seqnum_of(previous_cursor)?.checked_add(1) != Some(seqnum)
        || !others(cursor).eq(previous_cursor
            .split(';')
            .filter(|part| !part.starts_with("i=")))
    {
        return None;
    }
    let seqnum_id = cursor.split(';').find_map(|part| part.strip_prefix("s="))?;
    Some((seqnum_id, seqnum))
}

/// Reports whether an entry belongs to the crashed process: its `_PID` is
/// the process's, or journald could not tell the sender.
fn is_from_process(entry: &Entry, pid: u32) -> bool {
    match entry.number("_PID") {
        Some(sender) => sender == u64::from(pid),
        None => true,
    }
}

/// Reports whether the streams hold lines before `since_usec`.
fn has_older_lines(
    journal: &Journal,
    record: &CoredumpRecord,
    streams: &[String],
    since_usec: u64,
) -> Result<bool, JournalError> {
    let query = Query {
        until: Some(at_usec(since_usec.saturating_sub(1))),
        reverse: true,
        output_fields: vec!["_PID".into()],
        ..Query::matching(text_matches(record, streams))
    };
    Ok(!read_first(journal, &query, 1)?.is_empty())
}

fn log_loss(record: &CoredumpRecord, text: &CrashText) {
    let loss = &text.loss;
    if let Some(note) = &loss.suppressed {
        tracing::info!(target: "gocrash::crashtext", pid = record.pid, dropped = note.dropped, "journald suppressed messages of the unit");
    }
    match &loss.dump {
        Some(dump @ DumpEnd::ReaderLimit { .. }) => {
            tracing::info!(target: "gocrash::crashtext", pid = record.pid, ?dump, "crash text longer than the reader's limits; only its first part was read");
        }
        Some(dump) if dump.is_cut() => {
            tracing::info!(target: "gocrash::crashtext", pid = record.pid, ?dump, "the goroutine dump in the journal is cut");
        }
        _ => {}
    }
    if loss.breaks.lines_over_limit > 0 {
        tracing::warn!(target: "gocrash::crashtext", pid = record.pid, lines = loss.breaks.lines_over_limit, "crash text longer than the reader's limit; the rest was not kept");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Field, FieldValue};

    fn entry(message: &str, pid: Option<u32>) -> Entry {
        let mut fields = vec![Field {
            name: "MESSAGE".into(),
            value: FieldValue::Data(message.as_bytes().to_vec()),
        }];
        if let Some(pid) = pid {
            fields.push(Field {
                name: "_PID".into(),
                value: FieldValue::Data(pid.to_string().into_bytes()),
            });
        }
        Entry { fields, offset: 0 }
    }

    const SEQNUM_ID: &str = "900352d17b46436d88126b624872721f";

    /// Builds an entry of one batch. journald gives every line of a batch
    /// the same timestamps, so their cursors differ by sequence number alone.
    fn batch_entry(message: &str, seqnum: u64) -> Entry {
        let mut entry = entry(message, Some(1));
        let cursor = format!(
            "s={SEQNUM_ID};i={seqnum:x};b=fc5d72b87bdc43049d4fcb77df976173;m=22990427;\
             t=661dc3c0f0c24;x=8135f43fd2b0f5c7"
        );
        entry.fields.push(Field {
            name: "__CURSOR".into(),
            value: FieldValue::Data(cursor.into_bytes()),
        });
        entry
    }

    fn heads(seqnums: &[u64]) -> FileHeads {
        FileHeads::from_pairs(seqnums.iter().map(|&seqnum| (SEQNUM_ID.to_owned(), seqnum)))
    }

    #[test]
    fn rewrite_at_file_head_is_found() {
        let line = "\t/src/main.go:188 +0xb1";
        let mut read = None;
        let found = is_rewrite(
            &batch_entry(line, 0xf4dd3),
            &batch_entry(line, 0xf4dd4),
            || heads(&[0xf4dd4]),
            &mut read,
        );
        assert!(found);
        assert!(read.is_some(), "the heads are kept for the next pair");
    }

    #[test]
    fn equal_lines_inside_a_file_are_kept() {
        let line = "retrying";
        let mut read = None;
        let found = is_rewrite(
            &batch_entry(line, 0x10),
            &batch_entry(line, 0x11),
            || heads(&[0x1]),
            &mut read,
        );
        assert!(!found);
    }

    #[test]
    fn different_neighbours_skip_the_heads() {
        let mut read = None;
        let found = is_rewrite(
            &batch_entry("one", 0xf4dd3),
            &batch_entry("two", 0xf4dd4),
            || panic!("the heads are read only for equal neighbours"),
            &mut read,
        );
        assert!(!found);
        // Equal lines that are not neighbours in the sequence are kept too.
        let found = is_rewrite(
            &batch_entry("one", 0xf4dd2),
            &batch_entry("one", 0xf4dd4),
            || panic!("the heads are read only for neighbours"),
            &mut read,
        );
        assert!(!found);
    }

    #[test]
    fn next_in_batch_needs_equal_timestamps() {
        let before = "s=aa;i=10;b=bb;m=5;t=6;x=7";
        assert_eq!(
            next_in_batch(before, "s=aa;i=11;b=bb;m=5;t=6;x=7"),
            Some(("aa", 0x11))
        );
        assert_eq!(next_in_batch(before, "s=aa;i=11;b=bb;m=9;t=6;x=7"), None);
        assert_eq!(next_in_batch(before, "s=aa;i=12;b=bb;m=5;t=6;x=7"), None);
        assert_eq!(next_in_batch(before, "s=cc;i=11;b=bb;m=5;t=6;x=7"), None);
        assert_eq!(next_in_batch(before, "garbage"), None);
    }

    #[test]
    fn entries_without_cursor_are_kept() {
        let mut read = None;
        let found = is_rewrite(
            &entry("one", Some(1)),
            &entry("one", Some(1)),
            || heads(&[]),
            &mut read,
        );
        assert!(!found);
    }

    fn text_of(lines: &[&str]) -> CrashText {
        let mut assembler = assemble::Assembler::new();
        for line in lines {
            assembler.push(&entry(line, Some(1)));
        }
        CrashText::from_assembled(assembler.finish(), Vec::new(), false)
    }

    #[test]
    fn report_is_split_from_the_log() {
        let text = text_of(&[
            "listening on :8080",
            "panic: boom",
            "goroutine 1 [running]:",
            "main.main()",
            "\t/src/main.go:9 +0x1d",
        ]);
        assert_eq!(text.line_count(), 5);
        assert_eq!(text.report_start, Some(1));
        assert_eq!(text.prelude_lines(), 1);
        assert_eq!(text.line(0), Some(&b"listening on :8080"[..]));
        assert_eq!(text.line(4), Some(&b"\t/src/main.go:9 +0x1d"[..]));
        assert_eq!(text.line(5), None);
        assert!(text.report().starts_with(b"panic: boom\n"));
        assert_eq!(text.headline().as_deref(), Some("panic: boom"));
        assert_eq!(text.loss.dump, Some(DumpEnd::Complete));
        assert!(!text.loss.is_lossy());
    }

    #[test]
    fn text_without_report_has_empty_report() {
        let text = text_of(&["just a log line"]);
        assert_eq!(text.report_start, None);
        assert!(text.report().is_empty());
        assert_eq!(text.loss.dump, Some(DumpEnd::NoReport));
        assert_eq!(text.headline(), None);
    }

    #[test]
    fn cut_dump_is_lossy() {
        let text = text_of(&["panic: boom", "goroutine 1 [running]:", "main.main()"]);
        assert!(text.loss.is_lossy());
        assert!(matches!(text.loss.dump, Some(DumpEnd::MidFrame { .. })));
    }

    #[test]
    fn lines_over_limit_make_a_reader_limit() {
        let text = text_of(&["panic: boom", "goroutine 1 [running]:"]);
        // The parsed text ends after a header, but only because the
        // assembler kept no more lines.
        assert_eq!(
            dump_end(&text.traceback, 5),
            DumpEnd::ReaderLimit {
                goroutines_kept: 1,
                goroutines_not_kept: 0,
                lines_not_kept: 5,
            }
        );
        assert!(matches!(
            dump_end(&text.traceback, 0),
            DumpEnd::MidGoroutine { goroutine: 1, .. }
        ));
    }

    #[test]
    fn parser_limits_are_kept_in_the_loss() {
        let long = format!("main.{}()", "a".repeat(traceback::MAX_LINE_BYTES));
        let text = text_of(&[
            "panic: boom",
            "goroutine 1 [running]:",
            &long,
            "\t/m.go:1 +0x1",
        ]);
        assert_eq!(text.loss.parser_limits.long_lines, 1);
        assert!(text.loss.is_lossy());
    }

    #[test]
    fn entries_of_other_pids_are_foreign() {
        assert!(is_from_process(&entry("x", Some(7)), 7));
        assert!(is_from_process(&entry("x", None), 7));
        assert!(!is_from_process(&entry("x", Some(8)), 7));
    }
}
