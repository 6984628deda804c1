//! The crash report's contents, owned and serializable: what every format
//! of `gocrash report` prints. The JSON format is this model written out
//! (schema `gocrash.report/1`, docs/json.md).

use ingest::signature::Signature;
use serde::Serialize;

/// The value of the top-level `schema` field.
pub const SCHEMA: &str = "gocrash.report/1";

/// One crash, ready to print.
#[derive(Debug, Serialize)]
pub struct CrashReport {
    pub schema: &'static str,
    /// Parts of the crash could not be read, and `missing` lists which.
    pub partial: bool,
    /// One sentence per missing part: no crash text, no core, damage.
    pub missing: Vec<String>,
    /// Problems that leave the report complete but less certain.
    pub warnings: Vec<String>,
    pub headline: Headline,
    pub process: ProcessFacts,
    pub build: BuildFacts,
    /// The source of `crashing` and `groups`: `core` or `text`, or `none`
    /// when neither could be read.
    pub goroutines_from: &'static str,
    /// The goroutine the crash happened on.
    pub crashing: Option<GoroutineView>,
    /// The other goroutines, grouped by identical stacks, in the runtime's
    /// printing order of each group's first member.
    pub groups: Vec<Group>,
    /// The crash text journald stored, and what it lost of it.
    pub journal_text: JournalText,
    pub signature: Option<SignatureFacts>,
    pub earlier: Earlier,
}

/// The lines a person reads first.
#[derive(Debug, Default, Serialize)]
pub struct Headline {
    /// `panic`, `fatal_error`, `signal` or `unknown`.
    pub kind: &'static str,
    /// The first line of the runtime's crash report, such as
    /// `panic: runtime error: index out of range [3] with length 3` or
    /// `SIGSEGV: segmentation violation`.
    pub first_line: Option<String>,
    /// Every panic of the chain (oldest first) and the fatal error, as the
    /// runtime prints them, continuation lines included.
    pub lines: Vec<String>,
    /// The signal behind the crash: the fault that became the panic or
    /// fatal error, or the fatal signal itself.
    pub signal: Option<SignalFacts>,
    /// The source of the headline: `core` or `text`.
    pub from: &'static str,
}

/// A signal and where it struck.
#[derive(Debug, Clone, Serialize)]
pub struct SignalFacts {
    pub number: u32,
    /// `SIGSEGV`, as the runtime's signal table names it.
    pub name: Option<String>,
    pub description: Option<String>,
    /// `si_code`.
    pub code: Option<i64>,
    /// `si_addr` as `0x` hex: the fault address for SIGSEGV, SIGBUS,
    /// SIGFPE and SIGILL.
    pub fault_address: Option<String>,
    /// The interrupted pc as `0x` hex.
    pub pc: Option<String>,
}

/// The process that crashed, from the journal entry and the core.
#[derive(Debug, Default, Serialize)]
pub struct ProcessFacts {
    pub host: Option<String>,
    pub unit: Option<String>,
    /// The crash time, RFC 3339 in UTC.
    pub time: Option<String>,
    /// The crash time in microseconds since the epoch.
    pub time_usec: Option<u64>,
    pub pid: Option<u32>,
    pub executable: Option<String>,
    pub core_file: Option<String>,
    /// The journal entry's cursor.
    pub cursor: Option<String>,
}

/// The binary's build information.
#[derive(Debug, Default, Serialize)]
pub struct BuildFacts {
    pub go_version: Option<String>,
    pub main_module: Option<String>,
    pub main_module_version: Option<String>,
    pub vcs_revision: Option<String>,
    pub vcs_time: Option<String>,
    pub vcs_modified: Option<bool>,
    /// The binary the goroutines were symbolized with.
    pub binary: Option<String>,
    /// Why the build information could not be read.
    pub error: Option<String>,
}

/// One goroutine, or the first of a group, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GoroutineView {
    pub id: Option<u64>,
    /// The status the runtime prints in brackets (`chan receive`).
    pub status: String,
    pub wait_minutes: Option<u64>,
    pub locked_to_thread: bool,
    /// Innermost first; calls inlined into a frame come before it.
    pub frames: Vec<FrameView>,
    pub created_by: Option<CreatorView>,
    /// Why the stack is incomplete, when it is.
    pub stack_note: Option<String>,
}

/// One logical frame.
#[derive(Debug, Clone, Serialize)]
pub struct FrameView {
    /// The function as the runtime prints it.
    pub function: String,
    pub file: Option<String>,
    pub line: Option<i64>,
    pub inlined: bool,
    /// The frame's pc as `0x` hex, when read from the core.
    pub pc: Option<String>,
    /// Lines around `line`, for the crashing goroutine's frames.
    pub source: Option<SourceSnippet>,
}

/// The `go` statement that started a goroutine.
#[derive(Debug, Clone, Serialize)]
pub struct CreatorView {
    pub function: String,
    pub file: Option<String>,
    pub line: Option<i64>,
    pub parent_goroutine: Option<u64>,
}

/// The source lines around a frame's line, or why there are none.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum SourceSnippet {
    Found {
        /// The file read, after `--source-root` mapping.
        path: String,
        /// The line number of `lines[0]`.
        first_line: i64,
        /// The line the frame is at.
        marked_line: i64,
        lines: Vec<String>,
    },
    NotFound {
        /// Every path looked at, in order.
        tried: Vec<String>,
    },
}

/// Goroutines with identical stacks.
#[derive(Debug, Serialize)]
pub struct Group {
    pub count: usize,
    pub ids: Vec<u64>,
    pub min_wait_minutes: Option<u64>,
    pub max_wait_minutes: Option<u64>,
    /// The first member; the others differ only in id and wait time.
    pub goroutine: GoroutineView,
}

/// The crash text the runtime wrote to the journal.
#[derive(Debug, Default, Serialize)]
pub struct JournalText {
    pub present: bool,
    /// Lines of the text, the service's earlier output included.
    pub lines: usize,
    /// What journald lost or changed, one sentence each; empty when nothing.
    pub loss: Vec<String>,
}

/// The crash signature and the source it was computed from.
#[derive(Debug, Serialize)]
pub struct SignatureFacts {
    /// `text` or `core`.
    pub from: &'static str,
    #[serde(flatten)]
    pub signature: Signature,
}

/// Earlier crashes with the same signature.
#[derive(Debug, Default, Serialize)]
pub struct Earlier {
    /// The command that lists every crash with this signature.
    pub command: Option<String>,
    /// Which crashes were compared.
    pub searched: Option<String>,
    /// How many earlier crashes have the signature.
    pub count: usize,
    /// The newest of them (at most 20), oldest first.
    pub crashes: Vec<Occurrence>,
    /// Why the search failed or was not made.
    pub error: Option<String>,
}

/// One earlier crash.
#[derive(Debug, Clone, Serialize)]
pub struct Occurrence {
    pub time: String,
    pub time_usec: u64,
    pub pid: u32,
    pub unit: Option<String>,
    pub cursor: String,
}
