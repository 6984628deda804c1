//! Parses the text the Go runtime prints when a program crashes.
//!
//! A Go program that panics, throws (`fatal error:`) or dies of a signal
//! prints the reason and then its goroutines' stacks to stderr. How much it
//! prints depends on `GOTRACEBACK` (`single`, `all`, `system`, `crash`).
//! This module turns that text, as Go 1.17 to 1.27 print it on Linux (amd64
//! and arm64), into a [`Traceback`]: the panic chain, the fatal message, the
//! signal, every goroutine with its status and frames, the `runtime stack:`
//! frames, the register dumps and the per-thread sections of
//! `GOTRACEBACK=crash`.
//!
//! Parsing never fails. The text is often damaged on its way to the reader:
//! journald drops blank lines, pastes and syslog lose the frame tab, log
//! shippers add prefixes and CRLF line ends, rate limits cut the middle or
//! the end. So the parser relies on none of blank lines, indentation or
//! completeness. Lines it cannot place become [`Warning`]s with their line
//! numbers, and what it drops to stay within its limits is counted in
//! [`Truncation`].
//!
//! Symbolizing the addresses and reading the core are left to the
//! `symbolizer` crate, and reading the text from journald to the other
//! modules of this crate.

pub mod addresses;
mod frame;
mod funcname;
mod header;
mod headline;
mod line;
mod model;
mod parser;
mod regs;
mod transport;
pub use transport::LinePrefix;

#[cfg(test)]
mod tests;

pub use frame::{parse_args, ArgValue};
pub use funcname::{classify_function, classify_package, package_path, FunctionClass};
pub use model::{
    Ancestor, Arch, CreatedBy, Elision, Fatal, FatalForm, Frame, Goroutine, GoroutineId,
    GoroutineStatus, Label, Message, Panic, PrefixKind, Register, Registers, RuntimeIds,
    SignalForm, SignalInfo, SystemStack, SystemStackOrigin, ThreadSection, Traceback, Transport,
    Truncation, Warning, WarningKind,
};

use std::borrow::Cow;

/// Goroutine blocks kept. Dumps of a million goroutines happen, because up
/// to Go 1.25 a map race prints every goroutine. The first blocks matter
/// most, so the rest are only counted.
pub const MAX_GOROUTINES: usize = 100_000;
/// Frames kept per stack. The runtime prints at most 100 physical frames
/// (50 + 50 since Go 1.21), each possibly with several inlined ones.
pub const MAX_FRAMES_PER_STACK: usize = 1_024;
/// Frames kept in all stacks together.
pub const MAX_TOTAL_FRAMES: usize = 1_000_000;
/// Bytes kept of one line. journald splits lines at its default `LineMax`
/// of 48 KiB, so only other transports deliver longer ones.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Lines read; the rest of a larger text is counted and ignored.
pub const MAX_LINES: usize = 8_000_000;
/// Bytes kept of one panic value or fatal message, continuation lines
/// included.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Entries of the panic chain kept.
pub const MAX_PANICS: usize = 64;
/// Warnings kept.
pub const MAX_WARNINGS: usize = 1_000;
/// Bytes of the offending line kept in a warning.
pub const MAX_WARNING_TEXT_BYTES: usize = 200;
/// Diagnostics kept outside goroutine blocks.
pub const MAX_MESSAGES: usize = 1_000;
/// Diagnostic lines kept per goroutine; a bad-frame hex dump is about 70.
pub const MAX_DIAGNOSTICS_PER_GOROUTINE: usize = 256;
/// pprof labels kept per goroutine.
pub const MAX_LABELS: usize = 64;
/// Registers kept per dump; amd64 prints 21, arm64 34.
pub const MAX_REGISTERS: usize = 64;
/// Per-thread sections kept.
pub const MAX_THREADS: usize = 4_096;

/// How to read the text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Detect a per-line prefix added by a log transport (syslog and
    /// `journalctl` short formats, CRI container logs, bare RFC 3339
    /// timestamps) and strip it. With a syslog prefix, lines of other
    /// processes are left out, the crashed process being the one that
    /// printed the first line that starts a crash.
    pub strip_prefixes: bool,
}

impl ParseOptions {
    /// Options that detect and strip transport prefixes.
    pub fn stripping_prefixes() -> ParseOptions {
        ParseOptions {
            strip_prefixes: true,
        }
    }
}

/// Parses crash text as the runtime printed it.
pub fn parse(text: &str) -> Traceback {
    parse_with(text, &ParseOptions::default())
}

/// Parses crash text that may be invalid UTF-8, as journald can store it.
/// Invalid sequences become U+FFFD.
pub fn parse_bytes(bytes: &[u8], options: &ParseOptions) -> Traceback {
    let text: Cow<'_, str> = String::from_utf8_lossy(bytes);
    parse_with(&text, options)
}

/// Parses crash text with the given options.
pub fn parse_with(text: &str, options: &ParseOptions) -> Traceback {
    let mut traceback = Traceback::default();
    let lines = transport::split_lines(
        text,
        options,
        &mut traceback.transport,
        &mut traceback.truncated,
    );
    let line_count = lines.len();
    let mut parser = parser::Parser::new(traceback);
    for line in &lines {
        parser.line(line);
    }
    let traceback = parser.finish();
    tracing::debug!(
        target: "gocrash::traceback",
        lines = line_count,
        goroutines = traceback.goroutines.len(),
        warnings = traceback.warnings.len(),
        truncated = !traceback.truncated.is_empty(),
        "parsed crash text"
    );
    traceback
}
