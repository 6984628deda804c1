//! Every corpus crash went through the real capture pipeline: systemd-coredump
//! stored its core and logged an entry under the program's unit, and journald
//! holds the runtime's crash text under the same unit. The crash text, parsed,
//! shows the facts written by hand in the program's `expected.toml`.
//!
//! Needs the manifest that `corpus/harness.py` writes (scripts/test runs it).

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use ingest::crashtext::{headline, next_in_batch};
use ingest::journal::direct::FileHeads;
use ingest::journal::Journal;
use ingest::traceback::{self, Traceback};
use serde_json::Value;
use support::{Crash, ExpectedFacts};

const COREDUMP_MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";

/// Runs journalctl and returns its JSON entries.
fn journal(args: &[&str]) -> Vec<Value> {
    let output = Command::new("journalctl")
        .args(["--no-pager", "--output=json", "--all"])
        .args(args)
        .output()
        .expect("journalctl runs");
    assert!(
        output.status.success(),
        "journalctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("journalctl prints JSON"))
        .collect()
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Reports whether `entry` is a copy of `previous` that journald wrote again
/// as the first entry of a new journal file, after the append to the full
/// file had failed, by the rule the crash text reader applies.
fn is_rewrite(previous: &Value, entry: &Value, heads: &mut Option<FileHeads>) -> bool {
    let Some((seqnum_id, seqnum)) =
        next_in_batch(field(previous, "__CURSOR"), field(entry, "__CURSOR"))
    else {
        return false;
    };
    field(previous, "MESSAGE") == field(entry, "MESSAGE")
        && heads
            .get_or_insert_with(|| FileHeads::read(&Journal::default()))
            .contains(seqnum_id, seqnum)
}

/// What the journal holds about the corpus, read with one journalctl call
/// for the coredump entries and one per unit for the programs' output.
struct JournalView {
    coredumps: BTreeMap<String, Value>,
    /// Output lines per (unit, pid), in journal order.
    lines: BTreeMap<(String, String), Vec<String>>,
}

impl JournalView {
    fn read(units: &std::collections::BTreeSet<&str>) -> JournalView {
        // Only the checked fields: with Storage=journal an entry contains the
        // whole core, which --all prints as a JSON array of numbers.
        let coredumps = journal(&[
            &format!("MESSAGE_ID={COREDUMP_MESSAGE_ID}"),
            "--output-fields=MESSAGE_ID,COREDUMP_UNIT,COREDUMP_PID,COREDUMP_SIGNAL,\
             SYSLOG_IDENTIFIER,_COMM,COREDUMP_FILENAME",
        ])
        .into_iter()
        .map(|entry| (field(&entry, "__CURSOR").to_owned(), entry))
        .collect();
        let mut lines: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        let mut heads = None;
        let mut rewritten = 0;
        for unit in units {
            let unit_match = format!("_SYSTEMD_UNIT={unit}");
            let mut previous: Option<Value> = None;
            for entry in journal(&[&unit_match, "--output-fields=MESSAGE,_PID"]) {
                if previous
                    .as_ref()
                    .is_some_and(|previous| is_rewrite(previous, &entry, &mut heads))
                {
                    rewritten += 1;
                    continue;
                }
                let key = ((*unit).to_owned(), field(&entry, "_PID").to_owned());
                lines
                    .entry(key)
                    .or_default()
                    .push(field(&entry, "MESSAGE").to_owned());
                previous = Some(entry);
            }
        }
        if rewritten > 0 {
            eprintln!(
                "{rewritten} lines journald wrote twice at a journal file rotation, kept once"
            );
        }
        JournalView { coredumps, lines }
    }

    /// Checks the coredump entry and the crash text in the journal; returns the text.
    fn check(&self, crash: &Crash) -> String {
        let label = format!("{} (Go {}, {})", crash.program, crash.toolchain, crash.mode);

        let entry = self
            .coredumps
            .get(&crash.cursor)
            .unwrap_or_else(|| panic!("{label}: coredump entry {} gone", crash.cursor));
        assert_eq!(
            field(entry, "MESSAGE_ID"),
            COREDUMP_MESSAGE_ID,
            "{label}: MESSAGE_ID"
        );
        assert_eq!(
            field(entry, "COREDUMP_UNIT"),
            crash.unit,
            "{label}: COREDUMP_UNIT"
        );
        assert_eq!(
            field(entry, "COREDUMP_PID"),
            crash.pid.to_string(),
            "{label}: COREDUMP_PID"
        );
        assert_eq!(
            field(entry, "COREDUMP_SIGNAL"),
            "6",
            "{label}: COREDUMP_SIGNAL (SIGABRT)"
        );
        assert_eq!(
            field(entry, "SYSLOG_IDENTIFIER"),
            "systemd-coredump",
            "{label}: SYSLOG_IDENTIFIER"
        );
        // journald reads trusted fields from /proc of the sender, which may have
        // exited by then; when present, the field must name systemd-coredump.
        let comm = field(entry, "_COMM");
        assert!(
            comm.is_empty() || comm == "systemd-coredum",
            "{label}: _COMM is {comm:?}"
        );
        assert_eq!(
            field(entry, "COREDUMP_FILENAME"),
            crash.core.to_str().unwrap(),
            "{label}: COREDUMP_FILENAME"
        );
        let core_size = std::fs::metadata(&crash.core)
            .unwrap_or_else(|err| panic!("{label}: core {}: {err}", crash.core.display()))
            .len();
        assert!(core_size > 0, "{label}: empty core");

        let lines = self
            .lines
            .get(&(crash.unit.clone(), crash.pid.to_string()))
            .unwrap_or_else(|| panic!("{label}: no output lines under {}", crash.unit));
        let from_journal: String = lines.iter().map(|line| format!("{line}\n")).collect();
        let recorded = std::fs::read_to_string(&crash.stderr)
            .unwrap_or_else(|err| panic!("{label}: {}: {err}", crash.stderr.display()));
        assert_eq!(
            from_journal, recorded,
            "{label}: crash text in the journal differs from the record"
        );
        recorded
    }
}

fn is_program_function(function: &str) -> bool {
    function.starts_with("main.")
}

/// Counts the distinct goroutine ids with a frame or a creator in package
/// main, as the expected facts do: after a fatal signal the runtime can print
/// one goroutine twice, once in its thread's section.
fn program_goroutines(parsed: &Traceback) -> usize {
    parsed
        .goroutines
        .iter()
        .filter(|g| {
            g.frames.iter().any(|f| is_program_function(&f.function))
                || g.created_by
                    .as_ref()
                    .is_some_and(|c| is_program_function(&c.function))
        })
        .map(|g| g.id.0)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

fn first_program_frame(parsed: &Traceback) -> Option<&str> {
    parsed.goroutines.first().and_then(|g| {
        g.frames
            .iter()
            .map(|f| f.function.as_str())
            .find(|f| is_program_function(f))
    })
}

/// Checks the parsed crash text against the hand-written facts; returns the
/// problems found.
fn check_facts(text: &str, facts: &ExpectedFacts) -> Vec<String> {
    let parsed = traceback::parse(text);
    let mut problems = Vec::new();

    let headline = headline(&parsed);
    if !headline
        .as_deref()
        .is_some_and(|h| facts.headline_matches(h))
    {
        problems.push(format!(
            "headline {headline:?}, expected {:?}",
            facts.headline
        ));
    }
    let count = program_goroutines(&parsed);
    if count != facts.program_goroutines {
        problems.push(format!(
            "{count} program goroutines, expected {}",
            facts.program_goroutines
        ));
    }
    let first = first_program_frame(&parsed);
    if !first.is_some_and(|f| facts.first_frame_matches(f)) {
        problems.push(format!(
            "first program frame {first:?}, expected {:?}",
            facts.first_program_frame
        ));
    }
    if let Some(minutes) = facts.min_wait_minutes {
        let longest = parsed
            .goroutines
            .iter()
            .filter_map(|g| g.wait_minutes)
            .max();
        if longest.is_none_or(|m| m < minutes) {
            problems.push(format!(
                "longest wait {longest:?} minutes, expected >= {minutes}"
            ));
        }
    }
    problems
}

#[test]
fn every_corpus_crash_is_captured() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    assert!(
        !manifest.crashes.is_empty(),
        "the manifest lists no crashes"
    );

    // Every program x toolchain x crash mode is either captured or skipped
    // with a reason.
    let programs: std::collections::BTreeSet<&str> =
        manifest.builds.iter().map(|b| b.program.as_str()).collect();
    for program in &programs {
        for toolchain in &manifest.toolchains {
            for mode in ["default", "stripped", "pie"] {
                let captured = manifest.crashes.iter().any(|c| {
                    c.program == *program && c.toolchain == toolchain.name && c.mode == mode
                });
                let skipped = manifest.skipped.iter().any(|s| {
                    s.program == *program && s.toolchain == toolchain.name && s.mode == mode
                });
                assert!(
                    captured || skipped,
                    "{program} (Go {}, {mode}) was neither captured nor skipped",
                    toolchain.name
                );
            }
        }
    }

    let units = manifest.crashes.iter().map(|c| c.unit.as_str()).collect();
    let journal = JournalView::read(&units);

    let mut tally: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for crash in &manifest.crashes {
        let text = journal.check(crash);
        let facts = ExpectedFacts::load(&crash.expected);
        let problems = check_facts(&text, &facts);
        let entry = tally
            .entry((crash.toolchain.clone(), crash.mode.clone()))
            .or_default();
        entry.1 += 1;
        if problems.is_empty() {
            entry.0 += 1;
        } else {
            failures.push(format!(
                "{} (Go {}, {}): {}",
                crash.program,
                crash.toolchain,
                crash.mode,
                problems.join("; ")
            ));
        }
    }
    for ((toolchain, mode), (matched, total)) in &tally {
        println!(
            "Go {toolchain:<8} {mode:<9} {matched}/{total} crashes match their expected facts"
        );
    }
    assert!(
        failures.is_empty(),
        "{} crashes differ from their facts:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
