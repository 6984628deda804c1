//! Feeds arbitrary bytes to the goroutine walk as the core of a fixed,
//! small, real Go binary. The walk must return goroutines or an error and
//! never panic, loop without end or allocate without bound.
//!
//! The binary is `$GOCRASH_FUZZ_BINARY`, else the Go 1.27 default build of
//! the corpus program `nilpointer` named by the corpus manifest
//! (`$GOCRASH_CORPUS_MANIFEST`, else `/var/cache/gocrash/corpus/manifest.json`).
//! `scripts/fuzz-seeds` writes a seed: the core of that program's crash with its
//! all-zero pages left out (a `PT_LOAD` per run of non-zero pages),
//! which brings its 40 MB to about 600 KB, within libFuzzer's `-max_len`.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use symbolizer::binary::Binary;
use symbolizer::core::{Core, CoreOptions};
use symbolizer::goroutines::{BinaryInfo, Process};

const DEFAULT_MANIFEST: &str = "/var/cache/gocrash/corpus/manifest.json";
const PROGRAM: &str = "nilpointer";
const TOOLCHAIN: &str = "1.27.3";

/// Finds the binary the fuzz inputs are cores of.
fn binary_path() -> PathBuf {
    if let Some(path) = std::env::var_os("GOCRASH_FUZZ_BINARY") {
        return PathBuf::from(path);
    }
    let manifest = std::env::var_os("GOCRASH_CORPUS_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MANIFEST));
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("set GOCRASH_FUZZ_BINARY or build the corpus: cannot read {}: {e}", manifest.display()));
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("the corpus manifest is JSON");
    let builds = manifest["builds"].as_array().expect("the manifest lists builds");
    let build = builds
        .iter()
        .find(|b| b["program"] == PROGRAM && b["toolchain"] == TOOLCHAIN && b["mode"] == "default")
        .unwrap_or_else(|| panic!("the manifest has no {PROGRAM} build by Go {TOOLCHAIN}"));
    PathBuf::from(build["binary"].as_str().expect("a build names its binary"))
}

/// The binary's facts, read once: reading its DWARF costs more than a walk.
fn binary_info() -> &'static BinaryInfo<'static> {
    static BINARY: OnceLock<Binary> = OnceLock::new();
    static INFO: OnceLock<BinaryInfo<'static>> = OnceLock::new();
    let binary = BINARY.get_or_init(|| {
        let path = binary_path();
        Binary::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
    });
    INFO.get_or_init(|| BinaryInfo::new(binary).unwrap_or_else(|e| panic!("cannot read the binary: {e}")))
}

fuzz_target!(|data: &[u8]| {
    let info = binary_info();
    // No file is opened: paths in the input must not reach the file system.
    let options = CoreOptions { core_only: true, ..Default::default() };
    let Ok(core) = Core::from_bytes(data.to_vec(), &options) else { return };
    let Ok(process) = Process::load_with(&core, info) else { return };
    for goroutine in process.goroutines() {
        let _ = goroutine.status_text.len();
        if let Some(walk) = &goroutine.walk {
            let _ = walk.logical_frame_count(goroutine.printed_from);
        }
    }
    let _ = process.runtime_stack();
    for thread in process.threads() {
        let _ = thread.printed_from();
    }
    let _ = process.crash().fatal_error.as_deref();
});
