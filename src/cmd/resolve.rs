//! `gocrash resolve`: program counters to function, file and line.
//!
//! The text output is `go tool addr2line`'s: for each address a function
//! line and a `file:line` line, `?` and `?:0` for an address no function
//! contains. Inside inlined code it prints the physical function with the
//! innermost inlined call's file and line. With `--inlines` it prints every
//! inlined frame instead, innermost first, as the runtime's traceback does.
//! Addresses outside the pclntab (cgo's C code) are looked up in DWARF and
//! the ELF symbol tables.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use symbolizer::binary::Binary;
use symbolizer::dwarf::{CFrame, CSymbolizer};
use symbolizer::pclntab::{Frame, Pclntab};

use crate::exit::Status;
use crate::output::{Format, Output};
use crate::render::escape::escape_line;

/// Maximum length of a stdin line read as an address, which has at most 18
/// characters. The rest of a longer line is skipped, not stored.
const MAX_INPUT_LINE_BYTES: usize = 4096;
/// Bytes of a rejected input quoted in an error message.
const MAX_QUOTED_BYTES: usize = 100;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Go binary the addresses belong to.
    #[arg(long)]
    pub binary: PathBuf,
    /// The address a PIE binary's first segment was loaded at (hex), as
    /// /proc/PID/maps shows it, so that runtime addresses resolve; omit it
    /// for link-time addresses.
    #[arg(long, value_parser = parse_hex)]
    pub base: Option<u64>,
    /// The load bias (hex): the load address minus the link-time address,
    /// as `gocrash symbolize --json` prints it in `load_bias`. An
    /// alternative to --base.
    #[arg(long, value_parser = parse_hex, conflicts_with = "base")]
    pub bias: Option<u64>,
    /// Print every inlined frame, innermost first, instead of only the
    /// physical function.
    #[arg(long)]
    pub inlines: bool,
    #[command(flatten)]
    pub output: Output,
    /// Addresses to resolve, in hex with or without 0x; read from stdin, one
    /// per line, when none are given. Exits with 4 when some address could
    /// not be read (invalid hex, below the load base, damaged tables); an
    /// address that no function contains prints `?` as go tool addr2line
    /// does, and exits with 0.
    pub addresses: Vec<String>,
}

pub(super) fn parse_hex(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    u64::from_str_radix(digits, 16).map_err(|err| {
        format!(
            "invalid hex address {}: {err}",
            quote_input(trimmed, trimmed.len())
        )
    })
}

/// Quotes an input of `full_len` bytes, of which `text` is the start, for an
/// error message: at most [`MAX_QUOTED_BYTES`] of it with control characters
/// escaped, and the full length when that is not all of it.
fn quote_input(text: &str, full_len: usize) -> String {
    if text.len() <= MAX_QUOTED_BYTES && full_len <= text.len() {
        return format!("{text:?}");
    }
    let mut end = MAX_QUOTED_BYTES.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({full_len} bytes)", &text[..end])
}

/// Reads one line of `input` into `line`, keeping at most `max` bytes and
/// the newline, and skips the rest of a longer line without storing it.
/// Returns the line's full length without its newline, or `None` at the
/// end of the input.
fn read_capped_line(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<usize>> {
    line.clear();
    let mut total = 0usize;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            return Ok((total > 0).then_some(total));
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = match newline {
            Some(at) => &available[..=at],
            None => available,
        };
        let room = max.saturating_add(1).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        total = total.saturating_add(used);
        input.consume(used);
        if newline.is_some() {
            return Ok(Some(total - 1));
        }
    }
}

/// Builds the result printed for a stdin line that cannot be an address.
fn invalid_line(bytes: &[u8], error: String) -> Resolved {
    let shown = String::from_utf8_lossy(bytes.get(..MAX_QUOTED_BYTES).unwrap_or(bytes));
    Resolved {
        address: shown.trim().to_owned(),
        link_address: None,
        source: None,
        frames: Vec::new(),
        error: Some(error),
        symbol_offset: None,
    }
}

/// One resolved frame, in the shape both output formats print.
#[derive(Debug, Serialize)]
pub(super) struct OutFrame {
    pub(super) function: Option<String>,
    pub(super) file: Option<String>,
    pub(super) line: Option<i64>,
    pub(super) inlined: bool,
}

impl OutFrame {
    fn from_go(frame: Frame<'_>) -> OutFrame {
        OutFrame {
            function: Some(frame.function.into_owned()),
            file: frame.file.map(|f| f.into_owned()),
            line: frame.line.map(i64::from),
            inlined: frame.inlined,
        }
    }

    fn from_c(frame: CFrame) -> OutFrame {
        OutFrame {
            function: frame.function,
            file: frame.file,
            line: frame.line.map(i64::from),
            inlined: frame.inlined,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Resolved {
    /// The address as given.
    pub(super) address: String,
    /// The link-time address looked up (the load bias removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) link_address: Option<String>,
    /// The source of the frames: "pclntab", "dwarf" or "symbols".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) source: Option<&'static str>,
    pub(super) frames: Vec<OutFrame>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
    /// For C code, the distance from the start of the ELF symbol of the
    /// physical function.
    #[serde(skip)]
    pub(super) symbol_offset: Option<u64>,
}

pub(super) struct Resolver<'a> {
    pclntab: &'a Pclntab<'a>,
    c_symbolizer: CSymbolizer<'a>,
    bias: u64,
    inlines: bool,
    go_frames: Vec<Frame<'a>>,
}

impl<'a> Resolver<'a> {
    /// Builds the resolver of this command for `binary`, so that other
    /// commands resolve addresses exactly as `resolve` does.
    pub(super) fn new(
        binary: &'a Binary,
        pclntab: &'a Pclntab<'a>,
        bias: u64,
        inlines: bool,
    ) -> Resolver<'a> {
        Resolver {
            pclntab,
            c_symbolizer: binary.c_symbolizer().with_load_bias(0),
            bias,
            inlines,
            go_frames: Vec::new(),
        }
    }

    pub(super) fn resolve(&mut self, text: &str) -> Resolved {
        let mut resolved = Resolved {
            address: text.trim().to_owned(),
            link_address: None,
            source: None,
            frames: Vec::new(),
            error: None,
            symbol_offset: None,
        };
        let address = match parse_hex(text) {
            Ok(address) => address,
            Err(err) => {
                resolved.error = Some(err);
                return resolved;
            }
        };
        let Some(link) = address.checked_sub(self.bias) else {
            resolved.error = Some(format!("address 0x{address:x} is below the load base"));
            return resolved;
        };
        resolved.link_address = Some(format!("0x{link:x}"));
        let go = if self.inlines {
            self.go_frames.clear();
            self.pclntab
                .resolve_inlined(link, &mut self.go_frames)
                .map(|found| found.then_some(()))
        } else {
            self.pclntab.resolve_addr2line(link).map(|frame| {
                frame.map(|frame| {
                    self.go_frames.clear();
                    self.go_frames.push(frame);
                })
            })
        };
        match go {
            Ok(Some(())) => {
                resolved.source = Some("pclntab");
                resolved.frames = self.go_frames.drain(..).map(OutFrame::from_go).collect();
            }
            Ok(None) => {
                let frames = self.c_symbolizer.symbolize_file_address(link);
                resolved.symbol_offset = frames.last().and_then(|frame| frame.symbol_offset);
                resolved.source = frames.first().map(|frame| match frame.source {
                    symbolizer::dwarf::FrameSource::Dwarf => "dwarf",
                    symbolizer::dwarf::FrameSource::SymbolTable => "symbols",
                });
                let mut frames: Vec<OutFrame> = frames.into_iter().map(OutFrame::from_c).collect();
                if !self.inlines {
                    // Like the Go case: the physical function's name with the
                    // innermost frame's file and line.
                    if let (Some(innermost), Some(outer)) = (frames.first(), frames.last()) {
                        let merged = OutFrame {
                            function: outer.function.clone(),
                            file: innermost.file.clone(),
                            line: innermost.line,
                            inlined: false,
                        };
                        frames = vec![merged];
                    }
                }
                resolved.frames = frames;
            }
            Err(err) => resolved.error = Some(format!("address 0x{address:x}: {err}")),
        }
        resolved
    }
}

impl Resolver<'_> {
    /// Resolves `text` and writes the text form without building a
    /// [`Resolved`], which keeps bulk resolution allocation-free for Go
    /// code. Returns the error message for an address that failed.
    fn resolve_text(&mut self, text: &str, out: &mut impl Write) -> anyhow::Result<Option<String>> {
        if !self.inlines {
            if let Ok(address) = parse_hex(text) {
                if let Some(link) = address.checked_sub(self.bias) {
                    if let Ok(Some(frame)) = self.pclntab.resolve_addr2line(link) {
                        let file = frame.file.as_deref().unwrap_or("");
                        writeln!(
                            out,
                            "{}\n{}:{}",
                            escape_line(&frame.function),
                            escape_line(file),
                            frame.line.unwrap_or(-1)
                        )?;
                        return Ok(None);
                    }
                }
            }
        }
        let resolved = self.resolve(text);
        write_text(out, &resolved)?;
        Ok(resolved.error)
    }
}

/// Writes a result in `go tool addr2line`'s two-line form. Names from the
/// binary are escaped, so a crafted binary cannot drive the terminal or add
/// lines; names without control characters print unchanged.
fn write_text(out: &mut impl Write, resolved: &Resolved) -> std::io::Result<()> {
    if resolved.frames.is_empty() {
        return out.write_all(b"?\n?:0\n");
    }
    for frame in &resolved.frames {
        match (&frame.function, &frame.file, frame.line) {
            // A function whose tables give no file or line prints as
            // addr2line prints it: an empty file name and line -1.
            (Some(function), file, line) => writeln!(
                out,
                "{}\n{}:{}",
                escape_line(function),
                escape_line(file.as_deref().unwrap_or("")),
                line.unwrap_or(-1)
            )?,
            (None, Some(file), Some(line)) => writeln!(out, "?\n{}:{line}", escape_line(file))?,
            (None, _, _) => out.write_all(b"?\n?:0\n")?,
        }
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let format = args.output.format();
    let binary = Binary::open(&args.binary)?;
    crate::crash_input::warn_if_cut_short(&binary);
    let pclntab = binary.pclntab()?;
    let bias = match (args.base, args.bias) {
        (Some(base), _) => binary.load_bias_for_base(base).with_context(|| {
            format!(
                "--base 0x{base:x} is below the link-time base 0x{:x} of {}",
                binary.link_base(),
                args.binary.display()
            )
        })?,
        (None, Some(bias)) => bias,
        (None, None) => 0,
    };
    if bias != 0 && !binary.is_pie() {
        tracing::warn!(target: "gocrash::resolve", "{} is not position-independent; --base or --bias still shifts every address", args.binary.display());
    }
    let mut resolver = Resolver {
        pclntab,
        c_symbolizer: binary.c_symbolizer().with_load_bias(0),
        bias,
        inlines: args.inlines,
        go_frames: Vec::new(),
    };

    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut failures = 0u64;
    let mut count = 0u64;
    let mut unresolved = 0u64;
    let mut emit = |resolved: Resolved,
                    out: &mut BufWriter<std::io::StdoutLock<'_>>,
                    failures: &mut u64|
     -> anyhow::Result<()> {
        if let Some(err) = &resolved.error {
            *failures += 1;
            stderr_line!("gocrash: {err}");
        } else if resolved.frames.is_empty() {
            unresolved += 1;
        }
        match format {
            Format::Json => {
                out.write_all(if count == 0 { b"[\n" } else { b",\n" })?;
                serde_json::to_writer(&mut *out, &resolved)?;
            }
            _ => write_text(out, &resolved)?,
        }
        count += 1;
        Ok(())
    };

    if args.addresses.is_empty() {
        let mut input = std::io::BufReader::with_capacity(64 * 1024, std::io::stdin().lock());
        let mut bytes = Vec::new();
        let mut number = 0u64;
        loop {
            let Some(length) = read_capped_line(&mut input, &mut bytes, MAX_INPUT_LINE_BYTES)
                .context("cannot read addresses from stdin")?
            else {
                break;
            };
            number += 1;
            // A line that cannot be an address is reported and skipped, so
            // one bad line in a long input does not lose the rest.
            let kept = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            let line = if length > kept.len() {
                Err(format!(
                    "stdin line {number}: too long for an address (limit {MAX_INPUT_LINE_BYTES} bytes): {}",
                    quote_input(&String::from_utf8_lossy(kept), length)
                ))
            } else {
                std::str::from_utf8(&bytes).map_err(|_| {
                    let text = String::from_utf8_lossy(kept);
                    format!(
                        "stdin line {number}: invalid UTF-8: {}",
                        quote_input(&text, text.len())
                    )
                })
            };
            let line = match line {
                Ok(line) => line,
                Err(error) => {
                    let resolved = invalid_line(&bytes, error);
                    if format == Format::Text {
                        failures += 1;
                        if let Some(error) = &resolved.error {
                            stderr_line!("gocrash: {error}");
                        }
                        write_text(&mut out, &resolved)?;
                    } else {
                        emit(resolved, &mut out, &mut failures)?;
                    }
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            if format == Format::Text {
                if let Some(err) = resolver.resolve_text(line, &mut out)? {
                    failures += 1;
                    stderr_line!("gocrash: stdin line {number}: {err}");
                }
            } else {
                let mut resolved = resolver.resolve(line);
                if let Some(err) = resolved.error.take() {
                    resolved.error = Some(format!("stdin line {number}: {err}"));
                }
                emit(resolved, &mut out, &mut failures)?;
            }
            // Flush before a read that may block, so a caller that writes
            // one address and waits receives its result, while piped input
            // still leaves in large writes.
            if input.buffer().is_empty() {
                out.flush()?;
            }
        }
    } else {
        for address in &args.addresses {
            emit(resolver.resolve(address), &mut out, &mut failures)?;
        }
    }
    if format == Format::Json {
        out.write_all(if count == 0 { b"[]\n" } else { b"\n]\n" })?;
    }
    out.flush()?;
    if unresolved > 0 && bias == 0 && binary.is_pie() {
        tracing::warn!(target: "gocrash::resolve", unresolved, "{} is position-independent, and addresses are taken as link-time addresses without --base (where the binary was loaded) or --bias (what symbolize --json gives as load_bias)", args.binary.display());
    } else if unresolved > 0 && unresolved == count && args.base.is_some() {
        // Every address missed: the likeliest cause is a load bias given
        // as the base, which shifts every address by the link-time base.
        tracing::warn!(target: "gocrash::resolve", unresolved, "no address is in a function of {} with --base 0x{:x}; --base takes the address the binary was loaded at (its first mapping in /proc/PID/maps), and --bias the difference from its link-time base 0x{:x} (symbolize --json's load_bias)", args.binary.display(), args.base.unwrap_or(0), binary.link_base());
    }
    Ok(if failures > 0 {
        Status::Partial
    } else {
        Status::Success
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_hex_accepts_both_forms() {
        assert_eq!(parse_hex("0x4a1f"), Ok(0x4a1f));
        assert_eq!(parse_hex("4A1F\n"), Ok(0x4a1f));
        assert_eq!(parse_hex(" 0X10 "), Ok(0x10));
        assert!(parse_hex("zz").unwrap_err().contains("\"zz\""));
        assert!(parse_hex("0x").is_err());
        assert!(parse_hex("1ffffffffffffffff").is_err());
    }

    #[test]
    fn parse_hex_quotes_at_most_100_bytes() {
        let long = "z".repeat(5000);
        let error = parse_hex(&long).unwrap_err();
        assert!(error.contains("… (5000 bytes)"), "{error}");
        assert!(error.len() < 200, "{error}");
        assert!(parse_hex("\x1b[2J").unwrap_err().contains("\\u{1b}[2J"));
    }

    #[test]
    fn capped_lines_skip_the_rest() {
        let mut input = std::io::BufReader::with_capacity(8, &b"0x10\nabcdefghijklmnop\n0x20"[..]);
        let mut line = Vec::new();
        assert_eq!(read_capped_line(&mut input, &mut line, 8).unwrap(), Some(4));
        assert_eq!(line, b"0x10\n");
        assert_eq!(
            read_capped_line(&mut input, &mut line, 8).unwrap(),
            Some(16)
        );
        assert_eq!(line, b"abcdefghi");
        assert_eq!(read_capped_line(&mut input, &mut line, 8).unwrap(), Some(4));
        assert_eq!(line, b"0x20");
        assert_eq!(read_capped_line(&mut input, &mut line, 8).unwrap(), None);
    }

    #[test]
    fn unknown_address_prints_like_addr2line() {
        let mut out = Vec::new();
        let resolved = Resolved {
            address: "0x1".into(),
            link_address: None,
            source: None,
            frames: vec![],
            error: None,
            symbol_offset: None,
        };
        write_text(&mut out, &resolved).unwrap();
        assert_eq!(out, b"?\n?:0\n");
    }

    #[test]
    fn missing_file_and_line_print_like_addr2line() {
        let mut out = Vec::new();
        let frame = OutFrame {
            function: Some("main.f".into()),
            file: None,
            line: None,
            inlined: false,
        };
        let resolved = Resolved {
            address: "0x1".into(),
            link_address: None,
            source: None,
            frames: vec![frame],
            error: None,
            symbol_offset: None,
        };
        write_text(&mut out, &resolved).unwrap();
        assert_eq!(out, b"main.f\n:-1\n");
    }

    #[test]
    fn names_with_control_characters_are_escaped() {
        let mut out = Vec::new();
        let frame = OutFrame {
            function: Some("main.f\x1b[2J".into()),
            file: Some("/src/a\nb.go".into()),
            line: Some(3),
            inlined: false,
        };
        let resolved = Resolved {
            address: "0x1".into(),
            link_address: None,
            source: None,
            frames: vec![frame],
            error: None,
            symbol_offset: None,
        };
        write_text(&mut out, &resolved).unwrap();
        assert_eq!(out, b"main.f\\x1b[2J\n/src/a\\nb.go:3\n");
    }
}
