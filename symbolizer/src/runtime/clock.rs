//! An estimate of the runtime's clock at the crash, for the `, N minutes`
//! of a goroutine header.
//!
//! The runtime prints `(nanotime() - g.waitsince) / 60e9` minutes for a
//! goroutine blocked at least a minute, where `g.waitsince` is the start of
//! the first garbage collection that saw it blocked and `nanotime()` is
//! `CLOCK_MONOTONIC`. A core stores no clock, so "now" is the newest
//! monotonic timestamp the runtime stored before it crashed. Each candidate
//! is a time in the past, so the estimate is never late, only early:
//! - `runtime.sched.lastpoll`: the last network poll. `sysmon` moves it to
//!   the current time every 10 ms while no thread blocks in the poller, and
//!   `findRunnable` sets it when a blocking poll returns;
//! - `runtime.memstats.last_gc_nanotime`: the end of the last collection;
//! - the newest `g.waitsince`: the start of a collection;
//! - `runtime.runtimeInitTime`: when the runtime started.
//!
//! The first two need the binary's symbols and DWARF; a stripped binary
//! gives only `g.waitsince`, which is usually minutes old, and then no
//! estimate is made. Callers that know the crash's monotonic time (the
//! journal stamps each line of the crash text with it) can give it to
//! [`crate::goroutines::Process::set_clock`] instead.

use serde::Serialize;

use super::allgs::SymbolLookup;
use super::goroutine::GRecord;
use super::layout::RuntimeLayout;
use super::memory::ReadMemory;
use super::waitreason::GStatus;

/// Nanoseconds in the runtime's minute (`60e9` in `goroutineheader`).
const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// One stored timestamp the estimate considered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClockReading {
    /// Where it was read, such as `runtime.sched.lastpoll`.
    pub name: String,
    /// Monotonic nanoseconds.
    pub nanotime: i64,
}

/// The estimated `nanotime()` at the crash and how it was found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClockEstimate {
    /// Monotonic nanoseconds (`CLOCK_MONOTONIC`, as the runtime's `nanotime`).
    pub now: i64,
    /// The reading `now` came from, or `given` for a clock a caller set.
    pub source: String,
    /// Every reading considered, newest first.
    pub readings: Vec<ClockReading>,
}

/// Estimates the runtime's clock from the stored timestamps of a core.
/// Returns `None` when neither `sched.lastpoll` nor
/// `memstats.last_gc_nanotime` could be read, since the other readings
/// are too old to count minutes from.
pub fn estimate(
    memory: &dyn ReadMemory,
    symbols: &dyn SymbolLookup,
    layout: &RuntimeLayout,
    goroutines: &[&GRecord],
) -> Option<ClockEstimate> {
    let read_field = |name: &str, symbol: &str, offset: Option<u64>| -> Option<ClockReading> {
        let (base, _) = symbols.symbol(symbol)?;
        let value = memory.read_u64(base.checked_add(offset?)?).ok()?;
        let nanotime = i64::try_from(value).ok().filter(|&v| v > 0)?;
        Some(ClockReading { name: name.to_owned(), nanotime })
    };
    let mut readings: Vec<ClockReading> = [
        read_field("runtime.sched.lastpoll", "runtime.sched", layout.clock.sched_lastpoll),
        read_field("runtime.memstats.last_gc_nanotime", "runtime.memstats", layout.clock.memstats_last_gc_nanotime),
    ]
    .into_iter()
    .flatten()
    .collect();
    let recent = !readings.is_empty();
    readings.extend(read_field("runtime.runtimeInitTime", "runtime.runtimeInitTime", Some(0)));
    if let Some(newest) = goroutines.iter().map(|g| g.waitsince).filter(|&w| w > 0).max() {
        readings.push(ClockReading { name: "g.waitsince".to_owned(), nanotime: newest });
    }
    if !recent {
        return None;
    }
    readings.sort_by(|a, b| b.nanotime.cmp(&a.nanotime));
    let newest = readings.first()?;
    Some(ClockEstimate { now: newest.nanotime, source: newest.name.clone(), readings })
}

/// The minutes the runtime prints for `g` at `now`, when it prints any:
/// a waiting goroutine or one in a system call, blocked for at least a
/// minute since `waitsince`. Near a minute boundary an estimated `now`
/// may give one minute less than the runtime printed.
pub fn wait_minutes(g: &GRecord, now: i64) -> Option<u64> {
    if !matches!(g.status, GStatus::Waiting | GStatus::Syscall) || g.waitsince == 0 {
        return None;
    }
    let minutes = now.checked_sub(g.waitsince)? / NANOS_PER_MINUTE;
    u64::try_from(minutes).ok().filter(|&m| m >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::layout_table;
    use crate::runtime::memory::TestMemory;
    use crate::runtime::version::GoVersion;
    use crate::unwind::{Regs, StackBounds};
    use std::collections::HashMap;

    fn record(status: GStatus, waitsince: i64) -> GRecord {
        GRecord {
            address: 0xc000_0000,
            goid: 7,
            status,
            raw_status: 0,
            scan: false,
            wait_reason: 0,
            waitsince,
            lockedm: 0,
            stack: StackBounds { lo: 0, hi: 0 },
            sched: Regs { pc: 0, sp: 0, fp: 0, lr: None },
            syscall: None,
            stktopsp: 0,
            startpc: 0,
            gopc: 0,
            parent_goid: None,
            m: 0,
            panic: 0,
            sig: 0,
            sigcode0: 0,
            sigcode1: 0,
            sigpc: 0,
        }
    }

    struct Symbols(HashMap<&'static str, u64>);

    impl SymbolLookup for Symbols {
        fn symbol(&self, name: &str) -> Option<(u64, u64)> {
            self.0.get(name).map(|&address| (address, 8))
        }
    }

    #[test]
    fn minutes_count_whole_minutes_blocked() {
        let g = record(GStatus::Waiting, 1_000_000_000);
        assert_eq!(wait_minutes(&g, 1_000_000_000 + 59 * 1_000_000_000), None);
        assert_eq!(wait_minutes(&g, 1_000_000_000 + 70 * 1_000_000_000), Some(1));
        assert_eq!(wait_minutes(&g, 1_000_000_000 + 125 * 1_000_000_000), Some(2));
    }

    #[test]
    fn minutes_only_for_blocked_goroutines() {
        let now = 500 * NANOS_PER_MINUTE;
        assert_eq!(wait_minutes(&record(GStatus::Runnable, 1), now), None);
        assert_eq!(wait_minutes(&record(GStatus::Syscall, 1), now), Some(499));
        assert_eq!(wait_minutes(&record(GStatus::Waiting, 0), now), None);
        assert_eq!(wait_minutes(&record(GStatus::Waiting, now + 1), now), None);
    }

    #[test]
    fn estimate_takes_newest_reading() {
        let mut layout = layout_table::lookup(GoVersion::new(1, 23, 0)).expect("go1.23 is in the table");
        layout.clock.sched_lastpoll = Some(0x10);
        layout.clock.memstats_last_gc_nanotime = Some(0x20);
        let mut memory = TestMemory::new();
        memory.put_u64(0x1010, 3_172_545_543_499);
        memory.put_u64(0x2020, 3_172_546_058_974);
        memory.put_u64(0x3000, 3_102_375_740_689);
        let symbols = Symbols(HashMap::from([
            ("runtime.sched", 0x1000),
            ("runtime.memstats", 0x2000),
            ("runtime.runtimeInitTime", 0x3000),
        ]));
        let parked = record(GStatus::Waiting, 3_102_476_546_128);
        let estimate = estimate(&memory, &symbols, &layout, &[&parked]).expect("two recent readings");
        assert_eq!(estimate.now, 3_172_546_058_974);
        assert_eq!(estimate.source, "runtime.memstats.last_gc_nanotime");
        assert_eq!(estimate.readings.len(), 4);
        assert_eq!(wait_minutes(&parked, estimate.now), Some(1));
    }

    #[test]
    fn estimate_needs_a_recent_reading() {
        let layout = layout_table::lookup(GoVersion::new(1, 23, 0)).expect("go1.23 is in the table");
        let memory = TestMemory::new();
        let symbols = Symbols(HashMap::new());
        let parked = record(GStatus::Waiting, 3_102_476_546_128);
        assert_eq!(estimate(&memory, &symbols, &layout, &[&parked]), None);
    }
}
