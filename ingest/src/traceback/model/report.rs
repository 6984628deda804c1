//! The headline of a crash (panics, fatal message, signal), register dumps,
//! per-thread sections, and the parser's report on the text itself.

use serde::{Deserialize, Serialize};

use super::{hex, hex_option};

/// One `panic: V` line of the panic chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Panic {
    /// The value as printed, with continuation lines joined by `\n`.
    pub value: String,
    /// ` [recovered]`: a deferred call recovered this panic before a newer
    /// one started.
    pub recovered: bool,
    /// ` [recovered, repanicked]` (Go 1.25+): recovered, then panicked again
    /// with the same value.
    pub repanicked: bool,
    pub text_line: usize,
}

impl Panic {
    /// Reports whether the value is a runtime error such as a nil pointer
    /// dereference or an index out of range.
    pub fn is_runtime_error(&self) -> bool {
        self.value.starts_with("runtime error: ")
    }
}

/// A `fatal error: MSG` or `fatal: MSG` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fatal {
    /// The message, with continuation lines joined by `\n`.
    pub message: String,
    pub form: FatalForm,
    /// How many more times the same line was printed: concurrent throws on
    /// several threads can each print it before any stack.
    pub repeats: u32,
    pub text_line: usize,
}

/// The prefix a fatal line was printed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FatalForm {
    /// `fatal error: `, from `runtime.throw` and `runtime.fatal`.
    FatalError,
    /// `fatal: `, printed by a few early checks such as `morestack on g0`.
    Fatal,
}

/// What the runtime printed about a signal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalInfo {
    /// `SIGSEGV`, or `None` when the runtime printed a number.
    pub name: Option<String>,
    /// The signal number when printed as one (`Signal 34`, `[signal 0x22`).
    pub number: Option<u64>,
    /// `segmentation violation`.
    pub description: Option<String>,
    /// `si_code`: `code=0x1` in the bracketed line, `sigcode=` (printed as an
    /// unsigned 64-bit number, so SI_TKILL is 18446744073709551610) in the
    /// `PC=` line. 0 (SI_USER) means another process sent the signal.
    pub code: Option<u64>,
    /// `si_addr`, the faulting data address for SIGSEGV and SIGBUS.
    #[serde(with = "hex_option")]
    pub addr: Option<u64>,
    /// The program counter at the signal.
    #[serde(with = "hex_option")]
    pub pc: Option<u64>,
    /// `m=`: the id of the thread that received the signal.
    pub m: Option<u64>,
    /// `signal arrived during cgo execution`.
    pub during_cgo: bool,
    /// `instruction bytes:` printed for SIGILL and SIGFPE.
    pub instruction_bytes: Vec<u8>,
    pub form: SignalForm,
    pub text_line: usize,
}

impl SignalInfo {
    /// Returns `sigcode` as the signed `si_code` the kernel stored.
    pub fn code_signed(&self) -> Option<i64> {
        self.code.map(|code| code as i64)
    }
}

/// Which of the runtime's two signal reports a [`SignalInfo`] came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalForm {
    /// `[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x...]`
    /// after a panic or fatal error line: the signal became a panic or throw.
    #[default]
    Bracketed,
    /// `SIGSEGV: segmentation violation` and `PC=0x... m=0 sigcode=1`: a fatal
    /// signal the runtime could not turn into a panic.
    Handler,
}

/// One register dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registers {
    pub arch: Arch,
    /// Registers in printed order.
    pub values: Vec<Register>,
    pub text_line: usize,
}

impl Registers {
    /// Returns the value of the named register (`rip`, `pc`, `lr`, ...).
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values
            .iter()
            .find(|register| register.name == name)
            .map(|register| register.value)
    }

    /// Returns the program counter: `rip` on amd64, `pc` elsewhere.
    pub fn pc(&self) -> Option<u64> {
        self.get("rip").or_else(|| self.get("pc"))
    }

    /// Returns the stack pointer: `rsp` on amd64, `sp` elsewhere.
    pub fn sp(&self) -> Option<u64> {
        self.get("rsp").or_else(|| self.get("sp"))
    }
}

/// One `name  0xvalue` line of a register dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    pub name: String,
    #[serde(with = "hex")]
    pub value: u64,
}

/// The architecture a register dump's names belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Amd64,
    Arm64,
    /// Register names of another architecture, kept as printed.
    Other,
}

/// The section one further thread prints after a `-----` line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadSection {
    /// `SIGQUIT: quit` and the thread's `PC=` line.
    pub signal: Option<SignalInfo>,
    pub registers: Option<Registers>,
    /// Line of the `-----` separator, or of the first line of the section
    /// when the separator was missing.
    pub text_line: usize,
}

/// A runtime diagnostic line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub text: String,
    pub text_line: usize,
}

/// A line the parser could not place, with the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub kind: WarningKind,
    /// The line, cut to [`crate::traceback::MAX_WARNING_TEXT_BYTES`].
    pub text: String,
    pub text_line: usize,
}

/// Why a line became a [`Warning`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The line matches no form of the crash text.
    UnrecognizedLine,
    /// A `file:line` line with no function line before it.
    OrphanFileLine,
    /// A frame or trailer line outside any goroutine block.
    OutOfPlace,
    /// A goroutine header whose fields could not all be read.
    MalformedHeader,
    /// A function line whose argument list could not be read; the frame was
    /// kept with the text as printed.
    MalformedFrame,
    /// A function line with no `file:line` line after it.
    MissingFileLine,
    /// A panic line after the stacks began, as printed by a crash during the
    /// crash report; kept in [`super::Traceback::messages`].
    LatePanic,
}

/// Counts of what the parser dropped to stay within its limits. All zero
/// when nothing was dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    /// Goroutine blocks past [`crate::traceback::MAX_GOROUTINES`].
    pub goroutines: u64,
    /// Frames past [`crate::traceback::MAX_FRAMES_PER_STACK`] in one stack, or past
    /// [`crate::traceback::MAX_TOTAL_FRAMES`] in all.
    pub frames: u64,
    /// Lines longer than [`crate::traceback::MAX_LINE_BYTES`], kept cut.
    pub long_lines: u64,
    /// Lines past [`crate::traceback::MAX_LINES`], not read.
    pub lines: u64,
    /// Warnings past [`crate::traceback::MAX_WARNINGS`].
    pub warnings: u64,
    /// Messages, diagnostics, panics, labels, registers and thread sections
    /// past their limits.
    pub other: u64,
}

impl Truncation {
    /// Reports whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        *self == Truncation::default()
    }
}

/// What the transport did to the text before the parser saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transport {
    /// Some lines ended in CRLF.
    pub crlf: bool,
    /// The per-line prefix that was detected and stripped.
    pub prefix: Option<PrefixKind>,
    /// Lines with a prefix of another process (another `ident[pid]`), left
    /// out of the parse.
    pub foreign_lines: u64,
}

/// A per-line prefix added by a log transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefixKind {
    /// `Dec 04 20:35:21 host ident[pid]: `: syslog and `journalctl`'s
    /// default short output, with `.usec` for short-precise.
    Syslog,
    /// `2024-12-04T20:35:21+0000 host ident[pid]: `: `journalctl -o
    /// short-iso` and RFC 3339 syslog.
    SyslogIso,
    /// `2024-01-01T00:00:00.000000000Z stderr F `: the CRI container log
    /// format of Kubernetes nodes.
    Cri,
    /// `2024-01-01T00:00:00.000000000Z `: an RFC 3339 timestamp alone, as
    /// `docker logs -t` prints.
    Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigcode_reads_back_signed() {
        let signal = SignalInfo {
            code: Some(18446744073709551610),
            ..SignalInfo::default()
        };
        assert_eq!(signal.code_signed(), Some(-6));
    }

    #[test]
    fn registers_find_pc_by_arch() {
        let registers = Registers {
            arch: Arch::Arm64,
            values: vec![
                Register {
                    name: "sp".into(),
                    value: 0x10,
                },
                Register {
                    name: "pc".into(),
                    value: 0x8841c,
                },
            ],
            text_line: 1,
        };
        assert_eq!(registers.pc(), Some(0x8841c));
        assert_eq!(registers.sp(), Some(0x10));
        assert_eq!(registers.get("lr"), None);
    }
}
