//! Builders of ELF notes, cores and small executables for the core reader's
//! tests, following the kernel's 64-bit little-endian layouts.

use super::regs::{Amd64Registers, Arm64Registers};

pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;
pub const PAGE: u64 = 4096;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;

fn align4(bytes: &mut Vec<u8>) {
    while bytes.len() % 4 != 0 {
        bytes.push(0);
    }
}

/// Encodes one ELF note with 4-byte alignment, as cores and executables use.
pub fn note(name: &str, kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut name_bytes = name.as_bytes().to_vec();
    name_bytes.push(0);
    note_with_name(&name_bytes, kind, desc)
}

/// Encodes one ELF note whose name field is exactly `name_bytes`, padding
/// included, as the Go linker writes `Go\0\0`.
pub fn note_with_name(name_bytes: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(name_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(name_bytes);
    align4(&mut out);
    out.extend_from_slice(desc);
    align4(&mut out);
    out
}

/// The leading fields of `struct elf_prstatus` shared by every architecture.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrStatus {
    pub signo: i32,
    pub code: i32,
    pub errno: i32,
    pub cursig: i16,
    pub pending: u64,
    pub blocked: u64,
    pub pid: u32,
}

impl PrStatus {
    fn prefix(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.signo.to_le_bytes());
        out.extend_from_slice(&self.code.to_le_bytes());
        out.extend_from_slice(&self.errno.to_le_bytes());
        out.extend_from_slice(&self.cursig.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.pending.to_le_bytes());
        out.extend_from_slice(&self.blocked.to_le_bytes());
        for id in [self.pid, 1, self.pid, self.pid] {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out.resize(112, 0); // four struct timeval
        out
    }

    /// Builds an amd64 NT_PRSTATUS note (descriptor of 336 bytes).
    pub fn amd64(&self, r: &Amd64Registers) -> Vec<u8> {
        let mut desc = self.prefix();
        let slots = [
            r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx,
            r.rdx, r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base,
            r.gs_base, r.ds, r.es, r.fs, r.gs,
        ];
        for slot in slots {
            desc.extend_from_slice(&slot.to_le_bytes());
        }
        desc.extend_from_slice(&1u32.to_le_bytes()); // pr_fpvalid
        desc.resize(336, 0);
        note("CORE", 1, &desc)
    }

    /// Builds an arm64 NT_PRSTATUS note (descriptor of 392 bytes).
    pub fn arm64(&self, r: &Arm64Registers) -> Vec<u8> {
        let mut desc = self.prefix();
        for slot in r.x.iter().chain([r.sp, r.pc, r.pstate].iter()) {
            desc.extend_from_slice(&slot.to_le_bytes());
        }
        desc.extend_from_slice(&1u32.to_le_bytes());
        desc.resize(392, 0);
        note("CORE", 1, &desc)
    }
}

/// Builds an NT_PRPSINFO note.
pub fn prpsinfo(pid: u32, uid: u32, fname: &str, psargs: &str) -> Vec<u8> {
    let mut desc = vec![0u8, b'R', 0, 0, 0, 0, 0, 0];
    desc.extend_from_slice(&0x40_0600u64.to_le_bytes());
    for value in [uid, uid, pid, 1, pid, pid] {
        desc.extend_from_slice(&value.to_le_bytes());
    }
    let mut field = |text: &str, size: usize| {
        let mut bytes = text.as_bytes().to_vec();
        bytes.resize(size, 0);
        desc.extend_from_slice(&bytes);
    };
    field(fname, 16);
    field(psargs, 80);
    note("CORE", 3, &desc)
}

/// Builds an NT_SIGINFO note; `word` fills the first 8 bytes of the union
/// (`si_addr`, or `si_pid` and `si_uid`).
pub fn siginfo(signo: i32, code: i32, word: u64) -> Vec<u8> {
    let mut desc = Vec::new();
    desc.extend_from_slice(&signo.to_le_bytes());
    desc.extend_from_slice(&0i32.to_le_bytes());
    desc.extend_from_slice(&code.to_le_bytes());
    desc.extend_from_slice(&0i32.to_le_bytes());
    desc.extend_from_slice(&word.to_le_bytes());
    desc.resize(128, 0);
    note("CORE", 0x5349_4749, &desc)
}

/// Builds an NT_AUXV note, appending the `AT_NULL` terminator.
pub fn auxv(entries: &[(u64, u64)]) -> Vec<u8> {
    let mut desc = Vec::new();
    for (key, value) in entries.iter().chain([(0, 0)].iter()) {
        desc.extend_from_slice(&key.to_le_bytes());
        desc.extend_from_slice(&value.to_le_bytes());
    }
    note("CORE", 6, &desc)
}

/// Builds the descriptor of an NT_FILE note.
pub struct FileNote {
    page_size: u64,
    entries: Vec<(u64, u64, u64, String)>,
}

impl FileNote {
    pub fn new(page_size: u64) -> FileNote {
        FileNote {
            page_size,
            entries: Vec::new(),
        }
    }

    pub fn entry(mut self, start: u64, end: u64, page_offset: u64, path: &str) -> FileNote {
        self.entries
            .push((start, end, page_offset, path.to_owned()));
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut desc = Vec::new();
        desc.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        desc.extend_from_slice(&self.page_size.to_le_bytes());
        for (start, end, page, _) in &self.entries {
            for value in [start, end, page] {
                desc.extend_from_slice(&value.to_le_bytes());
            }
        }
        for (_, _, _, path) in &self.entries {
            desc.extend_from_slice(path.as_bytes());
            desc.push(0);
        }
        desc
    }

    pub fn note(&self) -> Vec<u8> {
        note("CORE", 0x4649_4c45, &self.build())
    }
}

/// A PT_LOAD segment of a built core: `dumped` bytes, then `memsz` minus
/// their length left out as the kernel does for unmodified file pages.
pub struct Load {
    pub vaddr: u64,
    pub memsz: u64,
    pub dumped: Vec<u8>,
    pub flags: u32,
}

/// Builds a whole ELF core: header, program headers, one note segment, and
/// page-aligned segment contents.
pub struct CoreBuilder {
    pub machine: u16,
    pub notes: Vec<u8>,
    pub loads: Vec<Load>,
}

impl CoreBuilder {
    pub fn new(machine: u16) -> CoreBuilder {
        CoreBuilder {
            machine,
            notes: Vec::new(),
            loads: Vec::new(),
        }
    }

    pub fn note(mut self, note: Vec<u8>) -> CoreBuilder {
        self.notes.extend_from_slice(&note);
        self
    }

    pub fn load(mut self, vaddr: u64, memsz: u64, dumped: Vec<u8>) -> CoreBuilder {
        self.loads.push(Load {
            vaddr,
            memsz,
            dumped,
            flags: 5,
        });
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let phnum = 1 + self.loads.len();
        let notes_offset = 64 + 56 * phnum as u64;
        let mut data_offset = (notes_offset + self.notes.len() as u64).next_multiple_of(PAGE);

        let mut phdrs = Vec::new();
        phdrs.extend_from_slice(&program_header(
            PT_NOTE,
            0,
            notes_offset,
            0,
            self.notes.len() as u64,
            0,
            4,
        ));
        let mut offsets = Vec::new();
        for load in &self.loads {
            offsets.push(data_offset);
            let size = load.dumped.len() as u64;
            phdrs.extend_from_slice(&program_header(
                PT_LOAD,
                load.flags,
                data_offset,
                load.vaddr,
                size,
                load.memsz,
                PAGE,
            ));
            data_offset = (data_offset + size).next_multiple_of(PAGE);
        }

        let mut out = elf_header(4, self.machine, 0, phnum as u16);
        out.extend_from_slice(&phdrs);
        out.extend_from_slice(&self.notes);
        for (load, offset) in self.loads.iter().zip(offsets) {
            out.resize(offset as usize, 0);
            out.extend_from_slice(&load.dumped);
        }
        out
    }
}

/// Encodes a 64-bit little-endian ELF header with program headers at 64.
pub fn elf_header(elf_type: u16, machine: u16, entry: u64, phnum: u16) -> Vec<u8> {
    let mut out = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    out.resize(16, 0);
    out.extend_from_slice(&elf_type.to_le_bytes());
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    out.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    out.extend_from_slice(&phnum.to_le_bytes());
    out.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    out
}

pub fn program_header(
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&p_type.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    for value in [offset, vaddr, vaddr, filesz, memsz, align] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// Builds a small executable: one PT_LOAD at `vaddr` covering the whole
/// file, a PT_NOTE with a Go build ID at offset 0x100, and `text` at offset
/// `PAGE`. Returns the file's bytes.
pub fn executable(
    elf_type: u16,
    vaddr: u64,
    entry: u64,
    go_build_id: &str,
    text: &[u8],
) -> Vec<u8> {
    let build_id_note = note_with_name(b"Go\0\0", 4, go_build_id.as_bytes());
    let file_len = PAGE + text.len() as u64;
    let mut out = elf_header(elf_type, EM_X86_64, entry, 2);
    out.extend_from_slice(&program_header(
        PT_LOAD, 5, 0, vaddr, file_len, file_len, PAGE,
    ));
    out.extend_from_slice(&program_header(
        PT_NOTE,
        4,
        0x100,
        vaddr + 0x100,
        build_id_note.len() as u64,
        build_id_note.len() as u64,
        4,
    ));
    out.resize(0x100, 0);
    out.extend_from_slice(&build_id_note);
    out.resize(PAGE as usize, 0);
    out.extend_from_slice(text);
    out
}
