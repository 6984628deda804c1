//! The state machine that places classified lines into a [`Traceback`].
//!
//! Block boundaries come from the lines themselves, never from blank lines
//! (journald drops them) or indentation (pastes lose it). A goroutine header
//! starts a block and `runtime stack:` a system stack. A `-----` line or a
//! second signal report starts a per-thread section, and a register line
//! starts a dump. A function line waits exactly one line for its
//! `file:line` line, and so does `created by`. Lines that fit nowhere become
//! warnings.

mod sections;

use super::frame::FileLine;
use super::header::Header;
use super::line::{classify, is_hexdump_line, LineKind};
use super::model::{
    Ancestor, CreatedBy, Elision, Frame, Goroutine, GoroutineId, Message, SystemStack,
    SystemStackOrigin, Traceback, WarningKind,
};
use super::transport::InputLine;
use super::{
    MAX_DIAGNOSTICS_PER_GOROUTINE, MAX_FRAMES_PER_STACK, MAX_GOROUTINES, MAX_PANICS,
    MAX_TOTAL_FRAMES,
};
use sections::continues_value;

/// The block that frames and trailers go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Context {
    /// Before any stack of the current section.
    Headline,
    SystemStack(usize),
    Goroutine(usize),
    /// Goroutine index, ancestor index.
    Ancestor(usize, usize),
    Registers,
    /// A goroutine past [`MAX_GOROUTINES`]: its lines are counted, not kept.
    Dropped,
}

/// A panic or fatal message that may continue on the next lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpenValue {
    Panic(usize),
    Fatal,
}

/// The parts of the current stack that lines fill in.
struct StackMut<'a> {
    frames: &'a mut Vec<Frame>,
    elided: &'a mut Option<Elision>,
    /// `None` for system stacks, which have no creator.
    created_by: Option<&'a mut Option<CreatedBy>>,
}

pub(crate) struct Parser {
    traceback: Traceback,
    context: Context,
    /// Index into `traceback.threads` of the current section.
    thread: Option<usize>,
    /// The current section has printed a stack or a register dump.
    section_has_stacks: bool,
    pending_frame: Option<Frame>,
    /// A line of no known form inside a stack. The next line decides
    /// whether it names a C frame or a damaged Go frame.
    pending_other: Option<(String, usize)>,
    expect_created_by_location: bool,
    open_value: Option<OpenValue>,
    /// Inside the hex dump after `stack: frame={...}`.
    in_hexdump: bool,
    kept_frames: usize,
}

impl Parser {
    pub(crate) fn new(traceback: Traceback) -> Parser {
        Parser {
            traceback,
            context: Context::Headline,
            thread: None,
            section_has_stacks: false,
            pending_frame: None,
            pending_other: None,
            expect_created_by_location: false,
            open_value: None,
            in_hexdump: false,
            kept_frames: 0,
        }
    }

    pub(crate) fn finish(mut self) -> Traceback {
        self.flush_pending();
        self.traceback
    }

    pub(crate) fn line(&mut self, input: &InputLine<'_>) {
        let number = input.number;
        let text: &str = &input.text;
        let kind = classify(text, number);

        if let Some(open) = self.open_value {
            if continues_value(&kind) {
                self.append_to_value(open, text);
                return;
            }
            self.open_value = None;
        }
        if self.complete_pending(&kind) {
            return;
        }
        if self.in_hexdump {
            if let LineKind::Other(dump) | LineKind::Diagnostic(dump) = kind {
                self.diagnostic(dump, number);
                return;
            }
            self.in_hexdump = false;
        }
        self.dispatch(kind, text, number);
    }

    /// Gives the line to whatever waits for a location line: a function
    /// line, a `created by` line or an unrecognised line inside a stack.
    /// Returns whether the line was used so. Whatever still waits is
    /// flushed.
    fn complete_pending(&mut self, kind: &LineKind<'_>) -> bool {
        let pending_frame = self.pending_frame.take();
        let expect_created_by_location = std::mem::take(&mut self.expect_created_by_location);
        let pending_other = self.pending_other.take();
        if let LineKind::FileLine(location) = kind {
            if let Some(frame) = pending_frame {
                self.push_frame(with_location(frame, location));
                return true;
            }
            if expect_created_by_location {
                self.set_created_by_location(location);
                return true;
            }
            if let Some((text, text_line)) = pending_other {
                let frame = self.frame_from_unrecognized(text, text_line, location);
                self.push_frame(with_location(frame, location));
                return true;
            }
        }
        self.pending_frame = pending_frame;
        self.pending_other = pending_other;
        self.flush_pending();
        false
    }

    /// Builds a frame from a name line that only the location line under it
    /// identified.
    fn frame_from_unrecognized(
        &mut self,
        text: String,
        text_line: usize,
        location: &FileLine<'_>,
    ) -> Frame {
        let c_location = location.file.is_none()
            || (location.pc.is_some() && location.fp.is_none() && location.offset.is_none());
        if c_location {
            // `[file:line ]pc=0x...` under a name line: a C frame named by
            // the symbolizer registered with `runtime.SetCgoTraceback`.
            let mut frame = Frame::new(text, String::new(), text_line);
            frame.non_go = true;
            return frame;
        }
        // A Go location under a function line too damaged to read, such as
        // one cut inside its argument list.
        self.warn(WarningKind::MalformedFrame, &text, text_line);
        let (function, args) = match text.split_once('(') {
            Some((function, args)) => {
                (function.to_string(), args.trim_end_matches(')').to_string())
            }
            None => (text, String::new()),
        };
        Frame::new(function, args, text_line)
    }

    fn flush_pending(&mut self) {
        if let Some(frame) = self.pending_frame.take() {
            self.warn(
                WarningKind::MissingFileLine,
                &frame.function,
                frame.text_line,
            );
            self.push_frame(frame);
        }
        if let Some((text, number)) = self.pending_other.take() {
            self.unrecognized(&text, number);
        }
    }

    fn dispatch(&mut self, kind: LineKind<'_>, text: &str, number: usize) {
        match kind {
            LineKind::Blank => {}
            LineKind::GoroutineHeader(header) => self.start_goroutine(header, number, text),
            LineKind::StackUnavailable => self.stack_unavailable(text, number),
            LineKind::CreatedBy { function, parent } => {
                self.created_by(function, parent, number, text)
            }
            LineKind::Elision(count) => self.elision(count, number, text),
            LineKind::Ancestor(id) => self.ancestor(id, number, text),
            LineKind::Call(call) => {
                if self.context == Context::Dropped {
                    self.traceback.truncated.frames =
                        self.traceback.truncated.frames.saturating_add(1);
                    return;
                }
                self.ensure_stack(number);
                self.pending_frame = Some(Frame::new(
                    call.function.to_string(),
                    call.args.to_string(),
                    number,
                ));
            }
            LineKind::FileLine(_) => {
                if self.context != Context::Dropped {
                    self.warn(WarningKind::OrphanFileLine, text, number);
                }
            }
            LineKind::NonGoFunction(pc) => {
                if self.context == Context::Dropped {
                    return;
                }
                self.ensure_stack(number);
                let mut frame = Frame::new("non-Go function".to_string(), String::new(), number);
                frame.non_go = true;
                frame.pc = Some(pc);
                self.push_frame(frame);
            }
            LineKind::Panic(panic) => {
                if self.thread.is_some() || self.section_has_stacks {
                    self.warn(WarningKind::LatePanic, text, number);
                    self.message(text, number);
                } else if self.traceback.panics.len() < MAX_PANICS {
                    self.traceback.panics.push(panic);
                    self.open_value = Some(OpenValue::Panic(self.traceback.panics.len() - 1));
                } else {
                    self.count_other();
                }
            }
            LineKind::Fatal { form, message } => self.fatal(form, message, number, text),
            LineKind::SignalBracket(signal) => {
                if self.thread.is_none() && self.traceback.signal.is_none() {
                    self.traceback.signal = Some(signal);
                } else {
                    self.message(text, number);
                }
            }
            LineKind::SignalName(signal) => self.signal_name(signal, number),
            LineKind::SignalPc(pc) => match self.signal_for_pc_line(number) {
                Some(signal) => {
                    signal.pc = Some(pc.pc);
                    signal.m = Some(pc.m);
                    signal.code = Some(pc.code);
                    signal.addr = pc.addr;
                }
                None => self.warn(WarningKind::OutOfPlace, text, number),
            },
            LineKind::CgoSignal => match self.section_signal_mut() {
                Some(signal) => signal.during_cgo = true,
                None => self.warn(WarningKind::OutOfPlace, text, number),
            },
            LineKind::InstructionBytes(bytes) => match self.section_signal_mut() {
                Some(signal) => signal.instruction_bytes = bytes,
                None => self.warn(WarningKind::OutOfPlace, text, number),
            },
            LineKind::RuntimeStack => {
                self.start_system_stack(SystemStackOrigin::RuntimeStackLine, number)
            }
            LineKind::ThreadSeparator => self.start_thread(number),
            LineKind::Register(register) => {
                // Only an amd64 or arm64 name starts a dump; other names
                // are taken once a dump has started.
                if register.known || self.context == Context::Registers {
                    self.register(register.name, register.value, number);
                } else {
                    self.other(text, number);
                }
            }
            LineKind::Diagnostic(diagnostic) => {
                if diagnostic.starts_with("stack: frame={") {
                    self.in_hexdump = true;
                }
                self.diagnostic(diagnostic, number);
            }
            LineKind::Other(other) => self.other(other, number),
        }
    }

    fn start_goroutine(&mut self, header: Header, number: usize, text: &str) {
        self.section_has_stacks = true;
        if self.traceback.goroutines.len() >= MAX_GOROUTINES {
            self.traceback.truncated.goroutines =
                self.traceback.truncated.goroutines.saturating_add(1);
            self.context = Context::Dropped;
            return;
        }
        if !header.complete {
            self.warn(WarningKind::MalformedHeader, text, number);
        }
        if header.dropped_labels > 0 {
            self.traceback.truncated.other = self
                .traceback
                .truncated
                .other
                .saturating_add(header.dropped_labels);
        }
        let mut goroutine = Goroutine::new(header.id, number);
        goroutine.status = header.status;
        goroutine.wait_reason = header.wait_reason;
        goroutine.wait_minutes = header.wait_minutes;
        goroutine.locked_to_thread = header.locked_to_thread;
        goroutine.scan = header.scan;
        goroutine.durable = header.durable;
        goroutine.synctest_bubble = header.synctest_bubble;
        goroutine.labels = header.labels;
        goroutine.runtime_ids = header.runtime_ids;
        goroutine.thread = self.thread;
        self.traceback.goroutines.push(goroutine);
        self.context = Context::Goroutine(self.traceback.goroutines.len() - 1);
    }

    fn start_system_stack(&mut self, origin: SystemStackOrigin, number: usize) {
        self.section_has_stacks = true;
        self.traceback.system_stacks.push(SystemStack {
            origin,
            frames: Vec::new(),
            elided: None,
            thread: self.thread,
            text_line: number,
        });
        self.context = Context::SystemStack(self.traceback.system_stacks.len() - 1);
    }

    /// Makes sure frames have somewhere to go: frames outside any block
    /// start a system stack without header.
    fn ensure_stack(&mut self, number: usize) {
        if matches!(self.context, Context::Headline | Context::Registers) {
            self.start_system_stack(SystemStackOrigin::NoHeader, number);
        }
    }

    fn stack_unavailable(&mut self, text: &str, number: usize) {
        match self.context {
            Context::Goroutine(index) => {
                if let Some(goroutine) = self.traceback.goroutines.get_mut(index) {
                    goroutine.stack_unavailable = true;
                }
            }
            Context::Dropped => {}
            _ => self.warn(WarningKind::OutOfPlace, text, number),
        }
    }

    fn stack_mut(&mut self) -> Option<StackMut<'_>> {
        match self.context {
            Context::Goroutine(index) => {
                let goroutine = self.traceback.goroutines.get_mut(index)?;
                Some(StackMut {
                    frames: &mut goroutine.frames,
                    elided: &mut goroutine.elided,
                    created_by: Some(&mut goroutine.created_by),
                })
            }
            Context::Ancestor(goroutine, ancestor) => {
                let ancestor = self
                    .traceback
                    .goroutines
                    .get_mut(goroutine)?
                    .ancestors
                    .get_mut(ancestor)?;
                Some(StackMut {
                    frames: &mut ancestor.frames,
                    elided: &mut ancestor.elided,
                    created_by: Some(&mut ancestor.created_by),
                })
            }
            Context::SystemStack(index) => {
                let stack = self.traceback.system_stacks.get_mut(index)?;
                Some(StackMut {
                    frames: &mut stack.frames,
                    elided: &mut stack.elided,
                    created_by: None,
                })
            }
            Context::Headline | Context::Registers | Context::Dropped => None,
        }
    }

    fn created_by(&mut self, function: &str, parent: Option<u64>, number: usize, text: &str) {
        if self.context == Context::Dropped {
            return;
        }
        let created_by = CreatedBy {
            function: function.to_string(),
            parent: parent.map(GoroutineId),
            file: None,
            line: None,
            offset: None,
            text_line: number,
        };
        match self.stack_mut().and_then(|stack| stack.created_by) {
            Some(slot) => {
                *slot = Some(created_by);
                self.expect_created_by_location = true;
            }
            None => self.warn(WarningKind::OutOfPlace, text, number),
        }
    }

    fn set_created_by_location(&mut self, location: &FileLine<'_>) {
        if let Some(Some(created_by)) = self.stack_mut().and_then(|stack| stack.created_by) {
            created_by.file = location.file.map(str::to_string);
            created_by.line = location.line;
            created_by.offset = location.offset;
        }
    }

    fn elision(&mut self, count: Option<u64>, number: usize, text: &str) {
        if self.context == Context::Dropped {
            return;
        }
        match self.stack_mut() {
            Some(stack) => {
                *stack.elided = Some(Elision {
                    count,
                    after_frame: stack.frames.len(),
                    text_line: number,
                });
            }
            None => self.warn(WarningKind::OutOfPlace, text, number),
        }
    }

    fn ancestor(&mut self, id: u64, number: usize, text: &str) {
        let goroutine_index = match self.context {
            Context::Goroutine(index) | Context::Ancestor(index, _) => index,
            Context::Dropped => return,
            _ => {
                self.warn(WarningKind::OutOfPlace, text, number);
                return;
            }
        };
        let Some(goroutine) = self.traceback.goroutines.get_mut(goroutine_index) else {
            return;
        };
        goroutine.ancestors.push(Ancestor {
            id: GoroutineId(id),
            frames: Vec::new(),
            elided: None,
            created_by: None,
            text_line: number,
        });
        self.context = Context::Ancestor(goroutine_index, goroutine.ancestors.len() - 1);
    }

    fn push_frame(&mut self, frame: Frame) {
        let budget_left = self.kept_frames < MAX_TOTAL_FRAMES;
        let Some(stack) = self.stack_mut() else {
            return;
        };
        if !budget_left || stack.frames.len() >= MAX_FRAMES_PER_STACK {
            self.traceback.truncated.frames = self.traceback.truncated.frames.saturating_add(1);
            return;
        }
        stack.frames.push(frame);
        self.kept_frames += 1;
    }

    /// Holds or reports a line of no known form. Inside a stack it may name
    /// a symbolised C frame, which the next line decides.
    fn other(&mut self, text: &str, number: usize) {
        match self.context {
            Context::Goroutine(_) | Context::Ancestor(..) | Context::SystemStack(_) => {
                self.pending_other = Some((text.to_string(), number));
            }
            Context::Dropped => {}
            Context::Headline | Context::Registers => self.unrecognized(text, number),
        }
    }

    fn unrecognized(&mut self, text: &str, number: usize) {
        if matches!(self.context, Context::Goroutine(_)) && is_hexdump_line(text) {
            self.diagnostic(text, number);
            return;
        }
        self.warn(WarningKind::UnrecognizedLine, text, number);
    }

    fn diagnostic(&mut self, text: &str, number: usize) {
        let goroutine = match self.context {
            Context::Goroutine(index) | Context::Ancestor(index, _) => {
                self.traceback.goroutines.get_mut(index)
            }
            Context::Dropped => return,
            _ => None,
        };
        let Some(goroutine) = goroutine else {
            self.message(text, number);
            return;
        };
        if goroutine.diagnostics.len() < MAX_DIAGNOSTICS_PER_GOROUTINE {
            goroutine.diagnostics.push(Message {
                text: text.to_string(),
                text_line: number,
            });
        } else {
            self.count_other();
        }
    }
}
fn with_location(mut frame: Frame, location: &FileLine<'_>) -> Frame {
    frame.file = location.file.map(str::to_string);
    frame.line = location.line;
    frame.offset = location.offset;
    frame.fp = location.fp;
    frame.sp = location.sp;
    frame.pc = location.pc;
    frame
}
