//! Exit codes, written down in one place. docs/cli.md lists the same table.

use std::process::ExitCode;

/// How a command ended, as the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The command did what was asked.
    Success = 0,
    /// The command failed; the message on stderr says why.
    Failure = 1,
    /// The command line was invalid (clap also exits with 2).
    Usage = 2,
    /// No crash matched the selection.
    NoMatch = 3,
    /// Output was written, but the input was damaged and parts are missing.
    Partial = 4,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(status as u8)
    }
}

/// An error that asks for a particular exit status instead of `Failure`.
#[derive(Debug)]
pub struct WithStatus {
    pub status: Status,
    pub message: String,
}

impl std::fmt::Display for WithStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WithStatus {}

/// Prints an error chain on one line and returns the exit status it asks for.
/// A closed stdout (`gocrash … | head`) is a clean exit, not an error.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return Status::Success.into();
    }
    let status = err
        .downcast_ref::<WithStatus>()
        .map(|with| with.status)
        .unwrap_or_else(|| {
            if is_invalid_journal_argument(err) {
                Status::Usage
            } else {
                Status::Failure
            }
        });
    stderr_line!("gocrash: {}", escape_message(&format!("{err:#}")));
    status.into()
}

/// Escapes a message line by line. Messages quote paths and values from the
/// crash, so none may drive the terminal, and a line after the first is
/// indented, so that quoted text cannot pass for a message of its own.
fn escape_message(message: &str) -> String {
    let mut lines = message.split('\n').map(crate::render::escape::escape_line);
    let mut escaped = lines.next().unwrap_or_default().into_owned();
    for line in lines {
        escaped.push_str("\n  ");
        escaped.push_str(&line);
    }
    escaped
}

/// Reports whether the journal rejected a value from the command line, such
/// as a `--since` time journalctl cannot parse.
fn is_invalid_journal_argument(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<ingest::journal::JournalError>()
            .is_some_and(ingest::journal::JournalError::is_invalid_argument)
    })
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::escape_message;

    #[test]
    fn message_lines_are_indented() {
        assert_eq!(
            escape_message("delve exited\nlast lines:\n  could not open"),
            "delve exited\n  last lines:\n    could not open"
        );
    }

    #[test]
    fn message_controls_are_escaped() {
        assert_eq!(escape_message("core \u{1b}[2J"), "core \\x1b[2J");
        assert_eq!(escape_message("a\r\nb"), "a\\x0d\n  b");
    }
}
