//! The lines that give the reason the program died: the panic chain, `fatal error:`,
//! and the two signal reports.
//!
//! The runtime prints these before the stacks (and again at the top of each
//! per-thread section for signals). Their order and what they belong to are
//! left to the parser; this module reads one line at a time.

use super::model::{hex, FatalForm, Panic, SignalForm, SignalInfo};

/// Most bytes an `instruction bytes:` line holds; the runtime prints 16.
const MAX_INSTRUCTION_BYTES: usize = 16;

/// Reads `panic: V`, `panic: V [recovered]` and `panic: V [recovered,
/// repanicked]` (Go 1.25+). Nested panics are printed with a leading tab,
/// which the caller has already removed.
pub(crate) fn parse_panic(line: &str, text_line: usize) -> Option<Panic> {
    let value = line.strip_prefix("panic: ")?;
    let (value, recovered, repanicked) =
        if let Some(value) = value.strip_suffix(" [recovered, repanicked]") {
            (value, true, true)
        } else if let Some(value) = value.strip_suffix(" [recovered]") {
            (value, true, false)
        } else {
            (value, false, false)
        };
    Some(Panic {
        value: value.to_string(),
        recovered,
        repanicked,
        text_line,
    })
}

/// Reads `fatal error: MSG` and `fatal: MSG`.
pub(crate) fn parse_fatal(line: &str) -> Option<(FatalForm, &str)> {
    if let Some(message) = line.strip_prefix("fatal error: ") {
        return Some((FatalForm::FatalError, message));
    }
    line.strip_prefix("fatal: ")
        .map(|message| (FatalForm::Fatal, message))
}

/// Reads `[signal SIGSEGV: segmentation violation code=0x1 addr=0x0
/// pc=0x49a5c3]`, or `[signal 0x22 code=...]` for a signal without a name.
pub(crate) fn parse_signal_bracket(line: &str, text_line: usize) -> Option<SignalInfo> {
    let inner = line.strip_prefix("[signal ")?.strip_suffix(']')?;
    let at = inner.rfind(" code=")?;
    let mut signal = SignalInfo {
        form: SignalForm::Bracketed,
        text_line,
        ..SignalInfo::default()
    };
    let name = inner.get(..at)?;
    if let Some(number) = hex::parse(name) {
        signal.number = Some(number);
    } else {
        read_signal_name(name, &mut signal)?;
    }
    for field in inner.get(at + 1..)?.split(' ') {
        let (key, value) = field.split_once('=')?;
        let value = hex::parse(value)?;
        match key {
            "code" => signal.code = Some(value),
            "addr" => signal.addr = Some(value),
            "pc" => signal.pc = Some(value),
            _ => return None,
        }
    }
    Some(signal)
}

/// Reads the first line of a fatal signal report: `SIGSEGV: segmentation
/// violation`, `signal 32` (real-time signals in the runtime's table) or
/// `Signal 65` (past the table).
pub(crate) fn parse_signal_name(line: &str, text_line: usize) -> Option<SignalInfo> {
    let mut signal = SignalInfo {
        form: SignalForm::Handler,
        text_line,
        ..SignalInfo::default()
    };
    let number = line
        .strip_prefix("Signal ")
        .or_else(|| line.strip_prefix("signal "));
    if let Some(number) = number {
        signal.number = Some(number.parse().ok()?);
        return Some(signal);
    }
    read_signal_name(line, &mut signal)?;
    Some(signal)
}

/// Splits `SIGNAME: description`.
fn read_signal_name(text: &str, signal: &mut SignalInfo) -> Option<()> {
    let (name, description) = text.split_once(": ")?;
    let suffix = name.strip_prefix("SIG")?;
    let valid = !suffix.is_empty()
        && suffix
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
    if !valid || description.is_empty() {
        return None;
    }
    signal.name = Some(name.to_string());
    signal.description = Some(description.to_string());
    Some(())
}

/// The fields of a `PC=0x47de81 m=0 sigcode=0 [addr=0x0]` line.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SignalPc {
    pub pc: u64,
    pub m: u64,
    pub code: u64,
    /// Printed for SIGSEGV and SIGBUS since Go 1.22.
    pub addr: Option<u64>,
}

pub(crate) fn parse_signal_pc(line: &str) -> Option<SignalPc> {
    let mut fields = line.split(' ');
    let pc = hex::parse(fields.next()?.strip_prefix("PC=")?)?;
    let m = fields.next()?.strip_prefix("m=")?.parse().ok()?;
    let code = fields.next()?.strip_prefix("sigcode=")?.parse().ok()?;
    let addr = match fields.next() {
        Some(field) => Some(hex::parse(field.strip_prefix("addr=")?)?),
        None => None,
    };
    if fields.next().is_some() {
        return None;
    }
    Some(SignalPc { pc, m, code, addr })
}

/// Reads `instruction bytes: 0xf 0xb 0xc3 ...`.
pub(crate) fn parse_instruction_bytes(line: &str) -> Option<Vec<u8>> {
    let rest = line.strip_prefix("instruction bytes:")?;
    let mut bytes = Vec::new();
    for word in rest.split_whitespace() {
        if bytes.len() >= MAX_INSTRUCTION_BYTES {
            break;
        }
        let value = hex::parse(word)?;
        bytes.push(u8::try_from(value).ok()?);
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_suffixes() {
        let p = parse_panic("panic: bad input 3 [recovered]", 1).unwrap();
        assert_eq!(p.value, "bad input 3");
        assert!(p.recovered);
        assert!(!p.repanicked);
        let p = parse_panic("panic: bad input 3 [recovered, repanicked]", 1).unwrap();
        assert!(p.recovered);
        assert!(p.repanicked);
        let p = parse_panic("panic: main.Temperature(451)", 4).unwrap();
        assert_eq!(p.value, "main.Temperature(451)");
        assert_eq!(p.text_line, 4);
        assert!(!p.recovered);
        assert!(parse_panic("panicked: x", 1).is_none());
        assert!(parse_panic(
            "panic: runtime error: index out of range [5] with length 3",
            1
        )
        .unwrap()
        .is_runtime_error());
    }

    #[test]
    fn fatal_forms() {
        assert_eq!(
            parse_fatal("fatal error: concurrent map writes"),
            Some((FatalForm::FatalError, "concurrent map writes"))
        );
        assert_eq!(
            parse_fatal("fatal: morestack on g0"),
            Some((FatalForm::Fatal, "morestack on g0"))
        );
        assert_eq!(parse_fatal("fatality: x"), None);
    }

    #[test]
    fn bracketed_signal() {
        let s = parse_signal_bracket(
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x49a5c3]",
            2,
        )
        .unwrap();
        assert_eq!(s.name.as_deref(), Some("SIGSEGV"));
        assert_eq!(s.description.as_deref(), Some("segmentation violation"));
        assert_eq!((s.code, s.addr, s.pc), (Some(1), Some(0), Some(0x49a5c3)));
        assert_eq!(s.form, SignalForm::Bracketed);

        let s = parse_signal_bracket("[signal 0x22 code=0x0 addr=0x0 pc=0x1]", 2).unwrap();
        assert_eq!((s.name, s.number), (None, Some(0x22)));

        assert!(parse_signal_bracket("[signal SIGSEGV: x code=0x1 addr=0x0 pc=0x1", 1).is_none());
        assert!(parse_signal_bracket("[signal SIGSEGV: x code=1 addr=0x0 pc=0x1]", 1).is_none());
        assert!(parse_signal_bracket("[signal sigsegv: x code=0x1 addr=0x0 pc=0x1]", 1).is_none());
    }

    #[test]
    fn handler_signal_names() {
        let s = parse_signal_name("SIGQUIT: quit", 1).unwrap();
        assert_eq!(s.name.as_deref(), Some("SIGQUIT"));
        assert_eq!(s.description.as_deref(), Some("quit"));
        assert_eq!(s.form, SignalForm::Handler);
        assert_eq!(parse_signal_name("Signal 65", 1).unwrap().number, Some(65));
        assert_eq!(parse_signal_name("signal 32", 1).unwrap().number, Some(32));
        assert!(parse_signal_name("SIGNAL: x", 1).is_some());
        assert!(parse_signal_name("SIG: x", 1).is_none());
        assert!(parse_signal_name("SIGSEGV:", 1).is_none());
        assert!(parse_signal_name("Signal x", 1).is_none());
        assert!(parse_signal_name("SIGsegv: x", 1).is_none());
    }

    #[test]
    fn pc_lines() {
        assert_eq!(
            parse_signal_pc("PC=0x47de81 m=0 sigcode=0"),
            Some(SignalPc {
                pc: 0x47de81,
                m: 0,
                code: 0,
                addr: None
            })
        );
        assert_eq!(
            parse_signal_pc("PC=0x49be09 m=3 sigcode=1 addr=0x0"),
            Some(SignalPc {
                pc: 0x49be09,
                m: 3,
                code: 1,
                addr: Some(0)
            })
        );
        assert_eq!(
            parse_signal_pc("PC=0x1 m=0 sigcode=18446744073709551610").map(|pc| pc.code),
            Some(18446744073709551610)
        );
        assert!(parse_signal_pc("PC=0x1 m=0").is_none());
        assert!(parse_signal_pc("PC=0x1 m=0 sigcode=1 addr=0x0 extra").is_none());
    }

    #[test]
    fn instruction_bytes() {
        assert_eq!(
            parse_instruction_bytes("instruction bytes: 0xf 0xb 0xc3 0xcc"),
            Some(vec![0x0f, 0x0b, 0xc3, 0xcc])
        );
        assert_eq!(parse_instruction_bytes("instruction bytes:"), Some(vec![]));
        assert_eq!(parse_instruction_bytes("instruction bytes: 0x100"), None);
        let many = format!("instruction bytes:{}", " 0x1".repeat(40));
        assert_eq!(
            parse_instruction_bytes(&many).map(|b| b.len()),
            Some(MAX_INSTRUCTION_BYTES)
        );
    }
}
