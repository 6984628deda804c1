//! Addresses of the runtime's globals, decoded from the machine code of
//! functions that use them, for binaries without a symbol table.
//!
//! A stripped Go binary keeps its pclntab, so the runtime's functions are
//! still found by name, and their code holds the addresses of the globals
//! they read and write: as RIP-relative displacements on amd64, and as
//! ADRP and ADD or load/store pairs on arm64. Decoding is deliberately
//! loose: it yields every address that could be an operand, and callers
//! keep only the candidates that pass their own checks.

use crate::core::Arch;
use crate::runtime::memory::ReadMemory;
use crate::unwind::FuncTable;

const TRACE_TARGET: &str = "symbolizer::runtime";

/// The most code bytes decoded per function; the functions read are a few
/// hundred bytes long.
const MAX_CODE_BYTES: u64 = 4096;

/// Returns the global addresses referenced by the code of the runtime
/// function `name`, in code order; empty when the function is not in the
/// pclntab or its code is not in the core.
pub fn function_targets(
    arch: Arch,
    memory: &dyn ReadMemory,
    funcs: &dyn FuncTable,
    name: &str,
) -> Vec<u64> {
    let Some(func) = funcs.func_by_name(name) else {
        return Vec::new();
    };
    let len = func.end.saturating_sub(func.entry).min(MAX_CODE_BYTES);
    let mut code = vec![0u8; len as usize];
    if let Err(error) = memory.read(func.entry, &mut code) {
        tracing::debug!(target: TRACE_TARGET, function = name, %error, "cannot read the function's code");
        return Vec::new();
    }
    match arch {
        Arch::Amd64 => amd64_rip_targets(func.entry, &code),
        Arch::Arm64 => arm64_adrp_targets(func.entry, &code),
    }
}

/// Decodes the targets of RIP-relative memory operands in amd64 code.
///
/// Rather than decode every instruction, this looks for the ModRM byte of
/// a RIP-relative operand (mod 00, r/m 101) after the opcodes the Go
/// compiler uses to load, store, compare or take the address of a global
/// (MOV 8B/89, LEA 8D, CMP 39/3B, XCHG 87, and their REX forms), whose
/// displacement is the instruction's last four bytes, and after those that
/// compare or store a one-byte immediate (CMP 80/83, MOV C6), whose
/// displacement is followed by that byte. A false match only adds a
/// candidate, which validation then rejects.
pub fn amd64_rip_targets(entry: u64, code: &[u8]) -> Vec<u64> {
    const OPCODES: [u8; 6] = [0x8b, 0x89, 0x8d, 0x39, 0x3b, 0x87];
    const IMM8_OPCODES: [u8; 3] = [0x80, 0x83, 0xc6];
    let mut targets = Vec::new();
    for index in 0..code.len() {
        let (Some(&opcode), Some(&modrm)) = (code.get(index), code.get(index + 1)) else {
            break;
        };
        let immediate = if OPCODES.contains(&opcode) {
            0
        } else if IMM8_OPCODES.contains(&opcode) {
            1
        } else {
            continue;
        };
        if modrm & 0xc7 != 0x05 {
            continue;
        }
        let Some(disp) = code.get(index + 2..index + 6) else {
            break;
        };
        let disp = i32::from_le_bytes([disp[0], disp[1], disp[2], disp[3]]);
        let next_instruction = entry.wrapping_add((index + 6 + immediate) as u64);
        let target = next_instruction.wrapping_add_signed(i64::from(disp));
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    targets
}

/// Decodes ADRP followed by ADD (immediate) or an LDR/STR of 64, 32 or 8
/// bits (unsigned offset) on the same register, in arm64 code.
pub fn arm64_adrp_targets(entry: u64, code: &[u8]) -> Vec<u64> {
    /// How many instructions after an ADRP its partner may appear.
    const WINDOW: usize = 4;
    let words: Vec<u32> = code
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut targets = Vec::new();
    for (index, &word) in words.iter().enumerate() {
        if word & 0x9f00_0000 != 0x9000_0000 {
            continue;
        }
        let register = word & 0x1f;
        let immlo = u64::from((word >> 29) & 0x3);
        let immhi = u64::from((word >> 5) & 0x7ffff);
        let pages = sign_extend((immhi << 2) | immlo, 21);
        let pc = entry.wrapping_add((index * 4) as u64);
        let page = (pc & !0xfff).wrapping_add_signed(pages << 12);
        for &next in words.iter().skip(index + 1).take(WINDOW) {
            let base = (next >> 5) & 0x1f;
            if base != register {
                continue;
            }
            let imm12 = u64::from((next >> 10) & 0xfff);
            // The immediate of a load or store counts units of its size.
            let target = match next & 0xffc0_0000 {
                0x9100_0000 | 0x3940_0000 | 0x3900_0000 => page.wrapping_add(imm12),
                0xf940_0000 | 0xf900_0000 => page.wrapping_add(imm12 * 8),
                0xb940_0000 | 0xb900_0000 => page.wrapping_add(imm12 * 4),
                _ => continue,
            };
            if !targets.contains(&target) {
                targets.push(target);
            }
            break;
        }
    }
    targets
}

fn sign_extend(value: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((value << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amd64_decodes_mov_from_global() {
        // 48 8b 05 10 00 00 00: MOVQ 0x10(IP), AX at 0x1000; next instruction 0x1007.
        let code = [0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00, 0xc3];
        assert_eq!(amd64_rip_targets(0x1000, &code), vec![0x1017]);
    }

    #[test]
    fn amd64_decodes_negative_displacement() {
        // 48 8d 0d f0 ff ff ff: LEAQ -0x10(IP), CX.
        let code = [0x48, 0x8d, 0x0d, 0xf0, 0xff, 0xff, 0xff];
        assert_eq!(amd64_rip_targets(0x2000, &code), vec![0x1ff7]);
    }

    #[test]
    fn arm64_decodes_adrp_add() {
        // ADRP x0, #0x2000 (2 pages) at 0x1004, then ADD x0, x0, #0x18.
        let adrp: u32 = 0x9000_0000 | (2 << 29);
        let add: u32 = 0x9100_0000 | (0x18 << 10);
        let mut code = Vec::new();
        code.extend_from_slice(&0xd503_201fu32.to_le_bytes());
        code.extend_from_slice(&adrp.to_le_bytes());
        code.extend_from_slice(&add.to_le_bytes());
        assert_eq!(arm64_adrp_targets(0x1000, &code), vec![0x3018]);
    }

    #[test]
    fn arm64_decodes_adrp_ldr() {
        // ADRP x1, #-1 page at 0x5000, then LDR x2, [x1, #0x10] (imm12 = 2).
        let immhi = (0x7ffff_u32) << 5;
        let immlo = 0x3u32 << 29;
        let adrp = 0x9000_0000 | immlo | immhi | 1;
        let ldr = 0xf940_0000u32 | (2 << 10) | (1 << 5) | 2;
        let mut code = Vec::new();
        code.extend_from_slice(&adrp.to_le_bytes());
        code.extend_from_slice(&ldr.to_le_bytes());
        assert_eq!(arm64_adrp_targets(0x5000, &code), vec![0x4010]);
    }

    #[test]
    fn amd64_decodes_compare_with_immediate() {
        // 80 3d 99 70 14 00 00: CMPB $0x0, 0x147099(IP) at 0x416498 (Go 1.19's
        // gcTrigger.test reading memstats.enablegc); the next instruction is at +7.
        let code = [0x80, 0x3d, 0x99, 0x70, 0x14, 0x00, 0x00];
        assert!(amd64_rip_targets(0x41_6498, &code).contains(&0x55_d538));
    }

    #[test]
    fn arm64_decodes_adrp_ldrb() {
        // ADRP x3, #1 page at 0x1000, then LDRB w4, [x3, #0x21].
        let adrp: u32 = 0x9000_0000 | (1 << 29) | 3;
        let ldrb: u32 = 0x3940_0000 | (0x21 << 10) | (3 << 5) | 4;
        let mut code = Vec::new();
        code.extend_from_slice(&adrp.to_le_bytes());
        code.extend_from_slice(&ldrb.to_le_bytes());
        assert_eq!(arm64_adrp_targets(0x1000, &code), vec![0x2021]);
    }
}
