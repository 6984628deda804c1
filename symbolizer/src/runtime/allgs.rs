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
//!
//! The runtime adds each g to `allgs` once, so a pointer listed twice is
//! damage: repeats are dropped and counted, and a list that is mostly
//! repeats is rejected.

use serde::Serialize;

use super::coderefs::function_targets;
pub use super::coderefs::{amd64_rip_targets, arm64_adrp_targets};
use super::goroutine::read_g;
use super::layout::RuntimeLayout;
use super::memory::ReadMemory;
use crate::core::Arch;
use crate::hashing::{FastSet, FastState};
use crate::unwind::FuncTable;

const TRACE_TARGET: &str = "symbolizer::runtime";

/// The most goroutines accepted in `allgs`. Services with a million
/// goroutines exist; a larger length is treated as corrupt.
pub const MAX_GOROUTINES: u64 = 10_000_000;
/// The runtime functions whose code references `allgs`, tried in order.
const REFERENCING_FUNCTIONS: [&str; 3] =
    ["runtime.allgadd", "runtime.forEachG", "runtime.checkdead"];
/// Pointers read from `allgs` at once.
const READ_CHUNK_POINTERS: usize = 4096;

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
    /// Distinct pointers, each at its first place in the list.
    pub gs: Vec<u64>,
    pub method: AllgsMethod,
    /// Entries dropped because they repeat an earlier pointer.
    pub duplicates: usize,
    /// Entries dropped because they are nil: a damaged list, since the
    /// runtime never stores nil there.
    pub nils: usize,
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
    InvalidHeader {
        address: u64,
        pointer: u64,
        len: u64,
        cap: u64,
    },
    #[error(
        "no runtime.allgs symbol, and no address referenced by {functions} holds a valid goroutine list"
    )]
    NotFound { functions: String },
    #[error(
        "runtime.allgs at {address:#x} lists {len} pointers; of the {checked} read, only \
         {plausible} point at goroutines: the goroutine list looks wrong, and the binary may not \
         be the one that crashed"
    )]
    NotGoroutines {
        address: u64,
        len: usize,
        /// The entries read (all, or a sample of a long list).
        checked: usize,
        plausible: usize,
    },
    #[error(
        "runtime.allgs at {address:#x} is an empty list, but a running Go program always has its \
         main goroutine: the goroutine list looks wrong, and the binary may not be the one that \
         crashed"
    )]
    Empty { address: u64 },
    #[error(
        "runtime.allgs at {address:#x} lists {len} pointers but only {distinct} distinct ones: \
         the goroutine list is damaged"
    )]
    Duplicates {
        address: u64,
        len: usize,
        distinct: usize,
    },
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
        match read_slice(memory, address)
            .and_then(|listed| check_symbol_list(memory, layout, address, listed))
        {
            Ok((gs, duplicates, nils)) => {
                if duplicates > 0 || nils > 0 {
                    tracing::debug!(target: TRACE_TARGET, address, duplicates, nils, "runtime.allgs lists nil pointers or some g pointers more than once; each g is kept once");
                }
                return Ok(AllGs {
                    gs,
                    method: AllgsMethod::Symbol { address },
                    duplicates,
                    nils,
                });
            }
            Err(
                error @ (AllgsError::NotGoroutines { .. }
                | AllgsError::Empty { .. }
                | AllgsError::Duplicates { .. }),
            ) => {
                tracing::debug!(
                    target: TRACE_TARGET,
                    %error,
                    "runtime.allgs contains no usable goroutine list, so decoding the runtime's references to it"
                );
                symbol_error = Some(error);
            }
            Err(error) => {
                tracing::debug!(target: TRACE_TARGET, %error, "cannot read runtime.allgs, so decoding the runtime's references to it");
                symbol_error = Some(error);
            }
        }
    } else {
        tracing::debug!(target: TRACE_TARGET, "no runtime.allgs symbol, so decoding the runtime's references to it");
    }
    for function in REFERENCING_FUNCTIONS {
        for address in function_targets(arch, memory, funcs, function) {
            let Ok(listed) = read_slice(memory, address) else {
                continue;
            };
            let (gs, duplicates, nils) = drop_duplicates(listed);
            if duplicates + nils <= gs.len() && is_goroutine_list(memory, layout, &gs) {
                tracing::debug!(target: TRACE_TARGET, function, address, goroutines = gs.len(), duplicates, "found allgs");
                return Ok(AllGs {
                    gs,
                    method: AllgsMethod::CodeReference {
                        function: function.to_owned(),
                        address,
                    },
                    duplicates,
                    nils,
                });
            }
        }
    }
    Err(symbol_error.unwrap_or(AllgsError::NotFound {
        functions: REFERENCING_FUNCTIONS.join(", "),
    }))
}

/// Reads a `[]*g` slice header at `address` and its elements.
fn read_slice(memory: &dyn ReadMemory, address: u64) -> Result<Vec<u64>, AllgsError> {
    let unreadable = |source| AllgsError::Unreadable { address, source };
    let pointer = memory.read_u64(address).map_err(unreadable)?;
    let len = memory
        .read_u64(address.wrapping_add(8))
        .map_err(unreadable)?;
    let cap = memory
        .read_u64(address.wrapping_add(16))
        .map_err(unreadable)?;
    if len > cap || cap > MAX_GOROUTINES || (len > 0 && pointer == 0) {
        return Err(AllgsError::InvalidHeader {
            address,
            pointer,
            len,
            cap,
        });
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
        memory
            .read(at, bytes)
            .map_err(|source| AllgsError::Unreadable {
                address: at,
                source,
            })?;
        gs.extend(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        );
        done += count;
    }
    Ok(gs)
}

/// Returns the distinct non-nil pointers of `listed` in their first order,
/// how many entries repeated an earlier one, and how many were nil.
fn drop_duplicates(listed: Vec<u64>) -> (Vec<u64>, usize, usize) {
    let len = listed.len();
    let mut seen = FastSet::with_capacity_and_hasher(len, FastState::default());
    let mut nils = 0;
    let gs: Vec<u64> = listed
        .into_iter()
        .filter(|&g| {
            if g == 0 {
                nils += 1;
                return false;
            }
            seen.insert(g)
        })
        .collect();
    let duplicates = len - nils - gs.len();
    (gs, duplicates, nils)
}

/// Checks a list found at the `runtime.allgs` symbol and returns its
/// distinct pointers with the count of repeats. The list must not be empty,
/// at most half of it may repeat earlier entries, and at least half of the
/// distinct entries must be plausible gs. A few damaged gs in a real list
/// are kept (and reported one by one), while the bytes at the symbol of
/// another build's binary are rejected.
fn check_symbol_list(
    memory: &dyn ReadMemory,
    layout: &RuntimeLayout,
    address: u64,
    listed: Vec<u64>,
) -> Result<(Vec<u64>, usize, usize), AllgsError> {
    let len = listed.len();
    let (gs, duplicates, nils) = drop_duplicates(listed);
    // A running program always has its main goroutine.
    if gs.is_empty() {
        return Err(AllgsError::Empty { address });
    }
    if duplicates > gs.len() {
        return Err(AllgsError::Duplicates {
            address,
            len,
            distinct: gs.len(),
        });
    }
    let checked = sample(&gs);
    let plausible = checked
        .iter()
        .filter(|&&g| read_g(memory, layout, g).is_ok_and(|g| g.is_plausible()))
        .count();
    if plausible * 2 < checked.len() {
        return Err(AllgsError::NotGoroutines {
            address,
            len,
            checked: checked.len(),
            plausible,
        });
    }
    Ok((gs, duplicates, nils))
}

/// Checks that `gs` looks like the runtime's goroutine list: its first
/// entry is the main goroutine (goid 1, the first the runtime creates), and
/// at least 90% of the entries are readable, plausible gs with distinct
/// goids. The other globals `allgadd` references fail this by far, while a
/// real list with a few damaged gs passes.
fn is_goroutine_list(memory: &dyn ReadMemory, layout: &RuntimeLayout, gs: &[u64]) -> bool {
    let Some(&first) = gs.first() else {
        return false;
    };
    if !read_g(memory, layout, first).is_ok_and(|g| g.is_plausible() && g.goid == 1) {
        return false;
    }
    let checked = sample(gs);
    let mut goids = FastSet::default();
    let mut good = 0usize;
    for (index, &address) in checked.iter().enumerate() {
        let Ok(g) = read_g(memory, layout, address) else {
            continue;
        };
        if g.is_plausible() && goids.insert(g.goid) {
            good += 1;
        }
        // Stop early once 10% of the list has failed.
        if (index + 1 - good) * 10 > checked.len() {
            return false;
        }
    }
    good * 10 >= checked.len() * 9
}

/// The maximum number of entries of a list the checks above read. A larger
/// list is judged by entries spread evenly over it, whose proportions match
/// the whole list's. The walk still reports each damaged g of an accepted
/// list on its own.
const MAX_CHECKED: usize = 1024;

/// Returns at most [`MAX_CHECKED`] entries of `gs`, evenly spread, the
/// first included.
fn sample(gs: &[u64]) -> Vec<u64> {
    if gs.len() <= MAX_CHECKED {
        return gs.to_vec();
    }
    (0..MAX_CHECKED)
        .filter_map(|i| gs.get(i * gs.len() / MAX_CHECKED).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_dropped_in_order() {
        let (gs, duplicates, nils) = drop_duplicates(vec![0x30, 0x10, 0x30, 0x20, 0x10, 0x30]);
        assert_eq!(nils, 0);
        assert_eq!(gs, vec![0x30, 0x10, 0x20]);
        assert_eq!(duplicates, 3);
    }

    #[test]
    fn nil_entries_are_not_repeats() {
        let (gs, duplicates, nils) = drop_duplicates(vec![0x10, 0, 0x20, 0, 0, 0x10]);
        assert_eq!(gs, vec![0x10, 0x20]);
        assert_eq!(duplicates, 1);
        assert_eq!(nils, 3);
    }

    #[test]
    fn distinct_list_is_unchanged() {
        let (gs, duplicates, _) = drop_duplicates(vec![0x10, 0x20, 0x30]);
        assert_eq!(gs, vec![0x10, 0x20, 0x30]);
        assert_eq!(duplicates, 0);
    }

    #[test]
    fn long_lists_are_checked_by_an_even_sample() {
        let short: Vec<u64> = (0..100).collect();
        assert_eq!(sample(&short), short);
        let long: Vec<u64> = (0..10_000).collect();
        let picked = sample(&long);
        assert_eq!(picked.len(), MAX_CHECKED);
        assert_eq!(picked.first(), Some(&0));
        assert!(picked.windows(2).all(|w| (9..=10).contains(&(w[1] - w[0]))));
        assert!(picked.last().is_some_and(|&last| last >= 9_980));
    }

    #[test]
    fn list_messages_explain_the_doubt() {
        let empty = AllgsError::Empty { address: 0x530c40 }.to_string();
        assert!(empty.contains("0x530c40 is an empty list"), "{empty}");
        assert!(empty.contains("the goroutine list looks wrong"), "{empty}");
        let wrong = AllgsError::NotGoroutines {
            address: 0x530c40,
            len: 5,
            checked: 5,
            plausible: 1,
        }
        .to_string();
        assert!(
            wrong.contains("lists 5 pointers; of the 5 read, only 1 point at goroutines"),
            "{wrong}"
        );
        assert!(wrong.contains("may not be the one that crashed"), "{wrong}");
        let repeated = AllgsError::Duplicates {
            address: 0x530c40,
            len: 262_144,
            distinct: 1,
        }
        .to_string();
        assert!(
            repeated.contains("lists 262144 pointers but only 1 distinct ones"),
            "{repeated}"
        );
    }
}
