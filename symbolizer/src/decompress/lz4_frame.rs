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
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const FRAME_MAGIC: u32 = 0x184D_2204;
const LEGACY_MAGIC: u32 = 0x184C_2102;

/// FLG bits.
const FLAG_BLOCK_CHECKSUM: u8 = 0x10;
const FLAG_CONTENT_SIZE: u8 = 0x08;
const FLAG_CONTENT_CHECKSUM: u8 = 0x04;
const FLAG_DICTIONARY_ID: u8 = 0x01;
const FLAG_BLOCK_INDEPENDENCE: u8 = 0x20;

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

/// Decodes every frame of an lz4 stream, as `lz4 -d` does. lz4_flex's
/// decoder ends its output at each frame's end mark (0.14 returns `Ok(0)`
/// there and reads the next frame only when asked again).
///
/// One decoder reads frames of the same block size and mode in turn. A frame
/// of another layout gets a new decoder: lz4_flex 0.14 keeps the buffers of
/// the first frame it reads, and its debug assertions reject buffers of
/// another size.
pub struct AllFrames<R: BufRead> {
    decoder: Option<lz4_flex::frame::FrameDecoder<R>>,
    /// The layout of the frame being decoded (see [`next_frame`]); `None`
    /// when unknown.
    layout: Option<[u8; 2]>,
    started: bool,
}

/// Returns what the buffered input starts with: `None` at its end, else
/// the layout of the frame there, or `Some(None)` when no frame header is
/// buffered whole. A layout is the FLG byte's block-independence bit and
/// the BD byte, which give the decoder's buffer sizes.
fn next_frame<R: BufRead>(input: &mut R) -> io::Result<Option<Option<[u8; 2]>>> {
    let buffered = input.fill_buf()?;
    if buffered.is_empty() {
        return Ok(None);
    }
    let layout = match buffered.get(..6) {
        Some([m0, m1, m2, m3, flags, block])
            if u32::from_le_bytes([*m0, *m1, *m2, *m3]) == FRAME_MAGIC =>
        {
            Some([flags & FLAG_BLOCK_INDEPENDENCE, *block])
        }
        _ => None,
    };
    Ok(Some(layout))
}

impl<R: BufRead> AllFrames<R> {
    pub fn new(input: R) -> AllFrames<R> {
        AllFrames {
            decoder: Some(lz4_flex::frame::FrameDecoder::new(input)),
            layout: None,
            started: false,
        }
    }
}

impl<R: BufRead> Read for AllFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.started {
            self.started = true;
            self.layout = next_frame(decoder.get_mut())?.flatten();
        }
        // Each pass that gives no output has consumed a frame's header and
        // end mark, so the loop ends with the input.
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            let n = decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            let Some(layout) = next_frame(decoder.get_mut())? else {
                return Ok(0);
            };
            if layout.is_none() || layout != self.layout {
                if let Some(old) = self.decoder.take() {
                    self.decoder = Some(lz4_flex::frame::FrameDecoder::new(old.into_inner()));
                }
            }
            self.layout = layout;
        }
    }
}

/// The position of a [`WithoutSkippable`] reader in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// At the start of a frame, or at the end of the file.
    Boundary,
    /// Inside an lz4 frame that ends at this offset.
    InFrame(u64),
    /// Past what the walk can judge (a legacy frame, bytes that are no
    /// frame, a frame cut short): every byte goes to the decoder, which
    /// reports what is wrong.
    PassThrough,
}

/// Reads an lz4 file with its skippable frames left out, since the lz4
/// decoder stops at them (lz4_flex 0.14 returns an error), while `lz4 -d`
/// skips them, before the first frame too.
///
/// At each frame boundary the next frame's header is read with `pread`: a
/// skippable frame is seeked over, and an lz4 frame is walked block by block
/// to find where it ends. The bytes of lz4 frames are read from `inner`,
/// which must read the same open file from the current offset.
pub struct WithoutSkippable<R> {
    inner: R,
    /// The same open file, for `pread` and seeks.
    file: File,
    len: u64,
    position: u64,
    place: Place,
    /// Counts the bytes seeked over, as `inner` counts those it reads.
    skipped: Arc<AtomicU64>,
}

impl<R: Read> WithoutSkippable<R> {
    /// Reads `inner`, which reads `file` (of `len` bytes) from its start;
    /// adds the bytes of skipped frames to `skipped`.
    pub fn new(inner: R, file: File, len: u64, skipped: Arc<AtomicU64>) -> WithoutSkippable<R> {
        WithoutSkippable {
            inner,
            file,
            len,
            position: 0,
            place: Place::Boundary,
            skipped,
        }
    }

    /// Finds what starts at the boundary `self.position`: skips skippable
    /// frames, and returns the next place to read from.
    fn next_place(&mut self) -> io::Result<Place> {
        // Each pass moves past at least the eight bytes of a skippable
        // frame's header, or returns.
        loop {
            let Some(magic) = read_u32(&self.file, self.position, self.len)? else {
                return Ok(Place::PassThrough);
            };
            if super::is_skippable_magic(magic) {
                let Some(size) = read_u32(&self.file, self.position + 4, self.len)? else {
                    return Ok(Place::PassThrough);
                };
                let next = self.position + 8 + u64::from(size);
                if next > self.len {
                    return Ok(Place::PassThrough);
                }
                self.file.seek(SeekFrom::Start(next))?;
                self.skipped
                    .fetch_add(next - self.position, Ordering::Relaxed);
                self.position = next;
                if next == self.len {
                    return Ok(Place::Boundary);
                }
                continue;
            }
            if magic != FRAME_MAGIC {
                return Ok(Place::PassThrough);
            }
            return Ok(match walk_frame(&self.file, self.position + 4, self.len)? {
                Some(end) => Place::InFrame(end),
                None => Place::PassThrough,
            });
        }
    }
}

impl<R: Read> Read for WithoutSkippable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.place == Place::Boundary {
            if self.position >= self.len {
                return self.inner.read(buf);
            }
            self.place = self.next_place()?;
        }
        let limit = match self.place {
            Place::InFrame(end) => {
                let rest = usize::try_from(end - self.position).unwrap_or(usize::MAX);
                buf.len().min(rest)
            }
            Place::Boundary | Place::PassThrough => buf.len(),
        };
        let Some(part) = buf.get_mut(..limit) else {
            return Ok(0);
        };
        let n = self.inner.read(part)?;
        self.position += n as u64;
        if matches!(self.place, Place::InFrame(end) if self.position >= end) {
            self.place = Place::Boundary;
        }
        Ok(n)
    }
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
