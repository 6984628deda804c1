//! The Go runtime's structures in a core: struct layouts per release, the
//! goroutine list, goroutines and threads, wait reasons and panic facts.
//!
//! Reading memory and symbolizing program counters are left to the core
//! reader and the pclntab decoder; this module reaches them through the
//! small traits of [`memory`] and [`crate::unwind::FuncTable`].

pub mod allgs;
pub mod clock;
pub mod coderefs;
pub mod crash;
pub mod goroutine;
pub mod layout;
pub mod layout_table;
pub mod memory;
pub mod panic;
pub mod waitreason;

/// Go release numbers (kept at this path for callers).
pub mod version {
    pub use super::layout::GoVersion;
}

/// Which M, and so which goroutine, each thread of a core was running
/// (kept at this path for callers).
pub mod thread {
    pub use super::goroutine::{
        thread_m_by_procid, thread_m_from_registers, ThreadM, ThreadMapping, TlsOffset,
        INTERNAL_LINK_TLS_OFFSET,
    };
}

/// Runtime struct layouts read from DWARF (kept at this path for callers).
pub mod layout_dwarf {
    pub use super::layout::dwarf::{read_struct_members, WANTED_STRUCTS};
}
