//! The command line: one module per subcommand.

use clap::{Parser, Subcommand};

use crate::exit::Status;

mod annotate;
mod buildinfo;
mod debug;
mod dump;
pub mod info;
pub mod list;
mod report;
mod resolve;
mod symbolize;

/// Crash capture and symbolication for Go services on systemd hosts.
#[derive(Debug, Parser)]
#[command(name = "gocrash", version, about, long_about = None)]
pub struct Cli {
    /// Print diagnostics on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve program counters to function, file and line, like `go tool addr2line`.
    Resolve(resolve::Args),
    /// Write a Go crash text back with the symbol of every bare code address appended.
    Annotate(annotate::Args),
    /// Print a Go binary's build information, like `go version -m`.
    Buildinfo(buildinfo::Args),
    /// Rebuild every goroutine of a crashed Go program from its core.
    Symbolize(symbolize::Args),
    /// Open a crash's core in delve, as a server on a loopback address or in this terminal.
    Debug(debug::Args),
    /// List the crashes systemd-coredump recorded, with Go version and headline.
    List(list::Args),
    /// Show everything known about one crash: journal fields, core, binary and crash text.
    Info(info::Args),
    /// Write a crash's core, decompressed, to a file or a pipe.
    Dump(dump::Args),
    /// Write one crash as a report for people (text, Markdown, HTML) or tools (JSON).
    Report(report::Args),
}

/// Runs the selected subcommand.
pub fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.command {
        Command::Resolve(args) => resolve::run(args),
        Command::Annotate(args) => annotate::run(args),
        Command::Buildinfo(args) => buildinfo::run(args),
        Command::Symbolize(args) => symbolize::run(args),
        Command::Debug(args) => debug::run(args),
        Command::List(args) => list::run(args),
        Command::Info(args) => info::run(args),
        Command::Dump(args) => dump::run(args),
        Command::Report(args) => report::run(args),
    }
}
