//! `gocrash report`: one crash as a document for people (text, Markdown,
//! HTML) or tools (JSON), built from the core where it can be read and from
//! the journal's crash text where it cannot.
//!
//! Selecting the crash is [`crate::crash_input`]'s job, rebuilding the
//! goroutines the symbolizer's, and filling and printing the report
//! [`crate::report`]'s. This module joins them and looks up the earlier
//! crashes with the same signature.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ingest::coredump::CoredumpRecord;
use ingest::crashtext::{self, CrashText, TextOptions};
use ingest::select::{CoreFile, CrashArg, CrashSource, OpenOptions, Selector};
use symbolizer::goroutines::Process;

use super::list::{format_rfc3339, select_error, JournalArgs};
use crate::crash_input::{self, CrashArgs, OpenedCrash};
use crate::exit::{Status, WithStatus};
use crate::render::error_chain;
use crate::render::Report;
use crate::report::gather::{gather, Inputs};
use crate::report::model::{CrashReport, Earlier, Occurrence};
use crate::report::{html, markdown, occurrences, text, write_json};

/// Earlier crashes listed by time, newest last; the count covers all.
const MAX_EARLIER_LISTED: usize = 20;

/// The formats `report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For a terminal.
    Text,
    /// For pasting into an incident channel or a ticket.
    Markdown,
    /// One self-contained HTML file (no scripts, no external URLs).
    Html,
    /// The JSON document gocrash.report/1, described in docs/json.md.
    Json,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when the report is complete; 1 on failure; 2 for an invalid \
command line (also a time or journal match journalctl rejects, or a missing --source-root); 3 \
when no crash matched; 4 when the report was written but parts are missing (no crash text, no usable \
core, a damaged core), as its Missing section says."
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
    /// A directory to look for source files in: DIR for the main module's
    /// root (also searched for the trailing parts of moved paths), or
    /// MODULE=DIR for one module path, as -trimpath builds record files.
    /// Repeatable.
    #[arg(long = "source-root", value_name = "DIR")]
    pub source_roots: Vec<String>,
    /// Write the report to FILE instead of stdout (through a new
    /// FILE.XXXXXX.partial,
    /// renamed when complete)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not look for earlier crashes with the same signature, which reads
    /// the crash text of every crash of the same command.
    #[arg(long)]
    pub no_earlier: bool,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let format = if args.json { Format::Json } else { args.format };
    crate::output::check_output_path(args.output.as_deref(), "the report")?;
    check_source_roots(&args.source_roots)?;
    let selector = args.journal.selector();
    let mut source = select(&args, &selector)?;
    source.text = None;
    let selected = source.record.clone();
    // The crash text is read from the journal while the core is
    // decompressed and walked. On the corpus's 10,000-goroutine crash, the
    // report then took 1.7 s instead of 1.9 s.
    let reading = selected
        .as_ref()
        .map(|record| || read_text(&selector, record));
    let (core, text) = crash_input::run_beside("gocrash-text", reading, || {
        open_core(&args.crash, source).map(|(opened, core_problem)| {
            let loaded = opened
                .as_ref()
                .map(|opened| Process::load(&opened.core, &opened.binary));
            (opened, core_problem, loaded)
        })
    });
    let (opened, core_problem, loaded) = core?;
    // Opening the core can reject the record found for a core file by its
    // name, when the two are of different commands: its text is then not
    // the crash's.
    let record = match &opened {
        Some(opened) => opened.source.as_ref().and_then(|s| s.record.clone()),
        None => selected,
    };
    let (text, text_problem) = match (&record, text) {
        (Some(_), Some(read)) => read,
        _ => (None, None),
    };
    let symbolized = match (&opened, &loaded) {
        (Some(opened), Some(loaded)) => Some(Report::new(
            opened,
            loaded.as_ref().map_err(|error| error_chain(error)),
        )),
        _ => None,
    };

    let core_path = opened
        .as_ref()
        .map(|o| {
            o.source
                .as_ref()
                .and_then(CrashSource::core_display_path)
                .unwrap_or_else(|| o.core_path.clone())
        })
        .map(|p| p.display().to_string());
    let inputs = Inputs {
        record: record.as_ref(),
        text: text.as_ref(),
        core: symbolized.as_ref(),
        core_missing: core_problem,
        core_path,
    };
    let mut report = gather(&inputs, &args.source_roots);
    if let Some(problem) = text_problem {
        report.missing.push(problem);
        report.partial = true;
    }
    report.earlier = if args.no_earlier {
        Earlier {
            error: Some("--no-earlier was given".to_owned()),
            ..Earlier::default()
        }
    } else {
        earlier(&args, &selector, &report, record.as_ref(), opened.as_ref())
    };

    write(&args, format, &report)?;
    Ok(if report.partial {
        Status::Partial
    } else {
        Status::Success
    })
}

/// Reads the crash text of `record`, or returns why it could not be read.
fn read_text(selector: &Selector, record: &CoredumpRecord) -> (Option<CrashText>, Option<String>) {
    match crashtext::read(&selector.journal, record, &TextOptions::default()) {
        Ok(text) => (text, None),
        Err(error) => (
            None,
            Some(format!(
                "the crash text could not be read from the journal: {:#}",
                anyhow::Error::new(error)
            )),
        ),
    }
}

/// Selects the crash without reading its text. A core file named on the
/// command line is read even when the journal cannot be.
fn select(args: &Args, selector: &Selector) -> anyhow::Result<CrashSource> {
    let options = OpenOptions {
        text: None,
        ..OpenOptions::default()
    };
    let crash = args.crash.crash.as_deref();
    if let Some(CrashArg::Path(path)) = crash.map(CrashArg::parse) {
        return Ok(match selector.open(crash, &options) {
            Ok(source) => source,
            Err(error) => {
                tracing::debug!(target: "gocrash::report", %error, "no journal record for the core file");
                CrashSource {
                    record: None,
                    core: CoreFile::Given(path),
                    text: None,
                }
            }
        });
    }
    selector.open(crash, &options).map_err(select_error)
}

/// Opens the core and its binary, or returns why they cannot be used. A
/// file named on the command line that is not a core at all, and that the
/// journal does not know, is an error: there is nothing to report.
fn open_core(
    args: &CrashArgs,
    source: CrashSource,
) -> anyhow::Result<(Option<OpenedCrash>, Option<String>)> {
    let Some(path) = source.core_path() else {
        let reason = match &source.core {
            CoreFile::Unavailable(state) => {
                let truncated = source.record.as_ref().is_some_and(|r| r.truncated);
                format!(
                    "no core to read ({}): goroutines and build information come from the crash text alone",
                    state.label(truncated)
                )
            }
            _ => "no core to read".to_owned(),
        };
        return Ok((None, Some(reason)));
    };
    let known = source.record.is_some();
    let args = CrashArgs {
        reads_crash_text: true,
        ..args.clone()
    };
    match crash_input::open_selected(&args, path, Some(source)) {
        Ok(opened) => Ok((Some(opened), None)),
        Err(error) if !known && crash_input::is_not_a_core(&error) => Err(error),
        Err(error) => Ok((
            None,
            Some(format!(
                "the core could not be used ({error:#}), so goroutines can come only from the crash text"
            )),
        )),
    }
}

/// Rejects a `--source-root` whose directory does not exist, which would
/// otherwise only show as source files not found.
fn check_source_roots(roots: &[String]) -> anyhow::Result<()> {
    for root in roots {
        let dir = match root.split_once('=') {
            Some((module, dir)) if !module.is_empty() && !dir.is_empty() => dir,
            _ => root.as_str(),
        };
        if !Path::new(dir).is_dir() {
            return Err(WithStatus {
                status: Status::Usage,
                message: format!("invalid --source-root {root:?}: {dir} is not a directory"),
            }
            .into());
        }
    }
    Ok(())
}

/// Finds the earlier crashes of the same command with the same signature.
fn earlier(
    args: &Args,
    selector: &Selector,
    report: &CrashReport,
    record: Option<&CoredumpRecord>,
    opened: Option<&OpenedCrash>,
) -> Earlier {
    let Some(signature) = &report.signature else {
        return Earlier {
            error: Some("the crash has no signature".to_owned()),
            ..Earlier::default()
        };
    };
    let id = &signature.signature.id;
    let command = Some(list_command(&args.journal, id));
    let comm = record.and_then(|r| r.comm.clone()).or_else(|| {
        opened
            .and_then(|o| o.core.process())
            .map(|p| p.fname.clone())
    });
    let Some(comm) = comm.filter(|c| !c.is_empty()) else {
        return Earlier {
            command,
            error: Some("the crash names no command to look up".to_owned()),
            ..Earlier::default()
        };
    };

    let records = match selector.records(&[CrashArg::Comm(comm.clone())]) {
        Ok(selection) => selection.records,
        Err(error) => {
            return Earlier {
                command,
                error: Some(format!("{:#}", anyhow::Error::new(error))),
                ..Earlier::default()
            }
        }
    };
    // Records come oldest first, so the earlier ones are those before this
    // crash's own entry; a crash the listing lacks is placed by its time.
    // NOTE: a core file outside systemd-coredump's store has no entry here,
    // so if the journal has its crash, that crash is counted as earlier.
    let position = record.and_then(|this| records.iter().position(|r| r.cursor == this.cursor));
    let candidates: Vec<CoredumpRecord> = match (position, record) {
        (Some(position), _) => records.into_iter().take(position).collect(),
        (None, Some(this)) => records
            .into_iter()
            .filter(|r| r.crash_time_usec() <= this.crash_time_usec())
            .collect(),
        (None, None) => records,
    };

    let signatures = occurrences::signatures(selector, &candidates);
    let mut crashes: Vec<Occurrence> = candidates
        .iter()
        .zip(signatures)
        .filter(|(_, s)| s.as_ref().is_ok_and(|s| &s.signature.id == id))
        .map(|(r, _)| Occurrence {
            time: format_rfc3339(r.crash_time_usec()),
            time_usec: r.crash_time_usec(),
            pid: r.pid,
            unit: r.unit_name().map(str::to_owned),
            cursor: r.cursor.clone(),
        })
        .collect();

    let count = crashes.len();
    crashes.drain(..count.saturating_sub(MAX_EARLIER_LISTED));
    Earlier {
        command,
        count,
        searched: Some(format!(
            "{} earlier crashes of command {comm}",
            candidates.len()
        )),
        crashes,
        error: None,
    }
}

/// Returns the `gocrash list` command that lists every crash with the
/// signature, in the journal this report read.
fn list_command(journal: &JournalArgs, id: &str) -> String {
    let mut command = format!("gocrash list --signature {id}");
    if let Some(dir) = &journal.directory {
        command.push_str(&format!(" --directory {}", dir.display()));
    }
    for file in &journal.file {
        command.push_str(&format!(" --file {}", file.display()));
    }
    if journal.merge {
        command.push_str(" --merge");
    }
    if let Some(dir) = &journal.coredump_dir {
        command.push_str(&format!(" --coredump-dir {}", dir.display()));
    }
    command
}

/// Writes the report to stdout or to `--output` (see
/// [`crate::output::write_to_file`]).
fn write(args: &Args, format: Format, report: &CrashReport) -> anyhow::Result<()> {
    let Some(path) = &args.output else {
        let indent = crate::output::indent_stdout_json();
        return write_to(std::io::stdout().lock(), format, report, indent)
            .context("cannot write the report to stdout");
    };
    crate::output::write_to_file(path, "the report", &mut |file| {
        write_to(file, format, report, false)
    })
}

fn write_to(
    sink: impl Write,
    format: Format,
    report: &CrashReport,
    indent_json: bool,
) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, sink);
    match format {
        Format::Text => text::write(&mut out, report),
        Format::Markdown => markdown::write(&mut out, report),
        Format::Html => html::write(&mut out, report),
        // Indented only for a person reading it on a terminal.
        Format::Json => write_json(&mut out, report, indent_json),
    }?;
    out.flush()
}
