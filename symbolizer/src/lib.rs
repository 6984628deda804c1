//! Reads Go executables and the ELF cores of Go processes.
//!
//! This crate turns program counters into functions, files and lines (through
//! the Go linker's `.gopclntab`, its inline trees, and DWARF for C code), reads
//! a binary's build information, and walks the Go runtime's structures in a
//! core to rebuild every goroutine's stack. It knows nothing of journald or of
//! how a core was captured: callers hand it paths or memory-mapped bytes.
//!
//! No function here panics on malformed input. Every length read from a file
//! is checked against the bytes that are really there before it is used.

pub mod binary;
pub mod buildid;
pub mod buildinfo;
pub mod core;
pub mod decompress;
pub mod dwarf;
pub mod goroutines;
pub mod hashing;
pub mod pclntab;
pub mod runtime;
pub mod threads;
pub mod unwind;

#[cfg(test)]
mod testelf;

/// Joins an error and its sources with `: `, lowest-level last, the way
/// messages show an error on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
