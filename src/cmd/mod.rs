//! The command line: one module per subcommand.

use clap::{Parser, Subcommand};

use crate::exit::Status;

mod buildinfo;
mod debug;
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
    /// Print a Go binary's build information, like `go version -m`.
    Buildinfo(buildinfo::Args),
    /// Rebuild every goroutine of a crashed Go program from its core.
    Symbolize(symbolize::Args),
    /// Open a crash's core in delve, as a server on a loopback address or in this terminal.
    Debug(debug::Args),
}

/// Runs the selected subcommand.
pub fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.command {
        Command::Resolve(args) => resolve::run(args),
        Command::Buildinfo(args) => buildinfo::run(args),
        Command::Symbolize(args) => symbolize::run(args),
        Command::Debug(args) => debug::run(args),
    }
}
