//! The `gocrash symbolize` command line: its help text (snapshots), crash
//! selection, finding the binary, build ID checks, damaged cores and exit
//! codes, run as the built binary on corpus crashes.
//!
//! The snapshots live in `tests/snapshots/`; run the tests with
//! `GOCRASH_UPDATE_SNAPSHOTS=1` to rewrite them after a deliberate change.
//! Tests that need corpus crashes skip with a message without a manifest,
//! and fail when `CI=true`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::Crash;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");

fn gocrash(args: &[&str]) -> Output {
    Command::new(GOCRASH)
        .args(args)
        .output()
        .expect("gocrash runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_matches_snapshot() {
    let output = gocrash(&["symbolize", "--help"]);
    assert!(output.status.success());
    support::assert_snapshot("symbolize_help.txt", &stdout(&output));
}

#[test]
fn short_help_matches_snapshot() {
    let output = gocrash(&["symbolize", "-h"]);
    assert!(output.status.success());
    support::assert_snapshot("symbolize_short_help.txt", &stdout(&output));
}

/// Runs `symbolize` on an empty journal directory, so that journal
/// selections match nothing.
fn symbolize_in_empty_journal(args: &[&str]) -> Output {
    let journal = tempfile::tempdir().expect("temporary directory");
    let mut all = vec!["symbolize", "--directory", path_str(journal.path())];
    all.extend_from_slice(args);
    gocrash(&all)
}

#[test]
fn empty_journal_exits_with_no_match() {
    let output = symbolize_in_empty_journal(&[]);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(
        message.starts_with("gocrash: the journal lists no crash"),
        "{message}"
    );
}

#[test]
fn unmatched_pid_exits_with_no_match() {
    let output = symbolize_in_empty_journal(&["4242"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(stderr(&output), "gocrash: no crash matched PID 4242\n");
}

#[test]
fn unmatched_command_name_exits_with_no_match() {
    let output = symbolize_in_empty_journal(&["payments-api"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "gocrash: no crash matched command name \"payments-api\"\n"
    );
}

#[test]
fn missing_core_path_is_taken_as_executable() {
    let output = symbolize_in_empty_journal(&["/nonexistent/core.zst"]);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(
        message.contains("no crash matched executable /nonexistent/core.zst"),
        "{message}"
    );
    assert!(message.contains("taken as an executable path"), "{message}");
}

#[test]
fn missing_file_name_is_taken_as_command() {
    let output = symbolize_in_empty_journal(&["core.payments-api.zst"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "gocrash: no crash matched command name \"core.payments-api.zst\" (no file \
         core.payments-api.zst exists, so it was taken as a command name)\n"
    );
}

#[test]
fn unmatched_filter_names_the_filter() {
    let output = symbolize_in_empty_journal(&["--unit", "payments-api"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "gocrash: no crash matched unit payments-api\n"
    );
}

#[test]
fn core_missing_from_coredump_dir_names_the_path() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let empty = tempfile::tempdir().expect("temporary directory");
    let pid = crash.pid.to_string();
    let output = gocrash(&["symbolize", &pid, "--coredump-dir", path_str(empty.path())]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    // The newest crash with this PID is taken, which may be another
    // program's when PIDs were reused, so only the directory is known.
    let message = stderr(&output);
    let expected = format!(
        "has no core to read: its core file {}/core.",
        empty.path().display()
    );
    assert!(message.contains(&expected), "{message}");
    assert!(message.ends_with(" is missing\n"), "{message}");
}

/// A PIE copy cut short loses its section names, so its build information
/// is found by searching the writable segments: in a PIE the first is
/// `.data.rel.ro`, and the build information is in the next one.
#[test]
fn cut_pie_binary_still_symbolizes() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer" && c.mode == "pie")
        .expect("the manifest has a PIE nilpointer crash");
    let bytes = std::fs::read(&crash.binary).expect("read the binary");
    let dir = tempfile::tempdir().expect("temporary directory");
    let cut = dir.path().join("cut");
    std::fs::write(&cut, &bytes[..bytes.len() - 5000]).expect("write the cut copy");

    let output = gocrash(&[
        "symbolize",
        path_str(&crash.core),
        "--binary",
        path_str(&cut),
    ]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{message}");
    let text = stdout(&output);
    assert!(
        text.starts_with("panic: runtime error: invalid memory address or nil pointer dereference"),
        "{text}"
    );
    assert!(text.contains("\n  main.(*Config).Port\n"), "{text}");
    // The warning is in the output, with both lengths, and not repeated
    // on stderr.
    let warning = format!(
        "  {}: the binary is shorter than its sections ({} bytes, sections up to 0x",
        cut.display(),
        bytes.len() - 5000
    );
    assert!(text.contains(&format!("\nWarnings:\n{warning}")), "{text}");
    assert!(!message.contains("shorter than its sections"), "{message}");

    // The binary-only commands have no place for it but stderr.
    let output = gocrash(&["buildinfo", path_str(&cut)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the binary is shorter than its sections"),
        "{}",
        stderr(&output)
    );
}

/// Returns the decompressed bytes of a stored zstd core.
fn plain_core(core: &Path) -> Vec<u8> {
    let output = Command::new("zstd")
        .arg("-dcq")
        .arg(core)
        .output()
        .expect("zstd runs");
    assert!(output.status.success(), "zstd -d {}", core.display());
    output.stdout
}

/// Returns the offset of the first note's descriptor in a little-endian
/// ELF core: the crashing thread's NT_PRSTATUS, which the kernel writes
/// first.
fn first_note_descriptor(core: &[u8]) -> usize {
    let word = |at: usize, len: usize| {
        core[at..at + len]
            .iter()
            .rev()
            .fold(0u64, |value, &byte| value << 8 | u64::from(byte)) as usize
    };
    let (phoff, phnum) = (word(32, 8), word(56, 2));
    let note = (0..phnum)
        .map(|index| phoff + 56 * index)
        .find(|&header| word(header, 4) == 4)
        .expect("a PT_NOTE segment");
    let offset = word(note + 8, 8);
    let name_len = word(offset, 4);
    offset + 12 + name_len.div_ceil(4) * 4
}

/// A thread whose saved pc points nowhere (damaged notes) cannot be walked,
/// and the report must list it as missing instead of ending with exit code 0.
#[test]
fn thread_registers_outside_memory_are_missing() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "deadlock" && c.mode == "default")
        .expect("the manifest has a deadlock crash");
    let mut core = plain_core(&crash.core);
    // pr_reg starts 112 bytes into elf_prstatus, and rip is its 17th word.
    let rip = first_note_descriptor(&core) + 112 + 16 * 8;
    core[rip..rip + 8].copy_from_slice(&0x1234u64.to_le_bytes());
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("damaged.core");
    std::fs::write(&path, &core).expect("write the damaged core");

    let output = gocrash(&[
        "symbolize",
        path_str(&path),
        "--binary",
        path_str(&crash.binary),
    ]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("\nMissing (the core is incomplete or damaged):\n"),
        "{text}"
    );
    assert!(
        text.contains("its registers point outside the core's memory (pc 0x1234, sp 0x"),
        "{text}"
    );
}

#[test]
fn output_file_equals_stdout() {
    use std::os::unix::fs::PermissionsExt;

    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("goroutines.txt");
    let core = path_str(&crash.core);
    let written = gocrash(&["symbolize", core, "--format", "go", "-o", path_str(&file)]);
    assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
    assert!(written.stdout.is_empty());
    let printed = gocrash(&["symbolize", core, "--format", "go"]);
    assert_eq!(
        std::fs::read(&file).expect("the output file"),
        printed.stdout
    );
    let mode = std::fs::metadata(&file)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        support::partial_files(dir.path()),
        Vec::<std::path::PathBuf>::new()
    );

    let into_dir = gocrash(&["symbolize", core, "-o", path_str(dir.path())]);
    assert_eq!(into_dir.status.code(), Some(1));
    assert!(
        stderr(&into_dir).ends_with("it is a directory; give a file path\n"),
        "{}",
        stderr(&into_dir)
    );
}

/// A crashing thread whose saved sp is damaged cuts its goroutine's walk
/// short, and a goroutine walk that stops early makes the result partial.
#[test]
fn goroutine_walk_stopped_early_is_missing() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "goroutinepanic" && c.mode == "default")
        .expect("the manifest has a goroutinepanic crash");
    let mut core = plain_core(&crash.core);
    // rsp is the 20th word of pr_reg, which starts 112 bytes into elf_prstatus.
    let rsp = first_note_descriptor(&core) + 112 + 19 * 8;
    core[rsp..rsp + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("damaged.core");
    std::fs::write(&path, &core).expect("write the damaged core");

    let output = gocrash(&[
        "symbolize",
        path_str(&path),
        "--binary",
        path_str(&crash.binary),
    ]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let text = stdout(&output);
    let missing = text
        .split("\nMissing (the core is incomplete or damaged):\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Missing section:\n{text}"));
    assert!(
        missing
            .lines()
            .any(|line| line.starts_with("  goroutine ")
                && line.contains(": the stack walk stopped")),
        "{missing}"
    );
}

/// Unmounts a file system mounted for a test when the test ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A temporary directory too small for the decompressed core keeps what
/// fits: the result is partial (exit 4), not a failure. The first,
/// background decompression must free its copy before the core is read
/// again, or the second finds no room at all.
#[test]
fn full_temporary_directory_gives_partial_result() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "manygoroutines" && c.mode == "default")
        .expect("the manifest has a manygoroutines crash");
    let dir = tempfile::tempdir().expect("temporary directory");
    let small = dir.path().join("small");
    std::fs::create_dir(&small).expect("create the mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&small)
        .status();
    if !mounted.is_ok_and(|status| status.success()) {
        eprintln!("skipped: cannot mount a tmpfs (needs root and mount rights)");
        return;
    }
    let _unmount = Mounted(small.clone());

    let output = Command::new(GOCRASH)
        .args([
            "symbolize",
            path_str(&crash.core),
            "--binary",
            path_str(&crash.binary),
        ])
        .env("TMPDIR", &small)
        .output()
        .expect("gocrash runs");
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("the core could not be decompressed whole; only its first part was read: failed to write the decompressed core"),
        "{text}"
    );
    assert!(text.contains("that directory needs free space"), "{text}");
}

/// A core cut inside its notes loses the notes that name the executable,
/// and the error names the cut as a possible cause.
#[test]
fn core_cut_in_notes_names_the_cut() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let plain = plain_core(&crash.core);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("cut.core");
    std::fs::write(&path, &plain[..0x900]).expect("write the cut core");

    let output = gocrash(&["symbolize", path_str(&path)]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("the core does not name its executable ("),
        "{message}"
    );
    assert!(
        message.contains("which may be lost to damage: the core is truncated"),
        "{message}"
    );
    assert!(message.ends_with("; pass --binary PATH\n"), "{message}");
}

#[test]
fn file_that_is_no_core_fails() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a core at all\n").expect("file is writable");
    // Every command that reads a crash fails the same way: there is
    // nothing to show.
    for command in ["symbolize", "info", "report"] {
        let output = gocrash(&[command, path.to_str().expect("UTF-8 path")]);
        assert_eq!(output.status.code(), Some(1), "{command}");
        assert!(output.stdout.is_empty(), "{command}: {}", stdout(&output));
        let message = stderr(&output);
        assert!(
            message.contains("neither an ELF core nor a zstd, lz4 or xz stream"),
            "{command}: {message}"
        );
        assert!(
            message.contains("it starts with the text \"not a \"; a Go crash text is read by"),
            "{command}: {message}"
        );
    }
}

#[test]
fn directory_or_empty_crash_is_usage_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let directory = dir.path().to_str().expect("UTF-8 path");
    for command in ["symbolize", "info", "report", "dump"] {
        for (crash, reason) in [
            (directory, "it is a directory; give a core file in it"),
            ("", "it is empty; give a core file"),
            (
                "/dev/null",
                "it is not a regular file (a FIFO, device or socket)",
            ),
        ] {
            let mut args = vec![command, crash];
            if command == "dump" {
                args.extend(["-o", "/dev/null"]);
            }
            let output = gocrash(&args);
            assert_eq!(output.status.code(), Some(2), "{command} {crash:?}");
            let message = stderr(&output);
            assert!(
                message.starts_with(&format!(
                    "error: invalid value '{crash}' for '[CRASH]': {reason}"
                )),
                "{command}: {message}"
            );
        }
    }

    // A name without a slash is a command name, even where the current
    // directory contains a directory of that name.
    std::fs::create_dir(dir.path().join("no-such-command")).expect("create a directory");
    let output = Command::new(GOCRASH)
        .args(["info", "no-such-command"])
        .current_dir(dir.path())
        .output()
        .expect("run gocrash");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no crash matched command name \"no-such-command\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn full_stdout_is_named() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let full = std::fs::File::create("/dev/full").expect("/dev/full opens");
    let output = Command::new(GOCRASH)
        .args(["symbolize", path_str(&crash.core)])
        .stdout(full)
        .output()
        .expect("gocrash runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("gocrash: cannot write to stdout: No space left on device"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn empty_file_fails_as_no_core() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("core");
    std::fs::write(&path, "").expect("file is writable");
    for command in ["symbolize", "info", "report"] {
        let output = gocrash(&[command, path.to_str().expect("UTF-8 path")]);
        assert_eq!(output.status.code(), Some(1), "{command}");
        let message = stderr(&output);
        assert!(
            message.contains("is 0 bytes long, too short to be a core"),
            "{command}: {message}"
        );
    }
}

/// Runs gocrash with stderr a pipe whose reading end is already closed.
fn gocrash_with_closed_stderr(args: &[&str]) -> std::process::ExitStatus {
    let mut child = Command::new(GOCRASH)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gocrash starts");
    drop(child.stderr.take());
    child.wait().expect("gocrash ends")
}

#[test]
fn closed_stderr_keeps_the_exit_status() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a core at all\n").expect("file is writable");
    let failed = gocrash_with_closed_stderr(&["symbolize", path.to_str().expect("UTF-8 path")]);
    assert_eq!(failed.code(), Some(1));

    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let verbose = gocrash_with_closed_stderr(&["-vv", "symbolize", path_str(&crash.core)]);
    assert_eq!(verbose.code(), Some(0));
}

#[test]
fn json_conflicts_with_format() {
    let output = gocrash(&["symbolize", "--json", "--format", "go", "core"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn pid_selects_crash_from_journal() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    // Later crashes on the machine may have reused a corpus PID, so the
    // test takes a crash whose PID the journal lists once.
    let crash = manifest
        .crashes
        .iter()
        .find(|c| {
            let listed = gocrash(&["list", "--json", &c.pid.to_string()]);
            serde_json::from_slice::<Value>(&listed.stdout)
                .ok()
                .and_then(|rows| rows.as_array().map(Vec::len))
                == Some(1)
        })
        .expect("a corpus crash whose PID no other crash has");
    let pid = crash.pid.to_string();
    let output = gocrash(&["symbolize", "--json", &pid]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON document");
    assert_eq!(document["core"]["journal"]["pid"], crash.pid);
    assert!(document["core"]["path"]
        .as_str()
        .is_some_and(|p| p.starts_with("/var/lib/systemd/coredump/")));
}

#[test]
fn stored_core_finds_its_record_without_journalctl() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    // With no journalctl on the PATH, only the journal files' hash tables
    // can find the entry that names the core file.
    let output = Command::new(GOCRASH)
        .args(["symbolize", "--json", path_str(&crash.core)])
        .env("PATH", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .expect("gocrash runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON document");
    let record = &document["core"]["journal"];
    assert_eq!(record["pid"], crash.pid, "{record}");
    assert_eq!(record["filename"], path_str(&crash.core), "{record}");
    assert!(
        record["unit"]
            .as_str()
            .is_some_and(|unit| unit.starts_with("gocrash-corpus-nilpointer")),
        "{record}"
    );
}

/// Returns the corpus crash the tests below read, and another build of the
/// same program (a build ID mismatch).
fn corpus_crash() -> Option<(Crash, PathBuf)> {
    let manifest = support::manifest()?;
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer" && c.toolchain == "1.22.10" && c.mode == "default")
        .or_else(|| {
            manifest
                .crashes
                .iter()
                .find(|c| c.program == "nilpointer" && c.mode == "default")
        })
        .expect("the manifest has a nilpointer crash")
        .clone();
    let other = manifest
        .builds
        .iter()
        .find(|b| {
            b.program == crash.program && b.mode == "default" && b.toolchain != crash.toolchain
        })
        .expect("the manifest has another nilpointer build")
        .binary
        .clone();
    Some((crash, other))
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn text_output_names_crash_and_build() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let output = gocrash(&["symbolize", path_str(&crash.core)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(
            "panic: runtime error: invalid memory address or nil pointer dereference\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("signal: SIGSEGV (segmentation violation) at address 0x"),
        "{text}"
    );
    assert!(
        text.contains("goroutine 1 [running] (crashed):\n  panic\n"),
        "{text}"
    );
    assert!(text.contains("\n  main.(*Config).Port\n      /"), "{text}");
    assert!(text.contains("\nBuild:\n"), "{text}");
    assert!(
        text.contains(&format!("  Go version:   go{}", crash.toolchain)),
        "{text}"
    );
    assert!(text.contains("matches the core (go"), "{text}");
}

#[test]
fn json_output_has_schema_and_goroutines() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let output = gocrash(&["symbolize", "--json", path_str(&crash.core)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON document");
    assert_eq!(document["schema"], "gocrash.symbolize/1");
    assert_eq!(document["partial"], false);
    assert_eq!(document["crash"]["kind"], "panic");
    assert_eq!(document["crash"]["goroutine"], 1);
    assert_eq!(document["crash"]["signal"]["name"], "SIGSEGV");
    // The nil pointer's field is at offset 0x10.
    assert_eq!(document["crash"]["signal"]["addr"], "0x10");
    let goroutines = document["goroutines"].as_array().expect("goroutines");
    assert!(goroutines.len() >= 4, "{} goroutines", goroutines.len());
    let crashing = goroutines
        .iter()
        .find(|g| g["crashing"] == true)
        .expect("a crashing goroutine");
    let frames = crashing["frames"].as_array().expect("frames");
    let first_printed = frames
        .iter()
        .find(|f| f["printed"] == true)
        .expect("a printed frame");
    assert_eq!(first_printed["function"], "panic");
    assert!(frames
        .iter()
        .any(|f| f["function"] == "main.(*Config).Port"));
    assert!(frames
        .iter()
        .all(|f| f["pc"].as_str().is_some_and(|pc| pc.starts_with("0x"))));
    assert_eq!(document["binary"]["source"], "core");
    assert_eq!(document["binary"]["build_id_check"]["result"], "matched");
}

/// For a signal a process sent, `si_addr` contains the sender's PID, which
/// is no fault address. Stop reasons write addresses as hex strings.
#[test]
fn json_sent_signal_has_no_fault_address() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "cgoabort" && c.mode == "default")
        .expect("the manifest has a cgoabort crash");
    let output = gocrash(&["symbolize", "--json", path_str(&crash.core)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON document");

    let signal = &document["crash"]["signal"];
    assert_eq!(signal["name"], "SIGABRT");
    assert_eq!(signal["code"], -6, "SI_TKILL");
    assert!(signal["addr"].is_null(), "{signal}");
    assert!(signal["pc"].as_str().is_some_and(|pc| pc.starts_with("0x")));

    // The abort's C frames end the walk at a pc no table covers.
    let stops: Vec<&Value> = document["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .map(|t| &t["stop"])
        .filter(|stop| stop["kind"] == "unknown_pc")
        .collect();
    assert!(!stops.is_empty(), "no thread stopped at an unknown pc");
    for stop in stops {
        assert!(
            stop["pc"].as_str().is_some_and(|pc| pc.starts_with("0x")),
            "{stop}"
        );
    }
}

#[test]
fn json_to_a_pipe_is_one_line() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let output = gocrash(&["symbolize", "--json", path_str(&crash.core)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1);
    assert!(
        text.starts_with("{\"schema\":\"gocrash.symbolize/1\","),
        "{text:.80}"
    );
}

/// The compact JSON of more than 2,048 goroutines is serialized in pieces
/// on several threads. It must equal the indented document, written on
/// one thread when stdout is a terminal: here a pseudo-terminal from
/// `script` (util-linux).
#[test]
fn json_in_pieces_equals_json_in_one() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .rfind(|c| c.program == "manygoroutines" && c.mode == "default")
        .expect("the manifest has a manygoroutines crash");
    let output = gocrash(&["symbolize", "--json", path_str(&crash.core)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let pieces: Value = serde_json::from_slice(&output.stdout).expect("compact JSON");

    let command = format!(
        "'{GOCRASH}' symbolize --json '{}' 2>/dev/null",
        path_str(&crash.core)
    );
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The terminal turns each newline into CR LF.
    let text = String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n");
    assert!(text.starts_with("{\n  \"schema\""), "{:.80}", text);
    let indented: Value = serde_json::from_str(&text).expect("indented JSON");

    let goroutines = pieces["goroutines"].as_array().expect("a goroutine list");
    assert!(goroutines.len() > 10_000, "{} goroutines", goroutines.len());
    assert!(pieces == indented, "the documents differ");
}

/// A stack overflow's thousands of recursive frames print once, with a
/// count, in the text output. JSON keeps every frame.
#[test]
fn recursion_prints_once_in_text() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .rfind(|c| c.program == "stackoverflow" && c.mode == "default")
        .expect("the manifest has a stackoverflow crash");
    let output = gocrash(&["symbolize", path_str(&crash.core)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("  ... the frame above repeats "),
        "{text:.2000}"
    );
    assert!(text.lines().count() < 300, "{} lines", text.lines().count());

    let output = gocrash(&["symbolize", "--json", path_str(&crash.core)]);
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON document");
    let frames = document["goroutines"]
        .as_array()
        .and_then(|goroutines| goroutines.iter().find(|g| g["id"] == 1))
        .and_then(|g| g["frames"].as_array())
        .map_or(0, Vec::len);
    assert!(frames > 1000, "{frames} frames in JSON");
}

#[test]
fn go_output_parses_as_traceback() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let output = gocrash(&["symbolize", "--format", "go", path_str(&crash.core)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let parsed = ingest::traceback::parse(&stdout(&output));
    assert_eq!(parsed.panics.len(), 1);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let first = parsed.main_goroutines().next().expect("a goroutine");
    assert_eq!(first.id.0, 1);
    assert_eq!(
        first.frames.first().map(|f| f.function.as_str()),
        Some("panic")
    );
}

#[test]
fn binary_directory_is_searched_by_build_id() {
    let Some((crash, other)) = corpus_crash() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let nested = dir.path().join("releases/v1");
    std::fs::create_dir_all(&nested).expect("directories are writable");
    std::fs::copy(&other, dir.path().join("releases/other-build")).expect("copy");
    std::fs::copy(&crash.binary, nested.join("service")).expect("copy");
    let output = gocrash(&[
        "symbolize",
        "--json",
        "--binary",
        path_str(dir.path()),
        path_str(&crash.core),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON document");
    assert_eq!(document["binary"]["source"], "directory_search");
    assert_eq!(
        document["binary"]["path"],
        path_str(&nested.join("service"))
    );
}

#[test]
fn binary_directory_skips_cut_copy() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    // The cut copy keeps the first page, and with it the build ID, and its
    // name sorts first.
    let whole = std::fs::read(&crash.binary).expect("the corpus binary reads");
    std::fs::write(dir.path().join("a-cut"), &whole[..4096]).expect("write");
    std::fs::write(dir.path().join("b-whole"), &whole).expect("write");
    let output = gocrash(&[
        "symbolize",
        "--json",
        "--binary",
        path_str(dir.path()),
        path_str(&crash.core),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON document");
    assert_eq!(
        document["binary"]["path"],
        path_str(&dir.path().join("b-whole"))
    );
    assert!(
        !stderr(&output).contains("a-cut"),
        "a skipped candidate was warned about: {}",
        stderr(&output)
    );
}

#[test]
fn binary_directory_without_match_fails() {
    let Some((crash, other)) = corpus_crash() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(&other, dir.path().join("other-build")).expect("copy");
    let output = gocrash(&[
        "symbolize",
        "--binary",
        path_str(dir.path()),
        path_str(&crash.core),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("has the core's build ID (Go build ID "),
        "{message}"
    );
    assert!(
        message.contains("1 ELF file was checked, 8 directory levels deep at most"),
        "{message}"
    );
}

#[test]
fn build_id_mismatch_fails_without_force() {
    let Some((crash, other)) = corpus_crash() else {
        return;
    };
    let output = gocrash(&[
        "symbolize",
        "--binary",
        path_str(&other),
        path_str(&crash.core),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "{} is not the build that crashed",
            other.display()
        )),
        "{message}"
    );
    assert!(message.contains(path_str(&crash.core)), "{message}");
    assert_eq!(message.matches("Go build ID ").count(), 2, "{message}");
    assert!(message.contains("--force"), "{message}");
}

/// Returns a stripped crash and its unstripped twin: the same code and
/// data under another build ID.
fn stripped_crash_and_twin() -> Option<(Crash, PathBuf)> {
    let manifest = support::manifest()?;
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer" && c.mode == "stripped")
        .expect("the manifest has a stripped nilpointer crash")
        .clone();
    let build = manifest
        .builds
        .iter()
        .find(|b| b.binary == crash.binary)
        .expect("the manifest lists the crash's build");
    let twin = build.twin.clone().expect("a stripped build has a twin");
    Some((crash, twin))
}

#[test]
fn build_id_mismatch_warns_with_force() {
    let Some((crash, twin)) = stripped_crash_and_twin() else {
        return;
    };
    let output = gocrash(&[
        "symbolize",
        "--binary",
        path_str(&twin),
        path_str(&crash.core),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));

    let output = gocrash(&[
        "symbolize",
        "--force",
        "--binary",
        path_str(&twin),
        path_str(&crash.core),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let first = format!(
        "WARNING: {} is not the binary that crashed (--force): the core has Go build ID ",
        twin.display()
    );
    assert!(text.starts_with(&first), "{text:.400}");
    assert!(text.contains("\nWarnings:\n  --force: using "), "{text}");
    assert!(
        text.contains("differs from the core's Go build ID"),
        "{text}"
    );
    assert!(text.contains("\n  main.(*Config).Port\n"), "{text}");
}

/// Rewrites every NT_FILE path equal to `path` in a decompressed core so
/// that it reads as the kernel writes a file deleted while mapped: the
/// path's last ten bytes become ` (deleted)`, keeping the note's size.
fn mark_deleted(core: &mut [u8], path: &str) -> String {
    let bytes = path.as_bytes();
    let mut marked = 0;
    let mut index = 0;
    while let Some(offset) = core[index..]
        .windows(bytes.len() + 1)
        .position(|w| &w[..bytes.len()] == bytes && w[bytes.len()] == 0)
    {
        let start = index + offset;
        core[start + bytes.len() - 10..start + bytes.len()].copy_from_slice(b" (deleted)");
        marked += 1;
        index = start + bytes.len();
    }
    assert!(marked > 0, "{path} is not in the core");
    path[..path.len() - 10].to_owned()
}

fn decompressed_core(crash: &Crash) -> Vec<u8> {
    let mut bytes = Vec::new();
    symbolizer::decompress::decompress_to_writer(&crash.core, &mut bytes, &mut |_| {})
        .expect("the core decompresses");
    bytes
}

#[test]
fn deleted_executable_asks_for_binary() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut core = decompressed_core(&crash);
    let shown = mark_deleted(&mut core, path_str(&crash.binary));
    let core_path = dir.path().join("core");
    std::fs::write(&core_path, &core).expect("core is writable");

    let output = gocrash(&["symbolize", path_str(&core_path)]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("the executable {shown} was deleted or replaced")),
        "{message}"
    );
    assert!(message.contains("pass --binary PATH"), "{message}");

    let output = gocrash(&[
        "symbolize",
        "--binary",
        path_str(&crash.binary),
        path_str(&core_path),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("(deleted or replaced after the program started)"));
}

#[test]
fn truncated_core_gives_partial_output() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let core = decompressed_core(&crash);
    // Cutting the last tenth loses the highest mappings (the stacks of the
    // threads created last and the top of the address space), but keeps the
    // notes and the runtime's data.
    let core_path = dir.path().join("core.truncated");
    std::fs::write(&core_path, &core[..core.len() * 9 / 10]).expect("core is writable");

    let output = gocrash(&["symbolize", path_str(&core_path)]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("\nMissing (the core is incomplete or damaged):\n  the core is truncated"),
        "{text}"
    );

    let output = gocrash(&["symbolize", "--json", path_str(&core_path)]);
    assert_eq!(output.status.code(), Some(4));
    let document: Value = serde_json::from_slice(&output.stdout).expect("JSON document");
    assert_eq!(document["partial"], true);
    assert!(document["missing"][0]
        .as_str()
        .is_some_and(|m| m.starts_with("the core is truncated")));
}

/// A compressed core whose stream is cut is walked while it decompresses.
/// The cut is found at the stream's end, so gocrash reads the core again as
/// a partial core, and the output lists what is missing.
#[test]
fn cut_compressed_core_is_read_again_as_partial() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let compressed = std::fs::read(&crash.core).expect("the stored core is readable");
    let core_path = dir.path().join("core.zst");
    std::fs::write(&core_path, &compressed[..compressed.len() * 9 / 10]).expect("core is writable");

    let output = gocrash(&["symbolize", "-vv", path_str(&core_path)]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the core's stream is damaged, so it is read again"),
        "{}",
        stderr(&output)
    );
    let text = stdout(&output);
    assert!(
        text.contains(
            "\nMissing (the core is incomplete or damaged):\n  the compressed core is damaged; \
             only its first part was read"
        ),
        "{text}"
    );
    assert!(text.contains("goroutine 1"), "{text}");
}

/// Runs gocrash with `TMPDIR` set to `temp` and a limit of `limit` bytes on
/// the size of the files it writes.
fn gocrash_with_file_limit(args: &[&str], temp: &Path, limit: u64) -> Output {
    let mut command = Command::new(GOCRASH);
    command.args(args).env("TMPDIR", temp);
    support::limit_file_size(&mut command, limit);
    command.output().expect("gocrash runs")
}

/// A temporary directory that fills up while the core decompresses leaves a
/// partial report, not a bare error: early (inside the notes), late, and
/// with only the zero pages at the end missing.
#[test]
fn full_temporary_directory_gives_partial_output() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let plain_len = decompressed_core(&crash).len() as u64;
    let late = plain_len * 9 / 10;
    assert!(
        late > 2 * symbolizer::decompress::BLOCK_SIZE as u64,
        "the core of {} is too small for this test: {plain_len} bytes",
        crash.program
    );
    let temp = tempfile::tempdir().expect("temporary directory");
    let expected = format!(
        "the core could not be decompressed whole; only its first part was read: failed to \
         write the decompressed core of {} to a temporary file in {}",
        crash.core.display(),
        temp.path().display()
    );
    for limit in [64 << 10, late, plain_len - 1] {
        let output =
            gocrash_with_file_limit(&["symbolize", path_str(&crash.core)], temp.path(), limit);
        assert_eq!(
            output.status.code(),
            Some(4),
            "limit {limit}: {}",
            stderr(&output)
        );
        let text = stdout(&output);
        assert!(text.contains(&expected), "limit {limit}: {text}");
        assert!(text.contains("File too large"), "limit {limit}: {text}");
        if limit == 64 << 10 {
            // Everything written before the limit is kept, inside a run of
            // non-zero pages too.
            assert!(text.contains("the file has 0x10000"), "{text}");
        } else {
            // What was kept still names the crash.
            assert!(text.contains("goroutine 1"), "limit {limit}: {text}");
        }

        let output = gocrash_with_file_limit(
            &["symbolize", "--json", path_str(&crash.core)],
            temp.path(),
            limit,
        );
        assert_eq!(
            output.status.code(),
            Some(4),
            "limit {limit}: {}",
            stderr(&output)
        );
        let document: Value = serde_json::from_slice(&output.stdout).expect("JSON document");
        assert_eq!(document["partial"], true);
        assert!(
            document["missing"]
                .as_array()
                .is_some_and(|missing| missing.iter().any(|m| m
                    .as_str()
                    .is_some_and(|m| m.starts_with("the core could not be decompressed whole")))),
            "limit {limit}: {document}"
        );
    }
}

/// Reads a core with `--force` and the binary of another program, built by
/// the same toolchain or by each other one. Every format must end in a
/// partial dump or a one-line refusal that names the binary, never in a
/// panic.
#[test]
fn force_with_other_program_never_panics() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let manifest = support::manifest().expect("corpus_crash read the manifest");
    let mut others: Vec<&support::Build> = manifest
        .builds
        .iter()
        .filter(|b| b.program != crash.program && b.mode == "default" && !b.cgo)
        .collect();
    others.sort_by(|a, b| {
        a.program
            .cmp(&b.program)
            .then(a.toolchain.cmp(&b.toolchain))
    });
    let mut chosen: Vec<&support::Build> = Vec::new();
    let same_toolchain = others.iter().find(|b| b.toolchain == crash.toolchain);
    let other_toolchains = manifest
        .toolchains
        .iter()
        .filter(|t| t.name != crash.toolchain)
        .filter_map(|t| others.iter().find(|b| b.toolchain == t.name));
    chosen.extend(same_toolchain.copied());
    chosen.extend(other_toolchains.copied());
    assert!(chosen.len() >= 2, "the manifest has too few other builds");

    for build in chosen {
        for format in ["text", "go", "json"] {
            let output = gocrash(&[
                "symbolize",
                "--force",
                "--format",
                format,
                "--binary",
                path_str(&build.binary),
                path_str(&crash.core),
            ]);
            let name = format!("{} {} --format {format}", build.program, build.toolchain);
            let code = output.status.code();
            let message = stderr(&output);
            assert!(!message.contains("panicked"), "{name}: {message}");
            match code {
                Some(1) => {
                    let last = message.lines().last().unwrap_or_default();
                    assert!(last.starts_with("gocrash: "), "{name}: {message}");
                    assert!(last.contains(path_str(&build.binary)), "{name}: {message}");
                }
                Some(0 | 4) if format == "go" => {
                    // The Go layout has no place for warnings or missing
                    // parts, and may have no goroutine to print at all.
                    assert!(
                        message.contains("gocrash: warning: --force: using "),
                        "{name}: {message}"
                    );
                    if code == Some(4) {
                        assert!(message.contains("gocrash: missing: "), "{name}: {message}");
                    }
                }
                Some(0 | 4) => {
                    let text = stdout(&output);
                    assert!(text.contains("--force: using "), "{name}: {text}");
                    if code == Some(4) && format == "text" {
                        // The core is whole: another build may be the cause.
                        assert!(
                            text.contains("\nMissing (the core is incomplete or damaged, or read with another build):\n"),
                            "{name}: {text}"
                        );
                    }
                }
                other => panic!("{name}: exit status {other:?}: {message}"),
            }
        }
    }
}

/// Returns the file offset of the virtual address `vaddr` in an ELF64
/// core, from its `PT_LOAD` program headers.
fn core_offset(core: &[u8], vaddr: u64) -> Option<usize> {
    let field = |offset: usize, size: usize| -> Option<u64> {
        let mut value = [0u8; 8];
        value[..size].copy_from_slice(core.get(offset..offset + size)?);
        Some(u64::from_le_bytes(value))
    };
    let phoff = usize::try_from(field(0x20, 8)?).ok()?;
    let phnum = usize::try_from(field(0x38, 2)?).ok()?;
    (0..phnum).find_map(|index| {
        let header = phoff + index * 56;
        (field(header, 4)? == 1).then_some(())?;
        let delta = vaddr.checked_sub(field(header + 16, 8)?)?;
        (delta < field(header + 32, 8)?).then_some(())?;
        usize::try_from(field(header + 8, 8)? + delta).ok()
    })
}

#[test]
fn unreadable_goroutine_list_gives_partial_output() {
    use object::{Object, ObjectSymbol};

    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let binary = std::fs::read(&crash.binary).expect("the binary is readable");
    let elf = object::File::parse(binary.as_slice()).expect("the binary parses");
    let allgs = elf
        .symbols()
        .find(|s| s.name() == Ok("runtime.allgs"))
        .expect("the default build has runtime.allgs")
        .address();
    let mut core = decompressed_core(&crash);
    let header = core_offset(&core, allgs).expect("runtime.allgs is in the core");
    // The slice's array pointer aimed at the slice header itself.
    core[header..header + 8].copy_from_slice(&allgs.to_le_bytes());
    let dir = tempfile::tempdir().expect("temporary directory");
    let core_path = dir.path().join("core.allgs");
    std::fs::write(&core_path, &core).expect("core is writable");

    let output = gocrash(&[
        "symbolize",
        "--binary",
        path_str(&crash.binary),
        path_str(&core_path),
    ]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("\nMissing (the core is incomplete or damaged):\n  the goroutine list could not be read"),
        "{text}"
    );
    assert!(text.contains("goroutine 1 [running] (crashed):"), "{text}");
    assert!(text.contains("\n  main.(*Config).Port\n"), "{text}");
    assert!(!text.contains("system stack with no goroutine"), "{text}");
}

#[test]
fn journal_match_shows_text_headline() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let facts = support::ExpectedFacts::load(&crash.expected);
    let selection = format!("COREDUMP_FILENAME={}", path_str(&crash.core));

    let output = gocrash(&["symbolize", &selection]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let headline = first
        .strip_prefix("journal: ")
        .unwrap_or_else(|| panic!("the text output starts with the journal's headline: {first:?}"));
    assert!(facts.headline_matches(headline), "{headline:?}");
    assert_eq!(lines.next(), Some("journal loss: none found"));

    let output = gocrash(&["symbolize", "--json", &selection]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let journal = &document["journal_text"];
    assert_eq!(journal["headline"].as_str(), Some(headline));
    assert!(journal["lines"].as_u64().unwrap() > 10, "{journal}");
    assert_eq!(journal["loss"].as_array().map(Vec::len), Some(0));

    let output = gocrash(&["symbolize", "--format", "go", &selection]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        !stdout(&output).contains("journal:"),
        "go stays the runtime's layout"
    );
}

#[test]
fn core_path_has_no_journal_text() {
    let Some((crash, _)) = corpus_crash() else {
        return;
    };
    let output = gocrash(&["symbolize", "--json", path_str(&crash.core)]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(document["journal_text"].is_null());
}

#[test]
fn cgo_fault_names_c_frames() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crashes: Vec<&Crash> = manifest
        .crashes
        .iter()
        .filter(|c| c.program == "cgosegv" && c.mode != "stripped")
        .collect();
    assert!(!crashes.is_empty(), "the manifest has cgosegv crashes");
    for crash in crashes {
        let label = format!("{} {}", crash.toolchain, crash.mode);
        let output = gocrash(&["symbolize", path_str(&crash.core)]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{label}: {}",
            stderr(&output)
        );
        let text = stdout(&output);
        let section = text
            .split("C code the signal interrupted")
            .nth(1)
            .unwrap_or_else(|| panic!("{label}: no C section:\n{text}"));
        let first_frame = section.lines().nth(1).map(str::trim);
        assert_eq!(first_frame, Some("packet_length"), "{label}:\n{text}");
        assert!(section.contains("main.go:29"), "{label}:\n{text}");
    }
}

/// A stack deeper than the 10,000 frames a walk keeps is walked to its end:
/// its innermost and outermost frames are shown and those between counted.
#[test]
fn deep_stack_keeps_both_ends() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .rfind(|c| c.program == "deeprecursion" && c.mode == "default")
        .expect("the manifest has a default deeprecursion crash");
    let core = path_str(&crash.core);
    let binary = path_str(&crash.binary);

    let output = gocrash(&["symbolize", core, "--binary", binary]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let marker = text
        .lines()
        .find(|line| line.ends_with(" frames left out in the middle of a deep stack ..."))
        .unwrap_or_else(|| panic!("no count of the frames left out: {text}"));
    let count: u64 = marker
        .trim_start()
        .trim_start_matches("... ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{marker}"));
    assert!(count > 100_000, "{marker}");
    let after = &text[text.find(marker).unwrap_or(0)..];
    assert!(after.contains("\n  main.main\n"), "{text}");
    assert!(!text.contains("stopped early"), "{text}");

    let output = gocrash(&["symbolize", core, "--binary", binary, "--json"]);
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let crashing = document["goroutines"]
        .as_array()
        .and_then(|all| all.iter().find(|g| g["crashing"] == true))
        .expect("a crashing goroutine");
    assert_eq!(crashing["complete"], true);
    assert_eq!(crashing["elided"]["after"], 5000);
    assert_eq!(crashing["elided"]["logical"].as_u64(), Some(count));
    assert_eq!(crashing["frames"].as_array().map(Vec::len), Some(10_000));
}

/// A path that is a symbolic link to no file (a loop here) is named as such
/// when no crash matches it as an executable path.
#[test]
fn symbolic_link_to_no_file_is_named() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    std::os::unix::fs::symlink(&second, &first).expect("link");
    std::os::unix::fs::symlink(&first, &second).expect("link");
    let output = gocrash(&["symbolize", path_str(&first)]);
    let message = stderr(&output);
    if message.contains("cannot select") || message.contains("cannot read the journal") {
        eprintln!("skipped: the journal cannot be read: {message}");
        return;
    }
    assert_eq!(output.status.code(), Some(3), "{message}");
    assert!(
        message.contains(&format!(
            "{} is a symbolic link to no file: ",
            first.display()
        )),
        "{message}"
    );
}
