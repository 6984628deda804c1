//! The PT_NOTE contents of a Linux core: one NT_PRSTATUS per thread, and
//! NT_PRPSINFO, NT_SIGINFO, NT_AUXV and NT_FILE for the process.
//!
//! `object` splits a note segment into notes. This module decodes each note's
//! descriptor with the kernel's 64-bit layouts (`struct elf_prstatus`,
//! `struct elf_prpsinfo`, `siginfo_t`, the auxiliary vector), checking every
//! size against the descriptor first. A damaged note is skipped and reported
//! as a [`NoteError`] while the others are still read. NT_FILE is decoded in
//! [`super::files`] and registers in [`super::regs`].

use object::elf;
use object::read::elf::NoteIterator;
use object::Endianness;

use super::files::{self, FileTable};
use super::regs::{Arch, Registers};

/// Maximum number of notes read from a core. Each amd64 thread has three
/// (registers, FP state, xstate) and arm64 threads a few more, so this admits
/// well over [`MAX_THREADS`] threads.
pub const MAX_NOTES: usize = 1 << 20;

/// Maximum number of threads read. The Go runtime stops a program at 10000
/// threads by default (`debug.SetMaxThreads`); this leaves room for programs
/// that raise the limit.
pub const MAX_THREADS: usize = 1 << 17;

/// Maximum number of auxiliary vector entries. The amd64 cores of Go
/// programs read in this crate's tests have 26.
pub const MAX_AUXV_ENTRIES: usize = 512;

/// Byte offset of `pr_reg` in the 64-bit `struct elf_prstatus`: the siginfo
/// triple, cursig, two signal masks, four ids and four `timeval`s come first.
const PRSTATUS_REGISTERS_OFFSET: usize = 112;

/// Size of the 64-bit `struct elf_prpsinfo`.
const PRPSINFO_SIZE: usize = 136;

/// Size of the fields of `siginfo_t` this module reads: signo, errno, code,
/// padding and the first 8 bytes of the union.
const SIGINFO_MIN_SIZE: usize = 24;

const NOTE_NAME_CORE: &[u8] = b"CORE";
const NOTE_NAME_LINUX: &[u8] = b"LINUX";

/// A thread id as the kernel numbers it: the LWP id, equal to the process
/// id for the main thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThreadId(pub u32);

impl std::fmt::Display for ThreadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The signal fields of a thread's NT_PRSTATUS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadSignal {
    /// `pr_info.si_signo`: the signal that caused the dump, the same on
    /// every thread.
    pub signo: i32,
    pub code: i32,
    pub errno: i32,
    /// `pr_cursig`: the signal being handled by this thread, the same as
    /// `signo` on Linux.
    pub cursig: i16,
    /// Bit mask of pending signals (bit n-1 for signal n).
    pub pending: u64,
    /// Bit mask of blocked signals (bit n-1 for signal n).
    pub blocked: u64,
}

/// One thread of the process, from NT_PRSTATUS and the notes after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thread {
    pub id: ThreadId,
    pub signal: ThreadSignal,
    pub registers: Registers,
    /// File offset of the NT_PRSTATUS descriptor, for messages.
    pub note_offset: u64,
}

/// The process summary of NT_PRPSINFO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// `pr_state`: the numeric scheduler state.
    pub state: u8,
    /// `pr_sname`: the state letter as `ps` prints it (`R`, `S`, `D`, `Z`...).
    pub state_name: char,
    pub zombie: bool,
    pub nice: i8,
    /// `pr_flag`: the task's `PF_*` flags.
    pub flags: u64,
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    pub ppid: u32,
    pub pgrp: u32,
    pub sid: u32,
    /// `pr_fname`: the command name (`comm`), at most 15 bytes.
    pub fname: String,
    /// `pr_psargs`: the command line with NULs turned into spaces, cut to 80
    /// bytes by the kernel.
    pub psargs: String,
}

/// The signal that caused the dump, from NT_SIGINFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    /// `si_addr`: the faulting address, for SIGSEGV, SIGBUS, SIGILL, SIGFPE
    /// and SIGTRAP raised by the kernel (`si_code` > 0).
    pub fault_addr: Option<u64>,
    /// `si_pid`: the sender, for signals sent by a process (`si_code` <= 0,
    /// such as `SI_USER` from kill and `SI_TKILL` from tgkill).
    pub sender_pid: Option<u32>,
    /// `si_uid`: the sender's real user id, with `sender_pid`.
    pub sender_uid: Option<u32>,
}

/// Signal numbers whose kernel-generated siginfo carries `si_addr`.
const SIGILL: i32 = 4;
const SIGTRAP: i32 = 5;
const SIGBUS: i32 = 7;
const SIGFPE: i32 = 8;
const SIGSEGV: i32 = 11;

/// Auxiliary vector keys (`AT_*` in `<elf.h>`) this module names.
pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_ENTRY: u64 = 9;
pub const AT_EXECFN: u64 = 31;

/// One entry of the auxiliary vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuxvEntry {
    /// One of the `AT_*` constants of `<elf.h>`.
    pub key: u64,
    pub value: u64,
}

/// The auxiliary vector the kernel passed to the program, from NT_AUXV.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auxv {
    pub entries: Vec<AuxvEntry>,
}

impl Auxv {
    /// Returns the value of the first entry with `key`.
    pub fn get(&self, key: u64) -> Option<u64> {
        self.entries.iter().find(|e| e.key == key).map(|e| e.value)
    }

    /// Returns `AT_ENTRY`: the run-time address of the executable's entry
    /// point, which includes the load bias of a PIE.
    pub fn entry(&self) -> Option<u64> {
        self.get(AT_ENTRY)
    }

    /// Returns `AT_PHDR`: the run-time address of the executable's program
    /// headers.
    pub fn phdr(&self) -> Option<u64> {
        self.get(AT_PHDR)
    }

    pub fn phnum(&self) -> Option<u64> {
        self.get(AT_PHNUM)
    }

    /// Returns `AT_BASE`: the dynamic loader's base address, 0 for static
    /// programs.
    pub fn base(&self) -> Option<u64> {
        self.get(AT_BASE)
    }

    /// Returns `AT_EXECFN`: the address of the path passed to execve, on the
    /// initial stack.
    pub fn execfn(&self) -> Option<u64> {
        self.get(AT_EXECFN)
    }

    pub fn page_size(&self) -> Option<u64> {
        self.get(AT_PAGESZ)
    }
}

/// A note that could not be decoded. The reader skips it and goes on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error(
        "invalid note at file offset {offset:#x}: expected a note header whose name and \
         descriptor fit in the note segment, found {found} ({source})"
    )]
    Walk {
        offset: u64,
        /// The header's fields and the bytes left, as a phrase.
        found: String,
        /// Shown in the message, because callers print problems without
        /// their sources.
        source: object::Error,
    },
    #[error(
        "the note segment at file offset {offset:#x} is cut by the end of the core: \
         {present:#x} of {size:#x} bytes are present"
    )]
    SegmentTruncated {
        offset: u64,
        size: u64,
        present: u64,
    },
    #[error(
        "{note} note at file offset {offset:#x} is {found} bytes, more than the {expected} the \
         kernel writes: its header may be damaged, and the notes after it misread"
    )]
    TooLong {
        note: &'static str,
        offset: u64,
        expected: usize,
        found: usize,
    },
    #[error(
        "{note} note at file offset {offset:#x} is too short: {found} bytes, expected at least {expected}"
    )]
    TooShort {
        note: &'static str,
        offset: u64,
        expected: usize,
        found: usize,
    },
    #[error("{note} note at file offset {offset:#x} has {count} entries, more than the limit of {limit}")]
    TooMany {
        note: &'static str,
        offset: u64,
        count: u64,
        limit: usize,
    },
    #[error("{note} note at file offset {offset:#x} is invalid: {reason}")]
    Invalid {
        note: &'static str,
        offset: u64,
        reason: String,
    },
    #[error("{note} note at file offset {offset:#x} appears before any NT_PRSTATUS, so it names no thread")]
    NoThread { note: &'static str, offset: u64 },
    #[error("the core has more than {limit} {what}; the rest are ignored")]
    LimitReached { what: &'static str, limit: usize },
}

/// Everything the note segments of a core contain.
#[derive(Debug, Default)]
pub(crate) struct ParsedNotes {
    pub threads: Vec<Thread>,
    pub process: Option<ProcessInfo>,
    pub siginfo: Option<SignalInfo>,
    pub auxv: Option<Auxv>,
    pub files: Option<FileTable>,
    pub problems: Vec<NoteError>,
    thread_limit_reached: bool,
}

/// A note segment: its file offset, declared size and the bytes present.
pub(crate) struct NoteSegment<'a> {
    pub offset: u64,
    pub size: u64,
    pub align: u64,
    pub bytes: &'a [u8],
}

/// Decodes every note of the given note segments.
/// Describes the note header at file offset `offset` of `segment`: its
/// name size, descriptor size and type, and the bytes left in the segment.
fn describe_note_header(segment: &NoteSegment<'_>, offset: u64, endian: Endianness) -> String {
    let start = offset
        .checked_sub(segment.offset)
        .and_then(|start| usize::try_from(start).ok())
        .unwrap_or(usize::MAX);
    let rest = segment.bytes.get(start..).unwrap_or(&[]);
    let word = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = rest.get(at..at + 4)?.try_into().ok()?;
        Some(match endian {
            Endianness::Little => u32::from_le_bytes(bytes),
            Endianness::Big => u32::from_be_bytes(bytes),
        })
    };
    match (word(0), word(4), word(8)) {
        (Some(name_size), Some(desc_size), Some(kind)) => format!(
            "namesz {name_size:#x}, descsz {desc_size:#x} and type {kind:#x} with {:#x} bytes \
             left in the segment",
            rest.len()
        ),
        _ => format!(
            "only {:#x} bytes left in the segment, fewer than a 12-byte header",
            rest.len()
        ),
    }
}

pub(crate) fn parse_notes(
    segments: &[NoteSegment<'_>],
    arch: Arch,
    endian: Endianness,
) -> ParsedNotes {
    let mut parsed = ParsedNotes::default();
    let mut note_count = 0usize;
    for segment in segments {
        if (segment.bytes.len() as u64) < segment.size {
            parsed.problems.push(NoteError::SegmentTruncated {
                offset: segment.offset,
                size: segment.size,
                present: segment.bytes.len() as u64,
            });
        }
        // The kernel aligns core notes to 4 bytes; 8 is the only other
        // alignment the ELF note format defines.
        let align = if segment.align == 8 { 8 } else { 4 };
        let mut notes = match NoteIterator::<elf::FileHeader64<Endianness>>::new(
            endian,
            align,
            segment.bytes,
        ) {
            Ok(notes) => notes,
            Err(error) => {
                parsed.problems.push(NoteError::Walk {
                    offset: segment.offset,
                    found: describe_note_header(segment, segment.offset, endian),
                    source: error,
                });
                continue;
            }
        };
        let mut position = segment.offset;
        loop {
            let note = match notes.next() {
                Ok(Some(note)) => note,
                Ok(None) => break,
                Err(error) => {
                    parsed.problems.push(NoteError::Walk {
                        offset: position,
                        found: describe_note_header(segment, position, endian),
                        source: error,
                    });
                    break;
                }
            };
            note_count += 1;
            if note_count > MAX_NOTES {
                parsed.problems.push(NoteError::LimitReached {
                    what: "notes",
                    limit: MAX_NOTES,
                });
                return parsed;
            }
            let desc = note.desc();
            // Offsets are derived from where the slices lie inside the
            // segment, since the iterator does not report them.
            let desc_offset = segment.offset + offset_within(segment.bytes, desc);
            position = desc_offset + desc.len() as u64;
            let raw = RawNote {
                name: note.name(),
                kind: note.n_type(endian).0,
                desc,
                offset: desc_offset,
            };
            parsed.add(raw, arch, endian);
        }
    }
    parsed
}

fn offset_within(outer: &[u8], inner: &[u8]) -> u64 {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize) as u64
}

/// A note's name, type and descriptor, with the descriptor's file offset.
pub(crate) struct RawNote<'a> {
    pub name: &'a [u8],
    pub kind: u32,
    pub desc: &'a [u8],
    pub offset: u64,
}

impl ParsedNotes {
    fn add(&mut self, note: RawNote<'_>, arch: Arch, endian: Endianness) {
        let core = note.name == NOTE_NAME_CORE;
        let linux = note.name == NOTE_NAME_LINUX;
        let result = match note.kind {
            k if core && k == elf::NT_PRSTATUS.0 => self.add_thread(&note, arch, endian),
            k if core && k == elf::NT_PRPSINFO.0 => parse_prpsinfo(&note, endian)
                .map(|info| set_once(&mut self.process, info, "NT_PRPSINFO")),
            k if core && k == elf::NT_SIGINFO.0 => parse_siginfo(&note, endian)
                .map(|info| set_once(&mut self.siginfo, info, "NT_SIGINFO")),
            k if core && k == elf::NT_AUXV.0 => {
                parse_auxv(&note, endian).map(|auxv| set_once(&mut self.auxv, auxv, "NT_AUXV"))
            }
            k if core && k == elf::NT_FILE.0 => {
                let (table, problem) = files::parse_file_note(&note, endian);
                set_once(&mut self.files, table, "NT_FILE");
                problem.map_or(Ok(()), Err)
            }
            k if linux && k == elf::NT_ARM_TLS.0 => self.add_arm_tls(&note, endian),
            k if (core && k == elf::NT_FPREGSET.0) || (linux && k == elf::NT_X86_XSTATE.0) => {
                tracing::trace!(target: "gocrash::core", offset = note.offset, kind = note.kind, "skipping floating-point state note");
                Ok(())
            }
            _ => {
                tracing::trace!(
                    target: "gocrash::core",
                    offset = note.offset,
                    name = %String::from_utf8_lossy(note.name),
                    kind = note.kind,
                    "skipping note of an unread type"
                );
                Ok(())
            }
        };
        if let Err(problem) = result {
            tracing::debug!(target: "gocrash::core", %problem, "skipping damaged note");
            self.problems.push(problem);
        }
    }

    fn add_thread(
        &mut self,
        note: &RawNote<'_>,
        arch: Arch,
        endian: Endianness,
    ) -> Result<(), NoteError> {
        if self.threads.len() >= MAX_THREADS {
            // Reported once; later threads are dropped silently.
            if self.thread_limit_reached {
                return Ok(());
            }
            self.thread_limit_reached = true;
            return Err(NoteError::LimitReached {
                what: "threads",
                limit: MAX_THREADS,
            });
        }
        let thread = parse_prstatus(note, arch, endian)?;
        self.threads.push(thread);
        // `struct elf_prstatus` ends with `pr_fpvalid`, padded to 8 bytes.
        let expected = PRSTATUS_REGISTERS_OFFSET + arch.register_block_size() + 8;
        if note.desc.len() > expected {
            return Err(NoteError::TooLong {
                note: "NT_PRSTATUS",
                offset: note.offset,
                expected,
                found: note.desc.len(),
            });
        }
        Ok(())
    }

    fn add_arm_tls(&mut self, note: &RawNote<'_>, endian: Endianness) -> Result<(), NoteError> {
        let tls = ByteReader::new(note.desc, endian)
            .u64()
            .ok_or(NoteError::TooShort {
                note: "NT_ARM_TLS",
                offset: note.offset,
                expected: 8,
                found: note.desc.len(),
            })?;
        // Each thread's regset notes follow its NT_PRSTATUS.
        let Some(thread) = self.threads.last_mut() else {
            return Err(NoteError::NoThread {
                note: "NT_ARM_TLS",
                offset: note.offset,
            });
        };
        if let Registers::Arm64(registers) = &mut thread.registers {
            registers.tpidr_el0 = Some(tls);
        }
        Ok(())
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, note: &'static str) {
    if slot.is_some() {
        tracing::debug!(target: "gocrash::core", note, "ignoring a repeated process note; the first is kept");
    } else {
        *slot = Some(value);
    }
}

/// Decodes a 64-bit `struct elf_prstatus`.
pub(crate) fn parse_prstatus(
    note: &RawNote<'_>,
    arch: Arch,
    endian: Endianness,
) -> Result<Thread, NoteError> {
    let expected = PRSTATUS_REGISTERS_OFFSET + arch.register_block_size();
    let too_short = NoteError::TooShort {
        note: "NT_PRSTATUS",
        offset: note.offset,
        expected,
        found: note.desc.len(),
    };
    if note.desc.len() < expected {
        return Err(too_short);
    }
    let mut reader = ByteReader::new(note.desc, endian);
    let mut parse = || -> Option<Thread> {
        let signo = reader.i32()?;
        let code = reader.i32()?;
        let errno = reader.i32()?;
        let cursig = reader.i16()?;
        reader.skip(2)?;
        let pending = reader.u64()?;
        let blocked = reader.u64()?;
        let pid = reader.u32()?;
        reader.seek(PRSTATUS_REGISTERS_OFFSET)?;
        let registers = Registers::parse(arch, &mut reader)?;
        Some(Thread {
            id: ThreadId(pid),
            signal: ThreadSignal {
                signo,
                code,
                errno,
                cursig,
                pending,
                blocked,
            },
            registers,
            note_offset: note.offset,
        })
    };
    parse().ok_or(too_short)
}

/// Decodes a 64-bit `struct elf_prpsinfo`.
pub(crate) fn parse_prpsinfo(
    note: &RawNote<'_>,
    endian: Endianness,
) -> Result<ProcessInfo, NoteError> {
    let too_short = NoteError::TooShort {
        note: "NT_PRPSINFO",
        offset: note.offset,
        expected: PRPSINFO_SIZE,
        found: note.desc.len(),
    };
    let mut reader = ByteReader::new(note.desc, endian);
    let mut parse = || -> Option<ProcessInfo> {
        let state = reader.u8()?;
        let state_name = char::from(reader.u8()?);
        let zombie = reader.u8()? != 0;
        let nice = reader.u8()? as i8;
        reader.skip(4)?;
        let flags = reader.u64()?;
        Some(ProcessInfo {
            state,
            state_name,
            zombie,
            nice,
            flags,
            uid: reader.u32()?,
            gid: reader.u32()?,
            pid: reader.u32()?,
            ppid: reader.u32()?,
            pgrp: reader.u32()?,
            sid: reader.u32()?,
            fname: c_string(reader.bytes(16)?),
            psargs: c_string(reader.bytes(80)?).trim_end().to_owned(),
        })
    };
    parse().ok_or(too_short)
}

/// Decodes the leading fields of a 64-bit `siginfo_t`.
pub(crate) fn parse_siginfo(
    note: &RawNote<'_>,
    endian: Endianness,
) -> Result<SignalInfo, NoteError> {
    let too_short = NoteError::TooShort {
        note: "NT_SIGINFO",
        offset: note.offset,
        expected: SIGINFO_MIN_SIZE,
        found: note.desc.len(),
    };
    let mut reader = ByteReader::new(note.desc, endian);
    let mut parse = || -> Option<SignalInfo> {
        let signo = reader.i32()?;
        let errno = reader.i32()?;
        let code = reader.i32()?;
        reader.skip(4)?;
        let union_start = reader.position();
        let faulting = matches!(signo, SIGILL | SIGTRAP | SIGBUS | SIGFPE | SIGSEGV) && code > 0;
        let fault_addr = if faulting { Some(reader.u64()?) } else { None };
        reader.seek(union_start)?;
        let (sender_pid, sender_uid) = if code <= 0 {
            (Some(reader.u32()?), Some(reader.u32()?))
        } else {
            (None, None)
        };
        Some(SignalInfo {
            signo,
            errno,
            code,
            fault_addr,
            sender_pid,
            sender_uid,
        })
    };
    parse().ok_or(too_short)
}

/// Decodes the auxiliary vector, up to its `AT_NULL` terminator.
pub(crate) fn parse_auxv(note: &RawNote<'_>, endian: Endianness) -> Result<Auxv, NoteError> {
    let mut reader = ByteReader::new(note.desc, endian);
    let mut entries = Vec::new();
    while let (Some(key), Some(value)) = (reader.u64(), reader.u64()) {
        if key == AT_NULL {
            return Ok(Auxv { entries });
        }
        if entries.len() >= MAX_AUXV_ENTRIES {
            return Err(NoteError::TooMany {
                note: "NT_AUXV",
                offset: note.offset,
                count: (note.desc.len() / 16) as u64,
                limit: MAX_AUXV_ENTRIES,
            });
        }
        entries.push(AuxvEntry { key, value });
    }
    // A vector without its terminator is still worth its entries.
    tracing::debug!(target: "gocrash::core", offset = note.offset, "NT_AUXV has no AT_NULL terminator");
    Ok(Auxv { entries })
}

/// Decodes a fixed-size, NUL-padded C string field.
fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(field.get(..end).unwrap_or(field)).into_owned()
}

/// A bounds-checked reader of fixed-size integers; every read returns
/// `None` past the end instead of panicking.
pub(crate) struct ByteReader<'a> {
    bytes: &'a [u8],
    position: usize,
    endian: Endianness,
}

impl<'a> ByteReader<'a> {
    pub fn new(bytes: &'a [u8], endian: Endianness) -> ByteReader<'a> {
        ByteReader {
            bytes,
            position: 0,
            endian,
        }
    }

    pub fn position(&self) -> usize {
        self.position
    }

    pub fn seek(&mut self, position: usize) -> Option<()> {
        if position > self.bytes.len() {
            return None;
        }
        self.position = position;
        Some(())
    }

    pub fn skip(&mut self, count: usize) -> Option<()> {
        self.bytes(count).map(|_| ())
    }

    pub fn bytes(&mut self, count: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(count)?;
        let slice = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(slice)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub fn i16(&mut self) -> Option<i16> {
        let bytes = self.array::<2>()?;
        Some(match self.endian {
            Endianness::Little => i16::from_le_bytes(bytes),
            Endianness::Big => i16::from_be_bytes(bytes),
        })
    }

    pub fn u32(&mut self) -> Option<u32> {
        let bytes = self.array::<4>()?;
        Some(match self.endian {
            Endianness::Little => u32::from_le_bytes(bytes),
            Endianness::Big => u32::from_be_bytes(bytes),
        })
    }

    pub fn i32(&mut self) -> Option<i32> {
        self.u32().map(|v| v as i32)
    }

    pub fn u64(&mut self) -> Option<u64> {
        let bytes = self.array::<8>()?;
        Some(match self.endian {
            Endianness::Little => u64::from_le_bytes(bytes),
            Endianness::Big => u64::from_be_bytes(bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::test_builder as build;

    /// Splits a built note into its descriptor, as the note walker would.
    fn desc_of(note: &[u8]) -> Vec<u8> {
        let namesz = u32::from_le_bytes(note[0..4].try_into().unwrap()) as usize;
        let descsz = u32::from_le_bytes(note[4..8].try_into().unwrap()) as usize;
        let start = (12 + namesz).next_multiple_of(4);
        note[start..start + descsz].to_vec()
    }

    fn raw(kind: u32, desc: &[u8]) -> RawNote<'_> {
        RawNote {
            name: b"CORE",
            kind,
            desc,
            offset: 0x1000,
        }
    }

    #[test]
    fn siginfo_bus_error_address() {
        let desc = desc_of(&build::siginfo(SIGBUS, 2, 0x7f00_dead_b000));
        let info = parse_siginfo(&raw(0x5349_4749, &desc), Endianness::Little).unwrap();
        assert_eq!(info.signo, SIGBUS);
        assert_eq!(info.code, 2);
        assert_eq!(info.fault_addr, Some(0x7f00_dead_b000));
        assert_eq!(info.sender_pid, None);
    }

    #[test]
    fn siginfo_user_signal_has_sender() {
        let desc = desc_of(&build::siginfo(SIGSEGV, 0, (42u64 << 32) | 7));
        let info = parse_siginfo(&raw(0x5349_4749, &desc), Endianness::Little).unwrap();
        assert_eq!(info.fault_addr, None, "kill -SEGV carries no fault address");
        assert_eq!(info.sender_pid, Some(7));
        assert_eq!(info.sender_uid, Some(42));
    }

    #[test]
    fn prpsinfo_full_width_fields() {
        let fname = "fifteen-chars-x";
        let psargs = "a".repeat(80);
        let desc = desc_of(&build::prpsinfo(5, 6, fname, &psargs));
        assert_eq!(desc.len(), PRPSINFO_SIZE);
        let info = parse_prpsinfo(&raw(3, &desc), Endianness::Little).unwrap();
        assert_eq!(info.fname, fname);
        assert_eq!(info.psargs, psargs, "a field without NUL ends at its size");
        assert_eq!(info.flags, 0x40_0600);
        assert_eq!((info.pid, info.ppid, info.uid, info.gid), (5, 1, 6, 6));
    }

    #[test]
    fn auxv_without_terminator_keeps_entries() {
        let mut desc = desc_of(&build::auxv(&[(AT_ENTRY, 0x401000), (AT_PHDR, 0x400040)]));
        desc.truncate(desc.len() - 16);
        let auxv = parse_auxv(&raw(6, &desc), Endianness::Little).unwrap();
        assert_eq!(auxv.entries.len(), 2);
        assert_eq!(auxv.entry(), Some(0x401000));
        assert_eq!(auxv.phdr(), Some(0x400040));
        assert_eq!(auxv.execfn(), None);
    }

    #[test]
    fn prstatus_for_the_wrong_arch_is_too_short() {
        let desc = desc_of(
            &build::PrStatus {
                pid: 3,
                ..Default::default()
            }
            .amd64(&Default::default()),
        );
        let error = parse_prstatus(&raw(1, &desc), Arch::Arm64, Endianness::Little).unwrap_err();
        assert_eq!(
            error,
            NoteError::TooShort {
                note: "NT_PRSTATUS",
                offset: 0x1000,
                expected: 384,
                found: 336
            }
        );
        assert!(error.to_string().contains("0x1000"), "{error}");
    }

    #[test]
    fn byte_reader_stops_at_the_end() {
        let mut reader = ByteReader::new(&[1, 0, 0, 0, 2], Endianness::Little);
        assert_eq!(reader.u32(), Some(1));
        assert_eq!(reader.u32(), None);
        assert_eq!(reader.position(), 4, "a failed read does not move");
        assert_eq!(reader.u8(), Some(2));
        assert_eq!(reader.seek(6), None);
        assert_eq!(reader.skip(usize::MAX), None);
    }
}
