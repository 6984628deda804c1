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
//! The first two are found by their symbols (`runtime.sched`,
//! `runtime.memstats`) and DWARF offsets, or a table of offsets per release.
//! A stripped binary has no symbols, so their addresses are decoded from
//! the code of `runtime.wakeNetPoller`, which loads `sched.lastpoll` and
//! then `sched.pollUntil` 8 bytes further, and of `runtime.gcTrigger.test`,
//! which reads `memstats.enablegc` and `memstats.last_gc_nanotime` at a
//! distance the table gives. A pair of addresses at exactly that distance
//! identifies both fields. Without either reading no estimate is made,
//! because `g.waitsince` is usually minutes old. Callers that know the
//! crash's monotonic time (the journal stamps each line of the crash text
//! with it) can give it to [`crate::goroutines::Process::set_clock`].

use serde::Serialize;

use super::allgs::SymbolLookup;
use super::coderefs::function_targets;
use super::goroutine::GRecord;
use super::layout::RuntimeLayout;
use super::memory::ReadMemory;
use super::version::GoVersion;
use super::waitreason::GStatus;
use crate::core::Arch;
use crate::unwind::FuncTable;

/// Nanoseconds in the runtime's minute (`60e9` in `goroutineheader`).
const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// Offset of `lastpoll` in `runtime.schedt`, with `pollUntil` right after
/// it: the same in Go 1.19 to 1.27 (read from each toolchain's DWARF).
const SCHED_LASTPOLL: u64 = 8;
const SCHED_POLL_UNTIL: u64 = 16;

/// Offsets of `last_gc_nanotime` and `enablegc` in `runtime.mstats` for
/// each verified range of release families, read from the DWARF of a
/// binary built by Go 1.19.8, 1.21.13, 1.22.10, 1.23.9, 1.24.11, 1.25.5,
/// 1.26.6 and 1.27.3.
const MSTATS_OFFSETS: [MstatsOffsets; 4] = [
    MstatsOffsets {
        first: (1, 19),
        last: (1, 19),
        last_gc_nanotime: 7720,
        enablegc: 7736,
    },
    MstatsOffsets {
        first: (1, 21),
        last: (1, 24),
        last_gc_nanotime: 7720,
        enablegc: 7736,
    },
    MstatsOffsets {
        first: (1, 25),
        last: (1, 25),
        last_gc_nanotime: 7696,
        enablegc: 8256,
    },
    MstatsOffsets {
        first: (1, 26),
        last: (1, 27),
        last_gc_nanotime: 7696,
        enablegc: 10432,
    },
];

/// Offsets in `runtime.mstats` for a range of release families.
struct MstatsOffsets {
    first: (u32, u32),
    last: (u32, u32),
    last_gc_nanotime: u64,
    enablegc: u64,
}

fn mstats_offsets(version: Option<GoVersion>) -> Option<&'static MstatsOffsets> {
    let release = version?.minor_release();
    MSTATS_OFFSETS
        .iter()
        .find(|entry| entry.first <= release && release <= entry.last)
}

/// The addresses of the runtime's stored timestamps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockAddresses {
    /// `runtime.sched.lastpoll`.
    pub lastpoll: Option<u64>,
    /// `runtime.memstats.last_gc_nanotime`.
    pub last_gc_nanotime: Option<u64>,
    /// `runtime.runtimeInitTime`.
    pub init_time: Option<u64>,
}

/// The inputs of [`find_addresses`]: the core, the binary's symbols and
/// functions, and the release that built it.
pub struct ClockInputs<'a> {
    pub arch: Arch,
    pub memory: &'a dyn ReadMemory,
    pub symbols: &'a dyn SymbolLookup,
    pub funcs: &'a dyn FuncTable,
    pub layout: &'a RuntimeLayout,
    pub version: Option<GoVersion>,
}

/// Finds the stored timestamps: by symbol and offset when the binary has
/// symbols, else by decoding the code that uses them.
pub fn find_addresses(inputs: &ClockInputs<'_>) -> ClockAddresses {
    let symbol = |name: &str| inputs.symbols.symbol(name).map(|(address, _)| address);
    let mstats = mstats_offsets(inputs.version);
    let lastpoll = match symbol("runtime.sched") {
        Some(sched) => {
            sched.checked_add(inputs.layout.clock.sched_lastpoll.unwrap_or(SCHED_LASTPOLL))
        }
        None => lastpoll_from_code(inputs),
    };
    let last_gc_nanotime = match symbol("runtime.memstats") {
        Some(memstats) => {
            let offset = inputs
                .layout
                .clock
                .memstats_last_gc_nanotime
                .or(mstats.map(|m| m.last_gc_nanotime));
            offset.and_then(|offset| memstats.checked_add(offset))
        }
        None => mstats.and_then(|offsets| last_gc_from_code(inputs, offsets)),
    };
    ClockAddresses {
        lastpoll,
        last_gc_nanotime,
        init_time: symbol("runtime.runtimeInitTime"),
    }
}

/// `sched.lastpoll` in `runtime.wakeNetPoller`: the address whose
/// neighbour 8 bytes on, `sched.pollUntil`, is also loaded there.
fn lastpoll_from_code(inputs: &ClockInputs<'_>) -> Option<u64> {
    let targets = function_targets(
        inputs.arch,
        inputs.memory,
        inputs.funcs,
        "runtime.wakeNetPoller",
    );
    let distance = SCHED_POLL_UNTIL - SCHED_LASTPOLL;
    targets.iter().copied().find(|&t| {
        t.checked_add(distance)
            .is_some_and(|next| targets.contains(&next))
    })
}

/// `memstats.last_gc_nanotime` in `runtime.gcTrigger.test`: the address
/// at the table's distance from another one the function uses, which is
/// `memstats.enablegc`.
fn last_gc_from_code(inputs: &ClockInputs<'_>, offsets: &MstatsOffsets) -> Option<u64> {
    let targets = function_targets(
        inputs.arch,
        inputs.memory,
        inputs.funcs,
        "runtime.gcTrigger.test",
    );
    targets.iter().copied().find(|&t| {
        let enablegc = t
            .checked_sub(offsets.last_gc_nanotime)
            .and_then(|base| base.checked_add(offsets.enablegc));
        enablegc.is_some_and(|e| targets.contains(&e))
    })
}

/// One stored timestamp the estimate considered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClockReading {
    /// The variable it was read from, such as `runtime.sched.lastpoll`.
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
    addresses: &ClockAddresses,
    goroutines: &[&GRecord],
) -> Option<ClockEstimate> {
    let read = |name: &str, address: Option<u64>| -> Option<ClockReading> {
        let value = memory.read_u64(address?).ok()?;
        let nanotime = i64::try_from(value).ok().filter(|&v| v > 0)?;
        Some(ClockReading {
            name: name.to_owned(),
            nanotime,
        })
    };
    let mut readings: Vec<ClockReading> = [
        read("runtime.sched.lastpoll", addresses.lastpoll),
        read(
            "runtime.memstats.last_gc_nanotime",
            addresses.last_gc_nanotime,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let recent = !readings.is_empty();
    readings.extend(read("runtime.runtimeInitTime", addresses.init_time));
    if let Some(newest) = goroutines
        .iter()
        .map(|g| g.waitsince)
        .filter(|&w| w > 0)
        .max()
    {
        readings.push(ClockReading {
            name: "g.waitsince".to_owned(),
            nanotime: newest,
        });
    }
    if !recent {
        return None;
    }
    readings.sort_by_key(|reading| std::cmp::Reverse(reading.nanotime));
    let newest = readings.first()?;
    Some(ClockEstimate {
        now: newest.nanotime,
        source: newest.name.clone(),
        readings,
    })
}

/// Computes the minutes the runtime prints for `g` at `now`, when it prints any:
/// a waiting goroutine or one in a system call, blocked for at least a
/// minute since `waitsince`. Near a minute boundary an estimated `now`
/// may give one minute less than the runtime printed.
pub fn wait_minutes(g: &GRecord, now: i64) -> Option<u64> {
    if !may_print_minutes(g) {
        return None;
    }
    let minutes = now.checked_sub(g.waitsince)? / NANOS_PER_MINUTE;
    u64::try_from(minutes).ok().filter(|&m| m >= 1)
}

/// Reports whether the runtime may print wait minutes for `g`: it is waiting
/// or in a system call, with a recorded wait start. Whether it does depends
/// on the clock at the crash.
pub fn may_print_minutes(g: &GRecord) -> bool {
    matches!(g.status, GStatus::Waiting | GStatus::Syscall) && g.waitsince != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::layout_table;
    use crate::runtime::memory::TestMemory;
    use crate::runtime::version::GoVersion;
    use std::collections::HashMap;

    fn record(status: GStatus, waitsince: i64) -> GRecord {
        GRecord {
            status,
            waitsince,
            ..GRecord::for_test()
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
        assert_eq!(
            wait_minutes(&g, 1_000_000_000 + 70 * 1_000_000_000),
            Some(1)
        );
        assert_eq!(
            wait_minutes(&g, 1_000_000_000 + 125 * 1_000_000_000),
            Some(2)
        );
    }

    #[test]
    fn minutes_only_for_blocked_goroutines() {
        let now = 500 * NANOS_PER_MINUTE;
        assert_eq!(wait_minutes(&record(GStatus::Runnable, 1), now), None);
        assert_eq!(wait_minutes(&record(GStatus::Syscall, 1), now), Some(499));
        assert_eq!(wait_minutes(&record(GStatus::Waiting, 0), now), None);
        assert_eq!(wait_minutes(&record(GStatus::Waiting, now + 1), now), None);
    }

    /// A function table without functions, for symbol look-ups only.
    struct NoFuncs;

    impl FuncTable for NoFuncs {
        fn func(&self, _: u64) -> Option<crate::unwind::FuncInfo> {
            None
        }
        fn sp_delta(&self, _: &crate::unwind::FuncInfo, _: u64) -> Option<u64> {
            None
        }
        fn source_frames(&self, _: u64) -> crate::unwind::SourceFrames {
            crate::unwind::SourceFrames::default()
        }
        fn func_by_name(&self, _: &str) -> Option<crate::unwind::FuncInfo> {
            None
        }
    }

    #[test]
    fn addresses_from_symbols_and_offsets() {
        let mut layout =
            layout_table::lookup(GoVersion::new(1, 23, 0)).expect("go1.23 is in the table");
        let memory = TestMemory::new();
        let symbols = Symbols(HashMap::from([
            ("runtime.sched", 0x1000),
            ("runtime.memstats", 0x2000),
        ]));
        let find = |layout: &RuntimeLayout| {
            find_addresses(&ClockInputs {
                arch: Arch::Amd64,
                memory: &memory,
                symbols: &symbols,
                funcs: &NoFuncs,
                layout,
                version: Some(GoVersion::new(1, 23, 9)),
            })
        };
        let from_table = find(&layout);
        assert_eq!(from_table.lastpoll, Some(0x1008));
        assert_eq!(from_table.last_gc_nanotime, Some(0x2000 + 7720));
        layout.clock.memstats_last_gc_nanotime = Some(0x20);
        assert_eq!(find(&layout).last_gc_nanotime, Some(0x2020));
    }

    #[test]
    fn estimate_takes_newest_reading() {
        let mut memory = TestMemory::new();
        memory.put_u64(0x1008, 3_172_545_543_499);
        memory.put_u64(0x2020, 3_172_546_058_974);
        memory.put_u64(0x3000, 3_102_375_740_689);
        let addresses = ClockAddresses {
            lastpoll: Some(0x1008),
            last_gc_nanotime: Some(0x2020),
            init_time: Some(0x3000),
        };
        let parked = record(GStatus::Waiting, 3_102_476_546_128);
        let estimate = estimate(&memory, &addresses, &[&parked]).expect("two recent readings");
        assert_eq!(estimate.now, 3_172_546_058_974);
        assert_eq!(estimate.source, "runtime.memstats.last_gc_nanotime");
        assert_eq!(estimate.readings.len(), 4);
        assert_eq!(wait_minutes(&parked, estimate.now), Some(1));
    }

    #[test]
    fn minutes_need_a_wait_start() {
        assert!(may_print_minutes(&record(GStatus::Waiting, 1_000)));
        assert!(may_print_minutes(&record(GStatus::Syscall, 1_000)));
        assert!(!may_print_minutes(&record(GStatus::Waiting, 0)));
        assert!(!may_print_minutes(&record(GStatus::Running, 1_000)));
    }

    #[test]
    fn estimate_needs_a_recent_reading() {
        let memory = TestMemory::new();
        let parked = record(GStatus::Waiting, 3_102_476_546_128);
        assert_eq!(
            estimate(&memory, &ClockAddresses::default(), &[&parked]),
            None
        );
    }

    #[test]
    fn table_covers_verified_releases() {
        assert_eq!(
            mstats_offsets(Some(GoVersion::new(1, 24, 11))).map(|m| m.enablegc),
            Some(7736)
        );
        assert_eq!(
            mstats_offsets(Some(GoVersion::new(1, 27, 3))).map(|m| m.enablegc),
            Some(10432)
        );
        assert!(mstats_offsets(Some(GoVersion::new(1, 20, 0))).is_none());
        assert!(mstats_offsets(None).is_none());
    }
}
