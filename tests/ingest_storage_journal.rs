//! A core that systemd-coredump stored inside its journal entry
//! (`Storage=journal`), captured through the real pipeline and read back by
//! `gocrash info`, `dump` and `symbolize`.
//!
//! The test writes `/etc/systemd/coredump.conf.d/90-test-storage-journal.conf`,
//! which sorts after the pipeline's `60-gocrash.conf` and so overrides its
//! `Storage=external`. systemd-coredump reads its configuration each time it
//! runs, and the pipeline starts one per crash (socket activation with
//! `Accept=yes`), so nothing is restarted. The test crashes a small Go
//! program in a unit cgroup and removes the drop-in when it ends, also after
//! a failed assertion. Every crash on the machine while the drop-in exists
//! is stored in the journal, so the test is ignored by default. `scripts/test`
//! runs it alone after the other tests. To run it by hand, as root:
//! `cargo test --test ingest_storage_journal -- --ignored --test-threads=1`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ingest::coredump::{CoreState, CoredumpStore};
use serde_json::Value;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
const DROP_IN: &str = "/etc/systemd/coredump.conf.d/90-test-storage-journal.conf";
const DROP_IN_TEXT: &str =
    "# Written by gocrash's tests/ingest_storage_journal.rs; removed when it ends.\n\
[Coredump]\nStorage=journal\n";
const UNIT: &str = "gocrash-test-storage-journal.service";
const GO: &str = "/var/cache/gocrash/go/1.22.10/go/bin/go";
const GOCACHE: &str = "/var/cache/gocrash/gocache/1.22.10";
/// Goroutines the program parks in `main.worker` before it panics.
const WORKERS: usize = 8;
const HEADLINE: &str = "panic: storage=journal test: 8 workers parked";
const COREDUMP_WAIT: Duration = Duration::from_secs(120);

const PROGRAM: &str = r#"package main

import (
	"fmt"
	"sync"
)

func worker(ch chan int, wg *sync.WaitGroup) {
	wg.Done()
	<-ch
}

func main() {
	ch := make(chan int)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go worker(ch, &wg)
	}
	wg.Wait()
	panic(fmt.Sprintf("storage=journal test: %d workers parked", 8))
}
"#;

/// Makes systemd-coredump store cores in the journal while it lives, and
/// removes the drop-in when dropped, even after a failed assertion.
struct JournalStorage;

impl JournalStorage {
    fn install() -> JournalStorage {
        assert!(
            !Path::new(DROP_IN).exists(),
            "{DROP_IN} exists already; another run is active or failed to clean up"
        );
        std::fs::write(DROP_IN, DROP_IN_TEXT)
            .expect("the coredump drop-in is writable (run as root)");
        JournalStorage
    }
}

impl Drop for JournalStorage {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(DROP_IN) {
            eprintln!("failed to remove {DROP_IN}: {error}");
        }
    }
}

fn build_program(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("main.go"), PROGRAM).unwrap();
    std::fs::write(dir.join("go.mod"), "module storagejournal\n\ngo 1.22\n").unwrap();
    let binary = dir.join("storagejournal");
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

fn gocrash(args: &[&str]) -> Output {
    let output = Command::new(GOCRASH)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("gocrash runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "gocrash {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
#[ignore = "makes every crash on the machine store its core in the journal; run alone with --ignored"]
fn core_inside_the_journal_is_symbolized() {
    let dir = tempfile::tempdir().unwrap();
    let binary = build_program(dir.path());

    let storage = JournalStorage::install();
    // systemd-coredump records the crash time in whole seconds.
    let started_usec = support::now_usec() / 1_000_000 * 1_000_000;
    let pid = support::crash_in_unit(UNIT, "storage-journal-test", &binary);
    let record = support::coredump_entry_after(pid, started_usec, COREDUMP_WAIT);
    drop(storage);
    assert!(!Path::new(DROP_IN).exists());

    assert_eq!(record.unit.as_deref(), Some(UNIT));
    assert_eq!(record.exe.as_deref(), Some(binary.as_path()));
    assert_eq!(record.filename, None, "the core was stored in a file");
    let inline_len = record.inline_core_len.expect("a COREDUMP field");
    assert!(inline_len > 0);
    assert_eq!(
        CoredumpStore::default().state(&record),
        CoreState::Journal { len: inline_len }
    );

    let pid_text = pid.to_string();
    let info: Value = serde_json::from_slice(&gocrash(&["info", "--json", &pid_text]).stdout)
        .expect("info --json is JSON");
    assert_eq!(info["core"]["state"], "journal");
    assert_eq!(info["record"]["cursor"], record.cursor.as_str());
    assert_eq!(info["build_id_check"]["result"], "matched");
    assert_eq!(info["text"]["headline"], HEADLINE);

    let out = dir.path().join("inline.core");
    gocrash(&["dump", &pid_text, "-o", out.to_str().unwrap()]);
    let core = std::fs::read(&out).unwrap();
    assert!(core.starts_with(b"\x7fELF"));
    assert_eq!(core.len() as u64, inline_len);

    let document: Value =
        serde_json::from_slice(&gocrash(&["symbolize", "--json", &pid_text]).stdout)
            .expect("symbolize --json is JSON");
    assert_eq!(document["partial"], false, "{}", document["missing"]);
    let goroutines = document["goroutines"].as_array().expect("goroutines");
    let crashing: Vec<&Value> = goroutines
        .iter()
        .filter(|g| g["crashing"] == true)
        .collect();
    assert_eq!(crashing.len(), 1);
    let functions: Vec<&str> = crashing[0]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["function"].as_str())
        .collect();
    assert!(functions.contains(&"main.main"), "{functions:?}");
    // Go 1.22 starts `go worker(...)` through a wrapper, main.main.gowrap1,
    // with worker inlined into it.
    let runs_worker = |frame: &Value| {
        frame["function"] == "main.worker"
            || frame["inlined"]
                .as_array()
                .is_some_and(|inlined| inlined.iter().any(|f| f["function"] == "main.worker"))
    };
    let workers = goroutines
        .iter()
        .filter(|g| {
            g["frames"]
                .as_array()
                .is_some_and(|frames| frames.iter().any(runs_worker))
        })
        .count();
    assert_eq!(workers, WORKERS);

    let go = String::from_utf8(gocrash(&["symbolize", "--format", "go", &pid_text]).stdout)
        .expect("UTF-8 output");
    assert_eq!(go.lines().next(), Some(HEADLINE));
    assert_eq!(go.matches("main.worker(").count(), WORKERS, "{go}");
}
