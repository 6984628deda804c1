//! Reduces a core's goroutines to a [`CrashInput`], so that a crash read
//! from its core gets the signature its crash text would give.
//!
//! The crash facts come from [`Process::crash`]: the crashing goroutine, its
//! panic chain, the `fatal error:` message and the signal the runtime turned
//! into a panic. A signal the runtime did not turn into a panic (SIGQUIT, a
//! fault in C code) is recorded nowhere in the runtime's structures. Its
//! number and `si_code` are therefore read from the `siginfo` the kernel
//! saved in a signal frame on one of the threads' stacks.

use symbolizer::core::{Arch, Core};
use symbolizer::goroutines::{Goroutine, Process, ThreadState};
use symbolizer::runtime::memory::ReadMemory;
use symbolizer::unwind::sigtramp::ucontext_address;
use symbolizer::unwind::FrameSource;

use super::kind::{
    classify_panic_value, is_deadlock_message, is_sent_signal, normalize_fatal_message,
    signal_label, signal_name,
};
use super::text::is_in_cgo_call;
use super::{CrashInput, CrashKind, Flags, InputFrame, MAX_CONSIDERED_FRAMES};

/// The goroutine the runtime's `main` runs in.
const MAIN_GOROUTINE: u64 = 1;
/// The handler the runtime installs for every signal.
const SIGTRAMP_FUNCTIONS: [&str; 2] = ["runtime.sigtramp", "runtime.cgoSigtramp"];
/// Bytes of the kernel's `struct ucontext` on amd64, which the `siginfo`
/// follows in the `rt_sigframe` (Linux `arch/x86/include/asm/sigframe.h`):
/// `uc_flags`, `uc_link`, the 24-byte `stack_t`, the 256-byte
/// `struct sigcontext` and the 8-byte kernel `sigset_t`.
const AMD64_UCONTEXT_SIZE: u64 = 304;
/// Bytes of `struct siginfo`, which comes before the ucontext on arm64.
const ARM64_SIGINFO_SIZE: u64 = 128;
/// Offsets in `struct siginfo` of `si_signo` and `si_code`.
const SI_SIGNO: u64 = 0;
const SI_CODE: u64 = 8;
const SIGQUIT: u32 = 3;
const SIGABRT: u32 = 6;
/// The runtime function that raises the final SIGABRT of a crash.
const DIE_FROM_SIGNAL: &str = "runtime.dieFromSignal";
/// Frames between a handler frame and `runtime.dieFromSignal`: the
/// interrupted `runtime.raise`, then its caller.
const DIE_FROM_SIGNAL_DEPTH: usize = 3;
/// Handler frames looked at on one thread; nesting deeper than a few
/// signals does not happen in a crash.
const MAX_HANDLER_FRAMES: usize = 8;

/// The signal a handler frame received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ReceivedSignal {
    number: u32,
    code: i32,
}

impl CrashInput {
    /// Reduces the goroutines rebuilt from `core` to what the crash's
    /// signature is computed from.
    pub fn from_process(process: &Process, core: &Core) -> CrashInput {
        let facts = process.crash();
        let goroutine_by_id = |id: u64| process.goroutines().iter().find(|g| g.goid == Some(id));
        let crashing = facts.goroutine.and_then(goroutine_by_id);
        let frames = crashing.map(goroutine_frames).unwrap_or_default();
        let go_signal = facts
            .signal
            .map(|signal| signal_label(signal_name(signal.signo), Some(u64::from(signal.signo))));

        let mut input = CrashInput {
            kind: CrashKind::Unknown,
            frames,
            blocked: Vec::new(),
            flags: Flags {
                during_cgo: false,
                system_stack: process.runtime_stack().is_some(),
                frames_elided: false,
                no_frames: false,
            },
        };

        if let Some(message) = &facts.fatal_error {
            if is_deadlock_message(message) {
                input.kind = CrashKind::Deadlock {
                    message: normalize_fatal_message(message),
                };
                input.blocked = process
                    .goroutines()
                    .iter()
                    .map(goroutine_frames)
                    .filter(|frames| !frames.is_empty())
                    .collect();
                input.frames.clear();
            } else if go_signal.is_some() && is_in_cgo_call(&input.frames) {
                input.flags.during_cgo = true;
                input.kind = CrashKind::CgoFault {
                    signal: go_signal.unwrap_or_default(),
                };
            } else {
                input.kind = CrashKind::Fatal {
                    message: normalize_fatal_message(message),
                    signal: go_signal,
                };
            }
        } else if let Some(panic) = facts
            .panics
            .iter()
            .rev()
            .find(|panic| !panic.goexit && !panic.recovered)
            .or_else(|| facts.panics.iter().rev().find(|panic| !panic.goexit))
        {
            input.kind = CrashKind::Panic {
                value: classify_panic_value(&panic.value),
            };
        } else if let Some((thread, signal)) = first_signal(process, core) {
            let name = signal_name(signal.number);
            let label = signal_label(name, Some(u64::from(signal.number)));
            let quit = name == Some("SIGQUIT");
            // The goroutine the signal interrupted, which the runtime prints
            // first.
            let interrupted = thread
                .goroutine
                .and_then(|address| process.goroutines().iter().find(|g| g.address == address));
            let interrupted_frames = interrupted.map(goroutine_frames).unwrap_or_default();
            if is_in_cgo_call(&interrupted_frames) && !quit {
                input.flags.during_cgo = true;
                input.kind = CrashKind::CgoFault { signal: label };
                input.frames = interrupted_frames;
            } else if is_sent_signal(name, Some(i64::from(signal.code))) {
                input.kind = CrashKind::ExternalSignal { signal: label };
                input.frames = goroutine_by_id(MAIN_GOROUTINE)
                    .map(goroutine_frames)
                    .unwrap_or_default();
            } else {
                input.kind = CrashKind::Signal { signal: label };
                input.frames = interrupted_frames;
            }
        }

        input.flags.no_frames = input.frames.is_empty() && input.blocked.is_empty();
        input
    }
}

/// Returns the frames the runtime prints for a goroutine, inlined calls
/// included, at most [`MAX_CONSIDERED_FRAMES`].
fn goroutine_frames(goroutine: &Goroutine) -> Vec<InputFrame> {
    let Some(walk) = &goroutine.walk else {
        return Vec::new();
    };
    walk.frames
        .iter()
        .skip(goroutine.printed_from)
        .filter(|frame| frame.is_go())
        .flat_map(|frame| frame.source.iter())
        .take(MAX_CONSIDERED_FRAMES)
        .map(|source| InputFrame {
            function: source.function.clone(),
            file: source.file.as_deref().map(str::to_owned),
        })
        .collect()
}

/// Finds the signal that started the crash and the thread that received
/// it, from the signal handler frames on every thread's stack.
///
/// The kernel's crashing thread is not always the one that received the
/// first signal. After a fatal signal the runtime relays SIGQUIT from
/// thread to thread so each prints its stack, and the last one raises the
/// final SIGABRT. That SIGABRT (raised by `runtime.dieFromSignal` with the
/// Go handler still installed, so it leaves a handler frame too) is
/// skipped. Of the rest, a signal other than SIGQUIT is preferred, because
/// only a fault or an `abort()` can start a crash while relayed SIGQUITs
/// are on other threads. Without one, the first SIGQUIT is the signal that
/// was sent.
fn first_signal<'p>(
    process: &'p Process,
    core: &Core,
) -> Option<(&'p ThreadState, ReceivedSignal)> {
    let mut quit = None;
    for thread in process.threads() {
        for signal in handler_signals(thread, core) {
            if signal.number != SIGQUIT {
                return Some((thread, signal));
            }
            quit.get_or_insert((thread, signal));
        }
    }
    quit
}

/// Reads the signals of the handler frames on a thread's stack, innermost
/// first, leaving out the runtime's final SIGABRT.
fn handler_signals(thread: &ThreadState, core: &Core) -> Vec<ReceivedSignal> {
    let frames = &thread.walk.frames;
    let mut signals = Vec::new();
    for (index, frame) in frames.iter().enumerate() {
        if frame.found_by != FrameSource::SignalContext {
            continue;
        }
        if signals.len() >= MAX_HANDLER_FRAMES {
            break;
        }
        let Some(fp) = index
            .checked_sub(1)
            .and_then(|handler| frames.get(handler))
            .filter(|handler| {
                handler
                    .function()
                    .is_some_and(|name| SIGTRAMP_FUNCTIONS.contains(&name))
            })
            .and_then(|handler| handler.fp)
        else {
            continue;
        };
        let Some(signal) = read_siginfo(core.memory(), core.arch(), fp) else {
            continue;
        };
        let runtime_abort = signal.number == SIGABRT
            && frames
                .iter()
                .skip(index)
                .take(DIE_FROM_SIGNAL_DEPTH)
                .any(|caller| caller.function() == Some(DIE_FROM_SIGNAL));
        if !runtime_abort {
            signals.push(signal);
        }
    }
    signals
}

/// Reads `si_signo` and `si_code` of the signal whose handler frame
/// (`runtime.sigtramp`) has top `sigtramp_fp`.
fn read_siginfo(memory: &dyn ReadMemory, arch: Arch, sigtramp_fp: u64) -> Option<ReceivedSignal> {
    let ucontext = ucontext_address(arch, sigtramp_fp);
    let siginfo = match arch {
        Arch::Amd64 => ucontext.checked_add(AMD64_UCONTEXT_SIZE)?,
        Arch::Arm64 => ucontext.checked_sub(ARM64_SIGINFO_SIZE)?,
    };
    let number = memory.read_u32(siginfo.checked_add(SI_SIGNO)?).ok()?;
    let code = memory.read_u32(siginfo.checked_add(SI_CODE)?).ok()?;
    // si_code is a C int: the bits are reinterpreted, not converted.
    let code = code as i32;
    tracing::debug!(target: "gocrash::signature", number, code, "read a signal from a handler frame");
    Some(ReceivedSignal { number, code })
}

#[cfg(test)]
mod tests {
    use super::*;
    use symbolizer::runtime::memory::MemoryError;

    /// Memory that holds one `siginfo` and nothing else.
    struct SiginfoMemory {
        address: u64,
        bytes: Vec<u8>,
    }

    impl SiginfoMemory {
        fn new(address: u64, number: u32, code: i32) -> SiginfoMemory {
            let mut bytes = vec![0; 16];
            bytes[0..4].copy_from_slice(&number.to_le_bytes());
            bytes[8..12].copy_from_slice(&code.to_le_bytes());
            SiginfoMemory { address, bytes }
        }
    }

    impl ReadMemory for SiginfoMemory {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
            let start = addr
                .checked_sub(self.address)
                .and_then(|offset| usize::try_from(offset).ok());
            let source = start.and_then(|start| self.bytes.get(start..start + buf.len()));
            match source {
                Some(source) => {
                    buf.copy_from_slice(source);
                    Ok(())
                }
                None => Err(MemoryError::Unmapped { addr }),
            }
        }
    }

    #[test]
    fn siginfo_follows_amd64_ucontext() {
        let fp = 0xc000_1000;
        let siginfo = ucontext_address(Arch::Amd64, fp) + AMD64_UCONTEXT_SIZE;
        let memory = SiginfoMemory::new(siginfo, 3, -6);
        assert_eq!(
            read_siginfo(&memory, Arch::Amd64, fp),
            Some(ReceivedSignal {
                number: 3,
                code: -6
            })
        );
    }

    #[test]
    fn siginfo_precedes_arm64_ucontext() {
        let fp = 0x4000_2000;
        let siginfo = ucontext_address(Arch::Arm64, fp) - ARM64_SIGINFO_SIZE;
        let memory = SiginfoMemory::new(siginfo, 11, 1);
        assert_eq!(
            read_siginfo(&memory, Arch::Arm64, fp),
            Some(ReceivedSignal {
                number: 11,
                code: 1
            })
        );
    }

    #[test]
    fn unreadable_siginfo_is_none() {
        let memory = SiginfoMemory::new(0x10, 3, 0);
        assert_eq!(read_siginfo(&memory, Arch::Amd64, 0xc000_1000), None);
    }
}
