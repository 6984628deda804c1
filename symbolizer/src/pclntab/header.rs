//! The pclntab header: magic, byte order, PC quantum, pointer size and the
//! offsets of the tables that follow it.

use super::error::PclntabError;
use super::format::{Base, FileTable, Format};

/// Byte order of the table, detected from the magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

/// Upper bound on the function count a header may claim. The largest Go
/// binaries seen have a few hundred thousand functions; a larger count is
/// a damaged or misidentified table, and the count sizes the per-function cache.
pub const MAX_FUNCTIONS: u64 = 16 << 20;

/// Reads fixed-size integers from table bytes in the table's byte order.
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'data> {
    pub data: &'data [u8],
    pub endian: Endian,
}

impl<'data> Bytes<'data> {
    pub fn u8_at(&self, offset: u64) -> Option<u8> {
        self.data.get(usize::try_from(offset).ok()?).copied()
    }

    pub fn u32_at(&self, offset: u64) -> Option<u32> {
        let start = usize::try_from(offset).ok()?;
        let bytes: [u8; 4] = self
            .data
            .get(start..start.checked_add(4)?)?
            .try_into()
            .ok()?;
        Some(match self.endian {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        })
    }

    pub fn u64_at(&self, offset: u64) -> Option<u64> {
        let start = usize::try_from(offset).ok()?;
        let bytes: [u8; 8] = self
            .data
            .get(start..start.checked_add(8)?)?
            .try_into()
            .ok()?;
        Some(match self.endian {
            Endian::Little => u64::from_le_bytes(bytes),
            Endian::Big => u64::from_be_bytes(bytes),
        })
    }

    /// Reads a `uint32` or `uint64` as `size` says.
    pub fn uint_at(&self, offset: u64, size: u32) -> Option<u64> {
        match size {
            4 => self.u32_at(offset).map(u64::from),
            _ => self.u64_at(offset),
        }
    }
}

/// The decoded header: where each table starts, as an offset from the header.
#[derive(Debug, Clone)]
pub struct Header {
    pub format: &'static Format,
    pub endian: Endian,
    /// Minimum instruction size: every pc delta is a multiple of it.
    pub quantum: u8,
    pub ptr_size: u8,
    pub nfunc: u32,
    pub nfiles: u32,
    /// The header's text-start word, where the format has one and it is not 0.
    pub text_start: Option<u64>,
    pub funcnames: u64,
    pub cutab: u64,
    pub filetab: u64,
    pub pctab: u64,
    /// Start of the function table; `_func` records follow it.
    pub functab: u64,
    /// Go 1.2 to 1.15 only: the global file table (offset of its count word).
    pub global_filetab: Option<u64>,
}

impl Header {
    /// Decodes the header at the start of `data`, checking that every table
    /// it names starts inside `data` and that the function table fits.
    pub fn parse(data: &[u8]) -> Result<Header, PclntabError> {
        let prefix: [u8; 8] = data
            .get(..8)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(PclntabError::HeaderTruncated {
                expected: 8,
                found: data.len() as u64,
            })?;
        let magic_le = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let (format, endian) = match (
            Format::from_magic(magic_le),
            Format::from_magic(magic_le.swap_bytes()),
        ) {
            (Some(format), _) => (format, Endian::Little),
            (None, Some(format)) => (format, Endian::Big),
            (None, None) => return Err(PclntabError::BadMagic { found: magic_le }),
        };
        if prefix[4] != 0 || prefix[5] != 0 {
            return Err(PclntabError::BadHeaderField {
                field: "padding",
                found: u64::from(u16::from_le_bytes([prefix[4], prefix[5]])),
                expected: "0",
            });
        }
        let quantum = prefix[6];
        if !matches!(quantum, 1 | 2 | 4) {
            return Err(PclntabError::BadHeaderField {
                field: "pc quantum",
                found: u64::from(quantum),
                expected: "1, 2 or 4",
            });
        }
        let ptr_size = prefix[7];
        if !matches!(ptr_size, 4 | 8) {
            return Err(PclntabError::BadHeaderField {
                field: "pointer size",
                found: u64::from(ptr_size),
                expected: "4 or 8",
            });
        }

        let header_size = format.header_size(u32::from(ptr_size));
        if (data.len() as u64) < u64::from(header_size) {
            return Err(PclntabError::HeaderTruncated {
                expected: u64::from(header_size),
                found: data.len() as u64,
            });
        }
        let bytes = Bytes { data, endian };
        let word = |index: u32| -> u64 {
            // The header size check above covers every word the format names.
            bytes
                .uint_at(
                    8 + u64::from(index) * u64::from(ptr_size),
                    u32::from(ptr_size),
                )
                .unwrap_or(0)
        };
        let offset = |index: Option<u32>, field: &'static str| -> Result<u64, PclntabError> {
            let Some(index) = index else { return Ok(0) };
            let value = word(index);
            if value >= data.len() as u64 {
                return Err(PclntabError::OutOfRange {
                    structure: field,
                    offset: value,
                    len: 0,
                    table_len: data.len() as u64,
                });
            }
            Ok(value)
        };

        let nfunc = word(0);
        if nfunc > MAX_FUNCTIONS {
            return Err(PclntabError::TooMany {
                structure: "functions",
                count: nfunc,
                limit: MAX_FUNCTIONS,
            });
        }
        let nfiles = format.header_nfiles.map_or(0, word);
        if nfiles > u64::from(u32::MAX) {
            return Err(PclntabError::TooMany {
                structure: "files",
                count: nfiles,
                limit: u64::from(u32::MAX),
            });
        }
        let mut header = Header {
            format,
            endian,
            quantum,
            ptr_size,
            nfunc: nfunc as u32,
            nfiles: nfiles as u32,
            text_start: format
                .header_text_start
                .map(word)
                .filter(|&start| start != 0),
            funcnames: offset(format.header_funcnames, "function name table")?,
            cutab: offset(format.header_cutab, "compilation unit table")?,
            filetab: offset(format.header_filetab, "file name table")?,
            pctab: offset(format.header_pctab, "pc-value tables")?,
            functab: offset(format.header_functab, "function table")?,
            global_filetab: None,
        };
        if format.header_functab.is_none() {
            header.functab = u64::from(header_size);
        }
        if format.file_table == FileTable::CompilationUnits {
            header.check_table_order(data)?;
        }

        let functab_len = header.functab_len();
        let functab_end = header
            .functab
            .checked_add(functab_len)
            .filter(|&end| end <= data.len() as u64);
        let Some(functab_end) = functab_end else {
            return Err(PclntabError::out_of_range(
                "function table",
                header.functab,
                functab_len,
                data.len(),
            ));
        };
        if format.file_table == FileTable::Global {
            let filetab = bytes.u32_at(functab_end).ok_or_else(|| {
                PclntabError::out_of_range("file table offset", functab_end, 4, data.len())
            })?;
            let count = bytes.u32_at(u64::from(filetab)).ok_or_else(|| {
                PclntabError::out_of_range("file table", u64::from(filetab), 4, data.len())
            })?;
            let table_len = u64::from(count) * 4;
            if u64::from(filetab) + table_len > data.len() as u64 {
                return Err(PclntabError::out_of_range(
                    "file table",
                    u64::from(filetab),
                    table_len,
                    data.len(),
                ));
            }
            header.nfiles = count;
            header.global_filetab = Some(u64::from(filetab));
        }
        Ok(header)
    }

    /// Checks that the tables of a Go 1.16 and later header follow each
    /// other in the order the linker writes them, and that the function
    /// name and file name tables end with a NUL, as their last string does.
    /// A damaged offset would otherwise give wrong names and files quietly.
    fn check_table_order(&self, data: &[u8]) -> Result<(), PclntabError> {
        let tables = [
            ("function name table", self.funcnames),
            ("compilation unit table", self.cutab),
            ("file name table", self.filetab),
            ("pc-value tables", self.pctab),
            ("function table", self.functab),
        ];
        for pair in tables.windows(2) {
            let ((earlier, earlier_offset), (later, later_offset)) = (pair[0], pair[1]);
            if later_offset < earlier_offset {
                return Err(PclntabError::TablesOutOfOrder {
                    earlier,
                    later,
                    later_offset,
                });
            }
        }
        for (structure, start, end) in [
            ("function name table", self.funcnames, self.cutab),
            ("file name table", self.filetab, self.pctab),
        ] {
            // Both offsets were checked to lie inside `data`.
            if end > start && data[end as usize - 1] != 0 {
                return Err(PclntabError::UnterminatedTable {
                    structure,
                    offset: end - 1,
                });
            }
        }
        Ok(())
    }

    /// Reports whether file names are looked up per compilation unit, in
    /// tables of their own (Go 1.16 on).
    pub fn file_table_is_per_unit(&self) -> bool {
        self.format.file_table == FileTable::CompilationUnits
    }

    /// Size in bytes of the function table: `nfunc` (entry, record offset)
    /// pairs and the end PC of the last function.
    pub fn functab_len(&self) -> u64 {
        let field = u64::from(self.format.functab_field_size(u32::from(self.ptr_size)));
        (u64::from(self.nfunc) * 2 + 1) * field
    }

    /// Returns the start offset of `base` within the table.
    pub fn base(&self, base: Base) -> u64 {
        match base {
            Base::Table => 0,
            Base::FuncNames => self.funcnames,
            Base::PcTab => self.pctab,
            Base::FuncTab => self.functab,
        }
    }
}
