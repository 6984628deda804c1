//! The JSON document, schema `gocrash.symbolize/1`, described field by
//! field in docs/json.md. Addresses are `0x` hex strings, because JSON
//! numbers lose precision above 2^53.

use std::io::{self, Write};

use serde::Serialize;
use symbolizer::goroutines::{Goroutine, MSummary, Process, ThreadState};
use symbolizer::hashing::FastMap;
use symbolizer::unwind::Frame;

use super::args::{ArgCache, ArgPrinter};
use super::compact_json::{push_array, Indenter, Object};
use super::{has_fault_address, is_dead, printed_name, signal_name, Report};
use crate::crash_input::{BinarySource, IdCheck};

/// The value of the top-level `schema` field.
pub const SCHEMA: &str = "gocrash.symbolize/1";

fn hex(value: u64) -> String {
    format!("{value:#x}")
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
    /// The fault address, for the signals that have one.
    addr: Option<String>,
    pc: String,
}

/// Goroutines from which the list is written on other threads: below it,
/// starting the threads costs more than they save.
const PARALLEL_MIN_GOROUTINES: usize = 2048;
/// Goroutines per piece a thread writes at a time.
const PIECE_GOROUTINES: usize = 256;
/// Threads writing pieces; the calling thread copies their text out.
const MAX_JSON_THREADS: usize = 4;
/// Pieces each thread may have done ahead of the one being copied, which
/// bounds the memory to about `MAX_JSON_THREADS * (PIECES_AHEAD + 1)`
/// pieces (2 KB per goroutine of the corpus's largest crash).
const PIECES_AHEAD: usize = 2;
/// Bytes gathered before they are passed to the output.
const OUTPUT_CHUNK: usize = 64 * 1024;

/// Most bytes a [`FrameCache`] keeps.
const MAX_FRAME_CACHE_BYTES: usize = 4 << 20;

/// The parts of frames' JSON that their pc decides, kept per pc, since the
/// goroutines of one program share few distinct pcs. One per thread.
#[derive(Default)]
struct FrameCache<'a> {
    /// The start of each frame's object up to its `pc` (its function,
    /// file, line and inlined calls), most of a frame's text.
    texts: Vec<u8>,
    spans: FastMap<(u64, u64), (usize, usize)>,
    /// The argument layouts.
    args: ArgCache<'a>,
}

impl FrameCache<'_> {
    /// Appends the start of `frame`'s object, from the cache when its pc
    /// was written before.
    fn write_start(&mut self, buf: &mut Vec<u8>, frame: &Frame) -> io::Result<()> {
        let key = (frame.pc, frame.symbol_pc);
        if let Some(text) = self
            .spans
            .get(&key)
            .and_then(|&(start, end)| self.texts.get(start..end))
        {
            buf.extend_from_slice(text);
            return Ok(());
        }
        let start = buf.len();
        write_frame_start(buf, frame)?;
        let written = buf.get(start..).unwrap_or_default();
        if self.texts.len() + written.len() <= MAX_FRAME_CACHE_BYTES {
            let cached = self.texts.len();
            self.texts.extend_from_slice(written);
            self.spans.insert(key, (cached, self.texts.len()));
        }
        Ok(())
    }
}

/// The crashing goroutine and the argument printer, which every
/// goroutine's JSON needs.
#[derive(Clone, Copy)]
struct GoroutineContext<'a> {
    crashing: Option<&'a Goroutine>,
    args: Option<&'a ArgPrinter<'a>>,
}

impl<'a> GoroutineContext<'a> {
    /// Appends `goroutines` to `buf`, separated by commas.
    fn write_piece(
        &self,
        buf: &mut Vec<u8>,
        cache: &mut FrameCache<'a>,
        goroutines: &[&Goroutine],
    ) -> io::Result<()> {
        for (index, goroutine) in goroutines.iter().enumerate() {
            if index > 0 {
                buf.push(b',');
            }
            write_goroutine(buf, cache, *self, goroutine)?;
        }
        Ok(())
    }
}

/// Writes every goroutine that is not dead as a JSON array. Each goroutine
/// is written only when its turn comes, so the document never contains all
/// their frames at once: built up front, they doubled the memory of a run
/// on 10,000 goroutines.
fn write_goroutines(
    out: &mut dyn Write,
    goroutines: &[Goroutine],
    context: GoroutineContext<'_>,
) -> io::Result<()> {
    let live: Vec<&Goroutine> = goroutines.iter().filter(|g| !is_dead(g)).collect();
    let pieces: Vec<&[&Goroutine]> = live.chunks(PIECE_GOROUTINES).collect();
    out.write_all(b"[")?;
    let mut cache = FrameCache::default();
    if live.len() < PARALLEL_MIN_GOROUTINES {
        let mut buf = Vec::with_capacity(OUTPUT_CHUNK);
        for (index, piece) in pieces.iter().enumerate() {
            if index > 0 {
                buf.push(b',');
            }
            context.write_piece(&mut buf, &mut cache, piece)?;
            out.write_all(&buf)?;
            buf.clear();
        }
        return out.write_all(b"]");
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_JSON_THREADS)
        .min(pieces.len());
    std::thread::scope(|scope| -> io::Result<()> {
        // Piece `i` goes to thread `i % threads`, which sends its pieces in
        // order, so reading the threads in turn keeps the list's order.
        let mut receivers = Vec::with_capacity(threads);
        for first in 0..threads {
            let (sender, receiver) =
                std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(PIECES_AHEAD);
            let own: Vec<&[&Goroutine]> = pieces
                .iter()
                .skip(first)
                .step_by(threads)
                .copied()
                .collect();
            let write_own = move |own: Vec<&[&Goroutine]>| {
                let mut cache = FrameCache::default();
                for piece in own {
                    let mut buf = Vec::with_capacity(piece.len() * 2048);
                    let written = context
                        .write_piece(&mut buf, &mut cache, piece)
                        .map(|()| buf);
                    if sender.send(written).is_err() {
                        return;
                    }
                }
            };
            let spawned =
                symbolizer::threads::spawn_or_return(scope, "gocrash-json", own, write_own);
            // A thread that cannot start leaves its pieces to this one.
            receivers.push(spawned.is_ok().then_some(receiver));
        }
        let mut own_buf = Vec::new();
        for (index, piece) in pieces.iter().enumerate() {
            if index > 0 {
                out.write_all(b",")?;
            }
            match receivers.get(index % threads).and_then(Option::as_ref) {
                Some(receiver) => {
                    let written = receiver.recv().map_err(|_| {
                        io::Error::other("JSON writer thread stopped unexpectedly")
                    })??;
                    out.write_all(&written)?;
                }
                None => {
                    own_buf.clear();
                    context.write_piece(&mut own_buf, &mut cache, piece)?;
                    out.write_all(&own_buf)?;
                }
            }
        }
        Ok(())
    })?;
    out.write_all(b"]")
}

/// Appends the frames of a walk as a JSON array. Those from `printed_from`
/// on are the ones the runtime prints.
fn write_frames<'a>(
    buf: &mut Vec<u8>,
    cache: &mut FrameCache<'a>,
    frames: &[Frame],
    printed_from: usize,
    args: Option<&ArgPrinter<'a>>,
) -> io::Result<()> {
    push_array(buf, frames.iter().enumerate(), |buf, (index, frame)| {
        write_frame(buf, cache, frame, index >= printed_from, args)
    })
}

/// Appends an M as `{"id", "address"}`, or `null`.
fn write_m(buf: &mut Vec<u8>, m: Option<&MSummary>) {
    let Some(m) = m else {
        buf.extend_from_slice(b"null");
        return;
    };
    let mut object = Object::new(buf);
    object.int("id", m.id);
    object.hex("address", m.address);
    object.end();
}

fn write_thread<'a>(
    buf: &mut Vec<u8>,
    cache: &mut FrameCache<'a>,
    process: &Process,
    thread: &ThreadState,
    args: Option<&ArgPrinter<'a>>,
) -> io::Result<()> {
    let goroutine = thread
        .goroutine
        .and_then(|address| process.goroutines().iter().find(|g| g.address == address))
        .and_then(|g| g.goid);
    let mut object = Object::new(buf);
    object.int("id", thread.id);
    write_m(object.key("m"), thread.m.as_ref());
    object.opt_int("goroutine", goroutine);
    object.hex("pc", thread.regs.pc);
    object.hex("sp", thread.regs.sp);
    write_frames(object.key("frames"), cache, &thread.walk.frames, 0, args)?;
    object.serialized("stop", &thread.walk.stop)?;
    object.serialized("elided", &thread.walk.elided)?;
    object.end();
    Ok(())
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
    let mut buffered = io::BufWriter::with_capacity(OUTPUT_CHUNK, out);
    if indent {
        let mut indenter = Indenter::new(&mut buffered);
        write_document(&mut indenter, report)?;
    } else {
        write_document(&mut buffered, report)?;
    }
    buffered.write_all(b"\n")?;
    buffered.flush()
}

/// Writes the document on one line. The fields around the goroutines are
/// gathered in a buffer, and the goroutines go to `out` as they are written.
fn write_document(out: &mut dyn Write, report: &Report<'_>) -> io::Result<()> {
    let crash = report.crash;
    let core = &crash.core;
    let process = report.process.as_ref().ok().copied();
    let args = process.map(|process| {
        ArgPrinter::new(
            &crash.binary,
            core.memory(),
            core.arch(),
            process.provenance().load_bias,
            !report.go_at_least(21),
        )
    });
    let args = args.as_ref();

    let mut buf = Vec::with_capacity(OUTPUT_CHUNK);
    let mut document = Object::new(&mut buf);
    document.str("schema", SCHEMA);
    document.bool("partial", report.is_partial());
    document.serialized("missing", &report.missing)?;
    document.serialized("warnings", &report.warnings)?;
    document.serialized("crash", &process.map(|p| crash_out(p, report)))?;
    let mut cache = FrameCache::default();
    match process.and_then(Process::runtime_stack) {
        Some(stack) => write_frames(document.key("runtime_stack"), &mut cache, stack, 0, args)?,
        None => document.null("runtime_stack"),
    }
    document.key("goroutines");
    document.drain_to(out)?;
    let context = GoroutineContext {
        crashing: report.crashing_goroutine(),
        args,
    };
    write_goroutines(out, process.map_or(&[][..], Process::goroutines), context)?;
    let threads = process.map_or(&[][..], Process::threads);
    push_array(document.key("threads"), threads, |buf, thread| {
        // Threads exist only with a process.
        process.map_or(Ok(()), |process| {
            write_thread(buf, &mut cache, process, thread, args)
        })
    })?;
    document.serialized(
        "binary",
        &BinaryOut {
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
            load_bias: process.map(|p| hex(p.provenance().load_bias)),
        },
    )?;
    document.serialized(
        "core",
        &CoreOut {
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
    )?;
    // The journal's crash text, for a crash selected from the journal.
    document.serialized("journal_text", &report.journal_text)?;
    document.end();
    out.write_all(&buf)
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
    let goroutine = report.crashing_goroutine().and_then(|g| g.goid);
    CrashOut {
        kind,
        goroutine,
        no_goroutine_reason: report.no_goroutine_reason(),
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
                addr: has_fault_address(number).then(|| hex(addr)),
                pc: hex(pc),
            }
        }),
    }
}

/// Appends one goroutine's object. Every field borrows from the goroutine,
/// so that writing 10,000 of them allocates next to nothing.
fn write_goroutine<'a>(
    buf: &mut Vec<u8>,
    cache: &mut FrameCache<'a>,
    context: GoroutineContext<'a>,
    goroutine: &Goroutine,
) -> io::Result<()> {
    let crashing = context.crashing.is_some_and(|c| std::ptr::eq(c, goroutine));
    let walk = goroutine.walk.as_ref();
    let mut object = Object::new(buf);
    object.opt_int("id", goroutine.goid);
    object.hex("address", goroutine.address);
    object.str("status", &goroutine.status_text);
    object.opt_str("wait_reason", goroutine.wait_reason.as_deref());
    object.opt_int("wait_minutes", goroutine.wait_minutes);
    object.bool("locked_to_thread", goroutine.locked_to_thread);
    object.bool("crashing", crashing);
    write_m(object.key("m"), goroutine.m.as_ref());
    object.opt_int("thread", goroutine.thread);
    object.opt_str("start_function", goroutine.start_function.as_deref());
    match &goroutine.created_by {
        Some(created_by) => {
            let mut creator = Object::new(object.key("created_by"));
            creator.str("function", printed_name(&created_by.function));
            creator.opt_str("file", created_by.file.as_deref());
            creator.opt_int("line", created_by.line);
            creator.hex("pc", created_by.pc);
            creator.opt_int(
                "parent_goroutine",
                created_by.parent_goid.filter(|&p| p != 0),
            );
            creator.end();
        }
        None => object.null("created_by"),
    }
    write_frames(
        object.key("frames"),
        cache,
        walk.map_or(&[][..], |w| &w.frames),
        goroutine.printed_from,
        context.args,
    )?;
    object.serialized("stop", &walk.map(|w| &w.stop))?;
    object.bool("complete", walk.is_some_and(|w| w.stop.is_complete()));
    object.serialized("elided", &walk.and_then(|w| w.elided))?;
    object.opt_str("error", goroutine.error.as_deref());
    object.end();
    Ok(())
}

/// Appends one frame's object. `printed` is whether the runtime's own
/// traceback prints it (false for the crash machinery above the crashing
/// goroutine's frames).
fn write_frame<'a>(
    buf: &mut Vec<u8>,
    cache: &mut FrameCache<'a>,
    frame: &Frame,
    printed: bool,
    args: Option<&ArgPrinter<'a>>,
) -> io::Result<()> {
    cache.write_start(buf, frame)?;
    let mut object = Object::resume(buf);
    object.hex("sp", frame.sp);
    object.opt_hex("fp", frame.fp);
    object.opt_hex("entry", frame.entry);
    object.opt_hex("offset", frame.offset());
    let printed_args = args
        .filter(|_| !frame.source.is_empty())
        .and_then(|a| a.args(frame, &mut cache.args));
    object.opt_str("args", printed_args.as_deref());
    object.serialized("found_by", &frame.found_by)?;
    object.serialized("stack", &frame.stack)?;
    object.bool("trapped", frame.trapped);
    object.bool("printed", printed);
    object.end();
    Ok(())
}

/// Appends the start of a frame's object: the opening brace and the fields
/// its pc decides, up to `pc`, which [`FrameCache`] keeps.
fn write_frame_start(buf: &mut Vec<u8>, frame: &Frame) -> io::Result<()> {
    let (physical, inlined) = match frame.source.split_last() {
        Some((physical, inlined)) => (Some(physical), inlined),
        None => (None, &[][..]),
    };
    let mut object = Object::new(buf);
    object.opt_str("function", physical.map(|p| printed_name(&p.function)));
    object.opt_str("file", physical.and_then(|p| p.file.as_deref()));
    object.opt_int("line", physical.and_then(|p| p.line));
    // Calls inlined into this frame, innermost first.
    push_array(object.key("inlined"), inlined, |buf, call| {
        let mut object = Object::new(buf);
        object.str("function", printed_name(&call.function));
        object.opt_str("file", call.file.as_deref());
        object.opt_int("line", call.line);
        object.end();
        Ok(())
    })?;
    object.hex("pc", frame.pc);
    Ok(())
}
