//! Parses real crash texts of Go 1.17 to 1.27 (see
//! `tests/fixtures/traceback/README.md`) and checks the values read from
//! them, the same texts after transport damage, and truncated or corrupted
//! copies.

use std::path::{Path, PathBuf};

use ingest::traceback::{
    parse, parse_bytes, parse_with, Arch, FatalForm, Frame, FunctionClass, Goroutine, GoroutineId,
    GoroutineStatus, Label, ParseOptions, PrefixKind, SignalForm, SystemStackOrigin, Traceback,
    MAX_FRAMES_PER_STACK, MAX_WARNINGS,
};
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/traceback")
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".txt"))
        .collect();
    names.sort();
    names
}

fn read_fixture(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Parses a fixture and checks that every line found its place.
fn parse_fixture(name: &str) -> Traceback {
    let traceback = parse(&read_fixture(&format!("{name}.txt")));
    assert!(
        traceback.warnings.is_empty(),
        "{name}: {:?}",
        traceback.warnings
    );
    assert!(
        traceback.truncated.is_empty(),
        "{name}: {:?}",
        traceback.truncated
    );
    traceback
}

fn goroutine(traceback: &Traceback, id: u64) -> &Goroutine {
    traceback
        .main_goroutines()
        .find(|g| g.id == GoroutineId(id))
        .unwrap_or_else(|| panic!("no goroutine {id}"))
}

fn functions(frames: &[Frame]) -> Vec<&str> {
    frames.iter().map(|frame| frame.function.as_str()).collect()
}

#[test]
fn every_fixture_parses_without_warnings() {
    let names = fixture_names();
    assert!(names.len() >= 40, "only {} fixtures", names.len());
    for name in names {
        let traceback = parse(&read_fixture(&name));
        assert!(
            traceback.warnings.is_empty(),
            "{name}: {:?}",
            traceback.warnings
        );
        assert!(traceback.truncated.is_empty(), "{name}");
        assert!(!traceback.goroutines.is_empty(), "{name}");
        for goroutine in &traceback.goroutines {
            let has_stack = !goroutine.frames.is_empty() || goroutine.stack_unavailable;
            assert!(
                has_stack,
                "{name}: goroutine {} has no frames",
                goroutine.id
            );
            for frame in &goroutine.frames {
                assert!(
                    frame.file.is_some(),
                    "{name}: {} has no file",
                    frame.function
                );
                assert!(
                    frame.line.is_some(),
                    "{name}: {} has no line",
                    frame.function
                );
            }
        }
    }
}

#[test]
fn go1_19_panic_chain_and_wait_reasons() {
    let t = parse_fixture("go1.19-states-all");
    assert_eq!(t.panics.len(), 2);
    assert_eq!(t.panics[0].value, "bad input 3");
    assert!(t.panics[0].recovered);
    assert_eq!(t.panics[1].value, "process failed: bad input 3");
    assert!(!t.panics[1].recovered);
    assert_eq!(t.goroutines.len(), 13);

    let main = goroutine(&t, 1);
    assert_eq!(main.status, GoroutineStatus::Running);
    assert_eq!(
        functions(&main.frames),
        [
            "main.process[...].func1",
            "panic",
            "main.validate",
            "main.step",
            "main.process[...]",
            "main.(*server).serve",
            "main.main",
        ]
    );
    let top = &main.frames[0];
    assert_eq!(
        top.file.as_deref(),
        Some("/tmp/tbcap/build/1.19.8/states/main.go")
    );
    assert_eq!(top.line, Some(52));
    assert_eq!(top.offset, Some(0x93));
    assert_eq!(top.pc, None);
    assert_eq!(main.frames[2].args, "0x5e10a0?");
    assert!(main.frames[3].inlined);
    assert_eq!(main.frames[3].line, Some(44));
    assert_eq!(main.frames[3].offset, None);
    assert_eq!(main.frames[4].args, "0xc?, 0x4f115b?");
    assert!(main.frames[5].inlined);
    assert_eq!(main.created_by, None);

    // Before Go 1.21 a goroutine blocked in sync.Mutex.Lock waits in
    // `semacquire`, and `created by` names no parent.
    let mutex = goroutine(&t, 10);
    assert_eq!(mutex.status, GoroutineStatus::Waiting);
    assert_eq!(mutex.wait_reason.as_deref(), Some("semacquire"));
    let created_by = mutex.created_by.as_ref().unwrap();
    assert_eq!(created_by.function, "main.main");
    assert_eq!(created_by.parent, None);
    assert_eq!(created_by.line, Some(74));

    let locked = goroutine(&t, 12);
    assert_eq!(locked.wait_reason.as_deref(), Some("chan receive"));
    assert!(locked.locked_to_thread);
    assert_eq!(goroutine(&t, 13).wait_reason.as_deref(), Some("IO wait"));
    assert_eq!(
        goroutine(&t, 14).wait_reason.as_deref(),
        Some("sync.Cond.Wait")
    );
    assert_eq!(
        goroutine(&t, 15).wait_reason.as_deref(),
        Some("chan receive (nil chan)")
    );
    assert_eq!(
        goroutine(&t, 16).wait_reason.as_deref(),
        Some("select (no cases)")
    );
    assert_eq!(goroutine(&t, 17).status, GoroutineStatus::Runnable);
    assert_eq!(goroutine(&t, 17).wait_reason, None);
    assert_eq!(
        goroutine(&t, 7).frames[0].function,
        "main.(*Queue[...]).Wait"
    );
}

#[test]
fn go1_21_minutes_and_parent_goroutines() {
    let t = parse_fixture("go1.21-states-all-minutes");
    assert_eq!(t.goroutines.len(), 13);
    let mutex = goroutine(&t, 10);
    assert_eq!(mutex.wait_reason.as_deref(), Some("sync.Mutex.Lock"));
    assert_eq!(mutex.wait_minutes, Some(1));
    assert_eq!(
        functions(&mutex.frames),
        [
            "sync.runtime_SemacquireMutex",
            "sync.(*Mutex).lockSlow",
            "sync.(*Mutex).Lock",
            "main.main.func4"
        ]
    );
    let created_by = mutex.created_by.as_ref().unwrap();
    assert_eq!(created_by.parent, Some(GoroutineId(1)));
    assert_eq!(created_by.line, Some(74));
    assert_eq!(created_by.offset, Some(0x1b6));

    let locked = goroutine(&t, 12);
    assert_eq!(locked.wait_minutes, Some(1));
    assert!(locked.locked_to_thread);
    // A WaitGroup waiter is still `semacquire` before Go 1.24.
    assert_eq!(goroutine(&t, 11).wait_reason.as_deref(), Some("semacquire"));
    assert_eq!(goroutine(&t, 17).wait_minutes, None);
}

#[test]
fn go1_27_runtime_ids_and_frame_pointers() {
    let t = parse_fixture("go1.27-states-system-minutes");
    assert_eq!(t.goroutines.len(), 21);
    let main = goroutine(&t, 1);
    let ids = main.runtime_ids.unwrap();
    assert_eq!(ids.gp, 0x19685b1281e0);
    assert_eq!(ids.m, Some(3));
    assert_eq!(ids.mp, Some(0x19685b161008));
    // Go 1.27 prints the frame of the repanic and of the first panic.
    assert_eq!(main.frames[0].function, "panic");
    assert_eq!(main.frames[2].function, "panic");
    let top = &main.frames[0];
    assert_eq!(top.fp, Some(0x19685b186cc0));
    assert_eq!(top.sp, Some(0x19685b186c18));
    assert_eq!(top.pc, Some(0x480879));
    assert_eq!(main.frames.last().unwrap().function, "runtime.goexit");
    assert_eq!(main.frames.last().unwrap().args, "{}");
    assert_eq!(
        main.first_main_frame().unwrap().function,
        "main.process[...].func1"
    );

    let forcegc = goroutine(&t, 2);
    assert_eq!(forcegc.runtime_ids.unwrap().m, None);
    assert_eq!(forcegc.wait_reason.as_deref(), Some("force gc (idle)"));
    assert_eq!(forcegc.wait_minutes, Some(1));
    assert_eq!(
        goroutine(&t, 5).wait_reason.as_deref(),
        Some("GOMAXPROCS updater (idle)")
    );
    assert_eq!(
        goroutine(&t, 7).wait_reason.as_deref(),
        Some("cleanup wait")
    );
    assert_eq!(
        goroutine(&t, 13).wait_reason.as_deref(),
        Some("sync.WaitGroup.Wait")
    );
}

#[test]
fn go1_25_repanicked_value_is_folded() {
    let t = parse_fixture("go1.25-states-all-repanic");
    assert_eq!(t.panics.len(), 1);
    assert_eq!(t.panics[0].value, "bad input 3");
    assert!(t.panics[0].recovered);
    assert!(t.panics[0].repanicked);
}

#[test]
fn multi_line_panic_values() {
    for name in ["go1.19-multiline-single", "go1.23-multiline-single"] {
        let t = parse_fixture(name);
        assert_eq!(t.panics.len(), 2, "{name}");
        assert_eq!(
            t.panics[0].value, "main.Temperature(+4.510000e+002)",
            "{name}"
        );
        assert_eq!(
            t.panics[1].value, "connection reset by peer\nretry budget exhausted\nlast attempt: 3",
            "{name}"
        );
        assert_eq!(t.goroutines[0].frames.len(), 4, "{name}");
    }
}

#[test]
fn goexit_then_panic() {
    let t = parse_fixture("go1.23-goexit-single");
    assert_eq!(t.panics.len(), 1);
    assert_eq!(t.panics[0].value, "cleanup failed");
    assert_eq!(
        functions(&t.goroutines[0].frames),
        ["main.cleanup", "runtime.Goexit", "main.main"]
    );
}

#[test]
fn nil_dereference_signal_line() {
    let t = parse_fixture("go1.19-nilderef-single");
    assert!(t.panics[0].is_runtime_error());
    let signal = t.signal.as_ref().unwrap();
    assert_eq!(signal.form, SignalForm::Bracketed);
    assert_eq!(signal.name.as_deref(), Some("SIGSEGV"));
    assert_eq!(
        signal.description.as_deref(),
        Some("segmentation violation")
    );
    assert_eq!(signal.code, Some(1));
    assert_eq!(signal.addr, Some(0));
    assert_eq!(signal.pc, Some(0x481223));
    let worker = goroutine(&t, 19);
    assert_eq!(
        functions(&worker.frames),
        ["main.(*Handler).Name", "main.worker"]
    );
    assert_eq!(worker.frames[0].class(), FunctionClass::Main);
    assert_eq!(worker.created_by.as_ref().unwrap().line, Some(28));
}

#[test]
fn map_race_throw_then_fatal() {
    let old = parse_fixture("go1.17-mapwrite-all");
    let fatal = old.fatal.as_ref().unwrap();
    assert_eq!(fatal.message, "concurrent map writes");
    assert_eq!(fatal.form, FatalForm::FatalError);
    let crashing = &old.goroutines[0];
    assert_eq!(crashing.id, GoroutineId(18));
    assert_eq!(crashing.frames[0].function, "runtime.throw");
    assert_eq!(crashing.frames[0].args, "{0x4a2b5e, 0x15}");
    assert_eq!(crashing.frames[0].pc, Some(0x432e31));
    assert_eq!(crashing.frames[0].class(), FunctionClass::Runtime);

    let new = parse_fixture("go1.19-mapwrite-all");
    assert_eq!(new.fatal.as_ref().unwrap().message, "concurrent map writes");
    assert_eq!(new.goroutines.len(), 5);
    assert_eq!(new.goroutines[0].frames[0].function, "main.store");
    assert_eq!(new.goroutines[0].frames[0].pc, None);
}

#[test]
fn deadlock_reports() {
    let old = parse_fixture("go1.19-deadlock-single");
    assert_eq!(
        old.fatal.as_ref().unwrap().message,
        "all goroutines are asleep - deadlock!"
    );
    assert_eq!(
        goroutine(&old, 1).wait_reason.as_deref(),
        Some("semacquire")
    );
    let new = parse_fixture("go1.27-deadlock-single");
    assert_eq!(
        goroutine(&new, 1).wait_reason.as_deref(),
        Some("sync.WaitGroup.Wait")
    );
    assert_eq!(goroutine(&new, 18).frames[0].function, "main.(*pool).run");
    assert_eq!(new.goroutines.len(), 3);
}

#[test]
fn stack_overflow_runtime_stack() {
    let t = parse_fixture("go1.19-overflow-system");
    assert_eq!(
        t.messages[0].text,
        "runtime: goroutine stack exceeds 1000000000-byte limit"
    );
    assert_eq!(t.fatal.as_ref().unwrap().message, "stack overflow");
    let stack = &t.system_stacks[0];
    assert_eq!(stack.origin, SystemStackOrigin::RuntimeStackLine);
    assert_eq!(
        functions(&stack.frames),
        ["runtime.throw", "runtime.newstack", "runtime.morestack"]
    );
    assert_eq!(stack.frames[0].pc, Some(0x42d93d));

    let t = parse_fixture("go1.27-overflow-system");
    let overflowing = goroutine(&t, 1);
    let elided = overflowing.elided.unwrap();
    assert_eq!(elided.count, Some(67108607));
    // Go 1.21+ prints the first 50 frames, inlined ones included, then the
    // marker, then the last 50.
    assert_eq!(elided.after_frame, 50);
    assert_eq!(overflowing.frames.len(), 100);
}

#[test]
fn elision_markers_of_both_eras() {
    let old = parse_fixture("go1.19-deep-system");
    let deep = goroutine(&old, 5);
    assert_eq!(deep.frames.len(), 100);
    let elided = deep.elided.unwrap();
    assert_eq!(elided.count, None);
    assert_eq!(elided.after_frame, 100);
    assert_eq!(deep.created_by.as_ref().unwrap().function, "main.main");

    let new = parse_fixture("go1.21-deep-all");
    let deep = goroutine(&new, 5);
    let elided = deep.elided.unwrap();
    assert_eq!(elided.count, Some(51));
    assert_eq!(elided.after_frame, 50);
    assert_eq!(deep.frames.len(), 100);
    assert_eq!(
        deep.created_by.as_ref().unwrap().parent,
        Some(GoroutineId(1))
    );
}

#[test]
fn sigquit_threads_and_registers() {
    let t = parse_fixture("go1.19-sigquit-crash");
    let signal = t.signal.as_ref().unwrap();
    assert_eq!(signal.form, SignalForm::Handler);
    assert_eq!(signal.name.as_deref(), Some("SIGQUIT"));
    assert_eq!(signal.code, Some(0));
    assert_eq!(signal.m, Some(0));
    assert_eq!(signal.pc, Some(0x45be21));
    let registers = t.registers.as_ref().unwrap();
    assert_eq!(registers.arch, Arch::Amd64);
    assert_eq!(registers.values.len(), 21);
    assert_eq!(registers.pc(), signal.pc);
    assert_eq!(t.threads.len(), 4);
    for (index, thread) in t.threads.iter().enumerate() {
        let signal = thread.signal.as_ref().unwrap();
        assert_eq!(signal.name.as_deref(), Some("SIGQUIT"));
        assert_eq!(signal.m, Some(index as u64 + 1));
        assert_eq!(thread.registers.as_ref().unwrap().values.len(), 21);
    }
    let scheduler = &t.goroutines[0];
    assert_eq!(scheduler.id, GoroutineId(0));
    assert_eq!(scheduler.status, GoroutineStatus::Idle);
    assert_eq!(scheduler.frames[0].function, "runtime.futex");

    let t = parse_fixture("go1.27-sigquit-crash");
    assert_eq!(t.threads.len(), 5);
    assert_eq!(t.main_goroutines().count(), 9);
    assert!(t.goroutines.iter().all(|g| g.runtime_ids.is_some()));
}

#[test]
fn watchdog_abort_relay_section() {
    let t = parse_fixture("go1.20-sigabrt-crash");
    let signal = t.signal.as_ref().unwrap();
    assert_eq!(signal.name.as_deref(), Some("SIGABRT"));
    assert_eq!(signal.code, Some(0));
    assert_eq!(goroutine(&t, 1).wait_minutes, Some(3));
    assert!(goroutine(&t, 7).stack_unavailable);

    assert_eq!(t.threads.len(), 1);
    let relayed: Vec<(u64, Option<usize>)> = t
        .goroutines
        .iter()
        .filter(|g| g.thread.is_some())
        .map(|g| (g.id.0, g.thread))
        .collect();
    assert_eq!(relayed, [(0, Some(0)), (7, Some(0))]);
    let running = t.goroutine(GoroutineId(7)).unwrap();
    assert_eq!(running.thread, Some(0));
    assert_eq!(running.frames[0].function, "runtime.systemstack_switch");
    assert_eq!(
        running.first_main_frame().unwrap().function,
        "main.(*cache).rebuild"
    );
    assert_eq!(
        t.threads[0].registers.as_ref().unwrap().pc(),
        Some(0x40c2a1)
    );
}

#[test]
fn goroutine_running_elsewhere_and_its_thread() {
    let t = parse_fixture("go1.27-running-all");
    let spinning = goroutine(&t, 21);
    assert_eq!(spinning.status, GoroutineStatus::Running);
    assert!(spinning.stack_unavailable);
    assert!(spinning.frames.is_empty());
    assert_eq!(
        spinning.created_by.as_ref().unwrap().parent,
        Some(GoroutineId(1))
    );

    let t = parse_fixture("go1.27-running-sigill-crash");
    let signal = t.signal.as_ref().unwrap();
    assert_eq!(signal.name.as_deref(), Some("SIGILL"));
    assert_eq!(signal.code, Some(2));
    assert_eq!(signal.instruction_bytes[..3], [0x0f, 0x0b, 0xc3]);
    assert!(goroutine(&t, 19).stack_unavailable);
    let relayed = t.goroutine(GoroutineId(19)).unwrap();
    assert_eq!(relayed.thread, Some(0));
    assert_eq!(functions(&relayed.frames), ["main.spin", "runtime.goexit"]);
    assert_eq!(t.threads[0].signal.as_ref().unwrap().pc, Some(0x4836f2));
    assert_eq!(relayed.frames[0].pc, Some(0x4836f2));

    let t = parse_fixture("go1.19-running-sigill-crash");
    assert_eq!(t.threads.len(), 3);
    assert_eq!(
        t.goroutine(GoroutineId(18)).unwrap().frames[0].function,
        "main.spin"
    );
}

#[test]
fn sigill_instruction_bytes() {
    let t = parse_fixture("go1.21-sigill-single");
    let signal = t.signal.as_ref().unwrap();
    assert_eq!(signal.pc, Some(0x457840));
    assert_eq!(signal.instruction_bytes.len(), 16);
    assert_eq!(signal.instruction_bytes[..4], [0x0f, 0x0b, 0xc3, 0xcc]);
    let top = &goroutine(&t, 1).frames[0];
    assert_eq!(top.function, "main.ill");
    assert_eq!(
        top.file.as_deref(),
        Some("/tmp/tbcap/build/1.21.13/sigill/ill_amd64.s")
    );
    assert_eq!(top.offset, None);
    assert_eq!(top.pc, Some(0x457840));
}

#[test]
fn cgo_crashes() {
    let old = parse_fixture("go1.19-cgosegv-crash");
    assert_eq!(
        old.fatal.as_ref().unwrap().message,
        "unexpected signal during runtime execution"
    );
    assert_eq!(old.signal.as_ref().unwrap().form, SignalForm::Bracketed);
    assert_eq!(
        functions(&old.system_stacks[0].frames),
        ["runtime.throw", "runtime.sigpanic"]
    );
    let caller = goroutine(&old, 1);
    assert_eq!(caller.status, GoroutineStatus::Syscall);
    assert_eq!(caller.frames[1].function, "main._Cfunc_crash");
    assert_eq!(caller.frames[1].file.as_deref(), Some("_cgo_gotypes.go"));
    assert_eq!(caller.frames[1].line, Some(43));

    let new = parse_fixture("go1.24-cgosegv-crash");
    let signal = new.signal.as_ref().unwrap();
    assert_eq!(signal.form, SignalForm::Handler);
    assert!(signal.during_cgo);
    assert_eq!(signal.code, Some(1));
    assert_eq!(signal.addr, Some(0));
    assert_eq!(new.threads.len(), 4);
    assert_eq!(goroutine(&new, 1).status, GoroutineStatus::Syscall);
}

#[test]
fn goroutine_labels() {
    let label = |key: &str, value: &str| Label {
        key: key.to_string(),
        value: value.to_string(),
    };
    let inside = parse_fixture("go1.26-labels-all");
    assert_eq!(
        goroutine(&inside, 7).labels,
        [label("request", "alpha"), label("route", "/api/v1")]
    );
    assert_eq!(
        goroutine(&inside, 7).wait_reason.as_deref(),
        Some("chan receive")
    );

    let after = parse_fixture("go1.27-labels-all");
    assert_eq!(
        goroutine(&after, 19).labels,
        [label("request", "alpha"), label("route", "/api/v1")]
    );
    assert_eq!(
        goroutine(&after, 20).labels,
        [
            label("request", "beta: \"quoted\""),
            label("route", "/api/v1")
        ]
    );
    assert!(goroutine(&after, 1).labels.is_empty());
}

#[test]
fn arm64_register_dumps() {
    let t = parse_fixture("go1.27-arm64-sigquit-crash");
    let registers = t.registers.as_ref().unwrap();
    assert_eq!(registers.arch, Arch::Arm64);
    assert_eq!(registers.values.len(), 34);
    assert_eq!(registers.pc(), Some(0x8841c));
    assert_eq!(registers.get("lr"), Some(0x4c488));
    assert_eq!(registers.get("fault"), Some(0));
    assert_eq!(t.signal.as_ref().unwrap().pc, registers.pc());
    assert_eq!(t.threads.len(), 5);

    let t = parse_fixture("go1.27-arm64-nilderef-crash");
    assert_eq!(t.signal.as_ref().unwrap().pc, Some(0xa2804));
    assert_eq!(t.registers, None);
    assert_eq!(
        functions(&goroutine(&t, 19).frames)[..4],
        [
            "panic",
            "runtime.panicmem",
            "runtime.sigpanic",
            "main.(*Handler).Name"
        ]
    );
}

#[test]
fn hand_written_go1_18_generics() {
    let t = parse_fixture("go1.18-generics-all");
    assert_eq!(
        goroutine(&t, 7).frames[0].function,
        "main.(*Queue[...]).Wait"
    );
    assert_eq!(goroutine(&t, 7).wait_minutes, Some(2));
    assert_eq!(goroutine(&t, 10).wait_reason.as_deref(), Some("semacquire"));
    assert_eq!(goroutine(&t, 1).frames[4].args, "0xc?, 0x4f105b?");
}

/// Removes what transport damage may change: input line numbers and the
/// transport report.
fn without_positions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("text_line");
            map.remove("transport");
            map.values_mut().for_each(without_positions);
        }
        Value::Array(items) => items.iter_mut().for_each(without_positions),
        _ => {}
    }
}

fn comparable(traceback: &Traceback) -> Value {
    let mut value = serde_json::to_value(traceback).expect("traceback serializes");
    without_positions(&mut value);
    value
}

#[test]
fn transport_damage_changes_nothing() {
    for name in fixture_names() {
        let text = read_fixture(&name);
        let expected = comparable(&parse(&text));

        let no_blank_lines: String = text
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(
            comparable(&parse(&no_blank_lines)),
            expected,
            "{name} without blank lines"
        );

        let no_tabs: String = text
            .lines()
            .map(|line| format!("{}\n", line.trim_start_matches('\t')))
            .collect();
        assert_eq!(
            comparable(&parse(&no_tabs)),
            expected,
            "{name} without tabs"
        );

        let spaces: String = text
            .lines()
            .map(|line| format!("{}\n", line.replace('\t', "    ")))
            .collect();
        assert_eq!(comparable(&parse(&spaces)), expected, "{name} with spaces");

        let crlf = text.replace('\n', "\r\n");
        assert_eq!(comparable(&parse(&crlf)), expected, "{name} with CRLF");

        // journald keeps no blank lines, and another unit's line may land
        // in the middle of the crash.
        let mut journal = String::new();
        for (index, line) in text.lines().filter(|line| !line.is_empty()).enumerate() {
            journal.push_str(&format!("Dec 04 20:35:21 vm app[2765]: {line}\n"));
            if index == 3 {
                journal.push_str("Dec 04 20:35:21 vm sshd[901]: Accepted publickey for root\n");
            }
        }
        let parsed = parse_with(&journal, &ParseOptions::stripping_prefixes());
        assert_eq!(parsed.transport.prefix, Some(PrefixKind::Syslog), "{name}");
        assert_eq!(parsed.transport.foreign_lines, 1, "{name}");
        assert_eq!(comparable(&parsed), expected, "{name} from journalctl");

        let cri: String = text
            .lines()
            .map(|line| format!("2024-01-01T00:00:00.000000000Z stderr F {line}\n"))
            .collect();
        let parsed = parse_with(&cri, &ParseOptions::stripping_prefixes());
        assert_eq!(parsed.transport.prefix, Some(PrefixKind::Cri), "{name}");
        assert_eq!(comparable(&parsed), expected, "{name} from a CRI log");
    }
}

/// A xorshift64* generator: deterministic, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// Checks that the output stays proportional to the input: every line
/// yields at most a frame and a warning.
fn assert_bounded(traceback: &Traceback, input: &[u8], what: &str) {
    let lines = input.split(|byte| *byte == b'\n').count();
    let frames: usize = traceback
        .goroutines
        .iter()
        .map(|g| g.frames.len())
        .sum::<usize>()
        + traceback
            .system_stacks
            .iter()
            .map(|s| s.frames.len())
            .sum::<usize>();
    let items = traceback.goroutines.len()
        + frames
        + traceback.warnings.len()
        + traceback.messages.len()
        + traceback.panics.len();
    assert!(
        items <= 2 * lines + 2,
        "{what}: {items} items from {lines} lines"
    );
    assert!(traceback.warnings.len() <= MAX_WARNINGS, "{what}");
    assert!(
        traceback
            .goroutines
            .iter()
            .all(|g| g.frames.len() <= MAX_FRAMES_PER_STACK),
        "{what}"
    );
    serde_json::to_string(traceback).expect("traceback serializes");
}

#[test]
fn truncated_and_corrupted_fixtures() {
    const CUTS: usize = 40;
    const MUTANTS: usize = 40;
    // Bytes that change how a line reads.
    const INTERESTING: &[u8] = b"\n\t ()[]{}:,.?_=+0x9fgoroutine-\r\xff\xc3";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for name in fixture_names() {
        let text = read_fixture(&name).into_bytes();
        for cut in 0..=CUTS {
            let end = text.len() * cut / CUTS;
            let piece = &text[..end];
            let traceback = parse_bytes(piece, &ParseOptions::default());
            assert_bounded(&traceback, piece, &format!("{name} cut at {end}"));
        }
        for _ in 0..MUTANTS {
            let mut mutant = text.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(mutant.len());
                mutant[at] = if rng.below(2) == 0 {
                    INTERESTING[rng.below(INTERESTING.len())]
                } else {
                    rng.next() as u8
                };
            }
            let options = ParseOptions {
                strip_prefixes: rng.below(2) == 0,
            };
            let traceback = parse_bytes(&mutant, &options);
            assert_bounded(&traceback, &mutant, &format!("{name} mutated"));
        }
    }
}
