//! Tests of the whole parser on small texts built line by line.

use super::*;

/// Builds crash text the way the runtime prints it: frame locations
/// indented with a tab, a blank line before each goroutine.
#[derive(Default)]
struct CrashText {
    lines: Vec<String>,
}

impl CrashText {
    fn new() -> CrashText {
        CrashText::default()
    }

    fn line(mut self, text: &str) -> CrashText {
        self.lines.push(text.to_string());
        self
    }

    fn blank(self) -> CrashText {
        self.line("")
    }

    fn goroutine(self, header: &str) -> CrashText {
        self.blank().line(&format!("goroutine {header}:"))
    }

    fn frame(self, call: &str, location: &str) -> CrashText {
        self.line(call).line(&format!("\t{location}"))
    }

    fn created_by(self, function: &str, location: &str) -> CrashText {
        self.line(&format!("created by {function}"))
            .line(&format!("\t{location}"))
    }

    fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }

    /// Returns the text as journald and a paste deliver it: no blank lines,
    /// no indentation.
    fn damaged(&self) -> String {
        let lines: Vec<&str> = self
            .lines
            .iter()
            .filter(|line| !line.is_empty())
            .map(|line| line.trim_start())
            .collect();
        lines.join("\n")
    }
}

fn panic_in_worker() -> CrashText {
    CrashText::new()
        .line("panic: bad input 3 [recovered]")
        .line("\tpanic: process failed")
        .goroutine("1 [running]")
        .frame("main.process[...].func1()", "/app/main.go:52 +0x7b")
        .frame(
            "panic({0x5f7850?, 0x184f31790050?})",
            "/go/src/runtime/panic.go:859 +0x125",
        )
        .frame("main.step(...)", "/app/main.go:44")
        .frame("main.main()", "/app/main.go:101 +0x42d")
        .goroutine("20 [chan receive, 3 minutes, locked to thread]")
        .frame(
            "main.(*Queue[...]).Wait(0xc000010000, {0x1, 0x2})",
            "/app/main.go:16 +0x19",
        )
        .created_by("main.main in goroutine 1", "/app/main.go:61 +0x76")
}

fn assert_same_stacks(left: &Traceback, right: &Traceback) {
    assert_eq!(left.goroutines.len(), right.goroutines.len());
    for (l, r) in left.goroutines.iter().zip(&right.goroutines) {
        assert_eq!(l.id, r.id);
        assert_eq!(l.status, r.status);
        assert_eq!(l.wait_reason, r.wait_reason);
        assert_eq!(
            l.created_by.as_ref().map(|c| (&c.function, c.line)),
            r.created_by.as_ref().map(|c| (&c.function, c.line))
        );
        // Line numbers differ once blank lines are gone; everything else
        // must not.
        let frames = |g: &Goroutine| -> Vec<Frame> {
            g.frames
                .iter()
                .map(|f| Frame {
                    text_line: 0,
                    ..f.clone()
                })
                .collect()
        };
        assert_eq!(frames(l), frames(r));
    }
}

#[test]
fn panic_chain_and_goroutines() {
    let traceback = parse(&panic_in_worker().text());
    assert!(traceback.warnings.is_empty(), "{:?}", traceback.warnings);
    assert_eq!(traceback.panics.len(), 2);
    assert_eq!(traceback.panics[0].value, "bad input 3");
    assert!(traceback.panics[0].recovered);
    assert_eq!(traceback.panics[1].value, "process failed");
    assert_eq!(traceback.panics[1].text_line, 2);

    let main = &traceback.goroutines[0];
    assert_eq!(main.id, GoroutineId(1));
    assert_eq!(main.status, GoroutineStatus::Running);
    assert_eq!(main.frames.len(), 4);
    assert_eq!(main.frames[1].function, "panic");
    assert_eq!(main.frames[1].line, Some(859));
    assert!(main.frames[2].inlined);
    assert_eq!(main.frames[2].offset, None);
    assert_eq!(
        main.first_main_frame().map(|f| f.function.as_str()),
        Some("main.process[...].func1")
    );

    let worker = &traceback.goroutines[1];
    assert_eq!(worker.wait_reason.as_deref(), Some("chan receive"));
    assert_eq!(worker.wait_minutes, Some(3));
    assert!(worker.locked_to_thread);
    assert_eq!(worker.frames[0].args, "0xc000010000, {0x1, 0x2}");
    let created_by = worker.created_by.as_ref().unwrap();
    assert_eq!(created_by.function, "main.main");
    assert_eq!(created_by.parent, Some(GoroutineId(1)));
    assert_eq!(created_by.line, Some(61));
    assert_eq!(created_by.offset, Some(0x76));
}

#[test]
fn blank_lines_and_tabs_are_not_needed() {
    let text = panic_in_worker();
    let whole = parse(&text.text());
    let damaged = parse(&text.damaged());
    assert!(damaged.warnings.is_empty(), "{:?}", damaged.warnings);
    assert_eq!(damaged.panics.len(), 2);
    assert_same_stacks(&whole, &damaged);
}

#[test]
fn journal_prefixes_and_crlf() {
    let text = panic_in_worker();
    let journal: String = text
        .lines
        .iter()
        .filter(|line| !line.is_empty())
        .map(|line| format!("Dec 04 20:35:21 vm app[2765]: {line}\r\n"))
        .collect();
    let traceback = parse_with(&journal, &ParseOptions::stripping_prefixes());
    assert_eq!(traceback.transport.prefix, Some(PrefixKind::Syslog));
    assert!(traceback.transport.crlf);
    assert!(traceback.warnings.is_empty(), "{:?}", traceback.warnings);
    assert_same_stacks(&parse(&text.text()), &traceback);
}

#[test]
fn fatal_error_with_runtime_stack() {
    let text = CrashText::new()
        .line("runtime: goroutine stack exceeds 1000000000-byte limit")
        .line("runtime: sp=0xc0200e0388 stack=[0xc0200e0000, 0xc0400e0000]")
        .line("fatal error: stack overflow")
        .blank()
        .line("runtime stack:")
        .frame(
            "runtime.throw({0x46593a?, 0x4bc860?})",
            "/go/src/runtime/panic.go:1047 +0x5d fp=0x7ffc955dfd20 sp=0x7ffc955dfcf0 pc=0x42d93d",
        )
        .frame(
            "runtime.morestack()",
            "/go/src/runtime/asm_amd64.s:570 +0x8b fp=0x7ffc955dfee0 sp=0x7ffc955dfed8 pc=0x45498b",
        )
        .goroutine("1 gp=0xc000002380 m=0 mp=0x5656e0 [running]")
        .frame(
            "main.(*node).depth2(0x0?)",
            "/app/main.go:12 +0x25 fp=0xc0200e0398 sp=0xc0200e0390 pc=0x457ce5",
        )
        .line("...67108607 frames elided...")
        .frame(
            "main.main()",
            "/app/main.go:17 +0x1d fp=0xc0200e0f80 sp=0xc0200e0f50 pc=0x457d1d",
        );
    let traceback = parse(&text.damaged());
    assert!(traceback.warnings.is_empty(), "{:?}", traceback.warnings);
    assert_eq!(traceback.messages.len(), 2);
    let fatal = traceback.fatal.as_ref().unwrap();
    assert_eq!(fatal.message, "stack overflow");
    assert_eq!(fatal.form, FatalForm::FatalError);

    let stack = &traceback.system_stacks[0];
    assert_eq!(stack.origin, SystemStackOrigin::RuntimeStackLine);
    assert_eq!(stack.frames.len(), 2);
    assert_eq!(stack.frames[0].pc, Some(0x42d93d));
    assert_eq!(stack.frames[0].fp, Some(0x7ffc955dfd20));

    let goroutine = &traceback.goroutines[0];
    assert_eq!(goroutine.runtime_ids.unwrap().m, Some(0));
    assert_eq!(
        goroutine.elided,
        Some(Elision {
            count: Some(67108607),
            after_frame: 1,
            text_line: 12
        })
    );
    assert_eq!(goroutine.frames.len(), 2);
}

#[test]
fn signal_report_registers_and_threads() {
    let mut text = CrashText::new()
        .line("SIGSEGV: segmentation violation")
        .line("PC=0x49be09 m=0 sigcode=1 addr=0x0")
        .line("signal arrived during cgo execution")
        .goroutine("1 [syscall]")
        .frame(
            "runtime.cgocall(0x49be00, 0xdabcb852e68)",
            "/go/src/runtime/cgocall.go:167 +0x4b",
        )
        .frame("main._Cfunc_crash()", "_cgo_gotypes.go:48 +0x45")
        .blank();
    for name in ["rax", "rbx", "rip", "rflags"] {
        text = text.line(&format!("{name:<7}0x49be09"));
    }
    let text = text
        .blank()
        .line("-----")
        .blank()
        .line("SIGQUIT: quit")
        .line("PC=0x471663 m=2 sigcode=0")
        .goroutine("0 [idle]")
        .frame(
            "runtime.futex()",
            "/go/src/runtime/sys_linux_amd64.s:557 +0x21",
        )
        .line("goroutine 7 [running]:")
        .frame("main.spin()", "/app/main.go:16 +0x12")
        .line("r0      0x1")
        .line("lr      0x4c488")
        .line("pc      0x8841c")
        .line("fault   0x0")
        // A second thread whose `-----` line was lost.
        .line("SIGQUIT: quit")
        .line("PC=0x1 m=3 sigcode=0")
        .goroutine("0 [idle]")
        .frame(
            "runtime.usleep()",
            "/go/src/runtime/sys_linux_amd64.s:135 +0x37",
        )
        .line("rax    0x0");
    let traceback = parse(&text.damaged());
    assert!(traceback.warnings.is_empty(), "{:?}", traceback.warnings);

    let signal = traceback.signal.as_ref().unwrap();
    assert_eq!(signal.name.as_deref(), Some("SIGSEGV"));
    assert_eq!(signal.form, SignalForm::Handler);
    assert_eq!(
        (signal.pc, signal.m, signal.code, signal.addr),
        (Some(0x49be09), Some(0), Some(1), Some(0))
    );
    assert!(signal.during_cgo);

    let registers = traceback.registers.as_ref().unwrap();
    assert_eq!(registers.arch, Arch::Amd64);
    assert_eq!(registers.pc(), Some(0x49be09));

    assert_eq!(traceback.threads.len(), 2);
    let relay = &traceback.threads[0];
    assert_eq!(relay.signal.as_ref().unwrap().m, Some(2));
    assert_eq!(relay.registers.as_ref().unwrap().arch, Arch::Arm64);
    assert_eq!(relay.registers.as_ref().unwrap().get("lr"), Some(0x4c488));
    assert_eq!(traceback.threads[1].signal.as_ref().unwrap().m, Some(3));

    let sections: Vec<(u64, Option<usize>)> = traceback
        .goroutines
        .iter()
        .map(|g| (g.id.0, g.thread))
        .collect();
    assert_eq!(
        sections,
        vec![(1, None), (0, Some(0)), (7, Some(0)), (0, Some(1))]
    );
    assert_eq!(traceback.main_goroutines().count(), 1);
}

#[test]
fn bracketed_signal_after_panic() {
    let text = CrashText::new()
        .line("panic: runtime error: invalid memory address or nil pointer dereference")
        .line("[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x49a5c3]")
        .goroutine("20 [running]")
        .frame("main.(*Handler).Name(0x0?)", "/app/main.go:13 +0x3");
    let traceback = parse(&text.text());
    assert!(traceback.panics[0].is_runtime_error());
    assert_eq!(
        traceback.panics[0].value,
        "runtime error: invalid memory address or nil pointer dereference"
    );
    let signal = traceback.signal.as_ref().unwrap();
    assert_eq!(signal.form, SignalForm::Bracketed);
    assert_eq!(signal.pc, Some(0x49a5c3));
}

#[test]
fn multi_line_values() {
    for continuation in ["retry budget exhausted", "\tretry budget exhausted"] {
        let text = CrashText::new()
            .line("panic: connection reset")
            .line(continuation)
            .goroutine("1 [running]")
            .frame("main.main()", "/app/main.go:3 +0x1");
        let traceback = parse(&text.text());
        assert_eq!(
            traceback.panics[0].value,
            "connection reset\nretry budget exhausted"
        );
        assert_eq!(traceback.goroutines.len(), 1);
    }
    let text = CrashText::new()
        .line("fatal error: bad thing")
        .line("\tsecond line")
        .line("[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1]");
    let traceback = parse(&text.text());
    assert_eq!(
        traceback.fatal.as_ref().unwrap().message,
        "bad thing\nsecond line"
    );
    assert!(traceback.signal.is_some());
}

#[test]
fn fatal_after_panic_chain_and_repeats() {
    let text = CrashText::new()
        .line("panic: first")
        .line("\tfatal error: concurrent map writes")
        .line("fatal error: concurrent map writes")
        .goroutine("1 [running]")
        .frame("main.main()", "/app/main.go:3 +0x1");
    let traceback = parse(&text.damaged());
    assert_eq!(traceback.panics.len(), 1);
    let fatal = traceback.fatal.as_ref().unwrap();
    assert_eq!(fatal.message, "concurrent map writes");
    assert_eq!(fatal.repeats, 1);
}

#[test]
fn goexit_chain_without_tab() {
    let text = CrashText::new()
        .line("panic: first [recovered]")
        .line("panic: second");
    let traceback = parse(&text.text());
    assert_eq!(traceback.panics.len(), 2);
    assert!(traceback.goroutines.is_empty());
}

#[test]
fn stack_unavailable_and_old_elision() {
    let text = CrashText::new()
        .goroutine("19 [running]")
        .line("\tgoroutine running on other thread; stack unavailable")
        .created_by("main.main", "/app/main.go:22 +0x28")
        .goroutine("17 [chan receive]")
        .frame("main.descend(0x0?, 0x0?)", "/app/main.go:10 +0x46")
        .line("...additional frames elided...")
        .created_by("main.main", "/app/main.go:15 +0x58");
    let traceback = parse(&text.damaged());
    assert!(traceback.warnings.is_empty(), "{:?}", traceback.warnings);
    let running = &traceback.goroutines[0];
    assert!(running.stack_unavailable);
    assert!(running.frames.is_empty());
    assert_eq!(running.created_by.as_ref().unwrap().parent, None);
    let deep = &traceback.goroutines[1];
    assert_eq!(
        deep.elided.map(|e| (e.count, e.after_frame)),
        Some((None, 1))
    );
    assert_eq!(deep.created_by.as_ref().unwrap().line, Some(15));
}

#[test]
fn ancestors_are_kept_apart() {
    let text = CrashText::new()
        .goroutine("8 [chan receive]")
        .frame("main.worker()", "/app/main.go:20 +0x1d")
        .created_by("main.spawn in goroutine 7", "/app/main.go:30 +0x25")
        .line("[originating from goroutine 7]:")
        .frame("main.spawn(...)", "/app/main.go:30 +0x25")
        .created_by("main.main", "/app/main.go:40 +0x1");
    let traceback = parse(&text.damaged());
    assert!(traceback.warnings.is_empty(), "{:?}", traceback.warnings);
    let goroutine = &traceback.goroutines[0];
    assert_eq!(goroutine.frames.len(), 1);
    assert_eq!(
        goroutine.created_by.as_ref().unwrap().function,
        "main.spawn"
    );
    let ancestor = &goroutine.ancestors[0];
    assert_eq!(ancestor.id, GoroutineId(7));
    assert_eq!(ancestor.frames[0].function, "main.spawn");
    assert_eq!(ancestor.created_by.as_ref().unwrap().line, Some(40));
}

#[test]
fn c_frames() {
    let text = CrashText::new()
        .goroutine("1 [syscall]")
        .line("non-Go function at pc=0x7f0011223344")
        .line("crash_in_c")
        .line("\tcrash.c:12 pc=0x4a3b2c")
        .line("C.helper")
        .line("\tpc=0x4a3b00")
        .frame(
            "runtime.cgocall(0x49be00, 0xc000052e68)",
            "/go/src/runtime/cgocall.go:167 +0x4b",
        );
    let traceback = parse(&text.text());
    assert!(traceback.warnings.is_empty(), "{:?}", traceback.warnings);
    let frames = &traceback.goroutines[0].frames;
    assert_eq!(frames.len(), 4);
    assert!(frames[0].non_go);
    assert!(frames[1].non_go);
    assert!(frames[2].non_go);
    assert_eq!(frames[0].pc, Some(0x7f0011223344));
    assert_eq!(frames[1].function, "crash_in_c");
    assert_eq!(
        (frames[1].file.as_deref(), frames[1].line),
        (Some("crash.c"), Some(12))
    );
    assert_eq!(frames[2].function, "C.helper");
    assert_eq!(frames[2].class(), FunctionClass::NonGo);
    assert!(!frames[3].non_go);
}

#[test]
fn hex_dump_diagnostics_stay_in_the_goroutine() {
    let text = CrashText::new()
        .goroutine("5 [running]")
        .frame("main.f(0x1)", "/app/main.go:3 +0x1")
        .line("runtime: g 5: unexpected return pc for main.f called from 0xdead")
        .line("stack: frame={sp:0xc000040f00, fp:0xc000040f28} stack=[0xc000040000,0xc000041000)")
        .line("0x000000c000040f00:  0x000000000046b2a5 <runtime.gopark+0xa5>  0x0000000000000000 ")
        .line("                    0  1  2  3  4  5  6  7   8  9  a  b  c  d  e  f  0123456789abcdef")
        .line("000000c000040f10: 01 02 03 04  05 06 07 08  09 0a 0b 0c  0d 0e 0f 10  ................")
        .line("                  ^ SP")
        .created_by("main.main", "/app/main.go:9 +0x1");
    let traceback = parse(&text.text());
    assert!(traceback.warnings.is_empty(), "{:?}", traceback.warnings);
    let goroutine = &traceback.goroutines[0];
    assert_eq!(goroutine.diagnostics.len(), 6);
    assert_eq!(goroutine.frames.len(), 1);
    assert!(goroutine.created_by.is_some());
}

#[test]
fn frames_without_header() {
    let text = CrashText::new()
        .line("runtime: morestack on g0, stack [0xc000 0xd000], sp=0xc100, called from")
        .frame(
            "runtime.morestack()",
            "/go/src/runtime/asm_amd64.s:570 +0x8b",
        )
        .line("fatal error: morestack on g0");
    let traceback = parse(&text.text());
    assert_eq!(
        traceback.system_stacks[0].origin,
        SystemStackOrigin::NoHeader
    );
    assert_eq!(traceback.system_stacks[0].frames.len(), 1);
    assert_eq!(traceback.messages.len(), 2);
    assert!(traceback.fatal.is_none());
}

#[test]
fn damaged_lines_become_warnings() {
    let text = CrashText::new()
        .line("listening on :8080")
        .line("panic: boom")
        .goroutine("1 [running]")
        .line("main.worker(0x0?, 0x")
        .line("\t/app/main.go:18 +0x5c")
        .line("main.lost()")
        .goroutine("2 [select")
        .line("\t/app/orphan.go:1 +0x1")
        .line("strange words here")
        .goroutine("3 [running]");
    let traceback = parse(&text.text());
    let kinds: Vec<(WarningKind, usize)> = traceback
        .warnings
        .iter()
        .map(|w| (w.kind, w.text_line))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (WarningKind::UnrecognizedLine, 1),
            (WarningKind::MalformedFrame, 5),
            (WarningKind::MissingFileLine, 7),
            (WarningKind::MalformedHeader, 9),
            (WarningKind::OrphanFileLine, 10),
            (WarningKind::UnrecognizedLine, 11),
        ]
    );
    let first = &traceback.goroutines[0];
    assert_eq!(first.frames[0].function, "main.worker");
    assert_eq!(first.frames[0].line, Some(18));
    assert_eq!(first.frames[1].file, None);
    assert_eq!(traceback.goroutines.len(), 3);
}

#[test]
fn late_panic_is_a_message() {
    let text = CrashText::new()
        .line("panic: first")
        .goroutine("1 [running]")
        .frame("main.main()", "/app/main.go:3 +0x1")
        .line("panic: during traceback");
    let traceback = parse(&text.text());
    assert_eq!(traceback.panics.len(), 1);
    assert_eq!(traceback.warnings[0].kind, WarningKind::LatePanic);
    assert_eq!(traceback.messages[0].text, "panic: during traceback");
}

#[test]
fn goroutine_limit_is_reported() {
    let mut text = String::new();
    for id in 0..MAX_GOROUTINES + 2 {
        text.push_str(&format!(
            "goroutine {id} [select]:\nmain.f()\n\t/a.go:1 +0x1\n"
        ));
    }
    let traceback = parse(&text);
    assert_eq!(traceback.goroutines.len(), MAX_GOROUTINES);
    assert_eq!(traceback.truncated.goroutines, 2);
    assert_eq!(traceback.truncated.frames, 2);
    assert!(traceback.warnings.is_empty());
}

#[test]
fn frame_and_warning_limits_are_reported() {
    let mut text = String::from("goroutine 1 [running]:\n");
    for _ in 0..MAX_FRAMES_PER_STACK + 5 {
        text.push_str("main.f()\n\t/a.go:1 +0x1\n");
    }
    for _ in 0..MAX_WARNINGS + 7 {
        text.push_str("\t/orphan.go:1 +0x1\n");
    }
    let traceback = parse(&text);
    assert_eq!(traceback.goroutines[0].frames.len(), MAX_FRAMES_PER_STACK);
    assert_eq!(traceback.truncated.frames, 5);
    assert_eq!(traceback.warnings.len(), MAX_WARNINGS);
    assert_eq!(traceback.truncated.warnings, 7);
    assert!(!traceback.truncated.is_empty());
}

#[test]
fn long_panic_values_are_bounded() {
    let long = "x".repeat(MAX_LINE_BYTES * 2);
    let mut text = format!("panic: {long}\n");
    for _ in 0..4 {
        text.push_str(&format!("{long}\n"));
    }
    let traceback = parse(&text);
    assert!(traceback.panics[0].value.len() <= MAX_VALUE_BYTES);
    assert_eq!(traceback.truncated.long_lines, 5);
    assert!(traceback.truncated.other > 0);
}

#[test]
fn json_round_trip() {
    let traceback = parse(&panic_in_worker().text());
    let json = serde_json::to_string(&traceback).unwrap();
    let back: Traceback = serde_json::from_str(&json).unwrap();
    assert_eq!(back, traceback);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["goroutines"][1]["status"], "waiting");
    assert_eq!(value["goroutines"][0]["frames"][0]["offset"], "0x7b");
}

#[test]
fn empty_and_unrelated_text() {
    assert!(parse("").is_empty());
    let traceback = parse("hello\nworld\n");
    assert!(traceback.is_empty());
    assert_eq!(traceback.warnings.len(), 2);
    let traceback = parse_bytes(b"panic: \xff\xfe\n", &ParseOptions::default());
    assert_eq!(traceback.panics[0].value, "\u{fffd}\u{fffd}");
}
