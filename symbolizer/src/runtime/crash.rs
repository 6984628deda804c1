//! The facts of a crash that the core alone holds: which goroutine
//! crashed, the signal that started it, the panic chain and the fatal
//! error message.
//!
//! A `GOTRACEBACK=crash` process ends in `runtime.crash`, which resets the
//! SIGABRT handler and raises SIGABRT, so the core's own signal is always
//! SIGABRT. The signal that really started the crash is recorded by the
//! runtime's handler in the goroutine (`g.sig`, `g.sigcode0` for si_code,
//! `g.sigcode1` for the fault address, `g.sigpc`) when it turned into a
//! panic. A signal the runtime did not turn into a panic (an external
//! SIGQUIT, a fault in C code) is read from the saved ucontext instead:
//! the interrupted registers start the frame that follows the signal frame.
//!
//! `fatal error:` messages have no global: the text is the string argument
//! of `runtime.throw` or `runtime.fatal`. Both pass it to a closure run on
//! the system stack (`throw.func1`, `fatal.func1`) that prints it, and the
//! closure's context (its code pointer, then the captured variables) lives
//! in the throwing function's frame. The message is read there: the first
//! word in that frame equal to the closure's entry, followed by the string
//! header (see [`message_offsets`] for where it sits in each release).
//! This holds for Go 1.19 to 1.27 (checked on the corpus cores); the
//! register arguments of the internal ABI are not saved anywhere readable.
//!
//! A signal that became a panic is recorded in the g it interrupted. That
//! is the crashing goroutine, except for a signal in C code called through
//! cgo up to Go 1.20: the thread was on its `g0` stack, so the runtime
//! recorded the signal in `m.g0` and printed it from there.

use serde::Serialize;

use super::goroutine::{read_g, read_m, GRecord};
use super::layout::RuntimeLayout;
use super::memory::ReadMemory;
use super::panic::{read_panic_chain, read_string_bytes, PanicRecord, TypeNames};
use super::version::GoVersion;
use super::waitreason::GStatus;
use crate::core::Core;
use crate::goroutines::{Goroutine, ThreadState};
use crate::unwind::{Frame, FrameSource, FuncTable, Regs, StackKind, Walk};

/// The functions whose callers the runtime's crash traceback starts at.
const FATAL_FUNCTIONS: [&str; 2] = ["runtime.fatalpanic", "runtime.fatalthrow"];
/// The functions whose string argument is a `fatal error:` message, with
/// the closure that prints it.
pub const THROW_FUNCTIONS: [(&str, &str); 2] = [
    ("runtime.throw", "runtime.throw.func1"),
    ("runtime.fatal", "runtime.fatal.func1"),
];
/// The longest `fatal error:` message read.
const MAX_FATAL_MESSAGE: u64 = 64 << 10;

/// A signal the runtime recorded in a goroutine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GoSignal {
    pub signo: u32,
    /// `si_code`.
    pub code: u64,
    /// The fault address (`si_addr`).
    pub addr: u64,
    /// The faulting pc.
    pub pc: u64,
}

/// What the core says about the crash.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CrashFacts {
    /// The thread the kernel reported the dump's signal on.
    pub thread: Option<u32>,
    /// The dump's signal number (SIGABRT, 6, for `GOTRACEBACK=crash`).
    pub core_signal: Option<i32>,
    /// The crashing goroutine's id; `None` when the crash did not happen on
    /// a goroutine (see `no_goroutine_reason`).
    pub goroutine: Option<u64>,
    pub no_goroutine_reason: Option<String>,
    /// The signal that became the panic or the fatal error: from the
    /// crashing goroutine, else from its thread's `g0` or `gsignal`.
    pub signal: Option<GoSignal>,
    /// The registers a signal interrupted on the crashing thread, from the
    /// innermost signal frame (what the runtime prints after a fatal signal).
    pub signal_registers: Option<Regs>,
    /// The panic chain, oldest first.
    pub panics: Vec<PanicRecord>,
    /// The `fatal error:` message, when a throw was on the crashing stack.
    pub fatal_error: Option<String>,
}

/// Returns the index of the first frame the runtime's traceback prints for
/// a goroutine walked from its thread's registers.
///
/// The traceback starts at the caller of `runtime.fatalpanic` or
/// `fatalthrow` for the crashing goroutine, else at the frame a signal
/// interrupted, else at the first frame. When that frame is on the
/// system stack (a throw in the scheduler or in `newstack`), the runtime
/// prints those frames under `runtime stack:` and the goroutine from its
/// saved `sched`, which is where the walk switched stacks.
pub fn printed_from(walk: &Walk) -> usize {
    let start = fatal_frame(walk)
        .map(|index| index + 1)
        .or_else(|| interrupted_frame(walk))
        .unwrap_or(0);
    let Some(frame) = walk.frames.get(start) else {
        return start;
    };
    if frame.stack == StackKind::Goroutine {
        return start;
    }
    walk.frames
        .iter()
        .skip(start)
        .position(|f| f.found_by == FrameSource::StackSwitch)
        .map_or(start, |offset| start + offset)
}

/// The index of the frame a signal interrupted, outside the signal handler.
///
/// A thread can hold several signal frames: the `SIGQUIT` that made it
/// print its stack interrupted its code, and the `SIGABRT` its handler
/// raised to dump the core interrupted the handler itself on the signal
/// stack. The runtime printed the thread from the first of those, which
/// is the innermost signal frame that is not on the signal stack.
pub fn interrupted_frame(walk: &Walk) -> Option<usize> {
    let contexts = || {
        walk.frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.found_by == FrameSource::SignalContext)
    };
    contexts()
        .find(|(_, f)| f.stack != StackKind::Signal)
        .or_else(|| contexts().next())
        .map(|(index, _)| index)
}

/// The index of the `runtime.fatalpanic` or `fatalthrow` frame of `walk`.
fn fatal_frame(walk: &Walk) -> Option<usize> {
    walk.frames.iter().position(|f| {
        f.function()
            .is_some_and(|name| FATAL_FUNCTIONS.contains(&name))
    })
}

/// The frames printed under `runtime stack:` (see
/// [`crate::goroutines::Process::runtime_stack`]): from the caller of the
/// fatal function while the walk stays on the system stack.
pub fn runtime_stack_frames(walk: &Walk) -> Option<&[Frame]> {
    let start = fatal_frame(walk)? + 1;
    let frames = walk.frames.get(start..)?;
    if frames.first()?.stack == StackKind::Goroutine {
        return None;
    }
    // The runtime's traceback cannot follow C code, so it ends the section
    // at the first frame no pclntab covers.
    let end = frames
        .iter()
        .position(|f| f.stack == StackKind::Goroutine || f.entry.is_none())
        .unwrap_or(frames.len());
    frames.get(..end)
}

/// Gathers the crash facts and notes them on `goroutines`.
#[allow(clippy::too_many_arguments)]
pub fn crash_facts(
    memory: &dyn ReadMemory,
    funcs: &dyn FuncTable,
    layout: &RuntimeLayout,
    types: Option<TypeNames>,
    core: &Core,
    crashing_thread: Option<u32>,
    threads: &[ThreadState],
    goroutines: &mut [Goroutine],
    version: Option<GoVersion>,
) -> CrashFacts {
    let mut facts = CrashFacts {
        thread: crashing_thread,
        core_signal: core.siginfo().map(|s| s.signo),
        ..CrashFacts::default()
    };
    let Some(thread) = crashing_thread.and_then(|id| threads.iter().find(|t| t.id == id)) else {
        facts.no_goroutine_reason = Some("the core names no signalled thread".to_owned());
        return facts;
    };
    facts.signal_registers = thread
        .walk
        .frames
        .iter()
        .find(|f| f.found_by == FrameSource::SignalContext)
        .map(|f| Regs {
            pc: f.pc,
            sp: f.sp,
            fp: 0,
            lr: None,
        });
    facts.fatal_error = fatal_message(memory, funcs, &thread.walk, version);

    let goroutine = thread
        .goroutine
        .and_then(|address| goroutines.iter().find(|g| g.address == address));
    match goroutine {
        Some(goroutine) => {
            facts.goroutine = goroutine.goid;
            if let Some(record) = &goroutine.record {
                facts.signal = recorded_signal(record);
                facts.panics = read_panic_chain(memory, layout, types, record.panic);
            }
        }
        None if let Some(orphan) =
            panicking_without_thread(memory, layout, threads, goroutines) =>
        {
            facts.goroutine = orphan.goid;
            if let Some(record) = &orphan.record {
                facts.signal = recorded_signal(record);
                facts.panics = read_panic_chain(memory, layout, types, record.panic);
            }
        }
        None => {
            facts.no_goroutine_reason = Some(match thread.m {
                Some(_) => "the crashing thread was on the system stack with no goroutine".to_owned(),
                // In a damaged core the structures naming the thread's M
                // may be what is missing.
                None if core.is_partial() => "the crashing thread's M could not be found: the core is truncated or damaged, and the runtime structures that name it may be in the missing part".to_owned(),
                None => "the crashing thread runs no Go M (C code, or an unrecognised thread)".to_owned(),
            });
        }
    }
    if facts.signal.is_none() {
        facts.signal = thread
            .m
            .as_ref()
            .and_then(|m| system_g_signal(memory, layout, m.address));
    }
    if facts.goroutine.is_none() && thread.m.is_some() && facts.fatal_error.is_some() {
        if let Some(reason) = &mut facts.no_goroutine_reason {
            reason.push_str(" (a scheduler fatal error, such as a deadlock)");
        }
    }
    facts
}

/// Returns the running goroutine with a panic under way whose M names a
/// thread the core has no register note of. An intact core has a note for
/// every thread. When the crashing thread's note is lost, the core names
/// another thread as signalled, and this goroutine is the one that panicked.
fn panicking_without_thread<'g>(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    threads: &[ThreadState],
    goroutines: &'g [Goroutine],
) -> Option<&'g Goroutine> {
    let mut candidates = goroutines.iter().filter(|goroutine| {
        let Some(record) = &goroutine.record else {
            return false;
        };
        if record.panic == 0 || record.m == 0 || !matches!(record.status, GStatus::Running) {
            return false;
        }
        read_m(memory, layout, record.m)
            .is_ok_and(|m| m.procid != 0 && !threads.iter().any(|t| u64::from(t.id) == m.procid))
    });
    let found = candidates.next()?;
    // Two such goroutines leave the crashing one unknown.
    candidates.next().is_none().then_some(found)
}

/// Returns the signal recorded in `record`, if any.
fn recorded_signal(record: &GRecord) -> Option<GoSignal> {
    (record.sig != 0).then_some(GoSignal {
        signo: record.sig,
        code: record.sigcode0,
        addr: record.sigcode1,
        pc: record.sigpc,
    })
}

/// Reads the signal recorded in the M's `g0`, or else in its `gsignal`:
/// the g a signal interrupted when it arrived on the system stack (C code
/// called through cgo, the scheduler) or inside another signal handler.
fn system_g_signal(memory: &dyn ReadMemory, layout: &RuntimeLayout, m: u64) -> Option<GoSignal> {
    let m = read_m(memory, layout, m).ok()?;
    [m.g0, m.gsignal]
        .into_iter()
        .filter(|&g| g != 0)
        .filter_map(|g| read_g(memory, layout, g).ok())
        .find_map(|record| recorded_signal(&record))
}

/// Reads the `fatal error:` message from the innermost `runtime.throw` or
/// `runtime.fatal` frame of `walk` (see the module documentation).
pub fn fatal_message(
    memory: &dyn ReadMemory,
    funcs: &dyn FuncTable,
    walk: &Walk,
    version: Option<GoVersion>,
) -> Option<String> {
    for frame in &walk.frames {
        let Some(name) = frame.function() else {
            continue;
        };
        let Some(&(_, closure)) = THROW_FUNCTIONS
            .iter()
            .find(|(function, _)| *function == name)
        else {
            continue;
        };
        let closure_entry = funcs.func_by_name(closure)?.entry;
        let top = frame.fp?;
        let mut slot = frame.sp;
        while slot.checked_add(8).is_some_and(|end| end <= top) {
            if memory.read_u64(slot).ok() == Some(closure_entry) {
                for &offset in message_offsets(name, version) {
                    if let Some(message) = read_message(memory, slot, offset, top) {
                        return Some(message);
                    }
                }
            }
            slot = slot.checked_add(8)?;
        }
    }
    None
}

/// Returns where the string header sits in the printing closure's context
/// of `function`, in bytes from the code pointer, most likely first.
///
/// The compiler lays out captured variables in the order the closure body
/// first uses them. `throw.func1` captures only `s`. From Go 1.26,
/// `fatal.func1` first passes the goroutine's `_panic` to
/// `printPreFatalDeferPanic` and then prints `s`, so a pointer comes before
/// the string (runtime/panic.go of go1.26.6 and go1.27.3). For an unknown
/// release both places are tried; a pointer misread as a length is far
/// above [`MAX_FATAL_MESSAGE`], so the wrong place yields nothing.
fn message_offsets(function: &str, version: Option<GoVersion>) -> &'static [u64] {
    if function != "runtime.fatal" {
        return &[8];
    }
    match version {
        Some(v) if v >= GoVersion::new(1, 26, 0) => &[16],
        Some(_) => &[8],
        None => &[8, 16],
    }
}

/// Reads the string header at `offset` from the closure context at
/// `context`, which must end below `top`, and the message it points to.
fn read_message(memory: &dyn ReadMemory, context: u64, offset: u64, top: u64) -> Option<String> {
    let header = context.checked_add(offset)?;
    if header.checked_add(16)? > top {
        return None;
    }
    let data = memory.read_u64(header).ok()?;
    let len = memory.read_u64(header.checked_add(8)?).ok()?;
    if len == 0 || len > MAX_FATAL_MESSAGE {
        return None;
    }
    read_string_bytes(memory, data, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unwind::{SourceFrame, SourceFrames, StopReason};

    /// A frame of `function` found by `found_by` on `stack`.
    fn frame(function: &str, found_by: FrameSource, stack: StackKind) -> Frame {
        Frame {
            pc: 0x1000,
            symbol_pc: 0x1000,
            trapped: false,
            sp: 0x2000,
            fp: Some(0x2010),
            entry: (!function.is_empty()).then_some(0x1000),
            source: if function.is_empty() {
                SourceFrames::default()
            } else {
                SourceFrames::from([SourceFrame {
                    function: function.to_owned(),
                    file: None,
                    line: None,
                    inlined: false,
                }])
            },
            found_by,
            stack,
        }
    }

    fn walk(frames: Vec<Frame>) -> Walk {
        Walk {
            frames,
            stop: StopReason::TopFrame {
                function: "runtime.goexit".into(),
            },
            elided: None,
        }
    }

    #[test]
    fn interrupted_frame_skips_nested_handler() {
        use FrameSource::*;
        use StackKind::*;
        let walk = walk(vec![
            frame("runtime.raise", ThreadRegisters, Signal),
            frame("runtime.sigtramp", Pcsp, Signal),
            frame("runtime.raise", SignalContext, Signal),
            frame("runtime.sigtramp", Pcsp, Signal),
            frame("runtime.futex", SignalContext, System),
            frame("runtime.mstart", Pcsp, System),
        ]);
        assert_eq!(interrupted_frame(&walk), Some(4));
        assert_eq!(printed_from(&walk), 4);
    }

    #[test]
    fn throw_on_system_stack_prints_runtime_stack() {
        use FrameSource::*;
        use StackKind::*;
        let walk = walk(vec![
            frame("runtime.raise", ThreadRegisters, System),
            frame("runtime.fatalthrow", Pcsp, System),
            frame("runtime.throw", Pcsp, System),
            frame("runtime.newstack", Pcsp, System),
            frame("runtime.morestack", Pcsp, System),
            frame("main.depth", StackSwitch, Goroutine),
            frame("runtime.goexit", Pcsp, Goroutine),
        ]);
        assert_eq!(printed_from(&walk), 5);
        let names: Vec<&str> = runtime_stack_frames(&walk)
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.function())
            .collect();
        assert_eq!(
            names,
            ["runtime.throw", "runtime.newstack", "runtime.morestack"]
        );
    }

    #[test]
    fn throw_on_goroutine_stack_has_no_runtime_stack() {
        use FrameSource::*;
        use StackKind::*;
        let walk = walk(vec![
            frame("runtime.fatalthrow.func1", ThreadRegisters, System),
            frame("runtime.systemstack", Pcsp, System),
            frame("runtime.systemstack_switch", StackSwitch, Goroutine),
            frame("runtime.fatalthrow", Pcsp, Goroutine),
            frame("runtime.throw", Pcsp, Goroutine),
            frame("main.main", Pcsp, Goroutine),
        ]);
        assert_eq!(printed_from(&walk), 4);
        assert!(runtime_stack_frames(&walk).is_none());
    }

    #[test]
    fn runtime_stack_ends_before_c_code() {
        use FrameSource::*;
        use StackKind::*;
        let walk = walk(vec![
            frame("runtime.fatalthrow", Pcsp, System),
            frame("runtime.throw", Pcsp, System),
            frame("runtime.sigpanic", Pcsp, System),
            frame("", SignalContext, System),
        ]);
        let frames = runtime_stack_frames(&walk).expect("the throw is on the system stack");
        assert_eq!(frames.len(), 2);
    }
}
