//! Printing a symbolized crash: the facts every format shares, gathered in
//! a [`Report`], and one module per output format ([`text`] for people,
//! [`gofmt`] for the Go runtime's own layout, [`json`] for tools).
//!
//! Rebuilding goroutines and stacks is the symbolizer's job. This module
//! decides what to show and in which order, and reads the few extra words
//! the Go layout needs (function arguments, signal frames).

pub mod args;
pub mod compact_json;
pub mod escape;
pub mod gofmt;
pub mod json;
pub mod signal;
pub mod text;

use serde::Serialize;
use symbolizer::buildinfo::BuildInfo;
use symbolizer::goroutines::{Goroutine, Process};
use symbolizer::runtime::version::GoVersion;
use symbolizer::unwind::Frame;

use crate::crash_input::OpenedCrash;

pub use symbolizer::error_chain;

/// Everything the formats print about one crash.
pub struct Report<'a> {
    pub crash: &'a OpenedCrash,
    /// The rebuilt process, or why it could not be rebuilt.
    pub process: Result<&'a Process, String>,
    pub build_info: Result<BuildInfo, String>,
    /// The Go release that built the binary, from its build information.
    pub version: Option<GoVersion>,
    /// The `fatal error:` message, when the crash is a fatal error.
    pub fatal_error: Option<String>,
    /// The signal the runtime could not turn into a panic and died of, with
    /// the thread that received it first. Set only when the crash is
    /// neither a panic nor a fatal error.
    pub fatal_signal: Option<(u32, signal::HandledSignal)>,
    /// The parts of the crash the damaged core lacks, one sentence each.
    pub missing: Vec<String>,
    /// Problems that leave the output complete but less certain.
    pub warnings: Vec<String>,
    /// The journal's copy of the crash text, for a crash selected from the
    /// journal; `None` otherwise and for the Go layout.
    pub journal_text: Option<JournalText>,
}

/// The crash text the runtime printed, as journald kept it, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct JournalText {
    /// The report's first line (`panic: ...`, `fatal error: ...`); `None`
    /// when the journal has no crash report for the process.
    pub headline: Option<String>,
    /// The number of lines read from the journal.
    pub lines: usize,
    /// The losses and changes journald caused, one sentence each; empty
    /// when nothing is known to be lost.
    pub loss: Vec<String>,
    /// The reason the text could not be read, when it could not.
    pub error: Option<String>,
}

impl<'a> Report<'a> {
    /// Gathers the report of an opened crash and its process.
    pub fn new(crash: &'a OpenedCrash, process: Result<&'a Process, String>) -> Report<'a> {
        let build_info =
            symbolizer::buildinfo::read(crash.binary.elf()).map_err(|err| err.to_string());
        let version = build_info
            .as_ref()
            .ok()
            .and_then(|info| GoVersion::parse(&info.go_version));
        let mut missing = Vec::new();
        let core = &crash.core;
        if let Some(damage) = core.decompress_damage() {
            let cause = if damage.is_damaged_input() {
                "the compressed core is damaged"
            } else {
                "the core could not be decompressed whole"
            };
            let line = match damage {
                symbolizer::decompress::DecompressError::ChecksumMismatch { .. } => format!(
                    "the compressed core fails its content checksum, so any value read from it \
                     may be wrong: {}",
                    error_chain(damage)
                ),
                _ => format!(
                    "{cause}; only its first part was read: {}",
                    error_chain(damage)
                ),
            };
            missing.push(line);
        }
        for problem in core.problems() {
            match problem {
                symbolizer::core::CoreProblem::FileNotUsed { .. } => {}
                other => missing.push(other.to_string()),
            }
        }
        let mut warnings = crash.warnings.clone();
        match &process {
            Ok(process) => {
                for goroutine in process.goroutines() {
                    if let Some(error) = &goroutine.error {
                        missing.push(error.clone());
                    }
                    // Every goroutine walk of an intact corpus core reaches
                    // its top frame, so one that stops early lost frames:
                    // through damage, or a frame the unwinder cannot follow.
                    // A walk stopped by its share of the process's budget is
                    // counted once, in the process's own Missing line.
                    let early_stop =
                        goroutine
                            .walk
                            .as_ref()
                            .map(|walk| &walk.stop)
                            .filter(|stop| {
                                !stop.is_complete()
                                    && !matches!(
                                        stop,
                                        symbolizer::unwind::StopReason::DepthLimit { limit }
                                            if *limit < symbolizer::unwind::MAX_WALK_STEPS
                                    )
                            });
                    if let (Some(stop), Some(goid)) = (early_stop, goroutine.goid) {
                        let line = match stop {
                            symbolizer::unwind::StopReason::Unreadable { addr, error } => {
                                format!("goroutine {goid}: the stack walk stopped at {addr:#x}: {error}")
                            }
                            other => format!(
                                "goroutine {goid}: the stack walk stopped early: {}",
                                describe_stop(other)
                            ),
                        };
                        missing.push(line);
                    }
                }
                for thread in process.threads() {
                    let outside = |addr| {
                        matches!(
                            core.memory().read_u8(addr),
                            Err(symbolizer::core::MemoryError::Unmapped { .. })
                        )
                    };
                    let regs = &thread.regs;
                    if outside(regs.pc) || outside(regs.sp) {
                        missing.push(format!(
                            "thread {}: its registers point outside the core's memory (pc {:#x}, \
                             sp {:#x}), so its stack cannot be read: the core's notes may be \
                             damaged, or the thread jumped to a bad address",
                            thread.id, regs.pc, regs.sp
                        ));
                    }
                }
                missing.extend(process.missing().iter().cloned());
                warnings.extend(process.warnings().iter().cloned());
            }
            Err(error) => missing.push(format!("no goroutine could be rebuilt: {error}")),
        }
        let fatal_error = process
            .as_ref()
            .ok()
            .and_then(|process| process.crash().fatal_error.clone());
        let panicked = process
            .as_ref()
            .is_ok_and(|p| p.crash().panics.iter().any(|panic| !panic.goexit));
        let fatal_signal = match &process {
            Ok(process) if fatal_error.is_none() && !panicked => {
                let own_pid = core.process().map(|p| p.pid);
                signal::signal_origin(core.arch(), core.memory(), process, own_pid)
                    .map(|(thread, signal)| (thread.id, signal))
            }
            _ => None,
        };
        Report {
            crash,
            process,
            build_info,
            version,
            fatal_error,
            fatal_signal,
            missing,
            warnings,
            journal_text: None,
        }
    }

    /// Reports whether parts of the crash could not be read because the
    /// core is damaged.
    pub fn is_partial(&self) -> bool {
        !self.missing.is_empty()
    }

    /// Reports whether the binary's Go release is 1.`minor` or newer. An
    /// unknown release counts as the newest, as the symbolizer assumes too.
    pub fn go_at_least(&self, minor: u32) -> bool {
        self.version
            .is_none_or(|v| v >= GoVersion::new(1, minor, 0))
    }
}

/// Returns the goroutine the crash happened on, as the symbolizer found it
/// from the thread the core names.
pub fn crashing_goroutine(process: &Process) -> Option<&Goroutine> {
    let goid = process.crash().goroutine?;
    process.goroutines().iter().find(|g| g.goid == Some(goid))
}

impl<'a> Report<'a> {
    /// Returns the goroutine the crash happened on. For a fatal signal that
    /// is the goroutine of the thread that received the signal first,
    /// which before Go 1.22 is not the thread the core names.
    pub fn crashing_goroutine(&self) -> Option<&'a Goroutine> {
        let process = *self.process.as_ref().ok()?;
        if let Some((id, _)) = &self.fatal_signal {
            let thread = process.threads().iter().find(|t| t.id == *id)?;
            let address = thread.goroutine?;
            return process.goroutines().iter().find(|g| g.address == address);
        }
        crashing_goroutine(process)
    }

    /// Returns why no goroutine crashed, when none did. A SIGQUIT another
    /// process sent requests a dump of every goroutine, and the thread it
    /// arrived on usually runs none.
    pub fn no_goroutine_reason(&self) -> Option<String> {
        let process = *self.process.as_ref().ok()?;
        if self.crashing_goroutine().is_some() {
            return None;
        }
        if let Some((thread, signal)) = &self.fatal_signal {
            if signal.signo == signal::SIGQUIT && signal.code <= 0 {
                let sender = match signal.code {
                    0 => format!("process {}", signal::sender(signal)),
                    _ => "a process".to_owned(),
                };
                return Some(format!(
                    "SIGQUIT, sent by {sender}, asks the runtime for every goroutine's stack; \
                     thread {thread}, which received it, ran no goroutine"
                ));
            }
        }
        process.crash().no_goroutine_reason.clone()
    }
}

/// Reports whether a goroutine is gone. The runtime keeps dead gs for
/// reuse and prints none of them.
pub fn is_dead(goroutine: &Goroutine) -> bool {
    goroutine.record.as_ref().is_some_and(|r| {
        matches!(
            r.status,
            symbolizer::runtime::waitreason::GStatus::Dead
                | symbolizer::runtime::waitreason::GStatus::DeadExtra
        )
    })
}

/// Returns the goroutines in the runtime's printing order: the crashing
/// one first, then the others in `allgs` order, dead ones left out.
pub fn printing_order<'a>(report: &Report<'a>, process: &'a Process) -> Vec<&'a Goroutine> {
    let crashing = report.crashing_goroutine();
    let mut order: Vec<&Goroutine> = crashing.into_iter().collect();
    for goroutine in process.goroutines() {
        if is_dead(goroutine) || crashing.is_some_and(|c| std::ptr::eq(c, goroutine)) {
            continue;
        }
        order.push(goroutine);
    }
    order
}

/// Returns the frames of a goroutine the runtime's traceback prints, from
/// `printed_from` on. Earlier frames are the crash machinery.
pub fn printed_frames(goroutine: &Goroutine) -> &[Frame] {
    goroutine
        .walk
        .as_ref()
        .and_then(|walk| walk.frames.get(goroutine.printed_from..))
        .unwrap_or(&[])
}

/// Returns a function name as the runtime prints it. The symbolizer's
/// names are printed forms already, with type arguments shown as `[...]`
/// ([`symbolizer::unwind::frame::printed_function_name`]), so only
/// `runtime.gopanic` remains, which prints as `panic`.
pub fn printed_name(name: &str) -> &str {
    if name == "runtime.gopanic" {
        "panic"
    } else {
        name
    }
}

/// Reports whether a signal's `si_addr` is a fault address: SIGILL, SIGBUS,
/// SIGFPE and SIGSEGV. For a signal sent by a process (SIGABRT from
/// `tgkill`, SIGQUIT), the same bytes contain the sender's PID and UID.
pub fn has_fault_address(signo: u32) -> bool {
    matches!(signo, 4 | 7 | 8 | 11)
}

/// Returns the name and description the runtime's signal table gives a
/// Linux signal number, as `SIGNAME: description` lines print them.
pub fn signal_name(signo: u32) -> Option<(&'static str, &'static str)> {
    let entry = match signo {
        1 => ("SIGHUP", "terminal line hangup"),
        2 => ("SIGINT", "interrupt"),
        3 => ("SIGQUIT", "quit"),
        4 => ("SIGILL", "illegal instruction"),
        5 => ("SIGTRAP", "trace trap"),
        6 => ("SIGABRT", "abort"),
        7 => ("SIGBUS", "bus error"),
        8 => ("SIGFPE", "floating-point exception"),
        9 => ("SIGKILL", "kill"),
        10 => ("SIGUSR1", "user-defined signal 1"),
        11 => ("SIGSEGV", "segmentation violation"),
        12 => ("SIGUSR2", "user-defined signal 2"),
        13 => ("SIGPIPE", "write to broken pipe"),
        14 => ("SIGALRM", "alarm clock"),
        15 => ("SIGTERM", "termination"),
        16 => ("SIGSTKFLT", "stack fault"),
        17 => ("SIGCHLD", "child status has changed"),
        18 => ("SIGCONT", "continue"),
        19 => ("SIGSTOP", "stop, unblockable"),
        20 => ("SIGTSTP", "keyboard stop"),
        21 => ("SIGTTIN", "background read from tty"),
        22 => ("SIGTTOU", "background write to tty"),
        23 => ("SIGURG", "urgent condition on socket"),
        24 => ("SIGXCPU", "cpu limit exceeded"),
        25 => ("SIGXFSZ", "file size limit exceeded"),
        26 => ("SIGVTALRM", "virtual alarm clock"),
        27 => ("SIGPROF", "profiling alarm clock"),
        28 => ("SIGWINCH", "window size change"),
        29 => ("SIGIO", "i/o now possible"),
        30 => ("SIGPWR", "power failure restart"),
        31 => ("SIGSYS", "bad system call"),
        _ => return None,
    };
    Some(entry)
}

/// A frame of a stack as the outputs for a person print it, or the count
/// of a recursion's repeats.
#[derive(Debug, PartialEq, Eq)]
pub enum StackItem<'a, T> {
    Frame(&'a T),
    /// The `frames` frames printed just before repeat `times` more times.
    Repeated {
        frames: usize,
        times: usize,
    },
}

/// Maximum length, in frames, of a cycle looked for as one step of a recursion.
const MAX_CYCLE_FRAMES: usize = 8;
/// Times a cycle must occur in a row to be printed once with a count.
const MIN_REPEATS: usize = 4;

/// Returns `frames` with each recursion printed once: a block of up to
/// [`MAX_CYCLE_FRAMES`] frames that occurs [`MIN_REPEATS`] times or more
/// in a row becomes the block and a [`StackItem::Repeated`] count. A stack
/// overflow of 5,000 frames then prints as a few lines, where the runtime
/// elides the middle of it. `same` compares two frames.
pub fn collapse_recursion<'a, T>(
    frames: &'a [T],
    same: impl Fn(&T, &T) -> bool,
) -> Vec<StackItem<'a, T>> {
    let occurrences = |at: usize, cycle: usize| {
        let Some(block) = frames.get(at..at + cycle) else {
            return 0;
        };
        let repeats_block = |next: &[T]| next.iter().zip(block).all(|(a, b)| same(a, b));
        1 + frames[at + cycle..]
            .chunks_exact(cycle)
            .take_while(|next| repeats_block(next))
            .count()
    };
    let mut items = Vec::new();
    let mut at = 0;
    while let Some(frame) = frames.get(at) {
        let recursion = (1..=MAX_CYCLE_FRAMES)
            .map(|cycle| (cycle, occurrences(at, cycle)))
            .find(|&(_, count)| count >= MIN_REPEATS);
        match recursion {
            Some((cycle, count)) => {
                items.extend(frames[at..at + cycle].iter().map(StackItem::Frame));
                items.push(StackItem::Repeated {
                    frames: cycle,
                    times: count - 1,
                });
                at += cycle * count;
            }
            None => {
                items.push(StackItem::Frame(frame));
                at += 1;
            }
        }
    }
    items
}

/// Returns the line that replaces a [`StackItem::Repeated`] in text for a
/// person.
pub fn repeated_text(frames: usize, times: usize) -> String {
    match frames {
        1 => format!("... the frame above repeats {times} more times (a recursion)"),
        _ => format!(
            "... the {frames} frames above repeat {times} more times ({} frames, a recursion)",
            frames * times
        ),
    }
}

/// Formats a list of goroutine ids compactly: runs of consecutive ids as
/// `a-b`, the rest separated by commas.
pub fn compact_ids(ids: &[u64]) -> String {
    let mut sorted: Vec<u64> = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut index = 0;
    while let Some(&start) = sorted.get(index) {
        let mut end = start;
        while sorted
            .get(index + 1)
            .is_some_and(|&next| Some(next) == end.checked_add(1))
        {
            index += 1;
            end = sorted[index];
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        index += 1;
    }
    parts.join(", ")
}

/// Returns the frames of C code (cgo) that a signal interrupted on the
/// crashing thread, innermost first, with the thread's id. Returns `None`
/// when the signal did not interrupt C code.
///
/// A signal the runtime died of records the interrupted frame. A signal it
/// turned into a fatal error (Go 1.19 in cgo) is found by its pc among the
/// thread's C frames.
pub fn interrupted_c_frames<'p>(
    process: &'p Process,
    report: &Report<'_>,
) -> Option<(u32, &'p [Frame])> {
    let thread_of = |id: u32| process.threads().iter().find(|t| t.id == id);
    let (thread_id, frames) = match &report.fatal_signal {
        Some((thread_id, signal)) => {
            let frames = &thread_of(*thread_id)?.walk.frames;
            (*thread_id, frames.get(signal.interrupted..)?)
        }
        None => {
            let crash = process.crash();
            let (thread_id, pc) = (crash.thread?, crash.signal.as_ref()?.pc);
            let frames = &thread_of(thread_id)?.walk.frames;
            let start = frames.iter().position(|f| f.pc == pc && !f.is_go())?;
            (thread_id, &frames[start..])
        }
    };
    let c_frames = frames.iter().take_while(|frame| !frame.is_go()).count();
    (c_frames > 0).then(|| (thread_id, &frames[..c_frames]))
}

/// Describes why a stack walk ended before the stack's natural end.
pub fn describe_stop(stop: &symbolizer::unwind::StopReason) -> String {
    use symbolizer::unwind::StopReason;
    match stop {
        StopReason::TopFrame { function } => format!("reached {function}"),
        StopReason::UnknownPc { pc } => format!("no function contains pc {pc:#x}"),
        StopReason::NoFrameSize { function, pc } => {
            format!("no frame size for {function} at pc {pc:#x}")
        }
        StopReason::SpWrite { function } => {
            format!("{function} moves the stack pointer in ways its tables do not describe")
        }
        StopReason::Unreadable { addr, error } => {
            format!("memory at {addr:#x} is not in the core ({error})")
        }
        StopReason::NoProgress { pc, .. } => {
            format!("the stack pointer did not grow at pc {pc:#x}")
        }
        StopReason::ZeroPc => "a zero return address".to_owned(),
        StopReason::DepthLimit { limit } if *limit >= symbolizer::unwind::MAX_WALK_STEPS => {
            format!("{limit} frames, more than a stack of the default 1 GB maximum holds")
        }
        StopReason::DepthLimit { limit } => {
            format!("{limit} frames, this walk's share of the frames all walks may step through")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_name_renames_gopanic() {
        assert_eq!(printed_name("runtime.gopanic"), "panic");
        assert_eq!(printed_name("main.main"), "main.main");
    }

    #[test]
    fn recursion_is_printed_once() {
        use StackItem::{Frame, Repeated};

        let stack = [1, 2, 3, 3, 3, 3, 3, 4, 5, 6, 5, 6, 5, 6, 5, 6, 7];
        let items = collapse_recursion(&stack, |a, b| a == b);
        assert_eq!(
            items,
            [
                Frame(&1),
                Frame(&2),
                Frame(&3),
                Repeated {
                    frames: 1,
                    times: 4
                },
                Frame(&4),
                Frame(&5),
                Frame(&6),
                Repeated {
                    frames: 2,
                    times: 3
                },
                Frame(&7),
            ]
        );
    }

    #[test]
    fn short_repeats_are_kept() {
        let stack = [1, 1, 1, 2, 3, 2, 3, 2, 3];
        let items = collapse_recursion(&stack, |a, b| a == b);
        assert_eq!(items.len(), stack.len());
        assert!(items.iter().all(|item| matches!(item, StackItem::Frame(_))));
        assert!(collapse_recursion::<u8>(&[], |a, b| a == b).is_empty());
    }

    #[test]
    fn repeated_text_counts_frames() {
        assert_eq!(
            repeated_text(1, 2579),
            "... the frame above repeats 2579 more times (a recursion)"
        );
        assert_eq!(
            repeated_text(3, 10),
            "... the 3 frames above repeat 10 more times (30 frames, a recursion)"
        );
    }

    #[test]
    fn compact_ids_joins_runs() {
        assert_eq!(compact_ids(&[5, 3, 4, 9, 11, 10, 20]), "3-5, 9-11, 20");
        assert_eq!(compact_ids(&[7]), "7");
        assert_eq!(compact_ids(&[]), "");
    }

    #[test]
    fn signal_names_follow_the_runtime_table() {
        assert_eq!(signal_name(11), Some(("SIGSEGV", "segmentation violation")));
        assert_eq!(signal_name(3), Some(("SIGQUIT", "quit")));
        assert_eq!(signal_name(64), None);
    }
}
