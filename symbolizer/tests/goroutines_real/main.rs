//! Rebuilds goroutines from real cores and compares them with what the
//! runtime printed before it aborted.
//!
//! The program in `tests/programs/states` parks goroutines in many states
//! and crashes in the way its argument names. It is built with every
//! installed Go toolchain (default, stripped and PIE builds), run with
//! `GOTRACEBACK=crash`, and its core is taken from systemd-coredump. Each
//! goroutine the runtime printed must come back with the same id, status,
//! frames (function, file, line, inlined frames included) and creator.
//! Without the toolchains or systemd-coredump the tests skip with a
//! message, and fail when `CI=true`.

mod crash;
mod traceback;

use std::collections::HashMap;

use symbolizer::binary::Binary;
use symbolizer::core::{Core, CoreOptions};
use symbolizer::goroutines::{Goroutine, Process};

use crash::{crashed, Build, Mode};

/// The crash kinds of `tests/programs/states`.
const KINDS: [&str; 9] = [
    "panic",
    "segv",
    "index",
    "value",
    "struct",
    "throw",
    "nested",
    "recovered",
    "deadlock",
];

/// A goroutine's id, status and printed frames (function, file, line).
type GoroutineSummary = (Option<u64>, String, Vec<(String, String, i64)>);

fn load(build: &Build, kind: &str) -> Option<(Process, String)> {
    load_with(build, build, kind)
}

/// Loads the crash of `crashed_build` with the binary of `binary_build`.
fn load_with(crashed_build: &Build, binary_build: &Build, kind: &str) -> Option<(Process, String)> {
    let run = crashed(crashed_build, kind)?;
    let core = Core::open(&run.core, &CoreOptions::default()).expect("the core opens");
    let binary = Binary::open(&binary_build.binary).expect("the binary opens");
    let process =
        Process::load(&core, &binary).unwrap_or_else(|e| panic!("{}: {e:?}", crashed_build.name()));
    Some((process, run.stderr))
}

/// The frames the runtime prints for `goroutine`: its walk from the
/// printed start, every inlined frame, up to the goroutine's own stack end.
fn printed_frames(goroutine: &Goroutine) -> Vec<(String, String, i64)> {
    let Some(walk) = &goroutine.walk else {
        return Vec::new();
    };
    let mut frames = Vec::new();
    for frame in walk.frames.iter().skip(goroutine.printed_from) {
        for source in frame.source.iter() {
            let function = if source.function == "runtime.gopanic" {
                "panic".to_owned()
            } else {
                source.function.clone()
            };
            frames.push((
                function,
                source.file.as_deref().unwrap_or_default().to_owned(),
                source.line.unwrap_or(-1),
            ));
        }
    }
    frames
}

/// Compares one crash; returns the mismatches found.
fn compare(process: &Process, stderr: &str) -> Vec<String> {
    let printed = traceback::parse(stderr);
    let by_goid: HashMap<u64, &Goroutine> = process
        .goroutines()
        .iter()
        .filter_map(|g| Some((g.goid?, g)))
        .collect();
    let mut problems = Vec::new();
    if printed.is_empty() {
        problems.push("the runtime printed no goroutine".to_owned());
    }
    for expected in &printed {
        let Some(found) = by_goid.get(&expected.goid) else {
            problems.push(format!("goroutine {} is missing", expected.goid));
            continue;
        };
        if *found.status_text != *expected.status {
            problems.push(format!(
                "goroutine {}: status {:?}, printed {:?}",
                expected.goid, found.status_text, expected.status
            ));
        }
        if found.locked_to_thread != expected.locked {
            problems.push(format!(
                "goroutine {}: locked {}, printed {}",
                expected.goid, found.locked_to_thread, expected.locked
            ));
        }
        // A goroutine running on another M is printed by that M's own
        // report, which can be cut short by the crash; nothing to compare then.
        let printed_nothing = expected.status == "running" && expected.frames.is_empty();
        if !expected.unavailable && !printed_nothing {
            let frames = printed_frames(found);
            if frames != expected.frames {
                problems.push(format!(
                    "goroutine {}: frames differ\n  found   {:?}\n  printed {:?}",
                    expected.goid, frames, expected.frames
                ));
            }
        }
        let creator = found
            .created_by
            .as_ref()
            .map(|c| (c.function.to_string(), c.parent_goid));
        if creator != expected.created_by {
            problems.push(format!(
                "goroutine {}: created by {:?}, printed {:?}",
                expected.goid, creator, expected.created_by
            ));
        }
    }
    problems
}

#[test]
fn goroutines_match_runtime_output() {
    let builds = crash::builds();
    let mut failures = Vec::new();
    let mut checked = 0;
    for build in builds.iter().filter(|b| b.mode != Mode::Trimpath) {
        let kinds: &[&str] = if build.mode == Mode::Default {
            &KINDS
        } else {
            &["panic", "segv", "throw"]
        };
        let mut matched = 0;
        for kind in kinds {
            let Some((process, stderr)) = load(build, kind) else {
                continue;
            };
            checked += 1;
            let problems = compare(&process, &stderr);
            if problems.is_empty() {
                matched += 1;
            } else {
                failures.push(format!("{} {kind}:\n{}", build.name(), problems.join("\n")));
            }
        }
        eprintln!("{}: {matched}/{} crashes match", build.name(), kinds.len());
    }
    if checked == 0 {
        crash::skip_or_fail("no crash could be made");
        return;
    }
    assert!(
        failures.is_empty(),
        "{} crashes differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn stripped_build_gives_same_goroutines() {
    let builds = crash::builds();
    let mut compared = 0;
    for build in builds.iter().filter(|b| b.mode == Mode::Stripped) {
        let Some(twin) = builds
            .iter()
            .find(|b| b.version == build.version && b.mode == Mode::Trimpath)
        else {
            continue;
        };
        let Some((stripped, _)) = load(build, "panic") else {
            continue;
        };
        let Some((unstripped, _)) = load_with(build, twin, "panic") else {
            continue;
        };
        let summary = |p: &Process| -> Vec<GoroutineSummary> {
            p.goroutines()
                .iter()
                .map(|g| (g.goid, g.status_text.to_string(), printed_frames(g)))
                .collect()
        };
        assert_eq!(summary(&stripped), summary(&unstripped), "{}", build.name());
        assert!(
            matches!(
                stripped.provenance().allgs,
                Some(symbolizer::runtime::allgs::AllgsMethod::CodeReference { .. })
            ),
            "{}: {:?}",
            build.name(),
            stripped.provenance().allgs
        );
        assert!(
            matches!(
                unstripped.provenance().allgs,
                Some(symbolizer::runtime::allgs::AllgsMethod::Symbol { .. })
            ),
            "{}: {:?}",
            build.name(),
            unstripped.provenance().allgs
        );
        compared += 1;
    }
    if compared == 0 {
        crash::skip_or_fail("no stripped crash could be made");
    }
}

/// Reads `addr=0x…` from the runtime's `[signal …]` line.
fn printed_fault_address(stderr: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.starts_with("[signal "))?;
    let addr = line.split(' ').find_map(|w| w.strip_prefix("addr=0x"))?;
    u64::from_str_radix(addr, 16).ok()
}

#[test]
fn crash_facts_match_runtime_output() {
    let Some(build) = crash::builds()
        .into_iter()
        .find(|b| b.mode == Mode::Default)
    else {
        crash::skip_or_fail("no toolchain");
        return;
    };
    let cases = [
        ("panic", Some("wrapped: disk full"), None),
        (
            "index",
            Some("runtime error: index out of range [8] with length 3"),
            None,
        ),
        ("value", Some("main.celsius(-40)"), None),
        (
            "segv",
            Some("runtime error: invalid memory address or nil pointer dereference"),
            None,
        ),
        ("throw", None, Some("sync: unlock of unlocked mutex")),
        (
            "deadlock",
            None,
            Some("all goroutines are asleep - deadlock!"),
        ),
    ];
    for (kind, panic_value, fatal) in cases {
        let Some((process, stderr)) = load(&build, kind) else {
            continue;
        };
        let crash = process.crash();
        assert_eq!(
            crash.panics.last().map(|p| p.value.as_str()),
            panic_value,
            "{kind}"
        );
        assert_eq!(crash.fatal_error.as_deref(), fatal, "{kind}");
        assert_eq!(crash.core_signal, Some(6), "{kind}");
        if kind == "segv" {
            let signal = crash.signal.expect("segv records the signal");
            assert_eq!(signal.signo, 11);
            assert_eq!(Some(signal.addr), printed_fault_address(&stderr));
        }
        if kind == "deadlock" {
            assert_eq!(crash.goroutine, None);
        } else {
            assert_eq!(crash.goroutine, Some(1), "{kind}");
        }
    }
}

#[test]
fn layout_table_matches_dwarf() {
    use symbolizer::runtime::layout::RuntimeLayout;
    use symbolizer::runtime::version::GoVersion;

    let builds = crash::builds();
    let mut compared = 0;
    for build in builds.iter().filter(|b| b.mode == Mode::Default) {
        let data = std::fs::read(&build.binary).expect("the binary is readable");
        let file = object::File::parse(&*data).expect("the binary parses");
        let members = symbolizer::runtime::layout_dwarf::read_struct_members(&file)
            .expect("DWARF reads")
            .expect("the default build has DWARF");
        let from_dwarf = RuntimeLayout::from_members(&members).expect("DWARF has every field");
        let version =
            GoVersion::parse(&format!("go{}", build.version)).expect("the version parses");
        let from_table = RuntimeLayout::from_table(version).expect("the release is in the table");
        assert_eq!(from_table.g, from_dwarf.g, "{}", build.name());
        assert_eq!(from_table.m, from_dwarf.m, "{}", build.name());
        assert_eq!(from_table.panic, from_dwarf.panic, "{}", build.name());
        compared += 1;
    }
    if compared == 0 {
        crash::skip_or_fail("no toolchain is installed");
    }
}
