//! Function symbols from `.symtab` and `.dynsym`, sorted by address, for
//! naming code that has no DWARF: stripped binaries and system libraries such
//! as libc, whose `.dynsym` survives stripping.

use object::elf;
use object::read::elf::{ElfFile64, Sym, SymbolTable};
use object::Endianness;

const TRACE_TARGET: &str = "symbolizer::dwarf";

/// The maximum number of symbols indexed per file. libc 2.36 has about 3,000
/// in `.dynsym`, and a large Go service has tens of thousands (an estimate).
/// The cap bounds memory when a damaged table claims millions.
const MAX_SYMBOLS: usize = 16 << 20;
/// How many earlier symbols a lookup examines for one that encloses the
/// address when the nearest one ends before it, as when a small local
/// symbol sits inside a larger function.
const MAX_ENCLOSING_SCAN: usize = 16;

type Table<'data> = SymbolTable<'data, elf::FileHeader64<Endianness>>;

/// One function symbol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FunctionSymbol<'data> {
    pub address: u64,
    /// The size from the symbol table; 0 when the producer did not record it.
    pub size: u64,
    pub name: &'data [u8],
    /// Lower is preferred among symbols at the same address.
    rank: u8,
}

/// The function symbols of one file, sorted by address and preference.
#[derive(Debug, Default)]
pub(crate) struct SymbolIndex<'data> {
    symbols: Vec<FunctionSymbol<'data>>,
}

/// The symbol tables of one file, kept until the index is first needed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SymbolTables<'data> {
    endian: Endianness,
    symtab: Table<'data>,
    dynsym: Table<'data>,
}

impl<'data> SymbolTables<'data> {
    pub fn from_elf(elf: &ElfFile64<'data>) -> Self {
        SymbolTables {
            endian: elf.endian(),
            symtab: *elf.elf_symbol_table(),
            dynsym: *elf.elf_dynamic_symbol_table(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.symtab.is_empty() && self.dynsym.is_empty()
    }

    /// Collects the defined function symbols of both tables.
    pub fn index(&self) -> SymbolIndex<'data> {
        let mut symbols = Vec::new();
        for (table, table_rank) in [(&self.symtab, 0u8), (&self.dynsym, 1u8)] {
            for symbol in table.iter() {
                if symbols.len() >= MAX_SYMBOLS {
                    tracing::warn!(target: TRACE_TARGET, max = MAX_SYMBOLS, "symbol tables truncated at the symbol cap");
                    break;
                }
                if let Some(function) = self.function_symbol(table, symbol, table_rank) {
                    symbols.push(function);
                }
            }
        }
        symbols.sort_by(|a, b| a.address.cmp(&b.address).then(a.rank.cmp(&b.rank)));
        symbols.dedup_by(|later, earlier| {
            later.address == earlier.address && later.name == earlier.name
        });
        tracing::debug!(target: TRACE_TARGET, count = symbols.len(), "indexed function symbols");
        SymbolIndex { symbols }
    }

    fn function_symbol(
        &self,
        table: &Table<'data>,
        symbol: &'data elf::Sym64<Endianness>,
        table_rank: u8,
    ) -> Option<FunctionSymbol<'data>> {
        let kind = symbol.st_type();
        if kind != elf::STT_FUNC && kind != elf::STT_GNU_IFUNC {
            return None;
        }
        if symbol.st_shndx(self.endian) == elf::SHN_UNDEF {
            return None;
        }
        let address = symbol.st_value(self.endian);
        let name = table.symbol_name(self.endian, symbol).ok()?;
        if address == 0 || name.is_empty() {
            return None;
        }
        // A sized symbol is preferred over a marker of size 0 at the same
        // address (Go's `runtime.text`). Then global names are preferred,
        // because they are the public ones (glibc's `__getpid` is global and
        // `getpid` a weak alias). Then `.symtab` is preferred over `.dynsym`.
        let size = symbol.st_size(self.endian);
        let size_rank = u8::from(size == 0);
        let binding_rank = match symbol.st_bind() {
            elf::STB_GLOBAL => 0,
            elf::STB_WEAK => 1,
            _ => 2,
        };
        let rank = size_rank * 6 + binding_rank * 2 + table_rank;
        Some(FunctionSymbol {
            address,
            size,
            name,
            rank,
        })
    }
}

impl<'data> SymbolIndex<'data> {
    /// Returns the function symbol that contains `address`, if any.
    ///
    /// A symbol without a size is taken to extend to the next symbol, so
    /// the last symbol, when it has no size (Go's `runtime.etext` marker),
    /// contains nothing.
    pub fn lookup(&self, address: u64) -> Option<FunctionSymbol<'data>> {
        let after = self
            .symbols
            .partition_point(|symbol| symbol.address <= address);
        let nearest_index = after.checked_sub(1)?;
        let nearest = self.symbols.get(nearest_index)?;
        // The preferred symbol at the nearest address sorts first among equals.
        let first_at_nearest = self
            .symbols
            .partition_point(|symbol| symbol.address < nearest.address);
        let preferred = *self.symbols.get(first_at_nearest)?;
        if preferred.size == 0 {
            return (after < self.symbols.len()).then_some(preferred);
        }
        if address - preferred.address < preferred.size {
            return Some(preferred);
        }
        self.symbols
            .get(first_at_nearest.saturating_sub(MAX_ENCLOSING_SCAN)..first_at_nearest)?
            .iter()
            .rev()
            .find(|symbol| address - symbol.address < symbol.size)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(address: u64, size: u64, name: &'static str) -> FunctionSymbol<'static> {
        FunctionSymbol {
            address,
            size,
            name: name.as_bytes(),
            rank: u8::from(size == 0) * 6,
        }
    }

    /// An index sorted as `SymbolTables::index` sorts: by address, then
    /// preferred first.
    fn index() -> SymbolIndex<'static> {
        SymbolIndex {
            symbols: vec![
                symbol(0x1000, 0x40, "main.main"),
                symbol(0x1000, 0, "runtime.text"),
                symbol(0x1080, 0, "marker"),
                symbol(0x1100, 0x20, "main.f"),
                symbol(0x1200, 0, "runtime.etext"),
            ],
        }
    }

    fn name(index: &SymbolIndex<'_>, address: u64) -> Option<String> {
        index
            .lookup(address)
            .map(|symbol| String::from_utf8_lossy(symbol.name).into_owned())
    }

    #[test]
    fn sized_symbol_wins_at_same_address() {
        assert_eq!(name(&index(), 0x1010).as_deref(), Some("main.main"));
    }

    #[test]
    fn unsized_symbol_extends_to_next() {
        assert_eq!(name(&index(), 0x10ff).as_deref(), Some("marker"));
    }

    #[test]
    fn last_unsized_symbol_contains_nothing() {
        let index = index();
        assert_eq!(name(&index, 0x1200), None);
        assert_eq!(name(&index, 0xffff_ffff), None);
        assert_eq!(name(&index, u64::MAX), None);
    }

    #[test]
    fn gap_after_sized_symbol_is_unnamed() {
        assert_eq!(name(&index(), 0x1050), None);
    }
}
