//! `gocrash list`, `info` and `dump`, run as the built binary on the corpus
//! crashes in this machine's journal. The tests cover selection by PID,
//! command name and executable path, the listed headline and Go version,
//! info's fields against journalctl's, dump's bytes against `zstd -dc`, exit
//! codes, and the help texts. The help snapshots live in `tests/snapshots/`;
//! run with `GOCRASH_UPDATE_SNAPSHOTS=1` to rewrite them after a deliberate
//! change.
//!
//! Tests that need corpus crashes skip with a message without a manifest,
//! and fail when `CI=true`.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{Crash, ExpectedFacts, Manifest};

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
const COREDUMP_MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";

fn gocrash(args: &[&str]) -> Output {
    Command::new(GOCRASH)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("gocrash runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Returns the journal's coredump entries matching `matches`, oldest first,
/// as journalctl's JSON prints them.
fn journal_entries(matches: &[String]) -> Vec<Value> {
    let output = Command::new("journalctl")
        .args(["--no-pager", "--output=json"])
        .arg(format!("MESSAGE_ID={COREDUMP_MESSAGE_ID}"))
        .args(matches)
        .output()
        .expect("journalctl runs");
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("journalctl JSON"))
        .collect()
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} missing in {entry}"))
}

/// Corpus crashes that are the newest crash of their PID, so selecting by
/// PID reaches them.
fn newest_by_pid(manifest: &Manifest, program: &str) -> Vec<Crash> {
    manifest
        .crashes
        .iter()
        .filter(|crash| crash.program == program)
        .filter(|crash| {
            let entries = journal_entries(&[format!("COREDUMP_PID={}", crash.pid)]);
            entries
                .last()
                .is_some_and(|e| field(e, "__CURSOR") == crash.cursor)
        })
        .cloned()
        .collect()
}

fn go_version(manifest: &Manifest, crash: &Crash) -> String {
    manifest.toolchain(&crash.toolchain).version.clone()
}

#[test]
fn list_help_matches_snapshot() {
    let output = gocrash(&["list", "--help"]);
    assert!(output.status.success());
    support::assert_snapshot("list_help.txt", &stdout(&output));
}

#[test]
fn info_help_matches_snapshot() {
    let output = gocrash(&["info", "--help"]);
    assert!(output.status.success());
    support::assert_snapshot("info_help.txt", &stdout(&output));
}

#[test]
fn dump_help_matches_snapshot() {
    let output = gocrash(&["dump", "--help"]);
    assert!(output.status.success());
    support::assert_snapshot("dump_help.txt", &stdout(&output));
}

#[test]
fn list_by_command_name_shows_headline_and_go() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crashes: Vec<&Crash> = manifest
        .crashes
        .iter()
        .filter(|c| c.program == "nilpointer")
        .collect();
    assert!(!crashes.is_empty());
    let facts = ExpectedFacts::load(&crashes[0].expected);

    let output = gocrash(&["list", "nilpointer"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("TIME "), "{header}");
    for column in ["PID", "SIG", "COREFILE", "UNIT", "EXE", "GO", "HEADLINE"] {
        assert!(header.contains(column), "{column} missing from {header}");
    }
    for crash in &crashes {
        let exe = crash.binary.to_str().unwrap();
        let line = text
            .lines()
            .find(|line| line.split_whitespace().nth(4) == Some(&crash.pid.to_string()))
            .unwrap_or_else(|| panic!("PID {} ({exe}) not listed", crash.pid));
        // The EXE column keeps the start of the directory and the file name.
        let name = crash.binary.file_name().unwrap().to_str().unwrap();
        assert!(line.contains(&format!("/{name} ")), "{line}");
        assert!(line.contains(&format!(" {}", &exe[..10])), "{line}");
        assert!(line.ends_with(&facts.headline), "{line}");
        let version = go_version(&manifest, crash);
        assert!(
            line.contains(&format!(" {version} ")),
            "{version} missing: {line}"
        );
        assert!(line.contains(" present "), "{line}");
        assert!(line.contains(&crash.unit), "{line}");
    }
}

#[test]
fn list_json_matches_the_journal() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "deadlock")
        .expect("a deadlock crash");
    let facts = ExpectedFacts::load(&crash.expected);
    let exe = crash.binary.to_str().unwrap();
    let output = gocrash(&["list", "--json", exe]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let entries = journal_entries(&[format!("COREDUMP_EXE={exe}")]);
    assert_eq!(rows.len(), entries.len());
    let row = rows
        .iter()
        .find(|row| row["cursor"] == crash.cursor.as_str())
        .expect("the crash is listed");
    assert_eq!(row["pid"], crash.pid);
    assert_eq!(row["signal"], 6);
    assert_eq!(row["signal_name"], "SIGABRT");
    assert_eq!(row["state"], "present");
    assert_eq!(row["path"], crash.core.to_str().unwrap());
    assert_eq!(row["unit"], crash.unit.as_str());
    assert_eq!(row["go_version"], go_version(&manifest, crash).as_str());
    assert_eq!(row["executable_kind"], "go");
    assert_eq!(row["headline"], facts.headline.as_str());
    assert_eq!(row["headline_source"], "text");
}

#[test]
fn list_unit_filter_and_no_match() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "typeassert")
        .unwrap();
    let output = gocrash(&["list", "--json", "--unit", &crash.unit]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert!(rows.iter().any(|r| r["cursor"] == crash.cursor.as_str()));
    assert!(rows.iter().all(|r| r["unit"] == crash.unit.as_str()));

    let output = gocrash(&["list", "no-such-program-xyz"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("no crash matched command name \"no-such-program-xyz\""));
}

/// Checks `info --json` against the journal entry it shows.
fn assert_info_matches(document: &Value, entry: &Value) {
    let record = &document["record"];
    assert_eq!(document["schema"], "gocrash.info/1");
    assert_eq!(record["cursor"], field(entry, "__CURSOR"));
    assert_eq!(record["pid"].to_string(), field(entry, "COREDUMP_PID"));
    assert_eq!(record["uid"].to_string(), field(entry, "COREDUMP_UID"));
    assert_eq!(record["gid"].to_string(), field(entry, "COREDUMP_GID"));
    assert_eq!(
        record["signal"]["number"].to_string(),
        field(entry, "COREDUMP_SIGNAL")
    );
    assert_eq!(
        record["signal"]["name"],
        field(entry, "COREDUMP_SIGNAL_NAME")
    );
    assert_eq!(
        record["timestamp_usec"].to_string(),
        field(entry, "COREDUMP_TIMESTAMP")
    );
    assert_eq!(record["exe"], field(entry, "COREDUMP_EXE"));
    assert_eq!(record["comm"], field(entry, "COREDUMP_COMM"));
    assert_eq!(record["cmdline"], field(entry, "COREDUMP_CMDLINE"));
    assert_eq!(record["unit"], field(entry, "COREDUMP_UNIT"));
    assert_eq!(record["slice"], field(entry, "COREDUMP_SLICE"));
    assert_eq!(record["cgroup"], field(entry, "COREDUMP_CGROUP"));
    assert_eq!(record["hostname"], field(entry, "COREDUMP_HOSTNAME"));
    assert_eq!(
        record["rlimit"].to_string(),
        field(entry, "COREDUMP_RLIMIT")
    );
    assert_eq!(record["filename"], field(entry, "COREDUMP_FILENAME"));
    assert_eq!(record["boot_id"], field(entry, "_BOOT_ID"));
    assert_eq!(record["machine_id"], field(entry, "_MACHINE_ID"));
    assert_eq!(record["truncated"], false);
    assert_eq!(document["core"]["state"], "present");
    assert_eq!(document["core"]["path"], field(entry, "COREDUMP_FILENAME"));
}

#[test]
fn info_by_pid_equals_the_journal() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crashes = newest_by_pid(&manifest, "nilpointer");
    let crash = crashes
        .first()
        .expect("a nilpointer crash reachable by PID");
    let facts = ExpectedFacts::load(&crash.expected);
    let output = gocrash(&["info", "--json", &crash.pid.to_string()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let entries = journal_entries(&[format!("COREDUMP_PID={}", crash.pid)]);
    assert_info_matches(&document, entries.last().unwrap());

    assert_eq!(document["build_id_check"]["result"], "matched");
    assert_eq!(
        document["binary"]["go_version"],
        go_version(&manifest, crash).as_str()
    );
    assert_eq!(
        document["core"]["executable"],
        crash.binary.to_str().unwrap()
    );
    let text = &document["text"];
    assert_eq!(text["headline"], facts.headline.as_str());
    let recorded = std::fs::read_to_string(&crash.stderr).unwrap();
    assert_eq!(text["lines"], recorded.lines().count());
    assert_eq!(text["loss"]["dump"]["state"], "complete");
    assert!(text["loss"]["suppressed"].is_null());
    assert!(text["goroutines"].as_u64().unwrap() >= 1);

    let plain = gocrash(&["info", &crash.pid.to_string()]);
    assert!(plain.status.success());
    let plain = stdout(&plain);
    assert!(
        plain.contains(&format!("             PID: {} (nilpointer)\n", crash.pid)),
        "{plain}"
    );
    assert!(
        plain.contains(&format!("        Headline: {}\n", facts.headline)),
        "{plain}"
    );
    assert!(
        plain.contains("        Build ID: the file on disk matches the core"),
        "{plain}"
    );
}

#[test]
fn info_by_command_name_and_exe_path() {
    let Some(_manifest) = support::manifest() else {
        return;
    };
    let newest = journal_entries(&["COREDUMP_COMM=nilpointer".into()]);
    let newest = newest.last().expect("nilpointer crashes");
    let output = gocrash(&["info", "--json", "nilpointer"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["record"]["cursor"], field(newest, "__CURSOR"));
    assert_eq!(document["record"]["comm"], "nilpointer");

    let exe = field(newest, "COREDUMP_EXE");
    let by_exe = journal_entries(&[format!("COREDUMP_EXE={exe}")]);
    let output = gocrash(&["info", "--json", exe]);
    assert!(output.status.success(), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_info_matches(&document, by_exe.last().unwrap());
}

#[test]
fn info_of_a_core_file_finds_its_entry() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "closedchan")
        .unwrap();
    let output = gocrash(&["info", "--json", crash.core.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["record"]["cursor"], crash.cursor.as_str());
    assert_eq!(document["core"]["path"], crash.core.to_str().unwrap());
}

#[test]
fn info_of_a_copied_core_reads_its_notes() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "closedchan")
        .unwrap();
    // A copy of the stored core is unknown to the journal, so the process
    // facts come from the core's own notes.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("core.zst");
    std::fs::copy(&crash.core, &copy).unwrap();
    let copy = copy.to_str().unwrap();

    let output = gocrash(&["info", "--json", copy]);
    assert!(output.status.success(), "{}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(document["record"].is_null(), "{document}");
    let process = &document["core"]["process"];
    assert_eq!(process["pid"], crash.pid);
    assert_eq!(process["comm"], "closedchan");
    assert_eq!(process["signal"], 6);
    assert_eq!(process["signal_name"], "SIGABRT");

    let output = gocrash(&["info", copy]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(&format!("PID: {} (closedchan)", crash.pid)),
        "{text}"
    );
    assert!(text.contains("Signal: 6 (SIGABRT)"), "{text}");
    assert!(
        text.contains("Process Facts: from the core's notes"),
        "{text}"
    );
    // The binary's path is longer than the 80 bytes of NT_PRPSINFO.
    assert!(crash.binary.as_os_str().len() >= 80);
    assert!(text.contains("(cut at 80 bytes by the kernel)"), "{text}");

    // The stored core has a record, which describes the process instead.
    let output = gocrash(&["info", "--json", crash.core.to_str().unwrap()]);
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(document["core"]["process"].is_null(), "{document}");
}

#[test]
fn info_without_match_exits_3() {
    let output = gocrash(&["info", "no-such-program-xyz"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "gocrash: no crash matched command name \"no-such-program-xyz\"\n"
    );
}

fn zstd_decompressed(core: &Path) -> Vec<u8> {
    let output = Command::new("zstd")
        .arg("-dc")
        .arg(core)
        .output()
        .expect("zstd runs");
    assert!(output.status.success(), "{}", stderr(&output));
    output.stdout
}

#[test]
fn dump_equals_zstd_output() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crashes = newest_by_pid(&manifest, "customerror");
    let crash = crashes
        .first()
        .expect("a customerror crash reachable by PID");
    let expected = zstd_decompressed(&crash.core);
    assert!(expected.starts_with(b"\x7fELF"));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plain.core");
    let output = gocrash(&["dump", &crash.pid.to_string(), "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let written = std::fs::read(&out).unwrap();
    assert!(
        written == expected,
        "dump differs from zstd -dc ({} vs {} bytes)",
        written.len(),
        expected.len()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        support::partial_files(dir.path()),
        Vec::<std::path::PathBuf>::new()
    );

    // To a pipe: stdout is not a terminal here.
    let output = gocrash(&["dump", "-o", "-", crash.core.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        output.stdout == expected,
        "dump to stdout differs from zstd -dc"
    );
    // Without -o too, as `coredumpctl dump` does.
    let output = gocrash(&["dump", crash.core.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(output.stdout == expected, "dump without -o differs");

    // A reader that stops early (`| head -c 100`) ends the dump quietly.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gocrash"))
        .args(["dump", "-o", "-", crash.core.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(&first[..4], b"\x7fELF");
}

/// Returns the corpus crash of `nilmap`, a small core the dump tests read.
fn nilmap_crash() -> Option<Crash> {
    let manifest = support::manifest()?;
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilmap")
        .expect("the manifest has a nilmap crash");
    Some(crash.clone())
}

#[test]
fn dump_of_a_truncated_core_is_partial() {
    let Some(crash) = nilmap_crash() else {
        return;
    };
    let compressed = std::fs::read(&crash.core).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.zst");
    std::fs::write(&cut, &compressed[..compressed.len() / 2]).unwrap();
    let out = dir.path().join("cut.core");
    let output = gocrash(&["dump", cut.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("only the first"),
        "{}",
        stderr(&output)
    );
    let full = zstd_decompressed(&crash.core);
    let written = std::fs::read(&out).unwrap();
    assert!(!written.is_empty());
    assert!(written.len() < full.len());
    assert!(
        full.starts_with(&written),
        "the partial core is not a prefix of the whole"
    );
}

/// systemd-coredump cuts a core at its size limit before compressing it:
/// the stream is whole, but the core is shorter than its headers describe.
#[test]
fn dump_of_precut_core_is_partial() {
    let Some(crash) = nilmap_crash() else {
        return;
    };
    let full = zstd_decompressed(&crash.core);
    let dir = tempfile::tempdir().unwrap();
    let cut_len = full.len() / 2;
    let cut = zstd_compressed(&full[..cut_len], dir.path(), "cut.zst");
    let out = dir.path().join("cut.core");
    let output = gocrash(&["dump", cut.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(": the core is truncated: its program headers describe 0x"),
        "{message}"
    );
    assert!(
        message.contains(&format!(" has {cut_len:#x} ")),
        "{message}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), &full[..cut_len]);
}

#[test]
fn dump_to_a_full_place_names_the_output() {
    let Some(crash) = nilmap_crash() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("full.core");
    let mut command = Command::new(GOCRASH);
    command
        .args(["dump", crash.core.to_str().unwrap(), "-o"])
        .arg(&out);
    support::limit_file_size(&mut command, 64 << 10);
    let output = command.output().expect("gocrash runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let expected = format!(
        "cannot decompress {} into {}: ",
        crash.core.display(),
        out.display()
    );
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    assert!(!out.exists(), "a cut core was left behind");
    assert_eq!(
        support::partial_files(dir.path()),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn dump_leaves_holes_for_zero_pages() {
    use std::os::unix::fs::MetadataExt;

    let Some(crash) = nilmap_crash() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sparse.core");
    let output = gocrash(&[
        "dump",
        crash.core.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let meta = std::fs::metadata(&out).unwrap();
    let expected = zstd_decompressed(&crash.core);
    assert_eq!(meta.len(), expected.len() as u64);
    // A Go core is mostly untouched heap and stack reservations.
    let allocated = meta.blocks() * 512;
    assert!(
        allocated < meta.len() / 2,
        "{allocated} bytes allocated for a core of {}",
        meta.len()
    );
    assert!(std::fs::read(&out).unwrap() == expected);
}

/// Compresses `bytes` with the `zstd` tool.
/// Compresses `bytes` with the lz4 tool and its extra `args` into `dir/name`.
fn lz4_compressed(bytes: &[u8], dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let plain = dir.join(format!("{name}.plain"));
    std::fs::write(&plain, bytes).unwrap();
    let path = dir.join(name);
    let status = Command::new("lz4")
        .args(["-q", "-f"])
        .args(args)
        .arg(&plain)
        .arg(&path)
        .status()
        .expect("lz4 runs");
    assert!(status.success());
    path
}

fn zstd_compressed(bytes: &[u8], dir: &Path, name: &str) -> std::path::PathBuf {
    let plain = dir.join(format!("{name}.plain"));
    std::fs::write(&plain, bytes).unwrap();
    let path = dir.join(name);
    let status = Command::new("zstd")
        .args(["-q", "-f", "-o"])
        .arg(&path)
        .arg(&plain)
        .status()
        .expect("zstd runs");
    assert!(status.success());
    path
}

#[test]
fn dump_rejects_non_elf_stream() {
    let dir = tempfile::tempdir().unwrap();
    let text = zstd_compressed(b"hello world\n", dir.path(), "text.zst");
    let out = dir.path().join("text.core");
    let output = gocrash(&["dump", text.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message
            .contains("is not a 64-bit ELF core: the decompressed zstd stream starts with 68 65"),
        "{message}"
    );
    assert!(!out.exists());
    assert_eq!(
        support::partial_files(dir.path()),
        Vec::<std::path::PathBuf>::new()
    );

    let output = gocrash(&[
        "dump",
        "--raw",
        text.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(std::fs::read(&out).unwrap(), b"hello world\n");
}

#[test]
fn dump_stops_at_the_core_extent() {
    let Some(crash) = nilmap_crash() else {
        return;
    };
    let mut bytes = zstd_decompressed(&crash.core);
    let core_len = bytes.len();
    bytes.resize(core_len + (8 << 20), b'A');
    let dir = tempfile::tempdir().unwrap();
    let bomb = zstd_compressed(&bytes, dir.path(), "long.zst");
    let out = dir.path().join("long.core");
    let output = gocrash(&["dump", bomb.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "goes on past {core_len:#x} decompressed bytes, the end of the core its ELF program \
             headers describe"
        )),
        "{message}"
    );
    assert_eq!(std::fs::metadata(&out).unwrap().len(), core_len as u64);
}

#[test]
fn dump_of_lz4_cut_between_blocks_is_partial() {
    let Some(crash) = nilmap_crash() else {
        return;
    };
    let plain = zstd_decompressed(&crash.core);
    let dir = tempfile::tempdir().unwrap();
    let lz4_path = lz4_compressed(&plain, dir.path(), "core.lz4", &[]);
    let frame = std::fs::read(&lz4_path).unwrap();

    // Walk the blocks: magic, FLG, BD, an optional 8-byte content size and
    // the header checksum, then 4-byte block sizes (the high bit marks an
    // uncompressed block) followed by the data and, when FLG has the block
    // checksum bit, a 4-byte block checksum.
    let flags = frame[4];
    let mut position = 7 + if flags & 0x08 != 0 { 8 } else { 0 };
    let block_checksum = if flags & 0x10 != 0 { 4 } else { 0 };
    let mut starts = Vec::new();
    loop {
        let size = u32::from_le_bytes(frame[position..position + 4].try_into().unwrap());
        if size == 0 {
            break;
        }
        starts.push(position);
        position += 4 + (size & 0x7fff_ffff) as usize + block_checksum;
    }
    assert!(starts.len() > 2, "the core spans several lz4 blocks");
    let cut = starts[starts.len() / 2];

    let cut_path = dir.path().join("cut.lz4");
    std::fs::write(&cut_path, &frame[..cut]).unwrap();
    let out = dir.path().join("cut.core");
    let output = gocrash(&[
        "dump",
        cut_path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("is truncated at byte {cut:#x} of the input")),
        "{message}"
    );
    let written = std::fs::read(&out).unwrap();
    assert!(!written.is_empty());
    assert!(plain.starts_with(&written));
}

#[test]
fn dump_without_match_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("none.core");
    let output = gocrash(&["dump", "no-such-program-xyz", "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(!out.exists());
}

#[test]
fn list_after_cursor_resumes() {
    let Some(_manifest) = support::manifest() else {
        return;
    };
    let output = gocrash(&["list", "--json", "deadlock"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        rows.len() >= 3,
        "the corpus crashes deadlock once per build"
    );
    let cursor = rows[rows.len() - 3]["cursor"].as_str().unwrap();

    let output = gocrash(&["list", "--json", "deadlock", "--after-cursor", cursor]);
    assert!(output.status.success(), "{}", stderr(&output));
    let resumed: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let cursors = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|row| row["cursor"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(cursors(&resumed), cursors(&rows[rows.len() - 2..]));
}

#[test]
fn bad_signature_is_usage_error() {
    let output = gocrash(&["list", "--signature", "c65a69725fc05083x"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with(
            "error: invalid value 'c65a69725fc05083x' for '--signature <SIG>': expected 16 hex digits"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn list_of_zero_lines_is_usage_error() {
    let output = gocrash(&["list", "-n", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("error: invalid value '0' for '--lines <N>'"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn list_bad_times_and_matches_are_usage_errors() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["__CURSOR=x"],
            "journalctl rejects the journal match __CURSOR=x (journalctl: ",
        ),
        (
            &["--since", "not a date"],
            "invalid --since value \"not a date\" (journalctl: ",
        ),
        (
            &["--until", "later"],
            "invalid --until value \"later\" (journalctl: ",
        ),
        (
            &["--since", "2026-12-05", "--until", "2026-01-01"],
            "--since \"2026-12-05\" is not before --until \"2026-01-01\"",
        ),
        (
            &["--journal-reader", "direct", "--since", "yesterday"],
            "the direct journal reader takes --since only as @SECONDS",
        ),
    ];
    for (args, expected) in cases {
        let output = gocrash(&[&["list"], args].concat());
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

/// `lz4 -l` writes the legacy frame format, which is read like the current
/// one.
#[test]
fn dump_of_lz4_legacy_frame_equals_the_core() {
    let Some(crash) = nilmap_crash() else {
        return;
    };
    let plain = zstd_decompressed(&crash.core);
    let dir = tempfile::tempdir().unwrap();
    let legacy = lz4_compressed(&plain, dir.path(), "core.lz4", &["-l"]);
    assert!(std::fs::read(&legacy)
        .unwrap()
        .starts_with(&[0x02, 0x21, 0x4c, 0x18]));

    let out = dir.path().join("out.core");
    let output = gocrash(&[
        "dump",
        legacy.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        std::fs::read(&out).unwrap() == plain,
        "the dumped core differs"
    );
}

/// A dump ended by SIGTERM removes its `.partial` file. The core's last
/// segment is made to describe 32 GiB of holes, so that the dump runs for
/// seconds.
#[test]
fn interrupted_dump_leaves_no_partial_file() {
    let Some(crash) = nilmap_crash() else {
        return;
    };
    let mut core = zstd_decompressed(&crash.core);
    let word = |bytes: &[u8], at: usize, len: usize| {
        bytes[at..at + len]
            .iter()
            .rev()
            .fold(0u64, |value, &byte| value << 8 | u64::from(byte)) as usize
    };
    let (phoff, phnum) = (word(&core, 32, 8), word(&core, 56, 2));
    let last_load = (0..phnum)
        .rev()
        .map(|index| phoff + 56 * index)
        .find(|&header| word(&core, header, 4) == 1)
        .expect("a PT_LOAD segment");
    let offset = word(&core, last_load + 8, 8) as u64;
    let big: u64 = 32 << 30;
    core[last_load + 32..last_load + 40].copy_from_slice(&big.to_le_bytes());
    core[last_load + 40..last_load + 48].copy_from_slice(&big.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.core");
    std::fs::write(&path, &core).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(offset + big)
        .unwrap();

    let out = dir.path().join("out.core");
    let mut child = Command::new(GOCRASH)
        .args(["dump", path.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .stdin(Stdio::null())
        .spawn()
        .expect("gocrash runs");
    let started = std::time::Instant::now();
    while support::partial_files(dir.path()).is_empty()
        && started.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let partial = support::partial_files(dir.path());
    assert_eq!(partial.len(), 1, "the dump wrote no partial file");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("wait for gocrash");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(15)
    );
    assert!(!partial[0].exists(), "the partial file was left behind");
    assert!(!out.exists());
}

/// A journalctl whose output cannot be parsed, and that goes on writing, is
/// stopped: gocrash reports the stream's error instead of waiting for a
/// child that waits for it to read the pipe.
#[test]
fn unparsable_journalctl_output_ends_the_command() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("journalctl");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         # Answers the version query, then writes bytes no export stream starts with.\n\
         case \"$1\" in --version) echo 'systemd 252 (252.33-1)'; exit 0;; esac\n\
         printf '\\001\\002not an export stream\\n'\n\
         exec cat /dev/zero\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let mut child = Command::new(GOCRASH)
        .args(["list"])
        .env("PATH", &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gocrash runs");

    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("gocrash list waited for the fake journalctl for a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let output = child.wait_with_output().unwrap();
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("cannot list crashes"), "{message}");
}

/// journalctl reads `--since` and `--until` in UTC, the zone gocrash prints
/// times in, whatever the caller's time zone.
#[test]
fn journalctl_reads_times_in_utc() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("journalctl");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\
         case \"$1\" in --version) echo 'systemd 252 (252.33-1)'; exit 0;; esac\n\
         echo \"time zone: $TZ\" >&2\n\
         exit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new(GOCRASH)
        .args(["list", "--since", "2026-12-05 19:00"])
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .env("TZ", "America/New_York")
        .stdin(Stdio::null())
        .output()
        .expect("gocrash runs");
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("time zone: UTC"), "{message}");
}
