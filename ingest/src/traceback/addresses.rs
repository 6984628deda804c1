//! Finds the code addresses that crash text leaves bare, line by line, so a
//! caller can write each one's symbol next to it.
//!
//! The runtime names the function of every Go frame it prints. It leaves
//! other code addresses as plain hex: the pc a signal interrupted (`PC=` and
//! the `pc=` of `[signal ...]`), the register dumps of a fatal signal, the C
//! frames of cgo code when no cgo symbolizer is registered (`non-Go function
//! at pc=`, or a `pc=` under a frame named `?` or `non-Go function`), and a
//! return pc the unwinder could not place (`unexpected return pc for F
//! called from 0x...`). [`AddressScanner`] finds those. It also returns the
//! `pc=` of each Go frame with the function the runtime printed for it,
//! which is what locates a position-independent binary's load address.
//!
//! Lines are classified as the traceback parser classifies them, after the
//! same removal of indentation, rsyslog's `#011` and trailing white space.
//! Transport prefixes (syslog, `journalctl` short formats) are the caller's
//! to remove, with [`super::LinePrefix`]. Resolving the addresses is left
//! to the `symbolizer` crate.

use super::line::{classify, LineKind};
use super::model::hex;

/// The form of line an address was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressKind {
    /// `PC=0x... m=N sigcode=N`: the pc the signal interrupted.
    SignalPc,
    /// The `pc=` of `[signal SIGSEGV: ... pc=0x...]`.
    SignalBracketPc,
    /// A register of a register dump.
    Register,
    /// `non-Go function at pc=0x...`: a C frame printed without a cgo
    /// symbolizer.
    NonGoFunction,
    /// The `pc=` of the location line under a frame the runtime could not
    /// name (`?()`, `?` or `non-Go function`).
    UnnamedFramePc,
    /// The address of `unexpected return pc for F called from 0x...`.
    UnexpectedReturnPc,
}

/// A bare code address, or a value that may be one, found in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextAddress {
    /// 1-based line number.
    pub line: usize,
    pub kind: AddressKind,
    /// The register's name, for [`AddressKind::Register`].
    pub register: Option<String>,
    pub value: u64,
}

impl TextAddress {
    /// Reports whether the value is a program counter or return address by
    /// where it was printed. Other register values are code addresses only
    /// when they fall in the binary's code, which the caller checks.
    pub fn is_code_address(&self) -> bool {
        match self.kind {
            AddressKind::Register => matches!(self.register.as_deref(), Some("rip" | "pc" | "lr")),
            _ => true,
        }
    }
}

/// The `pc=` of a Go frame and the function the runtime printed above it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramePc {
    /// 1-based line number of the location line that prints `pc=`.
    pub line: usize,
    pub function: String,
    pub pc: u64,
}

/// The finding of one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Address(TextAddress),
    FramePc(FramePc),
}

/// The line before the current one, as far as a location line needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Previous {
    #[default]
    Other,
    /// A Go function line: `main.f(0x1, ...)`.
    GoCall(String),
    /// A frame line the runtime could not name.
    Unnamed,
}

/// Reads crash text one line at a time. It keeps the little state that
/// lines need from their neighbours: whether a register dump has started,
/// and what the function line above a location line named.
#[derive(Clone, Debug, Default)]
pub struct AddressScanner {
    in_register_dump: bool,
    previous: Previous,
}

impl AddressScanner {
    pub fn new() -> AddressScanner {
        AddressScanner::default()
    }

    /// Scans line `number` (1-based) as it appears in the input, its line
    /// end included or not.
    pub fn scan_line(&mut self, number: usize, raw: &str) -> Option<Found> {
        let text = clean(raw);
        let previous = std::mem::take(&mut self.previous);
        let kind = classify(text, number);
        let was_in_dump = std::mem::take(&mut self.in_register_dump);
        let address = |kind, value| {
            Some(Found::Address(TextAddress {
                line: number,
                kind,
                register: None,
                value,
            }))
        };
        match kind {
            LineKind::SignalPc(pc) => address(AddressKind::SignalPc, pc.pc),
            LineKind::SignalBracket(signal) => address(AddressKind::SignalBracketPc, signal.pc?),
            LineKind::NonGoFunction(pc) => address(AddressKind::NonGoFunction, pc),
            LineKind::Register(register) => {
                // Only an amd64 or arm64 name starts a dump, as in the parser,
                // so that a log line such as `retries 0x3` is not taken.
                if !register.known && !was_in_dump {
                    return None;
                }
                self.in_register_dump = true;
                Some(Found::Address(TextAddress {
                    line: number,
                    kind: AddressKind::Register,
                    register: Some(register.name.to_string()),
                    value: register.value,
                }))
            }
            LineKind::Call(call) => {
                self.previous = Previous::GoCall(call.function.to_string());
                None
            }
            LineKind::Other(other) => {
                if is_unnamed_frame(other) {
                    self.previous = Previous::Unnamed;
                }
                None
            }
            LineKind::FileLine(location) => {
                let pc = location.pc?;
                match previous {
                    Previous::Unnamed => address(AddressKind::UnnamedFramePc, pc),
                    // A Go frame prints fp= and sp= before pc=; a `pc=`
                    // alone belongs to a C frame that a cgo symbolizer named.
                    Previous::GoCall(function) if location.fp.is_some() => {
                        Some(Found::FramePc(FramePc {
                            line: number,
                            function,
                            pc,
                        }))
                    }
                    _ => None,
                }
            }
            LineKind::Diagnostic(diagnostic) => address(
                AddressKind::UnexpectedReturnPc,
                unexpected_return_pc(diagnostic)?,
            ),
            _ => None,
        }
    }
}

/// Removes what the traceback parser removes before classifying a line:
/// the line end, indentation (rsyslog writes the tab as `#011`) and
/// trailing white space.
fn clean(raw: &str) -> &str {
    let mut rest = raw;
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t']);
        match trimmed.strip_prefix("#011") {
            Some(after) => rest = after,
            None => return trimmed.trim_end(),
        }
    }
}

/// Reports whether a line is a frame line without a function name: `?()`
/// and `?` where the runtime found no function, `non-Go function` where a
/// cgo symbolizer found none.
fn is_unnamed_frame(text: &str) -> bool {
    text == "?" || text == "non-Go function" || (text.starts_with("?(") && text.ends_with(')'))
}

/// Reads the address of `runtime: g N: unexpected return pc for F called
/// from 0x...` (Go 1.17 prints it without `g N: `).
fn unexpected_return_pc(text: &str) -> Option<u64> {
    const CALLED_FROM: &str = " called from ";
    if !text.contains("unexpected return pc for ") {
        return None;
    }
    let at = text.rfind(CALLED_FROM)?;
    let rest = text.get(at + CALLED_FROM.len()..)?;
    let token = rest.split(' ').next()?;
    hex::parse(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(lines: &[&str]) -> Vec<Found> {
        let mut scanner = AddressScanner::new();
        lines
            .iter()
            .enumerate()
            .filter_map(|(index, line)| scanner.scan_line(index + 1, line))
            .collect()
    }

    fn address(line: usize, kind: AddressKind, register: Option<&str>, value: u64) -> Found {
        Found::Address(TextAddress {
            line,
            kind,
            register: register.map(str::to_string),
            value,
        })
    }

    #[test]
    fn signal_lines() {
        let found = scan(&[
            "SIGSEGV: segmentation violation",
            "PC=0x4916d0 m=0 sigcode=1 addr=0x28\n",
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x49a5c3]\r\n",
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0]",
        ]);
        assert_eq!(
            found,
            vec![
                address(2, AddressKind::SignalPc, None, 0x4916d0),
                address(3, AddressKind::SignalBracketPc, None, 0x49a5c3),
            ]
        );
    }

    #[test]
    fn register_dump_amd64_and_arm64() {
        let found = scan(&["rax    0xc00005c000", "rip    0x4916d0", "cs     0x33"]);
        assert_eq!(found.len(), 3);
        assert_eq!(
            found[1],
            address(2, AddressKind::Register, Some("rip"), 0x4916d0)
        );
        let found = scan(&["r0      0x1490f8", "lr      0x4c488", "pc      0x7ee54"]);
        assert_eq!(
            found[1],
            address(2, AddressKind::Register, Some("lr"), 0x4c488)
        );
        assert_eq!(
            found[2],
            address(3, AddressKind::Register, Some("pc"), 0x7ee54)
        );
    }

    #[test]
    fn unknown_register_name_needs_a_dump() {
        assert!(scan(&["retries 0x3"]).is_empty());
        let found = scan(&["rax    0x1", "eflags 0x246"]);
        assert_eq!(
            found[1],
            address(2, AddressKind::Register, Some("eflags"), 0x246)
        );
        let found = scan(&["rax    0x1", "main.main()", "eflags 0x246"]);
        assert_eq!(found.len(), 1);
    }

    #[test]
    fn code_addresses_by_place() {
        let rip = TextAddress {
            line: 1,
            kind: AddressKind::Register,
            register: Some("rip".into()),
            value: 1,
        };
        assert!(rip.is_code_address());
        let rax = TextAddress {
            register: Some("rax".into()),
            ..rip.clone()
        };
        assert!(!rax.is_code_address());
        let signal = TextAddress {
            kind: AddressKind::SignalPc,
            register: None,
            ..rip
        };
        assert!(signal.is_code_address());
    }

    #[test]
    fn go_frames_give_their_pc() {
        let found = scan(&[
            "main.verify(0x0?)",
            "\t/src/main.go:45 +0x17 fp=0xc00005bf08 sp=0xc00005bee8 pc=0x491637",
            "runtime.goparkunlock(...)",
            "\t/src/runtime/proc.go:430",
        ]);
        assert_eq!(
            found,
            vec![Found::FramePc(FramePc {
                line: 2,
                function: "main.verify".into(),
                pc: 0x491637
            })]
        );
    }

    #[test]
    fn c_frames_without_names() {
        let found = scan(&[
            "non-Go function at pc=0x7f8f9d889eec",
            "?()",
            "\t?:0 pc=0x4916d0",
            "non-Go function",
            "\tpc=0x4916e0",
            "checksum_packet",
            "\tcgosegv.c:12 pc=0x4916f0",
        ]);
        assert_eq!(
            found,
            vec![
                address(1, AddressKind::NonGoFunction, None, 0x7f8f9d889eec),
                address(3, AddressKind::UnnamedFramePc, None, 0x4916d0),
                address(5, AddressKind::UnnamedFramePc, None, 0x4916e0),
            ]
        );
    }

    #[test]
    fn unexpected_return_pc_lines() {
        let found = scan(&[
            "runtime: g 1: unexpected return pc for main.f called from 0x4f3a2c",
            "runtime: unexpected return pc for main.g called from 0xffffffffffffffff",
            "runtime: g 1: unexpected return pc for main.f called from nowhere",
        ]);
        assert_eq!(
            found,
            vec![
                address(1, AddressKind::UnexpectedReturnPc, None, 0x4f3a2c),
                address(2, AddressKind::UnexpectedReturnPc, None, u64::MAX),
            ]
        );
    }

    #[test]
    fn hostile_lines() {
        let long = format!("PC=0x{} m=0 sigcode=0", "f".repeat(100_000));
        let found = scan(&[
            &long,
            "PC=0x m=0 sigcode=0",
            "rip 0x1ffffffffffffffff",
            "\u{fffd}\u{fffd}rip 0x1",
            "",
            "#011#011#011",
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn rsyslog_tab_is_indentation() {
        let found = scan(&[
            "main.main()",
            "#011/src/main.go:9 +0x1d fp=0xc000 sp=0xbff8 pc=0x401000",
        ]);
        assert_eq!(found.len(), 1);
    }
}
