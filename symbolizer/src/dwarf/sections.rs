//! The DWARF sections line and function lookups need, found by name
//! (`.debug_*`, or the GNU `.zdebug_*` form) and decompressed when the linker
//! compressed them (`SHF_COMPRESSED` with zlib or zstd, or GNU `ZLIB` headers).
//!
//! Only the file ranges are recorded up front; the bytes are decompressed
//! when the DWARF context is first built.

use std::sync::Arc;

use object::read::elf::ElfFile64;
use object::read::{CompressedFileRange, CompressionFormat, Object, ObjectSection};
use object::Endianness;

use super::DwarfError;

/// The largest decompressed debug section accepted. Go's own DWARF for a
/// large service is tens of MiB; this leaves room for big C++ libraries.
const MAX_SECTION_SIZE: u64 = 2 << 30;
/// The largest decompressed-to-compressed size ratio accepted. zlib cannot
/// exceed about 1032:1; zstd can, but DWARF compresses 3 to 10 times.
const MAX_COMPRESSION_RATIO: u64 = 2048;

/// The sections `addr2line` reads for lines, functions and inlined calls.
/// Location lists, macros, frames and type units are never decompressed.
pub(crate) const NEEDED: [gimli::SectionId; 10] = [
    gimli::SectionId::DebugAbbrev,
    gimli::SectionId::DebugAddr,
    gimli::SectionId::DebugAranges,
    gimli::SectionId::DebugInfo,
    gimli::SectionId::DebugLine,
    gimli::SectionId::DebugLineStr,
    gimli::SectionId::DebugRanges,
    gimli::SectionId::DebugRngLists,
    gimli::SectionId::DebugStr,
    gimli::SectionId::DebugStrOffsets,
];

/// One debug section as found in the file.
#[derive(Debug)]
struct SectionPlace {
    id: gimli::SectionId,
    /// The section's file offset, for messages.
    file_offset: u64,
    range: Result<CompressedFileRange, object::read::Error>,
}

/// The debug sections of one file, not yet read.
#[derive(Debug)]
pub(crate) struct DebugSections<'data> {
    data: &'data [u8],
    endian: gimli::RunTimeEndian,
    places: Vec<SectionPlace>,
}

impl<'data> DebugSections<'data> {
    /// Records where the needed debug sections of `elf` are.
    pub fn locate(elf: &ElfFile64<'data>) -> Self {
        let mut places = Vec::new();
        for id in NEEDED {
            let Some(section) = elf.section_by_name(id.name()) else {
                continue;
            };
            let file_offset = section
                .file_range()
                .map(|(offset, _)| offset)
                .unwrap_or_default();
            places.push(SectionPlace {
                id,
                file_offset,
                range: section.compressed_file_range(),
            });
        }
        let endian = match elf.endian() {
            Endianness::Little => gimli::RunTimeEndian::Little,
            Endianness::Big => gimli::RunTimeEndian::Big,
        };
        DebugSections {
            data: elf.data(),
            endian,
            places,
        }
    }

    pub fn endian(&self) -> gimli::RunTimeEndian {
        self.endian
    }

    /// Reports whether the file has a `.debug_info` section.
    pub fn has_debug_info(&self) -> bool {
        self.places
            .iter()
            .any(|place| place.id == gimli::SectionId::DebugInfo)
    }

    /// Returns the bytes of section `id`, decompressed; empty when the file
    /// has no such section.
    pub fn load(&self, id: gimli::SectionId) -> Result<Arc<[u8]>, DwarfError> {
        let Some(place) = self.places.iter().find(|place| place.id == id) else {
            return Ok(Arc::from(Vec::new()));
        };
        let name = id.name();
        let file_offset = place.file_offset;
        let range = place.range.map_err(|source| DwarfError::Section {
            name,
            file_offset,
            source,
        })?;
        if range.format != CompressionFormat::None {
            let limit = range
                .compressed_size
                .saturating_mul(MAX_COMPRESSION_RATIO)
                .min(MAX_SECTION_SIZE);
            if range.uncompressed_size > limit {
                return Err(DwarfError::SectionTooLarge {
                    name,
                    file_offset,
                    compressed_size: range.compressed_size,
                    uncompressed_size: range.uncompressed_size,
                    limit,
                });
            }
        }
        let compressed = range
            .data(self.data)
            .map_err(|source| DwarfError::Section {
                name,
                file_offset,
                source,
            })?;
        let bytes = compressed
            .decompress()
            .map_err(|source| DwarfError::Section {
                name,
                file_offset,
                source,
            })?;
        Ok(Arc::from(bytes.into_owned()))
    }
}
