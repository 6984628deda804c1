//! Feeds arbitrary bytes to the readers of a binary's build information,
//! build IDs, C symbols and runtime struct layouts. Each must return an error or a partial result,
//! never panic, whatever the ELF headers, notes, sections and DWARF claim.

#![no_main]

use libfuzzer_sys::fuzz_target;
use object::read::elf::ElfFile64;
use symbolizer::{buildid, buildinfo, dwarf::CSymbolizer};

/// Addresses looked up per input: the first bytes of a typical text segment
/// of a non-PIE executable and of a shared library, and the extremes.
const PROBES: [u64; 6] = [0, 0x1000, 0x40_1000, 0x40_1234, u64::MAX - 1, u64::MAX];

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = buildid::read_from_image_prefix(data) {
        let _ = report.ids.go.map(|id| id.to_string());
        let _ = report.ids.gnu.map(|id| id.to_string());
    }

    let Ok(elf) = ElfFile64::parse(data) else { return };
    if let Ok(info) = buildinfo::read(&elf) {
        let _ = info.modinfo_text();
        let _ = (info.cgo_enabled(), info.vcs_modified(), info.trimpath());
    }
    for err in buildid::read(&elf).damaged {
        let _ = err.to_string();
    }

    let symbolizer = CSymbolizer::new(&elf).with_load_bias(0x1000);
    for pc in PROBES {
        let _ = symbolizer.symbolize(pc);
    }
    let _ = symbolizer.dwarf_error().map(ToString::to_string);

    if let Ok(file) = object::File::parse(data) {
        if let Ok(Some(members)) = symbolizer::runtime::layout_dwarf::read_struct_members(&file) {
            let _ = symbolizer::runtime::layout::RuntimeLayout::from_members(&members);
        }
    }
});
