//! Every goroutine of a crashed Go process, rebuilt from its core and its
//! binary: [`Process::load`] reads the runtime's goroutine list, maps threads
//! to goroutines, walks every stack and gathers the crash facts.
//!
//! Each piece is `Serialize`, so a command line can print it as text, JSON
//! or in the runtime's own traceback format. What cannot be read is kept
//! with its reason: a goroutine whose g is unreadable stays in the list,
//! and a walk that stops early keeps its frames.

use std::collections::HashMap;

use object::{Object, ObjectSymbol};
use serde::Serialize;

use crate::binary::Binary;
use crate::core::{Arch, Core, Registers, Thread};
use crate::runtime::allgs::{find_allgs, AllgsError, AllgsMethod, SymbolLookup};
use crate::runtime::goroutine::{read_g, read_m, GRecord, MRecord};
use crate::runtime::layout::{LayoutError, LayoutSource, RuntimeLayout};
use crate::runtime::memory::ReadMemory;
use crate::runtime::panic::TypeNames;
use crate::runtime::thread::{thread_m_by_procid, thread_m_from_registers, ThreadMapping, TlsOffset, INTERNAL_LINK_TLS_OFFSET};
use crate::runtime::version::GoVersion;
use crate::runtime::waitreason::{GStatus, WaitReasonSource, WaitReasons};
use crate::runtime::crash;
use crate::unwind::pclntab_funcs::PclntabFuncs;
use crate::unwind::{walk, FrameSource, FuncTable, Regs, StackBounds, StackContext, Start, Walk};

const TRACE_TARGET: &str = "symbolizer::goroutines";

/// An error that leaves no goroutine to show.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("the binary {path} has no usable pclntab")]
    Pclntab {
        path: String,
        #[source]
        source: crate::binary::BinaryError,
    },
    #[error("cannot find the runtime's struct layouts for {path}")]
    Layout {
        path: String,
        #[source]
        source: LayoutError,
    },
    #[error("cannot find the goroutine list in the core")]
    Allgs(#[source] AllgsError),
    #[error("the core's executable is a PIE but its load bias is unknown (the core lacks AT_ENTRY or the ELF header)")]
    UnknownBias,
}

/// One goroutine.
#[derive(Clone, Debug, Serialize)]
pub struct Goroutine {
    /// The goroutine id, when the g could be read.
    pub goid: Option<u64>,
    /// The g's address.
    pub address: u64,
    /// The g's fields; `None` when unreadable (see `error`).
    pub record: Option<GRecord>,
    /// The status text the runtime prints in brackets: the wait reason for
    /// a waiting goroutine that has one, else the status name.
    pub status_text: String,
    /// The wait reason's name, when the goroutine waits with one.
    pub wait_reason: Option<String>,
    /// Whether `runtime.LockOSThread` locked it to its thread.
    pub locked_to_thread: bool,
    /// The M running it: its `id` and address.
    pub m: Option<MSummary>,
    /// The thread running it, when one does.
    pub thread: Option<u32>,
    /// The function the goroutine started in (`startpc`).
    pub start_function: Option<String>,
    /// The `go` statement that created it.
    pub created_by: Option<CreatedBy>,
    /// The frames, innermost first, and why the walk stopped.
    pub walk: Option<Walk>,
    /// The index in `walk.frames` of the first frame the runtime's own
    /// traceback prints: after the runtime's crash machinery for the
    /// crashing goroutine, after the signal frame for other running ones.
    pub printed_from: usize,
    /// Why the goroutine or its stack could not be read.
    pub error: Option<String>,
}

/// An M, as a goroutine header shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MSummary {
    pub id: i64,
    pub address: u64,
}

/// The creator of a goroutine, as `created by` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreatedBy {
    /// The physical function containing `gopc`.
    pub function: String,
    pub file: Option<String>,
    pub line: Option<i64>,
    pub pc: u64,
    /// `gopc - entry`, printed as `+0x…`.
    pub offset: Option<u64>,
    /// `parentGoid` (Go 1.21 on).
    pub parent_goid: Option<u64>,
}

/// One thread of the core.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadState {
    pub id: u32,
    pub regs: Regs,
    /// The M it ran, and how it was matched.
    pub m: Option<MSummary>,
    pub mapping: Option<ThreadMapping>,
    /// The g it was running (often `g0` or `gsignal`).
    pub g: Option<u64>,
    /// The goroutine its M was running (`m.curg`).
    pub goroutine: Option<u64>,
    /// The walk from its registers through every stack it crossed.
    pub walk: Walk,
}

/// What the binary and core gave, for the record.
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    pub go_version: Option<String>,
    pub layout: LayoutSource,
    pub allgs: AllgsMethod,
    pub wait_reasons: Option<WaitReasonSource>,
    pub load_bias: u64,
}

/// A Go process rebuilt from a core.
#[derive(Clone, Debug, Serialize)]
pub struct Process {
    goroutines: Vec<Goroutine>,
    threads: Vec<ThreadState>,
    crash: crash::CrashFacts,
    warnings: Vec<String>,
    provenance: Provenance,
}

impl Process {
    /// Every goroutine in `allgs` order (the runtime's printing order apart
    /// from the crashing goroutine, which it prints first).
    pub fn goroutines(&self) -> &[Goroutine] {
        &self.goroutines
    }

    pub fn threads(&self) -> &[ThreadState] {
        &self.threads
    }

    pub fn crash(&self) -> &crash::CrashFacts {
        &self.crash
    }

    /// Problems that left part of the result missing or uncertain.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// Rebuilds the goroutines of the process that left `core`, whose
    /// executable is `binary`.
    pub fn load(core: &Core, binary: &Binary) -> Result<Process, ProcessError> {
        let path = binary.path().display().to_string();
        let mut warnings = Vec::new();
        let arch = core.arch();
        let memory: &dyn ReadMemory = core.memory();

        let load_bias = match core.executable().and_then(|e| e.load_bias) {
            Some(bias) => bias,
            None if binary.is_pie() => return Err(ProcessError::UnknownBias),
            None => 0,
        };
        let pclntab = binary.pclntab().map_err(|source| ProcessError::Pclntab { path: path.clone(), source })?;
        let funcs = PclntabFuncs::new(pclntab, load_bias);

        let go_version = crate::buildinfo::read(binary.elf()).ok().map(|info| info.go_version);
        let version = go_version.as_deref().and_then(GoVersion::parse);
        let file = object::File::parse(binary.data()).map_err(|source| ProcessError::Layout {
            path: path.clone(),
            source: LayoutError::DwarfSection { section: ".debug_info", source },
        })?;
        let layout =
            RuntimeLayout::for_binary(&file, version).map_err(|source| ProcessError::Layout { path: path.clone(), source })?;
        let symbols = ElfSymbols::new(&file, load_bias);

        let allgs = find_allgs(arch, memory, &symbols, &funcs, &layout).map_err(ProcessError::Allgs)?;
        let wait_reasons = symbols
            .symbol("runtime.waitReasonStrings")
            .and_then(|(address, size)| WaitReasons::from_memory(memory, address, size / 16))
            .or_else(|| version.and_then(WaitReasons::for_version));
        if wait_reasons.is_none() {
            warnings.push("no wait reason names for this Go release; waiting goroutines show their number".to_owned());
        }
        let types = symbols
            .symbol("runtime.types")
            .map(|(address, _)| TypeNames { types: address });

        let records: Vec<Result<GRecord, String>> =
            allgs.gs.iter().map(|&g| read_g(memory, &layout, g).map_err(|e| e.to_string())).collect();
        let ms = collect_ms(memory, &layout, &records);
        let tls_offsets = tls_offsets(&file, &symbols);
        // Without a version, assume a release with the current unwinder.
        let all_injected_calls = version.is_none_or(|v| v >= GoVersion::new(1, 21, 0));
        let threads =
            map_threads(arch, memory, &funcs, &layout, core.threads(), &ms, &tls_offsets, all_injected_calls);

        let crashing_thread = core.signalled_thread().map(|t| t.id.0);
        let mut goroutines = Vec::with_capacity(records.len());
        for (&address, record) in allgs.gs.iter().zip(records) {
            goroutines.push(build_goroutine(
                arch,
                memory,
                &funcs,
                &layout,
                wait_reasons.as_ref(),
                &ms,
                &threads,
                address,
                record,
                all_injected_calls,
            ));
        }
        let crash = crash::crash_facts(memory, &funcs, &layout, types, core, crashing_thread, &threads, &mut goroutines);
        if let Some(goroutine) = crash.goroutine {
            tracing::debug!(target: TRACE_TARGET, goroutine, "crashing goroutine");
        }
        Ok(Process {
            goroutines,
            threads,
            crash,
            warnings,
            provenance: Provenance {
                go_version,
                layout: layout.source.clone(),
                allgs: allgs.method,
                wait_reasons: wait_reasons.map(|w| w.source),
                load_bias,
            },
        })
    }
}

/// The Ms of all goroutines, read once.
fn collect_ms(memory: &dyn ReadMemory, layout: &RuntimeLayout, records: &[Result<GRecord, String>]) -> Vec<MRecord> {
    let mut seen = HashMap::new();
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
        Registers::Amd64(r) => Regs { pc: r.rip, sp: r.rsp, fp: r.rbp, lr: None },
        Registers::Arm64(r) => Regs { pc: r.pc, sp: r.sp, fp: r.fp(), lr: Some(r.lr()) },
    }
}

/// The stacks an M's thread can be on, and its goroutine's saved registers.
fn m_context(memory: &dyn ReadMemory, layout: &RuntimeLayout, m: &MRecord) -> StackContext {
    let bounds = |g: u64| -> Option<StackBounds> {
        (g != 0).then_some(())?;
        read_g(memory, layout, g).ok().map(|r| r.stack)
    };
    let curg = (m.curg != 0).then(|| read_g(memory, layout, m.curg).ok()).flatten();
    StackContext {
        goroutine: curg.as_ref().map(|g| g.stack),
        system: bounds(m.g0),
        signal: bounds(m.gsignal),
        curg_sched: curg.as_ref().map(|g| g.sched),
        curg_sched_sp: curg.as_ref().map(|g| g.sched.sp),
        all_injected_calls: true,
    }
}

#[allow(clippy::too_many_arguments)]
fn map_threads(
    arch: Arch,
    memory: &dyn ReadMemory,
    funcs: &dyn FuncTable,
    layout: &RuntimeLayout,
    threads: &[Thread],
    ms: &[MRecord],
    tls_offsets: &[TlsOffset],
    all_injected_calls: bool,
) -> Vec<ThreadState> {
    threads
        .iter()
        .map(|thread| {
            let found = thread_m_from_registers(memory, layout, thread, tls_offsets)
                .or_else(|| thread_m_by_procid(thread, ms));
            let regs = thread_regs(thread);
            let mut context = found.as_ref().map(|f| m_context(memory, layout, &f.m)).unwrap_or_default();
            context.all_injected_calls = all_injected_calls;
            let start = Start { regs, found_by: FrameSource::ThreadRegisters, trapped: true };
            let walk = walk(arch, memory, funcs, start, &context);
            ThreadState {
                id: thread.id.0,
                regs,
                m: found.as_ref().map(|f| MSummary { id: f.m.id, address: f.m.address }),
                mapping: found.as_ref().map(|f| f.mapping),
                g: found.as_ref().map(|f| f.g),
                goroutine: found.as_ref().and_then(|f| (f.m.curg != 0).then_some(f.m.curg)),
                walk,
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn build_goroutine(
    arch: Arch,
    memory: &dyn ReadMemory,
    funcs: &dyn FuncTable,
    layout: &RuntimeLayout,
    wait_reasons: Option<&WaitReasons>,
    ms: &[MRecord],
    threads: &[ThreadState],
    address: u64,
    record: Result<GRecord, String>,
    all_injected_calls: bool,
) -> Goroutine {
    let record = match record {
        Ok(record) => record,
        Err(error) => {
            return Goroutine {
                goid: None,
                address,
                record: None,
                status_text: "???".to_owned(),
                wait_reason: None,
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
    let wait_reason = (record.status == GStatus::Waiting && record.wait_reason != 0).then(|| match wait_reasons {
        Some(reasons) => reasons.name(record.wait_reason).to_owned(),
        None => format!("wait reason {}", record.wait_reason),
    });
    let status_text = wait_reason.clone().unwrap_or_else(|| record.status.name().to_owned());
    let m = ms.iter().find(|m| m.address == record.m && record.m != 0);
    let thread = threads.iter().find(|t| t.goroutine == Some(address));
    // A goroutine in a syscall keeps its M, but the runtime prints it from
    // the registers saved on syscall entry, as for any goroutine not running.
    let running_thread = thread.filter(|_| record.status == GStatus::Running);
    let (walk, printed_from) = if record.status == GStatus::Dead {
        (None, 0)
    } else if let Some(thread) = running_thread {
        let printed_from = crash::printed_from(&thread.walk);
        (Some(thread.walk.clone()), printed_from)
    } else {
        let (start, mut context) = parked_start(memory, layout, &record, m);
        context.all_injected_calls = all_injected_calls;
        (Some(walk(arch, memory, funcs, start, &context)), 0)
    };
    let start_function = funcs.func(record.startpc).map(|f| f.name);
    let created_by = created_by(arch, funcs, &record);
    Goroutine {
        goid: Some(record.goid),
        address,
        status_text,
        wait_reason,
        locked_to_thread: record.lockedm != 0,
        m: m.map(|m| MSummary { id: m.id, address: m.address }),
        thread: thread.map(|t| t.id),
        start_function,
        created_by,
        walk,
        printed_from,
        error: None,
        record: Some(record),
    }
}

/// Where a goroutine not running on any thread resumes: in a VDSO call
/// (`m.vdsoSP`), in a syscall (`syscallsp`), or at its saved `sched`, in
/// that order, as the runtime's traceback chooses.
fn parked_start(memory: &dyn ReadMemory, layout: &RuntimeLayout, g: &GRecord, m: Option<&MRecord>) -> (Start, StackContext) {
    let mut context = StackContext { goroutine: Some(g.stack), ..StackContext::default() };
    if let Some(m) = m {
        context = StackContext { goroutine: Some(g.stack), ..m_context(memory, layout, m) };
        if m.vdso_sp != 0 && m.curg == g.address {
            let regs = Regs { pc: m.vdso_pc, sp: m.vdso_sp, fp: 0, lr: None };
            return (Start { regs, found_by: FrameSource::Vdso, trapped: false }, context);
        }
    }
    if let Some(regs) = g.syscall {
        return (Start { regs, found_by: FrameSource::Syscall, trapped: false }, context);
    }
    (Start { regs: g.sched, found_by: FrameSource::Sched, trapped: false }, context)
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
        function: func.name,
        file: innermost.and_then(|f| f.file.clone()),
        line: innermost.and_then(|f| f.line),
        pc: g.gopc,
        offset: g.gopc.checked_sub(func.entry),
        parent_goid: g.parent_goid,
    })
}

/// ELF symbols at run-time addresses.
struct ElfSymbols {
    symbols: HashMap<String, (u64, u64)>,
}

impl ElfSymbols {
    /// The symbols the runtime walk looks up.
    const WANTED: [&'static str; 6] = [
        "runtime.allgs",
        "runtime.waitReasonStrings",
        "runtime.types",
        "runtime.tlsg",
        "runtime.firstmoduledata",
        "runtime.allm",
    ];

    fn new(file: &object::File<'_>, bias: u64) -> ElfSymbols {
        let mut symbols = HashMap::new();
        for symbol in file.symbols() {
            let Ok(name) = symbol.name() else { continue };
            if Self::WANTED.contains(&name) {
                let address = if name == "runtime.tlsg" { symbol.address() } else { symbol.address().wrapping_add(bias) };
                symbols.insert(name.to_owned(), (address, symbol.size()));
            }
        }
        ElfSymbols { symbols }
    }
}

impl SymbolLookup for ElfSymbols {
    fn symbol(&self, name: &str) -> Option<(u64, u64)> {
        self.symbols.get(name).copied()
    }
}

/// Where g may sit relative to `fs_base`: the host linker's offset from
/// `runtime.tlsg` and `PT_TLS` when both exist, then the Go linker's -8.
fn tls_offsets(file: &object::File<'_>, symbols: &ElfSymbols) -> Vec<TlsOffset> {
    let mut offsets = Vec::new();
    if let Some((tlsg, _)) = symbols.symbol("runtime.tlsg") {
        if let object::File::Elf64(elf) = file {
            use object::read::elf::ProgramHeader;
            let endian = elf.endian();
            for segment in elf.elf_program_headers() {
                if segment.p_type(endian) == object::elf::PT_TLS {
                    let memsz = segment.p_memsz(endian);
                    let align = segment.p_align(endian).max(1);
                    let aligned = memsz.div_ceil(align) * align;
                    offsets.push(TlsOffset(tlsg as i64 - aligned as i64));
                }
            }
        }
    }
    offsets.push(INTERNAL_LINK_TLS_OFFSET);
    offsets
}
