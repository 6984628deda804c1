use std::borrow::Cow;
use std::path::Path;

use super::test_builder::{
    self as build, CoreBuilder, FileNote, PrStatus, EM_AARCH64, EM_X86_64, PAGE,
};
use super::*;

const EXE_BASE: u64 = 0x40_0000;
const EXE_ENTRY: u64 = 0x40_1000;
const HEAP: u64 = 0xc0_0000_0000;
const GO_BUILD_ID: &str = "abc/def/ghi/jkl";

/// Returns two pages of recognisable text bytes.
fn text() -> Vec<u8> {
    (0..2 * PAGE).map(|i| (i * 7 % 256) as u8).collect()
}

fn amd64_registers(rip: u64, rsp: u64) -> Amd64Registers {
    Amd64Registers {
        rip,
        rsp,
        rbp: rsp + 0x40,
        fs_base: HEAP + 0x800,
        rax: 0xa,
        ..Default::default()
    }
}

/// Builds the heap segment: a string for AT_EXECFN at 0x10 and counting
/// words after 0x100.
fn heap_page() -> Vec<u8> {
    let mut page = vec![0u8; PAGE as usize];
    page[0x10..0x19].copy_from_slice(b"/srv/app\0");
    for (i, word) in page[0x100..].chunks_mut(8).enumerate() {
        word.copy_from_slice(&(i as u64).to_le_bytes());
    }
    page
}

struct Fixture {
    _dir: tempfile::TempDir,
    exe_path: std::path::PathBuf,
    exe: Vec<u8>,
}

impl Fixture {
    fn new(elf_type: u16, vaddr: u64, entry: u64, build_id: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let exe_path = dir.path().join("app");
        let exe = build::executable(elf_type, vaddr, entry, build_id, &text());
        std::fs::write(&exe_path, &exe).unwrap();
        Fixture {
            _dir: dir,
            exe_path,
            exe,
        }
    }

    fn exe_path(&self) -> &str {
        self.exe_path.to_str().unwrap()
    }
}

/// Builds an amd64 core of a non-PIE program whose executable is at
/// `nt_file_path`, with two threads.
fn amd64_core(fixture: &Fixture, nt_file_path: &str) -> Vec<u8> {
    let exe_len = fixture.exe.len() as u64;
    let status = PrStatus {
        signo: 6,
        cursig: 6,
        pid: 4242,
        blocked: 1 << 5,
        ..Default::default()
    };
    CoreBuilder::new(EM_X86_64)
        .note(status.amd64(&amd64_registers(0x40_1010, HEAP + 0x100)))
        .note(build::prpsinfo(4242, 1000, "app", "/srv/app -flag "))
        .note(build::siginfo(6, -6, (1000u64 << 32) | 4242))
        .note(build::auxv(&[
            (6, PAGE),
            (3, EXE_BASE + 64),
            (5, 2),
            (7, 0),
            (9, EXE_ENTRY),
            (31, HEAP + 0x10),
        ]))
        .note(
            FileNote::new(PAGE)
                .entry(EXE_BASE, EXE_BASE + exe_len, 0, nt_file_path)
                .note(),
        )
        .note(build::note("CORE", 2, &[0u8; 512]))
        .note(
            PrStatus {
                pid: 4243,
                ..status
            }
            .amd64(&amd64_registers(0x40_1020, HEAP + 0x200)),
        )
        .load(EXE_BASE, exe_len, fixture.exe[..PAGE as usize].to_vec())
        .load(HEAP, PAGE, heap_page())
        .load(HEAP + PAGE, 0x10000, Vec::new())
        .build()
}

fn open(bytes: Vec<u8>) -> Core {
    Core::from_bytes(bytes, &CoreOptions::default()).unwrap()
}

#[test]
fn amd64_threads_and_registers() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let core = open(amd64_core(&fixture, fixture.exe_path()));
    assert_eq!(core.arch(), Arch::Amd64);
    assert_eq!(core.threads().len(), 2);
    let first = core.signalled_thread().unwrap();
    assert_eq!(first.id, ThreadId(4242));
    assert_eq!(first.signal.signo, 6);
    assert_eq!(first.signal.cursig, 6);
    assert_eq!(first.signal.blocked, 1 << 5);
    assert_eq!(first.registers.pc(), 0x40_1010);
    assert_eq!(first.registers.sp(), HEAP + 0x100);
    assert_eq!(first.registers.fp(), HEAP + 0x140);
    assert_eq!(first.registers.tls_base(), Some(HEAP + 0x800));
    let Registers::Amd64(registers) = first.registers else {
        panic!("not amd64")
    };
    assert_eq!(registers.rax, 0xa);
    assert_eq!(core.threads()[1].id, ThreadId(4243));
    assert_eq!(core.threads()[1].registers.pc(), 0x40_1020);
    assert!(core.problems().is_empty(), "{:?}", core.problems());
}

#[test]
fn process_signal_and_auxv_notes() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let core = open(amd64_core(&fixture, fixture.exe_path()));

    let process = core.process().unwrap();
    assert_eq!(process.pid, 4242);
    assert_eq!(process.uid, 1000);
    assert_eq!(process.state_name, 'R');
    assert_eq!(process.fname, "app");
    assert_eq!(process.psargs, "/srv/app -flag");

    let siginfo = core.siginfo().unwrap();
    assert_eq!(siginfo.signo, 6);
    assert_eq!(siginfo.code, -6);
    assert_eq!(siginfo.fault_addr, None);
    assert_eq!(siginfo.sender_pid, Some(4242));
    assert_eq!(siginfo.sender_uid, Some(1000));

    let auxv = core.auxv().unwrap();
    assert_eq!(auxv.entries.len(), 6);
    assert_eq!(auxv.entry(), Some(EXE_ENTRY));
    assert_eq!(auxv.phdr(), Some(EXE_BASE + 64));
    assert_eq!(auxv.phnum(), Some(2));
    assert_eq!(auxv.base(), Some(0));
    assert_eq!(auxv.page_size(), Some(PAGE));
    assert_eq!(core.execfn().unwrap().unwrap(), Path::new("/srv/app"));
}

#[test]
fn segfault_siginfo_has_fault_address() {
    let bytes = CoreBuilder::new(EM_X86_64)
        .note(
            PrStatus {
                signo: 11,
                pid: 7,
                ..Default::default()
            }
            .amd64(&Amd64Registers::default()),
        )
        .note(build::siginfo(11, 1, 0xdead_0008))
        .build();
    let core = open(bytes);
    let siginfo = core.siginfo().unwrap();
    assert_eq!(siginfo.signo, 11);
    assert_eq!(siginfo.fault_addr, Some(0xdead_0008));
    assert_eq!(siginfo.sender_pid, None);
}

#[test]
fn executable_backs_undumped_text() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let core = open(amd64_core(&fixture, fixture.exe_path()));

    let exe = core.executable().unwrap();
    assert_eq!(exe.path, fixture.exe_path);
    assert!(!exe.deleted);
    assert_eq!(exe.base, EXE_BASE);
    assert_eq!(exe.entry, Some(EXE_ENTRY));
    assert_eq!(exe.elf_entry, Some(EXE_ENTRY));
    assert_eq!(exe.load_bias, Some(0));
    assert_eq!(exe.is_pie(), Some(false));
    assert_eq!(
        exe.build_ids.go.as_ref().map(|id| id.0.as_str()),
        Some(GO_BUILD_ID)
    );
    assert_eq!(
        exe.backing,
        Backing::Opened {
            local_path: fixture.exe_path.clone()
        }
    );

    // The text page comes from the file, the header page from the core.
    let mut text = vec![0u8; 2 * PAGE as usize];
    core.memory().read(EXE_BASE + PAGE, &mut text).unwrap();
    assert!(text == fixture.exe[PAGE as usize..]);
    let mut across = vec![0u8; 32];
    core.memory()
        .read(EXE_BASE + PAGE - 16, &mut across)
        .unwrap();
    assert_eq!(
        &across[..],
        &fixture.exe[PAGE as usize - 16..PAGE as usize + 16]
    );
    assert!(
        core.missing_ranges().is_empty(),
        "{:?}",
        core.missing_ranges()
    );

    // Only the core's bytes are used for facts about the crashed process.
    let error = core
        .memory()
        .read_dumped(EXE_BASE + PAGE, &mut [0u8; 4])
        .unwrap_err();
    assert!(
        matches!(error, MemoryError::NotDumped { addr, .. } if addr == EXE_BASE + PAGE),
        "{error}"
    );
}

#[test]
fn executable_path_can_be_substituted() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let bytes = amd64_core(&fixture, "/opt/gone/app (deleted)");
    let options = CoreOptions {
        executable: Some(fixture.exe_path.clone()),
        ..Default::default()
    };
    let core = Core::from_bytes(bytes, &options).unwrap();
    let exe = core.executable().unwrap();
    assert_eq!(exe.path, Path::new("/opt/gone/app"));
    assert!(exe.deleted);
    assert_eq!(
        exe.backing,
        Backing::Opened {
            local_path: fixture.exe_path.clone()
        }
    );
    assert_eq!(
        core.memory().read_u8(EXE_BASE + PAGE + 1).unwrap(),
        fixture.exe[PAGE as usize + 1]
    );
}

#[test]
fn other_build_of_executable_is_rejected() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let bytes = amd64_core(&fixture, fixture.exe_path());
    // Replace the file on disk with another build.
    std::fs::write(
        &fixture.exe_path,
        build::executable(2, EXE_BASE, EXE_ENTRY, "other/build/id/x", &text()),
    )
    .unwrap();
    let core = open(bytes);

    let exe = core.executable().unwrap();
    let Backing::BuildIdMismatch {
        in_core, in_file, ..
    } = &exe.backing
    else {
        panic!("{:?}", exe.backing)
    };
    assert_eq!(in_core, &format!("Go {GO_BUILD_ID}"));
    assert_eq!(in_file, "Go other/build/id/x");
    assert!(core
        .problems()
        .iter()
        .any(|p| matches!(p, CoreProblem::FileNotUsed { .. })));

    let error = core.memory().read_u64(EXE_BASE + PAGE).unwrap_err();
    let MemoryError::NotDumped {
        path,
        segment_start,
        ..
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(path.as_deref(), Some(fixture.exe_path.as_path()));
    assert_eq!(*segment_start, EXE_BASE);
    assert!(error.to_string().contains("not available"), "{error}");

    let missing = core.missing_ranges();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].start, EXE_BASE + PAGE);
    assert_eq!(missing[0].end, EXE_BASE + 3 * PAGE);
    assert_eq!(
        missing[0].reason,
        MissingReason::FileUnavailable {
            path: fixture.exe_path.clone()
        }
    );
}

#[test]
fn pie_executable_load_bias() {
    let load = 0x5555_5555_4000u64;
    let fixture = Fixture::new(3, 0, 0x1000, GO_BUILD_ID);
    let exe_len = fixture.exe.len() as u64;
    let bytes = CoreBuilder::new(EM_X86_64)
        .note(
            PrStatus {
                signo: 6,
                pid: 9,
                ..Default::default()
            }
            .amd64(&amd64_registers(load + 0x1010, HEAP)),
        )
        .note(build::auxv(&[(3, load + 64), (9, load + 0x1000)]))
        .note(
            FileNote::new(PAGE)
                .entry(load, load + exe_len, 0, fixture.exe_path())
                .note(),
        )
        .load(load, exe_len, fixture.exe[..PAGE as usize].to_vec())
        .build();
    let core = open(bytes);
    let exe = core.executable().unwrap();
    assert_eq!(exe.is_pie(), Some(true));
    assert_eq!(exe.base, load);
    assert_eq!(exe.elf_entry, Some(0x1000));
    assert_eq!(exe.load_bias, Some(load));
    assert_eq!(
        exe.build_ids.go.as_ref().map(|id| id.0.as_str()),
        Some(GO_BUILD_ID)
    );
    assert_eq!(
        core.memory().read_u8(load + PAGE + 3).unwrap(),
        fixture.exe[PAGE as usize + 3]
    );
}

#[test]
fn opener_backs_shared_libraries() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let lib_base = 0x7f00_0000_0000u64;
    let lib_bytes: Vec<u8> = (0..2 * PAGE).map(|i| (i % 13) as u8).collect();
    let lib_path = fixture.exe_path.with_file_name("libc.so.6");
    std::fs::write(&lib_path, &lib_bytes).unwrap();
    let bytes = CoreBuilder::new(EM_X86_64)
        .note(
            PrStatus {
                pid: 5,
                ..Default::default()
            }
            .amd64(&Amd64Registers::default()),
        )
        .note(build::auxv(&[(9, EXE_ENTRY)]))
        .note(
            FileNote::new(PAGE)
                .entry(EXE_BASE, EXE_BASE + 3 * PAGE, 0, fixture.exe_path())
                .entry(lib_base, lib_base + PAGE, 1, "/usr/lib/libc.so.6")
                .note(),
        )
        .load(EXE_BASE, 3 * PAGE, fixture.exe[..PAGE as usize].to_vec())
        .load(lib_base, PAGE, Vec::new())
        .build();

    let without = open(bytes.clone());
    assert_eq!(without.file_backings().len(), 1);
    assert_eq!(without.file_backings()[0].backing, Backing::NotOpened);
    assert!(without.memory().read_u8(lib_base).is_err());

    let local = lib_path.clone();
    let options = CoreOptions {
        file_opener: Some(Box::new(move |mapping: &MappedFile| {
            assert_eq!(mapping.path, Path::new("/usr/lib/libc.so.6"));
            std::fs::File::open(&local).map(Some)
        })),
        ..Default::default()
    };
    let core = Core::from_bytes(bytes, &options).unwrap();
    assert!(matches!(
        core.file_backings()[0].backing,
        Backing::Opened { .. }
    ));
    let mut page = vec![0u8; PAGE as usize];
    core.memory().read(lib_base, &mut page).unwrap();
    assert!(
        page == lib_bytes[PAGE as usize..],
        "NT_FILE page offset 1 maps file offset 0x1000"
    );
}

#[test]
fn arm64_registers_and_tls() {
    let mut registers = Arm64Registers {
        sp: 0x4000_1000,
        pc: 0x40_2000,
        pstate: 0x6000_0000,
        ..Default::default()
    };
    registers.x[28] = 0x00c0_0000_1000;
    registers.x[29] = 0x4000_1040;
    registers.x[30] = 0x40_1ffc;
    let bytes = CoreBuilder::new(EM_AARCH64)
        .note(
            PrStatus {
                signo: 6,
                pid: 77,
                ..Default::default()
            }
            .arm64(&registers),
        )
        .note(build::note(
            "LINUX",
            0x401,
            &0xffff_8000_0000u64.to_le_bytes(),
        ))
        .note(
            PrStatus {
                signo: 6,
                pid: 78,
                ..Default::default()
            }
            .arm64(&Arm64Registers::default()),
        )
        .build();
    let core = open(bytes);
    assert_eq!(core.arch(), Arch::Arm64);
    assert_eq!(core.threads().len(), 2);
    let thread = &core.threads()[0];
    assert_eq!(thread.id, ThreadId(77));
    assert_eq!(thread.registers.pc(), 0x40_2000);
    assert_eq!(thread.registers.sp(), 0x4000_1000);
    assert_eq!(thread.registers.fp(), 0x4000_1040);
    assert_eq!(thread.registers.lr(), Some(0x40_1ffc));
    assert_eq!(thread.registers.tls_base(), Some(0xffff_8000_0000));
    let Registers::Arm64(arm) = thread.registers else {
        panic!("not arm64")
    };
    assert_eq!(arm.x[28], 0x00c0_0000_1000);
    assert_eq!(arm.pstate, 0x6000_0000);
    assert_eq!(core.threads()[1].registers.tls_base(), None);
}

#[test]
fn truncated_core_reads_present_bytes() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let mut bytes = amd64_core(&fixture, fixture.exe_path());
    // Cut the heap segment (the last dumped one) in half.
    bytes.truncate(bytes.len() - PAGE as usize / 2);
    let core = open(bytes);
    assert!(core.is_partial());
    assert!(
        core.problems()
            .iter()
            .any(|p| matches!(p, CoreProblem::Truncated { .. })),
        "{:?}",
        core.problems()
    );

    assert_eq!(core.memory().read_u64(HEAP + 0x100 + 8).unwrap(), 1);
    let cut = HEAP + PAGE / 2;
    let error = core.memory().read_u64(cut).unwrap_err();
    assert!(
        matches!(error, MemoryError::Truncated { addr, .. } if addr == cut),
        "{error}"
    );
    let error = core.memory().read(cut - 4, &mut [0u8; 8]).unwrap_err();
    assert_eq!(error.addr(), cut, "the error names the first missing byte");

    let missing = core.missing_ranges();
    assert_eq!(
        missing,
        &[MissingRange {
            start: cut,
            end: HEAP + PAGE,
            reason: MissingReason::Truncated
        }]
    );
    assert_eq!(core.threads().len(), 2, "notes before the cut are intact");
}

#[test]
fn memory_errors_name_the_address() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let core = open(amd64_core(&fixture, fixture.exe_path()));
    let memory = core.memory();

    let error = memory.read_u64(0x1000).unwrap_err();
    assert_eq!(error, MemoryError::Unmapped { addr: 0x1000 });
    assert!(error.to_string().contains("0x1000"), "{error}");

    let error = memory.read_u64(HEAP + PAGE + 8).unwrap_err();
    let MemoryError::NotDumped {
        path: None,
        segment_start,
        segment_end,
        ..
    } = error
    else {
        panic!("{error}")
    };
    assert_eq!(
        (segment_start, segment_end),
        (HEAP + PAGE, HEAP + PAGE + 0x10000)
    );

    let error = memory.read(u64::MAX - 2, &mut [0u8; 8]).unwrap_err();
    assert!(matches!(error, MemoryError::Overflow { .. }), "{error}");

    // A read past the heap segment stops at the first unreadable byte.
    let error = memory.read(HEAP + PAGE - 4, &mut [0u8; 8]).unwrap_err();
    assert_eq!(error.addr(), HEAP + PAGE);
}

#[test]
fn memory_reads_borrow_when_contiguous() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let core = open(amd64_core(&fixture, fixture.exe_path()));
    let memory = core.memory();
    assert_eq!(memory.read_u32(HEAP + 0x108).unwrap(), 1);
    assert_eq!(memory.read_u16(HEAP + 0x110).unwrap(), 2);
    assert!(matches!(
        memory.read_bytes(HEAP + 0x100, 64).unwrap(),
        Cow::Borrowed(_)
    ));
    let spliced = memory.read_bytes(EXE_BASE + PAGE - 8, 16).unwrap();
    assert!(matches!(spliced, Cow::Owned(_)));
    assert_eq!(
        &spliced[..],
        &fixture.exe[PAGE as usize - 8..PAGE as usize + 8]
    );
    assert_eq!(memory.contiguous_at(HEAP + PAGE - 3).unwrap().len(), 3);
    assert_eq!(memory.read_c_string(HEAP + 0x10, 4).unwrap(), b"/srv");
    assert_eq!(memory.segments().len(), 3);
}

#[test]
fn damaged_notes_are_skipped() {
    let mut short_status = PrStatus {
        pid: 1,
        ..Default::default()
    }
    .amd64(&Amd64Registers::default());
    // Shrink the descriptor size to 200 bytes while keeping the note's layout.
    short_status[4..8].copy_from_slice(&200u32.to_le_bytes());
    short_status.truncate(12 + 8 + 200);
    let bytes = CoreBuilder::new(EM_X86_64)
        .note(build::note("LINUX", 0x401, &1u64.to_le_bytes()))
        .note(short_status)
        .note(build::note("CORE", 3, &[0u8; 20]))
        .note(build::note("CORE", 0x5349_4749, &[0u8; 10]))
        .note(
            PrStatus {
                pid: 2,
                ..Default::default()
            }
            .amd64(&Amd64Registers::default()),
        )
        .note(build::auxv(&vec![(33, 1); MAX_AUXV_ENTRIES + 1]))
        .build();
    let core = open(bytes);
    assert_eq!(core.threads().len(), 1, "the intact thread is kept");
    assert_eq!(core.threads()[0].id, ThreadId(2));
    assert!(core.process().is_none());
    assert!(core.siginfo().is_none());
    assert!(core.auxv().is_none());
    let notes: Vec<&NoteError> = core
        .problems()
        .iter()
        .filter_map(|p| {
            if let CoreProblem::Note(n) = p {
                Some(n)
            } else {
                None
            }
        })
        .collect();
    assert!(
        matches!(
            notes[0],
            NoteError::NoThread {
                note: "NT_ARM_TLS",
                ..
            }
        ),
        "{notes:?}"
    );
    assert!(
        matches!(
            notes[1],
            NoteError::TooShort {
                note: "NT_PRSTATUS",
                expected: 328,
                found: 200,
                ..
            }
        ),
        "{notes:?}"
    );
    assert!(
        matches!(
            notes[2],
            NoteError::TooShort {
                note: "NT_PRPSINFO",
                ..
            }
        ),
        "{notes:?}"
    );
    assert!(
        matches!(
            notes[3],
            NoteError::TooShort {
                note: "NT_SIGINFO",
                ..
            }
        ),
        "{notes:?}"
    );
    assert!(
        matches!(
            notes[4],
            NoteError::TooMany {
                note: "NT_AUXV",
                ..
            }
        ),
        "{notes:?}"
    );
    assert!(matches!(
        core.problems().last(),
        Some(CoreProblem::NoExecutable { .. })
    ));
}

#[test]
fn note_sizes_beyond_segment_stop_the_walk() {
    let mut bad = build::note("CORE", 1, &[0u8; 8]);
    bad[4..8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let bytes = CoreBuilder::new(EM_X86_64)
        .note(
            PrStatus {
                pid: 3,
                ..Default::default()
            }
            .amd64(&Amd64Registers::default()),
        )
        .note(bad)
        .build();
    let core = open(bytes);
    assert_eq!(core.threads().len(), 1);
    let Some(CoreProblem::Note(NoteError::Walk { offset, .. })) = core.problems().first() else {
        panic!("{:?}", core.problems())
    };
    // The walk stopped right after the first note's descriptor.
    assert_eq!(*offset, core.threads()[0].note_offset + 336);
    let message = core.problems()[0].to_string();
    assert!(
        message.contains("found namesz 0x5, descsz 0xfffffff0 and type 0x1 with 0x1c bytes left"),
        "{message}"
    );
}

#[test]
fn header_errors() {
    let core = CoreBuilder::new(EM_X86_64).build();
    let mut exec = core.clone();
    exec[16] = 2;
    assert!(matches!(
        Core::from_bytes(exec, &CoreOptions::default()),
        Err(CoreError::NotCore { found: 2, .. })
    ));

    let mut riscv = core.clone();
    riscv[18..20].copy_from_slice(&243u16.to_le_bytes());
    let error = Core::from_bytes(riscv, &CoreOptions::default()).unwrap_err();
    assert!(
        matches!(error, CoreError::UnsupportedMachine { machine: 243, .. }),
        "{error}"
    );

    let mut class32 = core.clone();
    class32[4] = 1;
    assert!(matches!(
        Core::from_bytes(class32, &CoreOptions::default()),
        Err(CoreError::Not64Bit { .. })
    ));

    let error = Core::from_bytes(b"\x7fELF".to_vec(), &CoreOptions::default()).unwrap_err();
    assert!(matches!(error, CoreError::Header { .. }), "{error}");

    let mut phdrs = core.clone();
    phdrs[32..40].copy_from_slice(&0xffff_0000u64.to_le_bytes());
    let error = Core::from_bytes(phdrs, &CoreOptions::default()).unwrap_err();
    assert!(
        matches!(
            error,
            CoreError::ProgramHeaders {
                offset: 0xffff_0000,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("0xffff0000"), "{error}");

    let empty = Core::from_bytes(core, &CoreOptions::default()).unwrap();
    assert!(empty.threads().is_empty());
    assert!(empty.executable().is_none());
}

#[test]
fn cut_program_header_table_gives_sizes() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let core = amd64_core(&fixture, fixture.exe_path());
    // The header and the first program header, then half of the second.
    let cut = 64 + 56 + 28;
    let error = Core::from_bytes(core[..cut].to_vec(), &CoreOptions::default()).unwrap_err();
    let CoreError::ProgramHeadersCut {
        offset,
        expected,
        actual,
        ..
    } = error
    else {
        panic!("{error}");
    };
    assert_eq!(offset, 64);
    assert_eq!(expected, 4 * 56, "a note segment and three loads");
    assert_eq!(actual, cut as u64);
    let message = error.to_string();
    assert!(
        message.contains(
            "the table's 0xe0 bytes at offset 0x40 end at 0x120, but the file has only 0x94 bytes"
        ),
        "{message}"
    );
}

#[test]
fn cut_stream_is_blamed_before_the_parse_error() {
    use std::io::Write;

    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let core = amd64_core(&fixture, fixture.exe_path());
    let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 0);
    encoder.write_all(&core).unwrap();
    let compressed = encoder.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("core.xz");
    // Enough input for the decoder to yield the ELF header and part of the
    // program header table, then the cut.
    std::fs::write(&path, &compressed[..100]).unwrap();
    let options = CoreOptions {
        temp_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let error = Core::open(&path, &options).unwrap_err();
    let CoreError::DamagedStream { source, kept, .. } = &error else {
        panic!("{error}");
    };
    assert!(*kept > 64, "kept {kept:#x} bytes");
    assert!(
        matches!(**source, CoreError::ProgramHeadersCut { .. }),
        "{source}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("xz stream in "),
        "the stream's damage comes first: {message}"
    );
}

#[test]
fn overlapping_loads_are_reported() {
    let core = CoreBuilder::new(EM_X86_64)
        .note(PrStatus::default().amd64(&amd64_registers(0x40_1010, HEAP + 0x100)))
        .load(HEAP, PAGE, heap_page())
        .load(HEAP + PAGE, PAGE, Vec::new())
        .load(HEAP, PAGE, vec![0xee; PAGE as usize])
        .build();
    let core = open(core);
    let overlaps: Vec<_> = core
        .problems()
        .iter()
        .filter_map(|problem| match problem {
            CoreProblem::OverlappingSegments {
                first,
                second,
                start,
                end,
            } => Some((*first, *second, *start, *end)),
            _ => None,
        })
        .collect();
    // Program header 0 is the note segment, so the loads are 1, 2 and 3.
    assert_eq!(overlaps, vec![(1, 3, HEAP, HEAP + PAGE)]);
    assert!(!core.is_partial(), "an overlap is not a cut");
}

#[test]
fn overlapping_file_entries_are_reported() {
    let files = FileNote::new(PAGE)
        .entry(0x40_0000, 0x40_3000, 0, "/srv/app")
        .entry(0x40_2000, 0x40_4000, 2, "/srv/app")
        .entry(0x50_0000, 0x50_1000, 0, "/usr/lib/libc.so.6")
        .note();
    let core = CoreBuilder::new(EM_X86_64)
        .note(PrStatus::default().amd64(&amd64_registers(0x40_1010, HEAP + 0x100)))
        .note(files)
        .load(HEAP, PAGE, heap_page())
        .build();
    let core = open(core);
    let overlaps: Vec<_> = core
        .problems()
        .iter()
        .filter_map(|problem| match problem {
            CoreProblem::OverlappingFiles {
                first,
                second,
                start,
                end,
            } => Some((*first, *second, *start, *end)),
            _ => None,
        })
        .collect();
    assert_eq!(overlaps, vec![(0, 1, 0x40_2000, 0x40_3000)]);
}

#[test]
fn oversized_prstatus_is_reported_and_its_thread_kept() {
    // The 336-byte descriptor of a note built as the kernel writes it,
    // grown to 4 KiB as a damaged header would claim.
    let note = PrStatus::default().amd64(&amd64_registers(0x40_1010, HEAP + 0x100));
    let desc = &note[20..20 + 336];
    let mut grown = desc.to_vec();
    grown.resize(4096, 0);
    let core = CoreBuilder::new(EM_X86_64)
        .note(build::note("CORE", 1, &grown))
        .load(HEAP, PAGE, heap_page())
        .build();
    let core = open(core);
    assert_eq!(core.threads().len(), 1);
    let reported = core.problems().iter().any(|problem| {
        matches!(
            problem,
            CoreProblem::Note(NoteError::TooLong {
                note: "NT_PRSTATUS",
                expected: 336,
                found: 4096,
                ..
            })
        )
    });
    assert!(reported, "{:?}", core.problems());
}

#[test]
fn core_only_opens_no_file() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let options = CoreOptions {
        core_only: true,
        ..Default::default()
    };
    let core = Core::from_bytes(amd64_core(&fixture, fixture.exe_path()), &options).unwrap();
    assert_eq!(core.executable().unwrap().backing, Backing::NotOpened);
    assert!(core.memory().read_u8(EXE_BASE + PAGE).is_err());
    assert_eq!(
        core.memory().read_u8(EXE_BASE).unwrap(),
        0x7f,
        "the dumped header page stays readable"
    );
}

#[test]
fn special_files_are_not_opened() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let fifo = fixture.exe_path.with_file_name("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    for path in [fifo.to_str().unwrap(), "/dev/zero"] {
        // Opening a FIFO for reading would block without O_NONBLOCK.
        let core = open(amd64_core(&fixture, path));
        let backing = &core.executable().unwrap().backing;
        let Backing::Failed { reason, .. } = backing else {
            panic!("{path}: {backing:?}")
        };
        assert_eq!(reason, "not a regular file");
    }
}

#[test]
fn attached_executable_backs_missing_pages() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let options = CoreOptions {
        core_only: true,
        ..Default::default()
    };
    let mut core = Core::from_bytes(amd64_core(&fixture, fixture.exe_path()), &options).unwrap();
    let missing_before = core.missing_ranges().len();
    assert!(core.memory().read_u8(EXE_BASE + PAGE).is_err());

    core.attach_executable(&fixture.exe_path);
    assert_eq!(
        core.executable().unwrap().backing,
        Backing::Opened {
            local_path: fixture.exe_path.clone()
        }
    );
    assert_eq!(
        core.memory().read_u8(EXE_BASE + PAGE + 1).unwrap(),
        fixture.exe[PAGE as usize + 1]
    );
    assert!(core.missing_ranges().len() < missing_before);
}

#[test]
fn attached_other_build_is_rejected() {
    let fixture = Fixture::new(2, EXE_BASE, EXE_ENTRY, GO_BUILD_ID);
    let options = CoreOptions {
        core_only: true,
        ..Default::default()
    };
    let mut core = Core::from_bytes(amd64_core(&fixture, fixture.exe_path()), &options).unwrap();
    let other = fixture.exe_path.with_file_name("other");
    std::fs::write(
        &other,
        build::executable(2, EXE_BASE, EXE_ENTRY, "other/build/id/x", &text()),
    )
    .unwrap();

    core.attach_executable(&other);
    let exe = core.executable().unwrap();
    assert!(
        matches!(&exe.backing, Backing::BuildIdMismatch { local_path, .. } if *local_path == other),
        "{:?}",
        exe.backing
    );
    assert!(core.memory().read_u8(EXE_BASE + PAGE).is_err());
    let not_used: Vec<&CoreProblem> = core
        .problems()
        .iter()
        .filter(|p| matches!(p, CoreProblem::FileNotUsed { .. }))
        .collect();
    assert_eq!(not_used.len(), 1, "{not_used:?}");
}

/// Address of the segment of [`large_core`].
const LARGE_BASE: u64 = 0x10_0000;
/// Pages in the segment of [`large_core`]: several decompression blocks.
const LARGE_PAGES: u64 = 1536;

/// Builds a core of 6 MiB whose segment holds, in every page but every
/// third (left zero, so a hole in the decompressed copy), the page's number.
fn large_core() -> Vec<u8> {
    let mut dumped = vec![0u8; (LARGE_PAGES * PAGE) as usize];
    for (index, page) in dumped.chunks_mut(PAGE as usize).enumerate() {
        if index % 3 != 0 {
            page[..8].copy_from_slice(&(index as u64).to_le_bytes());
        }
    }
    CoreBuilder::new(EM_X86_64)
        .note(PrStatus::default().amd64(&Amd64Registers::default()))
        .load(LARGE_BASE, LARGE_PAGES * PAGE, dumped)
        .build()
}

fn large_core_page(index: u64) -> u64 {
    if index % 3 == 0 {
        0
    } else {
        index
    }
}

/// Writes `bytes` compressed with zstd to a file in `dir`.
fn write_zstd(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join("core.zst");
    std::fs::write(&path, zstd::encode_all(bytes, 3).unwrap()).unwrap();
    path
}

#[test]
fn background_core_reads_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_zstd(dir.path(), &large_core());
    let core = Core::open_in_background(&path, &CoreOptions::default(), Box::new(|_| {})).unwrap();
    // The last pages first, which the decompression may not have reached.
    for index in (0..LARGE_PAGES).rev() {
        let value = core.memory().read_u64(LARGE_BASE + index * PAGE).unwrap();
        assert_eq!(value, large_core_page(index), "page {index}");
    }
    core.wait_for_decompression().unwrap();
    assert!(!core.is_partial());
    assert!(core.missing_ranges().is_empty());
}

#[test]
fn background_core_cut_before_compression_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let whole = large_core();
    // systemd-coredump cuts a core at its size limit, then compresses it.
    let cut = whole.len() - 3 * PAGE as usize;
    let path = write_zstd(dir.path(), &whole[..cut]);

    let core = Core::open_in_background(&path, &CoreOptions::default(), Box::new(|_| {})).unwrap();
    let damage = core.wait_for_decompression().unwrap_err();
    assert!(
        matches!(damage, DecompressError::EndsEarly { len, .. } if len == cut as u64),
        "{damage}"
    );

    // Opened again, the core is a truncated one that lists what is missing.
    let core = Core::open(&path, &CoreOptions::default()).unwrap();
    assert!(core.is_partial());
    assert!(!core.missing_ranges().is_empty());
    let last = LARGE_BASE + (LARGE_PAGES - 1) * PAGE;
    assert!(core.memory().read_u64(last).is_err());
    assert_eq!(core.memory().read_u64(LARGE_BASE + PAGE).unwrap(), 1);
}

#[test]
fn background_core_cut_stream_fails_reads_after_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_zstd(dir.path(), &large_core());
    let compressed = std::fs::read(&path).unwrap();
    std::fs::write(&path, &compressed[..compressed.len() / 2]).unwrap();

    // The damage lies past the headers, so the core opens. Whether it is
    // already known depends on how far the thread got.
    let core = Core::open_in_background(&path, &CoreOptions::default(), Box::new(|_| {})).unwrap();
    let last = LARGE_BASE + (LARGE_PAGES - 1) * PAGE;
    let error = core.memory().read_u64(last).unwrap_err();
    assert!(
        matches!(error, MemoryError::Truncated { addr, .. } if addr == last),
        "{error}"
    );
    assert_eq!(core.memory().read_u64(LARGE_BASE + PAGE).unwrap(), 1);
    let damage = core.wait_for_decompression().unwrap_err();
    assert!(damage.is_damaged_input(), "{damage}");
    // Later calls return no error.
    assert!(core.wait_for_decompression().is_ok());

    // Opened again, the core is a partial one that lists what is missing.
    let core = Core::open(&path, &CoreOptions::default()).unwrap();
    assert!(core.is_partial());
    assert!(core.memory().read_u64(last).is_err());
    assert_eq!(core.memory().read_u64(LARGE_BASE + PAGE).unwrap(), 1);
}
