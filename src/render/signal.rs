//! The signal a thread was handling when the process died, read from the
//! kernel's signal frame on its signal stack: the siginfo (number, code,
//! fault address) and every register the runtime's `dumpregs` prints.
//!
//! The Go runtime handles a fatal signal in `runtime.sighandler`, called
//! by `sigtrampgo` from `sigtramp`, the handler the kernel entered. The
//! kernel's `rt_sigframe` starts at `sigtramp`'s frame top. On amd64 it is
//! the restorer address, the ucontext, then the siginfo
//! (`arch/x86/include/asm/sigframe.h`); on arm64 the siginfo, then the
//! ucontext (`arch/arm64/kernel/signal.c`). The unwinder finds the
//! ucontext the same way
//! ([`symbolizer::unwind::sigtramp::ucontext_address`]).

use symbolizer::core::{Arch, Memory};
use symbolizer::goroutines::{Process, ThreadState};
use symbolizer::unwind::{FrameSource, Walk};

/// SIGQUIT, which the runtime relays from thread to thread.
pub const SIGQUIT: u32 = 3;
/// `SI_USER`: the si_code of a signal sent with `kill`.
const SI_USER: i32 = 0;

/// Size of the kernel's `struct ucontext` on amd64 (flags, link, stack,
/// sigcontext, signal mask), after which `rt_sigframe` puts the siginfo.
const AMD64_UCONTEXT_SIZE: u64 = 304;
/// Offset of `uc_mcontext` in the amd64 ucontext.
const AMD64_UC_MCONTEXT: u64 = 40;
/// Bytes of siginfo before the ucontext in the arm64 signal frame.
const ARM64_SIGINFO_SIZE: u64 = 128;
/// Offset of `uc_mcontext` (its `fault_address`) in the arm64 ucontext.
const ARM64_UC_MCONTEXT: u64 = 176;

/// The amd64 registers `dumpregs` prints, with their index among the
/// sigcontext's 64-bit words (r8 first). `cs`, `fs` and `gs` are 16-bit
/// fields after `eflags` and are handled apart.
const AMD64_REGISTERS: [(&str, u64); 18] = [
    ("rax", 13),
    ("rbx", 11),
    ("rcx", 14),
    ("rdx", 12),
    ("rdi", 8),
    ("rsi", 9),
    ("rbp", 10),
    ("rsp", 15),
    ("r8", 0),
    ("r9", 1),
    ("r10", 2),
    ("r11", 3),
    ("r12", 4),
    ("r13", 5),
    ("r14", 6),
    ("r15", 7),
    ("rip", 16),
    ("rflags", 17),
];

/// A signal a thread was handling, with the registers it interrupted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandledSignal {
    pub signo: u32,
    /// `si_code`.
    pub code: i32,
    /// `si_addr`.
    pub addr: u64,
    /// The registers in the order the runtime's `dumpregs` prints them.
    pub registers: Vec<(&'static str, u64)>,
    /// The interrupted pc.
    pub pc: u64,
    /// Index in the walk of the first frame after the signal: the one the
    /// signal interrupted.
    pub interrupted: usize,
}

impl HandledSignal {
    /// Returns the width of the register name column of `dumpregs`.
    pub fn name_width(arch: Arch) -> usize {
        match arch {
            Arch::Amd64 => 7,
            Arch::Arm64 => 8,
        }
    }
}

/// Finds the signal `runtime.sighandler` was handling in `walk`, and reads
/// its frame. `None` when the walk has no such handler or its frame cannot
/// be read.
pub fn handled_signal(arch: Arch, memory: &Memory, walk: &Walk) -> Option<HandledSignal> {
    let frames = &walk.frames;
    let handler = frames
        .iter()
        .position(|f| f.function() == Some("runtime.sighandler"))?;
    let sigtramp = frames
        .iter()
        .enumerate()
        .skip(handler)
        .find(|(_, f)| {
            matches!(
                f.function(),
                Some("runtime.sigtramp" | "runtime.cgoSigtramp")
            )
        })
        .map(|(index, _)| index)?;
    let interrupted = sigtramp + 1;
    if frames.get(interrupted)?.found_by != FrameSource::SignalContext {
        return None;
    }
    let top = frames.get(sigtramp)?.fp?;
    let ucontext = symbolizer::unwind::sigtramp::ucontext_address(arch, top);
    let siginfo = match arch {
        Arch::Amd64 => ucontext.checked_add(AMD64_UCONTEXT_SIZE)?,
        Arch::Arm64 => ucontext.checked_sub(ARM64_SIGINFO_SIZE)?,
    };
    let signo = memory.read_u32(siginfo).ok()?;
    let code = memory.read_u32(siginfo.checked_add(8)?).ok()? as i32;
    let addr = memory.read_u64(siginfo.checked_add(16)?).ok()?;
    let registers = match arch {
        Arch::Amd64 => amd64_registers(memory, ucontext)?,
        Arch::Arm64 => arm64_registers(memory, ucontext)?,
    };
    let pc = frames.get(interrupted)?.pc;
    Some(HandledSignal {
        signo,
        code,
        addr,
        registers,
        pc,
        interrupted,
    })
}

fn amd64_registers(memory: &Memory, ucontext: u64) -> Option<Vec<(&'static str, u64)>> {
    let mcontext = ucontext.checked_add(AMD64_UC_MCONTEXT)?;
    let mut registers = Vec::with_capacity(21);
    for (name, index) in AMD64_REGISTERS {
        registers.push((
            name,
            memory.read_u64(mcontext.checked_add(index * 8)?).ok()?,
        ));
    }
    // cs, gs, fs and ss are four 16-bit fields after eflags.
    let segments = mcontext.checked_add(18 * 8)?;
    let half = |index: u64| -> Option<u64> {
        Some(u64::from(
            memory.read_u16(segments.checked_add(index * 2)?).ok()?,
        ))
    };
    registers.push(("cs", half(0)?));
    registers.push(("fs", half(2)?));
    registers.push(("gs", half(1)?));
    Some(registers)
}

fn arm64_registers(memory: &Memory, ucontext: u64) -> Option<Vec<(&'static str, u64)>> {
    const NAMES: [&str; 30] = [
        "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13",
        "r14", "r15", "r16", "r17", "r18", "r19", "r20", "r21", "r22", "r23", "r24", "r25", "r26",
        "r27", "r28", "r29",
    ];
    let mcontext = ucontext.checked_add(ARM64_UC_MCONTEXT)?;
    let fault = memory.read_u64(mcontext).ok()?;
    let regs = mcontext.checked_add(8)?;
    let word = |index: u64| -> Option<u64> { memory.read_u64(regs.checked_add(index * 8)?).ok() };
    let mut registers = Vec::with_capacity(34);
    for (index, name) in NAMES.iter().enumerate() {
        registers.push((*name, word(index as u64)?));
    }
    registers.push(("lr", word(30)?));
    registers.push(("sp", word(31)?));
    registers.push(("pc", word(32)?));
    registers.push(("fault", fault));
    Some(registers)
}

/// Returns every thread inside the runtime's fatal signal handler, with the
/// signal it handles.
pub fn handling_threads<'p>(
    arch: Arch,
    memory: &Memory,
    process: &'p Process,
) -> Vec<(&'p ThreadState, HandledSignal)> {
    process
        .threads()
        .iter()
        .filter_map(|t| handled_signal(arch, memory, &t.walk).map(|s| (t, s)))
        .collect()
}

/// Finds the thread that received the fatal signal first.
///
/// Under `GOTRACEBACK=crash` that thread relays SIGQUIT to every other M
/// with `kill` from the process itself (si_code SI_USER, si_pid `own_pid`),
/// so the origin is the one thread handling another signal, or a SIGQUIT
/// another process sent. Otherwise the thread the core names is taken:
/// from Go 1.22 on the first thread also dies first.
pub fn signal_origin<'p>(
    arch: Arch,
    memory: &Memory,
    process: &'p Process,
    own_pid: Option<u32>,
) -> Option<(&'p ThreadState, HandledSignal)> {
    let mut handling = handling_threads(arch, memory, process);
    let relayed = |s: &HandledSignal| {
        s.signo == SIGQUIT && s.code == SI_USER && own_pid.is_none_or(|pid| sender(s) == pid)
    };
    let originals: Vec<usize> = (0..handling.len())
        .filter(|&i| !relayed(&handling[i].1))
        .collect();
    let index = match originals.as_slice() {
        [only] => *only,
        _ => {
            let crashing = process.crashing_thread()?.id;
            handling.iter().position(|(t, _)| t.id == crashing)?
        }
    };
    Some(handling.swap_remove(index))
}

/// Returns the sending process of a signal sent with `kill` (SI_USER): its
/// `si_pid` shares the bytes of `si_addr` (the first four, on Linux).
pub fn sender(signal: &HandledSignal) -> u32 {
    signal.addr as u32
}
