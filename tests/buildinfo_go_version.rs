//! `gocrash buildinfo BIN` prints what `go version -m BIN` prints, byte for
//! byte, when the go command is the toolchain that built BIN. Its JSON
//! carries the build IDs that `go tool buildid` and `readelf -n` show.
//!
//! The corpus test covers every binary in the corpus manifest. The fresh
//! build test builds small programs with every installed toolchain, in the
//! modes the manifest lacks (cgo, a git checkout, replaced modules, quoted
//! ldflags), so the comparison holds before the corpus exists too.

mod gobuild;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gobuild::Toolchain;
use serde_json::Value;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");

fn gocrash(args: &[&str], binary: &Path) -> Output {
    Command::new(GOCRASH)
        .args(args)
        .arg(binary)
        .output()
        .expect("gocrash runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `go version -m` and `gocrash buildinfo` on `binary` and returns both
/// outputs, after checking that go succeeded and printed something.
fn both_outputs(go: &Toolchain, binary: &Path) -> (String, String) {
    let dir = binary.parent().unwrap_or(Path::new("/"));
    let expected = go.run(
        dir,
        &["version", "-m", binary.to_str().expect("UTF-8 path")],
    );
    assert!(
        expected.status.success(),
        "go {} version -m {} failed: {}",
        go.version,
        binary.display(),
        text(&expected.stderr)
    );
    let actual = gocrash(&["buildinfo"], binary);
    assert!(
        actual.status.success(),
        "gocrash buildinfo {} failed: {}",
        binary.display(),
        text(&actual.stderr)
    );
    let expected = text(&expected.stdout);
    assert!(
        expected.starts_with(&format!("{}: go1.", binary.display())),
        "go printed {expected:?}"
    );
    (expected, text(&actual.stdout))
}

/// Checks the JSON build IDs against `go tool buildid` and `readelf -n`.
fn check_build_ids(go: &Toolchain, binary: &Path, label: &str) {
    let output = gocrash(&["buildinfo", "--json"], binary);
    assert!(
        output.status.success(),
        "{label}: gocrash --json failed: {}",
        text(&output.stderr)
    );
    let document: Value = serde_json::from_slice(&output.stdout).expect("gocrash prints JSON");

    let dir = binary.parent().unwrap_or(Path::new("/"));
    let buildid = go.run(
        dir,
        &["tool", "buildid", binary.to_str().expect("UTF-8 path")],
    );
    assert!(
        buildid.status.success(),
        "{label}: go tool buildid failed: {}",
        text(&buildid.stderr)
    );
    let expected_go = text(&buildid.stdout).trim().to_owned();
    assert!(
        !expected_go.is_empty(),
        "{label}: go tool buildid printed nothing"
    );
    assert_eq!(
        document["go_build_id"].as_str(),
        Some(expected_go.as_str()),
        "{label}: Go build ID"
    );

    let expected_gnu = gobuild::readelf_gnu_build_id(binary);
    assert_eq!(
        document["gnu_build_id"].as_str(),
        expected_gnu.as_deref(),
        "{label}: GNU build ID"
    );
}

#[test]
fn corpus_binaries_match_go_version_m() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    assert!(!manifest.builds.is_empty(), "the manifest lists no builds");
    for build in &manifest.builds {
        let label = format!("{} (Go {}, {})", build.program, build.toolchain, build.mode);
        let toolchain = manifest.toolchain(&build.toolchain);
        let go = Toolchain {
            version: build.toolchain.clone(),
            go: toolchain.go.clone(),
        };

        let actual = gocrash(&["buildinfo"], &build.binary);
        assert!(
            actual.status.success(),
            "{label}: gocrash failed: {}",
            text(&actual.stderr)
        );
        let expected = expected_go_version_m(&go, &build.binary, build.twin.as_deref(), &label);
        assert_eq!(
            text(&actual.stdout),
            expected,
            "{label}: buildinfo differs from go version -m"
        );

        check_build_ids(&go, &build.binary, &label);
    }
}

/// Returns what `go version -m` prints for `binary`. Go 1.27 looks for build
/// information only in the `.go.buildinfo` section, so for a binary without
/// section headers the output for its twin is used, renamed.
fn expected_go_version_m(
    go: &Toolchain,
    binary: &Path,
    twin: Option<&Path>,
    label: &str,
) -> String {
    let dir = binary.parent().unwrap_or(Path::new("/"));
    let output = go.run(
        dir,
        &["version", "-m", binary.to_str().expect("UTF-8 path")],
    );
    if output.status.success() {
        return text(&output.stdout);
    }
    let twin =
        twin.unwrap_or_else(|| panic!("{label}: go version -m failed: {}", text(&output.stderr)));
    let (twin_output, _) = both_outputs(go, twin);
    let twin_prefix = format!("{}: ", twin.display());
    let rest = twin_output
        .strip_prefix(&twin_prefix)
        .expect("go prints the path first");
    format!("{}: {rest}", binary.display())
}

const MAIN_GO: &str = r#"package main

import (
	"fmt"

	"example.com/lib"
)

var note = "unset"
var quote = "unset"

func main() { fmt.Println(lib.Greeting(), note, quote) }
"#;

const APP_GO_MOD: &str = "module example.com/app\n\ngo 1.19\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ./lib\n";
const LIB_GO_MOD: &str = "module example.com/lib\n\ngo 1.19\n";
const LIB_GO: &str = "package lib\n\nfunc Greeting() string { return \"hello\" }\n";

const CGO_MAIN_GO: &str = r#"package main

/*
static int twice(int x) { return 2 * x; }
*/
import "C"

import "fmt"

func main() { fmt.Println(int(C.twice(21))) }
"#;

/// One way to build a test program: the source tree (a directory name that
/// `write_sources` creates), `go build` arguments and environment.
struct Variant {
    name: &'static str,
    source: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "default",
        source: "app",
        args: &[],
        env: &[],
    },
    Variant {
        name: "trimpath",
        source: "app",
        args: &["-trimpath"],
        env: &[],
    },
    Variant {
        name: "stripped",
        source: "app",
        args: &["-trimpath", "-ldflags=-s -w"],
        env: &[],
    },
    Variant {
        name: "pie",
        source: "app",
        args: &["-buildmode=pie"],
        env: &[],
    },
    Variant {
        name: "nocgo",
        source: "app",
        args: &[],
        env: &[("CGO_ENABLED", "0")],
    },
    Variant {
        name: "quoted-ldflags",
        source: "app",
        args: &["-ldflags=-X 'main.note=two words' -X main.quote=\"x\""],
        env: &[],
    },
    Variant {
        name: "cgo",
        source: "cgo",
        args: &[],
        env: &[("CGO_ENABLED", "1")],
    },
    Variant {
        name: "git-clean",
        source: "git",
        args: &[],
        env: &[],
    },
];

/// Writes the three source trees into `root`: `app` (a module with a
/// replaced dependency), `cgo` (a module with C code, so the external linker
/// runs) and `git` (`app` committed to a git repository).
fn write_sources(root: &Path) {
    for source in ["app", "git"] {
        let dir = root.join(source);
        gobuild::write_files(
            &dir,
            &[
                ("go.mod", APP_GO_MOD),
                ("main.go", MAIN_GO),
                ("lib/go.mod", LIB_GO_MOD),
                ("lib/lib.go", LIB_GO),
            ],
        );
    }
    gobuild::write_files(
        &root.join("cgo"),
        &[
            ("go.mod", "module example.com/cgo\n\ngo 1.19\n"),
            ("main.go", CGO_MAIN_GO),
        ],
    );
    let git = root.join("git");
    gobuild::git(&git, &["init", "-q", "."]);
    gobuild::git(&git, &["add", "."]);
    gobuild::git(&git, &["commit", "-q", "-m", "Add the test program"]);
}

#[test]
fn fresh_builds_match_go_version_m() {
    let Some(toolchains) = gobuild::installed_or_skip() else {
        return;
    };
    let root = tempfile::tempdir().expect("temporary directory");
    write_sources(root.path());
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).expect("create bin directory");

    let mut compared = 0;
    for go in &toolchains {
        let mut built: Vec<(String, PathBuf)> = Vec::new();
        for variant in VARIANTS {
            let output = bin.join(format!("{}-{}", variant.name, go.version));
            go.build(
                &root.path().join(variant.source),
                &output,
                variant.args,
                variant.env,
            );
            built.push((variant.name.to_owned(), output));
        }

        // A file the checkout does not track makes the tree modified.
        std::fs::write(root.path().join("git/notes.txt"), "local change\n")
            .expect("write untracked file");
        let modified = bin.join(format!("git-modified-{}", go.version));
        go.build(&root.path().join("git"), &modified, &[], &[]);
        std::fs::remove_file(root.path().join("git/notes.txt")).expect("remove untracked file");
        built.push(("git-modified".to_owned(), modified));

        for (name, binary) in &built {
            let label = format!("{name} (Go {})", go.version);
            let (expected, actual) = both_outputs(go, binary);
            assert_eq!(
                actual, expected,
                "{label}: buildinfo differs from go version -m"
            );
            check_build_ids(go, binary, &label);
            compared += 1;
        }
        check_vcs_settings(go, &built);
        check_no_sections(go, &built[0].1);
    }
    assert_eq!(compared, toolchains.len() * (VARIANTS.len() + 1));
}

/// Checks that the git builds carry `vcs.*` settings, so the comparison
/// covered them.
fn check_vcs_settings(go: &Toolchain, built: &[(String, PathBuf)]) {
    for (name, modified) in [("git-clean", "false"), ("git-modified", "true")] {
        let binary = &built
            .iter()
            .find(|(built_name, _)| built_name == name)
            .expect("git build")
            .1;
        let output = gocrash(&["buildinfo", "--json"], binary);
        let document: Value = serde_json::from_slice(&output.stdout).expect("gocrash prints JSON");
        let settings = document["settings"].as_array().expect("settings array");
        let value = |key: &str| {
            settings
                .iter()
                .find(|setting| setting["key"] == key)
                .and_then(|setting| setting["value"].as_str())
        };
        assert_eq!(value("vcs"), Some("git"), "{name} (Go {}): vcs", go.version);
        assert_eq!(
            value("vcs.modified"),
            Some(modified),
            "{name} (Go {}): vcs.modified",
            go.version
        );
        assert_eq!(
            value("vcs.revision").map(str::len),
            Some(40),
            "{name} (Go {}): vcs.revision",
            go.version
        );
    }
}

/// Strips the section headers from `binary` as the corpus `nosections` mode
/// does and checks that the build information is still found, through the
/// first writable segment.
fn check_no_sections(go: &Toolchain, binary: &Path) {
    let stripped = binary.with_file_name(format!("nosections-{}", go.version));
    let status = Command::new("llvm-objcopy")
        .arg("--strip-sections")
        .arg(binary)
        .arg(&stripped)
        .status()
        .expect("llvm-objcopy runs");
    assert!(status.success(), "llvm-objcopy --strip-sections failed");
    let label = format!("nosections (Go {})", go.version);
    let actual = gocrash(&["buildinfo"], &stripped);
    assert!(
        actual.status.success(),
        "{label}: gocrash failed: {}",
        text(&actual.stderr)
    );
    let expected = expected_go_version_m(go, &stripped, Some(binary), &label);
    assert_eq!(text(&actual.stdout), expected, "{label}: buildinfo differs");
    check_build_ids(go, &stripped, &label);
}

#[test]
fn non_go_binary_fails_with_reason() {
    let output = gocrash(&["buildinfo"], Path::new("/bin/sh"));
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output.stderr);
    assert!(message.starts_with("gocrash: /bin/sh: "), "{message}");
    assert!(message.contains("not a Go binary"), "{message}");
    assert!(output.stdout.is_empty());
}

#[test]
fn missing_file_fails_with_reason() {
    let output = gocrash(&["buildinfo"], Path::new("/nonexistent/gocrash-test"));
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output.stderr);
    assert!(
        message.contains("/nonexistent/gocrash-test: cannot read the file"),
        "{message}"
    );
}

#[test]
fn text_file_fails_with_reason() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not a binary\n").expect("write text file");
    let output = gocrash(&["buildinfo"], &path);
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output.stderr);
    assert!(message.contains("notes.txt"), "{message}");
    assert!(message.contains("invalid ELF header"), "{message}");
}

#[test]
fn damaged_buildinfo_fails_with_reason() {
    let Some(toolchains) = gobuild::installed_or_skip() else {
        return;
    };
    let go = toolchains.last().expect("at least one toolchain");
    let root = tempfile::tempdir().expect("temporary directory");
    write_sources(root.path());
    let binary = root.path().join("app-bin");
    go.build(&root.path().join("app"), &binary, &[], &[]);

    // Overwrite the Go version's uvarint length, right after the 32-byte header.
    let mut bytes = std::fs::read(&binary).expect("read binary");
    let magic = b"\xff Go buildinf:";
    let header = (0..bytes.len())
        .step_by(16)
        .find(|&offset| bytes[offset..].starts_with(magic))
        .expect("the binary has build information");
    bytes[header + 32..header + 43].fill(0xff);
    let damaged = root.path().join("damaged-bin");
    std::fs::write(&damaged, &bytes).expect("write damaged binary");

    let output = gocrash(&["buildinfo"], &damaged);
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output.stderr);
    assert!(
        message.contains(&format!("{}: ", damaged.display())),
        "{message}"
    );
    assert!(message.contains("Go version length"), "{message}");
    assert!(message.contains("not a valid uvarint"), "{message}");
    assert!(
        message.contains(&format!("file offset {:#x}", header + 32)),
        "{message}"
    );
}

#[test]
fn huge_sparse_binary_is_mapped_not_read() {
    let Some(manifest) = support::manifest() else {
        eprintln!("skipped: no corpus manifest");
        return;
    };
    let build = manifest
        .builds
        .iter()
        .find(|b| b.mode == "default")
        .expect("a default build");
    // A copy grown to 64 GiB with a hole: reading it whole would need more
    // memory than the machine has, while the build information sits in the
    // first megabytes.
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("huge");
    std::fs::copy(&build.binary, &path).expect("copy the binary");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open the copy");
    file.set_len(64 << 30).expect("grow the copy");
    drop(file);

    let small = gocrash(&["buildinfo"], &build.binary);
    let huge = gocrash(&["buildinfo"], &path);
    assert_eq!(huge.status.code(), Some(0), "{}", text(&huge.stderr));
    let body = |output: &Output| {
        let out = text(&output.stdout);
        out.split_once('\n').map(|(_, rest)| rest.to_owned())
    };
    assert_eq!(body(&huge), body(&small));
    assert!(body(&huge).is_some_and(|rest| rest.contains("\tpath\t")));
}
