//! The report as Markdown, for pasting into an incident channel or a
//! ticket.
//!
//! Crash text is untrusted: a panic message may hold backticks, pipes or
//! Markdown of its own. Every piece of it therefore sits in a code span or
//! a fenced block whose backtick run is longer than any run inside, so the
//! text cannot end the block early (CommonMark 0.31, sections 4.5 and 6.1).

use std::io::{self, Write};

use crate::render::escape::EscapingWriter;
use crate::render::StackItem;

use super::model::{CrashReport, FrameView, GoroutineView, SourceSnippet};
use super::{
    build_lines, goroutine_header, group_header, groups_summary, loss_text, not_found_text,
    position, process_lines, signature_text, stack_items, stack_text,
};

/// The shortest fence CommonMark accepts.
const MIN_FENCE: usize = 3;

/// Writes the report. Control characters in the crash's own text are
/// escaped, so that they reach neither a terminal nor a pasted ticket raw.
pub fn write(out: &mut dyn Write, report: &CrashReport) -> io::Result<()> {
    let mut escaped = EscapingWriter::new(out);
    write_escaped(&mut escaped, report)?;
    escaped.finish()
}

fn write_escaped(out: &mut dyn Write, report: &CrashReport) -> io::Result<()> {
    let title = report
        .headline
        .first_line
        .as_deref()
        .unwrap_or("crash without a headline");
    writeln!(out, "### Go crash: {}", code_span(title))?;
    writeln!(out)?;
    // A panic value may span several lines, which the title leaves out.
    let multiline = report.headline.lines.iter().any(|line| line.contains('\n'));
    if report.headline.lines.len() > 1 || multiline {
        write_block(out, &report.headline.lines.join("\n"))?;
        writeln!(out)?;
    }
    for (label, value) in process_lines(report).into_iter().chain(build_lines(report)) {
        writeln!(out, "- **{label}**: {}", code_span(&value))?;
    }

    if let Some(crashing) = &report.crashing {
        writeln!(out)?;
        writeln!(
            out,
            "#### Crashing {} (from the {})",
            code_span(&goroutine_header(crashing)),
            report.goroutines_from
        )?;
        writeln!(out)?;
        write_block(out, &stack_text(crashing))?;
        write_sources(out, crashing)?;
    }
    if !report.groups.is_empty() {
        writeln!(out)?;
        writeln!(out, "#### {}", groups_summary(report))?;
        writeln!(out)?;
        let mut text = String::new();
        for group in &report.groups {
            text.push_str(&group_header(group));
            text.push_str(":\n");
            text.push_str(&stack_text(&group.goroutine));
            text.push('\n');
        }
        write_block(out, text.trim_end())?;
    }

    writeln!(out)?;
    writeln!(out, "#### Journal and signature")?;
    writeln!(out)?;
    writeln!(out, "- **crash text**: {}", code_span(&loss_text(report)))?;
    match signature_text(report) {
        Some(line) => writeln!(out, "- **signature**: {}", code_span(&line))?,
        None => writeln!(out, "- **signature**: none")?,
    }
    write_earlier(out, report)?;
    write_items(out, "Missing", &report.missing)?;
    write_items(out, "Warnings", &report.warnings)
}

/// The source lines of each frame that has them, one block per frame.
fn write_sources(out: &mut dyn Write, goroutine: &GoroutineView) -> io::Result<()> {
    // A recursion's source is shown once, with its frames.
    let frames: Vec<&FrameView> = stack_items(goroutine)
        .into_iter()
        .filter_map(|item| match item {
            StackItem::Frame(frame) => Some(frame),
            StackItem::Repeated { .. } => None,
        })
        .filter(|f| f.source.is_some())
        .collect();
    if frames.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "#### Source")?;
    for frame in frames {
        writeln!(out)?;
        let at = position(frame.file.as_deref(), frame.line);
        writeln!(out, "{} at {}", code_span(&frame.function), code_span(&at))?;
        writeln!(out)?;
        match &frame.source {
            Some(SourceSnippet::Found {
                first_line,
                marked_line,
                lines,
                ..
            }) => {
                let mut text = String::new();
                for (number, line) in (*first_line..).zip(lines) {
                    let mark = if number == *marked_line { '>' } else { ' ' };
                    text.push_str(&format!("{mark} {number:>5} | {line}\n"));
                }
                write_block(out, text.trim_end())?;
            }
            Some(SourceSnippet::NotFound { tried }) => {
                writeln!(out, "{}", code_span(&not_found_text(tried)))?;
            }
            None => {}
        }
    }
    Ok(())
}

fn write_earlier(out: &mut dyn Write, report: &CrashReport) -> io::Result<()> {
    let earlier = &report.earlier;
    if let Some(error) = &earlier.error {
        return writeln!(
            out,
            "- **earlier occurrences**: not searched, {}",
            code_span(error)
        );
    }
    let searched = earlier
        .searched
        .as_deref()
        .map(|s| format!(" among {}", code_span(s)))
        .unwrap_or_default();
    let shown = if earlier.count > earlier.crashes.len() {
        format!(", the newest {} listed", earlier.crashes.len())
    } else {
        String::new()
    };
    writeln!(
        out,
        "- **earlier occurrences**{searched}: {}{shown}",
        earlier.count
    )?;
    for crash in &earlier.crashes {
        let line = format!(
            "{} pid {} unit {}",
            crash.time,
            crash.pid,
            crash.unit.as_deref().unwrap_or("-")
        );
        writeln!(out, "  - {}", code_span(&line))?;
    }
    if let Some(command) = &earlier.command {
        writeln!(out, "  - list them: {}", code_span(command))?;
    }
    Ok(())
}

fn write_items(out: &mut dyn Write, title: &str, items: &[String]) -> io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "**{title}**")?;
    writeln!(out)?;
    for item in items {
        writeln!(out, "- {}", code_span(item))?;
    }
    Ok(())
}

/// Returns the length of the longest run of `c` in `text`.
fn longest_run(text: &str, c: char) -> usize {
    let mut longest = 0;
    let mut current = 0;
    for ch in text.chars() {
        if ch == c {
            current += 1;
            longest = longest.max(current);
        } else {
            current = 0;
        }
    }
    longest
}

/// Writes `text` as a fenced block whose fence is longer than any backtick
/// run in it, so no line of the text can close the block.
pub fn write_block(out: &mut dyn Write, text: &str) -> io::Result<()> {
    let fence = "`".repeat((longest_run(text, '`') + 1).max(MIN_FENCE));
    writeln!(out, "{fence}text")?;
    writeln!(out, "{text}")?;
    writeln!(out, "{fence}")
}

/// Returns `text` as an inline code span on one line. The delimiter is one
/// backtick longer than the longest run inside, and a space pads a text
/// that starts or ends with a backtick, as CommonMark strips one space on
/// each side.
pub fn code_span(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let ticks = "`".repeat(longest_run(&flat, '`') + 1);
    let pad = if flat.starts_with('`') || flat.ends_with('`') || flat.starts_with(' ') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{flat}{pad}{ticks}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_outlasts_backtick_runs() {
        let mut out = Vec::new();
        write_block(&mut out, "panic: ```\n````` escape").unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "``````text");
        assert_eq!(lines[3], "``````");
    }

    #[test]
    fn fence_is_three_without_backticks() {
        let mut out = Vec::new();
        write_block(&mut out, "panic: plain").unwrap();
        assert!(String::from_utf8(out).unwrap().starts_with("```text\n"));
    }

    #[test]
    fn code_span_outlasts_backticks() {
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x`"), "`` `x` ``");
        assert_eq!(code_span("plain"), "`plain`");
        assert_eq!(code_span("two\nlines"), "`two lines`");
    }
}
