//! journald's notes about lines its rate limit dropped.
//!
//! journald limits each unit to `RateLimitBurst` messages per
//! `RateLimitIntervalSec` (10000 per 30 s by default, scaled up with free
//! disk space) and drops the rest without a trace in the unit's output. It
//! logs "Suppressed N messages from UNIT" (`MESSAGE_ID`
//! a596d6fe7bfa4994828e72309e95d61e, `N_DROPPED=N`) only when the unit's
//! next message is accepted after the interval. A crashed service therefore
//! gets its note when it restarts and logs again, possibly long after the
//! crash, or never. The note is sent by journald itself, so the unit appears
//! only in its text.

use serde::Serialize;

use crate::journal::{at_usec, ExportOptions, Journal, JournalError, Query};

/// `MESSAGE_ID` of journald's "Suppressed N messages" note
/// (`SD_MESSAGE_JOURNAL_DROPPED` in systemd's `sd-messages.h`).
pub const SUPPRESSED_MESSAGE_ID: &str = "a596d6fe7bfa4994828e72309e95d61e";
/// Notes read before giving up; they are rare even on a busy host.
pub const MAX_NOTES_READ: usize = 10_000;

/// A note that journald dropped lines of the crashed unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    /// How many messages journald dropped.
    pub dropped: u64,
    /// When journald logged the note, in microseconds since the epoch.
    pub note_time_usec: u64,
    pub cursor: String,
    /// The note came after the coredump entry, so the dropped lines may
    /// include the end of the crash text; a note before it can only cover
    /// lines printed before the crash report ended.
    pub after_crash: bool,
}

/// Reads `Suppressed N messages from UNIT` and returns N and UNIT.
pub fn parse_note(message: &str) -> Option<(u64, &str)> {
    let rest = message.strip_prefix("Suppressed ")?;
    let (count, rest) = rest.split_once(' ')?;
    let unit = rest.strip_prefix("messages from ")?;
    Some((count.parse().ok()?, unit))
}

/// Reports whether the unit named in a note is `unit`. journald 252 writes
/// the unit name (seen on Debian 12); a cgroup path ending in the unit is
/// accepted too.
// NOTE: whether any release writes the cgroup path is unverified.
fn names_unit(named: &str, unit: &str) -> bool {
    named == unit || named.rsplit('/').next() == Some(unit)
}

/// Finds the first note about `unit` in boot `boot_id` from `since_usec`
/// on; `crash_entry_usec` is when the coredump entry was written.
pub fn find(
    journal: &Journal,
    unit: &str,
    boot_id: Option<&str>,
    since_usec: u64,
    crash_entry_usec: u64,
) -> Result<Option<Suppressed>, JournalError> {
    let mut matches = vec![format!("MESSAGE_ID={SUPPRESSED_MESSAGE_ID}")];
    if let Some(boot) = boot_id {
        matches.push(format!("_BOOT_ID={boot}"));
    }
    let query = Query {
        since: Some(at_usec(since_usec)),
        output_fields: vec!["MESSAGE".into(), "N_DROPPED".into()],
        ..Query::matching(matches)
    };
    let mut stream = journal.stream(&query, ExportOptions::default())?;
    let mut read = 0;
    while let Some(entry) = stream.next_entry()? {
        read += 1;
        if read > MAX_NOTES_READ {
            tracing::debug!(target: "gocrash::crashtext", "stopped after {MAX_NOTES_READ} rate-limit notes");
            break;
        }
        let Some((count, named)) = entry.text("MESSAGE").and_then(parse_note) else {
            continue;
        };
        if !names_unit(named, unit) {
            continue;
        }
        let note_time_usec = entry.realtime_usec().unwrap_or(0);
        return Ok(Some(Suppressed {
            dropped: entry.number("N_DROPPED").unwrap_or(count),
            note_time_usec,
            cursor: entry.cursor().unwrap_or_default().to_string(),
            after_crash: note_time_usec > crash_entry_usec,
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_parse() {
        assert_eq!(
            parse_note("Suppressed 1234 messages from app.service"),
            Some((1234, "app.service"))
        );
        assert_eq!(
            parse_note("Suppressed 7 messages from /system.slice/app.service"),
            Some((7, "/system.slice/app.service"))
        );
        assert_eq!(parse_note("Suppressed many messages from x"), None);
        assert_eq!(parse_note("Started app.service"), None);
    }

    #[test]
    fn unit_matches_name_or_cgroup() {
        assert!(names_unit("app.service", "app.service"));
        assert!(names_unit("/system.slice/app.service", "app.service"));
        assert!(!names_unit("other.service", "app.service"));
        assert!(!names_unit("/system.slice/myapp.service", "app.service"));
    }
}
