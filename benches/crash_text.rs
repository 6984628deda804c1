//! Times the reassembly of the crash text of the 10,000-goroutine corpus
//! crash (`manygoroutines`) from the journal, against
//! `journalctl -o cat` printing the same lines, which is the least a user
//! would run to read the text.
//!
//! Run with `cargo bench --bench crash_text`. It reads the crash chosen from
//! the corpus manifest with `ingest::crashtext::read`, as `gocrash info` and
//! `symbolize` do: journalctl runs, the export stream is parsed, split lines
//! are joined and the traceback is parsed. Each side runs `RUNS` times after
//! one warm-up run; the median wall time is reported. gocrash's peak heap is
//! counted by this bench's global allocator; journalctl's peak anonymous
//! memory (RssAnon) is sampled from /proc every few milliseconds. The heap
//! goal is bounded by the text's size, because the text is kept in memory
//! whole (one copy of its bytes, plus line offsets and the parsed
//! traceback).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ingest::crashtext::{self, TextOptions};
use ingest::journal::Journal;
use ingest::select::Selector;
use serde::Deserialize;

const RUNS: usize = 5;
const PROGRAM: &str = "manygoroutines";
const DEFAULT_MANIFEST: &str = "/var/cache/gocrash/corpus/manifest.json";
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(2);
/// The heap goal: the text's bytes times this, plus [`HEAP_GOAL_BASE`].
const HEAP_GOAL_PER_TEXT_BYTE: usize = 8;
/// Heap that does not grow with the text: buffers of the export reader
/// (256 KiB), the journalctl pipes and the parser's tables.
const HEAP_GOAL_BASE: usize = 16 << 20;

/// Counts the bytes allocated now and at most, so that the bench reports
/// the heap of the reassembly itself.
struct CountingAllocator;

static CURRENT_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

fn note_grown(bytes: usize) {
    let now = CURRENT_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK_BYTES.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = System.alloc(layout);
        if !pointer.is_null() {
            note_grown(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        System.dealloc(pointer, layout);
        CURRENT_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = System.realloc(pointer, layout, new_size);
        if !moved.is_null() {
            if new_size >= layout.size() {
                note_grown(new_size - layout.size());
            } else {
                CURRENT_BYTES.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[derive(Deserialize)]
struct Manifest {
    crashes: Vec<Crash>,
}

#[derive(Deserialize)]
struct Crash {
    program: String,
    toolchain: String,
    mode: String,
    cursor: String,
}

/// One side's figures: the median time and the peak memory over the runs.
struct Measurement {
    median: Duration,
    peak_bytes: usize,
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Reads RssAnon of a running process in bytes; 0 once it has exited.
fn rss_anon_bytes(pid: u32) -> usize {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<usize>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Runs journalctl once; returns its time, peak RssAnon and output size.
fn run_journalctl(args: &[String]) -> (Duration, usize, usize) {
    let started = Instant::now();
    let mut child = Command::new("journalctl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("journalctl runs");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("a stdout pipe");
    let reader = std::thread::spawn(move || {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut sink).map(|_| sink.len())
    });
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for journalctl") {
            break status;
        }
        peak = peak.max(rss_anon_bytes(pid));
        std::thread::sleep(RSS_SAMPLE_INTERVAL);
    };
    assert!(status.success(), "journalctl {args:?} failed");
    let printed = reader.join().expect("reader thread").expect("read stdout");
    (started.elapsed(), peak, printed)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
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
    // The newest toolchain's default build, so that figures of later runs
    // compare.
    let Some(crash) = manifest
        .crashes
        .iter()
        .filter(|c| c.program == PROGRAM && c.mode == "default")
        .max_by_key(|c| version_key(&c.toolchain))
    else {
        eprintln!("the manifest has no {PROGRAM} crash");
        return;
    };
    let selector = Selector::default();
    let record = selector
        .record_at(&crash.cursor)
        .expect("the crash's coredump entry");
    let journal = Journal::default();
    let options = TextOptions::default();

    // gocrash: warm-up, then the measured runs.
    let mut times = Vec::with_capacity(RUNS);
    let mut peak_bytes = 0;
    let mut reassembled = None;
    for run in 0..=RUNS {
        let base = CURRENT_BYTES.load(Ordering::Relaxed);
        PEAK_BYTES.store(base, Ordering::Relaxed);
        let started = Instant::now();
        let text = crashtext::read(&journal, &record, &options)
            .expect("the crash text reads")
            .expect("the crash has text");
        let elapsed = started.elapsed();
        if run > 0 {
            times.push(elapsed);
            peak_bytes = peak_bytes.max(PEAK_BYTES.load(Ordering::Relaxed) - base);
        }
        reassembled = Some(text);
    }
    let text = reassembled.expect("at least one run");
    let gocrash = Measurement {
        median: median(times),
        peak_bytes,
    };

    // journalctl -o cat of the same stream over the same time span.
    let (first, last) = text.time_span_usec().expect("the text has lines");
    let mut args = vec![
        "--no-pager".to_string(),
        "--output=cat".to_string(),
        format!("--since=@{}.{:06}", first / 1_000_000, first % 1_000_000),
        format!("--until=@{}.{:06}", last / 1_000_000, last % 1_000_000),
        format!("_PID={}", record.pid),
    ];
    args.extend(text.stream_ids.iter().map(|id| format!("_STREAM_ID={id}")));
    let mut times = Vec::with_capacity(RUNS);
    let mut peak = 0;
    let mut printed = 0;
    for run in 0..=RUNS {
        let (time, rss, bytes) = run_journalctl(&args);
        if run > 0 {
            times.push(time);
            peak = peak.max(rss);
            printed = bytes;
        }
    }
    let journalctl = Measurement {
        median: median(times),
        peak_bytes: peak,
    };

    let text_bytes = text.bytes().len();
    println!(
        "{PROGRAM} built by Go {} ({}), PID {}: {} lines, {} bytes of crash text, {} goroutines parsed",
        crash.toolchain,
        crash.mode,
        record.pid,
        text.line_count(),
        text_bytes,
        text.traceback.goroutines.len(),
    );
    println!(
        "  {:<36} {:>8.3} s  peak heap    {:>8.1} MiB",
        "gocrash crash text (ingest)",
        gocrash.median.as_secs_f64(),
        mib(gocrash.peak_bytes)
    );
    println!(
        "  {:<36} {:>8.3} s  peak RssAnon {:>8.1} MiB  ({printed} bytes printed)",
        "journalctl -o cat, same stream",
        journalctl.median.as_secs_f64(),
        mib(journalctl.peak_bytes)
    );
    let ratio = gocrash.median.as_secs_f64() / journalctl.median.as_secs_f64();
    let heap_goal = text_bytes * HEAP_GOAL_PER_TEXT_BYTE + HEAP_GOAL_BASE;
    println!(
        "  gocrash / journalctl = {ratio:.2}; peak heap / text bytes = {:.2} (goal: peak heap <= {HEAP_GOAL_PER_TEXT_BYTE} x text + {} MiB = {:.1} MiB: {})",
        gocrash.peak_bytes as f64 / text_bytes as f64,
        HEAP_GOAL_BASE >> 20,
        mib(heap_goal),
        if gocrash.peak_bytes <= heap_goal {
            "met"
        } else {
            "NOT met"
        }
    );
}

fn version_key(release: &str) -> Vec<u32> {
    release
        .split('.')
        .filter_map(|part| part.parse().ok())
        .collect()
}
