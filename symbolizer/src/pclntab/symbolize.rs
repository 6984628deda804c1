//! Program counter to function, file and line, with every inlined frame.
//!
//! The first lookup in a function decodes its pcfile, pcln and inline-index
//! tables once and keeps them (or the error) for every later lookup in the
//! same function. Resolving many addresses then costs a binary search over
//! the function table and one per table.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use super::error::PclntabError;
use super::format::PCDATA_INLINE_TREE_INDEX;
use super::func::{Func, FuncIndex};
use super::pcvalue::DecodedTable;
use super::Pclntab;

/// Upper bound on the inlined frames one PC expands to. The compiler's
/// inlining budget keeps real nesting far below this; a damaged tree whose
/// parentPc points back into itself would otherwise loop.
pub const MAX_INLINE_DEPTH: usize = 1024;

/// One source-level frame of a PC: the physical function, or a call the
/// compiler inlined into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'data> {
    /// The function's name, as the runtime prints it.
    pub function: Cow<'data, str>,
    /// The source file, when the pcfile table names one.
    pub file: Option<Cow<'data, str>>,
    /// The source line, when the pcln table covers the PC.
    pub line: Option<i32>,
    /// Whether this frame was inlined into its caller (the next frame).
    pub inlined: bool,
    /// funcID of the function (renumbered between Go releases).
    pub func_id: u8,
    /// Line of the function's `func` keyword (Go 1.20 on).
    pub start_line: Option<i32>,
}

/// The decoded tables of one function, kept after its first lookup.
#[derive(Debug)]
pub struct FuncTables {
    pub func: Func,
    file: DecodedTable,
    line: DecodedTable,
    /// The function has no pcfile (pcln) table. Then `file` (`line`) contains
    /// what debug/gosym decodes from the start of the pc-value region.
    file_absent: bool,
    line_absent: bool,
    inline_index: DecodedTable,
    inline_tree: Option<u64>,
}

impl FuncTables {
    fn offset(&self, pc: u64) -> u64 {
        pc.wrapping_sub(self.func.entry)
    }

    fn inline_index_at(&self, pc: u64) -> Option<i32> {
        self.inline_tree?;
        self.inline_index
            .value_at(self.offset(pc))
            .filter(|&index| index >= 0)
    }
}

pub(crate) type FuncCache = Box<[OnceLock<Result<Arc<FuncTables>, PclntabError>>]>;

impl<'data> Pclntab<'data> {
    /// Returns the decoded tables of function `index`, decoding them on
    /// first use. An error is kept and returned again on later calls.
    pub fn func_tables(&self, index: FuncIndex) -> Result<Arc<FuncTables>, PclntabError> {
        let cache = self.cache.get_or_init(|| {
            (0..self.len())
                .map(|_| OnceLock::new())
                .collect::<Vec<_>>()
                .into_boxed_slice()
        });
        match cache.get(index.0 as usize) {
            Some(slot) => slot
                .get_or_init(|| self.decode_tables(index).map(Arc::new))
                .clone(),
            None => self.decode_tables(index).map(Arc::new),
        }
    }

    fn decode_tables(&self, index: FuncIndex) -> Result<FuncTables, PclntabError> {
        let func = self.func(index)?;
        let decode = |table: Option<u32>| -> Result<DecodedTable, PclntabError> {
            match table {
                Some(offset) => match self.pcvalue_iter(&func, offset)? {
                    Some(iter) => DecodedTable::decode(iter),
                    None => Ok(DecodedTable::default()),
                },
                None => Ok(DecodedTable::default()),
            }
        };
        // A missing table is decoded from offset 0 the way debug/gosym does,
        // keeping the runs before any error, for `resolve_addr2line`.
        let decode_or_gosym = |offset: u32| -> Result<(DecodedTable, bool), PclntabError> {
            if offset != 0 {
                return decode(Some(offset)).map(|table| (table, false));
            }
            let table = match self.pcvalue_iter_at(&func, 0) {
                Ok(iter) => DecodedTable::decode_partial(iter).0,
                Err(_) => DecodedTable::default(),
            };
            Ok((table, true))
        };
        let (file, file_absent) = decode_or_gosym(func.pcfile)?;
        let (line, line_absent) = decode_or_gosym(func.pcln)?;
        let inline_tree = self.inline_tree_address(&func)?;
        let inline_index = match inline_tree {
            Some(_) => decode(self.pcdata_table(&func, PCDATA_INLINE_TREE_INDEX)?)?,
            None => DecodedTable::default(),
        };
        Ok(FuncTables {
            func,
            file,
            line,
            file_absent,
            line_absent,
            inline_index,
            inline_tree,
        })
    }

    fn frame_file_line(
        &self,
        tables: &FuncTables,
        pc: u64,
    ) -> Result<(Option<Cow<'data, str>>, Option<i32>), PclntabError> {
        let offset = tables.offset(pc);
        let file = match tables.file.value_at(offset).filter(|_| !tables.file_absent) {
            Some(index) => self.file_name(&tables.func, index)?,
            None => None,
        };
        let line = tables.line.value_at(offset).filter(|_| !tables.line_absent);
        Ok((file, line))
    }

    /// Resolves `pc` as the runtime does: the physical function's name with
    /// the file and line of the innermost inlined call (`None` for a
    /// function without tables). Returns `None` when no function contains `pc`.
    pub fn resolve(&self, pc: u64) -> Result<Option<Frame<'data>>, PclntabError> {
        let Some(index) = self.find_func(pc) else {
            return Ok(None);
        };
        let tables = self.func_tables(index)?;
        let (file, line) = self.frame_file_line(&tables, pc)?;
        Ok(Some(Frame {
            function: self.func_name(&tables.func)?,
            file,
            line,
            inlined: false,
            func_id: tables.func.func_id,
            start_line: tables.func.start_line,
        }))
    }

    /// Resolves `pc` exactly as `go tool addr2line` (debug/gosym) does.
    ///
    /// It differs from [`Pclntab::resolve`] for functions without a pcfile or
    /// pcln table, such as C code that the Go linker linked internally:
    /// debug/gosym decodes the start of the pc-value region for them and
    /// indexes the cutab without checks. A file it cannot read is `None`,
    /// which addr2line prints as an empty name.
    pub fn resolve_addr2line(&self, pc: u64) -> Result<Option<Frame<'data>>, PclntabError> {
        let Some(index) = self.find_func(pc) else {
            return Ok(None);
        };
        let tables = self.func_tables(index)?;
        let offset = tables.offset(pc);
        let file = tables
            .file
            .value_at(offset)
            .and_then(|index| self.file_name_addr2line(&tables.func, index));
        Ok(Some(Frame {
            function: self.func_name(&tables.func)?,
            file,
            line: tables.line.value_at(offset),
            inlined: false,
            func_id: tables.func.func_id,
            start_line: tables.func.start_line,
        }))
    }

    /// Resolves `pc` to every source-level frame, innermost first: each
    /// inlined call, then the physical function. Appends them to `frames`
    /// and returns whether a function contains `pc`.
    ///
    /// Each frame's file and line come from the physical function's tables,
    /// at `pc` for the innermost frame and at the parentPc of the inlined
    /// call below it for the others, as the runtime's traceback prints them.
    pub fn resolve_inlined(
        &self,
        pc: u64,
        frames: &mut Vec<Frame<'data>>,
    ) -> Result<bool, PclntabError> {
        let Some(index) = self.find_func(pc) else {
            return Ok(false);
        };
        let tables = self.func_tables(index)?;
        let mut current = pc;
        for _ in 0..MAX_INLINE_DEPTH {
            let (file, line) = self.frame_file_line(&tables, current)?;
            let Some((tree, inline_index)) =
                tables.inline_tree.zip(tables.inline_index_at(current))
            else {
                frames.push(Frame {
                    function: self.func_name(&tables.func)?,
                    file,
                    line,
                    inlined: false,
                    func_id: tables.func.func_id,
                    start_line: tables.func.start_line,
                });
                return Ok(true);
            };
            let call = self.inlined_call(&tables.func, tree, inline_index)?;
            frames.push(Frame {
                function: self.name_at(call.name_offset)?,
                file,
                line,
                inlined: true,
                func_id: call.func_id,
                start_line: call.start_line,
            });
            current = tables.func.entry.wrapping_add(u64::from(call.parent_pc));
        }
        Err(PclntabError::TooMany {
            structure: "inlined frames",
            count: MAX_INLINE_DEPTH as u64,
            limit: MAX_INLINE_DEPTH as u64,
        })
    }
}
