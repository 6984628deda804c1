//! `gocrash debug` with the real delve on real corpus cores. The server it
//! starts lists the goroutines the runtime printed and `gocrash symbolize`
//! rebuilds. On SIGTERM it stops
//! delve and removes the decompressed core. It rejects addresses other
//! hosts can reach, and it cleans up after a run that was killed.
//!
//! Each test runs gocrash with its own `XDG_RUNTIME_DIR`, so runs in
//! parallel never see each other's files.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingest::traceback::{GoroutineStatus, Traceback};

use serde_json::{json, Value};

/// How long a delve server may take to load a core before the test gives
/// up. This bounds a hang; it asserts nothing about speed.
const START_LIMIT: Duration = Duration::from_secs(300);
/// The programs whose Go 1.19 cores are opened in delve: all goroutines
/// parked, a panic on the main goroutine, a panic on another goroutine,
/// and goroutines spinning when a signal arrived.
const PROGRAMS: [&str; 4] = ["deadlock", "nilpointer", "goroutinepanic", "sigquit"];

/// Returns true when delve is installed; without it the tests skip, except
/// under CI, where the setup installs it.
fn have_delve() -> bool {
    let found = Command::new("dlv")
        .arg("version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "dlv is not installed; scripts/install-deps installs it"
        );
        eprintln!("skipped: dlv is not installed");
    }
    found
}

fn go119_crash(manifest: &support::Manifest, program: &str) -> support::Crash {
    manifest
        .crashes
        .iter()
        .find(|c| c.program == program && c.toolchain == "1.19.8" && c.mode == "default")
        .unwrap_or_else(|| panic!("the manifest has no Go 1.19 default crash of {program}"))
        .clone()
}

/// A running `gocrash debug`, the lines it printed on stdout, and its
/// stderr so far.
struct DebugRun {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    runtime_dir: PathBuf,
}

impl DebugRun {
    fn start(core: &Path, extra: &[&str], runtime_dir: &Path) -> DebugRun {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gocrash"))
            .arg("debug")
            .arg(core)
            .args(extra)
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gocrash starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let collected = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("{line}");
                collected.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        DebugRun {
            child,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
            runtime_dir: runtime_dir.to_path_buf(),
        }
    }

    /// Reads stdout up to the `dlv connect ADDR` line; returns the address
    /// and the decompressed core's path.
    fn wait_for_server(&self) -> (String, PathBuf) {
        let mut scratch = None;
        loop {
            let line = self
                .lines
                .recv_timeout(START_LIMIT)
                .expect("gocrash prints the server's address before its stdout ends");
            if let Some(path) = line.split("(decompressed to ").nth(1) {
                scratch = Some(PathBuf::from(path.trim_end_matches(')')));
            }
            if let Some(address) = line.trim().strip_prefix("dlv connect ") {
                let scratch = scratch.expect("the core line names the decompressed core");
                return (address.to_string(), scratch);
            }
        }
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill has no memory effects; the pid is our unreaped child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    fn scratch_dir(&self) -> PathBuf {
        self.runtime_dir.join("gocrash")
    }

    /// Waits for gocrash to exit and returns its status and all of its
    /// stderr.
    fn finish(&mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().unwrap();
        }
        (status, self.stderr.lock().unwrap().clone())
    }
}

impl Drop for DebugRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the pids of the processes whose parent is `parent` and whose
/// name is `name`.
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The name is in parentheses and may contain spaces; the fields
        // after it are state, then ppid.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok());
        if comm == name && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Sends one JSON-RPC 1.0 request to delve and reads its response.
fn call(address: &str, method: &str, params: Value) -> Value {
    let mut stream = TcpStream::connect(address).expect("delve accepts connections");
    let request = json!({"method": method, "params": [params], "id": 1});
    stream.write_all(request.to_string().as_bytes()).unwrap();
    let response: Value = serde_json::Deserializer::from_reader(&stream)
        .into_iter::<Value>()
        .next()
        .expect("delve responds")
        .expect("delve responds with JSON");
    assert_eq!(
        response["error"],
        Value::Null,
        "{method} failed: {response}"
    );
    response["result"].clone()
}

/// A goroutine as delve lists it.
struct DelveGoroutine {
    /// The function of `currentLoc`.
    function: String,
    /// The thread running it; 0 for none.
    thread: u64,
}

/// Lists delve's goroutines by id.
fn delve_goroutines(address: &str) -> BTreeMap<u64, DelveGoroutine> {
    let result = call(
        address,
        "RPCServer.ListGoroutines",
        json!({"Start": 0, "Count": 0}),
    );
    let goroutines = result["Goroutines"].as_array().expect("a Goroutines list");
    goroutines
        .iter()
        .map(|g| {
            let id = g["id"].as_u64().expect("a goroutine id");
            let function = g["currentLoc"]["function"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let thread = g["threadID"].as_u64().unwrap_or(0);
            (id, DelveGoroutine { function, thread })
        })
        .collect()
}

/// Goroutines of the runtime's crash text: id to status and first frame.
fn text_goroutines(traceback: &Traceback) -> BTreeMap<u64, (GoroutineStatus, Option<String>)> {
    traceback
        .main_goroutines()
        .filter(|g| g.id.0 != 0)
        .map(|g| {
            let shown = traceback.goroutine(g.id).unwrap_or(g);
            (
                g.id.0,
                (g.status, shown.frames.first().map(|f| f.function.clone())),
            )
        })
        .collect()
}

/// Returns the goroutines of `gocrash symbolize --json`: id to the function
/// of the first frame the runtime would print.
fn symbolized_goroutines(core: &Path) -> BTreeMap<u64, Option<String>> {
    let output = Command::new(env!("CARGO_BIN_EXE_gocrash"))
        .arg("symbolize")
        .arg(core)
        .arg("--json")
        .output()
        .unwrap();
    let document: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "symbolize --json printed no JSON ({err}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let goroutines = document["goroutines"]
        .as_array()
        .expect("a goroutines list");
    goroutines
        .iter()
        .filter_map(|g| {
            let id = g["id"].as_u64()?;
            let first = g["frames"].as_array().and_then(|frames| {
                let frame = frames.iter().find(|f| f["printed"] == Value::Bool(true))?;
                // Inlined calls come innermost first, before the physical
                // function.
                let inner = frame["inlined"]
                    .as_array()
                    .and_then(|inlined| inlined.first());
                inner.unwrap_or(frame)["function"]
                    .as_str()
                    .map(str::to_string)
            });
            Some((id, first))
        })
        .collect()
}

/// Maps the function name the runtime prints to the one delve shows:
/// the runtime prints `runtime.gopanic` as `panic`.
fn delve_name(printed: &str) -> &str {
    match printed {
        "panic" => "runtime.gopanic",
        other => other,
    }
}

#[test]
fn delve_lists_text_goroutines() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    if !have_delve() {
        return;
    }
    for program in PROGRAMS {
        let crash = go119_crash(&manifest, program);
        let text = std::fs::read_to_string(&crash.stderr).unwrap();
        let traceback = ingest::traceback::parse(&text);
        let expected = text_goroutines(&traceback);
        assert!(
            !expected.is_empty(),
            "{program}: the crash text has no goroutines"
        );

        let runtime_dir = tempfile::tempdir().unwrap();
        let run = DebugRun::start(
            &crash.core,
            &["--listen", "127.0.0.1:0"],
            runtime_dir.path(),
        );
        let (address, scratch) = run.wait_for_server();
        assert!(
            scratch.exists(),
            "{program}: {} does not exist",
            scratch.display()
        );
        let listed = delve_goroutines(&address);

        let expected_ids: BTreeSet<u64> = expected.keys().copied().collect();
        let listed_ids: BTreeSet<u64> = listed.keys().copied().collect();
        assert_eq!(listed_ids, expected_ids, "{program}: goroutine ids differ");

        let symbolized = symbolized_goroutines(&crash.core);
        let symbolized_ids: BTreeSet<u64> = symbolized.keys().copied().collect();
        assert_eq!(
            listed_ids, symbolized_ids,
            "{program}: delve and symbolize list different goroutines"
        );

        let mut compared = 0;
        for (id, (status, first)) in &expected {
            // For a goroutine on a thread, delve shows where the thread
            // stopped (the runtime's crash code, or a futex), while the
            // runtime prints where the goroutine panicked or entered its
            // system call. Only goroutines off a thread are compared.
            let goroutine = &listed[id];
            if goroutine.thread != 0 {
                continue;
            }
            let Some(first) = first else { continue };
            assert_eq!(
                goroutine.function.as_str(),
                delve_name(first),
                "{program}: goroutine {id} ({status:?}) is at {} in delve, at {first} in the crash text",
                goroutine.function
            );
            let from_core = symbolized[id].as_deref().map(delve_name);
            assert_eq!(
                from_core,
                Some(goroutine.function.as_str()),
                "{program}: goroutine {id} is at {} in delve, at {from_core:?} in symbolize --json",
                goroutine.function
            );
            compared += 1;
        }
        assert!(compared > 0, "{program}: no parked goroutine was compared");
        eprintln!(
            "{program}: {} goroutines listed, {compared} current functions compared",
            listed.len()
        );
    }
}

#[test]
fn sigterm_stops_delve_and_removes_core() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    if !have_delve() {
        return;
    }
    let crash = go119_crash(&manifest, "deadlock");
    let runtime_dir = tempfile::tempdir().unwrap();
    let mut run = DebugRun::start(&crash.core, &[], runtime_dir.path());
    let (address, scratch) = run.wait_for_server();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    assert!(
        scratch.starts_with(run.scratch_dir()),
        "{}",
        scratch.display()
    );
    let delve = children_named(run.child.id(), "dlv");
    assert_eq!(delve.len(), 1, "gocrash runs one delve: {delve:?}");

    run.signal(libc::SIGTERM);
    let (status, stderr) = run.finish();

    assert!(
        status.success(),
        "gocrash exits cleanly after SIGTERM: {status}\n{stderr}"
    );
    assert!(
        !process_exists(delve[0]),
        "delve (pid {}) is still running",
        delve[0]
    );
    assert!(!scratch.exists(), "{} was not removed", scratch.display());
}

#[test]
fn json_names_the_server() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    if !have_delve() {
        return;
    }
    let crash = go119_crash(&manifest, "deadlock");
    let runtime_dir = tempfile::tempdir().unwrap();
    let mut run = DebugRun::start(&crash.core, &["--json"], runtime_dir.path());
    let line = run
        .lines
        .recv_timeout(START_LIMIT)
        .expect("gocrash prints the server's address");
    let connection: Value = serde_json::from_str(&line).expect("one JSON object on one line");
    assert_eq!(connection["schema"], "gocrash.debug/1");
    let address = connection["address"].as_str().expect("an address");
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    assert_eq!(connection["connect"], format!("dlv connect {address}"));
    assert_eq!(connection["binary"], crash.binary.to_str().unwrap());
    assert_eq!(connection["core"], crash.core.to_str().unwrap());
    let scratch = PathBuf::from(connection["decompressed_core"].as_str().expect("a path"));
    assert!(scratch.exists(), "{}", scratch.display());
    let port: u64 = address.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(connection["vscode"]["port"], port);
    assert_eq!(connection["vscode"]["mode"], "remote");

    run.signal(libc::SIGTERM);
    let (status, stderr) = run.finish();
    assert!(status.success(), "{status}\n{stderr}");
    assert!(!scratch.exists(), "{} was not removed", scratch.display());
}

#[test]
fn remote_listen_is_rejected() {
    let output = Command::new(env!("CARGO_BIN_EXE_gocrash"))
        .args(["debug", "/nonexistent/core", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--allow-remote"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn killed_run_leftovers_are_removed() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    if !have_delve() {
        return;
    }
    let crash = go119_crash(&manifest, "deadlock");
    let runtime_dir = tempfile::tempdir().unwrap();

    let mut killed = DebugRun::start(&crash.core, &[], runtime_dir.path());
    let (_, leftover) = killed.wait_for_server();
    let delve = children_named(killed.child.id(), "dlv");
    assert_eq!(delve.len(), 1, "gocrash runs one delve: {delve:?}");
    killed.signal(libc::SIGKILL);
    killed.finish();
    assert!(
        leftover.exists(),
        "a killed gocrash cannot remove {}",
        leftover.display()
    );

    let mut next = DebugRun::start(&crash.core, &[], runtime_dir.path());
    let (_, fresh) = next.wait_for_server();

    assert_ne!(fresh, leftover);
    assert!(!leftover.exists(), "{} was left behind", leftover.display());
    // The kernel sends the orphaned delve SIGTERM (PR_SET_PDEATHSIG); wait
    // for it to go, within a bound that only stops a hang.
    for _ in 0..600 {
        if !process_exists(delve[0]) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !process_exists(delve[0]),
        "the killed run's delve (pid {}) is still running",
        delve[0]
    );

    next.signal(libc::SIGTERM);
    let (status, stderr) = next.finish();
    assert!(status.success(), "{stderr}");
    assert!(!fresh.exists());
    assert!(
        stderr.contains("removed 1 decompressed core(s)"),
        "gocrash does not say it removed the leftover: {stderr}"
    );
}

#[test]
fn missing_delve_is_reported() {
    // A command name is searched on PATH; a path is run as it is.
    let output = Command::new(env!("CARGO_BIN_EXE_gocrash"))
        .args(["debug", "/nonexistent/core", "--dlv", "dlv-not-installed"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("delve (dlv-not-installed) is not installed or not on PATH"),
        "{stderr}"
    );
    assert!(stderr.contains("apt-get install delve"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_gocrash"))
        .args(["debug", "/nonexistent/core", "--dlv", "/nonexistent/dlv"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("delve was not found at /nonexistent/dlv: no such file"),
        "{stderr}"
    );
}

#[test]
fn failed_delve_start_is_explained() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = go119_crash(&manifest, "deadlock");
    let work = tempfile::tempdir().unwrap();
    // A stand-in for delve that reports a version and then fails to load
    // the core, as delve does for a core it cannot read.
    let fake = work.path().join("dlv");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         if [ \"$1\" = version ]; then echo 'Delve Debugger'; echo 'Version: 1.20.2'; exit 0; fi\n\
         echo 'could not open debug info' >&2\n\
         echo 'core file is damaged' >&2\n\
         exit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_gocrash"))
        .arg("debug")
        .arg(&crash.core)
        .arg("--dlv")
        .arg(&fake)
        .env("XDG_RUNTIME_DIR", work.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("delve failed to start (exit status 3)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} core ", fake.display())),
        "the command line is missing: {stderr}"
    );
    assert!(
        stderr.contains("--headless --listen=127.0.0.1:0"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "\n  last lines of delve's stderr:\n    could not open debug info\n    core file is damaged"
        ),
        "delve's stderr is missing or not on lines of its own: {stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(work.path().join("gocrash"))
        .unwrap()
        .collect();
    assert!(
        left.is_empty(),
        "the decompressed core was not removed: {left:?}"
    );
}

#[test]
fn stripped_binary_is_refused() {
    if !have_delve() {
        return;
    }
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer" && c.toolchain == "1.19.8" && c.mode == "stripped")
        .expect("the manifest has no stripped Go 1.19 crash of nilpointer");
    let work = tempfile::tempdir().unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_gocrash"))
        .arg("debug")
        .arg(&crash.core)
        .arg("--binary")
        .arg(&crash.binary)
        .arg("--json")
        .env("XDG_RUNTIME_DIR", work.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "a server was announced: {stdout}");
    assert!(
        stderr.contains("has no DWARF debugging information"),
        "{stderr}"
    );
    assert!(stderr.contains("gocrash symbolize"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(work.path().join("gocrash"))
        .unwrap()
        .collect();
    assert!(
        left.is_empty(),
        "the decompressed core was not removed: {left:?}"
    );
}

/// Returns the installed delve's `major.minor`.
fn delve_release() -> Option<(u32, u32)> {
    let output = Command::new("dlv").arg("version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let version = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Version:"))?
        .trim();
    let mut parts = version.trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[test]
fn newer_go_warns_and_still_serves() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    if !have_delve() {
        return;
    }
    let newest = manifest
        .toolchains
        .iter()
        .map(|t| t.name.clone())
        .max_by_key(|name| {
            let mut parts = name.split('.').map(|part| part.parse::<u32>().unwrap_or(0));
            (parts.next(), parts.next(), parts.next())
        });
    let newest = newest.expect("the manifest lists toolchains");
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "deadlock" && c.toolchain == newest && c.mode == "default")
        .expect("a deadlock crash of the newest toolchain");
    let go_minor: u32 = newest
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap();
    let too_new =
        delve_release().is_some_and(|(major, minor)| major == 1 && minor >= 20 && minor < go_minor);

    let runtime_dir = tempfile::tempdir().unwrap();
    let mut run = DebugRun::start(&crash.core, &[], runtime_dir.path());
    let (address, _) = run.wait_for_server();
    let listed = delve_goroutines(&address);
    let text = std::fs::read_to_string(&crash.stderr).unwrap();
    let expected = text_goroutines(&ingest::traceback::parse(&text));
    let listed_ids: BTreeSet<u64> = listed.keys().copied().collect();
    let expected_ids: BTreeSet<u64> = expected.keys().copied().collect();
    run.signal(libc::SIGTERM);
    let (status, stderr) = run.finish();
    assert!(status.success(), "{stderr}");

    assert_eq!(
        listed_ids, expected_ids,
        "Go {newest}: goroutine ids differ"
    );
    if too_new {
        assert!(
            stderr.contains(&format!("but the binary was built by Go 1.{go_minor}")),
            "{stderr}"
        );
        assert!(stderr.contains("--check-go-version=false"), "{stderr}");
    } else {
        eprintln!("the installed delve supports Go {newest}; no warning expected");
        assert!(!stderr.contains("--check-go-version=false"), "{stderr}");
    }
}

#[test]
fn journal_selection_by_executable() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    if !have_delve() {
        return;
    }
    let crash = go119_crash(&manifest, "deadlock");
    let runtime_dir = tempfile::tempdir().unwrap();
    // The executable path selects its newest crash from the journal.
    let mut run = DebugRun::start(&crash.binary, &[], runtime_dir.path());
    let (address, scratch) = run.wait_for_server();
    let listed = delve_goroutines(&address);
    run.signal(libc::SIGTERM);
    let (status, stderr) = run.finish();

    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("/var/lib/systemd/coredump/core.deadlock."),
        "the store's core is not named: {stderr}"
    );
    assert!(
        listed.contains_key(&1),
        "goroutine 1 is missing: {:?}",
        listed.keys().collect::<Vec<_>>()
    );
    assert!(!scratch.exists(), "{} was not removed", scratch.display());
}

#[test]
fn help_states_exit_status() {
    let output = Command::new(env!("CARGO_BIN_EXE_gocrash"))
        .args(["debug", "--help"])
        .output()
        .expect("gocrash runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("Exit status: 0 when delve exits with 0, or when gocrash stopped it"),
        "{help}"
    );
    assert!(help.contains("3 when no crash matched."), "{help}");
}
