//! Crash signatures over the whole corpus: every program, built by every
//! toolchain in every mode, must have one signature computed from its crash
//! text, no two programs may share one, and the signature computed from each
//! core must be the one of its text.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use ingest::signature::{compute, CrashInput, Signature};
use symbolizer::binary::Binary;
use symbolizer::core::{Core, CoreOptions};
use symbolizer::goroutines::Process;

/// Computes the signature of every corpus crash text, by program, then by
/// `toolchain/mode`.
fn corpus_signatures(
    manifest: &support::Manifest,
) -> BTreeMap<String, BTreeMap<String, Signature>> {
    let mut by_program: BTreeMap<String, BTreeMap<String, Signature>> = BTreeMap::new();
    for crash in &manifest.crashes {
        let text = std::fs::read_to_string(&crash.stderr)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", crash.stderr.display()));
        let signature = compute(&CrashInput::from_traceback(&ingest::traceback::parse(
            &text,
        )));
        by_program
            .entry(crash.program.clone())
            .or_default()
            .insert(format!("{}/{}", crash.toolchain, crash.mode), signature);
    }
    by_program
}

#[test]
fn each_program_has_one_text_signature() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let by_program = corpus_signatures(&manifest);
    assert!(!by_program.is_empty(), "the manifest lists no crashes");

    let mut failures = Vec::new();
    for (program, signatures) in &by_program {
        let ids: BTreeSet<&str> = signatures.values().map(|s| s.id.as_str()).collect();
        if ids.len() != 1 {
            let mut lines = vec![format!("{program}: {} signatures", ids.len())];
            for (build, signature) in signatures {
                lines.push(format!(
                    "  {build}: {} {} {:?}",
                    signature.id, signature.title, signature.frames
                ));
            }
            failures.push(lines.join("\n"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn programs_have_distinct_signatures() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let by_program = corpus_signatures(&manifest);

    let mut programs_by_id: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (program, signatures) in &by_program {
        for signature in signatures.values() {
            let programs = programs_by_id.entry(signature.id.as_str()).or_default();
            if !programs.contains(&program.as_str()) {
                programs.push(program);
            }
        }
    }
    let shared: Vec<String> = programs_by_id
        .iter()
        .filter(|(_, programs)| programs.len() > 1)
        .map(|(id, programs)| format!("{id}: {}", programs.join(", ")))
        .collect();
    assert!(
        shared.is_empty(),
        "programs sharing a signature:\n{}",
        shared.join("\n")
    );
    eprintln!(
        "{} programs, {} signatures",
        by_program.len(),
        programs_by_id.len()
    );
}

#[test]
fn titles_name_expected_first_frame() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let by_program = corpus_signatures(&manifest);
    let mut printed = BTreeSet::new();
    for crash in &manifest.crashes {
        let facts = support::ExpectedFacts::load(&crash.expected);
        let signature = &by_program[&crash.program][&format!("{}/{}", crash.toolchain, crash.mode)];
        assert!(!signature.title.is_empty());
        assert!(
            !signature.frames.is_empty(),
            "{}: no frames in {:?}",
            crash.program,
            signature
        );
        if printed.insert(crash.program.clone()) {
            eprintln!("{:16} {} {}", crash.program, signature.id, signature.title);
        }
        // A deadlock and an external signal are not titled by the first
        // goroutine's frame, and closure names are normalised.
        if facts.kind == "panic" || facts.kind == "fatal" {
            let first = &signature.frames[0].function;
            assert!(
                facts.first_frame_matches(first)
                    || facts.first_frame_matches(&first.replace(".func", ".func1")),
                "{} {}/{}: signature starts at {first}, expected {}",
                crash.program,
                crash.toolchain,
                crash.mode,
                facts.first_program_frame
            );
        }
    }
}

/// Returns why the core of a crash cannot give its text's signature yet,
/// for the crashes where the core reader misses a fact the text has.
fn known_core_gap(program: &str, toolchain: &str) -> Option<&'static str> {
    let go126_or_newer = !toolchain.starts_with("1.19.") && toolchain >= "1.26.";
    match program {
        "mapwrites" | "deadlock" if go126_or_newer => {
            Some("the core reader finds no `fatal error:` message in cores of Go 1.26 and later")
        }
        "cgosegv" if toolchain.starts_with("1.19.") => Some(
            "Go 1.19 throws for a fault in C code on the system stack, and the core reader \
             does not read the signal recorded there (g0's sig)",
        ),
        _ => None,
    }
}

#[test]
fn core_signature_matches_text() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let by_program = corpus_signatures(&manifest);

    let mut mismatches = Vec::new();
    let mut matched = 0;
    for crash in &manifest.crashes {
        let options = CoreOptions {
            executable: Some(crash.binary.clone()),
            ..CoreOptions::default()
        };
        let core = Core::open(&crash.core, &options)
            .unwrap_or_else(|err| panic!("cannot open {}: {err}", crash.core.display()));
        let binary = Binary::open(&crash.binary)
            .unwrap_or_else(|err| panic!("cannot open {}: {err}", crash.binary.display()));
        let process = Process::load(&core, &binary)
            .unwrap_or_else(|err| panic!("cannot load {}: {err}", crash.core.display()));
        let from_core = compute(&CrashInput::from_process(&process, &core));
        let from_text = &by_program[&crash.program][&format!("{}/{}", crash.toolchain, crash.mode)];
        if from_core.id == from_text.id {
            matched += 1;
            continue;
        }
        if let Some(reason) = known_core_gap(&crash.program, &crash.toolchain) {
            eprintln!(
                "known gap: {} {}/{}: {reason}",
                crash.program, crash.toolchain, crash.mode
            );
            continue;
        }
        {
            mismatches.push(format!(
                "{} {}/{}: core {} {:?} {:?} / text {} {:?} {:?}",
                crash.program,
                crash.toolchain,
                crash.mode,
                from_core.id,
                from_core.kind,
                from_core.frames,
                from_text.id,
                from_text.kind,
                from_text.frames
            ));
        }
    }
    eprintln!(
        "{matched} of {} cores give their text's signature",
        manifest.crashes.len()
    );
    assert!(matched > 0, "no core gave its text's signature");
    assert!(
        mismatches.is_empty(),
        "{} of {} cores differ from their text:\n{}",
        mismatches.len(),
        manifest.crashes.len(),
        mismatches.join("\n")
    );
}

/// Lines inserted above the crash in the rebuilt program.
const INSERTED_LINES: u32 = 7;

/// Copies a corpus program with blank lines inserted after its package
/// clause, builds it with `toolchain`, runs it and returns its crash text.
///
/// It runs with `GOTRACEBACK=system`, which prints the same goroutines and
/// frames as `crash` but exits instead of aborting, so no core lands in the
/// host's coredump store, where other tests look for the newest crash.
fn rebuild_and_crash(program: &str, toolchain: &support::Toolchain) -> String {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus/programs")
        .join(program);
    let work = tempfile::tempdir().unwrap();
    for name in ["go.mod", "main.go"] {
        let mut text = std::fs::read_to_string(source.join(name)).unwrap();
        if name == "main.go" {
            let blank_lines = "\n".repeat(INSERTED_LINES as usize);
            text = text.replacen("package main\n", &format!("package main\n{blank_lines}"), 1);
        }
        std::fs::write(work.path().join(name), text).unwrap();
    }
    let binary = work.path().join(program);
    let gocache = std::path::PathBuf::from("/var/cache/gocrash/gocache").join(&toolchain.name);
    let build = std::process::Command::new(&toolchain.go)
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(work.path())
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", gocache)
        .env("CGO_ENABLED", "0")
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "go build failed: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let run = std::process::Command::new(&binary)
        .env("GOTRACEBACK", "system")
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(2),
        "the rebuilt {program} exits as a Go panic does"
    );
    String::from_utf8(run.stderr).unwrap()
}

#[test]
fn rebuilt_program_with_inserted_lines_keeps_signature() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let by_program = corpus_signatures(&manifest);
    let original = &by_program["nilpointer"];

    for toolchain in ["1.19.8", "1.27.3"] {
        let recorded = original
            .get(&format!("{toolchain}/default"))
            .unwrap_or_else(|| {
                panic!("the manifest has no default nilpointer crash for {toolchain}")
            });
        let recorded_line = recorded_crash_line(&manifest, toolchain);
        let text = rebuild_and_crash("nilpointer", manifest.toolchain(toolchain));
        let traceback = ingest::traceback::parse(&text);
        let rebuilt_line = traceback.goroutines[0]
            .first_main_frame()
            .and_then(|frame| frame.line);

        assert_eq!(
            rebuilt_line,
            recorded_line.map(|line| line + INSERTED_LINES),
            "{toolchain}: the lines moved"
        );
        let rebuilt = compute(&CrashInput::from_traceback(&traceback));
        assert_eq!(
            rebuilt.id, recorded.id,
            "{toolchain}: {} != {}",
            rebuilt.title, recorded.title
        );
    }
}

/// Returns the line of the first program frame in the recorded crash text.
fn recorded_crash_line(manifest: &support::Manifest, toolchain: &str) -> Option<u32> {
    let crash = manifest
        .crashes
        .iter()
        .find(|c| c.program == "nilpointer" && c.toolchain == toolchain && c.mode == "default")?;
    let text = std::fs::read_to_string(&crash.stderr).ok()?;
    let traceback = ingest::traceback::parse(&text);
    traceback.goroutines.first()?.first_main_frame()?.line
}
