//! Crash text and journal fields written to harm the reader: terminal
//! escape sequences, a very long headline, a very long line, and a dump
//! longer than the reader keeps. Each journal is written by
//! `systemd-journal-remote` from export records built here, with no core,
//! and read back with `gocrash list`, `info` and `report --file`.
//!
//! Needs `systemd-journal-remote` (Debian package systemd-journal-remote);
//! skipped with a message otherwise, and failed when `CI=true`. The
//! symbolize test also needs a corpus crash from the manifest.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ingest::journal::export::ExportWriter;
use serde_json::Value;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
const COREDUMP_MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";
const BOOT_ID: &str = "0123456789abcdef0123456789abcdef";
const MACHINE_ID: &str = "fedcba9876543210fedcba9876543210";
const STREAM_ID: &str = "99998888777766665555444433332222";
/// The crash time: 2023-11-14 22:13:20 UTC.
const CRASH_USEC: u64 = 1_700_000_000_000_000;
const PID: u32 = 5151;
const UNIT: &str = "hostile.service";
const ESC: u8 = 0x1b;

/// An OSC title change, a screen clear, a colour, a carriage return that
/// would overwrite the line, and a C1 CSI (U+009B).
const HOSTILE_PANIC: &str =
    "panic: \x1b]0;PWNED\x07\x1b[2J\x1b[31mred\x1b[0m \r\x1b[Kfake \u{9b}1m";

fn skip(reason: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}");
    }
    eprintln!("skipped: {reason}");
    true
}

/// The journal fields of the crash's coredump entry that a test changes.
struct Fields {
    comm: Vec<u8>,
    exe: Vec<u8>,
    cmdline: Vec<u8>,
    /// A core stored inside the entry (`COREDUMP`), as `Storage=journal`
    /// stores it.
    inline_core: Option<Vec<u8>>,
    /// `COREDUMP_FILENAME`: a core in systemd-coredump's store.
    filename: Option<String>,
}

impl Default for Fields {
    fn default() -> Fields {
        Fields {
            comm: b"hostile".to_vec(),
            exe: b"/srv/hostile/app".to_vec(),
            cmdline: b"/srv/hostile/app --serve".to_vec(),
            inline_core: None,
            filename: None,
        }
    }
}

/// A journal file written for one test, removed with its directory.
struct TestJournal {
    _dir: tempfile::TempDir,
    file: PathBuf,
}

/// Writes `lines` as a service's output, one entry per line as journald
/// stores it, then systemd-coredump's entry, and turns the records into a
/// journal file. Returns `None` when systemd-journal-remote is missing.
fn journal(lines: &[Vec<u8>], fields: &Fields) -> Option<TestJournal> {
    if !Path::new(JOURNAL_REMOTE).exists() {
        skip("systemd-journal-remote is not installed");
        return None;
    }
    let mut writer = ExportWriter::new(Vec::new());
    let mut time = CRASH_USEC - 5_000_000;
    for line in lines {
        time += 1;
        header(&mut writer, time);
        writer
            .field("_TRANSPORT", b"stdout")
            .unwrap()
            .field("_STREAM_ID", STREAM_ID.as_bytes())
            .unwrap()
            .field("SYSLOG_IDENTIFIER", b"hostile")
            .unwrap()
            .field("PRIORITY", b"6")
            .unwrap()
            .field("MESSAGE", line)
            .unwrap()
            .field("_PID", PID.to_string().as_bytes())
            .unwrap()
            .field("_SYSTEMD_UNIT", UNIT.as_bytes())
            .unwrap()
            .end_entry()
            .unwrap();
    }
    header(&mut writer, CRASH_USEC + 1_500_000);
    let coredump: Vec<(&str, Vec<u8>)> = vec![
        ("MESSAGE_ID", COREDUMP_MESSAGE_ID.into()),
        ("PRIORITY", "2".into()),
        ("SYSLOG_IDENTIFIER", "systemd-coredump".into()),
        ("_TRANSPORT", "journal".into()),
        ("_UID", "995".into()),
        ("_PID", "77".into()),
        ("_EXE", "/usr/lib/systemd/systemd-coredump".into()),
        ("COREDUMP_PID", PID.to_string().into()),
        ("COREDUMP_UID", "0".into()),
        ("COREDUMP_GID", "0".into()),
        ("COREDUMP_SIGNAL", "6".into()),
        ("COREDUMP_SIGNAL_NAME", "SIGABRT".into()),
        ("COREDUMP_TIMESTAMP", CRASH_USEC.to_string().into()),
        ("COREDUMP_COMM", fields.comm.clone()),
        ("COREDUMP_EXE", fields.exe.clone()),
        ("COREDUMP_CMDLINE", fields.cmdline.clone()),
        ("COREDUMP_UNIT", UNIT.into()),
        (
            "COREDUMP_OPEN_FDS",
            "0:/dev/null\n1:socket:[99]\n2:socket:[99]\n".into(),
        ),
        (
            "MESSAGE",
            format!("Process {PID} (hostile) of user 0 dumped core.").into(),
        ),
    ];
    for (name, value) in &coredump {
        writer.field(name, value).unwrap();
    }
    if let Some(core) = &fields.inline_core {
        writer.binary_field("COREDUMP", core).unwrap();
    }
    if let Some(filename) = &fields.filename {
        writer
            .field("COREDUMP_FILENAME", filename.as_bytes())
            .unwrap();
    }
    writer.end_entry().unwrap();
    let export = writer.into_inner();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.journal");
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-journal-remote runs");
    child.stdin.take().unwrap().write_all(&export).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(TestJournal { _dir: dir, file })
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

/// Builds a short crash text whose first line is `first`.
fn crash_text(first: &[u8]) -> Vec<Vec<u8>> {
    vec![
        first.to_vec(),
        b"goroutine 1 [running]:".to_vec(),
        b"main.main()".to_vec(),
        b"\t/src/main.go:9 +0x1d".to_vec(),
        b"exit status 2".to_vec(),
    ]
}

fn run(journal: &TestJournal, args: &[&str]) -> Output {
    Command::new(GOCRASH)
        .args(args)
        .arg("--file")
        .arg(&journal.file)
        .output()
        .unwrap()
}

fn gocrash(journal: &TestJournal, args: &[&str]) -> Output {
    let output = run(journal, args);
    assert!(
        output
            .status
            .code()
            .is_some_and(|code| code == 0 || code == 4),
        "gocrash {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn info_json(journal: &TestJournal) -> Value {
    serde_json::from_slice(&gocrash(journal, &["info", "--json"]).stdout).unwrap()
}

fn assert_no_escape(command: &str, output: &[u8]) {
    let text = String::from_utf8_lossy(output);
    assert!(!output.contains(&ESC), "{command} printed ESC raw:\n{text}");
    assert!(
        !output.contains(&b'\r'),
        "{command} printed CR raw:\n{text}"
    );
    assert!(
        !text.contains('\u{9b}'),
        "{command} printed a C1 control raw:\n{text}"
    );
}

#[test]
fn escapes_never_reach_the_terminal() {
    let fields = Fields {
        comm: b"host\x1b[8mile".to_vec(),
        exe: b"/srv/\x1b]0;EXE\x07app".to_vec(),
        cmdline: b"/srv/app --name=\x1b[2J".to_vec(),
        inline_core: None,
        filename: None,
    };
    let Some(journal) = journal(&crash_text(HOSTILE_PANIC.as_bytes()), &fields) else {
        return;
    };

    let list = gocrash(&journal, &["list"]);
    assert_no_escape("list", &list.stdout);
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(
        list.contains(
            "panic: \\x1b]0;PWNED\\x07\\x1b[2J\\x1b[31mred\\x1b[0m \\x0d\\x1b[Kfake \\u009b1m"
        ),
        "{list}"
    );
    assert!(list.contains("/srv/\\x1b]0;EXE\\x07app"), "{list}");

    let info = gocrash(&journal, &["info"]);
    assert_no_escape("info", &info.stdout);
    let info = String::from_utf8(info.stdout).unwrap();
    assert!(
        info.contains("Command Line: /srv/app --name=\\x1b[2J"),
        "{info}"
    );
    assert!(info.contains("(host\\x1b[8mile)"), "{info}");
    assert!(info.contains("Headline: panic: \\x1b]0;PWNED"), "{info}");

    // JSON keeps the text: serde escapes it.
    let document = info_json(&journal);
    assert_eq!(document["text"]["headline"], HOSTILE_PANIC);

    for format in ["text", "markdown"] {
        let report = gocrash(&journal, &["report", "--no-earlier", "--format", format]);
        assert_no_escape(&format!("report --format {format}"), &report.stdout);
        let report = String::from_utf8(report.stdout).unwrap();
        assert!(report.contains("\\x1b]0;PWNED"), "{report}");
    }
}

/// Returns the row of the journal's one crash in `gocrash list`.
fn list_row(journal: &TestJournal) -> String {
    let list = String::from_utf8(gocrash(journal, &["list"]).stdout).unwrap();
    list.lines().nth(1).expect("a crash row").to_owned()
}

/// Returns the `Headline:` line of `gocrash info`.
fn info_headline(journal: &TestJournal) -> String {
    let info = String::from_utf8(gocrash(journal, &["info"]).stdout).unwrap();
    info.lines()
        .find(|line| line.trim_start().starts_with("Headline:"))
        .expect("a headline line")
        .to_owned()
}

#[test]
fn long_headline_is_cut_with_its_length() {
    // The traceback parser keeps 64 KiB of a line: the first headline fits
    // in it, the second does not.
    for value_len in [3000, 100_000] {
        let mut first = b"panic: ".to_vec();
        first.extend(std::iter::repeat_n(b'x', value_len));
        let full_len = first.len();
        let Some(journal) = journal(&crash_text(&first), &Fields::default()) else {
            return;
        };
        let suffix = format!("… ({full_len} bytes)");

        let row = list_row(&journal);
        assert!(row.ends_with(&suffix), "{row}");
        assert!(row.len() < 800, "{} bytes: {row}", row.len());

        let headline = info_headline(&journal);
        assert!(headline.ends_with(&suffix), "{headline}");

        // JSON keeps the headline the parser kept, and its full length.
        let document = info_json(&journal);
        assert_eq!(document["text"]["headline_bytes"], full_len);
        let kept_len = document["text"]["headline"].as_str().map(str::len);
        if full_len <= 64 * 1024 {
            assert_eq!(kept_len, Some(full_len));
        } else {
            assert!(kept_len.is_some_and(|len| len < full_len), "{kept_len:?}");
        }
        let rows: Value =
            serde_json::from_slice(&gocrash(&journal, &["list", "--json"]).stdout).unwrap();
        assert_eq!(rows[0]["headline_bytes"], full_len);
    }
}

#[test]
fn long_line_counts_as_cut() {
    let mut frame = b"main.".to_vec();
    frame.extend(std::iter::repeat_n(b'A', 5 << 20));
    frame.extend(b"()");
    let lines = vec![
        b"panic: boom".to_vec(),
        b"goroutine 1 [running]:".to_vec(),
        frame,
        b"\t/src/main.go:9 +0x1d".to_vec(),
    ];
    let Some(journal) = journal(&lines, &Fields::default()) else {
        return;
    };

    let document = info_json(&journal);
    let loss = &document["text"]["loss"];
    assert_eq!(loss["long_lines_cut"], 1, "{loss}");
    assert_eq!(loss["parser_limits"]["long_lines"], 1, "{loss}");
    let info = String::from_utf8(gocrash(&journal, &["info"]).stdout).unwrap();
    assert!(info.contains("1 overlong lines cut"), "{info}");
    assert!(!info.contains("Text Loss: none found"), "{info}");
}

#[test]
fn goroutine_limit_is_named_in_the_loss() {
    let extra = 3;
    let goroutines = ingest::traceback::MAX_GOROUTINES + extra;
    let mut lines = vec![b"panic: boom".to_vec()];
    // Headers alone: the last kept one must not read as the end of a cut
    // dump, since the text goes on past it.
    lines.extend((1..=goroutines).map(|id| format!("goroutine {id} [running]:").into_bytes()));
    let Some(journal) = journal(&lines, &Fields::default()) else {
        return;
    };

    let document = info_json(&journal);
    let dump = &document["text"]["loss"]["dump"];
    assert_eq!(dump["state"], "reader_limit", "{dump}");
    assert_eq!(dump["goroutines_kept"], ingest::traceback::MAX_GOROUTINES);
    assert_eq!(dump["goroutines_not_kept"], extra);

    let info = String::from_utf8(gocrash(&journal, &["info"]).stdout).unwrap();
    let loss = info
        .lines()
        .find(|line| line.trim_start().starts_with("Text Loss:"))
        .expect("a loss line");
    assert!(
        loss.contains("the text was cut by the reader's limits: 3 goroutines past the first 100000 (limit 100000) not read"),
        "{loss}"
    );
    assert!(!loss.contains("stops after the header"), "{loss}");
}

#[test]
fn dump_without_core_says_none_was_stored() {
    let Some(journal) = journal(&crash_text(b"panic: boom"), &Fields::default()) else {
        return;
    };
    let output_dir = tempfile::tempdir().unwrap();
    let output_path = output_dir.path().join("core");
    let output = run(&journal, &["dump", "-o", output_path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no core to write for PID {PID}: no core was stored"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("the core is none"), "{stderr}");
}

#[test]
fn inline_core_is_named_by_its_entry() {
    let fields = Fields {
        inline_core: Some(b"this is not a core".to_vec()),
        ..Fields::default()
    };
    let Some(journal) = journal(&crash_text(b"panic: boom"), &fields) else {
        return;
    };
    let output = run(&journal, &["symbolize"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the core stored in the journal entry of PID {PID}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("gocrash-field"), "{stderr}");

    let output_dir = tempfile::tempdir().unwrap();
    let output_path = output_dir.path().join("core");
    let output = run(&journal, &["dump", "-o", output_path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "gocrash: cannot decompress the core stored in the journal entry of PID {PID}: "
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("gocrash-field"), "{stderr}");
}

#[test]
fn symbolize_prefers_the_journal_command_line() {
    let Some(manifest) = support::manifest() else {
        eprintln!("skipped: no corpus manifest");
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer" && c.mode == "default")
        .expect("a nilpointer crash");
    let cores = tempfile::tempdir().unwrap();
    let name = format!("core.hostile.0.{BOOT_ID}.{PID}.{CRASH_USEC}.zst");
    std::fs::copy(&crash.core, cores.path().join(&name)).unwrap();
    // Longer than the 80 bytes the kernel keeps in NT_PRPSINFO, with an
    // escape sequence that must not reach the terminal.
    let cmdline = format!(
        "{} --listen=:8080 --name=\x1b[2J {}",
        crash.binary.display(),
        "-v ".repeat(40)
    );
    let fields = Fields {
        exe: crash.binary.display().to_string().into_bytes(),
        cmdline: cmdline.clone().into_bytes(),
        filename: Some(format!("/var/lib/systemd/coredump/{name}")),
        ..Fields::default()
    };
    let Some(journal) = journal(&crash_text(b"panic: boom"), &fields) else {
        return;
    };

    let coredump_dir = cores.path().to_str().unwrap();
    let output = gocrash(&journal, &["symbolize", "--coredump-dir", coredump_dir]);
    assert_no_escape("symbolize", &output.stdout);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let shown = cmdline.replace('\x1b', "\\x1b");
    assert!(
        stdout.contains(&format!("\n  command line: {shown}\n")),
        "{stdout}"
    );
    assert!(!stdout.contains("cut at 80 bytes"), "{stdout}");

    // The summary of the other goroutines speaks of groups only when some
    // goroutines share a stack.
    let summary = stdout
        .lines()
        .find(|line| line.starts_with("Other goroutines: ") || line.contains(" other goroutine"))
        .expect("a summary of the other goroutines");
    if let Some(rest) = summary.strip_prefix("Other goroutines: ") {
        let numbers: Vec<&str> = rest.split(' ').collect();
        assert_ne!(numbers.first(), numbers.get(2), "{summary}");
    }
}
