//! Reading one `runtime.g` (a goroutine) and one `runtime.m` (an OS thread)
//! from memory with a [`RuntimeLayout`], and matching a core's threads to
//! their Ms.
//!
//! On amd64 the runtime keeps the current g in thread-local storage: at
//! `fs_base - 8` when the Go linker links internally, and at the offset of
//! the `runtime.tlsg` TLS symbol when a host linker links externally (cgo).
//! On arm64 Go code keeps g in register x28. Each candidate is checked: the
//! g's M must have `procid` equal to the thread's LWP id. When no candidate
//! passes (a thread inside C code, or TLS offsets unknown in a stripped
//! external link), the thread is matched by `procid` against the Ms of all
//! goroutines. The g found is often not a goroutine: a thread handling a
//! signal runs on its M's `gsignal`, and the scheduler runs on `g0`; the
//! goroutine the M was running is then `m.curg`.

use serde::Serialize;

use super::layout::RuntimeLayout;
use super::memory::{MemoryError, ReadMemory};
use super::waitreason::{GStatus, G_SCAN};
use crate::core::{Registers, Thread};
use crate::unwind::{Regs, StackBounds};

/// The fields of a `runtime.g` that describe a goroutine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GRecord {
    /// The g's address.
    pub address: u64,
    pub goid: u64,
    pub status: GStatus,
    /// `atomicstatus` as stored, scan bit included.
    pub raw_status: u32,
    /// Whether the garbage collector was scanning the stack (`_Gscan`).
    pub scan: bool,
    /// `waitreason`, an index into the release's wait reason names.
    pub wait_reason: u8,
    /// `waitsince`: the nanotime the GC first saw the goroutine blocked, or 0.
    pub waitsince: i64,
    /// `lockedm`: the M the goroutine is locked to (`runtime.LockOSThread`), or 0.
    pub lockedm: u64,
    pub stack: StackBounds,
    /// `sched`: the registers saved when the goroutine last stopped running.
    pub sched: Regs,
    /// The registers saved on syscall entry, when `syscallsp` is set.
    pub syscall: Option<Regs>,
    /// `stktopsp`: the sp the outermost frame must reach.
    pub stktopsp: u64,
    /// `startpc`: the goroutine's function.
    pub startpc: u64,
    /// `gopc`: the pc of the `go` statement that created it.
    pub gopc: u64,
    /// `parentGoid` (Go 1.21 on).
    pub parent_goid: Option<u64>,
    /// `m`: the M running the goroutine, or 0.
    pub m: u64,
    /// `_panic`: the innermost active panic record, or 0.
    pub panic: u64,
    /// `sig`, `sigcode0`, `sigcode1`, `sigpc`: the last signal that became a panic.
    pub sig: u32,
    pub sigcode0: u64,
    pub sigcode1: u64,
    pub sigpc: u64,
}

/// The fields of a `runtime.m` the walk needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MRecord {
    pub address: u64,
    pub id: i64,
    /// The kernel thread id (LWP) running this M.
    pub procid: u64,
    pub g0: u64,
    pub gsignal: u64,
    pub curg: u64,
    pub vdso_sp: u64,
    pub vdso_pc: u64,
    /// `throwing`: non-zero once the M has started a fatal error.
    pub throwing: u64,
    pub locks: u32,
    pub alllink: u64,
}

/// The maximum size of a struct that [`Prefetched`] takes at once: twice the
/// largest g of the built-in layouts (392 to 456 bytes).
const MAX_PREFETCH: usize = 1024;

/// A struct's bytes, taken in one read and placed in front of the memory
/// they came from, because reading a g field by field cost one lookup of
/// the core segment per field. Reads outside those bytes, and every read of
/// a struct the core cuts short, go to the memory, which names the first
/// address it lacks.
struct Prefetched<'a> {
    memory: &'a dyn ReadMemory,
    start: u64,
    bytes: StructBytes<'a>,
}

/// The bytes of a [`Prefetched`] struct.
enum StructBytes<'a> {
    /// Borrowed from the memory, which contains them in one run: the
    /// common case, which copies nothing.
    Borrowed(&'a [u8]),
    /// Copied from memory that contains them in pieces. Empty when the
    /// copy failed.
    Copied(Vec<u8>),
}

impl<'a> Prefetched<'a> {
    fn new(memory: &'a dyn ReadMemory, start: u64, size: u64) -> Prefetched<'a> {
        let len = usize::try_from(size).map_or(0, |size| size.min(MAX_PREFETCH));
        let bytes = match memory.run_at(start).and_then(|run| run.get(..len)) {
            Some(run) => StructBytes::Borrowed(run),
            None => {
                let mut bytes = vec![0u8; len];
                if memory.read(start, &mut bytes).is_err() {
                    bytes.clear();
                }
                StructBytes::Copied(bytes)
            }
        };
        Prefetched {
            memory,
            start,
            bytes,
        }
    }

    /// Returns the prefetched bytes at `addr`, if they contain all `len` of
    /// them.
    fn copied(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let from = usize::try_from(addr.checked_sub(self.start)?).ok()?;
        let bytes: &[u8] = match &self.bytes {
            StructBytes::Borrowed(run) => run,
            StructBytes::Copied(bytes) => bytes,
        };
        bytes.get(from..from.checked_add(len)?)
    }
}

impl ReadMemory for Prefetched<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        match self.copied(addr, buf.len()) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => self.memory.read(addr, buf),
        }
    }

    fn read_u64(&self, addr: u64) -> Result<u64, MemoryError> {
        match self.copied(addr, 8).and_then(<[u8]>::first_chunk::<8>) {
            Some(bytes) => Ok(u64::from_le_bytes(*bytes)),
            None => self.memory.read_u64(addr),
        }
    }
}

/// Reads the g at `address`.
pub fn read_g(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    address: u64,
) -> Result<GRecord, MemoryError> {
    let g = &layout.g;
    let memory = &Prefetched::new(memory, address, g.size);
    let word = |offset: u64| memory.read_u64(address.wrapping_add(offset));
    let raw_status = memory.read_u32(address.wrapping_add(g.atomicstatus))?;
    let syscallsp = word(g.syscallsp)?;
    let syscall = if syscallsp != 0 {
        let bp = match g.syscallbp {
            Some(offset) => word(offset)?,
            None => 0,
        };
        Some(Regs {
            pc: word(g.syscallpc)?,
            sp: syscallsp,
            fp: bp,
            lr: None,
        })
    } else {
        None
    };
    let lr = word(g.sched_lr)?;
    Ok(GRecord {
        address,
        goid: word(g.goid)?,
        status: GStatus::from_value(raw_status & !G_SCAN),
        raw_status,
        scan: raw_status & G_SCAN != 0,
        wait_reason: memory.read_u8(address.wrapping_add(g.waitreason))?,
        waitsince: word(g.waitsince)? as i64,
        lockedm: word(g.lockedm)?,
        stack: StackBounds {
            lo: word(g.stack_lo)?,
            hi: word(g.stack_hi)?,
        },
        sched: Regs {
            pc: word(g.sched_pc)?,
            sp: word(g.sched_sp)?,
            fp: word(g.sched_bp)?,
            lr: (lr != 0).then_some(lr),
        },
        syscall,
        stktopsp: word(g.stktopsp)?,
        startpc: word(g.startpc)?,
        gopc: word(g.gopc)?,
        parent_goid: match g.parent_goid {
            Some(offset) => Some(word(offset)?),
            None => None,
        },
        m: word(g.m)?,
        panic: word(g.panic)?,
        sig: memory.read_u32(address.wrapping_add(g.sig))?,
        sigcode0: word(g.sigcode0)?,
        sigcode1: word(g.sigcode1)?,
        sigpc: word(g.sigpc)?,
    })
}

/// Reads the m at `address`.
pub fn read_m(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    address: u64,
) -> Result<MRecord, MemoryError> {
    let m = &layout.m;
    let word = |offset: u64| memory.read_u64(address.wrapping_add(offset));
    Ok(MRecord {
        address,
        id: word(m.id)? as i64,
        procid: word(m.procid)?,
        g0: word(m.g0)?,
        gsignal: word(m.gsignal)?,
        curg: word(m.curg)?,
        vdso_sp: word(m.vdso_sp)?,
        vdso_pc: word(m.vdso_pc)?,
        throwing: memory.read_uint(address.wrapping_add(m.throwing.offset), m.throwing.size)?,
        locks: memory.read_u32(address.wrapping_add(m.locks))?,
        alllink: word(m.alllink)?,
    })
}

/// The most bytes a goroutine stack may span: the runtime's default
/// maximum (`debug.SetMaxStack`) is 1 GB on 64-bit targets.
pub const MAX_STACK_SIZE: u64 = 1 << 30;

#[cfg(test)]
impl GRecord {
    /// Returns a record of goroutine 7 at 0xc000_0000, idle, with every
    /// other field zero, for tests to fill in.
    pub(crate) fn for_test() -> GRecord {
        GRecord {
            address: 0xc000_0000,
            goid: 7,
            status: GStatus::Idle,
            raw_status: 0,
            scan: false,
            wait_reason: 0,
            waitsince: 0,
            lockedm: 0,
            stack: StackBounds { lo: 0, hi: 0 },
            sched: Regs {
                pc: 0,
                sp: 0,
                fp: 0,
                lr: None,
            },
            syscall: None,
            stktopsp: 0,
            startpc: 0,
            gopc: 0,
            parent_goid: None,
            m: 0,
            panic: 0,
            sig: 0,
            sigcode0: 0,
            sigcode1: 0,
            sigpc: 0,
        }
    }
}

impl GRecord {
    /// Whether the record looks like a real g rather than unrelated bytes:
    /// a known status, and for a live goroutine, sane stack bounds.
    pub fn is_plausible(&self) -> bool {
        if matches!(self.status, GStatus::Unknown(_)) {
            return false;
        }
        if self.status == GStatus::Dead {
            return true;
        }
        self.stack.lo < self.stack.hi && self.stack.hi - self.stack.lo <= MAX_STACK_SIZE
    }
}

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
            check(
                memory.read_u64(slot).ok()?,
                ThreadMapping::ThreadLocalStorage,
            )
        }),
        Registers::Arm64(regs) => check(regs.x[28], ThreadMapping::GRegister),
    }
}

/// Finds the M whose `procid` is the thread's id among `ms`.
pub fn thread_m_by_procid(thread: &Thread, ms: &[MRecord]) -> Option<ThreadM> {
    let tid = u64::from(thread.id.0);
    let m = ms.iter().find(|m| m.procid == tid)?;
    let g = if m.curg != 0 { m.curg } else { m.g0 };
    Some(ThreadM {
        g,
        m: m.clone(),
        mapping: ThreadMapping::Procid,
    })
}
