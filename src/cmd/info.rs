//! `gocrash info`: everything known about one crash without rebuilding its
//! goroutines: the coredump entry's fields, where the core is, the crash
//! text's headline and what journald lost of it, and whether the executable
//! on disk is the build that crashed.
//!
//! Selecting the crash and reading the journal are the `ingest` crate's
//! job; the core and the binary are read with the `symbolizer` crate.

use std::io::Write;
use std::path::{Path, PathBuf};

use ingest::coredump::{CoreState, CoredumpRecord};
use ingest::crashtext::{CrashText, DumpEnd, Loss, MAX_TEXT_BYTES, MAX_TEXT_LINES};
use ingest::select::{CoreFile, CrashSource, OpenOptions};
use ingest::signature::{compute, CrashInput, Signature};
use ingest::traceback::{MAX_FRAMES_PER_STACK, MAX_GOROUTINES, MAX_LINE_BYTES, MAX_TOTAL_FRAMES};
use serde::Serialize;
use symbolizer::buildid::{self, BuildIds};
use symbolizer::core::{Core, CoreOptions};

use super::list::{
    format_rfc3339, format_time, read_go_version, select_error, GoVersion, JournalArgs,
    MAX_HEADLINE_BYTES,
};
use crate::exit::Status;
use crate::render::error_chain;
use crate::render::escape::{cap_line, escape_line};

/// Width of the field names in the text output, as coredumpctl aligns them.
const LABEL_WIDTH: usize = 16;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "CRASH is a core file, a PID, an executable path, a journal match \
FIELD=VALUE or a command name; the newest matching crash is shown, or the newest crash of all \
without CRASH.\n\nExit status: 0 when the crash was shown; 1 on failure; 2 for an invalid \
command line (also a time or journal match journalctl rejects); 3 when no crash matched."
)]
pub struct Args {
    /// The crash to show.
    #[arg(value_name = "CRASH", value_parser = crate::crash_input::parse_crash)]
    pub crash: Option<String>,
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Print one JSON document (schema gocrash.info/1).
    #[arg(long)]
    pub json: bool,
}

/// The JSON document.
#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    record: Option<&'a CoredumpRecord>,
    core: CoreFacts,
    binary: Option<BinaryFacts>,
    build_id_check: BuildIdCheck,
    text: Option<TextFacts<'a>>,
    /// The crash signature, computed from the crash text; null without one.
    signature: Option<Signature>,
}

/// The core's location, and the build IDs in its copy of the executable.
#[derive(Serialize)]
struct CoreFacts {
    #[serde(flatten)]
    state: CoreState,
    truncated: bool,
    /// The executable's path in the core's NT_FILE note.
    executable: Option<String>,
    /// The executable was replaced or removed while the program ran.
    executable_deleted: bool,
    /// Build IDs read from the core's copy of the executable's first page.
    build_ids: Option<BuildIds>,
    /// Damage found in the core, or why it could not be read.
    problems: Vec<String>,
    /// The process as the core's notes describe it, for a core the journal
    /// does not know; `None` when a record describes it.
    process: Option<CoreProcess>,
}

/// The crashed process as the core's NT_PRPSINFO and NT_SIGINFO notes
/// describe it.
#[derive(Serialize)]
struct CoreProcess {
    pid: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    /// The command name (`comm`), at most 15 bytes.
    comm: Option<String>,
    /// The command line, cut to 80 bytes by the kernel.
    cmdline: Option<String>,
    signal: Option<u32>,
    signal_name: Option<String>,
}

impl CoreProcess {
    /// Reads the facts from the core's notes, or `None` when it has neither.
    fn read(core: &Core) -> Option<CoreProcess> {
        let info = core.process();
        let signal = core.siginfo().and_then(|s| u32::try_from(s.signo).ok());
        if info.is_none() && signal.is_none() {
            return None;
        }
        Some(CoreProcess {
            pid: info.map(|i| i.pid),
            uid: info.map(|i| i.uid),
            gid: info.map(|i| i.gid),
            comm: info.map(|i| i.fname.clone()).filter(|c| !c.is_empty()),
            cmdline: info.map(|i| i.psargs.clone()).filter(|c| !c.is_empty()),
            signal,
            signal_name: signal
                .and_then(crate::render::signal_name)
                .map(|(name, _)| name.to_owned()),
        })
    }
}

/// The executable now on disk.
#[derive(Serialize)]
struct BinaryFacts {
    path: String,
    go_version: Option<String>,
    build_ids: Option<BuildIds>,
    error: Option<String>,
}

/// The executable on disk compared with the one that crashed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
enum BuildIdCheck {
    /// Every kind of build ID present on both sides is equal.
    Matched { kinds: Vec<&'static str> },
    /// A build ID differs: the file on disk is another build.
    Mismatch { in_core: String, on_disk: String },
    /// No kind of build ID is present on both sides.
    Unverified,
    /// The executable or the core could not be read.
    NotChecked { reason: String },
}

/// The crash text as journald kept it.
#[derive(Serialize)]
struct TextFacts<'a> {
    lines: usize,
    /// Lines of the service's own output before the crash report.
    prelude_lines: usize,
    headline: Option<String>,
    /// The headline's length in bytes as the process printed it: longer
    /// than `headline` when the text reader cut a line over 64 KiB.
    headline_bytes: Option<usize>,
    goroutines: usize,
    stream_ids: &'a [String],
    first_line_time: Option<String>,
    last_line_time: Option<String>,
    loss: &'a Loss,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let selector = args.journal.selector();
    let source = selector
        .open(args.crash.as_deref(), &OpenOptions::default())
        .map_err(select_error)?;

    let (mut core, core_exe) = core_facts(&source, &selector.store)?;
    let exe_path = source.executable().map(Path::to_path_buf).or(core_exe);
    let binary = exe_path.as_deref().map(binary_facts);
    let check = check_build_ids(core.build_ids.as_ref(), binary.as_ref());
    core.truncated = source.record.as_ref().is_some_and(|r| r.truncated);

    let text = source.text.as_ref().map(text_facts);
    // The text gives the signature in milliseconds; the core would need
    // its goroutines rebuilt, which `info` does not do.
    let signature = source
        .text
        .as_ref()
        .filter(|t| !t.traceback.is_empty())
        .map(|t| compute(&CrashInput::from_traceback(&t.traceback)));
    let document = Document {
        schema: "gocrash.info/1",
        record: source.record.as_ref(),
        core,
        binary,
        build_id_check: check,
        text,
        signature,
    };

    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        crate::output::write_json(&mut stdout, &document, crate::output::indent_stdout_json())
    } else {
        stdout.write_all(format_text(&document, source.text.as_ref()).as_bytes())
    };
    written
        .and_then(|()| stdout.flush())
        .map_err(crate::output::stdout_error)?;
    Ok(Status::Success)
}

/// Finds the core's state and reads the executable's build IDs from it.
/// Returns the facts and the executable's path in the core. A file named on
/// the command line that is not a core at all, and that the journal does
/// not know, is an error.
fn core_facts(
    source: &CrashSource,
    store: &ingest::coredump::CoredumpStore,
) -> anyhow::Result<(CoreFacts, Option<PathBuf>)> {
    let state = match (&source.core, &source.record) {
        (CoreFile::Unavailable(state), _) => state.clone(),
        (CoreFile::Given(path), _) => CoreState::Present {
            path: path.clone(),
            size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        },
        (_, Some(record)) => store.state(record),
        (CoreFile::Stored(stored), None) => CoreState::Present {
            path: stored.path.clone(),
            size: stored.size,
        },
        (CoreFile::Inline(spilled), None) => CoreState::Journal { len: spilled.len() },
    };
    let mut facts = CoreFacts {
        state,
        truncated: false,
        executable: None,
        executable_deleted: false,
        build_ids: None,
        problems: Vec::new(),
        process: None,
    };
    let Some(path) = source.core_path() else {
        return Ok((facts, None));
    };
    let options = CoreOptions {
        core_only: true,
        shown_path: source.core_display_path(),
        ..CoreOptions::default()
    };
    match Core::open(&path, &options) {
        Ok(core) => {
            facts.problems = core.problems().iter().map(ToString::to_string).collect();
            if let Some(damage) = core.decompress_damage() {
                facts.problems.push(error_chain(damage));
            }
            if source.record.is_none() {
                facts.process = CoreProcess::read(&core);
            }
            let exe = core.executable().map(|exe| {
                facts.executable = Some(exe.path.to_string_lossy().into_owned());
                facts.executable_deleted = exe.deleted;
                facts.build_ids = Some(exe.build_ids.clone());
                exe.path.clone()
            });
            Ok((facts, exe))
        }
        Err(error) if source.record.is_none() && error.is_not_a_core() => {
            Err(crate::crash_input::core_error(error))
        }
        Err(error) => {
            facts
                .problems
                .push(format!("{:#}", anyhow::Error::new(error)));
            Ok((facts, None))
        }
    }
}

fn binary_facts(path: &Path) -> BinaryFacts {
    let mut facts = BinaryFacts {
        path: path.to_string_lossy().into_owned(),
        go_version: None,
        build_ids: None,
        error: None,
    };
    match symbolizer::binary::Binary::open(path) {
        Ok(binary) => {
            facts.build_ids = Some(buildid::read(binary.elf()).ids);
            facts.go_version = match read_go_version(path) {
                GoVersion::Version(version) => Some(version),
                _ => None,
            };
        }
        Err(error) => facts.error = Some(format!("{:#}", anyhow::Error::new(error))),
    }
    facts
}

fn check_build_ids(in_core: Option<&BuildIds>, binary: Option<&BinaryFacts>) -> BuildIdCheck {
    let Some(in_core) = in_core else {
        return BuildIdCheck::NotChecked {
            reason: "the core could not be read".into(),
        };
    };
    let Some(binary) = binary else {
        return BuildIdCheck::NotChecked {
            reason: "the executable is unknown".into(),
        };
    };
    let Some(on_disk) = &binary.build_ids else {
        return BuildIdCheck::NotChecked {
            reason: binary
                .error
                .clone()
                .unwrap_or_else(|| "the executable could not be read".into()),
        };
    };
    let mut kinds = Vec::new();
    if let (Some(a), Some(b)) = (&in_core.go, &on_disk.go) {
        if a != b {
            return BuildIdCheck::Mismatch {
                in_core: format!("Go {a}"),
                on_disk: format!("Go {b}"),
            };
        }
        kinds.push("go");
    }
    if let (Some(a), Some(b)) = (&in_core.gnu, &on_disk.gnu) {
        if a != b {
            return BuildIdCheck::Mismatch {
                in_core: format!("GNU {a}"),
                on_disk: format!("GNU {b}"),
            };
        }
        kinds.push("gnu");
    }
    if kinds.is_empty() {
        BuildIdCheck::Unverified
    } else {
        BuildIdCheck::Matched { kinds }
    }
}

fn text_facts(text: &CrashText) -> TextFacts<'_> {
    let span = text.time_span_usec();
    let (headline, headline_bytes) = text.headline_with_len().unzip();
    TextFacts {
        lines: text.line_count(),
        prelude_lines: text.prelude_lines(),
        headline,
        headline_bytes,
        goroutines: text.traceback.main_goroutines().count(),
        stream_ids: &text.stream_ids,
        first_line_time: span.map(|(first, _)| format_rfc3339(first)),
        last_line_time: span.map(|(_, last)| format_rfc3339(last)),
        loss: &text.loss,
    }
}

/// Lays the facts out as `Label: value` lines, as coredumpctl info does.
fn format_text(document: &Document<'_>, text: Option<&CrashText>) -> String {
    let mut lines: Vec<(&str, String)> = Vec::new();
    if let Some(record) = document.record {
        lines.push((
            "PID",
            match &record.comm {
                Some(comm) => format!("{} ({comm})", record.pid),
                None => record.pid.to_string(),
            },
        ));
        push_some(&mut lines, "UID", record.uid.map(|v| v.to_string()));
        push_some(&mut lines, "GID", record.gid.map(|v| v.to_string()));
        push_some(
            &mut lines,
            "Signal",
            record.signal.as_ref().map(|s| match &s.name {
                Some(name) => format!("{} ({name})", s.number),
                None => s.number.to_string(),
            }),
        );
        lines.push(("Timestamp", format_time(record.crash_time_usec())));
        push_some(&mut lines, "Command Line", record.cmdline.clone());
        push_some(
            &mut lines,
            "Executable",
            record.exe.as_ref().map(|p| p.display().to_string()),
        );
        push_some(&mut lines, "Control Group", record.cgroup.clone());
        push_some(&mut lines, "Unit", record.unit.clone());
        push_some(&mut lines, "User Unit", record.user_unit.clone());
        push_some(&mut lines, "Slice", record.slice.clone());
        push_some(&mut lines, "Session", record.session.clone());
        push_some(
            &mut lines,
            "Owner UID",
            record.owner_uid.map(|v| v.to_string()),
        );
        push_some(&mut lines, "Boot ID", record.boot_id.clone());
        push_some(&mut lines, "Machine ID", record.machine_id.clone());
        push_some(&mut lines, "Hostname", record.hostname.clone());
        push_some(
            &mut lines,
            "Core Limit",
            record.rlimit.map(|v| v.to_string()),
        );
        lines.push((
            "Entry",
            match record.trust {
                ingest::coredump::Trust::Verified => "written by systemd-coredump".to_string(),
                ingest::coredump::Trust::UidOnly => {
                    "written by a system user (journald did not record the sender's executable)"
                        .to_string()
                }
            },
        ));
        for problem in &record.problems {
            lines.push(("Invalid Field", problem.to_string()));
        }
    }

    if let Some(process) = &document.core.process {
        push_some(
            &mut lines,
            "PID",
            process.pid.map(|pid| match &process.comm {
                Some(comm) => format!("{pid} ({comm})"),
                None => pid.to_string(),
            }),
        );
        push_some(&mut lines, "UID", process.uid.map(|v| v.to_string()));
        push_some(&mut lines, "GID", process.gid.map(|v| v.to_string()));
        push_some(
            &mut lines,
            "Signal",
            process.signal.map(|number| match &process.signal_name {
                Some(name) => format!("{number} ({name})"),
                None => number.to_string(),
            }),
        );
        push_some(
            &mut lines,
            "Command Line",
            process.cmdline.as_ref().map(|cmdline| {
                format!("{cmdline}{}", crate::render::text::psargs_cut_note(cmdline))
            }),
        );
        lines.push((
            "Process Facts",
            "from the core's notes (the journal has no record of this core)".to_owned(),
        ));
    }
    lines.push(("Storage", storage_line(&document.core)));
    if let Some(executable) = &document.core.executable {
        let deleted = if document.core.executable_deleted {
            " (deleted)"
        } else {
            ""
        };
        lines.push(("Core Executable", format!("{executable}{deleted}")));
    }
    for problem in &document.core.problems {
        lines.push(("Core Problem", problem.clone()));
    }
    if let Some(binary) = &document.binary {
        let version = binary
            .go_version
            .clone()
            .unwrap_or_else(|| match &binary.error {
                Some(_) => "unknown (executable unreadable)".into(),
                None => "none (not a Go binary)".into(),
            });
        lines.push(("Go Version", version));
        if let Some(error) = &binary.error {
            lines.push(("Binary Problem", error.clone()));
        }
    }
    lines.push((
        "Build ID",
        match &document.build_id_check {
            BuildIdCheck::Matched { kinds } => {
                format!("the file on disk matches the core ({})", kinds.join(", "))
            }
            BuildIdCheck::Mismatch { in_core, on_disk } => {
                format!("MISMATCH: the core has {in_core}, the file on disk {on_disk}")
            }
            BuildIdCheck::Unverified => "not verified: no build ID on both sides".into(),
            BuildIdCheck::NotChecked { reason } => format!("not checked: {reason}"),
        },
    ));

    match (text, &document.text) {
        (Some(text), Some(facts)) => {
            lines.push((
                "Headline",
                facts.headline.as_deref().map_or_else(
                    || "-".into(),
                    |headline| {
                        let len = facts.headline_bytes.unwrap_or(headline.len());
                        cap_line(headline, MAX_HEADLINE_BYTES, len).into_owned()
                    },
                ),
            ));
            lines.push((
                "Crash Text",
                format!(
                    "{} lines ({} before the report), {} goroutines",
                    facts.lines, facts.prelude_lines, facts.goroutines
                ),
            ));
            if let (Some(first), Some(last)) = (&facts.first_line_time, &facts.last_line_time) {
                lines.push(("Text Time", format!("{first} to {last}")));
            }
            lines.push(("Text Loss", loss_line(&text.loss)));
            if let Some(signature) = &document.signature {
                lines.push(("Signature", format!("{} {}", signature.id, signature.title)));
            }
        }
        _ => lines.push(("Crash Text", "none in the journal".into())),
    }
    if let Some(record) = document.record {
        push_some(
            &mut lines,
            "Message",
            record.message_summary().map(str::to_string),
        );
        lines.push(("Cursor", record.cursor.clone()));
    }

    // Every value may come from the crashed program (its command line,
    // crash text and file names), so each is escaped as one line.
    let mut out = String::new();
    for (label, value) in lines {
        out.push_str(&format!("{label:>LABEL_WIDTH$}: {}\n", escape_line(&value)));
    }
    out
}

fn push_some(lines: &mut Vec<(&'static str, String)>, label: &'static str, value: Option<String>) {
    if let Some(value) = value {
        lines.push((label, value));
    }
}

fn storage_line(core: &CoreFacts) -> String {
    let label = core.state.label(core.truncated);
    match &core.state {
        CoreState::Present { path, size } => format!("{} ({label}, {size} bytes)", path.display()),
        CoreState::Missing { path } => format!("{} ({label})", path.display()),
        CoreState::Inaccessible { path, reason } => {
            format!("{} ({label}: {reason})", path.display())
        }
        CoreState::Rejected { path, reason } => format!("{} ({label}: {reason})", path.display()),
        CoreState::Journal { len } => format!("inside the journal entry ({label}, {len} bytes)"),
        CoreState::None => "none: no core was stored (see Message)".into(),
    }
}

/// Summarises what journald lost or changed, with counts.
fn loss_line(loss: &Loss) -> String {
    let parts = loss_parts(loss);
    if parts.is_empty() {
        "none found".into()
    } else {
        parts.join("; ")
    }
}

/// Lists what journald lost or changed, one sentence each, with counts.
pub fn loss_parts(loss: &Loss) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(note) = &loss.suppressed {
        parts.push(format!(
            "journald suppressed {} messages of the unit (note at {}{})",
            note.dropped,
            format_rfc3339(note.note_time_usec),
            if note.after_crash {
                ", after the crash"
            } else {
                ""
            }
        ));
    }
    match &loss.dump {
        Some(DumpEnd::MidGoroutine { goroutine, text_line }) => parts.push(format!(
            "the dump stops after the header of goroutine {goroutine} (line {text_line} of the report)"
        )),
        Some(DumpEnd::MidFrame { goroutine, function, text_line }) => parts.push(format!(
            "the dump stops inside goroutine {goroutine}, at {function} (line {text_line} of the report)"
        )),
        Some(DumpEnd::NoGoroutines) => parts.push("no goroutine was printed after the reason".into()),
        Some(DumpEnd::NoReport) => parts.push("no Go crash report in the output".into()),
        Some(DumpEnd::ReaderLimit { goroutines_kept, goroutines_not_kept, lines_not_kept }) => {
            parts.push(reader_limit_text(*goroutines_kept, *goroutines_not_kept, *lines_not_kept))
        }
        _ => {}
    }
    let breaks = &loss.breaks;
    if breaks.ended_mid_line {
        parts.push("the output ends in the middle of a line".into());
    }
    let reader_limit = matches!(loss.dump, Some(DumpEnd::ReaderLimit { .. }));
    if breaks.lines_over_limit > 0 && !reader_limit {
        parts.push(format!(
            "{} lines past the reader's limit not kept",
            breaks.lines_over_limit
        ));
    }
    if loss.parser_limits.frames > 0 {
        parts.push(format!(
            "{} frames not kept: past the reader's limits of {MAX_FRAMES_PER_STACK} per goroutine and {MAX_TOTAL_FRAMES} in all, or in goroutines not read",
            loss.parser_limits.frames
        ));
    }
    if loss.parser_limits.long_lines > 0 {
        parts.push(format!(
            "{} lines longer than {} KiB read only to that length",
            loss.parser_limits.long_lines,
            MAX_LINE_BYTES >> 10
        ));
    }
    if breaks.unreadable_lines > 0 {
        parts.push(format!("{} unreadable lines", breaks.unreadable_lines));
    }
    if breaks.long_lines_cut > 0 {
        parts.push(format!("{} overlong lines cut", breaks.long_lines_cut));
    }
    let repaired = breaks.line_max_joins + breaks.pid_change_joins;
    if repaired > 0 {
        parts.push(format!(
            "{repaired} split lines joined again ({} at LineMax, {} at a PID change)",
            breaks.line_max_joins, breaks.pid_change_joins
        ));
    }
    if breaks.rewritten_entries > 0 {
        parts.push(format!(
            "{} lines journald wrote twice at a journal file rotation kept once",
            breaks.rewritten_entries
        ));
    }
    if loss.earlier_output_not_read {
        // Not a loss of the crash report, which lies inside the window.
        parts.push(
            "output from more than ten minutes before the crash not read (the crash report itself is whole)"
                .into(),
        );
    }
    parts
}

/// Says that the text was longer than the reader keeps, with the numbers.
fn reader_limit_text(
    goroutines_kept: usize,
    goroutines_not_kept: u64,
    lines_not_kept: u64,
) -> String {
    let mut cut = Vec::new();
    if goroutines_not_kept > 0 {
        cut.push(format!(
            "{goroutines_not_kept} goroutines past the first {goroutines_kept} (limit {MAX_GOROUTINES})"
        ));
    }
    if lines_not_kept > 0 {
        cut.push(format!(
            "{lines_not_kept} lines past the limits of {MAX_TEXT_LINES} lines and {} MiB",
            MAX_TEXT_BYTES >> 20
        ));
    }
    format!(
        "the text was cut by the reader's limits: {} not read, so the end of the dump was not checked",
        cut.join(" and ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use symbolizer::buildid::{GnuBuildId, GoBuildId};

    fn ids(go: Option<&str>, gnu: Option<&[u8]>) -> BuildIds {
        BuildIds {
            go: go.map(|g| GoBuildId(g.into())),
            gnu: gnu.map(|g| GnuBuildId(g.to_vec())),
            ..BuildIds::default()
        }
    }

    fn binary(ids: BuildIds) -> BinaryFacts {
        BinaryFacts {
            path: "/srv/app".into(),
            go_version: None,
            build_ids: Some(ids),
            error: None,
        }
    }

    #[test]
    fn build_ids_compare_per_kind() {
        let core = ids(Some("a/b"), Some(&[1, 2]));
        assert_eq!(
            check_build_ids(Some(&core), Some(&binary(ids(Some("a/b"), Some(&[1, 2]))))),
            BuildIdCheck::Matched {
                kinds: vec!["go", "gnu"]
            }
        );
        assert_eq!(
            check_build_ids(Some(&core), Some(&binary(ids(Some("a/b"), None)))),
            BuildIdCheck::Matched { kinds: vec!["go"] }
        );
        assert_eq!(
            check_build_ids(Some(&core), Some(&binary(ids(Some("x/y"), Some(&[1, 2]))))),
            BuildIdCheck::Mismatch {
                in_core: "Go a/b".into(),
                on_disk: "Go x/y".into()
            }
        );
        assert_eq!(
            check_build_ids(
                Some(&ids(None, Some(&[1]))),
                Some(&binary(ids(Some("g"), None)))
            ),
            BuildIdCheck::Unverified
        );
        assert!(matches!(
            check_build_ids(None, Some(&binary(ids(None, None)))),
            BuildIdCheck::NotChecked { .. }
        ));
    }

    #[test]
    fn loss_line_counts() {
        let mut loss = Loss::default();
        assert_eq!(loss_line(&loss), "none found");
        loss.breaks.pid_change_joins = 1;
        loss.dump = Some(DumpEnd::MidGoroutine {
            goroutine: 9,
            text_line: 40,
        });
        assert_eq!(
            loss_line(&loss),
            "the dump stops after the header of goroutine 9 (line 40 of the report); \
             1 split lines joined again (0 at LineMax, 1 at a PID change)"
        );
    }

    #[test]
    fn loss_line_counts_rewritten_entries() {
        let mut loss = Loss::default();
        loss.breaks.rewritten_entries = 2;
        assert_eq!(
            loss_line(&loss),
            "2 lines journald wrote twice at a journal file rotation kept once"
        );
    }

    #[test]
    fn loss_line_names_the_reader_limits() {
        let mut loss = Loss::default();
        loss.breaks.lines_over_limit = 7;
        loss.dump = Some(DumpEnd::ReaderLimit {
            goroutines_kept: 100_000,
            goroutines_not_kept: 200_000,
            lines_not_kept: 7,
        });
        loss.parser_limits.frames = 3;
        assert_eq!(
            loss_line(&loss),
            "the text was cut by the reader's limits: 200000 goroutines past the first \
             100000 (limit 100000) and 7 lines past the limits of 8000000 lines and 256 MiB \
             not read, so the end of the dump was not checked; 3 frames not kept: past the \
             reader's limits of 1024 per goroutine and 1000000 in all, or in goroutines not read"
        );
    }
}
