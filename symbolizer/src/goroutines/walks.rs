//! The walks of a process: every thread from its registers, and every
//! goroutine from where the runtime's own traceback starts it (its
//! thread's registers while it runs, else its saved registers).
//!
//! All walks of one process share a budget of steps, so that a corrupt
//! core listing millions of goroutines over one deep stack still ends.
//! Goroutines are built on several threads when there are many. Each
//! thread has its own function table and unwind caches, and all of them
//! share the memory, the budget and everything read before.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::{CreatedBy, Goroutine, MSummary, ThreadState};
use crate::core::{Arch, Registers, Thread};
use crate::hashing::FastMap;
use crate::runtime::crash;
use crate::runtime::goroutine::{read_g, read_m, GRecord, MRecord};
use crate::runtime::layout::RuntimeLayout;
use crate::runtime::memory::ReadMemory;
use crate::runtime::thread::{thread_m_by_procid, thread_m_from_registers, TlsOffset};
use crate::runtime::waitreason::{GStatus, WaitReasons};
use crate::unwind::cfi::{CallFrameInfo, EhFrameModules};
use crate::unwind::pclntab_funcs::PclntabFuncs;
use crate::unwind::{
    walk_with_cfi, FrameSource, FuncTable, Regs, StackBounds, StackContext, Start, Walk,
    MAX_WALK_STEPS,
};

/// The maximum number of frames all walks of one process step through
/// together: room for a million goroutines of 64 frames each.
pub const MAX_PROCESS_WALK_STEPS: usize = 1 << 26;

/// The inputs every walk of one process reads, and the steps left to all of them.
pub(super) struct Walker<'a> {
    pub arch: Arch,
    pub memory: &'a (dyn ReadMemory + Sync),
    pub funcs: &'a dyn FuncTable,
    pub layout: &'a RuntimeLayout,
    /// Whether the release treats `asyncPreempt` as an injected call
    /// ([`StackContext::all_injected_calls`]).
    pub all_injected_calls: bool,
    /// The `.eh_frame` tables of the core's modules, for C frames.
    pub cfi: Option<&'a dyn CallFrameInfo>,
    /// The steps left, shared by every walker of the process on every thread.
    pub steps_left: &'a AtomicUsize,
}

impl Walker<'_> {
    /// Reports whether the walks have used up the process's budget.
    pub fn budget_spent(&self) -> bool {
        self.steps_left.load(Ordering::Relaxed) == 0
    }

    /// Walks from `start`, charging the steps to the process's budget.
    /// Walks running at once on other threads may each take up to
    /// [`MAX_WALK_STEPS`] beyond it, which keeps the total bounded.
    fn walk(&self, start: Start, mut context: StackContext) -> Walk {
        context.all_injected_calls = self.all_injected_calls;
        context.max_steps = self.steps_left.load(Ordering::Relaxed).min(MAX_WALK_STEPS);
        let walk = walk_with_cfi(
            self.arch,
            self.memory,
            self.funcs,
            self.cfi,
            start,
            &context,
        );
        let used = usize::try_from(walk.steps()).unwrap_or(usize::MAX);
        // The update fails only when the closure returns None, which it never does.
        let _ = self
            .steps_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                Some(left.saturating_sub(used))
            });
        walk
    }
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

/// Matches each thread to its M and walks it from its registers.
pub(super) fn map_threads(
    walker: &Walker<'_>,
    threads: &[Thread],
    ms: &[MRecord],
    tls_offsets: &[TlsOffset],
) -> Vec<ThreadState> {
    let (memory, layout) = (walker.memory, walker.layout);
    threads
        .iter()
        .map(|thread| {
            let found = thread_m_from_registers(memory, layout, thread, tls_offsets)
                .or_else(|| thread_m_by_procid(thread, ms));
            let regs = thread_regs(thread);
            let context = found
                .as_ref()
                .map(|f| m_context(memory, layout, &f.m))
                .unwrap_or_default();
            let start = Start {
                regs,
                found_by: FrameSource::ThreadRegisters,
                trapped: true,
            };
            let walk = walker.walk(start, context);
            ThreadState {
                id: thread.id.0,
                regs,
                m: found.as_ref().map(|f| MSummary {
                    id: f.m.id,
                    address: f.m.address,
                }),
                mapping: found.as_ref().map(|f| f.mapping),
                g: found.as_ref().map(|f| f.g),
                goroutine: found
                    .as_ref()
                    .and_then(|f| (f.m.curg != 0).then_some(f.m.curg)),
                walk,
            }
        })
        .collect()
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
    } = *shared;
    let record = match record {
        Ok(record) => record,
        Err(error) => {
            return Goroutine {
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
                error: Some(format!("cannot read the g at {address:#x}: {error}")),
            }
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
    let thread = threads.iter().find(|t| t.goroutine == Some(address));
    // A goroutine in a syscall keeps its M, but the runtime prints it from
    // the registers saved on syscall entry, as for any goroutine not running.
    let running_thread = thread.filter(|_| record.status == GStatus::Running);
    let implausible = !record.is_plausible();
    let (walk, printed_from) = if record.status == GStatus::Dead || implausible {
        (None, 0)
    } else if let Some(thread) = running_thread {
        let printed_from = crash::printed_from(&thread.walk);
        (Some(thread.walk.clone()), printed_from)
    } else {
        let (start, context) = parked_start(walker.memory, walker.layout, &record, m);
        (Some(walker.walk(start, context)), 0)
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
        printed_from,
        error,
        record: Some(record),
    }
}

/// The minimum number of goroutines per thread. Below it, starting a thread
/// and warming its caches would cost about what its share of the walks saves.
const GOROUTINES_PER_THREAD: usize = 2048;

/// The maximum number of threads that build goroutines at once.
const MAX_WALK_THREADS: usize = 8;

/// The data the goroutine-building threads share, besides the walker.
pub(super) struct Shared<'a> {
    pub wait_reasons: Option<&'a WaitReasons>,
    pub ms: &'a [MRecord],
    pub threads: &'a [ThreadState],
}

/// A g's address and the result of reading it.
type Listed = (u64, Result<GRecord, String>);

/// Builds every goroutine of `listed`, in order.
///
/// With many goroutines, parts of the list are built on other threads. Each
/// thread gets its own function and unwind tables from `make_tables`, and
/// the damage each function table saw is handed to `damaged`.
pub(super) fn build_goroutines<'a, F>(
    walker: &Walker<'_>,
    shared: &Shared<'_>,
    listed: Vec<Listed>,
    make_tables: F,
    damaged: &dyn Fn(Option<(String, usize)>),
) -> Vec<Goroutine>
where
    F: Fn() -> (PclntabFuncs<'a>, EhFrameModules) + Sync,
{
    let build = |walker: &Walker<'_>, part: Vec<Listed>| {
        part.into_iter()
            .map(|(address, record)| build_goroutine(walker, shared, address, record))
            .collect::<Vec<_>>()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WALK_THREADS)
        .min(listed.len() / GOROUTINES_PER_THREAD)
        .max(1);
    if threads == 1 {
        return build(walker, listed);
    }

    let mut parts = split(listed, threads).into_iter();
    let first = parts.next().unwrap_or_default();
    // The function and unwind tables keep caches for one thread at a time.
    // Everything the threads share is read-only or atomic.
    let (arch, memory, layout, all_injected_calls, steps_left) = (
        walker.arch,
        walker.memory,
        walker.layout,
        walker.all_injected_calls,
        walker.steps_left,
    );
    let make_tables = &make_tables;
    let build = &build;
    std::thread::scope(|scope| {
        // Each part travels to its thread through a channel, so that a
        // part whose thread fails to start stays here and is built here.
        let running: Vec<_> = parts
            .map(|part| {
                let (sender, receiver) = std::sync::mpsc::channel::<Vec<Listed>>();
                let started = std::thread::Builder::new()
                    .name("gocrash-walk".to_owned())
                    .spawn_scoped(scope, move || {
                        let Ok(part) = receiver.recv() else {
                            return (Vec::new(), None);
                        };
                        let (funcs, cfi) = make_tables();
                        let own = Walker {
                            arch,
                            memory,
                            funcs: &funcs,
                            layout,
                            all_injected_calls,
                            cfi: Some(&cfi),
                            steps_left,
                        };
                        let built = build(&own, part);
                        (built, funcs.damage())
                    });
                match started {
                    Ok(handle) => match sender.send(part) {
                        Ok(()) => Err(handle),
                        Err(unsent) => Ok(unsent.0),
                    },
                    Err(error) => {
                        tracing::debug!(target: "symbolizer::goroutines", %error, "failed to start a walk thread, so walking on this one");
                        Ok(part)
                    }
                }
            })
            .collect();

        let mut goroutines = build(walker, first);
        for part in running {
            match part {
                Ok(unsent) => goroutines.extend(build(walker, unsent)),
                Err(handle) => match handle.join() {
                    Ok((built, damage)) => {
                        goroutines.extend(built);
                        damaged(damage);
                    }
                    Err(panic) => std::panic::resume_unwind(panic),
                },
            }
        }
        goroutines
    })
}

/// Splits `listed` into `count` consecutive parts of nearly equal length.
fn split(listed: Vec<Listed>, count: usize) -> Vec<Vec<Listed>> {
    let per_part = listed.len().div_ceil(count.max(1)).max(1);
    let mut parts = Vec::with_capacity(count);
    let mut rest = listed;
    while rest.len() > per_part {
        let tail = rest.split_off(per_part);
        parts.push(std::mem::replace(&mut rest, tail));
    }
    parts.push(rest);
    parts
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

    fn listed(count: u64) -> Vec<Listed> {
        (0..count).map(|g| (g, Err(String::new()))).collect()
    }

    #[test]
    fn split_keeps_order_and_balance() {
        let parts = split(listed(10_001), 3);
        let lengths: Vec<usize> = parts.iter().map(Vec::len).collect();
        assert_eq!(lengths, vec![3334, 3334, 3333]);
        let addresses: Vec<u64> = parts.iter().flatten().map(|(g, _)| *g).collect();
        assert_eq!(addresses, (0..10_001).collect::<Vec<u64>>());
    }

    #[test]
    fn split_of_few_gives_one_part() {
        assert_eq!(split(listed(1), 4).len(), 1);
        assert_eq!(split(listed(0), 4).len(), 1);
    }
}
