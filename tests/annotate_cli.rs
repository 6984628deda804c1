//! The `gocrash annotate` command line, run as the built binary on the
//! corpus crash texts. Annotations agree with `gocrash resolve`, the SIGQUIT
//! threads' `PC=` with the core, and a PIE's inferred load bias with the
//! core's. The text is unchanged apart from the annotation lines, and
//! hostile input ends with a documented exit code.
//!
//! The help snapshot lives in `tests/snapshots/`; run the tests with
//! `GOCRASH_UPDATE_SNAPSHOTS=1` to rewrite it after a deliberate change.
//! Tests that need corpus crashes skip with a message without a manifest,
//! and fail when `CI=true`.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::Crash;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");
/// What starts every annotation line, after the line end it follows.
const ANNOTATION_START: &[u8] = b"\t# 0x";
/// The programs whose texts print register dumps, signal pcs and C code
/// addresses.
const ADDRESS_PROGRAMS: [&str; 4] = ["cgosegv", "cgoabort", "sigquit", "runtimefault"];

fn gocrash(args: &[&str]) -> Output {
    Command::new(GOCRASH)
        .args(args)
        .output()
        .expect("gocrash runs")
}

fn gocrash_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(GOCRASH)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gocrash starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    // Written from another thread so that a full stdout pipe cannot block
    // both sides.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("gocrash ends");
    writer.join().expect("the stdin writer ends");
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("corpus paths are UTF-8")
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "invalid JSON ({err}); stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Removes every annotation line, with the line end before it.
fn strip_annotations(annotated: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(annotated.len());
    let mut rest = annotated;
    while !rest.is_empty() {
        let line_len = rest
            .iter()
            .position(|byte| *byte == b'\n')
            .map_or(rest.len(), |at| at + 1);
        let (line, after) = rest.split_at(line_len);
        rest = after;
        if line.starts_with(ANNOTATION_START) {
            // The annotated line's end moved after its annotations, so the
            // end before this line goes and this line's own end stays.
            let line_end = if kept.ends_with(b"\r\n") { 2 } else { 1 };
            kept.truncate(kept.len().saturating_sub(line_end));
            let own_end = if line.ends_with(b"\r\n") {
                &line[line.len() - 2..]
            } else if line.ends_with(b"\n") {
                &line[line.len() - 1..]
            } else {
                &[][..]
            };
            kept.extend_from_slice(own_end);
        } else {
            kept.extend_from_slice(line);
        }
    }
    kept
}

#[test]
fn help_matches_snapshot() {
    let output = gocrash(&["annotate", "--help"]);
    assert!(output.status.success(), "{}", stderr(&output));
    support::assert_snapshot(
        "annotate_help.txt",
        &String::from_utf8_lossy(&output.stdout),
    );
}

#[test]
fn strip_removes_only_annotations() {
    let annotated = b"a\r\n\t# 0x1 f (x.go:1)\r\nb\n\t# 0x2 g\n\t# 0x2 h\nc\n\t# 0x3 i";
    assert_eq!(strip_annotations(annotated), b"a\r\nb\nc");
}

/// Corpus crashes of the programs that print bare addresses.
fn address_crashes() -> Option<Vec<Crash>> {
    let manifest = support::manifest()?;
    let crashes: Vec<Crash> = manifest
        .crashes
        .into_iter()
        .filter(|crash| ADDRESS_PROGRAMS.contains(&crash.program.as_str()))
        .collect();
    assert!(
        !crashes.is_empty(),
        "the manifest has no crash of {ADDRESS_PROGRAMS:?}"
    );
    Some(crashes)
}

/// Runs `gocrash annotate --json` on a crash's text with its binary.
fn annotate_json(crash: &Crash, extra: &[&str]) -> Value {
    let mut args = vec![
        "annotate",
        "--json",
        "--binary",
        path_str(&crash.binary),
        path_str(&crash.stderr),
    ];
    args.extend_from_slice(extra);
    let output = gocrash(&args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "annotate on {}: {}",
        crash.stderr.display(),
        stderr(&output)
    );
    json(&output)
}

fn frame_facts(frame: &Value) -> (Value, Value, Value, Value) {
    (
        frame["function"].clone(),
        frame["file"].clone(),
        frame["line"].clone(),
        frame["inlined"].clone(),
    )
}

#[test]
fn annotations_match_resolve() {
    let Some(crashes) = address_crashes() else {
        return;
    };
    let mut compared = 0usize;
    for crash in &crashes {
        let document = annotate_json(crash, &[]);
        let annotations = document["annotations"].as_array().expect("annotations");
        let text = std::fs::read_to_string(&crash.stderr).expect("crash text");
        // A stripped binary has no symbol for C code, so a text whose only
        // bare address is in C gets none.
        if crash.mode != "stripped" && (text.contains("\nPC=") || text.contains("[signal ")) {
            assert!(
                !annotations.is_empty(),
                "no annotation in {}",
                crash.stderr.display()
            );
        }
        if annotations.is_empty() {
            continue;
        }
        let addresses: Vec<&str> = annotations
            .iter()
            .map(|annotation| annotation["address"].as_str().expect("address"))
            .collect();
        let base = document["base"]["address"].as_str().expect("base address");
        let mut args = vec![
            "resolve",
            "--binary",
            path_str(&crash.binary),
            "--inlines",
            "--json",
        ];
        if document["pie"] == Value::Bool(true) {
            args.extend_from_slice(&["--base", base]);
        }
        args.extend_from_slice(&addresses);
        let output = gocrash(&args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "resolve: {}",
            stderr(&output)
        );
        let resolved = json(&output);
        let resolved = resolved.as_array().expect("resolve prints an array");
        assert_eq!(resolved.len(), annotations.len());
        for (annotation, result) in annotations.iter().zip(resolved) {
            let ours: Vec<_> = annotation["frames"]
                .as_array()
                .expect("frames")
                .iter()
                .map(frame_facts)
                .collect();
            let theirs: Vec<_> = result["frames"]
                .as_array()
                .expect("frames")
                .iter()
                .map(frame_facts)
                .collect();
            assert!(!ours.is_empty(), "{annotation}");
            assert_eq!(
                ours,
                theirs,
                "{} line {}",
                crash.stderr.display(),
                annotation["line"]
            );
            assert_eq!(annotation["link_address"], result["link_address"]);
            compared += 1;
        }
    }
    eprintln!(
        "compared {compared} annotations of {} crash texts with resolve",
        crashes.len()
    );
    assert!(compared > 0);
}

#[test]
fn annotation_kinds_found() {
    let Some(crashes) = address_crashes() else {
        return;
    };
    let mut kinds = std::collections::BTreeSet::new();
    let mut registers = std::collections::BTreeSet::new();
    let mut c_sources = 0usize;
    for crash in crashes.iter().filter(|crash| crash.mode == "default") {
        let document = annotate_json(crash, &[]);
        for annotation in document["annotations"].as_array().expect("annotations") {
            kinds.insert(annotation["kind"].as_str().expect("kind").to_string());
            if let Some(register) = annotation["register"].as_str() {
                registers.insert(register.to_string());
            }
            if annotation["source"] == "dwarf" {
                c_sources += 1;
            }
        }
    }
    for kind in ["signal_pc", "signal_bracket_pc", "register"] {
        assert!(kinds.contains(kind), "no {kind} annotation in {kinds:?}");
    }
    assert!(registers.contains("rip"), "{registers:?}");
    // A register besides the pc that points into code: rcx contains the C
    // function cgocall calls.
    assert!(registers.iter().any(|name| name != "rip"), "{registers:?}");
    assert!(c_sources > 0, "no address resolved to C code through DWARF");
}

#[test]
fn text_unchanged_but_annotations() {
    let Some(crashes) = address_crashes() else {
        return;
    };
    for crash in &crashes {
        let input = std::fs::read(&crash.stderr).expect("crash text");
        let output = gocrash(&[
            "annotate",
            "--binary",
            path_str(&crash.binary),
            path_str(&crash.stderr),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        if crash.mode != "stripped" {
            assert!(
                output.stdout.len() > input.len(),
                "{}: nothing annotated",
                crash.stderr.display()
            );
        }
        assert!(
            strip_annotations(&output.stdout) == input,
            "{}: the text differs apart from the annotations",
            crash.stderr.display()
        );
    }
}

/// Serialises a parsed traceback without what annotation lines may change:
/// line numbers, and the warnings about lines the parser does not know.
fn parsed_facts(text: &[u8]) -> Value {
    let traceback = ingest::traceback::parse_bytes(text, &Default::default());
    let mut value = serde_json::to_value(&traceback).expect("traceback serialises");
    fn drop_positions(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("text_line");
                map.remove("warnings");
                map.values_mut().for_each(drop_positions);
            }
            Value::Array(items) => items.iter_mut().for_each(drop_positions),
            _ => {}
        }
    }
    drop_positions(&mut value);
    value
}

#[test]
fn annotated_text_parses_like_input() {
    let Some(crashes) = address_crashes() else {
        return;
    };
    for crash in &crashes {
        let input = std::fs::read(&crash.stderr).expect("crash text");
        let output = gocrash(&[
            "annotate",
            "--binary",
            path_str(&crash.binary),
            path_str(&crash.stderr),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(
            parsed_facts(&output.stdout),
            parsed_facts(&input),
            "{}: the traceback parser reads the annotated text differently",
            crash.stderr.display()
        );
    }
}

/// Runs `gocrash symbolize --json` on a crash's core. A damaged core
/// (exit code 4) still lists the threads and the load bias.
fn symbolize_json(crash: &Crash) -> Value {
    let output = gocrash(&["symbolize", "--json", path_str(&crash.core)]);
    assert!(
        matches!(output.status.code(), Some(0 | 4)),
        "symbolize {}: {}",
        crash.core.display(),
        stderr(&output)
    );
    json(&output)
}

/// Returns the M id of a `PC=0x... m=N sigcode=N` line.
fn m_of_pc_line(line: &str) -> Option<u64> {
    line.split(' ')
        .find_map(|field| field.strip_prefix("m="))
        .and_then(|id| id.parse().ok())
}

#[test]
fn sigquit_thread_pcs_match_core() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crashes: Vec<&Crash> = manifest
        .crashes
        .iter()
        .filter(|crash| crash.program == "sigquit")
        .collect();
    assert!(!crashes.is_empty(), "the manifest has no sigquit crash");
    let mut checked = 0usize;
    for crash in crashes {
        let document = annotate_json(crash, &[]);
        let core = symbolize_json(crash);
        let text = std::fs::read_to_string(&crash.stderr).expect("crash text");
        let lines: Vec<&str> = text.lines().collect();
        let mut sections = 0usize;
        for annotation in document["annotations"].as_array().expect("annotations") {
            if annotation["kind"] != "signal_pc" {
                continue;
            }
            sections += 1;
            let number = annotation["line"].as_u64().expect("line") as usize;
            let m = m_of_pc_line(lines[number - 1]).expect("a PC= line names its M");
            let address = annotation["address"].as_str().expect("address");
            let function = annotation["frames"]
                .as_array()
                .and_then(|frames| frames.last())
                .map(|frame| frame["function"].clone())
                .expect("a physical frame");
            let thread = core["threads"]
                .as_array()
                .expect("threads")
                .iter()
                .find(|thread| thread["m"]["id"].as_u64() == Some(m))
                .unwrap_or_else(|| {
                    panic!("{}: no thread of M {m} in the core", crash.core.display())
                });
            // The thread printed its section from the signal handler, so
            // the core shows the interrupted pc in the signal context.
            let interrupted = thread["frames"]
                .as_array()
                .expect("frames")
                .iter()
                .find(|frame| frame["found_by"] == "signal_context" && frame["pc"] == address)
                .unwrap_or_else(|| {
                    panic!(
                        "{}: M {m} has no signal context at {address}",
                        crash.core.display()
                    )
                });
            assert_eq!(
                interrupted["function"],
                function,
                "{} M {m}",
                crash.stderr.display()
            );
            checked += 1;
        }
        assert!(
            sections > 1,
            "{}: fewer than two thread sections",
            crash.stderr.display()
        );
    }
    eprintln!("checked {checked} thread sections against their cores");
}

#[test]
fn pie_base_inferred_like_core() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crashes: Vec<&Crash> = manifest
        .crashes
        .iter()
        .filter(|crash| crash.mode == "pie" && ADDRESS_PROGRAMS.contains(&crash.program.as_str()))
        .collect();
    assert!(!crashes.is_empty(), "the manifest has no PIE crash");
    for crash in crashes {
        let document = annotate_json(crash, &[]);
        let base = &document["base"];
        assert_eq!(base["source"], "inferred");
        assert!(base["agreeing_frames"].as_u64().expect("count") >= 3);

        let core = symbolize_json(crash);
        assert_eq!(
            base["load_bias"],
            core["binary"]["load_bias"],
            "{}",
            crash.stderr.display()
        );

        // --base with the same address gives the same annotations.
        let address = base["address"].as_str().expect("address");
        let given = annotate_json(crash, &["--base", address]);
        assert_eq!(given["base"]["source"], "argument");
        assert_eq!(given["annotations"], document["annotations"]);
    }
}

#[test]
fn base_argument_overrides_inference() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let Some(crash) = manifest
        .crashes
        .iter()
        .find(|crash| crash.mode == "pie" && crash.program == "cgosegv")
    else {
        panic!("the manifest has no PIE crash of cgosegv");
    };
    let inferred = annotate_json(crash, &[]);
    let address = inferred["base"]["address"].as_str().expect("address");
    let value = u64::from_str_radix(address.trim_start_matches("0x"), 16).expect("hex");
    let wrong = format!("0x{:x}", value + 0x10_0000);
    let output = gocrash(&[
        "annotate",
        "--json",
        "--binary",
        path_str(&crash.binary),
        "--base",
        &wrong,
        path_str(&crash.stderr),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document = json(&output);
    assert_eq!(document["base"]["source"], "argument");
    assert_eq!(document["base"]["address"], wrong.as_str());
    assert_eq!(document["base"]["agreeing_frames"], 0);
    assert!(
        stderr(&output).contains("the binary that printed the text"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn pie_without_frames_asks_for_base() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let Some(crash) = manifest.crashes.iter().find(|crash| crash.mode == "pie") else {
        panic!("the manifest has no PIE crash");
    };
    let output = gocrash_with_stdin(
        &["annotate", "--binary", path_str(&crash.binary)],
        b"PC=0x55d6ee4eed6c m=0 sigcode=0\n",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("pass --base ADDR"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_binary_is_an_error() {
    let output = gocrash_with_stdin(&["annotate"], b"PC=0x401000 m=0 sigcode=0\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("pass --binary BIN"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn hostile_input_passes_through() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let Some(crash) = manifest
        .crashes
        .iter()
        .find(|crash| crash.mode == "default" && crash.program == "cgosegv")
    else {
        panic!("the manifest has no default crash of cgosegv");
    };
    let binary = path_str(&crash.binary);

    let mut garbage = Vec::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..64 * 1024 {
        // xorshift64: reproducible bytes of every value, NUL and 0xff too.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        garbage.push(state as u8);
    }
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("binary garbage", garbage, 0),
        (
            "maximum address",
            b"PC=0xffffffffffffffff m=0 sigcode=0\nrip    0xffffffffffffffff\nrax    0xffffffffffffffff\n".to_vec(),
            0,
        ),
        (
            "overflowing address",
            b"PC=0x1ffffffffffffffff m=0 sigcode=0\nrip    0x10000000000000000\n".to_vec(),
            0,
        ),
        (
            "long line",
            [b"rip    0x".as_slice(), &vec![b'4'; 1 << 20], b"\nrip    0x401000\n"].concat(),
            4,
        ),
        ("invalid UTF-8 around a pc", b"\xff\xfe\nrip    0x401000\n\x80".to_vec(), 0),
    ];
    for (name, input, code) in cases {
        let output = gocrash_with_stdin(&["annotate", "--binary", binary], &input);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{name}: {}",
            stderr(&output)
        );
        assert!(
            strip_annotations(&output.stdout) == input,
            "{name}: the text differs apart from the annotations"
        );
        let output = gocrash_with_stdin(&["annotate", "--json", "--binary", binary], &input);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{name} --json: {}",
            stderr(&output)
        );
        json(&output);
    }

    let output = gocrash_with_stdin(
        &["annotate", "--json", "--binary", binary],
        b"PC=0xffffffffffffffff m=0 sigcode=0\n",
    );
    let document = json(&output);
    assert_eq!(document["unresolved"][0]["address"], "0xffffffffffffffff");
    assert_eq!(document["annotations"], Value::Array(vec![]));
}

#[test]
fn crash_selected_from_journal() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let Some(crash) = manifest
        .crashes
        .iter()
        .find(|crash| crash.mode == "default" && crash.program == "cgosegv")
    else {
        panic!("the manifest has no default crash of cgosegv");
    };
    // The core file's journal entry names the executable, so no --binary.
    let output = gocrash(&["annotate", "--json", "--crash", path_str(&crash.core)]);
    if stderr(&output).contains("cannot select the crash from the journal") {
        eprintln!("skipped: the journal cannot be read: {}", stderr(&output));
        return;
    }
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document = json(&output);
    assert_eq!(document["binary"], path_str(&crash.binary));
    assert!(!document["annotations"]
        .as_array()
        .expect("annotations")
        .is_empty());

    // Another build is refused by the build IDs in the core, unless forced.
    let other = manifest
        .crashes
        .iter()
        .find(|c| c.mode == "default" && c.program == "nilmap")
        .expect("the manifest has a default crash of nilmap");
    let args = [
        "annotate",
        "--json",
        "--crash",
        path_str(&crash.core),
        "--binary",
        path_str(&other.binary),
    ];
    let output = gocrash(&args);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let expected = format!(
        "{} is not the build that crashed: it has Go build ID ",
        other.binary.display()
    );
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("or --force to use this one anyway"),
        "{}",
        stderr(&output)
    );
    let forced = gocrash(&[&args[..], &["--force"]].concat());
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert!(
        stderr(&forced).contains("--force: using ")
            && stderr(&forced).contains("the annotations may be wrong"),
        "{}",
        stderr(&forced)
    );
}

#[test]
fn core_given_as_text_fails_with_hint() {
    // The first bytes of a plain core (an ELF header) and of a compressed
    // one (a zstd frame's magic).
    for (input, kind) in [
        (
            &b"\x7fELF\x02\x01\x01\0rest of a core"[..],
            "an ELF file, such as a core",
        ),
        (
            &b"\x28\xb5\x2f\xfd\x04\x58rest"[..],
            "a zstd stream, such as a compressed core",
        ),
    ] {
        let output = gocrash_with_stdin(&["annotate", "--binary", GOCRASH], input);
        assert_eq!(output.status.code(), Some(1), "{kind}");
        assert!(output.stdout.is_empty(), "{kind}");
        assert_eq!(
            stderr(&output),
            format!(
                "gocrash: stdin is {kind}, not crash text; `gocrash symbolize FILE` rebuilds \
                 the goroutines of a core\n"
            )
        );
    }
}

#[test]
fn long_line_warning_uses_message_form() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let binary = &manifest
        .crashes
        .first()
        .expect("the manifest has crashes")
        .binary;
    let mut input = vec![b'x'; 70_000];
    input.extend_from_slice(b"\nmain.main()\n");
    let output = gocrash_with_stdin(&["annotate", "--binary", path_str(binary)], &input);
    assert!(output.status.code().is_some(), "annotate ends");
    assert_eq!(
        stderr(&output),
        "gocrash: warning: lines longer than 65536 bytes were written back without being \
         scanned long_lines=1\n"
    );
    assert_eq!(output.stdout, input);
}

/// Text copied with `journalctl -o short` carries a prefix on every line,
/// which is looked past: the same addresses are annotated, under the same
/// lines, and the load address of a PIE is still inferred.
#[test]
fn journalctl_prefix_is_looked_past() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "cgosegv" && c.mode == "pie")
        .expect("the manifest has a PIE cgosegv crash");
    let plain = annotate_json(crash, &[]);
    let text = std::fs::read_to_string(&crash.stderr).expect("read the crash text");
    let prefixed: String = text
        .lines()
        .map(|line| format!("Dec 05 18:42:15 host cgosegv[14263]: {line}\n"))
        .collect();
    let output = gocrash_with_stdin(
        &["annotate", "--json", "--binary", path_str(&crash.binary)],
        prefixed.as_bytes(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let document = json(&output);
    assert!(
        !plain["annotations"]
            .as_array()
            .expect("annotations")
            .is_empty(),
        "{plain}"
    );
    assert_eq!(document["annotations"], plain["annotations"]);
    assert_eq!(document["base"], plain["base"]);
}
