//! Builds small Go programs with the installed toolchains, crashes them with
//! `GOTRACEBACK=crash`, and collects the cores systemd-coredump stores.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const COREDUMP_DIR: &str = "/var/lib/systemd/coredump";

/// How long systemd-coredump may take to store a core after the process
/// died. Writing and compressing a 40 MiB core takes about a second.
const CORE_WAIT: Duration = Duration::from_secs(120);

const PROGRAM: &str = r#"package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// park keeps a goroutine on its own thread, so the core has several.
func park(c chan int) {
	runtime.LockOSThread()
	<-c
}

func main() {
	c := make(chan int)
	for i := 0; i < 3; i++ {
		go park(c)
	}
	time.Sleep(100 * time.Millisecond)
	fmt.Fprintln(os.Stderr, "crashing")
	panic("gocrash core reader test")
}
"#;

const CGO_PROGRAM: &str = r#"package main

/*
static int add(int a, int b) { return a + b; }
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

func park(c chan int) {
	runtime.LockOSThread()
	<-c
}

func main() {
	c := make(chan int)
	for i := 0; i < 2; i++ {
		go park(c)
	}
	time.Sleep(100 * time.Millisecond)
	fmt.Fprintln(os.Stderr, "crashing", C.add(1, 2))
	panic("gocrash core reader test with cgo")
}
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Default,
    Pie,
    Cgo,
}

/// A crashed build: its binary, the stored core and a plain copy of it.
#[derive(Debug)]
pub struct Crash {
    pub name: String,
    pub mode: Mode,
    /// The `go` command of the toolchain that built it.
    pub go: PathBuf,
    pub binary: PathBuf,
    pub pid: u32,
    /// The core as systemd-coredump stored it (copied out of its store).
    pub stored: PathBuf,
    /// The same core decompressed with the `zstd` tool.
    pub plain: PathBuf,
}

/// The variants crashed once per test run: several toolchains and modes.
const VARIANTS: &[(&str, Mode)] = &[
    ("1.19.8", Mode::Default),
    ("1.22.10", Mode::Pie),
    ("1.24.11", Mode::Cgo),
    ("1.27.3", Mode::Default),
];

fn go_binary(version: &str) -> PathBuf {
    if version == "1.19.8" {
        PathBuf::from("/usr/lib/go-1.19/bin/go")
    } else {
        PathBuf::from(format!("/var/cache/gocrash/go/{version}/go/bin/go"))
    }
}

/// Returns why crashes cannot be produced here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if !pattern.contains("systemd-coredump") {
        return Some(format!(
            "core_pattern is {:?}, not systemd-coredump",
            pattern.trim()
        ));
    }
    if !Path::new(COREDUMP_DIR).is_dir() {
        return Some(format!("{COREDUMP_DIR} does not exist"));
    }
    for tool in ["zstd", "eu-readelf"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    if !VARIANTS
        .iter()
        .any(|(version, _)| go_binary(version).exists())
    {
        return Some("no Go toolchain is installed".to_owned());
    }
    None
}

/// Returns the crashes of every available variant, producing them on first
/// use. Returns an empty list (after printing why) when the machine cannot
/// produce cores, and panics instead when `CI=true`.
pub fn crashes() -> &'static [Crash] {
    static CRASHES: OnceLock<Vec<Crash>> = OnceLock::new();
    CRASHES.get_or_init(|| {
        if let Some(reason) = missing_prerequisite() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot produce real cores in CI: {reason}"
            );
            eprintln!("skipping real-core tests: {reason}");
            return Vec::new();
        }
        let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("core_real");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        VARIANTS
            .iter()
            .filter(|(version, _)| go_binary(version).exists())
            .map(|(version, mode)| crash(&work, version, *mode))
            .collect()
    })
}

/// Returns the crash of one mode, if its toolchain is installed.
pub fn crash_of(mode: Mode) -> Option<&'static Crash> {
    crashes().iter().find(|c| c.mode == mode)
}

fn crash(work: &Path, version: &str, mode: Mode) -> Crash {
    let name = format!("{version}-{mode:?}").to_lowercase();
    let dir = work.join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let source = if mode == Mode::Cgo {
        CGO_PROGRAM
    } else {
        PROGRAM
    };
    std::fs::write(dir.join("main.go"), source).unwrap();
    std::fs::write(dir.join("go.mod"), "module crasher\n\ngo 1.19\n").unwrap();

    // The name is the comm systemd-coredump puts in the core's file name.
    let binary = dir.join("gocrash-core");
    let mut build = Command::new(go_binary(version));
    build
        .current_dir(&dir)
        .args(["build", "-o"])
        .arg(&binary)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", format!("/var/cache/gocrash/gocache/{version}"))
        .env("CGO_ENABLED", if mode == Mode::Cgo { "1" } else { "0" });
    if mode == Mode::Pie {
        build.arg("-buildmode=pie");
    }
    build.arg(".");
    let output = build.output().unwrap();
    assert!(
        output.status.success(),
        "go {version} build failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // `exec` keeps the shell's pid, which is the pid in the core's name.
    let started = std::time::SystemTime::now();
    let child = Command::new("sh")
        .args(["-c", "ulimit -c unlimited; exec \"$0\""])
        .arg(&binary)
        .env("GOTRACEBACK", "crash")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        output.status.signal(),
        Some(6),
        "{name} did not abort: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let found = wait_for_core(pid, started);
    let stored = dir.join(found.file_name().unwrap());
    std::fs::copy(&found, &stored).unwrap();
    // The store is shared; the copy is all the tests need.
    let _ = std::fs::remove_file(&found);

    let plain = dir.join("core");
    let status = Command::new("zstd")
        .args(["-q", "-d", "-f"])
        .arg(&stored)
        .arg("-o")
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success(), "zstd -d {} failed", stored.display());
    Crash {
        name,
        mode,
        go: go_binary(version),
        binary,
        pid,
        stored,
        plain,
    }
}

/// Finds the core of `pid`: `core.<comm>.<uid>.<boot id>.<pid>.<usec>[.ext]`.
/// The store keeps the corpus's cores, whose pids the kernel has handed out
/// again since, so the command name and the time must match too.
fn wait_for_core(pid: u32, started: std::time::SystemTime) -> PathBuf {
    // The store names a core by the second of the crash, in microseconds.
    let started_usec = started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        * 1_000_000;
    let start = Instant::now();
    loop {
        for entry in std::fs::read_dir(COREDUMP_DIR).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("core.gocrash-core.") {
                continue;
            }
            let stem = name
                .strip_suffix(".zst")
                .or(name.strip_suffix(".lz4"))
                .or(name.strip_suffix(".xz"))
                .unwrap_or(&name);
            let parts: Vec<&str> = stem.rsplitn(3, '.').collect();
            let usec = parts.first().and_then(|t| t.parse::<u64>().ok());
            if parts.get(1) == Some(&pid.to_string().as_str())
                && usec.is_some_and(|usec| usec >= started_usec)
            {
                return path;
            }
        }
        assert!(
            start.elapsed() < CORE_WAIT,
            "no core for pid {pid} appeared in {COREDUMP_DIR}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
