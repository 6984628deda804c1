//! `gocrash resolve --inlines` expands each physical frame of a corpus crash
//! into the same inlined frames, files and lines that the Go runtime printed
//! in its own GOTRACEBACK=crash traceback.
//!
//! With GOTRACEBACK=crash the runtime ends each physical frame's position
//! line with `pc=0x...`, and prints the frames inlined into it above it with
//! `(...)` for arguments. PIE crashes are left out: their PCs are runtime
//! addresses and the load base is not in the text.

mod support;

use std::process::Command;

use serde_json::Value;

const GOCRASH: &str = env!("CARGO_BIN_EXE_gocrash");

/// A frame as the runtime printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PrintedFrame {
    function: String,
    position: String,
}

/// A physical frame with its printed PC and every frame printed for it,
/// innermost first.
#[derive(Debug)]
struct PhysicalFrame {
    pc: u64,
    /// The runtime looks up `pc - 1` for a return address. The frame
    /// interrupted by a signal (the one after `runtime.sigpanic`) and a frame
    /// at its function's entry (a goroutine not yet started) are looked up at
    /// `pc` itself.
    lookup_pc: u64,
    /// The frame may also be looked up at `pc` itself. That is so for the
    /// innermost frame of a block, because a stack started from a signal
    /// context (a thread's own section after a fatal signal) holds the
    /// interrupted pc, and for the frame below `runtime.asyncPreempt`. The
    /// text does not say which case applies.
    innermost: bool,
    frames: Vec<PrintedFrame>,
}

/// Returns the function name of a printed call line such as
/// `main.outer(0x40bec7)` or `main.leaf(...)`.
fn function_name(line: &str) -> Option<&str> {
    let open = line.rfind('(')?;
    line.ends_with(')').then(|| &line[..open])
}

fn parse_traceback(text: &str) -> Vec<PhysicalFrame> {
    let mut physical = Vec::new();
    let mut pending: Vec<PrintedFrame> = Vec::new();
    let mut previous_physical: Option<String> = None;
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.windows(2) {
        let (call, position) = (pair[0], pair[1]);
        if call.starts_with("goroutine ") {
            pending.clear();
            previous_physical = None;
            continue;
        }
        let Some(position) = position.strip_prefix('\t') else {
            continue;
        };
        let Some(function) = function_name(call) else {
            continue;
        };
        let file_line = position.split(' ').next().unwrap_or("").to_owned();
        pending.push(PrintedFrame {
            function: function.to_owned(),
            position: file_line,
        });
        let Some(pc_text) = position
            .split(' ')
            .find_map(|field| field.strip_prefix("pc=0x"))
        else {
            if !call.ends_with("(...)") {
                // A physical frame without a pc (such as "created by"): not checked.
                pending.clear();
            }
            continue;
        };
        let pc = u64::from_str_radix(pc_text, 16).expect("hex pc");
        // A frame whose callee is a call the runtime injected (a signal's
        // panic, a debugger call) holds the interrupted pc itself.
        let trapped = matches!(
            previous_physical.as_deref(),
            Some("runtime.sigpanic" | "runtime.debugCallV2")
        );
        // Below an asynchronous preemption Go 1.21 and later symbolize the
        // interrupted pc and Go 1.19 symbolizes pc-1; either is accepted.
        let preempted = previous_physical.as_deref() == Some("runtime.asyncPreempt");
        // The runtime prints `+0x...` only for a pc past the entry.
        let at_entry = !position.split(' ').any(|field| field.starts_with("+0x"));
        physical.push(PhysicalFrame {
            pc,
            lookup_pc: if trapped || at_entry { pc } else { pc - 1 },
            innermost: previous_physical.is_none() || preempted,
            frames: std::mem::take(&mut pending),
        });
        previous_physical = Some(function.to_owned());
    }
    physical
}

fn resolve_inlined(binary: &std::path::Path, pcs: &[u64]) -> Vec<Vec<PrintedFrame>> {
    let output = Command::new(GOCRASH)
        .args(["resolve", "--inlines", "--json", "--binary"])
        .arg(binary)
        .args(pcs.iter().map(|pc| format!("0x{pc:x}")))
        .output()
        .expect("gocrash runs");
    assert!(
        output.status.success(),
        "gocrash failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON array");
    results
        .iter()
        .map(|result| {
            result["frames"]
                .as_array()
                .expect("frames")
                .iter()
                .map(|frame| PrintedFrame {
                    function: printed_name(frame["function"].as_str().unwrap_or("?")),
                    position: format!(
                        "{}:{}",
                        frame["file"].as_str().unwrap_or("?"),
                        frame["line"].as_i64().unwrap_or(0)
                    ),
                })
                .collect()
        })
        .collect()
}

/// Returns the name the runtime prints for a function: `panic` for
/// `runtime.gopanic` (the runtime's `printFuncName` does this rename).
fn printed_name(function: &str) -> String {
    match function {
        "runtime.gopanic" => "panic".to_owned(),
        other => elide_type_arguments(other),
    }
}

/// Replaces each outermost `[...]` group with `[...]`, as the runtime prints
/// generic functions (`main.Drain[...]`) where the symbol table names the
/// shape (`main.Drain[go.shape.string]`).
fn elide_type_arguments(function: &str) -> String {
    let mut out = String::with_capacity(function.len());
    let mut depth = 0usize;
    for c in function.chars() {
        match c {
            '[' => {
                if depth == 0 {
                    out.push_str("[...]");
                }
                depth += 1;
            }
            ']' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn generic_names_are_elided_like_the_runtime() {
    assert_eq!(
        elide_type_arguments("main.Drain[go.shape.string]"),
        "main.Drain[...]"
    );
    assert_eq!(
        elide_type_arguments("main.(*Stack[go.shape.map[string]int]).Pop"),
        "main.(*Stack[...]).Pop"
    );
    assert_eq!(elide_type_arguments("main.main.func1"), "main.main.func1");
}

#[test]
fn parse_traceback_groups_inlined_frames() {
    let text = "goroutine 1 [running]:\n\
        runtime.sigpanic()\n\
        \t/go/src/runtime/signal_unix.go:835 +0x2f6 fp=0xc0 sp=0xc1 pc=0x4458d6\n\
        main.leaf(...)\n\
        \t/src/main.go:13\n\
        main.outer(0x40bec7)\n\
        \t/src/main.go:21 +0x6d fp=0xc2 sp=0xc3 pc=0x48102d\n\
        main.main()\n\
        \t/src/main.go:38 +0x5e fp=0xc4 sp=0xc5 pc=0x48113e\n";
    let frames = parse_traceback(text);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0].lookup_pc, 0x4458d5);
    assert_eq!(
        frames[1].lookup_pc, 0x48102d,
        "the frame after sigpanic is looked up at its pc"
    );
    assert_eq!(frames[1].frames.len(), 2);
    assert_eq!(
        frames[1].frames[0],
        PrintedFrame {
            function: "main.leaf".into(),
            position: "/src/main.go:13".into()
        }
    );
    assert_eq!(frames[1].frames[1].function, "main.outer");
    assert_eq!(frames[2].lookup_pc, 0x48113d);
}

#[test]
fn inlined_frames_match_runtime_traceback() {
    let Some(manifest) = support::manifest() else {
        return;
    };
    let mut checked_frames = 0;
    let mut checked_inlined = 0;
    let mut failures = Vec::new();
    for crash in manifest.crashes.iter().filter(|crash| crash.mode != "pie") {
        let text = std::fs::read_to_string(&crash.stderr)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", crash.stderr.display()));
        let physical = parse_traceback(&text);
        assert!(
            !physical.is_empty(),
            "{}: no frames with pc= in the traceback",
            crash.stderr.display()
        );
        let mut pcs: Vec<u64> = physical.iter().map(|frame| frame.lookup_pc).collect();
        pcs.extend(physical.iter().map(|frame| frame.pc));
        let resolved = resolve_inlined(&crash.binary, &pcs);
        let (at_lookup_pc, at_pc) = resolved.split_at(physical.len());
        for ((frame, got), got_at_pc) in physical.iter().zip(at_lookup_pc).zip(at_pc) {
            checked_frames += 1;
            checked_inlined += frame.frames.len() - 1;
            let matches = &frame.frames == got || (frame.innermost && &frame.frames == got_at_pc);
            if !matches {
                failures.push(format!(
                    "{} pc=0x{:x}: runtime printed {:?}, gocrash resolved {:?}",
                    crash.binary.display(),
                    frame.pc,
                    frame.frames,
                    got
                ));
            }
        }
    }
    eprintln!("checked {checked_frames} physical frames with {checked_inlined} inlined frames");
    assert!(
        failures.is_empty(),
        "{} frames differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked_inlined > 0, "no crash printed an inlined frame");
}
