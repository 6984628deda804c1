//! Reads journal files directly, without journalctl.
//!
//! A journal file (`*.journal`, systemd's `docs/JOURNAL_FILE_FORMAT.md`) is a
//! header followed by 8-byte aligned objects: DATA objects hold one
//! `NAME=value` payload each (deduplicated within the file, optionally
//! compressed with xz, lz4 or zstd), ENTRY objects list the DATA objects of
//! one entry, and a chain of ENTRY_ARRAY objects lists every entry in
//! sequence order. [`JournalFile`] memory-maps one file and yields its
//! entries in that order as [`Entry`] values laid out the way
//! `journalctl --output=export` prints them: `__CURSOR`,
//! `__REALTIME_TIMESTAMP`, `__MONOTONIC_TIMESTAMP`, `_BOOT_ID`, then the
//! entry's fields.
//!
//! Both the regular and the compact layout (systemd 252 and later) are read.
//! Hash tables, field objects and tags are not needed to walk the entries and
//! are not read, so matches, seeks and the interleaving of several files are
//! left to journalctl, which the rest of the crate uses. Every offset, size
//! and count read from the file is checked against the file before use, and
//! the entry array chain must move forward, so a damaged or half-written
//! file ends the walk with an error naming the offset.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::export::{ExportOptions, FieldPolicy, MAX_FIELD_VALUE_BYTES};
use super::{Entry, Field, FieldValue, SkipReason, SpilledValue};

/// File signature at offset 0.
pub const SIGNATURE: &[u8; 8] = b"LPKSHHRH";
/// Size of the header of the first file format; later formats only grow it.
pub const MIN_HEADER_SIZE: u64 = 208;
/// Bytes [`JournalFile::read_header`] reads from the start of a file.
const HEADER_READ_BYTES: u64 = 4096;
/// Most items (fields) read from one entry.
pub const MAX_ENTRY_ITEMS: u64 = 4096;

/// Incompatible flags this reader understands.
const INCOMPATIBLE_COMPRESSED_XZ: u32 = 1;
const INCOMPATIBLE_COMPRESSED_LZ4: u32 = 2;
const INCOMPATIBLE_KEYED_HASH: u32 = 4;
const INCOMPATIBLE_COMPRESSED_ZSTD: u32 = 8;
const INCOMPATIBLE_COMPACT: u32 = 16;
const KNOWN_INCOMPATIBLE: u32 = INCOMPATIBLE_COMPRESSED_XZ
    | INCOMPATIBLE_COMPRESSED_LZ4
    | INCOMPATIBLE_KEYED_HASH
    | INCOMPATIBLE_COMPRESSED_ZSTD
    | INCOMPATIBLE_COMPACT;

/// Object types.
const OBJECT_DATA: u8 = 1;
const OBJECT_ENTRY: u8 = 3;
const OBJECT_ENTRY_ARRAY: u8 = 6;

/// Compression flags of a DATA object.
const OBJECT_COMPRESSED_XZ: u8 = 1;
const OBJECT_COMPRESSED_LZ4: u8 = 2;
const OBJECT_COMPRESSED_ZSTD: u8 = 4;

/// Sizes of the fixed parts of objects.
const OBJECT_HEADER_SIZE: u64 = 16;
/// Offset in a DATA object of the number of entries that link to it.
const DATA_N_ENTRIES_OFFSET: u64 = 56;
const DATA_PAYLOAD_OFFSET: u64 = 64;
const DATA_PAYLOAD_OFFSET_COMPACT: u64 = 72;
const ENTRY_ITEMS_OFFSET: u64 = 64;
const ENTRY_ARRAY_ITEMS_OFFSET: u64 = 24;
/// Size of one bucket of a hash table: the offsets of its chain's head
/// and tail.
const HASH_ITEM_SIZE: u64 = 16;
/// Objects walked at most in one hash chain.
const MAX_HASH_CHAIN: u64 = 1 << 20;
/// Bytes of the decompressed size that precede an lz4 block.
const LZ4_SIZE_PREFIX: usize = 8;

/// The header fields the reader uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub compatible_flags: u32,
    pub incompatible_flags: u32,
    /// 0 offline, 1 online (being written), 2 archived.
    pub state: u8,
    pub file_id: [u8; 16],
    pub machine_id: [u8; 16],
    pub seqnum_id: [u8; 16],
    pub header_size: u64,
    pub arena_size: u64,
    pub n_entries: u64,
    /// Sequence number of the file's first entry, 0 in a file with none.
    pub head_entry_seqnum: u64,
    pub entry_array_offset: u64,
    /// The offset of the hash table of DATA objects, and its size in bytes.
    pub data_hash_table_offset: u64,
    pub data_hash_table_size: u64,
}

impl Header {
    /// Reports whether entries and entry arrays use 32-bit offsets.
    pub fn is_compact(&self) -> bool {
        self.incompatible_flags & INCOMPATIBLE_COMPACT != 0
    }
}

/// A journal file that cannot be read, with the place of the damage.
#[derive(Debug, thiserror::Error)]
pub enum JournalFileError {
    #[error("failed to open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a journal file: {reason}")]
    NotJournal { path: PathBuf, reason: String },
    #[error(
        "{path} uses incompatible features {unknown:#x} this reader does not know \
         (flags {flags:#x})"
    )]
    UnknownFeatures {
        path: PathBuf,
        flags: u32,
        unknown: u32,
    },
    #[error("{path}: invalid {structure} at offset {offset:#x}: {reason}")]
    Invalid {
        path: PathBuf,
        structure: &'static str,
        offset: u64,
        reason: String,
    },
    #[error("failed to write field {name} to a temporary file in {dir}")]
    Spill {
        name: String,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: failed to decompress the DATA object at offset {offset:#x}")]
    Decompress {
        path: PathBuf,
        offset: u64,
        #[source]
        source: io::Error,
    },
}

/// The place of an entry in the journal's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryPosition {
    /// The entry's number in the sequence of its `seqnum_id`.
    pub seqnum: u64,
    /// When journald received the entry, in microseconds since the epoch.
    pub realtime_usec: u64,
}

/// One memory-mapped journal file.
pub struct JournalFile {
    path: PathBuf,
    map: Mmap,
    header: Header,
}

impl std::fmt::Debug for JournalFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalFile")
            .field("path", &self.path)
            .field("len", &self.map.len())
            .field("header", &self.header)
            .finish()
    }
}

impl JournalFile {
    /// Opens and maps a journal file, and checks its header.
    pub fn open(path: &Path) -> Result<JournalFile, JournalFileError> {
        let open_error = |source| JournalFileError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = open_regular(path)?;
        // SAFETY: the map is read-only. journald appends to an online file
        // while it is mapped, which only adds bytes past the length mapped
        // here; every read is bounded by that length. A file truncated by
        // another process would fault, the usual contract of reading a
        // mapped file.
        let map = unsafe { Mmap::map(&file) }.map_err(open_error)?;
        let header = parse_header(path, &map)?;
        Ok(JournalFile {
            path: path.to_path_buf(),
            map,
            header,
        })
    }

    /// Reads and checks the header of a journal file without mapping it.
    pub fn read_header(path: &Path) -> Result<Header, JournalFileError> {
        let open_error = |source| JournalFileError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = open_regular(path)?;
        let len = file.metadata().map_err(open_error)?.len();
        // Headers are 208 to 272 bytes in the formats known so far; a page
        // leaves room for fields later versions add.
        let bytes = read_bounded(file, HEADER_READ_BYTES).map_err(open_error)?;
        let header = parse_header(path, &bytes)?;
        // journalctl leaves out a file shorter than its header and arena.
        if header.header_size.saturating_add(header.arena_size) > len {
            return Err(JournalFileError::NotJournal {
                path: path.to_path_buf(),
                reason: format!(
                    "{len} bytes long, shorter than its header and arena ({} bytes)",
                    header.header_size.saturating_add(header.arena_size)
                ),
            });
        }
        Ok(header)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the offsets of every entry, in sequence order.
    pub fn entry_offsets(&self) -> EntryOffsets<'_> {
        EntryOffsets {
            file: self,
            array: self.header.entry_array_offset,
            index: 0,
            returned: 0,
            limit: self.header.n_entries,
            done: false,
        }
    }

    /// Returns the offsets of the entries that have the field `payload`
    /// (`NAME=value`), looked up in the file's hash table of DATA objects
    /// as journalctl does. `None` when the file's table cannot be used:
    /// files without a keyed hash (before systemd 246) use another hash
    /// function, which this reader does not compute.
    pub fn entries_with(&self, payload: &[u8]) -> Result<Option<Vec<u64>>, JournalFileError> {
        match self.find_data(payload)? {
            None => Ok(None),
            Some(None) => Ok(Some(Vec::new())),
            Some(Some(offset)) => self.data_entries(offset).map(Some),
        }
    }

    /// Returns how many entries have the field `payload`, as the DATA
    /// object counts them, found as [`JournalFile::entries_with`] finds it.
    pub fn count_entries_with(&self, payload: &[u8]) -> Result<Option<u64>, JournalFileError> {
        match self.find_data(payload)? {
            None => Ok(None),
            Some(None) => Ok(Some(0)),
            Some(Some(offset)) => self
                .u64_at(offset + DATA_N_ENTRIES_OFFSET, "DATA object")
                .map(Some),
        }
    }

    /// Finds the DATA object of `payload` in the hash table: `None` when
    /// the table cannot be used, `Some(None)` when the file has no such
    /// field.
    fn find_data(&self, payload: &[u8]) -> Result<Option<Option<u64>>, JournalFileError> {
        let header = &self.header;
        let buckets = header.data_hash_table_size / HASH_ITEM_SIZE;
        if header.incompatible_flags & INCOMPATIBLE_KEYED_HASH == 0 || buckets == 0 {
            return Ok(None);
        }
        let hash = keyed_hash(&header.file_id, payload);
        // A damaged header can place the table anywhere; an offset past the
        // end of the address space reads as out of the file.
        let bucket = header
            .data_hash_table_offset
            .saturating_add((hash % buckets) * HASH_ITEM_SIZE);
        let mut offset = self.u64_at(bucket, "data hash table")?;
        let mut steps = 0u64;
        while offset != 0 {
            steps += 1;
            if steps > MAX_HASH_CHAIN {
                return Err(self.invalid(
                    "data hash chain",
                    offset,
                    format!("longer than {MAX_HASH_CHAIN} objects"),
                ));
            }
            self.object(offset, OBJECT_DATA, "DATA object")?;
            if self.u64_at(offset + OBJECT_HEADER_SIZE, "DATA object")? == hash
                && self.data_payload(offset)?.as_ref() == payload
            {
                return Ok(Some(Some(offset)));
            }
            let next = self.u64_at(offset + OBJECT_HEADER_SIZE + 8, "DATA object")?;
            // Objects are appended, so a chain only moves forward; this
            // also ends a looping chain in a damaged file.
            if next != 0 && next <= offset {
                return Err(self.invalid(
                    "DATA object",
                    offset,
                    format!("next object in the hash chain at {next:#x} does not follow it"),
                ));
            }
            offset = next;
        }
        Ok(Some(None))
    }

    /// Returns the entries that link to the DATA object at `offset`: its
    /// first entry, then those of its chain of entry arrays.
    fn data_entries(&self, offset: u64) -> Result<Vec<u64>, JournalFileError> {
        let first = self.u64_at(offset + 40, "DATA object")?;
        let array = self.u64_at(offset + 48, "DATA object")?;
        let count = self.u64_at(offset + DATA_N_ENTRIES_OFFSET, "DATA object")?;
        if count == 0 || first == 0 {
            return Ok(Vec::new());
        }
        // A file has no more entries than its header counts.
        let count = count.min(self.header.n_entries);
        let mut entries = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 20));
        entries.push(first);
        let rest = EntryOffsets {
            file: self,
            array,
            index: 0,
            returned: 0,
            limit: count - 1,
            done: false,
        };
        for entry in rest {
            entries.push(entry?);
        }
        Ok(entries)
    }

    /// Returns every entry in sequence order. The walk stops at the first
    /// damaged structure, after returning its error.
    pub fn entries<'a>(
        &'a self,
        options: &'a ExportOptions,
    ) -> impl Iterator<Item = Result<Entry, JournalFileError>> + 'a {
        let mut failed = false;
        self.entry_offsets().map_while(move |offset| {
            if failed {
                return None;
            }
            let result = offset.and_then(|offset| self.read_entry(offset, options));
            failed = result.is_err();
            Some(result)
        })
    }

    /// Reads the entry whose ENTRY object starts at `offset`.
    pub fn read_entry(
        &self,
        offset: u64,
        options: &ExportOptions,
    ) -> Result<Entry, JournalFileError> {
        self.read_entry_fields(offset, options, &|_| true)
    }

    /// Returns the sequence number and the realtime timestamp (microseconds
    /// since the epoch) of the entry at `offset`, from its ENTRY object
    /// alone.
    pub fn entry_position(&self, offset: u64) -> Result<EntryPosition, JournalFileError> {
        self.object(offset, OBJECT_ENTRY, "ENTRY object")?;
        Ok(EntryPosition {
            seqnum: self.u64_at(offset + 16, "ENTRY object")?,
            realtime_usec: self.u64_at(offset + 24, "ENTRY object")?,
        })
    }

    /// Reads the entry at `offset` like [`JournalFile::read_entry`], keeping
    /// only the fields whose name `wanted` accepts. A field left out is
    /// neither spilled nor counted against the entry's size limit, as
    /// journalctl's `--output-fields` leaves it out before printing.
    pub fn read_entry_fields(
        &self,
        offset: u64,
        options: &ExportOptions,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Entry, JournalFileError> {
        let size = self.object(offset, OBJECT_ENTRY, "ENTRY object")?;
        let seqnum = self.u64_at(offset + 16, "ENTRY object")?;
        let realtime = self.u64_at(offset + 24, "ENTRY object")?;
        let monotonic = self.u64_at(offset + 32, "ENTRY object")?;
        let boot_id = self.id_at(offset + 40, "ENTRY object")?;
        let xor_hash = self.u64_at(offset + 56, "ENTRY object")?;

        let item_size: u64 = if self.header.is_compact() { 4 } else { 16 };
        let items = size.saturating_sub(ENTRY_ITEMS_OFFSET) / item_size;
        if items > MAX_ENTRY_ITEMS {
            return Err(self.invalid(
                "ENTRY object",
                offset,
                format!("{items} items, more than the limit of {MAX_ENTRY_ITEMS}"),
            ));
        }

        let boot_id = hex(&boot_id);
        let mut fields = vec![
            text_field(
                "__CURSOR",
                format!(
                    "s={};i={seqnum:x};b={boot_id};m={monotonic:x};t={realtime:x};x={xor_hash:x}",
                    hex(&self.header.seqnum_id),
                ),
            ),
            text_field("__REALTIME_TIMESTAMP", realtime.to_string()),
            text_field("__MONOTONIC_TIMESTAMP", monotonic.to_string()),
            text_field("_BOOT_ID", boot_id),
        ];
        let mut kept_bytes: u64 = 0;
        for index in 0..items {
            let item = offset + ENTRY_ITEMS_OFFSET + index * item_size;
            let data_offset = if self.header.is_compact() {
                u64::from(self.u32_at(item, "ENTRY item")?)
            } else {
                self.u64_at(item, "ENTRY item")?
            };
            // journalctl prints the boot ID from the entry header and skips
            // the `_BOOT_ID` field, so the same is done here.
            let field = self.read_data(data_offset, options, &mut kept_bytes, wanted)?;
            if let Some(field) = field.filter(|field| field.name != "_BOOT_ID") {
                fields.push(field);
            }
        }
        Ok(Entry { fields, offset })
    }

    /// Returns the payload of the DATA object at `offset`, decompressed.
    fn data_payload(&self, offset: u64) -> Result<std::borrow::Cow<'_, [u8]>, JournalFileError> {
        let size = self.object(offset, OBJECT_DATA, "DATA object")?;
        let flags = self.byte_at(offset + 1, "DATA object")?;
        let payload_offset = if self.header.is_compact() {
            DATA_PAYLOAD_OFFSET_COMPACT
        } else {
            DATA_PAYLOAD_OFFSET
        };
        if size < payload_offset {
            return Err(self.invalid(
                "DATA object",
                offset,
                format!("size {size:#x} leaves no room for a payload"),
            ));
        }
        let payload = self.bytes(
            offset + payload_offset,
            size - payload_offset,
            "DATA payload",
        )?;
        self.decompress(offset, flags, payload)
    }

    /// Reads one DATA object as a field; `None` when `wanted` rejects its
    /// name.
    fn read_data(
        &self,
        offset: u64,
        options: &ExportOptions,
        kept_bytes: &mut u64,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Option<Field>, JournalFileError> {
        let payload = self.data_payload(offset)?;
        let Some(equals) = payload.iter().position(|&b| b == b'=') else {
            return Err(self.invalid(
                "DATA payload",
                offset,
                "no '=' between field name and value".into(),
            ));
        };
        let name = payload.get(..equals).unwrap_or_default();
        let name = std::str::from_utf8(name).map_err(|_| {
            self.invalid("DATA payload", offset, "the field name is not UTF-8".into())
        })?;
        if !wanted(name) {
            return Ok(None);
        }
        let name = name.to_string();
        let value = payload.get(equals + 1..).unwrap_or_default();
        let len = value.len() as u64;

        let value = match options.policy(&name) {
            FieldPolicy::Skip => FieldValue::Skipped {
                len,
                reason: SkipReason::Policy,
            },
            FieldPolicy::Spill => self.spill(&name, value, options)?,
            _ if len > options.max_value_bytes => FieldValue::Skipped {
                len,
                reason: SkipReason::TooLarge,
            },
            _ if kept_bytes.saturating_add(len) > options.max_entry_bytes => FieldValue::Skipped {
                len,
                reason: SkipReason::EntryFull,
            },
            _ => {
                *kept_bytes += len;
                FieldValue::Data(value.to_vec())
            }
        };
        Ok(Some(Field { name, value }))
    }

    /// Writes a value to a temporary file.
    fn spill(
        &self,
        name: &str,
        value: &[u8],
        options: &ExportOptions,
    ) -> Result<FieldValue, JournalFileError> {
        let dir = options.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        let spill_error = |source| JournalFileError::Spill {
            name: name.to_string(),
            dir: dir.clone(),
            source,
        };
        let mut file = tempfile::Builder::new()
            .prefix("gocrash-field-")
            .tempfile_in(&dir)
            .map_err(spill_error)?;
        file.write_all(value).map_err(spill_error)?;
        Ok(FieldValue::Spilled(Arc::new(SpilledValue {
            file,
            len: value.len() as u64,
        })))
    }

    /// Returns a DATA payload's bytes, decompressed when the object says so.
    fn decompress<'a>(
        &self,
        offset: u64,
        flags: u8,
        payload: &'a [u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>, JournalFileError> {
        let error = |source| JournalFileError::Decompress {
            path: self.path.clone(),
            offset,
            source,
        };
        let limit = MAX_FIELD_VALUE_BYTES + 1;
        let decoded =
            match flags & (OBJECT_COMPRESSED_XZ | OBJECT_COMPRESSED_LZ4 | OBJECT_COMPRESSED_ZSTD) {
                0 => return Ok(std::borrow::Cow::Borrowed(payload)),
                OBJECT_COMPRESSED_ZSTD => {
                    let decoder = zstd::stream::read::Decoder::new(payload).map_err(error)?;
                    read_bounded(decoder, limit).map_err(error)?
                }
                OBJECT_COMPRESSED_XZ => {
                    read_bounded(liblzma::read::XzDecoder::new(payload), limit).map_err(error)?
                }
                OBJECT_COMPRESSED_LZ4 => {
                    let (prefix, block) = payload
                        .split_first_chunk::<LZ4_SIZE_PREFIX>()
                        .ok_or_else(|| {
                            self.invalid(
                                "DATA payload",
                                offset,
                                "lz4 payload shorter than its size prefix".into(),
                            )
                        })?;
                    let size = u64::from_le_bytes(*prefix);
                    if size > MAX_FIELD_VALUE_BYTES {
                        return Err(self.invalid(
                            "DATA payload",
                            offset,
                            format!("lz4 size {size:#x} over the limit"),
                        ));
                    }
                    let mut out = vec![0u8; usize::try_from(size).unwrap_or(0)];
                    let written = lz4_flex::block::decompress_into(block, &mut out)
                        .map_err(|e| error(io::Error::new(io::ErrorKind::InvalidData, e)))?;
                    out.truncate(written);
                    out
                }
                both => {
                    return Err(self.invalid(
                        "DATA object",
                        offset,
                        format!("several compression flags set: {both:#x}"),
                    ));
                }
            };
        if decoded.len() as u64 > MAX_FIELD_VALUE_BYTES {
            return Err(self.invalid(
                "DATA payload",
                offset,
                "decompresses to more than the field limit".into(),
            ));
        }
        Ok(std::borrow::Cow::Owned(decoded))
    }

    /// Checks the object header at `offset` and returns the object's size.
    fn object(
        &self,
        offset: u64,
        expected: u8,
        structure: &'static str,
    ) -> Result<u64, JournalFileError> {
        if offset % 8 != 0 || offset < self.header.header_size {
            return Err(self.invalid(
                structure,
                offset,
                "offset not 8-byte aligned or inside the header".into(),
            ));
        }
        let kind = self.byte_at(offset, structure)?;
        if kind != expected {
            return Err(self.invalid(
                structure,
                offset,
                format!("object type {kind}, expected {expected}"),
            ));
        }
        let size = self.u64_at(offset + 8, structure)?;
        let end = offset.checked_add(size);
        if size < OBJECT_HEADER_SIZE || end.is_none_or(|end| end > self.map.len() as u64) {
            return Err(self.invalid(
                structure,
                offset,
                format!("size {size:#x} runs past the end of the file"),
            ));
        }
        Ok(size)
    }

    fn bytes(
        &self,
        offset: u64,
        len: u64,
        structure: &'static str,
    ) -> Result<&[u8], JournalFileError> {
        let start = usize::try_from(offset).ok();
        let end = offset
            .checked_add(len)
            .and_then(|e| usize::try_from(e).ok());
        start
            .zip(end)
            .and_then(|(start, end)| self.map.get(start..end))
            .ok_or_else(|| {
                self.invalid(
                    structure,
                    offset,
                    format!("{len:#x} bytes run past the end of the file"),
                )
            })
    }

    fn byte_at(&self, offset: u64, structure: &'static str) -> Result<u8, JournalFileError> {
        Ok(self
            .bytes(offset, 1, structure)?
            .first()
            .copied()
            .unwrap_or(0))
    }

    fn u32_at(&self, offset: u64, structure: &'static str) -> Result<u32, JournalFileError> {
        let bytes = self.bytes(offset, 4, structure)?;
        Ok(u32::from_le_bytes(bytes.try_into().unwrap_or([0; 4])))
    }

    fn u64_at(&self, offset: u64, structure: &'static str) -> Result<u64, JournalFileError> {
        let bytes = self.bytes(offset, 8, structure)?;
        Ok(u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])))
    }

    fn id_at(&self, offset: u64, structure: &'static str) -> Result<[u8; 16], JournalFileError> {
        let bytes = self.bytes(offset, 16, structure)?;
        Ok(bytes.try_into().unwrap_or([0; 16]))
    }

    fn invalid(&self, structure: &'static str, offset: u64, reason: String) -> JournalFileError {
        JournalFileError::Invalid {
            path: self.path.clone(),
            structure,
            offset,
            reason,
        }
    }
}

/// The entry offsets of a file, read from its chain of entry arrays.
pub struct EntryOffsets<'a> {
    file: &'a JournalFile,
    /// Offset of the current ENTRY_ARRAY object; 0 at the end of the chain.
    array: u64,
    index: u64,
    returned: u64,
    /// The number of offsets the chain holds.
    limit: u64,
    done: bool,
}

impl EntryOffsets<'_> {
    fn advance(&mut self) -> Result<Option<u64>, JournalFileError> {
        let file = self.file;
        let item_size: u64 = if file.header.is_compact() { 4 } else { 8 };
        loop {
            if self.array == 0 || self.returned >= self.limit {
                return Ok(None);
            }
            let size = file.object(self.array, OBJECT_ENTRY_ARRAY, "ENTRY_ARRAY object")?;
            let items = size.saturating_sub(ENTRY_ARRAY_ITEMS_OFFSET) / item_size;
            if self.index < items {
                let item = self.array + ENTRY_ARRAY_ITEMS_OFFSET + self.index * item_size;
                self.index += 1;
                let offset = if item_size == 4 {
                    u64::from(file.u32_at(item, "ENTRY_ARRAY item")?)
                } else {
                    file.u64_at(item, "ENTRY_ARRAY item")?
                };
                // Unused slots at the end of the last array are zero.
                if offset == 0 {
                    return Ok(None);
                }
                self.returned += 1;
                return Ok(Some(offset));
            }
            let next = file.u64_at(self.array + OBJECT_HEADER_SIZE, "ENTRY_ARRAY object")?;
            // Arrays are appended, so the chain only moves forward; this
            // also ends a looping chain in a damaged file.
            if next != 0 && next <= self.array {
                return Err(file.invalid(
                    "ENTRY_ARRAY object",
                    self.array,
                    format!("next array at {next:#x} does not follow it"),
                ));
            }
            self.array = next;
            self.index = 0;
        }
    }
}

impl Iterator for EntryOffsets<'_> {
    type Item = Result<u64, JournalFileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.advance();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result.transpose()
    }
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header, JournalFileError> {
    let not_journal = |reason: &str| JournalFileError::NotJournal {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if bytes.len() < MIN_HEADER_SIZE as usize {
        return Err(not_journal("shorter than a journal header"));
    }
    if bytes.get(..8) != Some(&SIGNATURE[..]) {
        return Err(not_journal("no LPKSHHRH signature"));
    }
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0)
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    };
    let id_at = |at: usize| {
        bytes
            .get(at..at + 16)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0u8; 16])
    };
    let header = Header {
        compatible_flags: u32_at(8),
        incompatible_flags: u32_at(12),
        state: bytes.get(16).copied().unwrap_or(0),
        file_id: id_at(24),
        machine_id: id_at(40),
        seqnum_id: id_at(72),
        header_size: u64_at(88),
        arena_size: u64_at(96),
        n_entries: u64_at(152),
        data_hash_table_offset: u64_at(104),
        data_hash_table_size: u64_at(112),
        head_entry_seqnum: u64_at(168),
        entry_array_offset: u64_at(176),
    };
    let unknown = header.incompatible_flags & !KNOWN_INCOMPATIBLE;
    if unknown != 0 {
        return Err(JournalFileError::UnknownFeatures {
            path: path.to_path_buf(),
            flags: header.incompatible_flags,
            unknown,
        });
    }
    if header.header_size < MIN_HEADER_SIZE || header.header_size > bytes.len() as u64 {
        return Err(not_journal("header size outside the file"));
    }
    Ok(header)
}

/// Opens `path` for reading when it is a regular file. A FIFO or a device
/// named `*.journal` is rejected without being read: opening it does not
/// block, and reading it could.
fn open_regular(path: &Path) -> Result<File, JournalFileError> {
    use std::os::unix::fs::OpenOptionsExt;

    let open_error = |source| JournalFileError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(open_error)?;
    if !file.metadata().map_err(open_error)?.is_file() {
        return Err(JournalFileError::NotJournal {
            path: path.to_path_buf(),
            reason: "not a regular file".to_owned(),
        });
    }
    Ok(file)
}

fn read_bounded(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

fn text_field(name: &str, value: String) -> Field {
    Field {
        name: name.to_string(),
        value: FieldValue::Data(value.into_bytes()),
    }
}

/// Formats a 128-bit ID as journalctl writes it: 32 lowercase hex digits.
pub(super) fn hex(id: &[u8; 16]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 * id.len());
    for byte in id {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

#[cfg(test)]
mod tests;

/// Returns the hash a journal file with a keyed hash gives `payload`:
/// SipHash-2-4 keyed with the file's ID.
fn keyed_hash(file_id: &[u8; 16], payload: &[u8]) -> u64 {
    use std::hash::Hasher;

    let [k0, k1] = [0, 8].map(|at| {
        let mut word = [0u8; 8];
        word.copy_from_slice(file_id.get(at..at + 8).unwrap_or(&[0; 8]));
        u64::from_le_bytes(word)
    });
    // std's SipHasher is SipHash-2-4, the function systemd uses.
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new_with_keys(k0, k1);
    hasher.write(payload);
    hasher.finish()
}
