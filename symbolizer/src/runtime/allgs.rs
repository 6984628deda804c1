//! Finding every goroutine: the runtime's `allgs` slice.
//!
//! `runtime.allgs` is a `[]*g` of every goroutine ever created (dead ones
//! stay, with status `_Gdead`). With a symbol table the slice header is read
//! at the `runtime.allgs` symbol.
//!
//! Stripped binaries keep their pclntab, so the runtime's functions are
//! still found by name. `runtime.allgadd` appends to `allgs` and stores
//! `allglen` and `allgptr`, so its machine code holds their addresses: as
//! RIP-relative displacements on amd64, and as ADRP+ADD or ADRP+LDR/STR
//! pairs on arm64. Every address so decoded is a candidate, and a candidate
//! is accepted as `allgs` only when its slice header (pointer, length,
//! capacity) is consistent and every element is a plausible g with a
//! distinct goid. The other globals `allgadd` touches (the lock, `allglen`,
//! `allgptr`, the `sched` struct) fail those checks. The same is tried with
//! `runtime.forEachG` and `runtime.checkdead` if `allgadd` gives nothing.

use serde::Serialize;

use super::goroutine::read_g;
use super::layout::RuntimeLayout;
use super::memory::ReadMemory;
use crate::core::Arch;
use crate::unwind::FuncTable;

const TRACE_TARGET: &str = "symbolizer::runtime";

/// The most goroutines accepted in `allgs`. Services with a million
/// goroutines exist; a larger length is treated as corrupt.
pub const MAX_GOROUTINES: u64 = 10_000_000;
/// The runtime functions whose code references `allgs`, tried in order.
const REFERENCING_FUNCTIONS: [&str; 3] = ["runtime.allgadd", "runtime.forEachG", "runtime.checkdead"];
/// Pointers read from `allgs` at once.
const READ_CHUNK_POINTERS: usize = 4096;
/// The most code bytes decoded per function; `allgadd` is about 300 bytes.
const MAX_CODE_BYTES: u64 = 4096;

/// Where a symbol of the binary is at run time.
pub trait SymbolLookup {
    /// Returns the run-time address and size of the named data symbol.
    fn symbol(&self, name: &str) -> Option<(u64, u64)>;
}

/// How the goroutine list was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AllgsMethod {
    /// The `runtime.allgs` symbol.
    Symbol { address: u64 },
    /// An address decoded from the machine code of `function`.
    CodeReference { function: String, address: u64 },
}

/// The g pointers of `allgs`, in the runtime's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AllGs {
    pub gs: Vec<u64>,
    pub method: AllgsMethod,
}

/// An error finding the goroutine list.
#[derive(Debug, thiserror::Error)]
pub enum AllgsError {
    #[error("runtime.allgs at {address:#x} is unreadable")]
    Unreadable {
        address: u64,
        #[source]
        source: super::memory::MemoryError,
    },
    #[error("runtime.allgs at {address:#x} has an invalid header: pointer {pointer:#x}, length {len}, capacity {cap}")]
    InvalidHeader { address: u64, pointer: u64, len: u64, cap: u64 },
    #[error(
        "no runtime.allgs symbol, and no address referenced by {functions} holds a valid goroutine list"
    )]
    NotFound { functions: String },
    #[error(
        "runtime.allgs at {address:#x} lists {len} pointers that are mostly not goroutines; \
         the binary may not be the one that crashed"
    )]
    NotGoroutines { address: u64, len: usize },
}

/// Finds and reads `allgs`.
pub fn find_allgs(
    arch: Arch,
    memory: &dyn ReadMemory,
    symbols: &dyn SymbolLookup,
    funcs: &dyn FuncTable,
    layout: &RuntimeLayout,
) -> Result<AllGs, AllgsError> {
    let mut symbol_error = None;
    if let Some((address, _)) = symbols.symbol("runtime.allgs") {
        match read_slice(memory, address) {
            Ok(gs) if mostly_goroutines(memory, layout, &gs) => {
                return Ok(AllGs { gs, method: AllgsMethod::Symbol { address } });
            }
            Ok(gs) => {
                tracing::warn!(
                    target: TRACE_TARGET,
                    address,
                    len = gs.len(),
                    "runtime.allgs holds no goroutine list (is the binary the one that crashed?), so decoding the runtime's references to it"
                );
                symbol_error = Some(AllgsError::NotGoroutines { address, len: gs.len() });
            }
            Err(error) => {
                tracing::warn!(target: TRACE_TARGET, %error, "cannot read runtime.allgs, so decoding the runtime's references to it");
                symbol_error = Some(error);
            }
        }
    } else {
        tracing::debug!(target: TRACE_TARGET, "no runtime.allgs symbol, so decoding the runtime's references to it");
    }
    for function in REFERENCING_FUNCTIONS {
        let Some(func) = funcs.func_by_name(function) else { continue };
        let len = func.end.saturating_sub(func.entry).min(MAX_CODE_BYTES);
        let mut code = vec![0u8; len as usize];
        if let Err(error) = memory.read(func.entry, &mut code) {
            tracing::debug!(target: TRACE_TARGET, function, %error, "cannot read the function's code");
            continue;
        }
        let candidates = match arch {
            Arch::Amd64 => amd64_rip_targets(func.entry, &code),
            Arch::Arm64 => arm64_adrp_targets(func.entry, &code),
        };
        for address in candidates {
            let Ok(gs) = read_slice(memory, address) else { continue };
            if is_goroutine_list(memory, layout, &gs) {
                tracing::debug!(target: TRACE_TARGET, function, address, goroutines = gs.len(), "found allgs");
                return Ok(AllGs { gs, method: AllgsMethod::CodeReference { function: function.to_owned(), address } });
            }
        }
    }
    Err(symbol_error.unwrap_or(AllgsError::NotFound { functions: REFERENCING_FUNCTIONS.join(", ") }))
}

/// Reads a `[]*g` slice header at `address` and its elements.
fn read_slice(memory: &dyn ReadMemory, address: u64) -> Result<Vec<u64>, AllgsError> {
    let unreadable = |source| AllgsError::Unreadable { address, source };
    let pointer = memory.read_u64(address).map_err(unreadable)?;
    let len = memory.read_u64(address.wrapping_add(8)).map_err(unreadable)?;
    let cap = memory.read_u64(address.wrapping_add(16)).map_err(unreadable)?;
    if len > cap || cap > MAX_GOROUTINES || (len > 0 && pointer == 0) {
        return Err(AllgsError::InvalidHeader { address, pointer, len, cap });
    }
    // Read in chunks, so that a corrupt length allocates no more than the
    // memory that is really there.
    let mut gs = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK_POINTERS * 8];
    let mut done = 0u64;
    while done < len {
        let count = (len - done).min(READ_CHUNK_POINTERS as u64);
        let bytes = &mut chunk[..(count * 8) as usize];
        let at = pointer.wrapping_add(done * 8);
        memory.read(at, bytes).map_err(|source| AllgsError::Unreadable { address: at, source })?;
        gs.extend(bytes.chunks_exact(8).map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])));
        done += count;
    }
    Ok(gs)
}

/// Checks a list found at the `runtime.allgs` symbol: it must not be empty
/// and at least half of its entries must be plausible gs. A few damaged gs in a real list are kept
/// (and reported one by one), while the bytes at the symbol of another
/// build's binary are rejected.
fn mostly_goroutines(memory: &dyn ReadMemory, layout: &RuntimeLayout, gs: &[u64]) -> bool {
    // A running program always has its main goroutine.
    if gs.is_empty() {
        return false;
    }
    let plausible = gs.iter().filter(|&&g| read_g(memory, layout, g).is_ok_and(|g| g.is_plausible())).count();
    plausible * 2 >= gs.len()
}

/// Checks that `gs` looks like the runtime's goroutine list: its first
/// entry is the main goroutine (goid 1, the first the runtime creates), and
/// at least 90% of the entries are readable, plausible gs with distinct
/// goids. The other globals `allgadd` references fail this by far, while a
/// real list with a few damaged gs passes.
fn is_goroutine_list(memory: &dyn ReadMemory, layout: &RuntimeLayout, gs: &[u64]) -> bool {
    let Some(&first) = gs.first() else { return false };
    if !read_g(memory, layout, first).is_ok_and(|g| g.is_plausible() && g.goid == 1) {
        return false;
    }
    let mut goids = std::collections::HashSet::new();
    let mut good = 0usize;
    for (index, &address) in gs.iter().enumerate() {
        let Ok(g) = read_g(memory, layout, address) else { continue };
        if g.is_plausible() && goids.insert(g.goid) {
            good += 1;
        }
        // Stop early once 10% of the list has failed.
        if (index + 1 - good) * 10 > gs.len() {
            return false;
        }
    }
    good * 10 >= gs.len() * 9
}

/// Decodes the targets of RIP-relative memory operands in amd64 code.
///
/// Rather than decode every instruction, this looks for the ModRM byte of
/// a RIP-relative operand (mod 00, r/m 101) after the opcodes the Go
/// compiler uses to load, store, compare or take the address of a global
/// (MOV 8B/89, LEA 8D, CMP 39/3B, XCHG 87, and their REX forms), whose
/// displacement is the instruction's last four bytes. A false match only
/// adds a candidate, which validation then rejects.
pub fn amd64_rip_targets(entry: u64, code: &[u8]) -> Vec<u64> {
    const OPCODES: [u8; 6] = [0x8b, 0x89, 0x8d, 0x39, 0x3b, 0x87];
    let mut targets = Vec::new();
    for index in 0..code.len() {
        let (Some(&opcode), Some(&modrm)) = (code.get(index), code.get(index + 1)) else { break };
        if !OPCODES.contains(&opcode) || modrm & 0xc7 != 0x05 {
            continue;
        }
        let Some(disp) = code.get(index + 2..index + 6) else { break };
        let disp = i32::from_le_bytes([disp[0], disp[1], disp[2], disp[3]]);
        let next_instruction = entry.wrapping_add((index + 6) as u64);
        let target = next_instruction.wrapping_add_signed(i64::from(disp));
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    targets
}

/// Decodes ADRP followed by ADD (immediate) or a 64-bit LDR/STR (unsigned
/// offset) on the same register, in arm64 code.
pub fn arm64_adrp_targets(entry: u64, code: &[u8]) -> Vec<u64> {
    /// How many instructions after an ADRP its partner may appear.
    const WINDOW: usize = 4;
    let words: Vec<u32> =
        code.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
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
            let target = if next & 0xffc0_0000 == 0x9100_0000 {
                page.wrapping_add(imm12)
            } else if next & 0xffc0_0000 == 0xf940_0000 || next & 0xffc0_0000 == 0xf900_0000 {
                page.wrapping_add(imm12 * 8)
            } else {
                continue;
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
}
