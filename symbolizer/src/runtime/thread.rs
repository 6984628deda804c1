//! Which M, and so which goroutine, each thread of a core was running.
//!
//! On amd64 the runtime keeps the current g in thread-local storage: at
//! `fs_base - 8` when the Go linker links internally, and at the offset of
//! the `runtime.tlsg` TLS symbol when a host linker links externally (cgo).
//! On arm64 Go code keeps g in register x28. Each candidate is checked: the
//! g's M must have `procid` equal to the thread's LWP id. When no candidate
//! passes (a thread inside C code, or TLS offsets unknown in a stripped
//! external link), the thread is matched by `procid` against the Ms of all
//! goroutines.
//!
//! The g found is often not a goroutine: a thread handling a signal runs
//! on its M's `gsignal`, and the scheduler runs on `g0`; the goroutine the
//! M was running is then `m.curg`.

use serde::Serialize;

use super::goroutine::{read_g, read_m, MRecord};
use super::layout::RuntimeLayout;
use super::memory::ReadMemory;
use crate::core::{Registers, Thread};

/// How a thread was matched to its M.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadMapping {
    /// The g pointer in thread-local storage.
    ThreadLocalStorage,
    /// The g register (x28 on arm64).
    GRegister,
    /// An M whose `procid` is the thread's id.
    Procid,
}

/// A thread matched to its M.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ThreadM {
    /// The g the thread was running (may be `g0` or `gsignal`).
    pub g: u64,
    pub m: MRecord,
    pub mapping: ThreadMapping,
}

/// Where the g pointer sits relative to `fs_base` on amd64.
#[derive(Clone, Copy, Debug)]
pub struct TlsOffset(pub i64);

/// The Go linker's offset when it links internally (`runtime.tlsg` at -8).
pub const INTERNAL_LINK_TLS_OFFSET: TlsOffset = TlsOffset(-8);

/// Finds the M of `thread` from its registers, checking `procid`.
pub fn thread_m_from_registers(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    thread: &Thread,
    tls_offsets: &[TlsOffset],
) -> Option<ThreadM> {
    let tid = u64::from(thread.id.0);
    let check = |g: u64, mapping: ThreadMapping| -> Option<ThreadM> {
        if g == 0 {
            return None;
        }
        let record = read_g(memory, layout, g).ok()?;
        let m = read_m(memory, layout, record.m).ok()?;
        (m.procid == tid).then_some(ThreadM { g, m, mapping })
    };
    match &thread.registers {
        Registers::Amd64(regs) => tls_offsets.iter().find_map(|offset| {
            let slot = regs.fs_base.checked_add_signed(offset.0)?;
            check(memory.read_u64(slot).ok()?, ThreadMapping::ThreadLocalStorage)
        }),
        Registers::Arm64(regs) => check(regs.x[28], ThreadMapping::GRegister),
    }
}

/// Finds the M whose `procid` is the thread's id among `ms`.
pub fn thread_m_by_procid(thread: &Thread, ms: &[MRecord]) -> Option<ThreadM> {
    let tid = u64::from(thread.id.0);
    let m = ms.iter().find(|m| m.procid == tid)?;
    let g = if m.curg != 0 { m.curg } else { m.g0 };
    Some(ThreadM { g, m: m.clone(), mapping: ThreadMapping::Procid })
}
