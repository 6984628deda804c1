//! Reduces a parsed crash text to a [`CrashInput`].
//!
//! The runtime prints the goroutine that crashed first: after the panic or
//! fatal error line, after `runtime stack:` when the crash happened on a
//! system stack, and after a fatal signal's register lines. A deadlock and
//! a signal sent from outside have no crashing goroutine, so the blocked
//! goroutines and goroutine 1 stand in for it.

use crate::traceback::{
    classify_function, Frame, FunctionClass, Goroutine, GoroutineId, SignalForm, SystemStackOrigin,
    Traceback,
};

use super::kind::{
    classify_panic_value, is_deadlock_message, is_sent_signal, normalize_fatal_message,
    signal_label,
};
use super::{CrashInput, CrashKind, Flags, InputFrame, MAX_CONSIDERED_FRAMES};

/// The goroutine the runtime's `main` runs in.
const MAIN_GOROUTINE: GoroutineId = GoroutineId(1);
/// The functions a goroutine in a cgo call is stopped in.
const CGO_CALL_FUNCTIONS: [&str; 2] = ["runtime.cgocall", "runtime.asmcgocall"];

impl CrashInput {
    /// Reduces parsed crash text to what its signature is computed from.
    pub fn from_traceback(traceback: &Traceback) -> CrashInput {
        let first = first_goroutine(traceback);
        let first_frames = first.map(goroutine_frames).unwrap_or_default();
        let signal = traceback.signal.as_ref();
        let signal_name = signal.map(|s| signal_label(s.name.as_deref(), s.number));
        let in_cgo_call = is_in_cgo_call(&first_frames);
        let during_cgo = signal.is_some_and(|s| s.during_cgo) || (signal.is_some() && in_cgo_call);

        let mut input = CrashInput {
            kind: CrashKind::Unknown,
            frames: first_frames,
            blocked: Vec::new(),
            flags: Flags {
                during_cgo,
                system_stack: traceback.system_stacks.iter().any(|stack| {
                    stack.origin == SystemStackOrigin::RuntimeStackLine && stack.thread.is_none()
                }),
                frames_elided: first.is_some_and(|g| g.elided.is_some()),
                no_frames: false,
            },
        };

        if let Some(fatal) = &traceback.fatal {
            if is_deadlock_message(&fatal.message) {
                input.kind = CrashKind::Deadlock {
                    message: normalize_fatal_message(&fatal.message),
                };
                input.blocked = traceback
                    .main_goroutines()
                    .map(|g| traceback.goroutine(g.id).unwrap_or(g))
                    .map(goroutine_frames)
                    .filter(|frames| !frames.is_empty())
                    .collect();
                input.frames.clear();
                input.flags.frames_elided = false;
            } else if during_cgo {
                input.kind = CrashKind::CgoFault {
                    signal: signal_name.unwrap_or_else(|| "signal".to_string()),
                };
            } else {
                input.kind = CrashKind::Fatal {
                    message: normalize_fatal_message(&fatal.message),
                    signal: signal_name,
                };
            }
        } else if let Some(panic) = last_panic(traceback) {
            input.kind = CrashKind::Panic {
                value: classify_panic_value(&panic.value),
            };
        } else if let Some(signal) = signal.filter(|s| s.form == SignalForm::Handler) {
            let name = signal_name.unwrap_or_else(|| "signal".to_string());
            // SIGQUIT is never a fault, even when it lands in C code.
            let quit = signal.name.as_deref() == Some("SIGQUIT");
            if during_cgo && !quit {
                input.kind = CrashKind::CgoFault { signal: name };
            } else if is_sent_signal(signal.name.as_deref(), signal.code_signed()) {
                input.kind = CrashKind::ExternalSignal { signal: name };
                let main = traceback.goroutine(MAIN_GOROUTINE);
                input.frames = main.map(goroutine_frames).unwrap_or_default();
                input.flags.frames_elided = main.is_some_and(|g| g.elided.is_some());
            } else {
                input.kind = CrashKind::Signal { signal: name };
            }
        }

        input.flags.no_frames = input.frames.is_empty() && input.blocked.is_empty();
        input
    }
}

/// Tells whether a goroutine was in a call into C: `runtime.cgocall` among
/// the runtime frames innermost on its stack. A stack rebuilt from a core
/// may start with the C frames themselves.
pub(super) fn is_in_cgo_call(frames: &[InputFrame]) -> bool {
    frames
        .iter()
        .take_while(|frame| {
            matches!(
                classify_function(&frame.function),
                FunctionClass::Runtime | FunctionClass::NonGo
            )
        })
        .any(|frame| CGO_CALL_FUNCTIONS.contains(&frame.function.as_str()))
}

/// The first goroutine of the main dump, with its frames taken from a
/// thread's own section when the main dump could not print them.
fn first_goroutine(traceback: &Traceback) -> Option<&Goroutine> {
    let first = traceback.main_goroutines().next()?;
    traceback.goroutine(first.id).or(Some(first))
}

/// Returns the panic that ended the program: the newest one nothing
/// recovered.
fn last_panic(traceback: &Traceback) -> Option<&crate::traceback::Panic> {
    traceback
        .panics
        .iter()
        .rev()
        .find(|panic| !panic.recovered)
        .or_else(|| traceback.panics.last())
}

/// Returns a goroutine's frames up to where the runtime elided some, at most
/// [`MAX_CONSIDERED_FRAMES`].
fn goroutine_frames(goroutine: &Goroutine) -> Vec<InputFrame> {
    let printed = goroutine
        .elided
        .map_or(goroutine.frames.len(), |elision| elision.after_frame);
    goroutine
        .frames
        .iter()
        .take(printed.min(MAX_CONSIDERED_FRAMES))
        .map(input_frame)
        .collect()
}

fn input_frame(frame: &Frame) -> InputFrame {
    InputFrame {
        function: frame.function.clone(),
        file: frame.file.clone(),
    }
}
