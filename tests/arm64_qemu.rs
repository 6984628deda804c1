//! arm64 crashes: corpus programs built for arm64 run under `qemu-aarch64`
//! with `GOTRACEBACK=crash`. On the abort, qemu-user writes the guest's
//! core itself (`qemu_PROGRAM_DATE_PID.core` in the working directory), an
//! arm64 ELF core with the guest's threads and memory but without an NT_FILE
//! note. `gocrash symbolize --binary BIN --format go` must rebuild, line for
//! line, the text the runtime printed: goroutine headers, frames with their
//! arguments, offsets, `fp=`, `sp=` and `pc=`, and the register dumps.
//!
//! The programs are built with the oldest and the newest installed
//! toolchain: default, PIE and stripped executables. The test needs
//! `qemu-aarch64` (Debian's qemu-user) and, for PIE, the arm64 dynamic
//! loader (libc6-arm64-cross, whose files qemu reads through `-L`).
//! `scripts/install-deps` installs both. Without them or a Go toolchain the
//! test skips with a message, and fails when `CI=true`.

mod gobuild;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ingest::traceback;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
const QEMU: &str = "/usr/bin/qemu-aarch64";
/// The arm64 root directory in which qemu finds a PIE's dynamic loader.
const ARM64_ROOT: &str = "/usr/aarch64-linux-gnu";
/// Build modes, as `go build` arguments.
const MODES: [(&str, &[&str]); 3] = [
    ("default", &[]),
    ("pie", &["-buildmode=pie"]),
    ("stripped", &["-ldflags=-s -w"]),
];
/// Corpus programs that crash on their own, without cgo, signals from
/// outside or minutes of waiting.
const PROGRAMS: [&str; 8] = [
    "nilpointer",
    "deadlock",
    "goroutinepanic",
    "nestedpanic",
    "closedchan",
    "inlinedindex",
    "stackoverflow",
    "genericclosure",
];
/// How long a program may run under qemu before it is killed.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn skip(reason: &str) {
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{reason}");
    eprintln!("skipped: {reason}");
}

fn corpus_dir(program: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/programs")
        .join(program)
}

/// Runs `binary` under qemu in `dir` and returns its stderr and the core
/// qemu wrote.
fn crash_under_qemu(binary: &Path, dir: &Path) -> (String, PathBuf) {
    let stderr_path = dir.join("stderr.txt");
    // qemu writes the core only within RLIMIT_CORE, which is often 0.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -c unlimited && exec \"$0\" -L \"$1\" \"$2\"",
            QEMU,
            ARM64_ROOT,
        ])
        .arg(binary)
        .current_dir(dir)
        .env("GOTRACEBACK", "crash")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("create stderr file"))
        .spawn()
        .expect("qemu-aarch64 runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for qemu") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!(
                "{} ran for more than {RUN_LIMIT:?} under qemu",
                binary.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "{} did not crash", binary.display());
    let core = std::fs::read_dir(dir)
        .expect("list the run directory")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| {
            path.extension().is_some_and(|ext| ext == "core")
                && path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("qemu_"))
        })
        .unwrap_or_else(|| panic!("qemu wrote no core for {}", binary.display()));
    let stderr = std::fs::read_to_string(&stderr_path).expect("read stderr");
    (stderr, core)
}

/// Returns the lines that are not empty.
fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|line| !line.is_empty()).collect()
}

/// Builds, crashes and symbolizes one program, and returns the lines that
/// differ, each described; empty when the texts are identical.
fn check(
    go: &gobuild::Toolchain,
    program: &str,
    (mode, args): (&str, &[&str]),
    root: &Path,
) -> Vec<String> {
    let label = format!("{program} (Go {}, {mode})", go.version);
    let dir = root.join(format!("{program}-{}-{mode}", go.version));
    std::fs::create_dir_all(&dir).expect("create the run directory");
    let binary = dir.join(program);
    go.build(
        &corpus_dir(program),
        &binary,
        args,
        &[("GOARCH", "arm64"), ("CGO_ENABLED", "0")],
    );
    let (theirs, core) = crash_under_qemu(&binary, &dir);

    let output = Command::new(GOCRASH)
        .args(["symbolize", "--format", "go", "--binary"])
        .arg(&binary)
        .arg(&core)
        .output()
        .expect("gocrash runs");
    let ours = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // qemu writes no NT_FILE note, so the executable cannot be identified
    // from the core, which makes the result partial.
    assert_eq!(output.status.code(), Some(4), "{label}: {stderr}");
    assert!(
        stderr.contains("the executable could not be identified: the core has no NT_FILE note"),
        "{label}: {stderr}"
    );

    // The text output states what it cannot know without NT_FILE.
    let text = Command::new(GOCRASH)
        .args(["symbolize", "--binary"])
        .arg(&binary)
        .arg(&core)
        .output()
        .expect("gocrash runs");
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains("\n  core has:     unknown: the core does not name its executable\n"),
        "{label}: {}",
        String::from_utf8_lossy(&text.stdout)
    );

    let parsed_ours = traceback::parse(&ours);
    let parsed_theirs = traceback::parse(&theirs);
    assert!(
        !parsed_theirs.goroutines.is_empty(),
        "{label}: the runtime printed no goroutine:\n{theirs}"
    );
    let ids = |text: &traceback::Traceback| -> Vec<u64> {
        text.goroutines.iter().map(|g| g.id.0).collect()
    };
    assert_eq!(
        ids(&parsed_ours),
        ids(&parsed_theirs),
        "{label}: goroutine ids"
    );

    let (ours, theirs) = (lines(&ours), lines(&theirs));
    unmatched(&ours, &theirs)
        .into_iter()
        .filter(|line| !is_explained(mode, line))
        .map(|line| format!("{label}: {line}"))
        .collect()
}

/// Returns the lines of `ours` and `theirs` outside their longest common
/// subsequence, each marked with the side it is on.
fn unmatched(ours: &[&str], theirs: &[&str]) -> Vec<String> {
    // lengths[i][j]: the longest common subsequence of ours[i..], theirs[j..].
    let mut lengths = vec![vec![0u32; theirs.len() + 1]; ours.len() + 1];
    for i in (0..ours.len()).rev() {
        for j in (0..theirs.len()).rev() {
            lengths[i][j] = if ours[i] == theirs[j] {
                lengths[i + 1][j + 1] + 1
            } else {
                lengths[i + 1][j].max(lengths[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut lines = Vec::new();
    while i < ours.len() || j < theirs.len() {
        if i < ours.len() && j < theirs.len() && ours[i] == theirs[j] {
            (i, j) = (i + 1, j + 1);
        } else if j < theirs.len() && (i == ours.len() || lengths[i][j + 1] >= lengths[i + 1][j]) {
            lines.push(format!("only the runtime printed {:?}", theirs[j]));
            j += 1;
        } else {
            lines.push(format!("only gocrash printed {:?}", ours[i]));
            i += 1;
        }
    }
    lines
}

/// Reports whether a difference is one docs/limitations.md explains: a
/// stripped binary has no symbols for the values of the stack limit line.
fn is_explained(mode: &str, line: &str) -> bool {
    mode == "stripped"
        && line.starts_with("only the runtime printed \"runtime: goroutine stack exceeds ")
}

#[test]
fn arm64_cores_from_qemu_match_runtime_text() {
    if !Path::new(QEMU).exists() {
        skip("qemu-aarch64 is not installed (Debian package qemu-user)");
        return;
    }
    let Some(toolchains) = gobuild::installed_or_skip() else {
        return;
    };
    let oldest = toolchains.first().expect("a toolchain");
    let newest = toolchains.last().expect("a toolchain");
    let mut chosen = vec![oldest];
    if newest.version != oldest.version {
        chosen.push(newest);
    }

    let mut modes = MODES.to_vec();
    if !Path::new(ARM64_ROOT)
        .join("lib/ld-linux-aarch64.so.1")
        .exists()
    {
        skip("no arm64 dynamic loader under /usr/aarch64-linux-gnu (Debian package libc6-arm64-cross), so no PIE");
        modes.retain(|(mode, _)| *mode != "pie");
    }

    let root = tempfile::tempdir().expect("temporary directory");
    let mut differences = Vec::new();
    let mut crashes = 0;
    for go in chosen {
        for &mode in &modes {
            for program in PROGRAMS {
                differences.extend(check(go, program, mode, root.path()));
                crashes += 1;
            }
        }
    }
    eprintln!(
        "{crashes} arm64 crashes, {} differing lines",
        differences.len()
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
