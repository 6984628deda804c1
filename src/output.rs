//! `--format text|json` and `--json`, for the commands that print either
//! text or JSON. Commands with more formats (`symbolize`, `report`) define
//! their own format list next to their arguments.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use clap::{Args, ValueEnum};
use serde::Serialize;

/// Text for people or JSON for tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// A JSON document, described in docs/json.md.
    Json,
}

/// `--format` and `--json`, flattened into the command's arguments.
#[derive(Debug, Clone, Args)]
pub struct Output {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print JSON; the same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl Output {
    /// Returns the selected format.
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

/// Reports whether JSON printed on stdout is indented: on a terminal, where
/// a person reads it. Elsewhere a program reads it, and for a crash with
/// 10,000 goroutines the indentation was 38% of the bytes and a quarter of
/// the time to write them.
pub fn indent_stdout_json() -> bool {
    io::stdout().is_terminal()
}

/// Writes `value` as one JSON document and a newline, indented or on one line.
pub fn write_json(out: &mut dyn Write, value: &impl Serialize, indent: bool) -> io::Result<()> {
    // serde_json writes each token on its own. A concrete buffer in front of
    // the `dyn Write` keeps each small write from being a dynamic call,
    // which cost a fifth of the run for 10,000 goroutines.
    let mut buffered = io::BufWriter::with_capacity(JSON_BUFFER_SIZE, out);
    if indent {
        serde_json::to_writer_pretty(&mut buffered, value)?;
    } else {
        serde_json::to_writer(&mut buffered, value)?;
    }
    writeln!(buffered)?;
    buffered.flush()
}

/// Size of the buffer [`write_json`] writes through.
const JSON_BUFFER_SIZE: usize = 64 * 1024;

/// Creates the file an output is written to before it is renamed to
/// `output`: `NAME.XXXXXX.partial` in the same directory, so that the
/// rename stays on one file system. The name is new and random and the
/// file is created with `O_EXCL` and mode 0600, so a file or symbolic link
/// another user put there beforehand is neither followed nor reused.
pub fn create_partial(output: &Path) -> io::Result<(File, PathBuf)> {
    let dir = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut prefix = output.file_name().unwrap_or_default().to_os_string();
    prefix.push(".");
    let file = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .rand_bytes(6)
        .tempfile_in(dir)?;
    file.keep().map_err(|error| error.error)
}

/// Names stdout in a failure to write it, such as a full disk behind a
/// redirection. A closed pipe stays recognisable (see `exit::report`).
pub fn stdout_error(error: std::io::Error) -> anyhow::Error {
    anyhow::Error::new(error).context("cannot write to stdout")
}

/// Writes a command's output to the file given with `-o`, through `write`.
/// A regular file is written next to its place as `NAME.XXXXXX.partial` and
/// renamed over it once whole, so that a failed write leaves no cut output
/// and keeps any earlier file. A device or FIFO is written in place. The
/// file gets mode 0600: reports contain command lines and argument values,
/// so only their owner may read them, as with a core written by `dump`.
/// `name` names the output in errors ("the report").
pub fn write_to_file(
    path: &Path,
    name: &str,
    write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> anyhow::Result<()> {
    let written_error = || format!("cannot write {name} to {}", path.display());
    if std::fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir()) {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        return write(&mut file).with_context(written_error);
    }
    let (mut file, partial) = create_partial(path).with_context(|| {
        format!(
            "cannot create a temporary file next to {} to write {name} to",
            path.display()
        )
    })?;
    if let Err(error) = write(&mut file) {
        let _ = std::fs::remove_file(&partial);
        return Err(error).with_context(written_error);
    }
    std::fs::rename(&partial, path).map_err(|error| {
        let _ = std::fs::remove_file(&partial);
        anyhow::Error::new(error).context(format!(
            "cannot rename {} to {}",
            partial.display(),
            path.display()
        ))
    })
}

/// Rejects an output path that is a directory before any work is done.
pub fn check_output_path(path: Option<&Path>, name: &str) -> anyhow::Result<()> {
    match path {
        Some(path) if path.is_dir() => anyhow::bail!(
            "cannot write {name} to {}: it is a directory; give a file path",
            path.display()
        ),
        _ => Ok(()),
    }
}
