//! Goroutine header lines: `goroutine 7 gp=0x... m=nil [chan receive, 2
//! minutes, locked to thread] {k: v}:`.
//!
//! The header is read left to right with a cursor, not with a pattern,
//! because label values may contain `]`, `,` and `:` (Go 1.26+). The fields
//! also changed with almost every release: `gp=`, `m=`, `mp=` came in 1.22,
//! `(leaked)` and labels inside the brackets in 1.26, labels after them in
//! 1.27. Building the goroutine and its frames is left to the parser.

use super::model::{hex, GoroutineId, GoroutineStatus, Label, RuntimeIds};
use super::MAX_LABELS;

/// The fields of one goroutine header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub id: GoroutineId,
    pub runtime_ids: Option<RuntimeIds>,
    pub status: GoroutineStatus,
    pub wait_reason: Option<String>,
    pub wait_minutes: Option<u64>,
    pub locked_to_thread: bool,
    pub scan: bool,
    pub durable: bool,
    pub synctest_bubble: Option<u64>,
    pub labels: Vec<Label>,
    /// Labels past [`MAX_LABELS`], not kept.
    pub dropped_labels: u64,
    /// The header was read to its final `:` without surprises.
    pub complete: bool,
}

/// Reports whether a line starts like a goroutine header: `goroutine`, an
/// id, then ` [` or ` gp=`.
pub(crate) fn is_header(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("goroutine ") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && rest
            .get(digits..)
            .is_some_and(|tail| tail.starts_with(" [") || tail.starts_with(" gp="))
}

/// Reads a goroutine header. Returns `None` only when the line is not one;
/// a damaged header yields what could be read, with `complete` unset.
pub(crate) fn parse_header(line: &str) -> Option<Header> {
    if !is_header(line) {
        return None;
    }
    let mut cursor = Cursor {
        rest: line.strip_prefix("goroutine ")?,
    };
    let id = GoroutineId(cursor.take_decimal()?);
    let mut header = Header {
        id,
        runtime_ids: None,
        status: GoroutineStatus::Unknown,
        wait_reason: None,
        wait_minutes: None,
        locked_to_thread: false,
        scan: false,
        durable: false,
        synctest_bubble: None,
        labels: Vec::new(),
        dropped_labels: 0,
        complete: false,
    };
    header.complete = read_fields(&mut cursor, &mut header).is_some();
    Some(header)
}

/// Reads everything after the id. Returns `None` when the header stops
/// early or contains something unexpected.
fn read_fields(cursor: &mut Cursor<'_>, header: &mut Header) -> Option<()> {
    if cursor.eat(" gp=") {
        let gp = cursor.take_hex()?;
        let mut ids = RuntimeIds {
            gp,
            m: None,
            mp: None,
        };
        if cursor.eat(" m=nil") {
            header.runtime_ids = Some(ids);
        } else {
            cursor.expect(" m=")?;
            ids.m = Some(cursor.take_decimal()?);
            header.runtime_ids = Some(ids);
            cursor.expect(" mp=")?;
            ids.mp = Some(cursor.take_hex()?);
            header.runtime_ids = Some(ids);
        }
    }
    cursor.expect(" [")?;

    // No wait reason contains ", " or "]", and labels inside the brackets
    // (Go 1.26) start with " labels:{".
    let status_end = [", ", " labels:{", "]"]
        .iter()
        .filter_map(|stop| cursor.rest.find(stop))
        .min()?;
    let status_text = cursor.rest.get(..status_end)?;
    cursor.advance(status_end)?;
    read_status(status_text, header);

    while cursor.eat(", ") {
        if cursor.eat("locked to thread") {
            header.locked_to_thread = true;
        } else if cursor.eat("synctest bubble ") || cursor.eat("synctest group ") {
            header.synctest_bubble = Some(cursor.take_decimal()?);
        } else {
            header.wait_minutes = Some(cursor.take_decimal()?);
            cursor.expect(" minutes")?;
        }
    }
    if cursor.eat(" labels:{") {
        read_labels(cursor, header)?;
    }
    cursor.expect("]")?;
    if cursor.eat(" {") {
        read_labels(cursor, header)?;
    }
    cursor.expect(":")?;
    cursor.rest.is_empty().then_some(())
}

/// Splits the status text into the scheduler state, the wait reason and the
/// ` (scan)`, ` (leaked)` and ` (durable)` markers.
///
/// The runtime prints the wait reason in place of `waiting`, then
/// ` (leaked)`, ` (scan)` and ` (durable)` in that order. Some Go 1.25 wait
/// reasons end in `(durable)` themselves, so that marker stays part of the
/// reason and only sets the flag.
fn read_status(text: &str, header: &mut Header) {
    let mut text = text;
    let mut durable = false;
    if let Some(stripped) = text.strip_suffix(" (durable)") {
        durable = true;
        text = stripped;
    }
    if let Some(stripped) = text.strip_suffix(" (scan)") {
        header.scan = true;
        text = stripped;
    }
    let mut leaked = false;
    if let Some(stripped) = text.strip_suffix(" (leaked)") {
        leaked = true;
        text = stripped;
    }
    if let Some(stripped) = text.strip_suffix(" (durable)") {
        durable = true;
        text = stripped;
    }
    header.durable = durable;

    let reason = if durable {
        format!("{text} (durable)")
    } else {
        text.to_string()
    };
    match GoroutineStatus::from_runtime_name(text) {
        // A bare state word. `preempted` is also a wait reason, but the
        // runtime state is the more useful reading.
        Some(status) if !durable => {
            header.status = if leaked {
                GoroutineStatus::Leaked
            } else {
                status
            };
        }
        _ => {
            header.status = if leaked {
                GoroutineStatus::Leaked
            } else {
                GoroutineStatus::Waiting
            };
            header.wait_reason = Some(reason);
        }
    }
}

/// Reads `k: v, k2: v2}` up to and including the closing brace. Keys and
/// values are quoted Go-style when the runtime had to (always in Go 1.26,
/// only for unusual characters in 1.27).
fn read_labels(cursor: &mut Cursor<'_>, header: &mut Header) -> Option<()> {
    if cursor.eat("}") {
        return Some(());
    }
    loop {
        let key = cursor.take_label_text(": ")?;
        cursor.expect(": ")?;
        let value = cursor.take_label_text_either(", ", "}")?;
        if header.labels.len() < MAX_LABELS {
            header.labels.push(Label { key, value });
        } else {
            header.dropped_labels = header.dropped_labels.saturating_add(1);
        }
        if cursor.eat("}") {
            return Some(());
        }
        cursor.expect(", ")?;
    }
}

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn eat(&mut self, token: &str) -> bool {
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, token: &str) -> Option<()> {
        self.eat(token).then_some(())
    }

    fn advance(&mut self, len: usize) -> Option<()> {
        self.rest = self.rest.get(len..)?;
        Some(())
    }

    fn take_decimal(&mut self) -> Option<u64> {
        let len = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        let value = self.rest.get(..len)?.parse().ok()?;
        self.advance(len)?;
        Some(value)
    }

    fn take_hex(&mut self) -> Option<u64> {
        let digits = self.rest.strip_prefix("0x")?;
        let len = digits.bytes().take_while(u8::is_ascii_hexdigit).count();
        let value = hex::parse(self.rest.get(..len + 2)?)?;
        self.advance(len + 2)?;
        Some(value)
    }

    /// Takes a quoted string, or plain text up to `stop`.
    fn take_label_text(&mut self, stop: &str) -> Option<String> {
        if self.rest.starts_with('"') {
            return self.take_quoted();
        }
        let end = self.rest.find(stop)?;
        let text = self.rest.get(..end)?.to_string();
        self.advance(end)?;
        Some(text)
    }

    /// Takes a quoted string, or plain text up to whichever stop comes first.
    fn take_label_text_either(&mut self, first: &str, second: &str) -> Option<String> {
        if self.rest.starts_with('"') {
            return self.take_quoted();
        }
        let end = [first, second]
            .iter()
            .filter_map(|stop| self.rest.find(stop))
            .min()?;
        let text = self.rest.get(..end)?.to_string();
        self.advance(end)?;
        Some(text)
    }

    /// Takes a string quoted as `runtime.printquoted` quotes: `\n`, `\r`,
    /// `\t`, `\\`, `\"`, `\xHH`, `\uHHHH` and `\UHHHHHHHH` escapes.
    fn take_quoted(&mut self) -> Option<String> {
        let mut chars = self.rest.strip_prefix('"')?.char_indices();
        let mut out = String::new();
        while let Some((index, c)) = chars.next() {
            match c {
                '"' => {
                    self.advance(index + 2)?;
                    return Some(out);
                }
                '\\' => {
                    let (_, escape) = chars.next()?;
                    let digits = match escape {
                        'n' => {
                            out.push('\n');
                            continue;
                        }
                        'r' => {
                            out.push('\r');
                            continue;
                        }
                        't' => {
                            out.push('\t');
                            continue;
                        }
                        '\\' | '"' => {
                            out.push(escape);
                            continue;
                        }
                        'x' => 2,
                        'u' => 4,
                        'U' => 8,
                        _ => return None,
                    };
                    let mut code = 0u32;
                    for _ in 0..digits {
                        let (_, digit) = chars.next()?;
                        code = code.checked_mul(16)?.checked_add(digit.to_digit(16)?)?;
                    }
                    out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                _ => out.push(c),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(line: &str) -> Header {
        parse_header(line).unwrap_or_else(|| panic!("not a header: {line}"))
    }

    fn label(key: &str, value: &str) -> Label {
        Label {
            key: key.to_string(),
            value: value.to_string(),
        }
    }

    #[test]
    fn plain_running_header() {
        let h = header("goroutine 1 [running]:");
        assert_eq!(h.id, GoroutineId(1));
        assert_eq!(h.status, GoroutineStatus::Running);
        assert_eq!(h.wait_reason, None);
        assert!(h.complete);
    }

    #[test]
    fn wait_reason_minutes_and_lock() {
        let h = header("goroutine 12 [chan receive, 1 minutes, locked to thread]:");
        assert_eq!(h.status, GoroutineStatus::Waiting);
        assert_eq!(h.wait_reason.as_deref(), Some("chan receive"));
        assert_eq!(h.wait_minutes, Some(1));
        assert!(h.locked_to_thread);
        assert!(h.complete);
    }

    #[test]
    fn wait_reason_with_parentheses() {
        let h = header("goroutine 15 [chan receive (nil chan)]:");
        assert_eq!(h.wait_reason.as_deref(), Some("chan receive (nil chan)"));
        let h = header("goroutine 2 [force gc (idle), 3 minutes]:");
        assert_eq!(h.wait_reason.as_deref(), Some("force gc (idle)"));
        assert_eq!(h.wait_minutes, Some(3));
    }

    #[test]
    fn runtime_ids_of_go_1_22() {
        let h = header("goroutine 1 gp=0xc000002380 m=0 mp=0x5656e0 [syscall]:");
        assert_eq!(h.status, GoroutineStatus::Syscall);
        assert_eq!(
            h.runtime_ids,
            Some(RuntimeIds {
                gp: 0xc000002380,
                m: Some(0),
                mp: Some(0x5656e0)
            })
        );
        let h = header("goroutine 2 gp=0xc000002e00 m=nil [force gc (idle)]:");
        assert_eq!(
            h.runtime_ids,
            Some(RuntimeIds {
                gp: 0xc000002e00,
                m: None,
                mp: None
            })
        );
        assert!(h.complete);
    }

    #[test]
    fn scan_leaked_and_durable_markers() {
        let h = header("goroutine 9 [select (scan)]:");
        assert!(h.scan);
        assert_eq!(h.wait_reason.as_deref(), Some("select"));
        let h = header("goroutine 9 [chan send (leaked)]:");
        assert_eq!(h.status, GoroutineStatus::Leaked);
        assert_eq!(h.wait_reason.as_deref(), Some("chan send"));
        let h = header("goroutine 9 [runnable (scan)]:");
        assert_eq!(h.status, GoroutineStatus::Runnable);
        assert!(h.scan);
        let h = header("goroutine 9 [sync.Cond.Wait (scan) (durable), synctest bubble 4]:");
        assert!(h.durable && h.scan);
        assert_eq!(h.wait_reason.as_deref(), Some("sync.Cond.Wait (durable)"));
        assert_eq!(h.synctest_bubble, Some(4));
        let h = header("goroutine 9 [chan receive (durable), synctest bubble 1]:");
        assert!(h.durable);
        assert_eq!(h.wait_reason.as_deref(), Some("chan receive (durable)"));
        let h = header("goroutine 9 [select, synctest group 2]:");
        assert_eq!(h.synctest_bubble, Some(2));
        assert!(h.complete);
    }

    #[test]
    fn bare_states_and_unknown() {
        assert_eq!(header("goroutine 0 [idle]:").status, GoroutineStatus::Idle);
        assert_eq!(
            header("goroutine 3 [???]:").status,
            GoroutineStatus::Unknown
        );
        assert_eq!(
            header("goroutine 3 [waiting]:").status,
            GoroutineStatus::Waiting
        );
        assert_eq!(header("goroutine 3 [waiting]:").wait_reason, None);
        assert_eq!(
            header("goroutine 3 [waiting for cgo callback]:").status,
            GoroutineStatus::WaitingForCgoCallback
        );
    }

    #[test]
    fn labels_inside_brackets_of_go_1_26() {
        let h = header(
            r#"goroutine 7 [chan receive labels:{"request": "alpha", "route": "/api/v1"}]:"#,
        );
        assert_eq!(h.wait_reason.as_deref(), Some("chan receive"));
        assert_eq!(
            h.labels,
            vec![label("request", "alpha"), label("route", "/api/v1")]
        );
        assert!(h.complete);
    }

    #[test]
    fn labels_after_brackets_of_go_1_27() {
        let h =
            header(r#"goroutine 20 [chan receive] {request: "beta: \"quoted\"", route: /api/v1}:"#);
        assert_eq!(
            h.labels,
            vec![
                label("request", "beta: \"quoted\""),
                label("route", "/api/v1")
            ]
        );
        assert!(h.complete);
        let h = header(r#"goroutine 20 [select, 2 minutes] {"a]b, c": "\x01\u00e9\t"}:"#);
        assert_eq!(h.wait_minutes, Some(2));
        assert_eq!(h.labels, vec![label("a]b, c", "\u{1}é\t")]);
        assert!(h.complete);
    }

    #[test]
    fn damaged_headers_keep_what_was_read() {
        let h = header("goroutine 44 [chan rec");
        assert_eq!(h.id, GoroutineId(44));
        assert!(!h.complete);
        let h = header("goroutine 44 [select, soon]:");
        assert!(!h.complete);
        let h = header(r#"goroutine 44 [select] {"unterminated}:"#);
        assert_eq!(h.wait_reason.as_deref(), Some("select"));
        assert!(!h.complete);
        let h = header("goroutine 44 gp=0xzz [select]:");
        assert!(!h.complete);
        let h = header("goroutine 44 [select]: trailing");
        assert!(!h.complete);
    }

    #[test]
    fn non_headers() {
        assert!(!is_header(
            "goroutine running on other thread; stack unavailable"
        ));
        assert!(!is_header("goroutine 12"));
        assert!(!is_header("goroutine x [running]:"));
        assert!(!is_header("goroutines 1 [running]:"));
        assert!(parse_header("goroutine 99999999999999999999999 [running]:").is_none());
    }

    #[test]
    fn too_many_labels_are_counted() {
        let pairs: Vec<String> = (0..MAX_LABELS + 3).map(|i| format!("k{i}: v")).collect();
        let h = header(&format!("goroutine 5 [select] {{{}}}:", pairs.join(", ")));
        assert_eq!(h.labels.len(), MAX_LABELS);
        assert_eq!(h.dropped_labels, 3);
        assert!(h.complete);
    }
}
