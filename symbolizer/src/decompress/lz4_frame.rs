//! Walks the block structure of an lz4 file to find where a cut stream ends.
//!
//! The lz4 frame decoder treats an input that ends between two blocks, or
//! right after a frame header, as the end of the data, so a core cut at such
//! a point would decompress without error (lz4_flex 0.14 reads an end of
//! input at a block header as the end of the frame). This walk seeks over
//! the block data and reports a stream that stops before an end mark.
//!
//! A frame is a magic, the FLG and BD bytes, an optional content size and
//! dictionary id, and a header checksum. Blocks follow, each a 4-byte size,
//! the data and an optional block checksum. A zero size is the end mark,
//! followed by an optional content checksum. The decoder verifies the
//! checksums.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const FRAME_MAGIC: u32 = 0x184D_2204;
const LEGACY_MAGIC: u32 = 0x184C_2102;

/// FLG bits.
const FLAG_BLOCK_CHECKSUM: u8 = 0x10;
const FLAG_CONTENT_SIZE: u8 = 0x08;
const FLAG_CONTENT_CHECKSUM: u8 = 0x04;
const FLAG_DICTIONARY_ID: u8 = 0x01;

/// The bit of a block size that marks an uncompressed block.
const UNCOMPRESSED_BIT: u32 = 0x8000_0000;

/// The outcome of a walk over an lz4 file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameEnd {
    /// Every frame ends with its end mark (and content checksum, when
    /// announced) and nothing follows the last one.
    Complete,
    /// The file stops inside a frame; carries the file's length.
    Truncated { at: u64 },
    /// The walk cannot judge the rest (a legacy frame, which has no end
    /// mark, or bytes that are no frame, which the decoder reports).
    Unknown,
}

/// Walks the frames of the lz4 file `file` of `len` bytes.
pub fn walk(file: &File, len: u64) -> io::Result<FrameEnd> {
    let mut position = 0u64;
    // Every pass moves `position` forward by at least four bytes, so the
    // walk ends after at most `len / 4` passes.
    while position < len {
        let Some(magic) = read_u32(file, position, len)? else {
            return Ok(FrameEnd::Truncated { at: len });
        };
        position += 4;
        if super::is_skippable_magic(magic) {
            let Some(size) = read_u32(file, position, len)? else {
                return Ok(FrameEnd::Truncated { at: len });
            };
            position += 4 + u64::from(size);
            continue;
        }
        if magic == LEGACY_MAGIC || magic != FRAME_MAGIC {
            return Ok(FrameEnd::Unknown);
        }
        match walk_frame(file, position, len)? {
            Some(end) => position = end,
            None => return Ok(FrameEnd::Truncated { at: len }),
        }
    }
    if position > len {
        return Ok(FrameEnd::Truncated { at: len });
    }
    Ok(FrameEnd::Complete)
}

/// Walks one frame whose header starts at `start`, just after the magic, and
/// returns the offset after it; `None` when the file ends inside it.
fn walk_frame(file: &File, start: u64, len: u64) -> io::Result<Option<u64>> {
    let mut descriptor = [0u8; 2];
    if !read_at(file, start, len, &mut descriptor)? {
        return Ok(None);
    }
    let [flags, _block_descriptor] = descriptor;
    let mut position = start + 2;
    if flags & FLAG_CONTENT_SIZE != 0 {
        position += 8;
    }
    if flags & FLAG_DICTIONARY_ID != 0 {
        position += 4;
    }
    // The header checksum byte.
    position += 1;
    let block_checksum = if flags & FLAG_BLOCK_CHECKSUM != 0 {
        4
    } else {
        0
    };
    loop {
        let Some(size) = read_u32(file, position, len)? else {
            return Ok(None);
        };
        position += 4;
        if size == 0 {
            break;
        }
        let data = u64::from(size & !UNCOMPRESSED_BIT);
        position = position.saturating_add(data).saturating_add(block_checksum);
        if position > len {
            return Ok(None);
        }
    }
    if flags & FLAG_CONTENT_CHECKSUM != 0 {
        position += 4;
    }
    Ok((position <= len).then_some(position))
}

/// Reads a little-endian u32 at `offset`; `None` when the file ends first.
fn read_u32(file: &File, offset: u64, len: u64) -> io::Result<Option<u32>> {
    let mut bytes = [0u8; 4];
    Ok(read_at(file, offset, len, &mut bytes)?.then(|| u32::from_le_bytes(bytes)))
}

fn read_at(file: &File, offset: u64, len: u64, buf: &mut [u8]) -> io::Result<bool> {
    let end = offset.checked_add(buf.len() as u64);
    if end.is_none_or(|end| end > len) {
        return Ok(false);
    }
    file.read_exact_at(buf, offset)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use lz4_flex::frame::{BlockSize, FrameEncoder, FrameInfo};

    fn encode(bytes: &[u8], content_checksum: bool) -> Vec<u8> {
        let info = FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .content_checksum(content_checksum);
        let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn walk_bytes(bytes: &[u8]) -> FrameEnd {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        walk(&file, bytes.len() as u64).unwrap()
    }

    fn sample() -> Vec<u8> {
        (0..300_000u32).map(|i| (i % 253) as u8).collect()
    }

    /// Returns the offsets at which each block's size field starts.
    fn block_starts(frame: &[u8]) -> Vec<usize> {
        let mut starts = Vec::new();
        let flags = frame[4];
        let mut position = 4 + 2 + 1;
        if flags & FLAG_CONTENT_SIZE != 0 {
            position += 8;
        }
        loop {
            starts.push(position);
            let size = u32::from_le_bytes(frame[position..position + 4].try_into().unwrap());
            if size == 0 {
                return starts;
            }
            position += 4 + (size & !UNCOMPRESSED_BIT) as usize;
        }
    }

    #[test]
    fn whole_frame_is_complete() {
        assert_eq!(walk_bytes(&encode(&sample(), false)), FrameEnd::Complete);
        assert_eq!(walk_bytes(&encode(&sample(), true)), FrameEnd::Complete);
    }

    #[test]
    fn concatenated_frames_are_complete() {
        let mut bytes = encode(b"first", true);
        bytes.extend(encode(b"second", false));
        assert_eq!(walk_bytes(&bytes), FrameEnd::Complete);
    }

    #[test]
    fn cut_at_block_boundary_is_truncated() {
        let frame = encode(&sample(), false);
        let starts = block_starts(&frame);
        assert!(starts.len() > 3, "the sample spans several blocks");
        for &cut in &starts {
            assert_eq!(
                walk_bytes(&frame[..cut]),
                FrameEnd::Truncated { at: cut as u64 },
                "cut at {cut:#x}"
            );
        }
    }

    #[test]
    fn cut_after_header_is_truncated() {
        let frame = encode(&sample(), false);
        for cut in [4, 5, 6, 7] {
            assert_eq!(
                walk_bytes(&frame[..cut]),
                FrameEnd::Truncated { at: cut as u64 },
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn missing_content_checksum_is_truncated() {
        let frame = encode(&sample(), true);
        let cut = frame.len() - 4;
        assert_eq!(
            walk_bytes(&frame[..cut]),
            FrameEnd::Truncated { at: cut as u64 }
        );
    }

    #[test]
    fn legacy_and_garbage_are_unknown() {
        assert_eq!(walk_bytes(&LEGACY_MAGIC.to_le_bytes()), FrameEnd::Unknown);
        let mut bytes = encode(b"data", false);
        bytes.extend_from_slice(b"trailing garbage");
        assert_eq!(walk_bytes(&bytes), FrameEnd::Unknown);
    }
}
