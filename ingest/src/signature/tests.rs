//! Signatures of whole crash texts: a real Go 1.19 crash and small texts
//! written the way the runtime prints them.

use super::*;
use crate::traceback::parse;

/// The committed sample: a nil pointer panic three calls below main.
const NILPOINTER_GO119: &str = include_str!("../../../corpus/samples/nilpointer-go1.19.stderr.txt");

fn signature_of(text: &str) -> Signature {
    compute(&CrashInput::from_traceback(&parse(text)))
}

/// Adds `delta` to every line number of `main.go` in a crash text, as if
/// that many lines had been inserted at the top of the file.
fn shift_main_lines(text: &str, delta: u32) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line.split_once("main.go:") {
            Some((path, rest)) => {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let number: u32 = digits.parse().expect("a line number after main.go:");
                out.push_str(&format!(
                    "{path}main.go:{}{}",
                    number + delta,
                    &rest[digits.len()..]
                ));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Builds the text of a panic in `function`, called from `main.main`, as
/// Go 1.22 prints it.
fn panic_text(value: &str, function: &str) -> String {
    format!(
        "panic: {value}\n\
         \n\
         goroutine 1 gp=0xc0000061c0 m=0 mp=0x52e5c0 [running]:\n\
         panic({{0x48ccc0?, 0xc000082090?}})\n\
         \t/usr/local/go/src/runtime/panic.go:770 +0x132 fp=0xc000067e90 sp=0xc000067de0 pc=0x43a312\n\
         {function}(0x0?)\n\
         \t/build/svc/main.go:14 +0x25 fp=0xc000067f40 sp=0xc000067e90 pc=0x462145\n\
         main.main()\n\
         \t/build/svc/main.go:20 +0x13 fp=0xc000067f50 sp=0xc000067f40 pc=0x4621b3\n\
         runtime.main()\n\
         \t/usr/local/go/src/runtime/proc.go:271 +0x29d fp=0xc000067fe0 sp=0xc000067f50 pc=0x43cf3d\n"
    )
}

#[test]
fn nilpointer_sample_signature() {
    let signature = signature_of(NILPOINTER_GO119);
    assert_eq!(signature.id.len(), 16);
    assert!(signature.id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        signature.kind,
        "panic: runtime error: invalid memory address or nil pointer dereference"
    );
    assert_eq!(
        signature.title,
        "panic: runtime error: invalid memory address or nil pointer dereference in main.(*Config).Port"
    );
    let functions: Vec<&str> = signature
        .frames
        .iter()
        .map(|f| f.function.as_str())
        .collect();
    assert_eq!(
        functions,
        [
            "main.(*Config).Port",
            "main.listenAddress",
            "main.startServer",
            "main.main"
        ]
    );
    assert_eq!(signature.frames[0].file.as_deref(), Some("main.go"));
    assert_eq!(signature.frames_from, FrameOrigin::Program);
}

#[test]
fn inserted_lines_keep_signature() {
    let shifted = shift_main_lines(NILPOINTER_GO119, 7);
    assert_ne!(shifted, NILPOINTER_GO119);
    assert!(shifted.contains("nilpointer/main.go:28 "));
    assert_eq!(signature_of(&shifted).id, signature_of(NILPOINTER_GO119).id);
}

#[test]
fn trimmed_paths_keep_signature() {
    let trimmed = NILPOINTER_GO119
        .replace(
            "/work/main/corpus/programs/nilpointer/",
            "gocrash.test/corpus/nilpointer/",
        )
        .replace("/usr/lib/go-1.19/src/", "");
    assert_eq!(signature_of(&trimmed).id, signature_of(NILPOINTER_GO119).id);
}

#[test]
fn different_function_changes_signature() {
    let first = signature_of(&panic_text("bad order 12", "main.acceptOrder"));
    let second = signature_of(&panic_text("bad order 12", "main.rejectOrder"));
    assert_eq!(first.kind, "panic: bad order N");
    assert_eq!(second.kind, "panic: bad order N");
    assert_ne!(first.id, second.id);
    assert_eq!(first.title, "panic: bad order N in main.acceptOrder");
}

#[test]
fn different_panic_kind_changes_signature() {
    let nil = signature_of(&panic_text(
        "runtime error: invalid memory address or nil pointer dereference",
        "main.acceptOrder",
    ));
    let index = signature_of(&panic_text(
        "runtime error: index out of range [4] with length 2",
        "main.acceptOrder",
    ));
    assert_ne!(nil.id, index.id);
    assert_eq!(index.kind, "panic: runtime error: index out of range");
}

#[test]
fn panic_value_numbers_do_not_enter_signature() {
    let first = signature_of(&panic_text("order 12: bad quantity", "main.acceptOrder"));
    let second = signature_of(&panic_text("order 977: bad quantity", "main.acceptOrder"));
    assert_eq!(first.id, second.id);
    let other_message = signature_of(&panic_text("order 12: no customer", "main.acceptOrder"));
    assert_ne!(first.id, other_message.id);
    let first = signature_of(&panic_text(
        "runtime error: index out of range [4] with length 2",
        "main.acceptOrder",
    ));
    let second = signature_of(&panic_text(
        "runtime error: index out of range [9] with length 9",
        "main.acceptOrder",
    ));
    assert_eq!(first.id, second.id);
}

#[test]
fn closure_wrappers_of_old_and_new_releases_agree() {
    let old = "fatal error: concurrent map writes\n\
               \n\
               goroutine 18 [running]:\n\
               main.fill(0x0?)\n\
               \t/src/main.go:20 +0x45\n\
               main.main.func2()\n\
               \t/src/main.go:31 +0x25\n\
               created by main.main\n\
               \t/src/main.go:31 +0x8e\n";
    let new = "fatal error: concurrent map writes\n\
               \n\
               goroutine 5 gp=0xc000007a40 m=2 mp=0xc000080008 [running]:\n\
               main.fill(0xc000012345?)\n\
               \t/src/main.go:20 +0x45\n\
               main.main.gowrap1()\n\
               \t/src/main.go:30 +0x25\n\
               created by main.main in goroutine 1\n\
               \t/src/main.go:30 +0x8e\n";
    let old = signature_of(old);
    let new = signature_of(new);
    assert_eq!(old.id, new.id);
    assert_eq!(old.title, "fatal error: concurrent map writes in main.fill");
    assert_eq!(new.frames[1].function, "main.main.func");
}

/// Goroutine blocks of a deadlocked program.
const DEADLOCK_BLOCKS: [&str; 3] = [
    "goroutine 1 [chan receive]:\n\
     main.waitForShutdown(0x0?)\n\
     \t/src/main.go:12 +0x25\n\
     main.main()\n\
     \t/src/main.go:40 +0x85\n",
    "goroutine 2 [force gc (idle)]:\n\
     runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n\
     \t/go/src/runtime/proc.go:363 +0xd6\n",
    "goroutine 6 [semacquire]:\n\
     sync.(*Mutex).Lock(...)\n\
     \t/go/src/sync/mutex.go:83\n\
     main.snapshot()\n\
     \t/src/main.go:25 +0x3e\n\
     created by main.main\n\
     \t/src/main.go:33 +0x5a\n",
];

fn deadlock_text(order: [usize; 3]) -> String {
    let mut text = String::from("fatal error: all goroutines are asleep - deadlock!\n");
    for index in order {
        text.push('\n');
        text.push_str(DEADLOCK_BLOCKS[index]);
    }
    text
}

#[test]
fn deadlock_uses_blocked_frame_set() {
    let signature = signature_of(&deadlock_text([0, 1, 2]));
    assert_eq!(
        signature.kind,
        "fatal error: all goroutines are asleep - deadlock!"
    );
    let functions: Vec<&str> = signature
        .frames
        .iter()
        .map(|f| f.function.as_str())
        .collect();
    assert_eq!(functions, ["main.snapshot", "main.waitForShutdown"]);
    assert_eq!(
        signature.title,
        "deadlock: blocked in main.snapshot, main.waitForShutdown"
    );

    let reordered = signature_of(&deadlock_text([2, 1, 0]));
    assert_eq!(reordered.id, signature.id);
}

#[test]
fn external_sigquit_uses_main_goroutine() {
    let text = "SIGQUIT: quit\n\
                PC=0x40268c m=0 sigcode=0\n\
                \n\
                goroutine 0 gp=0x5d3e40 m=0 mp=0x5d4aa0 [idle]:\n\
                runtime.futex(0x5d4be0, 0x80, 0x0, 0x0, 0x0, 0x0)\n\
                \t/go/src/runtime/sys_linux_amd64.s:557 +0x21\n\
                \n\
                goroutine 1 gp=0xc0000061c0 m=nil [chan receive]:\n\
                runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n\
                \t/go/src/runtime/proc.go:402 +0xce\n\
                main.serve(0xc00001e0c0)\n\
                \t/src/main.go:19 +0x2b\n\
                main.main()\n\
                \t/src/main.go:25 +0x2f\n";
    let signature = signature_of(text);
    assert_eq!(signature.kind, "SIGQUIT sent to the process");
    assert_eq!(signature.frames[0].function, "main.serve");
    assert_eq!(signature.title, "SIGQUIT sent while main was in main.serve");
}

#[test]
fn cgo_fault_names_c_function_and_caller() {
    let new = "SIGSEGV: segmentation violation\n\
               PC=0x49be80 m=0 sigcode=1 addr=0x28\n\
               signal arrived during cgo execution\n\
               \n\
               goroutine 1 gp=0xc0000061c0 m=0 mp=0x579660 [syscall]:\n\
               runtime.cgocall(0x49be90, 0xc000088e50)\n\
               \t/go/src/runtime/cgocall.go:167 +0x4b\n\
               main._Cfunc_checksum_packet(0x7)\n\
               \t_cgo_gotypes.go:58 +0x45\n\
               main.verify(0x0?)\n\
               \t/src/main.go:43 +0x13\n\
               main.main()\n\
               \t/src/main.go:47 +0x13\n";
    let old = "fatal error: unexpected signal during runtime execution\n\
               [signal SIGSEGV: segmentation violation code=0x1 addr=0x28 pc=0x482eb0]\n\
               \n\
               runtime stack:\n\
               runtime.throw({0x4a10cd?, 0xc0?})\n\
               \t/go/src/runtime/panic.go:1047 +0x5d\n\
               runtime.sigpanic()\n\
               \t/go/src/runtime/signal_unix.go:819 +0x369\n\
               \n\
               goroutine 1 [syscall]:\n\
               runtime.cgocall(0x482ec0, 0xc000048f18)\n\
               \t/go/src/runtime/cgocall.go:158 +0x5c\n\
               main._Cfunc_checksum_packet(0x7)\n\
               \t_cgo_gotypes.go:53 +0x4c\n\
               main.verify(0x406fb9?)\n\
               \t/src/main.go:43 +0x13\n\
               main.main()\n\
               \t/src/main.go:47 +0x13\n";
    let new = signature_of(new);
    let old = signature_of(old);
    assert_eq!(new.kind, "SIGSEGV in C code");
    assert_eq!(new.c_function.as_deref(), Some("checksum_packet"));
    assert_eq!(
        new.title,
        "SIGSEGV in C checksum_packet called from main.verify"
    );
    assert!(new.flags.during_cgo);
    assert_eq!(old.id, new.id);
    assert!(old.flags.system_stack);
}

#[test]
fn elided_frames_are_not_considered() {
    let mut text = String::from(
        "runtime: goroutine stack exceeds 65536-byte limit\n\
         fatal error: stack overflow\n\
         \n\
         goroutine 1 [running]:\n",
    );
    for _ in 0..50 {
        text.push_str("main.depth(0x0?)\n\t/src/main.go:9 +0x1d\n");
    }
    text.push_str("...200 frames elided...\n");
    text.push_str("main.depth(0x0?)\n\t/src/main.go:9 +0x1d\n");
    text.push_str("main.main()\n\t/src/main.go:14 +0x1d\n");
    let signature = signature_of(&text);
    assert!(signature.flags.frames_elided);
    let functions: Vec<&str> = signature
        .frames
        .iter()
        .map(|f| f.function.as_str())
        .collect();
    assert_eq!(functions, ["main.depth"]);
    assert_eq!(signature.title, "fatal error: stack overflow in main.depth");
}

#[test]
fn empty_text_has_unknown_kind() {
    let signature = signature_of("");
    assert_eq!(signature.kind, "crash");
    assert_eq!(signature.title, "crash");
    assert!(signature.flags.no_frames);
    assert_eq!(signature.frames_from, FrameOrigin::None);
}
