//! Reads this machine's own journal files directly and compares every field
//! of their first entries, and their entry counts, with what journalctl
//! prints for the same files.
//!
//! Skipped with a message when the machine has no archived journal file.

use std::path::PathBuf;

use ingest::coredump::{trust, Trust};
use ingest::journal::file::JournalFile;
use ingest::journal::{Entry, ExportOptions, FieldValue, Journal, Query};

/// Entries compared field by field per file; the files hold hundreds of
/// thousands, and the count is compared for all of them.
const COMPARED_ENTRIES: usize = 3000;
/// Archived files compared.
const COMPARED_FILES: usize = 2;

/// Returns the archived journal files of this machine, smallest first.
fn archived_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for root in ["/run/log/journal", "/var/log/journal"] {
        let Ok(machines) = std::fs::read_dir(root) else {
            continue;
        };
        for machine in machines.flatten() {
            let Ok(entries) = std::fs::read_dir(machine.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("system@") && name.ends_with(".journal") {
                    files.push(entry.path());
                }
            }
        }
    }
    files.sort_by_key(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX));
    files
}

#[test]
fn direct_read_equals_journalctl() {
    let files = archived_files();
    if files.is_empty() {
        eprintln!("skipped: no archived journal files on this machine");
        return;
    }
    for path in files.iter().take(COMPARED_FILES) {
        let file = JournalFile::open(path).unwrap();
        let options = ExportOptions::default();

        let offsets = file.entry_offsets().collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(
            offsets.len() as u64,
            file.header().n_entries,
            "{}",
            path.display()
        );

        let journal = Journal {
            files: vec![path.clone()],
            ..Journal::default()
        };
        let mut stream = journal.stream(&Query::default(), options.clone()).unwrap();
        let mut compared = 0;
        for direct in file.entries(&options).take(COMPARED_ENTRIES) {
            let direct = direct.unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let expected = stream
                .next_entry()
                .unwrap()
                .expect("journalctl printed fewer entries");
            assert_eq!(direct.cursor(), expected.cursor(), "{}", path.display());
            let describe = |entry: &Entry| -> Vec<(String, Option<Vec<u8>>, u64)> {
                entry
                    .fields
                    .iter()
                    .map(|f| {
                        let data = match &f.value {
                            FieldValue::Data(bytes) => Some(bytes.clone()),
                            _ => None,
                        };
                        (f.name.clone(), data, f.value.len())
                    })
                    .collect()
            };
            assert_eq!(
                describe(&direct),
                describe(&expected),
                "{} at {:?}",
                path.display(),
                direct.cursor()
            );
            compared += 1;
        }
        assert_eq!(compared, COMPARED_ENTRIES.min(offsets.len()));
        eprintln!(
            "{}: {} entries, {compared} compared",
            path.display(),
            offsets.len()
        );
    }
}

#[test]
fn coredump_entries_with_compressed_fields_match() {
    let Some(path) = archived_files().into_iter().next() else {
        eprintln!("skipped: no archived journal files on this machine");
        return;
    };
    let file = JournalFile::open(&path).unwrap();
    let options = ExportOptions::default();
    let journal = Journal {
        files: vec![path.clone()],
        ..Journal::default()
    };
    // Other tests log forged entries with the coredump MESSAGE_ID and no
    // COREDUMP_PROC_MAPS; only systemd-coredump's own entries are compared.
    let written_by_coredump = |entry: &Entry| trust::check(entry) == Ok(Trust::Verified);
    let query = Query::matching(["MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1"]);
    let expected: Vec<_> = journal
        .collect(&query, options.clone())
        .unwrap()
        .into_iter()
        .filter(written_by_coredump)
        .collect();
    if expected.is_empty() {
        eprintln!("skipped: {} has no coredump entries", path.display());
        return;
    }
    let direct: Vec<_> = file
        .entries(&options)
        .map(Result::unwrap)
        .filter(|entry| entry.text("MESSAGE_ID") == Some("fc2e22bc6ee647b6b90729ab34a250b1"))
        .filter(written_by_coredump)
        .collect();
    assert_eq!(direct.len(), expected.len());
    for (direct, expected) in direct.iter().zip(&expected) {
        assert_eq!(direct.cursor(), expected.cursor());
        // COREDUMP_PROC_MAPS and the like are kilobytes long, so journald
        // stored them compressed.
        let maps = direct
            .bytes("COREDUMP_PROC_MAPS")
            .expect("COREDUMP_PROC_MAPS");
        assert!(maps.len() > 512);
        assert_eq!(Some(maps), expected.bytes("COREDUMP_PROC_MAPS"));
        assert_eq!(direct.fields.len(), expected.fields.len());
        for (a, b) in direct.fields.iter().zip(&expected.fields) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.value.data(), b.value.data(), "{}", a.name);
        }
    }
    eprintln!(
        "{}: {} coredump entries compared",
        path.display(),
        direct.len()
    );
}

#[test]
fn hash_table_lookup_equals_a_scan() {
    let files = archived_files();
    let Some(path) = files.first() else {
        eprintln!("skipped: no archived journal files on this machine");
        return;
    };
    let file = JournalFile::open(path).unwrap();
    let options = ExportOptions::default();
    // The entries of the file's first process and of its coredump entries,
    // found by a walk over every entry.
    let first = file
        .entries(&options)
        .next()
        .expect("the file has entries")
        .unwrap();
    let pid = first
        .text("_PID")
        .expect("the first entry has a _PID")
        .to_owned();

    let mut by_pid = Vec::new();
    let mut coredumps = Vec::new();
    for offset in file.entry_offsets() {
        let offset = offset.unwrap();
        let entry = file.read_entry_fields(offset, &options, &|_| true).unwrap();
        if entry.text("_PID") == Some(pid.as_str()) {
            by_pid.push(offset);
        }
        if entry.text("MESSAGE_ID") == Some("fc2e22bc6ee647b6b90729ab34a250b1") {
            coredumps.push(offset);
        }
    }

    for (payload, expected) in [
        (format!("_PID={pid}"), by_pid),
        (
            "MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1".to_owned(),
            coredumps,
        ),
    ] {
        let Some(found) = file.entries_with(payload.as_bytes()).unwrap() else {
            eprintln!("skipped: {} has no keyed hash table", path.display());
            return;
        };
        assert_eq!(found, expected, "{payload}");
    }
    let none = file.entries_with(b"_PID=not-a-pid").unwrap();
    assert_eq!(none, Some(Vec::new()));
}
