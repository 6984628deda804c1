use std::io::Cursor;

use super::*;

/// Builds export bytes entry by entry, the way journalctl writes them.
struct StreamBuilder {
    writer: ExportWriter<Vec<u8>>,
}

impl StreamBuilder {
    fn new() -> StreamBuilder {
        StreamBuilder {
            writer: ExportWriter::new(Vec::new()),
        }
    }

    fn text(mut self, name: &str, value: &str) -> StreamBuilder {
        self.writer.text_field(name, value.as_bytes()).unwrap();
        self
    }

    fn binary(mut self, name: &str, value: &[u8]) -> StreamBuilder {
        self.writer.binary_field(name, value).unwrap();
        self
    }

    fn end(mut self) -> StreamBuilder {
        self.writer.end_entry().unwrap();
        self
    }

    fn bytes(self) -> Vec<u8> {
        self.writer.into_inner()
    }
}

fn read_all(bytes: &[u8], options: ExportOptions) -> (Vec<Entry>, Option<ExportError>) {
    let mut reader = ExportReader::new(Cursor::new(bytes), options);
    let mut entries = Vec::new();
    loop {
        match reader.next_entry() {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => return (entries, None),
            Err(error) => return (entries, Some(error)),
        }
    }
}

fn two_entries() -> Vec<u8> {
    StreamBuilder::new()
        .text("__CURSOR", "s=1;i=1")
        .text("__REALTIME_TIMESTAMP", "1796418265497360")
        .text("MESSAGE", "goroutine 1 [running]:")
        .end()
        .text("__CURSOR", "s=1;i=2")
        .binary("MESSAGE", b"Process 1 dumped core.\n\nStack trace")
        .binary("COREDUMP_PROC_AUXV", &[0, 1, 2, 0xff, b'\n', 0])
        .end()
        .bytes()
}

#[test]
fn reads_text_and_binary_fields() {
    let (entries, error) = read_all(&two_entries(), ExportOptions::default());
    assert!(error.is_none(), "{error:?}");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].cursor(), Some("s=1;i=1"));
    assert_eq!(entries[0].realtime_usec(), Some(1796418265497360));
    assert_eq!(entries[0].text("MESSAGE"), Some("goroutine 1 [running]:"));
    assert_eq!(entries[0].offset, 0);
    assert_eq!(
        entries[1].text("MESSAGE"),
        Some("Process 1 dumped core.\n\nStack trace")
    );
    assert_eq!(
        entries[1].bytes("COREDUMP_PROC_AUXV"),
        Some(&[0, 1, 2, 0xff, b'\n', 0][..])
    );
}

#[test]
fn second_entry_offset_is_after_blank_line() {
    let bytes = two_entries();
    let (entries, _) = read_all(&bytes, ExportOptions::default());
    let start = entries[1].offset as usize;
    assert!(bytes[..start].ends_with(b"\n\n"));
    assert!(bytes[start..].starts_with(b"__CURSOR=s=1;i=2\n"));
}

#[test]
fn repeated_fields_are_kept_in_order() {
    let bytes = StreamBuilder::new()
        .text("TAG", "one")
        .text("MESSAGE", "x")
        .text("TAG", "two")
        .binary("TAG", b"three\n")
        .end()
        .bytes();
    let (entries, error) = read_all(&bytes, ExportOptions::default());
    assert!(error.is_none());
    let tags: Vec<&[u8]> = entries[0]
        .values("TAG")
        .filter_map(FieldValue::data)
        .collect();
    assert_eq!(tags, vec![&b"one"[..], b"two", b"three\n"]);
}

#[test]
fn empty_values_and_extra_blank_lines() {
    let mut bytes = b"\n\n".to_vec();
    bytes.extend(
        StreamBuilder::new()
            .text("EMPTY", "")
            .binary("EMPTY_BINARY", b"")
            .end()
            .bytes(),
    );
    bytes.extend_from_slice(b"\n\n");
    let (entries, error) = read_all(&bytes, ExportOptions::default());
    assert!(error.is_none(), "{error:?}");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].offset, 2);
    assert_eq!(entries[0].bytes("EMPTY"), Some(&b""[..]));
    assert_eq!(entries[0].bytes("EMPTY_BINARY"), Some(&b""[..]));
}

#[test]
fn text_value_may_contain_equals_sign() {
    let bytes = StreamBuilder::new()
        .text("COREDUMP_CMDLINE", "/bin/app --flag=value")
        .end()
        .bytes();
    let (entries, _) = read_all(&bytes, ExportOptions::default());
    assert_eq!(
        entries[0].text("COREDUMP_CMDLINE"),
        Some("/bin/app --flag=value")
    );
}

#[test]
fn truncation_keeps_complete_entries() {
    let bytes = two_entries();
    let second = {
        let (entries, _) = read_all(&bytes, ExportOptions::default());
        entries[1].offset as usize
    };
    // Every cut inside the second entry gives the first entry and an error
    // at the cut, except a cut right at the second entry's start.
    for cut in second + 1..bytes.len() {
        let (entries, error) = read_all(&bytes[..cut], ExportOptions::default());
        assert_eq!(entries.len(), 1, "cut at {cut}");
        let error = error.unwrap_or_else(|| panic!("cut at {cut} gave no error"));
        assert_eq!(error.offset(), Some(cut as u64), "cut at {cut}: {error}");
    }
    let (entries, error) = read_all(&bytes[..second], ExportOptions::default());
    assert_eq!(entries.len(), 1);
    assert!(error.is_none());
}

#[test]
fn truncated_binary_value_reports_lengths() {
    let bytes = StreamBuilder::new()
        .binary("MESSAGE", &[b'a'; 100])
        .end()
        .bytes();
    // Name (8) + newline, length (8), then 40 of the 100 bytes.
    let cut = 8 + 8 + 40;
    let (entries, error) = read_all(&bytes[..cut], ExportOptions::default());
    assert!(entries.is_empty());
    match error {
        Some(ExportError::TruncatedValue {
            offset,
            name,
            expected,
            found,
        }) => {
            assert_eq!(offset, cut as u64);
            assert_eq!(name, "MESSAGE");
            assert_eq!(expected, 100);
            assert_eq!(found, 40);
        }
        other => panic!("expected TruncatedValue, got {other:?}"),
    }
}

#[test]
fn missing_newline_after_binary_value() {
    let mut bytes = b"DATA\n".to_vec();
    bytes.extend_from_slice(&3u64.to_le_bytes());
    bytes.extend_from_slice(b"abcX\n\n");
    let (_, error) = read_all(&bytes, ExportOptions::default());
    match error {
        Some(ExportError::MissingNewline { offset, found, .. }) => {
            assert_eq!(offset, 16);
            assert_eq!(found, b'X');
        }
        other => panic!("expected MissingNewline, got {other:?}"),
    }
}

#[test]
fn declared_length_over_limit_is_rejected() {
    let mut bytes = b"COREDUMP\n".to_vec();
    bytes.extend_from_slice(&(MAX_FIELD_VALUE_BYTES + 1).to_le_bytes());
    let (_, error) = read_all(&bytes, ExportOptions::default());
    match error {
        Some(ExportError::ValueTooLong {
            offset, len, limit, ..
        }) => {
            assert_eq!(offset, 9);
            assert_eq!(len, MAX_FIELD_VALUE_BYTES + 1);
            assert_eq!(limit, MAX_FIELD_VALUE_BYTES);
        }
        other => panic!("expected ValueTooLong, got {other:?}"),
    }
}

#[test]
fn invalid_and_long_names_are_rejected() {
    let (_, error) = read_all(b"BAD NAME=x\n\n", ExportOptions::default());
    assert!(
        matches!(&error, Some(ExportError::InvalidName { offset: 0, name }) if name == "BAD NAME"),
        "{error:?}"
    );
    let (_, error) = read_all(b"1ABC=x\n\n", ExportOptions::default());
    assert!(matches!(error, Some(ExportError::InvalidName { .. })));
    let (_, error) = read_all(b"=x\n\n", ExportOptions::default());
    assert!(matches!(error, Some(ExportError::InvalidName { .. })));

    let long = format!("{}=x\n\n", "A".repeat(MAX_FIELD_NAME_BYTES + 1));
    let (_, error) = read_all(long.as_bytes(), ExportOptions::default());
    assert!(matches!(
        error,
        Some(ExportError::NameTooLong {
            offset: 0,
            limit: MAX_FIELD_NAME_BYTES
        })
    ));
}

#[test]
fn too_many_fields_are_rejected() {
    let mut builder = StreamBuilder::new().text("FIRST", "entry").end();
    for index in 0..=MAX_FIELDS_PER_ENTRY {
        builder = builder.text("F", &index.to_string());
    }
    let bytes = builder.end().bytes();
    let (entries, error) = read_all(&bytes, ExportOptions::default());
    assert_eq!(entries.len(), 1);
    assert!(matches!(
        error,
        Some(ExportError::TooManyFields {
            // "FIRST=entry\n" and the empty line.
            offset: 13,
            limit: MAX_FIELDS_PER_ENTRY
        })
    ));
}

#[test]
fn coredump_field_is_skipped_by_default() {
    let core = vec![0x7f; 5000];
    let bytes = StreamBuilder::new()
        .text("MESSAGE_ID", "fc2e22bc6ee647b6b90729ab34a250b1")
        .binary("COREDUMP", &core)
        .text("COREDUMP_PID", "42")
        .end()
        .bytes();
    let (entries, error) = read_all(&bytes, ExportOptions::default());
    assert!(error.is_none());
    match entries[0].field("COREDUMP") {
        Some(FieldValue::Skipped { len, reason }) => {
            assert_eq!(*len, 5000);
            assert_eq!(*reason, SkipReason::Policy);
        }
        other => panic!("expected a skipped value, got {other:?}"),
    }
    assert_eq!(entries[0].number("COREDUMP_PID"), Some(42));
}

#[test]
fn spilled_field_lands_in_a_file() {
    let core: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let bytes = StreamBuilder::new().binary("COREDUMP", &core).end().bytes();
    let dir = tempfile::tempdir().unwrap();
    let options = ExportOptions {
        spill_dir: Some(dir.path().to_path_buf()),
        ..ExportOptions::default()
    }
    .with_policy(COREDUMP_FIELD, FieldPolicy::Spill);
    let (entries, error) = read_all(&bytes, options);
    assert!(error.is_none());
    let Some(FieldValue::Spilled(spilled)) = entries[0].field("COREDUMP") else {
        panic!("COREDUMP was not spilled");
    };
    assert_eq!(spilled.len(), core.len() as u64);
    assert!(spilled.path().starts_with(dir.path()));
    assert_eq!(std::fs::read(spilled.path()).unwrap(), core);
    let path = spilled.path().to_path_buf();
    drop(entries);
    assert!(!path.exists(), "the temporary file outlived its value");
}

#[test]
fn values_over_the_limit_keep_their_length() {
    let bytes = StreamBuilder::new()
        .text("SMALL", "abc")
        .text("BIG_TEXT", &"x".repeat(100))
        .binary("BIG_BINARY", &[1u8; 100])
        .end()
        .bytes();
    let options = ExportOptions {
        max_value_bytes: 50,
        ..ExportOptions::default()
    };
    let (entries, error) = read_all(&bytes, options);
    assert!(error.is_none());
    assert_eq!(entries[0].text("SMALL"), Some("abc"));
    for name in ["BIG_TEXT", "BIG_BINARY"] {
        match entries[0].field(name) {
            Some(FieldValue::Skipped { len, reason }) => {
                assert_eq!(*len, 100, "{name}");
                assert_eq!(*reason, SkipReason::TooLarge, "{name}");
            }
            other => panic!("{name}: expected skipped, got {other:?}"),
        }
    }
}

#[test]
fn entry_budget_drops_later_values() {
    let bytes = StreamBuilder::new()
        .text("A", &"a".repeat(60))
        .text("B", &"b".repeat(60))
        .text("C", "c")
        .end()
        .bytes();
    let options = ExportOptions {
        max_entry_bytes: 100,
        ..ExportOptions::default()
    };
    let (entries, _) = read_all(&bytes, options);
    assert_eq!(entries[0].bytes("A").map(<[u8]>::len), Some(60));
    assert!(matches!(
        entries[0].field("B"),
        Some(FieldValue::Skipped {
            len: 60,
            reason: SkipReason::EntryFull
        })
    ));
    assert_eq!(entries[0].text("C"), Some("c"));
}

#[test]
fn reads_through_a_tiny_buffer() {
    let bytes = two_entries();
    let reader = std::io::BufReader::with_capacity(3, Cursor::new(bytes.clone()));
    let entries: Vec<Entry> = ExportReader::new(reader, ExportOptions::default())
        .collect::<Result<_, _>>()
        .unwrap();
    let (expected, _) = read_all(&bytes, ExportOptions::default());
    assert_eq!(entries.len(), expected.len());
    for (got, want) in entries.iter().zip(&expected) {
        assert_eq!(got.fields.len(), want.fields.len());
        assert_eq!(got.offset, want.offset);
        for (a, b) in got.fields.iter().zip(&want.fields) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.value.data(), b.value.data());
        }
    }
}

#[test]
fn reader_stops_after_an_error() {
    let mut bytes = b"BAD NAME=1\n\n".to_vec();
    bytes.extend(StreamBuilder::new().text("OK", "1").end().bytes());
    let mut reader = ExportReader::new(Cursor::new(bytes), ExportOptions::default());
    assert!(reader.next_entry().is_err());
    assert!(reader.next_entry().unwrap().is_none());
}

#[test]
fn text_form_follows_journalctl() {
    assert!(is_text_value(b"panic: boom"));
    assert!(is_text_value("\tmain.go:12 +0x1d µs".as_bytes()));
    assert!(is_text_value(b""));
    assert!(!is_text_value(b"two\nlines"));
    assert!(!is_text_value(b"bell\x07"));
    assert!(!is_text_value(b"\xff\xfe"));
    assert!(!is_text_value("c1 control \u{85}".as_bytes()));
}

#[test]
fn writer_round_trips_any_value() {
    let values: Vec<Vec<u8>> = vec![
        b"plain".to_vec(),
        b"with\nnewline".to_vec(),
        vec![0, 0xff, b'\n', b'\n'],
        Vec::new(),
    ];
    let mut bytes = Vec::new();
    for value in &values {
        write_entry(&mut bytes, &[("VALUE", value)]).unwrap();
    }
    let (entries, error) = read_all(&bytes, ExportOptions::default());
    assert!(error.is_none());
    let read: Vec<&[u8]> = entries.iter().filter_map(|e| e.bytes("VALUE")).collect();
    let expected: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    assert_eq!(read, expected);
}
