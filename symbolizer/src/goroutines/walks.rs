//! The walks of a process: every thread from its registers, and every
//! goroutine from where the runtime's own traceback starts it (its
//! thread's registers while it runs, else its saved registers).
//!
//! All walks of one process share a budget of steps and of kept frames, so
//! that a corrupt core listing millions of goroutines over one deep stack
//! still ends, in bounded memory. Goroutines are built in blocks of a fixed
//! size, each with its own function table, unwind caches and share of the
//! budget, and the blocks are spread over threads. The output therefore
//! does not depend on the number of CPUs.

use std::borrow::Cow;
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex, PoisonError};

use super::{CreatedBy, Goroutine, MSummary, ThreadState};
use crate::core::{Arch, Registers, Thread};
use crate::hashing::{FastMap, FastSet};
use crate::runtime::crash;
use crate::runtime::goroutine::{read_g, read_m, GRecord, MRecord, ThreadM};
use crate::runtime::layout::RuntimeLayout;
use crate::runtime::memory::{prefetch, ReadMemory, RunCache};
use crate::runtime::thread::{thread_m_by_procid, thread_m_from_registers, TlsOffset};
use crate::runtime::waitreason::{GStatus, WaitReasons};
use crate::threads::spawn_or_return;
use crate::unwind::cfi::{CallFrameInfo, EhFrameModules};
use crate::unwind::pclntab_funcs::PclntabFuncs;
use crate::unwind::{
    walk_with_cfi, FrameSource, FuncTable, Regs, StackBounds, StackContext, Start, StopReason,
    Walk, MAX_FRAMES, MAX_WALK_STEPS,
};

/// The maximum number of frames all walks of one process step through
/// together: room for a million goroutines of 64 frames each.
pub const MAX_PROCESS_WALK_STEPS: usize = 1 << 26;

/// The maximum number of frames all walks of one process keep together,
/// 336 MB of 80-byte frames. That is room for 400,000 goroutines of 10
/// frames, or for 400 stacks as deep as [`MAX_FRAMES`].
pub const MAX_PROCESS_FRAMES: usize = 1 << 22;

/// The steps and kept frames left to a set of walks, and whether it ran out.
pub(super) struct Budget {
    steps: Cell<usize>,
    frames: Cell<usize>,
    cut: Cell<bool>,
}

impl Budget {
    pub fn new(steps: usize, frames: usize) -> Budget {
        Budget {
            steps: Cell::new(steps),
            frames: Cell::new(frames),
            cut: Cell::new(false),
        }
    }

    /// Returns a share of this budget: of its steps by `share.steps` and of
    /// its kept frames by `share.frames`, each a `(part, total)`.
    pub(super) fn share_by(&self, share: Share) -> Budget {
        let portion = |left: usize, (part, total): (usize, usize)| {
            let scaled = u128::from(left as u64) * part as u128 / total.max(1) as u128;
            usize::try_from(scaled).unwrap_or(left)
        };
        Budget::new(
            portion(self.steps.get(), share.steps),
            portion(self.frames.get(), share.frames),
        )
    }

    /// Reports whether a walk stopped early or dropped frames because the
    /// budget ran out.
    pub fn cut(&self) -> bool {
        self.cut.get()
    }
}

/// The parts of a [`Budget`] a group of walks gets, each a `(part, total)`.
/// Steps go by the frames the group's stacks can hold, so that a deep
/// stack can be walked to its end. Kept frames go by the number of walks,
/// because each walk keeps at most [`MAX_FRAMES`] however deep its stack.
#[derive(Clone, Copy, Debug)]
pub(super) struct Share {
    pub steps: (usize, usize),
    pub frames: (usize, usize),
}

/// The inputs every walk of one process reads, and its budget.
pub(super) struct Walker<'a> {
    pub arch: Arch,
    pub memory: &'a dyn ReadMemory,
    pub funcs: &'a dyn FuncTable,
    pub layout: &'a RuntimeLayout,
    /// Whether the release treats `asyncPreempt` as an injected call
    /// ([`StackContext::all_injected_calls`]).
    pub all_injected_calls: bool,
    /// The `.eh_frame` tables of the core's modules, for C frames.
    pub cfi: Option<&'a dyn CallFrameInfo>,
    pub budget: &'a Budget,
}

impl Walker<'_> {
    /// Walks from `start`, charging the steps and the frames kept to the
    /// budget.
    fn walk(&self, start: Start, mut context: StackContext) -> Walk {
        let budget = self.budget;
        context.all_injected_calls = self.all_injected_calls;
        context.max_steps = budget.steps.get().min(MAX_WALK_STEPS);
        context.max_frames = budget.frames.get().min(MAX_FRAMES);
        let walk = walk_with_cfi(
            self.arch,
            self.memory,
            self.funcs,
            self.cfi,
            start,
            &context,
        );
        let steps_cut = matches!(walk.stop, StopReason::DepthLimit { .. })
            && context.max_steps < MAX_WALK_STEPS;
        let frames_cut = walk.elided.is_some() && context.max_frames < MAX_FRAMES;
        if steps_cut || frames_cut {
            budget.cut.set(true);
        }
        let used = usize::try_from(walk.steps()).unwrap_or(usize::MAX);
        budget.steps.set(budget.steps.get().saturating_sub(used));
        budget
            .frames
            .set(budget.frames.get().saturating_sub(walk.frames.len()));
        walk
    }
}

/// A thread's claim on the budget, in frames. An M's system stack is one of
/// Go's 16 KiB stacks or the 8 MiB stack of a thread the C library started,
/// and walks cross few frames of either.
pub(super) const THREAD_WEIGHT: usize = 1 << 12;

/// The smallest frame of a Go stack, in bytes: a return address and a
/// saved frame pointer.
const MIN_FRAME_BYTES: u64 = 16;

/// Weighs a goroutine's claim on the budget: the frames its stack can hold
/// at most, from 1 (an unreadable goroutine) to [`MAX_WALK_STEPS`].
pub(super) fn stack_weight(record: &Result<GRecord, String>) -> usize {
    let Ok(record) = record else {
        return 1;
    };
    let frames = record.stack.hi.saturating_sub(record.stack.lo) / MIN_FRAME_BYTES;
    usize::try_from(frames)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_WALK_STEPS)
}

/// The Ms of all goroutines, read once.
pub(super) fn collect_ms(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    records: &[Result<GRecord, String>],
) -> Vec<MRecord> {
    let mut seen = FastMap::default();
    for record in records.iter().flatten() {
        if record.m != 0 && !seen.contains_key(&record.m) {
            if let Ok(m) = read_m(memory, layout, record.m) {
                seen.insert(record.m, m);
            }
        }
    }
    let mut ms: Vec<MRecord> = seen.into_values().collect();
    ms.sort_by_key(|m| m.id);
    ms
}

/// Most Ms followed through `runtime.allm`, a bound on a damaged list.
const MAX_MS: usize = 100_000;

/// Names each M whose thread has no register note in the core: first those
/// running a goroutine, then the others `runtime.allm` lists, when its
/// address is known. The kernel writes a note for every thread of the
/// process, and the runtime takes an M off `allm` before its thread exits,
/// so a missing note means damaged notes. Idle extra Ms of cgo callbacks
/// are left out.
pub(super) fn ms_without_threads(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    allm: Option<u64>,
    records: &[Result<GRecord, String>],
    ms: &[MRecord],
    threads: &[Thread],
) -> Vec<String> {
    let thread_ids: FastSet<u64> = threads.iter().map(|t| u64::from(t.id.0)).collect();
    let has_no_note = |m: &MRecord| m.procid != 0 && !thread_ids.contains(&m.procid);
    let mut reported = FastSet::default();
    let mut missing = Vec::new();
    for record in records.iter().flatten() {
        if !matches!(record.status, GStatus::Running | GStatus::Syscall) || record.m == 0 {
            continue;
        }
        let Some(m) = ms.iter().find(|m| m.address == record.m) else {
            continue;
        };
        if has_no_note(m) && reported.insert(m.address) {
            missing.push(format!(
                "goroutine {} runs on M{}, whose thread {} has no NT_PRSTATUS note in the core, \
                 so that thread's registers and its walk are missing",
                record.goid, m.id, m.procid
            ));
        }
    }

    let Some(allm) = allm else {
        return missing;
    };
    let mut seen = FastSet::default();
    let mut address = memory.read_u64(allm).unwrap_or(0);
    while address != 0 && seen.len() < MAX_MS && seen.insert(address) {
        let Ok(m) = read_m(memory, layout, address) else {
            missing.push(format!(
                "the M at {address:#x} in runtime.allm cannot be read, so the list of Ms is cut there"
            ));
            break;
        };
        // Before Go 1.22, an M that ran a cgo callback on a C thread keeps
        // that thread's id after `dropm`, and the thread may have exited
        // since. Such an extra M's curg is a dead g.
        let idle_extra = || {
            records.iter().flatten().any(|g| {
                g.address == m.curg && matches!(g.status, GStatus::Dead | GStatus::DeadExtra)
            })
        };
        if has_no_note(&m) && !reported.contains(&address) && !idle_extra() {
            missing.push(format!(
                "M{} names thread {}, which has no NT_PRSTATUS note in the core, so that \
                 thread's registers and its walk are missing",
                m.id, m.procid
            ));
        }
        address = m.alllink;
    }
    missing
}

fn thread_regs(thread: &Thread) -> Regs {
    match &thread.registers {
        Registers::Amd64(r) => Regs {
            pc: r.rip,
            sp: r.rsp,
            fp: r.rbp,
            lr: None,
        },
        Registers::Arm64(r) => Regs {
            pc: r.pc,
            sp: r.sp,
            fp: r.fp(),
            lr: Some(r.lr()),
        },
    }
}

/// The stacks an M's thread can be on, and its goroutine's saved registers.
pub(super) fn m_context(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    m: &MRecord,
) -> StackContext {
    let bounds = |g: u64| -> Option<StackBounds> {
        (g != 0).then_some(())?;
        read_g(memory, layout, g).ok().map(|r| r.stack)
    };
    let curg = (m.curg != 0)
        .then(|| read_g(memory, layout, m.curg).ok())
        .flatten();
    StackContext {
        goroutine: curg.as_ref().map(|g| g.stack),
        system: bounds(m.g0),
        signal: bounds(m.gsignal),
        curg_sched: curg.as_ref().map(|g| g.sched),
        curg_sched_sp: curg.as_ref().map(|g| g.sched.sp),
        ..StackContext::default()
    }
}

/// A thread matched to its M, before its stack is walked.
pub(super) struct FoundThread {
    id: u32,
    regs: Regs,
    found: Option<ThreadM>,
    /// The stacks the thread can be on, from its M.
    context: StackContext,
}

impl FoundThread {
    pub(super) fn id(&self) -> u32 {
        self.id
    }

    /// Returns the goroutine the thread's M was running (`m.curg`).
    pub(super) fn goroutine(&self) -> Option<u64> {
        self.found
            .as_ref()
            .and_then(|f| (f.m.curg != 0).then_some(f.m.curg))
    }
}

/// Matches each thread to its M, without walking its stack. The stacks of
/// threads often lie at the end of a core, so the goroutines, whose stacks
/// come earlier, are walked first while a core still decompresses.
pub(super) fn find_threads(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    threads: &[Thread],
    ms: &[MRecord],
    tls_offsets: &[TlsOffset],
) -> Vec<FoundThread> {
    threads
        .iter()
        .map(|thread| {
            let found = thread_m_from_registers(memory, layout, thread, tls_offsets)
                .or_else(|| thread_m_by_procid(thread, ms));
            let context = found
                .as_ref()
                .map(|f| m_context(memory, layout, &f.m))
                .unwrap_or_default();
            FoundThread {
                id: thread.id.0,
                regs: thread_regs(thread),
                found,
                context,
            }
        })
        .collect()
}

/// Walks each thread found from its registers.
pub(super) fn walk_threads(walker: &Walker<'_>, found: Vec<FoundThread>) -> Vec<ThreadState> {
    found
        .into_iter()
        .map(|thread| {
            let start = Start {
                regs: thread.regs,
                found_by: FrameSource::ThreadRegisters,
                trapped: true,
            };
            let goroutine = thread.goroutine();
            let walk = walker.walk(start, thread.context);
            ThreadState {
                id: thread.id,
                regs: thread.regs,
                m: thread.found.as_ref().map(|f| MSummary {
                    id: f.m.id,
                    address: f.m.address,
                }),
                mapping: thread.found.as_ref().map(|f| f.mapping),
                g: thread.found.as_ref().map(|f| f.g),
                goroutine,
                walk,
            }
        })
        .collect()
}

/// Gives each goroutine running on a thread that thread's walk, which
/// [`build_goroutines`] left out.
pub(super) fn attach_thread_walks(goroutines: &mut [Goroutine], threads: &[ThreadState]) {
    for goroutine in goroutines {
        if !goroutine.record.as_ref().is_some_and(takes_thread_walk) {
            continue;
        }
        let address = goroutine.address;
        if let Some(thread) = threads.iter().find(|t| t.goroutine == Some(address)) {
            goroutine.printed_from = crash::printed_from(&thread.walk);
            goroutine.walk = Some(thread.walk.clone());
        }
    }
}

/// Reports whether a goroutine on a thread is printed from the thread's
/// walk: when it is running and its g looks like one. A goroutine in a
/// syscall keeps its M, but the runtime prints it from the registers saved
/// on syscall entry, as for any goroutine not running.
fn takes_thread_walk(record: &GRecord) -> bool {
    record.status == GStatus::Running && record.is_plausible()
}

/// Returns the goroutine of a g that could not be read: only its address
/// and why.
pub(super) fn unreadable_goroutine(address: u64, error: String) -> Goroutine {
    Goroutine {
        goid: None,
        address,
        record: None,
        status_text: Arc::from("???"),
        wait_reason: None,
        wait_minutes: None,
        locked_to_thread: false,
        m: None,
        thread: None,
        start_function: None,
        created_by: None,
        walk: None,
        printed_from: 0,
        error: Some(error),
    }
}

/// Builds one goroutine from its g, walking its stack unless it is dead or
/// its g does not look like one.
fn build_goroutine(
    walker: &Walker<'_>,
    shared: &Shared<'_>,
    address: u64,
    record: Result<GRecord, String>,
) -> Goroutine {
    let Shared {
        wait_reasons,
        ms,
        threads,
        ..
    } = *shared;
    let record = match record {
        Ok(record) => record,
        Err(error) => {
            return unreadable_goroutine(
                address,
                format!("cannot read the g at {address:#x}: {error}"),
            )
        }
    };
    let wait_reason =
        (record.status == GStatus::Waiting && record.wait_reason != 0).then(
            || match wait_reasons {
                Some(reasons) => reasons.shared_name(record.wait_reason),
                None => Arc::from(format!("wait reason {}", record.wait_reason)),
            },
        );
    let status_text = wait_reason
        .clone()
        .unwrap_or_else(|| Arc::from(record.status.name()));
    let m = ms.iter().find(|m| m.address == record.m && record.m != 0);
    let thread = threads.iter().find(|t| t.goroutine() == Some(address));
    let implausible = !record.is_plausible();
    let walk = if record.status == GStatus::Dead || implausible {
        None
    } else if thread.is_some() && takes_thread_walk(&record) {
        // The thread's walk is attached once the threads are walked.
        None
    } else {
        let (start, context) = parked_start(walker.memory, walker.layout, &record, m);
        Some(walker.walk(start, context))
    };
    let error = implausible.then(|| {
        format!(
            "the g at {address:#x} does not look like a goroutine (status {:#x}, stack [{:#x}, {:#x})), so its stack is not walked",
            record.raw_status, record.stack.lo, record.stack.hi
        )
    });
    let start_function = walker.funcs.func(record.startpc).map(|f| f.name);
    let created_by = created_by(walker.arch, walker.funcs, &record);
    Goroutine {
        goid: Some(record.goid),
        address,
        status_text,
        wait_reason,
        wait_minutes: None,
        locked_to_thread: record.lockedm != 0,
        m: m.map(|m| MSummary {
            id: m.id,
            address: m.address,
        }),
        thread: thread.map(|t| t.id),
        start_function,
        created_by,
        walk,
        printed_from: 0,
        error,
        record: Some(record),
    }
}

/// The number of goroutines built with one set of function tables and one
/// share of the budget. Blocks, not threads, divide the work, so the
/// output does not depend on how many CPUs the machine has. Threads take
/// the next block when they finish one, so small blocks keep them equally
/// busy, and a block is still enough work to fill its tables' caches.
const BLOCK_GOROUTINES: usize = 512;

/// How many goroutines ahead of the one being built the stack is
/// prefetched: eight was the fastest of 2, 4, 8 and 16 on the corpus's
/// 10,000-goroutine core.
const PREFETCH_AHEAD: usize = 8;

/// The bytes prefetched from a stack's top. The six frames of a parked
/// goroutine of that core span 280 bytes.
const PREFETCH_STACK_BYTES: u64 = 384;

/// Prefetches the top of the stack the goroutine of `record` is parked on.
/// A saved sp outside the stack's bounds, which the walk does not follow,
/// is not prefetched either: finding its bytes could wait for the
/// decompression of a far part of the core.
fn prefetch_stack_top(memory: &dyn ReadMemory, record: &GRecord) {
    let sp = record.sched.sp;
    if !record.stack.contains(sp) {
        return;
    }
    let len = PREFETCH_STACK_BYTES.min(record.stack.hi.saturating_sub(sp));
    prefetch(memory, sp, len as usize);
}

/// The maximum number of threads that build goroutines at once.
const MAX_WALK_THREADS: usize = 8;

/// The data the goroutine-building threads share.
pub(super) struct Shared<'a> {
    pub arch: Arch,
    pub memory: &'a (dyn ReadMemory + Sync),
    pub layout: &'a RuntimeLayout,
    pub all_injected_calls: bool,
    pub wait_reasons: Option<&'a WaitReasons>,
    pub ms: &'a [MRecord],
    pub threads: &'a [FoundThread],
}

/// A block of the goroutine list: the gs' addresses, the results of
/// reading them, the places of their goroutines in the output, and the
/// block's share of the budget.
type Block<'b> = (
    &'b [u64],
    &'b mut [Result<GRecord, String>],
    &'b mut [MaybeUninit<Goroutine>],
    Budget,
);

/// The outcome of building one block, besides its goroutines: the damage
/// its function table saw, whether its budget ran out, and how many
/// goroutines it wrote.
type Built = (Option<(String, usize)>, bool, usize);

/// Builds the goroutine of every g in `gs`, whose reading gave `records`,
/// in order, within `budget`.
///
/// The list is cut into blocks of [`BLOCK_GOROUTINES`], each with its own
/// function and unwind tables from `make_tables` and its share of the
/// budget, and threads take the blocks in turn when there are several. The
/// damage each function table saw is handed to `damaged`, in block order.
/// Returns the goroutines and whether a block's budget ran out.
pub(super) fn build_goroutines<'a, F>(
    shared: &Shared<'_>,
    budget: &Budget,
    gs: &[u64],
    mut records: Vec<Result<GRecord, String>>,
    make_tables: F,
    damaged: &dyn Fn(Option<(String, usize)>),
) -> (Vec<Goroutine>, bool)
where
    F: Fn() -> (PclntabFuncs<'a>, EhFrameModules) + Sync,
{
    let total = gs.len().min(records.len());
    // Blocks share the budget by the frames their stacks can hold, so that
    // one deep stack (a recursion that filled a 1 GB stack) can be walked
    // to its end beside thousands of small ones.
    let weights: Vec<usize> = records
        .chunks(BLOCK_GOROUTINES)
        .map(|block| {
            block
                .iter()
                .map(stack_weight)
                .fold(0, usize::saturating_add)
        })
        .collect();
    let total_weight = weights.iter().copied().fold(0, usize::saturating_add);
    // Each goroutine is written into its place in the output, whose pages
    // the walking threads touch first: filling or copying 10,000
    // goroutines of 568 bytes on this thread took 3 ms.
    let mut goroutines: Vec<Goroutine> = Vec::with_capacity(total);
    let blocks: Vec<(usize, Block<'_>)> = gs
        .get(..total)
        .unwrap_or(&[])
        .chunks(BLOCK_GOROUTINES)
        .zip(records.chunks_mut(BLOCK_GOROUTINES))
        .zip(goroutines.spare_capacity_mut().chunks_mut(BLOCK_GOROUTINES))
        .zip(&weights)
        .map(|(((addresses, block_records), out), &weight)| {
            let share = budget.share_by(Share {
                steps: (weight, total_weight),
                frames: (addresses.len(), total),
            });
            (addresses, block_records, out, share)
        })
        .enumerate()
        .collect();
    let block_count = blocks.len();
    let queue = Mutex::new(blocks.into_iter());
    let build_block = |(addresses, block_records, out, budget): Block<'_>| -> Built {
        let (funcs, cfi) = make_tables();
        let reads = RunCache::new(shared.memory);
        let walker = Walker {
            arch: shared.arch,
            memory: &reads,
            funcs: &funcs,
            layout: shared.layout,
            all_injected_calls: shared.all_injected_calls,
            cfi: Some(&cfi),
            budget: &budget,
        };
        let mut built = 0;
        let count = addresses.len().min(block_records.len()).min(out.len());
        for index in 0..count {
            if let Some(Ok(ahead)) = block_records.get(index + PREFETCH_AHEAD) {
                prefetch_stack_top(&reads, ahead);
            }
            let (Some(&address), Some(record), Some(place)) = (
                addresses.get(index),
                block_records.get_mut(index),
                out.get_mut(index),
            ) else {
                break;
            };
            // The record moves into the goroutine. The empty error left
            // behind allocates nothing.
            let record = std::mem::replace(record, Err(String::new()));
            place.write(build_goroutine(&walker, shared, address, record));
            built += 1;
        }
        (funcs.damage(), budget.cut(), built)
    };
    // Takes blocks until none is left, holding the lock only to take one.
    let work = |()| -> Vec<(usize, Built)> {
        let mut built = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            match next {
                Some((index, block)) => built.push((index, build_block(block))),
                None => return built,
            }
        }
    };
    let helpers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WALK_THREADS)
        .min(block_count)
        .saturating_sub(1);

    let mut results: Vec<(usize, Built)> = Vec::with_capacity(block_count);
    std::thread::scope(|scope| {
        let started: Vec<_> = (0..helpers)
            .filter_map(|_| spawn_or_return(scope, "gocrash-walk", (), work).ok())
            .collect();
        results.extend(work(()));
        for handle in started {
            match handle.join() {
                Ok(built) => results.extend(built.unwrap_or_default()),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });

    results.sort_unstable_by_key(|(index, _)| *index);
    let mut cut = false;
    let mut built = 0;
    for (_, (damage, block_cut, block_built)) in results {
        damaged(damage);
        cut |= block_cut;
        built += block_built;
    }
    // Every block was built whole, or a panic went on above.
    if built == total {
        // SAFETY: each of the first `total` places of the spare capacity
        // was written once by the block it belongs to, as the count of
        // places written shows.
        unsafe { goroutines.set_len(total) };
    } else {
        tracing::error!(target: "symbolizer::goroutines", built, total, "goroutine blocks left places unwritten; their goroutines are dropped");
    }
    (goroutines, cut)
}

/// Where a goroutine not running on any thread resumes: in a VDSO call
/// (`m.vdsoSP`), in a syscall (`syscallsp`), or at its saved `sched`, in
/// that order, as the runtime's traceback chooses.
fn parked_start(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    g: &GRecord,
    m: Option<&MRecord>,
) -> (Start, StackContext) {
    let mut context = StackContext {
        goroutine: Some(g.stack),
        ..StackContext::default()
    };
    if let Some(m) = m {
        context = StackContext {
            goroutine: Some(g.stack),
            ..m_context(memory, layout, m)
        };
        if m.vdso_sp != 0 && m.curg == g.address {
            let regs = Regs {
                pc: m.vdso_pc,
                sp: m.vdso_sp,
                fp: 0,
                lr: None,
            };
            return (
                Start {
                    regs,
                    found_by: FrameSource::Vdso,
                    trapped: false,
                },
                context,
            );
        }
    }
    if let Some(regs) = g.syscall {
        return (
            Start {
                regs,
                found_by: FrameSource::Syscall,
                trapped: false,
            },
            context,
        );
    }
    (
        Start {
            regs: g.sched,
            found_by: FrameSource::Sched,
            trapped: false,
        },
        context,
    )
}

/// The `created by` line: the function containing `gopc`, its line at the
/// call instruction (`gopc` minus one instruction quantum), and the offset.
fn created_by(arch: Arch, funcs: &dyn FuncTable, g: &GRecord) -> Option<CreatedBy> {
    // The runtime prints no creator for the main goroutine, whose gopc
    // points into the runtime's startup code.
    if g.gopc == 0 || g.goid == 1 {
        return None;
    }
    let func = funcs.func(g.gopc)?;
    let quantum = match arch {
        Arch::Amd64 => 1,
        Arch::Arm64 => 4,
    };
    let source = funcs.source_frames(g.gopc.saturating_sub(quantum));
    let innermost = source.first();
    Some(CreatedBy {
        function: match crate::unwind::frame::printed_function_name(&func.name) {
            Cow::Borrowed(_) => Arc::clone(&func.name),
            Cow::Owned(printed) => Arc::from(printed),
        },
        file: innermost.and_then(|f| f.file.clone()),
        line: innermost.and_then(|f| f.line),
        pc: g.gopc,
        offset: g.gopc.checked_sub(func.entry),
        parent_goid: g.parent_goid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_weight_counts_the_frames_a_stack_holds() {
        let with_stack = |lo: u64, hi: u64| {
            Ok(GRecord {
                stack: crate::unwind::StackBounds { lo, hi },
                ..GRecord::for_test()
            })
        };
        let base = 0x00c0_0000_0000;
        assert_eq!(stack_weight(&with_stack(base, base + 8192)), 512);
        // A 1 GB stack has room for 2^26 frames of 16 bytes: the most one
        // walk takes.
        assert_eq!(
            stack_weight(&with_stack(base, base + (1 << 30))),
            MAX_WALK_STEPS
        );
        assert_eq!(
            stack_weight(&with_stack(base, base + (1 << 40))),
            MAX_WALK_STEPS
        );
        assert_eq!(stack_weight(&with_stack(base + 8192, base)), 1);
        assert_eq!(stack_weight(&Err("unreadable".to_owned())), 1);
    }

    #[test]
    fn budget_shares_follow_the_part() {
        let budget = Budget::new(1000, 100);
        let share = budget.share_by(Share {
            steps: (256, 1024),
            frames: (256, 1024),
        });
        assert_eq!(share.steps.get(), 250);
        assert_eq!(share.frames.get(), 25);
        assert!(!share.cut());
        let all = budget.share_by(Share {
            steps: (7, 7),
            frames: (7, 7),
        });
        assert_eq!(all.steps.get(), 1000);
        // A deep stack's steps, the walks' count for kept frames.
        let deep = budget.share_by(Share {
            steps: (900, 1000),
            frames: (1, 10),
        });
        assert_eq!((deep.steps.get(), deep.frames.get()), (900, 10));
    }
}
