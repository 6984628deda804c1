//! The built-in wait reason tables against the `runtime.waitReasonStrings`
//! array that each corpus toolchain's runtime holds in a real core: every
//! covered release must have the same names in the same order, because a
//! stripped binary's goroutines are named from the table alone.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSymbol};
use symbolizer::core::{Core, CoreOptions};
use symbolizer::runtime::version::GoVersion;
use symbolizer::runtime::waitreason::WaitReasons;

fn manifest_path() -> PathBuf {
    std::env::var_os("GOCRASH_CORPUS_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/gocrash/corpus/manifest.json"))
}

/// Picks one default-mode crash per toolchain; `None` (after printing why)
/// when there is no manifest outside CI.
fn crash_per_toolchain() -> Option<Vec<serde_json::Value>> {
    let path = manifest_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no corpus manifest at {}: {error}",
                path.display()
            );
            eprintln!("skipped: no corpus manifest at {}: {error}", path.display());
            return None;
        }
    };
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut chosen: Vec<serde_json::Value> = Vec::new();
    for crash in manifest["crashes"].as_array().into_iter().flatten() {
        let toolchain = &crash["toolchain"];
        if crash["mode"] == "default" && !chosen.iter().any(|c| &c["toolchain"] == toolchain) {
            chosen.push(crash.clone());
        }
    }
    Some(chosen)
}

fn symbol(binary: &Path, name: &str) -> (u64, u64) {
    let data = std::fs::read(binary).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let symbol = elf
        .symbols()
        .find(|s| s.name() == Ok(name))
        .unwrap_or_else(|| panic!("{} has no {name}", binary.display()));
    (symbol.address(), symbol.size())
}

fn version(toolchain: &str) -> GoVersion {
    let parts: Vec<u32> = toolchain.split('.').map(|p| p.parse().unwrap()).collect();
    GoVersion::new(parts[0], parts[1], parts.get(2).copied().unwrap_or(0))
}

#[test]
fn tables_equal_runtime_arrays() {
    let Some(crashes) = crash_per_toolchain() else {
        return;
    };
    assert!(
        !crashes.is_empty(),
        "the manifest lists no default-mode crash"
    );
    for crash in &crashes {
        let toolchain = crash["toolchain"].as_str().unwrap();
        let binary = PathBuf::from(crash["binary"].as_str().unwrap());
        let options = CoreOptions {
            executable: Some(binary.clone()),
            ..CoreOptions::default()
        };
        let core = Core::open(Path::new(crash["core"].as_str().unwrap()), &options).unwrap();
        let (address, size) = symbol(&binary, "runtime.waitReasonStrings");
        let from_core = WaitReasons::from_memory(core.memory(), address, size / 16)
            .unwrap_or_else(|| panic!("go{toolchain}: waitReasonStrings is unreadable"));
        let table = WaitReasons::for_version(version(toolchain))
            .unwrap_or_else(|| panic!("go{toolchain} has no built-in table"));
        assert_eq!(table.names(), from_core.names(), "go{toolchain}");
        println!("go{toolchain}: {} wait reasons equal", table.names().len());
    }
}
