//! The journal entries systemd-coredump writes for each crash, and the core
//! files it stores.
//!
//! For every core the kernel pipes to it, systemd-coredump writes one
//! journal entry with `MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1` and
//! `COREDUMP_*` fields describing the crashed process, and (with the default
//! `Storage=external`) a compressed core under `/var/lib/systemd/coredump`.
//! [`CoredumpRecord`] is such an entry with its fields typed, accepted only
//! when journald's trusted fields show that systemd-coredump sent it ([`trust`]).
//! [`store`] finds the core the record names, confined to the coredump
//! directory. Reading the crash text and decompressing cores are left to
//! [`crate::crashtext`] and the `symbolizer` crate.

pub mod store;
pub mod trust;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use serde::{Serialize, Serializer};

use crate::journal::{Entry, FieldValue};

pub use store::{CoreFileName, CoreState, CoredumpStore, PathRejection, StoredCore};
pub use trust::{Trust, TrustError};

/// `MESSAGE_ID` of the entry systemd-coredump writes for each crash
/// (`SD_MESSAGE_COREDUMP` in systemd's `sd-messages.h`).
pub const COREDUMP_MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";

/// Fields read into a [`CoredumpRecord`]: what `journalctl --output-fields`
/// must print for [`CoredumpRecord::from_entry`] to fill every member.
pub const RECORD_FIELDS: &[&str] = &[
    "MESSAGE_ID",
    "MESSAGE",
    "SYSLOG_IDENTIFIER",
    "_EXE",
    "_COMM",
    "_UID",
    "_PID",
    "_MACHINE_ID",
    "_HOSTNAME",
    "COREDUMP",
    "COREDUMP_PID",
    "COREDUMP_UID",
    "COREDUMP_GID",
    "COREDUMP_SIGNAL",
    "COREDUMP_SIGNAL_NAME",
    "COREDUMP_TIMESTAMP",
    "COREDUMP_RLIMIT",
    "COREDUMP_HOSTNAME",
    "COREDUMP_COMM",
    "COREDUMP_EXE",
    "COREDUMP_CMDLINE",
    "COREDUMP_UNIT",
    "COREDUMP_USER_UNIT",
    "COREDUMP_SLICE",
    "COREDUMP_SESSION",
    "COREDUMP_OWNER_UID",
    "COREDUMP_CGROUP",
    "COREDUMP_TRUNCATED",
    "COREDUMP_FILENAME",
    "COREDUMP_FORWARDED",
    "COREDUMP_DUMPABLE",
    "COREDUMP_PACKAGE_NAME",
    "COREDUMP_PACKAGE_VERSION",
    "COREDUMP_OPEN_FDS",
];

/// One crash as systemd-coredump recorded it.
#[derive(Clone, Debug, Serialize)]
pub struct CoredumpRecord {
    /// The entry's journal cursor.
    pub cursor: String,
    /// When journald received the entry, in microseconds since the epoch.
    /// systemd-coredump writes it after storing and compressing the core.
    pub entry_time_usec: u64,
    /// `_BOOT_ID` of the entry: the boot the crash happened in.
    pub boot_id: Option<String>,
    /// `_MACHINE_ID` of the entry.
    pub machine_id: Option<String>,
    /// The evidence that systemd-coredump wrote the entry.
    pub trust: Trust,
    /// `COREDUMP_PID`: the crashed process's PID in the host's PID namespace.
    pub pid: u32,
    /// `COREDUMP_UID` and `COREDUMP_GID`.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `COREDUMP_SIGNAL` and `COREDUMP_SIGNAL_NAME`. A Go program with
    /// `GOTRACEBACK=crash` always ends with SIGABRT; the signal that started
    /// the crash is only in its crash text.
    pub signal: Option<Signal>,
    /// `COREDUMP_TIMESTAMP`: when the kernel started the dump, in
    /// microseconds since the epoch but with one-second precision.
    pub timestamp_usec: Option<u64>,
    /// `COREDUMP_EXE`: the executable's path as the process saw it (inside
    /// its container, if any).
    #[serde(serialize_with = "lossy_path")]
    pub exe: Option<PathBuf>,
    /// `COREDUMP_COMM`: the process name, at most 15 bytes.
    pub comm: Option<String>,
    /// `COREDUMP_CMDLINE`: the command line, arguments separated by spaces.
    pub cmdline: Option<String>,
    /// `COREDUMP_UNIT`: the system unit the process ran in.
    pub unit: Option<String>,
    /// `COREDUMP_USER_UNIT`: the unit inside a user's service manager.
    pub user_unit: Option<String>,
    /// `COREDUMP_SLICE`, `COREDUMP_CGROUP`, `COREDUMP_SESSION`,
    /// `COREDUMP_OWNER_UID`.
    pub slice: Option<String>,
    pub cgroup: Option<String>,
    pub session: Option<String>,
    pub owner_uid: Option<u32>,
    /// `COREDUMP_HOSTNAME`: the host name the process saw.
    pub hostname: Option<String>,
    /// `COREDUMP_RLIMIT`: the soft RLIMIT_CORE. Debian passes a constant
    /// (2^63) in place of the process's limit.
    pub rlimit: Option<u64>,
    /// `COREDUMP_TRUNCATED=1`: the stored core was cut at a size limit.
    pub truncated: bool,
    /// `COREDUMP_FORWARDED=1`: the entry was logged inside a container that
    /// received the core from the host.
    pub forwarded: bool,
    /// `COREDUMP_DUMPABLE`: the kernel's dumpable flag.
    pub dumpable: Option<u32>,
    /// `COREDUMP_FILENAME`: where the core was stored, as written on the
    /// host that stored it.
    #[serde(serialize_with = "lossy_path")]
    pub filename: Option<PathBuf>,
    /// Length of the `COREDUMP` field: the core stored inside the journal
    /// (`Storage=journal`).
    pub inline_core_len: Option<u64>,
    /// `COREDUMP_PACKAGE_NAME` and `COREDUMP_PACKAGE_VERSION`.
    pub package_name: Option<String>,
    pub package_version: Option<String>,
    /// Targets of the process's stdout (fd 1) and stderr (fd 2), from `COREDUMP_OPEN_FDS`: a path, `socket:[INODE]`, `pipe:[INODE]`.
    pub stdout_target: Option<String>,
    pub stderr_target: Option<String>,
    /// `MESSAGE`: "Process N (comm) of user U dumped core." and the
    /// backtrace elfutils made, or why no core was stored.
    pub message: Option<String>,
    /// Fields present but unreadable; the record keeps the others.
    pub problems: Vec<FieldProblem>,
}

/// The signal that ended the process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Signal {
    pub number: u32,
    /// The name with its `SIG` prefix, from `COREDUMP_SIGNAL_NAME` or, for
    /// systemd before 233, from the Linux signal table.
    pub name: Option<String>,
}

/// A field whose value could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("field {field} holds {value:?}, expected {expected}")]
pub struct FieldProblem {
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// Reasons an entry is not a usable coredump record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("entry at stream offset {offset:#x} is not a coredump entry (MESSAGE_ID {found:?})")]
    NotCoredump { offset: u64, found: Option<String> },
    #[error("coredump entry {cursor} was not written by systemd-coredump")]
    Untrusted {
        cursor: String,
        #[source]
        reason: TrustError,
    },
    #[error("coredump entry at stream offset {offset:#x} has no {field}")]
    Missing { offset: u64, field: &'static str },
    #[error("coredump entry {cursor} has an invalid {field}: {value:?}")]
    Invalid {
        cursor: String,
        field: &'static str,
        value: String,
    },
}

/// Bytes of a bad value quoted in a [`FieldProblem`].
const QUOTED_VALUE_BYTES: usize = 80;

impl CoredumpRecord {
    /// Reads a coredump entry, checking that systemd-coredump wrote it.
    pub fn from_entry(entry: &Entry) -> Result<CoredumpRecord, RecordError> {
        let message_id = entry.text("MESSAGE_ID");
        if message_id != Some(COREDUMP_MESSAGE_ID) {
            return Err(RecordError::NotCoredump {
                offset: entry.offset,
                found: message_id.map(str::to_string),
            });
        }
        let cursor = entry
            .cursor()
            .ok_or(RecordError::Missing {
                offset: entry.offset,
                field: "__CURSOR",
            })?
            .to_string();
        let trust = trust::check(entry).map_err(|reason| RecordError::Untrusted {
            cursor: cursor.clone(),
            reason,
        })?;
        let entry_time_usec = entry.realtime_usec().ok_or(RecordError::Missing {
            offset: entry.offset,
            field: "__REALTIME_TIMESTAMP",
        })?;
        let pid_text = entry.text("COREDUMP_PID").ok_or(RecordError::Missing {
            offset: entry.offset,
            field: "COREDUMP_PID",
        })?;
        let pid = pid_text.parse().map_err(|_| RecordError::Invalid {
            cursor: cursor.clone(),
            field: "COREDUMP_PID",
            value: quote(pid_text.as_bytes()),
        })?;

        let mut fields = Fields {
            entry,
            problems: Vec::new(),
        };
        let signal = fields
            .number::<u32>("COREDUMP_SIGNAL")
            .map(|number| Signal {
                number,
                name: entry
                    .text("COREDUMP_SIGNAL_NAME")
                    .map(str::to_string)
                    .or_else(|| signal_name(number).map(str::to_string)),
            });
        let record = CoredumpRecord {
            cursor,
            entry_time_usec,
            boot_id: fields.text("_BOOT_ID"),
            machine_id: fields.text("_MACHINE_ID"),
            trust,
            pid,
            uid: fields.number("COREDUMP_UID"),
            gid: fields.number("COREDUMP_GID"),
            signal,
            timestamp_usec: fields.number("COREDUMP_TIMESTAMP"),
            exe: fields.path("COREDUMP_EXE"),
            comm: fields.text("COREDUMP_COMM"),
            cmdline: fields.text("COREDUMP_CMDLINE"),
            unit: fields.text("COREDUMP_UNIT"),
            user_unit: fields.text("COREDUMP_USER_UNIT"),
            slice: fields.text("COREDUMP_SLICE"),
            cgroup: fields.text("COREDUMP_CGROUP"),
            session: fields.text("COREDUMP_SESSION"),
            owner_uid: fields.number("COREDUMP_OWNER_UID"),
            hostname: fields.text("COREDUMP_HOSTNAME"),
            rlimit: fields.number("COREDUMP_RLIMIT"),
            truncated: fields.flag("COREDUMP_TRUNCATED"),
            forwarded: fields.flag("COREDUMP_FORWARDED"),
            dumpable: fields.number("COREDUMP_DUMPABLE"),
            filename: fields.path("COREDUMP_FILENAME"),
            inline_core_len: entry.field("COREDUMP").map(FieldValue::len),
            package_name: fields.text("COREDUMP_PACKAGE_NAME"),
            package_version: fields.text("COREDUMP_PACKAGE_VERSION"),
            stdout_target: open_fd_target(entry, 1),
            stderr_target: open_fd_target(entry, 2),
            message: fields.text("MESSAGE"),
            problems: Vec::new(),
        };
        Ok(CoredumpRecord {
            problems: fields.problems,
            ..record
        })
    }

    /// Returns the signal's name, or its number when it has none.
    pub fn signal_label(&self) -> String {
        match &self.signal {
            Some(Signal {
                name: Some(name), ..
            }) => name.clone(),
            Some(Signal { number, .. }) => number.to_string(),
            None => "-".to_string(),
        }
    }

    /// Returns the unit the crash belongs to: the user unit when there is
    /// one, else the system unit.
    pub fn unit_name(&self) -> Option<&str> {
        self.user_unit.as_deref().or(self.unit.as_deref())
    }

    /// Returns the best time for the crash: `COREDUMP_TIMESTAMP`, else
    /// when the entry was written.
    pub fn crash_time_usec(&self) -> u64 {
        self.timestamp_usec.unwrap_or(self.entry_time_usec)
    }

    /// Reports whether the process's output may be in the journal: journald
    /// receives a service's output over a socket, so a process whose stdout
    /// and stderr were both files, pipes or terminals left nothing there.
    /// Without `COREDUMP_OPEN_FDS` nothing is known, so this returns true.
    pub fn may_have_journal_output(&self) -> bool {
        let is_socket =
            |target: &Option<String>| target.as_deref().is_some_and(|t| t.starts_with("socket:"));
        if self.stdout_target.is_none() && self.stderr_target.is_none() {
            return true;
        }
        is_socket(&self.stdout_target) || is_socket(&self.stderr_target)
    }

    /// Returns the first line of `MESSAGE`.
    pub fn message_summary(&self) -> Option<&str> {
        self.message.as_deref().and_then(|m| m.lines().next())
    }
}

/// Reads optional fields, noting the ones present but invalid.
struct Fields<'a> {
    entry: &'a Entry,
    problems: Vec<FieldProblem>,
}

impl Fields<'_> {
    fn text(&mut self, name: &'static str) -> Option<String> {
        let bytes = self.entry.bytes(name)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Some(text.to_string()),
            Err(_) => {
                self.problems.push(FieldProblem {
                    field: name,
                    value: quote(bytes),
                    expected: "UTF-8 text",
                });
                Some(String::from_utf8_lossy(bytes).into_owned())
            }
        }
    }

    fn number<T: std::str::FromStr>(&mut self, name: &'static str) -> Option<T> {
        let bytes = self.entry.bytes(name)?;
        let parsed = std::str::from_utf8(bytes).ok().and_then(|t| t.parse().ok());
        if parsed.is_none() {
            self.problems.push(FieldProblem {
                field: name,
                value: quote(bytes),
                expected: "a decimal number",
            });
        }
        parsed
    }

    fn flag(&mut self, name: &'static str) -> bool {
        self.number::<u32>(name).is_some_and(|value| value != 0)
    }

    fn path(&self, name: &'static str) -> Option<PathBuf> {
        let bytes = self.entry.bytes(name)?;
        Some(PathBuf::from(OsString::from_vec(bytes.to_vec())))
    }
}

/// Finds what a file descriptor pointed to in `COREDUMP_OPEN_FDS`, where
/// each descriptor is a `FD:TARGET` line followed by its fdinfo lines.
fn open_fd_target(entry: &Entry, fd: u32) -> Option<String> {
    let text = entry.bytes("COREDUMP_OPEN_FDS")?;
    let prefix = format!("{fd}:");
    text.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(prefix.as_bytes()))
        .map(|target| String::from_utf8_lossy(target).into_owned())
}

fn quote(bytes: &[u8]) -> String {
    let cut = bytes
        .get(..QUOTED_VALUE_BYTES.min(bytes.len()))
        .unwrap_or_default();
    String::from_utf8_lossy(cut).into_owned()
}

fn lossy_path<S: Serializer>(path: &Option<PathBuf>, serializer: S) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => serializer.serialize_str(&path.to_string_lossy()),
        None => serializer.serialize_none(),
    }
}

/// Returns the name of a Linux signal (same numbers on amd64 and arm64).
pub fn signal_name(number: u32) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    let index = usize::try_from(number).ok()?.checked_sub(1)?;
    NAMES.get(index).copied()
}

#[cfg(test)]
pub(crate) mod tests;
