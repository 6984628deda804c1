//! Telling what one line of crash text is, without looking at its
//! neighbours.
//!
//! Every form the runtime prints (Go 1.17 to 1.27) maps to one [`LineKind`];
//! anything else is [`LineKind::Other`]. The tests are ordered from the most
//! specific prefix to the loosest shape, because a few forms overlap: a
//! `file:line` line and an application log line can both end in `:123`. The
//! parser resolves what remains ambiguous from context.

use super::frame::{self, Call, FileLine};
use super::header::{self, Header};
use super::headline::{self, SignalPc};
use super::model::{FatalForm, Panic, SignalInfo};
use super::regs::{self, RegisterLine};

/// The form of one line.
#[derive(Debug)]
pub(crate) enum LineKind<'a> {
    Blank,
    GoroutineHeader(Header),
    /// `goroutine running on other thread; stack unavailable`.
    StackUnavailable,
    CreatedBy {
        function: &'a str,
        parent: Option<u64>,
    },
    Elision(Option<u64>),
    Ancestor(u64),
    Call(Call<'a>),
    FileLine(FileLine<'a>),
    /// `non-Go function at pc=0x...`.
    NonGoFunction(u64),
    Panic(Panic),
    Fatal {
        form: FatalForm,
        message: &'a str,
    },
    SignalBracket(SignalInfo),
    SignalName(SignalInfo),
    SignalPc(SignalPc),
    /// `signal arrived during cgo execution`.
    CgoSignal,
    InstructionBytes(Vec<u8>),
    /// `runtime stack:`.
    RuntimeStack,
    /// `-----` between per-thread sections.
    ThreadSeparator,
    Register(RegisterLine<'a>),
    /// A runtime diagnostic: `runtime: ...`, `unexpected fault address`,
    /// `stack: frame={...}`, hex dump lines and the like.
    Diagnostic(&'a str),
    Other(&'a str),
}

/// Prefixes of runtime diagnostics that can come before the fatal line or
/// inside a goroutine block.
const DIAGNOSTIC_PREFIXES: [&str; 12] = [
    "runtime: ",
    "runtime/cgo: ",
    "unexpected fault address ",
    "accessed data from freed user arena ",
    "preempt off reason: ",
    "stack: frame={",
    "panic during panic",
    "stack trace unavailable",
    "traceback: ",
    "unexpected return pc",
    "unknown pc ",
    "recover: ",
];

/// Classifies one line whose transport prefix and indentation are removed.
pub(crate) fn classify(text: &str, text_line: usize) -> LineKind<'_> {
    if text.is_empty() {
        return LineKind::Blank;
    }

    if let Some(header) = header::parse_header(text) {
        return LineKind::GoroutineHeader(header);
    }
    if text == "goroutine running on other thread; stack unavailable" {
        return LineKind::StackUnavailable;
    }
    if let Some((function, parent)) = frame::parse_created_by(text) {
        return LineKind::CreatedBy { function, parent };
    }
    if let Some(count) = frame::parse_elision(text) {
        return LineKind::Elision(count);
    }
    if let Some(id) = frame::parse_ancestor(text) {
        return LineKind::Ancestor(id);
    }

    if let Some(panic) = headline::parse_panic(text, text_line) {
        return LineKind::Panic(panic);
    }
    if let Some((form, message)) = headline::parse_fatal(text) {
        return LineKind::Fatal { form, message };
    }
    if let Some(signal) = headline::parse_signal_bracket(text, text_line) {
        return LineKind::SignalBracket(signal);
    }
    if let Some(pc) = headline::parse_signal_pc(text) {
        return LineKind::SignalPc(pc);
    }
    if text == "signal arrived during cgo execution" {
        return LineKind::CgoSignal;
    }
    if let Some(bytes) = headline::parse_instruction_bytes(text) {
        return LineKind::InstructionBytes(bytes);
    }

    if text == "runtime stack:" {
        return LineKind::RuntimeStack;
    }
    if text == "-----" {
        return LineKind::ThreadSeparator;
    }

    if let Some(pc) = frame::parse_non_go_function(text) {
        return LineKind::NonGoFunction(pc);
    }
    if is_diagnostic(text) {
        return LineKind::Diagnostic(text);
    }
    if let Some(signal) = headline::parse_signal_name(text, text_line) {
        return LineKind::SignalName(signal);
    }

    if let Some(register) = regs::parse_register(text) {
        return LineKind::Register(register);
    }
    if let Some(call) = frame::parse_call(text) {
        return LineKind::Call(call);
    }
    if let Some(location) = frame::parse_file_line(text) {
        return LineKind::FileLine(location);
    }
    LineKind::Other(text)
}

/// Reports whether a line is a runtime diagnostic or a stack hex dump line.
pub(crate) fn is_diagnostic(text: &str) -> bool {
    DIAGNOSTIC_PREFIXES
        .iter()
        .any(|prefix| text.starts_with(prefix))
        || (text.starts_with("signal ")
            && text.ends_with(" received but handler not on signal stack"))
        || is_hexdump_line(text)
}

/// Reports whether a line belongs to the hex dump the runtime prints around
/// a bad stack frame: `0x000000c000068f38: ...` (Go 1.25 and older),
/// `000000c000068f38: ...` (1.26+), or a 1.26+ marker line `^ SP`.
pub(crate) fn is_hexdump_line(text: &str) -> bool {
    if text.starts_with("^ ") {
        return true;
    }
    // Addresses are zero-padded to the pointer width: 16 digits on 64-bit
    // targets, 8 on 32-bit ones (only with the `0x` of older releases).
    let (digits, widths): (&str, &[usize]) = match text.strip_prefix("0x") {
        Some(digits) => (digits, &[8, 16]),
        None => (text, &[16]),
    };
    let len = digits.bytes().take_while(u8::is_ascii_hexdigit).count();
    widths.contains(&len) && digits.get(len..).is_some_and(|rest| rest.starts_with(':'))
}

/// Reports whether a line alone starts a crash report. Used to find the
/// process that crashed among interleaved syslog lines.
pub(crate) fn starts_crash(text: &str) -> bool {
    let text = text.trim_start_matches(['\t', ' ']);
    text.starts_with("panic: ")
        || text.starts_with("fatal error: ")
        || text.starts_with("fatal: ")
        || header::is_header(text)
        || headline::parse_signal_name(text, 0).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> LineKind<'_> {
        classify(text, 1)
    }

    #[test]
    fn headline_lines() {
        assert!(matches!(kind("panic: boom"), LineKind::Panic(_)));
        assert!(matches!(
            kind("fatal error: stack overflow"),
            LineKind::Fatal { .. }
        ));
        assert!(matches!(
            kind("[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x49a5c3]"),
            LineKind::SignalBracket(_)
        ));
        assert!(matches!(kind("SIGQUIT: quit"), LineKind::SignalName(_)));
        assert!(matches!(
            kind("PC=0x47de81 m=0 sigcode=0"),
            LineKind::SignalPc(_)
        ));
        assert!(matches!(
            kind("signal arrived during cgo execution"),
            LineKind::CgoSignal
        ));
        assert!(matches!(
            kind("instruction bytes: 0xf 0xb"),
            LineKind::InstructionBytes(_)
        ));
        assert!(matches!(kind("runtime stack:"), LineKind::RuntimeStack));
        assert!(matches!(kind("-----"), LineKind::ThreadSeparator));
    }

    #[test]
    fn stack_lines() {
        assert!(matches!(
            kind("goroutine 1 [running]:"),
            LineKind::GoroutineHeader(_)
        ));
        assert!(matches!(
            kind("goroutine running on other thread; stack unavailable"),
            LineKind::StackUnavailable
        ));
        assert!(matches!(kind("main.main()"), LineKind::Call(_)));
        assert!(matches!(
            kind("/tmp/main.go:12 +0x1d"),
            LineKind::FileLine(_)
        ));
        assert!(matches!(
            kind("created by main.main in goroutine 1"),
            LineKind::CreatedBy {
                function: "main.main",
                parent: Some(1)
            }
        ));
        assert!(matches!(
            kind("...51 frames elided..."),
            LineKind::Elision(Some(51))
        ));
        assert!(matches!(
            kind("[originating from goroutine 3]:"),
            LineKind::Ancestor(3)
        ));
        assert!(matches!(
            kind("non-Go function at pc=0x7f01"),
            LineKind::NonGoFunction(0x7f01)
        ));
        assert!(matches!(kind("rip    0x47de81"), LineKind::Register(_)));
    }

    #[test]
    fn diagnostics() {
        for text in [
            "runtime: goroutine stack exceeds 1000000000-byte limit",
            "runtime: g 5: unexpected return pc for main.f called from 0x0",
            "unexpected fault address 0xdeadbeef",
            "stack: frame={sp:0xc000, fp:0xc008} stack=[0xc000,0xd000)",
            "0x000000c000068f38:  0x000000000046b2a5 <runtime.gopark+0xa5>",
            "000000c000068f30: 01 02 03 04",
            "^ <runtime.gopark+0xa5>",
            "signal 11 received but handler not on signal stack",
        ] {
            assert!(matches!(kind(text), LineKind::Diagnostic(_)), "{text}");
        }
    }

    #[test]
    fn everything_else() {
        assert!(matches!(kind(""), LineKind::Blank));
        assert!(matches!(kind("listening on port 8080"), LineKind::Other(_)));
        assert!(matches!(kind("deadbeef: not a dump"), LineKind::Other(_)));
        assert!(matches!(kind("signal 11 received"), LineKind::Other(_)));
    }

    #[test]
    fn crash_starts() {
        assert!(starts_crash("panic: x"));
        assert!(starts_crash("\tpanic: x"));
        assert!(starts_crash("fatal error: x"));
        assert!(starts_crash("goroutine 1 [running]:"));
        assert!(starts_crash("SIGABRT: abort"));
        assert!(!starts_crash("server started"));
        assert!(!starts_crash("main.main()"));
    }
}
