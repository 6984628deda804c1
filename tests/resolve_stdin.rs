//! `gocrash resolve` reading addresses from stdin that are not addresses:
//! a line of invalid UTF-8 and a line of megabytes are reported, each as
//! one result, and the lines after them are still resolved.
//!
//! Needs a corpus binary from the manifest; skipped with a message
//! otherwise.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use symbolizer::binary::Binary;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
/// Length of the overlong line: far past any address and the read limit.
const HUGE_LINE_BYTES: usize = 8 << 20;

fn resolve(binary: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(GOCRASH)
        .arg("resolve")
        .arg("--binary")
        .arg(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    output
}

/// Returns a corpus binary and an address inside its first function.
fn binary_and_address() -> Option<(std::path::PathBuf, u64)> {
    let manifest = support::manifest()?;
    let build = manifest.builds.iter().find(|b| b.mode == "default")?;
    let binary = Binary::open(&build.binary).unwrap();
    let range = binary.pclntab().unwrap().text_range().unwrap();
    Some((build.binary.clone(), range.start + 1))
}

fn input(address: u64) -> Vec<u8> {
    let mut input = format!("{address:#x}\n").into_bytes();
    input.extend(b"\xff\xfe0x10\n");
    input.extend(std::iter::repeat_n(b'7', HUGE_LINE_BYTES));
    input.push(b'\n');
    input.extend(format!("{address:#x}\n").into_bytes());
    input
}

#[test]
fn bad_lines_are_reported_and_skipped() {
    let Some((binary, address)) = binary_and_address() else {
        eprintln!("skipped: no corpus manifest");
        return;
    };
    let output = resolve(&binary, &[], &input(address));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();

    assert_eq!(output.status.code(), Some(4), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{stdout}");
    assert_ne!(lines[0], "?", "{stdout}");
    assert_eq!(&lines[2..6], ["?", "?:0", "?", "?:0"], "{stdout}");
    assert_eq!(lines[6..8], lines[0..2], "{stdout}");

    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(
        errors[0].starts_with("gocrash: stdin line 2: invalid UTF-8: \"\u{fffd}\u{fffd}0x10\""),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with(
            "gocrash: stdin line 3: too long for an address (limit 4096 bytes): \"777"
        ),
        "{stderr}"
    );
    assert!(
        errors[1].ends_with(&format!("… ({HUGE_LINE_BYTES} bytes)")),
        "{stderr}"
    );
    assert!(errors[1].len() < 300, "{} bytes: {stderr}", errors[1].len());
}

#[test]
fn bad_lines_are_json_errors() {
    let Some((binary, address)) = binary_and_address() else {
        eprintln!("skipped: no corpus manifest");
        return;
    };
    let output = resolve(&binary, &["--json"], &input(address));
    assert_eq!(output.status.code(), Some(4));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let results = results.as_array().unwrap();

    assert_eq!(results.len(), 4);
    assert!(results[0].get("error").is_none(), "{}", results[0]);
    assert_eq!(results[1]["address"], "\u{fffd}\u{fffd}0x10");
    assert!(results[1]["error"]
        .as_str()
        .unwrap()
        .contains("invalid UTF-8"));
    assert_eq!(results[2]["address"].as_str().map(str::len), Some(100));
    assert!(results[2]["error"]
        .as_str()
        .unwrap()
        .contains("too long for an address"));
    assert_eq!(results[3], results[0]);
}

#[test]
fn pie_without_base_gets_hint() {
    let Some(manifest) = support::manifest() else {
        eprintln!("skipped: no corpus manifest");
        return;
    };
    let pie = manifest
        .builds
        .iter()
        .find(|b| b.mode == "pie")
        .expect("the corpus has PIE builds");
    let binary = Binary::open(&pie.binary).unwrap();
    let range = binary.pclntab().unwrap().text_range().unwrap();
    // An address where a PIE is loaded, far above its link-time text.
    let loaded = format!("{:#x}", 0x5600_0000_0000 + range.start + 1);
    let output = Command::new(env!("CARGO_BIN_EXE_gocrash"))
        .args(["resolve", "--binary", pie.binary.to_str().unwrap(), &loaded])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "?\n?:0\n");
    assert!(stderr.starts_with("gocrash: warning: "), "{stderr}");
    assert!(stderr.contains("is position-independent"), "{stderr}");
    assert!(stderr.contains("--base"), "{stderr}");

    // The link-time address needs no hint.
    let link = format!("{:#x}", range.start + 1);
    let output = Command::new(env!("CARGO_BIN_EXE_gocrash"))
        .args(["resolve", "--binary", pie.binary.to_str().unwrap(), &link])
        .output()
        .unwrap();
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn bias_given_as_base_gets_hint() {
    let Some(manifest) = support::manifest() else {
        eprintln!("skipped: no corpus manifest");
        return;
    };
    // A bias given as the base moves a text address up by the link-time
    // base, which takes it past the end of the text of a small program.
    let (pie, range) = manifest
        .builds
        .iter()
        .filter(|b| b.mode == "pie")
        .find_map(|build| {
            let binary = Binary::open(&build.binary).unwrap();
            let range = binary.pclntab().unwrap().text_range().unwrap();
            (range.start + 1 + binary.link_base() >= range.end).then_some((build, range))
        })
        .expect("a PIE build whose text is smaller than its link-time base");
    let bias = 0x5600_0000_0000u64;
    let loaded = format!("{:#x}", bias + range.start + 1);
    let resolve_with = |option: &str, value: u64| {
        Command::new(env!("CARGO_BIN_EXE_gocrash"))
            .args(["resolve", "--binary", pie.binary.to_str().unwrap()])
            .args([option, &format!("{value:#x}"), &loaded])
            .output()
            .unwrap()
    };

    // The load bias given as the base shifts the address out of the text.
    let output = resolve_with("--base", bias);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "?\n?:0\n");
    assert!(stderr.contains("no address is in a function"), "{stderr}");
    assert!(stderr.contains("--bias"), "{stderr}");

    // The same value given as the bias resolves, with no warning.
    let output = resolve_with("--bias", bias);
    assert_ne!(String::from_utf8(output.stdout).unwrap(), "?\n?:0\n");
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
