//! Escaping of untrusted text for human-readable output.
//!
//! Crash text, panic values, journal fields (`COREDUMP_CMDLINE`,
//! `COREDUMP_EXE`, `COREDUMP_COMM`), file names and strings read from a core
//! are written by the crashed program or whoever controls its input. Written
//! raw to a terminal, an ESC sequence in them can retitle the window, clear
//! the screen or hide lines, and a carriage return can overwrite what was
//! printed before it. Every human-readable writer therefore passes such text
//! through this module, as `systemctl` and `journalctl` do: C0 control
//! characters other than tab, DEL and C1 control characters are written as
//! escapes (`\x1b`, `\u009b`), and invalid UTF-8 as U+FFFD (`�`). Newlines
//! are kept only where the output format uses them as structure.
//!
//! JSON output needs none of this: serde_json escapes control characters.

use std::borrow::Cow;
use std::io::{self, Write};

/// The replacement for a byte sequence that is not UTF-8.
const REPLACEMENT: &str = "\u{fffd}";

/// The handling of a newline in escaped text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Newlines {
    /// Keep it: the text is printed over several lines by design, such as a
    /// panic value the runtime prints with its newlines.
    Keep,
    /// Write it as `\n`: the text is one cell or one field of the output.
    Escape,
}

/// Escapes the control characters of `text` for a terminal. Returns the
/// text unchanged, without copying, when it has none.
pub fn escape(text: &str, newlines: Newlines) -> Cow<'_, str> {
    // Printable ASCII, the whole of most output, is checked byte by byte
    // without decoding characters.
    let plain = text.bytes().all(|byte| {
        (0x20..0x7f).contains(&byte)
            || byte == b'\t'
            || (byte == b'\n' && newlines == Newlines::Keep)
    });
    if plain || !text.chars().any(|c| needs_escape(c, newlines)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    push_escaped(&mut out, text, newlines);
    Cow::Owned(out)
}

/// Escapes a one-line value: its newlines are written as `\n` too.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape(text, Newlines::Escape)
}

/// Shortens a one-line value to at most `max_bytes` bytes of its text,
/// cut at a character boundary, followed by `…` and its full length, so a
/// reader sees that it was cut and by how much. `text` may itself be the
/// start of a value of `full_len` bytes. Shorter, whole values are returned
/// unchanged.
pub fn cap_line(text: &str, max_bytes: usize, full_len: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes && full_len <= text.len() {
        return Cow::Borrowed(text);
    }
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let full_len = full_len.max(text.len());
    Cow::Owned(format!("{}… ({full_len} bytes)", &text[..end]))
}

fn needs_escape(c: char, newlines: Newlines) -> bool {
    match c {
        '\t' => false,
        '\n' => newlines == Newlines::Escape,
        _ => c.is_control(),
    }
}

fn push_escaped(out: &mut String, text: &str, newlines: Newlines) {
    for c in text.chars() {
        if !needs_escape(c, newlines) {
            out.push(c);
        } else if c == '\n' {
            out.push_str("\\n");
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{:04x}", c as u32));
        }
    }
}

/// A writer that escapes everything written through it as [`escape`] does
/// with [`Newlines::Keep`]: a whole human-readable report can be written
/// through it, since its own structure is only newlines and tabs.
///
/// Bytes that are not UTF-8 become U+FFFD. A multi-byte character split
/// between two writes is joined again; one still incomplete when
/// [`EscapingWriter::finish`] is called becomes U+FFFD.
pub struct EscapingWriter<W: Write> {
    inner: W,
    /// The start of a UTF-8 sequence that the next write completes.
    pending: Vec<u8>,
}

impl<W: Write> EscapingWriter<W> {
    pub fn new(inner: W) -> EscapingWriter<W> {
        EscapingWriter {
            inner,
            pending: Vec::new(),
        }
    }

    /// Writes out an incomplete character left at the end as U+FFFD and
    /// flushes the inner writer.
    pub fn finish(mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.inner.write_all(REPLACEMENT.as_bytes())?;
        }
        self.inner.flush()
    }

    /// Writes `bytes`, keeping an incomplete character at the end for the
    /// next write.
    fn write_bytes(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        loop {
            match std::str::from_utf8(bytes) {
                Ok(text) => return self.write_text(text),
                Err(error) => {
                    let (valid, rest) = bytes.split_at(error.valid_up_to());
                    // `valid_up_to` marks the end of valid UTF-8.
                    self.write_text(std::str::from_utf8(valid).unwrap_or_default())?;
                    match error.error_len() {
                        Some(invalid) => {
                            self.inner.write_all(REPLACEMENT.as_bytes())?;
                            bytes = rest.get(invalid..).unwrap_or_default();
                        }
                        None => {
                            self.pending.extend_from_slice(rest);
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    fn write_text(&mut self, text: &str) -> io::Result<()> {
        self.inner
            .write_all(escape(text, Newlines::Keep).as_bytes())
    }
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            self.write_bytes(buf)?;
        } else {
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(buf);
            self.write_bytes(&joined)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_plain_text_borrowed() {
        let text = "panic: boom\n\tmain.go:9 +0x1d";
        assert!(matches!(escape(text, Newlines::Keep), Cow::Borrowed(_)));
        assert_eq!(escape(text, Newlines::Keep), text);
        assert_eq!(escape("héllo ✓", Newlines::Escape), "héllo ✓");
    }

    #[test]
    fn escape_writes_c0_del_and_c1() {
        let text = "\x1b]0;title\x07\x1b[2J\rfake\x7f\u{9b}31m";
        assert_eq!(
            escape(text, Newlines::Keep),
            "\\x1b]0;title\\x07\\x1b[2J\\x0dfake\\x7f\\u009b31m"
        );
    }

    #[test]
    fn escape_keeps_or_escapes_newlines() {
        assert_eq!(escape("a\nb\tc", Newlines::Keep), "a\nb\tc");
        assert_eq!(escape("a\nb\tc", Newlines::Escape), "a\\nb\tc");
        assert_eq!(escape_line("x\ny"), "x\\ny");
    }

    #[test]
    fn cap_line_cuts_at_char_boundary() {
        assert_eq!(cap_line("short", 10, 5), "short");
        assert_eq!(cap_line("abcdef", 3, 6), "abc… (6 bytes)");
        // 'é' is two bytes: a cut inside it moves back before it.
        assert_eq!(cap_line("aéb", 2, 4), "a… (4 bytes)");
    }

    #[test]
    fn cap_line_gives_full_length() {
        assert_eq!(cap_line("abcdef", 3, 100), "abc… (100 bytes)");
        // A short start of a longer value still shows the value was cut.
        assert_eq!(cap_line("abc", 10, 100), "abc… (100 bytes)");
    }

    #[test]
    fn writer_escapes_and_keeps_structure() {
        let mut out = Vec::new();
        let mut writer = EscapingWriter::new(&mut out);
        write!(writer, "panic: \x1b[31mred\x1b[0m\n\tnext\n").unwrap();
        writer.write_all(b"bytes \xff end\n").unwrap();
        writer.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "panic: \\x1b[31mred\\x1b[0m\n\tnext\nbytes \u{fffd} end\n"
        );
    }

    #[test]
    fn writer_joins_split_characters() {
        let mut out = Vec::new();
        let mut writer = EscapingWriter::new(&mut out);
        // U+009B (C1 CSI) is 0xc2 0x9b; é is 0xc3 0xa9.
        writer.write_all(b"a\xc2").unwrap();
        writer.write_all(b"\x9bb\xc3").unwrap();
        writer.write_all(b"\xa9\xe2").unwrap();
        writer.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\\u009bbé\u{fffd}");
    }
}
