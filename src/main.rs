//! The `gocrash` command: reads Go crashes that systemd-coredump and journald
//! captured, and prints them for people and for tools.
//!
//! `main` only parses the command line, sets up diagnostics and maps errors to
//! exit codes; each subcommand lives in its own module under `cmd/`.

/// Writes a line to stderr as `eprintln!` does, but ignores a closed or
/// failing stderr instead of panicking: whether anyone still reads the
/// diagnostics must not change what the command does or its exit status.
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cmd;
mod crash_input;
mod exit;
mod output;
mod render;
mod report;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::cmd::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_diagnostics(cli.verbose);
    match cmd::run(cli) {
        Ok(code) => code.into(),
        Err(err) => exit::report(&err),
    }
}

/// Sends diagnostics to stderr through `tracing`: warnings by default, more
/// with each `-v`, or whatever `RUST_LOG` selects; from `-vv` on, with the
/// time since the start. Problems that the output
/// reports itself (damage, build ID mismatches) are logged at debug level, so
/// the default shows only what the output does not. Colours only on a
/// terminal, and never with `NO_COLOR` set.
fn init_diagnostics(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        // A closed stderr must not turn into messages about failing to log.
        .log_internal_errors(false);
    // From -vv on, each line starts with the time since the command
    // started, which shows where a slow run spends its time.
    match verbose {
        0 => builder.event_format(PlainWarning).init(),
        1 => builder.without_time().init(),
        _ => builder
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .init(),
    }
}

/// Writes a diagnostic as gocrash's other messages: `gocrash: warning: `
/// and the message, then its fields as `name=value`.
struct PlainWarning;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for PlainWarning
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let kind = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            _ => "note",
        };
        write!(writer, "gocrash: {kind}: ")?;
        context
            .field_format()
            .format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
