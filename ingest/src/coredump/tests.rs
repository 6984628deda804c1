use std::io::Cursor;
use std::path::PathBuf;

use super::*;
use crate::journal::export::{ExportOptions, ExportReader, ExportWriter};

/// Builds one coredump entry in the export format, starting from the fields
/// systemd 252 writes, and reads it back.
pub(crate) struct CoredumpEntryBuilder {
    fields: Vec<(String, Vec<u8>)>,
}

impl CoredumpEntryBuilder {
    pub(crate) fn new(pid: u32) -> CoredumpEntryBuilder {
        let mut builder = CoredumpEntryBuilder { fields: Vec::new() };
        for (name, value) in [
            (
                "__CURSOR",
                "s=94eb;i=780;b=5c2e;m=6ebc19c2;t=661d538a7a89b;x=a73b",
            ),
            ("__REALTIME_TIMESTAMP", "1796418266704027"),
            ("_BOOT_ID", "5c2e0aa8c0474f8facde8dcfcd702c47"),
            ("_MACHINE_ID", "3d1219c7c4c5404aaa1f6d2a48adfda4"),
            ("MESSAGE_ID", COREDUMP_MESSAGE_ID),
            ("SYSLOG_IDENTIFIER", "systemd-coredump"),
            ("_EXE", "/usr/lib/systemd/systemd-coredump"),
            ("_COMM", "systemd-coredum"),
            ("_UID", "995"),
            ("COREDUMP_UID", "0"),
            ("COREDUMP_GID", "0"),
            ("COREDUMP_SIGNAL", "6"),
            ("COREDUMP_SIGNAL_NAME", "SIGABRT"),
            ("COREDUMP_TIMESTAMP", "1796418265000000"),
            ("COREDUMP_RLIMIT", "9223372036854775808"),
            ("COREDUMP_HOSTNAME", "vm"),
            ("COREDUMP_COMM", "cgoabort"),
            ("COREDUMP_EXE", "/srv/cgoabort"),
            ("COREDUMP_CMDLINE", "/srv/cgoabort --flag"),
            ("COREDUMP_UNIT", "gocrash-corpus-cgoabort.service"),
            ("COREDUMP_SLICE", "system.slice"),
            (
                "COREDUMP_CGROUP",
                "/system.slice/gocrash-corpus-cgoabort.service",
            ),
        ] {
            builder = builder.set(name, value.as_bytes());
        }
        builder
            .set("COREDUMP_PID", pid.to_string().as_bytes())
            .set(
                "COREDUMP_FILENAME",
                format!(
                    "/var/lib/systemd/coredump/core.cgoabort.0.5c2e0aa8c0474f8facde8dcfcd702c47.{pid}.1796418265000000.zst"
                )
                .as_bytes(),
            )
            .set(
                "MESSAGE",
                format!("Process {pid} (cgoabort) of user 0 dumped core.\n\nStack trace of thread 1:\n#0 0x1 n/a").as_bytes(),
            )
    }

    pub(crate) fn set(mut self, name: &str, value: &[u8]) -> CoredumpEntryBuilder {
        self.fields.retain(|(known, _)| known != name);
        self.fields.push((name.to_string(), value.to_vec()));
        self
    }

    pub(crate) fn remove(mut self, name: &str) -> CoredumpEntryBuilder {
        self.fields.retain(|(known, _)| known != name);
        self
    }

    pub(crate) fn export_bytes(&self) -> Vec<u8> {
        let mut writer = ExportWriter::new(Vec::new());
        for (name, value) in &self.fields {
            writer.field(name, value).unwrap();
        }
        writer.end_entry().unwrap();
        writer.into_inner()
    }

    pub(crate) fn entry(&self) -> Entry {
        let bytes = self.export_bytes();
        ExportReader::new(Cursor::new(bytes), ExportOptions::default())
            .next_entry()
            .unwrap()
            .unwrap()
    }

    pub(crate) fn record(&self) -> Result<CoredumpRecord, RecordError> {
        CoredumpRecord::from_entry(&self.entry())
    }
}

#[test]
fn typed_fields_of_a_real_layout() {
    let record = CoredumpEntryBuilder::new(18775).record().unwrap();
    assert_eq!(record.pid, 18775);
    assert_eq!(record.uid, Some(0));
    assert_eq!(record.gid, Some(0));
    assert_eq!(
        record.signal,
        Some(Signal {
            number: 6,
            name: Some("SIGABRT".into())
        })
    );
    assert_eq!(record.timestamp_usec, Some(1796418265000000));
    assert_eq!(record.entry_time_usec, 1796418266704027);
    assert_eq!(record.exe, Some(PathBuf::from("/srv/cgoabort")));
    assert_eq!(record.comm.as_deref(), Some("cgoabort"));
    assert_eq!(record.cmdline.as_deref(), Some("/srv/cgoabort --flag"));
    assert_eq!(
        record.unit.as_deref(),
        Some("gocrash-corpus-cgoabort.service")
    );
    assert_eq!(record.unit_name(), Some("gocrash-corpus-cgoabort.service"));
    assert_eq!(record.slice.as_deref(), Some("system.slice"));
    assert_eq!(record.rlimit, Some(9223372036854775808));
    assert_eq!(record.hostname.as_deref(), Some("vm"));
    assert_eq!(
        record.boot_id.as_deref(),
        Some("5c2e0aa8c0474f8facde8dcfcd702c47")
    );
    assert!(!record.truncated);
    assert_eq!(record.trust, Trust::Verified);
    assert_eq!(
        record.message_summary(),
        Some("Process 18775 (cgoabort) of user 0 dumped core.")
    );
    assert!(record.problems.is_empty(), "{:?}", record.problems);
    assert_eq!(record.inline_core_len, None);
}

#[test]
fn user_unit_wins_over_system_unit() {
    let record = CoredumpEntryBuilder::new(1)
        .set("COREDUMP_UNIT", b"user@1000.service")
        .set("COREDUMP_USER_UNIT", b"app.service")
        .record()
        .unwrap();
    assert_eq!(record.unit_name(), Some("app.service"));
    assert_eq!(record.unit.as_deref(), Some("user@1000.service"));
}

#[test]
fn signal_name_falls_back_to_table() {
    let record = CoredumpEntryBuilder::new(1)
        .remove("COREDUMP_SIGNAL_NAME")
        .set("COREDUMP_SIGNAL", b"11")
        .record()
        .unwrap();
    assert_eq!(record.signal_label(), "SIGSEGV");
    assert_eq!(signal_name(0), None);
    assert_eq!(signal_name(31), Some("SIGSYS"));
    assert_eq!(signal_name(64), None);
}

#[test]
fn bad_optional_fields_become_problems() {
    let record = CoredumpEntryBuilder::new(1)
        .set("COREDUMP_UID", b"root")
        .set("COREDUMP_TIMESTAMP", b"")
        .record()
        .unwrap();
    assert_eq!(record.uid, None);
    assert_eq!(record.timestamp_usec, None);
    let fields: Vec<&str> = record.problems.iter().map(|p| p.field).collect();
    assert_eq!(fields, ["COREDUMP_UID", "COREDUMP_TIMESTAMP"]);
    assert_eq!(record.crash_time_usec(), record.entry_time_usec);
}

#[test]
fn pid_is_required() {
    let missing = CoredumpEntryBuilder::new(1).remove("COREDUMP_PID").record();
    assert!(matches!(
        missing,
        Err(RecordError::Missing {
            field: "COREDUMP_PID",
            ..
        })
    ));
    let invalid = CoredumpEntryBuilder::new(1)
        .set("COREDUMP_PID", b"-5")
        .record();
    assert!(matches!(
        invalid,
        Err(RecordError::Invalid {
            field: "COREDUMP_PID",
            ..
        })
    ));
}

#[test]
fn other_message_ids_are_not_records() {
    let other = CoredumpEntryBuilder::new(1)
        .set("MESSAGE_ID", b"a596d6fe7bfa4994828e72309e95d61e")
        .record();
    assert!(matches!(other, Err(RecordError::NotCoredump { .. })));
}

#[test]
fn forged_entries_are_untrusted() {
    let forged = CoredumpEntryBuilder::new(1)
        .set("_EXE", b"/tmp/fake")
        .set("_COMM", b"fake")
        .record();
    assert!(matches!(forged, Err(RecordError::Untrusted { .. })));
}

#[test]
fn inline_core_length_is_recorded() {
    let builder = CoredumpEntryBuilder::new(1)
        .remove("COREDUMP_FILENAME")
        .set("COREDUMP", &[0x7f, b'E', b'L', b'F', 0, 1, 2]);
    let record = builder.record().unwrap();
    assert_eq!(record.inline_core_len, Some(7));
    assert_eq!(
        CoredumpStore::default().state(&record),
        CoreState::Journal { len: 7 }
    );
}

#[test]
fn truncated_and_unstored_cores() {
    let record = CoredumpEntryBuilder::new(1)
        .set("COREDUMP_TRUNCATED", b"1")
        .record()
        .unwrap();
    assert!(record.truncated);
    let none = CoredumpEntryBuilder::new(1)
        .remove("COREDUMP_FILENAME")
        .record()
        .unwrap();
    assert_eq!(CoredumpStore::default().state(&none), CoreState::None);
}

#[test]
fn store_state_follows_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let name = "core.app.0.5c2e0aa8c0474f8facde8dcfcd702c47.7.1796418265000000.zst";
    let store = CoredumpStore::remapped(dir.path());
    let record = CoredumpEntryBuilder::new(7)
        .set(
            "COREDUMP_FILENAME",
            format!("/var/lib/systemd/coredump/{name}").as_bytes(),
        )
        .record()
        .unwrap();
    assert_eq!(
        store.state(&record),
        CoreState::Missing {
            path: dir.path().join(name)
        }
    );
    std::fs::write(dir.path().join(name), b"0123456789").unwrap();
    assert_eq!(
        store.state(&record),
        CoreState::Present {
            path: dir.path().join(name),
            size: 10
        }
    );
    let outside = CoredumpEntryBuilder::new(7)
        .set("COREDUMP_FILENAME", b"/etc/passwd")
        .record()
        .unwrap();
    assert_eq!(
        store.state(&outside),
        CoreState::Rejected {
            path: PathBuf::from("/etc/passwd"),
            reason: PathRejection::OutsideStore
        }
    );
}

#[test]
fn open_fds_tell_where_output_went() {
    let fds = "0:/dev/null\npos:\t0\nflags:\t0100000\n1:socket:[4242]\npos:\t0\n2:socket:[4242]\npos:\t0\n3:anon_inode:[eventpoll]\n";
    let record = CoredumpEntryBuilder::new(1)
        .set("COREDUMP_OPEN_FDS", fds.as_bytes())
        .record()
        .unwrap();
    assert_eq!(record.stdout_target.as_deref(), Some("socket:[4242]"));
    assert_eq!(record.stderr_target.as_deref(), Some("socket:[4242]"));
    assert!(record.may_have_journal_output());

    let files = CoredumpEntryBuilder::new(1)
        .set(
            "COREDUMP_OPEN_FDS",
            b"1:/tmp/out.log\npos:\t0\n2:pipe:[77]\n",
        )
        .record()
        .unwrap();
    assert_eq!(files.stderr_target.as_deref(), Some("pipe:[77]"));
    assert!(!files.may_have_journal_output());

    let unknown = CoredumpEntryBuilder::new(1).record().unwrap();
    assert!(unknown.may_have_journal_output());
}
