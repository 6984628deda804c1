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
        if let Err(limit) = check_uncompressed_size(&range) {
            return Err(DwarfError::SectionTooLarge {
                name,
                file_offset,
                compressed_size: range.compressed_size,
                uncompressed_size: range.uncompressed_size,
                limit,
            });
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

/// Checks the size a compressed section claims it decompresses to, before
/// any byte is allocated for it: at most [`MAX_SECTION_SIZE`] and at most
/// [`MAX_COMPRESSION_RATIO`] times its compressed size. Returns the limit
/// the claim exceeds.
pub(crate) fn check_uncompressed_size(range: &CompressedFileRange) -> Result<(), u64> {
    if range.format == CompressionFormat::None {
        return Ok(());
    }
    let limit = range
        .compressed_size
        .saturating_mul(MAX_COMPRESSION_RATIO)
        .min(MAX_SECTION_SIZE);
    if range.uncompressed_size > limit {
        return Err(limit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(format: CompressionFormat, compressed: u64, uncompressed: u64) -> CompressedFileRange {
        CompressedFileRange {
            format,
            offset: 0x1000,
            compressed_size: compressed,
            uncompressed_size: uncompressed,
        }
    }

    #[test]
    fn claimed_sizes_are_bounded() {
        let zlib = CompressionFormat::Zlib;
        assert_eq!(
            check_uncompressed_size(&range(zlib, 0x5d951, 0x20_0000)),
            Ok(())
        );
        assert_eq!(
            check_uncompressed_size(&range(zlib, 0x5d951, 0xffff_ffff)),
            Err(0x5d951 * MAX_COMPRESSION_RATIO)
        );
        assert_eq!(
            check_uncompressed_size(&range(zlib, 1 << 30, 1 << 40)),
            Err(MAX_SECTION_SIZE)
        );
        let plain = CompressionFormat::None;
        assert_eq!(check_uncompressed_size(&range(plain, 8, 8)), Ok(()));
    }
}
