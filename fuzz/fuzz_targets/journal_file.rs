//! Feeds arbitrary bytes to the reader of binary journal files (the direct
//! reader's), written to a file as journald's would be: the header, the
//! entry array chain, every entry and its fields, and the lookup of two
//! fields in the hash table of DATA objects. Then feeds the input's
//! text to the cursor comparison the crash text reader uses to find lines
//! journald wrote twice. libFuzzer reports any panic; damage must come back
//! as errors.
//!
//! `scripts/fuzz-seeds` writes small journal files of crash text lines as
//! seeds. journald's own files start with megabytes of hash tables, so
//! they make slow seeds.

#![no_main]

use std::io::{Seek, SeekFrom, Write};
use std::sync::Mutex;

use ingest::crashtext::next_in_batch;
use ingest::journal::export::ExportOptions;
use ingest::journal::file::JournalFile;
use libfuzzer_sys::fuzz_target;

/// Entries read per input: enough to walk several entry arrays.
const MAX_ENTRIES: usize = 256;

/// One file per process, rewritten for every input.
static FILE: Mutex<Option<(std::path::PathBuf, std::fs::File)>> = Mutex::new(None);

fn with_file(data: &[u8], read: impl FnOnce(&std::path::Path)) {
    let mut guard = FILE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (path, file) = guard.get_or_insert_with(|| {
        let path = std::env::temp_dir().join(format!("gocrash-fuzz-journal-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .expect("a scratch file can be created");
        (path, file)
    });
    file.set_len(0).expect("the scratch file can be truncated");
    file.seek(SeekFrom::Start(0)).expect("the scratch file can be rewound");
    file.write_all(data).expect("the scratch file can be written");
    read(path);
}

fuzz_target!(|data: &[u8]| {
    with_file(data, |path| {
        if let Ok(header) = JournalFile::read_header(path) {
            let _ = header.is_compact();
        }
        let Ok(journal) = JournalFile::open(path) else { return };
        let options = ExportOptions::default();
        for entry in journal.entries(&options).take(MAX_ENTRIES) {
            let Ok(entry) = entry else { break };
            let _ = entry.cursor();
            let _ = entry.realtime_usec();
            let _ = entry.bytes("MESSAGE");
        }
        // The hash table lookup of the direct reader's matches.
        for payload in [&b"MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1"[..], b"_PID=1"] {
            let _ = journal.count_entries_with(payload);
            if let Ok(Some(offsets)) = journal.entries_with(payload) {
                for offset in offsets.into_iter().take(MAX_ENTRIES) {
                    let _ = journal.entry_position(offset);
                }
            }
        }
    });

    let text = String::from_utf8_lossy(data);
    if let Some((before, after)) = text.split_once('\n') {
        let _ = next_in_batch(before, after);
    }
});
