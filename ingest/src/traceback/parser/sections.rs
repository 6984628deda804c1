//! The parts of the parser that fill the headline and the sections: the
//! panic and fatal messages, signal reports, register dumps, per-thread
//! sections, and the messages and warnings about the text.

use super::super::line::LineKind;
use super::super::model::{
    Arch, Fatal, FatalForm, Message, Register, Registers, SignalForm, SignalInfo, ThreadSection,
    Warning, WarningKind,
};
use super::super::regs::detect_arch;
use super::super::{
    MAX_MESSAGES, MAX_REGISTERS, MAX_THREADS, MAX_VALUE_BYTES, MAX_WARNINGS, MAX_WARNING_TEXT_BYTES,
};
use super::{Context, OpenValue, Parser};

impl Parser {
    pub(super) fn start_thread(&mut self, number: usize) {
        self.context = Context::Headline;
        self.section_has_stacks = false;
        self.in_hexdump = false;
        if self.traceback.threads.len() >= MAX_THREADS {
            // NOTE: past the limit, the blocks of further sections are
            // attributed to the last section kept.
            self.count_other();
            return;
        }
        self.traceback.threads.push(ThreadSection {
            text_line: number,
            ..ThreadSection::default()
        });
        self.thread = Some(self.traceback.threads.len() - 1);
    }

    pub(super) fn fatal(&mut self, form: FatalForm, message: &str, number: usize, text: &str) {
        match &mut self.traceback.fatal {
            Some(fatal) if fatal.message == message && fatal.form == form => {
                fatal.repeats = fatal.repeats.saturating_add(1);
            }
            None if self.thread.is_none() && !self.section_has_stacks => {
                self.traceback.fatal = Some(Fatal {
                    message: message.to_string(),
                    form,
                    repeats: 0,
                    text_line: number,
                });
                self.open_value = Some(OpenValue::Fatal);
            }
            // A different fatal line, or one after the stacks: a crash while
            // printing the crash report.
            _ => self.message(text, number),
        }
    }

    /// Opens the signal report of a `SIGxxx: ...` line. A section that
    /// already has one, or has printed stacks, ends here, because the
    /// `-----` line before a per-thread section may have been lost.
    pub(super) fn signal_name(&mut self, signal: SignalInfo, number: usize) {
        let section_has_signal = match self.thread {
            None => self.traceback.signal.is_some(),
            Some(index) => self
                .traceback
                .threads
                .get(index)
                .is_some_and(|thread| thread.signal.is_some()),
        };
        if section_has_signal || self.section_has_stacks {
            self.start_thread(number);
        }
        self.context = Context::Headline;
        match self.thread {
            None => self.traceback.signal = Some(signal),
            Some(index) => {
                if let Some(thread) = self.traceback.threads.get_mut(index) {
                    thread.signal = Some(signal);
                }
            }
        }
    }

    pub(super) fn section_signal_mut(&mut self) -> Option<&mut SignalInfo> {
        match self.thread {
            None => self.traceback.signal.as_mut(),
            Some(index) => self.traceback.threads.get_mut(index)?.signal.as_mut(),
        }
    }

    /// Returns the signal a `PC=` line fills in, creating a nameless one
    /// when the name line was lost. `None` when the line is out of place.
    pub(super) fn signal_for_pc_line(&mut self, number: usize) -> Option<&mut SignalInfo> {
        if self.section_has_stacks {
            return None;
        }
        let slot = match self.thread {
            None => &mut self.traceback.signal,
            Some(index) => &mut self.traceback.threads.get_mut(index)?.signal,
        };
        if slot.as_ref().is_some_and(|signal| signal.pc.is_some()) {
            return None;
        }
        Some(slot.get_or_insert_with(|| SignalInfo {
            form: SignalForm::Handler,
            text_line: number,
            ..SignalInfo::default()
        }))
    }

    pub(super) fn register(&mut self, name: &str, value: u64, number: usize) {
        self.context = Context::Registers;
        self.section_has_stacks = true;
        let slot = match self.thread {
            None => &mut self.traceback.registers,
            Some(index) => match self.traceback.threads.get_mut(index) {
                Some(thread) => &mut thread.registers,
                None => return,
            },
        };
        let registers = slot.get_or_insert_with(|| Registers {
            arch: Arch::Other,
            values: Vec::new(),
            text_line: number,
        });
        if registers.values.len() >= MAX_REGISTERS {
            self.count_other();
            return;
        }
        registers.values.push(Register {
            name: name.to_string(),
            value,
        });
        registers.arch = detect_arch(
            registers
                .values
                .iter()
                .map(|register| register.name.as_str()),
        );
    }

    pub(super) fn message(&mut self, text: &str, number: usize) {
        if self.traceback.messages.len() < MAX_MESSAGES {
            self.traceback.messages.push(Message {
                text: text.to_string(),
                text_line: number,
            });
        } else {
            self.count_other();
        }
    }

    pub(super) fn append_to_value(&mut self, open: OpenValue, text: &str) {
        let value = match open {
            OpenValue::Panic(index) => self
                .traceback
                .panics
                .get_mut(index)
                .map(|panic| &mut panic.value),
            OpenValue::Fatal => self
                .traceback
                .fatal
                .as_mut()
                .map(|fatal| &mut fatal.message),
        };
        let Some(value) = value else {
            return;
        };
        if value.len().saturating_add(text.len()) >= MAX_VALUE_BYTES {
            self.count_other();
            return;
        }
        value.push('\n');
        value.push_str(text);
    }

    pub(super) fn warn(&mut self, kind: WarningKind, text: &str, number: usize) {
        if self.traceback.warnings.len() >= MAX_WARNINGS {
            self.traceback.truncated.warnings = self.traceback.truncated.warnings.saturating_add(1);
            return;
        }
        let mut end = text.len().min(MAX_WARNING_TEXT_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = text.get(..end).unwrap_or_default().to_string();
        self.traceback.warnings.push(Warning {
            kind,
            text,
            text_line: number,
        });
    }

    pub(super) fn count_other(&mut self) {
        self.traceback.truncated.other = self.traceback.truncated.other.saturating_add(1);
    }
}

/// Reports whether a line continues a panic or fatal message. Go 1.23+
/// indents continuation lines with a tab, but older releases print them as
/// they are. So any line that does not start another part of the report
/// counts, and an application line written between the message and the
/// stacks is taken for a continuation too.
// NOTE: a message line that itself reads as a goroutine header, a panic
// line or a diagnostic ends the message early, even when Go 1.23+ indented
// it, because transports lose indentation and the parser ignores it.
pub(super) fn continues_value(kind: &LineKind<'_>) -> bool {
    !matches!(
        kind,
        LineKind::Blank
            | LineKind::GoroutineHeader(_)
            | LineKind::Panic(_)
            | LineKind::Fatal { .. }
            | LineKind::SignalBracket(_)
            | LineKind::SignalName(_)
            | LineKind::SignalPc(_)
            | LineKind::CgoSignal
            | LineKind::InstructionBytes(_)
            | LineKind::RuntimeStack
            | LineKind::ThreadSeparator
            | LineKind::Diagnostic(_)
    )
}
