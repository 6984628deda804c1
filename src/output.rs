//! `--format text|json` and `--json`, for the commands that print either
//! text or JSON. Commands with more formats (`symbolize`, `report`) define
//! their own format list next to their arguments.

use clap::{Args, ValueEnum};

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
