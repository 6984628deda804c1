//! Reads the corpus crashes back from this machine's journal: each
//! coredump record by its cursor, and each crash text, which must equal the
//! text the harness stored.
//!
//! Needs the corpus manifest (`corpus/harness.py`) and the journal it was
//! captured into; skipped with a message otherwise.

use std::path::PathBuf;

use ingest::coredump::{CoreState, CoredumpStore, Trust};
use ingest::crashtext::{self, DumpEnd, TextOptions};
use ingest::select::{CrashArg, Selector};
use ingest::signature::{self, CrashInput};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Manifest {
    crashes: Vec<Crash>,
}

#[derive(Debug, Deserialize)]
struct Crash {
    program: String,
    toolchain: String,
    mode: String,
    binary: PathBuf,
    pid: u32,
    unit: String,
    core: PathBuf,
    cursor: String,
    stderr: PathBuf,
}

fn manifest() -> Option<Manifest> {
    let path = std::env::var_os("GOCRASH_CORPUS_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/gocrash/corpus/manifest.json"));
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(serde_json::from_str(&text).expect("valid manifest")),
        Err(error) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("no corpus manifest at {}: {error}", path.display());
            }
            eprintln!(
                "skipped: no corpus manifest at {} ({error})",
                path.display()
            );
            None
        }
    }
}

fn label(crash: &Crash) -> String {
    format!(
        "{} (Go {}, {}, PID {})",
        crash.program, crash.toolchain, crash.mode, crash.pid
    )
}

#[test]
fn records_match_the_manifest() {
    let Some(manifest) = manifest() else { return };
    let selector = Selector::default();
    let store = CoredumpStore::default();
    for crash in &manifest.crashes {
        let label = label(crash);
        let record = selector
            .record_at(&crash.cursor)
            .unwrap_or_else(|error| panic!("{label}: {error}"));
        assert_eq!(record.pid, crash.pid, "{label}");
        assert_eq!(record.unit.as_deref(), Some(crash.unit.as_str()), "{label}");
        assert_eq!(record.exe.as_ref(), Some(&crash.binary), "{label}");
        assert_eq!(record.filename.as_ref(), Some(&crash.core), "{label}");
        assert_eq!(record.signal_label(), "SIGABRT", "{label}");
        assert_eq!(record.uid, Some(0), "{label}");
        assert!(record.problems.is_empty(), "{label}: {:?}", record.problems);
        assert!(
            matches!(record.trust, Trust::Verified | Trust::UidOnly),
            "{label}"
        );
        let size = std::fs::metadata(&crash.core).unwrap().len();
        assert_eq!(
            store.state(&record),
            CoreState::Present {
                path: crash.core.clone(),
                size
            },
            "{label}"
        );
    }
}

/// Crash texts read at once: each read waits mostly on journalctl.
const TEXT_WORKERS: usize = 4;

/// How a rebuilt crash text compares with the recorded one.
enum Comparison {
    Equal,
    /// Equal except around lines journald split at a PID change, where the
    /// recorded text misses the pieces stored without a PID.
    Joined,
    Different(String),
}

fn compare_text(crash: &Crash, selector: &Selector) -> Comparison {
    let label = label(crash);
    let record = selector.record_at(&crash.cursor).unwrap();
    let text = crashtext::read(&selector.journal, &record, &TextOptions::default())
        .unwrap_or_else(|error| panic!("{label}: {error}"))
        .unwrap_or_else(|| panic!("{label}: no crash text in the journal"));
    let recorded = std::fs::read_to_string(&crash.stderr).unwrap();
    let rebuilt = text.to_string_lossy();
    let breaks = &text.loss.breaks;

    // The read that stops after the first goroutine gives the signature
    // of the whole text.
    let partial = crashtext::read(&selector.journal, &record, &TextOptions::signature_only())
        .unwrap_or_else(|error| panic!("{label}: {error}"))
        .unwrap_or_else(|| panic!("{label}: no crash text in the partial read"));
    assert_eq!(
        signature::compute(&CrashInput::from_traceback(&partial.traceback)),
        signature::compute(&CrashInput::from_traceback(&text.traceback)),
        "{label}: the partial read gives another signature"
    );
    assert!(partial.line_count() <= text.line_count(), "{label}");

    assert!(text.report_start.is_some(), "{label}: no report found");
    assert_eq!(text.loss.suppressed, None, "{label}");
    assert!(!breaks.ended_mid_line, "{label}");
    assert_eq!(text.loss.dump, Some(DumpEnd::Complete), "{label}");
    assert!(text.headline().is_some(), "{label}: no headline");

    if rebuilt == recorded {
        return Comparison::Equal;
    }
    // The recorded text was read by `_PID` alone, so it misses the pieces
    // journald stored without a PID and keeps the rest of a split line as a
    // line of its own. Every recorded line must then appear, in order, in
    // the rebuilt text with its line ends removed.
    let flat: String = rebuilt.lines().collect();
    let mut position = 0;
    let in_order = recorded
        .lines()
        .all(|line| match flat[position..].find(line) {
            Some(found) => {
                position += found + line.len();
                true
            }
            None => false,
        });
    if breaks.pid_change_joins > 0 && in_order {
        Comparison::Joined
    } else {
        Comparison::Different(format!(
            "{label}: {} lines rebuilt, {} recorded, {} pieces joined at a PID change",
            text.line_count(),
            recorded.lines().count(),
            breaks.pid_change_joins
        ))
    }
}

#[test]
fn crash_texts_equal_the_recorded_ones() {
    let Some(manifest) = manifest() else { return };
    let selector = Selector::default();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..TEXT_WORKERS {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(crash) = manifest.crashes.get(index) else {
                    break;
                };
                let outcome = compare_text(crash, &selector);
                outcomes.lock().unwrap().push(outcome);
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap();
    let equal = outcomes
        .iter()
        .filter(|o| matches!(o, Comparison::Equal))
        .count();
    let joined = outcomes
        .iter()
        .filter(|o| matches!(o, Comparison::Joined))
        .count();
    let failures: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| match o {
            Comparison::Different(message) => Some(message.as_str()),
            _ => None,
        })
        .collect();
    eprintln!(
        "{equal} crash texts equal, {joined} differ only by joined pieces, {} differ",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(outcomes.len(), manifest.crashes.len());
}

#[test]
fn selection_by_pid_comm_and_exe() {
    let Some(manifest) = manifest() else { return };
    let selector = Selector::default();
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer")
        .expect("a nilpointer crash");
    let by_pid = selector.newest(&[CrashArg::Pid(crash.pid.into())]).unwrap();
    assert_eq!(by_pid.pid, crash.pid);

    let by_comm = selector
        .records(&[CrashArg::Comm("nilpointer".into())])
        .unwrap();
    assert!(by_comm.records.iter().any(|r| r.cursor == crash.cursor));
    assert!(by_comm
        .records
        .iter()
        .all(|r| r.comm.as_deref() == Some("nilpointer")));
    let times: Vec<u64> = by_comm.records.iter().map(|r| r.entry_time_usec).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not oldest first");

    let by_exe = selector
        .records(&[CrashArg::Exe(crash.binary.clone())])
        .unwrap();
    assert!(by_exe.records.iter().any(|r| r.cursor == crash.cursor));
    assert!(by_exe
        .records
        .iter()
        .all(|r| r.exe.as_ref() == Some(&crash.binary)));

    let none = selector.newest(&[CrashArg::Comm("no-such-program-xyz".into())]);
    assert!(none.unwrap_err().is_no_match());
}

/// Decodes a journalctl JSON value: a string, an array of byte values, or
/// an array of either for a repeated field.
fn json_values(value: &serde_json::Value) -> Vec<Vec<u8>> {
    match value {
        serde_json::Value::String(text) => vec![text.as_bytes().to_vec()],
        serde_json::Value::Array(items) if items.iter().all(|i| i.is_u64()) => {
            vec![items.iter().map(|i| i.as_u64().unwrap() as u8).collect()]
        }
        serde_json::Value::Array(items) => items.iter().flat_map(json_values).collect(),
        other => panic!("unexpected JSON value {other}"),
    }
}

#[test]
fn export_parse_equals_journalctl_json() {
    let Some(_manifest) = manifest() else { return };
    // Only entries systemd-coredump wrote: other tests log forged
    // coredump entries, without COREDUMP_PROC_MAPS, into the same journal.
    let matches = [
        "MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1".to_string(),
        "_COMM=systemd-coredum".to_string(),
    ];
    let query = ingest::journal::Query {
        lines: Some(5),
        ..ingest::journal::Query::matching(matches.clone())
    };
    let entries = ingest::journal::Journal::default()
        .collect(&query, ingest::journal::ExportOptions::default())
        .unwrap();
    assert_eq!(entries.len(), 5);

    let output = std::process::Command::new("journalctl")
        .args(["--no-pager", "--output=json", "--all", "--lines=5"])
        .args(&matches)
        .output()
        .unwrap();
    let json: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(json.len(), entries.len());

    let mut binary_framed = 0;
    for (entry, json) in entries.iter().zip(&json) {
        assert_eq!(entry.cursor(), json["__CURSOR"].as_str());
        for (name, value) in json.as_object().unwrap() {
            // A core stored in the journal (Storage=journal, as a test of
            // the suite sets up) is spilled to a temporary file instead of
            // kept in memory; the inline-core tests read it back.
            if name == "COREDUMP" {
                continue;
            }
            let expected = json_values(value);
            let read: Vec<&[u8]> = entry.values(name).filter_map(|v| v.data()).collect();
            assert_eq!(read.len(), expected.len(), "{name}");
            for (got, want) in read.iter().zip(&expected) {
                assert_eq!(got, want, "{name}");
            }
        }
        let maps = entry
            .bytes("COREDUMP_PROC_MAPS")
            .expect("COREDUMP_PROC_MAPS");
        if maps.contains(&b'\n') {
            binary_framed += 1;
        }
    }
    assert_eq!(
        binary_framed,
        entries.len(),
        "multi-line fields come in the binary form"
    );
}
