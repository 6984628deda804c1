//! `gocrash list` and `info` read through journalctl and through gocrash's
//! own journal file reader (`--journal-reader direct`) over the same
//! journal files must print the same JSON.
//!
//! The files are two adjacent archived files of this machine's journal
//! that hold coredump entries, so that the direct reader also orders
//! entries across files. Skipped with a message when the machine has no such
//! files, and failed then when `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
const COREDUMP_MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";
/// Maximum coredump entries in the chosen files, to bound the test's time,
/// because every listed crash reads its crash text.
const MAX_CRASHES: usize = 100;

fn skip(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}");
    }
    eprintln!("skipped: {reason}");
}

/// Returns the archived journal files of this machine, by name, which
/// sorts them by sequence number within one sequence-number ID.
fn archived_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for root in ["/var/log/journal", "/run/log/journal"] {
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
    files.sort();
    files
}

fn coredump_entries(file: &Path) -> usize {
    let output = Command::new("journalctl")
        .arg(format!("--file={}", file.display()))
        .args(["--no-pager", "--output=cat", "--output-fields=COREDUMP_PID"])
        .arg(format!("MESSAGE_ID={COREDUMP_MESSAGE_ID}"))
        .output()
        .expect("journalctl runs");
    String::from_utf8_lossy(&output.stdout).lines().count()
}

/// Picks the two adjacent files with the most coredump entries, up to
/// [`MAX_CRASHES`].
fn chosen_files() -> Option<[PathBuf; 2]> {
    let files = archived_files();
    let counts: Vec<usize> = files.iter().map(|file| coredump_entries(file)).collect();
    let best = (1..files.len())
        .map(|i| (i, counts[i - 1] + counts[i]))
        .filter(|&(_, count)| count > 0 && count <= MAX_CRASHES)
        .max_by_key(|&(_, count)| count)?;
    eprintln!(
        "{} and {}: {} coredump entries",
        files[best.0 - 1].display(),
        files[best.0].display(),
        best.1
    );
    Some([files[best.0 - 1].clone(), files[best.0].clone()])
}

fn gocrash(args: &[String]) -> Output {
    Command::new(GOCRASH)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("gocrash runs")
}

/// Runs a command with both readers and returns both outputs as JSON.
fn both_readers(args: &[String]) -> (Value, Value) {
    let through_journalctl = gocrash(args);
    let mut direct_args = args.to_vec();
    direct_args.extend(["--journal-reader".to_string(), "direct".to_string()]);
    let direct = gocrash(&direct_args);
    for (name, output) in [("journalctl", &through_journalctl), ("direct", &direct)] {
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?} through {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    (
        serde_json::from_slice(&through_journalctl.stdout).expect("JSON"),
        serde_json::from_slice(&direct.stdout).expect("JSON"),
    )
}

#[test]
fn direct_reader_lists_as_journalctl() {
    let Some(files) = chosen_files() else {
        skip("no adjacent archived journal files with coredump entries");
        return;
    };
    let file_args: Vec<String> = files
        .iter()
        .flat_map(|file| ["--file".to_string(), file.display().to_string()])
        .collect();

    let mut args = vec!["list".to_string(), "--json".to_string()];
    args.extend(file_args.iter().cloned());
    let (expected, direct) = both_readers(&args);
    let rows = expected.as_array().expect("an array");
    assert!(!rows.is_empty());
    assert!(
        rows.iter().any(|row| row["headline_source"] == "text"),
        "no listed crash has its crash text in the files"
    );
    assert_eq!(direct, expected);

    // One crash by PID, with its crash text and core.
    let pid = rows
        .iter()
        .rev()
        .find(|row| row["headline_source"] == "text")
        .map(|row| row["pid"].to_string())
        .expect("a crash with text");
    let mut args = vec!["info".to_string(), "--json".to_string(), pid];
    args.extend(file_args.iter().cloned());
    let (expected, direct) = both_readers(&args);
    assert!(expected["text"]["lines"].as_u64().unwrap() > 0);
    assert_eq!(direct, expected);
}

#[test]
fn direct_reader_rejects_relative_times() {
    let output = gocrash(&[
        "list".to_string(),
        "--journal-reader".to_string(),
        "direct".to_string(),
        "--since".to_string(),
        "-1h".to_string(),
    ]);
    // A time the reader cannot take is an invalid command line.
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("the direct journal reader takes --since only as @SECONDS"),
        "{message}"
    );
}
