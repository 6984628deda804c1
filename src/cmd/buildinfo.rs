//! `gocrash buildinfo`: the build information a Go binary carries.

use std::path::PathBuf;

use crate::exit::Status;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Go binary to read.
    pub binary: PathBuf,
}

pub fn run(_args: Args) -> anyhow::Result<Status> {
    anyhow::bail!("buildinfo is not implemented yet")
}
