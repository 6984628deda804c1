//! `gocrash report` and `gocrash list --signature`, run as the built binary
//! on the corpus crashes in this machine's journal.
//!
//! The JSON report of every corpus crash (every program, toolchain and
//! mode) must show the facts known from elsewhere. The headline, the first
//! program frame and the count of goroutines of package main come from the
//! program's `expected.toml`. The signal and the fault address come from
//! the runtime's own crash text (`crash.stderr` in the manifest), and the
//! Go version and `vcs.*` settings from `go version -m`.
//! Partial inputs (a core without journal entry, a damaged core, a crash
//! whose core is gone) must give a partial report with exit code 4.
//!
//! Tests that need corpus crashes skip with a message without a manifest,
//! and fail when `CI=true`.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{Crash, ExpectedFacts, Manifest};

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
/// Exit code of a report written with parts missing.
const PARTIAL: i32 = 4;

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

fn json_report(args: &[&str]) -> (Value, Option<i32>, String) {
    let output = gocrash(args);
    let document = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "gocrash {args:?}: no JSON on stdout ({err}); stderr: {}",
            stderr(&output)
        )
    });
    (document, output.status.code(), stderr(&output))
}

#[test]
fn report_help_snapshot() {
    let output = gocrash(&["report", "--help"]);
    assert!(output.status.success(), "{}", stderr(&output));
    support::assert_snapshot("report_help.txt", &String::from_utf8_lossy(&output.stdout));
}

/// Returns the goroutines of a report: the crashing one, then each group's
/// first member with the group's ids.
fn report_goroutines(report: &Value) -> Vec<(&Value, Vec<u64>)> {
    let mut goroutines = Vec::new();
    if !report["crashing"].is_null() {
        let id = report["crashing"]["id"].as_u64().into_iter().collect();
        goroutines.push((&report["crashing"], id));
    }
    for group in report["groups"].as_array().into_iter().flatten() {
        let ids = group["ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        goroutines.push((&group["goroutine"], ids));
    }
    goroutines
}

fn frame_functions(goroutine: &Value) -> Vec<&str> {
    goroutine["frames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["function"].as_str())
        .collect()
}

/// The innermost frame of package main of the first goroutine the report
/// shows: the crashing one, or the first group when there is none.
fn first_program_frame(report: &Value) -> Option<String> {
    let goroutines = report_goroutines(report);
    let (first, _) = goroutines.first()?;
    frame_functions(first)
        .into_iter()
        .find(|f| f.starts_with("main."))
        .map(str::to_owned)
}

/// Counts the goroutine ids with a frame or a creator in package main, as
/// `program_goroutines` in `expected.toml` does.
fn program_goroutines(report: &Value) -> usize {
    let mut ids = BTreeSet::new();
    for (goroutine, members) in report_goroutines(report) {
        let in_main = frame_functions(goroutine)
            .iter()
            .any(|f| f.starts_with("main."))
            || goroutine["created_by"]["function"]
                .as_str()
                .is_some_and(|f| f.starts_with("main."));
        if in_main {
            ids.extend(members);
        }
    }
    ids.len()
}

/// The `build` lines of `go version -m`, as key and value.
fn go_version_m(manifest: &Manifest, crash: &Crash) -> (String, Vec<(String, String)>) {
    let toolchain = manifest.toolchain(&crash.toolchain);
    let output = Command::new(&toolchain.go)
        .args(["version", "-m"])
        .arg(&crash.binary)
        .env("GOTOOLCHAIN", "local")
        .output()
        .expect("go version -m runs");
    assert!(
        output.status.success(),
        "go version -m {}: {}",
        crash.binary.display(),
        stderr(&output)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let version = text
        .lines()
        .next()
        .and_then(|line| line.rsplit(": ").next())
        .unwrap_or_default()
        .trim()
        .to_owned();
    let settings = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("build\t"))
        .filter_map(|setting| setting.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (version, settings)
}

/// Checks one crash's JSON report; returns the differences found.
fn check_crash(manifest: &Manifest, crash: &Crash) -> Vec<String> {
    let name = format!("{}/{}/{}", crash.program, crash.toolchain, crash.mode);
    let facts = ExpectedFacts::load(&crash.expected);
    let core = crash.core.to_string_lossy();
    let (report, code, err) = json_report(&["report", &core, "--json", "--no-earlier"]);
    let mut problems = Vec::new();
    let mut differ = |what: &str, ours: String, theirs: String| {
        problems.push(format!("{name}: {what}: report {ours}, expected {theirs}"));
    };
    if code != Some(0) {
        differ(
            "exit code",
            format!("{code:?} ({})", err.trim()),
            "0".into(),
        );
    }

    let headline = report["headline"]["first_line"].as_str().unwrap_or("");
    if !facts.headline_matches(headline) {
        differ("headline", headline.to_owned(), facts.headline.clone());
    }

    let runtime_text = std::fs::read_to_string(&crash.stderr)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", crash.stderr.display()));
    let traceback = ingest::traceback::parse(&runtime_text);
    let signal = &report["headline"]["signal"];
    if let Some(expected) = &facts.signal {
        let ours = signal["name"].as_str().unwrap_or("none");
        if ours != expected {
            differ("signal", ours.to_owned(), expected.clone());
        }
    }
    let text_address = traceback
        .signal
        .as_ref()
        .filter(|s| matches!(s.name.as_deref(), Some("SIGSEGV" | "SIGBUS")))
        .and_then(|s| s.addr);
    if let Some(address) = text_address {
        let ours = signal["fault_address"].as_str().unwrap_or("none");
        if ours != format!("{address:#x}") {
            differ("fault address", ours.to_owned(), format!("{address:#x}"));
        }
    }

    let (version, settings) = go_version_m(manifest, crash);
    let build = &report["build"];
    let ours = build["go_version"].as_str().unwrap_or("none");
    if ours != version || ours != manifest.toolchain(&crash.toolchain).version {
        differ("Go version", ours.to_owned(), version.clone());
    }
    for (key, field) in [("vcs.revision", "vcs_revision"), ("vcs.time", "vcs_time")] {
        let theirs = settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str());
        if build[field].as_str() != theirs {
            differ(key, build[field].to_string(), format!("{theirs:?}"));
        }
    }
    let modified = settings
        .iter()
        .find(|(k, _)| k == "vcs.modified")
        .map(|(_, v)| v == "true");
    if build["vcs_modified"].as_bool() != modified {
        differ(
            "vcs.modified",
            build["vcs_modified"].to_string(),
            format!("{modified:?}"),
        );
    }

    // A deadlock and a SIGQUIT that asked for a dump have no crashing
    // goroutine; every other crash has one.
    let expects_crashing = !matches!(facts.kind.as_str(), "deadlock" | "sigquit");
    let has_crashing = !report["crashing"].is_null();
    if has_crashing != expects_crashing {
        differ(
            "crashing goroutine",
            report["crashing"]["id"].to_string(),
            format!(
                "{} for a crash of kind {}",
                if expects_crashing { "one" } else { "none" },
                facts.kind
            ),
        );
    }

    match first_program_frame(&report) {
        Some(frame) if facts.first_frame_matches(&frame) => {}
        other => differ(
            "first program frame",
            format!("{other:?}"),
            facts.first_program_frame.clone(),
        ),
    }
    let count = program_goroutines(&report);
    if count != facts.program_goroutines {
        differ(
            "goroutines of package main",
            count.to_string(),
            facts.program_goroutines.to_string(),
        );
    }
    problems
}

#[test]
fn corpus_reports_match_known_facts() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    assert!(
        !manifest.crashes.is_empty(),
        "the manifest lists no crashes"
    );
    let mut problems = Vec::new();
    let mut toolchains = BTreeSet::new();
    let mut modes = BTreeSet::new();
    for crash in &manifest.crashes {
        problems.extend(check_crash(&manifest, crash));
        toolchains.insert(crash.toolchain.as_str());
        modes.insert(crash.mode.as_str());
    }
    eprintln!(
        "checked {} reports: {} toolchains, modes {:?}",
        manifest.crashes.len(),
        toolchains.len(),
        modes
    );
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Returns the journal match of one corpus crash. A PID can match a later
/// crash of another program that got the same PID; the core's file name
/// cannot.
fn crash_match(crash: &Crash) -> String {
    format!("COREDUMP_FILENAME={}", crash.core.display())
}

/// Returns the corpus crash of a program built by the newest toolchain in
/// the default mode.
fn newest_default<'a>(manifest: &'a Manifest, program: &str) -> &'a Crash {
    manifest
        .crashes
        .iter()
        .rfind(|c| c.program == program && c.mode == "default")
        .unwrap_or_else(|| panic!("the manifest has no default crash of {program}"))
}

#[test]
fn core_without_journal_is_partial() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "nilpointer");
    let facts = ExpectedFacts::load(&crash.expected);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("core.zst");
    std::fs::copy(&crash.core, &copy).unwrap();

    let (report, code, err) = json_report(&["report", copy.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(PARTIAL), "{err}");
    assert_eq!(report["partial"], true);
    assert_eq!(report["journal_text"]["present"], false);
    let missing = report["missing"].to_string();
    assert!(missing.contains("no journal entry"), "{missing}");
    assert_eq!(report["goroutines_from"], "core");
    let headline = report["headline"]["first_line"].as_str().unwrap_or("");
    assert!(facts.headline_matches(headline), "{headline}");
    let frame = first_program_frame(&report).unwrap_or_default();
    assert!(facts.first_frame_matches(&frame), "{frame}");
    assert_eq!(report["signature"]["from"], "core");
}

/// A copy that keeps the name systemd-coredump gave the core is found in
/// the journal by that name, so its report is whole. A core of another
/// crash given that name is not taken for that crash.
#[test]
fn copy_named_as_stored_finds_its_journal_entry() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "nilpointer");
    let facts = ExpectedFacts::load(&crash.expected);
    let name = crash.core.file_name().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(name);
    std::fs::copy(&crash.core, &copy).unwrap();

    let (report, code, err) = json_report(&["report", copy.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(report["partial"], false);
    assert_eq!(report["journal_text"]["present"], true);
    let headline = report["headline"]["first_line"].as_str().unwrap_or("");
    assert!(facts.headline_matches(headline), "{headline}");

    let other = newest_default(&manifest, "closedchan");
    std::fs::copy(&other.core, &copy).unwrap();
    let (report, code, err) = json_report(&["report", copy.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(PARTIAL), "{err}");
    assert_eq!(report["journal_text"]["present"], false);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains(
            r#"is for command \"nilpointer\", while the core's process is \"closedchan\""#
        ),
        "{warnings}"
    );
}

#[test]
fn damaged_core_is_partial() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "nilpointer");
    let bytes = std::fs::read(&crash.core).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("core.zst");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();

    let (report, code, err) = json_report(&["report", cut.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(PARTIAL), "{err}");
    assert_eq!(report["partial"], true);
    let missing = report["missing"].as_array().unwrap();
    assert!(
        missing.len() >= 2,
        "expected the damage and the missing text: {missing:?}"
    );
}

#[test]
fn failed_output_keeps_the_earlier_file() {
    use std::os::unix::fs::FileTypeExt;

    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "nilpointer");
    let dir = tempfile::tempdir().unwrap();
    let output_path = dir.path().join("report.md");
    std::fs::write(&output_path, "the report of yesterday\n").unwrap();
    let mut command = Command::new(GOCRASH);
    command
        .args([
            "report",
            crash.core.to_str().unwrap(),
            "--format",
            "markdown",
            "-o",
        ])
        .arg(&output_path)
        // The core's decompressed copy hits the limit too, which only makes
        // the report partial; writing the report then fails.
        .env("TMPDIR", dir.path());
    support::limit_file_size(&mut command, 1024);
    let output = command.output().expect("gocrash runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "cannot write the report to {}",
            output_path.display()
        )),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(&output_path).unwrap(),
        "the report of yesterday\n",
        "the earlier report was replaced by a cut one"
    );
    assert_eq!(
        support::partial_files(dir.path()),
        Vec::<std::path::PathBuf>::new()
    );

    // Without the limit the new report replaces the earlier one.
    let output = gocrash(&[
        "report",
        crash.core.to_str().unwrap(),
        "--format",
        "markdown",
        "-o",
        output_path.to_str().unwrap(),
    ]);
    assert!(
        matches!(output.status.code(), Some(0 | 4)),
        "{}",
        stderr(&output)
    );
    let written = std::fs::read_to_string(&output_path).unwrap();
    assert!(written.starts_with("### Go crash: "), "{written:.80}");

    // A device is written in place, never replaced or removed.
    let output = gocrash(&["report", crash.core.to_str().unwrap(), "-o", "/dev/null"]);
    assert!(
        matches!(output.status.code(), Some(0 | 4)),
        "{}",
        stderr(&output)
    );
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(null.file_type().is_char_device());
}

#[test]
fn recursion_prints_once_in_markdown() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "stackoverflow");
    let output = gocrash(&[
        "report",
        crash.core.to_str().unwrap(),
        "--no-earlier",
        "--format",
        "markdown",
    ]);
    assert!(
        matches!(output.status.code(), Some(0 | 4)),
        "{}",
        stderr(&output)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("\n... the frame above repeats "),
        "{text:.2000}"
    );
    assert!(text.lines().count() < 400, "{} lines", text.lines().count());
}

#[test]
fn missing_core_reports_from_text() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "closedchan");
    let facts = ExpectedFacts::load(&crash.expected);
    let empty = tempfile::tempdir().unwrap();
    let selection = crash_match(crash);
    let (report, code, err) = json_report(&[
        "report",
        &selection,
        "--coredump-dir",
        empty.path().to_str().unwrap(),
        "--json",
        "--no-earlier",
    ]);
    assert_eq!(code, Some(PARTIAL), "{err}");
    let missing = report["missing"].to_string();
    assert!(missing.contains("no core to read"), "{missing}");
    assert_eq!(report["goroutines_from"], "text");
    assert_eq!(report["headline"]["from"], "text");
    let headline = report["headline"]["first_line"].as_str().unwrap_or("");
    assert!(facts.headline_matches(headline), "{headline}");
    let frame = first_program_frame(&report).unwrap_or_default();
    assert!(facts.first_frame_matches(&frame), "{frame}");
    assert_eq!(program_goroutines(&report), facts.program_goroutines);
    assert_eq!(report["journal_text"]["present"], true);
    assert_eq!(report["signature"]["from"], "text");
}

#[test]
fn crashing_frames_carry_source_lines() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "nilpointer");
    let core = crash.core.to_string_lossy();
    let (report, _, err) = json_report(&["report", &core, "--json", "--no-earlier"]);
    let frames = report["crashing"]["frames"].as_array().expect("frames");
    let frame = frames
        .iter()
        .find(|f| f["function"] == "main.(*Config).Port")
        .unwrap_or_else(|| panic!("no main.(*Config).Port frame: {err}"));
    let source = &frame["source"];
    assert_eq!(source["result"], "found", "{source}");
    let marked = source["marked_line"].as_i64().unwrap();
    assert_eq!(Some(marked), frame["line"].as_i64());
    let first = source["first_line"].as_i64().unwrap();
    let lines = source["lines"].as_array().unwrap();
    assert_eq!(first, marked - 3);
    assert_eq!(lines.len(), 7);
    let marked_text = lines[(marked - first) as usize].as_str().unwrap();
    assert!(marked_text.contains("c.port"), "{marked_text}");

    // The runtime's frames above the program's come without source lines.
    let runtime: Vec<&Value> = frames
        .iter()
        .filter(|f| f["function"] == "panic" || f["function"] == "runtime.sigpanic")
        .collect();
    assert!(!runtime.is_empty(), "no runtime frame: {frames:?}");
    for frame in runtime {
        assert!(frame["source"].is_null(), "{frame}");
    }
}

#[test]
fn earlier_occurrences_match_list_signature() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "nilpointer");
    let selection = crash_match(crash);
    let (report, code, err) = json_report(&["report", &selection, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let id = report["signature"]["id"].as_str().expect("signature id");
    let earlier = &report["earlier"];
    assert_eq!(
        earlier["command"].as_str(),
        Some(format!("gocrash list --signature {id}").as_str())
    );

    let (listed, code, err) = json_report(&["list", "--signature", id, "--json", "nilpointer"]);
    assert_eq!(code, Some(0), "{err}");
    let listed = listed.as_array().expect("a JSON array");
    let listed_pids: BTreeSet<u64> = listed.iter().filter_map(|r| r["pid"].as_u64()).collect();
    for row in listed {
        assert_eq!(row["signature"], id, "{row}");
    }
    assert!(listed_pids.contains(&u64::from(crash.pid)));
    for other in manifest
        .crashes
        .iter()
        .filter(|c| c.program == "nilpointer")
    {
        assert!(
            listed_pids.contains(&u64::from(other.pid)),
            "PID {} ({}/{}) is not listed",
            other.pid,
            other.toolchain,
            other.mode
        );
    }

    // Every earlier occurrence is one of the listed crashes, and the
    // reported crash itself is not among them.
    let count = earlier["count"].as_u64().unwrap();
    assert!(count >= 1, "no earlier occurrence: {earlier}");
    let position = listed
        .iter()
        .position(|r| r["cursor"].as_str() == Some(crash.cursor.as_str()))
        .unwrap_or_else(|| panic!("the crash's own entry is not listed"));
    assert_eq!(count as usize, position, "{earlier}");
    for occurrence in earlier["crashes"].as_array().unwrap() {
        let pid = occurrence["pid"].as_u64().unwrap();
        assert!(listed_pids.contains(&pid), "{occurrence}");
        assert_ne!(occurrence["cursor"].as_str(), Some(crash.cursor.as_str()));
    }
}

#[test]
fn list_signature_rejects_malformed_id() {
    let output = gocrash(&["list", "--signature", "not-hex"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("16 hex digits"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn markdown_fences_every_stack() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "customerror");
    let core = crash.core.to_string_lossy();
    let output = gocrash(&["report", &core, "--format", "markdown", "--no-earlier"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.starts_with("### Go crash: `panic: order 42"), "{text}");
    let fences = text.lines().filter(|l| l.starts_with("```")).count();
    assert!(fences >= 4, "{text}");
    assert_eq!(fences % 2, 0, "unbalanced fences:\n{text}");
    assert!(text.contains("main.mustAccept"), "{text}");
}

#[test]
fn every_format_names_the_parent_goroutine() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    // Go 1.21 and later print the goroutine a go statement ran on.
    let crash = newest_default(&manifest, "goroutinepanic");
    let core = crash.core.to_string_lossy();
    let report = |format: &str| {
        let output = gocrash(&["report", &core, "--format", format, "--no-earlier"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let text = report("text");
    let creators: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("created by ") && line.contains(" in goroutine "))
        .collect();
    assert!(!creators.is_empty(), "{text}");
    let markdown = report("markdown");
    let html = report("html");
    for creator in creators {
        assert!(
            markdown.contains(creator),
            "{creator} is not in:\n{markdown}"
        );
        let function = creator.trim_start_matches("created by ");
        assert!(html.contains(function), "{function} is not in:\n{html}");
    }
}

#[test]
fn text_group_headers_end_with_ids() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "manygoroutines");
    let core = crash.core.to_string_lossy();
    let output = gocrash(&["report", &core, "--no-earlier"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let groups: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.split_once(" goroutines [")
                .is_some_and(|(count, _)| count.parse::<u64>().is_ok())
        })
        .collect();
    assert!(!groups.is_empty(), "{text}");
    for header in groups {
        // As symbolize prints it: `2000 goroutines [chan send]: 19-2018`.
        assert!(header.ends_with(|c: char| c.is_ascii_digit()), "{header}");
    }
}

#[test]
fn markdown_keeps_multiline_panic_value() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "multiline");
    let core = crash.core.to_string_lossy();
    let output = gocrash(&["report", &core, "--format", "markdown", "--no-earlier"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("### Go crash: `panic: invalid configuration:"),
        "{text}"
    );
    assert!(text.contains("tls without a certificate"), "{text}");
    assert!(text.contains("out of range"), "{text}");
}

#[test]
fn cgo_fault_shows_c_frames() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "cgosegv");
    let core = crash.core.to_string_lossy();
    let output = gocrash(&["report", &core, "--json", "--no-earlier"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let first = &report["crashing"]["frames"][0];
    assert_eq!(first["function"], "packet_length (C)", "{report}");
    assert_eq!(first["line"], 29, "{report}");
    assert!(
        first["source"].is_object(),
        "the C source line is shown: {first}"
    );
}

/// Returns the first frame of package main of a report's crashing goroutine.
fn first_main_frame(report: &Value) -> &Value {
    report["crashing"]["frames"]
        .as_array()
        .and_then(|frames| {
            frames.iter().find(|f| {
                f["function"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("main."))
            })
        })
        .unwrap_or_else(|| panic!("no frame of package main: {report}"))
}

#[test]
fn source_root_maps_trimpath_module() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .rfind(|c| c.program == "nilpointer" && c.mode == "stripped")
        .expect("a stripped nilpointer crash");
    let core = crash.core.to_string_lossy();

    let (report, _, err) = json_report(&["report", &core, "--json", "--no-earlier"]);
    let frame = first_main_frame(&report);
    assert_eq!(
        frame["file"], "gocrash.test/corpus/nilpointer/main.go",
        "{err}"
    );
    assert_eq!(frame["source"]["result"], "not_found", "{frame}");

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/programs/nilpointer");
    let root = root.to_string_lossy();
    let (report, _, err) = json_report(&[
        "report",
        &core,
        "--json",
        "--no-earlier",
        "--source-root",
        &root,
    ]);
    let frame = first_main_frame(&report);
    let source = &frame["source"];
    assert_eq!(source["result"], "found", "{source} {err}");
    assert_eq!(source["path"], format!("{root}/main.go"));
    assert_eq!(source["marked_line"], frame["line"]);

    let module_root = format!("gocrash.test/corpus/nilpointer={root}");
    let (report, _, _) = json_report(&[
        "report",
        &core,
        "--json",
        "--no-earlier",
        "--source-root",
        &module_root,
    ]);
    assert_eq!(first_main_frame(&report)["source"]["result"], "found");
}

#[test]
fn info_shows_report_signature() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = newest_default(&manifest, "typeassert");
    let selection = crash_match(crash);
    let (report, _, err) = json_report(&["report", &selection, "--json", "--no-earlier"]);
    let id = report["signature"]["id"].as_str().expect("signature id");
    assert_eq!(id.len(), 16, "{err}");
    let (info, code, err) = json_report(&["info", &selection, "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(info["signature"]["id"], id);
    let output = gocrash(&["info", &selection]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("Signature:") && l.contains(id)),
        "{text}"
    );
}

#[test]
fn unmatched_crash_exits_3() {
    let output = gocrash(&["report", "4294967295", "--json"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}

#[test]
fn output_directory_is_rejected_before_work() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let target = dir.path().join("reports");
    std::fs::create_dir(&target).expect("directory is created");
    let output = gocrash(&["report", "-o", target.to_str().expect("UTF-8 path")]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "gocrash: cannot write the report to {}: it is a directory; give a file path\n",
            target.display()
        )
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("directory is readable")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("reports")]);
}

#[test]
fn report_file_is_private() {
    use std::os::unix::fs::PermissionsExt;

    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer")
        .expect("the manifest has a nilpointer crash");
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("report.txt");
    // Named by its core file: a later crash may have reused its PID.
    let core = crash.core.to_str().expect("UTF-8 path");
    let output = gocrash(&["report", core, "-o", path.to_str().expect("UTF-8 path")]);
    assert!(
        output
            .status
            .code()
            .is_some_and(|code| code == 0 || code == PARTIAL),
        "{}",
        stderr(&output)
    );
    let mode = std::fs::metadata(&path)
        .expect("the report exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn missing_source_root_is_usage_error() {
    for root in ["/nonexistent/src", "example.com/app=/nonexistent/src"] {
        let output = gocrash(&["report", "--source-root", root]);
        assert_eq!(output.status.code(), Some(2), "{root}");
        assert_eq!(
            stderr(&output),
            format!(
                "gocrash: invalid --source-root {root:?}: /nonexistent/src is not a directory\n"
            )
        );
    }
}
