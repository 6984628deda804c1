//! Go string literal quoting, as Go's `strconv.Quote` and `strconv.Unquote`
//! do it, for build settings: the Go toolchain quotes a setting's key or
//! value that contains spaces, tabs, newlines or quote characters, and
//! `go version -m` prints them the same way.

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

/// Returns `s` as a double-quoted Go string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    if c == '"' || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        _ => {
            let value = u32::from(c);
            let (prefix, digits) = if value < 0x20 || value == 0x7f {
                ("\\x", 2)
            } else if value < 0x10000 {
                ("\\u", 4)
            } else {
                ("\\U", 8)
            };
            out.push_str(prefix);
            for shift in (0..digits).rev() {
                let nibble = (value >> (shift * 4)) & 0xf;
                out.push(char::from(LOWER_HEX[nibble as usize]));
            }
        }
    }
}

/// Reports whether Go's `strconv.IsPrint` holds for `c`: letters, marks,
/// numbers, punctuation, symbols and the ASCII space.
///
/// NOTE: Rust's standard library has no Unicode category tables, so outside
/// ASCII this rejects control, whitespace, private-use and the common format
/// characters but accepts unassigned code points, which Go escapes. Build
/// settings are ASCII in practice.
fn is_print(c: char) -> bool {
    let value = u32::from(c);
    if value < 0x80 {
        return (0x20..0x7f).contains(&value);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format_or_private = matches!(
        value,
        0x00ad
            | 0x0600..=0x0605
            | 0x061c
            | 0x06dd
            | 0x070f
            | 0x0890..=0x0891
            | 0x08e2
            | 0x180e
            | 0x200b..=0x200f
            | 0x202a..=0x202e
            | 0x2060..=0x2064
            | 0x2066..=0x206f
            | 0xe000..=0xf8ff
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0xfffe..=0xffff
            | 0x110bd
            | 0x110cd
            | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0xe0001
            | 0xe0020..=0xe007f
            | 0xf0000..=0x10ffff
    );
    !format_or_private
}

/// Returns the length in bytes of the Go string literal (double-quoted or
/// back-quoted) at the start of `s`, or `None` when `s` does not start with a
/// valid one. This is `strconv.QuotedPrefix`.
pub(crate) fn quoted_prefix_len(s: &str) -> Option<usize> {
    unquote_prefix(s).map(|(_, len)| len)
}

/// Decodes `s`, which must be exactly one Go string literal. This is
/// `strconv.Unquote` for strings.
///
/// NOTE: `\x` and octal escapes stand for single bytes. Where those bytes do
/// not form UTF-8 they are replaced by U+FFFD, because settings are kept as
/// Rust strings.
pub(crate) fn unquote(s: &str) -> Option<String> {
    match unquote_prefix(s) {
        Some((value, len)) if len == s.len() => Some(value),
        _ => None,
    }
}

fn unquote_prefix(s: &str) -> Option<(String, usize)> {
    let bytes = s.as_bytes();
    match bytes.first()? {
        b'`' => {
            let end = s.get(1..)?.find('`')? + 1;
            // Carriage returns inside raw string literals are discarded.
            let value: String = s.get(1..end)?.chars().filter(|&c| c != '\r').collect();
            Some((value, end + 1))
        }
        b'"' => unquote_double(s),
        _ => None,
    }
}

fn unquote_double(s: &str) -> Option<(String, usize)> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut chars = s.char_indices();
    chars.next(); // the opening quote
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => {
                let value = String::from_utf8(out)
                    .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
                return Some((value, index + 1));
            }
            '\n' => return None,
            '\\' => {
                let (_, escape) = chars.next()?;
                match escape {
                    'a' => out.push(0x07),
                    'b' => out.push(0x08),
                    'f' => out.push(0x0c),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    'v' => out.push(0x0b),
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    'x' => {
                        let value = read_hex(&mut chars, 2)?;
                        out.push(u8::try_from(value).ok()?);
                    }
                    'u' | 'U' => {
                        let digits = if escape == 'u' { 4 } else { 8 };
                        let rune = char::from_u32(read_hex(&mut chars, digits)?)?;
                        let mut buffer = [0u8; 4];
                        out.extend_from_slice(rune.encode_utf8(&mut buffer).as_bytes());
                    }
                    '0'..='7' => {
                        let mut value = escape.to_digit(8)?;
                        for _ in 0..2 {
                            let (_, digit) = chars.next()?;
                            value = value * 8 + digit.to_digit(8)?;
                        }
                        out.push(u8::try_from(value).ok()?);
                    }
                    _ => return None,
                }
            }
            _ => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    None
}

fn read_hex(chars: &mut std::str::CharIndices<'_>, digits: usize) -> Option<u32> {
    let mut value = 0u32;
    for _ in 0..digits {
        let (_, c) = chars.next()?;
        value = value.checked_mul(16)?.checked_add(c.to_digit(16)?)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go_escapes() {
        let cases = [
            ("-s -w", r#""-s -w""#),
            ("a\"b", r#""a\"b""#),
            ("back\\slash", r#""back\\slash""#),
            ("tab\there", r#""tab\there""#),
            ("line\nbreak", r#""line\nbreak""#),
            ("\x01\x7f", r#""\x01\x7f""#),
            ("bell\x07", r#""bell\a""#),
            ("caf\u{e9}", "\"caf\u{e9}\""),
            ("nbsp\u{a0}", r#""nbsp\u00a0""#),
            ("zero width\u{200b}", r#""zero width\u200b""#),
            ("private\u{f0000}", r#""private\U000f0000""#),
            ("", r#""""#),
        ];
        for (input, expected) in cases {
            assert_eq!(quote(input), expected, "quoting {input:?}");
        }
    }

    #[test]
    fn unquote_inverts_quote() {
        for input in [
            "-ldflags=-s -w",
            "a\"b\\c",
            "\t\n\r\x0b\x0c\x07\x08",
            "caf\u{e9} \u{a0}",
            "\u{1f600}",
        ] {
            assert_eq!(
                unquote(&quote(input)).as_deref(),
                Some(input),
                "round trip of {input:?}"
            );
        }
    }

    #[test]
    fn unquote_handles_go_escape_forms() {
        assert_eq!(
            unquote(r#""\x41\101\u00e9\U0001F600""#).as_deref(),
            Some("AA\u{e9}\u{1f600}")
        );
        assert_eq!(unquote("`raw \\n\r text`").as_deref(), Some("raw \\n text"));
    }

    #[test]
    fn unquote_rejects_malformed_literals() {
        for input in [
            r#""unterminated"#,
            r#""bad \q escape""#,
            "\"new\nline\"",
            r#""\xZZ""#,
            r#""\400""#,
            r#""\uD800""#,
            r#""trailing" text"#,
            r#""\'""#,
            "`open",
            "plain",
            "",
        ] {
            assert_eq!(unquote(input), None, "unquoting {input:?}");
        }
    }

    #[test]
    fn quoted_prefix_stops_after_literal() {
        assert_eq!(quoted_prefix_len(r#""a b"=c"#), Some(5));
        assert_eq!(quoted_prefix_len("`k`=v"), Some(3));
        assert_eq!(quoted_prefix_len(r#""a\"b"=c"#), Some(6));
        assert_eq!(quoted_prefix_len("nope"), None);
    }
}
