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

use super::{amd64, arm64, Regs};
use crate::core::Arch;
use crate::runtime::memory::{MemoryError, ReadMemory};

/// Reads the interrupted registers of the signal whose handler frame
/// (`runtime.sigtramp`) has top `sigtramp_fp`.
pub fn interrupted_registers(arch: Arch, memory: &dyn ReadMemory, sigtramp_fp: u64) -> Result<Regs, MemoryError> {
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
