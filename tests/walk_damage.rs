//! Rebuilds goroutines from damaged corpus cores and from cores given with
//! the wrong binary. Each must give a partial result with its reasons or a
//! clear error, and never panic: cores cut at several points (10%, 50%,
//! 90% of the decompressed core, and just after its notes), cores with
//! random bytes flipped, and cores read with another program's binary or
//! with the same program built by another toolchain.

mod support;

use std::path::Path;

use symbolizer::binary::Binary;
use symbolizer::core::{Core, CoreOptions};
use symbolizer::decompress::{CoreImage, DecompressOptions};
use symbolizer::goroutines::{BinaryInfo, Goroutine, Process};
use symbolizer::runtime::waitreason::GStatus;
use symbolizer::unwind::MAX_FRAMES;

use support::{Crash, Manifest};

/// The crashes damaged: one small, one cgo, one with threads running
/// goroutines, one with 10,000 goroutines; `None` takes any toolchain.
const CASES: [(&str, &str, &str); 5] = [
    ("nilpointer", "1.19.8", "default"),
    ("nilpointer", "1.27.3", "pie"),
    ("cgosegv", "1.23.9", "default"),
    ("sigquit", "1.27.3", "default"),
    ("manygoroutines", "1.26.6", "stripped"),
];

/// Random byte flips per damaged copy, and the seeds of the copies.
const FLIPS: usize = 400;
const SEEDS: [u64; 3] = [
    0x9e37_79b9_7f4a_7c15,
    0x2545_f491_4f6c_dd1d,
    0x1234_5678_9abc_def1,
];

fn cases(manifest: &Manifest) -> Vec<&Crash> {
    let found: Vec<&Crash> = CASES
        .iter()
        .filter_map(|(program, toolchain, mode)| {
            manifest
                .crashes
                .iter()
                .find(|c| c.program == *program && c.toolchain == *toolchain && c.mode == *mode)
        })
        .filter(|c| c.core.exists())
        .collect();
    if found.is_empty() && std::env::var("CI").as_deref() == Ok("true") {
        panic!("none of the damaged-core cases is in the manifest");
    }
    found
}

fn decompressed(crash: &Crash) -> Vec<u8> {
    let image = CoreImage::open(&crash.core, &DecompressOptions::default(), &mut |_| {})
        .unwrap_or_else(|e| panic!("{}: {e}", crash.core.display()));
    image.bytes().to_vec()
}

/// Reads a little-endian field of `size` bytes at `offset` in `core`.
fn field(core: &[u8], offset: usize, size: usize) -> Option<u64> {
    let bytes = core.get(offset..offset.checked_add(size)?)?;
    let mut value = [0u8; 8];
    value.get_mut(..size)?.copy_from_slice(bytes);
    Some(u64::from_le_bytes(value))
}

/// Returns the file range of the core's `PT_NOTE` segment, read from the
/// ELF64 program headers.
fn note_segment(core: &[u8]) -> Option<(usize, usize)> {
    let phoff = usize::try_from(field(core, 0x20, 8)?).ok()?;
    let phentsize = usize::try_from(field(core, 0x36, 2)?).ok()?;
    let phnum = usize::try_from(field(core, 0x38, 2)?).ok()?;
    (0..phnum).find_map(|index| {
        let header = phoff + index * phentsize;
        const PT_NOTE: u64 = 4;
        (field(core, header, 4)? == PT_NOTE).then_some(())?;
        let offset = usize::try_from(field(core, header + 8, 8)?).ok()?;
        let size = usize::try_from(field(core, header + 32, 8)?).ok()?;
        Some((offset, offset.checked_add(size)?))
    })
}

/// Returns the file offset just past the core's `PT_NOTE` segment.
fn end_of_notes(core: &[u8]) -> Option<usize> {
    note_segment(core).map(|(_, end)| end)
}

/// What one load gave, for the messages.
#[derive(Debug)]
#[expect(
    dead_code,
    reason = "the fields are read through Debug in failure messages"
)]
enum Outcome {
    CoreError(String),
    ProcessError(String),
    Loaded {
        goroutines: usize,
        readable: usize,
        warnings: usize,
        missing: usize,
    },
}

/// Loads `bytes` as a core of `binary` and checks that the result is
/// bounded and explains what it lacks.
fn load(bytes: Vec<u8>, binary: &Path) -> Outcome {
    let options = CoreOptions {
        executable: Some(binary.to_path_buf()),
        ..CoreOptions::default()
    };
    let core = match Core::from_bytes(bytes, &options) {
        Ok(core) => core,
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty(), "a core error has a message");
            return Outcome::CoreError(message);
        }
    };
    let binary = Binary::open(binary).expect("the corpus binary opens");
    match Process::load(&core, &binary) {
        Ok(process) => {
            check_bounded(&process);
            let readable = process
                .goroutines()
                .iter()
                .filter(|g| g.record.is_some())
                .count();
            Outcome::Loaded {
                goroutines: process.goroutines().len(),
                readable,
                warnings: process.warnings().len(),
                missing: process.missing().len(),
            }
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty(), "a process error has a message");
            Outcome::ProcessError(message)
        }
    }
}

/// Every goroutine is either read or says why not, and no walk exceeds the
/// frame limit.
fn check_bounded(process: &Process) {
    for goroutine in process.goroutines() {
        assert!(
            goroutine.record.is_some() || goroutine.error.is_some(),
            "goroutine at {:#x} has neither a record nor an error",
            goroutine.address
        );
        if let Some(walk) = &goroutine.walk {
            assert!(
                walk.frames.len() <= MAX_FRAMES,
                "{} frames",
                walk.frames.len()
            );
        }
    }
    for thread in process.threads() {
        assert!(
            thread.walk.frames.len() <= MAX_FRAMES,
            "thread {}: {} frames",
            thread.id,
            thread.walk.frames.len()
        );
    }
}

fn name(crash: &Crash) -> String {
    format!("{}/{}/{}", crash.toolchain, crash.mode, crash.program)
}

#[test]
fn truncated_cores_give_partial_results_or_errors() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let cases = cases(&manifest);
    for crash in &cases {
        let bytes = decompressed(crash);
        let notes_end = end_of_notes(&bytes).expect("the core has a PT_NOTE segment");
        let cuts = [
            ("10%", bytes.len() / 10),
            ("50%", bytes.len() / 2),
            ("90%", bytes.len() / 10 * 9),
            ("after the notes", notes_end),
        ];
        for (label, cut) in cuts {
            let outcome = load(bytes[..cut].to_vec(), &crash.binary);
            eprintln!(
                "{} cut at {label} ({cut:#x} of {:#x} bytes): {outcome:?}",
                name(crash),
                bytes.len()
            );
            if let Outcome::Loaded {
                goroutines,
                warnings,
                missing,
                ..
            } = outcome
            {
                assert!(
                    goroutines > 0 || warnings > 0 || missing > 0,
                    "{} cut at {label}: an empty result without a reason",
                    name(crash)
                );
            }
        }
        // Cut just after the notes, no goroutine memory is left: the
        // goroutine list cannot be found, and the result says so.
        let options = CoreOptions {
            executable: Some(crash.binary.clone()),
            ..CoreOptions::default()
        };
        let core =
            Core::from_bytes(bytes[..notes_end].to_vec(), &options).expect("the notes parse");
        assert!(
            core.is_partial(),
            "{}: a core cut after its notes is partial",
            name(crash)
        );
        let binary = Binary::open(&crash.binary).expect("the corpus binary opens");
        let reason = match Process::load(&core, &binary) {
            Ok(process) => process.missing().join("; "),
            Err(error) => error.to_string(),
        };
        assert!(
            reason.contains("goroutine list") || reason.contains("allgs"),
            "{}: {reason}",
            name(crash)
        );
    }
    if cases.is_empty() {
        eprintln!("skipped: no damaged-core case is in the manifest");
    }
}

/// A small xorshift generator, so that each damaged copy is the same on
/// every run.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    for crash in cases(&manifest) {
        let bytes = decompressed(crash);
        let notes_end = end_of_notes(&bytes).expect("the core has a PT_NOTE segment");
        for seed in SEEDS {
            let mut random = Xorshift(seed);
            let mut damaged = bytes.clone();
            for _ in 0..FLIPS {
                let at = random.below(damaged.len());
                damaged[at] ^= 1 << random.below(8);
            }
            // A few flips in the notes too: registers, the file table, auxv.
            for _ in 0..FLIPS / 20 {
                let at = random.below(notes_end);
                damaged[at] ^= 1 << random.below(8);
            }
            let outcome = load(damaged, &crash.binary);
            eprintln!(
                "{} with {FLIPS} flipped bytes (seed {seed:#x}): {outcome:?}",
                name(crash)
            );
        }
    }
}

#[test]
fn wrong_binary_gives_warning_or_error() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let mut compared = 0;
    for crash in cases(&manifest) {
        let other_program = manifest.crashes.iter().find(|c| {
            c.program != crash.program && c.toolchain == crash.toolchain && c.mode == crash.mode
        });
        let other_toolchain = manifest.crashes.iter().find(|c| {
            c.program == crash.program && c.toolchain != crash.toolchain && c.mode == crash.mode
        });
        let options = CoreOptions::default();
        let core = Core::open(&crash.core, &options).expect("the corpus core opens");
        for other in [other_program, other_toolchain].into_iter().flatten() {
            let binary = Binary::open(&other.binary).expect("the corpus binary opens");
            let result = Process::load(&core, &binary);
            match &result {
                Ok(process) => {
                    check_bounded(process);
                    assert!(
                        process.warnings().iter().any(|w| w.contains("build ID")),
                        "{} read with {}: no warning about the other build: {:?}",
                        name(crash),
                        name(other),
                        process.warnings()
                    );
                }
                Err(error) => assert!(!error.to_string().is_empty()),
            }
            eprintln!(
                "{} read with the binary of {}: {}",
                name(crash),
                name(other),
                match &result {
                    Ok(process) => format!(
                        "{} goroutines, warnings {:?}",
                        process.goroutines().len(),
                        process.warnings()
                    ),
                    Err(error) => format!("error: {error}"),
                }
            );
            compared += 1;
        }
    }
    if compared == 0 {
        eprintln!("skipped: no wrong-binary case is in the manifest");
    }
}

/// Returns the file offset of the virtual address `vaddr` in an ELF64
/// core, from its `PT_LOAD` program headers.
fn core_offset(core: &[u8], vaddr: u64) -> Option<usize> {
    let field = |offset: usize, size: usize| -> Option<u64> {
        let bytes = core.get(offset..offset + size)?;
        let mut value = [0u8; 8];
        value[..size].copy_from_slice(bytes);
        Some(u64::from_le_bytes(value))
    };
    let phoff = usize::try_from(field(0x20, 8)?).ok()?;
    let phentsize = usize::try_from(field(0x36, 2)?).ok()?;
    let phnum = usize::try_from(field(0x38, 2)?).ok()?;
    (0..phnum).find_map(|index| {
        let header = phoff + index * phentsize;
        const PT_LOAD: u64 = 1;
        (field(header, 4)? == PT_LOAD).then_some(())?;
        let offset = field(header + 8, 8)?;
        let start = field(header + 16, 8)?;
        let filesz = field(header + 32, 8)?;
        let delta = vaddr.checked_sub(start)?;
        (delta < filesz).then_some(())?;
        usize::try_from(offset + delta).ok()
    })
}

/// A non-PIE corpus crash with its core decompressed, and the file offsets
/// of the `runtime.allgs` slice header and of its elements.
struct AllgsCase {
    crash: Crash,
    bytes: Vec<u8>,
    /// The virtual address of `runtime.allgs`.
    address: u64,
    header: usize,
    elements: usize,
    len: usize,
}

fn allgs_case() -> Option<AllgsCase> {
    use object::{Object, ObjectSymbol};

    let manifest = support::manifest()?;
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer" && c.toolchain == "1.22.10" && c.mode == "default")?
        .clone();
    let bytes = decompressed(&crash);
    let binary = std::fs::read(&crash.binary).unwrap();
    let elf = object::File::parse(binary.as_slice()).unwrap();
    let allgs = elf
        .symbols()
        .find(|s| s.name() == Ok("runtime.allgs"))
        .expect("the default build has a symbol table")
        .address();
    let header = core_offset(&bytes, allgs).expect("runtime.allgs is in the core");
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let elements = core_offset(&bytes, word(header)).expect("the allgs array is in the core");
    let len = word(header + 8) as usize;
    assert!(len >= 4, "nilpointer has at least four goroutines");
    Some(AllgsCase {
        crash,
        bytes,
        address: allgs,
        header,
        elements,
        len,
    })
}

/// Loads a mutated core of `crash` and returns the process it gives.
fn load_mutated(crash: &Crash, bytes: Vec<u8>) -> Process {
    let options = CoreOptions {
        executable: Some(crash.binary.clone()),
        ..CoreOptions::default()
    };
    let core = Core::from_bytes(bytes, &options).expect("the mutated core parses");
    let binary = Binary::open(&crash.binary).expect("the corpus binary opens");
    Process::load(&core, &binary).expect("the damaged core still gives a process")
}

/// The crash of `nilpointer` is a nil dereference in goroutine 1; a damaged
/// list must not hide it behind a claim about the system stack.
fn assert_crash_found(process: &Process, case: &str) {
    assert_eq!(process.crash().goroutine, Some(1), "{case}");
    assert!(process.crash().no_goroutine_reason.is_none(), "{case}");
    assert!(
        !process.crash().panics.is_empty(),
        "{case}: the panic is read"
    );
    let crashing = process
        .goroutines()
        .iter()
        .find(|g| g.goid == Some(1))
        .expect("goroutine 1 is rebuilt");
    let frames = &crashing
        .walk
        .as_ref()
        .expect("goroutine 1 has a walk")
        .frames;
    assert!(
        frames.iter().any(|f| f.function() == Some("main.main")),
        "{case}: goroutine 1 reaches main.main"
    );
}

#[test]
fn unreadable_allgs_keeps_running_goroutines() {
    let Some(case) = allgs_case() else {
        return;
    };
    // The slice pointer aimed at the slice header itself.
    let mut bytes = case.bytes.clone();
    bytes[case.header..case.header + 8].copy_from_slice(&case.address.to_le_bytes());
    let process = load_mutated(&case.crash, bytes);
    let missing = process.missing().join("; ");
    assert!(
        missing.contains("the goroutine list could not be read"),
        "{missing}"
    );
    assert!(
        missing.contains("the goroutine list looks wrong"),
        "{missing}"
    );
    assert!(process.provenance().allgs.is_none());
    assert_crash_found(&process, "allgs pointing at itself");
}

#[test]
fn repeated_allgs_entry_is_rejected() {
    let Some(case) = allgs_case() else {
        return;
    };
    // Every entry repeats the last one, a goroutine other than the crashing one.
    let mut bytes = case.bytes.clone();
    let last = case.elements + 8 * (case.len - 1);
    let repeated: [u8; 8] = bytes[last..last + 8].try_into().unwrap();
    for index in 0..case.len {
        let at = case.elements + 8 * index;
        bytes[at..at + 8].copy_from_slice(&repeated);
    }
    let process = load_mutated(&case.crash, bytes);
    let missing = process.missing().join("; ");
    assert!(
        missing.contains(&format!(
            "lists {} pointers but only 1 distinct ones",
            case.len
        )),
        "{missing}"
    );
    assert_crash_found(&process, "one g repeated");
}

#[test]
fn few_repeats_are_dropped_and_reported() {
    let Some(case) = allgs_case() else {
        return;
    };
    let original = load_mutated(&case.crash, case.bytes.clone());
    assert!(original.missing().is_empty(), "{:?}", original.missing());

    // The last entry repeats the first one (goroutine 1, the crashing one).
    let mut bytes = case.bytes.clone();
    let first: [u8; 8] = bytes[case.elements..case.elements + 8].try_into().unwrap();
    let last = case.elements + 8 * (case.len - 1);
    let dropped = u64::from_le_bytes(bytes[last..last + 8].try_into().unwrap());
    bytes[last..last + 8].copy_from_slice(&first);
    let process = load_mutated(&case.crash, bytes);
    let missing = process.missing().join("; ");
    assert!(
        missing.contains("runtime.allgs lists 1 g pointers more than once"),
        "{missing}"
    );
    assert_eq!(process.goroutines().len(), original.goroutines().len() - 1);
    assert!(process.goroutines().iter().all(|g| g.address != dropped));
    assert_eq!(
        process
            .goroutines()
            .iter()
            .filter(|g| g.goid == Some(1))
            .count(),
        1,
        "goroutine 1 is listed once"
    );
    assert_crash_found(&process, "first g repeated at the end");
}

#[test]
fn shared_goroutine_ids_are_reported() {
    let Some(case) = allgs_case() else {
        return;
    };
    let original = load_mutated(&case.crash, case.bytes.clone());
    let binary = Binary::open(&case.crash.binary).expect("the corpus binary opens");
    let info = BinaryInfo::new(&binary).expect("the binary's facts are read");
    let goid_offset = info.layout().g.goid;

    // Every live goroutine but the crashing one takes the id of the first
    // of them, as in a list of gs overwritten with one another's fields.
    let mut bytes = case.bytes.clone();
    let others: Vec<&Goroutine> = original
        .goroutines()
        .iter()
        .filter(|g| g.goid != Some(1) && !is_dead(g))
        .collect();
    assert!(others.len() >= 3, "nilpointer has runtime goroutines");
    let shared = others[0].goid.expect("the goroutine has an id");
    for goroutine in &others {
        let at =
            core_offset(&bytes, goroutine.address + goid_offset).expect("the g is in the core");
        bytes[at..at + 8].copy_from_slice(&shared.to_le_bytes());
    }
    let process = load_mutated(&case.crash, bytes);
    let missing = process.missing().join("; ");
    assert!(
        missing.contains(&format!(
            "{} live goroutines have the id of another one",
            others.len() - 1
        )),
        "{missing}"
    );
    assert_crash_found(&process, "goroutine ids shared");
}

fn is_dead(goroutine: &Goroutine) -> bool {
    goroutine
        .record
        .as_ref()
        .is_some_and(|r| matches!(r.status, GStatus::Dead | GStatus::DeadExtra))
}

#[test]
fn machine_mismatch_is_stated() {
    let Some(case) = allgs_case() else {
        return;
    };
    let mut bytes = case.bytes.clone();
    // e_machine: EM_AARCH64 in a core of an x86-64 binary.
    bytes[0x12..0x14].copy_from_slice(&183u16.to_le_bytes());
    let options = CoreOptions {
        executable: Some(case.crash.binary.clone()),
        ..CoreOptions::default()
    };
    let core = Core::from_bytes(bytes, &options).expect("the core parses as arm64");
    let binary = Binary::open(&case.crash.binary).expect("the corpus binary opens");
    let error = Process::load(&core, &binary).expect_err("the machines differ");
    let message = error.to_string();
    assert!(
        message.starts_with("the core is from an AArch64 process, but the binary"),
        "{message}"
    );
    assert!(message.contains("is built for x86-64"), "{message}");
}

/// Returns the notes of `core`: for each, the offset of its header and its
/// type.
fn notes(core: &[u8]) -> Vec<(usize, u64)> {
    let Some((start, end)) = note_segment(core) else {
        return Vec::new();
    };
    let align = |n: usize| (n + 3) & !3;
    let mut found = Vec::new();
    let mut at = start;
    while at + 12 <= end {
        let (Some(name_size), Some(desc_size), Some(kind)) = (
            field(core, at, 4),
            field(core, at + 4, 4),
            field(core, at + 8, 4),
        ) else {
            break;
        };
        found.push((at, kind));
        at += 12 + align(name_size as usize) + align(desc_size as usize);
    }
    found
}

/// Returns the offset of the NT_FILE note's description in `core`.
fn file_note(core: &[u8]) -> Option<usize> {
    const NT_FILE: u64 = 0x4649_4c45;
    let (header, _) = notes(core).into_iter().find(|&(_, kind)| kind == NT_FILE)?;
    let name_size = field(core, header, 4)? as usize;
    Some(header + 12 + ((name_size + 3) & !3))
}

/// Returns the offsets of the NT_PRSTATUS notes of `core`, one per thread.
fn thread_notes(core: &[u8]) -> Vec<usize> {
    const NT_PRSTATUS: u64 = 1;
    notes(core)
        .into_iter()
        .filter(|&(_, kind)| kind == NT_PRSTATUS)
        .map(|(header, _)| header)
        .collect()
}

/// Changes the type of the note at `header` to one no reader knows, as if
/// the note were lost.
fn lose_note(core: &mut [u8], header: usize) {
    core[header + 8..header + 12].copy_from_slice(&0x8000_0000u32.to_le_bytes());
}

/// A thread whose NT_PRSTATUS note is lost is named under Missing through
/// the M that still names it.
#[test]
fn lost_thread_note_is_missing() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer" && c.mode == "default")
        .expect("a default nilpointer crash");
    let mut core = decompressed(crash);
    let threads = thread_notes(&core);
    assert!(threads.len() >= 2, "{} thread notes", threads.len());
    lose_note(&mut core, threads[threads.len() - 1]);

    let process = load_mutated(crash, core);
    assert_eq!(process.threads().len(), threads.len() - 1);
    assert!(
        process
            .missing()
            .iter()
            .any(|line| line.contains("has no NT_PRSTATUS note in the core")),
        "{:?}",
        process.missing()
    );
}

/// A panic whose thread's NT_PRSTATUS note is lost is still found, on the
/// running goroutine whose M names that thread.
#[test]
fn lost_crashing_thread_keeps_the_panic() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    // From Go 1.22 on, the thread that panicked writes the core, and the
    // kernel puts its note first.
    let crash = manifest
        .crashes
        .iter()
        .rfind(|c| c.program == "nilpointer" && c.mode == "default")
        .expect("a default nilpointer crash");
    let mut core = decompressed(crash);
    let first = *thread_notes(&core).first().expect("a thread note");
    lose_note(&mut core, first);

    let process = load_mutated(crash, core);
    assert_eq!(
        process.crash().goroutine,
        Some(1),
        "{:?}",
        process.missing()
    );
    assert_eq!(process.crash().panics.len(), 1);
    assert!(
        process
            .missing()
            .iter()
            .any(|line| line.starts_with("goroutine 1 runs on M")),
        "{:?}",
        process.missing()
    );
}

/// An NT_FILE entry of the executable moved to another part of the file
/// is damage the output names: the pages read from the file there are not
/// the process's.
#[test]
fn misplaced_executable_mapping_is_missing() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer" && c.mode == "default")
        .expect("a default nilpointer crash");
    let mut core = decompressed(crash);
    let desc = file_note(&core).expect("the core has an NT_FILE note");
    let word = |core: &[u8], at: usize| {
        u64::from_le_bytes(core[at..at + 8].try_into().expect("eight bytes"))
    };
    let count = word(&core, desc) as usize;
    // The executable's mappings come first; the second maps a later part
    // of the file. Its page offset moves one page on.
    assert!(count >= 2, "{count} NT_FILE entries");
    let second_offset = desc + 16 + 24 + 16;
    let pages = word(&core, second_offset);
    core[second_offset..second_offset + 8].copy_from_slice(&(pages + 1).to_le_bytes());

    let options = CoreOptions {
        executable: Some(crash.binary.clone()),
        ..CoreOptions::default()
    };
    let core = Core::from_bytes(core, &options).expect("the core opens");
    let binary = Binary::open(&crash.binary).expect("the corpus binary opens");
    let process = Process::load(&core, &binary).expect("the goroutines load");
    assert!(
        process.missing().iter().any(|line| line
            .contains("where no program header of the binary puts that part of the file")),
        "{:?}",
        process.missing()
    );
}
