//! Turns a service's output entries back into lines of text.
//!
//! journald stores a stream's output one line per entry and marks, in
//! `_LINE_BREAK`, lines it ended for a reason other than a newline:
//! `line-max` (the line reached `LineMax`, 48 KiB by default), `pid-change`
//! (the next bytes came from another sender PID, or from a sender journald
//! could not identify), `nul` (a NUL byte) and `eof` (the stream closed
//! mid-line). The first two split one written line over several entries;
//! they are joined again here. Empty lines never reach the journal, so the
//! result has none.

use serde::Serialize;

use crate::journal::Entry;

/// Bytes of text kept. Larger texts keep their first part, as the traceback
/// parser does, because the headline and the crashing goroutine come first.
pub const MAX_TEXT_BYTES: usize = 256 << 20;
/// Lines kept; the traceback parser reads no more than this either.
pub const MAX_TEXT_LINES: usize = crate::traceback::MAX_LINES;
/// Maximum length of a kept line, whether one entry or rebuilt from split
/// entries. journald splits at `LineMax` (48 KiB by default), but a journal
/// written by other tools can hold longer entries, so a longer line is cut.
pub const MAX_JOINED_LINE_BYTES: usize = 4 << 20;

/// What journald did to the lines, counted while they were joined.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LineBreaks {
    /// Lines journald split at `LineMax` and that were joined again.
    pub line_max_joins: u64,
    /// Lines journald split because the sender's PID changed mid-line,
    /// joined again.
    pub pid_change_joins: u64,
    /// Lines ended by a NUL byte instead of a newline.
    pub nul_breaks: u64,
    /// The stream closed in the middle of the last line.
    pub ended_mid_line: bool,
    /// Entries without a readable `MESSAGE` (dropped for size by the
    /// reader), kept as empty lines so that line numbers stay right.
    pub unreadable_lines: u64,
    /// Lines past [`MAX_TEXT_LINES`] or [`MAX_TEXT_BYTES`], not kept.
    pub lines_over_limit: u64,
    /// Lines longer than [`MAX_JOINED_LINE_BYTES`], kept cut.
    pub long_lines_cut: u64,
    /// Entries journald wrote twice, the second time into a new journal
    /// file after the first filled up; the copy is left out.
    pub rewritten_entries: u64,
}

/// Lines being rebuilt from entries.
#[derive(Debug, Default)]
pub struct Assembler {
    /// Every kept line, each followed by `\n`.
    bytes: Vec<u8>,
    /// End offset in `bytes` of each line, after its `\n`.
    line_ends: Vec<usize>,
    /// `__REALTIME_TIMESTAMP` of each line's last entry.
    line_times: Vec<u64>,
    /// A line split by journald, waiting for its continuation.
    pending: Option<Vec<u8>>,
    pending_reason: Option<BreakReason>,
    pub breaks: LineBreaks,
    /// Set once a limit is reached; later lines are only counted.
    full: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BreakReason {
    LineMax,
    PidChange,
}

impl Assembler {
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// Adds one stream entry.
    pub fn push(&mut self, entry: &Entry) {
        let time = entry.realtime_usec().unwrap_or(0);
        let message = entry.bytes("MESSAGE");
        if message.is_none() {
            self.breaks.unreadable_lines += 1;
        }
        let message = message.unwrap_or_default();
        let line_break = entry.text("_LINE_BREAK");
        let reason = match line_break {
            Some("line-max") => Some(BreakReason::LineMax),
            Some("pid-change") => Some(BreakReason::PidChange),
            _ => None,
        };
        if reason.is_some() {
            let pending = self.pending.get_or_insert_with(Vec::new);
            append_capped(pending, message, &mut self.breaks);
            // The line is counted once, by the break that split it first.
            if self.pending_reason.is_none() {
                self.pending_reason = reason;
            }
            return;
        }
        match line_break {
            Some("nul") => self.breaks.nul_breaks += 1,
            Some("eof") => self.breaks.ended_mid_line = true,
            _ => {}
        }
        let line = match self.pending.take() {
            Some(mut joined) => {
                match self.pending_reason.take() {
                    Some(BreakReason::LineMax) => self.breaks.line_max_joins += 1,
                    Some(BreakReason::PidChange) => self.breaks.pid_change_joins += 1,
                    None => {}
                }
                append_capped(&mut joined, message, &mut self.breaks);
                joined
            }
            None => {
                let mut line = Vec::new();
                append_capped(&mut line, message, &mut self.breaks);
                line
            }
        };
        self.keep_line(&line, time);
    }

    fn keep_line(&mut self, line: &[u8], time: u64) {
        let over = self.line_ends.len() >= MAX_TEXT_LINES
            || self.bytes.len().saturating_add(line.len() + 1) > MAX_TEXT_BYTES;
        if self.full || over {
            self.full = true;
            self.breaks.lines_over_limit += 1;
            return;
        }
        self.bytes.extend_from_slice(line);
        self.bytes.push(b'\n');
        self.line_ends.push(self.bytes.len());
        self.line_times.push(time);
    }

    /// Ends the text: a line still waiting for its continuation is kept as
    /// it is, since the stream ended after it.
    pub fn finish(mut self) -> Assembled {
        if let Some(line) = self.pending.take() {
            self.breaks.ended_mid_line = true;
            self.keep_line(&line, self.line_times.last().copied().unwrap_or(0));
        }
        Assembled {
            bytes: self.bytes,
            line_ends: self.line_ends,
            line_times: self.line_times,
            breaks: self.breaks,
        }
    }

    /// Returns the number of lines kept so far.
    pub fn line_count(&self) -> usize {
        self.line_ends.len()
    }

    /// Returns the last kept line.
    pub fn last_line(&self) -> Option<&[u8]> {
        let end = self.line_ends.last()?.checked_sub(1)?;
        let start = self
            .line_ends
            .len()
            .checked_sub(2)
            .and_then(|i| self.line_ends.get(i))
            .copied()
            .unwrap_or(0);
        self.bytes.get(start..end)
    }
}

fn append_capped(line: &mut Vec<u8>, more: &[u8], breaks: &mut LineBreaks) {
    let room = MAX_JOINED_LINE_BYTES.saturating_sub(line.len());
    if more.len() > room {
        if room > 0 || !more.is_empty() {
            breaks.long_lines_cut += 1;
        }
        line.extend_from_slice(more.get(..room).unwrap_or_default());
    } else {
        line.extend_from_slice(more);
    }
}

/// Lines rebuilt from a stream.
#[derive(Debug, Default)]
pub struct Assembled {
    pub bytes: Vec<u8>,
    pub line_ends: Vec<usize>,
    pub line_times: Vec<u64>,
    pub breaks: LineBreaks,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Field, FieldValue};

    fn line(message: &[u8], line_break: Option<&str>) -> Entry {
        let mut fields = vec![
            Field {
                name: "__REALTIME_TIMESTAMP".into(),
                value: FieldValue::Data(b"100".to_vec()),
            },
            Field {
                name: "MESSAGE".into(),
                value: FieldValue::Data(message.to_vec()),
            },
        ];
        if let Some(reason) = line_break {
            fields.push(Field {
                name: "_LINE_BREAK".into(),
                value: FieldValue::Data(reason.as_bytes().to_vec()),
            });
        }
        Entry { fields, offset: 0 }
    }

    fn assemble(entries: &[Entry]) -> Assembled {
        let mut assembler = Assembler::new();
        for entry in entries {
            assembler.push(entry);
        }
        assembler.finish()
    }

    #[test]
    fn plain_lines_get_newlines() {
        let done = assemble(&[
            line(b"panic: boom", None),
            line(b"", None),
            line(b"goroutine 1 [running]:", None),
        ]);
        assert_eq!(done.bytes, b"panic: boom\n\ngoroutine 1 [running]:\n");
        assert_eq!(done.line_ends, [12, 13, 36]);
        assert_eq!(done.breaks, LineBreaks::default());
    }

    #[test]
    fn split_lines_are_joined() {
        let done = assemble(&[
            line(b"aaaa", Some("line-max")),
            line(b"bbbb", Some("line-max")),
            line(b"cc", None),
            line(b"\t", Some("pid-change")),
            line(b"/src/main.go:52 +0x7c", None),
        ]);
        assert_eq!(done.bytes, b"aaaabbbbcc\n\t/src/main.go:52 +0x7c\n");
        assert_eq!(done.breaks.line_max_joins, 1);
        assert_eq!(done.breaks.pid_change_joins, 1);
        assert!(!done.breaks.ended_mid_line);
    }

    #[test]
    fn stream_end_mid_line_is_reported() {
        let done = assemble(&[line(b"goroutine 7 [chan", Some("eof"))]);
        assert_eq!(done.bytes, b"goroutine 7 [chan\n");
        assert!(done.breaks.ended_mid_line);

        let pending = assemble(&[line(b"half", Some("line-max"))]);
        assert_eq!(pending.bytes, b"half\n");
        assert!(pending.breaks.ended_mid_line);
    }

    #[test]
    fn nul_breaks_and_unreadable_lines_are_counted() {
        let mut no_message = line(b"", None);
        no_message.fields.retain(|f| f.name != "MESSAGE");
        let done = assemble(&[line(b"a", Some("nul")), no_message, line(b"b", None)]);
        assert_eq!(done.bytes, b"a\n\nb\n");
        assert_eq!(done.breaks.nul_breaks, 1);
        assert_eq!(done.breaks.unreadable_lines, 1);
    }

    #[test]
    fn last_line_is_returned() {
        let mut assembler = Assembler::new();
        assert_eq!(assembler.last_line(), None);
        assembler.push(&line(b"first", None));
        assert_eq!(assembler.last_line(), Some(&b"first"[..]));
        assembler.push(&line(b"second", None));
        assert_eq!(assembler.last_line(), Some(&b"second"[..]));
        assert_eq!(assembler.line_count(), 2);
    }

    #[test]
    fn joined_lines_are_capped() {
        let chunk = vec![b'x'; MAX_JOINED_LINE_BYTES / 2 + 1];
        let done = assemble(&[
            line(&chunk, Some("line-max")),
            line(&chunk, Some("line-max")),
            line(b"tail", None),
        ]);
        assert_eq!(done.bytes.len(), MAX_JOINED_LINE_BYTES + 1);
        assert_eq!(done.breaks.long_lines_cut, 2);
    }

    #[test]
    fn single_long_lines_are_capped() {
        let long = vec![b'x'; MAX_JOINED_LINE_BYTES + 10];
        let done = assemble(&[line(&long, None), line(b"next", None)]);
        assert_eq!(
            done.line_ends,
            [MAX_JOINED_LINE_BYTES + 1, MAX_JOINED_LINE_BYTES + 6]
        );
        assert_eq!(done.breaks.long_lines_cut, 1);
    }
}
