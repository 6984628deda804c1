//! Runtime struct layouts read from a binary's DWARF, the way debuggers do:
//! find the `DW_TAG_structure_type` entries named `runtime.g`, `runtime.m`,
//! `runtime.gobuf`, `runtime.stack` and `runtime._panic`, and read each
//! member's `DW_AT_data_member_location` and its type's `DW_AT_byte_size`.
//!
//! The Go linker compresses DWARF sections (`SHF_COMPRESSED`, zlib) when it
//! links internally; `object` decompresses them. Building a
//! [`RuntimeLayout`] from the members found is left to [`super::layout`].

use std::borrow::Cow;
use std::collections::HashMap;

use gimli::{AttributeValue, EndianSlice, RunTimeEndian, UnitOffset};
use object::{Object, ObjectSection};

use super::layout::{LayoutError, StructMembers};

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
pub fn read_struct_members(file: &object::File<'_>) -> Result<Option<HashMap<String, StructMembers>>, LayoutError> {
    if file.section_by_name(".debug_info").is_none() && file.section_by_name(".zdebug_info").is_none() {
        return Ok(None);
    }
    let endian = if file.is_little_endian() { RunTimeEndian::Little } else { RunTimeEndian::Big };
    let sections = gimli::DwarfSections::load(|id| -> Result<Cow<'_, [u8]>, LayoutError> {
        match file.section_by_name(id.name()) {
            Some(section) => section.uncompressed_data().map_err(|source| LayoutError::DwarfSection {
                section: id.name(),
                source,
            }),
            None => Ok(Cow::Borrowed(&[][..])),
        }
    })?;
    let dwarf = sections.borrow(|data| EndianSlice::new(data, endian));
    let found = scan_units(&dwarf)?;
    tracing::debug!(target: TRACE_TARGET, structs = found.len(), "read runtime struct layouts from DWARF");
    Ok(Some(found))
}

fn scan_units(dwarf: &gimli::Dwarf<Reader<'_>>) -> Result<HashMap<String, StructMembers>, LayoutError> {
    let mut found = HashMap::new();
    let mut visited = 0usize;
    let mut headers = dwarf.units();
    while let Some(header) = headers.next().map_err(|source| LayoutError::Dwarf { what: "unit header", source })? {
        let unit = dwarf.unit(header).map_err(|source| LayoutError::Dwarf { what: "unit", source })?;
        let mut cursor = unit.entries();
        while let Some(entry) = cursor.next_dfs().map_err(|source| LayoutError::Dwarf { what: "entry", source })? {
            visited += 1;
            if visited > MAX_ENTRIES {
                return Err(LayoutError::TooManyEntries { limit: MAX_ENTRIES });
            }
            if entry.tag() != gimli::DW_TAG_structure_type {
                continue;
            }
            let Some(name) = entry_name(dwarf, &unit, entry) else { continue };
            if !WANTED_STRUCTS.contains(&name.as_str()) || found.contains_key(&name) {
                continue;
            }
            let Some(size) = entry.attr_value(gimli::DW_AT_byte_size).and_then(|v| v.udata_value()) else {
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
    let mut cursor =
        unit.entries_at_offset(offset).map_err(|source| LayoutError::Dwarf { what: "struct entry", source })?;
    let Some(parent) = cursor.next_dfs().map_err(|source| LayoutError::Dwarf { what: "struct entry", source })?
    else {
        return Ok(members);
    };
    let parent_depth = parent.depth();
    while let Some(entry) = cursor.next_dfs().map_err(|source| LayoutError::Dwarf { what: "member", source })? {
        if entry.depth() <= parent_depth {
            break;
        }
        if entry.depth() != parent_depth + 1 || entry.tag() != gimli::DW_TAG_member {
            continue;
        }
        if members.len() >= MAX_MEMBERS {
            break;
        }
        let Some(name) = entry_name(dwarf, unit, entry) else { continue };
        let Some(location) = entry.attr_value(gimli::DW_AT_data_member_location).and_then(|v| v.udata_value())
        else {
            continue;
        };
        let size = entry.attr_value(gimli::DW_AT_type).and_then(|v| unit_ref(unit, v)).and_then(|t| type_size(unit, t));
        members.insert(name, (location, size));
    }
    Ok(members)
}

/// Follows typedefs to the byte size of the type at `offset`.
fn type_size(unit: &gimli::Unit<Reader<'_>>, mut offset: UnitOffset) -> Option<u64> {
    for _ in 0..MAX_TYPE_HOPS {
        let entry = unit.entry(offset).ok()?;
        if let Some(size) = entry.attr_value(gimli::DW_AT_byte_size).and_then(|v| v.udata_value()) {
            return Some(size);
        }
        offset = unit_ref(unit, entry.attr_value(gimli::DW_AT_type)?)?;
    }
    None
}

/// Turns a type reference into an offset in `unit`. The Go linker writes
/// `DW_FORM_ref_addr` references; all the runtime's types sit in one unit.
fn unit_ref(unit: &gimli::Unit<Reader<'_>>, value: AttributeValue<Reader<'_>>) -> Option<UnitOffset> {
    match value {
        AttributeValue::UnitRef(offset) => Some(offset),
        AttributeValue::DebugInfoRef(offset) => offset.to_unit_offset(&unit.header),
        _ => None,
    }
}
