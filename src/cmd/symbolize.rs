//! `gocrash symbolize`: every goroutine of a crashed Go program, rebuilt
//! from its core and binary, printed for people (`text`), in the Go
//! runtime's own layout (`go`) or as JSON.
//!
//! Opening the crash and finding its binary is [`crate::crash_input`]'s
//! job, rebuilding the process the symbolizer's, and printing
//! [`crate::render`]'s.

use std::io::{BufWriter, Write};

use symbolizer::goroutines::Process;

use crate::crash_input::{self, CrashArgs};
use crate::exit::Status;
use crate::output::{Format, Output};
use crate::render::{self, Report};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub crash: CrashArgs,
    #[command(flatten)]
    pub output: Output,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let format = args.output.format_among(Format::Text, &[Format::Text, Format::Go, Format::Json])?;
    let opened = crash_input::open(&args.crash)?;
    let loaded = Process::load(&opened.core, &opened.binary);
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
    let report = Report::new(&opened, process);

    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    match format {
        Format::Json => render::json::write(&mut out, &report)?,
        Format::Go => render::gofmt::write(&mut out, &report)?,
        _ => render::text::write(&mut out, &report)?,
    }
    out.flush()?;
    drop(out);

    // The text and JSON outputs carry the warnings themselves; the Go
    // layout has no place for them.
    if format == Format::Go {
        for warning in &report.warnings {
            eprintln!("gocrash: warning: {warning}");
        }
        for missing in &report.missing {
            eprintln!("gocrash: missing: {missing}");
        }
    }
    Ok(if report.is_partial() { Status::Partial } else { Status::Success })
}

/// Formats an error with its causes, lowest-level last.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Turns a borrowed error into an owned one for `anyhow`, keeping its text.
fn clone_error(error: &dyn std::error::Error) -> std::io::Error {
    std::io::Error::other(error_chain(error))
}
