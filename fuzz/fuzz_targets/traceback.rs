//! Feeds arbitrary bytes to the Go crash text parser, then uses every part
//! of the result. The parser must keep going on any input, never panic, and
//! stay within its limits.
//!
//! Seed it with the real crash texts of the tests:
//!
//! ```sh
//! mkdir -p fuzz/corpus/traceback
//! cp ingest/tests/fixtures/traceback/*.txt fuzz/corpus/traceback/
//! ```

#![no_main]

use ingest::traceback::{
    classify_function, package_path, parse_args, parse_bytes, ParseOptions, MAX_FRAMES_PER_STACK,
    MAX_GOROUTINES, MAX_WARNINGS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options, so both paths see every input.
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let options = ParseOptions {
        strip_prefixes: selector & 1 == 1,
    };
    let traceback = parse_bytes(text, &options);

    assert!(traceback.goroutines.len() <= MAX_GOROUTINES);
    assert!(traceback.warnings.len() <= MAX_WARNINGS);
    for goroutine in &traceback.goroutines {
        assert!(goroutine.frames.len() <= MAX_FRAMES_PER_STACK);
        let _ = traceback.goroutine(goroutine.id);
        let _ = goroutine.first_main_frame();
        for frame in &goroutine.frames {
            let _ = frame.class();
            let _ = classify_function(&frame.function);
            let _ = package_path(&frame.function);
            let _ = parse_args(&frame.args);
        }
    }
    if let Some(registers) = &traceback.registers {
        let _ = (registers.pc(), registers.sp());
    }
    let _ = traceback.main_goroutines().count();
    let _ = traceback.is_empty();
    let json = serde_json::to_string(&traceback).expect("a traceback always serializes");
    let back: ingest::traceback::Traceback =
        serde_json::from_str(&json).expect("a serialized traceback reads back");
    assert_eq!(back, traceback);
});
