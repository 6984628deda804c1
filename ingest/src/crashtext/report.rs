//! Finds the Go crash report inside a process's output and checks that it
//! is whole.
//!
//! A service's output holds its own log lines before the runtime's report.
//! The report starts with the lines that give the reason (`panic: `,
//! `fatal error: `, `SIGSEGV: segmentation violation`, `runtime: `
//! diagnostics) and continues with the goroutine blocks. journald drops the
//! blank lines that separate them, so the start is found from those line
//! forms alone. Whether the dump is whole is judged from the parsed report:
//! a dump cut by journald's rate limit or by the end of the stream stops
//! inside a goroutine block.

use serde::Serialize;

use crate::traceback::{FatalForm, SignalForm, Traceback};

#[cfg(doc)]
use super::{MAX_TEXT_BYTES, MAX_TEXT_LINES};
#[cfg(doc)]
use crate::traceback::MAX_GOROUTINES;

/// Most lines between two lines of the report's opening. A panic value may
/// span lines (errors joined with newlines), and nested panics print one
/// `panic: ` line each.
pub const MAX_OPENING_GAP_LINES: usize = 64;

/// Reports whether a line opens or continues the runtime's reason for the
/// crash.
pub fn is_reason_line(line: &[u8]) -> bool {
    let line = line.strip_prefix(b"\t").unwrap_or(line);
    const PREFIXES: [&[u8]; 6] = [
        b"panic: ",
        b"fatal error: ",
        b"fatal: ",
        b"unexpected fault address ",
        b"runtime: ",
        b"[signal ",
    ];
    if PREFIXES.iter().any(|prefix| line.starts_with(prefix)) {
        return true;
    }
    is_signal_report(line)
}

/// `SIGSEGV: segmentation violation`, or `signal 34` and `Signal 65` for
/// signals without a name in the runtime's table.
fn is_signal_report(line: &[u8]) -> bool {
    if let Some(rest) = line.strip_prefix(b"SIG") {
        let name_len = rest
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            .count();
        return name_len > 0 && rest.get(name_len..).is_some_and(|r| r.starts_with(b": "));
    }
    for prefix in [&b"signal "[..], b"Signal "] {
        if let Some(number) = line.strip_prefix(prefix) {
            return !number.is_empty() && number.iter().all(u8::is_ascii_digit);
        }
    }
    false
}

/// Reports whether a line is a goroutine header: `goroutine 1 [running]:`,
/// or `goroutine 1 gp=0x... m=0 mp=0x... [running]:` since Go 1.22.
pub fn is_goroutine_header(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"goroutine ") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0
        && rest
            .get(digits..)
            .is_some_and(|r| r.starts_with(b" [") || r.starts_with(b" gp="))
}

/// Returns the index of the report's first line among `lines`: the first
/// of the reason lines before the first goroutine header, or the header
/// itself when no reason was printed (or it was lost).
pub fn find_report_start<'a>(lines: impl Iterator<Item = &'a [u8]> + Clone) -> Option<usize> {
    let first_header = lines.clone().position(is_goroutine_header);
    let limit = first_header.unwrap_or(usize::MAX);
    // Indexes of reason lines before the first header.
    let reasons: Vec<usize> = lines
        .take(limit)
        .enumerate()
        .filter(|(_, line)| is_reason_line(line))
        .map(|(index, _)| index)
        .collect();
    let Some(&last) = reasons.last() else {
        return first_header;
    };
    // Walks back over reason lines close enough to belong to one opening.
    let mut start = last;
    for &earlier in reasons.iter().rev().skip(1) {
        if start - earlier > MAX_OPENING_GAP_LINES {
            break;
        }
        start = earlier;
    }
    Some(start)
}

/// Rebuilds the first line of the crash report from the parsed reason: the
/// oldest panic, the fatal error, or a fatal signal, whichever the runtime
/// printed first.
pub fn headline(traceback: &Traceback) -> Option<String> {
    let mut candidates: Vec<(usize, String)> = Vec::new();
    if let Some(panic) = traceback.panics.first() {
        let value = panic.value.lines().next().unwrap_or("");
        let mark = match (panic.recovered, panic.repanicked) {
            (_, true) => " [recovered, repanicked]",
            (true, false) => " [recovered]",
            _ => "",
        };
        candidates.push((panic.text_line, format!("panic: {value}{mark}")));
    }
    if let Some(fatal) = &traceback.fatal {
        let prefix = match fatal.form {
            FatalForm::FatalError => "fatal error",
            FatalForm::Fatal => "fatal",
        };
        let message = fatal.message.lines().next().unwrap_or("");
        candidates.push((fatal.text_line, format!("{prefix}: {message}")));
    }
    if let Some(signal) = &traceback.signal {
        if signal.form == SignalForm::Handler {
            let name = match (&signal.name, signal.number) {
                (Some(name), _) => name.clone(),
                (None, Some(number)) => format!("signal {number}"),
                (None, None) => "signal".to_string(),
            };
            let line = match &signal.description {
                Some(description) => format!("{name}: {description}"),
                None => name,
            };
            candidates.push((signal.text_line, line));
        }
    }
    candidates
        .into_iter()
        .min_by_key(|(line, _)| *line)
        .map(|(_, text)| text)
}

/// How the goroutine dump of a crash text ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum DumpEnd {
    /// The last goroutine block ends with a whole frame.
    Complete,
    /// The text was read only up to its first goroutine, so its end was not
    /// checked.
    Unchecked,
    /// The text holds no crash report at all.
    NoReport,
    /// A reason was printed but no goroutine block followed.
    NoGoroutines,
    /// The last goroutine block has a header and no frame.
    MidGoroutine { goroutine: u64, text_line: usize },
    /// The last frame has a function line and no `file:line` line.
    MidFrame {
        goroutine: u64,
        function: String,
        text_line: usize,
    },
    /// The text is longer than the reader keeps ([`MAX_GOROUTINES`]
    /// goroutines, [`MAX_TEXT_LINES`] lines, [`MAX_TEXT_BYTES`] bytes), so
    /// only its first part was read and the end of the dump was not seen.
    ReaderLimit {
        /// Goroutine blocks read.
        goroutines_kept: usize,
        /// Goroutine blocks past [`MAX_GOROUTINES`], counted and not kept.
        goroutines_not_kept: u64,
        /// Lines past the reader's line and byte limits, not read.
        lines_not_kept: u64,
    },
}

impl DumpEnd {
    /// Reports whether the dump is known to be cut, by journald or by the
    /// reader's limits.
    pub fn is_cut(&self) -> bool {
        matches!(
            self,
            DumpEnd::NoGoroutines
                | DumpEnd::MidGoroutine { .. }
                | DumpEnd::MidFrame { .. }
                | DumpEnd::ReaderLimit { .. }
        )
    }
}

/// Checks whether a parsed report ends where a complete dump ends. A
/// report the parser read only in part ends at [`DumpEnd::ReaderLimit`]:
/// its last kept goroutine is not the last one printed.
pub fn check_dump_end(traceback: &Traceback) -> DumpEnd {
    if traceback.truncated.goroutines > 0 || traceback.truncated.lines > 0 {
        return DumpEnd::ReaderLimit {
            goroutines_kept: traceback.goroutines.len(),
            goroutines_not_kept: traceback.truncated.goroutines,
            lines_not_kept: traceback.truncated.lines,
        };
    }
    if traceback.is_empty() {
        return DumpEnd::NoReport;
    }
    let Some(last) = traceback.goroutines.last() else {
        return DumpEnd::NoGoroutines;
    };
    if last.frames.is_empty() && !last.stack_unavailable && last.created_by.is_none() {
        return DumpEnd::MidGoroutine {
            goroutine: last.id.0,
            text_line: last.text_line,
        };
    }
    let created_by_cut = last
        .created_by
        .as_ref()
        .filter(|created| created.file.is_none())
        .map(|created| (created.function.clone(), created.text_line));
    let frame_cut = || {
        last.frames
            .last()
            .filter(|frame| frame.file.is_none())
            .map(|frame| (frame.function.clone(), frame.text_line))
    };
    match created_by_cut.or_else(frame_cut) {
        Some((function, text_line)) => DumpEnd::MidFrame {
            goroutine: last.id.0,
            function,
            text_line,
        },
        None => DumpEnd::Complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traceback::{parse, MAX_GOROUTINES};

    fn lines(text: &str) -> Vec<&[u8]> {
        text.lines().map(str::as_bytes).collect()
    }

    #[test]
    fn reason_lines_are_recognised() {
        for line in [
            "panic: boom",
            "\tpanic: second [recovered]",
            "fatal error: concurrent map writes",
            "fatal: morestack on g0",
            "SIGSEGV: segmentation violation",
            "SIGQUIT: quit",
            "signal 34",
            "Signal 65",
            "runtime: goroutine stack exceeds 1000000000-byte limit",
            "unexpected fault address 0x0",
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x45]",
        ] {
            assert!(is_reason_line(line.as_bytes()), "{line}");
        }
        for line in [
            "SIG: x",
            "SIGx: y",
            "signal x",
            "/login: 98us",
            "panicking: no",
            "goroutine 1 [running]:",
        ] {
            assert!(!is_reason_line(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn goroutine_headers_are_recognised() {
        assert!(is_goroutine_header(b"goroutine 1 [running]:"));
        assert!(is_goroutine_header(
            b"goroutine 18 gp=0xc000102a80 m=nil [chan receive]:"
        ));
        assert!(!is_goroutine_header(
            b"goroutine running on other thread; stack unavailable"
        ));
        assert!(!is_goroutine_header(b"goroutine 1"));
    }

    #[test]
    fn report_starts_after_log_lines() {
        let text = "/login: 98us\n/login: 12us\nfatal error: concurrent map writes\n\ngoroutine 5 [running]:\nmain.f()\n";
        assert_eq!(find_report_start(lines(text).into_iter()), Some(2));
    }

    #[test]
    fn opening_spans_runtime_lines_and_panic_values() {
        let text = "app started\nruntime: goroutine stack exceeds 65536-byte limit\nruntime: sp=0xc stack=[0x1, 0x2]\nfatal error: stack overflow\nruntime stack:\ngoroutine 1 [running]:\n";
        assert_eq!(find_report_start(lines(text).into_iter()), Some(1));

        let nested = "log\npanic: first [recovered]\n  detail one\n  detail two\n\tpanic: second\ngoroutine 1 [running]:\n";
        assert_eq!(find_report_start(lines(nested).into_iter()), Some(1));
    }

    #[test]
    fn distant_panic_lines_stay_outside() {
        let mut text = String::from("panic: logged by the application\n");
        for index in 0..MAX_OPENING_GAP_LINES + 1 {
            text.push_str(&format!("request {index}\n"));
        }
        text.push_str("panic: real\ngoroutine 1 [running]:\n");
        let start = find_report_start(lines(&text).into_iter());
        assert_eq!(start, Some(MAX_OPENING_GAP_LINES + 2));
    }

    #[test]
    fn header_without_reason_starts_the_report() {
        let text = "log\ngoroutine 1 [running]:\nmain.main()\n";
        assert_eq!(find_report_start(lines(text).into_iter()), Some(1));
        assert_eq!(find_report_start(lines("just logs\n").into_iter()), None);
    }

    #[test]
    fn headline_takes_the_first_reason() {
        let text = "panic: close journal [recovered]\n\tpanic: second\n\ngoroutine 1 [running]:\nmain.main()\n\t/m.go:3 +0x1\n";
        assert_eq!(
            headline(&parse(text)).as_deref(),
            Some("panic: close journal [recovered]")
        );
        let signal = "SIGQUIT: quit\nPC=0x46 m=0 sigcode=0\n\ngoroutine 1 [running]:\nmain.main()\n\t/m.go:3 +0x1\n";
        assert_eq!(headline(&parse(signal)).as_deref(), Some("SIGQUIT: quit"));
        assert_eq!(headline(&parse("hello\n")), None);
    }

    #[test]
    fn dump_end_finds_cuts() {
        let whole = "panic: x\n\ngoroutine 1 [running]:\nmain.main()\n\t/m.go:3 +0x1\n";
        assert_eq!(check_dump_end(&parse(whole)), DumpEnd::Complete);
        let mid_frame = "panic: x\n\ngoroutine 1 [running]:\nmain.main()\n\t/m.go:3 +0x1\ngoroutine 2 [chan receive]:\nmain.worker()\n";
        assert!(matches!(
            check_dump_end(&parse(mid_frame)),
            DumpEnd::MidFrame { goroutine: 2, ref function, .. } if function == "main.worker"
        ));
        let mid_goroutine = "panic: x\n\ngoroutine 1 [running]:\nmain.main()\n\t/m.go:3 +0x1\ngoroutine 9 [select]:\n";
        assert!(matches!(
            check_dump_end(&parse(mid_goroutine)),
            DumpEnd::MidGoroutine { goroutine: 9, .. }
        ));
        assert_eq!(check_dump_end(&parse("panic: x\n")), DumpEnd::NoGoroutines);
        assert_eq!(check_dump_end(&parse("nothing\n")), DumpEnd::NoReport);
        assert!(DumpEnd::NoGoroutines.is_cut());
        assert!(!DumpEnd::Complete.is_cut());
    }

    #[test]
    fn dump_end_over_goroutine_limit_is_reader_limit() {
        // Headers alone would otherwise read as a dump cut after the last
        // kept header, which is false: the text goes on.
        let mut text = String::from("panic: x\n\n");
        for id in 0..MAX_GOROUTINES + 3 {
            text.push_str(&format!("goroutine {id} [running]:\n"));
        }
        let end = check_dump_end(&parse(&text));
        assert_eq!(
            end,
            DumpEnd::ReaderLimit {
                goroutines_kept: MAX_GOROUTINES,
                goroutines_not_kept: 3,
                lines_not_kept: 0,
            }
        );
        assert!(end.is_cut());
    }
}
