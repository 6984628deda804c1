//! A real core cut short at many points and with bytes flipped: the reader
//! may report damage but must never panic.

use symbolizer::core::{Core, CoreOptions};

use crate::crash::crashes;

/// A small deterministic generator (xorshift64), so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Uses every part of the reader's API on a parsed core.
fn exercise(core: &Core) -> usize {
    let mut reads = 0;
    for thread in core.threads() {
        for addr in [
            thread.registers.sp(),
            thread.registers.pc(),
            thread.registers.fp(),
        ] {
            reads += usize::from(core.memory().read_u64(addr).is_ok());
        }
    }
    for segment in core.memory().segments().iter().take(64) {
        reads += usize::from(core.memory().read_bytes(segment.vaddr, 256).is_ok());
    }
    let _ = core.executable();
    let _ = core.execfn();
    let _ = core.missing_ranges();
    let _ = core.siginfo();
    let _ = core.process();
    for problem in core.problems() {
        let _ = problem.to_string();
    }
    reads
}

#[test]
fn truncated_cores_never_panic() {
    let Some(crash) = crashes().first() else {
        return;
    };
    let plain = std::fs::read(&crash.plain).unwrap();
    let mut cuts: Vec<usize> = (0..64).map(|i| plain.len() * i / 64).collect();
    // Every 61 bytes through the headers and notes, where structure is dense.
    cuts.extend((0..0x5000).step_by(61));
    let mut opened = 0;
    for cut in cuts {
        match Core::from_bytes(plain[..cut].to_vec(), &CoreOptions::default()) {
            Ok(core) => {
                opened += 1;
                exercise(&core);
                if cut < plain.len() && cut > 0x4000 {
                    assert!(core.is_partial(), "cut at {cut:#x} not reported");
                }
            }
            Err(error) => {
                let _ = error.to_string();
            }
        }
    }
    assert!(opened > 64, "only {opened} truncated cores opened");
}

#[test]
fn flipped_bytes_never_panic() {
    let Some(crash) = crashes().first() else {
        return;
    };
    let plain = std::fs::read(&crash.plain).unwrap();
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut opened = 0;
    for _ in 0..200 {
        let mut bytes = plain.clone();
        for _ in 0..1 + random.below(8) {
            // Three flips in four hit the headers and notes.
            let index = if random.below(4) < 3 {
                random.below(0x5000)
            } else {
                random.below(bytes.len())
            };
            bytes[index] ^= 1 << random.below(8);
        }
        if let Ok(core) = Core::from_bytes(bytes, &CoreOptions::default()) {
            opened += 1;
            exercise(&core);
        }
    }
    assert!(opened > 100, "only {opened} damaged cores opened");
}
