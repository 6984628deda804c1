//! `gocrash list --json` over every corpus crash, checked against what
//! systemd's own tools print for the same journal. `coredumpctl --json=short
//! list` gives the PID, signal and executable. journalctl gives the unit,
//! because the short JSON of coredumpctl 252 has no unit. The runtime's
//! crash text gives the headline.
//!
//! Needs the corpus manifest and the journal it was captured into; skipped
//! with a message without a manifest, and failed when `CI=true`.

mod support;

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{Crash, ExpectedFacts};

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
const COREDUMP_MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";
/// Prefixes of the lines the Go runtime starts a crash report with.
const HEADLINE_PREFIXES: &[&str] = &["panic: ", "fatal error: ", "unexpected fault address "];

fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{program} does not run: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn label(crash: &Crash) -> String {
    format!(
        "{} (Go {}, {}, PID {})",
        crash.program, crash.toolchain, crash.mode, crash.pid
    )
}

/// Returns the `t=` part of a journal cursor: the entry's realtime in
/// microseconds, which coredumpctl prints as a crash's time.
fn cursor_realtime(cursor: &str) -> u64 {
    let hex = cursor
        .split(';')
        .find_map(|part| part.strip_prefix("t="))
        .unwrap_or_else(|| panic!("no t= in cursor {cursor}"));
    u64::from_str_radix(hex, 16).unwrap_or_else(|error| panic!("cursor {cursor}: {error}"))
}

/// Reports whether a line starts a crash report: `panic: `, `fatal error: `,
/// or a signal name such as `SIGQUIT: quit`.
fn starts_headline(line: &str) -> bool {
    if HEADLINE_PREFIXES.iter().any(|p| line.starts_with(p)) {
        return true;
    }
    let Some((name, _)) = line.split_once(": ") else {
        return false;
    };
    name.len() > 3
        && name.starts_with("SIG")
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Returns the first line of a crash text that starts a crash report.
fn runtime_headline(crash: &Crash) -> String {
    let text = std::fs::read_to_string(&crash.stderr)
        .unwrap_or_else(|error| panic!("{}: {error}", crash.stderr.display()));
    text.lines()
        .find(|line| starts_headline(line))
        .unwrap_or_else(|| {
            panic!(
                "{}: no headline in {}",
                label(crash),
                crash.stderr.display()
            )
        })
        .to_string()
}

#[test]
fn headline_lines_are_recognised() {
    assert!(starts_headline("panic: send on closed channel"));
    assert!(starts_headline(
        "fatal error: all goroutines are asleep - deadlock!"
    ));
    assert!(starts_headline("SIGQUIT: quit"));
    assert!(starts_headline("SIGSEGV: segmentation violation"));
    assert!(!starts_headline(
        "runtime: goroutine stack exceeds 1000000000-byte limit"
    ));
    assert!(!starts_headline("SIG: x"));
    assert!(!starts_headline("goroutine 1 [running]:"));
}

#[test]
fn lines_and_reverse_pick_the_newest() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let unit = &manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer")
        .expect("the manifest has a nilpointer crash")
        .unit;
    let pids = |extra: &[&str]| -> Vec<u64> {
        let mut args = vec!["list", "--unit", unit.as_str(), "--json"];
        args.extend_from_slice(extra);
        let output = run(GOCRASH, &args);
        let rows: Value = serde_json::from_slice(&output.stdout).expect("a JSON array");
        rows.as_array()
            .expect("an array")
            .iter()
            .map(|row| row["pid"].as_u64().expect("a PID"))
            .collect()
    };
    let all = pids(&[]);
    assert!(all.len() > 3, "{} crashes of {unit}", all.len());
    let newest = pids(&["-n", "3"]);
    assert_eq!(newest, all[all.len() - 3..]);
    let mut reversed = pids(&["-n", "3", "-r"]);
    reversed.reverse();
    assert_eq!(reversed, newest);
}

#[test]
fn list_json_equals_coredumpctl_for_every_crash() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    assert!(
        !manifest.crashes.is_empty(),
        "the manifest lists no crashes"
    );

    let output = run(GOCRASH, &["list", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).expect("list --json is JSON");
    let rows: HashMap<&str, &Value> = rows
        .iter()
        .map(|row| (row["cursor"].as_str().expect("a cursor"), row))
        .collect();

    let output = run("coredumpctl", &["--no-pager", "--json=short", "list"]);
    let listed: Vec<Value> =
        serde_json::from_slice(&output.stdout).expect("coredumpctl prints JSON");
    let coredumpctl: HashMap<(u64, u64), &Value> = listed
        .iter()
        .map(|row| {
            let pid = row["pid"].as_u64().expect("a pid");
            let time = row["time"].as_u64().expect("a time");
            ((pid, time), row)
        })
        .collect();

    let output = run(
        "journalctl",
        &[
            "--no-pager",
            "--output=json",
            "--output-fields=COREDUMP_UNIT",
            &format!("MESSAGE_ID={COREDUMP_MESSAGE_ID}"),
        ],
    );
    let units: HashMap<String, String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("journalctl JSON"))
        .filter_map(|entry| {
            let cursor = entry["__CURSOR"].as_str()?.to_string();
            let unit = entry["COREDUMP_UNIT"].as_str()?.to_string();
            Some((cursor, unit))
        })
        .collect();

    let mut expected_headlines = HashMap::new();
    for crash in &manifest.crashes {
        let label = label(crash);
        let row = rows
            .get(crash.cursor.as_str())
            .unwrap_or_else(|| panic!("{label}: not listed"));
        let time = cursor_realtime(&crash.cursor);
        let systemd = coredumpctl
            .get(&(u64::from(crash.pid), time))
            .unwrap_or_else(|| panic!("{label}: not listed by coredumpctl"));

        assert_eq!(row["pid"], systemd["pid"], "{label}");
        assert_eq!(row["pid"], crash.pid, "{label}");
        assert_eq!(row["signal"], systemd["sig"], "{label}");
        assert_eq!(row["exe"], systemd["exe"], "{label}");
        assert_eq!(row["exe"], crash.binary.to_str().unwrap(), "{label}");
        assert_eq!(row["state"], systemd["corefile"], "{label}");
        assert_eq!(row["size"], systemd["size"], "{label}");
        assert_eq!(
            row["unit"].as_str(),
            units.get(&crash.cursor).map(String::as_str),
            "{label}"
        );
        assert_eq!(row["unit"], crash.unit.as_str(), "{label}");

        let headline = runtime_headline(crash);
        assert_eq!(row["headline"], headline.as_str(), "{label}");
        assert_eq!(row["headline_source"], "text", "{label}");
        let facts = expected_headlines
            .entry(crash.expected.clone())
            .or_insert_with(|| ExpectedFacts::load(&crash.expected));
        assert!(
            facts.headline_matches(&headline),
            "{label}: the runtime printed {headline:?}, expected.toml says {:?}",
            facts.headline
        );
    }
    eprintln!(
        "{} corpus crashes listed as coredumpctl lists them",
        manifest.crashes.len()
    );
}
