//! The walk itself: one step per frame, from a register set up the stack,
//! through signal frames and across the runtime's stack switches.
//!
//! Frames are kept up to [`MAX_FRAMES`]. A deeper stack keeps its first
//! and last halves and counts the frames between them (see
//! [`ElidedFrames`]), because the runtime's own traceback also prints the
//! first and last frames of a deep recursion with a count in between.

use std::cell::Cell;
use std::collections::VecDeque;

use super::{
    amd64, arm64, cfi, names, sigtramp, unreadable, ElidedFrames, Frame, FrameSource, FuncInfo,
    FuncTable, Regs, StackContext, StackKind, Start, StopReason, Walk, FUNC_FLAG_SP_WRITE,
    FUNC_FLAG_TOP_FRAME, MAX_FRAMES, MAX_WALK_STEPS, TRACE_TARGET,
};
use crate::core::Arch;
use crate::runtime::memory::ReadMemory;

pub(super) struct Walker<'a> {
    pub arch: Arch,
    pub memory: &'a dyn ReadMemory,
    pub funcs: &'a dyn FuncTable,
    pub cfi: Option<&'a dyn super::cfi::CallFrameInfo>,
    pub context: &'a StackContext,
}

/// The state between two steps.
pub(super) struct Cursor {
    pub regs: Regs,
    pub found_by: FrameSource,
    pub trapped: bool,
    /// The first frame of a register set (a thread's, or a signal
    /// context's), where arm64's LR register is valid.
    pub innermost: bool,
}

thread_local! {
    /// An empty frame list with room, left by the last walk on this thread:
    /// growing a new list and shrinking it to its length took two
    /// reallocations per walk, about a millisecond of CPU time on 10,000
    /// goroutines.
    static SPARE_FRAMES: Cell<Vec<Frame>> = const { Cell::new(Vec::new()) };
}

/// The frames of a walk: every frame up to [`MAX_FRAMES`], then the first
/// half of those and a window of the latest, with a count of the frames
/// dropped between them.
pub(super) struct Collector {
    /// The number of frames kept at most, [`MAX_FRAMES`] or fewer.
    max: usize,
    head: Vec<Frame>,
    tail: VecDeque<Frame>,
    elided: Option<ElidedFrames>,
    steps: usize,
}

impl Collector {
    pub(super) fn new(max: usize) -> Collector {
        let max = max.min(MAX_FRAMES);
        Collector {
            max,
            head: SPARE_FRAMES.take(),
            tail: VecDeque::new(),
            elided: None,
            steps: 0,
        }
    }

    /// Adds a frame; once `max` are kept, the oldest frame of the latest
    /// window is counted and dropped.
    pub(super) fn push(&mut self, frame: Frame) {
        self.steps += 1;
        if self.head.len() < self.max && self.elided.is_none() && self.tail.is_empty() {
            self.head.push(frame);
            if self.head.len() == self.max {
                let keep = self.max / 2;
                self.tail = self.head.drain(keep..).collect();
            }
            return;
        }
        self.tail.push_back(frame);
        if self.head.len() + self.tail.len() > self.max {
            if let Some(dropped) = self.tail.pop_front() {
                let elided = self.elided.get_or_insert(ElidedFrames {
                    after: self.head.len(),
                    physical: 0,
                    logical: 0,
                });
                elided.physical += 1;
                elided.logical += dropped.source.len().max(1) as u64;
            }
        }
    }

    pub(super) fn finish(self) -> (Vec<Frame>, Option<ElidedFrames>) {
        let Collector {
            mut head,
            tail,
            elided,
            ..
        } = self;
        // The frames move into a list of their exact length, and the
        // emptied head is kept for the next walk.
        let mut frames = Vec::with_capacity(head.len() + tail.len());
        frames.append(&mut head);
        frames.extend(tail);
        SPARE_FRAMES.set(head);
        (frames, elided)
    }
}

impl Walker<'_> {
    pub(super) fn run(&self, start: Start) -> Walk {
        let mut frames = Collector::new(self.context.max_frames);
        let mut cursor = Cursor {
            regs: start.regs,
            found_by: start.found_by,
            trapped: start.trapped,
            innermost: true,
        };
        let mut left_system_stack = false;
        let limit = self.context.max_steps.min(MAX_WALK_STEPS);
        let stop = loop {
            if frames.steps >= limit {
                break StopReason::DepthLimit { limit };
            }
            match self.step(&mut cursor, &mut frames, &mut left_system_stack) {
                Ok(()) => {}
                Err(stop) => break stop,
            }
        };
        let (frames, elided) = frames.finish();
        tracing::trace!(target: TRACE_TARGET, frames = frames.len(), ?elided, ?stop, "walk ended");
        Walk {
            frames,
            stop,
            elided,
        }
    }

    /// Adds the frame at `cursor` and moves the cursor to its caller.
    fn step(
        &self,
        cursor: &mut Cursor,
        frames: &mut Collector,
        left_system_stack: &mut bool,
    ) -> Result<(), StopReason> {
        if cursor.regs.pc == 0 {
            return self.recover_zero_pc(cursor);
        }
        let Some(func) = self.funcs.func(cursor.regs.pc) else {
            return cfi::step_foreign(self, cursor, frames);
        };
        let regs = cursor.regs;
        let pc = regs.pc;
        let delta = self.funcs.sp_delta(&func, pc);
        let fp = delta.and_then(|delta| self.frame_top(regs.sp, delta));
        frames.push(self.make_frame(cursor, &func, fp));
        let Some(fp) = fp else {
            return Err(StopReason::NoFrameSize {
                function: func.name.clone(),
                pc,
            });
        };

        if names::SIGTRAMPS.contains(&func.name.as_ref()) {
            let next =
                sigtramp::interrupted_registers(self.arch, self.memory, fp).map_err(unreadable)?;
            *cursor = Cursor {
                regs: next,
                found_by: FrameSource::SignalContext,
                trapped: true,
                innermost: true,
            };
            return Ok(());
        }
        if func.flag & FUNC_FLAG_TOP_FRAME != 0 || names::TOP_FRAMES.contains(&func.name.as_ref()) {
            return Err(StopReason::TopFrame {
                function: func.name.clone(),
            });
        }
        if !*left_system_stack && self.context.kind_of(regs.sp) != StackKind::Goroutine {
            match self.leave_system_stack(&func, cursor, delta) {
                Switch::Ordinary => {}
                Switch::To(next) => {
                    *left_system_stack = true;
                    *cursor = next;
                    return Ok(());
                }
                Switch::NoGoroutine => {
                    return Err(StopReason::TopFrame {
                        function: func.name.clone(),
                    })
                }
            }
        }
        // The switch to the goroutine's stack made systemstack's sp known,
        // which is why the runtime also clears its SPWrite flag there.
        if func.flag & FUNC_FLAG_SP_WRITE != 0
            && !cursor.innermost
            && cursor.found_by != FrameSource::StackSwitch
            && !names::SP_WRITE_ALLOWED.contains(&func.name.as_ref())
        {
            return Err(StopReason::SpWrite {
                function: func.name.clone(),
            });
        }

        let lr = if cursor.innermost { regs.lr } else { None };
        let return_pc = match self.arch {
            Arch::Amd64 => amd64::return_address(self.memory, fp),
            Arch::Arm64 => arm64::return_address(self.memory, regs.sp, fp, lr),
        }
        .map_err(unreadable)?;
        let caller_fp = self.saved_frame_pointer(regs, fp, delta.unwrap_or(0));
        let mut next = Regs {
            pc: return_pc,
            sp: fp,
            fp: caller_fp,
            lr: None,
        };
        let injected = if self.context.all_injected_calls {
            names::INJECTED.contains(&func.name.as_ref())
        } else {
            names::SIGPANIC.contains(&func.name.as_ref())
        };
        if injected && self.arch == Arch::Arm64 {
            next = self.arm64_after_injected_call(next)?;
        }
        // An arm64 leaf keeps its return address in LR and has no frame, so
        // its caller's sp equals its own; every other step must move up.
        let used_link_register = self.arch == Arch::Arm64 && lr.is_some() && regs.sp >= fp;
        if next.sp < regs.sp || (next.sp == regs.sp && !used_link_register) {
            return Err(StopReason::NoProgress {
                pc,
                sp: regs.sp,
                next_sp: next.sp,
            });
        }
        if next.pc == 0 {
            return Err(StopReason::ZeroPc);
        }
        // After an injected call on arm64 the interrupted frame's LR may be
        // known, which makes it innermost for the LR rule.
        let innermost = next.lr.is_some();
        *cursor = Cursor {
            regs: next,
            found_by: FrameSource::Pcsp,
            trapped: injected,
            innermost,
        };
        Ok(())
    }

    pub(super) fn frame_top(&self, sp: u64, delta: u64) -> Option<u64> {
        match self.arch {
            Arch::Amd64 => amd64::frame_top(sp, delta),
            Arch::Arm64 => arm64::frame_top(sp, delta),
        }
    }

    pub(super) fn make_frame(&self, cursor: &Cursor, func: &FuncInfo, fp: Option<u64>) -> Frame {
        let pc = cursor.regs.pc;
        let symbol_pc = if cursor.trapped || pc <= func.entry {
            pc
        } else {
            pc - 1
        };
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
        slot.and_then(|slot| self.memory.read_u64(slot).ok())
            .unwrap_or(regs.fp)
    }

    /// On arm64 the signal handler injects a call by lowering sp one aligned
    /// slot and saving the interrupted LR there (see [`arm64`]); the
    /// interrupted frame's sp is above that slot, and when it had not yet
    /// saved its own LR (pcsp 0) the saved word is its LR.
    fn arm64_after_injected_call(&self, next: Regs) -> Result<Regs, StopReason> {
        let saved = self.memory.read_u64(next.sp).map_err(unreadable)?;
        let sp = next
            .sp
            .checked_add(arm64::INJECTED_CALL_SLOT)
            .ok_or(StopReason::ZeroPc)?;
        let lr = match self.funcs.func(next.pc) {
            None => {
                return Ok(Regs {
                    pc: saved,
                    sp,
                    fp: next.fp,
                    lr: None,
                })
            }
            Some(func) if self.funcs.sp_delta(&func, next.pc) == Some(0) => Some(saved),
            Some(_) => None,
        };
        Ok(Regs {
            pc: next.pc,
            sp,
            fp: next.fp,
            lr,
        })
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
                Regs {
                    pc,
                    sp: regs.sp.saturating_add(amd64::RETURN_ADDRESS_SIZE),
                    fp: regs.fp,
                    lr: None,
                }
            }
            Arch::Arm64 => Regs {
                pc: regs.lr.unwrap_or(0),
                sp: regs.sp,
                fp: regs.fp,
                lr: None,
            },
        };
        if next.pc == 0 {
            return Err(StopReason::ZeroPc);
        }
        *cursor = Cursor {
            regs: next,
            found_by: cursor.found_by,
            trapped: false,
            innermost: false,
        };
        Ok(())
    }

    /// The runtime's switches from the system stack back to a goroutine:
    /// `systemstack`, `mcall` and `morestack` save the goroutine's state in
    /// `curg.sched` before they move to g0, and the runtime's traceback of
    /// the goroutine starts there (at `runtime.systemstack_switch` for
    /// `systemstack`). The switching frame itself stays on the system
    /// stack, where the runtime prints it last.
    fn leave_system_stack(&self, func: &FuncInfo, cursor: &Cursor, delta: Option<u64>) -> Switch {
        let name = &*func.name;
        if !names::STACK_SWITCHES.contains(&name) {
            return Switch::Ordinary;
        }
        if name == names::SYSTEMSTACK
            && self.arch == Arch::Arm64
            && delta == Some(0)
            && cursor.innermost
        {
            // In the prologue or epilogue: the switch has not happened or
            // is undone, as the runtime also checks.
            return Switch::Ordinary;
        }
        match self.context.curg_sched {
            Some(sched) if sched.pc != 0 && sched.sp != 0 => Switch::To(Cursor {
                regs: sched,
                found_by: FrameSource::StackSwitch,
                trapped: false,
                // On arm64, morestack saves the caller's LR in `sched.lr`: the
                // function it interrupted has no frame yet, so its return
                // address is there and not on the stack, as the runtime's
                // traceback also reads it.
                innermost: self.arch == Arch::Arm64 && sched.lr.is_some(),
            }),
            _ => Switch::NoGoroutine,
        }
    }
}

/// The effect of a stack-switching function on the walk.
enum Switch {
    /// An ordinary function: the walk goes on to its caller.
    Ordinary,
    /// Continue on the goroutine's stack from its saved registers.
    To(Cursor),
    /// The M runs no goroutine (an idle M parked in `mcall`), so the
    /// system stack ends here, as the runtime's traceback of g0 does.
    NoGoroutine,
}
