//! General-purpose registers of a thread as the kernel saved them in
//! NT_PRSTATUS: amd64 `user_regs_struct` and arm64 `user_pt_regs`.
//!
//! This module decodes the register block and names the registers the stack
//! walker needs (program counter, stack pointer, frame pointer, TLS base).
//! Floating-point and vector state is not decoded. The registers a signal
//! handler saved in its `ucontext` are the unwinder's business.

use super::notes::ByteReader;

/// Instruction set of a core, from the ELF header's `e_machine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// Returns the architecture for an ELF `e_machine` value, or `None` for
    /// one this crate cannot unwind.
    pub fn from_e_machine(machine: u16) -> Option<Arch> {
        match machine {
            m if m == object::elf::EM_X86_64.0 => Some(Arch::Amd64),
            m if m == object::elf::EM_AARCH64.0 => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// Returns the Go name of the architecture (`GOARCH`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Returns the size in bytes of the register block inside NT_PRSTATUS.
    pub fn register_block_size(self) -> usize {
        match self {
            Arch::Amd64 => AMD64_REGISTER_COUNT * 8,
            Arch::Arm64 => ARM64_REGISTER_COUNT * 8,
        }
    }
}

/// Number of 8-byte slots in amd64 `user_regs_struct`.
const AMD64_REGISTER_COUNT: usize = 27;

/// Number of 8-byte slots in arm64 `user_pt_regs`: x0-x30, sp, pc, pstate.
const ARM64_REGISTER_COUNT: usize = 34;

/// The amd64 `user_regs_struct`, in the kernel's field order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amd64Registers {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    /// The system call number when the thread stopped in a system call.
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    /// Base of the FS segment: the thread's TLS block, where Go keeps its g
    /// pointer.
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl Amd64Registers {
    /// Decodes a `user_regs_struct`; `None` when the block is too short.
    pub(crate) fn parse(reader: &mut ByteReader<'_>) -> Option<Amd64Registers> {
        let mut slots = [0u64; AMD64_REGISTER_COUNT];
        for slot in &mut slots {
            *slot = reader.u64()?;
        }
        let [r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs] =
            slots;
        Some(Amd64Registers {
            r15,
            r14,
            r13,
            r12,
            rbp,
            rbx,
            r11,
            r10,
            r9,
            r8,
            rax,
            rcx,
            rdx,
            rsi,
            rdi,
            orig_rax,
            rip,
            cs,
            eflags,
            rsp,
            ss,
            fs_base,
            gs_base,
            ds,
            es,
            fs,
            gs,
        })
    }
}

/// The arm64 `user_pt_regs`, plus the TLS register from NT_ARM_TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arm64Registers {
    /// x0-x30. Go keeps g in x28, x29 is the frame pointer and x30 the link
    /// register.
    pub x: [u64; 31],
    pub sp: u64,
    pub pc: u64,
    pub pstate: u64,
    /// `tpidr_el0`, from the thread's NT_ARM_TLS note when the core has one.
    pub tpidr_el0: Option<u64>,
}

impl Arm64Registers {
    /// Decodes a `user_pt_regs`; `None` when the block is too short.
    pub(crate) fn parse(reader: &mut ByteReader<'_>) -> Option<Arm64Registers> {
        let mut x = [0u64; 31];
        for slot in &mut x {
            *slot = reader.u64()?;
        }
        Some(Arm64Registers {
            x,
            sp: reader.u64()?,
            pc: reader.u64()?,
            pstate: reader.u64()?,
            tpidr_el0: None,
        })
    }

    /// Returns the frame pointer, x29.
    pub fn fp(&self) -> u64 {
        self.x[29]
    }

    /// Returns the link register, x30.
    pub fn lr(&self) -> u64 {
        self.x[30]
    }
}

/// A thread's general-purpose registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registers {
    Amd64(Amd64Registers),
    Arm64(Arm64Registers),
}

impl Registers {
    pub fn arch(&self) -> Arch {
        match self {
            Registers::Amd64(_) => Arch::Amd64,
            Registers::Arm64(_) => Arch::Arm64,
        }
    }

    /// Returns the program counter (rip or pc).
    pub fn pc(&self) -> u64 {
        match self {
            Registers::Amd64(r) => r.rip,
            Registers::Arm64(r) => r.pc,
        }
    }

    /// Returns the stack pointer (rsp or sp).
    pub fn sp(&self) -> u64 {
        match self {
            Registers::Amd64(r) => r.rsp,
            Registers::Arm64(r) => r.sp,
        }
    }

    /// Returns the frame pointer (rbp or x29).
    pub fn fp(&self) -> u64 {
        match self {
            Registers::Amd64(r) => r.rbp,
            Registers::Arm64(r) => r.fp(),
        }
    }

    /// Returns the link register on arm64; amd64 keeps return addresses on
    /// the stack.
    pub fn lr(&self) -> Option<u64> {
        match self {
            Registers::Amd64(_) => None,
            Registers::Arm64(r) => Some(r.lr()),
        }
    }

    /// Returns the thread pointer: fs_base on amd64, tpidr_el0 on arm64 when
    /// the core has NT_ARM_TLS.
    pub fn tls_base(&self) -> Option<u64> {
        match self {
            Registers::Amd64(r) => Some(r.fs_base),
            Registers::Arm64(r) => r.tpidr_el0,
        }
    }

    /// Lists every register by its conventional name, in the order `gdb`
    /// prints them (with `orig_rax` last on amd64), for reports and
    /// comparisons.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        match self {
            Registers::Amd64(r) => vec![
                ("rax", r.rax),
                ("rbx", r.rbx),
                ("rcx", r.rcx),
                ("rdx", r.rdx),
                ("rsi", r.rsi),
                ("rdi", r.rdi),
                ("rbp", r.rbp),
                ("rsp", r.rsp),
                ("r8", r.r8),
                ("r9", r.r9),
                ("r10", r.r10),
                ("r11", r.r11),
                ("r12", r.r12),
                ("r13", r.r13),
                ("r14", r.r14),
                ("r15", r.r15),
                ("rip", r.rip),
                ("eflags", r.eflags),
                ("cs", r.cs),
                ("ss", r.ss),
                ("ds", r.ds),
                ("es", r.es),
                ("fs", r.fs),
                ("gs", r.gs),
                ("fs_base", r.fs_base),
                ("gs_base", r.gs_base),
                ("orig_rax", r.orig_rax),
            ],
            Registers::Arm64(r) => {
                const NAMES: [&str; 31] = [
                    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11",
                    "x12", "x13", "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22",
                    "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30",
                ];
                let mut named: Vec<(&'static str, u64)> = NAMES.iter().copied().zip(r.x).collect();
                named.push(("sp", r.sp));
                named.push(("pc", r.pc));
                named.push(("pstate", r.pstate));
                if let Some(tls) = r.tpidr_el0 {
                    named.push(("tpidr_el0", tls));
                }
                named
            }
        }
    }

    /// Decodes the register block of NT_PRSTATUS for `arch`.
    pub(crate) fn parse(arch: Arch, reader: &mut ByteReader<'_>) -> Option<Registers> {
        match arch {
            Arch::Amd64 => Amd64Registers::parse(reader).map(Registers::Amd64),
            Arch::Arm64 => Arm64Registers::parse(reader).map(Registers::Arm64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::Endianness;

    fn slots(count: u64) -> Vec<u8> {
        (0..count)
            .flat_map(|i| (0x1000 + i).to_le_bytes())
            .collect()
    }

    #[test]
    fn amd64_block_field_order() {
        let bytes = slots(27);
        let registers = Registers::parse(
            Arch::Amd64,
            &mut ByteReader::new(&bytes, Endianness::Little),
        )
        .unwrap();
        let Registers::Amd64(r) = registers else {
            panic!("not amd64")
        };
        assert_eq!(r.r15, 0x1000);
        assert_eq!(r.rbp, 0x1004);
        assert_eq!(r.rip, 0x1010);
        assert_eq!(r.rsp, 0x1013);
        assert_eq!(r.fs_base, 0x1015);
        assert_eq!(r.gs, 0x101a);
        assert_eq!(registers.pc(), 0x1010);
        assert_eq!(registers.sp(), 0x1013);
        assert_eq!(registers.fp(), 0x1004);
        assert_eq!(registers.tls_base(), Some(0x1015));
        assert_eq!(registers.lr(), None);
        assert_eq!(registers.named().len(), 27);
    }

    #[test]
    fn arm64_block_field_order() {
        let bytes = slots(34);
        let registers = Registers::parse(
            Arch::Arm64,
            &mut ByteReader::new(&bytes, Endianness::Little),
        )
        .unwrap();
        let Registers::Arm64(r) = registers else {
            panic!("not arm64")
        };
        assert_eq!(r.x[0], 0x1000);
        assert_eq!(r.x[28], 0x101c);
        assert_eq!(registers.fp(), 0x101d);
        assert_eq!(registers.lr(), Some(0x101e));
        assert_eq!(registers.sp(), 0x101f);
        assert_eq!(registers.pc(), 0x1020);
        assert_eq!(r.pstate, 0x1021);
        assert_eq!(registers.tls_base(), None);
    }

    #[test]
    fn short_blocks_are_rejected() {
        let bytes = slots(26);
        assert!(Registers::parse(
            Arch::Amd64,
            &mut ByteReader::new(&bytes, Endianness::Little)
        )
        .is_none());
        let bytes = slots(33);
        assert!(Registers::parse(
            Arch::Arm64,
            &mut ByteReader::new(&bytes, Endianness::Little)
        )
        .is_none());
    }

    #[test]
    fn block_sizes_match_the_kernel() {
        // sizeof(elf_gregset_t): 27 and 34 longs.
        assert_eq!(Arch::Amd64.register_block_size(), 216);
        assert_eq!(Arch::Arm64.register_block_size(), 272);
    }
}
