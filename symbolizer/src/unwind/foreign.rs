//! Frames no pclntab covers: C code in cgo binaries, the C library, the
//! VDSO. The caller is found through the frame pointer when it points up
//! the stack.

use super::walker::{Collector, Cursor, Walker};
use super::{unreadable, Frame, FrameSource, Regs, StopReason};

/// Adds the foreign frame at `cursor` and moves the cursor to its caller.
pub(super) fn step(walker: &Walker<'_>, cursor: &mut Cursor, frames: &mut Collector) -> Result<(), StopReason> {
    let regs = cursor.regs;
    let symbol_pc = if cursor.trapped { regs.pc } else { regs.pc.saturating_sub(1) };
    frames.push(Frame {
        pc: regs.pc,
        symbol_pc,
        trapped: cursor.trapped,
        sp: regs.sp,
        fp: None,
        entry: None,
        source: Vec::new(),
        found_by: cursor.found_by,
        stack: walker.context.kind_of(regs.sp),
    });
    let fp = regs.fp;
    if fp < regs.sp || fp == 0 {
        return Err(StopReason::UnknownPc { pc: regs.pc });
    }
    let saved_fp = walker.memory.read_u64(fp).map_err(unreadable)?;
    let return_pc = walker.memory.read_u64(fp.saturating_add(8)).map_err(unreadable)?;
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
