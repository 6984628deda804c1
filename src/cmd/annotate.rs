//! `gocrash annotate`: a Go crash text written back with the symbol of
//! every code address the runtime printed as bare hex.
//!
//! Finding the addresses in the text is `ingest::traceback::addresses`'s
//! job, and resolving them `resolve`'s [`Resolver`], so an annotation names
//! what `gocrash resolve --inlines` prints for the same address. This
//! module reads the input, finds the load address of a position-independent
//! binary, and writes the annotations: each one a line of its own under the
//! annotated line, starting with a tab and `# `, one per source-level frame,
//! innermost first. Every input byte is written back unchanged, so deleting
//! the annotation lines gives back the input.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ingest::crashtext::TextOptions;
use ingest::select::{CoreFile, OpenOptions};
use ingest::traceback::addresses::{AddressKind, AddressScanner, Found, FramePc, TextAddress};
use ingest::traceback::LinePrefix;
use serde::Serialize;
use symbolizer::binary::Binary;
use symbolizer::decompress::Compression;
use symbolizer::pclntab::Pclntab;

use super::list::JournalArgs;
use super::resolve::{parse_hex, OutFrame, Resolver};
use crate::exit::{Status, WithStatus};

/// Bytes read from the input at most. The corpus program that prints
/// 10,000 goroutines writes 10 MiB, so this admits about a million.
const MAX_INPUT_BYTES: u64 = 1 << 30;
/// Lines longer than this are written back without being scanned. The
/// traceback parser keeps no more of a line either.
const MAX_LINE_BYTES: usize = ingest::traceback::MAX_LINE_BYTES;
/// Go frames that must agree on a PIE's load bias before it is used, so
/// that one frame whose function name occurs twice cannot decide it.
const MIN_AGREEING_FRAMES: usize = 3;
/// Go frames looked at to infer the load bias; more add no certainty.
const MAX_INFERENCE_FRAMES: usize = 100_000;
/// Loaded segments are mapped at page boundaries, so a load bias is a
/// multiple of the smallest page size of amd64 and arm64.
const PAGE_SIZE: u64 = 0x1000;
/// The start of an annotation line, after the line end.
const ANNOTATION_PREFIX: &str = "\t# ";

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when the text was written with its annotations; 1 on failure \
(no binary, an unreadable input, a PIE whose load address cannot be inferred, a binary that is \
not the build the --crash core records, without --force); 3 when --crash \
matched no crash; 4 when the text was written but lines longer than 64 KiB were passed through \
without being scanned."
)]
pub struct Args {
    /// The crash text: a file, or - for stdin. Without FILE and --crash,
    /// stdin is read.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The Go binary that printed the text. Without it, the executable the
    /// journal names for the --crash crash is used.
    #[arg(long, value_name = "BIN")]
    pub binary: Option<PathBuf>,
    /// The address the binary's first segment was loaded at (hex), as
    /// /proc/PID/maps shows it. Without it, a PIE's load address is inferred
    /// from the Go frames that the text prints with pc=.
    #[arg(long, value_name = "ADDR", value_parser = parse_hex)]
    pub base: Option<u64>,
    /// Annotate the crash text of a crash in the journal: a PID, an
    /// executable path, a journal match FIELD=VALUE or a command name, as
    /// CRASH of the other commands. The newest matching crash is read.
    #[arg(long, value_name = "CRASH", conflicts_with = "input", value_parser = crate::crash_input::parse_crash)]
    pub crash: Option<String>,
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Print the annotated addresses as JSON (gocrash.annotate/1) instead
    /// of the text.
    #[arg(long)]
    pub json: bool,
    /// With --crash, use the binary even when its build ID is not the one
    /// the crash's core records.
    #[arg(long)]
    pub force: bool,
}

/// Lines looked at to find a transport prefix, as many as the crash text
/// parser looks at.
const PREFIX_PROBE_LINES: usize = 500;

/// The crash text and what is known of where it came from.
struct Input {
    bytes: Vec<u8>,
    /// The executable the journal names for the crash, with `--crash`.
    executable: Option<PathBuf>,
    /// The crash's core, with `--crash`: its copy of the executable's first
    /// page proves which build crashed.
    core: Option<CoreFile>,
}

/// The load bias and the evidence for it.
#[derive(Debug, Serialize)]
struct BaseChoice {
    /// `argument` (`--base`), `inferred` (from the Go frames) or `not_pie`.
    source: &'static str,
    /// The address the first segment was loaded at.
    #[serde(serialize_with = "hex")]
    address: u64,
    #[serde(serialize_with = "hex")]
    load_bias: u64,
    /// Go frames whose pc, less the bias, is in the function the text names.
    agreeing_frames: usize,
    /// Go frames with a pc in the text.
    frames: usize,
    /// The first agreeing frame, to check by hand.
    example: Option<FrameExample>,
}

#[derive(Debug, Serialize)]
struct FrameExample {
    line: usize,
    function: String,
    #[serde(serialize_with = "hex")]
    pc: u64,
}

/// One source-level frame of an annotated address.
#[derive(Debug, Serialize)]
struct AnnotationFrame {
    function: Option<String>,
    /// The distance from the physical function's entry or symbol; `None`
    /// for inlined frames.
    #[serde(serialize_with = "hex_option")]
    offset: Option<u64>,
    file: Option<String>,
    line: Option<i64>,
    inlined: bool,
}

#[derive(Debug, Serialize)]
struct Annotation {
    line: usize,
    kind: AddressKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    register: Option<String>,
    #[serde(serialize_with = "hex")]
    address: u64,
    #[serde(serialize_with = "hex")]
    link_address: u64,
    /// `pclntab`, `dwarf` or `symbols`, as in `gocrash resolve --json`.
    source: Option<&'static str>,
    frames: Vec<AnnotationFrame>,
}

/// A program counter of the text that got no annotation.
#[derive(Debug, Serialize)]
struct Unresolved {
    line: usize,
    kind: AddressKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    register: Option<String>,
    #[serde(serialize_with = "hex")]
    address: u64,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Document<'a> {
    schema: &'static str,
    binary: &'a Path,
    pie: bool,
    base: &'a BaseChoice,
    lines: usize,
    /// Lines passed through without being scanned, for their length.
    long_lines: usize,
    annotations: &'a [Annotation],
    unresolved: &'a [Unresolved],
}

fn hex<S: serde::Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("0x{value:x}"))
}

fn hex_option<S: serde::Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => hex(value, serializer),
        None => serializer.serialize_none(),
    }
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let input = read_input(&args)?;
    let lines = split_lines(&input.bytes);

    let scan = scan_lines(&lines);
    if scan.long_lines > 0 {
        tracing::warn!(target: "gocrash::annotate", long_lines = scan.long_lines, "lines longer than {MAX_LINE_BYTES} bytes were written back without being scanned");
    }

    let binary_path = match (&args.binary, &input.executable) {
        (Some(path), _) => path.clone(),
        (None, Some(executable)) => executable.clone(),
        (None, None) => anyhow::bail!(
            "no binary to resolve the addresses with: pass --binary BIN, the Go binary that printed the text"
        ),
    };
    let binary = Binary::open(&binary_path)
        .with_context(|| format!("cannot open the binary {}", binary_path.display()))?;
    crate::crash_input::warn_if_cut_short(&binary);
    if let Some(core) = &input.core {
        crate::crash_input::check_binary_of_core(core, &binary, args.force)?;
    }
    let pclntab = binary.pclntab()?;
    let base = choose_base(&args, &binary, pclntab, &scan.frame_pcs)?;

    let mut resolver = Resolver::new(&binary, pclntab, base.load_bias, true);
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    if args.json {
        let mut annotations = Vec::new();
        let mut unresolved = Vec::new();
        for address in scan.addresses {
            match annotate(&mut resolver, &binary, pclntab, base.load_bias, &address) {
                Ok(Some(annotation)) => annotations.push(annotation),
                Ok(None) => {}
                Err(reason) => unresolved.push(Unresolved {
                    line: address.line,
                    kind: address.kind,
                    register: address.register,
                    address: address.value,
                    reason,
                }),
            }
        }
        tracing::info!(target: "gocrash::annotate", annotated = annotations.len(), unresolved = unresolved.len(), "resolved the addresses of the text");
        let document = Document {
            schema: "gocrash.annotate/1",
            binary: binary.path(),
            pie: binary.is_pie(),
            base: &base,
            lines: lines.len(),
            long_lines: scan.long_lines,
            annotations: &annotations,
            unresolved: &unresolved,
        };
        crate::output::write_json(&mut out, &document, crate::output::indent_stdout_json())?;
    } else {
        // Each address is resolved as its line is written, so no
        // annotation is kept after its line.
        let mut annotated = 0usize;
        let mut unresolved = 0usize;
        let annotations = scan.addresses.iter().filter_map(|address| {
            match annotate(&mut resolver, &binary, pclntab, base.load_bias, address) {
                Ok(Some(annotation)) => {
                    annotated += 1;
                    Some(annotation)
                }
                Ok(None) => None,
                Err(_) => {
                    unresolved += 1;
                    None
                }
            }
        });
        write_annotated(&mut out, &lines, annotations)?;
        tracing::info!(target: "gocrash::annotate", annotated, unresolved, "resolved the addresses of the text");
    }
    out.flush()?;
    Ok(if scan.long_lines > 0 {
        Status::Partial
    } else {
        Status::Success
    })
}

/// The addresses and Go frame pcs of a text.
struct Scan {
    addresses: Vec<TextAddress>,
    frame_pcs: Vec<FramePc>,
    /// Lines passed through without being scanned, for their length.
    long_lines: usize,
}

/// Scans every line of the text for bare code addresses and Go frame pcs.
/// A prefix most lines carry (`journalctl -o short`, syslog, container
/// logs) is looked past, as the crash text parser does.
fn scan_lines(lines: &[&[u8]]) -> Scan {
    let mut scanner = AddressScanner::new();
    let probe: Vec<Cow<'_, str>> = lines
        .iter()
        .take(PREFIX_PROBE_LINES)
        .map(|line| String::from_utf8_lossy(split_line_end(line).0))
        .collect();
    let prefix = LinePrefix::detect(probe.iter().map(|line| line.as_ref()));
    if let Some(prefix) = prefix {
        tracing::info!(target: "gocrash::annotate", kind = ?prefix.kind(), "the lines carry a transport prefix, which is looked past");
    }
    let mut scan = Scan {
        addresses: Vec::new(),
        frame_pcs: Vec::new(),
        long_lines: 0,
    };
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        let (content, _) = split_line_end(line);
        // A line too long to scan still resets what the scanner carries
        // from one line to the next.
        let text = if content.len() > MAX_LINE_BYTES {
            scan.long_lines += 1;
            Cow::Borrowed("")
        } else {
            String::from_utf8_lossy(content)
        };
        let text = prefix.map_or(&*text, |prefix| prefix.strip(&text));
        match scanner.scan_line(number, text) {
            Some(Found::Address(address)) => scan.addresses.push(address),
            Some(Found::FramePc(frame)) => scan.frame_pcs.push(frame),
            None => {}
        }
    }
    scan
}

/// Reads the crash text from the journal (`--crash`), a file or stdin.
fn read_input(args: &Args) -> anyhow::Result<Input> {
    if let Some(crash) = &args.crash {
        return read_journal_text(crash, &args.journal);
    }
    let bytes = match args.input.as_deref() {
        Some(path) if path != Path::new("-") => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open the crash text {}", path.display()))?;
            read_bounded(file).with_context(|| format!("cannot read {}", path.display()))?
        }
        _ => read_bounded(std::io::stdin().lock())
            .context("cannot read the crash text from stdin")?,
    };
    if let Some(format) = Compression::detect(&bytes) {
        let name = match args.input.as_deref() {
            Some(path) if path != Path::new("-") => path.display().to_string(),
            _ => "stdin".to_owned(),
        };
        let kind = match format {
            Compression::None => "an ELF file, such as a core".to_owned(),
            compressed => format!("a {compressed} stream, such as a compressed core"),
        };
        anyhow::bail!(
            "{name} is {kind}, not crash text; `gocrash symbolize FILE` rebuilds the goroutines of a core"
        );
    }
    Ok(Input {
        bytes,
        executable: None,
        core: None,
    })
}

/// Reads all of `reader`, up to [`MAX_INPUT_BYTES`].
fn read_bounded(reader: impl Read) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        anyhow::bail!("the input is larger than {MAX_INPUT_BYTES} bytes");
    }
    Ok(bytes)
}

/// Reads the crash text of the crash `crash` selects from the journal, and
/// the executable the journal names for it.
fn read_journal_text(crash: &str, journal: &JournalArgs) -> anyhow::Result<Input> {
    let options = OpenOptions {
        text: Some(TextOptions::default()),
        inline_core: false,
        temp_dir: None,
    };
    let source = match journal.selector().open(Some(crash), &options) {
        Ok(source) => source,
        Err(error) if error.is_no_match() => {
            return Err(WithStatus {
                status: Status::NoMatch,
                message: error.to_string(),
            }
            .into())
        }
        Err(error) => {
            return Err(
                anyhow::Error::new(error).context("cannot select the crash from the journal")
            )
        }
    };
    let pid = source
        .record
        .as_ref()
        .map_or_else(|| "?".to_owned(), |record| record.pid.to_string());
    let executable = source.executable().map(Path::to_path_buf);
    let core = Some(source.core);
    let Some(text) = source.text else {
        anyhow::bail!("no output of the crashed process (PID {pid}) was found in the journal");
    };
    tracing::info!(target: "gocrash::annotate", pid, lines = text.line_count(), "read the crash text from the journal");
    Ok(Input {
        bytes: text.bytes().to_vec(),
        executable,
        core,
    })
}

/// Splits the input into lines that keep their line ends; the last line
/// may have none.
fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|byte| *byte == b'\n').collect()
}

/// Splits a line into its content and its line end (`\n`, `\r\n` or none).
fn split_line_end(line: &[u8]) -> (&[u8], &[u8]) {
    let end = if line.ends_with(b"\r\n") {
        2
    } else if line.ends_with(b"\n") {
        1
    } else {
        0
    };
    line.split_at(line.len() - end)
}

/// Chooses the load bias: from `--base`, from the text's Go frames for a
/// PIE, or none. The frames are checked against the binary either way, so
/// that a wrong binary is reported instead of giving wrong annotations.
fn choose_base(
    args: &Args,
    binary: &Binary,
    pclntab: &Pclntab<'_>,
    frame_pcs: &[FramePc],
) -> anyhow::Result<BaseChoice> {
    let frame_pcs = frame_pcs.get(..MAX_INFERENCE_FRAMES).unwrap_or(frame_pcs);
    let ranges = function_ranges(pclntab, frame_pcs);
    let link_base = binary.link_base();
    let path = binary.path().display();

    let (source, load_bias) = match args.base {
        Some(base) => {
            let bias = binary.load_bias_for_base(base).with_context(|| {
                format!("--base 0x{base:x} is below the link-time base 0x{link_base:x} of {path}")
            })?;
            if !binary.is_pie() {
                tracing::warn!(target: "gocrash::annotate", "{path} is not position-independent; --base still shifts every address");
            }
            ("argument", bias)
        }
        None if binary.is_pie() => {
            let bias = infer_bias(&ranges, frame_pcs).with_context(|| {
                format!("cannot infer where the PIE {path} was loaded; pass --base ADDR, the start of its first mapping")
            })?;
            ("inferred", bias)
        }
        None => ("not_pie", 0),
    };

    let agreeing: Vec<&FramePc> = frame_pcs
        .iter()
        .filter(|frame| frame_agrees(&ranges, frame, load_bias))
        .collect();
    let choice = BaseChoice {
        source,
        address: link_base.wrapping_add(load_bias),
        load_bias,
        agreeing_frames: agreeing.len(),
        frames: frame_pcs.len(),
        example: agreeing.first().map(|frame| FrameExample {
            line: frame.line,
            function: frame.function.clone(),
            pc: frame.pc,
        }),
    };
    if source == "inferred" {
        if let Some(example) = &choice.example {
            stderr_line!(
                "gocrash: inferred the load address 0x{:x} of {path} from {} of {} Go frames, such as {} pc=0x{:x} on line {}",
                choice.address, choice.agreeing_frames, choice.frames, example.function, example.pc, example.line
            );
        }
    }
    // Fewer than half the frames in their functions means the text came
    // from another build, or the base is wrong.
    if choice.frames > 0 && choice.agreeing_frames.saturating_mul(2) < choice.frames {
        stderr_line!(
            "gocrash: warning: only {} of the {} Go frames of the text are in the function the text names, at load address 0x{:x}; is {path} the binary that printed the text?",
            choice.agreeing_frames, choice.frames, choice.address
        );
    }
    Ok(choice)
}

/// Returns the link-time address ranges `[entry, end]` of the functions the
/// frames name. The end is included because a call as the last instruction
/// leaves a return address one past the function.
fn function_ranges(
    pclntab: &Pclntab<'_>,
    frame_pcs: &[FramePc],
) -> HashMap<String, Vec<(u64, u64)>> {
    let wanted: HashSet<&str> = frame_pcs
        .iter()
        .map(|frame| frame.function.as_str())
        .collect();
    let mut ranges: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    if wanted.is_empty() {
        return ranges;
    }
    for func in pclntab.funcs() {
        let Ok(func) = func else {
            continue;
        };
        let Ok(name) = pclntab.func_name(&func) else {
            continue;
        };
        if wanted.contains(name.as_ref()) {
            ranges
                .entry(name.into_owned())
                .or_default()
                .push((func.entry, func.end));
        }
    }
    ranges
}

fn frame_agrees(ranges: &HashMap<String, Vec<(u64, u64)>>, frame: &FramePc, bias: u64) -> bool {
    let Some(link) = frame.pc.checked_sub(bias) else {
        return false;
    };
    ranges.get(&frame.function).is_some_and(|list| {
        list.iter()
            .any(|(entry, end)| (*entry..=*end).contains(&link))
    })
}

/// Infers a PIE's load bias from Go frames: each frame's pc, less the bias,
/// must fall in the function the text names for it. Each frame votes for
/// every page-aligned bias that puts it there. The bias with the most votes
/// wins when at least [`MIN_AGREEING_FRAMES`] agree and no other bias has as
/// many.
fn infer_bias(
    ranges: &HashMap<String, Vec<(u64, u64)>>,
    frame_pcs: &[FramePc],
) -> anyhow::Result<u64> {
    let mut votes: HashMap<u64, usize> = HashMap::new();
    let mut candidates = Vec::new();
    for frame in frame_pcs {
        candidates.clear();
        for (entry, end) in ranges.get(&frame.function).into_iter().flatten() {
            candidate_biases(frame.pc, *entry, *end, &mut candidates);
        }
        candidates.sort_unstable();
        candidates.dedup();
        for bias in &candidates {
            *votes.entry(*bias).or_default() += 1;
        }
    }
    let mut ranked: Vec<(u64, usize)> = votes.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let named = frame_pcs
        .iter()
        .filter(|frame| ranges.contains_key(&frame.function))
        .count();
    match ranked.as_slice() {
        [] => anyhow::bail!(
            "none of the {} Go frames with pc= names a function of the binary",
            frame_pcs.len()
        ),
        [(_, count), ..] if *count < MIN_AGREEING_FRAMES => anyhow::bail!(
            "at most {count} of {named} Go frames agree on a load address, and {MIN_AGREEING_FRAMES} must"
        ),
        [(first, count), (second, other), ..] if count == other => anyhow::bail!(
            "the Go frames agree as often on load bias 0x{first:x} as on 0x{second:x} ({count} frames each)"
        ),
        [(bias, _), ..] => Ok(*bias),
    }
}

/// Appends the page-aligned biases that put `pc` within `[entry, end]`.
fn candidate_biases(pc: u64, entry: u64, end: u64, biases: &mut Vec<u64>) {
    // The bias keeps the pc's offset within its page, so the link-time
    // address has the pc's low bits.
    let page_offset = pc % PAGE_SIZE;
    let Some(mut link) = (entry - entry % PAGE_SIZE).checked_add(page_offset) else {
        return;
    };
    if link < entry {
        let Some(next) = link.checked_add(PAGE_SIZE) else {
            return;
        };
        link = next;
    }
    while link <= end {
        if let Some(bias) = pc.checked_sub(link) {
            biases.push(bias);
        }
        let Some(next) = link.checked_add(PAGE_SIZE) else {
            return;
        };
        link = next;
    }
}

/// Resolves one address of the text. Returns `Ok(None)` for a register
/// value outside the binary's code, which is most likely data, and an error
/// for a program counter that resolves to nothing.
fn annotate(
    resolver: &mut Resolver<'_>,
    binary: &Binary,
    pclntab: &Pclntab<'_>,
    bias: u64,
    address: &TextAddress,
) -> Result<Option<Annotation>, String> {
    let outside = || {
        if address.is_code_address() {
            Err(format!("outside the code of {}", binary.path().display()))
        } else {
            Ok(None)
        }
    };
    let Some(link) = address.value.checked_sub(bias) else {
        return outside();
    };
    let in_code = binary
        .segments()
        .iter()
        .any(|segment| segment.executable && segment.contains(link));
    if !in_code {
        return outside();
    }

    let resolved = resolver.resolve(&format!("0x{:x}", address.value));
    if let Some(error) = resolved.error {
        return Err(error);
    }
    if resolved.frames.iter().all(|frame| frame.function.is_none()) {
        if !address.is_code_address() {
            return Ok(None);
        }
        return Err(format!(
            "no function of {} contains it: neither the pclntab nor DWARF or an ELF symbol table covers it",
            binary.path().display()
        ));
    }
    let physical_offset = match resolved.source {
        Some("pclntab") => pclntab
            .find_func(link)
            .and_then(|index| pclntab.func(index).ok())
            .and_then(|func| link.checked_sub(func.entry)),
        _ => resolved.symbol_offset,
    };
    let frames = resolved
        .frames
        .into_iter()
        .map(|frame: OutFrame| AnnotationFrame {
            offset: if frame.inlined { None } else { physical_offset },
            function: frame.function,
            file: frame.file,
            line: frame.line,
            inlined: frame.inlined,
        })
        .collect();
    Ok(Some(Annotation {
        line: address.line,
        kind: address.kind,
        register: address.register.clone(),
        address: address.value,
        link_address: link,
        source: resolved.source,
        frames,
    }))
}

/// Writes the input with each annotation's lines inserted before the line
/// end of the line it annotates.
fn write_annotated(
    out: &mut impl Write,
    lines: &[&[u8]],
    annotations: impl Iterator<Item = Annotation>,
) -> std::io::Result<()> {
    let mut pending = annotations.peekable();
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        let (content, line_end) = split_line_end(line);
        out.write_all(content)?;
        // The annotation lines use the line's own line end, so CRLF text
        // stays CRLF; a last line without one gets `\n`.
        let separator: &[u8] = if line_end.is_empty() { b"\n" } else { line_end };
        while let Some(annotation) = pending.next_if(|annotation| annotation.line == number) {
            for frame in &annotation.frames {
                out.write_all(separator)?;
                out.write_all(format_frame(annotation.address, frame).as_bytes())?;
            }
        }
        out.write_all(line_end)?;
    }
    Ok(())
}

/// Formats one annotation line without its line end:
/// `\t# 0xADDR FUNCTION+0xOFFSET (FILE:LINE)`, with `inlined` in place of
/// the offset for an inlined frame. The location is in parentheses so that
/// traceback parsers do not read the line as a frame's `file:line` line.
fn format_frame(address: u64, frame: &AnnotationFrame) -> String {
    let mut text = format!("{ANNOTATION_PREFIX}0x{address:x} ");
    text.push_str(&printable(frame.function.as_deref().unwrap_or("?")));
    match (frame.inlined, frame.offset) {
        (true, _) => text.push_str(" inlined"),
        (false, Some(offset)) => text.push_str(&format!("+0x{offset:x}")),
        (false, None) => {}
    }
    match (&frame.file, frame.line) {
        (Some(file), Some(line)) => text.push_str(&format!(" ({}:{line})", printable(file))),
        (Some(file), None) => text.push_str(&format!(" ({})", printable(file))),
        (None, _) => {}
    }
    text
}

/// Replaces control characters from the binary's tables, so that a hostile
/// name cannot end the annotation line or write to the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(
        function: &str,
        offset: Option<u64>,
        file: Option<&str>,
        line: Option<i64>,
        inlined: bool,
    ) -> AnnotationFrame {
        AnnotationFrame {
            function: Some(function.into()),
            offset,
            file: file.map(str::to_string),
            line,
            inlined,
        }
    }

    #[test]
    fn frame_lines() {
        let physical = frame(
            "main.main",
            Some(0x34),
            Some("/src/main.go"),
            Some(30),
            false,
        );
        assert_eq!(
            format_frame(0x4a1234, &physical),
            "\t# 0x4a1234 main.main+0x34 (/src/main.go:30)"
        );
        let inlined = frame("main.(*Window).At", None, Some("/src/w.go"), Some(12), true);
        assert_eq!(
            format_frame(0x4a1234, &inlined),
            "\t# 0x4a1234 main.(*Window).At inlined (/src/w.go:12)"
        );
        let bare = frame("checksum_packet", Some(0x10), None, None, false);
        assert_eq!(
            format_frame(0x4916d0, &bare),
            "\t# 0x4916d0 checksum_packet+0x10"
        );
        let hostile = frame("a\nb\x1b[31m", None, Some("f\r"), None, false);
        assert_eq!(
            format_frame(0x1, &hostile),
            "\t# 0x1 a\u{fffd}b\u{fffd}[31m (f\u{fffd})"
        );
    }

    #[test]
    fn line_ends_kept() {
        let lines = split_lines(b"a\nb\r\nc");
        assert_eq!(lines, vec![&b"a\n"[..], b"b\r\n", b"c"]);
        assert_eq!(split_line_end(b"b\r\n"), (&b"b"[..], &b"\r\n"[..]));
        assert_eq!(split_line_end(b"c"), (&b"c"[..], &b""[..]));
        assert!(split_lines(b"").is_empty());
    }

    fn annotation(line: usize) -> Annotation {
        Annotation {
            line,
            kind: AddressKind::Register,
            register: Some("rip".into()),
            address: 0x10,
            link_address: 0x10,
            source: Some("pclntab"),
            frames: vec![
                frame("main.g", None, Some("g.go"), Some(3), true),
                frame("main.f", Some(4), Some("f.go"), Some(9), false),
            ],
        }
    }

    #[test]
    fn annotations_go_under_their_line() {
        let input = b"x\r\nrip 0x10\r\ny\nrip 0x10";
        let lines = split_lines(input);
        let mut out = Vec::new();
        write_annotated(&mut out, &lines, [annotation(2), annotation(4)].into_iter()).unwrap();
        let expected = "x\r\nrip 0x10\r\n\t# 0x10 main.g inlined (g.go:3)\r\n\t# 0x10 main.f+0x4 (f.go:9)\r\ny\n\
                        rip 0x10\n\t# 0x10 main.g inlined (g.go:3)\n\t# 0x10 main.f+0x4 (f.go:9)";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn invalid_utf8_passes_through() {
        let input: &[u8] = b"\xff\xfe\nrip 0x10\n\x80";
        let lines = split_lines(input);
        let mut out = Vec::new();
        write_annotated(&mut out, &lines, std::iter::empty()).unwrap();
        assert_eq!(out, input);
    }

    #[test]
    fn candidates_keep_the_page_offset() {
        let mut biases = Vec::new();
        // A function of 0x2100 bytes at 0x1f00 contains two link addresses
        // with the low bits 0x234 of the pc.
        candidate_biases(0x5555_5555_6234, 0x1f00, 0x4000, &mut biases);
        assert_eq!(
            biases,
            vec![0x5555_5555_6234 - 0x2234, 0x5555_5555_6234 - 0x3234]
        );
        biases.clear();
        candidate_biases(0x10, 0x1000, 0x1100, &mut biases);
        assert!(biases.is_empty());
        candidate_biases(u64::MAX, u64::MAX - 0x10, u64::MAX, &mut biases);
        assert_eq!(biases, vec![0]);
    }

    fn frame_pc(line: usize, function: &str, pc: u64) -> FramePc {
        FramePc {
            line,
            function: function.into(),
            pc,
        }
    }

    #[test]
    fn bias_needs_agreeing_frames() {
        let mut ranges = HashMap::new();
        ranges.insert("main.main".to_string(), vec![(0x1000, 0x1100)]);
        ranges.insert("main.f".to_string(), vec![(0x1100, 0x1180)]);
        ranges.insert("runtime.main".to_string(), vec![(0x2000, 0x2300)]);
        let bias = 0x5555_0000_0000;
        let frames = vec![
            frame_pc(2, "main.f", bias + 0x1120),
            frame_pc(4, "main.main", bias + 0x1040),
            frame_pc(6, "runtime.main", bias + 0x2200),
            frame_pc(8, "main.unknown", 0x1),
        ];
        assert_eq!(infer_bias(&ranges, &frames).unwrap(), bias);
        let error = infer_bias(&ranges, &frames[..2]).unwrap_err().to_string();
        assert!(error.contains("at most 2 of 2"), "{error}");
        let error = infer_bias(&ranges, &frames[3..]).unwrap_err().to_string();
        assert!(error.contains("none of the 1"), "{error}");
        assert!(frame_agrees(&ranges, &frames[0], bias));
        assert!(!frame_agrees(&ranges, &frames[0], bias + PAGE_SIZE));
    }
}
