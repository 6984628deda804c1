//! The per-architecture frame rules: where a return address sits, how a
//! frame's top follows from the pcsp delta, and where the kernel saves the
//! interrupted registers of a signal.

pub mod amd64 {
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

    use super::super::Regs;
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
        Ok(Regs {
            pc: greg(GREG_RIP)?,
            sp: greg(GREG_RSP)?,
            fp: greg(GREG_RBP)?,
            lr: None,
        })
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
            assert_eq!(
                regs,
                Regs {
                    pc: 0x45_1234,
                    sp: 0xc000_1000,
                    fp: 0xb0,
                    lr: None
                }
            );
        }
    }
}

pub mod arm64 {
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

    use super::super::Regs;
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
    pub fn return_address(
        memory: &dyn ReadMemory,
        sp: u64,
        fp: u64,
        lr: Option<u64>,
    ) -> Result<u64, MemoryError> {
        match lr {
            Some(lr) if sp >= fp => Ok(lr),
            _ => memory.read_u64(sp),
        }
    }

    /// Reads the interrupted registers from the ucontext at `ucontext`.
    pub fn signal_context(memory: &dyn ReadMemory, ucontext: u64) -> Result<Regs, MemoryError> {
        let reg = |index: u64| memory.read_u64(ucontext.wrapping_add(UC_REGS + index * 8));
        Ok(Regs {
            pc: reg(REG_PC)?,
            sp: reg(REG_SP)?,
            fp: reg(REG_FP)?,
            lr: Some(reg(REG_LR)?),
        })
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
            assert_eq!(
                return_address(&memory, 0x1000, 0x1000, Some(0x4000)).ok(),
                Some(0x4000)
            );
        }

        #[test]
        fn allocated_frame_reads_saved_lr() {
            let mut memory = TestMemory::new();
            memory.put_u64(0x1000, 0x5000);
            assert_eq!(
                return_address(&memory, 0x1000, 0x1020, Some(0x4000)).ok(),
                Some(0x5000)
            );
            assert_eq!(
                return_address(&memory, 0x1000, 0x1020, None).ok(),
                Some(0x5000)
            );
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
            assert_eq!(
                regs,
                Regs {
                    pc: 0x12_3454,
                    sp: 0xc000_2000,
                    fp: 0x29,
                    lr: Some(0x7777)
                }
            );
        }
    }
}

pub mod sigtramp {
    //! Signal frames: the registers a signal interrupted, read from the
    //! ucontext the kernel saved on the signal stack.
    //!
    //! Debuggers find the ucontext through DWARF locations of `sigtrampgo`'s
    //! `ctx` argument. Stripped binaries have no DWARF, so this uses the
    //! kernel's signal frame layout instead, relative to the top of the
    //! `runtime.sigtramp` frame computed from its pcsp table: on amd64 the
    //! ucontext follows the restorer address the kernel put at the handler's
    //! entry sp ([`super::amd64`]); on arm64 it follows the 128-byte siginfo at
    //! the entry sp ([`super::arm64`]). The runtime's handler does not move
    //! either: `sigtramp` only reserves its own frame below them.

    use super::super::Regs;
    use super::{amd64, arm64};
    use crate::core::Arch;
    use crate::runtime::memory::{MemoryError, ReadMemory};

    /// Reads the interrupted registers of the signal whose handler frame
    /// (`runtime.sigtramp`) has top `sigtramp_fp`.
    pub fn interrupted_registers(
        arch: Arch,
        memory: &dyn ReadMemory,
        sigtramp_fp: u64,
    ) -> Result<Regs, MemoryError> {
        let ucontext = ucontext_address(arch, sigtramp_fp);
        match arch {
            Arch::Amd64 => amd64::signal_context(memory, ucontext),
            Arch::Arm64 => arm64::signal_context(memory, ucontext),
        }
    }

    /// The address of the ucontext for the handler frame with top `sigtramp_fp`.
    pub fn ucontext_address(arch: Arch, sigtramp_fp: u64) -> u64 {
        match arch {
            Arch::Amd64 => amd64::ucontext_address(sigtramp_fp),
            Arch::Arm64 => arm64::ucontext_address(sigtramp_fp),
        }
    }
}
