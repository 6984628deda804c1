//! `gocrash resolve` prints what `go tool addr2line` prints, for every corpus
//! binary of every toolchain and mode in the manifest.
//!
//! Each binary gets at least [`SAMPLES`] addresses spread over the text its
//! pclntab covers, plus every address where the inline-tree index changes
//! (where inlined code starts or ends). One addr2line process and one
//! gocrash process per binary take all addresses on stdin. A stripped or
//! `nosections` build is compared with addr2line on its twin, the build with
//! the same text and the symbols addr2line needs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use symbolizer::binary::Binary;
use symbolizer::pclntab::func::pcdata;
use symbolizer::pclntab::FuncIndex;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");

/// Addresses sampled per binary besides the inline-index changes.
const SAMPLES: usize = 20_000;

/// Share of sampled addresses that must resolve to a function name.
const MIN_NAMED: f64 = 0.95;

/// Binaries compared at once: one addr2line and one gocrash process each.
const WORKERS: usize = 2;

struct Outcome {
    key: (String, String),
    addresses: usize,
    matches: usize,
    named: usize,
    mismatches: Vec<String>,
    note: Option<String>,
}

/// Returns the addresses to compare: every start of an inline-index run and
/// evenly spread samples with a deterministic jitter.
fn sample_addresses(binary: &Path) -> Vec<u64> {
    let binary = Binary::open(binary).unwrap_or_else(|err| panic!("{err}"));
    let tab = binary.pclntab().unwrap_or_else(|err| panic!("{err}"));
    let range = tab.text_range().expect("function table");
    assert!(
        range.end > range.start,
        "{}: empty text range",
        binary.path().display()
    );
    let mut addresses = BTreeSet::new();
    for index in 0..tab.len() {
        let func = tab.func(FuncIndex(index)).expect("_func record");
        let Some(table) = tab
            .pcdata_table(&func, pcdata::INLINE_TREE_INDEX)
            .expect("pcdata")
        else {
            continue;
        };
        let Some(runs) = tab.pcvalue_iter(&func, table).expect("pc-value table") else {
            continue;
        };
        for run in runs {
            let run = run.expect("inline index run");
            if run.start < run.end && run.start < func.end {
                addresses.insert(run.start);
            }
        }
    }
    let span = range.end - range.start;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..SAMPLES as u64 {
        // xorshift64: a fixed sequence, so failures reproduce.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let slot = span / SAMPLES as u64;
        let offset = i * slot + state % slot.max(1);
        addresses.insert(range.start + offset.min(span - 1));
    }
    addresses.into_iter().collect()
}

fn run_with_stdin(mut command: Command, input: &[u8]) -> Vec<u8> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {command:?}: {err}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write addresses");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn addr2line(toolchain: &support::Toolchain, binary: &Path, input: &[u8]) -> Vec<u8> {
    let mut command = Command::new(&toolchain.go);
    command
        .args(["tool", "addr2line"])
        .arg(binary)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env(
            "GOCACHE",
            format!("/var/cache/gocrash/gocache/{}", toolchain.name),
        );
    run_with_stdin(command, input)
}

/// Returns whether a toolchain's addr2line reads `.data.rel.ro.gopclntab`;
/// Go 1.19's `cmd/internal/objfile` looks for `.gopclntab` only, so it
/// resolves nothing in a PIE.
fn addr2line_reads_pie(toolchain: &support::Toolchain) -> bool {
    let source = toolchain.goroot.join("src/cmd/internal/objfile/elf.go");
    std::fs::read_to_string(source).is_ok_and(|text| text.contains(".data.rel.ro.gopclntab"))
}

fn pairs(output: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|pair| {
            (
                pair[0].to_owned(),
                pair.get(1).copied().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn compare(manifest: &support::Manifest, build: &support::Build) -> Outcome {
    let mut toolchain = manifest.toolchain(&build.toolchain).clone();
    let reference: PathBuf = match build.mode.as_str() {
        "stripped" | "nosections" => build
            .twin
            .clone()
            .expect("stripped and nosections builds name a twin"),
        _ => build.binary.clone(),
    };
    let mut note = None;
    if !addr2line_reads_pie(&toolchain) && Binary::open(&reference).is_ok_and(|b| b.is_pie()) {
        let newest = manifest
            .toolchains
            .iter()
            .filter(|t| addr2line_reads_pie(t))
            .max_by_key(|t| version_key(&t.name));
        if let Some(newest) = newest {
            note = Some(format!(
                "addr2line of {} reads no PIE; used {}'s",
                toolchain.name, newest.name
            ));
            toolchain = newest.clone();
        }
    }
    let addresses = sample_addresses(&build.binary);
    let input: String = addresses.iter().map(|a| format!("0x{a:x}\n")).collect();
    let expected = pairs(&addr2line(&toolchain, &reference, input.as_bytes()));
    let mut command = Command::new(GOCRASH);
    command.args(["resolve", "--binary"]).arg(&build.binary);
    let actual = pairs(&run_with_stdin(command, input.as_bytes()));
    assert_eq!(
        expected.len(),
        addresses.len(),
        "addr2line printed one pair per address"
    );
    assert_eq!(
        actual.len(),
        addresses.len(),
        "gocrash printed one pair per address"
    );
    let mut outcome = Outcome {
        key: (build.toolchain.clone(), build.mode.clone()),
        addresses: addresses.len(),
        matches: 0,
        named: 0,
        mismatches: Vec::new(),
        note,
    };
    for ((address, want), got) in addresses.iter().zip(&expected).zip(&actual) {
        if want == got {
            outcome.matches += 1;
        } else if outcome.mismatches.len() < 10 {
            outcome.mismatches.push(format!(
                "{} 0x{address:x}: addr2line {want:?}, gocrash {got:?}",
                build.binary.display()
            ));
        }
        if got.0 != "?" {
            outcome.named += 1;
        }
    }
    outcome
}

fn version_key(name: &str) -> Vec<u32> {
    name.split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

#[test]
fn resolve_matches_go_tool_addr2line() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    assert!(!manifest.builds.is_empty(), "the manifest lists no builds");
    let queue = Mutex::new(manifest.builds.iter().collect::<Vec<_>>());
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| loop {
                let Some(build) = queue.lock().unwrap().pop() else {
                    break;
                };
                let outcome = compare(&manifest, build);
                outcomes.lock().unwrap().push(outcome);
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap();

    let mut summary: BTreeMap<(String, String), (usize, usize, usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for outcome in &outcomes {
        let entry = summary.entry(outcome.key.clone()).or_default();
        entry.0 += 1;
        entry.1 += outcome.addresses;
        entry.2 += outcome.matches;
        entry.3 += outcome.named;
        if let Some(note) = &outcome.note {
            eprintln!("note: {} {}: {note}", outcome.key.0, outcome.key.1);
        }
        failures.extend(outcome.mismatches.iter().cloned());
        let named = outcome.named as f64 / outcome.addresses as f64;
        if named < MIN_NAMED {
            failures.push(format!(
                "{} {}: only {:.1}% of addresses named",
                outcome.key.0,
                outcome.key.1,
                named * 100.0
            ));
        }
    }
    for ((toolchain, mode), (binaries, addresses, matches, named)) in &summary {
        eprintln!(
            "addr2line {toolchain:>8} {mode:<10} binaries {binaries:>3} addresses {addresses:>8} matches {matches:>8} named {named:>8}"
        );
    }
    let total: usize = outcomes.iter().map(|o| o.addresses).sum();
    let matched: usize = outcomes.iter().map(|o| o.matches).sum();
    assert!(
        total >= SAMPLES * outcomes.len(),
        "fewer addresses than sampled"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} addresses differ:\n{}",
        total - matched,
        failures.join("\n")
    );
    assert_eq!(matched, total);
}
