//! A fast hasher for the maps the walk and the renderers fill once per
//! frame or per goroutine: addresses, and the short strings of function
//! names and file paths.
//!
//! The standard library's SipHash took about 7% of the run on a core with
//! 10,000 goroutines. This hasher mixes eight bytes per multiplication.
//! Its keys are seeded from the standard library's random state, so input
//! crafted to collide (addresses in a hostile core, names in a hostile
//! binary) cannot be prepared in advance.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;

/// A `HashMap` with [`FastState`].
pub type FastMap<K, V> = HashMap<K, V, FastState>;

/// A `HashSet` with [`FastState`].
pub type FastSet<T> = HashSet<T, FastState>;

/// Odd constants with their bits well mixed (the first 128 bits of the
/// fractional part of pi), mixed into the per-process seeds.
const PI: [u64; 2] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344];

/// Returns the per-process seeds, drawn once from the standard library's
/// random state.
fn seeds() -> [u64; 2] {
    static SEEDS: OnceLock<[u64; 2]> = OnceLock::new();
    *SEEDS.get_or_init(|| {
        let random = RandomState::new();
        [random.hash_one(PI[0]) | 1, random.hash_one(PI[1]) ^ PI[1]]
    })
}

/// Builds [`FastHasher`]s with the process's seeds.
#[derive(Clone, Copy, Debug)]
pub struct FastState {
    seeds: [u64; 2],
}

impl Default for FastState {
    fn default() -> FastState {
        FastState { seeds: seeds() }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher {
            state: self.seeds[1],
            multiplier: self.seeds[0],
        }
    }
}

/// Multiplies to 128 bits and folds the halves together, so every input
/// bit reaches every output bit.
#[inline]
fn fold_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a).wrapping_mul(u128::from(b));
    (full as u64) ^ ((full >> 64) as u64)
}

/// The hasher of [`FastState`]; see the module documentation.
#[derive(Clone, Debug)]
pub struct FastHasher {
    state: u64,
    multiplier: u64,
}

impl FastHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = fold_multiply(self.state ^ word, self.multiplier ^ PI[0]);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            if let Some(word) = chunk.first_chunk::<8>() {
                self.mix(u64::from_le_bytes(*word));
            }
        }
        let tail = chunks.remainder();
        let mut last = [0u8; 8];
        if let Some(start) = last.get_mut(..tail.len()) {
            start.copy_from_slice(tail);
        }
        // The length keeps "ab" + "c" apart from "a" + "bc".
        self.mix(u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 56));
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.mix(u64::from(value));
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.mix(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold_multiply(self.state, PI[1] ^ self.multiplier).rotate_left(23)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equally() {
        let state = FastState::default();
        assert_eq!(
            state.hash_one("runtime.gopark"),
            state.hash_one(String::from("runtime.gopark"))
        );
        assert_eq!(
            state.hash_one(0xc000_0a00u64),
            state.hash_one(0xc000_0a00u64)
        );
    }

    #[test]
    fn splits_of_the_same_bytes_differ() {
        let state = FastState::default();
        assert_ne!(state.hash_one(("ab", "c")), state.hash_one(("a", "bc")));
        assert_ne!(state.hash_one(""), state.hash_one("\0"));
    }

    #[test]
    fn addresses_a_page_apart_spread_over_buckets() {
        // Goroutine stacks and gs sit at multiples of a page: the low bits
        // hashbrown picks buckets with must still vary.
        let state = FastState::default();
        let buckets: HashSet<u64> = (0..4096u64)
            .map(|i| state.hash_one(0x00c0_0000_0000 + i * 0x1000) & 0xfff)
            .collect();
        assert!(buckets.len() > 2000, "{} distinct buckets", buckets.len());
    }

    #[test]
    fn maps_work_as_maps() {
        let mut map: FastMap<u64, usize> = FastMap::default();
        for i in 0..10_000u64 {
            map.insert(i * 8, i as usize);
        }
        assert_eq!(map.len(), 10_000);
        assert_eq!(map.get(&(1234 * 8)), Some(&1234));
        assert_eq!(map.get(&7), None);
    }
}
