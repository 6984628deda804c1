//! `gocrash symbolize` on corpus cores recompressed with other tools: the
//! zstd core systemd-coredump stored, the same core decompressed, as an lz4
//! frame (`lz4`), as xz (`xz`), and as xz data under a `.zst` name. The
//! format is recognised by content, so every copy must give output
//! identical to the zstd one in every format, apart from the core's path.
//!
//! Needs the corpus manifest and the `zstd`, `lz4` and `xz` programs;
//! skipped with a message without a manifest, and failed when `CI=true`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::Crash;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
const FORMATS: &[&str] = &["text", "go", "json"];
/// Stands for the core's path in compared output.
const CORE_PLACEHOLDER: &str = "<core>";

/// Runs a compression tool, writing `output` from `input`, and checks it
/// succeeded.
fn compress(program: &str, args: &[&str], input: &Path, output: &Path) {
    let status = Command::new(program)
        .args(args)
        .stdin(std::fs::File::open(input).unwrap())
        .stdout(std::fs::File::create(output).unwrap())
        .status()
        .unwrap_or_else(|error| panic!("{program} does not run: {error}"));
    assert!(
        status.success(),
        "{program} {args:?} failed on {}",
        input.display()
    );
}

/// Copies of one core, each holding the same bytes in another container.
struct Copies {
    _dir: tempfile::TempDir,
    zst: PathBuf,
    others: Vec<PathBuf>,
    plain_len: u64,
}

fn recompress(core: &Path) -> Copies {
    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join("core.zst");
    std::fs::copy(core, &zst).unwrap();
    let plain = dir.path().join("core");
    compress("zstd", &["-dc"], &zst, &plain);
    let lz4 = dir.path().join("core.lz4");
    compress("lz4", &["-c", "-1"], &plain, &lz4);
    let xz = dir.path().join("core.xz");
    compress("xz", &["-c", "-1", "-T1"], &plain, &xz);
    let misleading = dir.path().join("xz-data.zst");
    std::fs::copy(&xz, &misleading).unwrap();

    let plain_len = std::fs::metadata(&plain).unwrap().len();
    assert!(std::fs::read(&plain).unwrap().starts_with(b"\x7fELF"));
    assert!(std::fs::read(&lz4)
        .unwrap()
        .starts_with(&[0x04, 0x22, 0x4d, 0x18]));
    assert!(std::fs::read(&misleading)
        .unwrap()
        .starts_with(b"\xfd7zXZ\0"));
    Copies {
        _dir: dir,
        zst,
        others: vec![plain, lz4, xz, misleading],
        plain_len,
    }
}

/// Symbolizes a core in one format; returns the exit code and the output
/// with the core's path replaced.
fn symbolize(core: &Path, format: &str) -> (Option<i32>, String) {
    let path = core.to_str().unwrap();
    let output = Command::new(GOCRASH)
        .args(["symbolize", "--format", format, path])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert!(
        !stdout.trim().is_empty(),
        "{path} --format {format}: no output; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), stdout.replace(path, CORE_PLACEHOLDER))
}

/// Picks crashes of several programs, toolchains and modes, among them
/// the largest core of the corpus.
fn chosen_crashes(crashes: &[Crash]) -> Vec<&Crash> {
    let wanted = [
        ("nilpointer", "1.19.8", "default"),
        ("closedchan", "1.27.3", "pie"),
        ("deadlock", "1.22.10", "stripped"),
        ("manygoroutines", "1.24.11", "default"),
    ];
    let mut chosen: Vec<&Crash> = wanted
        .iter()
        .filter_map(|(program, toolchain, mode)| {
            crashes
                .iter()
                .find(|c| c.program == *program && c.toolchain == *toolchain && c.mode == *mode)
        })
        .collect();
    let largest = crashes
        .iter()
        .max_by_key(|c| std::fs::metadata(&c.core).map(|m| m.len()).unwrap_or(0))
        .expect("a crash");
    if !chosen.iter().any(|c| c.core == largest.core) {
        chosen.push(largest);
    }
    chosen
}

#[test]
fn recompressed_cores_symbolize_identically() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crashes = chosen_crashes(&manifest.crashes);
    assert!(
        crashes.len() >= 4,
        "too few of the chosen crashes in the manifest"
    );

    for crash in crashes {
        let copies = recompress(&crash.core);
        eprintln!(
            "{} (Go {}, {}): {} bytes plain",
            crash.program, crash.toolchain, crash.mode, copies.plain_len
        );
        for format in FORMATS {
            let (status, expected) = symbolize(&copies.zst, format);
            assert_eq!(
                status,
                Some(0),
                "{} --format {format}",
                copies.zst.display()
            );
            assert!(expected.contains(CORE_PLACEHOLDER) || *format == "go");
            for copy in &copies.others {
                let (copy_status, output) = symbolize(copy, format);
                assert_eq!(copy_status, status, "{} --format {format}", copy.display());
                assert!(
                    output == expected,
                    "{} --format {format} differs from the zstd core's output",
                    copy.display()
                );
            }
        }
    }
}
