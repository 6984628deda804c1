//! Stack unwinding the way the Go runtime's own traceback does it, extended
//! to what a core needs: through signal frames and across stack switches.
//!
//! A Go frame's size comes from the pclntab's pcsp table (the sp delta at
//! the frame's pc), which gives the frame's top; the return address sits
//! just below it on amd64 ([`amd64`]) and at the frame's sp on arm64
//! ([`arm64`]). The walk goes on
//! - through signal frames: on reaching `runtime.sigtramp` or
//!   `runtime.cgoSigtramp`, the registers saved in the kernel's ucontext
//!   become the next frame's ([`sigtramp`]);
//! - from the system stack (g0) back to the goroutine's stack at
//!   `runtime.systemstack`, `runtime.mcall` and `runtime.morestack`, with the
//!   goroutine's saved `sched` registers;
//! - through code no pclntab covers (C code in cgo binaries, the C
//!   library, the VDSO) with the DWARF call frame information of the
//!   module's `.eh_frame` when a [`cfi::CallFrameInfo`] is given and covers
//!   the pc ([`walk_with_cfi`]), else by following frame pointers.
//!
//! It stops at the runtime's top frames (`runtime.goexit`, `runtime.mstart`,
//! `runtime.rt0_go`), and otherwise says why it stopped. Every step must move
//! sp strictly up the stack, and a walk has at most [`MAX_FRAMES`] frames.
//!
//! Symbolization is left to a [`FuncTable`] (the pclntab), reading memory to
//! a [`ReadMemory`]; both take run-time addresses.

mod arch;
pub mod cfi;
pub mod frame;
mod walker;

pub use arch::{amd64, arm64, sigtramp};

/// [`FuncTable`] over a binary's pclntab (kept at this path for callers).
pub mod pclntab_funcs {
    pub use super::frame::{FunctionIndex, PclntabFuncs};
}

use std::sync::Arc;

use serde::Serialize;

pub use frame::{Frame, FrameSource, SourceFrame, SourceFrames, StackKind};

use crate::core::Arch;
use crate::runtime::memory::ReadMemory;

const TRACE_TARGET: &str = "symbolizer::unwind";

/// The maximum number of physical frames one walk keeps. The runtime
/// prints at most 100 per goroutine (50 innermost, 50 outermost). A deeper
/// stack keeps its first and last 5,000 frames and counts those between
/// ([`Walk::elided`]).
pub const MAX_FRAMES: usize = 10_000;
/// The maximum number of frames one walk steps through, kept or counted.
/// The runtime's default maximum stack is 1 GB (`debug.SetMaxStack`), and
/// a Go frame with a frame pointer takes at least 16 bytes, so a real stack
/// has at most 2^26 frames: a walk that reaches the cap went through
/// damaged memory, or a stack above the default maximum.
pub const MAX_WALK_STEPS: usize = 1 << 26;

/// `abi.FuncFlagTopFrame`: the function is the outermost frame of a stack.
pub const FUNC_FLAG_TOP_FRAME: u8 = 1;
/// `abi.FuncFlagSPWrite`: the function writes sp in a way pcsp cannot follow.
pub const FUNC_FLAG_SP_WRITE: u8 = 2;

/// What the unwinder needs to know of a function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncInfo {
    /// Run-time address of the first instruction.
    pub entry: u64,
    /// Run-time address one past the function.
    pub end: u64,
    /// Shared by every frame of the function.
    pub name: Arc<str>,
    /// `abi.FuncFlag` bits.
    pub flag: u8,
}

/// Function metadata at run-time addresses, from the pclntab.
pub trait FuncTable {
    /// Returns the function that contains `pc`.
    fn func(&self, pc: u64) -> Option<FuncInfo>;
    /// Returns the pcsp value (bytes the function has pushed) at `pc`.
    fn sp_delta(&self, func: &FuncInfo, pc: u64) -> Option<u64>;
    /// Returns the source frames at `pc`, innermost inlined call first and
    /// the physical function last; empty when no function contains `pc`.
    fn source_frames(&self, pc: u64) -> SourceFrames;
    /// Returns the source frames of code the pclntab does not cover (C code
    /// from cgo) from DWARF or the ELF symbol tables, innermost first; empty
    /// when nothing names `pc`.
    fn foreign_frames(&self, _pc: u64) -> SourceFrames {
        SourceFrames::default()
    }
    /// Finds a function by its full name, such as `runtime.allgadd`.
    fn func_by_name(&self, name: &str) -> Option<FuncInfo>;
}

/// The registers a walk step needs. `fp` is the frame pointer register
/// (rbp, x29); `lr` is the link register on arm64 where it is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Regs {
    pub pc: u64,
    pub sp: u64,
    pub fp: u64,
    pub lr: Option<u64>,
}

/// A stack's bounds: `[lo, hi)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StackBounds {
    pub lo: u64,
    pub hi: u64,
}

impl StackBounds {
    pub fn contains(&self, sp: u64) -> bool {
        self.lo <= sp && sp < self.hi
    }
}

/// What a walk knows about the stacks of the thread or goroutine it walks.
#[derive(Clone, Debug)]
pub struct StackContext {
    pub goroutine: Option<StackBounds>,
    pub system: Option<StackBounds>,
    pub signal: Option<StackBounds>,
    /// The goroutine's saved `sched` registers, where the walk resumes when
    /// it leaves the system stack at `mcall` or `morestack`.
    pub curg_sched: Option<Regs>,
    /// The goroutine's `sched.sp`, where the walk resumes at `systemstack`.
    /// The runtime clears `sched` when a goroutine leaves the system stack,
    /// so this is only meaningful while the thread is on it.
    pub curg_sched_sp: Option<u64>,
    /// Whether `asyncPreempt` and `debugCallV2` are injected calls like
    /// `sigpanic`, whose caller's pc is the interrupted instruction. The
    /// runtime's unwinder treats them so from Go 1.21 on; Go 1.19 and 1.20
    /// give their callers the `pc - 1` of an ordinary return address.
    pub all_injected_calls: bool,
    /// The maximum number of frames this walk may step through, capped at
    /// [`MAX_WALK_STEPS`], so that a caller walking many stacks can share a
    /// budget between them.
    pub max_steps: usize,
    /// The maximum number of frames this walk keeps, capped at
    /// [`MAX_FRAMES`], so that a caller can bound the memory of many walks.
    pub max_frames: usize,
}

impl Default for StackContext {
    fn default() -> StackContext {
        StackContext {
            goroutine: None,
            system: None,
            signal: None,
            curg_sched: None,
            curg_sched_sp: None,
            all_injected_calls: true,
            max_steps: MAX_WALK_STEPS,
            max_frames: MAX_FRAMES,
        }
    }
}

impl StackContext {
    fn kind_of(&self, sp: u64) -> StackKind {
        let inside = |bounds: &Option<StackBounds>| bounds.is_some_and(|b| b.contains(sp));
        if inside(&self.goroutine) {
            StackKind::Goroutine
        } else if inside(&self.system) {
            StackKind::System
        } else if inside(&self.signal) {
            StackKind::Signal
        } else {
            StackKind::Unknown
        }
    }
}

/// Why a walk ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StopReason {
    /// A function that ends every complete stack (`runtime.goexit`,
    /// `runtime.mstart`, `runtime.rt0_go`).
    TopFrame { function: Arc<str> },
    /// A pc no table covers and no frame pointer could be followed from.
    UnknownPc {
        #[serde(serialize_with = "hex_address")]
        pc: u64,
    },
    /// A Go function without a pcsp value at the frame's pc.
    NoFrameSize {
        function: Arc<str>,
        #[serde(serialize_with = "hex_address")]
        pc: u64,
    },
    /// A function that moves sp in ways the pcsp table cannot describe.
    SpWrite { function: Arc<str> },
    /// Memory the next step needed could not be read.
    Unreadable {
        #[serde(serialize_with = "hex_address")]
        addr: u64,
        error: String,
    },
    /// The next frame's sp was not above this one's.
    NoProgress {
        #[serde(serialize_with = "hex_address")]
        pc: u64,
        #[serde(serialize_with = "hex_address")]
        sp: u64,
        #[serde(serialize_with = "hex_address")]
        next_sp: u64,
    },
    /// A zero return address.
    ZeroPc,
    /// [`MAX_WALK_STEPS`] frames were walked.
    DepthLimit { limit: usize },
}

/// Serializes an address as a `0x` hex string, as the JSON documents write
/// every address: JSON numbers lose precision above 2^53.
fn hex_address<S: serde::Serializer>(address: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("{address:#x}"))
}

impl StopReason {
    /// Whether the walk reached the stack's natural end.
    pub fn is_complete(&self) -> bool {
        matches!(self, StopReason::TopFrame { .. })
    }
}

/// The frames of one walk, innermost first, and why it stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Walk {
    pub frames: Vec<Frame>,
    pub stop: StopReason,
    /// Frames left out of `frames` because the stack is deeper than
    /// [`MAX_FRAMES`].
    pub elided: Option<ElidedFrames>,
}

/// Frames a walk counted but did not keep: those between
/// `frames[after - 1]` and `frames[after]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ElidedFrames {
    pub after: usize,
    /// Physical frames left out.
    pub physical: u64,
    /// Source-level frames left out, inlined calls included: what the
    /// runtime's `...N frames elided...` counts.
    pub logical: u64,
}

impl Walk {
    /// Counts the physical frames the walk stepped through, kept or elided.
    pub fn steps(&self) -> u64 {
        self.frames.len() as u64 + self.elided.map_or(0, |elided| elided.physical)
    }

    /// Counts the source-level frames from `frames[from]` to the end of the
    /// stack, inlined calls and elided frames included. The runtime compares
    /// this count with its 100-frame limit, and above it prints the first
    /// and last 50 frames with `...N frames elided...` between.
    pub fn logical_frame_count(&self, from: usize) -> u64 {
        let kept: u64 = self
            .frames
            .iter()
            .skip(from)
            .map(|frame| frame.source.len().max(1) as u64)
            .sum();
        kept + self.elided.map_or(0, |elided| elided.logical)
    }
}

/// Where a walk starts.
#[derive(Clone, Copy, Debug)]
pub struct Start {
    pub regs: Regs,
    pub found_by: FrameSource,
    /// Whether `regs.pc` is an interrupted instruction rather than a return
    /// address (a thread's registers, a signal context).
    pub trapped: bool,
}

/// The runtime functions the walk treats specially, by name because their
/// funcID numbers change between releases.
mod names {
    pub const SIGTRAMPS: [&str; 2] = ["runtime.sigtramp", "runtime.cgoSigtramp"];
    /// Functions the signal handler makes appear called by the interrupted
    /// frame, whose caller's pc is therefore the interrupted instruction.
    pub const INJECTED: [&str; 4] = [
        "runtime.sigpanic",
        "runtime.sigpanic0",
        "runtime.asyncPreempt",
        "runtime.debugCallV2",
    ];
    pub const SIGPANIC: [&str; 2] = ["runtime.sigpanic", "runtime.sigpanic0"];
    pub const TOP_FRAMES: [&str; 3] = ["runtime.goexit", "runtime.mstart", "runtime.rt0_go"];
    pub const SYSTEMSTACK: &str = "runtime.systemstack";
    /// The functions that leave a goroutine's stack for the system stack,
    /// saving its registers in `g.sched`.
    pub const STACK_SWITCHES: [&str; 4] = [
        SYSTEMSTACK,
        "runtime.mcall",
        "runtime.morestack",
        "runtime.asmcgocall",
    ];
    /// SPWrite functions the runtime itself unwinds through.
    pub const SP_WRITE_ALLOWED: [&str; 1] = ["runtime.cgocallback"];
}

/// Walks one stack from `start`.
pub fn walk(
    arch: Arch,
    memory: &dyn ReadMemory,
    funcs: &dyn FuncTable,
    start: Start,
    context: &StackContext,
) -> Walk {
    walker::Walker {
        arch,
        memory,
        funcs,
        cfi: None,
        context,
    }
    .run(start)
}

/// Walks one stack from `start`, unwinding code that no pclntab covers with
/// the call frame information `cfi` before falling back to frame pointers.
pub fn walk_with_cfi(
    arch: Arch,
    memory: &dyn ReadMemory,
    funcs: &dyn FuncTable,
    cfi: Option<&dyn cfi::CallFrameInfo>,
    start: Start,
    context: &StackContext,
) -> Walk {
    walker::Walker {
        arch,
        memory,
        funcs,
        cfi,
        context,
    }
    .run(start)
}

fn unreadable(error: crate::runtime::memory::MemoryError) -> StopReason {
    StopReason::Unreadable {
        addr: error.addr(),
        error: error.to_string(),
    }
}

#[cfg(test)]
mod tests;
