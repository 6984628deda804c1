//! [`FuncTable`] over a binary's pclntab, shifted to run-time addresses by
//! the load bias of a PIE.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::{FuncInfo, FuncTable, SourceFrame};
use crate::pclntab::Pclntab;

/// A pclntab seen at run-time addresses: `run-time = link-time + bias`.
pub struct PclntabFuncs<'a> {
    table: &'a Pclntab<'a>,
    bias: u64,
    by_name: OnceLock<HashMap<String, (u64, u64, u8)>>,
}

impl<'a> PclntabFuncs<'a> {
    pub fn new(table: &'a Pclntab<'a>, bias: u64) -> PclntabFuncs<'a> {
        PclntabFuncs { table, bias, by_name: OnceLock::new() }
    }

    fn link_pc(&self, pc: u64) -> u64 {
        pc.wrapping_sub(self.bias)
    }

    fn info(&self, func: &crate::pclntab::func::Func) -> Option<FuncInfo> {
        let name = self.table.func_name(func).ok()?;
        Some(FuncInfo {
            entry: func.entry.wrapping_add(self.bias),
            end: func.end.wrapping_add(self.bias),
            name: name.into_owned(),
            flag: func.flag,
        })
    }
}

impl FuncTable for PclntabFuncs<'_> {
    fn func(&self, pc: u64) -> Option<FuncInfo> {
        let index = self.table.find_func(self.link_pc(pc))?;
        let func = self.table.func(index).ok()?;
        self.info(&func)
    }

    fn sp_delta(&self, func: &FuncInfo, pc: u64) -> Option<u64> {
        let index = self.table.find_func(self.link_pc(func.entry))?;
        let record = self.table.func(index).ok()?;
        let delta = self.table.pcsp(&record, self.link_pc(pc)).ok()??;
        u64::try_from(delta).ok()
    }

    fn source_frames(&self, pc: u64) -> Vec<SourceFrame> {
        let mut frames = Vec::new();
        if self.table.resolve_inlined(self.link_pc(pc), &mut frames).is_err() {
            return Vec::new();
        }
        frames
            .into_iter()
            .map(|frame| SourceFrame {
                function: super::frame::printed_function_name(&frame.function).into_owned(),
                file: frame.file.map(|f| f.into_owned()),
                line: frame.line.map(i64::from),
                inlined: frame.inlined,
            })
            .collect()
    }

    fn func_by_name(&self, name: &str) -> Option<FuncInfo> {
        let by_name = self.by_name.get_or_init(|| {
            let mut map = HashMap::new();
            for func in self.table.funcs().flatten() {
                if let Ok(name) = self.table.func_name(&func) {
                    map.entry(name.into_owned()).or_insert((func.entry, func.end, func.flag));
                }
            }
            map
        });
        let &(entry, end, flag) = by_name.get(name)?;
        Some(FuncInfo {
            entry: entry.wrapping_add(self.bias),
            end: end.wrapping_add(self.bias),
            name: name.to_owned(),
            flag,
        })
    }
}
