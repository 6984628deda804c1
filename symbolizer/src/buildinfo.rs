//! Build information that the Go linker writes into every binary: the Go
//! version, the main package path, the modules and the build settings.
//!
//! The linker stores a 32-byte header in the `.go.buildinfo` section (or,
//! when section headers are stripped, near the start of a writable,
//! non-executable `PT_LOAD` segment: the first in a non-PIE binary, the
//! one after `.data.rel.ro` in a PIE). It starts with the magic
//! `\xff Go buildinf:` at a 16-byte aligned address, then a pointer size byte
//! and a flags byte. Since Go 1.18 (flag bit 0x2) two strings follow the
//! header inline, each a uvarint length and its bytes: the Go version and
//! the module information. Before that, the header contains two pointers to Go
//! string headers (`runtime.buildVersion` and `runtime.modinfo`), followed
//! through the `PT_LOAD` segments. This is the layout Go's `debug/buildinfo`
//! reads (Go 1.19 to 1.27 sources).
//!
//! This module locates and decodes the blob and parses the module
//! information (see [`modinfo`]); printing it is left to the command line.

mod goquote;
mod memory;
mod modinfo;

use object::elf;
use object::read::elf::{ElfFile64, SectionHeader};
use object::read::{Object, ObjectSection};
use serde::Serialize;

pub use memory::Location;
pub use modinfo::{BuildSetting, ModInfoError, ModInfoErrorKind, Module};

use memory::AddressSpace;

const TRACE_TARGET: &str = "symbolizer::buildinfo";

/// The bytes every build information header starts with.
pub const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
/// The build information header size; strings or pointers follow it.
const HEADER_SIZE: usize = 32;
/// The linker aligns the header to 16 bytes.
const HEADER_ALIGN: u64 = 16;
const POINTER_SIZE_OFFSET: usize = 14;
const FLAGS_OFFSET: usize = 15;
const POINTERS_OFFSET: usize = 16;
const FLAG_BIG_ENDIAN: u8 = 0x1;
const FLAG_INLINE_STRINGS: u8 = 0x2;
/// The maximum Go version length accepted. Real ones, including
/// `devel go1.x-hash date` forms, are under 100 bytes.
const MAX_GO_VERSION_LEN: u64 = 4 << 10;
/// The maximum module information length accepted. A binary with thousands of
/// dependencies carries a few hundred KiB.
const MAX_MODINFO_LEN: u64 = 64 << 20;
/// The maximum uvarint encoding length of a 64-bit value.
const MAX_UVARINT_LEN: usize = 10;
/// The go command frames the module information with 16-byte sentinels,
/// the last one preceded by a newline.
const MODINFO_SENTINEL_LEN: usize = 16;

/// The encoding of the build information strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Go 1.18 and later: the strings follow the header inline.
    Inline,
    /// Before Go 1.18: the header points to Go string headers.
    Pointers,
}

/// The two strings of the build information, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBuildInfo {
    /// The Go version, such as `go1.22.3`.
    pub go_version: String,
    /// The module information text without its sentinel framing; empty for
    /// binaries built outside module mode.
    pub modinfo: String,
    pub layout: Layout,
    /// The header's location.
    pub header: Location,
}

/// A Go binary's build information, as `go version -m` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildInfo {
    /// The Go toolchain version, such as `go1.22.3`.
    pub go_version: String,
    /// The main package's import path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The module that contains the main package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main: Option<Module>,
    /// Every dependency module that contributed packages, in the order the go command wrote them.
    pub deps: Vec<Module>,
    /// The build settings in their recorded order.
    pub settings: Vec<BuildSetting>,
    pub layout: Layout,
}

/// An error reading build information.
#[derive(Debug, thiserror::Error)]
pub enum BuildInfoError {
    #[error("not a Go binary: no build information magic in {place}")]
    NotFound { place: SearchPlace },
    #[error("{structure} at {location} is outside every PT_LOAD segment's file bytes")]
    Unmapped {
        structure: &'static str,
        location: Location,
    },
    #[error("{structure} at {location} is truncated: needs {needed} bytes, {available} available")]
    Truncated {
        structure: &'static str,
        location: Location,
        needed: u64,
        available: u64,
    },
    #[error("build information header at {location} has pointer size {found}, expected 4 or 8")]
    PointerSize { location: Location, found: u8 },
    #[error("{structure} length at {location} is not a valid uvarint")]
    BadUvarint {
        structure: &'static str,
        location: Location,
    },
    #[error("{structure} at {location} is {length} bytes long, more than the {max} accepted")]
    TooLong {
        structure: &'static str,
        location: Location,
        length: u64,
        max: u64,
    },
    #[error("build information at {location} has an empty Go version")]
    EmptyVersion { location: Location },
    #[error("invalid module information (header at {location})")]
    ModInfo {
        location: Location,
        #[source]
        source: ModInfoError,
    },
}

/// The range searched for the build information header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchPlace {
    /// The `.go.buildinfo` section.
    Section { address: u64, size: u64 },
    /// A writable, non-executable `PT_LOAD` segment (no section headers).
    Segment { address: u64, size: u64 },
    /// Every writable, non-executable `PT_LOAD` segment, when there are
    /// several and none contains the header (no section headers).
    Segments { count: usize },
    /// There are no section headers and no writable, non-executable segment.
    NoDataSegment,
}

impl std::fmt::Display for SearchPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SearchPlace::Section { address, size } => {
                write!(f, "section .go.buildinfo ({size:#x} bytes at address {address:#x})")
            }
            SearchPlace::Segment { address, size } => write!(
                f,
                "the writable PT_LOAD segment ({size:#x} bytes at address {address:#x}; no .go.buildinfo section)"
            ),
            SearchPlace::Segments { count } => write!(
                f,
                "the {count} writable PT_LOAD segments (no .go.buildinfo section)"
            ),
            SearchPlace::NoDataSegment => {
                f.write_str("the file: it has no .go.buildinfo section and no writable PT_LOAD segment")
            }
        }
    }
}

/// Reads and parses the build information of a Go binary.
pub fn read(elf: &ElfFile64<'_>) -> Result<BuildInfo, BuildInfoError> {
    let raw = read_raw(elf)?;
    BuildInfo::parse(&raw)
}

/// Reads the Go version and module information text without parsing the
/// latter, so a caller can keep the version when the module text is damaged.
pub fn read_raw(elf: &ElfFile64<'_>) -> Result<RawBuildInfo, BuildInfoError> {
    let space = AddressSpace::from_elf(elf);
    let places = search_places(elf, &space);
    let mut first_error = None;
    for &place in &places {
        match find_header(&space, place) {
            Ok(header_address) => return decode(&space, header_address),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    match (first_error, places.len()) {
        (Some(BuildInfoError::NotFound { .. }), count) if count > 1 => {
            Err(BuildInfoError::NotFound {
                place: SearchPlace::Segments { count },
            })
        }
        (Some(error), _) => Err(error),
        (None, _) => Err(BuildInfoError::NotFound {
            place: SearchPlace::NoDataSegment,
        }),
    }
}

/// Picks the ranges the header is searched in, in order: the section when
/// there is one, else every writable, non-executable segment. Go's
/// `debug/buildinfo` searches only the first such segment (Go 1.19 to
/// 1.26, and Go 1.27 drops the fallback). In a PIE the first is
/// `.data.rel.ro`, and the header is in the next one.
fn search_places(elf: &ElfFile64<'_>, space: &AddressSpace<'_>) -> Vec<SearchPlace> {
    let endian = elf.endian();
    if let Some(section) = elf.section_by_name(".go.buildinfo") {
        let header = section.elf_section_header();
        if header.sh_type(endian) != elf::SHT_NOBITS {
            return vec![SearchPlace::Section {
                address: section.address(),
                size: section.size(),
            }];
        }
    }
    let writable: Vec<SearchPlace> = space
        .segments()
        .iter()
        .filter(|segment| {
            segment.flags & (elf::PF_X.0 | elf::PF_W.0) == elf::PF_W.0 && !segment.bytes.is_empty()
        })
        .map(|segment| SearchPlace::Segment {
            address: segment.address,
            size: segment.bytes.len() as u64,
        })
        .collect();
    if writable.is_empty() {
        vec![SearchPlace::NoDataSegment]
    } else {
        writable
    }
}

/// Returns the address of the first 16-byte aligned magic in `place`.
fn find_header(space: &AddressSpace<'_>, place: SearchPlace) -> Result<u64, BuildInfoError> {
    let (start, size) = match place {
        SearchPlace::Section { address, size } | SearchPlace::Segment { address, size } => {
            (address, size)
        }
        SearchPlace::NoDataSegment | SearchPlace::Segments { .. } => {
            return Err(BuildInfoError::NotFound { place })
        }
    };
    let structure = match place {
        SearchPlace::Section { .. } => "section .go.buildinfo",
        _ => "data segment",
    };
    let end = start.saturating_add(size);
    let aligned = start
        .checked_next_multiple_of(HEADER_ALIGN)
        .ok_or(BuildInfoError::NotFound { place })?;
    if aligned >= end {
        return Err(BuildInfoError::NotFound { place });
    }
    let bytes = space.bytes_from(aligned).ok_or(BuildInfoError::Unmapped {
        structure,
        location: space.locate(aligned),
    })?;
    // The search stays inside both the place and the segment backing it.
    let limit = usize::try_from(end - aligned)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let window = bytes.get(..limit).unwrap_or_default();
    let found = window
        .chunks(HEADER_ALIGN as usize)
        .position(|chunk| chunk.starts_with(MAGIC))
        .ok_or(BuildInfoError::NotFound { place })?;
    let offset = found as u64 * HEADER_ALIGN;
    tracing::debug!(target: TRACE_TARGET, address = aligned + offset, %place, "found build information header");
    Ok(aligned + offset)
}

/// Decodes the header at `address` and the two strings it leads to.
fn decode(space: &AddressSpace<'_>, address: u64) -> Result<RawBuildInfo, BuildInfoError> {
    let location = space.locate(address);
    let bytes = space.bytes_from(address).ok_or(BuildInfoError::Unmapped {
        structure: "build information header",
        location,
    })?;
    let header = bytes.get(..HEADER_SIZE).ok_or(BuildInfoError::Truncated {
        structure: "build information header",
        location,
        needed: HEADER_SIZE as u64,
        available: bytes.len() as u64,
    })?;
    let flags = header.get(FLAGS_OFFSET).copied().unwrap_or_default();

    let (go_version, modinfo, layout) = if flags & FLAG_INLINE_STRINGS != 0 {
        let strings_start = address.saturating_add(HEADER_SIZE as u64);
        let (version, next) =
            read_inline_string(space, strings_start, "Go version", MAX_GO_VERSION_LEN)?;
        let (modinfo, _) = read_inline_string(space, next, "module information", MAX_MODINFO_LEN)?;
        (version, modinfo, Layout::Inline)
    } else {
        let pointer_size = header.get(POINTER_SIZE_OFFSET).copied().unwrap_or_default();
        let reader = PointerReader::new(pointer_size, flags & FLAG_BIG_ENDIAN != 0).ok_or(
            BuildInfoError::PointerSize {
                location,
                found: pointer_size,
            },
        )?;
        let size = usize::from(pointer_size);
        let version_pointer = reader
            .read(header.get(POINTERS_OFFSET..))
            .unwrap_or_default();
        let modinfo_pointer = reader
            .read(header.get(POINTERS_OFFSET + size..))
            .unwrap_or_default();
        let version = read_go_string(
            space,
            &reader,
            version_pointer,
            "Go version",
            MAX_GO_VERSION_LEN,
        )?;
        let modinfo = read_go_string(
            space,
            &reader,
            modinfo_pointer,
            "module information",
            MAX_MODINFO_LEN,
        )?;
        (version, modinfo, Layout::Pointers)
    };

    if go_version.is_empty() {
        return Err(BuildInfoError::EmptyVersion { location });
    }
    Ok(RawBuildInfo {
        go_version: into_string(go_version, "Go version"),
        modinfo: into_string(strip_sentinels(modinfo), "module information"),
        layout,
        header: location,
    })
}

/// Reads a uvarint length and that many bytes at `address`; returns them and
/// the address after them.
fn read_inline_string<'data>(
    space: &AddressSpace<'data>,
    address: u64,
    structure: &'static str,
    max: u64,
) -> Result<(&'data [u8], u64), BuildInfoError> {
    let location = space.locate(address);
    let bytes = space.bytes_from(address).ok_or(BuildInfoError::Unmapped {
        structure,
        location,
    })?;
    let (length, varint_len) = read_uvarint(bytes).ok_or(BuildInfoError::BadUvarint {
        structure,
        location,
    })?;
    if length > max {
        return Err(BuildInfoError::TooLong {
            structure,
            location,
            length,
            max,
        });
    }
    let content = bytes.get(varint_len..).unwrap_or_default();
    let string = usize::try_from(length)
        .ok()
        .and_then(|length| content.get(..length))
        .ok_or(BuildInfoError::Truncated {
            structure,
            location,
            needed: length,
            available: content.len() as u64,
        })?;
    let next = address
        .saturating_add(varint_len as u64)
        .saturating_add(length);
    Ok((string, next))
}

/// Decodes an unsigned LEB128 value as Go's `binary.Uvarint` does.
/// Returns the value and its encoded length, or `None` when the encoding is
/// cut short or overflows 64 bits.
fn read_uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().take(MAX_UVARINT_LEN).enumerate() {
        let bits = u64::from(byte & 0x7f);
        if index == MAX_UVARINT_LEN - 1 && byte > 1 {
            return None;
        }
        value |= bits << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

/// Reads target pointers of the size and byte order the header names.
struct PointerReader {
    size: usize,
    big_endian: bool,
}

impl PointerReader {
    fn new(size: u8, big_endian: bool) -> Option<Self> {
        matches!(size, 4 | 8).then_some(PointerReader {
            size: usize::from(size),
            big_endian,
        })
    }

    fn read(&self, bytes: Option<&[u8]>) -> Option<u64> {
        let bytes = bytes?.get(..self.size)?;
        let mut buffer = [0u8; 8];
        if self.big_endian {
            buffer[8 - self.size..].copy_from_slice(bytes);
            Some(u64::from_be_bytes(buffer))
        } else {
            buffer[..self.size].copy_from_slice(bytes);
            Some(u64::from_le_bytes(buffer))
        }
    }
}

/// Follows a pointer to a Go string header (data pointer, length) and
/// returns the bytes it describes.
///
/// NOTE: dynamic relocations are not applied. A PIE linked before Go 1.18
/// may leave these pointers for the dynamic loader to fill, and then fails
/// here with `Unmapped`, as it does in Go's own `debug/buildinfo`.
fn read_go_string<'data>(
    space: &AddressSpace<'data>,
    reader: &PointerReader,
    address: u64,
    structure: &'static str,
    max: u64,
) -> Result<&'data [u8], BuildInfoError> {
    let location = space.locate(address);
    let header = space.bytes_from(address).ok_or(BuildInfoError::Unmapped {
        structure,
        location,
    })?;
    let needed = 2 * reader.size;
    if header.len() < needed {
        return Err(BuildInfoError::Truncated {
            structure,
            location,
            needed: needed as u64,
            available: header.len() as u64,
        });
    }
    let data_pointer = reader.read(header.get(..reader.size)).unwrap_or_default();
    let length = reader.read(header.get(reader.size..)).unwrap_or_default();
    if length == 0 {
        // An empty string, such as runtime.modinfo outside module mode, may
        // have a nil data pointer.
        return Ok(&[]);
    }
    if length > max {
        return Err(BuildInfoError::TooLong {
            structure,
            location,
            length,
            max,
        });
    }
    let data_location = space.locate(data_pointer);
    let data = space
        .bytes_from(data_pointer)
        .ok_or(BuildInfoError::Unmapped {
            structure,
            location: data_location,
        })?;
    usize::try_from(length)
        .ok()
        .and_then(|length| data.get(..length))
        .ok_or(BuildInfoError::Truncated {
            structure,
            location: data_location,
            needed: length,
            available: data.len() as u64,
        })
}

/// Removes the go command's sentinel framing; text without it is not
/// module information, and is dropped as Go does.
fn strip_sentinels(modinfo: &[u8]) -> &[u8] {
    let len = modinfo.len();
    let framed = len > 2 * MODINFO_SENTINEL_LEN
        && modinfo.get(len - MODINFO_SENTINEL_LEN - 1) == Some(&b'\n');
    if framed {
        modinfo
            .get(MODINFO_SENTINEL_LEN..len - MODINFO_SENTINEL_LEN)
            .unwrap_or_default()
    } else {
        &[]
    }
}

fn into_string(bytes: &[u8], structure: &'static str) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(err) => {
            tracing::warn!(target: TRACE_TARGET, structure, %err, "build information is not UTF-8; invalid bytes replaced");
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}

impl BuildInfo {
    /// Parses the module information of `raw`.
    pub fn parse(raw: &RawBuildInfo) -> Result<BuildInfo, BuildInfoError> {
        let records = modinfo::parse(&raw.modinfo).map_err(|source| BuildInfoError::ModInfo {
            location: raw.header,
            source,
        })?;
        Ok(BuildInfo {
            go_version: raw.go_version.clone(),
            path: records.path,
            main: records.main,
            deps: records.deps,
            settings: records.settings,
            layout: raw.layout,
        })
    }

    /// Returns the module information text as Go's `BuildInfo.String` writes
    /// it, without the `go` line: the lines `go version -m` prints indented.
    pub fn modinfo_text(&self) -> String {
        let records = modinfo::ModInfo {
            path: self.path.clone(),
            main: self.main.clone(),
            deps: self.deps.clone(),
            settings: self.settings.clone(),
        };
        let mut out = String::new();
        modinfo::format(&records, &mut out);
        out
    }

    /// Returns the value of the last setting named `key`; the go command
    /// writes each key once.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|setting| setting.key == key)
            .map(|setting| setting.value.as_str())
    }

    /// Returns `-buildmode`, such as `exe` or `pie`.
    pub fn build_mode(&self) -> Option<&str> {
        self.setting("-buildmode")
    }

    /// Returns `-compiler`, normally `gc`.
    pub fn compiler(&self) -> Option<&str> {
        self.setting("-compiler")
    }

    /// Reports whether the binary was built with `-trimpath`.
    pub fn trimpath(&self) -> bool {
        self.setting("-trimpath") == Some("true")
    }

    /// Returns `-ldflags` as given to the go command.
    pub fn ldflags(&self) -> Option<&str> {
        self.setting("-ldflags")
    }

    /// Returns the effective `CGO_ENABLED`.
    pub fn cgo_enabled(&self) -> Option<bool> {
        parse_flag(self.setting("CGO_ENABLED")?)
    }

    /// Returns `GOOS`, such as `linux`.
    pub fn goos(&self) -> Option<&str> {
        self.setting("GOOS")
    }

    /// Returns `GOARCH`, such as `amd64`.
    pub fn goarch(&self) -> Option<&str> {
        self.setting("GOARCH")
    }

    /// Returns `GOAMD64`, the amd64 feature level such as `v1`.
    pub fn goamd64(&self) -> Option<&str> {
        self.setting("GOAMD64")
    }

    /// Returns the version control system of the source tree, such as `git`.
    pub fn vcs(&self) -> Option<&str> {
        self.setting("vcs")
    }

    /// Returns the commit the binary was built from.
    pub fn vcs_revision(&self) -> Option<&str> {
        self.setting("vcs.revision")
    }

    /// Returns the commit time, in RFC 3339 form.
    pub fn vcs_time(&self) -> Option<&str> {
        self.setting("vcs.time")
    }

    /// Reports whether the source tree had uncommitted changes.
    pub fn vcs_modified(&self) -> Option<bool> {
        parse_flag(self.setting("vcs.modified")?)
    }
}

/// Parses the boolean forms the go command writes (`true`/`false`, `1`/`0`).
fn parse_flag(value: &str) -> Option<bool> {
    match value {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
