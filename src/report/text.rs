//! The report as plain text, for a terminal.

use std::io::{self, Write};

use crate::render::escape::EscapingWriter;
use crate::render::{repeated_text, StackItem};

use super::model::{CrashReport, FrameView, GoroutineView, SourceSnippet};
use super::{
    build_lines, goroutine_header, group_header, groups_summary, loss_text, not_found_text,
    position, process_lines, signature_text, stack_items,
};

const FUNCTION_INDENT: &str = "  ";
const POSITION_INDENT: &str = "      ";
const SOURCE_INDENT: &str = "        ";

/// Writes the report. Control characters in the crash's own text are
/// escaped, so that they reach neither a terminal nor a pasted ticket raw.
pub fn write(out: &mut dyn Write, report: &CrashReport) -> io::Result<()> {
    let mut escaped = EscapingWriter::new(out);
    write_escaped(&mut escaped, report)?;
    escaped.finish()
}

fn write_escaped(out: &mut dyn Write, report: &CrashReport) -> io::Result<()> {
    if report.headline.lines.is_empty() {
        writeln!(
            out,
            "(no headline: neither the core nor a crash text gave one; see what is missing)"
        )?;
    }
    for line in &report.headline.lines {
        writeln!(out, "{}", line.replace("\n\t", "\n    "))?;
    }
    writeln!(out)?;
    write_pairs(out, &process_lines(report))?;
    write_pairs(out, &build_lines(report))?;

    if let Some(crashing) = &report.crashing {
        writeln!(out)?;
        writeln!(
            out,
            "Crashing {}, from the {}:",
            goroutine_header(crashing),
            report.goroutines_from
        )?;
        write_goroutine(out, crashing)?;
    }
    if !report.groups.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}:", capitalize(&groups_summary(report)))?;
        for group in &report.groups {
            writeln!(out)?;
            // A group's header ends with its ids, as symbolize prints it;
            // a goroutine's ends with a colon, as the runtime prints it.
            let colon = if group.count <= 1 { ":" } else { "" };
            writeln!(out, "{}{colon}", group_header(group))?;
            write_goroutine(out, &group.goroutine)?;
        }
    }

    writeln!(out)?;
    writeln!(out, "Crash text in the journal: {}", loss_text(report))?;
    match signature_text(report) {
        Some(line) => writeln!(out, "Signature: {line}")?,
        None => writeln!(
            out,
            "Signature: none (neither the text nor the core could be read)"
        )?,
    }
    write_earlier(out, report)?;
    write_list(out, "Missing", &report.missing)?;
    write_list(out, "Warnings", &report.warnings)
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn write_pairs(out: &mut dyn Write, pairs: &[(&str, String)]) -> io::Result<()> {
    for (label, value) in pairs {
        let label = format!("{label}:");
        writeln!(out, "{label:<19}{value}")?;
    }
    Ok(())
}

fn write_goroutine(out: &mut dyn Write, goroutine: &GoroutineView) -> io::Result<()> {
    for item in stack_items(goroutine) {
        match item {
            StackItem::Frame(frame) => write_frame(out, frame)?,
            StackItem::Repeated { frames, times } => {
                writeln!(out, "{FUNCTION_INDENT}{}", repeated_text(frames, times))?
            }
        }
    }
    if let Some(note) = &goroutine.stack_note {
        writeln!(out, "{FUNCTION_INDENT}({note})")?;
    }
    if let Some(creator) = &goroutine.created_by {
        writeln!(
            out,
            "{FUNCTION_INDENT}created by {}",
            super::creator_text(creator)
        )?;
        writeln!(
            out,
            "{POSITION_INDENT}{}",
            position(creator.file.as_deref(), creator.line)
        )?;
    }
    Ok(())
}

fn write_frame(out: &mut dyn Write, frame: &FrameView) -> io::Result<()> {
    let inlined = if frame.inlined { " (inlined)" } else { "" };
    writeln!(out, "{FUNCTION_INDENT}{}{inlined}", frame.function)?;
    writeln!(
        out,
        "{POSITION_INDENT}{}",
        position(frame.file.as_deref(), frame.line)
    )?;
    match &frame.source {
        Some(SourceSnippet::Found {
            first_line,
            marked_line,
            lines,
            ..
        }) => {
            let width = (first_line + lines.len() as i64).to_string().len();
            for (number, line) in (*first_line..).zip(lines) {
                let mark = if number == *marked_line { '>' } else { ' ' };
                writeln!(out, "{SOURCE_INDENT}{mark} {number:>width$} | {line}")?;
            }
        }
        Some(SourceSnippet::NotFound { tried }) => {
            writeln!(out, "{SOURCE_INDENT}({})", not_found_text(tried))?
        }
        None => {}
    }
    Ok(())
}

fn write_earlier(out: &mut dyn Write, report: &CrashReport) -> io::Result<()> {
    let earlier = &report.earlier;
    if let Some(error) = &earlier.error {
        return writeln!(out, "Earlier occurrences: not searched ({error})");
    }
    let searched = earlier
        .searched
        .as_deref()
        .map(|s| format!(" among {s}"))
        .unwrap_or_default();
    writeln!(out, "Earlier occurrences{searched}: {}", earlier.count)?;
    if earlier.count > earlier.crashes.len() {
        writeln!(out, "  the newest {}:", earlier.crashes.len())?;
    }
    for crash in &earlier.crashes {
        let unit = crash.unit.as_deref().unwrap_or("-");
        writeln!(out, "  {}  pid {}  unit {unit}", crash.time, crash.pid)?;
    }
    if let Some(command) = &earlier.command {
        writeln!(out, "  list every crash with this signature: {command}")?;
    }
    Ok(())
}

fn write_list(out: &mut dyn Write, title: &str, lines: &[String]) -> io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "{title}:")?;
    for line in lines {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}
