//! Frames no pclntab covers: C code in cgo binaries, the C library, the
//! VDSO. The caller is found with DWARF call frame information when the
//! walk has it: the `.eh_frame` of the executable or shared library that
//! contains the pc, found through its `PT_GNU_EH_FRAME` segment
//! (`.eh_frame_hdr`) and read from process memory. Otherwise the frame
//! pointer is followed when it points up the stack.
//!
//! C compilers omit frame pointers at `-O2`, so the frame pointer chain
//! breaks in the C library and in cgo code. `.eh_frame` is mapped with the
//! code, so the core's memory contains it wherever the core has the
//! module's read-only pages, or its reader backs them from files. That is
//! the executable when its file is at hand, and shared libraries when the
//! core reader opens them. Each module's tables are read once and cached.
//!
//! NOTE: the arm64 register rules are written from the AArch64 DWARF
//! register numbers but were checked on amd64 cores only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, LittleEndian, Pointer, RegisterRule,
    UnwindContext, UnwindSection,
};

use super::walker::{Collector, Cursor, Walker};
use super::{unreadable, Frame, FrameSource, Regs, StopReason};
use crate::core::{Arch, MappedFile};
use crate::runtime::memory::ReadMemory;

const TRACE_TARGET: &str = "symbolizer::unwind";

/// The largest `.eh_frame` or `.eh_frame_hdr` read from memory. The C
/// library's `.eh_frame` is about 250 KiB; a large C++ library's a few MiB.
const MAX_SECTION_BYTES: u64 = 32 << 20;
/// The maximum number of program headers read from a module's ELF header.
const MAX_PROGRAM_HEADERS: u64 = 256;
/// The maximum number of modules whose tables one walk caches.
const MAX_MODULES: usize = 1024;

const PT_LOAD: u32 = 1;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;

/// Call frame information for code that no pclntab covers.
pub trait CallFrameInfo {
    /// Returns the caller's registers for the frame at `regs`, or `None`
    /// when no table covers `regs.pc` or a value the rules need is
    /// unreadable. `trapped` is true when `regs.pc` is an interrupted
    /// instruction rather than a return address.
    fn caller(
        &self,
        arch: Arch,
        memory: &dyn ReadMemory,
        regs: Regs,
        trapped: bool,
    ) -> Option<Regs>;
}

/// One module's unwind tables, copied out of memory.
struct Module {
    eh_frame: Vec<u8>,
    eh_frame_address: u64,
    hdr: Vec<u8>,
    hdr_address: u64,
}

/// The `.eh_frame` tables of the modules a core maps, found by address.
pub struct EhFrameModules {
    /// Each mapping as (start, end, load address of its file's offset 0).
    mappings: Vec<(u64, u64, u64)>,
    cache: RefCell<HashMap<u64, Option<Rc<Module>>>>,
}

impl EhFrameModules {
    /// Indexes the file mappings of a core. A module's ELF header is the
    /// mapping of file offset 0 of the same path.
    pub fn new(files: &[MappedFile]) -> EhFrameModules {
        let mut mappings = Vec::new();
        for file in files {
            let first = files
                .iter()
                .find(|other| other.path == file.path && other.file_offset == 0);
            if let Some(first) = first {
                mappings.push((file.start, file.end, first.start));
            }
        }
        EhFrameModules {
            mappings,
            cache: RefCell::new(HashMap::new()),
        }
    }

    fn module(&self, memory: &dyn ReadMemory, pc: u64) -> Option<Rc<Module>> {
        let &(_, _, base) = self
            .mappings
            .iter()
            .find(|(start, end, _)| *start <= pc && pc < *end)?;
        if let Some(cached) = self.cache.borrow().get(&base) {
            return cached.clone();
        }
        let module = read_module(memory, base).map(Rc::new);
        if module.is_none() {
            tracing::debug!(target: TRACE_TARGET, base, "no .eh_frame readable for the module");
        }
        let mut cache = self.cache.borrow_mut();
        if cache.len() < MAX_MODULES {
            cache.insert(base, module.clone());
        }
        module
    }
}

impl CallFrameInfo for EhFrameModules {
    fn caller(
        &self,
        arch: Arch,
        memory: &dyn ReadMemory,
        regs: Regs,
        trapped: bool,
    ) -> Option<Regs> {
        let module = self.module(memory, regs.pc)?;
        // A return address follows the call, which may be the last
        // instruction of the function, so look up the call itself.
        let lookup = if trapped {
            regs.pc
        } else {
            regs.pc.checked_sub(1)?
        };
        caller_registers(arch, memory, &module, regs, lookup)
    }
}

/// Reads the ELF header at `base` and the unwind sections it points to.
fn read_module(memory: &dyn ReadMemory, base: u64) -> Option<Module> {
    let mut header = [0u8; 64];
    memory.read(base, &mut header).ok()?;
    if header.get(..4)? != b"\x7fELF" || header[4] != 2 {
        return None;
    }
    let half = |at: usize| {
        Some(u64::from(u16::from_le_bytes([
            *header.get(at)?,
            *header.get(at + 1)?,
        ])))
    };
    let e_type = half(16)?;
    let phoff = u64::from_le_bytes(header.get(32..40)?.try_into().ok()?);
    let phentsize = half(54)?;
    let phnum = half(56)?.min(MAX_PROGRAM_HEADERS);
    if phentsize < 56 {
        return None;
    }
    let mut loads = Vec::new();
    let mut eh_frame_hdr = None;
    for index in 0..phnum {
        let mut entry = [0u8; 56];
        memory
            .read(
                base.checked_add(phoff)?.checked_add(index * phentsize)?,
                &mut entry,
            )
            .ok()?;
        let word = |at: usize| {
            entry
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let p_type = u32::from_le_bytes(entry.get(..4)?.try_into().ok()?);
        let (vaddr, memsz) = (word(16)?, word(40)?);
        match p_type {
            PT_LOAD => loads.push((vaddr, memsz)),
            PT_GNU_EH_FRAME => eh_frame_hdr = Some((vaddr, memsz)),
            _ => {}
        }
    }
    // A shared object (ET_DYN) is linked at 0 and loaded at `base`, an
    // executable (ET_EXEC) at its link addresses.
    const ET_DYN: u64 = 3;
    let first_load = loads.iter().map(|&(vaddr, _)| vaddr).min()?;
    let bias = if e_type == ET_DYN {
        base.checked_sub(first_load & !0xfff)?
    } else {
        0
    };
    let (hdr_vaddr, hdr_size) = eh_frame_hdr?;
    let hdr_address = bias.checked_add(hdr_vaddr)?;
    let hdr = read_bytes(memory, hdr_address, hdr_size)?;
    let bases = BaseAddresses::default().set_eh_frame_hdr(hdr_address);
    let parsed = EhFrameHdr::new(&hdr, LittleEndian).parse(&bases, 8).ok()?;
    let Pointer::Direct(eh_frame_address) = parsed.eh_frame_ptr() else {
        return None;
    };
    // `.eh_frame` has no size of its own here, so read to the end of the
    // loaded segment that contains it.
    let segment_end = loads.iter().find_map(|&(vaddr, memsz)| {
        let start = bias.checked_add(vaddr)?;
        let end = start.checked_add(memsz)?;
        (start <= eh_frame_address && eh_frame_address < end).then_some(end)
    })?;
    let eh_frame = read_bytes(memory, eh_frame_address, segment_end - eh_frame_address)?;
    Some(Module {
        eh_frame,
        eh_frame_address,
        hdr,
        hdr_address,
    })
}

fn read_bytes(memory: &dyn ReadMemory, address: u64, size: u64) -> Option<Vec<u8>> {
    let size = usize::try_from(size.min(MAX_SECTION_BYTES)).ok()?;
    let mut bytes = vec![0u8; size];
    memory.read(address, &mut bytes).ok()?;
    Some(bytes)
}

/// The DWARF register numbers the rules use: stack pointer, frame pointer,
/// return address column.
fn registers(arch: Arch) -> (gimli::Register, gimli::Register, gimli::Register) {
    match arch {
        Arch::Amd64 => (gimli::X86_64::RSP, gimli::X86_64::RBP, gimli::X86_64::RA),
        Arch::Arm64 => (gimli::AArch64::SP, gimli::AArch64::X29, gimli::AArch64::X30),
    }
}

/// Applies the unwind row for `lookup` to `regs`.
fn caller_registers(
    arch: Arch,
    memory: &dyn ReadMemory,
    module: &Module,
    regs: Regs,
    lookup: u64,
) -> Option<Regs> {
    let bases = BaseAddresses::default()
        .set_eh_frame_hdr(module.hdr_address)
        .set_eh_frame(module.eh_frame_address);
    let hdr = EhFrameHdr::new(&module.hdr, LittleEndian)
        .parse(&bases, 8)
        .ok()?;
    let eh_frame = EhFrame::new(&module.eh_frame, LittleEndian);
    let table = hdr.table()?;
    let mut context = UnwindContext::new();
    let row = table
        .unwind_info_for_address(
            &eh_frame,
            &bases,
            &mut context,
            lookup,
            EhFrame::cie_from_offset,
        )
        .ok()?;
    let (sp_register, fp_register, return_register) = registers(arch);
    let value_of = |register: gimli::Register| -> Option<u64> {
        match register {
            r if r == sp_register => Some(regs.sp),
            r if r == fp_register => Some(regs.fp),
            _ => None,
        }
    };
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => {
            value_of(*register)?.checked_add_signed(*offset)?
        }
        CfaRule::Expression(_) => return None,
    };
    // A register without a rule keeps its value, which is DWARF's default
    // rule for callee-saved registers.
    let recover = |rule: Option<RegisterRule<usize>>, current: Option<u64>| -> Option<u64> {
        match rule.unwrap_or(RegisterRule::SameValue) {
            RegisterRule::Offset(offset) => memory.read_u64(cfa.checked_add_signed(offset)?).ok(),
            RegisterRule::ValOffset(offset) => cfa.checked_add_signed(offset),
            RegisterRule::SameValue | RegisterRule::Undefined => current,
            _ => None,
        }
    };
    let pc = recover(row.register(return_register), regs.lr)?;
    let fp = recover(row.register(fp_register), Some(regs.fp)).unwrap_or(regs.fp);
    if pc == 0 || cfa <= regs.sp {
        return None;
    }
    Some(Regs {
        pc,
        sp: cfa,
        fp,
        lr: None,
    })
}

/// Adds the foreign frame at `cursor` and moves the cursor to its caller.
pub(super) fn step_foreign(
    walker: &Walker<'_>,
    cursor: &mut Cursor,
    frames: &mut Collector,
) -> Result<(), StopReason> {
    let regs = cursor.regs;
    let symbol_pc = if cursor.trapped {
        regs.pc
    } else {
        regs.pc.saturating_sub(1)
    };
    frames.push(Frame {
        pc: regs.pc,
        symbol_pc,
        trapped: cursor.trapped,
        sp: regs.sp,
        fp: None,
        entry: None,
        source: walker.funcs.foreign_frames(symbol_pc),
        found_by: cursor.found_by,
        stack: walker.context.kind_of(regs.sp),
    });
    if let Some(next) = walker
        .cfi
        .and_then(|cfi| cfi.caller(walker.arch, walker.memory, regs, cursor.trapped))
    {
        *cursor = Cursor {
            regs: next,
            found_by: FrameSource::Cfi,
            trapped: false,
            innermost: false,
        };
        return Ok(());
    }
    let fp = regs.fp;
    if fp < regs.sp || fp == 0 {
        return Err(StopReason::UnknownPc { pc: regs.pc });
    }
    let saved_fp = walker.memory.read_u64(fp).map_err(unreadable)?;
    let return_pc = walker
        .memory
        .read_u64(fp.saturating_add(8))
        .map_err(unreadable)?;
    let next_sp = fp.saturating_add(16);
    if next_sp <= regs.sp || return_pc == 0 {
        return Err(StopReason::UnknownPc { pc: regs.pc });
    }
    *cursor = Cursor {
        regs: Regs {
            pc: return_pc,
            sp: next_sp,
            fp: saved_fp,
            lr: None,
        },
        found_by: FrameSource::FramePointer,
        trapped: false,
        innermost: false,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::memory::TestMemory;

    /// The load address of the synthetic shared object, and its layout
    /// (link addresses from 0).
    const BASE: u64 = 0x10_000;
    const HDR: u64 = 0x1000;
    const EH_FRAME: u64 = 0x1100;
    const FUNCTION: u64 = 0x1800;
    const FUNCTION_SIZE: u32 = 0x100;

    fn uleb(value: u8) -> u8 {
        assert!(value < 0x80);
        value
    }

    /// Pads an entry's body with `DW_CFA_nop` so its length is a multiple of 8.
    fn entry(body: Vec<u8>) -> Vec<u8> {
        let mut body = body;
        while (body.len() + 4) % 8 != 0 {
            body.push(0);
        }
        let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
        bytes.extend(body);
        bytes
    }

    /// `.eh_frame` with one CIE (CFA = rsp + 8, return address at CFA - 8)
    /// and one FDE for [`FUNCTION`] that pushes rbp after 4 bytes
    /// (CFA = rsp + 16, rbp at CFA - 16).
    fn eh_frame() -> Vec<u8> {
        let cie = entry(vec![
            0,
            0,
            0,
            0, // CIE id
            1, // version
            b'z',
            b'R',
            0,        // augmentation
            uleb(1),  // code alignment
            0x78,     // data alignment -8
            uleb(16), // return address column
            uleb(1),  // augmentation data length
            0x1b,     // FDE pointers: pc-relative, signed 4 bytes
            0x0c,
            7,
            8, // DW_CFA_def_cfa rsp, 8
            0x80 | 16,
            1, // DW_CFA_offset ra, cfa - 8
        ]);
        let fde_start = EH_FRAME + cie.len() as u64;
        let mut body = Vec::new();
        body.extend_from_slice(&((cie.len() + 4) as u32).to_le_bytes()); // back to the CIE
        let pc_begin_field = fde_start + 8;
        body.extend_from_slice(&((FUNCTION as i64 - pc_begin_field as i64) as i32).to_le_bytes());
        body.extend_from_slice(&FUNCTION_SIZE.to_le_bytes());
        body.push(0); // augmentation data length
        body.extend_from_slice(&[0x40 | 4, 0x0e, 16, 0x80 | 6, 2]);
        let mut bytes = cie;
        bytes.extend(entry(body));
        bytes.extend_from_slice(&0u32.to_le_bytes()); // terminator
        bytes
    }

    /// `.eh_frame_hdr` pointing at [`eh_frame`] with one table entry.
    fn eh_frame_hdr(fde_offset: u64) -> Vec<u8> {
        let mut bytes = vec![1, 0x1b, 0x03, 0x3b];
        bytes.extend_from_slice(&((EH_FRAME as i64 - (HDR + 4) as i64) as i32).to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&((FUNCTION - HDR) as i32).to_le_bytes());
        bytes.extend_from_slice(&((EH_FRAME + fde_offset - HDR) as i32).to_le_bytes());
        bytes
    }

    fn elf_header() -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 2;
        header[16] = 3; // ET_DYN
        header[32..40].copy_from_slice(&64u64.to_le_bytes());
        header[54] = 56;
        header[56] = 2;
        let mut program_header = |p_type: u32, vaddr: u64, size: u64| {
            let mut entry = vec![0u8; 56];
            entry[..4].copy_from_slice(&p_type.to_le_bytes());
            entry[16..24].copy_from_slice(&vaddr.to_le_bytes());
            entry[40..48].copy_from_slice(&size.to_le_bytes());
            header.extend(entry);
        };
        program_header(PT_LOAD, 0, 0x2000);
        program_header(PT_GNU_EH_FRAME, HDR, 20);
        header
    }

    fn memory() -> TestMemory {
        let frames = eh_frame();
        let cie_len = u64::from(u32::from_le_bytes([
            frames[0], frames[1], frames[2], frames[3],
        ])) + 4;
        let mut memory = TestMemory::new();
        memory.put(BASE, &elf_header());
        memory.put(BASE + HDR, &eh_frame_hdr(cie_len));
        let mut section = frames;
        section.resize((0x2000 - EH_FRAME) as usize, 0);
        memory.put(BASE + EH_FRAME, &section);
        memory
    }

    #[test]
    fn caller_after_push_reads_saved_rbp() {
        let mut memory = memory();
        memory.put_u64(0x8000, 0x7f00_0000_0050);
        memory.put_u64(0x8008, 0x40_1234);
        let module = read_module(&memory, BASE).expect("the module's tables are readable");
        let regs = Regs {
            pc: BASE + FUNCTION + 0x10,
            sp: 0x8000,
            fp: 0x1,
            lr: None,
        };
        let caller = caller_registers(Arch::Amd64, &memory, &module, regs, regs.pc)
            .expect("the FDE covers the pc");
        assert_eq!(
            caller,
            Regs {
                pc: 0x40_1234,
                sp: 0x8010,
                fp: 0x7f00_0000_0050,
                lr: None
            }
        );
    }

    #[test]
    fn caller_at_entry_keeps_rbp() {
        let mut memory = memory();
        memory.put_u64(0x9000, 0x40_5678);
        let module = read_module(&memory, BASE).expect("the module's tables are readable");
        let regs = Regs {
            pc: BASE + FUNCTION,
            sp: 0x9000,
            fp: 0xabc,
            lr: None,
        };
        let caller = caller_registers(Arch::Amd64, &memory, &module, regs, regs.pc)
            .expect("the FDE covers the pc");
        assert_eq!(
            caller,
            Regs {
                pc: 0x40_5678,
                sp: 0x9008,
                fp: 0xabc,
                lr: None
            }
        );
    }

    #[test]
    fn pc_outside_every_fde_has_no_caller() {
        let memory = memory();
        let module = read_module(&memory, BASE).expect("the module's tables are readable");
        let regs = Regs {
            pc: BASE + FUNCTION + 0x200,
            sp: 0x9000,
            fp: 0,
            lr: None,
        };
        assert_eq!(
            caller_registers(Arch::Amd64, &memory, &module, regs, regs.pc),
            None
        );
    }

    #[test]
    fn module_without_elf_header_is_skipped() {
        let memory = TestMemory::new();
        assert!(read_module(&memory, BASE).is_none());
    }
}
