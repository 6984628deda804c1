//! `gocrash report`: one crash as a document to hand to people: the
//! headline, where and what ran, the crashing goroutine with its source
//! lines, the other goroutines grouped, what journald lost, the crash
//! signature and its earlier occurrences.
//!
//! [`gather`] fills the [`model`] from the core (through
//! [`crate::render::Report`], as `symbolize` reads it) or from the crash
//! text; [`source`] finds source files; [`occurrences`] computes the
//! signatures of other crashes. One module per format writes the model:
//! [`text`], [`markdown`], [`html`], and JSON, which is the model itself.

pub mod gather;
pub mod html;
pub mod markdown;
pub mod model;
pub mod occurrences;
pub mod source;
pub mod text;

use std::io::{self, Write};

use model::{CrashReport, GoroutineView, Group};

use crate::render::{collapse_recursion, compact_ids, repeated_text, StackItem};

/// Writes the report as JSON, indented or on one line.
pub fn write_json(out: &mut dyn Write, report: &CrashReport, indent: bool) -> io::Result<()> {
    crate::output::write_json(out, report, indent)
}

/// Returns `file:line` as the runtime prints a position, or `?`.
pub fn position(file: Option<&str>, line: Option<i64>) -> String {
    match (file, line) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(file), None) => file.to_owned(),
        _ => "?".to_owned(),
    }
}

/// Returns the function of a `created by` line, with the parent goroutine
/// as Go 1.21 and later print it: `main.serve in goroutine 7`.
pub fn creator_text(creator: &model::CreatorView) -> String {
    match creator.parent_goroutine {
        Some(parent) => format!("{} in goroutine {parent}", creator.function),
        None => creator.function.clone(),
    }
}

/// Returns the bracketed state of a goroutine header: the status, the
/// wait time and `locked to thread`.
fn state_text(status: &str, minutes: (Option<u64>, Option<u64>), locked: bool) -> String {
    let mut state = status.to_owned();
    match minutes {
        (Some(low), Some(high)) if low == high && low >= 1 => {
            state.push_str(&format!(", {low} minutes"))
        }
        (Some(low), Some(high)) if high >= 1 => state.push_str(&format!(", {low}-{high} minutes")),
        _ => {}
    }
    if locked {
        state.push_str(", locked to thread");
    }
    state
}

/// `goroutine 7 [chan receive, 3 minutes]`.
pub fn goroutine_header(view: &GoroutineView) -> String {
    let id = view.id.map_or_else(|| "?".to_owned(), |id| id.to_string());
    let state = state_text(
        &view.status,
        (view.wait_minutes, view.wait_minutes),
        view.locked_to_thread,
    );
    format!("goroutine {id} [{state}]")
}

/// `4 goroutines [chan receive, 1-3 minutes]: 5, 7-9`, or the one
/// goroutine's header for a group of one.
pub fn group_header(group: &Group) -> String {
    if group.count <= 1 {
        return goroutine_header(&group.goroutine);
    }
    let state = state_text(
        &group.goroutine.status,
        (group.min_wait_minutes, group.max_wait_minutes),
        group.goroutine.locked_to_thread,
    );
    format!(
        "{} goroutines [{state}]: {}",
        group.count,
        compact_ids(&group.ids)
    )
}

/// Returns the one-line summary of the other goroutines.
pub fn groups_summary(report: &CrashReport) -> String {
    let total: usize = report.groups.iter().map(|g| g.count).sum();
    let other = if report.crashing.is_some() {
        " other"
    } else {
        ""
    };
    format!(
        "{total}{other} goroutines in {} groups of identical stacks",
        report.groups.len()
    )
}

/// Returns the line shown for a frame whose source was not found.
pub fn not_found_text(tried: &[String]) -> String {
    if tried.is_empty() {
        // Only a relative path (a -trimpath build) that no root maps
        // leaves nothing to look at.
        "source not found: the recorded path is relative; pass --source-root DIR or MODULE=DIR"
            .to_owned()
    } else {
        format!("source not found; looked at: {}", tried.join(", "))
    }
}

/// Returns the build facts as `label: value` pairs, for every format.
pub fn build_lines(report: &CrashReport) -> Vec<(&'static str, String)> {
    let build = &report.build;
    let mut lines = Vec::new();
    if let Some(version) = &build.go_version {
        lines.push(("Go version", version.clone()));
    }
    if let Some(module) = &build.main_module {
        let version = build
            .main_module_version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        lines.push(("main module", format!("{module}{version}")));
    }
    if let Some(revision) = &build.vcs_revision {
        lines.push(("vcs.revision", revision.clone()));
    }
    if let Some(time) = &build.vcs_time {
        lines.push(("vcs.time", time.clone()));
    }
    if let Some(modified) = build.vcs_modified {
        lines.push(("vcs.modified", modified.to_string()));
    }
    if let Some(error) = &build.error {
        lines.push(("build information", format!("not read: {error}")));
    }
    lines
}

/// Returns the process facts as `label: value` pairs, for every format.
pub fn process_lines(report: &CrashReport) -> Vec<(&'static str, String)> {
    let process = &report.process;
    let mut lines = Vec::new();
    let mut push = |label, value: &Option<String>| {
        if let Some(value) = value {
            lines.push((label, value.clone()));
        }
    };
    push("host", &process.host);
    push("unit", &process.unit);
    push("time", &process.time);
    push("pid", &process.pid.map(|p| p.to_string()));
    push("executable", &process.executable);
    push("core", &process.core_file);
    if let Some(signal) = &report.headline.signal {
        let name = match (&signal.name, &signal.description) {
            (Some(name), Some(description)) => format!("{name} ({description})"),
            _ => format!("signal {}", signal.number),
        };
        lines.push(("signal", name));
        if let Some(address) = &signal.fault_address {
            lines.push(("fault address", address.clone()));
        }
        if let Some(pc) = &signal.pc {
            lines.push(("signal pc", pc.clone()));
        }
    }
    lines
}

/// Returns the loss report's one line.
pub fn loss_text(report: &CrashReport) -> String {
    let text = &report.journal_text;
    if !text.present {
        return "the journal holds no crash text".to_owned();
    }
    let loss = if text.loss.is_empty() {
        "nothing lost".to_owned()
    } else {
        text.loss.join("; ")
    };
    format!("{} lines; {loss}", text.lines)
}

/// Returns the signature's one line: id, title and source.
pub fn signature_text(report: &CrashReport) -> Option<String> {
    let facts = report.signature.as_ref()?;
    Some(format!(
        "{} {} (from the {})",
        facts.signature.id, facts.signature.title, facts.from
    ))
}

/// Returns the frames of a goroutine with each recursion printed once
/// ([`collapse_recursion`]).
fn stack_items(goroutine: &GoroutineView) -> Vec<StackItem<'_, model::FrameView>> {
    collapse_recursion(&goroutine.frames, |a, b| {
        a.function == b.function && a.file == b.file && a.line == b.line && a.inlined == b.inlined
    })
}

/// Returns a goroutine's stack in the runtime's two-line layout, with each
/// recursion printed once and the note on an incomplete stack.
pub(super) fn stack_text(goroutine: &GoroutineView) -> String {
    let mut text = String::new();
    for item in stack_items(goroutine) {
        let frame = match item {
            StackItem::Frame(frame) => frame,
            StackItem::Repeated { frames, times } => {
                text.push_str(&format!("{}\n", repeated_text(frames, times)));
                continue;
            }
        };
        let inlined = if frame.inlined { " (inlined)" } else { "" };
        text.push_str(&format!(
            "{}{inlined}\n    {}\n",
            frame.function,
            position(frame.file.as_deref(), frame.line)
        ));
    }
    if let Some(note) = &goroutine.stack_note {
        text.push_str(&format!("({note})\n"));
    }
    if let Some(creator) = &goroutine.created_by {
        text.push_str(&format!(
            "created by {}\n    {}\n",
            creator_text(creator),
            position(creator.file.as_deref(), creator.line)
        ));
    }
    text.trim_end().to_owned()
}
