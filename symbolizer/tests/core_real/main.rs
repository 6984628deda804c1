//! The core reader against real cores: Go programs built with several
//! toolchains and modes, crashed with `GOTRACEBACK=crash`, captured by
//! systemd-coredump, and compared with what `eu-readelf` and the binaries
//! themselves show.

mod crash;
mod damage;
mod decompress;
mod readelf;

use std::path::Path;
use std::process::Command;

use object::{Object, ObjectSection, ObjectSegment};
use symbolizer::core::{Backing, Core, CoreOptions, MappedFile, MissingReason, Registers};

use crash::{crash_of, crashes, Crash, Mode};

fn open(path: &Path) -> Core {
    Core::open(path, &CoreOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Maps eu-readelf's names of the amd64 registers to the reader's.
const AMD64_NAMES: &[(&str, &str)] = &[
    ("rax", "rax"),
    ("rbx", "rbx"),
    ("rcx", "rcx"),
    ("rdx", "rdx"),
    ("rsi", "rsi"),
    ("rdi", "rdi"),
    ("rbp", "rbp"),
    ("rsp", "rsp"),
    ("r8", "r8"),
    ("r9", "r9"),
    ("r10", "r10"),
    ("r11", "r11"),
    ("r12", "r12"),
    ("r13", "r13"),
    ("r14", "r14"),
    ("r15", "r15"),
    ("rip", "rip"),
    ("rflags", "eflags"),
    ("fs.base", "fs_base"),
    ("gs.base", "gs_base"),
    ("orig_rax", "orig_rax"),
    ("cs", "cs"),
    ("ss", "ss"),
];

#[test]
fn threads_match_readelf() {
    for crash in crashes() {
        let core = open(&crash.stored);
        let notes = readelf::notes(&crash.plain);
        assert_eq!(
            core.threads().len(),
            notes.statuses.len(),
            "{}: thread count",
            crash.name
        );
        assert!(
            core.threads().len() >= 3,
            "{}: only {} threads",
            crash.name,
            core.threads().len()
        );
        for (thread, status) in core.threads().iter().zip(&notes.statuses) {
            assert_eq!(
                u64::from(thread.id.0),
                status.get("pid"),
                "{}: thread id",
                crash.name
            );
            assert_eq!(
                thread.signal.signo as u64,
                status.get("info.si_signo"),
                "{}: signo",
                crash.name
            );
            assert_eq!(
                thread.signal.cursig as u64,
                status.get("cursig"),
                "{}: cursig",
                crash.name
            );
            let Registers::Amd64(_) = thread.registers else {
                panic!("{}: not amd64", crash.name)
            };
            let named: std::collections::HashMap<_, _> =
                thread.registers.named().into_iter().collect();
            for (readelf_name, name) in AMD64_NAMES {
                assert_eq!(
                    named[name],
                    status.get(readelf_name),
                    "{}: thread {} {name}",
                    crash.name,
                    thread.id
                );
            }
        }
    }
}

#[test]
fn siginfo_is_sigabrt_from_the_process() {
    for crash in crashes() {
        let core = open(&crash.stored);
        let siginfo = core.siginfo().unwrap();
        assert_eq!(siginfo.signo, 6, "{}", crash.name);
        assert_eq!(siginfo.code, -6, "{}: SI_TKILL, from tgkill", crash.name);
        assert_eq!(siginfo.sender_pid, Some(crash.pid), "{}", crash.name);
        assert_eq!(siginfo.fault_addr, None, "{}", crash.name);
        assert_eq!(
            core.signalled_thread().unwrap().signal.signo,
            6,
            "{}",
            crash.name
        );
        assert!(
            core.threads().iter().any(|t| t.id.0 == crash.pid),
            "{}: no main thread",
            crash.name
        );
    }
}

#[test]
fn process_info_names_the_program() {
    for crash in crashes() {
        let core = open(&crash.stored);
        let process = core.process().unwrap();
        assert_eq!(process.pid, crash.pid, "{}", crash.name);
        assert_eq!(process.fname, "gocrash-core", "{}", crash.name);
        assert_eq!(
            process.psargs,
            crash.binary.to_str().unwrap(),
            "{}",
            crash.name
        );
        assert_eq!(
            core.execfn().unwrap().unwrap(),
            crash.binary,
            "{}",
            crash.name
        );
        assert!(
            core.problems().is_empty(),
            "{}: {:?}",
            crash.name,
            core.problems()
        );
        assert!(!core.is_partial(), "{}", crash.name);
    }
}

#[test]
fn mapped_files_match_readelf() {
    for crash in crashes() {
        let core = open(&crash.stored);
        let notes = readelf::notes(&crash.plain);
        let ours: Vec<readelf::FileLine> = core
            .mapped_files()
            .iter()
            .map(|m: &MappedFile| readelf::FileLine {
                start: m.start,
                end: m.end,
                offset: m.file_offset,
                path: m.path.to_string_lossy().into_owned()
                    + if m.deleted { " (deleted)" } else { "" },
            })
            .collect();
        assert!(!ours.is_empty(), "{}", crash.name);
        assert_eq!(ours, notes.files, "{}", crash.name);
        let auxv = core.auxv().unwrap();
        assert_eq!(auxv.entry(), Some(notes.auxv["ENTRY"]), "{}", crash.name);
        assert_eq!(auxv.phdr(), Some(notes.auxv["PHDR"]), "{}", crash.name);
        assert_eq!(auxv.base(), Some(notes.auxv["BASE"]), "{}", crash.name);
    }
}

/// Returns the Go build ID as `go tool buildid` prints it.
fn go_build_id(crash: &Crash) -> String {
    let output = Command::new(&crash.go)
        .args(["tool", "buildid"])
        .arg(&crash.binary)
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert!(output.status.success(), "go tool buildid failed");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn executable_text_matches_binary() {
    for crash in crashes() {
        let core = open(&crash.stored);
        let exe = core.executable().unwrap();
        assert_eq!(exe.path, crash.binary, "{}", crash.name);
        assert!(!exe.deleted, "{}", crash.name);
        assert_eq!(
            exe.backing,
            Backing::Opened {
                local_path: crash.binary.clone()
            },
            "{}",
            crash.name
        );
        assert_eq!(
            exe.build_ids.go.as_ref().map(|id| id.0.as_str()),
            Some(go_build_id(crash).as_str()),
            "{}",
            crash.name
        );

        let bytes = std::fs::read(&crash.binary).unwrap();
        let binary = object::File::parse(&*bytes).unwrap();
        let bias = exe.load_bias.unwrap();
        for name in [".text", ".rodata", ".gopclntab"] {
            let Some(section) = binary.section_by_name(name) else {
                continue;
            };
            let expected = section.data().unwrap();
            let mut actual = vec![0u8; expected.len()];
            core.memory()
                .read(bias + section.address(), &mut actual)
                .unwrap_or_else(|e| panic!("{}: {name}: {e}", crash.name));
            assert!(
                actual == expected,
                "{}: {name} differs from the binary",
                crash.name
            );
        }
    }
}

#[test]
fn pie_entry_and_load_bias() {
    let Some(crash) = crash_of(Mode::Pie) else {
        return;
    };
    let core = open(&crash.stored);
    let exe = core.executable().unwrap();
    let bytes = std::fs::read(&crash.binary).unwrap();
    let binary = object::File::parse(&*bytes).unwrap();
    let notes = readelf::notes(&crash.plain);

    assert_eq!(exe.is_pie(), Some(true));
    assert_eq!(exe.entry, Some(notes.auxv["ENTRY"]));
    assert_eq!(exe.elf_entry, Some(binary.entry()));
    let bias = exe.load_bias.unwrap();
    assert_eq!(bias, notes.auxv["ENTRY"] - binary.entry());
    assert_ne!(bias, 0);
    assert_eq!(bias % 4096, 0);
    let first_load = binary.segments().map(|s| s.address()).min().unwrap();
    assert_eq!(
        exe.base,
        bias + first_load,
        "file offset 0 is mapped at the biased first segment"
    );
}

#[test]
fn non_pie_has_zero_bias() {
    let Some(crash) = crash_of(Mode::Default) else {
        return;
    };
    let exe_core = open(&crash.stored);
    let exe = exe_core.executable().unwrap();
    assert_eq!(exe.is_pie(), Some(false));
    assert_eq!(exe.load_bias, Some(0));
    assert_eq!(exe.base, 0x40_0000);
}

#[test]
fn cgo_libraries_need_an_opener() {
    let Some(crash) = crash_of(Mode::Cgo) else {
        return;
    };
    let core = open(&crash.stored);
    let libc = core
        .mapped_files()
        .iter()
        .find(|m| m.path.to_string_lossy().contains("libc.so"))
        .unwrap_or_else(|| panic!("no libc in {:?}", core.mapped_files()));
    assert_ne!(
        core.auxv().unwrap().base(),
        Some(0),
        "a dynamic program has an interpreter"
    );
    let unavailable = |core: &Core| {
        core.missing_ranges()
            .iter()
            .filter(|r| {
                r.reason
                    == MissingReason::FileUnavailable {
                        path: libc.path.clone(),
                    }
            })
            .count()
    };
    assert!(unavailable(&core) > 0, "libc text is not in the core");

    let options = CoreOptions {
        file_opener: Some(Box::new(|m: &MappedFile| {
            std::fs::File::open(&m.path).map(Some)
        })),
        ..Default::default()
    };
    let backed = Core::open(&crash.stored, &options).unwrap();
    assert_eq!(unavailable(&backed), 0);
    let libc_backing = backed
        .file_backings()
        .iter()
        .find(|b| b.path == libc.path)
        .unwrap();
    assert!(
        matches!(libc_backing.backing, Backing::Opened { .. }),
        "{libc_backing:?}"
    );
    let first_missing = core
        .missing_ranges()
        .iter()
        .find(|r| {
            r.reason
                == MissingReason::FileUnavailable {
                    path: libc.path.clone(),
                }
        })
        .unwrap();
    let mut buf = [0u8; 64];
    backed.memory().read(first_missing.start, &mut buf).unwrap();
    assert!(core.memory().read(first_missing.start, &mut buf).is_err());
}
