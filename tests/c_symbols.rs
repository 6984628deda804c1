//! `CSymbolizer` names C code the way `llvm-symbolizer` does: for every
//! address inside the C functions of a cgo program, the same function,
//! file, line and column, with the same inlined frames. And it falls back
//! to libc's `.dynsym` for exported functions, with a load bias.
//!
//! The cgo program is built at test time with Go 1.19 and the newest
//! installed toolchain. cgo compiles C with `-g -O2` by default, and the
//! linkers compress the DWARF.

mod gobuild;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use object::read::elf::ElfFile64;
use object::{Object, ObjectSymbol};
use symbolizer::dwarf::{CFrame, CSymbolizer, FrameSource};

const LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";

const MAIN_GO: &str = r#"package main

/*
#include "work.h"
*/
import "C"

import "fmt"

func main() {
	fmt.Println(int(C.work_entry(5)))
}
"#;

const WORK_H: &str = "int work_entry(int n);\n";

/// C code with a static function that is not inlined and a static inline
/// function that is always inlined, into both of its callers.
const WORK_C: &str = r#"#include "work.h"

static int counter;

static inline __attribute__((always_inline)) int scale(int x)
{
	counter += x;
	return x * 3 + counter;
}

static __attribute__((noinline)) int accumulate(int n)
{
	int total = 0;
	for (int i = 0; i < n; i++) {
		total += scale(i);
	}
	return total;
}

int work_entry(int n)
{
	int a = accumulate(n);
	return a + scale(n);
}
"#;

/// The C functions whose every byte is compared.
const C_FUNCTIONS: [&str; 2] = ["accumulate", "work_entry"];

/// One frame as llvm-symbolizer prints it.
#[derive(Debug, PartialEq, Eq)]
struct ExpectedFrame {
    function: String,
    file: String,
    line: u32,
    column: u32,
}

/// Runs llvm-symbolizer on `addresses` (file addresses) and returns the
/// frames for each, innermost first.
fn llvm_symbolizer(binary: &Path, addresses: &[u64]) -> Vec<Vec<ExpectedFrame>> {
    let mut child = Command::new("llvm-symbolizer")
        .arg(format!("--obj={}", binary.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("llvm-symbolizer runs");
    let input: String = addresses
        .iter()
        .map(|address| format!("{address:#x}\n"))
        .collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write addresses");
    let output = child.wait_with_output().expect("llvm-symbolizer finishes");
    assert!(output.status.success(), "llvm-symbolizer failed");
    let text = String::from_utf8(output.stdout).expect("llvm-symbolizer prints UTF-8");

    let groups: Vec<Vec<ExpectedFrame>> = text
        .split("\n\n")
        .filter(|group| !group.trim().is_empty())
        .map(|group| {
            let lines: Vec<&str> = group.lines().collect();
            lines
                .chunks(2)
                .map(|pair| parse_frame(pair[0], pair[1]))
                .collect()
        })
        .collect();
    assert_eq!(groups.len(), addresses.len(), "one group per address");
    groups
}

fn parse_frame(function: &str, location: &str) -> ExpectedFrame {
    let mut parts = location.rsplitn(3, ':');
    let column = parts
        .next()
        .and_then(|part| part.parse().ok())
        .expect("column");
    let line = parts
        .next()
        .and_then(|part| part.parse().ok())
        .expect("line");
    let file = parts.next().expect("file").to_owned();
    ExpectedFrame {
        function: function.to_owned(),
        file,
        line,
        column,
    }
}

fn as_expected(frame: &CFrame) -> ExpectedFrame {
    ExpectedFrame {
        function: frame.function.clone().unwrap_or_else(|| "??".to_owned()),
        file: frame.file.clone().unwrap_or_else(|| "??".to_owned()),
        line: frame.line.unwrap_or(0),
        column: frame.column.unwrap_or(0),
    }
}

/// Returns every byte address inside the named function symbols.
fn function_addresses(elf: &ElfFile64<'_>, names: &[&str]) -> Vec<u64> {
    let mut addresses = Vec::new();
    for name in names {
        let symbol = elf
            .symbols()
            .find(|symbol| symbol.name() == Ok(*name))
            .unwrap_or_else(|| panic!("no symbol {name}"));
        assert!(symbol.size() > 0, "{name} has a size");
        addresses.extend(symbol.address()..symbol.address() + symbol.size());
    }
    addresses
}

/// Builds the cgo program and compares every C address with llvm-symbolizer.
fn compare_with_llvm(go: &gobuild::Toolchain, root: &Path, mode: &str, args: &[&str]) {
    let binary = root.join(format!("cgo-{mode}-{}", go.version));
    go.build(&root.join("src"), &binary, args, &[("CGO_ENABLED", "1")]);
    let label = format!("{mode} (Go {})", go.version);

    let data = std::fs::read(&binary).expect("read binary");
    let elf = ElfFile64::parse(data.as_slice()).expect("the binary parses");
    let addresses = function_addresses(&elf, &C_FUNCTIONS);
    let expected = llvm_symbolizer(&binary, &addresses);

    let symbolizer = CSymbolizer::new(&elf);
    assert!(symbolizer.has_dwarf(), "{label}: cgo builds carry DWARF");
    let mut inlined = 0;
    for (address, expected_frames) in addresses.iter().zip(&expected) {
        let frames = symbolizer.symbolize_file_address(*address);
        let actual: Vec<ExpectedFrame> = frames.iter().map(as_expected).collect();
        assert_eq!(&actual, expected_frames, "{label}: frames at {address:#x}");
        assert!(
            frames
                .iter()
                .all(|frame| frame.source == FrameSource::Dwarf),
            "{label}: {address:#x} from DWARF"
        );
        let outermost = frames.last().expect("at least one frame");
        assert!(
            !outermost.inlined,
            "{label}: the outermost frame at {address:#x} is not inlined"
        );
        if frames.len() > 1 {
            assert!(
                frames[0].inlined,
                "{label}: the inner frame at {address:#x} is inlined"
            );
            assert_eq!(
                frames[0].function.as_deref(),
                Some("scale"),
                "{label}: inlined function at {address:#x}"
            );
            inlined += 1;
        }
    }
    assert!(
        symbolizer.dwarf_error().is_none(),
        "{label}: {:?}",
        symbolizer.dwarf_error()
    );
    assert!(
        inlined > 0,
        "{label}: some addresses are inside the inlined scale()"
    );

    // The top address, which a damaged stack or the wrong binary can give,
    // names nothing and must not overflow the DWARF lookup.
    let top = symbolizer.symbolize_file_address(u64::MAX);
    assert!(
        top.iter().all(|frame| frame.source != FrameSource::Dwarf),
        "{label}: {top:?}"
    );

    // The same lookups at a runtime address, with a load bias.
    let bias = 0x5555_0000_0000;
    let biased = CSymbolizer::new(&elf).with_load_bias(bias);
    for address in addresses.iter().step_by(7) {
        assert_eq!(
            biased.symbolize(bias + address),
            symbolizer.symbolize_file_address(*address),
            "{label}: biased lookup at {address:#x}"
        );
    }
}

#[test]
fn cgo_functions_match_llvm_symbolizer() {
    let Some(toolchains) = gobuild::installed_or_skip() else {
        return;
    };
    let root = tempfile::tempdir().expect("temporary directory");
    gobuild::write_files(
        &root.path().join("src"),
        &[
            ("go.mod", "module example.com/cgowork\n\ngo 1.19\n"),
            ("main.go", MAIN_GO),
            ("work.h", WORK_H),
            ("work.c", WORK_C),
        ],
    );

    let oldest = toolchains.first().expect("a toolchain");
    let newest = toolchains.last().expect("a toolchain");
    compare_with_llvm(oldest, root.path(), "default", &[]);
    if newest.version != oldest.version {
        compare_with_llvm(newest, root.path(), "default", &[]);
    }
    compare_with_llvm(newest, root.path(), "pie", &["-buildmode=pie"]);
}

/// Returns the names `nm -D` lists at the address of `name` in `library`, and that address.
fn nm_dynamic_aliases(library: &str, name: &str) -> (u64, BTreeSet<String>) {
    let output = Command::new("nm")
        .args(["-D", "--defined-only", library])
        .output()
        .expect("nm runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let entries: Vec<(u64, String)> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = u64::from_str_radix(fields.next()?, 16).ok()?;
            let _kind = fields.next()?;
            let symbol = fields.next()?.split('@').next()?.to_owned();
            Some((address, symbol))
        })
        .collect();
    let address = entries
        .iter()
        .find(|(_, symbol)| symbol == name)
        .map(|(address, _)| *address)
        .unwrap_or_else(|| panic!("nm -D lists no {name} in {library}"));
    let aliases = entries
        .into_iter()
        .filter(|(at, _)| *at == address)
        .map(|(_, symbol)| symbol)
        .collect();
    (address, aliases)
}

#[test]
fn libc_exports_resolve_with_bias() {
    if !Path::new(LIBC).exists() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "no {LIBC}");
        eprintln!("skipped: no {LIBC}");
        return;
    }
    let data = std::fs::read(LIBC).expect("read libc");
    let elf = ElfFile64::parse(data.as_slice()).expect("libc parses");
    let bias = 0x7f3a_1c40_0000;
    let symbolizer = CSymbolizer::new(&elf).with_load_bias(bias);
    assert!(
        !symbolizer.has_dwarf(),
        "Debian's libc keeps its DWARF in a separate file"
    );
    assert!(symbolizer.has_symbols());

    for name in ["getpid", "write", "abort", "pthread_kill"] {
        let (address, aliases) = nm_dynamic_aliases(LIBC, name);
        for offset in [0, 4] {
            let frames = symbolizer.symbolize(bias + address + offset);
            assert_eq!(frames.len(), 1, "{name}+{offset:#x}: {frames:?}");
            let frame = &frames[0];
            let function = frame.function.clone().unwrap_or_default();
            assert!(
                aliases.contains(&function),
                "{name}+{offset:#x}: {function} is not among {aliases:?}"
            );
            assert_eq!(
                frame.symbol_offset,
                Some(offset),
                "{name}+{offset:#x}: offset"
            );
            assert_eq!(frame.source, FrameSource::SymbolTable, "{name}: source");
            assert_eq!(frame.file, None, "{name}: file");
        }
    }
}
