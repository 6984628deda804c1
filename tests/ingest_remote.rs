//! Crashes in a journal copied from another host. The journal file is
//! written by `systemd-journal-remote` from export records built here and
//! read back with `--file`. It has one core stored inside the journal
//! (`Storage=journal`), one core copied next to it (`--coredump-dir`), a
//! forged entry, and crash text lines that journald split at `LineMax` and
//! at a PID change.
//!
//! Needs `systemd-journal-remote` (Debian package systemd-journal-remote)
//! and a corpus crash for a real core and crash text; skipped with a
//! message otherwise, and failed when `CI=true`.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ingest::coredump::{CoreState, CoredumpStore};
use ingest::journal::export::ExportWriter;
use ingest::journal::Journal;
use ingest::select::{CoreFile, OpenOptions, Selector};
use serde_json::Value;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
const COREDUMP_MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";
const BOOT_ID: &str = "0123456789abcdef0123456789abcdef";
const MACHINE_ID: &str = "fedcba9876543210fedcba9876543210";
const STREAM_ID: &str = "11112222333344445555666677778888";
/// The crash time of the inline-core crash: 2023-11-14 22:13:20 UTC.
const CRASH_USEC: u64 = 1_700_000_000_000_000;
const INLINE_PID: u32 = 4242;
const STORED_PID: u32 = 4343;
const FORGED_PID: u32 = 4444;
const REUSED_PID: u32 = 4545;
const UNIT: &str = "remote-app.service";

fn skip(reason: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}");
    }
    eprintln!("skipped: {reason}");
    true
}

/// A journal copied from a host, and the files it was made from.
struct RemoteJournal {
    _dir: tempfile::TempDir,
    journal_file: PathBuf,
    core_dir: PathBuf,
    plain_core: Vec<u8>,
    text: String,
    binary: PathBuf,
}

/// Builds the export records of one host and turns them into a journal
/// file with systemd-journal-remote.
fn remote_journal() -> Option<RemoteJournal> {
    if !Path::new(JOURNAL_REMOTE).exists() {
        skip("systemd-journal-remote is not installed");
        return None;
    }
    let manifest = support::manifest()?;
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "closedchan")
        .expect("a closedchan crash")
        .clone();
    let plain_core = Command::new("zstd")
        .arg("-dc")
        .arg(&crash.core)
        .output()
        .unwrap()
        .stdout;
    assert!(plain_core.starts_with(b"\x7fELF"));
    let text = std::fs::read_to_string(&crash.stderr).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let core_dir = dir.path().join("cores");
    std::fs::create_dir(&core_dir).unwrap();
    let stored_name = format!(
        "core.closedchan.0.{BOOT_ID}.{STORED_PID}.{}.zst",
        CRASH_USEC + 60_000_000
    );
    std::fs::copy(&crash.core, core_dir.join(&stored_name)).unwrap();

    let mut writer = ExportWriter::new(Vec::new());
    let mut time = CRASH_USEC - 5_000_000;
    write_crash_text(&mut writer, &text, INLINE_PID, &mut time);
    write_coredump(
        &mut writer,
        INLINE_PID,
        CRASH_USEC,
        &crash.binary,
        Some(&plain_core),
        None,
        "/usr/lib/systemd/systemd-coredump",
    );
    let mut time = CRASH_USEC + 55_000_000;
    write_crash_text(&mut writer, &text, STORED_PID, &mut time);
    let stored_path = format!("/var/lib/systemd/coredump/{stored_name}");
    write_coredump(
        &mut writer,
        STORED_PID,
        CRASH_USEC + 60_000_000,
        &crash.binary,
        None,
        Some(&stored_path),
        "/usr/lib/systemd/systemd-coredump",
    );
    // systemd-coredump's entry, with a PID no record can be made of.
    write_coredump(
        &mut writer,
        "12x",
        CRASH_USEC + 90_000_000,
        &crash.binary,
        None,
        Some(&stored_path),
        "/usr/lib/systemd/systemd-coredump",
    );
    write_coredump(
        &mut writer,
        FORGED_PID,
        CRASH_USEC + 120_000_000,
        &crash.binary,
        None,
        Some(&stored_path),
        "/home/user/systemd-coredump",
    );
    let export = writer.into_inner();

    let journal_file = dir.path().join("remote.journal");
    write_journal_file(&export, &journal_file);

    Some(RemoteJournal {
        _dir: dir,
        journal_file,
        core_dir,
        plain_core,
        text,
        binary: crash.binary.clone(),
    })
}

/// Turns export records into a journal file with systemd-journal-remote.
fn write_journal_file(export: &[u8], journal_file: &Path) {
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", journal_file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-journal-remote runs");
    child.stdin.take().unwrap().write_all(export).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(journal_file.exists());
}

fn header(writer: &mut ExportWriter<Vec<u8>>, time: u64) {
    writer
        .field("__REALTIME_TIMESTAMP", time.to_string().as_bytes())
        .unwrap()
        .field(
            "__MONOTONIC_TIMESTAMP",
            (time - 1_600_000_000_000_000).to_string().as_bytes(),
        )
        .unwrap()
        .field("_BOOT_ID", BOOT_ID.as_bytes())
        .unwrap()
        .field("_MACHINE_ID", MACHINE_ID.as_bytes())
        .unwrap()
        .field("_HOSTNAME", b"origin")
        .unwrap();
}

/// Writes the crash text as journald stores a service's stream: one entry
/// per non-empty line. The 10th line is split at LineMax. The first frame
/// line from the 20th on is split at a PID change, its first piece without
/// credentials.
fn write_crash_text(writer: &mut ExportWriter<Vec<u8>>, text: &str, pid: u32, time: &mut u64) {
    let stream = format!("{STREAM_ID}{pid:04}");
    let stream = &stream[stream.len() - 32..];
    let pid_change_line = text
        .lines()
        .enumerate()
        .position(|(index, line)| index >= 19 && line.starts_with('\t'))
        .expect("a frame line after the 20th line");
    for (index, line) in text.lines().enumerate() {
        let pieces: Vec<(&str, Option<&str>)> = if index == 9 && line.len() > 4 {
            vec![(&line[..4], Some("line-max")), (&line[4..], None)]
        } else if index == pid_change_line {
            vec![("\t", Some("pid-change")), (&line[1..], None)]
        } else {
            vec![(line, None)]
        };
        for (piece, line_break) in pieces {
            *time += 10;
            header(writer, *time);
            writer
                .field("_TRANSPORT", b"stdout")
                .unwrap()
                .field("_STREAM_ID", stream.as_bytes())
                .unwrap()
                .field("SYSLOG_IDENTIFIER", b"closedchan")
                .unwrap()
                .field("PRIORITY", b"6")
                .unwrap()
                .field("MESSAGE", piece.as_bytes())
                .unwrap();
            if line_break != Some("pid-change") {
                writer
                    .field("_PID", pid.to_string().as_bytes())
                    .unwrap()
                    .field("_SYSTEMD_UNIT", UNIT.as_bytes())
                    .unwrap();
            }
            if let Some(reason) = line_break {
                writer.field("_LINE_BREAK", reason.as_bytes()).unwrap();
            }
            writer.end_entry().unwrap();
        }
    }
}

fn write_coredump(
    writer: &mut ExportWriter<Vec<u8>>,
    pid: impl std::fmt::Display,
    crash_usec: u64,
    binary: &Path,
    inline_core: Option<&[u8]>,
    filename: Option<&str>,
    handler: &str,
) {
    header(writer, crash_usec + 1_500_000);
    let fields: Vec<(&str, String)> = vec![
        ("MESSAGE_ID", COREDUMP_MESSAGE_ID.into()),
        ("PRIORITY", "2".into()),
        ("SYSLOG_IDENTIFIER", "systemd-coredump".into()),
        ("_TRANSPORT", "journal".into()),
        ("_UID", "995".into()),
        ("_PID", "77".into()),
        ("_EXE", handler.into()),
        ("COREDUMP_PID", pid.to_string()),
        ("COREDUMP_UID", "0".into()),
        ("COREDUMP_GID", "0".into()),
        ("COREDUMP_SIGNAL", "6".into()),
        ("COREDUMP_SIGNAL_NAME", "SIGABRT".into()),
        ("COREDUMP_TIMESTAMP", crash_usec.to_string()),
        ("COREDUMP_COMM", "closedchan".into()),
        ("COREDUMP_EXE", binary.display().to_string()),
        ("COREDUMP_UNIT", UNIT.into()),
        ("COREDUMP_OPEN_FDS", "0:/dev/null\npos:\t0\n1:socket:[99]\n2:socket:[99]\n".into()),
        ("MESSAGE", format!("Process {pid} (closedchan) of user 0 dumped core.\n\nStack trace of thread {pid}:\n#0  0x0 n/a")),
    ];
    for (name, value) in &fields {
        writer.field(name, value.as_bytes()).unwrap();
    }
    if let Some(core) = inline_core {
        writer.binary_field("COREDUMP", core).unwrap();
    }
    if let Some(path) = filename {
        writer.field("COREDUMP_FILENAME", path.as_bytes()).unwrap();
    }
    writer.end_entry().unwrap();
}

fn selector(remote: &RemoteJournal) -> Selector {
    Selector {
        journal: Journal {
            files: vec![remote.journal_file.clone()],
            ..Journal::default()
        },
        store: CoredumpStore::remapped(&remote.core_dir),
        ..Selector::default()
    }
}

#[test]
fn records_of_a_copied_journal() {
    let Some(remote) = remote_journal() else {
        return;
    };
    let selector = selector(&remote);
    let selection = selector.records(&[]).unwrap();
    let pids: Vec<u32> = selection.records.iter().map(|r| r.pid).collect();
    assert_eq!(pids, [INLINE_PID, STORED_PID]);
    assert_eq!(selection.untrusted, 1, "the forged entry is left out");
    assert_eq!(
        selection.malformed, 1,
        "the entry with a bad PID is left out"
    );

    let inline = &selection.records[0];
    assert_eq!(inline.inline_core_len, Some(remote.plain_core.len() as u64));
    assert_eq!(
        selector.store.state(inline),
        CoreState::Journal {
            len: remote.plain_core.len() as u64
        }
    );
    let stored = &selection.records[1];
    let CoreState::Present { path, .. } = selector.store.state(stored) else {
        panic!(
            "the copied core is not found: {:?}",
            selector.store.state(stored)
        );
    };
    assert!(path.starts_with(&remote.core_dir));
}

#[test]
fn inline_core_and_split_lines_are_rebuilt() {
    let Some(remote) = remote_journal() else {
        return;
    };
    let selector = selector(&remote);
    let source = selector
        .open(Some(&INLINE_PID.to_string()), &OpenOptions::default())
        .unwrap();
    let CoreFile::Inline(spilled) = &source.core else {
        panic!("expected the inline core, got {:?}", source.core);
    };
    assert_eq!(std::fs::read(spilled.path()).unwrap(), remote.plain_core);
    assert_eq!(source.executable(), Some(remote.binary.as_path()));

    let text = source.text.as_ref().expect("the crash text");
    assert_eq!(text.to_string_lossy(), remote.text);
    assert_eq!(text.loss.breaks.line_max_joins, 1);
    assert_eq!(text.loss.breaks.pid_change_joins, 1);
    assert_eq!(
        text.headline().as_deref(),
        Some("panic: send on closed channel")
    );
    assert!(!text.loss.is_lossy(), "{:?}", text.loss);

    let path = spilled.path().to_path_buf();
    drop(source);
    assert!(
        !path.exists(),
        "the temporary core outlived the crash source"
    );
}

#[test]
fn cli_reads_the_copied_journal() {
    let Some(remote) = remote_journal() else {
        return;
    };
    let file = remote.journal_file.to_str().unwrap();
    let core_dir = remote.core_dir.to_str().unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(GOCRASH).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };

    let list = Command::new(GOCRASH)
        .args(["list", "--json", "--file", file, "--coredump-dir", core_dir])
        .output()
        .unwrap();
    let messages = String::from_utf8_lossy(&list.stderr);
    assert!(list.status.success(), "{messages}");
    // The two entries left out are counted on stderr, each kind on its own.
    assert!(
        messages.contains(
            "left out 1 journal entry: written by systemd-coredump without a valid COREDUMP_PID"
        ),
        "{messages}"
    );
    assert!(
        messages.contains("left out 1 journal entry with the coredump message ID that systemd-coredump did not write"),
        "{messages}"
    );
    let rows: Vec<Value> = serde_json::from_slice(&list.stdout).unwrap();
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["journal", "present"]);
    for row in &rows {
        assert_eq!(row["headline"], "panic: send on closed channel");
        assert_eq!(row["unit"], UNIT);
    }

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("inline.core");
    run(&[
        "dump",
        "--file",
        file,
        &INLINE_PID.to_string(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&out).unwrap() == remote.plain_core,
        "inline core differs"
    );
    let out = dir.path().join("stored.core");
    run(&[
        "dump",
        "--file",
        file,
        "--coredump-dir",
        core_dir,
        &STORED_PID.to_string(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&out).unwrap() == remote.plain_core,
        "copied core differs"
    );

    let document: Value = serde_json::from_slice(&run(&[
        "info",
        "--json",
        "--file",
        file,
        &INLINE_PID.to_string(),
    ]))
    .unwrap();
    assert_eq!(document["core"]["state"], "journal");
    assert_eq!(document["record"]["boot_id"], BOOT_ID);
    assert_eq!(document["build_id_check"]["result"], "matched");
    assert_eq!(document["text"]["loss"]["pid_change_joins"], 1);

    // Without --coredump-dir the copied core is looked for where the
    // origin host kept it.
    let output = Command::new(GOCRASH)
        .args([
            "dump",
            "--file",
            file,
            &STORED_PID.to_string(),
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "the core /var/lib/systemd/coredump/core.closedchan.0.{BOOT_ID}.{STORED_PID}."
        )),
        "{stderr}"
    );
    assert!(stderr.contains(".zst is missing"), "{stderr}");

    let output = Command::new(GOCRASH)
        .args(["info", "--file", file, &FORGED_PID.to_string()])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(3),
        "the forged entry must not be selectable"
    );
}

/// A PID names the newest crash with it, and since PIDs are reused, an older
/// crash with the same PID is named in a warning.
#[test]
fn reused_pid_takes_the_newest_and_warns() {
    if !Path::new(JOURNAL_REMOTE).exists() {
        skip("systemd-journal-remote is not installed");
        return;
    }
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "closedchan")
        .expect("a closedchan crash");
    let dir = tempfile::tempdir().unwrap();
    let core_dir = dir.path().join("cores");
    std::fs::create_dir(&core_dir).unwrap();
    let times = [CRASH_USEC, CRASH_USEC + 3_600_000_000];
    let mut writer = ExportWriter::new(Vec::new());
    let mut names = Vec::new();
    for time in times {
        let name = format!("core.closedchan.0.{BOOT_ID}.{REUSED_PID}.{time}.zst");
        std::fs::copy(&crash.core, core_dir.join(&name)).unwrap();
        let stored_path = format!("/var/lib/systemd/coredump/{name}");
        write_coredump(
            &mut writer,
            REUSED_PID,
            time,
            &crash.binary,
            None,
            Some(&stored_path),
            "/usr/lib/systemd/systemd-coredump",
        );
        names.push(name);
    }
    let journal_file = dir.path().join("reused.journal");
    write_journal_file(&writer.into_inner(), &journal_file);

    let output = Command::new(GOCRASH)
        .args(["info", "--json", "--file"])
        .arg(&journal_file)
        .arg("--coredump-dir")
        .arg(&core_dir)
        .arg(REUSED_PID.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let path = document["core"]["path"].as_str().unwrap();
    assert!(path.ends_with(&names[1]), "{path}");
    assert!(
        stderr.contains(&format!(
            "more than one crash has PID {REUSED_PID}, as PIDs are reused"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("Tue 2023-11-14 23:13:20 UTC), not the older one ("),
        "{stderr}"
    );
    assert!(stderr.contains("Tue 2023-11-14 22:13:20 UTC)"), "{stderr}");
}

/// Without its binary, a crash whose output went to the journal points to
/// `report`, which reads the crash text, naming the crash by its core file.
#[test]
fn missing_binary_points_to_the_crash_text() {
    let Some(remote) = remote_journal() else {
        return;
    };
    let output = Command::new(GOCRASH)
        .args(["symbolize", "--file"])
        .arg(&remote.journal_file)
        .arg("--coredump-dir")
        .arg(&remote.core_dir)
        .args([
            &STORED_PID.to_string(),
            "--binary",
            "/nonexistent/closedchan",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("gocrash: cannot open the binary ("),
        "{stderr}"
    );
    let hint = format!(
        "; the crash text the runtime printed may still be in the journal: gocrash report {}/core.closedchan.",
        remote.core_dir.display()
    );
    assert!(stderr.contains(&hint), "{stderr}");
    assert!(stderr.ends_with(".zst shows its goroutines\n"), "{stderr}");

    // A core stored inside the journal entry has no file: the PID names it.
    let output = Command::new(GOCRASH)
        .args(["symbolize", "--file"])
        .arg(&remote.journal_file)
        .args([
            &INLINE_PID.to_string(),
            "--binary",
            "/nonexistent/closedchan",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.ends_with(&format!(
            "; the crash text the runtime printed may still be in the journal: gocrash report {INLINE_PID} shows its goroutines\n"
        )),
        "{stderr}"
    );
}
