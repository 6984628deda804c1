//! Rebuilds every goroutine of every corpus crash from its core and compares
//! it with what the Go runtime printed before it aborted.
//!
//! For each crash of the manifest the core and the binary are opened,
//! `Process::load` walks the runtime's structures, and the runtime's own
//! `GOTRACEBACK=crash` text is parsed with `ingest::traceback::parse`. Every
//! goroutine id the runtime printed must come back with the same status,
//! wait reason, wait minutes, thread lock, frames (function, file, line,
//! inlined flag, and for physical frames the `+0x` offset, sp, fp and pc)
//! and creator. The crash facts must equal the text too: the `fatal error:`
//! message, and the signal number, code, address and pc of the
//! `[signal ...]` line. A goroutine that runs on another thread is printed
//! without a stack in the main dump and with it in that thread's `-----`
//! section; the section's frames are the ones compared. The `runtime stack:` section and
//! the `goroutine 0` blocks of the thread sections are compared with the
//! walks of the crashing thread and of each thread.
//!
//! The figures are printed per toolchain and mode. The checks listed in
//! [`MUST_MATCH`] hold on every corpus crash and must go on holding, so
//! that what matches cannot regress. Two kinds are only counted: text the
//! journal damaged, and a goroutine that went on running after the main
//! dump printed it as running on another thread.
//! `GOCRASH_WALK_DETAILS=1` prints each difference.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use ingest::traceback::{self, GoroutineStatus, Traceback};
use symbolizer::binary::Binary;
use symbolizer::core::{Core, CoreOptions};
use symbolizer::goroutines::{Goroutine, Process, ThreadState};
use symbolizer::unwind::Frame;

use support::Crash;

/// Threads that load crashes at once.
const WORKERS: usize = 2;

/// Kinds of difference that no crash may show. Each names a check of
/// [`compare_crash`].
const MUST_MATCH: &[&str] = &[
    "load failed",
    "goroutine missing",
    "status",
    "wait reason",
    "wait minutes",
    "locked to thread",
    "crashing goroutine frames",
    "frames",
    "created by",
    "frame addresses",
    "runtime stack",
    "thread frames",
    "elided count",
    "fatal error message",
    "signal",
];

/// Counts for one toolchain and mode.
#[derive(Default)]
struct Tally {
    crashes: usize,
    goroutines_matched: usize,
    goroutines_total: usize,
    frames_matched: usize,
    frames_total: usize,
    crashing_frames_matched: usize,
    crashing_frames_total: usize,
    system_frames_matched: usize,
    system_frames_total: usize,
    /// `fatal error:` messages and `[signal ...]` lines compared.
    fatal_errors: usize,
    signals: usize,
    /// Differences by kind.
    differences: BTreeMap<String, usize>,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.crashes += other.crashes;
        self.goroutines_matched += other.goroutines_matched;
        self.goroutines_total += other.goroutines_total;
        self.frames_matched += other.frames_matched;
        self.frames_total += other.frames_total;
        self.crashing_frames_matched += other.crashing_frames_matched;
        self.crashing_frames_total += other.crashing_frames_total;
        self.system_frames_matched += other.system_frames_matched;
        self.system_frames_total += other.system_frames_total;
        self.fatal_errors += other.fatal_errors;
        self.signals += other.signals;
        for (kind, count) in &other.differences {
            *self.differences.entry(kind.clone()).or_default() += count;
        }
    }

    fn differ(&mut self, kind: &str) {
        *self.differences.entry(kind.to_owned()).or_default() += 1;
    }
}

/// The differences of one crash, with a line each for the details.
#[derive(Default)]
struct CrashReport {
    tally: Tally,
    details: Vec<String>,
}

impl CrashReport {
    fn differ(&mut self, kind: &str, detail: String) {
        self.tally.differ(kind);
        self.details.push(format!("[{kind}] {detail}"));
    }
}

/// One logical frame as both sides describe it. Physical frames carry their
/// addresses; inlined frames have none.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LogicalFrame {
    function: String,
    file: Option<String>,
    line: Option<u32>,
    inlined: bool,
    addresses: Option<Addresses>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Addresses {
    /// `+0x…`, which the runtime prints only past the function's entry.
    offset: Option<u64>,
    sp: Option<u64>,
    fp: Option<u64>,
    pc: Option<u64>,
}

/// The runtime prints `runtime.gopanic` as `panic`.
fn printed_function_name(name: &str) -> String {
    if name == "runtime.gopanic" {
        "panic".to_owned()
    } else {
        name.to_owned()
    }
}

/// Flattens physical frames into the logical frames the runtime prints.
fn logical_frames(frames: &[Frame]) -> Vec<LogicalFrame> {
    let mut logical = Vec::new();
    for frame in frames {
        if !frame.is_go() {
            logical.push(LogicalFrame {
                function: "non-Go function".to_owned(),
                file: None,
                line: None,
                inlined: false,
                addresses: Some(Addresses {
                    offset: None,
                    sp: Some(frame.sp),
                    fp: frame.fp,
                    pc: Some(frame.pc),
                }),
            });
            continue;
        }
        let last = frame.source.len() - 1;
        for (index, source) in frame.source.iter().enumerate() {
            let physical = index == last;
            logical.push(LogicalFrame {
                function: printed_function_name(&source.function),
                file: source.file.as_deref().map(str::to_owned),
                line: source.line.and_then(|l| u32::try_from(l).ok()),
                inlined: source.inlined,
                addresses: physical.then(|| Addresses {
                    offset: frame.offset().filter(|&o| o > 0),
                    sp: Some(frame.sp),
                    fp: frame.fp,
                    pc: Some(frame.pc),
                }),
            });
        }
    }
    logical
}

fn printed_frames(frames: &[traceback::Frame]) -> Vec<LogicalFrame> {
    frames
        .iter()
        .map(|frame| LogicalFrame {
            function: if frame.non_go {
                "non-Go function".to_owned()
            } else {
                frame.function.clone()
            },
            file: frame.file.clone(),
            line: frame.line,
            inlined: frame.inlined,
            addresses: (!frame.inlined).then_some(Addresses {
                offset: frame.offset,
                sp: frame.sp,
                fp: frame.fp,
                pc: frame.pc,
            }),
        })
        .collect()
}

/// How a printed stack and a walked one compare.
#[derive(Default)]
struct FrameComparison {
    matched: usize,
    total: usize,
    /// Frames whose function, file, line or inlined flag differ, or that one side lacks.
    source_differences: Vec<String>,
    /// Physical frames whose offset, sp, fp or pc differ.
    address_differences: Vec<String>,
    /// The elision count differs from the frames the walk found.
    elision: Option<String>,
}

/// Compares printed frames with walked ones. When the runtime elided frames
/// in the middle, the walk's first `after_frame` and last remaining frames
/// are compared and the count checked, with `left_out`, the logical frames
/// the walk counted in the middle of a stack deeper than it keeps.
fn compare_frames(
    printed: &[LogicalFrame],
    elided: Option<traceback::Elision>,
    walked: &[LogicalFrame],
    left_out: u64,
) -> FrameComparison {
    let mut result = FrameComparison {
        total: printed.len(),
        ..FrameComparison::default()
    };
    let pairs: Vec<(usize, &LogicalFrame, Option<&LogicalFrame>)> = match elided {
        Some(elision) if elision.after_frame < printed.len() => {
            let head = elision.after_frame;
            let tail = printed.len() - head;
            let mut pairs: Vec<_> = (0..head).map(|i| (i, &printed[i], walked.get(i))).collect();
            let tail_start = walked.len().saturating_sub(tail).max(head);
            pairs.extend(
                (0..tail).map(|i| (head + i, &printed[head + i], walked.get(tail_start + i))),
            );
            let found = walked.len().saturating_sub(printed.len()) as u64 + left_out;
            if elision.count.is_some_and(|count| count != found) {
                result.elision = Some(format!(
                    "printed {:?} elided frames, the walk has {found} more",
                    elision.count
                ));
            }
            pairs
        }
        Some(_) => {
            // The marker after the last frame (Go 1.20 and older): the rest is cut.
            (0..printed.len())
                .map(|i| (i, &printed[i], walked.get(i)))
                .collect()
        }
        None => {
            if walked.len() > printed.len() {
                result.source_differences.push(format!(
                    "the walk has {} more frames, from {:?}",
                    walked.len() - printed.len(),
                    walked[printed.len()].function
                ));
            }
            (0..printed.len())
                .map(|i| (i, &printed[i], walked.get(i)))
                .collect()
        }
    };
    for (index, expected, found) in pairs {
        let Some(found) = found else {
            result.source_differences.push(format!(
                "frame {index}: missing, printed {}",
                expected.function
            ));
            continue;
        };
        let same_source = expected.function == found.function
            && expected.file == found.file
            && expected.line == found.line
            && expected.inlined == found.inlined;
        if !same_source {
            result.source_differences.push(format!(
                "frame {index}: {} {}:{} inlined={} printed {} {}:{} inlined={}",
                found.function,
                found.file.as_deref().unwrap_or("?"),
                found.line.unwrap_or(0),
                found.inlined,
                expected.function,
                expected.file.as_deref().unwrap_or("?"),
                expected.line.unwrap_or(0),
                expected.inlined
            ));
            continue;
        }
        if expected.addresses != found.addresses {
            result.address_differences.push(format!(
                "frame {index} {}: {:x?} printed {:x?}",
                expected.function, found.addresses, expected.addresses
            ));
            continue;
        }
        result.matched += 1;
    }
    result
}

/// The runtime's status name for a printed status.
fn printed_status_name(status: GoroutineStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The frames the runtime printed for `id`: the main dump's block when it
/// has frames, else the thread section that printed them.
fn printed_stack(
    traceback: &Traceback,
    id: traceback::GoroutineId,
) -> Option<&traceback::Goroutine> {
    traceback.goroutine(id).filter(|g| !g.frames.is_empty())
}

/// The walk's frames from where the runtime starts printing.
fn walked_frames(goroutine: &Goroutine) -> Vec<LogicalFrame> {
    match &goroutine.walk {
        Some(walk) => logical_frames(walk.frames.get(goroutine.printed_from..).unwrap_or(&[])),
        None => Vec::new(),
    }
}

fn compare_goroutine(
    report: &mut CrashReport,
    traceback: &Traceback,
    header: &traceback::Goroutine,
    found: &Goroutine,
    crashing: bool,
) {
    let id = header.id.0;
    let mut matched = true;
    let status = found
        .record
        .as_ref()
        .map(|r| r.status.name())
        .unwrap_or("???");
    let expected_status = printed_status_name(header.status);
    if status != expected_status {
        // A goroutine printed as running on another thread, whose thread
        // never printed its section, kept running until the core was
        // dumped: its state in the core is later than the text.
        let moved_on = header.status == GoroutineStatus::Running
            && printed_stack(traceback, header.id).is_none();
        let kind = if moved_on {
            "state changed after print"
        } else {
            "status"
        };
        report.differ(
            kind,
            format!("goroutine {id}: {status}, printed {expected_status}"),
        );
        matched &= moved_on;
    }
    if found.wait_reason.as_deref() != header.wait_reason.as_deref() {
        report.differ(
            "wait reason",
            format!(
                "goroutine {id}: {:?}, printed {:?}",
                found.wait_reason, header.wait_reason
            ),
        );
        matched = false;
    }
    if found.wait_minutes != header.wait_minutes {
        report.differ(
            "wait minutes",
            format!(
                "goroutine {id}: {:?}, printed {:?}",
                found.wait_minutes, header.wait_minutes
            ),
        );
        matched = false;
    }
    if found.locked_to_thread != header.locked_to_thread {
        report.differ(
            "locked to thread",
            format!(
                "goroutine {id}: {}, printed {}",
                found.locked_to_thread, header.locked_to_thread
            ),
        );
        matched = false;
    }

    let damaged =
        printed_stack(traceback, header.id).and_then(|stack| damage_in_block(traceback, stack));
    if let Some(warning) = &damaged {
        report.differ(
            "text damaged",
            format!("goroutine {id}: frames not compared, {warning}"),
        );
    }
    if let Some(stack) = printed_stack(traceback, header.id).filter(|_| damaged.is_none()) {
        let printed = printed_frames(&stack.frames);
        let walked = walked_frames(found);
        let left_out = found
            .walk
            .as_ref()
            .and_then(|walk| walk.elided)
            .map_or(0, |elided| elided.logical);
        let comparison = compare_frames(&printed, stack.elided, &walked, left_out);
        report.tally.frames_matched += comparison.matched;
        report.tally.frames_total += comparison.total;
        if crashing {
            report.tally.crashing_frames_matched += comparison.matched;
            report.tally.crashing_frames_total += comparison.total;
        }
        let kind = if crashing {
            "crashing goroutine frames"
        } else {
            "frames"
        };
        if !comparison.source_differences.is_empty() {
            matched = false;
            let stop = found
                .walk
                .as_ref()
                .map(|w| format!("{:?}", w.stop))
                .unwrap_or_default();
            report.differ(
                kind,
                format!(
                    "goroutine {id} (walk stop {stop}): {}",
                    comparison.source_differences.join("; ")
                ),
            );
        }
        if !comparison.address_differences.is_empty() {
            matched = false;
            report.differ(
                "frame addresses",
                format!(
                    "goroutine {id}: {}",
                    comparison.address_differences.join("; ")
                ),
            );
        }
        if let Some(elision) = comparison.elision {
            matched = false;
            report.differ("elided count", format!("goroutine {id}: {elision}"));
        }
    }

    let printed_creator = stack_creator(traceback, header);
    if damaged.is_some() {
        if matched {
            report.tally.goroutines_matched += 1;
        }
        return;
    }
    let found_creator = found.created_by.as_ref().map(|c| {
        (
            c.function.to_string(),
            c.file.as_deref().map(str::to_owned),
            c.line.and_then(|l| u32::try_from(l).ok()),
            c.offset.filter(|&o| o > 0),
            c.parent_goid,
        )
    });
    if found_creator != printed_creator {
        report.differ(
            "created by",
            format!("goroutine {id}: {found_creator:?}, printed {printed_creator:?}"),
        );
        matched = false;
    }
    if matched {
        report.tally.goroutines_matched += 1;
    }
}

/// The first parser warning inside the block that printed `stack`: text
/// the journal damaged (a line cut or lost), which no walk can match.
fn damage_in_block(traceback: &Traceback, stack: &traceback::Goroutine) -> Option<String> {
    let start = stack.text_line;
    let starts = traceback
        .goroutines
        .iter()
        .map(|g| g.text_line)
        .chain(traceback.system_stacks.iter().map(|s| s.text_line))
        .chain(traceback.threads.iter().map(|t| t.text_line));
    let end = starts
        .filter(|&line| line > start)
        .min()
        .unwrap_or(usize::MAX);
    let warning = traceback
        .warnings
        .iter()
        .find(|w| start <= w.text_line && w.text_line < end)?;
    Some(format!(
        "line {}: {:?} {:?}",
        warning.text_line, warning.kind, warning.text
    ))
}

type Creator = (
    String,
    Option<String>,
    Option<u32>,
    Option<u64>,
    Option<u64>,
);

fn stack_creator(traceback: &Traceback, header: &traceback::Goroutine) -> Option<Creator> {
    let block = header
        .created_by
        .as_ref()
        .map(|_| header)
        .or_else(|| printed_stack(traceback, header.id))?;
    let created = block.created_by.as_ref()?;
    Some((
        created.function.clone(),
        created.file.clone(),
        created.line,
        created.offset,
        created.parent.map(|p| p.0),
    ))
}

/// The frames the runtime prints for a thread's g0 or gsignal: from the
/// interrupted (or crashing) frame while the walk stays off the goroutine
/// stack, through the frame that switches stacks.
fn thread_frames(thread: &ThreadState, from: usize) -> Vec<LogicalFrame> {
    let frames = thread.walk.frames.get(from..).unwrap_or(&[]);
    let end = frames
        .iter()
        .position(|f| f.stack == symbolizer::unwind::StackKind::Goroutine)
        .unwrap_or(frames.len());
    logical_frames(&frames[..end])
}

fn compare_system_stacks(report: &mut CrashReport, traceback: &Traceback, process: &Process) {
    // `runtime stack:` of the crashing thread.
    for stack in traceback
        .system_stacks
        .iter()
        .filter(|s| s.thread.is_none())
    {
        let printed = printed_frames(&stack.frames);
        let walked = process
            .runtime_stack()
            .map(logical_frames)
            .unwrap_or_default();
        let comparison = compare_frames(&printed, stack.elided, &walked, 0);
        report.tally.system_frames_matched += comparison.matched;
        report.tally.system_frames_total += comparison.total;
        let differences: Vec<String> = comparison
            .source_differences
            .into_iter()
            .chain(comparison.address_differences)
            .collect();
        if !differences.is_empty() {
            report.differ("runtime stack", differences.join("; "));
        }
    }
    // `goroutine 0` blocks of the thread sections.
    for block in traceback
        .goroutines
        .iter()
        .filter(|g| g.id.0 == 0 && !g.frames.is_empty())
    {
        let Some(section) = block.thread.and_then(|index| traceback.threads.get(index)) else {
            continue;
        };
        let Some(m) = section.signal.as_ref().and_then(|s| s.m) else {
            continue;
        };
        let printed = printed_frames(&block.frames);
        let Some(thread) = process
            .threads()
            .iter()
            .find(|t| t.m.is_some_and(|tm| tm.id as u64 == m))
        else {
            report.tally.system_frames_total += printed.len();
            report.differ("thread frames", format!("m{m}: no thread runs this M"));
            continue;
        };
        let walked = thread_frames(thread, thread.printed_from());
        let left_out = thread.walk.elided.map_or(0, |elided| elided.logical);
        let comparison = compare_frames(&printed, block.elided, &walked, left_out);
        report.tally.system_frames_matched += comparison.matched;
        report.tally.system_frames_total += comparison.total;
        let differences: Vec<String> = comparison
            .source_differences
            .into_iter()
            .chain(comparison.address_differences)
            .collect();
        if !differences.is_empty() {
            report.differ("thread frames", format!("m{m}: {}", differences.join("; ")));
        }
    }
}

/// Loads one crash and compares it with its text.
fn compare_crash(crash: &Crash) -> CrashReport {
    let mut report = CrashReport::default();
    report.tally.crashes = 1;
    let text = std::fs::read(&crash.stderr)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", crash.stderr.display()));
    let traceback = traceback::parse_bytes(&text, &traceback::ParseOptions::default());
    let mut ids: Vec<traceback::GoroutineId> = Vec::new();
    for goroutine in &traceback.goroutines {
        if goroutine.id.0 != 0 && !ids.contains(&goroutine.id) {
            ids.push(goroutine.id);
        }
    }
    report.tally.goroutines_total = ids.len();
    assert!(
        !ids.is_empty(),
        "{}: the runtime printed no goroutine",
        crash.stderr.display()
    );

    let process = match load(crash) {
        Ok(process) => process,
        Err(error) => {
            report.differ("load failed", error);
            return report;
        }
    };
    let by_goid: HashMap<u64, &Goroutine> = process
        .goroutines()
        .iter()
        .filter_map(|g| Some((g.goid?, g)))
        .collect();
    let crashing = traceback.main_goroutines().next().map(|g| g.id);
    for id in ids {
        let header = traceback
            .goroutines
            .iter()
            .find(|g| g.id == id && g.thread.is_none())
            .or_else(|| traceback.goroutines.iter().find(|g| g.id == id))
            .expect("the id was collected from this list");
        let Some(found) = by_goid.get(&id.0) else {
            report.differ("goroutine missing", format!("goroutine {id}"));
            continue;
        };
        let is_crashing = crashing == Some(id) && process.crash().goroutine == Some(id.0);
        compare_goroutine(&mut report, &traceback, header, found, is_crashing);
    }
    compare_system_stacks(&mut report, &traceback, &process);
    compare_crash_facts(&mut report, &traceback, &process);
    report
}

/// The numbers of the signals the corpus crashes print by name.
const SIGNAL_NUMBERS: [(&str, u32); 7] = [
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGBUS", 7),
    ("SIGFPE", 8),
    ("SIGSEGV", 11),
    ("SIGQUIT", 3),
];

/// Compares the `fatal error:` message and the `[signal ...]` line with the
/// library's crash facts.
fn compare_crash_facts(report: &mut CrashReport, traceback: &Traceback, process: &Process) {
    let facts = process.crash();
    if let Some(fatal) = traceback
        .fatal
        .as_ref()
        .filter(|f| f.form == traceback::FatalForm::FatalError)
    {
        report.tally.fatal_errors += 1;
        if facts.fatal_error.as_deref() != Some(fatal.message.as_str()) {
            report.differ(
                "fatal error message",
                format!("{:?}, printed {:?}", facts.fatal_error, fatal.message),
            );
        }
    }
    let Some(printed) = &traceback.signal else {
        return;
    };
    if printed.form != traceback::SignalForm::Bracketed {
        return;
    }
    report.tally.signals += 1;
    let printed_signo = printed
        .number
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| {
            let name = printed.name.as_deref()?;
            SIGNAL_NUMBERS
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, number)| *number)
        });
    let found = facts
        .signal
        .map(|s| (Some(s.signo), Some(s.code), Some(s.addr), Some(s.pc)));
    let expected = (printed_signo, printed.code, printed.addr, printed.pc);
    if found != Some(expected) {
        report.differ(
            "signal",
            format!("(signo, code, addr, pc) {found:x?}, printed {expected:x?}"),
        );
    }
}

fn load(crash: &Crash) -> Result<Process, String> {
    let options = CoreOptions {
        executable: Some(crash.binary.clone()),
        ..CoreOptions::default()
    };
    let core = Core::open(&crash.core, &options)
        .map_err(|e| format!("core {}: {e}", crash.core.display()))?;
    let binary = Binary::open(&crash.binary)
        .map_err(|e| format!("binary {}: {e}", crash.binary.display()))?;
    Process::load(&core, &binary).map_err(|e| format!("{e}"))
}

fn percent(matched: usize, total: usize) -> String {
    if total == 0 {
        return "-".to_owned();
    }
    format!("{:.2}%", matched as f64 * 100.0 / total as f64)
}

fn print_tally(name: &str, tally: &Tally) {
    eprintln!(
        "{name:<20} crashes {:>3}  goroutines {:>6}/{:<6} ({})  frames {:>7}/{:<7} ({})  crashing frames {}/{} ({})  system frames {}/{} ({})  fatal errors {}  signals {}",
        tally.crashes,
        tally.goroutines_matched,
        tally.goroutines_total,
        percent(tally.goroutines_matched, tally.goroutines_total),
        tally.frames_matched,
        tally.frames_total,
        percent(tally.frames_matched, tally.frames_total),
        tally.crashing_frames_matched,
        tally.crashing_frames_total,
        percent(tally.crashing_frames_matched, tally.crashing_frames_total),
        tally.system_frames_matched,
        tally.system_frames_total,
        percent(tally.system_frames_matched, tally.system_frames_total),
        tally.fatal_errors,
        tally.signals,
    );
    for (kind, count) in &tally.differences {
        eprintln!("{:<20}   {count:>5} {kind}", "");
    }
}

#[test]
fn walk_matches_runtime_traceback() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let only = std::env::var("GOCRASH_WALK_ONLY").ok();
    let crashes: Vec<&Crash> = manifest
        .crashes
        .iter()
        .filter(|c| {
            only.as_deref().is_none_or(|o| {
                c.program == o || format!("{}/{}/{}", c.toolchain, c.mode, c.program) == o
            })
        })
        .filter(|c| Path::new(&c.core).exists())
        .collect();
    if crashes.is_empty() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the manifest lists no crash whose core exists");
        }
        eprintln!("skipped: the manifest lists no crash whose core exists");
        return;
    }

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, CrashReport)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(crash) = crashes.get(index) else {
                    break;
                };
                let report = compare_crash(crash);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((index, report));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(index, _)| *index);

    let details = std::env::var("GOCRASH_WALK_DETAILS").is_ok_and(|v| v == "1");
    let mut by_build: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut failures = Vec::new();
    for (index, report) in &results {
        let crash = crashes[*index];
        let name = format!("{}/{}/{}", crash.toolchain, crash.mode, crash.program);
        by_build
            .entry((crash.toolchain.clone(), crash.mode.clone()))
            .or_default()
            .add(&report.tally);
        total.add(&report.tally);
        if details && !report.details.is_empty() {
            eprintln!("{name}:");
            for line in &report.details {
                eprintln!("  {line}");
            }
        }
        for line in &report.details {
            if MUST_MATCH
                .iter()
                .any(|kind| line.starts_with(&format!("[{kind}]")))
            {
                failures.push(format!("{name}: {line}"));
            }
        }
    }
    for ((toolchain, mode), tally) in &by_build {
        print_tally(&format!("go{toolchain} {mode}"), tally);
    }
    print_tally("all", &total);
    assert!(total.goroutines_total > 0, "no goroutine was compared");
    assert!(
        failures.is_empty(),
        "{} differences that must not occur:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The thread of each cgo crash that was in C code is walked from its
/// registers through the signal frame and the C frames (with the
/// `.eh_frame` of the executable and of the C library) back to the
/// goroutine's own stack, up to `runtime.goexit`. Up to Go 1.21 the thread
/// that dumped the core is another one, so every thread with C frames is
/// checked.
#[test]
fn cgo_threads_walk_through_c_frames() {
    use symbolizer::unwind::FrameSource;

    let Some(manifest) = support::manifest() else {
        return;
    };
    let crashes: Vec<&Crash> = manifest
        .crashes
        .iter()
        .filter(|c| matches!(c.program.as_str(), "cgosegv" | "cgoabort") && c.core.exists())
        .collect();
    if crashes.is_empty() {
        eprintln!("skipped: the manifest lists no cgo crash whose core exists");
        return;
    }
    let mut failures = Vec::new();
    for crash in &crashes {
        let options = CoreOptions {
            executable: Some(crash.binary.clone()),
            file_opener: Some(Box::new(|file: &symbolizer::core::MappedFile| {
                std::fs::File::open(&file.path).map(Some)
            })),
            ..CoreOptions::default()
        };
        let core = Core::open(&crash.core, &options).expect("the corpus core opens");
        let binary = Binary::open(&crash.binary).expect("the corpus binary opens");
        let process = Process::load(&core, &binary).expect("the corpus crash loads");
        let name = format!("{}/{}/{}", crash.toolchain, crash.mode, crash.program);
        let in_c: Vec<&ThreadState> = process
            .threads()
            .iter()
            .filter(|t| t.walk.frames.iter().any(|f| f.entry.is_none()))
            .collect();
        let cfi_frames: usize = in_c
            .iter()
            .map(|t| {
                t.walk
                    .frames
                    .iter()
                    .filter(|f| f.found_by == FrameSource::Cfi)
                    .count()
            })
            .sum();
        if cfi_frames == 0 {
            failures.push(format!("{name}: no frame was found through .eh_frame"));
        }
        for thread in in_c {
            let last = thread
                .walk
                .frames
                .last()
                .and_then(|f| f.function())
                .unwrap_or("?");
            if last != "runtime.goexit" {
                failures.push(format!(
                    "{name}: thread {} ends at {last} ({:?})",
                    thread.id, thread.walk.stop
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
