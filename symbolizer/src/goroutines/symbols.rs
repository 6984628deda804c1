//! The binary's ELF symbols the walk reads, and where the runtime keeps g
//! in thread-local storage.

use std::collections::HashMap;

use object::{Object, ObjectSymbol};

use crate::binary::Binary;
use crate::buildid::BuildIds;
use crate::core::Core;
use crate::runtime::allgs::SymbolLookup;
use crate::runtime::thread::{TlsOffset, INTERNAL_LINK_TLS_OFFSET};

/// The ELF symbols the walk looks up, at link-time addresses.
#[derive(Debug)]
pub(super) struct ElfSymbols {
    symbols: HashMap<String, (u64, u64)>,
}

impl ElfSymbols {
    /// The symbols the runtime walk looks up.
    const WANTED: [&'static str; 9] = [
        "runtime.allgs",
        "runtime.sched",
        "runtime.memstats",
        "runtime.runtimeInitTime",
        "runtime.waitReasonStrings",
        "runtime.types",
        "runtime.tlsg",
        "runtime.firstmoduledata",
        "runtime.allm",
    ];

    pub(super) fn new(file: &object::File<'_>) -> ElfSymbols {
        let mut symbols = HashMap::new();
        for symbol in file.symbols() {
            let Ok(name) = symbol.name() else { continue };
            if Self::WANTED.contains(&name) {
                symbols.insert(name.to_owned(), (symbol.address(), symbol.size()));
            }
        }
        ElfSymbols { symbols }
    }

    /// The symbols at the run-time addresses of a process whose executable
    /// was loaded with `bias`.
    pub(super) fn at_bias(&self, bias: u64) -> BiasedSymbols<'_> {
        BiasedSymbols {
            symbols: self,
            bias,
        }
    }
}

/// [`ElfSymbols`] at run-time addresses.
pub(super) struct BiasedSymbols<'a> {
    symbols: &'a ElfSymbols,
    bias: u64,
}

impl SymbolLookup for BiasedSymbols<'_> {
    fn symbol(&self, name: &str) -> Option<(u64, u64)> {
        let &(address, size) = self.symbols.symbols.get(name)?;
        // `runtime.tlsg` is an offset in the TLS block, not an address.
        let address = if name == "runtime.tlsg" {
            address
        } else {
            address.wrapping_add(self.bias)
        };
        Some((address, size))
    }
}

/// Where g may sit relative to `fs_base`: the host linker's offset from
/// `runtime.tlsg` and `PT_TLS` when both exist, then the Go linker's -8.
pub(super) fn tls_offsets(file: &object::File<'_>, symbols: &ElfSymbols) -> Vec<TlsOffset> {
    let mut offsets = Vec::new();
    if let Some((tlsg, _)) = symbols.at_bias(0).symbol("runtime.tlsg") {
        if let object::File::Elf64(elf) = file {
            use object::read::elf::ProgramHeader;
            let endian = elf.endian();
            for segment in elf.elf_program_headers() {
                if segment.p_type(endian) == object::elf::PT_TLS {
                    let memsz = segment.p_memsz(endian);
                    let align = segment.p_align(endian).max(1);
                    let aligned = memsz.div_ceil(align) * align;
                    offsets.push(TlsOffset(tlsg as i64 - aligned as i64));
                }
            }
        }
    }
    offsets.push(INTERNAL_LINK_TLS_OFFSET);
    offsets
}

/// Describes how the build IDs of the core's executable and of `binary`
/// differ, when a kind of ID present in both differs. A mismatch is kept as
/// a warning rather than an error: an unstripped build of the same source
/// (such as the `-trimpath` twin of a `-s -w` build) has another ID but the
/// same code and data, and reads correctly.
pub(super) fn build_id_mismatch(core: &Core, binary: &Binary) -> Option<String> {
    let in_core = &core.executable()?.build_ids;
    let in_binary = crate::buildid::read(binary.elf()).ids;
    let differ = |kind: &str, core_id: String, binary_id: String| {
        Some(format!(
            "the core's executable has {kind} build ID {core_id} but {} has {binary_id}; \
             results are wrong unless the binary has the same code and data",
            binary.path().display()
        ))
    };
    let BuildIds { go, gnu, .. } = in_core;
    if let (Some(a), Some(b)) = (go, &in_binary.go) {
        if a != b {
            return differ("Go", a.to_string(), b.to_string());
        }
    }
    if let (Some(a), Some(b)) = (gnu, &in_binary.gnu) {
        if a != b {
            return differ("GNU", a.to_string(), b.to_string());
        }
    }
    None
}
