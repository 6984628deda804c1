//! Resolving 200,000 distinct addresses of one large Go binary: `go tool
//! addr2line` against gocrash's resolver, through the library and through
//! the `gocrash resolve` command, in the same run.
//!
//! The binary is `GOCRASH_BENCH_BINARY` with the toolchain `GOCRASH_BENCH_GO`,
//! else the largest default-mode binary of the newest toolchain in the
//! corpus manifest. Run with `cargo bench --bench resolve`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use symbolizer::binary::Binary;

const ADDRESSES: u64 = 200_000;

const MANIFEST: &str = "/var/cache/gocrash/corpus/manifest.json";

/// Returns the binary to resolve, its toolchain's `go` and that toolchain's name.
fn pick_binary() -> Option<(PathBuf, PathBuf, String)> {
    if let (Some(binary), Some(go)) = (
        std::env::var_os("GOCRASH_BENCH_BINARY"),
        std::env::var_os("GOCRASH_BENCH_GO"),
    ) {
        let name = std::env::var("GOCRASH_BENCH_TOOLCHAIN").unwrap_or_else(|_| "bench".to_owned());
        return Some((binary.into(), go.into(), name));
    }
    let path = std::env::var_os("GOCRASH_CORPUS_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| MANIFEST.into());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let version = |name: &str| {
        name.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    let toolchain = manifest["toolchains"]
        .as_array()?
        .iter()
        .max_by_key(|t| version(t["name"].as_str().unwrap_or("")))?;
    let name = toolchain["name"].as_str()?.to_owned();
    let binary = manifest["builds"]
        .as_array()?
        .iter()
        .filter(|b| b["toolchain"] == name.as_str() && b["mode"] == "default")
        .filter_map(|b| b["binary"].as_str().map(PathBuf::from))
        .max_by_key(|b| std::fs::metadata(b).map(|m| m.len()).unwrap_or(0))?;
    Some((binary, toolchain["go"].as_str()?.into(), name))
}

fn run_with_stdin(mut command: Command, input: &[u8]) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write");
    assert!(output.status.success(), "{command:?} failed");
    (output.stdout, start.elapsed())
}

fn addr2line(go: &Path, toolchain: &str, binary: &Path, input: &[u8]) -> (Vec<u8>, Duration) {
    let mut command = Command::new(go);
    command
        .args(["tool", "addr2line"])
        .arg(binary)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", format!("/var/cache/gocrash/gocache/{toolchain}"));
    run_with_stdin(command, input)
}

/// Resolves through the library, formatting as addr2line does.
fn library(binary_path: &Path, addresses: &[u64]) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let binary = Binary::open(binary_path).expect("open");
    let tab = binary.pclntab().expect("pclntab");
    let mut out = Vec::with_capacity(addresses.len() * 64);
    for &address in addresses {
        match tab.resolve_addr2line(address).expect("resolve") {
            Some(frame) => {
                let file = frame.file.as_deref().unwrap_or("");
                writeln!(
                    out,
                    "{}\n{file}:{}",
                    frame.function,
                    frame.line.unwrap_or(-1)
                )
                .expect("write");
            }
            None => out.extend_from_slice(b"?\n?:0\n"),
        }
    }
    (out, start.elapsed())
}

fn main() {
    let Some((binary, go, toolchain)) = pick_binary() else {
        eprintln!("skipped: no corpus manifest and no GOCRASH_BENCH_BINARY/GOCRASH_BENCH_GO");
        return;
    };
    let opened = Binary::open(&binary).expect("open");
    let range = opened
        .pclntab()
        .expect("pclntab")
        .text_range()
        .expect("text range");
    let step = ((range.end - range.start) / ADDRESSES).max(1);
    let addresses: Vec<u64> = (0..ADDRESSES)
        .map(|i| range.start + i * step)
        .filter(|&a| a < range.end)
        .collect();
    let input: String = addresses.iter().map(|a| format!("0x{a:x}\n")).collect();
    println!(
        "binary {} ({} bytes, {} functions), {} addresses",
        binary.display(),
        std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0),
        opened.pclntab().expect("pclntab").len(),
        addresses.len()
    );

    // Warm up: go 1.25+ builds addr2line on first use, and the page cache.
    addr2line(&go, &toolchain, &binary, input.as_bytes());
    library(&binary, &addresses);

    let (expected, go_time) = addr2line(&go, &toolchain, &binary, input.as_bytes());
    let (from_library, library_time) = library(&binary, &addresses);
    let mut cli = Command::new(env!("CARGO_BIN_EXE_gocrash"));
    cli.args(["resolve", "--binary"]).arg(&binary);
    let (from_cli, cli_time) = run_with_stdin(cli, input.as_bytes());
    assert!(
        expected == from_library,
        "library output differs from addr2line"
    );
    assert!(
        expected == from_cli,
        "gocrash resolve output differs from addr2line"
    );

    let seconds = |d: Duration| d.as_secs_f64();
    println!(
        "go tool addr2line ({toolchain}): {:>8.3} s",
        seconds(go_time)
    );
    println!(
        "gocrash library:   {:>8.3} s  ({:.1}x addr2line)",
        seconds(library_time),
        seconds(go_time) / seconds(library_time)
    );
    println!(
        "gocrash resolve:   {:>8.3} s  ({:.1}x addr2line)",
        seconds(cli_time),
        seconds(go_time) / seconds(cli_time)
    );
}
