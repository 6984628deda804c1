//! The JSON document, schema `gocrash.symbolize/1`, described field by
//! field in docs/json.md. Addresses are `0x` hex strings, because JSON
//! numbers lose precision above 2^53.

use std::io::{self, Write};

use serde::ser::SerializeSeq;
use serde::Serialize;
use symbolizer::goroutines::{Goroutine, Process};
use symbolizer::unwind::{Frame, FrameSource, SourceFrame, StackKind, StopReason};

use super::args::ArgPrinter;
use super::{is_dead, printed_name, signal_name, Report};
use crate::crash_input::{BinarySource, IdCheck};

/// The value of the top-level `schema` field.
pub const SCHEMA: &str = "gocrash.symbolize/1";

fn hex(value: u64) -> String {
    format!("{value:#x}")
}

/// An address serialized as a `0x` hex string, formatted straight into the
/// output: frames carry five each, and a string per address was a tenth of
/// the JSON output's time for 10,000 goroutines.
#[derive(Clone, Copy)]
struct Hex(u64);

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = *b"0x0000000000000000";
        let digits = (64 - self.0.leading_zeros()).div_ceil(4).max(1) as usize;
        for (index, byte) in text[2..2 + digits].iter_mut().enumerate() {
            let shift = 4 * (digits - 1 - index);
            *byte = DIGITS[((self.0 >> shift) & 0xf) as usize];
        }
        // Only ASCII digits were written.
        let text = std::str::from_utf8(&text[..2 + digits]).unwrap_or("0x?");
        serializer.serialize_str(text)
    }
}

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    partial: bool,
    missing: &'a [String],
    warnings: &'a [String],
    crash: Option<CrashOut>,
    runtime_stack: Option<FramesOut<'a>>,
    goroutines: GoroutinesOut<'a>,
    threads: Vec<ThreadOut<'a>>,
    binary: BinaryOut<'a>,
    core: CoreOut<'a>,
    /// The journal's crash text, for a crash selected from the journal.
    journal_text: Option<&'a super::JournalText>,
}

#[derive(Serialize)]
struct CrashOut {
    /// `panic`, `fatal_error`, `signal` or `unknown`.
    kind: &'static str,
    goroutine: Option<u64>,
    no_goroutine_reason: Option<String>,
    thread: Option<u32>,
    panics: Vec<PanicOut>,
    fatal_error: Option<String>,
    signal: Option<SignalOut>,
}

#[derive(Serialize)]
struct PanicOut {
    value: String,
    recovered: bool,
    repanicked: bool,
    goexit: bool,
}

#[derive(Serialize)]
struct SignalOut {
    number: u32,
    name: Option<&'static str>,
    description: Option<&'static str>,
    code: i64,
    addr: String,
    pc: String,
}

/// Every goroutine that is not dead, each built only while the writer
/// serializes it, so the document never contains all their frames at once.
/// Built up front, they doubled the memory of a run on 10,000 goroutines.
struct GoroutinesOut<'a> {
    process: Option<&'a Process>,
    crashing: Option<&'a Goroutine>,
    args: Option<&'a ArgPrinter<'a>>,
    /// Serialize pieces of the list on other threads. Their text is
    /// copied into the document as it is, so only for compact output.
    parallel: bool,
}

/// Goroutines from which [`GoroutinesOut`] serializes on other threads:
/// below it, starting the threads costs more than they save.
const PARALLEL_MIN_GOROUTINES: usize = 2048;
/// Goroutines per piece a thread serializes at a time.
const PIECE_GOROUTINES: usize = 256;
/// Threads serializing pieces; the calling thread copies their text out.
const MAX_JSON_THREADS: usize = 4;
/// Pieces each thread may have done ahead of the one being copied, which
/// bounds the memory to about `MAX_JSON_THREADS * (PIECES_AHEAD + 1)`
/// pieces (2 KB per goroutine of the corpus's largest crash).
const PIECES_AHEAD: usize = 2;

/// One piece of the goroutine list, serialized.
type Piece = Result<Vec<Box<serde_json::value::RawValue>>, serde_json::Error>;

impl Serialize for GoroutinesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let goroutines = self.process.map_or(&[][..], Process::goroutines);
        let live = goroutines.iter().filter(|g| !is_dead(g));
        if !self.parallel || goroutines.len() < PARALLEL_MIN_GOROUTINES {
            return serializer
                .collect_seq(live.map(|g| goroutine_out(self.crashing, g, self.args)));
        }
        let live: Vec<&Goroutine> = live.collect();
        let pieces: Vec<&[&Goroutine]> = live.chunks(PIECE_GOROUTINES).collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_JSON_THREADS)
            .min(pieces.len());
        let mut seq = serializer.serialize_seq(Some(live.len()))?;
        std::thread::scope(|scope| {
            // Piece `i` goes to thread `i % threads`, which sends its pieces
            // in order; reading the threads in turn keeps the list's order.
            let mut receivers = Vec::with_capacity(threads);
            for first in 0..threads {
                let (sender, receiver) = std::sync::mpsc::sync_channel::<Piece>(PIECES_AHEAD);
                let own: Vec<&[&Goroutine]> = pieces
                    .iter()
                    .skip(first)
                    .step_by(threads)
                    .copied()
                    .collect();
                let serialize_own = move |own: Vec<&[&Goroutine]>| {
                    for piece in own {
                        if sender.send(self.serialize_piece(piece)).is_err() {
                            return;
                        }
                    }
                };
                let spawned =
                    symbolizer::threads::spawn_or_return(scope, "gocrash-json", own, serialize_own);
                // A thread that cannot start leaves its pieces to this one.
                receivers.push(spawned.is_ok().then_some(receiver));
            }
            for (index, piece) in pieces.iter().enumerate() {
                match receivers.get(index % threads).and_then(Option::as_ref) {
                    Some(receiver) => {
                        let serialized = receiver
                            .recv()
                            .map_err(|_| serde::ser::Error::custom("a JSON thread stopped"))?
                            .map_err(serde::ser::Error::custom)?;
                        for goroutine in &serialized {
                            seq.serialize_element(goroutine)?;
                        }
                    }
                    None => {
                        for goroutine in *piece {
                            seq.serialize_element(&goroutine_out(
                                self.crashing,
                                goroutine,
                                self.args,
                            ))?;
                        }
                    }
                }
            }
            Ok(())
        })?;
        seq.end()
    }
}

impl GoroutinesOut<'_> {
    fn serialize_piece(&self, piece: &[&Goroutine]) -> Piece {
        piece
            .iter()
            .map(|g| serde_json::value::to_raw_value(&goroutine_out(self.crashing, g, self.args)))
            .collect()
    }
}

/// Every field borrows from the goroutine, so that writing 10,000 of them
/// allocates next to nothing.
#[derive(Serialize)]
struct GoroutineOut<'a> {
    id: Option<u64>,
    address: Hex,
    status: &'a str,
    wait_reason: Option<&'a str>,
    wait_minutes: Option<u64>,
    locked_to_thread: bool,
    crashing: bool,
    m: Option<MOut>,
    thread: Option<u32>,
    start_function: Option<&'a str>,
    created_by: Option<CreatedByOut<'a>>,
    frames: FramesOut<'a>,
    stop: Option<&'a StopReason>,
    complete: bool,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct MOut {
    id: i64,
    address: Hex,
}

#[derive(Serialize)]
struct CreatedByOut<'a> {
    function: &'a str,
    file: Option<&'a str>,
    line: Option<i64>,
    pc: Hex,
    parent_goroutine: Option<u64>,
}

/// The frames of a walk, each built only while the writer serializes it;
/// those from `printed_from` on are the ones the runtime prints.
struct FramesOut<'a> {
    frames: &'a [Frame],
    printed_from: usize,
    args: Option<&'a ArgPrinter<'a>>,
}

impl Serialize for FramesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.frames
                .iter()
                .enumerate()
                .map(|(index, frame)| frame_out(frame, index >= self.printed_from, self.args)),
        )
    }
}

/// The calls inlined into a frame, innermost first.
struct InlinedList<'a>(&'a [SourceFrame]);

impl Serialize for InlinedList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|s| InlinedOut {
            function: printed_name(&s.function),
            file: s.file.as_deref(),
            line: s.line,
        }))
    }
}

#[derive(Serialize)]
struct FrameOut<'a> {
    function: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<i64>,
    /// Calls inlined into this frame, innermost first.
    inlined: InlinedList<'a>,
    pc: Hex,
    sp: Hex,
    fp: Option<Hex>,
    entry: Option<Hex>,
    offset: Option<Hex>,
    args: Option<String>,
    found_by: FrameSource,
    stack: StackKind,
    trapped: bool,
    /// Whether the runtime's own traceback prints this frame (false for
    /// the crash machinery above the crashing goroutine's frames).
    printed: bool,
}

#[derive(Serialize)]
struct InlinedOut<'a> {
    function: &'a str,
    file: Option<&'a str>,
    line: Option<i64>,
}

#[derive(Serialize)]
struct ThreadOut<'a> {
    id: u32,
    m: Option<MOut>,
    goroutine: Option<u64>,
    pc: Hex,
    sp: Hex,
    frames: FramesOut<'a>,
    stop: &'a StopReason,
}

#[derive(Serialize)]
struct BinaryOut<'a> {
    path: String,
    source: BinarySource,
    build_ids: &'a symbolizer::buildid::BuildIds,
    build_id_check: &'a IdCheck,
    go_version: Option<String>,
    build_info: Option<&'a symbolizer::buildinfo::BuildInfo>,
    build_info_error: Option<&'a str>,
    load_bias: Option<String>,
}

#[derive(Serialize)]
struct CoreOut<'a> {
    path: String,
    /// systemd-coredump's journal record, when the crash was selected from
    /// the journal.
    journal: Option<&'a ingest::coredump::CoredumpRecord>,
    arch: &'static str,
    pid: Option<u32>,
    command: Option<String>,
    command_line: Option<String>,
    signal: Option<i32>,
    threads: usize,
    executable: Option<ExecutableOut>,
}

#[derive(Serialize)]
struct ExecutableOut {
    path: String,
    deleted: bool,
    build_ids: symbolizer::buildid::BuildIds,
}

/// Writes the document, indented or on one line.
pub fn write(out: &mut dyn Write, report: &Report<'_>, indent: bool) -> io::Result<()> {
    let crash = report.crash;
    let core = &crash.core;
    let args = report.process.as_ref().ok().map(|process| {
        ArgPrinter::new(
            &crash.binary,
            core.memory(),
            core.arch(),
            process.provenance().load_bias,
            !report.go_at_least(21),
        )
    });
    let frames = |frames, printed_from| FramesOut {
        frames,
        printed_from,
        args: args.as_ref(),
    };
    let goroutines = GoroutinesOut {
        process: report.process.as_ref().ok().copied(),
        crashing: report.crashing_goroutine(),
        args: args.as_ref(),
        parallel: !indent,
    };
    let (crash_out, runtime_stack, threads) = match &report.process {
        Ok(process) => (
            Some(crash_out(process, report)),
            process.runtime_stack().map(|stack| frames(stack, 0)),
            process
                .threads()
                .iter()
                .map(|t| ThreadOut {
                    id: t.id,
                    m: t.m.map(|m| MOut {
                        id: m.id,
                        address: Hex(m.address),
                    }),
                    goroutine: t
                        .goroutine
                        .and_then(|address| {
                            process.goroutines().iter().find(|g| g.address == address)
                        })
                        .and_then(|g| g.goid),
                    pc: Hex(t.regs.pc),
                    sp: Hex(t.regs.sp),
                    frames: frames(&t.walk.frames, 0),
                    stop: &t.walk.stop,
                })
                .collect(),
        ),
        Err(_) => (None, None, Vec::new()),
    };
    let document = Document {
        schema: SCHEMA,
        journal_text: report.journal_text.as_ref(),
        partial: report.is_partial(),
        missing: &report.missing,
        warnings: &report.warnings,
        crash: crash_out,
        runtime_stack,
        goroutines,
        threads,
        binary: BinaryOut {
            path: crash.binary.path().display().to_string(),
            source: crash.binary_source,
            build_ids: &crash.binary_ids,
            build_id_check: &crash.id_check,
            go_version: report
                .build_info
                .as_ref()
                .ok()
                .map(|info| info.go_version.clone()),
            build_info: report.build_info.as_ref().ok(),
            build_info_error: report.build_info.as_ref().err().map(String::as_str),
            load_bias: report
                .process
                .as_ref()
                .ok()
                .map(|p| hex(p.provenance().load_bias)),
        },
        core: CoreOut {
            path: crash
                .source
                .as_ref()
                .and_then(|s| s.core_display_path())
                .unwrap_or_else(|| crash.core_path.clone())
                .display()
                .to_string(),
            journal: crash.source.as_ref().and_then(|s| s.record.as_ref()),
            arch: core.arch().name(),
            pid: core.process().map(|p| p.pid),
            command: core.process().map(|p| p.fname.clone()),
            command_line: core.process().map(|p| p.psargs.clone()),
            signal: core.siginfo().map(|s| s.signo),
            threads: core.threads().len(),
            executable: core.executable().map(|e| ExecutableOut {
                path: e.path.display().to_string(),
                deleted: e.deleted,
                build_ids: e.build_ids.clone(),
            }),
        },
    };
    crate::output::write_json(out, &document, indent)
}

fn crash_out(process: &Process, report: &Report<'_>) -> CrashOut {
    let crash = process.crash();
    let fatal_error = report.fatal_error.clone();
    let kind = if fatal_error.is_some() {
        "fatal_error"
    } else if crash.panics.iter().any(|p| !p.goexit) {
        "panic"
    } else if report.fatal_signal.is_some() {
        "signal"
    } else {
        "unknown"
    };
    let signal = match (crash.signal, &report.fatal_signal) {
        (Some(s), _) => Some((s.signo, s.code as i64, s.addr, s.pc)),
        (None, Some((_, s))) => Some((s.signo, i64::from(s.code), s.addr, s.pc)),
        (None, None) => None,
    };
    CrashOut {
        kind,
        goroutine: report.crashing_goroutine().and_then(|g| g.goid),
        no_goroutine_reason: crash.no_goroutine_reason.clone(),
        thread: report
            .fatal_signal
            .as_ref()
            .map(|(thread, _)| *thread)
            .or(crash.thread),
        panics: crash
            .panics
            .iter()
            .map(|p| PanicOut {
                value: p.value.clone(),
                recovered: p.recovered,
                repanicked: p.repanicked,
                goexit: p.goexit,
            })
            .collect(),
        fatal_error,
        signal: signal.map(|(number, code, addr, pc)| {
            let names = signal_name(number);
            SignalOut {
                number,
                name: names.map(|n| n.0),
                description: names.map(|n| n.1),
                code,
                addr: hex(addr),
                pc: hex(pc),
            }
        }),
    }
}

fn goroutine_out<'a>(
    crashing: Option<&Goroutine>,
    goroutine: &'a Goroutine,
    args: Option<&'a ArgPrinter<'a>>,
) -> GoroutineOut<'a> {
    let crashing = crashing.is_some_and(|c| std::ptr::eq(c, goroutine));
    let walk = goroutine.walk.as_ref();
    GoroutineOut {
        id: goroutine.goid,
        address: Hex(goroutine.address),
        status: &goroutine.status_text,
        wait_reason: goroutine.wait_reason.as_deref(),
        wait_minutes: goroutine.wait_minutes,
        locked_to_thread: goroutine.locked_to_thread,
        crashing,
        m: goroutine.m.map(|m| MOut {
            id: m.id,
            address: Hex(m.address),
        }),
        thread: goroutine.thread,
        start_function: goroutine.start_function.as_deref(),
        created_by: goroutine.created_by.as_ref().map(|c| CreatedByOut {
            function: printed_name(&c.function),
            file: c.file.as_deref(),
            line: c.line,
            pc: Hex(c.pc),
            parent_goroutine: c.parent_goid.filter(|&p| p != 0),
        }),
        frames: FramesOut {
            frames: walk.map_or(&[][..], |w| &w.frames),
            printed_from: goroutine.printed_from,
            args,
        },
        stop: walk.map(|w| &w.stop),
        complete: walk.is_some_and(|w| w.stop.is_complete()),
        error: goroutine.error.as_deref(),
    }
}

fn frame_out<'a>(frame: &'a Frame, printed: bool, args: Option<&ArgPrinter<'_>>) -> FrameOut<'a> {
    let (physical, inlined) = match frame.source.split_last() {
        Some((physical, inlined)) => (Some(physical), inlined),
        None => (None, &[][..]),
    };
    FrameOut {
        function: physical.map(|p| printed_name(&p.function)),
        file: physical.and_then(|p| p.file.as_deref()),
        line: physical.and_then(|p| p.line),
        inlined: InlinedList(inlined),
        pc: Hex(frame.pc),
        sp: Hex(frame.sp),
        fp: frame.fp.map(Hex),
        entry: frame.entry.map(Hex),
        offset: frame.offset().map(Hex),
        args: physical.and(args).and_then(|a| a.args(frame)),
        found_by: frame.found_by,
        stack: frame.stack,
        trapped: frame.trapped,
        printed,
    }
}
