//! Feeds arbitrary bytes to the journal export parser, then reads every
//! entry as a coredump record and as crash text lines, and writes kept
//! entries back to check that they read the same. The assertions check that
//! the parser stays within its limits; libFuzzer reports any panic.
//!
//! Seed it with real export records:
//!
//! ```sh
//! mkdir -p fuzz/corpus/journal_export
//! journalctl -o export -n 20 > fuzz/corpus/journal_export/recent
//! journalctl -o export -n 2 MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1 > fuzz/corpus/journal_export/coredump
//! ```

#![no_main]

use std::io::Cursor;

use ingest::coredump::CoredumpRecord;
use ingest::crashtext::assemble::Assembler;
use ingest::journal::export::{ExportOptions, ExportReader, ExportWriter, FieldPolicy, COREDUMP_FIELD, MAX_FIELDS_PER_ENTRY};
use ingest::journal::FieldValue;
use libfuzzer_sys::fuzz_target;

/// Small limits, so that the skipping paths run on small inputs.
const MAX_VALUE_BYTES: u64 = 4096;
const MAX_ENTRY_BYTES: u64 = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the policy of the COREDUMP field.
    let Some((&selector, stream)) = data.split_first() else { return };
    let policy = if selector & 1 == 1 { FieldPolicy::Keep } else { FieldPolicy::Skip };
    let options = ExportOptions {
        max_value_bytes: MAX_VALUE_BYTES,
        max_entry_bytes: MAX_ENTRY_BYTES,
        ..ExportOptions::default()
    }
    .with_policy(COREDUMP_FIELD, policy);

    let mut reader = ExportReader::new(Cursor::new(stream), options.clone());
    let mut assembler = Assembler::new();
    let mut last_offset = 0;
    while let Ok(Some(entry)) = reader.next_entry() {
        assert!(entry.offset >= last_offset);
        assert!(entry.offset <= stream.len() as u64);
        last_offset = entry.offset;
        assert!(entry.fields.len() <= MAX_FIELDS_PER_ENTRY);
        let kept_bytes: u64 = entry.fields.iter().filter_map(|f| f.value.data()).map(|d| d.len() as u64).sum();
        assert!(kept_bytes <= MAX_ENTRY_BYTES);

        let _ = CoredumpRecord::from_entry(&entry).map(|record| {
            let _ = (record.signal_label(), record.unit_name(), record.may_have_journal_output());
        });
        assembler.push(&entry);

        // Kept values written back read the same.
        let mut writer = ExportWriter::new(Vec::new());
        for field in &entry.fields {
            if let FieldValue::Data(value) = &field.value {
                writer.field(&field.name, value).expect("writing to memory");
            }
        }
        writer.end_entry().expect("writing to memory");
        let bytes = writer.into_inner();
        let mut again = ExportReader::new(Cursor::new(&bytes), options.clone());
        if let Ok(Some(copy)) = again.next_entry() {
            let original: Vec<_> = entry.fields.iter().filter_map(|f| f.value.data().map(|d| (&f.name, d))).collect();
            let copied: Vec<_> = copy.fields.iter().filter_map(|f| f.value.data().map(|d| (&f.name, d))).collect();
            assert_eq!(original, copied);
        }
    }
    assert!(reader.offset() <= stream.len() as u64);
    let _ = assembler.finish();
});
