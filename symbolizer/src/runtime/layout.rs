//! Byte offsets of the runtime fields that a core walk reads: `runtime.g`,
//! `runtime.m`, `runtime.gobuf`, `runtime.stack` and `runtime._panic`, for
//! 64-bit targets.
//!
//! A binary with DWARF gives its own layout ([`super::layout_dwarf`]). A
//! stripped one is matched by its Go release against the table of
//! [`super::layout_table`], which tests check against the DWARF of a binary
//! built by every supported toolchain. A release newer than the table is
//! rejected when it has no DWARF, because runtime structs change in most
//! releases and a guessed offset yields wrong goroutines that look right.

use std::collections::HashMap;

use serde::Serialize;

use super::layout_table;
use super::version::GoVersion;

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
    #[error("DWARF has more than {limit} entries")]
    TooManyEntries { limit: usize },
    #[error("DWARF has no struct {name}")]
    MissingStruct { name: &'static str },
    #[error("DWARF struct {structure} has no field {field}")]
    MissingField { structure: &'static str, field: &'static str },
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
    pub fn for_binary(file: &object::File<'_>, version: Option<GoVersion>) -> Result<RuntimeLayout, LayoutError> {
        match super::layout_dwarf::read_struct_members(file) {
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
    pub fn from_members(structs: &HashMap<String, StructMembers>) -> Result<RuntimeLayout, LayoutError> {
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
        let member = |structure: &str, field: &str| structs.get(structure)?.members.get(field).map(|&(offset, _)| offset);
        let clock = ClockLayout {
            sched_lastpoll: member("runtime.schedt", "lastpoll"),
            memstats_last_gc_nanotime: member("runtime.mstats", "last_gc_nanotime"),
        };
        Ok(RuntimeLayout { g: g_layout, m: m_layout, panic: panic_layout, clock, source: LayoutSource::Dwarf })
    }
}

/// One DWARF struct, for field look-ups that name it in errors.
struct Struct<'a> {
    name: &'static str,
    members: &'a StructMembers,
}

impl<'a> Struct<'a> {
    fn get(structs: &'a HashMap<String, StructMembers>, name: &'static str) -> Result<Struct<'a>, LayoutError> {
        let members = structs.get(name).ok_or(LayoutError::MissingStruct { name })?;
        Ok(Struct { name, members })
    }

    fn offset(&self, field: &'static str) -> Result<u64, LayoutError> {
        self.optional(field).ok_or(LayoutError::MissingField { structure: self.name, field })
    }

    fn optional(&self, field: &str) -> Option<u64> {
        self.members.members.get(field).map(|&(offset, _)| offset)
    }

    fn field(&self, field: &'static str) -> Result<Field, LayoutError> {
        match self.members.members.get(field) {
            Some(&(offset, Some(size))) => Ok(Field { offset, size }),
            _ => Err(LayoutError::MissingField { structure: self.name, field }),
        }
    }
}
