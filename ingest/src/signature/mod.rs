//! Crash signatures: a short id and a title that are the same for every
//! occurrence of one bug, so that crashes can be counted and grouped.
//!
//! A crash reaches gocrash as text (the runtime's report in the journal) or
//! as a core. Both are first reduced to one small model, [`CrashInput`]:
//! the crash kind, the frames of the goroutine that decides the signature
//! (function names and files, innermost first) and a few flags.
//! [`CrashInput::from_traceback`] builds it from parsed text and
//! [`CrashInput::from_process`] from a core's goroutines; [`compute`] turns
//! it into a [`Signature`]. So a crash gets the same signature whichever
//! way it arrived.
//!
//! The id is built from what stays when a program is rebuilt with another
//! Go release or other flags, or edited elsewhere. That is the kind of
//! crash without its numbers, and the innermost frames of the program's own
//! code, with closure and generic suffixes normalised and files named
//! without directories. Line numbers, addresses, goroutine ids, argument values and
//! panic messages are left out. docs/signature.md gives the rules and the
//! reasons.

mod core;
mod frames;
mod kind;
mod text;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use frames::{
    cgo_called_function, choose_frames, is_wrapper, normalize_function, package_relative_file,
    FrameChoice,
};
pub use kind::{
    classify_panic_value, is_deadlock_message, is_sent_signal, normalize_fatal_message,
    signal_label, signal_name, CrashKind, PanicValue,
};

/// Changes whenever a rule changes, so that ids of different rules never
/// compare equal. It is hashed in front of everything else.
pub const SIGNATURE_VERSION: &str = "gocrash-signature-1";
/// Frames of one goroutine looked at, innermost first. Go 1.21 and later
/// print only the innermost 50 frames of a deep stack before eliding the
/// middle, and older releases the first 100. Frames past 50 may therefore
/// be missing from a text, so they do not count when a core has them.
pub const MAX_CONSIDERED_FRAMES: usize = 50;
/// Program frames in a signature: enough to tell call sites apart, few
/// enough that a different route into the same crash keeps its signature.
pub const MAX_SIGNATURE_FRAMES: usize = 5;
/// Distinct blocked frames kept for a deadlock.
pub const MAX_BLOCKED_FRAMES: usize = 32;
/// Hex digits of the SHA-256 kept as the id: 64 bits.
const ID_HEX_DIGITS: usize = 16;

/// The input a signature is computed from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashInput {
    pub kind: CrashKind,
    /// The frames that decide the signature, innermost first, cut to
    /// [`MAX_CONSIDERED_FRAMES`]: those of the crashing goroutine, or of the
    /// main goroutine after a signal another process sent.
    pub frames: Vec<InputFrame>,
    /// For a deadlock, the frames of every goroutine, each cut to
    /// [`MAX_CONSIDERED_FRAMES`]; empty otherwise.
    pub blocked: Vec<Vec<InputFrame>>,
    pub flags: Flags,
}

/// One logical frame (inlined calls are frames of their own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFrame {
    /// The function as the runtime prints it or the symbol table names it.
    pub function: String,
    /// The source file as recorded in the binary, when known.
    pub file: Option<String>,
}

/// Facts about the crash that do not enter the id but help to read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// The signal arrived while the crashing goroutine was in C code.
    pub during_cgo: bool,
    /// The crash happened on a thread's system stack (`runtime stack:`).
    pub system_stack: bool,
    /// The runtime left frames out of the deciding stack.
    pub frames_elided: bool,
    /// No goroutine with frames could be found to decide the signature.
    pub no_frames: bool,
}

/// A crash's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// 16 hex digits of the SHA-256 of the signature's canonical text.
    pub id: String,
    /// One line for people: the kind and the innermost program frame.
    pub title: String,
    /// The kind as it enters the id, see [`CrashKind::label`].
    pub kind: String,
    /// The C function called through cgo, for a fault in C code.
    pub c_function: Option<String>,
    /// The frames that entered the id, innermost first (for a deadlock,
    /// the sorted set of blocked frames).
    pub frames: Vec<SignatureFrame>,
    /// The code the frames were taken from: the program, or a fallback.
    pub frames_from: FrameOrigin,
    pub flags: Flags,
}

/// A frame as it enters a signature.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SignatureFrame {
    /// See [`normalize_function`].
    pub function: String,
    /// See [`package_relative_file`].
    pub file: Option<String>,
}

/// The code a signature's frames belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameOrigin {
    Program,
    StandardLibrary,
    Runtime,
    /// No frames at all.
    None,
}

/// Computes the signature of a crash.
pub fn compute(input: &CrashInput) -> Signature {
    let (frames, origin) = match input.kind {
        CrashKind::Deadlock { .. } => blocked_frames(&input.blocked),
        _ => {
            let (frames, choice) = choose_frames(&input.frames, MAX_SIGNATURE_FRAMES);
            (frames, origin_of(choice))
        }
    };
    let frames_from = if frames.is_empty() {
        FrameOrigin::None
    } else {
        origin
    };
    let c_function = match input.kind {
        CrashKind::CgoFault { .. } => input
            .frames
            .iter()
            .find_map(|frame| cgo_called_function(&frame.function))
            .map(str::to_string),
        _ => None,
    };
    let kind = input.kind.label();
    let id = hash_id(&kind, c_function.as_deref(), &frames);
    let title = title(&input.kind, &kind, c_function.as_deref(), &frames);
    Signature {
        id,
        title,
        kind,
        c_function,
        frames,
        frames_from,
        flags: input.flags,
    }
}

/// Collects the innermost program frame of every goroutine that has one,
/// as a sorted set, so a deadlock is the same whichever goroutine the
/// scheduler happens to list first.
fn blocked_frames(goroutines: &[Vec<InputFrame>]) -> (Vec<SignatureFrame>, FrameOrigin) {
    let mut set: Vec<SignatureFrame> = goroutines
        .iter()
        .filter_map(|frames| {
            let (chosen, choice) = choose_frames(frames, 1);
            (choice == FrameChoice::Program)
                .then(|| chosen.into_iter().next())
                .flatten()
        })
        .collect();
    set.sort();
    set.dedup();
    set.truncate(MAX_BLOCKED_FRAMES);
    (set, FrameOrigin::Program)
}

fn origin_of(choice: FrameChoice) -> FrameOrigin {
    match choice {
        FrameChoice::Program => FrameOrigin::Program,
        FrameChoice::Standard => FrameOrigin::StandardLibrary,
        FrameChoice::Runtime => FrameOrigin::Runtime,
    }
}

/// Hashes the canonical text: one line for the rule version, the kind, the
/// C function and each frame, fields separated by tabs.
fn hash_id(kind: &str, c_function: Option<&str>, frames: &[SignatureFrame]) -> String {
    let mut canonical = format!("{SIGNATURE_VERSION}\nkind\t{kind}\n");
    if let Some(function) = c_function {
        canonical.push_str(&format!("c\t{function}\n"));
    }
    for frame in frames {
        canonical.push_str(&format!(
            "frame\t{}\t{}\n",
            frame.function,
            frame.file.as_deref().unwrap_or("")
        ));
    }
    let digest = Sha256::digest(canonical.as_bytes());
    let mut id = String::with_capacity(ID_HEX_DIGITS);
    for byte in digest.iter().take(ID_HEX_DIGITS / 2) {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// Deadlock titles name this many blocked frames, then a count.
const TITLE_BLOCKED_FRAMES: usize = 3;

fn title(
    kind: &CrashKind,
    label: &str,
    c_function: Option<&str>,
    frames: &[SignatureFrame],
) -> String {
    let innermost = frames.first().map(|frame| frame.function.as_str());
    match (kind, innermost) {
        (CrashKind::Deadlock { .. }, Some(_)) => {
            let mut names: Vec<&str> = frames
                .iter()
                .take(TITLE_BLOCKED_FRAMES)
                .map(|frame| frame.function.as_str())
                .collect();
            let more = frames.len().saturating_sub(TITLE_BLOCKED_FRAMES);
            let more_text = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            names.sort_unstable();
            format!("deadlock: blocked in {}{more_text}", names.join(", "))
        }
        (CrashKind::CgoFault { signal }, caller) => {
            let function = c_function.unwrap_or("a C function");
            match caller {
                Some(caller) => format!("{signal} in C {function} called from {caller}"),
                None => format!("{signal} in C {function}"),
            }
        }
        (CrashKind::ExternalSignal { signal }, Some(function)) => {
            format!("{signal} sent while main was in {function}")
        }
        (_, Some(function)) => format!("{label} in {function}"),
        (_, None) => label.to_string(),
    }
}
