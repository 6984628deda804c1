use std::io::Write as _;

use super::*;

const HEADER_SIZE: usize = 272;
const SEQNUM_ID: [u8; 16] = [0x94; 16];
const BOOT: [u8; 16] = [0x5c; 16];

/// How a DATA payload is stored.
#[derive(Clone, Copy)]
enum Stored {
    Plain,
    Zstd,
    Xz,
    Lz4,
}

/// Builds a journal file object by object: DATA objects, ENTRY objects that
/// point at them, and a chain of ENTRY_ARRAY objects listing the entries.
/// Hash tables stay empty: only the lookup of matches reads them, and it
/// is tested on journald's own files (tests/journal_file.rs).
struct FileBuilder {
    compact: bool,
    bytes: Vec<u8>,
    entries: Vec<u64>,
    seqnum: u64,
}

impl FileBuilder {
    fn new(compact: bool) -> FileBuilder {
        FileBuilder {
            compact,
            bytes: vec![0; HEADER_SIZE],
            entries: Vec::new(),
            seqnum: 0,
        }
    }

    /// Appends an object of `kind` with `body` after the 16-byte object
    /// header, padded to 8 bytes, and returns its offset.
    fn object(&mut self, kind: u8, flags: u8, body: &[u8]) -> u64 {
        let offset = self.bytes.len() as u64;
        self.bytes.push(kind);
        self.bytes.push(flags);
        self.bytes.extend_from_slice(&[0; 6]);
        self.bytes
            .extend_from_slice(&(OBJECT_HEADER_SIZE + body.len() as u64).to_le_bytes());
        self.bytes.extend_from_slice(body);
        while self.bytes.len() % 8 != 0 {
            self.bytes.push(0);
        }
        offset
    }

    fn data(&mut self, payload: &[u8], stored: Stored) -> u64 {
        let (flags, stored_payload) = match stored {
            Stored::Plain => (0, payload.to_vec()),
            Stored::Zstd => (
                OBJECT_COMPRESSED_ZSTD,
                zstd::encode_all(payload, 3).unwrap(),
            ),
            Stored::Xz => {
                let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 6);
                encoder.write_all(payload).unwrap();
                (OBJECT_COMPRESSED_XZ, encoder.finish().unwrap())
            }
            Stored::Lz4 => {
                let mut framed = (payload.len() as u64).to_le_bytes().to_vec();
                framed.extend(lz4_flex::block::compress(payload));
                (OBJECT_COMPRESSED_LZ4, framed)
            }
        };
        // hash, next_hash_offset, next_field_offset, entry_offset,
        // entry_array_offset, n_entries, and the compact tail fields.
        let mut body = vec![0u8; 48];
        if self.compact {
            body.extend_from_slice(&[0; 8]);
        }
        body.extend_from_slice(&stored_payload);
        self.object(OBJECT_DATA, flags, &body)
    }

    fn entry(&mut self, realtime: u64, fields: &[(&[u8], Stored)]) -> u64 {
        let data: Vec<u64> = fields
            .iter()
            .map(|(payload, stored)| self.data(payload, *stored))
            .collect();
        self.seqnum += 1;
        let mut body = Vec::new();
        body.extend_from_slice(&self.seqnum.to_le_bytes());
        body.extend_from_slice(&realtime.to_le_bytes());
        body.extend_from_slice(&(realtime / 1000).to_le_bytes());
        body.extend_from_slice(&BOOT);
        body.extend_from_slice(&0xabcdu64.to_le_bytes());
        for offset in data {
            if self.compact {
                body.extend_from_slice(&(offset as u32).to_le_bytes());
            } else {
                body.extend_from_slice(&offset.to_le_bytes());
                body.extend_from_slice(&0u64.to_le_bytes());
            }
        }
        let offset = self.object(OBJECT_ENTRY, 0, &body);
        self.entries.push(offset);
        offset
    }

    /// Writes the entry arrays, `per_array` slots each, and the header.
    fn finish(mut self, per_array: usize, incompatible_extra: u32) -> Vec<u8> {
        let chunks: Vec<Vec<u64>> = self
            .entries
            .chunks(per_array)
            .map(<[u64]>::to_vec)
            .collect();
        // Arrays are written first to last, each pointing at the next, so
        // the next offset is patched in once known.
        let mut previous: Option<u64> = None;
        let mut first = 0;
        for chunk in chunks {
            let mut body = 0u64.to_le_bytes().to_vec();
            for slot in 0..per_array {
                let offset = chunk.get(slot).copied().unwrap_or(0);
                if self.compact {
                    body.extend_from_slice(&(offset as u32).to_le_bytes());
                } else {
                    body.extend_from_slice(&offset.to_le_bytes());
                }
            }
            let offset = self.object(OBJECT_ENTRY_ARRAY, 0, &body);
            match previous {
                Some(prev) => {
                    let at = prev as usize + 16;
                    self.bytes[at..at + 8].copy_from_slice(&offset.to_le_bytes());
                }
                None => first = offset,
            }
            previous = Some(offset);
        }
        let mut flags = INCOMPATIBLE_COMPRESSED_ZSTD | INCOMPATIBLE_KEYED_HASH | incompatible_extra;
        if self.compact {
            flags |= INCOMPATIBLE_COMPACT;
        }
        let len = self.bytes.len() as u64;
        let n_entries = self.entries.len() as u64;
        let header = &mut self.bytes[..HEADER_SIZE];
        header[..8].copy_from_slice(SIGNATURE);
        header[12..16].copy_from_slice(&flags.to_le_bytes());
        header[16] = 2;
        header[72..88].copy_from_slice(&SEQNUM_ID);
        header[88..96].copy_from_slice(&(HEADER_SIZE as u64).to_le_bytes());
        header[96..104].copy_from_slice(&(len - HEADER_SIZE as u64).to_le_bytes());
        header[152..160].copy_from_slice(&n_entries.to_le_bytes());
        // Sequence numbers start at 1.
        header[168..176].copy_from_slice(&u64::from(n_entries > 0).to_le_bytes());
        header[176..184].copy_from_slice(&first.to_le_bytes());
        self.bytes
    }
}

fn open(bytes: &[u8]) -> (tempfile::NamedTempFile, JournalFile) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(bytes).unwrap();
    let journal = JournalFile::open(file.path()).unwrap();
    (file, journal)
}

fn read_all(journal: &JournalFile) -> Vec<Result<Entry, JournalFileError>> {
    journal.entries(&ExportOptions::default()).collect()
}

fn three_entries(compact: bool) -> Vec<u8> {
    let mut builder = FileBuilder::new(compact);
    for (index, stored) in [Stored::Plain, Stored::Zstd, Stored::Xz]
        .into_iter()
        .enumerate()
    {
        let message = format!("MESSAGE=line {index}");
        builder.entry(
            1_700_000_000_000_000 + index as u64,
            &[
                (b"_BOOT_ID=5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c", Stored::Plain),
                (b"_PID=42", Stored::Plain),
                (message.as_bytes(), stored),
                (b"CODE=a=b", Stored::Lz4),
            ],
        );
    }
    builder.finish(2, 0)
}

#[test]
fn entries_read_like_export() {
    for compact in [false, true] {
        let (_file, journal) = open(&three_entries(compact));
        assert_eq!(journal.header().is_compact(), compact);
        let entries: Vec<Entry> = read_all(&journal).into_iter().map(Result::unwrap).collect();
        assert_eq!(entries.len(), 3, "compact {compact}");
        let names: Vec<&str> = entries[0].fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "__CURSOR",
                "__REALTIME_TIMESTAMP",
                "__MONOTONIC_TIMESTAMP",
                "_BOOT_ID",
                "_PID",
                "MESSAGE",
                "CODE"
            ]
        );
        for (index, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.text("MESSAGE"),
                Some(format!("line {index}").as_str())
            );
            assert_eq!(entry.text("CODE"), Some("a=b"));
            assert_eq!(entry.number("_PID"), Some(42));
            assert_eq!(entry.boot_id(), Some("5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c"));
            assert_eq!(
                entry.realtime_usec(),
                Some(1_700_000_000_000_000 + index as u64)
            );
        }
        assert_eq!(
            entries[1].cursor(),
            Some("s=94949494949494949494949494949494;i=2;b=5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c;m=18bcfe56800;t=60a24181e4001;x=abcd")
        );
    }
}

#[test]
fn entry_offsets_follow_the_chain() {
    let (_file, journal) = open(&three_entries(false));
    let offsets: Vec<u64> = journal.entry_offsets().map(Result::unwrap).collect();
    assert_eq!(offsets.len(), 3);
    assert!(offsets.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn coredump_field_is_skipped() {
    let mut builder = FileBuilder::new(true);
    builder.entry(
        1,
        &[
            (b"COREDUMP=\x7fELF\x00\x01", Stored::Zstd),
            (b"COREDUMP_PID=9", Stored::Plain),
        ],
    );
    let (_file, journal) = open(&builder.finish(4, 0));
    let entry = read_all(&journal).remove(0).unwrap();
    assert!(matches!(
        entry.field("COREDUMP"),
        Some(FieldValue::Skipped {
            len: 6,
            reason: SkipReason::Policy
        })
    ));
    let options = ExportOptions::default().with_policy("COREDUMP", FieldPolicy::Spill);
    let entry = journal
        .read_entry(journal.entry_offsets().next().unwrap().unwrap(), &options)
        .unwrap();
    let Some(FieldValue::Spilled(spilled)) = entry.field("COREDUMP") else {
        panic!("COREDUMP was not spilled");
    };
    assert_eq!(std::fs::read(spilled.path()).unwrap(), b"\x7fELF\x00\x01");
}

#[test]
fn damaged_files_end_with_errors() {
    let bytes = three_entries(false);

    let mut cut = bytes.clone();
    cut.truncate(bytes.len() - 40);
    let (_file, journal) = open(&cut);
    let results = read_all(&journal);
    assert!(
        results.last().unwrap().is_err(),
        "a cut array is not reported"
    );

    // The first array's next pointer aimed backwards.
    let (_file, journal) = open(&bytes);
    let first_array = journal.header().entry_array_offset as usize;
    let mut looping = bytes.clone();
    looping[first_array + 16..first_array + 24]
        .copy_from_slice(&(first_array as u64).to_le_bytes());
    let (_file, journal) = open(&looping);
    let results = read_all(&journal);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    assert!(matches!(
        results.last(),
        Some(Err(JournalFileError::Invalid {
            structure: "ENTRY_ARRAY object",
            ..
        }))
    ));

    // An entry item pointing past the end of the file.
    let entry_offset = journal.entry_offsets().next().unwrap().unwrap() as usize;
    let mut wild = bytes.clone();
    wild[entry_offset + 64..entry_offset + 72].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let (_file, journal) = open(&wild);
    assert!(matches!(
        read_all(&journal).first(),
        Some(Err(JournalFileError::Invalid {
            structure: "DATA object",
            ..
        }))
    ));
}

#[test]
fn headers_are_checked() {
    let bytes = three_entries(false);
    let mut unknown = bytes.clone();
    unknown[12..16].copy_from_slice(&(1u32 << 10 | INCOMPATIBLE_COMPRESSED_ZSTD).to_le_bytes());
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&unknown).unwrap();
    assert!(matches!(
        JournalFile::open(file.path()),
        Err(JournalFileError::UnknownFeatures { unknown: 0x400, .. })
    ));

    let mut short = tempfile::NamedTempFile::new().unwrap();
    short.write_all(&bytes[..100]).unwrap();
    assert!(matches!(
        JournalFile::open(short.path()),
        Err(JournalFileError::NotJournal { .. })
    ));

    let mut wrong = bytes.clone();
    wrong[0] = b'X';
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&wrong).unwrap();
    assert!(matches!(
        JournalFile::open(file.path()),
        Err(JournalFileError::NotJournal { .. })
    ));
}

#[test]
fn header_is_read_without_the_file() {
    let (file, journal) = open(&three_entries(false));
    let header = JournalFile::read_header(file.path()).unwrap();
    assert_eq!(&header, journal.header());
    assert_eq!(header.head_entry_seqnum, 1);
    assert_eq!(header.n_entries, 3);
    assert_eq!(header.seqnum_id, SEQNUM_ID);

    let mut short = tempfile::NamedTempFile::new().unwrap();
    short.write_all(&three_entries(false)[..100]).unwrap();
    assert!(matches!(
        JournalFile::read_header(short.path()),
        Err(JournalFileError::NotJournal { .. })
    ));

    // A file cut inside its arena, which journalctl leaves out.
    let bytes = three_entries(false);
    let mut cut = tempfile::NamedTempFile::new().unwrap();
    cut.write_all(&bytes[..bytes.len() - 8]).unwrap();
    assert!(matches!(
        JournalFile::read_header(cut.path()),
        Err(JournalFileError::NotJournal { reason, .. }) if reason.contains("shorter than its header and arena")
    ));
}

#[test]
fn payload_without_equals_is_invalid() {
    let mut builder = FileBuilder::new(false);
    builder.entry(1, &[(b"NOEQUALS", Stored::Plain)]);
    let (_file, journal) = open(&builder.finish(1, 0));
    assert!(matches!(
        read_all(&journal).first(),
        Some(Err(JournalFileError::Invalid {
            structure: "DATA payload",
            ..
        }))
    ));
}

#[test]
fn hash_lookup_needs_a_table_in_the_file() {
    // The builder writes no hash table: the lookup cannot be used.
    let bytes = three_entries(false);
    let (_file, journal) = open(&bytes);
    assert!(journal.entries_with(b"_PID=42").unwrap().is_none());

    // A table placed at the end of the address space is an error, not an
    // overflow.
    let mut bytes = three_entries(false);
    bytes[104..112].copy_from_slice(&(u64::MAX - 8).to_le_bytes());
    bytes[112..120].copy_from_slice(&16u64.to_le_bytes());
    let (_file, journal) = open(&bytes);
    let error = journal.entries_with(b"_PID=42").unwrap_err();
    assert!(error.to_string().contains("data hash table"), "{error}");
}
