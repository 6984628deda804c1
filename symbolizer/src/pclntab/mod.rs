//! The Go linker's `.gopclntab`: function table, `_func` records, pc-value
//! tables, file tables and inline trees, in every format the linker has
//! written (Go 1.2, 1.16, 1.18 and 1.20 headers).
//!
//! A [`Pclntab`] borrows the table's bytes and decodes lazily: parsing reads
//! the header only; a function's record and tables are decoded when first
//! asked for, and the decoded tables are cached. The per-format differences
//! live in [`format::FORMATS`]. Finding the table inside an ELF file, and the
//! text start and `go:func.*` address it needs, is [`crate::binary`]'s work.

pub mod error;
mod files;
pub mod format;
pub mod func;
pub mod header;
pub mod inline;
pub mod memory;
pub mod moduledata;
pub mod pcvalue;
pub mod symbolize;

use std::sync::OnceLock;

pub use error::PclntabError;
pub use format::Format;
pub use func::{Func, FuncIndex};
pub use header::Header;
pub use inline::InlinedCall;
pub use memory::{Memory, Segment};
pub use symbolize::{Frame, FuncTables};

use header::Bytes;

/// How many functions [`Pclntab::validate`] checks, spread over the table.
const VALIDATE_SAMPLES: u32 = 64;

/// A decoded `.gopclntab` header and lazy access to everything behind it.
pub struct Pclntab<'data> {
    data: &'data [u8],
    bytes: Bytes<'data>,
    header: Header,
    /// Link-time address of the table, when known.
    vaddr: Option<u64>,
    /// The address function-table offsets are relative to (Go 1.18 on).
    text_start: u64,
    /// Link-time address of `go:func.*`, which Go 1.18 and later funcdata
    /// offsets are relative to.
    gofunc: Option<u64>,
    /// The file's loaded segments, for funcdata outside the table.
    memory: Memory<'data>,
    cache: OnceLock<symbolize::FuncCache>,
}

impl std::fmt::Debug for Pclntab<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pclntab")
            .field("format", &self.header.format.versions)
            .field("len", &self.data.len())
            .field("nfunc", &self.header.nfunc)
            .field("vaddr", &self.vaddr)
            .field("text_start", &self.text_start)
            .field("gofunc", &self.gofunc)
            .finish()
    }
}

impl<'data> Pclntab<'data> {
    /// Parses the header at the start of `data`, which runs from the header
    /// to the end of the table (or beyond: the end need not be exact).
    ///
    /// The text start defaults to the header's value (Go 1.18 to 1.25) or
    /// 0; callers that know `runtime.text` set it with
    /// [`Pclntab::set_text_start`].
    pub fn parse(data: &'data [u8]) -> Result<Pclntab<'data>, PclntabError> {
        let header = Header::parse(data)?;
        Ok(Pclntab {
            data,
            bytes: Bytes {
                data,
                endian: header.endian,
            },
            text_start: header.text_start.unwrap_or(0),
            header,
            vaddr: None,
            gofunc: None,
            memory: Memory::default(),
            cache: OnceLock::new(),
        })
    }

    /// Sets the text start that Go 1.18 and later function entries are
    /// offsets from, dropping decoded tables.
    pub fn set_text_start(&mut self, text_start: u64) {
        self.text_start = text_start;
        self.cache = OnceLock::new();
    }

    /// Sets the table's link-time address (needed to align Go 1.2 to 1.17
    /// funcdata as the runtime does).
    pub fn set_vaddr(&mut self, vaddr: u64) {
        self.vaddr = Some(vaddr);
    }

    /// Sets the address of `go:func.*` (`moduledata.gofunc`), needed for the
    /// inline trees of Go 1.18 and later, dropping decoded tables.
    pub fn set_gofunc(&mut self, gofunc: u64) {
        self.gofunc = Some(gofunc);
        self.cache = OnceLock::new();
    }

    /// Sets the loaded segments funcdata addresses are read from.
    pub fn set_memory(&mut self, memory: Memory<'data>) {
        self.memory = memory;
        self.cache = OnceLock::new();
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn format(&self) -> &'static Format {
        self.header.format
    }

    /// Returns the table's bytes.
    pub fn data(&self) -> &'data [u8] {
        self.data
    }

    pub fn vaddr(&self) -> Option<u64> {
        self.vaddr
    }

    pub fn text_start(&self) -> u64 {
        self.text_start
    }

    pub fn gofunc(&self) -> Option<u64> {
        self.gofunc
    }

    /// PC quantum: 1 on amd64, 4 on arm64.
    pub fn quantum(&self) -> u8 {
        self.header.quantum
    }

    pub fn ptr_size(&self) -> u8 {
        self.header.ptr_size
    }

    /// Checks every function and file entry, where a damaged header offset
    /// shows. Each function's record must repeat its function-table entry.
    /// In a Go 1.16 and later table, each function name must start a string
    /// of the name table, and each compilation unit entry must name a string
    /// of the file table or no file. Those two tables may contain no control
    /// bytes.
    pub fn check_tables(&self) -> Result<(), PclntabError> {
        let header = &self.header;
        let units = header.file_table_is_per_unit();
        self.check_functions(1, |func| {
            if !units {
                return Ok(());
            }
            let start = header.funcnames + u64::from(func.name_offset);
            self.check_string_start(start, header.funcnames, header.cutab, "function name")
        })?;
        if units {
            // A newline in a name would let a crafted binary add lines to
            // every output that prints it.
            for (structure, start, end) in [
                ("function name table", header.funcnames, header.cutab),
                ("file name table", header.filetab, header.pctab),
            ] {
                let table = &self.data[start as usize..end as usize];
                if let Some(at) = table
                    .iter()
                    .position(|&byte| byte != 0 && (byte < 0x20 || byte == 0x7f))
                {
                    return Err(PclntabError::ControlByte {
                        structure,
                        offset: start + at as u64,
                        byte: table[at],
                    });
                }
            }
            let mut slot = header.cutab;
            while slot + 4 <= header.filetab {
                let name = self.bytes.u32_at(slot).ok_or_else(|| {
                    PclntabError::out_of_range("compilation unit table", slot, 4, self.data.len())
                })?;
                if name != files::NO_FILE {
                    let start = header.filetab + u64::from(name);
                    self.check_string_start(start, header.filetab, header.pctab, "file name")?;
                }
                slot += 4;
            }
        }
        Ok(())
    }

    /// Checks that `start` lies in the string table `table..end` and begins
    /// a string: at the table's start or right after a NUL.
    fn check_string_start(
        &self,
        start: u64,
        table: u64,
        end: u64,
        structure: &'static str,
    ) -> Result<(), PclntabError> {
        if start >= end {
            return Err(PclntabError::out_of_range(
                structure,
                start,
                1,
                end as usize,
            ));
        }
        // `end` lies inside the table's bytes, as the header check made sure.
        if start > table && self.data[start as usize - 1] != 0 {
            return Err(PclntabError::NotStringStart {
                structure,
                offset: start,
            });
        }
        Ok(())
    }

    /// Checks the structure the runtime's `moduledataverify1` checks on a
    /// sample of functions: entries ascend, each record's entry equals its
    /// function-table entry, names are terminated strings. Used to accept a
    /// table found by searching for its magic.
    pub fn validate(&self) -> Result<(), PclntabError> {
        let step = (self.len() / VALIDATE_SAMPLES).max(1);
        self.check_functions(step, |func| self.func_name(func).map(drop))
    }

    /// Checks every `step`th function and the table's end: the entries
    /// ascend, each record repeats its function-table entry (which
    /// [`Pclntab::func`] checks), and `check` accepts the record.
    fn check_functions(
        &self,
        step: u32,
        mut check: impl FnMut(&Func) -> Result<(), PclntabError>,
    ) -> Result<(), PclntabError> {
        let count = self.len();
        if count == 0 {
            return Ok(());
        }
        let mut previous = self.functab_entry(0)?;
        let mut index = 0;
        while index <= count {
            let entry = self.functab_entry(index)?;
            if entry < previous {
                return Err(PclntabError::FunctabUnsorted {
                    index,
                    entry,
                    previous,
                });
            }
            previous = entry;
            if index < count {
                check(&self.func(FuncIndex(index))?)?;
            }
            index = if index < count && index + step > count {
                count
            } else {
                index + step
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
