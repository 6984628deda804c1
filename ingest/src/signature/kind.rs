//! The kind of a crash, with the values that change from one occurrence to
//! the next (indexes, lengths, addresses, counts) taken out.

use serde::{Deserialize, Serialize};

/// Values the runtime panics with that are runtime errors although they do
/// not start with `runtime error: `: the runtime raises them as plain
/// strings.
const PLAIN_RUNTIME_PANICS: [&str; 4] = [
    "assignment to entry in nil map",
    "send on closed channel",
    "close of closed channel",
    "close of nil channel",
];

/// The prefix of a failed type assertion's message; the types that follow
/// are left out of the kind.
const INTERFACE_CONVERSION: &str = "interface conversion";

/// `si_code` values of signals sent by a process (`kill`, `tgkill`,
/// `sigqueue`) rather than raised by a fault: SI_USER, SI_TKILL, SI_QUEUE.
const SENT_SIGNAL_CODES: [i64; 3] = [0, -6, -1];

/// The kind of a crash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CrashKind {
    /// A panic nothing recovered.
    Panic { value: PanicValue },
    /// `fatal error: MESSAGE` other than a deadlock; `signal` is the signal
    /// of a `[signal ...]` line printed with it.
    Fatal {
        message: String,
        signal: Option<String>,
    },
    /// The scheduler found every goroutine blocked. No goroutine crashed.
    Deadlock { message: String },
    /// A signal another process (or the program itself, through `kill`)
    /// sent, such as SIGQUIT: the dump shows where the program was, not a
    /// fault.
    ExternalSignal { signal: String },
    /// A fault, or `abort()`, while the crashing goroutine was in C code
    /// called through cgo.
    CgoFault { signal: String },
    /// A fatal signal in Go code that the runtime did not turn into a panic.
    Signal { signal: String },
    /// The text or core held no recognisable crash.
    Unknown,
}

/// A panic value, reduced to its kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "error")]
pub enum PanicValue {
    /// A runtime error such as `runtime error: index out of range`, numbers
    /// and brackets removed.
    RuntimeError(String),
    /// A value the program passed to `panic`, as a template: the first
    /// line of its text with every word that contains a digit replaced by `N`
    /// and every quoted string by `"…"`, because ids, counts and user input
    /// differ on every crash while the sentence around them does not.
    Program { template: String },
}

impl CrashKind {
    /// Returns the kind as one line of text, which enters the signature's id
    /// and title.
    pub fn label(&self) -> String {
        match self {
            CrashKind::Panic {
                value: PanicValue::RuntimeError(error),
            } => format!("panic: {error}"),
            CrashKind::Panic {
                value: PanicValue::Program { template },
            } if template.is_empty() => "panic".to_string(),
            CrashKind::Panic {
                value: PanicValue::Program { template },
            } => format!("panic: {template}"),
            CrashKind::Fatal {
                message,
                signal: Some(signal),
            } => {
                format!("fatal error: {message} ({signal})")
            }
            CrashKind::Fatal {
                message,
                signal: None,
            } => format!("fatal error: {message}"),
            CrashKind::Deadlock { message } => format!("fatal error: {message}"),
            CrashKind::ExternalSignal { signal } => format!("{signal} sent to the process"),
            CrashKind::CgoFault { signal } => format!("{signal} in C code"),
            CrashKind::Signal { signal } => signal.clone(),
            CrashKind::Unknown => "crash".to_string(),
        }
    }
}

/// Reduces a printed panic value (its first line) to its kind.
pub fn classify_panic_value(value: &str) -> PanicValue {
    let first_line = value.lines().next().unwrap_or("").trim();
    if let Some(error) = first_line.strip_prefix("runtime error: ") {
        return PanicValue::RuntimeError(format!(
            "runtime error: {}",
            normalize_runtime_error(error)
        ));
    }
    if first_line.starts_with(INTERFACE_CONVERSION) {
        return PanicValue::RuntimeError(INTERFACE_CONVERSION.to_string());
    }
    if let Some(plain) = PLAIN_RUNTIME_PANICS
        .iter()
        .find(|plain| first_line == **plain)
    {
        return PanicValue::RuntimeError((*plain).to_string());
    }
    PanicValue::Program {
        template: message_template(first_line),
    }
}

/// Keeps the name of a runtime error and drops what it measured:
/// `index out of range [5] with length 3` becomes `index out of range`.
fn normalize_runtime_error(error: &str) -> String {
    let mut kept = error;
    if let Some(before) = kept.find('[').and_then(|bracket| kept.get(..bracket)) {
        kept = before;
    }
    if let Some(before) = kept.find(" with ").and_then(|with| kept.get(..with)) {
        kept = before;
    }
    message_template(kept.trim())
}

/// Reduces a `fatal error:` message (its first line) to a template, see
/// [`message_template`].
pub fn normalize_fatal_message(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or("").trim();
    message_template(first_line)
}

/// Tells whether a fatal message is the scheduler's deadlock report:
/// `all goroutines are asleep - deadlock!` or `no goroutines (main called
/// runtime.Goexit) - deadlock!`.
pub fn is_deadlock_message(message: &str) -> bool {
    message.trim_end().ends_with("deadlock!")
}

/// Tells whether a signal was sent rather than raised by a fault: SIGQUIT
/// always (it is never a fault), any other signal when its `si_code` shows
/// that a process sent it.
pub fn is_sent_signal(name: Option<&str>, code: Option<i64>) -> bool {
    name == Some("SIGQUIT") || code.is_some_and(|code| SENT_SIGNAL_CODES.contains(&code))
}

/// Names a signal: `SIGSEGV`, or `signal 34` when only the number is known.
pub fn signal_label(name: Option<&str>, number: Option<u64>) -> String {
    match (name, number) {
        (Some(name), _) => name.to_string(),
        (None, Some(number)) => format!("signal {number}"),
        (None, None) => "signal".to_string(),
    }
}

/// Returns the Linux name of a signal number, for numbers read from a core.
pub fn signal_name(number: u32) -> Option<&'static str> {
    let name = match number {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        16 => "SIGSTKFLT",
        17 => "SIGCHLD",
        18 => "SIGCONT",
        19 => "SIGSTOP",
        20 => "SIGTSTP",
        21 => "SIGTTIN",
        22 => "SIGTTOU",
        23 => "SIGURG",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        26 => "SIGVTALRM",
        27 => "SIGPROF",
        28 => "SIGWINCH",
        29 => "SIGIO",
        30 => "SIGPWR",
        31 => "SIGSYS",
        _ => return None,
    };
    Some(name)
}

/// Bytes of a message template kept; longer messages are cut at a
/// character boundary.
const MAX_TEMPLATE_BYTES: usize = 200;

/// Turns one line of a message into a template: each word (a run of
/// letters, digits and `_`) that contains a digit becomes `N`, and each
/// double-quoted string becomes `"…"`. `order 42: field "qty" at 0xc0001`
/// becomes `order N: field "…" at N`.
pub fn message_template(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(MAX_TEMPLATE_BYTES));
    let mut word = String::new();
    let mut in_quotes = false;
    for character in line.chars() {
        if in_quotes {
            if character == '"' {
                in_quotes = false;
                out.push_str("…\"");
            }
            continue;
        }
        if character.is_alphanumeric() || character == '_' {
            word.push(character);
            continue;
        }
        flush_word(&mut out, &mut word);
        if character == '"' {
            in_quotes = true;
        }
        out.push(character);
    }
    flush_word(&mut out, &mut word);
    if in_quotes {
        out.push('…');
    }
    cut_at_char_boundary(out, MAX_TEMPLATE_BYTES)
}

fn flush_word(out: &mut String, word: &mut String) {
    if word.chars().any(|c| c.is_ascii_digit()) {
        out.push('N');
    } else {
        out.push_str(word);
    }
    word.clear();
}

fn cut_at_char_boundary(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut end = max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime_error(text: &str) -> PanicValue {
        PanicValue::RuntimeError(text.to_string())
    }

    #[test]
    fn runtime_errors_lose_their_numbers() {
        assert_eq!(
            classify_panic_value("runtime error: index out of range [5] with length 3"),
            runtime_error("runtime error: index out of range")
        );
        assert_eq!(
            classify_panic_value("runtime error: index out of range [-1]"),
            runtime_error("runtime error: index out of range")
        );
        assert_eq!(
            classify_panic_value("runtime error: slice bounds out of range [:7] with capacity 4"),
            runtime_error("runtime error: slice bounds out of range")
        );
        assert_eq!(
            classify_panic_value(
                "runtime error: invalid memory address or nil pointer dereference"
            ),
            runtime_error("runtime error: invalid memory address or nil pointer dereference")
        );
        assert_eq!(
            classify_panic_value("runtime error: hash of unhashable type main.key"),
            runtime_error("runtime error: hash of unhashable type main.key")
        );
    }

    #[test]
    fn plain_runtime_panics_are_runtime_errors() {
        assert_eq!(
            classify_panic_value("assignment to entry in nil map"),
            runtime_error("assignment to entry in nil map")
        );
        assert_eq!(
            classify_panic_value("interface conversion: interface {} is string, not int"),
            runtime_error("interface conversion")
        );
        assert_eq!(
            classify_panic_value("send on closed channel 3"),
            program("send on closed channel N")
        );
    }

    fn program(template: &str) -> PanicValue {
        PanicValue::Program {
            template: template.to_string(),
        }
    }

    #[test]
    fn program_values_become_templates() {
        assert_eq!(
            classify_panic_value("order 42: bad quantity"),
            program("order N: bad quantity")
        );
        assert_eq!(
            classify_panic_value("invalid configuration:\n\tlistener admin: port 70000"),
            program("invalid configuration:")
        );
        assert_eq!(
            classify_panic_value("parse port: strconv.Atoi: parsing \"eighty\": invalid syntax"),
            program("parse port: strconv.Atoi: parsing \"…\": invalid syntax")
        );
        assert_eq!(
            classify_panic_value("no reload for 1m10s"),
            program("no reload for N")
        );
        assert_eq!(
            classify_panic_value("dial tcp 10.0.0.5:5432: refused"),
            program("dial tcp N.N.N.N:N: refused")
        );
        assert_eq!(
            classify_panic_value("unclosed \"quote"),
            program("unclosed \"…")
        );
        assert_eq!(message_template(&"é".repeat(150)).len(), 200);
    }

    #[test]
    fn fatal_messages_lose_numbers() {
        assert_eq!(
            normalize_fatal_message("concurrent map writes"),
            "concurrent map writes"
        );
        assert_eq!(
            normalize_fatal_message("bad pointer 0xc000012345 in span 12"),
            "bad pointer N in span N"
        );
        assert!(is_deadlock_message("all goroutines are asleep - deadlock!"));
        assert!(is_deadlock_message(
            "no goroutines (main called runtime.Goexit) - deadlock!"
        ));
        assert!(!is_deadlock_message("concurrent map writes"));
    }

    #[test]
    fn sent_signals_are_told_from_faults() {
        assert!(is_sent_signal(Some("SIGQUIT"), Some(128)));
        assert!(is_sent_signal(Some("SIGABRT"), Some(-6)));
        assert!(is_sent_signal(Some("SIGTERM"), Some(0)));
        assert!(!is_sent_signal(Some("SIGSEGV"), Some(1)));
        assert!(!is_sent_signal(Some("SIGSEGV"), None));
    }

    #[test]
    fn labels_read_as_the_runtime_prints() {
        let kind = CrashKind::Fatal {
            message: "unexpected signal during runtime execution".to_string(),
            signal: Some("SIGSEGV".to_string()),
        };
        assert_eq!(
            kind.label(),
            "fatal error: unexpected signal during runtime execution (SIGSEGV)"
        );
        let kind = CrashKind::CgoFault {
            signal: "SIGABRT".to_string(),
        };
        assert_eq!(kind.label(), "SIGABRT in C code");
        assert_eq!(signal_label(None, Some(34)), "signal 34");
        assert_eq!(signal_name(11), Some("SIGSEGV"));
        assert_eq!(signal_name(64), None);
    }
}
