//! Feeds arbitrary bytes to the core decompression as a compressed core
//! file: format detection, the zstd frame and block walk, the lz4 frame walk
//! and the xz decoder. Each must end with output or an error, never panic.
//!
//! Run it with `-detect_leaks=0` and `ASAN_OPTIONS=detect_leaks=0`: the
//! decoding threads' handles, which the standard library keeps until the
//! process exits, are reported as leaks otherwise.

#![no_main]

use std::io::{self, Write};

use libfuzzer_sys::fuzz_target;
use symbolizer::decompress::{decompress_to, Content, Output};

/// Decompressed bytes taken per input. A few bytes of zstd expand to
/// gigabytes of zeros, so the output stops here with a write error.
const MAX_OUTPUT: usize = 16 << 20;

/// Counts bytes and fails past [`MAX_OUTPUT`].
struct Bounded(usize);

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        if self.0 > MAX_OUTPUT {
            return Err(io::Error::other("output limit reached"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    // The decompression reads files, so the input goes to one first.
    let Ok(mut file) = tempfile::NamedTempFile::new() else { return };
    if file.write_all(data).is_err() {
        return;
    }
    let mut sink = Bounded(0);
    for content in [Content::Core, Content::Raw] {
        sink.0 = 0;
        let _ = decompress_to(file.path(), Output::Writer(&mut sink), content, &mut |_| {});
    }
});
