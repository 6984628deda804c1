//! Register dump lines: `rax    0xca` on amd64, `r0      0x1490f8` on arm64.
//!
//! The runtime's `dumpregs` prints one register per line, the name padded to
//! a fixed column (7 characters on amd64, 8 on arm64), then the value in hex.
//! Transports may collapse the padding, so any run of spaces is accepted.
//! Which section a dump belongs to is left to the parser.

use super::model::{hex, Arch};

/// amd64 names in the order `runtime.dumpregs` prints them.
const AMD64: [&str; 21] = [
    "rax", "rbx", "rcx", "rdx", "rdi", "rsi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip", "rflags", "cs", "fs", "gs",
];

/// arm64 names besides `r0` to `r29`.
const ARM64_SPECIAL: [&str; 4] = ["lr", "sp", "pc", "fault"];

/// Maximum length of a register name accepted from another architecture.
const MAX_OTHER_NAME_LEN: usize = 8;

/// One register line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RegisterLine<'a> {
    pub name: &'a str,
    pub value: u64,
    /// The name is an amd64 or arm64 register, so the line can start a dump.
    /// Other names are taken only inside a dump that has started.
    pub known: bool,
}

/// Reads `name<spaces>0xvalue`.
pub(crate) fn parse_register(line: &str) -> Option<RegisterLine<'_>> {
    let (name, value) = line.split_once(' ')?;
    let value = hex::parse(value.trim_start_matches(' '))?;
    let plausible = !name.is_empty()
        && name.len() <= MAX_OTHER_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
    if !plausible {
        return None;
    }
    let known = AMD64.contains(&name)
        || arm64_register_number(name).is_some()
        || ARM64_SPECIAL.contains(&name);
    Some(RegisterLine { name, value, known })
}

/// Guesses the architecture from the register names of one dump.
pub(crate) fn detect_arch<'a>(names: impl IntoIterator<Item = &'a str>) -> Arch {
    let mut amd64 = 0usize;
    let mut arm64 = 0usize;
    let mut total = 0usize;
    for name in names {
        total += 1;
        if AMD64.contains(&name) {
            amd64 += 1;
        }
        if arm64_register_number(name).is_some() || ARM64_SPECIAL.contains(&name) {
            arm64 += 1;
        }
    }
    // `r8` to `r15` are names on both, and a dump of only those reads as
    // amd64.
    if total == 0 {
        Arch::Other
    } else if amd64 == total {
        Arch::Amd64
    } else if arm64 == total {
        Arch::Arm64
    } else {
        Arch::Other
    }
}

/// Returns N for `rN` with N in 0..=29.
fn arm64_register_number(name: &str) -> Option<u8> {
    let digits = name.strip_prefix('r')?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    let number: u8 = digits.parse().ok()?;
    (number <= 29).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amd64_lines() {
        assert_eq!(
            parse_register("rax    0xca"),
            Some(RegisterLine {
                name: "rax",
                value: 0xca,
                known: true
            })
        );
        assert_eq!(
            parse_register("rflags 0x10246"),
            Some(RegisterLine {
                name: "rflags",
                value: 0x10246,
                known: true
            })
        );
        assert_eq!(
            parse_register("rax 0xfffffffffffffffc").map(|r| r.value),
            Some(0xfffffffffffffffc)
        );
    }

    #[test]
    fn arm64_lines() {
        assert_eq!(
            parse_register("r29     0x4000002540"),
            Some(RegisterLine {
                name: "r29",
                value: 0x4000002540,
                known: true
            })
        );
        assert!(parse_register("fault   0x0").unwrap().known);
        assert!(parse_register("lr      0x4c488").unwrap().known);
        assert!(!parse_register("r30     0x1").unwrap().known);
        assert!(!parse_register("r01     0x1").unwrap().known);
    }

    #[test]
    fn other_names_and_non_registers() {
        let line = parse_register("eax    0x1").unwrap();
        assert!(!line.known);
        assert_eq!(parse_register("Rax 0x1"), None);
        assert_eq!(parse_register("rax"), None);
        assert_eq!(parse_register("rax    12"), None);
        assert_eq!(parse_register("main.main()"), None);
        assert_eq!(parse_register("verylongname 0x1"), None);
        assert_eq!(parse_register("rax 0x1 0x2"), None);
    }

    #[test]
    fn arch_from_names() {
        assert_eq!(detect_arch(AMD64), Arch::Amd64);
        let mut arm64: Vec<String> = (0..30).map(|n| format!("r{n}")).collect();
        arm64.extend(ARM64_SPECIAL.iter().map(|name| name.to_string()));
        assert_eq!(detect_arch(arm64.iter().map(String::as_str)), Arch::Arm64);
        assert_eq!(detect_arch(["r8", "r9"]), Arch::Amd64);
        assert_eq!(detect_arch(["eax", "ebx"]), Arch::Other);
        assert_eq!(detect_arch([]), Arch::Other);
    }
}
