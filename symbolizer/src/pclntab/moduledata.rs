//! Finding `runtime.firstmoduledata` without symbols, for the two values the
//! pclntab needs from it: the text start and `gofunc` (`go:func.*`).
//!
//! moduledata's first word points at the pclntab header and its second (the
//! funcnametab slice's data pointer) at the name table, so the pair is
//! searched for in the loaded data. The Go linker writes link-time values
//! there even in PIE files (checked with Go 1.19 to 1.27 `-buildmode=pie`),
//! so no relocation is applied.

use super::format::EntryEncoding;
use super::memory::Memory;
use super::Pclntab;

/// Where moduledata keeps the fields the pclntab needs, per Go release
/// range (64-bit byte offsets, read from the Go sources' `moduledata` and
/// checked against `runtime.firstmoduledata` of Go 1.19 to 1.27 binaries).
struct Layout {
    versions: &'static str,
    /// The pclntab magic of the releases the layout holds for.
    magic: u32,
    text: u64,
    rodata: u64,
    gofunc: u64,
}

static LAYOUTS: [Layout; 3] = [
    Layout {
        versions: "Go 1.18 and 1.19",
        magic: 0xFFFF_FFF0,
        text: 176,
        rodata: 296,
        gofunc: 304,
    },
    // Go 1.27 inserted typedesclen, itaboffset and itabsize before rodata.
    Layout {
        versions: "Go 1.27",
        magic: 0xFFFF_FFF1,
        text: 176,
        rodata: 336,
        gofunc: 344,
    },
    Layout {
        versions: "Go 1.20 to 1.26",
        magic: 0xFFFF_FFF1,
        text: 176,
        rodata: 312,
        gofunc: 320,
    },
];

/// The fields read from a moduledata found by search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleData {
    /// Link-time address of the moduledata.
    pub address: u64,
    /// `moduledata.text`: the address function entries are offsets from.
    pub text: u64,
    /// `moduledata.gofunc`, when a layout's rodata and gofunc words both
    /// point into loaded non-executable data.
    pub gofunc: Option<u64>,
    /// The release range of the layout that matched.
    pub versions: &'static str,
}

/// Searches the writable segments for the moduledata of the table at
/// `table_vaddr`. Only 64-bit tables of Go 1.18 and later are searched:
/// older formats store absolute addresses and need neither field.
pub fn find(memory: &Memory<'_>, tab: &Pclntab<'_>, table_vaddr: u64) -> Option<ModuleData> {
    if tab.format().entry != EntryEncoding::TextOffset || tab.ptr_size() != 8 {
        return None;
    }
    let names = table_vaddr.checked_add(tab.header().funcnames)?;
    let little = tab.header().endian == super::header::Endian::Little;
    let word = |bytes: &[u8]| -> Option<u64> {
        let array: [u8; 8] = bytes.try_into().ok()?;
        Some(if little {
            u64::from_le_bytes(array)
        } else {
            u64::from_be_bytes(array)
        })
    };
    for segment in memory.segments().iter().filter(|segment| segment.writable) {
        // Chunks of 8 bytes at 8-aligned addresses: moduledata is pointer-aligned.
        let skip = (8 - (segment.vaddr % 8) as usize) % 8;
        let Some(data) = segment.data.get(skip..) else {
            continue;
        };
        for (index, chunk) in data.chunks_exact(8).enumerate() {
            if word(chunk) != Some(table_vaddr) {
                continue;
            }
            let at = skip + index * 8;
            if data_word(segment.data, at + 8, &word) != Some(names) {
                continue;
            }
            let address = segment.vaddr + at as u64;
            let read = |offset: u64| memory.read(address.checked_add(offset)?, 8).and_then(word);
            let text = read(LAYOUTS[0].text)?;
            let gofunc = LAYOUTS
                .iter()
                .filter(|layout| layout.magic == tab.format().magic)
                .find_map(|layout| {
                    let rodata = read(layout.rodata)?;
                    let gofunc = read(layout.gofunc)?;
                    let in_data = |addr| {
                        memory
                            .segment_containing(addr)
                            .is_some_and(|s| !s.executable)
                    };
                    (in_data(rodata) && in_data(gofunc) && rodata <= gofunc)
                        .then_some((gofunc, layout.versions))
                });
            tracing::debug!(
                target: "symbolizer::pclntab",
                address,
                text,
                gofunc = ?gofunc.map(|(g, _)| g),
                "found moduledata by searching for the pclntab address"
            );
            return Some(ModuleData {
                address,
                text,
                gofunc: gofunc.map(|(g, _)| g),
                versions: gofunc.map_or("unknown", |(_, versions)| versions),
            });
        }
    }
    None
}

fn data_word(data: &[u8], at: usize, word: &impl Fn(&[u8]) -> Option<u64>) -> Option<u64> {
    word(data.get(at..at.checked_add(8)?)?)
}
