//! Reads journald's entries: the export format, and `journalctl` as the
//! program that produces it.
//!
//! An [`Entry`] is what one `journalctl --output=export` record holds: every
//! field in the order it came, repeats included, values as bytes because
//! journal fields are binary-safe. [`export`] parses that format as a stream;
//! [`journalctl`] runs `journalctl` with the right options and feeds its
//! output to the parser. What the fields mean (coredump records, a service's
//! output lines) is left to [`crate::coredump`] and [`crate::crashtext`].
//!
//! The crate reads journals through `journalctl` by default, which applies
//! matches with the journal's indexes and interleaves files. [`file`] reads
//! one journal file directly, in sequence order, and [`direct`] runs the
//! same queries on such files, for hosts and tools without journalctl
//! ([`JournalReader::Direct`]).

pub mod direct;
pub mod export;
pub mod file;
pub mod journalctl;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use export::{ExportError, ExportOptions, ExportReader, FieldPolicy};
pub use journalctl::{at_usec, EntryStream, Journal, JournalError, JournalReader, Query};

/// One journal entry.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// Fields in stream order. A field name can repeat.
    pub fields: Vec<Field>,
    /// Byte offset of the entry's first field in the export stream.
    pub offset: u64,
}

/// One `NAME=value` pair of an entry.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub value: FieldValue,
}

/// A field's value, or what happened to it when it was too large to keep.
#[derive(Clone, Debug)]
pub enum FieldValue {
    /// The value's bytes.
    Data(Vec<u8>),
    /// The value was read past and dropped.
    Skipped { len: u64, reason: SkipReason },
    /// The value was written to a temporary file, which is removed when the
    /// last clone of this value drops.
    Spilled(Arc<SpilledValue>),
}

/// Reason a value was not kept in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// [`FieldPolicy::Skip`] named the field (by default `COREDUMP`, which
    /// holds a whole core).
    Policy,
    /// The value was longer than [`ExportOptions::max_value_bytes`].
    TooLarge,
    /// The entry's kept values already reached
    /// [`ExportOptions::max_entry_bytes`].
    EntryFull,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::Policy => "not requested",
            SkipReason::TooLarge => "larger than the per-field limit",
            SkipReason::EntryFull => "the entry reached its size limit",
        })
    }
}

/// A field value stored in a temporary file.
#[derive(Debug)]
pub struct SpilledValue {
    file: tempfile::NamedTempFile,
    len: u64,
}

impl SpilledValue {
    /// Returns the temporary file's path. The file exists as long as this
    /// value does.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl FieldValue {
    /// Returns the bytes of a value kept in memory.
    pub fn data(&self) -> Option<&[u8]> {
        match self {
            FieldValue::Data(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Returns the value's length in bytes, kept or not.
    pub fn len(&self) -> u64 {
        match self {
            FieldValue::Data(bytes) => bytes.len() as u64,
            FieldValue::Skipped { len, .. } => *len,
            FieldValue::Spilled(spilled) => spilled.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Entry {
    /// Returns the first field with this name.
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        self.fields
            .iter()
            .find(|field| field.name == name)
            .map(|field| &field.value)
    }

    /// Returns every value of a repeated field, in stream order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a FieldValue> + 'a {
        self.fields
            .iter()
            .filter(move |field| field.name == name)
            .map(|field| &field.value)
    }

    /// Returns the bytes of the first field with this name, when kept.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.field(name).and_then(FieldValue::data)
    }

    /// Returns the first field with this name as text, when it was kept and
    /// is valid UTF-8.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.bytes(name)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    /// Returns the first field with this name as an unsigned decimal number.
    pub fn number(&self, name: &str) -> Option<u64> {
        self.text(name).and_then(|text| text.parse().ok())
    }

    /// Returns `__CURSOR`, the position journalctl can resume from.
    pub fn cursor(&self) -> Option<&str> {
        self.text("__CURSOR")
    }

    /// Returns `__REALTIME_TIMESTAMP`: when journald received the entry, in
    /// microseconds since the Unix epoch.
    pub fn realtime_usec(&self) -> Option<u64> {
        self.number("__REALTIME_TIMESTAMP")
    }

    /// Returns `_BOOT_ID`, the boot the entry was written in.
    pub fn boot_id(&self) -> Option<&str> {
        self.text("_BOOT_ID")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &[u8])]) -> Entry {
        Entry {
            fields: fields
                .iter()
                .map(|(name, value)| Field {
                    name: name.to_string(),
                    value: FieldValue::Data(value.to_vec()),
                })
                .collect(),
            offset: 0,
        }
    }

    #[test]
    fn accessors_read_first_value() {
        let entry = entry(&[
            ("MESSAGE", b"first"),
            ("MESSAGE", b"second"),
            ("_PID", b"42"),
            ("BAD", b"\xff\xfe"),
        ]);
        assert_eq!(entry.text("MESSAGE"), Some("first"));
        assert_eq!(entry.values("MESSAGE").count(), 2);
        assert_eq!(entry.number("_PID"), Some(42));
        assert_eq!(entry.text("BAD"), None);
        assert_eq!(entry.bytes("BAD"), Some(&b"\xff\xfe"[..]));
        assert_eq!(entry.number("MESSAGE"), None);
        assert!(entry.field("MISSING").is_none());
    }

    #[test]
    fn skipped_value_keeps_length() {
        let value = FieldValue::Skipped {
            len: 1 << 30,
            reason: SkipReason::Policy,
        };
        assert_eq!(value.len(), 1 << 30);
        assert!(value.data().is_none());
    }
}
