//! Crash signatures over the whole corpus: every program, built by every
//! toolchain in every mode, must have one signature computed from its crash
//! text, and no two programs may share one.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use ingest::signature::{compute, CrashInput, Signature};

/// Computes the signature of every corpus crash text, by program, then by
/// `toolchain/mode`.
fn corpus_signatures(manifest: &support::Manifest) -> BTreeMap<String, BTreeMap<String, Signature>> {
    let mut by_program: BTreeMap<String, BTreeMap<String, Signature>> = BTreeMap::new();
    for crash in &manifest.crashes {
        let text = std::fs::read_to_string(&crash.stderr)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", crash.stderr.display()));
        let signature = compute(&CrashInput::from_traceback(&ingest::traceback::parse(&text)));
        by_program
            .entry(crash.program.clone())
            .or_default()
            .insert(format!("{}/{}", crash.toolchain, crash.mode), signature);
    }
    by_program
}

#[test]
fn each_program_has_one_text_signature() {
    let Some(manifest) = support::manifest() else { return };
    let by_program = corpus_signatures(&manifest);
    assert!(!by_program.is_empty(), "the manifest lists no crashes");

    let mut failures = Vec::new();
    for (program, signatures) in &by_program {
        let ids: BTreeSet<&str> = signatures.values().map(|s| s.id.as_str()).collect();
        if ids.len() != 1 {
            let mut lines = vec![format!("{program}: {} signatures", ids.len())];
            for (build, signature) in signatures {
                lines.push(format!("  {build}: {} {} {:?}", signature.id, signature.title, signature.frames));
            }
            failures.push(lines.join("\n"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn programs_have_distinct_signatures() {
    let Some(manifest) = support::manifest() else { return };
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
    assert!(shared.is_empty(), "programs sharing a signature:\n{}", shared.join("\n"));
    eprintln!("{} programs, {} signatures", by_program.len(), programs_by_id.len());
}

#[test]
fn titles_name_expected_first_frame() {
    let Some(manifest) = support::manifest() else { return };
    let by_program = corpus_signatures(&manifest);
    for crash in &manifest.crashes {
        let facts = support::ExpectedFacts::load(&crash.expected);
        let signature = &by_program[&crash.program][&format!("{}/{}", crash.toolchain, crash.mode)];
        assert!(!signature.title.is_empty());
        assert!(!signature.frames.is_empty(), "{}: no frames in {:?}", crash.program, signature);
        eprintln!("{:16} {} {}", crash.program, signature.id, signature.title);
        // A deadlock and an external signal are not titled by the first
        // goroutine's frame, and closure names are normalised.
        if facts.kind == "panic" || facts.kind == "fatal" {
            let first = &signature.frames[0].function;
            assert!(
                facts.first_frame_matches(first) || facts.first_frame_matches(&first.replace(".func", ".func1")),
                "{} {}/{}: signature starts at {first}, expected {}",
                crash.program,
                crash.toolchain,
                crash.mode,
                facts.first_program_frame
            );
        }
    }
}
