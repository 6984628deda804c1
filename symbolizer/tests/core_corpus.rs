//! The core reader over every crash of the corpus manifest: each core opens
//! without damage, names the crashed process and its executable, and reads
//! the executable's text and pclntab as the binary has them.

use std::path::{Path, PathBuf};

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection};
use symbolizer::core::{Backing, Core, CoreOptions};

/// Bytes of each section compared per crash; enough to cover the runtime's
/// first functions and the pclntab header without reading every byte of
/// large binaries.
const COMPARED_BYTES: usize = 1 << 20;

fn manifest_path() -> PathBuf {
    std::env::var_os("GOCRASH_CORPUS_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/gocrash/corpus/manifest.json"))
}

/// Returns the manifest's crashes, or `None` (after printing why) when there
/// is no manifest outside CI.
fn crashes() -> Option<Vec<serde_json::Value>> {
    let path = manifest_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no corpus manifest at {}: {error}",
                path.display()
            );
            eprintln!(
                "skipping corpus core tests: no manifest at {}: {error}",
                path.display()
            );
            return None;
        }
    };
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    Some(manifest["crashes"].as_array().cloned().unwrap_or_default())
}

fn field<'a>(crash: &'a serde_json::Value, name: &str) -> &'a str {
    crash[name]
        .as_str()
        .unwrap_or_else(|| panic!("crash without {name}: {crash}"))
}

#[test]
fn every_corpus_core_reads_cleanly() {
    let Some(crashes) = crashes() else { return };
    assert!(!crashes.is_empty(), "the manifest lists no crash");
    let temp = tempfile::tempdir().unwrap();
    let options = CoreOptions {
        temp_dir: Some(temp.path().to_path_buf()),
        ..Default::default()
    };
    for crash in &crashes {
        let name = format!(
            "{} {} {}",
            field(crash, "program"),
            field(crash, "toolchain"),
            field(crash, "mode")
        );
        let core_path = Path::new(field(crash, "core"));
        let binary = Path::new(field(crash, "binary"));
        let core = Core::open(core_path, &options).unwrap_or_else(|e| panic!("{name}: {e}"));

        assert!(core.problems().is_empty(), "{name}: {:?}", core.problems());
        assert!(!core.is_partial(), "{name}");
        assert_eq!(
            u64::from(core.process().unwrap().pid),
            crash["pid"].as_u64().unwrap(),
            "{name}"
        );
        let first = core
            .signalled_thread()
            .unwrap_or_else(|| panic!("{name}: no thread"));
        let siginfo = core.siginfo().unwrap();
        assert_eq!(siginfo.signo, first.signal.signo, "{name}");
        assert_ne!(siginfo.signo, 0, "{name}");

        let exe = core
            .executable()
            .unwrap_or_else(|| panic!("{name}: no executable"));
        assert_eq!(exe.path.file_name(), binary.file_name(), "{name}");
        assert!(
            matches!(exe.backing, Backing::Opened { .. }),
            "{name}: {:?}",
            exe.backing
        );
        let bytes = std::fs::read(exe_local_path(&exe.backing)).unwrap();
        let elf = ElfFile64::<Endianness>::parse(&*bytes).unwrap();
        let in_binary = symbolizer::buildid::read(&elf).ids;
        assert!(
            exe.build_ids.go.is_some(),
            "{name}: no Go build ID in the core"
        );
        assert_eq!(exe.build_ids.go, in_binary.go, "{name}");

        let bias = exe
            .load_bias
            .unwrap_or_else(|| panic!("{name}: no load bias"));
        for section_name in [".text", ".gopclntab"] {
            let Some(section) = elf.section_by_name(section_name) else {
                continue;
            };
            let data = section.data().unwrap();
            let expected = &data[..data.len().min(COMPARED_BYTES)];
            let mut actual = vec![0u8; expected.len()];
            core.memory()
                .read(bias + section.address(), &mut actual)
                .unwrap_or_else(|e| panic!("{name}: {section_name}: {e}"));
            assert!(
                actual == expected,
                "{name}: {section_name} differs from the binary"
            );
        }
    }
}

fn exe_local_path(backing: &Backing) -> &Path {
    match backing {
        Backing::Opened { local_path } => local_path,
        other => panic!("executable not opened: {other:?}"),
    }
}
