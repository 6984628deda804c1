//! `gocrash dump`: writes a crash's core as a plain ELF file, for gdb, delve
//! or another machine.
//!
//! The core is selected like every other crash, decompressed as a stream
//! (zstd, lz4 or xz, recognised by content) and written to the output file
//! or to stdout. A regular output file gets holes where the core has zero
//! pages, as systemd-coredump's own uncompressed cores do. Decompressing is
//! the `symbolizer` crate's job.

use std::fs::OpenOptions;
use std::io::{BufWriter, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ingest::coredump::CoreState;
use ingest::select::{CoreFile, OpenOptions as SelectOptions};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use symbolizer::decompress::{decompress_to, Content, DecompressError, Output, StreamSummary};

use super::list::{select_error, JournalArgs};
use crate::exit::{Status, WithStatus};
use crate::output::create_partial;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "CRASH is a core file, a PID, an executable path, a journal match \
FIELD=VALUE or a command name; the newest matching crash is used, or the newest crash of all \
without CRASH.\n\nExit status: 0 when the core was written; 1 on failure (no core stored, \
unreadable core); 2 for an invalid command line, or -o - with stdout on a terminal; 3 when no crash matched; 4 when the \
compressed core is damaged and only its first part was written, when it was written but fails \
its content checksum, when it decompresses to more than its ELF headers describe and the \
rest was left out, or when it is shorter than they describe (cut before it was stored)."
)]
pub struct Args {
    /// The crash whose core to write.
    #[arg(value_name = "CRASH", value_parser = crate::crash_input::parse_crash)]
    pub crash: Option<String>,
    /// Write the plain core to FILE (created with mode 0600, replaced if it
    /// exists); `-`, or no -o, writes to stdout, which must not be a
    /// terminal.
    #[arg(short, long, value_name = "FILE", default_value = "-")]
    pub output: PathBuf,
    /// Write the decompressed bytes whatever they are; without it, a stream
    /// that does not start with a 64-bit ELF header is rejected, and one
    /// that goes on past the core its headers describe is cut there.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub journal: JournalArgs,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(WithStatus {
            status: Status::Usage,
            message: "refusing to write a core to a terminal; give -o FILE or redirect stdout"
                .into(),
        }
        .into());
    }

    let selector = args.journal.selector();
    let options = SelectOptions {
        text: None,
        ..SelectOptions::default()
    };
    let source = selector
        .open(args.crash.as_deref(), &options)
        .map_err(select_error)?;
    let pid = source.record.as_ref().map(|r| r.pid);
    let Some(input) = source.core_path() else {
        let state = match &source.core {
            CoreFile::Unavailable(state) => unavailable_core(state),
            _ => "the core is unavailable".to_owned(),
        };
        // systemd-coredump's message gives the reason it stored no core (a
        // size limit, Storage=none). For a core removed since, it adds nothing.
        let detail = source
            .record
            .as_ref()
            .filter(|_| matches!(source.core, CoreFile::Unavailable(CoreState::None)))
            .and_then(|r| r.message_summary())
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        anyhow::bail!(
            "no core to write for PID {}: {state}{detail}",
            pid.map_or_else(|| "?".to_string(), |p| p.to_string())
        );
    };
    let display_path = source.core_display_path().unwrap_or_else(|| input.clone());

    let content = if args.raw {
        Content::Raw
    } else {
        Content::Core
    };
    let result = if to_stdout {
        write_stream(&input, &mut std::io::stdout().lock(), content)
            .context("cannot write the core to stdout")?
    } else if is_special_file(&args.output) {
        let file = OpenOptions::new()
            .write(true)
            .open(&args.output)
            .with_context(|| format!("cannot open {}", args.output.display()))?;
        write_stream(&input, &mut &file, content)
            .with_context(|| format!("cannot write {}", args.output.display()))?
    } else {
        write_file(&input, &args.output, content)?
    };
    let names = CoreNames {
        read: &input,
        shown: &display_path,
    };
    finish(result, &names, &args.output)
}

/// The path a core was read from and the name messages give it. They differ
/// for a core stored inside the journal entry: it is read from a temporary
/// copy that is gone when the command ends.
struct CoreNames<'a> {
    read: &'a Path,
    shown: &'a Path,
}

impl CoreNames<'_> {
    /// Formats an error chain on one line with the shown name in place of
    /// the read path, which the decompressor's messages contain.
    fn message(&self, error: anyhow::Error) -> String {
        format!("{error:#}").replace(
            &self.read.display().to_string(),
            &self.shown.display().to_string(),
        )
    }
}

/// Says why a core cannot be written, in words: `list`'s one-word labels
/// ("none", "missing") do not make a sentence.
fn unavailable_core(state: &CoreState) -> String {
    match state {
        CoreState::None => "no core was stored".to_owned(),
        CoreState::Missing { path } => format!("the core {} is missing", path.display()),
        CoreState::Inaccessible { path, reason } => {
            format!("the core {} cannot be read: {reason}", path.display())
        }
        CoreState::Rejected { path, reason } => {
            format!("the core path {} was rejected: {reason}", path.display())
        }
        CoreState::Present { .. } | CoreState::Journal { .. } => {
            "the core is unavailable".to_owned()
        }
    }
}

/// Removes a `.partial` file when SIGINT, SIGTERM or SIGHUP ends the
/// dump, which takes minutes for a large core, and then lets the signal
/// end the process as it would have. The handlers stay until the process
/// exits: removing signal-hook's actions would leave its handler doing
/// nothing, so the signals would be ignored. Once the file is renamed, the
/// removal finds nothing.
fn remove_on_signal(path: &Path) {
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    let path = std::sync::Arc::new(path);
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        let path = std::sync::Arc::clone(&path);
        // SAFETY: the handler calls only unlink(2) and signal-hook's
        // emulation of the default action (which resets the handler
        // and raises the signal again), both async-signal-safe, and
        // touches no lock or allocation.
        let registered = unsafe {
            signal_hook::low_level::register(signal, move || {
                libc::unlink(path.as_ptr());
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            })
        };
        if let Err(error) = registered {
            tracing::debug!(target: "gocrash::dump", signal, %error, "cannot watch for the signal; an interrupted dump leaves its partial file");
        }
    }
}

/// Tells whether `output` exists and is not a regular file (a FIFO, a
/// character device such as /dev/null): such a file is written in place,
/// never replaced by a rename.
fn is_special_file(output: &Path) -> bool {
    std::fs::metadata(output).is_ok_and(|meta| !meta.is_file())
}

/// Decompresses into a stream without holes.
fn write_stream(
    input: &Path,
    writer: &mut dyn Write,
    content: Content,
) -> std::io::Result<Result<StreamSummary, DecompressError>> {
    let mut buffered = BufWriter::new(writer);
    let result = decompress_to(input, Output::Writer(&mut buffered), content, &mut |_| {});
    buffered.flush()?;
    Ok(result)
}

/// Decompresses into a temporary file next to `output` and renames it into
/// place, so that a failed dump never leaves a file that looks complete,
/// except when the stream is damaged: then what was read is kept. Zero pages
/// of the core become holes in the file.
fn write_file(
    input: &Path,
    output: &Path,
    content: Content,
) -> anyhow::Result<Result<StreamSummary, DecompressError>> {
    let (mut file, partial) = create_partial(output).with_context(|| {
        format!(
            "cannot create a temporary file next to {} to write the core to",
            output.display()
        )
    })?;
    remove_on_signal(&partial);
    let result = decompress_to(input, Output::File(&mut file), content, &mut |_| {});
    let flushed = file.sync_all();
    let keep = match &result {
        Ok(_) => true,
        Err(error) => error.partial_len().is_some_and(|len| len > 0),
    };
    if flushed.is_err() || !keep {
        let _ = std::fs::remove_file(&partial);
    }
    flushed.with_context(|| format!("cannot write {}", partial.display()))?;
    if keep {
        std::fs::rename(&partial, output).with_context(|| {
            format!(
                "cannot rename {} to {}",
                partial.display(),
                output.display()
            )
        })?;
    }
    Ok(result)
}

fn finish(
    result: Result<StreamSummary, DecompressError>,
    core: &CoreNames<'_>,
    output: &Path,
) -> anyhow::Result<Status> {
    match result {
        Ok(summary) => {
            tracing::info!(target: "gocrash::dump", input = %core.shown.display(), format = %summary.compression, bytes = summary.bytes_out, "wrote the core");
            match summary.described_len {
                Some(described) if summary.bytes_out < described => {
                    stderr_line!(
                        "gocrash: warning: {}: the core is truncated: its program headers \
                         describe {described:#x} bytes, {} has {:#x} (cut before it was \
                         stored, as systemd-coredump cuts cores at its size limit); memory \
                         past the end is missing",
                        output.display(),
                        core.shown.display(),
                        summary.bytes_out
                    );
                    Ok(Status::Partial)
                }
                _ => Ok(Status::Success),
            }
        }
        Err(error @ DecompressError::ChecksumMismatch { .. }) => {
            stderr_line!(
                "gocrash: warning: {}: the core was written, but it fails the stream's content \
                 checksum, so any of its bytes may be wrong: {}",
                output.display(),
                core.message(anyhow::Error::new(error))
            );
            Ok(Status::Partial)
        }
        Err(error) if error.partial_len().is_some_and(|len| len > 0) => {
            let written = error.partial_len().unwrap_or_default();
            stderr_line!(
                "gocrash: warning: {}: only the first {written:#x} bytes were written: {}",
                output.display(),
                core.message(anyhow::Error::new(error))
            );
            Ok(Status::Partial)
        }
        // A reader that closed the pipe (`dump -o - | head`) ends the
        // command quietly, as for every command that writes to stdout.
        Err(DecompressError::Write { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(Status::Success)
        }
        // The decompression failed on the output's side: the output is named.
        Err(error @ DecompressError::Write { .. }) => Err(anyhow::anyhow!(
            "cannot decompress {} into {}: {}",
            core.shown.display(),
            if output == Path::new("-") {
                "stdout".to_owned()
            } else {
                output.display().to_string()
            },
            core.message(anyhow::Error::new(error))
        )),
        Err(error) => Err(anyhow::anyhow!(
            "cannot decompress {}: {}",
            core.shown.display(),
            core.message(anyhow::Error::new(error))
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_core_reads_as_a_sentence() {
        assert_eq!(unavailable_core(&CoreState::None), "no core was stored");
        assert_eq!(
            unavailable_core(&CoreState::Missing {
                path: PathBuf::from("/var/lib/systemd/coredump/core.x.zst")
            }),
            "the core /var/lib/systemd/coredump/core.x.zst is missing"
        );
    }

    #[test]
    fn core_names_replace_the_read_path() {
        let names = CoreNames {
            read: Path::new("/tmp/gocrash-field-Ab12"),
            shown: Path::new("the core stored in the journal entry of PID 7"),
        };
        let error = anyhow::anyhow!("/tmp/gocrash-field-Ab12 is not a 64-bit ELF core");
        assert_eq!(
            names.message(error),
            "the core stored in the journal entry of PID 7 is not a 64-bit ELF core"
        );
    }

    #[test]
    fn partial_file_is_new_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("app.core");
        // Neither a symbolic link nor a file already at the old fixed name
        // is used.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("app.core.partial")).unwrap();
        let (_, first) = create_partial(&output).unwrap();
        let (_, second) = create_partial(&output).unwrap();
        assert_ne!(first, second);
        for partial in [&first, &second] {
            assert_eq!(partial.parent(), Some(dir.path()));
            let name = partial.file_name().unwrap().to_str().unwrap();
            assert!(
                name.starts_with("app.core.") && name.ends_with(".partial"),
                "{name}"
            );
            let meta = std::fs::symlink_metadata(partial).unwrap();
            assert!(meta.is_file());
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }
}
