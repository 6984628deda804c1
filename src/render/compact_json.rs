//! Compact JSON written by hand, for the large parts of the symbolize
//! document, and [`Indenter`], which indents compact JSON as it streams by.
//!
//! In a profile of a 10,000-goroutine document, serde_json's escaping of
//! strings alone took a fifth of the JSON threads' time, besides its
//! generic field calls. The writer here appends straight to a byte buffer
//! and formats addresses without a string. Its output is byte for byte
//! what serde_json's compact writer gives.

use std::io::{self, Write};

/// Hex digits of addresses, lowercase as Rust's `{:#x}` writes them.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Reports whether JSON must escape `byte` inside a string: quotes,
/// backslashes and control characters, as serde_json escapes them.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Appends `text` as a JSON string, escaped as serde_json escapes it.
pub fn push_str(buf: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if !needs_escape(byte) {
            continue;
        }
        buf.extend_from_slice(&bytes[start..index]);
        match byte {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            control => {
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX_DIGITS[usize::from(control >> 4)]);
                buf.push(HEX_DIGITS[usize::from(control & 0xf)]);
            }
        }
        start = index + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Appends `value` as a `0x` hex string, as `{:#x}` formats it.
pub fn push_hex(buf: &mut Vec<u8>, value: u64) {
    let digits = (64 - value.leading_zeros()).div_ceil(4).max(1) as usize;
    buf.extend_from_slice(b"\"0x");
    for index in (0..digits).rev() {
        buf.push(HEX_DIGITS[((value >> (4 * index)) & 0xf) as usize]);
    }
    buf.push(b'"');
}

/// Appends a decimal integer.
pub fn push_int(buf: &mut Vec<u8>, value: impl itoa::Integer) {
    buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// One JSON object being appended to a buffer: each method writes one
/// field, and [`Object::end`] closes the object. Field names are written as
/// they are, so they must need no escaping.
pub struct Object<'b> {
    buf: &'b mut Vec<u8>,
    empty: bool,
}

impl<'b> Object<'b> {
    /// Opens an object at the end of `buf`.
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        buf.push(b'{');
        Object { buf, empty: true }
    }

    /// Continues an object at the end of `buf` whose opening brace and
    /// first fields were written already, such as a cached prefix.
    pub fn resume(buf: &'b mut Vec<u8>) -> Self {
        Object { buf, empty: false }
    }

    /// Writes the name of the next field and returns the buffer its value
    /// goes to.
    pub fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
        self.buf
    }

    pub fn str(&mut self, name: &str, value: &str) {
        push_str(self.key(name), value);
    }

    pub fn opt_str(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(value) => self.str(name, value),
            None => self.null(name),
        }
    }

    pub fn int(&mut self, name: &str, value: impl itoa::Integer) {
        push_int(self.key(name), value);
    }

    pub fn opt_int(&mut self, name: &str, value: Option<impl itoa::Integer>) {
        match value {
            Some(value) => self.int(name, value),
            None => self.null(name),
        }
    }

    pub fn hex(&mut self, name: &str, value: u64) {
        push_hex(self.key(name), value);
    }

    pub fn opt_hex(&mut self, name: &str, value: Option<u64>) {
        match value {
            Some(value) => self.hex(name, value),
            None => self.null(name),
        }
    }

    pub fn bool(&mut self, name: &str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(name).extend_from_slice(text);
    }

    pub fn null(&mut self, name: &str) {
        self.key(name).extend_from_slice(b"null");
    }

    /// Writes a field whose value serde serializes: for the small, rarely
    /// repeated values not worth writing by hand.
    pub fn serialized(&mut self, name: &str, value: &impl serde::Serialize) -> io::Result<()> {
        serde_json::to_writer(self.key(name), value).map_err(io::Error::from)
    }

    /// Passes what was written so far to `out` and empties the buffer, so
    /// that a large value can go to `out` directly. Fields written after it
    /// continue the same object.
    pub fn drain_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Closes the object.
    pub fn end(self) {
        self.buf.push(b'}');
    }
}

/// Appends `items` as a JSON array, each written by `write_item`.
pub fn push_array<T>(
    buf: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write_item: impl FnMut(&mut Vec<u8>, T) -> io::Result<()>,
) -> io::Result<()> {
    buf.push(b'[');
    for (index, item) in items.into_iter().enumerate() {
        if index > 0 {
            buf.push(b',');
        }
        write_item(buf, item)?;
    }
    buf.push(b']');
    Ok(())
}

/// Indents compact JSON written through it the way serde_json's pretty
/// printer does: two spaces per level, `": "` after names, and `[]` and
/// `{}` for empty arrays and objects. The input must contain no whitespace
/// outside strings, as compact JSON contains none.
pub struct Indenter<W: Write> {
    out: W,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// An array or object was opened and nothing written in it yet.
    opened: bool,
}

impl<W: Write> Indenter<W> {
    pub fn new(out: W) -> Self {
        Indenter {
            out,
            depth: 0,
            in_string: false,
            escaped: false,
            opened: false,
        }
    }

    fn new_line(&mut self) -> io::Result<()> {
        self.out.write_all(b"\n")?;
        for _ in 0..self.depth {
            self.out.write_all(b"  ")?;
        }
        Ok(())
    }

    /// Ends an array or object that was opened with nothing in it yet,
    /// by putting the next value on a new line.
    fn fill_opened(&mut self) -> io::Result<()> {
        if self.opened {
            self.opened = false;
            self.new_line()?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Indenter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        for (index, &byte) in bytes.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            // Outside strings each byte is copied or rewritten on its own,
            // after the string bytes before it.
            self.out.write_all(&bytes[start..index])?;
            start = index + 1;
            match byte {
                b'{' | b'[' => {
                    self.fill_opened()?;
                    self.out.write_all(&[byte])?;
                    self.depth += 1;
                    self.opened = true;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.opened {
                        self.opened = false;
                    } else {
                        self.new_line()?;
                    }
                    self.out.write_all(&[byte])?;
                }
                b',' => {
                    self.out.write_all(b",")?;
                    self.new_line()?;
                }
                b':' => self.out.write_all(b": ")?,
                _ => {
                    self.fill_opened()?;
                    self.in_string = byte == b'"';
                    self.out.write_all(&[byte])?;
                }
            }
        }
        self.out.write_all(&bytes[start..])?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_escape_as_serde_json() {
        let mut samples: Vec<String> = (0u8..0x80).map(|b| format!("a{}z", b as char)).collect();
        samples.extend(
            [
                "",
                "plain",
                "é ü ∑ 😀",
                "\u{7f}",
                "/path/to/file.go",
                "quote \" and \\",
            ]
            .map(String::from),
        );
        for sample in samples {
            let mut buf = Vec::new();
            push_str(&mut buf, &sample);
            let expected = serde_json::to_string(&sample).unwrap();
            assert_eq!(String::from_utf8(buf).unwrap(), expected, "{sample:?}");
        }
    }

    #[test]
    fn hex_matches_format() {
        for value in [0, 1, 0xf, 0x10, 0x463341, 0xc0019c91e0, u64::MAX] {
            let mut buf = Vec::new();
            push_hex(&mut buf, value);
            assert_eq!(String::from_utf8(buf).unwrap(), format!("\"{value:#x}\""));
        }
    }

    #[test]
    fn object_matches_serde_json() {
        let mut buf = Vec::new();
        let mut object = Object::new(&mut buf);
        object.str("name", "main.main");
        object.opt_str("file", None);
        object.int("line", -3i64);
        object.opt_int("id", Some(7u64));
        object.hex("pc", 0x4c684a);
        object.opt_hex("fp", None);
        object.bool("trapped", true);
        object.serialized("list", &[1, 2]).unwrap();
        push_array(object.key("empty"), [0u8; 0], |_, _| Ok(())).unwrap();
        object.end();
        let expected = json!({
            "name": "main.main", "file": null, "line": -3, "id": 7, "pc": "0x4c684a",
            "fp": null, "trapped": true, "list": [1, 2], "empty": []
        });
        let parsed: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(parsed, expected);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            r#"{"name":"main.main","file":null,"line":-3,"id":7,"pc":"0x4c684a","fp":null,"trapped":true,"list":[1,2],"empty":[]}"#
        );
    }

    #[test]
    fn indenter_matches_pretty_printer() {
        let value = json!({
            "schema": "x/1",
            "empty_list": [],
            "empty_object": {},
            "nested": [[], [{}], [1, [2, {"a": [null]}]]],
            "tricky": "braces {} [] , : and \"quotes\" \\ in a string",
            "numbers": [0, -1, 1.5, true, false, null],
            "object": {"inner": {"deeper": "é"}, "after": 1}
        });
        let compact = serde_json::to_vec(&value).unwrap();
        let expected = serde_json::to_string_pretty(&value).unwrap();
        // Written in pieces of every size, to cross strings and escapes.
        for piece in [1, 2, 3, 7, compact.len()] {
            let mut indented = Vec::new();
            let mut indenter = Indenter::new(&mut indented);
            for chunk in compact.chunks(piece) {
                indenter.write_all(chunk).unwrap();
            }
            let indented = String::from_utf8(indented).unwrap();
            assert_eq!(indented, expected, "pieces of {piece} bytes");
        }
    }
}
