//! The function table and `_func` records: entries, names, args size,
//! deferreturn, funcID and flags, and the pcdata and funcdata slots.

use std::borrow::Cow;

use super::error::PclntabError;
use super::format::{EntryEncoding, FuncdataEncoding};
use super::pcvalue::{self, PcValueIter};
use super::Pclntab;

/// Index of a function in the function table (and in the runtime's `ftab`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FuncIndex(pub u32);

/// FuncFlag bits (`internal/abi.FuncFlag`), present from Go 1.17.
pub mod flag {
    /// The function is the outermost frame of a stack (goexit, mstart, rt0_go):
    /// unwinding stops there and the stack is complete.
    pub const TOP_FRAME: u8 = 1;
    /// The function writes SP other than by adding a constant, so its pcsp
    /// table cannot be trusted for unwinding past it.
    pub const SP_WRITE: u8 = 2;
    /// The function is written in assembly.
    pub const ASM: u8 = 4;
}

/// Indexes of a `_func`'s pcdata slots (`internal/abi` `PCDATA_*`). The SP
/// delta table is not among them: it is the `pcsp` field.
pub mod pcdata {
    pub const UNSAFE_POINT: u32 = 0;
    pub const STACK_MAP_INDEX: u32 = 1;
    pub const INLINE_TREE_INDEX: u32 = super::super::format::PCDATA_INLINE_TREE_INDEX;
    pub const ARG_LIVE_INDEX: u32 = 3;
}

/// A decoded `_func` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Func {
    pub index: FuncIndex,
    /// Link-time address of the first instruction.
    pub entry: u64,
    /// Link-time address one past the function: the next function's entry,
    /// or the table's end PC for the last function. Padding after the code
    /// belongs to the function, as it does for the runtime and addr2line.
    pub end: u64,
    /// Offset of the record from the start of the table.
    pub record_offset: u64,
    pub name_offset: u32,
    /// Size in bytes of the arguments and results, or a negative marker the
    /// runtime uses for functions whose argument size is unknown.
    pub args: i32,
    /// Offset from the entry of the `deferreturn` call, 0 when there is none.
    pub deferreturn: u32,
    pub pcsp: u32,
    pub pcfile: u32,
    pub pcln: u32,
    pub npcdata: u32,
    /// Start of this function's compilation unit in the cutab (Go 1.16 on).
    pub cu_offset: Option<u32>,
    /// Line of the `func` keyword or TEXT directive (Go 1.20 on).
    pub start_line: Option<i32>,
    /// The funcID byte. Its values are renumbered between Go releases, so
    /// callers should recognise special functions by name.
    pub func_id: u8,
    /// FuncFlag bits, see [`flag`]; always 0 before Go 1.17.
    pub flag: u8,
    pub nfuncdata: u8,
}

impl Func {
    /// Returns whether `pc` is inside the function.
    pub fn contains(&self, pc: u64) -> bool {
        self.entry <= pc && pc < self.end
    }
}

impl<'data> Pclntab<'data> {
    /// Returns the number of functions in the table.
    pub fn len(&self) -> u32 {
        self.header.nfunc
    }

    /// Returns whether the table lists no functions.
    pub fn is_empty(&self) -> bool {
        self.header.nfunc == 0
    }

    fn functab_field(&self, slot: u64) -> Result<u64, PclntabError> {
        let size = self
            .format()
            .functab_field_size(u32::from(self.header.ptr_size));
        let offset = self.header.functab + slot * u64::from(size);
        self.bytes.uint_at(offset, size).ok_or_else(|| {
            PclntabError::out_of_range("function table", offset, u64::from(size), self.data.len())
        })
    }

    fn entry_address(&self, raw: u64) -> Result<u64, PclntabError> {
        match self.format().entry {
            EntryEncoding::Address => Ok(raw),
            EntryEncoding::TextOffset => self
                .text_start
                .checked_add(raw)
                .ok_or(PclntabError::AddressOverflow { address: raw }),
        }
    }

    /// Returns the entry PC the function table gives function `index`;
    /// `index == len()` gives the end PC of the last function.
    pub fn functab_entry(&self, index: u32) -> Result<u64, PclntabError> {
        let raw = self.functab_field(u64::from(index) * 2)?;
        self.entry_address(raw)
    }

    /// Returns the address range the function table covers.
    pub fn text_range(&self) -> Result<std::ops::Range<u64>, PclntabError> {
        if self.is_empty() {
            return Ok(0..0);
        }
        Ok(self.functab_entry(0)?..self.functab_entry(self.len())?)
    }

    /// Returns the function containing `pc`, by binary search over the
    /// function table.
    pub fn find_func(&self, pc: u64) -> Option<FuncIndex> {
        let size = self
            .format()
            .functab_field_size(u32::from(self.header.ptr_size));
        let raw_pc = match self.format().entry {
            EntryEncoding::Address => pc,
            EntryEncoding::TextOffset => pc.checked_sub(self.text_start)?,
        };
        let (mut low, mut high) = (0u32, self.len());
        let entry = |i: u32| {
            self.bytes.uint_at(
                self.header.functab + u64::from(i) * 2 * u64::from(size),
                size,
            )
        };
        let end = entry(self.len())?;
        if raw_pc >= end || raw_pc < entry(0)? {
            return None;
        }
        // Invariant: entry(low) <= raw_pc < entry(high).
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if entry(mid)? <= raw_pc {
                low = mid;
            } else {
                high = mid;
            }
        }
        Some(FuncIndex(low))
    }

    /// Decodes the `_func` record of function `index`.
    pub fn func(&self, index: FuncIndex) -> Result<Func, PclntabError> {
        let format = self.format();
        let ptr_size = u32::from(self.header.ptr_size);
        let i = u64::from(index.0);
        let entry = self.functab_entry(index.0)?;
        let end = self.functab_entry(
            index
                .0
                .checked_add(1)
                .ok_or(PclntabError::AddressOverflow { address: i })?,
        )?;
        let record_offset = self
            .header
            .base(format.func_record_base)
            .checked_add(self.functab_field(i * 2 + 1)?)
            .ok_or(PclntabError::AddressOverflow { address: i })?;
        let fixed = u64::from(format.func_fixed_size(ptr_size));
        let Some(record) = record_offset.checked_add(fixed).and_then(|end| {
            self.data
                .get(usize::try_from(record_offset).ok()?..usize::try_from(end).ok()?)
        }) else {
            return Err(PclntabError::out_of_range(
                "_func record",
                record_offset,
                fixed,
                self.data.len(),
            ));
        };
        let bytes = super::header::Bytes {
            data: record,
            endian: self.header.endian,
        };
        let entry_size = format.func_entry_size(ptr_size);
        // Every field read below lies inside `fixed`, which was bounds-checked.
        let field = |offset: u32| bytes.u32_at(u64::from(entry_size + offset)).unwrap_or(0);
        let record_entry = self.entry_address(bytes.uint_at(0, entry_size).unwrap_or(0))?;
        if record_entry != entry {
            return Err(PclntabError::EntryMismatch {
                index: index.0,
                functab: entry,
                record: record_entry,
            });
        }
        let tail = field(format.func_tail).to_le_bytes();
        let tail = match self.header.endian {
            super::header::Endian::Little => tail,
            super::header::Endian::Big => field(format.func_tail).to_be_bytes(),
        };
        Ok(Func {
            index,
            entry,
            end,
            record_offset,
            name_offset: field(0),
            args: field(4) as i32,
            deferreturn: field(8),
            pcsp: field(12),
            pcfile: field(16),
            pcln: field(20),
            npcdata: field(24),
            cu_offset: format.func_cu_offset.map(field),
            start_line: format.func_start_line.map(|offset| field(offset) as i32),
            func_id: tail[0],
            flag: if format.func_has_flag { tail[1] } else { 0 },
            nfuncdata: tail[3],
        })
    }

    /// Iterates over every function in table order.
    pub fn funcs(&self) -> impl Iterator<Item = Result<Func, PclntabError>> + '_ {
        (0..self.len()).map(move |i| self.func(FuncIndex(i)))
    }

    /// Returns the name at `name_offset` in the function-name table.
    pub fn name_at(&self, name_offset: u32) -> Result<Cow<'data, str>, PclntabError> {
        let start = self.header.base(self.format().name_base) + u64::from(name_offset);
        self.c_string(start, "function name")
    }

    /// Returns the function's name.
    pub fn func_name(&self, func: &Func) -> Result<Cow<'data, str>, PclntabError> {
        self.name_at(func.name_offset)
    }

    /// Returns a NUL-terminated string at `offset` from the table start.
    pub(crate) fn c_string(
        &self,
        offset: u64,
        structure: &'static str,
    ) -> Result<Cow<'data, str>, PclntabError> {
        let data: &'data [u8] = self.data;
        let rest = usize::try_from(offset)
            .ok()
            .and_then(|start| data.get(start..))
            .ok_or_else(|| PclntabError::out_of_range(structure, offset, 1, data.len()))?;
        let len = rest
            .iter()
            .position(|&byte| byte == 0)
            .ok_or(PclntabError::UnterminatedString { structure, offset })?;
        Ok(String::from_utf8_lossy(&rest[..len]))
    }

    /// Returns the offset from the table start of pc-value table `table_offset`.
    fn pcvalue_start(&self, table_offset: u32) -> u64 {
        self.header.base(self.format().pcvalue_base) + u64::from(table_offset)
    }

    /// Starts decoding the pc-value table at `table_offset` for `func`, or
    /// returns `None` for offset 0, which means "no table".
    pub fn pcvalue_iter(
        &self,
        func: &Func,
        table_offset: u32,
    ) -> Result<Option<PcValueIter<'data>>, PclntabError> {
        if table_offset == 0 {
            return Ok(None);
        }
        self.pcvalue_iter_at(func, table_offset).map(Some)
    }

    /// Starts decoding at `table_offset` even when it is 0. debug/gosym (and
    /// so `go tool addr2line`) does this for functions without a table,
    /// such as C functions the Go linker linked internally, and decodes
    /// whatever the pc-value region starts with.
    pub(crate) fn pcvalue_iter_at(
        &self,
        func: &Func,
        table_offset: u32,
    ) -> Result<PcValueIter<'data>, PclntabError> {
        let start = self.pcvalue_start(table_offset);
        let data: &'data [u8] = self.data;
        let bytes = usize::try_from(start)
            .ok()
            .and_then(|start| data.get(start..))
            .ok_or_else(|| PclntabError::out_of_range("pc-value table", start, 1, data.len()))?;
        Ok(PcValueIter::new(
            bytes,
            start,
            func.entry,
            self.header.quantum,
        ))
    }

    /// Returns the value of pc-value table `table_offset` at `pc`, or `None`
    /// when the table is absent or ends before `pc`.
    pub fn pcvalue(
        &self,
        func: &Func,
        table_offset: u32,
        pc: u64,
    ) -> Result<Option<i32>, PclntabError> {
        match self.pcvalue_iter(func, table_offset)? {
            Some(iter) => pcvalue::lookup(iter, pc),
            None => Ok(None),
        }
    }

    /// Returns the SP delta at `pc`: how many bytes the function has pushed
    /// below the SP it was entered with.
    pub fn pcsp(&self, func: &Func, pc: u64) -> Result<Option<i32>, PclntabError> {
        self.pcvalue(func, func.pcsp, pc)
    }

    /// Returns the pc-value table offset of pcdata slot `slot`, or `None` when
    /// the function has no such slot or the slot is empty.
    pub fn pcdata_table(&self, func: &Func, slot: u32) -> Result<Option<u32>, PclntabError> {
        if slot >= func.npcdata {
            return Ok(None);
        }
        let fixed = u64::from(
            self.format()
                .func_fixed_size(u32::from(self.header.ptr_size)),
        );
        let offset = func.record_offset + fixed + u64::from(slot) * 4;
        let value = self.bytes.u32_at(offset).ok_or_else(|| {
            PclntabError::out_of_range("_func pcdata", offset, 4, self.data.len())
        })?;
        Ok((value != 0).then_some(value))
    }

    /// Returns the value of pcdata table `slot` at `pc`.
    pub fn pcdata(&self, func: &Func, slot: u32, pc: u64) -> Result<Option<i32>, PclntabError> {
        match self.pcdata_table(func, slot)? {
            Some(table) => self.pcvalue(func, table, pc),
            None => Ok(None),
        }
    }

    /// Returns the link-time address of funcdata slot `slot`, or `None` when
    /// the function has no such slot or it is empty.
    pub fn funcdata_address(&self, func: &Func, slot: u32) -> Result<Option<u64>, PclntabError> {
        if slot >= u32::from(func.nfuncdata) {
            return Ok(None);
        }
        let ptr_size = u32::from(self.header.ptr_size);
        let fixed = u64::from(self.format().func_fixed_size(ptr_size));
        let mut offset = func.record_offset + fixed + u64::from(func.npcdata) * 4;
        match self.format().funcdata {
            FuncdataEncoding::Address => {
                // The runtime aligns the pointer array on the address, not the
                // offset; a table at an unknown address is taken as aligned.
                let address = self.vaddr.unwrap_or(0).wrapping_add(offset);
                if ptr_size == 8 && address & 4 != 0 {
                    offset += 4;
                }
                offset += u64::from(slot) * u64::from(ptr_size);
                let value = self.bytes.uint_at(offset, ptr_size).ok_or_else(|| {
                    PclntabError::out_of_range(
                        "_func funcdata",
                        offset,
                        u64::from(ptr_size),
                        self.data.len(),
                    )
                })?;
                Ok((value != 0).then_some(value))
            }
            FuncdataEncoding::GofuncOffset => {
                offset += u64::from(slot) * 4;
                let value = self.bytes.u32_at(offset).ok_or_else(|| {
                    PclntabError::out_of_range("_func funcdata", offset, 4, self.data.len())
                })?;
                if value == u32::MAX {
                    return Ok(None);
                }
                let Some(gofunc) = self.gofunc else {
                    return Ok(None);
                };
                gofunc
                    .checked_add(u64::from(value))
                    .map(Some)
                    .ok_or(PclntabError::AddressOverflow { address: gofunc })
            }
        }
    }

    /// Returns whether the table's funcdata can be located: always for
    /// formats that store addresses, and when `go:func.*` is known otherwise.
    pub fn has_funcdata(&self) -> bool {
        self.format().funcdata == FuncdataEncoding::Address || self.gofunc.is_some()
    }
}
