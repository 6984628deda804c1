//! File names: the value of a function's pcfile table becomes a name through
//! the global file table (Go 1.2 to 1.15) or the function's compilation unit
//! in the cutab (Go 1.16 on).

use std::borrow::Cow;

use super::error::PclntabError;
use super::format::FileTable;
use super::func::Func;
use super::Pclntab;

/// A cutab entry with this value names no file.
pub(super) const NO_FILE: u32 = u32::MAX;

impl<'data> Pclntab<'data> {
    /// Returns the name of file `file_index`, a value of `func`'s pcfile
    /// table, or `None` when the index names no file. An index that points
    /// outside the tables is an error.
    pub fn file_name(
        &self,
        func: &Func,
        file_index: i32,
    ) -> Result<Option<Cow<'data, str>>, PclntabError> {
        match self.format().file_table {
            FileTable::Global => {
                // Index 0 of the global table is unused; debug/gosym and the
                // runtime both treat it as no file.
                if file_index <= 0 || file_index as u32 >= self.header.nfiles {
                    return Ok(None);
                }
                let Some(table) = self.header.global_filetab else {
                    return Ok(None);
                };
                let slot = table + u64::from(file_index as u32) * 4;
                let name = self.bytes.u32_at(slot).ok_or_else(|| {
                    PclntabError::out_of_range("file table", slot, 4, self.data.len())
                })?;
                self.c_string(u64::from(name), "file name").map(Some)
            }
            FileTable::CompilationUnits => {
                // Index 0 is a real file here.
                let Ok(file_index) = u32::try_from(file_index) else {
                    return Ok(None);
                };
                let Some(cu_offset) = func.cu_offset else {
                    return Ok(None);
                };
                if cu_offset == NO_FILE {
                    return Ok(None);
                }
                let slot = u64::from(cu_offset) + u64::from(file_index);
                let at = self.header.cutab + slot * 4;
                let name = self.bytes.u32_at(at).ok_or_else(|| {
                    PclntabError::out_of_range("compilation unit table", at, 4, self.data.len())
                })?;
                if name == NO_FILE {
                    return Ok(None);
                }
                self.c_string(self.header.filetab + u64::from(name), "file name")
                    .map(Some)
            }
        }
    }

    /// Returns the file name debug/gosym gives file index `file_index`, or
    /// `None` where it gives "". It indexes the cutab with 32-bit wrapping
    /// arithmetic and no check for a missing compilation unit, so functions
    /// without line tables get the names of neighbouring files.
    pub(crate) fn file_name_addr2line(
        &self,
        func: &Func,
        file_index: i32,
    ) -> Option<Cow<'data, str>> {
        match self.format().file_table {
            FileTable::Global => self.file_name(func, file_index).ok().flatten(),
            FileTable::CompilationUnits => {
                let file_index = u32::try_from(file_index).ok()?;
                let slot = func.cu_offset?.wrapping_add(file_index).wrapping_mul(4);
                let name = self.bytes.u32_at(self.header.cutab + u64::from(slot))?;
                if name == NO_FILE {
                    return None;
                }
                self.c_string(self.header.filetab + u64::from(name), "file name")
                    .ok()
            }
        }
    }

    /// Returns the file and line of `pc` in `func`, from the pcfile and pcln
    /// tables. Inside inlined code these are the innermost inlined
    /// function's, as `go tool addr2line` prints them.
    pub fn file_line(
        &self,
        func: &Func,
        pc: u64,
    ) -> Result<(Option<Cow<'data, str>>, Option<i32>), PclntabError> {
        let file = match self.pcvalue(func, func.pcfile, pc)? {
            Some(index) => self.file_name(func, index)?,
            None => None,
        };
        let line = self.pcvalue(func, func.pcln, pc)?;
        Ok((file, line))
    }
}
