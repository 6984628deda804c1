//! Output format selection shared by every command that prints data.

use clap::{Args, ValueEnum};

/// The formats a command can print. Not every command supports every format;
/// each command checks with [`Output::format_among`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// The layout the Go runtime prints with GOTRACEBACK=crash.
    Go,
    /// A versioned JSON document, described in docs/json.md.
    Json,
    /// Markdown, for incident channels and tickets.
    Markdown,
    /// One self-contained HTML file.
    Html,
}

/// `--format` and `--json`, flattened into each command that prints data.
#[derive(Debug, Clone, Args)]
pub struct Output {
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Print JSON; the same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl Output {
    /// Returns the selected format, or `default` when none was given.
    pub fn format_or(&self, default: Format) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format.unwrap_or(default)
        }
    }

    /// Returns the selected format if the command supports it, else an error
    /// naming the formats it does support.
    pub fn format_among(&self, default: Format, supported: &[Format]) -> anyhow::Result<Format> {
        let format = self.format_or(default);
        if supported.contains(&format) {
            return Ok(format);
        }
        let names: Vec<String> = supported
            .iter()
            .filter_map(|f| f.to_possible_value().map(|v| v.get_name().to_owned()))
            .collect();
        anyhow::bail!(
            "this command cannot print {:?}; supported formats: {}",
            format,
            names.join(", ")
        )
    }
}
