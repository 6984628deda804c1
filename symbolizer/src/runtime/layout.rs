//! Go releases ([`GoVersion`], as the build information and DWARF producer
//! strings spell them: `go1.22.10`, `go1.23rc1`, `devel go1.24-abcdef`), and
//! the byte offsets of the runtime fields that a core walk reads: `runtime.g`,
//! `runtime.m`, `runtime.gobuf`, `runtime.stack` and `runtime._panic`, for
//! 64-bit targets.
//!
//! A binary with DWARF gives its own layout ([`dwarf`]). A
//! stripped one is matched by its Go release against the table of
//! [`super::layout_table`], which tests check against the DWARF of a binary
//! built by every supported toolchain. A release newer than the table is
//! rejected when it has no DWARF, because runtime structs change in most
//! releases and a guessed offset yields wrong goroutines that look right.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::layout_table;

/// An error finding the runtime's struct layouts.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot read DWARF section {section}")]
    DwarfSection {
        section: &'static str,
        #[source]
        source: object::Error,
    },
    #[error("invalid DWARF {what}")]
    Dwarf {
        what: &'static str,
        #[source]
        source: gimli::Error,
    },
    #[error(
        "DWARF section {section} claims {uncompressed_size:#x} bytes once decompressed from \
         {compressed_size:#x}, more than the {limit:#x} accepted"
    )]
    SectionTooLarge {
        section: &'static str,
        compressed_size: u64,
        uncompressed_size: u64,
        limit: u64,
    },
    #[error("DWARF has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("DWARF has no struct {name}")]
    MissingStruct { name: &'static str },
    #[error("DWARF struct {structure} has no field {field}")]
    MissingField {
        structure: &'static str,
        field: &'static str,
    },
    #[error(
        "the binary has no DWARF and {version} is not in the table of runtime layouts (which covers {covered}); \
         give the unstripped build of the same source"
    )]
    UnknownVersion { version: GoVersion, covered: String },
    #[error("the binary has no DWARF and no Go version was found in its build information")]
    NoVersion,
}

/// The members of one struct as DWARF describes them: name to (offset, size).
#[derive(Clone, Debug, Default)]
pub struct StructMembers {
    pub size: u64,
    pub members: HashMap<String, (u64, Option<u64>)>,
}

/// A field's offset and size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Field {
    pub offset: u64,
    pub size: u64,
}

/// Offsets in `runtime.g`, the goroutine descriptor. `sched` fields are
/// absolute offsets in `g` (the gobuf offset plus the field's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GLayout {
    pub size: u64,
    pub stack_lo: u64,
    pub stack_hi: u64,
    pub panic: u64,
    pub defer: u64,
    pub m: u64,
    pub sched_sp: u64,
    pub sched_pc: u64,
    pub sched_lr: u64,
    pub sched_bp: u64,
    pub syscallsp: u64,
    pub syscallpc: u64,
    /// Go 1.23 and later.
    pub syscallbp: Option<u64>,
    pub stktopsp: u64,
    pub atomicstatus: u64,
    pub goid: u64,
    pub waitsince: u64,
    pub waitreason: u64,
    pub lockedm: u64,
    pub sig: u64,
    pub sigcode0: u64,
    pub sigcode1: u64,
    pub sigpc: u64,
    /// Go 1.21 and later.
    pub parent_goid: Option<u64>,
    pub gopc: u64,
    pub startpc: u64,
    pub labels: u64,
}

/// Offsets in `runtime.m`, the OS thread descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MLayout {
    pub size: u64,
    pub g0: u64,
    pub procid: u64,
    pub gsignal: u64,
    pub curg: u64,
    pub p: u64,
    pub id: u64,
    /// `int32` up to Go 1.19, a one-byte `throwType` later.
    pub throwing: Field,
    pub locks: u64,
    pub alllink: u64,
    pub lockedg: u64,
    pub caughtsig: u64,
    pub vdso_sp: u64,
    pub vdso_pc: u64,
}

/// Offsets in `runtime._panic`, one record of a goroutine's panic chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PanicLayout {
    pub size: u64,
    /// The panic value, an `any` (type word then data word).
    pub arg: u64,
    pub link: u64,
    pub recovered: u64,
    pub goexit: u64,
    /// Go 1.25 and later.
    pub repanicked: Option<u64>,
    /// Up to Go 1.21.
    pub aborted: Option<u64>,
}

/// Offsets of the runtime's stored monotonic timestamps in its global
/// structs, read from DWARF only: `schedt.lastpoll` and
/// `mstats.last_gc_nanotime`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClockLayout {
    pub sched_lastpoll: Option<u64>,
    pub memstats_last_gc_nanotime: Option<u64>,
}

/// Every layout a core walk needs, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuntimeLayout {
    pub g: GLayout,
    pub m: MLayout,
    pub panic: PanicLayout,
    /// Empty for layouts from the table.
    pub clock: ClockLayout,
    pub source: LayoutSource,
}

/// Where a [`RuntimeLayout`] came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LayoutSource {
    /// The binary's own DWARF.
    Dwarf,
    /// The built-in table, for the releases named.
    Table { releases: String },
}

impl RuntimeLayout {
    /// Finds the layout for a binary: its DWARF when `file` has it, else the
    /// table entry for `version`.
    pub fn for_binary(
        file: &object::File<'_>,
        version: Option<GoVersion>,
    ) -> Result<RuntimeLayout, LayoutError> {
        match dwarf::read_struct_members(file) {
            Ok(Some(members)) => match RuntimeLayout::from_members(&members) {
                Ok(layout) => return Ok(layout),
                Err(error) => {
                    tracing::warn!(target: "symbolizer::runtime", %error, "DWARF lacks runtime layouts; using the table");
                }
            },
            Ok(None) => {
                tracing::debug!(target: "symbolizer::runtime", "no DWARF, so the runtime layouts come from the table");
            }
            Err(error) => {
                tracing::warn!(target: "symbolizer::runtime", %error, "cannot read DWARF; using the table of runtime layouts");
            }
        }
        RuntimeLayout::from_table(version.ok_or(LayoutError::NoVersion)?)
    }

    /// Looks `version` up in the built-in table.
    pub fn from_table(version: GoVersion) -> Result<RuntimeLayout, LayoutError> {
        layout_table::lookup(version).ok_or_else(|| LayoutError::UnknownVersion {
            version,
            covered: layout_table::covered_releases(),
        })
    }

    /// Builds a layout from the struct members DWARF describes.
    pub fn from_members(
        structs: &HashMap<String, StructMembers>,
    ) -> Result<RuntimeLayout, LayoutError> {
        let g = Struct::get(structs, "runtime.g")?;
        let m = Struct::get(structs, "runtime.m")?;
        let gobuf = Struct::get(structs, "runtime.gobuf")?;
        let stack = Struct::get(structs, "runtime.stack")?;
        let panic = Struct::get(structs, "runtime._panic")?;
        let sched = g.offset("sched")?;
        let stack_base = g.offset("stack")?;
        let g_layout = GLayout {
            size: g.members.size,
            stack_lo: stack_base + stack.offset("lo")?,
            stack_hi: stack_base + stack.offset("hi")?,
            panic: g.offset("_panic")?,
            defer: g.offset("_defer")?,
            m: g.offset("m")?,
            sched_sp: sched + gobuf.offset("sp")?,
            sched_pc: sched + gobuf.offset("pc")?,
            sched_lr: sched + gobuf.offset("lr")?,
            sched_bp: sched + gobuf.offset("bp")?,
            syscallsp: g.offset("syscallsp")?,
            syscallpc: g.offset("syscallpc")?,
            syscallbp: g.optional("syscallbp"),
            stktopsp: g.offset("stktopsp")?,
            atomicstatus: g.offset("atomicstatus")?,
            goid: g.offset("goid")?,
            waitsince: g.offset("waitsince")?,
            waitreason: g.offset("waitreason")?,
            lockedm: g.offset("lockedm")?,
            sig: g.offset("sig")?,
            sigcode0: g.offset("sigcode0")?,
            sigcode1: g.offset("sigcode1")?,
            sigpc: g.offset("sigpc")?,
            parent_goid: g.optional("parentGoid"),
            gopc: g.offset("gopc")?,
            startpc: g.offset("startpc")?,
            labels: g.offset("labels")?,
        };
        let m_layout = MLayout {
            size: m.members.size,
            g0: m.offset("g0")?,
            procid: m.offset("procid")?,
            gsignal: m.offset("gsignal")?,
            curg: m.offset("curg")?,
            p: m.offset("p")?,
            id: m.offset("id")?,
            throwing: m.field("throwing")?,
            locks: m.offset("locks")?,
            alllink: m.offset("alllink")?,
            lockedg: m.offset("lockedg")?,
            caughtsig: m.offset("caughtsig")?,
            vdso_sp: m.offset("vdsoSP")?,
            vdso_pc: m.offset("vdsoPC")?,
        };
        let panic_layout = PanicLayout {
            size: panic.members.size,
            arg: panic.offset("arg")?,
            link: panic.offset("link")?,
            recovered: panic.offset("recovered")?,
            goexit: panic.offset("goexit")?,
            repanicked: panic.optional("repanicked"),
            aborted: panic.optional("aborted"),
        };
        let member = |structure: &str, field: &str| {
            structs
                .get(structure)?
                .members
                .get(field)
                .map(|&(offset, _)| offset)
        };
        let clock = ClockLayout {
            sched_lastpoll: member("runtime.schedt", "lastpoll"),
            memstats_last_gc_nanotime: member("runtime.mstats", "last_gc_nanotime"),
        };
        Ok(RuntimeLayout {
            g: g_layout,
            m: m_layout,
            panic: panic_layout,
            clock,
            source: LayoutSource::Dwarf,
        })
    }
}

/// One DWARF struct, for field look-ups that name it in errors.
struct Struct<'a> {
    name: &'static str,
    members: &'a StructMembers,
}

impl<'a> Struct<'a> {
    fn get(
        structs: &'a HashMap<String, StructMembers>,
        name: &'static str,
    ) -> Result<Struct<'a>, LayoutError> {
        let members = structs
            .get(name)
            .ok_or(LayoutError::MissingStruct { name })?;
        Ok(Struct { name, members })
    }

    fn offset(&self, field: &'static str) -> Result<u64, LayoutError> {
        self.optional(field).ok_or(LayoutError::MissingField {
            structure: self.name,
            field,
        })
    }

    fn optional(&self, field: &str) -> Option<u64> {
        self.members.members.get(field).map(|&(offset, _)| offset)
    }

    fn field(&self, field: &'static str) -> Result<Field, LayoutError> {
        match self.members.members.get(field) {
            Some(&(offset, Some(size))) => Ok(Field { offset, size }),
            _ => Err(LayoutError::MissingField {
                structure: self.name,
                field,
            }),
        }
    }
}

/// A Go release: `go1.<minor>.<patch>`. Pre-releases (`rc`, `beta`) keep
/// patch 0, because their runtime layouts are those of the release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl GoVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> GoVersion {
        GoVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses the first `go1.N[.P]` found in `text`: a plain version, a
    /// pre-release, or a development toolchain's `devel go1.N-hash` form.
    pub fn parse(text: &str) -> Option<GoVersion> {
        let start = text.find("go1.")?;
        let rest = text.get(start + 2..)?;
        let mut numbers = [0u32; 3];
        let mut count = 0;
        for part in rest.split('.') {
            let digits: &str = &part[..part
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(part.len())];
            if digits.is_empty() {
                break;
            }
            let value = digits.parse().ok()?;
            numbers[count] = value;
            count += 1;
            if count == numbers.len() || digits.len() != part.len() {
                break;
            }
        }
        if count < 2 {
            return None;
        }
        Some(GoVersion::new(numbers[0], numbers[1], numbers[2]))
    }

    /// The release family, `1.N`, that layouts are keyed by.
    pub fn minor_release(self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    #[test]
    fn parse_release_forms() {
        assert_eq!(
            GoVersion::parse("go1.22.10"),
            Some(GoVersion::new(1, 22, 10))
        );
        assert_eq!(GoVersion::parse("go1.19"), Some(GoVersion::new(1, 19, 0)));
        assert_eq!(
            GoVersion::parse("go1.23rc1"),
            Some(GoVersion::new(1, 23, 0))
        );
        assert_eq!(
            GoVersion::parse("devel go1.24-abcdef Tue"),
            Some(GoVersion::new(1, 24, 0))
        );
        assert_eq!(
            GoVersion::parse("Go cmd/compile go1.21.13; regabi"),
            Some(GoVersion::new(1, 21, 13))
        );
        assert_eq!(
            GoVersion::parse("go1.25.5 X:nocoverageredesign"),
            Some(GoVersion::new(1, 25, 5))
        );
    }

    #[test]
    fn parse_rejects_non_versions() {
        assert_eq!(GoVersion::parse("gcc 12"), None);
        assert_eq!(GoVersion::parse("go1."), None);
        assert_eq!(GoVersion::parse(""), None);
    }

    #[test]
    fn versions_order_by_number() {
        assert!(GoVersion::new(1, 9, 0) < GoVersion::new(1, 19, 0));
        assert!(GoVersion::new(1, 22, 10) > GoVersion::new(1, 22, 9));
    }
}

/// Runtime struct layouts read from a binary's DWARF, the way debuggers do:
/// find the `DW_TAG_structure_type` entries named `runtime.g`, `runtime.m`,
/// `runtime.gobuf`, `runtime.stack` and `runtime._panic` (and the structs
/// of the clock's timestamps), and read each member's
/// `DW_AT_data_member_location` and its type's `DW_AT_byte_size`. The Go
/// linker compresses DWARF sections (`SHF_COMPRESSED`, zlib) when it links
/// internally; `object` decompresses them.
pub mod dwarf {
    use std::borrow::Cow;
    use std::collections::HashMap;

    use gimli::{AttributeValue, EndianSlice, RunTimeEndian, UnitOffset};
    use object::{Object, ObjectSection};

    use super::{LayoutError, StructMembers};

    const TRACE_TARGET: &str = "symbolizer::runtime";

    /// The runtime structs whose layouts are read. The last two hold the
    /// timestamps a core's clock is estimated from, and may be missing.
    pub const WANTED_STRUCTS: [&str; 7] = [
        "runtime.g",
        "runtime.m",
        "runtime.gobuf",
        "runtime.stack",
        "runtime._panic",
        "runtime.schedt",
        "runtime.mstats",
    ];

    /// The most members read from one struct. `runtime.m` has about 100.
    const MAX_MEMBERS: usize = 1024;
    /// The most typedef or qualifier hops followed to find a member's size.
    const MAX_TYPE_HOPS: usize = 8;
    /// The most DIEs visited in a whole `.debug_info`, so that corrupt DWARF
    /// cannot keep the scan going; a large Go service has a few million.
    const MAX_ENTRIES: usize = 50_000_000;

    type Reader<'a> = EndianSlice<'a, RunTimeEndian>;

    /// Reads the members of the runtime structs from the DWARF of `file`.
    /// Returns `Ok(None)` when the binary has no `.debug_info`.
    pub fn read_struct_members(
        file: &object::File<'_>,
    ) -> Result<Option<HashMap<String, StructMembers>>, LayoutError> {
        if file.section_by_name(".debug_info").is_none()
            && file.section_by_name(".zdebug_info").is_none()
        {
            return Ok(None);
        }
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let sections = gimli::DwarfSections::load(|id| -> Result<Cow<'_, [u8]>, LayoutError> {
            // Only the sections a walk over struct entries reads are
            // decompressed: names live in the string sections, and units
            // are read without their line programs (see `unit_without_lines`).
            let needed = matches!(
                id,
                gimli::SectionId::DebugInfo
                    | gimli::SectionId::DebugAbbrev
                    | gimli::SectionId::DebugStr
                    | gimli::SectionId::DebugStrOffsets
                    | gimli::SectionId::DebugLineStr
            );
            match file.section_by_name(id.name()).filter(|_| needed) {
                Some(section) => {
                    let read_error = |source| LayoutError::DwarfSection {
                        section: id.name(),
                        source,
                    };
                    let range = section.compressed_file_range().map_err(read_error)?;
                    crate::dwarf::sections::check_uncompressed_size(&range).map_err(|limit| {
                        LayoutError::SectionTooLarge {
                            section: id.name(),
                            compressed_size: range.compressed_size,
                            uncompressed_size: range.uncompressed_size,
                            limit,
                        }
                    })?;
                    section.uncompressed_data().map_err(read_error)
                }
                None => Ok(Cow::Borrowed(&[][..])),
            }
        })?;
        let dwarf = sections.borrow(|data| EndianSlice::new(data, endian));
        let found = scan_units(&dwarf)?;
        tracing::debug!(target: TRACE_TARGET, structs = found.len(), "read runtime struct layouts from DWARF");
        Ok(Some(found))
    }

    fn scan_units(
        dwarf: &gimli::Dwarf<Reader<'_>>,
    ) -> Result<HashMap<String, StructMembers>, LayoutError> {
        let mut found = HashMap::new();
        let mut visited = 0usize;
        let mut headers = dwarf.units();
        while let Some(header) = headers.next().map_err(|source| LayoutError::Dwarf {
            what: "unit header",
            source,
        })? {
            let unit = unit_without_lines(dwarf, header).map_err(|source| LayoutError::Dwarf {
                what: "unit",
                source,
            })?;
            let mut cursor = unit.entries();
            while let Some(entry) = cursor.next_dfs().map_err(|source| LayoutError::Dwarf {
                what: "entry",
                source,
            })? {
                visited += 1;
                if visited > MAX_ENTRIES {
                    return Err(LayoutError::TooManyEntries { limit: MAX_ENTRIES });
                }
                if entry.tag() != gimli::DW_TAG_structure_type {
                    continue;
                }
                let Some(name) = entry_name(dwarf, &unit, entry) else {
                    continue;
                };
                if !WANTED_STRUCTS.contains(&name.as_str()) || found.contains_key(&name) {
                    continue;
                }
                let Some(size) = entry
                    .attr_value(gimli::DW_AT_byte_size)
                    .and_then(|v| v.udata_value())
                else {
                    continue;
                };
                let offset = entry.offset();
                let members = read_members(dwarf, &unit, offset)?;
                found.insert(name, StructMembers { size, members });
                if found.len() == WANTED_STRUCTS.len() {
                    return Ok(found);
                }
            }
        }
        Ok(found)
    }

    /// Reads a unit as `gimli::Dwarf::unit` does, without its line program,
    /// so that `.debug_line` is not decompressed: struct layouts need none
    /// of it, and in the corpus's Go 1.19 binaries it is a third of the
    /// DWARF otherwise inflated.
    fn unit_without_lines<'a>(
        dwarf: &gimli::Dwarf<Reader<'a>>,
        header: gimli::UnitHeader<Reader<'a>>,
    ) -> gimli::Result<gimli::Unit<Reader<'a>>> {
        let abbreviations = dwarf.abbreviations(&header)?;
        let encoding = header.encoding();
        let mut str_offsets_base =
            gimli::DebugStrOffsetsBase::default_for_encoding_and_file(encoding, dwarf.file_type);
        {
            let mut cursor = header.entries(&abbreviations);
            cursor.next_dfs()?;
            if let Some(root) = cursor.current() {
                if let Some(AttributeValue::DebugStrOffsetsBase(base)) =
                    root.attr_value(gimli::DW_AT_str_offsets_base)
                {
                    str_offsets_base = base;
                }
            }
        }
        Ok(gimli::Unit {
            header,
            abbreviations,
            name: None,
            comp_dir: None,
            low_pc: 0,
            str_offsets_base,
            addr_base: gimli::DebugAddrBase(0),
            loclists_base: gimli::DebugLocListsBase::default_for_encoding_and_file(
                encoding,
                dwarf.file_type,
            ),
            rnglists_base: gimli::DebugRngListsBase::default_for_encoding_and_file(
                encoding,
                dwarf.file_type,
            ),
            line_program: None,
            dwo_id: None,
        })
    }

    fn entry_name(
        dwarf: &gimli::Dwarf<Reader<'_>>,
        unit: &gimli::Unit<Reader<'_>>,
        entry: &gimli::DebuggingInformationEntry<Reader<'_>>,
    ) -> Option<String> {
        let value = entry.attr_value(gimli::DW_AT_name)?;
        let name = dwarf.attr_string(unit, value).ok()?;
        Some(String::from_utf8_lossy(name.slice()).into_owned())
    }

    /// Reads the direct `DW_TAG_member` children of the struct at `offset`.
    fn read_members(
        dwarf: &gimli::Dwarf<Reader<'_>>,
        unit: &gimli::Unit<Reader<'_>>,
        offset: UnitOffset,
    ) -> Result<HashMap<String, (u64, Option<u64>)>, LayoutError> {
        let mut members = HashMap::new();
        let mut cursor = unit
            .entries_at_offset(offset)
            .map_err(|source| LayoutError::Dwarf {
                what: "struct entry",
                source,
            })?;
        let Some(parent) = cursor.next_dfs().map_err(|source| LayoutError::Dwarf {
            what: "struct entry",
            source,
        })?
        else {
            return Ok(members);
        };
        let parent_depth = parent.depth();
        while let Some(entry) = cursor.next_dfs().map_err(|source| LayoutError::Dwarf {
            what: "member",
            source,
        })? {
            if entry.depth() <= parent_depth {
                break;
            }
            if entry.depth() != parent_depth + 1 || entry.tag() != gimli::DW_TAG_member {
                continue;
            }
            if members.len() >= MAX_MEMBERS {
                break;
            }
            let Some(name) = entry_name(dwarf, unit, entry) else {
                continue;
            };
            let Some(location) = entry
                .attr_value(gimli::DW_AT_data_member_location)
                .and_then(|v| v.udata_value())
            else {
                continue;
            };
            let size = entry
                .attr_value(gimli::DW_AT_type)
                .and_then(|v| unit_ref(unit, v))
                .and_then(|t| type_size(unit, t));
            members.insert(name, (location, size));
        }
        Ok(members)
    }

    /// Follows typedefs to the byte size of the type at `offset`.
    fn type_size(unit: &gimli::Unit<Reader<'_>>, mut offset: UnitOffset) -> Option<u64> {
        for _ in 0..MAX_TYPE_HOPS {
            let entry = unit.entry(offset).ok()?;
            if let Some(size) = entry
                .attr_value(gimli::DW_AT_byte_size)
                .and_then(|v| v.udata_value())
            {
                return Some(size);
            }
            offset = unit_ref(unit, entry.attr_value(gimli::DW_AT_type)?)?;
        }
        None
    }

    /// Turns a type reference into an offset in `unit`. The Go linker writes
    /// `DW_FORM_ref_addr` references; all the runtime's types sit in one unit.
    fn unit_ref(
        unit: &gimli::Unit<Reader<'_>>,
        value: AttributeValue<Reader<'_>>,
    ) -> Option<UnitOffset> {
        match value {
            AttributeValue::UnitRef(offset) => Some(offset),
            AttributeValue::DebugInfoRef(offset) => offset.to_unit_offset(&unit.header),
            _ => None,
        }
    }
}
