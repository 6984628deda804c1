//! Undoing what log transports do to crash text, line by line.
//!
//! The runtime writes plain lines to stderr. On the way to the reader,
//! journald drops empty lines, and syslog and `journalctl` add a timestamp
//! and `ident[pid]: ` to each line. Container runtimes add a timestamp and a
//! stream name. rsyslog escapes the frame tab as `#011`, and pastes turn it
//! into spaces or drop it. This module splits the text into lines, removes
//! CR line ends, strips a per-line prefix when the caller asks for it, and
//! removes the indentation. Reading the lines is left to the `line` module.

use std::borrow::Cow;

use super::model::{PrefixKind, Transport, Truncation};
use super::{ParseOptions, MAX_LINES, MAX_LINE_BYTES};

/// Non-blank lines looked at to decide which prefix, if any, the text has.
const PREFIX_PROBE_LINES: usize = 500;

/// One input line with its transport decoration removed.
#[derive(Debug)]
pub(crate) struct InputLine<'a> {
    /// 1-based line number in the input.
    pub number: usize,
    /// The line without prefix, indentation and trailing white space.
    pub text: Cow<'a, str>,
}

/// A prefix matched on one line: its length and, for syslog forms, the
/// `host ident[pid]` part that names the writing process.
struct PrefixMatch<'a> {
    len: usize,
    source: Option<&'a str>,
    /// CRI `P`: the record is a partial line continued by the next one.
    partial: bool,
}

/// Splits `text` into lines and removes the transport decoration.
pub(crate) fn split_lines<'a>(
    text: &'a str,
    options: &ParseOptions,
    transport: &mut Transport,
    truncated: &mut Truncation,
) -> Vec<InputLine<'a>> {
    let mut raw: Vec<(usize, &'a str)> = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        if raw.len() >= MAX_LINES {
            truncated.lines = truncated.lines.saturating_add(1);
            continue;
        }
        let line = match line.strip_suffix('\r') {
            Some(stripped) => {
                transport.crlf = true;
                stripped
            }
            None => line,
        };
        raw.push((index.saturating_add(1), line));
    }
    // A text ending in a newline yields one empty piece after it.
    if raw.last().is_some_and(|(_, line)| line.is_empty()) {
        raw.pop();
    }

    let prefix = if options.strip_prefixes {
        detect_prefix(&raw)
    } else {
        None
    };
    transport.prefix = prefix;
    let source = prefix.and_then(|kind| crash_source(&raw, kind));

    let mut lines = Vec::with_capacity(raw.len());
    let mut partial: Option<(usize, String)> = None;
    for (number, line) in raw {
        let mut body: Cow<'a, str> = Cow::Borrowed(line);
        let mut is_partial = false;
        if let Some(kind) = prefix {
            if let Some(found) = match_prefix(line, kind) {
                if source.is_some() && found.source != source {
                    transport.foreign_lines = transport.foreign_lines.saturating_add(1);
                    continue;
                }
                body = Cow::Borrowed(line.get(found.len..).unwrap_or(""));
                is_partial = found.partial;
            }
        }
        // CRI splits long lines into `P` records ended by an `F` record.
        if let Some((first_number, mut joined)) = partial.take() {
            if joined.len() < MAX_LINE_BYTES {
                joined.push_str(&body);
            }
            if is_partial {
                partial = Some((first_number, joined));
                continue;
            }
            lines.push(clean_line(first_number, Cow::Owned(joined), truncated));
            continue;
        }
        if is_partial {
            partial = Some((number, body.into_owned()));
            continue;
        }
        lines.push(clean_line(number, body, truncated));
    }
    if let Some((number, joined)) = partial {
        lines.push(clean_line(number, Cow::Owned(joined), truncated));
    }
    lines
}

/// The transport prefix most lines of a text carry, as the crash text
/// parser finds it, for readers that look at the lines one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinePrefix(PrefixKind);

impl LinePrefix {
    /// Finds the prefix most of the first non-blank `lines` share; `None`
    /// when they share none.
    pub fn detect<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<LinePrefix> {
        let raw: Vec<(usize, &str)> = lines
            .into_iter()
            .filter(|line| !line.trim().is_empty())
            .take(PREFIX_PROBE_LINES)
            .enumerate()
            .collect();
        detect_prefix(&raw).map(LinePrefix)
    }

    /// Returns `line` without the prefix, or all of it when it has none.
    pub fn strip<'a>(&self, line: &'a str) -> &'a str {
        match_prefix(line, self.0)
            .and_then(|found| line.get(found.len..))
            .unwrap_or(line)
    }

    /// Returns the kind of prefix.
    pub fn kind(&self) -> PrefixKind {
        self.0
    }
}

/// Removes indentation and trailing white space, and cuts long lines.
fn clean_line<'a>(number: usize, body: Cow<'a, str>, truncated: &mut Truncation) -> InputLine<'a> {
    let (start, end) = {
        let text: &str = &body;
        let mut rest = text;
        loop {
            let trimmed = rest.trim_start_matches([' ', '\t']);
            // rsyslog writes control characters as `#` and three octal digits.
            match trimmed.strip_prefix("#011") {
                Some(after) => rest = after,
                None => {
                    rest = trimmed;
                    break;
                }
            }
        }
        let start = text.len() - rest.len();
        let end = start + rest.trim_end().len();
        (start, end)
    };
    let mut end = end;
    if end - start > MAX_LINE_BYTES {
        truncated.long_lines = truncated.long_lines.saturating_add(1);
        end = start + MAX_LINE_BYTES;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
    }
    let text = match body {
        Cow::Borrowed(text) => Cow::Borrowed(text.get(start..end).unwrap_or("")),
        Cow::Owned(text) => Cow::Owned(text.get(start..end).unwrap_or("").to_string()),
    };
    InputLine { number, text }
}

/// Picks the prefix form most of the first non-blank lines carry, if at
/// least half of them carry one.
fn detect_prefix(raw: &[(usize, &str)]) -> Option<PrefixKind> {
    let kinds = [
        PrefixKind::Cri,
        PrefixKind::SyslogIso,
        PrefixKind::Timestamp,
        PrefixKind::Syslog,
    ];
    let mut counts = [0usize; 4];
    let mut probed = 0usize;
    for (_, line) in raw
        .iter()
        .filter(|(_, line)| !line.trim().is_empty())
        .take(PREFIX_PROBE_LINES)
    {
        probed += 1;
        // The first form that matches wins, so a CRI line does not also count
        // as a bare timestamp.
        if let Some(position) = kinds
            .iter()
            .position(|kind| match_prefix(line, *kind).is_some())
        {
            if let Some(count) = counts.get_mut(position) {
                *count += 1;
            }
        }
    }
    let (best, count) = counts.iter().enumerate().max_by_key(|(_, count)| **count)?;
    if *count == 0 || count.saturating_mul(2) < probed {
        return None;
    }
    kinds.get(best).copied()
}

/// Returns the `host ident[pid]` of the first line whose message starts a
/// crash, so the lines of other processes can be left out.
fn crash_source<'a>(raw: &[(usize, &'a str)], kind: PrefixKind) -> Option<&'a str> {
    if !matches!(kind, PrefixKind::Syslog | PrefixKind::SyslogIso) {
        return None;
    }
    raw.iter().find_map(|(_, line)| {
        let found = match_prefix(line, kind)?;
        let message = line.get(found.len..)?;
        super::line::starts_crash(message)
            .then_some(found.source)
            .flatten()
    })
}

fn match_prefix(line: &str, kind: PrefixKind) -> Option<PrefixMatch<'_>> {
    match kind {
        PrefixKind::Syslog => {
            let after_time = match_syslog_time(line)?;
            match_source(line, after_time)
        }
        PrefixKind::SyslogIso => {
            let after_time = match_rfc3339(line, 0)?;
            let after_space = expect_byte(line, after_time, b' ')?;
            let found = match_source(line, after_space)?;
            // Without the `[pid]`, `TIMESTAMP fatal error: x` would read as
            // host `fatal` and ident `error`.
            found.source?.ends_with(']').then_some(found)
        }
        PrefixKind::Cri => {
            let after_time = expect_byte(line, match_rfc3339(line, 0)?, b' ')?;
            let rest = line.get(after_time..)?;
            let stream_len = if rest.starts_with("stdout ") {
                "stdout ".len()
            } else if rest.starts_with("stderr ") {
                "stderr ".len()
            } else {
                return None;
            };
            let tag_at = after_time + stream_len;
            let partial = match line.as_bytes().get(tag_at) {
                Some(b'F') => false,
                Some(b'P') => true,
                _ => return None,
            };
            let len = match line.as_bytes().get(tag_at + 1) {
                Some(b' ') => tag_at + 2,
                None => tag_at + 1,
                _ => return None,
            };
            Some(PrefixMatch {
                len,
                source: None,
                partial,
            })
        }
        PrefixKind::Timestamp => {
            let len = expect_byte(line, match_rfc3339(line, 0)?, b' ')?;
            Some(PrefixMatch {
                len,
                source: None,
                partial: false,
            })
        }
    }
}

/// Matches `Mmm dd hh:mm:ss[.frac] ` and returns the offset after it.
fn match_syslog_time(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let month = line.get(0..3)?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    if !MONTHS.contains(&month) || bytes.get(3) != Some(&b' ') {
        return None;
    }
    // The day is space-padded in classic syslog and zero-padded in journalctl.
    let day_ok = matches!(bytes.get(4), Some(b' ' | b'0'..=b'3'))
        && bytes.get(5).is_some_and(u8::is_ascii_digit);
    if !day_ok || bytes.get(6) != Some(&b' ') {
        return None;
    }
    let mut at = match_clock(line, 7)?;
    if bytes.get(at) == Some(&b'.') {
        at = skip_digits(line, at + 1, 1)?;
    }
    expect_byte(line, at, b' ')
}

/// Matches `host ident[pid]: ` (the `[pid]` is optional) from `at`.
fn match_source(line: &str, at: usize) -> Option<PrefixMatch<'_>> {
    let rest = line.get(at..)?;
    let host_len = rest.find(' ')?;
    if host_len == 0 {
        return None;
    }
    let ident_start = host_len + 1;
    let after_host = rest.get(ident_start..)?;
    let colon = after_host
        .find(": ")
        .or_else(|| after_host.strip_suffix(':').map(str::len))?;
    let ident = after_host.get(..colon)?;
    if ident.is_empty() || ident.contains(' ') {
        return None;
    }
    let source_len = ident_start + colon;
    let len = (at + source_len + 2).min(line.len());
    Some(PrefixMatch {
        len,
        source: rest.get(..source_len),
        partial: false,
    })
}

/// Matches `YYYY-MM-DDThh:mm:ss[.frac](Z|±hh[:]mm)` from `at`.
fn match_rfc3339(line: &str, at: usize) -> Option<usize> {
    let mut at = skip_digits(line, at, 4)?;
    at = skip_digits(line, expect_byte(line, at, b'-')?, 2)?;
    at = skip_digits(line, expect_byte(line, at, b'-')?, 2)?;
    at = expect_byte(line, at, b'T')?;
    at = match_clock(line, at)?;
    if line.as_bytes().get(at) == Some(&b'.') {
        at = skip_digits(line, at + 1, 1)?;
    }
    match line.as_bytes().get(at) {
        Some(b'Z') => Some(at + 1),
        Some(b'+' | b'-') => {
            // `+0100` from journalctl, `+01:00` from RFC 3339 writers.
            let hours_end = at + 3;
            if line.as_bytes().get(hours_end) == Some(&b':') {
                skip_digits(
                    line,
                    skip_digits(line, at + 1, 2).map(|_| hours_end + 1)?,
                    2,
                )
            } else {
                skip_digits(line, at + 1, 4)
            }
        }
        _ => None,
    }
}

/// Matches `hh:mm:ss` from `at`.
fn match_clock(line: &str, at: usize) -> Option<usize> {
    let mut at = skip_digits(line, at, 2)?;
    at = skip_digits(line, expect_byte(line, at, b':')?, 2)?;
    skip_digits(line, expect_byte(line, at, b':')?, 2)
}

/// Skips at least `min` ASCII digits from `at`; exactly `min` when `min > 1`.
fn skip_digits(line: &str, at: usize, min: usize) -> Option<usize> {
    let bytes = line.as_bytes();
    let count = bytes
        .get(at..)?
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if count < min || (min > 1 && count != min) {
        return None;
    }
    Some(at + count)
}

fn expect_byte(line: &str, at: usize, byte: u8) -> Option<usize> {
    (line.as_bytes().get(at) == Some(&byte)).then_some(at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, strip_prefixes: bool) -> (Vec<(usize, String)>, Transport, Truncation) {
        let mut transport = Transport::default();
        let mut truncated = Truncation::default();
        let options = ParseOptions { strip_prefixes };
        let lines = split_lines(text, &options, &mut transport, &mut truncated)
            .into_iter()
            .map(|line| (line.number, line.text.into_owned()))
            .collect();
        (lines, transport, truncated)
    }

    #[test]
    fn crlf_and_indentation_are_removed() {
        let (lines, transport, _) = split("main.main()\r\n\t/x/main.go:5 +0x1d\r\n", false);
        assert!(transport.crlf);
        assert_eq!(lines[0], (1, "main.main()".to_string()));
        assert_eq!(lines[1], (2, "/x/main.go:5 +0x1d".to_string()));
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn rsyslog_tab_escape_is_indentation() {
        let (lines, _, _) = split("#011/x/main.go:5 +0x1d", false);
        assert_eq!(lines[0], (1, "/x/main.go:5 +0x1d".to_string()));
    }

    #[test]
    fn journal_short_prefix_is_stripped() {
        let text = "Dec 04 20:35:21 vm t1[2765]: panic: boom\n\
                    Dec 04 20:35:21 vm t1[2765]: \tmain.go:3\n\
                    Dec 04 20:35:21 vm sshd[17]: Accepted key\n\
                    Dec  4 20:35:22 vm t1[2765]: goroutine 1 [running]:";
        let (lines, transport, _) = split(text, true);
        assert_eq!(transport.prefix, Some(PrefixKind::Syslog));
        assert_eq!(transport.foreign_lines, 1);
        assert_eq!(lines[0].1, "panic: boom");
        assert_eq!(lines[1], (2, "main.go:3".to_string()));
        assert_eq!(lines[2], (4, "goroutine 1 [running]:".to_string()));
    }

    #[test]
    fn prefixes_stay_unless_requested() {
        let (lines, transport, _) = split("Dec 04 20:35:21 vm t1[2765]: panic: boom", false);
        assert_eq!(transport.prefix, None);
        assert_eq!(lines[0].1, "Dec 04 20:35:21 vm t1[2765]: panic: boom");
    }

    #[test]
    fn short_precise_and_iso_prefixes() {
        let (lines, transport, _) = split("Dec 04 20:35:21.123456 vm t1[1]: panic: x", true);
        assert_eq!(transport.prefix, Some(PrefixKind::Syslog));
        assert_eq!(lines[0].1, "panic: x");
        let (lines, transport, _) = split("2024-12-04T20:35:21+0000 vm t1[1]: panic: x", true);
        assert_eq!(transport.prefix, Some(PrefixKind::SyslogIso));
        assert_eq!(lines[0].1, "panic: x");
    }

    #[test]
    fn cri_partial_records_are_joined() {
        let text = "2024-01-01T00:00:00.000000000Z stderr F panic: a\n\
                    2024-01-01T00:00:00.000000001Z stderr P panic: long \n\
                    2024-01-01T00:00:00.000000002Z stderr F value\n\
                    2024-01-01T00:00:00.000000003Z stderr F";
        let (lines, transport, _) = split(text, true);
        assert_eq!(transport.prefix, Some(PrefixKind::Cri));
        assert_eq!(lines[0].1, "panic: a");
        assert_eq!(lines[1], (2, "panic: long value".to_string()));
        assert_eq!(lines[2], (4, String::new()));
    }

    #[test]
    fn bare_timestamps_are_stripped() {
        let (lines, transport, _) = split("2024-01-01T00:00:00.5+01:00 fatal error: x", true);
        assert_eq!(transport.prefix, Some(PrefixKind::Timestamp));
        assert_eq!(lines[0].1, "fatal error: x");
    }

    #[test]
    fn rare_prefixes_are_not_stripped() {
        let text = "panic: at 2024-01-01T00:00:00Z\n\
                    2024-01-01T00:00:00Z started\n\
                    goroutine 1 [running]:\nmain.main()";
        let (lines, transport, _) = split(text, true);
        assert_eq!(transport.prefix, None);
        assert_eq!(lines[1].1, "2024-01-01T00:00:00Z started");
    }

    #[test]
    fn long_lines_are_cut_on_char_boundary() {
        let text = format!("panic: {}", "é".repeat(MAX_LINE_BYTES));
        let (lines, _, truncated) = split(&text, false);
        assert_eq!(truncated.long_lines, 1);
        assert!(lines[0].1.len() <= MAX_LINE_BYTES);
        assert!(lines[0].1.len() > MAX_LINE_BYTES - 2);
    }

    #[test]
    fn malformed_prefixes_do_not_match() {
        for line in [
            "Dec 4 20:35:21 vm t1: x",
            "Dez 04 20:35:21 vm t1: x",
            "Dec 04 20:35 vm t1: x",
            "2024-1-01T00:00:00Z x",
            "Dec 04 20:35:21 vm : x",
        ] {
            let raw = [(1, line)];
            assert_eq!(detect_prefix(&raw), None, "{line}");
        }
        assert!(match_prefix("2024-01-01T00:00:00Z stdin F x", PrefixKind::Cri).is_none());
        assert!(
            match_prefix("2024-01-01T00:00:00+01 vm t1[1]: x", PrefixKind::SyslogIso).is_none()
        );
        assert!(
            match_prefix("2024-01-01T00:00:00+01:00 vm t1: x", PrefixKind::SyslogIso).is_none()
        );
    }
}
