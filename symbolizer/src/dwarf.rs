//! Symbolization of code the Go toolchain did not compile: cgo's C code in a
//! Go binary, and shared libraries such as libc mapped into the process.
//!
//! Addresses are looked up in DWARF first (through `addr2line`), which gives
//! the function, file, line and column, and the chain of inlined calls
//! innermost first. Where DWARF is missing or does not cover an address, the
//! ELF symbol tables (`.symtab`, else the `.dynsym` a stripped library keeps)
//! give the enclosing function's name and the offset into it.
//!
//! Both are built on first use, and DWARF sections are decompressed only
//! then. Go code is left to the pclntab, which names Go functions the way the
//! runtime prints them; C and C++ names are returned as the producer wrote
//! them, without demangling.

pub(crate) mod sections;
mod symbols;

use std::cell::OnceCell;

use object::read::elf::ElfFile64;
use serde::Serialize;

use sections::DebugSections;
use symbols::{SymbolIndex, SymbolTables};

const TRACE_TARGET: &str = "symbolizer::dwarf";

/// The maximum number of frames returned for one address. Real inline chains
/// are a few frames deep, and the cap bounds the walk over damaged DWARF.
const MAX_INLINE_DEPTH: usize = 256;

type Reader = gimli::EndianArcSlice<gimli::RunTimeEndian>;

/// The source a frame's facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameSource {
    /// DWARF debugging information.
    Dwarf,
    /// An ELF symbol table: a function name and offset, no file or line.
    SymbolTable,
}

/// One source-level frame for an address. Several frames for one address
/// mean inlined calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CFrame {
    /// The function name as the producer wrote it (mangled for C++ and Rust).
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The column; DWARF producers that do not record columns give none.
    pub column: Option<u32>,
    /// The distance from the start of the function's symbol, when a
    /// symbol table names the function.
    pub symbol_offset: Option<u64>,
    /// This frame's code was inlined into the next frame's function.
    pub inlined: bool,
    pub source: FrameSource,
}

/// An error building the DWARF context or looking up an address in it.
#[derive(Debug, thiserror::Error)]
pub enum DwarfError {
    #[error("cannot read section {name} at file offset {file_offset:#x}")]
    Section {
        name: &'static str,
        file_offset: u64,
        #[source]
        source: object::read::Error,
    },
    #[error(
        "section {name} at file offset {file_offset:#x} claims {uncompressed_size:#x} bytes once \
         decompressed from {compressed_size:#x}, more than the {limit:#x} accepted"
    )]
    SectionTooLarge {
        name: &'static str,
        file_offset: u64,
        compressed_size: u64,
        uncompressed_size: u64,
        limit: u64,
    },
    #[error("invalid DWARF in the compilation unit index")]
    Parse(#[source] gimli::Error),
    #[error("invalid DWARF while looking up address {address:#x}")]
    Lookup {
        address: u64,
        #[source]
        source: gimli::Error,
    },
}

/// Symbolizes addresses of one ELF file (an executable or a shared library)
/// through its DWARF and symbol tables.
///
/// The DWARF context and the symbol index are built on the first lookup and
/// kept. They live in `OnceCell`s, so a `CSymbolizer` is not `Sync`; use
/// one per thread.
pub struct CSymbolizer<'data> {
    sections: DebugSections<'data>,
    symbol_tables: SymbolTables<'data>,
    load_bias: u64,
    dwarf: OnceCell<Result<addr2line::Context<Reader>, DwarfError>>,
    symbols: OnceCell<SymbolIndex<'data>>,
}

impl std::fmt::Debug for CSymbolizer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CSymbolizer")
            .field("has_dwarf", &self.has_dwarf())
            .field("load_bias", &format_args!("{:#x}", self.load_bias))
            .finish_non_exhaustive()
    }
}

impl<'data> CSymbolizer<'data> {
    /// Prepares to symbolize addresses of `elf`. Nothing is decompressed or
    /// indexed until the first lookup.
    pub fn new(elf: &ElfFile64<'data>) -> Self {
        CSymbolizer {
            sections: DebugSections::locate(elf),
            symbol_tables: SymbolTables::from_elf(elf),
            load_bias: 0,
            dwarf: OnceCell::new(),
            symbols: OnceCell::new(),
        }
    }

    /// Sets the load bias: the difference between the runtime address of the
    /// file's code and its link-time address. It is 0 for a non-PIE
    /// executable and the mapping's base address for a shared library or PIE
    /// whose first `PT_LOAD` is linked at 0.
    pub fn with_load_bias(mut self, load_bias: u64) -> Self {
        self.load_bias = load_bias;
        self
    }

    pub fn load_bias(&self) -> u64 {
        self.load_bias
    }

    /// Reports whether the file has DWARF debugging information.
    pub fn has_dwarf(&self) -> bool {
        self.sections.has_debug_info()
    }

    /// Reports whether the file has a symbol table to fall back on.
    pub fn has_symbols(&self) -> bool {
        !self.symbol_tables.is_empty()
    }

    /// Returns why the DWARF could not be used, once a lookup has tried to load it.
    pub fn dwarf_error(&self) -> Option<&DwarfError> {
        self.dwarf.get().and_then(|context| context.as_ref().err())
    }

    /// Symbolizes a runtime address: the frames for it, innermost inlined
    /// call first and the enclosing function last, or an empty list when
    /// neither DWARF nor a symbol covers it.
    pub fn symbolize(&self, pc: u64) -> Vec<CFrame> {
        match pc.checked_sub(self.load_bias) {
            Some(address) => self.symbolize_file_address(address),
            None => Vec::new(),
        }
    }

    /// Symbolizes a link-time address (the load bias already removed).
    pub fn symbolize_file_address(&self, address: u64) -> Vec<CFrame> {
        let mut frames = match self.dwarf_frames(address) {
            Ok(frames) => frames,
            Err(err) => {
                tracing::debug!(target: TRACE_TARGET, address, error = %err, "DWARF lookup failed; using symbols");
                Vec::new()
            }
        };
        let symbol = self.symbols().lookup(address);

        match frames.last_mut() {
            Some(outermost) => {
                // A line-table match without a DWARF function entry gets its
                // name from the symbol table.
                if let Some(symbol) = symbol {
                    let name = String::from_utf8_lossy(symbol.name);
                    if outermost.function.is_none() {
                        outermost.function = Some(name.into_owned());
                        outermost.symbol_offset = Some(address - symbol.address);
                    } else if outermost.function.as_deref() == Some(&*name) {
                        outermost.symbol_offset = Some(address - symbol.address);
                    }
                }
            }
            None => {
                if let Some(symbol) = symbol {
                    frames.push(CFrame {
                        function: Some(String::from_utf8_lossy(symbol.name).into_owned()),
                        file: None,
                        line: None,
                        column: None,
                        symbol_offset: Some(address - symbol.address),
                        inlined: false,
                        source: FrameSource::SymbolTable,
                    });
                }
            }
        }
        frames
    }

    fn symbols(&self) -> &SymbolIndex<'data> {
        self.symbols.get_or_init(|| self.symbol_tables.index())
    }

    fn context(&self) -> Option<&addr2line::Context<Reader>> {
        if !self.has_dwarf() {
            return None;
        }
        let context = self.dwarf.get_or_init(|| {
            let context = self.load_context();
            match &context {
                Ok(_) => tracing::debug!(target: TRACE_TARGET, "DWARF context built"),
                Err(err) => tracing::warn!(target: TRACE_TARGET, error = %err, "DWARF unusable; using symbol tables"),
            }
            context
        });
        context.as_ref().ok()
    }

    fn load_context(&self) -> Result<addr2line::Context<Reader>, DwarfError> {
        let endian = self.sections.endian();
        let dwarf = gimli::Dwarf::load(|id| -> Result<Reader, DwarfError> {
            let bytes = if sections::NEEDED.contains(&id) {
                self.sections.load(id)?
            } else {
                Vec::new().into()
            };
            Ok(gimli::EndianArcSlice::new(bytes, endian))
        })?;
        addr2line::Context::from_dwarf(dwarf).map_err(DwarfError::Parse)
    }

    /// Returns the DWARF frames for a link-time address, innermost first.
    fn dwarf_frames(&self, address: u64) -> Result<Vec<CFrame>, DwarfError> {
        let Some(context) = self.context() else {
            return Ok(Vec::new());
        };
        // addr2line adds one to the address it looks up, which overflows at
        // the top address. A pc from a damaged stack or the wrong binary can
        // be that address, and no compile unit covers it.
        if address == u64::MAX {
            return Ok(Vec::new());
        }
        let lookup_error = |source| DwarfError::Lookup { address, source };
        let mut iter = context
            .find_frames(address)
            .skip_all_loads()
            .map_err(lookup_error)?;
        let mut frames = Vec::new();
        loop {
            let frame = match iter.next() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(source) => {
                    // The frames read so far are still true.
                    let err = lookup_error(source);
                    tracing::debug!(target: TRACE_TARGET, address, error = %err, "inline chain cut short");
                    break;
                }
            };
            if frames.len() >= MAX_INLINE_DEPTH {
                tracing::warn!(target: TRACE_TARGET, address, max = MAX_INLINE_DEPTH, "inline chain truncated");
                break;
            }
            let function = frame
                .function
                .as_ref()
                .and_then(|name| name.raw_name().ok())
                .map(|name| name.into_owned());
            let location = frame.location.as_ref();
            frames.push(CFrame {
                function,
                file: location
                    .and_then(|location| location.file)
                    .map(str::to_owned),
                line: location.and_then(|location| location.line),
                column: location
                    .and_then(|location| location.column)
                    .filter(|&column| column != 0),
                symbol_offset: None,
                inlined: true,
                source: FrameSource::Dwarf,
            });
        }
        if let Some(outermost) = frames.last_mut() {
            outermost.inlined = false;
        }
        Ok(frames)
    }
}

#[cfg(test)]
mod tests;
