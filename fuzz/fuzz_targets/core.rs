//! Feeds arbitrary bytes to the ELF core reader as a core, then uses every
//! part of the result. The reader must report damage, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use symbolizer::core::{Core, CoreOptions};

/// Maximum number of segments whose first bytes are read per input.
const SEGMENT_READS: usize = 64;

fuzz_target!(|data: &[u8]| {
    // No file is opened: paths in the input must not reach the file system.
    let options = CoreOptions { core_only: true, ..Default::default() };
    let Ok(core) = Core::from_bytes(data.to_vec(), &options) else { return };

    let memory = core.memory();
    for thread in core.threads() {
        let registers = &thread.registers;
        for addr in [registers.pc(), registers.sp(), registers.fp()] {
            let _ = memory.read_u64(addr);
        }
        let _ = registers.named();
    }
    for segment in memory.segments().iter().take(SEGMENT_READS) {
        let _ = memory.read_bytes(segment.vaddr, 64);
        let _ = memory.read_c_string(segment.vaddr, 64);
    }
    let _ = core.execfn();
    let _ = core.executable();
    let _ = core.missing_ranges();
    for problem in core.problems() {
        let _ = problem.to_string();
    }
});
