//! Feeds arbitrary bytes, line by line, to the scanner that finds the bare
//! code addresses of a crash text for `gocrash annotate`. The scanner must
//! never panic, and what it finds must name a line it was given.
//!
//! Seed it with the real crash texts of the tests:
//!
//! ```sh
//! mkdir -p fuzz/corpus/text_addresses
//! cp ingest/tests/fixtures/traceback/*.txt fuzz/corpus/text_addresses/
//! ```

#![no_main]

use ingest::traceback::addresses::{AddressScanner, Found};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut scanner = AddressScanner::new();
    let mut lines = 0usize;
    for (index, line) in data.split_inclusive(|byte| *byte == b'\n').enumerate() {
        let number = index + 1;
        lines = number;
        let text = String::from_utf8_lossy(line);
        match scanner.scan_line(number, &text) {
            Some(Found::Address(address)) => {
                assert_eq!(address.line, number);
                let _ = address.is_code_address();
            }
            Some(Found::FramePc(frame)) => {
                assert_eq!(frame.line, number);
                assert!(!frame.function.is_empty());
            }
            None => {}
        }
    }
    assert!(lines <= data.len());
});
