//! `gocrash buildinfo`: the build information a Go binary carries.
//!
//! The text output is the layout of `go version -m BIN`, byte for byte; the
//! JSON output adds the Go and GNU build IDs.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use symbolizer::binary::{Binary, BinaryError};
use symbolizer::buildid::{self, GnuBuildId, GoBuildId};
use symbolizer::buildinfo::{self, BuildInfo};

use crate::exit::Status;
use crate::output::{Format, Output};
use crate::render::escape::{escape, Newlines};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Go binary to read.
    pub binary: PathBuf,

    #[command(flatten)]
    pub output: Output,
}

/// The JSON document: the build information and the build IDs.
#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    binary: String,
    #[serde(flatten)]
    build_info: &'a BuildInfo,
    go_build_id: Option<&'a GoBuildId>,
    gnu_build_id: Option<&'a GnuBuildId>,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let format = args.output.format();
    let path = &args.binary;
    let name = path.display().to_string();

    // The binary is memory-mapped, not read: build information takes a few
    // pages of a file that can be gigabytes. `Binary::open` rejects FIFOs
    // and devices, whose read would block or never end.
    let binary = Binary::open(path).map_err(|error| match error {
        BinaryError::Open { source, .. } => {
            anyhow::anyhow!("{name}: cannot read the file: {source}")
        }
        BinaryError::Elf { source, .. } => anyhow::anyhow!(
            "{name}: invalid or unsupported ELF file (64-bit ELF expected): {source}"
        ),
        damaged @ BinaryError::Damaged { .. } => anyhow::Error::new(damaged).context(format!(
            "{name}: invalid or unsupported ELF file (64-bit ELF expected)"
        )),
        other => anyhow::Error::new(other),
    })?;
    crate::crash_input::warn_if_cut_short(&binary);
    let elf = binary.elf();
    let info = buildinfo::read(elf)
        .with_context(|| format!("{name}: cannot read Go build information"))?;

    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Json => {
            let ids = buildid::read(elf);
            let document = Document {
                schema: "gocrash.buildinfo/1",
                binary: name,
                build_info: &info,
                go_build_id: ids.ids.go.as_ref(),
                gnu_build_id: ids.ids.gnu.as_ref(),
            };
            crate::output::write_json(&mut stdout, &document, crate::output::indent_stdout_json())
                .map_err(crate::output::stdout_error)?;
            if !ids.damaged.is_empty() {
                return Ok(Status::Partial);
            }
        }
        // Module paths and settings come from the binary: their control
        // characters are escaped, and the layout's newlines and tabs kept.
        _ => stdout
            .write_all(escape(&go_version_m(path, &info), Newlines::Keep).as_bytes())
            .map_err(crate::output::stdout_error)?,
    }
    stdout.flush().map_err(crate::output::stdout_error)?;
    Ok(Status::Success)
}

/// Formats `info` as `go version -m` prints it: `BIN: VERSION`, then each
/// line of the module information indented by a tab.
fn go_version_m(path: &Path, info: &BuildInfo) -> String {
    let mut out = format!("{}: {}\n", path.display(), info.go_version);
    let modinfo = info.modinfo_text();
    if let Some(body) = modinfo.strip_suffix('\n') {
        out.push('\t');
        out.push_str(&body.replace('\n', "\n\t"));
        out.push('\n');
    }
    out
}
