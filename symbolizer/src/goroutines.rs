//! Every goroutine of a crashed Go process, rebuilt from its core and its
//! binary: [`Process::load`] reads the runtime's goroutine list, maps threads
//! to goroutines, walks every stack and gathers the crash facts.
//!
//! Each piece is `Serialize`, so a command line can print it as text, JSON
//! or in the runtime's own traceback format. What cannot be read is kept
//! with its reason: a goroutine whose g is unreadable stays in the list,
//! and a walk that stops early keeps its frames. When the goroutine list
//! itself cannot be read, the goroutines the threads were running are still
//! rebuilt, and [`Process::missing`] names what is lacking.

mod symbols;
mod walks;

use std::sync::Arc;

use serde::Serialize;

use crate::binary::Binary;
use crate::core::{Arch, Core};
use crate::hashing::FastSet;
use crate::pclntab::Pclntab;
use crate::runtime::allgs::{find_allgs, AllgsError, AllgsMethod, SymbolLookup};
use crate::runtime::clock::{self, ClockEstimate};
use crate::runtime::crash;
use crate::runtime::goroutine::{read_g, GRecord};
use crate::runtime::layout::{LayoutError, LayoutSource, RuntimeLayout};
use crate::runtime::memory::{ReadMemory, WithExecutable};
use crate::runtime::panic::TypeNames;
use crate::runtime::thread::ThreadMapping;
use crate::runtime::thread::TlsOffset;
use crate::runtime::version::GoVersion;
use crate::runtime::waitreason::{GStatus, WaitReasonSource, WaitReasons};
use crate::unwind::cfi::EhFrameModules;
use crate::unwind::pclntab_funcs::{FunctionIndex, PclntabFuncs};
use crate::unwind::{Frame, Regs, Walk};

pub use walks::{MAX_PROCESS_FRAMES, MAX_PROCESS_WALK_STEPS};

use symbols::ElfSymbols;

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
    #[error(
        "the core is from {core} process, but the binary {path} is built for {binary}: they \
         cannot belong together"
    )]
    ArchitectureMismatch {
        path: String,
        /// The core's machine, with its article ("an x86-64").
        core: &'static str,
        binary: String,
    },
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
    pub status_text: Arc<str>,
    /// The wait reason's name, when the goroutine waits with one.
    pub wait_reason: Option<Arc<str>>,
    /// How long the goroutine has been blocked, in whole minutes, when the
    /// runtime would print `, N minutes` (at least one). The core has no
    /// clock, so "now" is estimated (see [`Process::clock`]), and the count
    /// may be one minute short near a minute boundary.
    pub wait_minutes: Option<u64>,
    /// Whether `runtime.LockOSThread` locked it to its thread.
    pub locked_to_thread: bool,
    /// The M running it: its `id` and address.
    pub m: Option<MSummary>,
    /// The thread running it, when one does.
    pub thread: Option<u32>,
    /// The function the goroutine started in (`startpc`).
    pub start_function: Option<Arc<str>>,
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
    /// The physical function containing `gopc`, as the runtime prints it.
    pub function: Arc<str>,
    pub file: Option<Arc<str>>,
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

impl ThreadState {
    /// The index in `walk.frames` of the first frame the runtime prints in
    /// this thread's own section of a `GOTRACEBACK=crash` dump: the frame
    /// the signal interrupted (see [`crash::interrupted_frame`]), or the
    /// first frame without a signal frame.
    pub fn printed_from(&self) -> usize {
        crash::interrupted_frame(&self.walk).unwrap_or(0)
    }
}

/// What the binary and core gave, for the record.
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    pub go_version: Option<String>,
    pub layout: LayoutSource,
    /// Method that found the goroutine list; `None` when it could not be read.
    pub allgs: Option<AllgsMethod>,
    pub wait_reasons: Option<WaitReasonSource>,
    pub load_bias: u64,
}

/// The facts of a Go executable that every core of it shares: its
/// pclntab, release, runtime layouts, symbols and TLS offsets. Reading
/// them (DWARF above all) costs more than walking a small core.
#[derive(Debug)]
pub struct BinaryInfo<'a> {
    binary: &'a Binary,
    pclntab: &'a Pclntab<'a>,
    functions: FunctionIndex,
    facts: BinaryFacts,
}

/// The part of [`BinaryInfo`] that owns its data, so that it can be read on
/// one thread while another decompresses the core.
#[derive(Debug)]
pub struct BinaryFacts {
    go_version: Option<String>,
    version: Option<GoVersion>,
    layout: RuntimeLayout,
    symbols: ElfSymbols,
    tls_offsets: Vec<TlsOffset>,
}

impl BinaryFacts {
    /// Reads the facts of `binary`, and locates its pclntab, which
    /// [`BinaryInfo::with_facts`] then finds ready.
    pub fn read(binary: &Binary) -> Result<BinaryFacts, ProcessError> {
        let path = binary.path().display().to_string();
        binary.pclntab().map_err(|source| ProcessError::Pclntab {
            path: path.clone(),
            source,
        })?;
        let go_version = crate::buildinfo::read(binary.elf())
            .ok()
            .map(|info| info.go_version);
        let version = go_version.as_deref().and_then(GoVersion::parse);
        let file = object::File::parse(binary.data()).map_err(|source| ProcessError::Layout {
            path: path.clone(),
            source: LayoutError::DwarfSection {
                section: ".debug_info",
                source,
            },
        })?;
        let layout = RuntimeLayout::for_binary(&file, version)
            .map_err(|source| ProcessError::Layout { path, source })?;
        let symbols = ElfSymbols::new(&file);
        let tls_offsets = symbols::tls_offsets(&file, &symbols);
        Ok(BinaryFacts {
            go_version,
            version,
            layout,
            symbols,
            tls_offsets,
        })
    }
}

impl<'a> BinaryInfo<'a> {
    /// Reads the facts of `binary` that [`Process::load_with`] needs.
    pub fn new(binary: &'a Binary) -> Result<BinaryInfo<'a>, ProcessError> {
        BinaryInfo::with_facts(binary, BinaryFacts::read(binary)?)
    }

    /// Joins `binary` with the facts [`BinaryFacts::read`] read from it.
    pub fn with_facts(
        binary: &'a Binary,
        facts: BinaryFacts,
    ) -> Result<BinaryInfo<'a>, ProcessError> {
        let pclntab = binary.pclntab().map_err(|source| ProcessError::Pclntab {
            path: binary.path().display().to_string(),
            source,
        })?;
        Ok(BinaryInfo {
            binary,
            pclntab,
            functions: FunctionIndex::default(),
            facts,
        })
    }

    /// The Go release that built the binary, as its build information
    /// spells it.
    pub fn go_version(&self) -> Option<&str> {
        self.facts.go_version.as_deref()
    }

    /// The runtime layouts the walk reads the core with.
    pub fn layout(&self) -> &RuntimeLayout {
        &self.facts.layout
    }
}

/// A Go process rebuilt from a core.
#[derive(Clone, Debug, Serialize)]
pub struct Process {
    goroutines: Vec<Goroutine>,
    threads: Vec<ThreadState>,
    crash: crash::CrashFacts,
    clock: Option<ClockEstimate>,
    warnings: Vec<String>,
    missing: Vec<String>,
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

    /// Parts of the process that could not be rebuilt because the core's
    /// runtime structures are damaged or do not match the binary, one
    /// sentence each. Examples: a goroutine list that could not be read, or
    /// one that lists a g more than once.
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// The estimate of the runtime's clock at the crash that
    /// [`Goroutine::wait_minutes`] counts from; `None` when the core gave
    /// none (see [`crate::runtime::clock`]).
    pub fn clock(&self) -> Option<&ClockEstimate> {
        self.clock.as_ref()
    }

    /// Sets the runtime's clock at the crash to `now`, in monotonic
    /// nanoseconds (`CLOCK_MONOTONIC` of the crashed host, such as the
    /// journal's monotonic stamp of the crash text), and counts every
    /// goroutine's wait minutes from it.
    pub fn set_clock(&mut self, now: i64) {
        let readings = self.clock.take().map(|c| c.readings).unwrap_or_default();
        self.clock = Some(ClockEstimate {
            now,
            source: "given".to_owned(),
            readings,
        });
        count_wait_minutes(&mut self.goroutines, now);
    }

    /// The thread the kernel reported the dump's signal on.
    pub fn crashing_thread(&self) -> Option<&ThreadState> {
        let id = self.crash.thread?;
        self.threads.iter().find(|t| t.id == id)
    }

    /// The frames the runtime prints under `runtime stack:`: those of the
    /// crashing thread's system stack (g0), from the function that threw,
    /// when the fatal error happened there rather than on a goroutine's
    /// stack. `None` when the crash happened on a goroutine stack.
    pub fn runtime_stack(&self) -> Option<&[Frame]> {
        let walk = &self.crashing_thread()?.walk;
        crash::runtime_stack_frames(walk)
    }

    /// Rebuilds the goroutines of the process that left `core`, whose
    /// executable is `binary`.
    pub fn load(core: &Core, binary: &Binary) -> Result<Process, ProcessError> {
        Process::load_with(core, &BinaryInfo::new(binary)?)
    }

    /// Rebuilds the goroutines of the process that left `core`, with the
    /// facts of its executable read once by [`BinaryInfo::new`]: the way to
    /// read several cores of one binary.
    pub fn load_with(core: &Core, info: &BinaryInfo<'_>) -> Result<Process, ProcessError> {
        let binary = info.binary;
        let mut warnings = Vec::new();
        let arch = core.arch();
        check_architecture(arch, binary)?;
        let load_bias = match load_bias(core, binary) {
            Some(bias) => bias,
            None if binary.is_pie() => return Err(ProcessError::UnknownBias),
            None => 0,
        };
        let mismatch = symbols::build_id_mismatch(core, binary);
        // The core reads the executable's pages that the kernel did not dump
        // from the file NT_FILE names. When that file is gone or replaced,
        // or the core has no such note, they are read from the binary, unless
        // its build ID shows it is another build.
        let with_executable = WithExecutable {
            core: core.memory(),
            binary,
            bias: load_bias,
        };
        let memory: &dyn ReadMemory = if mismatch.is_none() {
            &with_executable
        } else {
            core.memory()
        };
        let make_funcs = || {
            PclntabFuncs::with_index(info.pclntab, load_bias, &info.functions)
                .with_foreign(binary.c_symbolizer().with_load_bias(load_bias))
        };
        let funcs = make_funcs();
        let (version, layout) = (info.facts.version, &info.facts.layout);
        let symbols = info.facts.symbols.at_bias(load_bias);
        let same_build = mismatch.is_none();
        if let Some(mismatch) = mismatch {
            tracing::debug!(target: TRACE_TARGET, %mismatch, "the binary is not the one that crashed");
            warnings.push(mismatch);
        }

        let mut missing = Vec::new();
        if same_build {
            missing.extend(misplaced_executable_pages(core, binary, load_bias));
        }
        let listed = find_allgs(arch, memory, &symbols, &funcs, layout);
        let (mut gs, allgs_method) = match listed {
            Ok(allgs) => {
                if allgs.duplicates > 0 {
                    missing.push(format!(
                        "runtime.allgs lists {} g pointers more than once, so the goroutine list \
                         is damaged: each g is shown once, and goroutines may be missing",
                        allgs.duplicates
                    ));
                }
                if allgs.nils > 0 {
                    missing.push(format!(
                        "runtime.allgs lists {} nil pointers, where the runtime stores only gs, so \
                         the goroutine list is damaged and goroutines may be missing",
                        allgs.nils
                    ));
                }
                (allgs.gs, Some(allgs.method))
            }
            Err(error) => {
                let reason = crate::error_chain(&error);
                tracing::debug!(target: TRACE_TARGET, %reason, "rebuilding only the goroutines running on threads");
                missing.push(format!(
                    "the goroutine list could not be read ({reason}); only the goroutines the \
                     threads were running, where their Ms could be read, are shown"
                ));
                (Vec::new(), None)
            }
        };
        let wait_reasons = symbols
            .symbol("runtime.waitReasonStrings")
            .and_then(|(address, size)| WaitReasons::from_memory(memory, address, size / 16))
            .or_else(|| version.and_then(WaitReasons::for_version));
        if wait_reasons.is_none() {
            warnings.push(
                "no wait reason names for this Go release; waiting goroutines show their number"
                    .to_owned(),
            );
        }
        let types = symbols
            .symbol("runtime.types")
            .map(|(address, _)| TypeNames { types: address });

        let read_records = |gs: &[u64]| -> Vec<Result<GRecord, String>> {
            gs.iter()
                .map(|&g| read_g(memory, layout, g).map_err(|e| e.to_string()))
                .collect()
        };
        let mut records = read_records(&gs);
        let mut ms = walks::collect_ms(memory, layout, &records);
        let cfi = EhFrameModules::new(core.mapped_files());
        let budget = walks::Budget::new(walks::MAX_PROCESS_WALK_STEPS, walks::MAX_PROCESS_FRAMES);
        // Without a version, assume a release with the current unwinder.
        let all_injected_calls = version.is_none_or(|v| v >= GoVersion::new(1, 21, 0));
        let found_threads =
            walks::find_threads(memory, layout, core.threads(), &ms, &info.facts.tls_offsets);
        // Threads find their M through thread-local storage, without the
        // list, and the M names the goroutine it runs (`curg`). A complete
        // list contains every such goroutine; one that lacks some is damaged,
        // and the goroutines are added so the crash is not blamed on the
        // system stack.
        let listed_len = gs.len();
        let mut known: FastSet<u64> = gs.iter().copied().collect();
        for thread in &found_threads {
            let Some(goroutine) = thread.goroutine() else {
                continue;
            };
            if !known.insert(goroutine) {
                continue;
            }
            gs.push(goroutine);
            if allgs_method.is_some() {
                missing.push(format!(
                    "thread {} runs the goroutine at {goroutine:#x}, which runtime.allgs does not \
                     list, so the goroutine list is damaged",
                    thread.id()
                ));
            }
        }
        if gs.len() > listed_len {
            records = read_records(&gs);
            ms = walks::collect_ms(memory, layout, &records);
        }
        let allm = symbols.symbol("runtime.allm").map(|(address, _)| address);
        missing.extend(walks::ms_without_threads(
            memory,
            layout,
            allm,
            &records,
            &ms,
            core.threads(),
        ));

        // Counted while the records are fresh in the cache.
        let reused = reused_ids(live_ids(&records));
        let crashing_thread = core.signalled_thread().map(|t| t.id.0);
        let shared = walks::Shared {
            arch,
            memory: core.memory(),
            layout,
            all_injected_calls,
            wait_reasons: wait_reasons.as_ref(),
            ms: &ms,
            threads: &found_threads,
        };
        // The threads and the goroutines share the budget by the frames
        // their stacks can hold. A thread's walk goes on into the stack of
        // the goroutine it runs.
        let goroutine_weight = records
            .iter()
            .map(walks::stack_weight)
            .fold(0, usize::saturating_add);
        // A few dozen threads, each looked up among the gs once.
        let thread_weight = found_threads
            .iter()
            .map(|thread| {
                let running = thread
                    .goroutine()
                    .and_then(|g| gs.iter().position(|&address| address == g))
                    .and_then(|index| records.get(index))
                    .map_or(0, walks::stack_weight);
                walks::THREAD_WEIGHT.saturating_add(running)
            })
            .fold(0, usize::saturating_add);
        let weight_total = goroutine_weight.saturating_add(thread_weight);
        let walks_total = gs.len() + found_threads.len();
        let goroutine_budget = budget.share_by(walks::Share {
            steps: (goroutine_weight, weight_total),
            frames: (gs.len(), walks_total),
        });
        let thread_budget = budget.share_by(walks::Share {
            steps: (thread_weight, weight_total),
            frames: (found_threads.len(), walks_total),
        });
        let make_tables = || (make_funcs(), EhFrameModules::new(core.mapped_files()));
        let (mut goroutines, blocks_cut) = walks::build_goroutines(
            &shared,
            &goroutine_budget,
            &gs,
            records,
            make_tables,
            &|damage| funcs.add_damage(damage),
        );
        let walker = walks::Walker {
            arch,
            cfi: Some(&cfi),
            memory: core.memory(),
            funcs: &funcs,
            layout,
            all_injected_calls,
            budget: &thread_budget,
        };
        let threads = walks::walk_threads(&walker, found_threads);
        walks::attach_thread_walks(&mut goroutines, &threads);
        if thread_budget.cut() || blocks_cut {
            missing.push(format!(
                "the walks reached their limits of {} frames stepped through and {} frames kept \
                 in all, so some stacks are cut short or lack frames",
                walks::MAX_PROCESS_WALK_STEPS,
                walks::MAX_PROCESS_FRAMES
            ));
        }
        if reused > 0 {
            missing.push(format!(
                "{reused} live goroutines have the id of another one, which the runtime never \
                 gives twice, so the goroutine list or the gs it points to are damaged"
            ));
        }
        let crash = crash::crash_facts(
            memory,
            &funcs,
            layout,
            types,
            core,
            crashing_thread,
            &threads,
            &mut goroutines,
            version,
        );

        if let Some((error, count)) = funcs.damage() {
            missing.push(format!(
                "the pclntab of {} is damaged, so some frames lack their function or line \
                 ({count} lookups failed; the first: {error})",
                binary.path().display()
            ));
        }
        let parked: Vec<&GRecord> = goroutines
            .iter()
            .filter_map(|g| g.record.as_ref())
            .collect();
        let clock_inputs = clock::ClockInputs {
            arch,
            memory,
            symbols: &symbols,
            funcs: &funcs,
            layout,
            version,
        };
        let clock = clock::estimate(memory, &clock::find_addresses(&clock_inputs), &parked);
        match &clock {
            Some(clock) => {
                tracing::debug!(target: TRACE_TARGET, now = clock.now, source = %clock.source, "estimated the crash's clock");
                count_wait_minutes(&mut goroutines, clock.now);
            }
            None if parked.iter().any(|g| clock::may_print_minutes(g)) => warnings.push(
                "no recent runtime timestamp was found in the core, so wait minutes are not shown"
                    .to_owned(),
            ),
            None => {
                tracing::debug!(target: TRACE_TARGET, "no runtime timestamp found; no goroutine records a wait start, so no minutes are missing");
            }
        }
        if let Some(goroutine) = crash.goroutine {
            tracing::debug!(target: TRACE_TARGET, goroutine, "crashing goroutine");
        }
        Ok(Process {
            goroutines,
            threads,
            crash,
            clock,
            warnings,
            missing,
            provenance: Provenance {
                go_version: info.facts.go_version.clone(),
                layout: layout.source.clone(),
                allgs: allgs_method,
                wait_reasons: wait_reasons.map(|w| w.source),
                load_bias,
            },
        })
    }
}

/// Checks that the binary is built for the core's machine, whose `e_machine`
/// the core header gives.
fn check_architecture(arch: Arch, binary: &Binary) -> Result<(), ProcessError> {
    use object::{Architecture, Object};

    let (expected, core) = match arch {
        Arch::Amd64 => (Architecture::X86_64, "an x86-64"),
        Arch::Arm64 => (Architecture::Aarch64, "an AArch64"),
    };
    let found = binary.elf().architecture();
    if found == expected {
        return Ok(());
    }
    let name = match found {
        Architecture::X86_64 => "x86-64".to_owned(),
        Architecture::Aarch64 => "AArch64".to_owned(),
        other => format!("{other:?}"),
    };
    Err(ProcessError::ArchitectureMismatch {
        path: binary.path().display().to_string(),
        core,
        binary: name,
    })
}

/// Checks the core's NT_FILE entries of the executable against `binary`'s
/// program headers: each maps a part of the file at the address a segment
/// gives that part. One that does not was damaged, and the pages the core
/// reads from the file through it are other pages than the process had.
fn misplaced_executable_pages(core: &Core, binary: &Binary, load_bias: u64) -> Vec<String> {
    let Some(executable) = core.executable() else {
        return Vec::new();
    };
    let file_start = binary.data().as_ptr() as u64;
    // Each segment's address less its file offset (`p_vaddr - p_offset`).
    let deltas: Vec<u64> = binary
        .segments()
        .iter()
        .map(|segment| {
            let offset = (segment.data.as_ptr() as u64).wrapping_sub(file_start);
            segment.vaddr.wrapping_sub(offset)
        })
        .collect();
    core.mapped_files()
        .iter()
        .filter(|file| file.path == executable.path)
        .filter(|file| {
            let delta = file
                .start
                .wrapping_sub(load_bias)
                .wrapping_sub(file.file_offset);
            !deltas.contains(&delta)
        })
        .map(|file| {
            format!(
                "the core's NT_FILE note maps {} at {:#x} from file offset {:#x}, where no \
                 program header of the binary puts that part of the file: the note is \
                 damaged, and the executable's pages read from the file there are wrong",
                file.path.display(),
                file.start,
                file.file_offset
            )
        })
        .collect()
}

/// Computes the executable's load bias: from the core's copy of its ELF
/// header, else from `AT_ENTRY` and the binary's own entry point, which a
/// core cut short of the header's page still gives, and which a core
/// without NT_FILE note (as qemu-user writes them) gives too.
fn load_bias(core: &Core, binary: &Binary) -> Option<u64> {
    use object::Object;

    let from_entry = |entry: Option<u64>| {
        let bias = entry?.checked_sub(binary.elf().entry())?;
        (binary.is_pie() || bias == 0).then_some(bias)
    };
    match core.executable() {
        Some(executable) => executable
            .load_bias
            .or_else(|| from_entry(executable.entry)),
        None => from_entry(core.auxv().and_then(|auxv| auxv.entry())),
    }
}

/// Counts the ids that an earlier one of `ids` has.
fn reused_ids(ids: impl Iterator<Item = u64>) -> usize {
    let mut seen = FastSet::default();
    seen.reserve(ids.size_hint().1.unwrap_or(0));
    ids.filter(|&goid| !seen.insert(goid)).count()
}

/// Returns the ids of the live goroutines among the gs read. Dead gs are
/// left out: the runtime keeps them for reuse with their last id.
fn live_ids(records: &[Result<GRecord, String>]) -> impl Iterator<Item = u64> + '_ {
    records
        .iter()
        .filter_map(|record| record.as_ref().ok())
        .filter(|record| !matches!(record.status, GStatus::Dead | GStatus::DeadExtra))
        .map(|record| record.goid)
}

/// Sets each goroutine's wait minutes for the clock `now`.
fn count_wait_minutes(goroutines: &mut [Goroutine], now: i64) {
    for goroutine in goroutines {
        goroutine.wait_minutes = goroutine
            .record
            .as_ref()
            .and_then(|record| clock::wait_minutes(record, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_ids_count_repeats() {
        let ids = [1, 2, 2, 3, 3, 3, 4];
        assert_eq!(reused_ids(ids.into_iter()), 3);
        assert_eq!(reused_ids(ids[..2].iter().copied()), 0);
        assert_eq!(reused_ids(std::iter::empty()), 0);
    }
}
