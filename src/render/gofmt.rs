//! The crash in the layout the Go runtime of the binary's release prints
//! with `GOTRACEBACK=crash`, so that tools reading Go tracebacks read ours.
//!
//! The runtime takes one of three paths (`runtime/panic.go`,
//! `runtime/signal_unix.go`):
//! - an unrecovered panic: the panic chain, the `[signal ...]` line when a
//!   signal became the panic, then the crashing goroutine and the others;
//! - a fatal error (`throw`, `fatal`): the `fatal error:` line, the signal
//!   line, the `runtime stack:` frames when it happened on the system
//!   stack, then the goroutines;
//! - a fatal signal the runtime could not turn into a panic: `SIGNAME:
//!   description` and `PC=` lines, the interrupted goroutine (or the
//!   thread's `goroutine 0`), the others, a register dump, then one section
//!   per further thread after `-----`.
//!
//! Goroutine headers carry the fields the release prints (`gp= m= mp=`
//! since Go 1.22, `created by ... in goroutine N` since Go 1.21), and long
//! stacks are elided as the release does (100 frames and a marker up to Go
//! 1.20, the first and last 50 since Go 1.21). What differs from the
//! runtime's own text is listed in docs/limitations.md.

use std::io::{self, Write};

use symbolizer::core::Arch;
use symbolizer::goroutines::{Goroutine, Process, ThreadState};
use symbolizer::runtime::crash::{GoSignal, THROW_FUNCTIONS};
use symbolizer::runtime::goroutine::{read_g, read_m};
use symbolizer::runtime::layout::RuntimeLayout;
use symbolizer::runtime::panic::PanicRecord;
use symbolizer::unwind::{Frame, FrameSource, StackKind};

use super::args::{ArgCache, ArgPrinter};
use super::escape::EscapingWriter;
use super::signal::{handling_threads, HandledSignal};
use super::{crashing_goroutine, is_dead, printed_frames, printed_name, signal_name, Report};

/// Logical frames printed before the elision marker since Go 1.21
/// (`tracebackInnerFrames`), and after it (`tracebackOuterFrames`).
const INNER_FRAMES: usize = 50;
const OUTER_FRAMES: usize = 50;
/// Physical frames one traceback walks before Go 1.21 (`_TracebackMaxFrames`).
const MAX_FRAMES_BEFORE_1_21: usize = 100;
/// The message `runtime.newstack` throws when a stack would outgrow its limit.
const STACK_OVERFLOW: &str = "stack overflow";

/// The runtime's path to printing the crash.
enum CrashPath<'a> {
    Panic,
    Fatal(String),
    /// A fatal signal, and the thread that received it first.
    Signal(&'a ThreadState, HandledSignal),
    /// None of the three could be recognised; only the goroutines print.
    Unknown,
}

/// Writes the crash in the runtime's layout. Writes nothing when no
/// goroutine could be rebuilt.
pub fn write(out: &mut dyn Write, report: &Report<'_>) -> io::Result<()> {
    let Ok(process) = &report.process else {
        return Ok(());
    };
    let printer = Printer::new(report, process);
    // The runtime prints panic values raw; control characters other than
    // newline and tab are escaped here so that a hostile value cannot drive
    // the terminal. Text without them comes out byte for byte.
    let mut escaped = EscapingWriter::new(out);
    printer.write(&mut escaped)?;
    escaped.finish()
}

struct Printer<'a> {
    report: &'a Report<'a>,
    process: &'a Process,
    arch: Arch,
    args: ArgPrinter<'a>,
    /// The argument layouts of the pcs printed so far.
    arg_cache: std::cell::RefCell<ArgCache<'a>>,
    crashing_thread: Option<&'a ThreadState>,
    layout: std::cell::OnceCell<Option<RuntimeLayout>>,
}

/// One printed frame: the function line and the position line.
struct LogicalFrame {
    call: String,
    position: String,
}

impl<'a> Printer<'a> {
    fn new(report: &'a Report<'a>, process: &'a Process) -> Printer<'a> {
        let core = &report.crash.core;
        let arch = core.arch();
        let args = ArgPrinter::new(
            &report.crash.binary,
            core.memory(),
            arch,
            process.provenance().load_bias,
            !report.go_at_least(21),
        );
        Printer {
            report,
            process,
            arch,
            args,
            arg_cache: std::cell::RefCell::default(),
            crashing_thread: process.crashing_thread(),
            layout: std::cell::OnceCell::new(),
        }
    }

    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let crash = self.process.crash();
        let path = self.crash_path();
        match &path {
            CrashPath::Panic => {
                self.write_panics(out, &crash.panics, "")?;
                self.write_signal_line(out)?;
            }
            CrashPath::Fatal(message) => {
                if message == STACK_OVERFLOW {
                    self.write_stack_overflow_diagnostics(out)?;
                }
                let mut prefix = String::new();
                if self.report.go_at_least(26)
                    && self.thrown_by("runtime.fatal")
                    && printable_panics(&crash.panics)
                {
                    self.write_panics(out, &crash.panics, "")?;
                    prefix.push('\t');
                }
                writeln!(out, "{prefix}fatal error: {}", self.indented(message))?;
                self.write_signal_line(out)?;
            }
            CrashPath::Signal(thread, signal) => {
                self.write_signal_headline(out, signal, Some(thread))?;
                return self.write_signal_dump(out, thread, signal);
            }
            CrashPath::Unknown => {}
        }

        let runtime_stack = self.process.runtime_stack();
        if let Some(frames) = runtime_stack {
            writeln!(out)?;
            writeln!(out, "runtime stack:")?;
            self.write_frames(out, frames, 0)?;
        }
        let crashing = crashing_goroutine(self.process);
        if let Some(goroutine) = crashing {
            writeln!(out)?;
            self.write_goroutine(out, goroutine)?;
        }
        self.write_others(out, crashing, None)?;
        Ok(())
    }

    fn crash_path(&self) -> CrashPath<'a> {
        let crash = self.process.crash();
        if let Some(message) = &self.report.fatal_error {
            return CrashPath::Fatal(message.clone());
        }
        if printable_panics(&crash.panics) {
            return CrashPath::Panic;
        }
        let origin = self.report.fatal_signal.as_ref().and_then(|(id, signal)| {
            let thread = self.process.threads().iter().find(|t| t.id == *id)?;
            Some((thread, signal.clone()))
        });
        match origin {
            Some((thread, signal)) => CrashPath::Signal(thread, signal),
            None => CrashPath::Unknown,
        }
    }

    /// Writes the two lines `runtime.newstack` prints before throwing
    /// `stack overflow`: the limit (from the `runtime.maxstacksize` and
    /// `runtime.maxstackceiling` variables, so only when the binary keeps
    /// its symbol table) and the goroutine's sp and stack bounds.
    fn write_stack_overflow_diagnostics(&self, out: &mut dyn Write) -> io::Result<()> {
        let in_newstack = self.process.runtime_stack().is_some_and(|frames| {
            frames
                .iter()
                .any(|f| f.function() == Some("runtime.newstack"))
        });
        let Some(record) = crashing_goroutine(self.process).and_then(|g| g.record.as_ref()) else {
            return Ok(());
        };
        if !in_newstack {
            return Ok(());
        }
        let variable = |name: &str| -> Option<u64> {
            use object::{Object, ObjectSymbol};
            let symbol = self
                .report
                .crash
                .binary
                .elf()
                .symbols()
                .find(|s| s.name() == Ok(name))?;
            let address = symbol
                .address()
                .checked_add(self.process.provenance().load_bias)?;
            self.report.crash.core.memory().read_u64(address).ok()
        };
        // NOTE: a stripped binary has no symbol table, so the limit line is
        // left out there.
        if let (Some(size), Some(ceiling)) = (
            variable("runtime.maxstacksize"),
            variable("runtime.maxstackceiling"),
        ) {
            writeln!(
                out,
                "runtime: goroutine stack exceeds {}-byte limit",
                size.min(ceiling)
            )?;
        }
        // On amd64 newstack reports sched.sp less the word the call to
        // morestack pushed.
        let sp = match self.arch {
            Arch::Amd64 => record.sched.sp.wrapping_sub(8),
            Arch::Arm64 => record.sched.sp,
        };
        writeln!(
            out,
            "runtime: sp={sp:#x} stack=[{:#x}, {:#x}]",
            record.stack.lo, record.stack.hi
        )
    }

    /// Reports whether `function` threw the fatal error on the crashing thread.
    fn thrown_by(&self, function: &str) -> bool {
        let Some(thread) = self.crashing_thread else {
            return false;
        };
        let innermost_throw = thread
            .walk
            .frames
            .iter()
            .filter_map(|f| f.function())
            .find(|name| THROW_FUNCTIONS.iter().any(|(throw, _)| throw == name));
        innermost_throw == Some(function)
    }

    /// Formats a message as `printindented` does from Go 1.23 on: a tab
    /// after each newline. Older releases print it as it is.
    fn indented(&self, message: &str) -> String {
        if self.report.go_at_least(23) {
            message.replace('\n', "\n\t")
        } else {
            message.to_owned()
        }
    }

    /// Writes the panic chain as `printpanics` does, oldest first.
    fn write_panics(
        &self,
        out: &mut dyn Write,
        panics: &[PanicRecord],
        first_prefix: &str,
    ) -> io::Result<()> {
        let folds_repanics = self.report.go_at_least(25);
        let mut prefix = first_prefix.to_owned();
        let mut previous: Option<&PanicRecord> = None;
        for record in panics {
            if let Some(older) = previous {
                if folds_repanics && older.repanicked {
                    previous = Some(record);
                    continue;
                }
                if !older.goexit {
                    prefix.push('\t');
                }
            }
            previous = Some(record);
            if record.goexit {
                continue;
            }
            // The symbolizer indents continuation lines of string values as
            // Go 1.23 and later print them; older releases did not.
            let value = if self.report.go_at_least(23) {
                record.value.clone()
            } else {
                record.value.replace("\n\t", "\n")
            };
            let suffix = if record.recovered && record.repanicked && folds_repanics {
                " [recovered, repanicked]"
            } else if record.recovered {
                " [recovered]"
            } else {
                ""
            };
            writeln!(out, "{prefix}panic: {value}{suffix}")?;
            prefix.clear();
        }
        out.write_all(prefix.as_bytes())
    }

    /// Writes `[signal ...]` when a signal became the panic or throw.
    fn write_signal_line(&self, out: &mut dyn Write) -> io::Result<()> {
        let Some(signal) = self.recorded_signal() else {
            return Ok(());
        };
        match signal_name(signal.signo) {
            Some((name, description)) => write!(out, "[signal {name}: {description}")?,
            None => write!(out, "[signal {:#x}", signal.signo)?,
        }
        writeln!(
            out,
            " code={:#x} addr={:#x} pc={:#x}]",
            signal.code, signal.addr, signal.pc
        )
    }

    /// Writes the first lines of a fatal signal's report: `SIGNAME:
    /// description`, `PC=`, and the cgo line.
    fn write_signal_headline(
        &self,
        out: &mut dyn Write,
        signal: &HandledSignal,
        thread: Option<&ThreadState>,
    ) -> io::Result<()> {
        match signal_name(signal.signo) {
            Some((name, description)) => writeln!(out, "{name}: {description}")?,
            None => writeln!(out, "Signal {}", signal.signo)?,
        }
        let m = thread.and_then(|t| t.m).map_or(-1, |m| m.id);
        // sigcode is printed as an unsigned 64-bit number of the signed si_code.
        write!(
            out,
            "PC={:#x} m={m} sigcode={}",
            signal.pc,
            i64::from(signal.code) as u64
        )?;
        if self.report.go_at_least(22) && (signal.signo == 11 || signal.signo == 7) {
            write!(out, " addr={:#x}", signal.addr)?;
        }
        writeln!(out)?;
        if thread.is_some_and(|t| self.arrived_during_cgo(t, signal)) {
            writeln!(out, "signal arrived during cgo execution")?;
        }
        Ok(())
    }

    /// Reports whether the signal interrupted C code called from a
    /// goroutine. The runtime then prints that goroutine instead of the
    /// thread's g0.
    fn arrived_during_cgo(&self, thread: &ThreadState, signal: &HandledSignal) -> bool {
        let in_c = thread
            .walk
            .frames
            .get(signal.interrupted)
            .is_some_and(|f| !f.is_go() && f.stack != StackKind::Goroutine);
        in_c && thread.goroutine.is_some()
    }

    /// Writes the goroutines and registers of a fatal signal's report, and
    /// the sections of the other threads.
    fn write_signal_dump(
        &self,
        out: &mut dyn Write,
        thread: &'a ThreadState,
        signal: &HandledSignal,
    ) -> io::Result<()> {
        writeln!(out)?;
        let shown = self.write_interrupted(out, thread, signal, false)?;
        self.write_others(out, shown, Some(thread))?;
        writeln!(out)?;
        self.write_registers(out, signal)?;

        let mut others: Vec<(&ThreadState, HandledSignal)> =
            handling_threads(self.arch, self.report.crash.core.memory(), self.process)
                .into_iter()
                .filter(|(t, _)| t.id != thread.id && t.m.is_some())
                .collect();
        // The runtime relays SIGQUIT from thread to thread, and the kernel
        // picks the next one; M order is the usual outcome. Before Go 1.22
        // the last thread of the relay did not wait and wrote the core, so
        // the thread the core names comes last.
        let last = self
            .crashing_thread
            .map(|t| t.id)
            .filter(|_| !self.report.go_at_least(22));
        others.sort_by_key(|(t, _)| (Some(t.id) == last, t.m.map_or(i64::MAX, |m| m.id)));
        for (other, other_signal) in &others {
            writeln!(out)?;
            writeln!(out, "-----")?;
            writeln!(out)?;
            self.write_signal_headline(out, other_signal, Some(other))?;
            writeln!(out)?;
            self.write_interrupted(out, other, other_signal, true)?;
            self.write_registers(out, other_signal)?;
        }
        Ok(())
    }

    /// Writes the goroutine a signal interrupted on `thread`, and in a
    /// relayed section the M's running goroutine after it. Returns the
    /// goroutine printed, if it was one of the process's.
    fn write_interrupted(
        &self,
        out: &mut dyn Write,
        thread: &ThreadState,
        signal: &HandledSignal,
        relayed: bool,
    ) -> io::Result<Option<&'a Goroutine>> {
        let curg = thread.goroutine.and_then(|address| {
            self.process
                .goroutines()
                .iter()
                .find(|g| g.address == address)
        });
        let interrupted = thread.walk.frames.get(signal.interrupted);
        let on_goroutine = interrupted.is_some_and(|f| f.stack == StackKind::Goroutine);
        if let Some(goroutine) = curg {
            if on_goroutine || self.arrived_during_cgo(thread, signal) {
                self.write_header(out, goroutine)?;
                if goroutine
                    .record
                    .as_ref()
                    .is_some_and(|r| r.syscall.is_some())
                    || !on_goroutine
                {
                    self.write_frames(
                        out,
                        printed_frames(goroutine),
                        left_out(goroutine.walk.as_ref()),
                    )?;
                } else {
                    let frames = thread.walk.frames.get(signal.interrupted..).unwrap_or(&[]);
                    self.write_frames(out, frames, left_out(Some(&thread.walk)))?;
                }
                self.write_created_by(out, goroutine)?;
                return Ok(Some(goroutine));
            }
        }
        // The signal landed on the M's g0 (or gsignal): the runtime prints
        // it as goroutine 0, down to where the walk would leave that stack.
        let frames = thread.walk.frames.get(signal.interrupted..).unwrap_or(&[]);
        let end = frames
            .iter()
            .position(|f| f.found_by == FrameSource::StackSwitch)
            .unwrap_or(frames.len());
        self.write_g0_header(out, thread)?;
        self.write_frames(out, frames.get(..end).unwrap_or(&[]), 0)?;
        if relayed {
            if let Some(goroutine) = curg.filter(|g| &*g.status_text == "running") {
                self.write_header(out, goroutine)?;
                self.write_frames(
                    out,
                    printed_frames(goroutine),
                    left_out(goroutine.walk.as_ref()),
                )?;
                self.write_created_by(out, goroutine)?;
            }
        }
        Ok(None)
    }

    /// Writes `goroutine 0 [idle]:` for a thread's g0, with `gp= m= mp=`
    /// from Go 1.22 on.
    fn write_g0_header(&self, out: &mut dyn Write, thread: &ThreadState) -> io::Result<()> {
        write!(out, "goroutine 0")?;
        if self.report.go_at_least(22) {
            let g0 = thread.m.and_then(|m| self.g0_of(m.address));
            match (g0, thread.m) {
                (Some(g0), Some(m)) => write!(out, " gp={g0:#x} m={} mp={:#x}", m.id, m.address)?,
                _ => write!(out, " gp=0x0 m=nil")?,
            }
        }
        writeln!(out, " [idle]:")
    }

    fn runtime_layout(&self) -> Option<&RuntimeLayout> {
        self.layout
            .get_or_init(|| {
                let binary = &self.report.crash.binary;
                let file = object::File::parse(binary.data()).ok()?;
                RuntimeLayout::for_binary(&file, self.report.version).ok()
            })
            .as_ref()
    }

    /// Reads an M's `g0`, which [`ThreadState`] does not carry.
    fn g0_of(&self, m: u64) -> Option<u64> {
        let memory = self.report.crash.core.memory();
        read_m(memory, self.runtime_layout()?, m)
            .ok()
            .map(|record| record.g0)
    }

    /// Returns the signal `dopanic_m` prints in `[signal ...]`: the one
    /// recorded in the g that called it. That g is the crashing thread's g0
    /// when the fatal error happened on the system stack.
    fn recorded_signal(&self) -> Option<GoSignal> {
        if self.process.runtime_stack().is_none() {
            return self.process.crash().signal;
        }
        let g0 = self.g0_of(self.crashing_thread?.m?.address)?;
        let record = read_g(self.report.crash.core.memory(), self.runtime_layout()?, g0).ok()?;
        (record.sig != 0).then_some(GoSignal {
            signo: record.sig,
            code: record.sigcode0,
            addr: record.sigcode1,
            pc: record.sigpc,
        })
    }

    fn write_registers(&self, out: &mut dyn Write, signal: &HandledSignal) -> io::Result<()> {
        let width = HandledSignal::name_width(self.arch);
        for (name, value) in &signal.registers {
            writeln!(out, "{name:<width$}{value:#x}")?;
        }
        Ok(())
    }

    /// Writes every goroutine other than `shown`, in `allgs` order, as
    /// `tracebackothers` does. In a fatal signal's report the thread's
    /// running goroutine comes first.
    fn write_others(
        &self,
        out: &mut dyn Write,
        shown: Option<&Goroutine>,
        thread: Option<&ThreadState>,
    ) -> io::Result<()> {
        let is_shown = |g: &Goroutine| shown.is_some_and(|s| std::ptr::eq(s, g));
        let curg = thread
            .and_then(|t| t.goroutine)
            .and_then(|address| {
                self.process
                    .goroutines()
                    .iter()
                    .find(|g| g.address == address)
            })
            .filter(|g| !is_shown(g));
        if let Some(goroutine) = curg {
            writeln!(out)?;
            self.write_goroutine(out, goroutine)?;
        }
        let crash_m = thread
            .or(self.crashing_thread)
            .and_then(|t| t.m)
            .map(|m| m.address);
        for goroutine in self.process.goroutines() {
            if is_dead(goroutine)
                || is_shown(goroutine)
                || curg.is_some_and(|c| std::ptr::eq(c, goroutine))
            {
                continue;
            }
            if goroutine.record.is_none() {
                continue;
            }
            writeln!(out)?;
            let running_elsewhere = &*goroutine.status_text == "running"
                && goroutine.m.is_some_and(|m| Some(m.address) != crash_m)
                && goroutine
                    .record
                    .as_ref()
                    .is_none_or(|r| r.syscall.is_none());
            if running_elsewhere {
                self.write_header(out, goroutine)?;
                writeln!(
                    out,
                    "\tgoroutine running on other thread; stack unavailable"
                )?;
                self.write_created_by(out, goroutine)?;
            } else {
                self.write_goroutine(out, goroutine)?;
            }
        }
        Ok(())
    }

    fn write_goroutine(&self, out: &mut dyn Write, goroutine: &Goroutine) -> io::Result<()> {
        self.write_header(out, goroutine)?;
        self.write_frames(
            out,
            printed_frames(goroutine),
            left_out(goroutine.walk.as_ref()),
        )?;
        self.write_created_by(out, goroutine)
    }

    /// Writes `goroutine N [status]:` with the fields the release prints.
    fn write_header(&self, out: &mut dyn Write, goroutine: &Goroutine) -> io::Result<()> {
        write!(out, "goroutine {}", goroutine.goid.unwrap_or(0))?;
        if self.report.go_at_least(22) {
            write!(out, " gp={:#x}", goroutine.address)?;
            match goroutine.m {
                Some(m) => write!(out, " m={} mp={:#x}", m.id, m.address)?,
                None => write!(out, " m=nil")?,
            }
        }
        write!(out, " [{}", goroutine.status_text)?;
        if goroutine.record.as_ref().is_some_and(|r| r.scan) {
            write!(out, " (scan)")?;
        }
        if let Some(minutes) = goroutine.wait_minutes.filter(|&m| m >= 1) {
            write!(out, ", {minutes} minutes")?;
        }
        if goroutine.locked_to_thread {
            write!(out, ", locked to thread")?;
        }
        writeln!(out, "]:")
    }

    fn write_created_by(&self, out: &mut dyn Write, goroutine: &Goroutine) -> io::Result<()> {
        let Some(creator) = &goroutine.created_by else {
            return Ok(());
        };
        write!(out, "created by {}", printed_name(&creator.function))?;
        if self.report.go_at_least(21) {
            if let Some(parent) = creator.parent_goid.filter(|&p| p != 0) {
                write!(out, " in goroutine {parent}")?;
            }
        }
        writeln!(out)?;
        write!(
            out,
            "\t{}:{}",
            creator.file.as_deref().unwrap_or("?"),
            creator.line.unwrap_or(0)
        )?;
        if let Some(offset) = creator.offset.filter(|&o| o > 0) {
            write!(out, " +{offset:#x}")?;
        }
        writeln!(out)
    }

    /// Writes frames with the release's elision. `left_out` counts the
    /// logical frames the walk left out of `frames`, between its first and
    /// last 5,000 frames: always within what the runtime elides.
    fn write_frames(&self, out: &mut dyn Write, frames: &[Frame], left_out: u64) -> io::Result<()> {
        if self.report.go_at_least(21) {
            let logical = self.logical_frames(frames);
            let Some((head_end, tail_start)) = elided_range(logical.len()) else {
                return write_logical(out, &logical);
            };
            write_logical(out, &logical[..head_end])?;
            let elided = (tail_start - head_end) as u64 + left_out;
            writeln!(out, "...{elided} frames elided...")?;
            write_logical(out, &logical[tail_start..])
        } else {
            let walked = &frames[..frames.len().min(MAX_FRAMES_BEFORE_1_21)];
            let logical = self.logical_frames(walked);
            write_logical(out, &logical)?;
            if logical.len() == MAX_FRAMES_BEFORE_1_21 {
                writeln!(out, "...additional frames elided...")?;
            }
            Ok(())
        }
    }

    /// Expands physical frames into the lines the runtime prints, inlined
    /// calls first. Frames no table covers (C code) print nothing.
    fn logical_frames(&self, frames: &[Frame]) -> Vec<LogicalFrame> {
        let mut logical = Vec::new();
        for frame in frames.iter().filter(|frame| frame.is_go()) {
            let Some((physical, inlined)) = frame.source.split_last() else {
                continue;
            };
            for source in inlined {
                logical.push(LogicalFrame {
                    call: format!("{}(...)", printed_name(&source.function)),
                    position: format!(
                        "\t{}:{}",
                        source.file.as_deref().unwrap_or("?"),
                        source.line.unwrap_or(0)
                    ),
                });
            }
            let args = self
                .args
                .args(frame, &mut self.arg_cache.borrow_mut())
                .unwrap_or_default();
            let mut position = format!(
                "\t{}:{}",
                physical.file.as_deref().unwrap_or("?"),
                physical.line.unwrap_or(0)
            );
            if let Some(offset) = frame.offset().filter(|&o| o > 0) {
                position.push_str(&format!(" +{offset:#x}"));
            }
            position.push_str(&format!(
                " fp={:#x} sp={:#x} pc={:#x}",
                frame.fp.unwrap_or(0),
                frame.sp,
                frame.pc
            ));
            logical.push(LogicalFrame {
                call: format!("{}({args})", printed_name(&physical.function)),
                position,
            });
        }
        logical
    }
}

/// Counts the logical frames `walk` left out of its frames, deeper than it
/// keeps.
fn left_out(walk: Option<&symbolizer::unwind::Walk>) -> u64 {
    walk.and_then(|walk| walk.elided)
        .map_or(0, |elided| elided.logical)
}

/// Returns the logical frames Go 1.21 and later leave out of a stack of
/// `count`, as the range `head_end..tail_start`: all but the first 50 and
/// the last 50. `None` when every frame is printed.
fn elided_range(count: usize) -> Option<(usize, usize)> {
    (count > INNER_FRAMES + OUTER_FRAMES).then(|| (INNER_FRAMES, count - OUTER_FRAMES))
}

fn write_logical(out: &mut dyn Write, frames: &[LogicalFrame]) -> io::Result<()> {
    for frame in frames {
        writeln!(out, "{}", frame.call)?;
        writeln!(out, "{}", frame.position)?;
    }
    Ok(())
}

/// Reports whether the chain has a record the runtime prints (it prints
/// no Goexit record).
fn printable_panics(panics: &[PanicRecord]) -> bool {
    panics.iter().any(|p| !p.goexit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: &str, goexit: bool) -> PanicRecord {
        PanicRecord {
            address: 0,
            value: value.to_owned(),
            recovered: false,
            goexit,
            repanicked: false,
        }
    }

    #[test]
    fn elision_keeps_first_and_last_fifty() {
        assert_eq!(elided_range(100), None);
        assert_eq!(elided_range(101), Some((50, 51)));
        assert_eq!(elided_range(1000), Some((50, 950)));
        assert_eq!(elided_range(0), None);
    }

    #[test]
    fn goexit_records_are_not_printable() {
        assert!(!printable_panics(&[record("", true)]));
        assert!(printable_panics(&[record("", true), record("boom", false)]));
        assert!(!printable_panics(&[]));
    }
}
