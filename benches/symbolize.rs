//! Compares `gocrash symbolize` on a stored `.zst` core with what a user would
//! otherwise run: `zstd -d` to get a plain core, then `dlv core ... goroutines -t`.
//!
//! Run with `cargo bench --bench symbolize`. It uses the 10,000-goroutine
//! corpus crash (`manygoroutines`) from the corpus manifest: built with Go 1.19
//! first, because Debian's delve 1.20 supports Go releases up to 1.20, then with
//! the newest toolchain, where delve runs with `--check-go-version=false` and
//! its goroutine list may be wrong.
//!
//! `zstd -d` and the two gocrash outputs run in turns, `RUNS` rounds after
//! one warm-up round. A machine slowing down or speeding up during the bench
//! then affects all three alike. Timed one after the other, their ratios
//! varied by a tenth between runs of the bench. delve, which takes seconds,
//! runs `DLV_RUNS` times afterwards. The median wall time is reported.
//!
//! Nothing samples the timed runs: on a 2-CPU host a sampler polling /proc
//! takes CPU from the command and rounds its end up to the next poll.
//! gocrash's peak anonymous memory (RssAnon: heap and other private memory,
//! not the mapped core) comes from `SAMPLED_RUNS` further runs, sampled from
//! /proc every few milliseconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

const RUNS: usize = 15;
const DLV_RUNS: usize = 5;
const SAMPLED_RUNS: usize = 3;
const PROGRAM: &str = "manygoroutines";
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(2);
const DEFAULT_MANIFEST: &str = "/var/cache/gocrash/corpus/manifest.json";
/// The goals, as ratios of median wall times in the same run: at most a
/// tenth of delve's time, and at most 1.3 times `zstd -d` alone, which
/// every tool reading the core must at least match.
const GOAL_TO_DLV: f64 = 0.1;
const GOAL_TO_ZSTD: f64 = 1.3;
/// The goal for gocrash's peak anonymous memory, in MiB.
const GOAL_RSS_ANON_MIB: f64 = 64.0;

#[derive(Deserialize)]
struct Manifest {
    crashes: Vec<Crash>,
}

#[derive(Deserialize)]
struct Crash {
    program: String,
    toolchain: String,
    mode: String,
    binary: PathBuf,
    core: PathBuf,
}

struct Measurement {
    median: Duration,
    peak_rss_anon_kib: u64,
    succeeded: bool,
}

/// Reads RssAnon (KiB) of a running process; 0 once it has exited.
fn rss_anon_kib(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Runs `program` once and returns its wall time and whether it succeeded.
fn time_once(program: &str, args: &[&str]) -> (Duration, bool) {
    let started = Instant::now();
    let status = command(program, args)
        .status()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
    (started.elapsed(), status.success())
}

/// Runs `program` once, sampling its RssAnon, and returns the peak and
/// whether it succeeded.
fn sample_once(program: &str, args: &[&str]) -> (u64, bool) {
    let mut child = command(program, args)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        peak = peak.max(rss_anon_kib(pid));
        std::thread::sleep(RSS_SAMPLE_INTERVAL);
    };
    (peak, status.success())
}

/// Builds the command that runs `program` with no input and its output
/// discarded.
fn command(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// A command to time: the program and its arguments.
type Timed<'a> = (&'a str, Vec<&'a str>);

/// Times `commands` in turns, `runs` rounds after a warm-up round, and
/// samples each `SAMPLED_RUNS` times. Returns their measurements in order.
fn measure(commands: &[Timed<'_>], runs: usize) -> Vec<Measurement> {
    for (program, args) in commands {
        time_once(program, args);
    }
    let mut times = vec![Vec::with_capacity(runs); commands.len()];
    let mut succeeded = vec![true; commands.len()];
    for _ in 0..runs {
        for (index, (program, args)) in commands.iter().enumerate() {
            let (time, ok) = time_once(program, args);
            times[index].push(time);
            succeeded[index] &= ok;
        }
    }
    let mut measurements = Vec::with_capacity(commands.len());
    for (index, (program, args)) in commands.iter().enumerate() {
        let mut peak = 0;
        for _ in 0..SAMPLED_RUNS {
            let (rss, ok) = sample_once(program, args);
            peak = peak.max(rss);
            succeeded[index] &= ok;
        }
        times[index].sort();
        measurements.push(Measurement {
            median: times[index][runs / 2],
            peak_rss_anon_kib: peak,
            succeeded: succeeded[index],
        });
    }
    measurements
}

/// Says whether a goal was met, for the printed table.
fn goal(met: bool, goal: &str) -> String {
    if met {
        format!("{goal}: met")
    } else {
        format!("{goal}: NOT met")
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn bench_crash(crash: &Crash, scratch: &Path, dlv_caveat: bool) {
    let gocrash = env!("CARGO_BIN_EXE_gocrash");
    let plain = scratch.join(format!("{}-{}.core", crash.program, crash.toolchain));
    let core = crash.core.to_str().expect("UTF-8 core path");
    let binary = crash.binary.to_str().expect("UTF-8 binary path");
    let plain_str = plain.to_str().expect("UTF-8 scratch path");

    let fast = measure(
        &[
            ("zstd", vec!["-q", "-d", "-f", core, "-o", plain_str]),
            (gocrash, vec!["symbolize", core, "--binary", binary]),
            (
                gocrash,
                vec!["symbolize", core, "--binary", binary, "--json"],
            ),
        ],
        RUNS,
    );
    let Ok([zstd, gocrash_text, gocrash_json]) = <[Measurement; 3]>::try_from(fast) else {
        unreachable!("one measurement per command");
    };

    let init = scratch.join("dlv-init");
    std::fs::write(&init, "goroutines -t\nexit\n").expect("write delve init file");
    let mut dlv_args = vec![
        "core",
        binary,
        plain_str,
        "--init",
        init.to_str().expect("UTF-8 scratch path"),
        "--allow-non-terminal-interactive=true",
    ];
    if dlv_caveat {
        dlv_args.push("--check-go-version=false");
    }
    let Some(dlv) = measure(&[("dlv", dlv_args)], DLV_RUNS).pop() else {
        unreachable!("one measurement per command");
    };

    println!(
        "{} built by Go {} ({}), core {} ({} bytes compressed, {} bytes plain){}",
        crash.program,
        crash.toolchain,
        crash.mode,
        crash.core.display(),
        std::fs::metadata(&crash.core).map(|m| m.len()).unwrap_or(0),
        std::fs::metadata(&plain).map(|m| m.len()).unwrap_or(0),
        if dlv_caveat {
            "; delve runs with --check-go-version=false"
        } else {
            ""
        },
    );
    for (name, m) in [
        ("zstd -d to a file", &zstd),
        ("dlv core, goroutines -t", &dlv),
        ("gocrash symbolize (text)", &gocrash_text),
        ("gocrash symbolize --json", &gocrash_json),
    ] {
        println!(
            "  {name:<26} {:>8.3} s  peak RssAnon {:>7} KiB{}",
            seconds(m.median),
            m.peak_rss_anon_kib,
            if m.succeeded {
                ""
            } else {
                "  (exited with an error)"
            }
        );
    }
    for (name, m) in [("text", &gocrash_text), ("json", &gocrash_json)] {
        let to_dlv = seconds(m.median) / seconds(dlv.median);
        let to_zstd = seconds(m.median) / seconds(zstd.median);
        let rss_mib = m.peak_rss_anon_kib as f64 / 1024.0;
        println!(
            "  gocrash ({name}) / dlv = {to_dlv:.3} ({}), / zstd -d = {to_zstd:.2} ({}), peak RssAnon {rss_mib:.1} MiB ({})",
            goal(to_dlv <= GOAL_TO_DLV, "goal <= 0.1"),
            goal(to_zstd <= GOAL_TO_ZSTD, "goal <= 1.3"),
            goal(rss_mib <= GOAL_RSS_ANON_MIB, "goal <= 64"),
        );
    }
    let _ = std::fs::remove_file(&plain);
}

fn main() {
    let path = std::env::var_os("GOCRASH_CORPUS_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MANIFEST));
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "no corpus manifest at {}; run corpus/harness.py first",
            path.display()
        );
        return;
    };
    let manifest: Manifest = serde_json::from_str(&text).expect("valid manifest");
    let scratch = tempfile::tempdir().expect("scratch directory");

    let mut candidates: Vec<&Crash> = manifest
        .crashes
        .iter()
        .filter(|c| c.program == PROGRAM && c.mode == "default")
        .collect();
    candidates.sort_by_key(|c| version_key(&c.toolchain));
    let Some(oldest) = candidates.first() else {
        eprintln!("the manifest has no {PROGRAM} crash");
        return;
    };
    bench_crash(oldest, scratch.path(), false);
    if let Some(newest) = candidates
        .last()
        .filter(|c| c.toolchain != oldest.toolchain)
    {
        bench_crash(newest, scratch.path(), true);
    }
}

fn version_key(release: &str) -> Vec<u32> {
    release
        .split('.')
        .filter_map(|part| part.parse().ok())
        .collect()
}
