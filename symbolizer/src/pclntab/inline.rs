//! Inline trees: for each PC inside inlined code, which inlined calls it
//! is nested in.
//!
//! A function's tree is an array of `runtime.inlinedCall` records at its
//! `FUNCDATA_InlTree` slot, and its `PCDATA_InlTreeIndex` table gives the
//! index of the innermost record covering each PC (-1 outside inlined code).
//! The tree has no length; records are read one at a time by index. Walking
//! outwards follows each record's parentPc, an offset from the outer
//! function's entry of an instruction whose position is the call site, the
//! way the runtime's `inlineUnwinder` does.

use std::borrow::Cow;

use super::error::PclntabError;
use super::func::Func;
use super::header::Bytes;
use super::Pclntab;

/// Upper bound on the index an inline-tree index table may hold. The tree
/// of the largest functions in the Go distribution has a few thousand
/// records; a larger index is a damaged table.
pub const MAX_INLINE_TREE_INDEX: i32 = 1 << 20;

/// One record of an inline tree: a call that the compiler inlined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinedCall {
    /// funcID of the inlined function (renumbered between Go releases).
    pub func_id: u8,
    /// Offset of the inlined function's name in the function-name table.
    pub name_offset: u32,
    /// Offset from the outer function's entry of an instruction whose
    /// source position is the call site.
    pub parent_pc: u32,
    /// Line of the inlined function's `func` keyword (Go 1.20 on).
    pub start_line: Option<i32>,
}

impl<'data> Pclntab<'data> {
    /// Returns the address of `func`'s inline tree, or `None` when it has
    /// none or the table's funcdata cannot be located.
    pub fn inline_tree_address(&self, func: &Func) -> Result<Option<u64>, PclntabError> {
        self.funcdata_address(func, self.format().funcdata_inline_tree)
    }

    /// Reads record `index` of the inline tree at `tree`.
    pub fn inlined_call(
        &self,
        func: &Func,
        tree: u64,
        index: i32,
    ) -> Result<InlinedCall, PclntabError> {
        let layout = self.format().inline_record;
        let unmapped = |address| PclntabError::InlineTreeUnmapped {
            function: self
                .func_name(func)
                .map(Cow::into_owned)
                .unwrap_or_else(|_| format!("function {}", func.index.0)),
            address,
        };
        if !(0..=MAX_INLINE_TREE_INDEX).contains(&index) {
            return Err(PclntabError::TooMany {
                structure: "inline tree records",
                count: u64::from(index.unsigned_abs()),
                limit: MAX_INLINE_TREE_INDEX as u64,
            });
        }
        // Both factors are bounded (index by MAX_INLINE_TREE_INDEX, size by
        // the format table), so the product fits.
        let address = tree
            .checked_add(index as u64 * u64::from(layout.size))
            .ok_or(PclntabError::AddressOverflow { address: tree })?;
        let record = self
            .memory
            .read(address, u64::from(layout.size))
            .ok_or_else(|| unmapped(address))?;
        let bytes = Bytes {
            data: record,
            endian: self.header.endian,
        };
        // The record was read whole, so every field offset is inside it.
        let field = |offset: u32| bytes.u32_at(u64::from(offset)).unwrap_or(0);
        Ok(InlinedCall {
            func_id: bytes.u8_at(u64::from(layout.func_id)).unwrap_or(0),
            name_offset: field(layout.name),
            parent_pc: field(layout.parent_pc),
            start_line: layout.start_line.map(|offset| field(offset) as i32),
        })
    }
}
