//! A coredump entry forged through the real journal: `logger --journald`,
//! run as the unprivileged user `nobody`, writes an entry with
//! systemd-coredump's MESSAGE_ID, SYSLOG_IDENTIFIER and `COREDUMP_*` fields,
//! naming a core outside systemd-coredump's store. journald records logger
//! as the sender (`_EXE`) and nobody's uid (`_UID`), so gocrash must leave
//! the entry out of `list`, say why at `-v`, and exit 3 when it is selected
//! by PID.
//!
//! Writes to this machine's journal; needs root (to switch to `nobody`),
//! `logger` and `setpriv` (util-linux), and a running journald.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
const COREDUMP_MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";
/// Above the kernel's largest `pid_max` (2^22), so no real crash has it.
const FIRST_FORGED_PID: u64 = 1 << 22;
/// How long journald may take to make the entry readable.
const JOURNAL_WAIT: Duration = Duration::from_secs(30);

fn gocrash(args: &[&str]) -> Output {
    Command::new(GOCRASH)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("gocrash runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes the forged entry with `logger --journald`, which reads the
/// fields from stdin, one `NAME=value` per line. logger runs as `nobody`:
/// logger often exits before journald reads its `/proc` entry, and an entry
/// without `_EXE` from root would pass as systemd-coredump's.
fn log_forged_entry(pid: u64, crash_usec: u64) {
    let fields = [
        format!("MESSAGE_ID={COREDUMP_MESSAGE_ID}"),
        "SYSLOG_IDENTIFIER=systemd-coredump".to_string(),
        "PRIORITY=2".to_string(),
        format!("MESSAGE=Process {pid} (forged) of user 0 dumped core."),
        format!("COREDUMP_PID={pid}"),
        "COREDUMP_UID=0".to_string(),
        "COREDUMP_GID=0".to_string(),
        "COREDUMP_SIGNAL=6".to_string(),
        "COREDUMP_SIGNAL_NAME=SIGABRT".to_string(),
        format!("COREDUMP_TIMESTAMP={crash_usec}"),
        "COREDUMP_COMM=forged".to_string(),
        "COREDUMP_EXE=/usr/local/bin/forged".to_string(),
        "COREDUMP_UNIT=gocrash-test-forged.service".to_string(),
        format!("COREDUMP_FILENAME=/tmp/core.forged.0.{pid}.{crash_usec}.zst"),
    ];
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "logger",
            "--journald",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("logger runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(fields.join("\n").as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    assert!(child.wait().unwrap().success(), "logger --journald failed");
}

/// Waits until journalctl shows the forged entry, and returns it.
fn wait_for_entry(pid: u64) -> serde_json::Value {
    let deadline = Instant::now() + JOURNAL_WAIT;
    loop {
        let output = Command::new("journalctl")
            .args(["--no-pager", "--output=json"])
            .arg(format!("MESSAGE_ID={COREDUMP_MESSAGE_ID}"))
            .arg(format!("COREDUMP_PID={pid}"))
            .output()
            .expect("journalctl runs");
        let text = String::from_utf8_lossy(&output.stdout);
        if let Some(line) = text.lines().next() {
            return serde_json::from_str(line).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "journald did not store the forged entry for PID {pid}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn forged_entry_is_left_out() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let pid = FIRST_FORGED_PID + now.as_secs() % 1_000_000;
    let crash_usec = now.as_micros() as u64;
    let since = format!("@{}", now.as_secs().saturating_sub(5));
    log_forged_entry(pid, crash_usec);
    let entry = wait_for_entry(pid);
    let cursor = entry["__CURSOR"].as_str().expect("a cursor");
    let uid = entry["_UID"].as_str().expect("journald recorded _UID");
    assert_ne!(uid, "0", "logger did not run as nobody");
    // Which check rejects the entry depends on which of logger's /proc
    // fields journald read in time: the executable, the command name, or
    // only the credentials.
    let mut reasons = vec![format!(
        "_UID {uid} is neither a system user nor the crashed user"
    )];
    if let Some(exe) = entry["_EXE"].as_str() {
        reasons.push(format!("_EXE is \"{exe}\", not systemd-coredump"));
    }
    if let Some(comm) = entry["_COMM"].as_str() {
        reasons.push(format!("_COMM is \"{comm}\", not systemd-coredum"));
    }

    let pid_text = pid.to_string();
    let output = gocrash(&["list", "-v", "--json", "--since", &since]);
    let listed: Vec<serde_json::Value> = if output.status.success() {
        serde_json::from_slice(&output.stdout).unwrap()
    } else {
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        Vec::new()
    };
    assert!(
        listed.iter().all(|row| row["pid"] != pid),
        "the forged entry is listed"
    );
    let log = stderr(&output);
    let line = log
        .lines()
        .find(|line| line.contains(cursor))
        .unwrap_or_else(|| panic!("-v does not say why the entry was left out:\n{log}"));
    assert!(line.contains("left out a coredump entry"), "{line}");
    assert!(
        reasons.iter().any(|reason| line.contains(reason.as_str())),
        "{line}\nexpected one of {reasons:?}"
    );
    assert!(
        line.contains("was not written by systemd-coredump"),
        "{line}"
    );

    let output = gocrash(&["list", &pid_text]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(output.stdout.is_empty());

    let output = gocrash(&["info", &pid_text]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!(
            "gocrash: no crash matched PID {pid} (left out 1 entry"
        )),
        "{message}"
    );
    assert!(message.contains("run with -v to see why"), "{message}");

    let output = gocrash(&["symbolize", "-v", &pid_text]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let log = stderr(&output);
    assert!(
        reasons.iter().any(|reason| log.contains(reason.as_str())),
        "{log}"
    );
}
