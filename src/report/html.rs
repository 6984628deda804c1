//! The report as one self-contained HTML file: inline CSS, no scripts, no
//! external URLs.
//!
//! Crash text, journal fields and source lines are untrusted, so every
//! piece of them goes through [`escape`], and a Content-Security-Policy
//! forbids scripts, images, frames and every fetch even if markup got
//! through.

use std::io::{self, Write};

use super::model::{CrashReport, GoroutineView, SourceSnippet};
use super::{
    build_lines, goroutine_header, group_header, groups_summary, loss_text, not_found_text,
    position, process_lines, signature_text, stack_items, stack_text,
};
use crate::render::escape::Newlines;
use crate::render::{repeated_text, StackItem};

/// Allows only the inline style sheet: no scripts, no images, no fetches,
/// no frames, no forms, no base URL.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
img-src 'none'; script-src 'none'; connect-src 'none'; frame-src 'none'; \
base-uri 'none'; form-action 'none'";

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em; color: #1d1d1f; max-width: 80em; }
h1 { font-size: 1.3em; font-family: ui-monospace, monospace; white-space: pre-wrap;
     background: #fdecea; border-left: 4px solid #c62828; padding: 0.5em 0.8em; }
h2 { font-size: 1.1em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table.facts td { padding: 0.1em 1em 0.1em 0; vertical-align: top; }
table.facts td:first-child { color: #555; white-space: nowrap; }
code, pre, .function, .position { font-family: ui-monospace, monospace; }
.frame { margin: 0.4em 0 0.6em 0; }
.function { font-weight: 600; }
.position { color: #555; margin-left: 2em; display: block; }
pre.source { background: #f6f8fa; margin: 0.3em 0 0.3em 2em; padding: 0.4em; overflow-x: auto; }
pre.source .marked { background: #fff3b0; display: inline-block; width: 100%; }
pre.stack { background: #f6f8fa; padding: 0.5em; overflow-x: auto; }
.missing { color: #8a6d00; margin-left: 2em; }
ul.problems li { color: #8a1c1c; }
";

/// Escapes text for HTML element content and attribute values. Control
/// characters other than newline and tab, which HTML does not allow, are
/// written as the other outputs write them (`\x1b`).
pub fn escape(text: &str) -> String {
    let text = crate::render::escape::escape(text, Newlines::Keep);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Writes the report.
pub fn write(out: &mut dyn Write, report: &CrashReport) -> io::Result<()> {
    let title = report
        .headline
        .first_line
        .as_deref()
        .unwrap_or("crash without a headline");
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\">")?;
    writeln!(out, "<head>")?;
    writeln!(out, "<meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CONTENT_SECURITY_POLICY}\">"
    )?;
    writeln!(out, "<meta name=\"referrer\" content=\"no-referrer\">")?;
    writeln!(out, "<title>Go crash: {}</title>", escape(title))?;
    writeln!(out, "<style>{STYLE}</style>")?;
    writeln!(out, "</head>")?;
    writeln!(out, "<body>")?;

    let headline = if report.headline.lines.is_empty() {
        "no headline: neither the core nor a crash text gave one; see what is missing".to_owned()
    } else {
        report.headline.lines.join("\n")
    };
    writeln!(out, "<h1 id=\"headline\">{}</h1>", escape(&headline))?;
    write_facts(out, "facts", &process_lines(report))?;
    writeln!(out, "<h2>Build</h2>")?;
    write_facts(out, "build", &build_lines(report))?;

    if let Some(crashing) = &report.crashing {
        writeln!(
            out,
            "<h2>Crashing {} (from the {})</h2>",
            escape(&goroutine_header(crashing)),
            escape(report.goroutines_from)
        )?;
        writeln!(out, "<section id=\"crashing\">")?;
        write_crashing(out, crashing)?;
        writeln!(out, "</section>")?;
    }
    if !report.groups.is_empty() {
        writeln!(out, "<h2>{}</h2>", escape(&groups_summary(report)))?;
        writeln!(out, "<section id=\"groups\">")?;
        for group in &report.groups {
            writeln!(
                out,
                "<h3><code>{}</code></h3>",
                escape(&group_header(group))
            )?;
            writeln!(
                out,
                "<pre class=\"stack\">{}</pre>",
                escape(&stack_text(&group.goroutine))
            )?;
        }
        writeln!(out, "</section>")?;
    }

    writeln!(out, "<h2>Journal and signature</h2>")?;
    let mut facts = vec![("crash text", loss_text(report))];
    facts.push((
        "signature",
        signature_text(report).unwrap_or_else(|| "none".to_owned()),
    ));
    write_facts(out, "signature", &facts)?;
    write_earlier(out, report)?;
    write_problems(out, "Missing", &report.missing)?;
    write_problems(out, "Warnings", &report.warnings)?;
    writeln!(out, "</body>")?;
    writeln!(out, "</html>")
}

fn write_facts(out: &mut dyn Write, id: &str, pairs: &[(&str, String)]) -> io::Result<()> {
    writeln!(out, "<table class=\"facts\" id=\"{}\">", escape(id))?;
    for (label, value) in pairs {
        writeln!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td></tr>",
            escape(label),
            escape(value)
        )?;
    }
    writeln!(out, "</table>")
}

fn write_crashing(out: &mut dyn Write, goroutine: &GoroutineView) -> io::Result<()> {
    for item in stack_items(goroutine) {
        let frame = match item {
            StackItem::Frame(frame) => frame,
            StackItem::Repeated { frames, times } => {
                writeln!(
                    out,
                    "<div class=\"missing\">{}</div>",
                    escape(&repeated_text(frames, times))
                )?;
                continue;
            }
        };
        let inlined = if frame.inlined { " (inlined)" } else { "" };
        writeln!(out, "<div class=\"frame\">")?;
        writeln!(
            out,
            "<span class=\"function\">{}</span>{inlined}",
            escape(&frame.function)
        )?;
        writeln!(
            out,
            "<span class=\"position\">{}</span>",
            escape(&position(frame.file.as_deref(), frame.line))
        )?;
        match &frame.source {
            Some(SourceSnippet::Found {
                first_line,
                marked_line,
                lines,
                ..
            }) => {
                write!(out, "<pre class=\"source\">")?;
                for (number, line) in (*first_line..).zip(lines) {
                    let text = escape(&format!("{number:>5} | {line}"));
                    if number == *marked_line {
                        writeln!(out, "<span class=\"marked\">{text}</span>")?;
                    } else {
                        writeln!(out, "{text}")?;
                    }
                }
                writeln!(out, "</pre>")?;
            }
            Some(SourceSnippet::NotFound { tried }) => writeln!(
                out,
                "<div class=\"missing\">{}</div>",
                escape(&not_found_text(tried))
            )?,
            None => {}
        }
        writeln!(out, "</div>")?;
    }
    if let Some(note) = &goroutine.stack_note {
        writeln!(out, "<div class=\"missing\">{}</div>", escape(note))?;
    }
    if let Some(creator) = &goroutine.created_by {
        writeln!(
            out,
            "<div class=\"frame\">created by <span class=\"function\">{}</span><span class=\"position\">{}</span></div>",
            escape(&super::creator_text(creator)),
            escape(&position(creator.file.as_deref(), creator.line))
        )?;
    }
    Ok(())
}

fn write_earlier(out: &mut dyn Write, report: &CrashReport) -> io::Result<()> {
    let earlier = &report.earlier;
    writeln!(out, "<h2>Earlier occurrences</h2>")?;
    if let Some(error) = &earlier.error {
        return writeln!(out, "<p>Not searched: {}</p>", escape(error));
    }
    let searched = earlier.searched.as_deref().unwrap_or("the journal");
    let shown = if earlier.count > earlier.crashes.len() {
        format!(" The newest {} are listed.", earlier.crashes.len())
    } else {
        String::new()
    };
    writeln!(
        out,
        "<p>{} earlier crashes with this signature among {}.{shown}</p>",
        earlier.count,
        escape(searched)
    )?;
    if !earlier.crashes.is_empty() {
        writeln!(out, "<table class=\"facts\" id=\"earlier\">")?;
        writeln!(out, "<tr><td>time</td><td>PID</td><td>unit</td></tr>")?;
        for crash in &earlier.crashes {
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&crash.time),
                crash.pid,
                escape(crash.unit.as_deref().unwrap_or("-"))
            )?;
        }
        writeln!(out, "</table>")?;
    }
    if let Some(command) = &earlier.command {
        writeln!(out, "<p>List them: <code>{}</code></p>", escape(command))?;
    }
    Ok(())
}

fn write_problems(out: &mut dyn Write, title: &str, items: &[String]) -> io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2>{}</h2>", escape(title))?;
    writeln!(out, "<ul class=\"problems\">")?;
    for item in items {
        writeln!(out, "<li>{}</li>", escape(item))?;
    }
    writeln!(out, "</ul>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn escape_writes_control_characters_visibly() {
        assert_eq!(
            escape("panic: \x1b]0;owned\x07\r<b>\n\tnext"),
            "panic: \\x1b]0;owned\\x07\\x0d&lt;b&gt;\n\tnext"
        );
    }
}
