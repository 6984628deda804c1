//! Decides whether systemd-coredump wrote a coredump entry.
//!
//! Any local process can log an entry with the coredump `MESSAGE_ID` and any
//! `COREDUMP_*` fields, so the fields the sender chose prove nothing. journald
//! adds trusted fields (names starting with `_`) itself: `_UID` and `_PID`
//! from the socket credentials the kernel attaches, `_EXE` and `_COMM` from
//! `/proc/PID` of the sender. The rule applied here:
//!
//! - `SYSLOG_IDENTIFIER` must be `systemd-coredump` (set by the sender, so
//!   necessary but not sufficient);
//! - each of `_EXE` and `_COMM` that is present must name systemd-coredump
//!   (`_COMM` is cut to 15 bytes by the kernel: `systemd-coredum`);
//! - when both are missing, which happens when systemd-coredump exited
//!   before journald read its `/proc` entry, the entry is accepted only if
//!   `_UID` is a system user (below 1000: root or the `systemd-coredump`
//!   user) or equals `COREDUMP_UID` (systemd-coredump drops to the crashed
//!   user's uid for users above the system range, and such a user can only
//!   describe crashes of its own).
//!
//! ABRT applies the first two rules; the third keeps the entries of a race
//! seen on real hosts without trusting arbitrary senders.

use serde::Serialize;

use crate::journal::Entry;

/// Paths systemd installs systemd-coredump at (`/lib` on Debian without
/// merged `/usr`).
pub const COREDUMP_EXES: &[&str] = &[
    "/usr/lib/systemd/systemd-coredump",
    "/lib/systemd/systemd-coredump",
];
/// `_COMM` of systemd-coredump: its name cut to 15 bytes.
pub const COREDUMP_COMM: &str = "systemd-coredum";
/// `SYSLOG_IDENTIFIER` systemd-coredump logs with.
pub const COREDUMP_IDENTIFIER: &str = "systemd-coredump";
/// First uid of regular users (`SYS_UID_MAX` + 1 in systemd's and most
/// distributions' defaults).
pub const FIRST_REGULAR_UID: u32 = 1000;

/// How an entry was found to come from systemd-coredump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// `_EXE` or `_COMM` (or both) name systemd-coredump.
    Verified,
    /// journald recorded neither `_EXE` nor `_COMM`; accepted because `_UID`
    /// is a system user or the crashed user.
    UidOnly,
}

/// Why an entry is not accepted as systemd-coredump's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("SYSLOG_IDENTIFIER is {0:?}, expected \"systemd-coredump\"")]
    Identifier(Option<String>),
    #[error("_EXE is {0:?}, not systemd-coredump")]
    Exe(String),
    #[error("_COMM is {0:?}, not systemd-coredum")]
    Comm(String),
    #[error("no _EXE or _COMM, and no _UID to check")]
    NoCredentials,
    #[error("no _EXE or _COMM, and _UID {uid} is neither a system user nor the crashed user")]
    Uid { uid: u32 },
}

/// Applies the rule of the module documentation to one entry.
pub fn check(entry: &Entry) -> Result<Trust, TrustError> {
    let identifier = entry.text("SYSLOG_IDENTIFIER");
    if identifier != Some(COREDUMP_IDENTIFIER) {
        return Err(TrustError::Identifier(
            entry
                .bytes("SYSLOG_IDENTIFIER")
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        ));
    }
    let exe = entry.bytes("_EXE");
    let comm = entry.bytes("_COMM");
    if let Some(exe) = exe {
        if !COREDUMP_EXES.iter().any(|known| known.as_bytes() == exe) {
            return Err(TrustError::Exe(String::from_utf8_lossy(exe).into_owned()));
        }
    }
    if let Some(comm) = comm {
        if comm != COREDUMP_COMM.as_bytes() {
            return Err(TrustError::Comm(String::from_utf8_lossy(comm).into_owned()));
        }
    }
    if exe.is_some() || comm.is_some() {
        return Ok(Trust::Verified);
    }
    let uid = entry
        .number("_UID")
        .and_then(|uid| u32::try_from(uid).ok())
        .ok_or(TrustError::NoCredentials)?;
    let crashed_uid = entry.number("COREDUMP_UID");
    if uid < FIRST_REGULAR_UID || crashed_uid == Some(u64::from(uid)) {
        Ok(Trust::UidOnly)
    } else {
        Err(TrustError::Uid { uid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Field, FieldValue};

    fn entry(fields: &[(&str, &str)]) -> Entry {
        Entry {
            fields: fields
                .iter()
                .map(|(name, value)| Field {
                    name: name.to_string(),
                    value: FieldValue::Data(value.as_bytes().to_vec()),
                })
                .collect(),
            offset: 0,
        }
    }

    const IDENT: (&str, &str) = ("SYSLOG_IDENTIFIER", "systemd-coredump");

    #[test]
    fn trusted_fields_verify() {
        let full = entry(&[
            IDENT,
            ("_EXE", "/usr/lib/systemd/systemd-coredump"),
            ("_COMM", "systemd-coredum"),
            ("_UID", "995"),
        ]);
        assert_eq!(check(&full), Ok(Trust::Verified));
        let comm_only = entry(&[IDENT, ("_COMM", "systemd-coredum"), ("_UID", "995")]);
        assert_eq!(check(&comm_only), Ok(Trust::Verified));
        let old_path = entry(&[IDENT, ("_EXE", "/lib/systemd/systemd-coredump")]);
        assert_eq!(check(&old_path), Ok(Trust::Verified));
    }

    #[test]
    fn other_senders_are_rejected() {
        let forged = entry(&[
            IDENT,
            ("_EXE", "/home/u/systemd/systemd-coredump"),
            ("_UID", "1000"),
        ]);
        assert!(matches!(check(&forged), Err(TrustError::Exe(_))));
        let comm = entry(&[IDENT, ("_COMM", "python3"), ("_UID", "0")]);
        assert!(matches!(check(&comm), Err(TrustError::Comm(_))));
        let mixed = entry(&[
            IDENT,
            ("_EXE", "/usr/lib/systemd/systemd-coredump"),
            ("_COMM", "bash"),
        ]);
        assert!(matches!(check(&mixed), Err(TrustError::Comm(_))));
        let identifier = entry(&[("SYSLOG_IDENTIFIER", "app"), ("_COMM", "systemd-coredum")]);
        assert_eq!(
            check(&identifier),
            Err(TrustError::Identifier(Some("app".into())))
        );
        assert_eq!(
            check(&entry(&[("_UID", "0")])),
            Err(TrustError::Identifier(None))
        );
    }

    #[test]
    fn missing_process_fields_fall_back_to_uid() {
        let system = entry(&[IDENT, ("_UID", "995"), ("COREDUMP_UID", "0")]);
        assert_eq!(check(&system), Ok(Trust::UidOnly));
        let same_user = entry(&[IDENT, ("_UID", "1000"), ("COREDUMP_UID", "1000")]);
        assert_eq!(check(&same_user), Ok(Trust::UidOnly));
        let other_user = entry(&[IDENT, ("_UID", "1001"), ("COREDUMP_UID", "0")]);
        assert_eq!(check(&other_user), Err(TrustError::Uid { uid: 1001 }));
        let nothing = entry(&[IDENT]);
        assert_eq!(check(&nothing), Err(TrustError::NoCredentials));
    }
}
