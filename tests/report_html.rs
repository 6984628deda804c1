//! The HTML report loaded in Debian's headless Chromium.
//!
//! The DOM Chromium builds from the report of each corpus program must show
//! the headline and the crashing frame. A Go program built here panics with
//! a message that carries a `<script>` element and an `<img onerror>`
//! handler, and crashes through the capture pipeline (journald and
//! systemd-coredump). Its report must show that markup as text. No script
//! or image element from the crash may exist, and the page title must not
//! have been changed. A screenshot of each report checked is kept
//! under `target/report-screenshots/` for people to look at; the tests
//! print its path.
//!
//! The tests skip with a message without Chromium, a corpus manifest or the
//! capture pipeline, and fail instead when `CI=true`.

mod gobuild;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ingest::select::{CrashArg, Selector};
use support::{ExpectedFacts, Manifest};

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
const CHROMIUM: &str = "chromium";
const UNIT: &str = "gocrash-test-report-html.service";
/// How long systemd-coredump may take to write its journal entry.
const COREDUMP_WAIT: Duration = Duration::from_secs(120);

const HOSTILE_PROGRAM: &str = r#"package main

import "os"

//go:noinline
func renderTemplate(name string) {
	panic("cannot render " + name + ": <script>document.title='pwned'</script> " +
		`<img src=x onerror="document.title='pwned'">`)
}

func main() {
	renderTemplate(os.Getenv("TEMPLATE_NAME") + "home.html")
}
"#;
const SCRIPT_PAYLOAD: &str = "<script>document.title='pwned'</script>";
const IMG_PAYLOAD: &str = r#"<img src=x onerror="document.title='pwned'">"#;

fn on_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Reports whether Chromium runs, and prints why on stderr when it does not.
fn chromium_available() -> bool {
    let runs = Command::new(CHROMIUM)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        assert!(
            !on_ci(),
            "{CHROMIUM} does not run; scripts/install-deps installs it"
        );
        eprintln!("skipped: {CHROMIUM} does not run; scripts/install-deps installs it");
    }
    runs
}

/// Runs headless Chromium on a file with a throwaway profile.
fn chromium(file: &Path, args: &[&str]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(CHROMIUM)
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", file.display()))
        .stdin(Stdio::null())
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium {args:?} {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn dump_dom(file: &Path) -> String {
    let output = chromium(file, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        dom.contains("<h1"),
        "the DOM of {} has no headline:\n{dom}",
        file.display()
    );
    dom
}

/// Takes a screenshot of the report for people and prints where it is.
fn screenshot(file: &Path, name: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("report-screenshots"))
        .unwrap_or_else(|| PathBuf::from("report-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    chromium(
        file,
        &[
            &format!("--screenshot={}", path.display()),
            "--window-size=1280,2000",
        ],
    );
    assert!(path.exists(), "no screenshot at {}", path.display());
    println!("screenshot: {}", path.display());
}

/// Undoes the escaping Chromium applies when it serialises text nodes and
/// attribute values.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Returns the text inside the first element that starts with `open` and
/// ends with `close`, unescaped.
fn element_text(dom: &str, open: &str, close: &str) -> Option<String> {
    let start = dom.find(open)?;
    let after = dom[start..].find('>')? + start + 1;
    let end = dom[after..].find(close)? + after;
    Some(unescape(&dom[after..end]))
}

/// Returns the unescaped text of every `<span class="function">` in the
/// element that starts with `open`.
fn functions_in(dom: &str, open: &str) -> Vec<String> {
    let Some(start) = dom.find(open) else {
        return Vec::new();
    };
    let section = &dom[start..];
    let section = &section[..section.find("</section>").unwrap_or(section.len())];
    section
        .split("<span class=\"function\">")
        .skip(1)
        .filter_map(|rest| rest.split("</span>").next())
        .map(unescape)
        .collect()
}

fn write_report(crash: &str, file: &Path, extra: &[&str]) -> Output {
    let output = Command::new(GOCRASH)
        .args(["report", crash, "--format", "html", "--no-earlier", "-o"])
        .arg(file)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("gocrash runs");
    assert!(
        file.exists(),
        "gocrash report {crash} wrote no file: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn corpus_reports_render_in_chromium() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    if !chromium_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let programs: std::collections::BTreeSet<&str> = manifest
        .crashes
        .iter()
        .map(|c| c.program.as_str())
        .collect();
    let mut checked = 0;
    for program in programs {
        let crash = manifest
            .crashes
            .iter()
            .rfind(|c| c.program == program && c.mode == "default")
            .unwrap_or_else(|| panic!("no default crash of {program}"));
        let facts = ExpectedFacts::load(&crash.expected);
        let file = dir.path().join(format!("{program}.html"));
        write_report(&crash.core.to_string_lossy(), &file, &[]);
        let dom = dump_dom(&file);

        let headline = element_text(&dom, "<h1 id=\"headline\"", "</h1>").unwrap_or_default();
        let first_line = headline.lines().next().unwrap_or_default();
        assert!(
            facts.headline_matches(first_line),
            "{program}/{}: the DOM's headline is {first_line:?}, expected {:?}",
            crash.toolchain,
            facts.headline
        );

        // A deadlock or a signal sent from outside has no crashing
        // goroutine; its first goroutine is the first group's.
        let mut functions = functions_in(&dom, "<section id=\"crashing\"");
        if functions.is_empty() {
            let groups =
                element_text(&dom, "<section id=\"groups\"", "</section>").unwrap_or_default();
            functions = groups
                .lines()
                .map(|l| l.trim().to_owned())
                .filter(|l| l.starts_with("main."))
                .collect();
        }
        let frame = functions.iter().find(|f| f.starts_with("main."));
        assert!(
            frame.is_some_and(|f| facts.first_frame_matches(f)),
            "{program}/{}: the DOM's first program frame is {frame:?}, expected {}",
            crash.toolchain,
            facts.first_program_frame
        );
        if program == "nilpointer" {
            screenshot(&file, "nilpointer");
        }
        checked += 1;
    }
    assert!(checked > 0, "no corpus crash was checked");
}

/// Reports whether journald and systemd-coredump are running, and prints
/// why on stderr when they are not.
fn pipeline_running() -> bool {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/capture-pipeline");
    let running = Command::new(script)
        .arg("status")
        .output()
        .is_ok_and(|o| o.status.success());
    if !running {
        assert!(!on_ci(), "the capture pipeline is not running");
        eprintln!(
            "skipped: the capture pipeline is not running; run scripts/capture-pipeline start"
        );
    }
    running
}

fn newest_toolchain(manifest: &Manifest) -> gobuild::Toolchain {
    let toolchain = manifest
        .toolchains
        .last()
        .expect("the manifest lists toolchains");
    gobuild::Toolchain {
        version: toolchain.name.clone(),
        go: toolchain.go.clone(),
    }
}

#[test]
fn crash_markup_stays_text() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    if !chromium_available() || !pipeline_running() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    gobuild::write_files(
        dir.path(),
        &[
            ("main.go", HOSTILE_PROGRAM),
            ("go.mod", "module example.com/reporthtml\n\ngo 1.19\n"),
        ],
    );
    let binary = dir.path().join("reporthtml");
    newest_toolchain(&manifest).build(dir.path(), &binary, &[], &[]);

    let pid = support::crash_in_unit(UNIT, "report-html-test", &binary);
    let selector = Selector::default();
    let deadline = Instant::now() + COREDUMP_WAIT;
    loop {
        match selector.newest(&[CrashArg::Pid(pid.into())]) {
            Ok(_) => break,
            Err(error) if error.is_no_match() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(500))
            }
            Err(error) => panic!("no coredump entry for PID {pid}: {error}"),
        }
    }

    let file = dir.path().join("report.html");
    let output = write_report(&pid.to_string(), &file, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(
        html.contains("<meta http-equiv=\"Content-Security-Policy\""),
        "no Content-Security-Policy"
    );
    // Source lines may mention URLs as text; no element may load one.
    assert!(
        !html.contains(" href=\"") && !html.contains(" src=\""),
        "an element links to a URL"
    );

    let dom = dump_dom(&file);
    let headline = element_text(&dom, "<h1 id=\"headline\"", "</h1>").unwrap_or_default();
    assert!(headline.contains(SCRIPT_PAYLOAD), "headline: {headline}");
    assert!(headline.contains(IMG_PAYLOAD), "headline: {headline}");
    let lower = dom.to_ascii_lowercase();
    assert!(
        !lower.contains("<script"),
        "a script element exists:\n{dom}"
    );
    assert!(!lower.contains("<img"), "an image element exists:\n{dom}");
    let title = element_text(&dom, "<title", "</title>").unwrap_or_default();
    assert_ne!(title, "pwned");
    assert!(
        title.starts_with("Go crash: panic: cannot render home.html"),
        "title: {title}"
    );
    let functions = functions_in(&dom, "<section id=\"crashing\"");
    assert!(
        functions.iter().any(|f| f == "main.renderTemplate"),
        "{functions:?}"
    );
    screenshot(&file, "crash-markup");
}
