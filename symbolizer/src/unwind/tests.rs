//! Walks over synthetic stacks: a table of functions with fixed frame
//! sizes, and memory holding the return addresses a real stack would.

use super::*;
use crate::runtime::memory::TestMemory;

/// A function table whose functions each have one constant frame size.
#[derive(Default)]
struct Funcs {
    funcs: Vec<(FuncInfo, u64)>,
}

impl Funcs {
    fn add(&mut self, name: &str, entry: u64, size: u64, frame: u64, flag: u8) {
        let info = FuncInfo {
            entry,
            end: entry + size,
            name: name.into(),
            flag,
        };
        self.funcs.push((info, frame));
    }
}

impl FuncTable for Funcs {
    fn func(&self, pc: u64) -> Option<FuncInfo> {
        self.funcs
            .iter()
            .find(|(f, _)| f.entry <= pc && pc < f.end)
            .map(|(f, _)| f.clone())
    }

    fn sp_delta(&self, func: &FuncInfo, pc: u64) -> Option<u64> {
        // Frames are allocated after a 4-byte prologue, so the entry has delta 0.
        let (_, frame) = self.funcs.iter().find(|(f, _)| f == func)?;
        Some(if pc < func.entry + 4 { 0 } else { *frame })
    }

    fn source_frames(&self, pc: u64) -> SourceFrames {
        self.func(pc)
            .map(|f| {
                SourceFrames::from([SourceFrame {
                    function: f.name.to_string(),
                    file: None,
                    line: None,
                    inlined: false,
                }])
            })
            .unwrap_or_default()
    }

    fn func_by_name(&self, name: &str) -> Option<FuncInfo> {
        self.funcs
            .iter()
            .find(|(f, _)| &*f.name == name)
            .map(|(f, _)| f.clone())
    }
}

fn names(walk: &Walk) -> Vec<&str> {
    walk.frames
        .iter()
        .map(|f| f.function().unwrap_or("?"))
        .collect()
}

fn goroutine_funcs() -> Funcs {
    let mut funcs = Funcs::default();
    funcs.add("runtime.goexit", 0x1000, 0x10, 0, FUNC_FLAG_TOP_FRAME);
    funcs.add("main.main", 0x2000, 0x100, 0x20, 0);
    funcs.add("main.leaf", 0x3000, 0x100, 0x10, 0);
    funcs.add("runtime.sigpanic", 0x4000, 0x100, 0x30, 0);
    funcs
}

#[test]
fn amd64_walk_reaches_goexit() {
    let funcs = goroutine_funcs();
    let mut memory = TestMemory::new();
    // leaf at sp 0x8000 with a 0x10 frame: return address at 0x8010.
    memory.put_u64(0x8010, 0x2050);
    // main at sp 0x8018 with a 0x20 frame: return address at 0x8038.
    memory.put_u64(0x8038, 0x1001);
    let start = Start {
        regs: Regs {
            pc: 0x3040,
            sp: 0x8000,
            fp: 0,
            lr: None,
        },
        found_by: FrameSource::Sched,
        trapped: false,
    };
    let walk = walk(
        Arch::Amd64,
        &memory,
        &funcs,
        start,
        &StackContext::default(),
    );
    assert_eq!(names(&walk), ["main.leaf", "main.main", "runtime.goexit"]);
    assert_eq!(
        walk.stop,
        StopReason::TopFrame {
            function: "runtime.goexit".into()
        }
    );
    let main = &walk.frames[1];
    assert_eq!(
        (main.pc, main.symbol_pc, main.sp, main.fp),
        (0x2050, 0x204f, 0x8018, Some(0x8040))
    );
    assert_eq!(main.found_by, FrameSource::Pcsp);
    assert_eq!(walk.frames[0].found_by, FrameSource::Sched);
}

#[test]
fn amd64_frame_after_sigpanic_is_trapped() {
    let funcs = goroutine_funcs();
    let mut memory = TestMemory::new();
    // sigpanic at sp 0x8000, frame 0x30: the pushed faulting pc at 0x8030.
    memory.put_u64(0x8030, 0x3044);
    memory.put_u64(0x8048, 0x2050);
    memory.put_u64(0x8070, 0x1001);
    let start = Start {
        regs: Regs {
            pc: 0x4010,
            sp: 0x8000,
            fp: 0,
            lr: None,
        },
        found_by: FrameSource::Sched,
        trapped: false,
    };
    let walk = walk(
        Arch::Amd64,
        &memory,
        &funcs,
        start,
        &StackContext::default(),
    );
    assert_eq!(
        names(&walk),
        [
            "runtime.sigpanic",
            "main.leaf",
            "main.main",
            "runtime.goexit"
        ]
    );
    let faulting = &walk.frames[1];
    assert!(faulting.trapped);
    assert_eq!(faulting.symbol_pc, 0x3044);
    assert!(!walk.frames[2].trapped);
}

#[test]
fn amd64_walk_crosses_signal_frame() {
    let mut funcs = goroutine_funcs();
    funcs.add("runtime.raise", 0x5000, 0x20, 0, 0);
    funcs.add("runtime.sigtramp", 0x6000, 0x100, 0x58, FUNC_FLAG_TOP_FRAME);
    let mut memory = TestMemory::new();
    // raise (leaf, delta 0) at sp 0x9000 returns to sigtramp.
    memory.put_u64(0x9000, 0x6080);
    // sigtramp frame at 0x9008 with delta 0x58: top 0x9068, ucontext there.
    let uc = 0x9068;
    memory.put_u64(uc + 40 + 16 * 8, 0x3044);
    memory.put_u64(uc + 40 + 15 * 8, 0x8000);
    memory.put_u64(uc + 40 + 10 * 8, 0x8040);
    memory.put_u64(0x8010, 0x2050);
    memory.put_u64(0x8038, 0x1001);
    let context = StackContext {
        goroutine: Some(StackBounds {
            lo: 0x7000,
            hi: 0x8040,
        }),
        signal: Some(StackBounds {
            lo: 0x8800,
            hi: 0xa000,
        }),
        ..StackContext::default()
    };
    let start = Start {
        regs: Regs {
            pc: 0x5001,
            sp: 0x9000,
            fp: 0,
            lr: None,
        },
        found_by: FrameSource::ThreadRegisters,
        trapped: true,
    };
    let walk = walk(Arch::Amd64, &memory, &funcs, start, &context);
    assert_eq!(
        names(&walk),
        [
            "runtime.raise",
            "runtime.sigtramp",
            "main.leaf",
            "main.main",
            "runtime.goexit"
        ]
    );
    let interrupted = &walk.frames[2];
    assert_eq!(interrupted.found_by, FrameSource::SignalContext);
    assert!(interrupted.trapped);
    assert_eq!(interrupted.stack, StackKind::Goroutine);
    assert_eq!(walk.frames[1].stack, StackKind::Signal);
}

#[test]
fn systemstack_switches_to_goroutine() {
    let mut funcs = goroutine_funcs();
    funcs.add("runtime.systemstack", 0x7000, 0x100, 0x8, 0);
    funcs.add("runtime.fatalthrow.func1", 0x7200, 0x100, 0x18, 0);
    funcs.add("runtime.systemstack_switch", 0x7600, 0x20, 0x8, 0);
    funcs.add("runtime.mstart", 0x7400, 0x100, 0, FUNC_FLAG_TOP_FRAME);
    let mut memory = TestMemory::new();
    // On g0: fatalthrow.func1 at 0xa000, frame 0x18, returns into systemstack.
    memory.put_u64(0xa018, 0x7040);
    // The goroutine: sched is inside systemstack_switch at sp 0x7ff0, whose
    // 8-byte frame returns into main.leaf.
    memory.put_u64(0x7ff8, 0x3050);
    memory.put_u64(0x8010, 0x2050);
    memory.put_u64(0x8038, 0x1001);
    let context = StackContext {
        goroutine: Some(StackBounds {
            lo: 0x7000,
            hi: 0x8048,
        }),
        system: Some(StackBounds {
            lo: 0x9000,
            hi: 0xb000,
        }),
        curg_sched: Some(Regs {
            pc: 0x7608,
            sp: 0x7ff0,
            fp: 0,
            lr: None,
        }),
        ..StackContext::default()
    };
    let start = Start {
        regs: Regs {
            pc: 0x7210,
            sp: 0xa000,
            fp: 0,
            lr: None,
        },
        found_by: FrameSource::SignalContext,
        trapped: true,
    };
    let walk = walk(Arch::Amd64, &memory, &funcs, start, &context);
    assert_eq!(
        names(&walk),
        [
            "runtime.fatalthrow.func1",
            "runtime.systemstack",
            "runtime.systemstack_switch",
            "main.leaf",
            "main.main",
            "runtime.goexit"
        ]
    );
    assert_eq!(walk.frames[1].stack, StackKind::System);
    assert_eq!(walk.frames[1].sp, 0xa020);
    assert_eq!(walk.frames[2].found_by, FrameSource::StackSwitch);
    assert_eq!(walk.frames[2].sp, 0x7ff0);
    assert_eq!(walk.frames[2].stack, StackKind::Goroutine);
    assert!(walk.stop.is_complete());
}

#[test]
fn mcall_without_goroutine_ends_system_stack() {
    let mut funcs = goroutine_funcs();
    funcs.add("runtime.mcall", 0x7000, 0x100, 0x10, 0);
    funcs.add("runtime.schedule", 0x7200, 0x100, 0x18, 0);
    let mut memory = TestMemory::new();
    memory.put_u64(0xa018, 0x7040);
    let context = StackContext {
        system: Some(StackBounds {
            lo: 0x9000,
            hi: 0xb000,
        }),
        ..StackContext::default()
    };
    let start = Start {
        regs: Regs {
            pc: 0x7210,
            sp: 0xa000,
            fp: 0,
            lr: None,
        },
        found_by: FrameSource::SignalContext,
        trapped: true,
    };
    let walk = walk(Arch::Amd64, &memory, &funcs, start, &context);
    assert_eq!(names(&walk), ["runtime.schedule", "runtime.mcall"]);
    assert_eq!(
        walk.stop,
        StopReason::TopFrame {
            function: "runtime.mcall".into()
        }
    );
}

#[test]
fn deep_stack_keeps_both_ends_and_counts_middle() {
    let mut funcs = Funcs::default();
    funcs.add("runtime.goexit", 0x1000, 0x10, 0, FUNC_FLAG_TOP_FRAME);
    funcs.add("main.depth", 0x2000, 0x100, 0x10, 0);
    let depth = MAX_FRAMES as u64 + 300;
    let mut memory = TestMemory::new();
    let base = 0x10_0000;
    // Each main.depth frame is 0x18 bytes with its return address on top.
    let mut bytes = Vec::new();
    for index in 0..depth {
        let return_pc: u64 = if index + 1 == depth { 0x1001 } else { 0x2050 };
        bytes.extend_from_slice(&[0u8; 0x10]);
        bytes.extend_from_slice(&return_pc.to_le_bytes());
    }
    memory.put(base, &bytes);
    let start = Start {
        regs: Regs {
            pc: 0x2050,
            sp: base,
            fp: 0,
            lr: None,
        },
        found_by: FrameSource::Sched,
        trapped: false,
    };
    let walk = walk(
        Arch::Amd64,
        &memory,
        &funcs,
        start,
        &StackContext::default(),
    );
    assert!(walk.stop.is_complete(), "{:?}", walk.stop);
    assert_eq!(walk.frames.len(), MAX_FRAMES);
    let elided = walk.elided.expect("the stack is deeper than MAX_FRAMES");
    assert_eq!(elided.after, MAX_FRAMES / 2);
    assert_eq!(elided.physical, depth + 1 - MAX_FRAMES as u64);
    assert_eq!(walk.logical_frame_count(0), depth + 1);
    assert_eq!(
        walk.frames.last().and_then(|f| f.function()),
        Some("runtime.goexit")
    );
    assert_eq!(
        walk.frames[elided.after].sp,
        base + (depth - (MAX_FRAMES as u64 / 2) + 1) * 0x18
    );
}

#[test]
fn walk_without_progress_stops() {
    let mut funcs = Funcs::default();
    funcs.add("main.spin", 0x2000, 0x100, 0, 0);
    let mut memory = TestMemory::new();
    // A frameless arm64 function whose saved slot "returns" into itself at
    // the same sp: nothing moves, so the walk must stop.
    memory.put_u64(0x8000, 0x2050);
    let start = Start {
        regs: Regs {
            pc: 0x2050,
            sp: 0x8000,
            fp: 0,
            lr: None,
        },
        found_by: FrameSource::Sched,
        trapped: false,
    };
    let walk = walk(
        Arch::Arm64,
        &memory,
        &funcs,
        start,
        &StackContext::default(),
    );
    assert_eq!(walk.frames.len(), 1);
    assert_eq!(
        walk.stop,
        StopReason::NoProgress {
            pc: 0x2050,
            sp: 0x8000,
            next_sp: 0x8000
        }
    );
}

#[test]
fn unknown_pc_without_frame_pointer_stops() {
    let funcs = goroutine_funcs();
    let memory = TestMemory::new();
    let start = Start {
        regs: Regs {
            pc: 0xdead_0000,
            sp: 0x8000,
            fp: 0,
            lr: None,
        },
        found_by: FrameSource::ThreadRegisters,
        trapped: true,
    };
    let walk = walk(
        Arch::Amd64,
        &memory,
        &funcs,
        start,
        &StackContext::default(),
    );
    assert_eq!(walk.frames.len(), 1);
    assert!(walk.frames[0].source.is_empty());
    assert_eq!(walk.stop, StopReason::UnknownPc { pc: 0xdead_0000 });
}

#[test]
fn c_frames_follow_frame_pointers() {
    let funcs = goroutine_funcs();
    let mut memory = TestMemory::new();
    // C frame at sp 0x8000 with rbp 0x8020: saved rbp and return into main.main.
    memory.put_u64(0x8020, 0x8100);
    memory.put_u64(0x8028, 0x2050);
    memory.put_u64(0x8030 + 0x20 + 8 - 8, 0x1001);
    let start = Start {
        regs: Regs {
            pc: 0xdead_0000,
            sp: 0x8000,
            fp: 0x8020,
            lr: None,
        },
        found_by: FrameSource::ThreadRegisters,
        trapped: true,
    };
    let walk = walk(
        Arch::Amd64,
        &memory,
        &funcs,
        start,
        &StackContext::default(),
    );
    assert_eq!(names(&walk), ["?", "main.main", "runtime.goexit"]);
    assert_eq!(walk.frames[1].found_by, FrameSource::FramePointer);
}

#[test]
fn arm64_leaf_uses_lr_then_saved_slots() {
    let mut funcs = Funcs::default();
    funcs.add("runtime.goexit", 0x1000, 0x10, 0, FUNC_FLAG_TOP_FRAME);
    funcs.add("main.main", 0x2000, 0x100, 0x20, 0);
    funcs.add("main.leaf", 0x3000, 0x100, 0, 0);
    let mut memory = TestMemory::new();
    // main's frame at sp 0x8000 stores its LR (into goexit) at 0(SP).
    memory.put_u64(0x8000, 0x1004);
    let start = Start {
        regs: Regs {
            pc: 0x3010,
            sp: 0x8000,
            fp: 0,
            lr: Some(0x2054),
        },
        found_by: FrameSource::ThreadRegisters,
        trapped: true,
    };
    let walk = walk(
        Arch::Arm64,
        &memory,
        &funcs,
        start,
        &StackContext::default(),
    );
    assert_eq!(names(&walk), ["main.leaf", "main.main", "runtime.goexit"]);
    assert_eq!(walk.frames[1].sp, 0x8000);
    assert_eq!(walk.frames[2].sp, 0x8020);
}

#[test]
fn arm64_injected_sigpanic_moves_sp_one_slot() {
    let mut funcs = goroutine_funcs();
    funcs.add("main.leaf0", 0x3800, 0x100, 0, 0);
    let mut memory = TestMemory::new();
    // sigpanic at sp 0x8000 (frame 0x30) saved LR = faulting pc in leaf0.
    memory.put_u64(0x8000, 0x3810);
    // The injected slot at 0x8030 holds leaf0's LR (into main).
    memory.put_u64(0x8030, 0x2054);
    // main's frame at 0x8040 saves its LR into goexit.
    memory.put_u64(0x8040, 0x1004);
    let start = Start {
        regs: Regs {
            pc: 0x4010,
            sp: 0x8000,
            fp: 0,
            lr: None,
        },
        found_by: FrameSource::Sched,
        trapped: false,
    };
    let walk = walk(
        Arch::Arm64,
        &memory,
        &funcs,
        start,
        &StackContext::default(),
    );
    assert_eq!(
        names(&walk),
        [
            "runtime.sigpanic",
            "main.leaf0",
            "main.main",
            "runtime.goexit"
        ]
    );
    assert!(walk.frames[1].trapped);
    assert_eq!(walk.frames[1].sp, 0x8040);
    assert_eq!(walk.frames[2].sp, 0x8040);
}

/// Builds a frame at `pc` with nothing else known.
fn bare_frame(pc: u64) -> Frame {
    Frame {
        pc,
        symbol_pc: pc,
        trapped: false,
        sp: 0x1000 + pc,
        fp: None,
        entry: None,
        source: SourceFrames::default(),
        found_by: FrameSource::Pcsp,
        stack: StackKind::Goroutine,
    }
}

#[test]
fn collector_keeps_at_most_its_limit() {
    let mut frames = super::walker::Collector::new(4);
    for pc in 0..10 {
        frames.push(bare_frame(pc));
    }
    let (kept, elided) = frames.finish();
    let pcs: Vec<u64> = kept.iter().map(|f| f.pc).collect();
    assert_eq!(pcs, vec![0, 1, 8, 9]);
    let elided = elided.expect("frames were dropped");
    assert_eq!(elided.after, 2);
    assert_eq!(elided.physical, 6);
}

#[test]
fn collector_with_no_room_keeps_nothing() {
    let mut frames = super::walker::Collector::new(0);
    for pc in 0..3 {
        frames.push(bare_frame(pc));
    }
    let (kept, elided) = frames.finish();
    assert!(kept.is_empty());
    assert_eq!(elided.map(|e| e.physical), Some(3));
}

#[test]
fn stop_reason_json_has_hex_addresses() {
    let unreadable = StopReason::Unreadable {
        addr: 0xda2d_0bfa_9b4b_c8b7,
        error: "not in any segment of the core".into(),
    };
    assert_eq!(
        serde_json::to_string(&unreadable).unwrap(),
        r#"{"kind":"unreadable","addr":"0xda2d0bfa9b4bc8b7","error":"not in any segment of the core"}"#
    );
    let no_progress = StopReason::NoProgress {
        pc: 0x4c684a,
        sp: 0xc000036778,
        next_sp: 0xc000036770,
    };
    assert_eq!(
        serde_json::to_string(&no_progress).unwrap(),
        r#"{"kind":"no_progress","pc":"0x4c684a","sp":"0xc000036778","next_sp":"0xc000036770"}"#
    );
    let unknown = StopReason::UnknownPc { pc: 0x7fecc0a2a2ec };
    assert_eq!(
        serde_json::to_string(&unknown).unwrap(),
        r#"{"kind":"unknown_pc","pc":"0x7fecc0a2a2ec"}"#
    );
}
