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
//! - through code no pclntab covers (C code in cgo binaries, the VDSO) by
//!   following frame pointers, which is the only means used here for C frames.
//!
//! It stops at the runtime's top frames (`runtime.goexit`, `runtime.mstart`,
//! `runtime.rt0_go`), and otherwise says why it stopped. Every step must move
//! sp strictly up the stack, and a walk has at most [`MAX_FRAMES`] frames.
//!
//! Symbolization is left to a [`FuncTable`] (the pclntab), reading memory to
//! a [`ReadMemory`]; both take run-time addresses.

pub mod amd64;
pub mod arm64;
pub mod frame;
pub mod pclntab_funcs;
pub mod sigtramp;

use serde::Serialize;

pub use frame::{Frame, FrameSource, SourceFrame, StackKind};

use crate::core::Arch;
use crate::runtime::memory::ReadMemory;

const TRACE_TARGET: &str = "symbolizer::unwind";

/// The most physical frames one walk collects. The runtime prints at most
/// 100 per goroutine (50 innermost, 50 outermost), but a core can hold a
/// deep recursion whose frames a user wants; 10,000 frames of 8 bytes
/// already exceed the runtime's 1 GB default maximum stack for most
/// functions' frame sizes seen in practice.
pub const MAX_FRAMES: usize = 10_000;

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
    pub name: String,
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
    fn source_frames(&self, pc: u64) -> Vec<SourceFrame>;
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
    TopFrame { function: String },
    /// A pc no table covers and no frame pointer could be followed from.
    UnknownPc { pc: u64 },
    /// A Go function without a pcsp value at the frame's pc.
    NoFrameSize { function: String, pc: u64 },
    /// A function that moves sp in ways the pcsp table cannot describe.
    SpWrite { function: String },
    /// Memory the next step needed could not be read.
    Unreadable { addr: u64, error: String },
    /// The next frame's sp was not above this one's.
    NoProgress { pc: u64, sp: u64, next_sp: u64 },
    /// A zero return address.
    ZeroPc,
    /// [`MAX_FRAMES`] frames were collected.
    DepthLimit { limit: usize },
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
    pub const INJECTED: [&str; 4] =
        ["runtime.sigpanic", "runtime.sigpanic0", "runtime.asyncPreempt", "runtime.debugCallV2"];
    pub const SIGPANIC: [&str; 2] = ["runtime.sigpanic", "runtime.sigpanic0"];
    pub const TOP_FRAMES: [&str; 3] = ["runtime.goexit", "runtime.mstart", "runtime.rt0_go"];
    pub const SYSTEMSTACK: &str = "runtime.systemstack";
    pub const MCALL: &str = "runtime.mcall";
    pub const MORESTACK: &str = "runtime.morestack";
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
    Walker { arch, memory, funcs, context }.run(start)
}

struct Walker<'a> {
    arch: Arch,
    memory: &'a dyn ReadMemory,
    funcs: &'a dyn FuncTable,
    context: &'a StackContext,
}

/// The state between two steps.
struct Cursor {
    regs: Regs,
    found_by: FrameSource,
    trapped: bool,
    /// The first frame of a register set (a thread's, or a signal
    /// context's), where arm64's LR register is valid.
    innermost: bool,
}

impl Walker<'_> {
    fn run(&self, start: Start) -> Walk {
        let mut frames = Vec::new();
        let mut cursor = Cursor { regs: start.regs, found_by: start.found_by, trapped: start.trapped, innermost: true };
        let mut left_system_stack = false;
        let stop = loop {
            if frames.len() >= MAX_FRAMES {
                break StopReason::DepthLimit { limit: MAX_FRAMES };
            }
            match self.step(&mut cursor, &mut frames, &mut left_system_stack) {
                Ok(()) => {}
                Err(stop) => break stop,
            }
        };
        tracing::trace!(target: TRACE_TARGET, frames = frames.len(), ?stop, "walk ended");
        Walk { frames, stop }
    }

    /// Adds the frame at `cursor` and moves the cursor to its caller.
    fn step(&self, cursor: &mut Cursor, frames: &mut Vec<Frame>, left_system_stack: &mut bool) -> Result<(), StopReason> {
        if cursor.regs.pc == 0 {
            return self.recover_zero_pc(cursor);
        }
        let Some(func) = self.funcs.func(cursor.regs.pc) else {
            return self.step_foreign(cursor, frames);
        };
        let on_goroutine_stack = self.context.kind_of(cursor.regs.sp) == StackKind::Goroutine;
        if !on_goroutine_stack && !*left_system_stack {
            if let Some(next) = self.leave_system_stack(&func, cursor) {
                *left_system_stack = true;
                *cursor = next;
                return Ok(());
            }
        }
        let regs = cursor.regs;
        let pc = regs.pc;
        let delta = self.funcs.sp_delta(&func, pc);
        let fp = delta.and_then(|delta| self.frame_top(regs.sp, delta));
        frames.push(self.make_frame(cursor, &func, fp));
        let Some(fp) = fp else {
            return Err(StopReason::NoFrameSize { function: func.name, pc });
        };

        if names::SIGTRAMPS.contains(&func.name.as_str()) {
            let next = sigtramp::interrupted_registers(self.arch, self.memory, fp).map_err(unreadable)?;
            *cursor = Cursor { regs: next, found_by: FrameSource::SignalContext, trapped: true, innermost: true };
            return Ok(());
        }
        if func.flag & FUNC_FLAG_TOP_FRAME != 0 || names::TOP_FRAMES.contains(&func.name.as_str()) {
            return Err(StopReason::TopFrame { function: func.name });
        }
        // The switch to the goroutine's stack made systemstack's sp known,
        // which is why the runtime also clears its SPWrite flag there.
        if func.flag & FUNC_FLAG_SP_WRITE != 0
            && !cursor.innermost
            && cursor.found_by != FrameSource::StackSwitch
            && !names::SP_WRITE_ALLOWED.contains(&func.name.as_str())
        {
            return Err(StopReason::SpWrite { function: func.name });
        }

        let lr = if cursor.innermost { regs.lr } else { None };
        let return_pc = match self.arch {
            Arch::Amd64 => amd64::return_address(self.memory, fp),
            Arch::Arm64 => arm64::return_address(self.memory, regs.sp, fp, lr),
        }
        .map_err(unreadable)?;
        let caller_fp = self.saved_frame_pointer(regs, fp, delta.unwrap_or(0));
        let mut next = Regs { pc: return_pc, sp: fp, fp: caller_fp, lr: None };
        let injected = if self.context.all_injected_calls {
            names::INJECTED.contains(&func.name.as_str())
        } else {
            names::SIGPANIC.contains(&func.name.as_str())
        };
        if injected && self.arch == Arch::Arm64 {
            next = self.arm64_after_injected_call(next)?;
        }
        // An arm64 leaf keeps its return address in LR and has no frame, so
        // its caller's sp equals its own; every other step must move up.
        let used_link_register = self.arch == Arch::Arm64 && lr.is_some() && regs.sp >= fp;
        if next.sp < regs.sp || (next.sp == regs.sp && !used_link_register) {
            return Err(StopReason::NoProgress { pc, sp: regs.sp, next_sp: next.sp });
        }
        if next.pc == 0 {
            return Err(StopReason::ZeroPc);
        }
        // After an injected call on arm64 the interrupted frame's LR may be
        // known, which makes it innermost for the LR rule.
        let innermost = next.lr.is_some();
        *cursor = Cursor { regs: next, found_by: FrameSource::Pcsp, trapped: injected, innermost };
        Ok(())
    }

    fn frame_top(&self, sp: u64, delta: u64) -> Option<u64> {
        match self.arch {
            Arch::Amd64 => amd64::frame_top(sp, delta),
            Arch::Arm64 => arm64::frame_top(sp, delta),
        }
    }

    fn make_frame(&self, cursor: &Cursor, func: &FuncInfo, fp: Option<u64>) -> Frame {
        let pc = cursor.regs.pc;
        let symbol_pc = if cursor.trapped || pc <= func.entry { pc } else { pc - 1 };
        Frame {
            pc,
            symbol_pc,
            trapped: cursor.trapped,
            sp: cursor.regs.sp,
            fp,
            entry: Some(func.entry),
            source: self.funcs.source_frames(symbol_pc),
            found_by: cursor.found_by,
            stack: self.context.kind_of(cursor.regs.sp),
        }
    }

    /// The caller's frame pointer: Go saves it just below the return
    /// address on amd64 whenever the frame has a size, and at `fp - 8`
    /// below sp's frame record on arm64. Only the frame-pointer fallback
    /// uses it, so a failed read keeps the current value.
    fn saved_frame_pointer(&self, regs: Regs, fp: u64, delta: u64) -> u64 {
        let slot = match self.arch {
            Arch::Amd64 if delta > 0 => fp.checked_sub(2 * amd64::RETURN_ADDRESS_SIZE),
            Arch::Arm64 if delta > 0 => regs.sp.checked_sub(8),
            _ => None,
        };
        slot.and_then(|slot| self.memory.read_u64(slot).ok()).unwrap_or(regs.fp)
    }

    /// On arm64 the signal handler injects a call by lowering sp one aligned
    /// slot and saving the interrupted LR there (see [`arm64`]); the
    /// interrupted frame's sp is above that slot, and when it had not yet
    /// saved its own LR (pcsp 0) the saved word is its LR.
    fn arm64_after_injected_call(&self, next: Regs) -> Result<Regs, StopReason> {
        let saved = self.memory.read_u64(next.sp).map_err(unreadable)?;
        let sp = next.sp.checked_add(arm64::INJECTED_CALL_SLOT).ok_or(StopReason::ZeroPc)?;
        let lr = match self.funcs.func(next.pc) {
            None => return Ok(Regs { pc: saved, sp, fp: next.fp, lr: None }),
            Some(func) if self.funcs.sp_delta(&func, next.pc) == Some(0) => Some(saved),
            Some(_) => None,
        };
        Ok(Regs { pc: next.pc, sp, fp: next.fp, lr })
    }

    /// A call through a nil function value leaves pc 0 with the return
    /// address on top of the stack (amd64) or in LR (arm64); the runtime
    /// resumes the walk there. Only the innermost frame can be such.
    fn recover_zero_pc(&self, cursor: &mut Cursor) -> Result<(), StopReason> {
        if !cursor.innermost {
            return Err(StopReason::ZeroPc);
        }
        let regs = cursor.regs;
        let next = match self.arch {
            Arch::Amd64 => {
                let pc = self.memory.read_u64(regs.sp).map_err(unreadable)?;
                Regs { pc, sp: regs.sp.saturating_add(amd64::RETURN_ADDRESS_SIZE), fp: regs.fp, lr: None }
            }
            Arch::Arm64 => Regs { pc: regs.lr.unwrap_or(0), sp: regs.sp, fp: regs.fp, lr: None },
        };
        if next.pc == 0 {
            return Err(StopReason::ZeroPc);
        }
        *cursor = Cursor { regs: next, found_by: cursor.found_by, trapped: false, innermost: false };
        Ok(())
    }

    /// The runtime's switches from the system stack back to the goroutine:
    /// `systemstack` returns to its caller on the goroutine stack at
    /// `curg.sched.sp`; `mcall` and `morestack` never return, and the
    /// goroutine's state is all in `curg.sched`. Returns the cursor to
    /// continue from, and pushes no frame for `morestack`, which the
    /// runtime does not print either.
    fn leave_system_stack(&self, func: &FuncInfo, cursor: &Cursor) -> Option<Cursor> {
        let name = func.name.as_str();
        let switched = |regs: Regs| Cursor { regs, found_by: FrameSource::StackSwitch, trapped: false, innermost: false };
        match name {
            names::MORESTACK | names::MCALL => {
                let sched = self.context.curg_sched?;
                (sched.pc != 0 && sched.sp != 0).then(|| switched(sched))
            }
            names::SYSTEMSTACK => {
                let sp = self.context.curg_sched_sp.filter(|&sp| sp != 0)?;
                if self.arch == Arch::Arm64 && self.funcs.sp_delta(func, cursor.regs.pc) == Some(0) {
                    // In the prologue or epilogue: the switch has not
                    // happened or is undone, as the runtime also checks.
                    return None;
                }
                let mut regs = cursor.regs;
                regs.sp = sp;
                Some(switched(regs))
            }
            _ => None,
        }
    }

    /// A frame no pclntab covers: C code or the VDSO. Its caller is found
    /// through the frame pointer, when that points up the stack.
    fn step_foreign(&self, cursor: &mut Cursor, frames: &mut Vec<Frame>) -> Result<(), StopReason> {
        let regs = cursor.regs;
        let symbol_pc = if cursor.trapped { regs.pc } else { regs.pc - 1 };
        frames.push(Frame {
            pc: regs.pc,
            symbol_pc,
            trapped: cursor.trapped,
            sp: regs.sp,
            fp: None,
            entry: None,
            source: Vec::new(),
            found_by: cursor.found_by,
            stack: self.context.kind_of(regs.sp),
        });
        let fp = regs.fp;
        if fp < regs.sp || fp == 0 {
            return Err(StopReason::UnknownPc { pc: regs.pc });
        }
        let saved_fp = self.memory.read_u64(fp).map_err(unreadable)?;
        let return_pc = self.memory.read_u64(fp.saturating_add(8)).map_err(unreadable)?;
        let next_sp = fp.saturating_add(16);
        if next_sp <= regs.sp || return_pc == 0 {
            return Err(StopReason::UnknownPc { pc: regs.pc });
        }
        *cursor = Cursor {
            regs: Regs { pc: return_pc, sp: next_sp, fp: saved_fp, lr: None },
            found_by: FrameSource::FramePointer,
            trapped: false,
            innermost: false,
        };
        Ok(())
    }
}

fn unreadable(error: crate::runtime::memory::MemoryError) -> StopReason {
    StopReason::Unreadable { addr: error.addr(), error: error.to_string() }
}

#[cfg(test)]
mod tests;
