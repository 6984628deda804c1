//! arm64 frame rules: BL leaves the return address in the link register
//! (x30). A Go function's prologue stores the incoming LR at `0(SP)` of its
//! new frame, so a frame's top is its sp plus the pcsp delta (nothing is
//! pushed by the call), and the caller's pc is read at `sp` once the frame
//! is allocated. The innermost frame of a thread may still be in a prologue
//! or be a leaf without a frame, and then the pc is the LR register.
//!
//! Signal frames: Go does not set a restorer on arm64 and the kernel's
//! `rt_sigframe` is `struct siginfo` (128 bytes) followed by the
//! `ucontext`, with sp at handler entry pointing at the siginfo (Linux
//! `arch/arm64/kernel/signal.c`). The entry sp is sigtramp's frame top.
//! The ucontext's `uc_mcontext` starts at byte 176 (`uc_flags`, `uc_link`,
//! `stack_t`, the 1024-bit `uc_sigmask`, aligned to 16), and holds
//! `fault_address`, x0–x30, sp, pc and pstate.
//!
//! NOTE: these rules are checked with synthetic stacks only; no arm64 core
//! could be made where this code was written.

use super::Regs;
use crate::runtime::memory::{MemoryError, ReadMemory};

/// Bytes of `struct siginfo` before the ucontext in the kernel's signal frame.
const SIGINFO_SIZE: u64 = 128;
/// Offset of `uc_mcontext.regs[0]` in the ucontext (mcontext at 176, then
/// the 8-byte `fault_address`).
const UC_REGS: u64 = 184;
const REG_FP: u64 = 29;
const REG_LR: u64 = 30;
const REG_SP: u64 = 31;
const REG_PC: u64 = 32;
/// How far the signal handler lowers sp when it injects a call to
/// `sigpanic`: one aligned slot holding the interrupted LR
/// (`sys.StackAlign` in the runtime's `pushCall`).
pub const INJECTED_CALL_SLOT: u64 = 16;

/// The frame's top for a pcsp delta.
pub fn frame_top(sp: u64, sp_delta: u64) -> Option<u64> {
    sp.checked_add(sp_delta)
}

/// Reads the caller's pc for a frame at `sp` with top `fp`. `lr` is the
/// link register, known only for the innermost frame of a register set.
pub fn return_address(memory: &dyn ReadMemory, sp: u64, fp: u64, lr: Option<u64>) -> Result<u64, MemoryError> {
    match lr {
        Some(lr) if sp >= fp => Ok(lr),
        _ => memory.read_u64(sp),
    }
}

/// Reads the interrupted registers from the ucontext at `ucontext`.
pub fn signal_context(memory: &dyn ReadMemory, ucontext: u64) -> Result<Regs, MemoryError> {
    let reg = |index: u64| memory.read_u64(ucontext.wrapping_add(UC_REGS + index * 8));
    Ok(Regs { pc: reg(REG_PC)?, sp: reg(REG_SP)?, fp: reg(REG_FP)?, lr: Some(reg(REG_LR)?) })
}

/// The ucontext of the signal frame whose handler (sigtramp) frame has top `fp`.
pub fn ucontext_address(sigtramp_fp: u64) -> u64 {
    sigtramp_fp.wrapping_add(SIGINFO_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::memory::TestMemory;

    #[test]
    fn leaf_frame_uses_link_register() {
        let memory = TestMemory::new();
        assert_eq!(return_address(&memory, 0x1000, 0x1000, Some(0x4000)).ok(), Some(0x4000));
    }

    #[test]
    fn allocated_frame_reads_saved_lr() {
        let mut memory = TestMemory::new();
        memory.put_u64(0x1000, 0x5000);
        assert_eq!(return_address(&memory, 0x1000, 0x1020, Some(0x4000)).ok(), Some(0x5000));
        assert_eq!(return_address(&memory, 0x1000, 0x1020, None).ok(), Some(0x5000));
    }

    #[test]
    fn signal_context_reads_mcontext() {
        let mut memory = TestMemory::new();
        let entry_sp = 0x9000;
        let uc = ucontext_address(entry_sp);
        assert_eq!(uc, 0x9080);
        memory.put_u64(uc + 184 + 29 * 8, 0x29);
        memory.put_u64(uc + 184 + 30 * 8, 0x7777);
        memory.put_u64(uc + 184 + 31 * 8, 0xc000_2000);
        memory.put_u64(uc + 184 + 32 * 8, 0x12_3454);
        let regs = signal_context(&memory, uc).expect("ucontext is mapped");
        assert_eq!(regs, Regs { pc: 0x12_3454, sp: 0xc000_2000, fp: 0x29, lr: Some(0x7777) });
    }
}
