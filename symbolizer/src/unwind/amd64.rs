//! amd64 frame rules: the CALL instruction pushes the return address, so a
//! Go frame's top (`fp`) is its sp plus the pcsp delta plus 8, and the
//! return address sits at `fp - 8`.
//!
//! Signal frames: Go installs `runtime.sigtramp` (or `runtime.cgoSigtramp`)
//! with `SA_RESTORER`, so the kernel builds an `rt_sigframe` on the signal
//! stack whose first word is the restorer's address, followed by the
//! `ucontext`. At handler entry sp points at that first word, so once
//! sigtramp's frame is unwound with its pcsp delta, the "return address" at
//! `fp - 8` is the restorer and the ucontext starts at `fp` (Linux
//! `arch/x86/include/asm/sigframe.h`, `struct rt_sigframe`).

use super::Regs;
use crate::runtime::memory::{MemoryError, ReadMemory};

/// Size of a return address pushed by CALL.
pub const RETURN_ADDRESS_SIZE: u64 = 8;

/// Offset of `uc_mcontext` in the kernel's `struct ucontext`: `uc_flags`,
/// `uc_link` and the 24-byte `stack_t` come first.
const UC_MCONTEXT: u64 = 40;
/// Indexes of registers in `mcontext.gregs` (`REG_RBP` and friends in
/// glibc's `sys/ucontext.h`).
const GREG_RBP: u64 = 10;
const GREG_RSP: u64 = 15;
const GREG_RIP: u64 = 16;

/// The frame's top for a pcsp delta.
pub fn frame_top(sp: u64, sp_delta: u64) -> Option<u64> {
    sp.checked_add(sp_delta)?.checked_add(RETURN_ADDRESS_SIZE)
}

/// Reads the return address of a frame whose top is `fp`.
pub fn return_address(memory: &dyn ReadMemory, fp: u64) -> Result<u64, MemoryError> {
    memory.read_u64(fp.wrapping_sub(RETURN_ADDRESS_SIZE))
}

/// Reads the interrupted registers from the ucontext at `ucontext`.
pub fn signal_context(memory: &dyn ReadMemory, ucontext: u64) -> Result<Regs, MemoryError> {
    let greg = |index: u64| memory.read_u64(ucontext.wrapping_add(UC_MCONTEXT + index * 8));
    Ok(Regs { pc: greg(GREG_RIP)?, sp: greg(GREG_RSP)?, fp: greg(GREG_RBP)?, lr: None })
}

/// The ucontext of the signal frame whose handler (sigtramp) frame has top `fp`.
pub fn ucontext_address(sigtramp_fp: u64) -> u64 {
    sigtramp_fp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::memory::TestMemory;

    #[test]
    fn frame_top_adds_return_address() {
        assert_eq!(frame_top(0x1000, 0x20), Some(0x1028));
        assert_eq!(frame_top(u64::MAX, 8), None);
    }

    #[test]
    fn signal_context_reads_gregs() {
        let mut memory = TestMemory::new();
        let uc = 0x7000;
        memory.put_u64(uc + 40 + 10 * 8, 0xb0);
        memory.put_u64(uc + 40 + 15 * 8, 0xc000_1000);
        memory.put_u64(uc + 40 + 16 * 8, 0x45_1234);
        let regs = signal_context(&memory, uc).expect("ucontext is mapped");
        assert_eq!(regs, Regs { pc: 0x45_1234, sp: 0xc000_1000, fp: 0xb0, lr: None });
    }
}
