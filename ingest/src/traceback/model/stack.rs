//! Goroutine blocks, frames and the stacks printed without a goroutine.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::super::funcname::{classify_function, FunctionClass};
use super::{hex, hex_option, Message};

/// A goroutine id as the runtime prints it (`goid`). Ids are never reused
/// within one process; `0` is a thread's g0 or signal goroutine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GoroutineId(pub u64);

impl fmt::Display for GoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One `goroutine N [...]:` block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goroutine {
    pub id: GoroutineId,
    /// The scheduler state (`g.atomicstatus`) as the runtime names it.
    pub status: GoroutineStatus,
    /// Why a waiting goroutine waits (`g.waitreason`), exactly as printed:
    /// `chan receive`, `sync.Mutex.Lock`, `chan receive (durable)`. The set
    /// grows with every Go release, so it stays a string.
    pub wait_reason: Option<String>,
    /// `N minutes`: how long the goroutine has been blocked, counted from the
    /// first garbage collection that saw it blocked. Grows between dumps.
    pub wait_minutes: Option<u64>,
    /// `locked to thread`: the goroutine called `runtime.LockOSThread`.
    pub locked_to_thread: bool,
    /// ` (scan)`: the garbage collector was scanning the stack.
    pub scan: bool,
    /// The wait belongs to a `testing/synctest` bubble and the goroutine is
    /// durably blocked (` (durable)`, Go 1.25+).
    pub durable: bool,
    /// `synctest group N` (Go 1.24) or `synctest bubble N` (Go 1.25+).
    pub synctest_bubble: Option<u64>,
    /// pprof goroutine labels in printed order (Go 1.26+).
    pub labels: Vec<Label>,
    /// `gp=`, `m=`, `mp=` of Go 1.22+ at high traceback levels.
    pub runtime_ids: Option<RuntimeIds>,
    /// Frames, innermost first, in printed order.
    pub frames: Vec<Frame>,
    /// Where the runtime left frames out of this stack.
    pub elided: Option<Elision>,
    /// `goroutine running on other thread; stack unavailable`.
    pub stack_unavailable: bool,
    pub created_by: Option<CreatedBy>,
    /// `[originating from goroutine N]:` blocks printed with
    /// `GODEBUG=tracebackancestors=N`.
    pub ancestors: Vec<Ancestor>,
    /// Runtime diagnostics inside the block: `runtime: g 5: unexpected return
    /// pc ...`, `stack: frame={...}` and hex dump lines.
    pub diagnostics: Vec<Message>,
    /// Index into [`super::Traceback::threads`] of the per-thread section this block
    /// was printed in; `None` for the main dump.
    pub thread: Option<usize>,
    /// Line of the header in the input.
    pub text_line: usize,
}

impl Goroutine {
    pub(crate) fn new(id: GoroutineId, text_line: usize) -> Goroutine {
        Goroutine {
            id,
            status: GoroutineStatus::Unknown,
            wait_reason: None,
            wait_minutes: None,
            locked_to_thread: false,
            scan: false,
            durable: false,
            synctest_bubble: None,
            labels: Vec::new(),
            runtime_ids: None,
            frames: Vec::new(),
            elided: None,
            stack_unavailable: false,
            created_by: None,
            ancestors: Vec::new(),
            diagnostics: Vec::new(),
            thread: None,
            text_line,
        }
    }

    /// Returns the first frame whose function belongs to package `main`.
    pub fn first_main_frame(&self) -> Option<&Frame> {
        self.frames
            .iter()
            .find(|frame| frame.class() == FunctionClass::Main)
    }
}

/// A goroutine's scheduler state, named as `runtime.gStatusStrings` names it.
/// A waiting goroutine with a wait reason is printed with the reason in
/// place of `waiting`; the parser puts it back here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GoroutineStatus {
    #[serde(rename = "idle")]
    Idle,
    #[serde(rename = "runnable")]
    Runnable,
    #[serde(rename = "running")]
    Running,
    #[serde(rename = "syscall")]
    Syscall,
    #[serde(rename = "waiting")]
    Waiting,
    #[serde(rename = "dead")]
    Dead,
    #[serde(rename = "copystack")]
    CopyStack,
    #[serde(rename = "preempted")]
    Preempted,
    /// Go 1.26+: a goroutine the leak detector found blocked forever.
    #[serde(rename = "leaked")]
    Leaked,
    /// Go 1.26+: an extra M's goroutine parked until C calls back into Go.
    #[serde(rename = "waiting for cgo callback")]
    WaitingForCgoCallback,
    /// `???`, or a header too damaged to read.
    #[serde(rename = "unknown")]
    Unknown,
}

impl GoroutineStatus {
    /// Maps a bare status word of `gStatusStrings` to its state.
    pub(crate) fn from_runtime_name(name: &str) -> Option<GoroutineStatus> {
        let status = match name {
            "idle" => GoroutineStatus::Idle,
            "runnable" => GoroutineStatus::Runnable,
            "running" => GoroutineStatus::Running,
            "syscall" => GoroutineStatus::Syscall,
            "waiting" => GoroutineStatus::Waiting,
            "dead" => GoroutineStatus::Dead,
            "copystack" => GoroutineStatus::CopyStack,
            "preempted" => GoroutineStatus::Preempted,
            "leaked" => GoroutineStatus::Leaked,
            "waiting for cgo callback" => GoroutineStatus::WaitingForCgoCallback,
            "???" => GoroutineStatus::Unknown,
            _ => return None,
        };
        Some(status)
    }
}

/// One pprof label of a goroutine, unquoted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    pub value: String,
}

/// The runtime's own addresses for a goroutine and its thread, printed in
/// goroutine headers since Go 1.22. They locate the `g` and `m` structures
/// in a core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeIds {
    /// Address of the `runtime.g`.
    #[serde(with = "hex")]
    pub gp: u64,
    /// `m.id` of the thread running the goroutine; `None` for `m=nil`.
    pub m: Option<u64>,
    /// Address of the `runtime.m`.
    #[serde(with = "hex_option")]
    pub mp: Option<u64>,
}

/// One logical frame: a function line and its `file:line` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The function as printed: `main.(*T).M`, `pkg.F[...]`, `main.main.func1`,
    /// `panic` (the runtime prints `runtime.gopanic` so), or `non-Go function`
    /// for a C frame.
    pub function: String,
    /// The argument text between the parentheses, exactly as printed.
    pub args: String,
    /// The frame was inlined into its caller; the runtime prints `(...)` as
    /// its arguments and gives it no offset and no fp/sp/pc of its own.
    pub inlined: bool,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// `+0x...`: pc minus the entry of the physical function.
    #[serde(with = "hex_option")]
    pub offset: Option<u64>,
    #[serde(with = "hex_option")]
    pub fp: Option<u64>,
    #[serde(with = "hex_option")]
    pub sp: Option<u64>,
    #[serde(with = "hex_option")]
    pub pc: Option<u64>,
    /// The frame is C code printed by the cgo traceback hooks.
    pub non_go: bool,
    /// Line of the function line in the input.
    pub text_line: usize,
}

impl Frame {
    pub(crate) fn new(function: String, args: String, text_line: usize) -> Frame {
        let inlined = args == "...";
        Frame {
            function,
            args,
            inlined,
            file: None,
            line: None,
            offset: None,
            fp: None,
            sp: None,
            pc: None,
            non_go: false,
            text_line,
        }
    }

    /// Tells which kind of code the function belongs to.
    pub fn class(&self) -> FunctionClass {
        if self.non_go {
            return FunctionClass::NonGo;
        }
        classify_function(&self.function)
    }
}

/// `created by FUNC [in goroutine N]` and its `file:line +0x...` line: the
/// `go` statement that started the goroutine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedBy {
    pub function: String,
    /// `in goroutine N`, printed since Go 1.21.
    pub parent: Option<GoroutineId>,
    pub file: Option<String>,
    pub line: Option<u32>,
    #[serde(with = "hex_option")]
    pub offset: Option<u64>,
    pub text_line: usize,
}

/// Frames the runtime left out of a printed stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Elision {
    /// `...N frames elided...` (Go 1.21+) gives the count; the older
    /// `...additional frames elided...` does not.
    pub count: Option<u64>,
    /// Number of frames printed before the marker. Go 1.21+ prints the
    /// marker in the middle of the stack, older releases at its end.
    pub after_frame: usize,
    pub text_line: usize,
}

/// An `[originating from goroutine N]:` block: the stack of an ancestor when
/// it created the next goroutine of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub id: GoroutineId,
    pub frames: Vec<Frame>,
    pub elided: Option<Elision>,
    pub created_by: Option<CreatedBy>,
    pub text_line: usize,
}

/// Frames printed outside a goroutine block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemStack {
    pub origin: SystemStackOrigin,
    pub frames: Vec<Frame>,
    pub elided: Option<Elision>,
    /// Index into [`super::Traceback::threads`]; `None` for the main dump.
    pub thread: Option<usize>,
    pub text_line: usize,
}

/// How a run of frames without a goroutine header started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemStackOrigin {
    /// `runtime stack:`: the crash happened on the thread's system stack
    /// (g0), and these are its frames.
    RuntimeStackLine,
    /// Frames with no header at all, as after `runtime: morestack on g0 ...
    /// called from`, or when the start of the text was lost.
    NoHeader,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, args: &str) -> Frame {
        Frame::new(function.to_string(), args.to_string(), 1)
    }

    #[test]
    fn frame_with_dots_is_inlined() {
        assert!(frame("main.step", "...").inlined);
        assert!(!frame("main.step", "0x1, ...").inlined);
        assert!(!frame("main.main", "").inlined);
    }

    #[test]
    fn addresses_serialize_as_hex() {
        let mut f = frame("main.main", "");
        f.pc = Some(0x49a5c3);
        f.offset = Some(0x42d);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["pc"], "0x49a5c3");
        assert_eq!(json["offset"], "0x42d");
        assert_eq!(json["fp"], serde_json::Value::Null);
        let back: Frame = serde_json::from_value(json).unwrap();
        assert_eq!(back, f);
    }
}
