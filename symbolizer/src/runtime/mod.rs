//! The Go runtime's structures in a core: struct layouts per release, the
//! goroutine list, goroutines and threads, wait reasons and panic facts.
//!
//! Reading memory and symbolizing program counters are left to the core
//! reader and the pclntab decoder; this module reaches them through the
//! small traits of [`memory`] and [`crate::unwind::FuncTable`].

pub mod layout;
pub mod layout_dwarf;
pub mod layout_table;
pub mod version;
pub mod memory;
pub mod allgs;
pub mod clock;
pub mod coderefs;
pub mod crash;
pub mod goroutine;
pub mod panic;
pub mod thread;
pub mod waitreason;
