//! `gocrash symbolize --format go` rebuilds, from each corpus core, the
//! text the Go runtime printed before it aborted.
//!
//! For every crash of the manifest the test runs the built binary on the
//! core (zstd, as systemd-coredump stored it) and compares its output with
//! the runtime's own text (read back from the journal) in two ways:
//! - parsed with `ingest::traceback::parse`: the same goroutine ids, each
//!   with the same status, wait reason, frames (function, file, line,
//!   inlined) and creator. The crashing goroutine may show crash-path
//!   frames above the ones the runtime printed;
//! - line by line, block by block (headline, `runtime stack:`, each
//!   goroutine, register dumps, per-thread sections): every remaining
//!   difference is classified, counted per toolchain and mode, and
//!   printed. `N minutes` in headers and crash-path frames are allowed.
//!
//! The test asserts what matches over the whole corpus today (see
//! `assert_corpus`). It prints the other kinds of difference, and
//! docs/limitations.md gives each one's cause. Crashes run two at a time.
//! Without a manifest the test skips with a message, and fails when
//! `CI=true`.
//!
//! Two variables help when working on a difference:
//! `GOCRASH_SYMBOLIZE_ONLY=TEXT` runs only the crashes whose name
//! (`toolchain mode program`) contains TEXT, and
//! `GOCRASH_SYMBOLIZE_REPORT=FILE` writes every difference of every crash
//! to FILE.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use ingest::traceback::{self, Goroutine, GoroutineStatus, Traceback};
use support::Crash;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
/// Crashes symbolized at the same time.
const PARALLEL: usize = 2;
/// Examples kept per kind of difference, for the printed report.
const EXAMPLES_PER_KIND: usize = 3;

/// A kind of line difference between our text and the runtime's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    /// Lines of the headline (panic, fatal error, signal, diagnostics).
    Headline,
    /// A goroutine header, apart from `N minutes`.
    Header,
    /// Only `, N minutes` differs in a header (allowed).
    Minutes,
    /// A function line whose name matches but whose arguments differ.
    Arguments,
    /// A position line whose file and line match but whose offset, fp,
    /// sp or pc differ.
    FrameAddresses,
    /// A function or position line that names another function, file or line.
    Frame,
    /// `created by` lines.
    CreatedBy,
    /// A register dump line.
    Register,
    /// The crashing goroutine's crash-path frames above the printed ones
    /// (allowed).
    CrashPath,
    /// Lines the runtime printed and we did not.
    MissingLine,
    /// Lines we printed and the runtime did not.
    ExtraLine,
    /// A whole block (goroutine, `runtime stack:`, thread section) the
    /// runtime printed and we did not.
    MissingBlock,
    /// A whole block we printed and the runtime did not.
    ExtraBlock,
}

impl Kind {
    fn allowed(self) -> bool {
        matches!(self, Kind::Minutes | Kind::CrashPath)
    }
}

/// The result of one crash.
#[derive(Default)]
struct Outcome {
    key: (String, String),
    name: String,
    exit_code: Option<i32>,
    goroutines: usize,
    matched: usize,
    /// Goroutines of the runtime's text it cannot match, with the reason.
    excused: BTreeMap<u64, Exception>,
    /// Goroutines excused that did differ.
    excused_mismatches: usize,
    /// Structural mismatches, one sentence each.
    problems: Vec<String>,
    differences: BTreeMap<Kind, usize>,
    examples: BTreeMap<Kind, Vec<String>>,
    /// Line differences in the parts the test asserts (the headline, the
    /// main dump's goroutines, `runtime stack:` and registers) that no
    /// [`Exception`] explains.
    unexplained: Vec<String>,
    /// The causes of the differences that are not allowed, explained or not.
    causes: BTreeSet<Cause>,
}

/// Why a crash's text differs from the runtime's, one per paragraph of
/// docs/limitations.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cause {
    /// See [`Exception::ConcurrentFatalErrors`].
    ConcurrentFatalErrors,
    /// See [`Exception::DamagedText`]; also a damaged headline or section.
    DamagedText,
    /// See [`Exception::ChangedAfterPrinting`].
    ChangedAfterPrinting,
    /// The `runtime: goroutine stack exceeds N-byte limit` line of a
    /// stripped binary, whose limit is found through the symbol table.
    StrippedStackLimit,
    /// Differences in the per-thread sections after the main dump, which
    /// the test does not assert: the kernel's choice of thread for each
    /// relayed SIGQUIT decides their order, and the core does not record it.
    ThreadSections,
    /// A difference no cause above explains; the test fails on it.
    Unexplained,
}

impl From<Exception> for Cause {
    fn from(exception: Exception) -> Cause {
        match exception {
            Exception::ConcurrentFatalErrors => Cause::ConcurrentFatalErrors,
            Exception::DamagedText => Cause::DamagedText,
            Exception::ChangedAfterPrinting => Cause::ChangedAfterPrinting,
        }
    }
}

/// Why the runtime's text of a goroutine cannot be rebuilt from the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Exception {
    /// Two threads threw at once: the runtime printed `fatal error:` more
    /// than once, and a goroutine twice or in the order its print lock
    /// decided, which the core does not record.
    ConcurrentFatalErrors,
    /// The runtime's text lost or merged lines on its way to the journal
    /// (the parser warned inside the goroutine's block).
    DamagedText,
    /// The runtime printed the goroutine as running on another thread, but
    /// it had stopped running when the core was written: the process runs
    /// on for seconds while every thread prints its section.
    ChangedAfterPrinting,
}

impl Outcome {
    fn identical(&self) -> bool {
        self.differences.iter().all(|(kind, _)| kind.allowed())
    }
}

fn symbolize(crash: &Crash) -> (String, Option<i32>, String) {
    let output = Command::new(GOCRASH)
        .args(["symbolize", "--format", "go"])
        .arg(&crash.core)
        .output()
        .expect("gocrash runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Returns the runtime's text from its first crash line. The service's own
/// output before it is not part of the crash.
fn crash_text(text: &str) -> Vec<(usize, &str)> {
    const STARTS: [&str; 8] = [
        "panic: ",
        "fatal error: ",
        "fatal: ",
        "runtime: ",
        "SIG",
        "unexpected fault address",
        "goroutine ",
        "runtime stack:",
    ];
    let lines = numbered_lines(text);
    let start = lines
        .iter()
        .position(|(_, line)| STARTS.iter().any(|s| line.starts_with(s)))
        .unwrap_or(0);
    lines[start..].to_vec()
}

/// Returns the lines that are not empty, with their 1-based line numbers.
fn numbered_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| (index + 1, line))
        .collect()
}

/// A block of lines and the key blocks are matched by.
#[derive(Debug)]
struct Block<'a> {
    key: String,
    lines: Vec<&'a str>,
    /// The line numbers of `lines` in the text.
    numbers: Vec<usize>,
}

fn is_register_line(line: &str) -> bool {
    let mut parts = line.split_whitespace();
    let (Some(name), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    name.len() <= 6
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value.starts_with("0x")
}

/// Cuts a crash text into blocks: the headline, `runtime stack:`, each
/// goroutine, each register dump, and the head of each thread section.
fn blocks<'a>(lines: &[(usize, &'a str)]) -> Vec<Block<'a>> {
    let mut blocks: Vec<Block<'a>> = vec![Block {
        key: "headline".to_owned(),
        lines: Vec::new(),
        numbers: Vec::new(),
    }];
    let mut section = 0;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_registers = false;
    for &(number, line) in lines {
        let new_key = if line == "-----" {
            section += 1;
            in_registers = false;
            Some(format!("section {section} head"))
        } else if line.starts_with("goroutine ") && line.ends_with(':') {
            in_registers = false;
            let id = line.split_whitespace().nth(1).unwrap_or("?");
            Some(format!("section {section} goroutine {id}"))
        } else if line == "runtime stack:" {
            Some(format!("section {section} runtime stack"))
        } else if is_register_line(line) && !in_registers {
            in_registers = true;
            Some(format!("section {section} registers"))
        } else {
            None
        };
        if let Some(key) = new_key {
            let count = seen.entry(key.clone()).or_insert(0);
            *count += 1;
            let key = if *count > 1 {
                format!("{key} #{count}")
            } else {
                key
            };
            blocks.push(Block {
                key,
                lines: Vec::new(),
                numbers: Vec::new(),
            });
        }
        if let Some(block) = blocks.last_mut() {
            block.lines.push(line);
            block.numbers.push(number);
        }
    }
    blocks.retain(|b| !b.lines.is_empty());
    blocks
}

/// Removes `, N minutes` from a goroutine header.
fn without_minutes(line: &str) -> String {
    let Some(start) = line.find(" minutes") else {
        return line.to_owned();
    };
    let Some(comma) = line[..start].rfind(", ") else {
        return line.to_owned();
    };
    format!("{}{}", &line[..comma], &line[start + " minutes".len()..])
}

/// The function name of a function line (`name(args)`).
fn call_name(line: &str) -> Option<&str> {
    if !line.ends_with(')') || line.starts_with('\t') {
        return None;
    }
    let mut depth = 0i32;
    for (index, c) in line.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&line[..index]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Classifies a line of ours printed where the runtime printed another.
fn classify_pair(block_key: &str, ours: &str, theirs: &str) -> Kind {
    if block_key == "headline" || block_key.ends_with(" head") {
        return Kind::Headline;
    }
    if theirs.starts_with("goroutine ") && ours.starts_with("goroutine ") {
        return if without_minutes(ours) == without_minutes(theirs) {
            Kind::Minutes
        } else {
            Kind::Header
        };
    }
    if theirs.starts_with("created by ") || ours.starts_with("created by ") {
        return Kind::CreatedBy;
    }
    if is_register_line(theirs) && is_register_line(ours) {
        return Kind::Register;
    }
    if let (Some(a), Some(b)) = (call_name(ours), call_name(theirs)) {
        return if a == b { Kind::Arguments } else { Kind::Frame };
    }
    if let (Some(a), Some(b)) = (ours.strip_prefix('\t'), theirs.strip_prefix('\t')) {
        let position = |text: &str| text.split(' ').next().unwrap_or("").to_owned();
        return if position(a) == position(b) {
            Kind::FrameAddresses
        } else {
            Kind::Frame
        };
    }
    Kind::Frame
}

/// Aligns two blocks by their longest common subsequence and returns the
/// edit script: pairs of (ours, theirs) lines, either side possibly absent.
fn align<'a>(ours: &[&'a str], theirs: &[&'a str]) -> Vec<(Option<&'a str>, Option<&'a str>)> {
    let (n, m) = (ours.len(), theirs.len());
    // Large blocks (long stacks) are compared position by position; the
    // quadratic table would cost too much for them.
    if n.saturating_mul(m) > 4_000_000 {
        let mut script = Vec::new();
        for index in 0..n.max(m) {
            script.push((ours.get(index).copied(), theirs.get(index).copied()));
        }
        return script;
    }
    let mut table = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if ours[i] == theirs[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let mut script = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut pending_ours = Vec::new();
    let mut pending_theirs = Vec::new();
    let flush = |script: &mut Vec<(Option<&'a str>, Option<&'a str>)>,
                 a: &mut Vec<&'a str>,
                 b: &mut Vec<&'a str>| {
        for index in 0..a.len().max(b.len()) {
            script.push((a.get(index).copied(), b.get(index).copied()));
        }
        a.clear();
        b.clear();
    };
    while i < n || j < m {
        if i < n && j < m && ours[i] == theirs[j] {
            flush(&mut script, &mut pending_ours, &mut pending_theirs);
            script.push((Some(ours[i]), Some(theirs[j])));
            i += 1;
            j += 1;
        } else if j < m && (i == n || table[i][j + 1] >= table[i + 1][j]) {
            pending_theirs.push(theirs[j]);
            j += 1;
        } else {
            pending_ours.push(ours[i]);
            i += 1;
        }
    }
    flush(&mut script, &mut pending_ours, &mut pending_theirs);
    script
}

/// Examples kept per kind and crash when a full report is asked for.
const REPORT_EXAMPLES_PER_KIND: usize = 1000;

fn full_report() -> Option<std::path::PathBuf> {
    std::env::var_os("GOCRASH_SYMBOLIZE_REPORT").map(std::path::PathBuf::from)
}

/// Reports whether the test asserts the lines of a block: the headline,
/// and the main dump's `runtime stack:`, goroutines and registers. The
/// per-thread sections of a fatal signal are compared and printed only.
fn asserted_block(key: &str) -> bool {
    key == "headline" || key.starts_with("section 0 ")
}

/// Records a difference the test asserts against unless an exception
/// explains it.
fn check_explained(
    outcome: &mut Outcome,
    block_key: &str,
    kind: Kind,
    detail: &str,
    stripped: bool,
    damaged: bool,
) {
    if kind.allowed() {
        return;
    }
    if damaged {
        outcome.causes.insert(Cause::DamagedText);
        return;
    }
    if !asserted_block(block_key) {
        outcome.causes.insert(Cause::ThreadSections);
        return;
    }
    let goroutine = block_key
        .strip_prefix("section 0 goroutine ")
        .and_then(|rest| rest.split(' ').next()?.parse::<u64>().ok());
    if let Some(&exception) = goroutine.and_then(|id| outcome.excused.get(&id)) {
        outcome.causes.insert(exception.into());
        return;
    }
    let concurrent = outcome
        .excused
        .values()
        .any(|e| *e == Exception::ConcurrentFatalErrors);
    if block_key == "headline" && concurrent {
        outcome.causes.insert(Cause::ConcurrentFatalErrors);
        return;
    }
    // The limit comes from runtime.maxstacksize, found through the symbol table.
    if block_key == "headline"
        && stripped
        && kind == Kind::MissingLine
        && detail.contains("runtime: goroutine stack exceeds")
    {
        outcome.causes.insert(Cause::StrippedStackLimit);
        return;
    }
    outcome.causes.insert(Cause::Unexplained);
    outcome
        .unexplained
        .push(format!("{}: {block_key}: {kind:?}: {detail}", outcome.name));
}

fn note(outcome: &mut Outcome, kind: Kind, example: impl FnOnce() -> String) {
    *outcome.differences.entry(kind).or_insert(0) += 1;
    let examples = outcome.examples.entry(kind).or_default();
    let limit = if full_report().is_some() {
        REPORT_EXAMPLES_PER_KIND
    } else {
        EXAMPLES_PER_KIND
    };
    if examples.len() < limit {
        examples.push(example());
    }
}

/// Compares our text with the runtime's line by line, block by block.
///
/// A block of the runtime's text in which `warning_lines` (the parser's
/// warnings) fall was damaged on its way to the journal: its differences
/// are counted but not asserted.
fn compare_lines(
    outcome: &mut Outcome,
    ours_text: &str,
    theirs_text: &str,
    crashing: Option<u64>,
    stripped: bool,
    warning_lines: &[usize],
) {
    let ours_lines = numbered_lines(ours_text);
    let theirs_lines = crash_text(theirs_text);
    let ours = blocks(&ours_lines);
    let theirs = blocks(&theirs_lines);
    let crashing_key = crashing.map(|id| format!("section 0 goroutine {id}"));
    let name = outcome.name.clone();
    for block in &theirs {
        let damaged = block.numbers.iter().any(|n| warning_lines.contains(n));
        let Some(mine) = ours.iter().find(|b| b.key == block.key) else {
            let detail = format!("{} lines, first {:?}", block.lines.len(), block.lines[0]);
            check_explained(
                outcome,
                &block.key,
                Kind::MissingBlock,
                &detail,
                stripped,
                damaged,
            );
            note(outcome, Kind::MissingBlock, || {
                format!("{name}: {}: {detail}", block.key)
            });
            continue;
        };
        let mut ours_block: &[&str] = &mine.lines;
        if crashing_key.as_deref() == Some(block.key.as_str())
            && ours_block.len() > block.lines.len()
        {
            // Crash-path frames sit between the header and the first
            // printed frame.
            let extra = ours_block.len() - block.lines.len();
            if ours_block.get(1 + extra..) == block.lines.get(1..) {
                note(outcome, Kind::CrashPath, || {
                    format!("{name}: {} has {extra} more lines", block.key)
                });
                ours_block = &ours_block[extra..];
            }
        }
        for (ours_line, theirs_line) in align(ours_block, &block.lines) {
            match (ours_line, theirs_line) {
                (Some(a), Some(b)) if a == b => {}
                (Some(a), Some(b)) => {
                    let kind = classify_pair(&block.key, a, b);
                    check_explained(
                        outcome,
                        &block.key,
                        kind,
                        &format!("ours {a:?}, runtime {b:?}"),
                        stripped,
                        damaged,
                    );
                    note(outcome, kind, || {
                        format!(
                            "{name}: {}\n    ours    {a:?}\n    runtime {b:?}",
                            block.key
                        )
                    });
                }
                (None, Some(b)) => {
                    check_explained(
                        outcome,
                        &block.key,
                        Kind::MissingLine,
                        &format!("runtime {b:?}"),
                        stripped,
                        damaged,
                    );
                    note(outcome, Kind::MissingLine, || {
                        format!("{name}: {}: runtime {b:?}", block.key)
                    });
                }
                (Some(a), None) => {
                    check_explained(
                        outcome,
                        &block.key,
                        Kind::ExtraLine,
                        &format!("ours {a:?}"),
                        stripped,
                        damaged,
                    );
                    note(outcome, Kind::ExtraLine, || {
                        format!("{name}: {}: ours {a:?}", block.key)
                    });
                }
                (None, None) => {}
            }
        }
    }
    for block in &ours {
        if !theirs.iter().any(|b| b.key == block.key) {
            let detail = format!("{} lines, first {:?}", block.lines.len(), block.lines[0]);
            check_explained(
                outcome,
                &block.key,
                Kind::ExtraBlock,
                &detail,
                stripped,
                false,
            );
            note(outcome, Kind::ExtraBlock, || {
                format!("{name}: {}: {detail}", block.key)
            });
        }
    }
}

/// The frames of a parsed goroutine as compared: function, file, line, inlined.
fn frame_facts(goroutine: &Goroutine) -> Vec<(String, Option<String>, Option<u32>, bool)> {
    goroutine
        .frames
        .iter()
        .map(|f| (f.function.clone(), f.file.clone(), f.line, f.inlined))
        .collect()
}

/// Compares the parsed goroutines of the main dump.
/// Finds the goroutines of the runtime's text that cannot be matched (see
/// [`Exception`]).
fn exceptions(
    ours: &BTreeMap<u64, Goroutine>,
    theirs_text: &Traceback,
) -> BTreeMap<u64, Exception> {
    let mut excused = BTreeMap::new();
    let main: Vec<&Goroutine> = theirs_text.main_goroutines().collect();
    let repeated_fatal = theirs_text.fatal.as_ref().is_some_and(|f| f.repeats > 0);
    let repeated_goroutine = main
        .iter()
        .enumerate()
        .any(|(i, g)| main[..i].iter().any(|h| h.id == g.id));
    if repeated_fatal || repeated_goroutine {
        let running = |g: &Goroutine| g.status == GoroutineStatus::Running;
        for goroutine in &main {
            if running(goroutine) || ours.get(&goroutine.id.0).is_some_and(running) {
                excused.insert(goroutine.id.0, Exception::ConcurrentFatalErrors);
            }
        }
    }
    for (index, goroutine) in main.iter().enumerate() {
        let end = main
            .get(index + 1)
            .map_or(usize::MAX, |next| next.text_line);
        if theirs_text
            .warnings
            .iter()
            .any(|w| goroutine.text_line < w.text_line && w.text_line < end)
        {
            excused
                .entry(goroutine.id.0)
                .or_insert(Exception::DamagedText);
        }
        let stopped = ours
            .get(&goroutine.id.0)
            .is_some_and(|g| g.status != GoroutineStatus::Running);
        if goroutine.stack_unavailable && stopped {
            excused
                .entry(goroutine.id.0)
                .or_insert(Exception::ChangedAfterPrinting);
        }
    }
    excused
}

fn compare_goroutines(outcome: &mut Outcome, ours: &Traceback, theirs: &Traceback) {
    let index = |t: &Traceback| -> BTreeMap<u64, Goroutine> {
        let mut map = BTreeMap::new();
        for g in t.main_goroutines() {
            map.entry(g.id.0).or_insert_with(|| g.clone());
        }
        map
    };
    let ours_by_id = index(ours);
    let theirs_by_id = index(theirs);
    let crashing = theirs.main_goroutines().next().map(|g| g.id.0);
    outcome.goroutines = theirs_by_id.len();
    outcome.excused = exceptions(&ours_by_id, theirs);
    for (id, expected) in &theirs_by_id {
        let Some(found) = ours_by_id.get(id) else {
            outcome.problems.push(format!("goroutine {id} is missing"));
            continue;
        };
        let mut same = true;
        let excuse = outcome.excused.get(id).copied();
        let mut problem = |text: String| {
            same = false;
            match excuse {
                Some(reason) => outcome
                    .problems
                    .push(format!("goroutine {id} ({reason:?}): {text}")),
                None => outcome.problems.push(format!("goroutine {id}: {text}")),
            }
        };
        if found.status != expected.status || found.wait_reason != expected.wait_reason {
            problem(format!(
                "status {:?} {:?}, runtime {:?} {:?}",
                found.status, found.wait_reason, expected.status, expected.wait_reason
            ));
        }
        if found.stack_unavailable != expected.stack_unavailable {
            problem(format!(
                "stack unavailable {}, runtime {}",
                found.stack_unavailable, expected.stack_unavailable
            ));
        }
        let found_frames = frame_facts(found);
        let expected_frames = frame_facts(expected);
        let frames_match = if Some(*id) == crashing {
            found_frames.ends_with(&expected_frames)
        } else {
            found_frames == expected_frames
        };
        if !frames_match {
            let first_difference = found_frames
                .iter()
                .zip(&expected_frames)
                .position(|(a, b)| a != b);
            problem(format!(
                "frames differ ({} ours, {} runtime; first difference at {:?}: ours {:?}, runtime {:?})",
                found_frames.len(),
                expected_frames.len(),
                first_difference,
                first_difference.and_then(|i| found_frames.get(i)),
                first_difference.and_then(|i| expected_frames.get(i)),
            ));
        }
        let creator = |g: &Goroutine| {
            g.created_by
                .as_ref()
                .map(|c| (c.function.clone(), c.parent, c.file.clone(), c.line))
        };
        if creator(found) != creator(expected) {
            problem(format!(
                "created by {:?}, runtime {:?}",
                creator(found),
                creator(expected)
            ));
        }
        if same {
            outcome.matched += 1;
        } else if outcome.excused.contains_key(id) {
            outcome.excused_mismatches += 1;
        }
    }
    for id in ours_by_id.keys() {
        if !theirs_by_id.contains_key(id) {
            outcome.problems.push(format!("goroutine {id} is extra"));
        }
    }
}

fn run_crash(crash: &Crash) -> Outcome {
    let name = format!("{} {} {}", crash.toolchain, crash.mode, crash.program);
    let mut outcome = Outcome {
        key: (crash.toolchain.clone(), crash.mode.clone()),
        name: name.clone(),
        ..Outcome::default()
    };
    let theirs_text = std::fs::read_to_string(&crash.stderr)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", crash.stderr.display()));
    let (ours_text, code, stderr) = symbolize(crash);
    outcome.exit_code = code;
    if code != Some(0) {
        outcome
            .problems
            .push(format!("exit code {code:?}: {}", stderr.trim()));
    }
    let ours = traceback::parse(&ours_text);
    let theirs = traceback::parse(&theirs_text);
    compare_goroutines(&mut outcome, &ours, &theirs);
    let crashing = theirs.main_goroutines().next().map(|g| g.id.0);
    let warning_lines: Vec<usize> = theirs.warnings.iter().map(|w| w.text_line).collect();
    compare_lines(
        &mut outcome,
        &ours_text,
        &theirs_text,
        crashing,
        crash.mode == "stripped",
        &warning_lines,
    );
    outcome
}

/// Runs every crash, [`PARALLEL`] at a time, the largest first.
fn run_all(crashes: &[Crash]) -> Vec<Outcome> {
    let mut order: Vec<&Crash> = crashes.iter().collect();
    order.sort_by_key(|c| {
        std::cmp::Reverse(std::fs::metadata(&c.core).map(|m| m.len()).unwrap_or(0))
    });
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(crash) = order.get(index) else { break };
                let outcome = run_crash(crash);
                outcomes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(outcome);
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));
    outcomes
}

/// Prints the counts per toolchain and mode, and examples of each kind of
/// difference.
fn print_report(outcomes: &[Outcome]) {
    let mut groups: BTreeMap<&(String, String), Vec<&Outcome>> = BTreeMap::new();
    for outcome in outcomes {
        groups.entry(&outcome.key).or_default().push(outcome);
    }
    eprintln!("toolchain mode: goroutines matched/total (excused), identical texts/crashes, differences by kind");
    for ((toolchain, mode), group) in &groups {
        let matched: usize = group.iter().map(|o| o.matched).sum();
        let total: usize = group.iter().map(|o| o.goroutines).sum();
        let excused: usize = group.iter().map(|o| o.excused_mismatches).sum();
        let identical = group.iter().filter(|o| o.identical()).count();
        let mut kinds: BTreeMap<Kind, usize> = BTreeMap::new();
        for outcome in group {
            for (kind, count) in &outcome.differences {
                *kinds.entry(*kind).or_insert(0) += count;
            }
        }
        let kinds: Vec<String> = kinds
            .iter()
            .map(|(kind, count)| format!("{kind:?} {count}"))
            .collect();
        eprintln!(
            "{toolchain:>8} {mode:<8}: {matched}/{total} goroutines ({excused} excused), {identical}/{} texts identical; {}",
            group.len(),
            kinds.join(", ")
        );
    }
    let mut examples: BTreeMap<Kind, Vec<&String>> = BTreeMap::new();
    for outcome in outcomes {
        for (kind, list) in &outcome.examples {
            examples.entry(*kind).or_default().extend(list.iter());
        }
    }
    for (kind, list) in examples {
        eprintln!(
            "--- {kind:?}: {} crashes, for example:",
            outcomes
                .iter()
                .filter(|o| o.differences.contains_key(&kind))
                .count()
        );
        for example in list.iter().take(EXAMPLES_PER_KIND * 2) {
            eprintln!("  {example}");
        }
    }
    print_causes(outcomes);
    let with_problems: Vec<&Outcome> = outcomes.iter().filter(|o| !o.problems.is_empty()).collect();
    eprintln!(
        "--- {} crashes with goroutine mismatches",
        with_problems.len()
    );
    for outcome in with_problems.iter().take(40) {
        eprintln!(
            "  {}: {}",
            outcome.name,
            outcome
                .problems
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

/// Prints, for each cause of difference, how many crashes show it and
/// which.
fn print_causes(outcomes: &[Outcome]) {
    let mut by_cause: BTreeMap<Cause, Vec<&str>> = BTreeMap::new();
    for outcome in outcomes {
        let mut causes = outcome.causes.clone();
        if outcome.excused_mismatches > 0 {
            causes.extend(outcome.excused.values().map(|&e| Cause::from(e)));
        }
        for cause in causes {
            by_cause.entry(cause).or_default().push(&outcome.name);
        }
    }
    eprintln!("--- crashes by cause of difference (docs/limitations.md):");
    for (cause, names) in &by_cause {
        eprintln!("  {cause:?}: {} crashes: {}", names.len(), names.join(", "));
    }
}

#[test]
fn symbolize_matches_runtime_text() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    assert!(!manifest.crashes.is_empty(), "the manifest lists no crash");
    let only = std::env::var("GOCRASH_SYMBOLIZE_ONLY").ok();
    let crashes: Vec<Crash> = manifest
        .crashes
        .iter()
        .filter(|c| {
            only.as_deref().is_none_or(|text| {
                format!("{} {} {}", c.toolchain, c.mode, c.program).contains(text)
            })
        })
        .cloned()
        .collect();
    let outcomes = run_all(&crashes);
    print_report(&outcomes);
    if let Some(path) = full_report() {
        write_full_report(&path, &outcomes);
    }
    if only.is_none() {
        assert_corpus(&outcomes);
    }
}

fn write_full_report(path: &std::path::Path, outcomes: &[Outcome]) {
    let mut text = String::new();
    for outcome in outcomes {
        text.push_str(&format!(
            "=== {} (exit {:?}, {}/{} goroutines)\n",
            outcome.name, outcome.exit_code, outcome.matched, outcome.goroutines
        ));
        for problem in &outcome.problems {
            text.push_str(&format!("  problem: {problem}\n"));
        }
        for (kind, examples) in &outcome.examples {
            for example in examples {
                text.push_str(&format!("  {kind:?}: {example}\n"));
            }
        }
    }
    std::fs::write(path, text)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
}

/// Asserts what matches over the whole corpus today. Every crash is read
/// without error. Every goroutine of the runtime's main dump comes back
/// with the same status, frames and creator, unless an [`Exception`]
/// explains why it cannot. The headline, `runtime stack:`, the main dump
/// and its register dump are identical line by line, arguments, offsets,
/// fp, sp and pc included. Only `N minutes`, crash-path frames and the
/// same exceptions may differ.
fn assert_corpus(outcomes: &[Outcome]) {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.exit_code != Some(0))
        .map(|o| {
            format!(
                "{}: {}",
                o.name,
                o.problems.first().cloned().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "gocrash failed on {} crashes:\n{}",
        failed.len(),
        failed.join("\n")
    );

    let mismatched: Vec<String> = outcomes
        .iter()
        .filter(|o| o.matched + o.excused_mismatches != o.goroutines)
        .map(|o| format!("{}: {}", o.name, o.problems.join("; ")))
        .collect();
    assert!(
        mismatched.is_empty(),
        "goroutines differ in {} crashes:\n{}",
        mismatched.len(),
        mismatched.join("\n")
    );

    let unexplained: Vec<&String> = outcomes.iter().flat_map(|o| &o.unexplained).collect();
    assert!(
        unexplained.is_empty(),
        "{} line differences no exception explains:\n{}",
        unexplained.len(),
        unexplained
            .iter()
            .take(50)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn blocks_split_goroutines_and_sections() {
    let lines = [
        "SIGQUIT: quit",
        "PC=0x1 m=0 sigcode=0",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/m.go:3 +0x1 fp=0x2 sp=0x3 pc=0x4",
        "rax    0x0",
        "rbx    0x1",
        "-----",
        "SIGQUIT: quit",
        "goroutine 0 [idle]:",
        "rax    0x5",
    ];
    let numbered: Vec<(usize, &str)> = lines.iter().copied().enumerate().collect();
    let keys: Vec<String> = blocks(&numbered).into_iter().map(|b| b.key).collect();
    assert_eq!(
        keys,
        [
            "headline",
            "section 0 goroutine 1",
            "section 0 registers",
            "section 1 head",
            "section 1 goroutine 0",
            "section 1 registers"
        ]
    );
}

#[test]
fn differences_are_classified() {
    assert_eq!(
        classify_pair(
            "g",
            "goroutine 5 [sleep, 3 minutes]:",
            "goroutine 5 [sleep, 4 minutes]:"
        ),
        Kind::Minutes
    );
    assert_eq!(
        classify_pair("g", "goroutine 5 [sleep]:", "goroutine 5 [select]:"),
        Kind::Header
    );
    assert_eq!(
        classify_pair("g", "main.f(0x1)", "main.f(0x2?)"),
        Kind::Arguments
    );
    assert_eq!(
        classify_pair("g", "main.f(0x1)", "main.g(0x1)"),
        Kind::Frame
    );
    assert_eq!(
        classify_pair("g", "\t/a.go:3 +0x1 fp=0x2", "\t/a.go:3 +0x2 fp=0x2"),
        Kind::FrameAddresses
    );
    assert_eq!(
        classify_pair("g", "\t/a.go:3 +0x1", "\t/a.go:4 +0x1"),
        Kind::Frame
    );
    assert_eq!(
        classify_pair("headline", "panic: a", "panic: b"),
        Kind::Headline
    );
    assert_eq!(
        without_minutes("goroutine 5 [sleep, 12 minutes, locked to thread]:"),
        "goroutine 5 [sleep, locked to thread]:"
    );
}

#[test]
fn concurrent_fatal_errors_excuse_running_goroutines() {
    let theirs = traceback::parse(
        "fatal error: concurrent map writes\nfatal error: concurrent map writes\n\n\
         goroutine 18 [running]:\nmain.fill()\n\t/m.go:20 +0x35\n\n\
         goroutine 1 [select (no cases)]:\nmain.main()\n\t/m.go:40 +0x1\n\n\
         goroutine 17 [running]:\n\tgoroutine running on other thread; stack unavailable\n",
    );
    let ours = BTreeMap::new();
    let excused = exceptions(&ours, &theirs);
    assert_eq!(excused.get(&18), Some(&Exception::ConcurrentFatalErrors));
    assert_eq!(excused.get(&17), Some(&Exception::ConcurrentFatalErrors));
    assert_eq!(excused.get(&1), None);
}

#[test]
fn stopped_goroutine_is_excused() {
    let theirs = traceback::parse(
        "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/m.go:3 +0x1\n\n\
         goroutine 21 [running]:\n\tgoroutine running on other thread; stack unavailable\n",
    );
    let ours_text = traceback::parse(
        "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/m.go:3 +0x1\n\n\
         goroutine 21 [runnable]:\nmain.spin()\n\t/m.go:9 +0x4\n",
    );
    let ours: BTreeMap<u64, Goroutine> = ours_text
        .main_goroutines()
        .map(|g| (g.id.0, g.clone()))
        .collect();
    let excused = exceptions(&ours, &theirs);
    assert_eq!(excused.get(&21), Some(&Exception::ChangedAfterPrinting));
    assert_eq!(excused.len(), 1);
}

#[test]
fn crash_text_skips_service_output() {
    let text = "starting\nlistening on :80\n\npanic: boom\n\ngoroutine 1 [running]:\n";
    assert_eq!(
        crash_text(text),
        [(4, "panic: boom"), (6, "goroutine 1 [running]:")]
    );
}
