//! journald's export format, read as a stream and written back.
//!
//! `journalctl --output=export` writes each entry as a run of fields followed
//! by an empty line. A field whose value is printable UTF-8 without a newline
//! is written as `NAME=value\n`. Any other value (binary data, or text with a
//! newline, such as every multi-line `MESSAGE`) is written as `NAME\n`, then
//! the value's length as a little-endian u64, the value, and `\n`. Field names
//! repeat when an entry has several values for one name. The format is
//! described in systemd's `docs/JOURNAL_EXPORT_FORMATS.md`.
//!
//! [`ExportReader`] reads an entry at a time from any [`BufRead`], so the
//! output of `journalctl` is never held whole in memory. Every length it
//! reads is checked against a named limit before it allocates, and large
//! values are dropped or written to a temporary file as [`FieldPolicy`]
//! says: a `COREDUMP` field holds a whole core and is dropped unless the
//! caller asks for it. A stream cut short yields the entries before the cut,
//! then an error with the byte offset of the cut.

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use super::{Entry, Field, FieldValue, SkipReason, SpilledValue};

/// Maximum length of a field name. journald itself accepts 64 bytes; export
/// streams from other producers get some room.
pub const MAX_FIELD_NAME_BYTES: usize = 256;
/// Most fields one entry may have: journald and systemd-journal-remote
/// reject entries with more than 1024 fields since systemd 241.
pub const MAX_FIELDS_PER_ENTRY: usize = 1024;
/// Maximum length of a value, kept or not: journald's limit for one
/// field (`DATA_SIZE_MAX` in systemd's journal importer, 768 MiB).
pub const MAX_FIELD_VALUE_BYTES: u64 = 768 << 20;
/// Default for [`ExportOptions::max_value_bytes`].
pub const DEFAULT_MAX_VALUE_BYTES: u64 = 64 << 20;
/// Default for [`ExportOptions::max_entry_bytes`].
pub const DEFAULT_MAX_ENTRY_BYTES: u64 = 256 << 20;

/// Field that contains a whole core when systemd-coredump runs with
/// `Storage=journal`.
pub const COREDUMP_FIELD: &str = "COREDUMP";

/// Bytes of an invalid field name quoted in an error.
const QUOTED_NAME_BYTES: usize = 64;
/// Length of the little-endian size that precedes a binary value.
const BINARY_LENGTH_BYTES: usize = 8;

/// Treatment of the values of one field name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldPolicy {
    /// Keep the value in memory, within the size limits.
    Keep,
    /// Read past the value and record only its length.
    Skip,
    /// Write the value to a temporary file.
    Spill,
}

/// Size limits and field policies of an [`ExportReader`].
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Values longer than this are dropped (their length is kept), unless
    /// their policy is [`FieldPolicy::Spill`].
    pub max_value_bytes: u64,
    /// Once the values kept in memory for one entry reach this, further
    /// values of the entry are dropped.
    pub max_entry_bytes: u64,
    /// Policies by field name; names not listed are [`FieldPolicy::Keep`].
    pub policies: Vec<(String, FieldPolicy)>,
    /// Directory for spilled values; the system temporary directory when
    /// `None`.
    pub spill_dir: Option<PathBuf>,
}

impl Default for ExportOptions {
    /// Keeps values up to [`DEFAULT_MAX_VALUE_BYTES`] and skips `COREDUMP`.
    fn default() -> ExportOptions {
        ExportOptions {
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_entry_bytes: DEFAULT_MAX_ENTRY_BYTES,
            policies: vec![(COREDUMP_FIELD.to_string(), FieldPolicy::Skip)],
            spill_dir: None,
        }
    }
}

impl ExportOptions {
    /// Sets the policy for one field name, replacing an earlier one.
    pub fn with_policy(mut self, name: &str, policy: FieldPolicy) -> ExportOptions {
        self.policies.retain(|(known, _)| known != name);
        self.policies.push((name.to_string(), policy));
        self
    }

    /// Returns the policy for a field name.
    pub fn policy(&self, name: &str) -> FieldPolicy {
        self.policies
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, policy)| *policy)
            .unwrap_or(FieldPolicy::Keep)
    }
}

/// A malformed, truncated or unreadable export stream.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("failed to read the export stream at offset {offset:#x}")]
    Read {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("export stream is truncated at offset {offset:#x}: it ends inside {context}")]
    Truncated { offset: u64, context: String },
    #[error(
        "export stream is truncated at offset {offset:#x}: binary field {name} declares \
         {expected:#x} bytes, the stream ends after {found:#x}"
    )]
    TruncatedValue {
        offset: u64,
        name: String,
        expected: u64,
        found: u64,
    },
    #[error(
        "invalid field name {name:?} at offset {offset:#x} (expected letters, digits and '_')"
    )]
    InvalidName { offset: u64, name: String },
    #[error("field name at offset {offset:#x} is longer than the limit of {limit} bytes")]
    NameTooLong { offset: u64, limit: usize },
    #[error("entry at offset {offset:#x} has more than the limit of {limit} fields")]
    TooManyFields { offset: u64, limit: usize },
    #[error(
        "field {name} at offset {offset:#x} is {len:#x} bytes long, more than the limit of \
         {limit:#x}"
    )]
    ValueTooLong {
        offset: u64,
        name: String,
        len: u64,
        limit: u64,
    },
    #[error(
        "binary field {name} at offset {offset:#x} is not followed by a newline: found \
         {found:#04x}"
    )]
    MissingNewline {
        offset: u64,
        name: String,
        found: u8,
    },
    #[error("failed to write field {name} to a temporary file in {dir}")]
    Spill {
        name: String,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ExportError {
    /// Returns the byte offset in the stream where the problem was found.
    pub fn offset(&self) -> Option<u64> {
        match self {
            ExportError::Read { offset, .. }
            | ExportError::Truncated { offset, .. }
            | ExportError::TruncatedValue { offset, .. }
            | ExportError::InvalidName { offset, .. }
            | ExportError::NameTooLong { offset, .. }
            | ExportError::TooManyFields { offset, .. }
            | ExportError::ValueTooLong { offset, .. }
            | ExportError::MissingNewline { offset, .. } => Some(*offset),
            ExportError::Spill { .. } => None,
        }
    }
}

/// Reads entries from an export stream, one at a time.
pub struct ExportReader<R> {
    reader: R,
    options: ExportOptions,
    /// Bytes consumed so far.
    offset: u64,
    /// Set after an error or the end of the stream; nothing more is read.
    done: bool,
}

impl<R: BufRead> ExportReader<R> {
    pub fn new(reader: R, options: ExportOptions) -> ExportReader<R> {
        ExportReader {
            reader,
            options,
            offset: 0,
            done: false,
        }
    }

    /// Returns the number of bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Returns the underlying reader.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// Reads the next entry. Returns `Ok(None)` at the end of the stream;
    /// after an error, every further call returns `Ok(None)`.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, ExportError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_entry();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_entry(&mut self) -> Result<Option<Entry>, ExportError> {
        let mut entry = Entry {
            fields: Vec::new(),
            offset: self.offset,
        };
        let mut kept_bytes: u64 = 0;
        loop {
            let Some(first) = self.peek_byte()? else {
                if entry.fields.is_empty() {
                    return Ok(None);
                }
                return Err(ExportError::Truncated {
                    offset: self.offset,
                    context: format!(
                        "the entry that starts at offset {:#x} (no empty line after its last field)",
                        entry.offset
                    ),
                });
            };
            if first == b'\n' {
                self.consume(1);
                if entry.fields.is_empty() {
                    // Extra empty lines between entries carry nothing.
                    entry.offset = self.offset;
                    continue;
                }
                return Ok(Some(entry));
            }
            if entry.fields.len() >= MAX_FIELDS_PER_ENTRY {
                return Err(ExportError::TooManyFields {
                    offset: entry.offset,
                    limit: MAX_FIELDS_PER_ENTRY,
                });
            }
            let field = self.read_field(&mut kept_bytes)?;
            entry.fields.push(field);
        }
    }

    fn read_field(&mut self, kept_bytes: &mut u64) -> Result<Field, ExportError> {
        let name_offset = self.offset;
        let (name, terminator) = self.read_name()?;
        let policy = self.options.policy(&name);
        let value = if terminator == b'=' {
            self.read_text_value(&name, name_offset, policy, kept_bytes)?
        } else {
            self.read_binary_value(&name, policy, kept_bytes)?
        };
        Ok(Field { name, value })
    }

    /// Reads a field name up to its `=` (text value) or newline (binary
    /// value), and returns it with that terminator.
    fn read_name(&mut self) -> Result<(String, u8), ExportError> {
        let start = self.offset;
        let mut name: Vec<u8> = Vec::new();
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Err(ExportError::Truncated {
                    offset: self.offset,
                    context: format!("the field name that starts at offset {start:#x}"),
                });
            }
            let end = buf.iter().position(|&b| b == b'=' || b == b'\n');
            let take = end.unwrap_or(buf.len());
            if name.len().saturating_add(take) > MAX_FIELD_NAME_BYTES {
                return Err(ExportError::NameTooLong {
                    offset: start,
                    limit: MAX_FIELD_NAME_BYTES,
                });
            }
            name.extend_from_slice(buf.get(..take).unwrap_or_default());
            let terminator = end.and_then(|at| buf.get(at)).copied();
            self.consume(take + usize::from(terminator.is_some()));
            let Some(terminator) = terminator else {
                continue;
            };
            if !is_valid_name(&name) {
                return Err(ExportError::InvalidName {
                    offset: start,
                    name: quote_name(&name),
                });
            }
            // `is_valid_name` admits ASCII only, so this conversion cannot fail.
            let name = String::from_utf8(name).map_err(|error| ExportError::InvalidName {
                offset: start,
                name: quote_name(error.as_bytes()),
            })?;
            return Ok((name, terminator));
        }
    }

    /// Reads a text value up to its newline.
    fn read_text_value(
        &mut self,
        name: &str,
        field_offset: u64,
        policy: FieldPolicy,
        kept_bytes: &mut u64,
    ) -> Result<FieldValue, ExportError> {
        let mut sink = ValueSink::new(name, policy, None, &self.options, *kept_bytes)?;
        let mut len: u64 = 0;
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Err(ExportError::Truncated {
                    offset: self.offset,
                    context: format!(
                        "the value of text field {name} that starts at offset {field_offset:#x}"
                    ),
                });
            }
            let newline = buf.iter().position(|&byte| byte == b'\n');
            let take = newline.unwrap_or(buf.len());
            let chunk = buf.get(..take).unwrap_or_default();
            len = len.saturating_add(take as u64);
            if len > MAX_FIELD_VALUE_BYTES {
                return Err(ExportError::ValueTooLong {
                    offset: field_offset,
                    name: name.to_string(),
                    len,
                    limit: MAX_FIELD_VALUE_BYTES,
                });
            }
            sink.write(chunk)?;
            let consumed = take + usize::from(newline.is_some());
            self.consume(consumed);
            if newline.is_some() {
                return Ok(sink.finish(kept_bytes));
            }
        }
    }

    /// Reads the length, the bytes and the closing newline of a binary value.
    fn read_binary_value(
        &mut self,
        name: &str,
        policy: FieldPolicy,
        kept_bytes: &mut u64,
    ) -> Result<FieldValue, ExportError> {
        let length_offset = self.offset;
        let mut length = [0u8; BINARY_LENGTH_BYTES];
        let got = self.read_up_to(&mut length)?;
        if got < BINARY_LENGTH_BYTES {
            return Err(ExportError::Truncated {
                offset: self.offset,
                context: format!("the length of binary field {name} at offset {length_offset:#x}"),
            });
        }
        let len = u64::from_le_bytes(length);
        if len > MAX_FIELD_VALUE_BYTES {
            return Err(ExportError::ValueTooLong {
                offset: length_offset,
                name: name.to_string(),
                len,
                limit: MAX_FIELD_VALUE_BYTES,
            });
        }
        let mut sink = ValueSink::new(name, policy, Some(len), &self.options, *kept_bytes)?;
        let mut remaining = len;
        while remaining > 0 {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Err(ExportError::TruncatedValue {
                    offset: self.offset,
                    name: name.to_string(),
                    expected: len,
                    found: len - remaining,
                });
            }
            let take = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            sink.write(buf.get(..take).unwrap_or_default())?;
            self.consume(take);
            remaining -= take as u64;
        }
        match self.peek_byte()? {
            Some(b'\n') => self.consume(1),
            Some(found) => {
                return Err(ExportError::MissingNewline {
                    offset: self.offset,
                    name: name.to_string(),
                    found,
                })
            }
            None => {
                return Err(ExportError::Truncated {
                    offset: self.offset,
                    context: format!("binary field {name}: the newline after its value is missing"),
                })
            }
        }
        Ok(sink.finish(kept_bytes))
    }

    fn fill(&mut self) -> Result<&[u8], ExportError> {
        loop {
            match self.reader.fill_buf() {
                // Returning the borrow from inside the loop needs it
                // re-taken after the match, so the match only checks.
                Ok(_) => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ExportError::Read {
                        offset: self.offset,
                        source,
                    })
                }
            }
        }
        self.reader.fill_buf().map_err(|source| ExportError::Read {
            offset: self.offset,
            source,
        })
    }

    fn peek_byte(&mut self) -> Result<Option<u8>, ExportError> {
        Ok(self.fill()?.first().copied())
    }

    fn consume(&mut self, amount: usize) {
        self.reader.consume(amount);
        self.offset = self.offset.saturating_add(amount as u64);
    }

    /// Reads up to `out.len()` bytes, fewer only at the end of the stream.
    fn read_up_to(&mut self, out: &mut [u8]) -> Result<usize, ExportError> {
        let mut got = 0;
        while got < out.len() {
            let buf = self.fill()?;
            if buf.is_empty() {
                break;
            }
            let take = buf.len().min(out.len() - got);
            if let (Some(dst), Some(src)) = (out.get_mut(got..got + take), buf.get(..take)) {
                dst.copy_from_slice(src);
            }
            self.consume(take);
            got += take;
        }
        Ok(got)
    }
}

impl<R: BufRead> Iterator for ExportReader<R> {
    type Item = Result<Entry, ExportError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// Destination of one value's bytes while it is read.
enum ValueSink<'a> {
    Keep {
        bytes: Vec<u8>,
        limit: u64,
        reason: SkipReason,
    },
    Skip {
        len: u64,
        reason: SkipReason,
    },
    Spill {
        file: tempfile::NamedTempFile,
        writer: io::BufWriter<std::fs::File>,
        len: u64,
        name: &'a str,
        dir: PathBuf,
    },
}

impl<'a> ValueSink<'a> {
    /// Chooses where a value goes. `known_len` is the declared length of a
    /// binary value; text values are measured as they are read.
    fn new(
        name: &'a str,
        policy: FieldPolicy,
        known_len: Option<u64>,
        options: &ExportOptions,
        kept_bytes: u64,
    ) -> Result<ValueSink<'a>, ExportError> {
        match policy {
            FieldPolicy::Skip => Ok(ValueSink::Skip {
                len: 0,
                reason: SkipReason::Policy,
            }),
            FieldPolicy::Spill => {
                let dir = options.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
                let spill_error = |source| ExportError::Spill {
                    name: name.to_string(),
                    dir: dir.clone(),
                    source,
                };
                let file = tempfile::Builder::new()
                    .prefix("gocrash-field-")
                    .tempfile_in(&dir)
                    .map_err(spill_error)?;
                let writer = file.reopen().map_err(spill_error)?;
                Ok(ValueSink::Spill {
                    writer: io::BufWriter::new(writer),
                    file,
                    len: 0,
                    name,
                    dir,
                })
            }
            FieldPolicy::Keep => {
                let entry_room = options.max_entry_bytes.saturating_sub(kept_bytes);
                let (limit, reason) = if options.max_value_bytes <= entry_room {
                    (options.max_value_bytes, SkipReason::TooLarge)
                } else {
                    (entry_room, SkipReason::EntryFull)
                };
                match known_len {
                    Some(len) if len > limit => Ok(ValueSink::Skip { len: 0, reason }),
                    Some(len) => Ok(ValueSink::Keep {
                        // `len` is at most `limit`, which the caller bounds.
                        bytes: Vec::with_capacity(usize::try_from(len).unwrap_or(0)),
                        limit,
                        reason,
                    }),
                    None => Ok(ValueSink::Keep {
                        bytes: Vec::new(),
                        limit,
                        reason,
                    }),
                }
            }
        }
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), ExportError> {
        match self {
            ValueSink::Keep {
                bytes,
                limit,
                reason,
            } => {
                let total = bytes.len() as u64 + chunk.len() as u64;
                if total > *limit {
                    *self = ValueSink::Skip {
                        len: total,
                        reason: *reason,
                    };
                } else {
                    bytes.extend_from_slice(chunk);
                }
            }
            ValueSink::Skip { len, .. } => *len = len.saturating_add(chunk.len() as u64),
            ValueSink::Spill {
                writer,
                len,
                name,
                dir,
                ..
            } => {
                writer
                    .write_all(chunk)
                    .map_err(|source| ExportError::Spill {
                        name: name.to_string(),
                        dir: dir.clone(),
                        source,
                    })?;
                *len = len.saturating_add(chunk.len() as u64);
            }
        }
        Ok(())
    }

    fn finish(self, kept_bytes: &mut u64) -> FieldValue {
        match self {
            ValueSink::Keep { bytes, .. } => {
                *kept_bytes = kept_bytes.saturating_add(bytes.len() as u64);
                FieldValue::Data(bytes)
            }
            ValueSink::Skip { len, reason } => FieldValue::Skipped { len, reason },
            ValueSink::Spill {
                file,
                mut writer,
                len,
                name,
                ..
            } => match writer.flush() {
                Ok(()) => FieldValue::Spilled(Arc::new(SpilledValue { file, len })),
                Err(error) => {
                    tracing::warn!(target: "gocrash::journal", field = name, %error, "failed to write a field to its temporary file; dropping it");
                    FieldValue::Skipped {
                        len,
                        reason: SkipReason::TooLarge,
                    }
                }
            },
        }
    }
}

/// Reports whether a name is acceptable: letters, digits and underscores,
/// not starting with a digit. journald allows only upper-case letters; lower
/// case is accepted here because other producers write it.
fn is_valid_name(name: &[u8]) -> bool {
    match name.first() {
        None => false,
        Some(first) if first.is_ascii_digit() => false,
        Some(_) => name
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'_'),
    }
}

fn quote_name(name: &[u8]) -> String {
    let cut = name
        .get(..QUOTED_NAME_BYTES.min(name.len()))
        .unwrap_or_default();
    String::from_utf8_lossy(cut).into_owned()
}

/// Reports whether journalctl writes this value in the text form: valid
/// UTF-8 without a newline or other control characters (a tab is allowed),
/// as systemd's `utf8_is_printable` decides.
pub fn is_text_value(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    text.chars().all(|c| {
        let control = (c < ' ' && c != '\t') || ('\u{7f}'..='\u{9f}').contains(&c);
        !control
    })
}

/// Writes entries in the export format, choosing each field's form the way
/// journalctl does.
pub struct ExportWriter<W> {
    inner: W,
}

impl<W: Write> ExportWriter<W> {
    pub fn new(inner: W) -> ExportWriter<W> {
        ExportWriter { inner }
    }

    /// Writes one field: `NAME=value` for printable text, the binary form
    /// otherwise.
    pub fn field(&mut self, name: &str, value: &[u8]) -> io::Result<&mut Self> {
        if is_text_value(value) {
            self.text_field(name, value)
        } else {
            self.binary_field(name, value)
        }
    }

    /// Writes one field in the text form, whatever its value.
    pub fn text_field(&mut self, name: &str, value: &[u8]) -> io::Result<&mut Self> {
        self.inner.write_all(name.as_bytes())?;
        self.inner.write_all(b"=")?;
        self.inner.write_all(value)?;
        self.inner.write_all(b"\n")?;
        Ok(self)
    }

    /// Writes one field in the binary form, whatever its value.
    pub fn binary_field(&mut self, name: &str, value: &[u8]) -> io::Result<&mut Self> {
        self.inner.write_all(name.as_bytes())?;
        self.inner.write_all(b"\n")?;
        self.inner.write_all(&(value.len() as u64).to_le_bytes())?;
        self.inner.write_all(value)?;
        self.inner.write_all(b"\n")?;
        Ok(self)
    }

    /// Ends the current entry with an empty line.
    pub fn end_entry(&mut self) -> io::Result<&mut Self> {
        self.inner.write_all(b"\n")?;
        Ok(self)
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Writes a whole entry given as name and value pairs.
pub fn write_entry<W: Write>(out: &mut W, fields: &[(&str, &[u8])]) -> io::Result<()> {
    let mut writer = ExportWriter::new(out);
    for (name, value) in fields {
        writer.field(name, value)?;
    }
    writer.end_entry()?;
    Ok(())
}

#[cfg(test)]
mod tests;
