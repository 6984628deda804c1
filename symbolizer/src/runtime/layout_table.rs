//! The runtime layouts of each supported Go release, for binaries without
//! DWARF.
//!
//! Every entry was read from the DWARF of a binary built by that release's
//! toolchain (Go 1.19.8, 1.21.13, 1.22.10, 1.23.9, 1.24.11, 1.25.5, 1.26.6
//! and 1.27.3) for linux/amd64 and for linux/arm64, whose layouts were found
//! identical. The test `layout_table_matches_dwarf` rebuilds a program with
//! every installed toolchain for amd64 and compares; arm64 was compared when
//! the table was made, from cross-compiled builds. Patch releases do not change
//! runtime structs, so an entry holds for its whole `1.N` family. Go 1.20 is
//! absent because no 1.20 toolchain was at hand to verify it.

use super::layout::{
    ClockLayout, Field, GLayout, LayoutSource, MLayout, PanicLayout, RuntimeLayout,
};
use super::version::GoVersion;

/// The layouts of one `1.N` release family.
#[derive(Clone, Copy, Debug)]
pub struct ReleaseLayout {
    /// `(major, minor)`, such as `(1, 22)`.
    pub release: (u32, u32),
    pub g: GLayout,
    pub m: MLayout,
    pub panic: PanicLayout,
}

/// Returns the table layout for `version`, or `None` when its release family
/// is not in the table.
pub fn lookup(version: GoVersion) -> Option<RuntimeLayout> {
    let entry = RELEASES
        .iter()
        .find(|entry| entry.release == version.minor_release())?;
    Some(RuntimeLayout {
        g: entry.g,
        m: entry.m,
        panic: entry.panic,
        clock: ClockLayout::default(),
        source: LayoutSource::Table {
            releases: format!("go{}.{}", entry.release.0, entry.release.1),
        },
    })
}

/// Lists the release families in the table, for messages.
pub fn covered_releases() -> String {
    let names: Vec<String> = RELEASES
        .iter()
        .map(|entry| format!("go{}.{}", entry.release.0, entry.release.1))
        .collect();
    names.join(", ")
}

/// One entry per release family, oldest first.
#[rustfmt::skip]
pub const RELEASES: &[ReleaseLayout] = &[
    ReleaseLayout {
        release: (1, 19),
        g: GLayout {
            size: 392, stack_lo: 0, stack_hi: 8, panic: 32, defer: 40, m: 48, sched_sp: 56,
            sched_pc: 64, sched_lr: 96, sched_bp: 104, syscallsp: 112, syscallpc: 120,
            syscallbp: None, stktopsp: 128, atomicstatus: 144, goid: 152, waitsince: 168,
            waitreason: 176, lockedm: 232, sig: 240, sigcode0: 272, sigcode1: 280, sigpc: 288,
            parent_goid: None, gopc: 296, startpc: 312, labels: 360,
        },
        m: MLayout {
            size: 1008, g0: 0, procid: 72, gsignal: 80, curg: 192, p: 208, id: 232,
            throwing: Field { offset: 244, size: 4 }, locks: 264, alllink: 336, lockedg: 352,
            caughtsig: 200, vdso_sp: 800, vdso_pc: 808,
        },
        panic: PanicLayout {
            size: 56, arg: 8, link: 24, recovered: 48, goexit: 50, repanicked: None,
            aborted: Some(49),
        },
    },
    ReleaseLayout {
        release: (1, 21),
        g: GLayout {
            size: 408, stack_lo: 0, stack_hi: 8, panic: 32, defer: 40, m: 48, sched_sp: 56,
            sched_pc: 64, sched_lr: 96, sched_bp: 104, syscallsp: 112, syscallpc: 120,
            syscallbp: None, stktopsp: 128, atomicstatus: 144, goid: 152, waitsince: 168,
            waitreason: 176, lockedm: 208, sig: 216, sigcode0: 248, sigcode1: 256, sigpc: 264,
            parent_goid: Some(272), gopc: 280, startpc: 296, labels: 344,
        },
        m: MLayout {
            size: 1008, g0: 0, procid: 72, gsignal: 80, curg: 192, p: 208, id: 232,
            throwing: Field { offset: 244, size: 4 }, locks: 264, alllink: 336, lockedg: 352,
            caughtsig: 200, vdso_sp: 808, vdso_pc: 816,
        },
        panic: PanicLayout {
            size: 56, arg: 8, link: 24, recovered: 48, goexit: 50, repanicked: None,
            aborted: Some(49),
        },
    },
    ReleaseLayout {
        release: (1, 22),
        g: GLayout {
            size: 424, stack_lo: 0, stack_hi: 8, panic: 32, defer: 40, m: 48, sched_sp: 56,
            sched_pc: 64, sched_lr: 96, sched_bp: 104, syscallsp: 112, syscallpc: 120,
            syscallbp: None, stktopsp: 128, atomicstatus: 144, goid: 152, waitsince: 168,
            waitreason: 176, lockedm: 208, sig: 216, sigcode0: 248, sigcode1: 256, sigpc: 264,
            parent_goid: Some(272), gopc: 280, startpc: 296, labels: 344,
        },
        m: MLayout {
            size: 2024, g0: 0, procid: 72, gsignal: 80, curg: 192, p: 208, id: 232,
            throwing: Field { offset: 244, size: 4 }, locks: 264, alllink: 328, lockedg: 344,
            caughtsig: 200, vdso_sp: 1120, vdso_pc: 1128,
        },
        panic: PanicLayout {
            size: 104, arg: 8, link: 24, recovered: 96, goexit: 97, repanicked: None, aborted: None,
        },
    },
    ReleaseLayout {
        release: (1, 23),
        g: GLayout {
            size: 432, stack_lo: 0, stack_hi: 8, panic: 32, defer: 40, m: 48, sched_sp: 56,
            sched_pc: 64, sched_lr: 96, sched_bp: 104, syscallsp: 112, syscallpc: 120,
            syscallbp: Some(128), stktopsp: 136, atomicstatus: 152, goid: 160, waitsince: 176,
            waitreason: 184, lockedm: 216, sig: 224, sigcode0: 256, sigcode1: 264, sigpc: 272,
            parent_goid: Some(280), gopc: 288, startpc: 304, labels: 352,
        },
        m: MLayout {
            size: 1760, g0: 0, procid: 72, gsignal: 80, curg: 192, p: 208, id: 232,
            throwing: Field { offset: 244, size: 4 }, locks: 264, alllink: 328, lockedg: 344,
            caughtsig: 200, vdso_sp: 856, vdso_pc: 864,
        },
        panic: PanicLayout {
            size: 104, arg: 8, link: 24, recovered: 96, goexit: 97, repanicked: None, aborted: None,
        },
    },
    ReleaseLayout {
        release: (1, 24),
        g: GLayout {
            size: 440, stack_lo: 0, stack_hi: 8, panic: 32, defer: 40, m: 48, sched_sp: 56,
            sched_pc: 64, sched_lr: 96, sched_bp: 104, syscallsp: 112, syscallpc: 120,
            syscallbp: Some(128), stktopsp: 136, atomicstatus: 152, goid: 160, waitsince: 176,
            waitreason: 184, lockedm: 216, sig: 228, sigcode0: 256, sigcode1: 264, sigpc: 272,
            parent_goid: Some(280), gopc: 288, startpc: 304, labels: 352,
        },
        m: MLayout {
            size: 1832, g0: 0, procid: 72, gsignal: 80, curg: 192, p: 208, id: 232,
            throwing: Field { offset: 244, size: 4 }, locks: 264, alllink: 352, lockedg: 368,
            caughtsig: 200, vdso_sp: 904, vdso_pc: 912,
        },
        panic: PanicLayout {
            size: 104, arg: 8, link: 24, recovered: 96, goexit: 97, repanicked: None, aborted: None,
        },
    },
    ReleaseLayout {
        release: (1, 25),
        g: GLayout {
            size: 440, stack_lo: 0, stack_hi: 8, panic: 32, defer: 40, m: 48, sched_sp: 56,
            sched_pc: 64, sched_lr: 88, sched_bp: 96, syscallsp: 104, syscallpc: 112,
            syscallbp: Some(120), stktopsp: 128, atomicstatus: 144, goid: 152, waitsince: 168,
            waitreason: 176, lockedm: 208, sig: 220, sigcode0: 248, sigcode1: 256, sigpc: 264,
            parent_goid: Some(272), gopc: 280, startpc: 296, labels: 344,
        },
        m: MLayout {
            size: 1816, g0: 0, procid: 64, gsignal: 72, curg: 184, p: 200, id: 224,
            throwing: Field { offset: 236, size: 4 }, locks: 256, alllink: 344, lockedg: 360,
            caughtsig: 192, vdso_sp: 896, vdso_pc: 904,
        },
        panic: PanicLayout {
            size: 104, arg: 8, link: 24, recovered: 96, goexit: 98, repanicked: Some(97),
            aborted: None,
        },
    },
    ReleaseLayout {
        release: (1, 26),
        g: GLayout {
            size: 456, stack_lo: 0, stack_hi: 8, panic: 32, defer: 40, m: 48, sched_sp: 56,
            sched_pc: 64, sched_lr: 88, sched_bp: 96, syscallsp: 104, syscallpc: 112,
            syscallbp: Some(120), stktopsp: 128, atomicstatus: 144, goid: 152, waitsince: 168,
            waitreason: 176, lockedm: 208, sig: 224, sigcode0: 256, sigcode1: 264, sigpc: 272,
            parent_goid: Some(280), gopc: 288, startpc: 304, labels: 352,
        },
        m: MLayout {
            size: 1824, g0: 0, procid: 64, gsignal: 72, curg: 184, p: 208, id: 232,
            throwing: Field { offset: 244, size: 4 }, locks: 264, alllink: 352, lockedg: 384,
            caughtsig: 192, vdso_sp: 896, vdso_pc: 904,
        },
        panic: PanicLayout {
            size: 104, arg: 0, link: 16, recovered: 88, goexit: 90, repanicked: Some(89),
            aborted: None,
        },
    },
    ReleaseLayout {
        release: (1, 27),
        g: GLayout {
            size: 456, stack_lo: 0, stack_hi: 8, panic: 32, defer: 40, m: 48, sched_sp: 56,
            sched_pc: 64, sched_lr: 88, sched_bp: 96, syscallsp: 104, syscallpc: 112,
            syscallbp: Some(120), stktopsp: 128, atomicstatus: 144, goid: 152, waitsince: 168,
            waitreason: 176, lockedm: 208, sig: 224, sigcode0: 256, sigcode1: 264, sigpc: 272,
            parent_goid: Some(280), gopc: 288, startpc: 304, labels: 352,
        },
        m: MLayout {
            size: 1832, g0: 0, procid: 64, gsignal: 72, curg: 184, p: 208, id: 232,
            throwing: Field { offset: 244, size: 4 }, locks: 264, alllink: 352, lockedg: 384,
            caughtsig: 192, vdso_sp: 896, vdso_pc: 904,
        },
        panic: PanicLayout {
            size: 96, arg: 0, link: 16, recovered: 88, goexit: 90, repanicked: Some(89),
            aborted: None,
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_patch_level() {
        let layout = lookup(GoVersion::new(1, 22, 3)).expect("go1.22 is in the table");
        assert_eq!(layout.g.goid, 152);
        assert_eq!(layout.g.syscallbp, None);
        assert_eq!(
            layout.source,
            LayoutSource::Table {
                releases: "go1.22".to_owned()
            }
        );
    }

    #[test]
    fn lookup_rejects_unknown_releases() {
        assert!(lookup(GoVersion::new(1, 20, 0)).is_none());
        assert!(lookup(GoVersion::new(1, 28, 0)).is_none());
    }

    #[test]
    fn releases_are_sorted_and_unique() {
        for pair in RELEASES.windows(2) {
            assert!(
                pair[0].release < pair[1].release,
                "{:?} before {:?}",
                pair[0].release,
                pair[1].release
            );
        }
    }

    #[test]
    fn covered_releases_names_each_family() {
        let text = covered_releases();
        assert!(text.starts_with("go1.19, go1.21"), "{text}");
        assert!(text.ends_with("go1.27"), "{text}");
    }
}
