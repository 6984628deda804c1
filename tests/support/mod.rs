//! Shared support for the integration tests: the corpus manifest that
//! `corpus/harness.py` writes, and the hand-written facts of each program.
//!
//! Each test binary includes this module with `mod support;` and uses only
//! part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the harness writes the manifest unless `GOCRASH_CORPUS_MANIFEST` says otherwise.
pub const DEFAULT_MANIFEST: &str = "/var/cache/gocrash/corpus/manifest.json";

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub toolchains: Vec<Toolchain>,
    pub builds: Vec<Build>,
    pub crashes: Vec<Crash>,
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Toolchain {
    /// The release, such as `1.21.13`.
    pub name: String,
    pub goroot: PathBuf,
    pub go: PathBuf,
    /// As `go version` prints it, such as `go1.21.13`.
    pub version: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Build {
    pub program: String,
    pub toolchain: String,
    /// `default`, `stripped`, `pie`, `trimpath` or `nosections`.
    pub mode: String,
    pub binary: PathBuf,
    /// The unstripped build with the same text, for `stripped` and `nosections`.
    pub twin: Option<PathBuf>,
    #[serde(default)]
    pub cgo: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Crash {
    pub program: String,
    pub toolchain: String,
    pub mode: String,
    pub binary: PathBuf,
    pub pid: u32,
    pub unit: String,
    pub core: PathBuf,
    pub cursor: String,
    /// The runtime's crash text, as read back from the journal.
    pub stderr: PathBuf,
    /// The program's `expected.toml`.
    pub expected: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Skipped {
    pub program: String,
    pub toolchain: String,
    pub mode: String,
    pub reason: String,
}

/// The facts written by hand in a corpus program's `expected.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExpectedFacts {
    pub description: String,
    pub kind: String,
    pub headline: String,
    #[serde(default)]
    pub headline_alternatives: Vec<String>,
    pub signal: Option<String>,
    pub program_goroutines: usize,
    pub first_program_frame: String,
    #[serde(default)]
    pub first_program_frame_alternatives: Vec<String>,
    pub min_go: Option<String>,
    #[serde(default)]
    pub cgo: bool,
    pub min_wait_minutes: Option<u64>,
}

impl ExpectedFacts {
    pub fn load(path: &Path) -> ExpectedFacts {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
        toml::from_str(&text).unwrap_or_else(|err| panic!("invalid {}: {err}", path.display()))
    }

    pub fn headline_matches(&self, line: &str) -> bool {
        line == self.headline || self.headline_alternatives.iter().any(|h| h == line)
    }

    pub fn first_frame_matches(&self, function: &str) -> bool {
        function == self.first_program_frame
            || self
                .first_program_frame_alternatives
                .iter()
                .any(|f| f == function)
    }
}

/// Loads the corpus manifest. Returns `None`, after saying why on stderr,
/// when there is none; under `CI=true` a missing manifest fails the test,
/// because CI builds the corpus before running the tests.
pub fn manifest() -> Option<Manifest> {
    let path = std::env::var_os("GOCRASH_CORPUS_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MANIFEST));
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("invalid manifest {}: {err}", path.display())),
        ),
        Err(err) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "no corpus manifest at {} ({err}); run corpus/harness.py",
                    path.display()
                );
            }
            eprintln!(
                "skipped: no corpus manifest at {} ({err}); run scripts/test or corpus/harness.py",
                path.display()
            );
            None
        }
    }
}

impl Manifest {
    pub fn toolchain(&self, name: &str) -> &Toolchain {
        self.toolchains
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("manifest names toolchain {name} but does not list it"))
    }
}

/// Compares `actual` with the file `tests/snapshots/NAME`, or writes it
/// there when `GOCRASH_UPDATE_SNAPSHOTS` is set (after a deliberate change
/// of a help text).
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("GOCRASH_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("snapshot directory"))
            .expect("snapshot directory is writable");
        std::fs::write(&path, actual).expect("snapshot is writable");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {} ({err}); run with GOCRASH_UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs; run with GOCRASH_UPDATE_SNAPSHOTS=1 after a deliberate change",
        path.display()
    );
}

/// Returns the cgroup directories of the system unit `unit`: the unified
/// hierarchy's, or on a hybrid or legacy layout those of the `systemd` and
/// `unified` hierarchies that exist.
pub fn unit_cgroups(unit: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.join("system.slice").join(unit)];
    }
    ["systemd", "unified"]
        .iter()
        .map(|hierarchy| root.join(hierarchy))
        .filter(|hierarchy| hierarchy.is_dir())
        .map(|hierarchy| hierarchy.join("system.slice").join(unit))
        .collect()
}

/// Starts `args` through `systemd-cat -t TAG` inside the cgroups of the
/// system unit `unit`, with `GOTRACEBACK=crash`, so that journald files its
/// output under the unit and systemd-coredump its core, as for a service.
pub fn spawn_in_unit(unit: &str, tag: &str, args: &[&str]) -> std::process::Child {
    let cgroups = unit_cgroups(unit);
    for dir in &cgroups {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
    }
    let moves: String = cgroups
        .iter()
        .map(|dir| format!("echo $$ > {}/cgroup.procs && ", dir.display()))
        .collect();
    let quoted: Vec<String> = args.iter().map(|arg| format!("'{arg}'")).collect();
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{moves}exec systemd-cat -t {tag} {}",
            quoted.join(" ")
        ))
        .env("GOTRACEBACK", "crash")
        .spawn()
        .expect("sh runs")
}

/// Runs `binary` as [`spawn_in_unit`] does and waits for it to crash.
/// Returns its PID.
pub fn crash_in_unit(unit: &str, tag: &str, binary: &Path) -> u32 {
    let binary = binary.to_str().expect("UTF-8 binary path");
    let mut child = spawn_in_unit(unit, tag, &[binary]);
    let pid = child.id();
    let status = child.wait().expect("the program can be waited for");
    assert!(!status.success(), "{binary} did not crash");
    pid
}

/// Sets a limit of `limit` bytes on the size of the files `command` writes
/// (RLIMIT_FSIZE), which fails a write as a full file system does, and
/// ignores SIGXFSZ in the child, which would otherwise kill it.
pub fn limit_file_size(command: &mut std::process::Command, limit: u64) {
    use std::os::unix::process::CommandExt;

    // SAFETY: the closure runs in the child between fork and exec, and
    // calls only setrlimit and signal, which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            let size = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &size) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

/// Waits up to `wait` for the coredump entry of the crash of `pid` that
/// happened at or after `since_usec` (microseconds since the epoch). An
/// older crash of a process that had the same PID is skipped, as a machine
/// that ran the corpus many times has such crashes.
pub fn coredump_entry_after(
    pid: u32,
    since_usec: u64,
    wait: std::time::Duration,
) -> ingest::coredump::CoredumpRecord {
    use ingest::select::{CrashArg, Selector};

    let selector = Selector::default();
    let deadline = std::time::Instant::now() + wait;
    loop {
        match selector.newest(&[CrashArg::Pid(pid.into())]) {
            Ok(record) if record.crash_time_usec() >= since_usec => return record,
            Ok(_) if std::time::Instant::now() < deadline => {}
            Err(error) if error.is_no_match() && std::time::Instant::now() < deadline => {}
            Ok(record) => panic!(
                "the newest coredump entry for PID {pid} is from {}, before the crash",
                record.crash_time_usec()
            ),
            Err(error) => panic!("no coredump entry for PID {pid}: {error}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Returns the current time in microseconds since the epoch, as coredump
/// entries give their times.
pub fn now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

/// Returns the temporary files (`NAME.XXXXXX.partial`) that outputs written
/// with `-o` pass through, left in `dir`.
pub fn partial_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|e| e == "partial"))
                .collect()
        })
        .unwrap_or_default()
}
