//! A crash whose goroutine dump journald's rate limit cut: the crash text
//! gocrash rebuilds must report journald's "Suppressed N messages" note and
//! the shortened dump.
//!
//! journald reads a per-unit limit (`LogRateLimitBurst=`) only from a unit
//! file, which hosts without systemd as PID 1 (this test machine) do not
//! have. So the test lowers the global limit. It writes
//! `/etc/systemd/journald.conf.d/90-test-ratelimit.conf`, restarts journald
//! and crashes a Go program with 2000 parked goroutines in a unit cgroup.
//! It logs once more from that unit after the 30-second window so that
//! journald writes its note. Then it removes the drop-in and restarts
//! journald with `scripts/capture-pipeline start`. Restarting journald breaks the output
//! streams of every process logging at that moment, so the test is ignored
//! by default. `scripts/test` runs it alone after the other tests. To run it
//! by hand, as root: `cargo test --test ingest_ratelimit -- --ignored`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ingest::crashtext::{self, TextOptions};
use ingest::journal::Journal;
use ingest::select::Selector;

const DROP_IN: &str = "/etc/systemd/journald.conf.d/90-test-ratelimit.conf";
const DROP_IN_TEXT: &str =
    "# Written by gocrash's tests/ingest_ratelimit.rs; removed when it ends.\n\
[Journal]\nRateLimitIntervalSec=30s\nRateLimitBurst=100\n";
const UNIT: &str = "gocrash-test-ratelimit.service";
const GO: &str = "/var/cache/gocrash/go/1.22.10/go/bin/go";
const GOCACHE: &str = "/var/cache/gocrash/gocache/1.22.10";
const GOROUTINES: usize = 2000;
/// journald's window (RateLimitIntervalSec above) plus a margin.
const WINDOW_WAIT: Duration = Duration::from_secs(35);
const COREDUMP_WAIT: Duration = Duration::from_secs(120);
/// How many times the unit logs again before the test gives up on the note.
const LOG_AGAIN_ATTEMPTS: usize = 5;

const PROGRAM: &str = r#"package main

import (
	"fmt"
	"os"
	"sync"
)

func park(ch chan int, wg *sync.WaitGroup) {
	wg.Done()
	<-ch
}

func main() {
	ch := make(chan int)
	var wg sync.WaitGroup
	for i := 0; i < 2000; i++ {
		wg.Add(1)
		go park(ch, &wg)
	}
	wg.Wait()
	fmt.Fprintln(os.Stderr, "parked 2000 goroutines")
	panic("rate limit test: 2000 goroutines parked")
}
"#;

/// Lowers journald's rate limit while it lives, and restores the project's
/// configuration when dropped, even after a failed assertion.
struct LoweredRateLimit {
    scripts: PathBuf,
}

impl LoweredRateLimit {
    fn install() -> LoweredRateLimit {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
        assert!(
            !Path::new(DROP_IN).exists(),
            "{DROP_IN} exists already; another run is active or failed to clean up"
        );
        std::fs::write(DROP_IN, DROP_IN_TEXT)
            .expect("the journald drop-in is writable (run as root)");
        let fixture = LoweredRateLimit { scripts };
        fixture.restart_journald();
        fixture
    }

    /// Stops the running journald by its pid and starts it again through
    /// the capture pipeline script, which reads every drop-in.
    fn restart_journald(&self) {
        let output = Command::new("pgrep")
            .args(["-x", "systemd-journal"])
            .output()
            .unwrap();
        let pids = String::from_utf8_lossy(&output.stdout);
        if let Some(pid) = pids.lines().next() {
            let status = Command::new("kill").arg(pid).status().unwrap();
            assert!(status.success(), "kill {pid}");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let status = Command::new(self.scripts.join("capture-pipeline"))
            .arg("start")
            .status()
            .unwrap();
        assert!(status.success(), "capture-pipeline start failed");
    }
}

impl Drop for LoweredRateLimit {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(DROP_IN);
        self.restart_journald();
    }
}

fn build_program(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("main.go"), PROGRAM).unwrap();
    std::fs::write(dir.join("go.mod"), "module ratelimit\n\ngo 1.22\n").unwrap();
    let binary = dir.join("ratelimit");
    let status = Command::new(GO)
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(dir)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", GOCACHE)
        .status()
        .unwrap();
    assert!(status.success(), "go build failed");
    binary
}

#[test]
#[ignore = "restarts journald with a lowered rate limit; run alone with --ignored"]
fn rate_limited_dump_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let binary = build_program(dir.path());
    let before = Selector::default()
        .newest(&[])
        .expect("a coredump entry from before the test");
    let fixture = LoweredRateLimit::install();

    // systemd-coredump records the crash time in whole seconds.
    let started_usec = support::now_usec() / 1_000_000 * 1_000_000;
    let pid = support::crash_in_unit(UNIT, "ratelimit-test", &binary);
    let crashed_at = Instant::now();
    let record = support::coredump_entry_after(pid, started_usec, COREDUMP_WAIT);
    assert_eq!(record.unit.as_deref(), Some(UNIT));

    // journald writes its note only when the unit logs again after the
    // window, so the unit logs once more. The logger stays alive until
    // journald has read the line: journald finds the unit of a line in the
    // sender's /proc entry, and a line from an exited sender has no unit.
    // journald 252 once stored this line without any sender field (no
    // _PID, no unit) while the sender was alive. Such a line bypasses the
    // rate limit, so the unit logs again until the note appears.
    if let Some(rest) = WINDOW_WAIT.checked_sub(crashed_at.elapsed()) {
        std::thread::sleep(rest);
    }
    let mut attempts = 0;
    let (text, note) = loop {
        attempts += 1;
        support::spawn_in_unit(
            UNIT,
            "ratelimit-test",
            &["sh", "-c", "echo the unit logs again; sleep 2"],
        )
        .wait()
        .unwrap();
        let text = crashtext::read(&Journal::default(), &record, &TextOptions::default())
            .unwrap()
            .expect("the crash text");
        match text.loss.suppressed.clone() {
            Some(note) => break (text, note),
            None if attempts < LOG_AGAIN_ATTEMPTS => eprintln!(
                "no rate-limit note after the unit logged again ({attempts} of {LOG_AGAIN_ATTEMPTS})"
            ),
            None => panic!(
                "no rate-limit note after the unit logged again {attempts} times"
            ),
        }
    };
    eprintln!(
        "kept {} lines, {} goroutines; journald dropped {}; dump end {:?}",
        text.line_count(),
        text.traceback.main_goroutines().count(),
        note.dropped,
        text.loss.dump
    );
    assert!(note.after_crash);
    assert!(note.dropped > 0);
    assert!(text.loss.is_lossy());
    assert!(text.traceback.main_goroutines().count() < GOROUTINES);
    assert_eq!(
        text.headline().as_deref(),
        Some("panic: rate limit test: 2000 goroutines parked")
    );
    // Every goroutine prints at least a header, a function line and a
    // file line, so the lines kept and dropped cover at least that many.
    let total = text.line_count() as u64 + note.dropped;
    assert!(total >= 3 * GOROUTINES as u64, "{total} lines in all");

    // The pipeline is back after the restart, and entries written before
    // the test are still read.
    drop(fixture);
    assert!(!Path::new(DROP_IN).exists());
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let status = Command::new(scripts.join("capture-pipeline"))
        .arg("status")
        .status()
        .unwrap();
    assert!(status.success(), "the capture pipeline is not running");
    let again = Selector::default()
        .record_at(&before.cursor)
        .expect("the entry from before the test");
    assert_eq!(again.pid, before.pid);
    assert_eq!(again.filename, before.filename);
}
