//! Goroutine status and wait reason names, as the runtime prints them.
//!
//! `g.waitreason` is an index into the runtime's `waitReasonStrings`
//! array, whose order changes between releases (entries were inserted in
//! the middle, and Go 1.26 reordered them). [`WaitReasons::from_memory`]
//! reads the binary's own array through the `runtime.waitReasonStrings`
//! symbol; without symbols the built-in tables are used. They were
//! read from `runtime.waitReasonStrings` of binaries built with Go 1.19.8,
//! 1.21.13, 1.22.10, 1.23.9, 1.24.11, 1.25.5, 1.26.6 and 1.27.3.

use std::sync::Arc;

use serde::Serialize;

use super::memory::ReadMemory;
use super::version::GoVersion;

/// The most entries read from a binary's `waitReasonStrings`; Go 1.27 has 47.
const MAX_WAIT_REASONS: u64 = 256;
/// The longest wait reason name read; the longest real one has 30 bytes.
const MAX_WAIT_REASON_LEN: u64 = 128;

/// `_Gscan`: the bit the garbage collector sets while it scans a stack.
pub const G_SCAN: u32 = 0x1000;

/// A goroutine status: `g.atomicstatus` without the scan bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GStatus {
    Idle,
    Runnable,
    Running,
    Syscall,
    Waiting,
    Dead,
    Copystack,
    Preempted,
    /// `_Gleaked` (Go 1.26 on): a goroutine the leak detector found.
    Leaked,
    /// `_Gdeadextra` (Go 1.26 on): a dead g kept for an extra M.
    DeadExtra,
    /// A value no release defines; the runtime prints `???`.
    Unknown(u32),
}

impl GStatus {
    /// Decodes a status value with the scan bit removed.
    pub fn from_value(value: u32) -> GStatus {
        match value {
            0 => GStatus::Idle,
            1 => GStatus::Runnable,
            2 => GStatus::Running,
            3 => GStatus::Syscall,
            4 => GStatus::Waiting,
            6 => GStatus::Dead,
            8 => GStatus::Copystack,
            9 => GStatus::Preempted,
            10 => GStatus::Leaked,
            11 => GStatus::DeadExtra,
            other => GStatus::Unknown(other),
        }
    }

    /// The runtime's `gStatusStrings` entry.
    pub fn name(self) -> &'static str {
        match self {
            GStatus::Idle => "idle",
            GStatus::Runnable => "runnable",
            GStatus::Running => "running",
            GStatus::Syscall => "syscall",
            GStatus::Waiting => "waiting",
            GStatus::Dead => "dead",
            GStatus::Copystack => "copystack",
            GStatus::Preempted => "preempted",
            GStatus::Leaked => "leaked",
            GStatus::DeadExtra => "dead",
            GStatus::Unknown(_) => "???",
        }
    }
}

/// Where a set of wait reason names came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReasonSource {
    /// The binary's `runtime.waitReasonStrings`, read from the core.
    Binary,
    /// The built-in table for a release.
    Table,
}

/// Wait reason names indexed by `g.waitreason`.
#[derive(Clone, Debug)]
pub struct WaitReasons {
    names: Vec<Arc<str>>,
    pub source: WaitReasonSource,
}

impl WaitReasons {
    /// Reads the array of `count` Go strings at `addr`.
    pub fn from_memory(memory: &dyn ReadMemory, addr: u64, count: u64) -> Option<WaitReasons> {
        if count == 0 || count > MAX_WAIT_REASONS {
            return None;
        }
        let mut names = Vec::new();
        for index in 0..count {
            let header = addr.checked_add(index * 16)?;
            let data = memory.read_u64(header).ok()?;
            let len = memory.read_u64(header + 8).ok()?;
            if len > MAX_WAIT_REASON_LEN {
                return None;
            }
            let mut bytes = vec![0u8; len as usize];
            memory.read(data, &mut bytes).ok()?;
            names.push(Arc::from(String::from_utf8(bytes).ok()?));
        }
        // Entry 0 is always the empty "no reason" and entry 1 "GC assist marking".
        if names.first().is_some_and(|n: &Arc<str>| !n.is_empty())
            || names.get(1).is_some_and(|n| &**n != "GC assist marking")
        {
            return None;
        }
        Some(WaitReasons {
            names,
            source: WaitReasonSource::Binary,
        })
    }

    /// Returns the built-in names for `version`.
    pub fn for_version(version: GoVersion) -> Option<WaitReasons> {
        let names: Vec<Arc<str>> = match version.minor_release() {
            (1, minor @ (19 | 21..=25)) => GO119_TO_GO125
                .iter()
                .filter(|(_, since, until)| (*since..=*until).contains(&minor))
                .map(|(name, _, _)| Arc::from(*name))
                .collect(),
            (1, 26 | 27) => GO126_ON.iter().map(|name| Arc::from(*name)).collect(),
            _ => return None,
        };
        Some(WaitReasons {
            names,
            source: WaitReasonSource::Table,
        })
    }

    /// Returns every name, indexed by `g.waitreason`.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// The name of reason `index`, as the runtime's `waitReason.String`
    /// returns it.
    pub fn name(&self, index: u8) -> &str {
        self.names
            .get(usize::from(index))
            .map_or("unknown wait reason", |name| name)
    }

    /// Returns the name of reason `index` as [`WaitReasons::name`] does, as
    /// one string shared by every goroutine waiting for that reason.
    pub fn shared_name(&self, index: u8) -> Arc<str> {
        match self.names.get(usize::from(index)) {
            Some(name) => Arc::clone(name),
            None => Arc::from("unknown wait reason"),
        }
    }
}

/// `waitReasonStrings` of Go 1.19 and 1.21 to 1.25 merged into one list:
/// each name with the first and last minor release that has it. Filtered
/// to one release, the list is that release's array, because these
/// releases only inserted and removed entries. Go 1.20 is not covered:
/// no binary of it was read.
const GO119_TO_GO125: &[(&str, u32, u32)] = &[
    ("", 19, 25),
    ("GC assist marking", 19, 25),
    ("IO wait", 19, 25),
    ("chan receive (nil chan)", 19, 25),
    ("chan send (nil chan)", 19, 25),
    ("dumping heap", 19, 25),
    ("garbage collection", 19, 25),
    ("garbage collection scan", 19, 25),
    ("panicwait", 19, 25),
    ("select", 19, 25),
    ("select (no cases)", 19, 25),
    ("GC assist wait", 19, 25),
    ("GC sweep wait", 19, 25),
    ("GC scavenge wait", 19, 25),
    ("chan receive", 19, 25),
    ("chan send", 19, 25),
    ("finalizer wait", 19, 25),
    ("force gc (idle)", 19, 25),
    ("GOMAXPROCS updater (idle)", 25, 25),
    ("semacquire", 19, 25),
    ("sleep", 19, 25),
    ("sync.Cond.Wait", 19, 25),
    ("sync.Mutex.Lock", 21, 25),
    ("sync.RWMutex.RLock", 21, 25),
    ("sync.RWMutex.Lock", 21, 25),
    ("sync.WaitGroup.Wait", 24, 25),
    ("timer goroutine (idle)", 19, 19),
    ("trace reader (blocked)", 19, 25),
    ("wait for GC cycle", 19, 25),
    ("GC worker (idle)", 19, 25),
    ("GC worker (active)", 21, 25),
    ("preempted", 19, 25),
    ("debug call", 19, 25),
    ("GC mark termination", 21, 25),
    ("stopping the world", 21, 25),
    ("flushing proc caches", 22, 25),
    ("trace goroutine status", 22, 25),
    ("trace proc status", 22, 25),
    ("page trace flush", 22, 25),
    ("coroutine", 22, 25),
    ("GC weak to strong wait", 23, 25),
    ("synctest.Run", 24, 25),
    ("synctest.Wait", 24, 25),
    ("chan receive (durable)", 25, 25),
    ("chan send (durable)", 25, 25),
    ("select (durable)", 25, 25),
    ("sync.WaitGroup.Wait (durable)", 25, 25),
    ("cleanup wait", 25, 25),
    ("chan receive (synctest)", 24, 24),
    ("chan send (synctest)", 24, 24),
    ("select (synctest)", 24, 24),
];

/// `waitReasonStrings` of Go 1.26 and 1.27, which reordered the array.
const GO126_ON: &[&str] = &[
    "",
    "GC assist marking",
    "IO wait",
    "dumping heap",
    "garbage collection",
    "garbage collection scan",
    "panicwait",
    "GC assist wait",
    "GC sweep wait",
    "GC scavenge wait",
    "finalizer wait",
    "force gc (idle)",
    "GOMAXPROCS updater (idle)",
    "semacquire",
    "sleep",
    "chan receive (nil chan)",
    "chan send (nil chan)",
    "select (no cases)",
    "select",
    "chan receive",
    "chan send",
    "sync.Cond.Wait",
    "sync.Mutex.Lock",
    "sync.RWMutex.RLock",
    "sync.RWMutex.Lock",
    "sync.WaitGroup.Wait",
    "trace reader (blocked)",
    "wait for GC cycle",
    "GC worker (idle)",
    "GC worker (active)",
    "preempted",
    "debug call",
    "GC mark termination",
    "stopping the world",
    "flushing proc caches",
    "trace goroutine status",
    "trace proc status",
    "page trace flush",
    "coroutine",
    "GC weak to strong wait",
    "synctest.Run",
    "synctest.Wait",
    "chan receive (durable)",
    "chan send (durable)",
    "select (durable)",
    "sync.WaitGroup.Wait (durable)",
    "cleanup wait",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::memory::TestMemory;

    #[test]
    fn status_strips_to_names() {
        assert_eq!(GStatus::from_value(4).name(), "waiting");
        assert_eq!(GStatus::from_value(9).name(), "preempted");
        assert_eq!(GStatus::from_value(5).name(), "???");
        assert_eq!(GStatus::from_value(7), GStatus::Unknown(7));
    }

    #[test]
    fn tables_cover_each_release() {
        for minor in [19, 21, 22, 23, 24, 25, 26, 27] {
            let reasons =
                WaitReasons::for_version(GoVersion::new(1, minor, 0)).expect("release is covered");
            assert_eq!(reasons.name(1), "GC assist marking", "go1.{minor}");
        }
        assert!(WaitReasons::for_version(GoVersion::new(1, 20, 0)).is_none());
    }

    #[test]
    fn tables_follow_release_order() {
        let go122 = WaitReasons::for_version(GoVersion::new(1, 22, 0)).expect("go1.22");
        let go126 = WaitReasons::for_version(GoVersion::new(1, 26, 0)).expect("go1.26");
        assert_eq!(go122.name(14), "chan receive");
        assert_eq!(go126.name(14), "sleep");
        assert_eq!(go126.name(19), "chan receive");
        assert_eq!(go126.name(3), "dumping heap");
        assert_eq!(go122.name(200), "unknown wait reason");
    }

    #[test]
    fn from_memory_reads_string_array() {
        let mut memory = TestMemory::new();
        let array = 0x1000;
        let text = 0x2000;
        memory.put(text, b"GC assist markingchan receive");
        memory.put_u64(array, 0);
        memory.put_u64(array + 8, 0);
        memory.put_u64(array + 16, text);
        memory.put_u64(array + 24, 17);
        memory.put_u64(array + 32, text + 17);
        memory.put_u64(array + 40, 12);
        let reasons = WaitReasons::from_memory(&memory, array, 3).expect("valid array");
        assert_eq!(reasons.name(0), "");
        assert_eq!(reasons.name(2), "chan receive");
        assert_eq!(reasons.source, WaitReasonSource::Binary);
    }

    #[test]
    fn from_memory_rejects_other_arrays() {
        let mut memory = TestMemory::new();
        memory.put(0x2000, b"hello");
        memory.put_u64(0x1000, 0x2000);
        memory.put_u64(0x1008, 5);
        assert!(WaitReasons::from_memory(&memory, 0x1000, 1).is_none());
    }
}
