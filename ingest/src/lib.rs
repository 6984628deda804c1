//! Brings crashes in from where a systemd host keeps them.
//!
//! journald holds a crashed service's stderr (one entry per line) and the
//! entry systemd-coredump writes for each core; systemd-coredump's store
//! holds the cores. This crate reads those, and parses the Go runtime's crash
//! text. Reading binaries and cores is left to the `symbolizer` crate.

pub mod coredump;
pub mod crashtext;
pub mod journal;
pub mod select;
pub mod signature;
pub mod time;
pub mod traceback;
