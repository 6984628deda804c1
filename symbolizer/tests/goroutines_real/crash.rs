//! Builds `tests/programs/states` with the installed toolchains and
//! crashes it, keeping each core that systemd-coredump stores. Results are
//! cached under the test target directory, keyed by toolchain, mode and
//! crash kind, while the stored core still exists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const COREDUMP_DIR: &str = "/var/lib/systemd/coredump";
/// How long systemd-coredump may take to store a core once the process died.
const CORE_WAIT: Duration = Duration::from_secs(120);
const VERSIONS: [&str; 8] = [
    "1.19.8", "1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Default,
    Stripped,
    Pie,
    /// The stripped build's unstripped twin (same code), never crashed.
    Trimpath,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Default => "default",
            Mode::Stripped => "stripped",
            Mode::Pie => "pie",
            Mode::Trimpath => "trimpath",
        }
    }

    fn flags(self) -> &'static [&'static str] {
        match self {
            Mode::Default => &[],
            Mode::Stripped => &["-trimpath", "-ldflags=-s -w"],
            Mode::Pie => &["-buildmode=pie"],
            Mode::Trimpath => &["-trimpath"],
        }
    }
}

#[derive(Clone, Debug)]
pub struct Build {
    pub version: &'static str,
    pub mode: Mode,
    pub binary: PathBuf,
}

impl Build {
    pub fn name(&self) -> String {
        format!("go{} {}", self.version, self.mode.name())
    }
}

#[derive(Clone, Debug)]
pub struct Run {
    pub core: PathBuf,
    pub stderr: String,
}

pub fn skip_or_fail(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}");
    }
    eprintln!("skipped: {reason}");
}

fn go_binary(version: &str) -> PathBuf {
    if version == "1.19.8" {
        PathBuf::from("/usr/lib/go-1.19/bin/go")
    } else {
        PathBuf::from(format!("/var/cache/gocrash/go/{version}/go/bin/go"))
    }
}

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("goroutines_real");
    std::fs::create_dir_all(&dir).expect("the work directory can be made");
    dir
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/states")
}

/// Builds every installed toolchain in every mode, once per test binary.
pub fn builds() -> Vec<Build> {
    static BUILDS: OnceLock<Vec<Build>> = OnceLock::new();
    BUILDS
        .get_or_init(|| {
            let mut builds = Vec::new();
            if !Path::new(COREDUMP_DIR).is_dir() {
                return builds;
            }
            for version in VERSIONS {
                let go = go_binary(version);
                if !go.exists() {
                    eprintln!("go{version} is not installed");
                    continue;
                }
                for mode in [Mode::Default, Mode::Stripped, Mode::Pie, Mode::Trimpath] {
                    let out = work_dir().join(format!("{version}-{}", mode.name()));
                    std::fs::create_dir_all(&out).expect("the build directory can be made");
                    let binary = out.join("states");
                    let status = Command::new(&go)
                        .arg("build")
                        .args(mode.flags())
                        .arg("-o")
                        .arg(&binary)
                        .arg(".")
                        .current_dir(source_dir())
                        .env("GOTOOLCHAIN", "local")
                        .env("GOPROXY", "off")
                        .env("GOFLAGS", "-mod=mod")
                        .env("GOCACHE", format!("/var/cache/gocrash/gocache/{version}"))
                        .status()
                        .expect("go runs");
                    assert!(status.success(), "go{version} build {} failed", mode.name());
                    builds.push(Build {
                        version,
                        mode,
                        binary,
                    });
                }
            }
            builds
        })
        .clone()
}

/// Crashes `build` with `kind`, or returns the cached crash.
pub fn crashed(build: &Build, kind: &str) -> Option<Run> {
    static RUNS: OnceLock<Mutex<HashMap<(PathBuf, String), Run>>> = OnceLock::new();
    let runs = RUNS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut runs = runs.lock().unwrap_or_else(|e| e.into_inner());
    let key = (build.binary.clone(), kind.to_owned());
    if let Some(run) = runs.get(&key) {
        return Some(run.clone());
    }
    let run = cached_run(build, kind).or_else(|| crash_now(build, kind))?;
    runs.insert(key, run.clone());
    Some(run)
}

fn record_path(build: &Build, kind: &str) -> PathBuf {
    build.binary.with_file_name(format!("{kind}.crash"))
}

/// A crash recorded by an earlier run, valid while its core exists and is
/// newer than the binary.
fn cached_run(build: &Build, kind: &str) -> Option<Run> {
    let record = std::fs::read_to_string(record_path(build, kind)).ok()?;
    let core = PathBuf::from(record.lines().next()?);
    let core_time = std::fs::metadata(&core).ok()?.modified().ok()?;
    let binary_time = std::fs::metadata(&build.binary).ok()?.modified().ok()?;
    if core_time < binary_time {
        return None;
    }
    let stderr =
        std::fs::read_to_string(build.binary.with_file_name(format!("{kind}.stderr"))).ok()?;
    Some(Run { core, stderr })
}

fn crash_now(build: &Build, kind: &str) -> Option<Run> {
    let stderr_path = build.binary.with_file_name(format!("{kind}.stderr"));
    let script = format!(
        "ulimit -c unlimited; exec {} {kind} 2> {}",
        build.binary.display(),
        stderr_path.display()
    );
    let started = std::time::SystemTime::now();
    let child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("GOTRACEBACK", "crash")
        .current_dir(work_dir())
        .spawn()
        .expect("bash runs");
    let pid = child.id();
    let output = child.wait_with_output().expect("the crash finishes");
    assert!(
        !output.status.success(),
        "{} {kind} did not crash",
        build.name()
    );
    let core = wait_for_core(pid, started)?;
    std::fs::write(record_path(build, kind), format!("{}\n", core.display()))
        .expect("the record is written");
    let stderr = std::fs::read_to_string(&stderr_path).expect("stderr was captured");
    Some(Run { core, stderr })
}

/// Finds the core systemd-coredump stores for `pid`. Pids are reused, and
/// the store keeps cores of earlier runs, so only a core written after the
/// crash started counts.
fn wait_for_core(pid: u32, started: std::time::SystemTime) -> Option<PathBuf> {
    let marker = format!(".{pid}.");
    // File times have a coarser grain than the clock read at the start.
    let not_before = started
        .checked_sub(Duration::from_secs(2))
        .unwrap_or(started);
    let start = Instant::now();
    while start.elapsed() < CORE_WAIT {
        if let Ok(entries) = std::fs::read_dir(COREDUMP_DIR) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let fresh = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|time| time >= not_before);
                if name.starts_with("core.states.")
                    && name.contains(&marker)
                    && !name.contains(".#")
                    && fresh
                {
                    // systemd-coredump writes to a temporary name and renames when done.
                    return Some(entry.path());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("no core from pid {pid} within {CORE_WAIT:?}");
    None
}
