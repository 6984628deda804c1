//! pc-value tables: the run-length encoding that maps each PC of a function
//! to a value (SP delta, file index, line, or a pcdata value).
//!
//! A table is a sequence of (value delta, pc delta) pairs of unsigned LEB128
//! varints. The value delta is zig-zag coded; the pc delta is in units of the
//! architecture's PC quantum. Decoding starts at value -1 and the function's
//! entry, and a value applies from the previous PC up to (not including) the
//! new one. A zero value delta ends the table, except while the PC is still the
//! entry, where it is a real delta of 0 (the runtime's `step` makes the same
//! exception).

use super::error::PclntabError;

/// One run of a pc-value table: `value` holds for `start <= pc < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcRange {
    pub start: u64,
    pub end: u64,
    pub value: i32,
}

/// Decodes a pc-value table run by run.
#[derive(Debug, Clone)]
pub struct PcValueIter<'data> {
    data: &'data [u8],
    pos: usize,
    /// Offset of the table, for error messages.
    table_offset: u64,
    entry: u64,
    pc: u64,
    value: i32,
    quantum: u8,
    done: bool,
}

impl<'data> PcValueIter<'data> {
    /// Starts decoding `data` (which runs to the end of the pc-value region)
    /// for a function entered at `entry`.
    pub fn new(data: &'data [u8], table_offset: u64, entry: u64, quantum: u8) -> Self {
        PcValueIter {
            data,
            pos: 0,
            table_offset,
            entry,
            pc: entry,
            value: -1,
            quantum,
            done: false,
        }
    }

    /// Reads an unsigned LEB128 varint into 32 bits, dropping bits past the
    /// 32nd as the runtime's and debug/gosym's `readvarint` do.
    fn read_varint(&mut self) -> Result<u32, PclntabError> {
        let mut value: u32 = 0;
        let mut shift: u32 = 0;
        loop {
            let Some(&byte) = self.data.get(self.pos) else {
                return Err(self.error("table runs past the end of the pc-value region"));
            };
            self.pos += 1;
            value |= u32::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift = shift.saturating_add(7);
        }
    }

    fn error(&self, reason: &'static str) -> PclntabError {
        PclntabError::BadPcValue {
            offset: self.table_offset + self.pos as u64,
            reason,
        }
    }

    fn step(&mut self) -> Result<Option<PcRange>, PclntabError> {
        let first = self.pc == self.entry;
        let uvdelta = match self.data.get(self.pos) {
            Some(0) if !first => return Ok(None),
            _ => self.read_varint()?,
        };
        let vdelta = if uvdelta & 1 != 0 {
            !(uvdelta >> 1)
        } else {
            uvdelta >> 1
        } as i32;
        // 32-bit arithmetic, as in the runtime and debug/gosym.
        let pcdelta = u64::from(self.read_varint()?.wrapping_mul(u32::from(self.quantum)));
        let start = self.pc;
        self.pc = self
            .pc
            .checked_add(pcdelta)
            .ok_or(PclntabError::AddressOverflow { address: self.pc })?;
        self.value = self.value.wrapping_add(vdelta);
        Ok(Some(PcRange {
            start,
            end: self.pc,
            value: self.value,
        }))
    }
}

impl Iterator for PcValueIter<'_> {
    type Item = Result<PcRange, PclntabError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // Every step consumes at least two bytes, so the walk ends within
        // the region's length.
        match self.step() {
            Ok(Some(range)) => Some(Ok(range)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

/// Returns the value the table gives `target`, or `None` when the table ends
/// before reaching it (the runtime's -1).
pub fn lookup(iter: PcValueIter<'_>, target: u64) -> Result<Option<i32>, PclntabError> {
    for range in iter {
        let range = range?;
        if target < range.end {
            return Ok(Some(range.value));
        }
    }
    Ok(None)
}

/// A pc-value table decoded once into runs, for repeated lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedTable {
    /// End offset from the function entry of each run, ascending.
    ends: Vec<u32>,
    values: Vec<i32>,
}

/// Upper bound on the runs one function's table may have: a run covers at
/// least one quantum of code and a function is far smaller than 2^24 bytes
/// in practice, so more runs mean a damaged table.
const MAX_RUNS: usize = 1 << 24;

impl DecodedTable {
    /// Decodes every run of `iter`.
    pub fn decode(iter: PcValueIter<'_>) -> Result<DecodedTable, PclntabError> {
        let (table, error) = DecodedTable::decode_partial(iter);
        match error {
            Some(err) => Err(err),
            None => Ok(table),
        }
    }

    /// Decodes the runs of `iter` up to the first error, and returns them
    /// with the error. A linear lookup finds the same values for PCs before
    /// the damaged part, which is what debug/gosym returns there.
    pub fn decode_partial(iter: PcValueIter<'_>) -> (DecodedTable, Option<PclntabError>) {
        let entry = iter.entry;
        let offset = iter.table_offset;
        let mut table = DecodedTable::default();
        let mut last_end = 0u32;
        for range in iter {
            let range = match range {
                Ok(range) => range,
                Err(err) => return (table, Some(err)),
            };
            let Ok(end) = u32::try_from(range.end - entry) else {
                let reason = "run ends more than 4 GiB past the entry";
                return (table, Some(PclntabError::BadPcValue { offset, reason }));
            };
            if table.ends.len() >= MAX_RUNS {
                return (
                    table,
                    Some(PclntabError::BadPcValue {
                        offset,
                        reason: "more than 2^24 runs",
                    }),
                );
            }
            // Runs of zero length (a first pair with pc delta 0) never match a
            // lookup, so they are dropped.
            if end > last_end {
                table.ends.push(end);
                table.values.push(range.value);
                last_end = end;
            }
        }
        (table, None)
    }

    /// Returns the value at `offset` bytes past the function entry.
    pub fn value_at(&self, offset: u64) -> Option<i32> {
        let index = self.ends.partition_point(|&end| u64::from(end) <= offset);
        self.values.get(index).copied()
    }

    /// Returns each run as (start offset, end offset, value).
    pub fn runs(&self) -> impl Iterator<Item = (u32, u32, i32)> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .zip(self.values.iter().copied())
            .map(|((s, e), v)| (s, e, v))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes (value, pc-delta-in-quanta) runs the way the Go linker does.
    pub fn encode(runs: &[(i32, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut value = -1i32;
        for &(next, pc_delta) in runs {
            let delta = next.wrapping_sub(value);
            let zigzag = ((delta << 1) ^ (delta >> 31)) as u32;
            put_varint(&mut out, zigzag);
            put_varint(&mut out, pc_delta);
            value = next;
        }
        out.push(0);
        out
    }

    pub fn put_varint(out: &mut Vec<u8>, mut value: u32) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    #[test]
    fn lookup_follows_runs() {
        let table = encode(&[(10, 4), (12, 8), (11, 300)]);
        let iter = |entry| PcValueIter::new(&table, 0, entry, 1);
        assert_eq!(lookup(iter(0x1000), 0x1000).unwrap(), Some(10));
        assert_eq!(lookup(iter(0x1000), 0x1003).unwrap(), Some(10));
        assert_eq!(lookup(iter(0x1000), 0x1004).unwrap(), Some(12));
        assert_eq!(lookup(iter(0x1000), 0x100c).unwrap(), Some(11));
        assert_eq!(lookup(iter(0x1000), 0x1000 + 12 + 299).unwrap(), Some(11));
        assert_eq!(lookup(iter(0x1000), 0x1000 + 12 + 300).unwrap(), None);
    }

    #[test]
    fn quantum_scales_pc_deltas() {
        let table = encode(&[(5, 1), (6, 2)]);
        let iter = PcValueIter::new(&table, 0, 0x100, 4);
        let runs: Vec<PcRange> = iter.map(Result::unwrap).collect();
        assert_eq!(
            runs,
            [
                PcRange {
                    start: 0x100,
                    end: 0x104,
                    value: 5
                },
                PcRange {
                    start: 0x104,
                    end: 0x10c,
                    value: 6
                }
            ]
        );
    }

    #[test]
    fn zero_delta_is_allowed_while_at_entry() {
        // The first pair keeps the value at -1 (delta 0) for 4 bytes.
        let table = encode(&[(-1, 4), (3, 4)]);
        assert_eq!(table[0], 0);
        let decoded = DecodedTable::decode(PcValueIter::new(&table, 0, 0, 1)).unwrap();
        assert_eq!(decoded.value_at(0), Some(-1));
        assert_eq!(decoded.value_at(5), Some(3));
        assert_eq!(decoded.value_at(8), None);
    }

    #[test]
    fn decoded_table_agrees_with_linear_lookup() {
        let table = encode(&[(7, 3), (9, 0), (2, 5), (100, 1), (-4, 40)]);
        let decoded = DecodedTable::decode(PcValueIter::new(&table, 0, 0x40, 1)).unwrap();
        for pc in 0x40..0x40 + 60 {
            let linear = lookup(PcValueIter::new(&table, 0, 0x40, 1), pc).unwrap();
            assert_eq!(decoded.value_at(pc - 0x40), linear, "pc 0x{pc:x}");
        }
    }

    #[test]
    fn truncated_table_is_an_error() {
        let mut table = encode(&[(7, 200)]);
        table.truncate(2);
        let err = lookup(PcValueIter::new(&table, 0x30, 0, 1), 500).unwrap_err();
        assert!(
            matches!(err, PclntabError::BadPcValue { offset: 0x32, .. }),
            "{err}"
        );
    }

    #[test]
    fn overlong_varint_keeps_low_bits() {
        // Seven bytes: the bits past the 32nd are dropped, as Go drops them.
        let table = [0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x05, 0x00];
        assert_eq!(
            lookup(PcValueIter::new(&table, 0, 0, 1), 4).unwrap(),
            Some(0)
        );
    }
}
