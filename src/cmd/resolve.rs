//! `gocrash resolve`: program counters to function, file and line.

use std::path::PathBuf;

use crate::exit::Status;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Go binary the addresses belong to.
    #[arg(long)]
    pub binary: PathBuf,
    /// Addresses to resolve, in hex with or without 0x; read from stdin, one per line, when none are given.
    pub addresses: Vec<String>,
}

pub fn run(_args: Args) -> anyhow::Result<Status> {
    anyhow::bail!("resolve is not implemented yet")
}
