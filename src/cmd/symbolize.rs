//! `gocrash symbolize`: every goroutine of a crashed Go program, rebuilt
//! from its core and binary, printed for people (`text`), in the Go
//! runtime's own layout (`go`) or as JSON.
//!
//! Opening the crash and finding its binary is [`crate::crash_input`]'s
//! job, rebuilding the process the symbolizer's, and printing
//! [`crate::render`]'s.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use ingest::coredump::CoredumpRecord;
use ingest::crashtext::{self, TextOptions};
use ingest::select::{CrashArg, CrashSource, Selector};
use symbolizer::goroutines::{BinaryFacts, BinaryInfo, Process, ProcessError};

use super::info::loss_parts;
use super::list::JournalArgs;
use crate::crash_input::{self, CrashArgs, EarlyWork, OpenedCrash};
use crate::exit::Status;
use crate::output;
use crate::render::error_chain;
use crate::render::escape::escape_line;
use crate::render::{self, JournalText, Report};

/// The formats `symbolize` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people: the crash, the crashing goroutine, the others grouped by
    /// identical stacks, and the build information.
    Text,
    /// The text the Go runtime prints with GOTRACEBACK=crash, in the layout
    /// of the binary's Go release.
    Go,
    /// The JSON document gocrash.symbolize/1, described in docs/json.md.
    Json,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when everything was read; 1 on failure (no usable core or binary, \
a build ID mismatch without --force); 2 for an invalid command line (also a time or journal \
match journalctl rejects); 3 when no crash matched; 4 when the output was written \
but the core is incomplete or damaged and parts are missing (listed in the output, on stderr for --format go)."
)]
pub struct Args {
    #[command(flatten)]
    pub crash: CrashArgs,
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print JSON; the same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Write the output to FILE instead of stdout (through a new
    /// FILE.XXXXXX.partial,
    /// renamed when complete; mode 0600)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(mut args: Args) -> anyhow::Result<Status> {
    let format = if args.json { Format::Json } else { args.format };
    output::check_output_path(args.output.as_deref(), "the output")?;
    // The goroutines are walked while the core still decompresses. A
    // stream found damaged at its end makes the walk's reads untrustworthy,
    // so the core is then read again as a partial core.
    args.crash.read_in_background = true;
    // One selector serves the whole command: its index of the journal files
    // maps each of them, and is built once.
    let selector = args.journal.selector();
    // The crash text of a crash selected from the journal is read while
    // the core is decompressed and walked: the corpus's deeprecursion crash
    // then took 0.11 s instead of 0.13 s.
    let crash = args.crash.crash.as_deref();
    let selected = if format != Format::Go && selected_from_journal(crash) {
        Some(crash_input::select_core(crash, &selector)?)
    } else {
        None
    };
    let record = selected
        .as_ref()
        .and_then(|(_, source)| source.as_ref()?.record.clone());
    let reading = record
        .as_ref()
        .map(|record| || read_journal_text(record, &selector));
    let (opened, journal_text) = crash_input::run_beside("gocrash-text", reading, || {
        open_and_load(&args, &selector, selected).map(|(opened, loaded)| {
            let damage = opened.core.wait_for_decompression().err();
            (opened, loaded, damage)
        })
    });
    let (opened, loaded, damage) = opened?;
    let (opened, loaded) = match damage {
        None => (opened, loaded),
        Some(damage) => {
            tracing::debug!(target: "gocrash::symbolize", damage = %error_chain(&damage), "the core's stream is damaged, so it is read again");
            // The first temporary copy goes first: on a full temporary
            // directory, it would leave the second no room at all.
            drop(loaded);
            drop(opened);
            args.crash.read_in_background = false;
            open_and_load(&args, &selector, None)?
        }
    };
    if let Err(error) = &loaded {
        if !opened.core.is_partial() {
            return Err(anyhow::Error::new(clone_error(error)).context(format!(
                "cannot rebuild the goroutines of {} with {}",
                opened.core_path.display(),
                opened.binary.path().display()
            )));
        }
    }
    let process = loaded.as_ref().map_err(|error| error_chain(error));
    let mut report = Report::new(&opened, process);
    report.journal_text = journal_text;

    let render_to = |out: &mut dyn Write, indent_json: bool| -> std::io::Result<()> {
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        match format {
            Format::Json => render::json::write(&mut out, &report, indent_json),
            Format::Go => render::gofmt::write(&mut out, &report),
            Format::Text => render::text::write(&mut out, &report),
        }?;
        out.flush()
    };
    match &args.output {
        None => render_to(&mut std::io::stdout().lock(), output::indent_stdout_json())
            .map_err(output::stdout_error)?,
        Some(path) => {
            output::write_to_file(path, "the output", &mut |file| render_to(file, false))?
        }
    }

    // The text and JSON outputs carry the warnings themselves; the Go
    // layout has no place for them.
    if format == Format::Go {
        for warning in &report.warnings {
            stderr_line!("gocrash: warning: {}", escape_line(warning));
        }
        for missing in &report.missing {
            stderr_line!("gocrash: missing: {}", escape_line(missing));
        }
    }
    let status = if report.is_partial() {
        Status::Partial
    } else {
        Status::Success
    };
    // The process exits next. Freeing the walks, the pclntab's caches and
    // the core's maps piece by piece took a tenth of the run on the
    // corpus's 10,000-goroutine core, and the kernel reclaims them at once.
    // Unmapping the journal files one by one took 0.6 ms more.
    std::mem::forget(report);
    std::mem::forget(loaded);
    std::mem::forget(opened);
    std::mem::forget(selector);
    Ok(status)
}

/// Opens the crash `args` select, or the one already `selected`, and
/// rebuilds its goroutines.
fn open_and_load(
    args: &Args,
    selector: &Selector,
    selected: Option<(PathBuf, Option<CrashSource>)>,
) -> anyhow::Result<(OpenedCrash, Result<Process, ProcessError>)> {
    let work = EarlyWork {
        prepare: &BinaryFacts::read,
        load: &|core, binary, facts| {
            facts
                .unwrap_or_else(|| BinaryFacts::read(binary))
                .and_then(|facts| BinaryInfo::with_facts(binary, facts))
                .and_then(|info| Process::load_with(core, &info))
        },
    };
    match selected {
        Some((core_path, source)) => {
            crash_input::open_selected_prepared(&args.crash, core_path, source, &work)
        }
        None => crash_input::open_prepared(&args.crash, selector, &work),
    }
}

/// Reports whether the crash was named by a journal match (or not named
/// at all) rather than by a core file, whose journal entry is looked up
/// only to name the crash.
fn selected_from_journal(crash: Option<&str>) -> bool {
    !matches!(crash.map(CrashArg::parse), Some(CrashArg::Path(_)))
}

/// Reads what the journal kept of the crash text of `record`.
fn read_journal_text(record: &CoredumpRecord, selector: &Selector) -> JournalText {
    match crashtext::read(&selector.journal, record, &TextOptions::default()) {
        Ok(Some(text)) => JournalText {
            headline: text.headline(),
            lines: text.line_count(),
            loss: loss_parts(&text.loss),
            error: None,
        },
        Ok(None) => JournalText {
            headline: None,
            lines: 0,
            loss: Vec::new(),
            error: None,
        },
        Err(error) => JournalText {
            headline: None,
            lines: 0,
            loss: Vec::new(),
            error: Some(error_chain(&error)),
        },
    }
}

/// Turns a borrowed error into an owned one for `anyhow`, keeping its text.
fn clone_error(error: &dyn std::error::Error) -> std::io::Error {
    std::io::Error::other(error_chain(error))
}
