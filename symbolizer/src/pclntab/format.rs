//! The one table of differences between the `.gopclntab` formats the Go
//! linker has written.
//!
//! Every other module in `pclntab` reads the table through a [`Format`] and
//! never asks "which Go version is this?" itself. Each entry names the Go
//! releases it holds for; the field offsets come from the linker's writer
//! (`cmd/link/internal/ld/pcln.go`), the runtime's readers
//! (`runtime/symtab.go`, `runtime/symtabinl.go`, `runtime/runtime2.go`) and
//! `debug/gosym/pclntab.go` of the Go 1.19 and 1.27 sources, and were checked
//! against binaries built by Go 1.19 to 1.27.

/// How the function table stores each function's entry PC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryEncoding {
    /// A pointer-sized absolute (link-time) address.
    Address,
    /// A `uint32` offset from the text start (`runtime.text`).
    TextOffset,
}

/// Which region an offset stored in the table is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The start of the pclntab (the header).
    Table,
    /// The function-name table named in the header.
    FuncNames,
    /// The pc-value table region named in the header.
    PcTab,
    /// The function-table region (`pclnOffset`) named in the header.
    FuncTab,
}

/// How a `pcfile` value becomes a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileTable {
    /// A global table: a `uint32` count then `uint32` offsets into the pclntab,
    /// found through a `uint32` right after the function table. Index 0 is unused.
    Global,
    /// A per-compilation-unit index: `filetab[cutab[cuOffset + index]]`.
    CompilationUnits,
}

/// How a `_func` record refers to its funcdata (the inline tree among them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuncdataEncoding {
    /// Pointer-sized absolute addresses, aligned to the pointer size by 4 bytes
    /// of padding when the address after the pcdata offsets is not aligned.
    Address,
    /// `uint32` offsets from `moduledata.gofunc` (`go:func.*`); `0xFFFFFFFF`
    /// means absent.
    GofuncOffset,
}

/// The layout of one inline-tree record (`runtime.inlinedCall`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineRecord {
    /// Record size in bytes.
    pub size: u32,
    /// Byte offset of the `uint8` funcID.
    pub func_id: u32,
    /// Byte offset of the `int32` name offset.
    pub name: u32,
    /// Byte offset of the `int32` parentPc (offset from the outer function's
    /// entry of an instruction whose position is the call site).
    pub parent_pc: u32,
    /// Byte offset of the `int32` start line, where the record has one.
    pub start_line: Option<u32>,
}

/// One `.gopclntab` format: the header, the function table, the `_func`
/// record and the inline-tree record, as one Go release range wrote them.
#[derive(Debug, PartialEq, Eq)]
pub struct Format {
    /// The Go releases that wrote this format.
    pub versions: &'static str,
    /// The first four bytes of the table, as a `uint32` in the target's byte order.
    pub magic: u32,

    /// Header word index (words are pointer-sized and start at byte 8) of
    /// each field; `None` where the format has no such word.
    pub header_nfiles: Option<u32>,
    pub header_text_start: Option<u32>,
    pub header_funcnames: Option<u32>,
    pub header_cutab: Option<u32>,
    pub header_filetab: Option<u32>,
    pub header_pctab: Option<u32>,
    pub header_functab: Option<u32>,

    /// How function-table and `_func` entries store the entry PC.
    pub entry: EntryEncoding,
    /// What a function table's record offset is relative to.
    pub func_record_base: Base,
    /// What a `_func` name offset (and an inline record's) is relative to.
    pub name_base: Base,
    /// What pcsp, pcfile, pcln and pcdata offsets are relative to.
    pub pcvalue_base: Base,
    pub file_table: FileTable,

    /// Byte offset of `cuOffset` after the entry field, where present.
    pub func_cu_offset: Option<u32>,
    /// Byte offset of `startLine` after the entry field, where present.
    pub func_start_line: Option<u32>,
    /// Byte offset of the funcID/flag/pad/nfuncdata word after the entry field.
    pub func_tail: u32,
    /// Whether the tail's second byte is the FuncFlag byte (else padding).
    pub func_has_flag: bool,
    pub funcdata: FuncdataEncoding,

    /// FUNCDATA index of the inline tree.
    pub funcdata_inline_tree: u32,
    pub inline_record: InlineRecord,
}

/// PCDATA index of the inline-tree index table; the same in every format
/// that has inline trees.
pub const PCDATA_INLINE_TREE_INDEX: u32 = 2;

/// The 20-byte record of Go 1.12 to 1.19: parent int16, funcID u8, pad,
/// file int32, line int32, name int32, parentPc int32. The file and line
/// fields are not needed: the runtime reads both from the outer function's
/// pcfile and pcln tables at the parentPc.
const INLINE_RECORD_112: InlineRecord = InlineRecord {
    size: 20,
    func_id: 2,
    name: 12,
    parent_pc: 16,
    start_line: None,
};

/// The 16-byte record of Go 1.20 on: funcID u8, 3 pad bytes, name int32,
/// parentPc int32, startLine int32.
const INLINE_RECORD_120: InlineRecord = InlineRecord {
    size: 16,
    func_id: 0,
    name: 4,
    parent_pc: 8,
    start_line: Some(12),
};

/// Every format, oldest first.
///
/// NOTE: the Go 1.2 magic was written by Go 1.2 to 1.15. The `_func` tail and
/// the inline records are read as Go 1.12 to 1.15 wrote them; tables from Go
/// 1.11 and earlier decode names, files and lines correctly but give wrong
/// funcIDs and inline frames.
pub static FORMATS: [Format; 4] = [
    Format {
        versions: "Go 1.2 to 1.15",
        magic: 0xFFFF_FFFB,
        header_nfiles: None,
        header_text_start: None,
        header_funcnames: None,
        header_cutab: None,
        header_filetab: None,
        header_pctab: None,
        header_functab: None,
        entry: EntryEncoding::Address,
        func_record_base: Base::Table,
        name_base: Base::Table,
        pcvalue_base: Base::Table,
        file_table: FileTable::Global,
        func_cu_offset: None,
        func_start_line: None,
        func_tail: 28,
        func_has_flag: false,
        funcdata: FuncdataEncoding::Address,
        funcdata_inline_tree: 4,
        inline_record: INLINE_RECORD_112,
    },
    Format {
        versions: "Go 1.16 and 1.17",
        magic: 0xFFFF_FFFA,
        header_nfiles: Some(1),
        header_text_start: None,
        header_funcnames: Some(2),
        header_cutab: Some(3),
        header_filetab: Some(4),
        header_pctab: Some(5),
        header_functab: Some(6),
        entry: EntryEncoding::Address,
        func_record_base: Base::FuncTab,
        name_base: Base::FuncNames,
        pcvalue_base: Base::PcTab,
        file_table: FileTable::CompilationUnits,
        func_cu_offset: Some(28),
        func_start_line: None,
        func_tail: 32,
        // Go 1.16 wrote padding here and 1.17 the flag byte; padding reads as
        // no flags.
        func_has_flag: true,
        funcdata: FuncdataEncoding::Address,
        funcdata_inline_tree: 3,
        inline_record: INLINE_RECORD_112,
    },
    Format {
        versions: "Go 1.18 and 1.19",
        magic: 0xFFFF_FFF0,
        header_nfiles: Some(1),
        header_text_start: Some(2),
        header_funcnames: Some(3),
        header_cutab: Some(4),
        header_filetab: Some(5),
        header_pctab: Some(6),
        header_functab: Some(7),
        entry: EntryEncoding::TextOffset,
        func_record_base: Base::FuncTab,
        name_base: Base::FuncNames,
        pcvalue_base: Base::PcTab,
        file_table: FileTable::CompilationUnits,
        func_cu_offset: Some(28),
        func_start_line: None,
        func_tail: 32,
        func_has_flag: true,
        funcdata: FuncdataEncoding::GofuncOffset,
        funcdata_inline_tree: 3,
        inline_record: INLINE_RECORD_112,
    },
    Format {
        // Go 1.26 and later write 0 in the text-start word; the reader
        // ignores a 0 there.
        versions: "Go 1.20 and later",
        magic: 0xFFFF_FFF1,
        header_nfiles: Some(1),
        header_text_start: Some(2),
        header_funcnames: Some(3),
        header_cutab: Some(4),
        header_filetab: Some(5),
        header_pctab: Some(6),
        header_functab: Some(7),
        entry: EntryEncoding::TextOffset,
        func_record_base: Base::FuncTab,
        name_base: Base::FuncNames,
        pcvalue_base: Base::PcTab,
        file_table: FileTable::CompilationUnits,
        func_cu_offset: Some(28),
        func_start_line: Some(32),
        func_tail: 36,
        func_has_flag: true,
        funcdata: FuncdataEncoding::GofuncOffset,
        funcdata_inline_tree: 3,
        inline_record: INLINE_RECORD_120,
    },
];

impl Format {
    /// Returns the format whose magic is `magic`, if any.
    pub fn from_magic(magic: u32) -> Option<&'static Format> {
        FORMATS.iter().find(|format| format.magic == magic)
    }

    /// Size in bytes of the header: the 8-byte prefix and its words.
    pub fn header_size(&self, ptr_size: u32) -> u32 {
        let words = [
            self.header_nfiles,
            self.header_text_start,
            self.header_funcnames,
            self.header_cutab,
            self.header_filetab,
            self.header_pctab,
            self.header_functab,
        ]
        .iter()
        .flatten()
        .max()
        .map_or(1, |last| last + 1);
        8 + words * ptr_size
    }

    /// Size in bytes of one function-table field.
    pub fn functab_field_size(&self, ptr_size: u32) -> u32 {
        match self.entry {
            EntryEncoding::Address => ptr_size,
            EntryEncoding::TextOffset => 4,
        }
    }

    /// Size in bytes of the `_func` entry field.
    pub fn func_entry_size(&self, ptr_size: u32) -> u32 {
        self.functab_field_size(ptr_size)
    }

    /// Size in bytes of the fixed part of a `_func` record.
    pub fn func_fixed_size(&self, ptr_size: u32) -> u32 {
        self.func_entry_size(ptr_size) + self.func_tail + 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_sizes_match_runtime_structs() {
        let sizes: Vec<u32> = FORMATS.iter().map(|f| f.func_fixed_size(8)).collect();
        assert_eq!(sizes, [40, 44, 40, 44]);
    }

    #[test]
    fn header_sizes() {
        let sizes: Vec<u32> = FORMATS.iter().map(|f| f.header_size(8)).collect();
        assert_eq!(sizes, [16, 64, 72, 72]);
    }

    #[test]
    fn magics_are_distinct_under_byte_swap() {
        for format in &FORMATS {
            assert!(Format::from_magic(format.magic.swap_bytes()).is_none());
        }
    }
}
