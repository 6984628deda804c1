//! Decodes zstd streams block by block, with libzstd's buffer-less API,
//! into a ring buffer this module owns.
//!
//! libzstd's streaming decoder decodes into a window of its own and copies
//! every byte out of it. In profiles of the corpus's largest core, that copy
//! took more time than the decoding. Here each block is decoded where it
//! stays until it is handed on, so no byte is copied. The block headers
//! pass through this module too, so it finds the blocks that repeat a zero
//! byte (57% of that core's bytes). It hands them on as a count of zeros,
//! which the temporary file keeps as a hole without comparing them.
//!
//! The frames are parsed only as far as the buffer-less API requires: their
//! magic numbers, which tell zstd frames from skippable ones, and their
//! headers, which give the window the ring must hold. Everything else is
//! checked by libzstd, except the content checksum: the thread that takes
//! the output computes it (see [`super::xxh64`]), so that the decoding
//! thread, which the walk of the core waits for, only decodes.
//!
//! [`decode_beside`] decodes on a thread of its own while the calling
//! thread writes the output. That thread acknowledges each range of the
//! ring it has used, and the decoder writes into no range before its
//! acknowledgement has arrived.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::ptr::NonNull;
use std::sync::mpsc;

use zstd_sys as sys;

use super::xxh64::Xxh64;
use super::Chunk;
use crate::threads::spawn_or_return;

/// The largest window accepted: 128 MiB, the default limit of libzstd's
/// streaming decoder (`ZSTD_WINDOWLOG_LIMIT_DEFAULT`).
const MAX_WINDOW: u64 = 1 << 27;

/// The largest input one step of the decoder may ask for: a block's content
/// is at most 128 KiB (`ZSTD_BLOCKSIZE_MAX`), the rest of a frame header
/// at most 14 bytes.
const MAX_STEP: usize = 1 << 17;

/// Decoded bytes gathered before they are handed on together.
const FLUSH_LEN: usize = super::BLOCK_SIZE;

/// Room in the ring beyond the window, so that the decoding thread can run
/// this far ahead of the thread taking its output.
const RING_SLACK: usize = 4 * FLUSH_LEN;

/// Messages the decoding thread may send before the taking thread reads
/// them.
const QUEUE_LEN: usize = 64;

const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// Block type of a block that repeats one byte (RFC 8878, 3.1.1.2.2).
const RLE_BLOCK: u32 = 1;

/// The failure that stopped [`decode`].
#[derive(Debug)]
pub enum Stop<E> {
    /// The input could not be read, or is not a valid zstd stream.
    Input(io::Error),
    /// The receiver of the output failed.
    Output(E),
}

impl<E> From<io::Error> for Stop<E> {
    fn from(error: io::Error) -> Stop<E> {
        Stop::Input(error)
    }
}

/// Decodes the zstd frames of `input` up to its end, and hands the output
/// to `out` in order. Skippable frames are skipped, as `zstd -d` does.
pub fn decode<E>(
    input: &mut dyn Read,
    out: &mut dyn FnMut(Chunk<'_>) -> Result<(), E>,
) -> Result<(), Stop<E>> {
    decode_into(input, &mut DirectSink { out, hash: None })
}

/// Decodes as [`decode`] does, on a thread of its own, while this thread
/// hands the output to `out`: writing the output then overlaps with
/// decoding. When the thread cannot start, both run here in turn.
pub fn decode_beside<E>(
    input: &mut (dyn Read + Send),
    out: &mut dyn FnMut(Chunk<'_>) -> Result<(), E>,
) -> Result<(), Stop<E>> {
    std::thread::scope(|scope| {
        let (messages, received) = mpsc::sync_channel(QUEUE_LEN);
        let (done, acknowledged) = mpsc::channel();
        let work = (input, messages, acknowledged);
        let decoding = spawn_or_return(scope, "gocrash-decompress", work, |work| {
            let (input, messages, acknowledged) = work;
            let mut sink = ChannelSink {
                messages,
                acknowledged,
                in_use: VecDeque::new(),
            };
            decode_into(input, &mut sink)
        });
        let handle = match decoding {
            Ok(handle) => handle,
            Err((input, _, _)) => return decode(input, out),
        };

        let mut failed = None;
        let mut damaged = None;
        let mut hash: Option<Xxh64> = None;
        for message in received.iter() {
            let outcome = match message {
                Message::Bytes { base, start, len } => {
                    // SAFETY: the decoding thread writes none of these bytes
                    // until it receives the acknowledgement sent below
                    // (`ChannelSink::reclaim`), and frees the ring only after
                    // every acknowledgement (`ChannelSink::release`).
                    let bytes = unsafe { std::slice::from_raw_parts(base.0.add(start), len) };
                    let outcome = out(Chunk::Bytes(bytes));
                    if let Some(hash) = &mut hash {
                        hash.update(bytes);
                    }
                    // The decoding thread may have stopped already.
                    let _ = done.send(());
                    outcome
                }
                Message::Zeros(len) => {
                    if let Some(hash) = &mut hash {
                        hash.update_zeros(len);
                    }
                    out(Chunk::Zeros(len))
                }
                Message::BeginFrame(checksummed) => {
                    hash = checksummed.then(Xxh64::default);
                    Ok(())
                }
                Message::EndFrame(checksum) => {
                    if let Err(error) = verify_checksum(hash.take(), checksum) {
                        damaged = Some(error);
                        break;
                    }
                    Ok(())
                }
            };
            if let Err(error) = outcome {
                failed = Some(error);
                break;
            }
        }
        // Closing both channels stops a decoding thread that still sends.
        drop(received);
        drop(done);
        let decoded = handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (failed, damaged, decoded) {
            (Some(error), _, _) => Err(Stop::Output(error)),
            (None, Some(damage), _) => Err(Stop::Input(damage)),
            (None, None, None | Some(Ok(()))) => Ok(()),
            (None, None, Some(Err(Stop::Input(error)))) => Err(Stop::Input(error)),
            (None, None, Some(Err(Stop::Output(Disconnected)))) => Err(Stop::Input(
                io::Error::other("the decoding thread lost the thread taking its output"),
            )),
        }
    })
}

/// Decodes every frame of `input` into `sink`.
fn decode_into<S: RingSink>(input: &mut dyn Read, sink: &mut S) -> Result<(), Stop<S::Error>> {
    let mut ring: Option<Ring> = None;
    let outcome = decode_frames(input, &mut ring, sink);
    // The ring is freed on return, once the sink is done with it.
    let released = sink.release().map_err(Stop::Output);
    outcome.and(released)
}

fn decode_frames<S: RingSink>(
    input: &mut dyn Read,
    ring: &mut Option<Ring>,
    sink: &mut S,
) -> Result<(), Stop<S::Error>> {
    let mut context = Context::new()?;
    let mut step = vec![0u8; MAX_STEP];
    let mut frames = 0u64;
    loop {
        let Some(magic) = step.get_mut(..4) else {
            return Err(corrupt("no room for a frame's magic number").into());
        };
        match read_full(input, magic)? {
            0 if frames > 0 => return Ok(()),
            4 => {}
            _ => return Err(truncated("at the start of a frame").into()),
        }
        let number = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]);
        if super::is_skippable_magic(number) {
            skip_frame(input)?;
        } else if number == ZSTD_MAGIC {
            decode_frame(&mut context, ring, &mut step, input, sink)?;
        } else {
            return Err(corrupt(&format!(
                "frame {frames} starts with {number:#010x}, which is no zstd magic number"
            ))
            .into());
        }
        frames += 1;
    }
}

/// Decodes one frame whose magic number is the first 4 bytes of `step`.
fn decode_frame<S: RingSink>(
    context: &mut Context,
    ring: &mut Option<Ring>,
    step: &mut [u8],
    input: &mut dyn Read,
    sink: &mut S,
) -> Result<(), Stop<S::Error>> {
    context.begin()?;
    // The first step is the magic number and the frame header's first
    // byte; the second, the rest of the header. Both are kept in `step` to
    // read the window size before the ring is sized.
    let prefix = context.next_step_len();
    let prefix_bytes = step
        .get_mut(..prefix)
        .filter(|_| prefix >= 4)
        .ok_or_else(|| corrupt("the decoder asked for an unexpected frame prefix"))?;
    read_step(input, prefix_bytes, 4, "in a frame header")?;
    context.step_without_output(prefix_bytes)?;
    let rest = context.next_step_len();
    let header = step
        .get_mut(..prefix.saturating_add(rest))
        .ok_or_else(|| corrupt("the frame header is longer than any zstd frame header"))?;
    read_step(input, header, prefix, "in a frame header")?;
    let parameters = frame_parameters(header)?;
    context.step_without_output(header.get(prefix..).unwrap_or(&[]))?;

    let ring = match ring {
        Some(ring) if ring.fits(&parameters) => {
            ring.restart(parameters.block_max);
            ring
        }
        _ => {
            // The old ring is freed once the sink is done with it.
            sink.release().map_err(Stop::Output)?;
            ring.insert(Ring::new(&parameters))
        }
    };
    sink.begin_frame(parameters.checksummed)
        .map_err(Stop::Output)?;
    let outcome = decode_blocks(context, ring, step, input, sink);
    // The blocks before damage are right, and are handed on before the
    // error that ends the stream.
    ring.flush(sink).map_err(Stop::Output)?;
    let checksum = outcome?;
    sink.end_frame(checksum)
}

/// Decodes the blocks of a frame whose header was read, and returns its
/// content checksum, if it has one.
fn decode_blocks<S: RingSink>(
    context: &mut Context,
    ring: &mut Ring,
    step: &mut [u8],
    input: &mut dyn Read,
    sink: &mut S,
) -> Result<Option<u32>, Stop<S::Error>> {
    let mut rle = None;
    let mut checksum = None;
    loop {
        let len = context.next_step_len();
        if len == 0 {
            return Ok(checksum);
        }
        let kind = context.next_step_kind();
        let bytes = step
            .get_mut(..len)
            .ok_or_else(|| corrupt(&format!("a block claims {len} bytes, more than 128 KiB")))?;
        let place = match kind {
            sys::ZSTD_nextInputType_e::ZSTDnit_blockHeader => "in a block header",
            sys::ZSTD_nextInputType_e::ZSTDnit_checksum => {
                "in the content checksum at the end of a frame"
            }
            _ => "in a block",
        };
        read_step(input, bytes, 0, place)?;
        match kind {
            sys::ZSTD_nextInputType_e::ZSTDnit_blockHeader => {
                rle = block_type(bytes).filter(|&kind| kind == RLE_BLOCK);
                context.step_without_output(bytes)?;
            }
            sys::ZSTD_nextInputType_e::ZSTDnit_block
            | sys::ZSTD_nextInputType_e::ZSTDnit_lastBlock => {
                let zeros = rle.take().is_some() && bytes.first() == Some(&0);
                ring.decode_block(context, bytes, zeros, sink)?;
            }
            sys::ZSTD_nextInputType_e::ZSTDnit_checksum => {
                checksum = bytes.first_chunk::<4>().map(|sum| u32::from_le_bytes(*sum));
                context.step_without_output(bytes)?;
            }
            _ => context.step_without_output(bytes)?,
        }
    }
}

/// The receiver of a ring's output.
trait RingSink {
    type Error;

    /// Takes `len` decoded bytes at `start` in the ring at `base`. They
    /// stay unchanged until [`RingSink::reclaim`] returns for a range that
    /// overlaps them.
    fn bytes(&mut self, base: *const u8, start: usize, len: usize) -> Result<(), Self::Error>;

    /// Takes `len` zero bytes.
    fn zeros(&mut self, len: usize) -> Result<(), Self::Error>;

    /// Returns once no bytes taken overlap `start..end` of the ring.
    fn reclaim(&mut self, start: usize, end: usize) -> Result<(), Self::Error>;

    /// Returns once no bytes taken are in use, before the ring is freed.
    fn release(&mut self) -> Result<(), Self::Error>;

    /// Starts a frame, whose content is hashed when it has a checksum.
    fn begin_frame(&mut self, checksummed: bool) -> Result<(), Self::Error>;

    /// Ends a frame, checking its content against `checksum`.
    fn end_frame(&mut self, checksum: Option<u32>) -> Result<(), Stop<Self::Error>>;
}

/// Checks the hash of a frame's content against the checksum it ends with.
fn verify_checksum(hash: Option<Xxh64>, checksum: Option<u32>) -> io::Result<()> {
    let (Some(hash), Some(expected)) = (hash, checksum) else {
        return Ok(());
    };
    // The checksum is the hash's low 32 bits.
    let found = hash.digest() as u32;
    if found != expected {
        let mismatch = ChecksumMismatch { expected, found };
        return Err(io::Error::new(io::ErrorKind::InvalidData, mismatch));
    }
    Ok(())
}

/// A frame whose window is larger than gocrash decodes: not damage, but
/// more memory than a core's frames need.
#[derive(Debug, thiserror::Error)]
#[error(
    "zstd: the frame needs a window of {needed} bytes, more than the {MAX_WINDOW} bytes gocrash \
     accepts, as zstd -d does without --memory; decompress it with `zstd -d --memory={}MB` and \
     pass the plain core",
    needed.div_ceil(1 << 20)
)]
pub struct WindowTooLarge {
    pub needed: u64,
}

/// A frame's content checksum that its decoded bytes do not match.
#[derive(Debug, thiserror::Error)]
#[error(
    "zstd: content checksum mismatch: the frame gives {expected:#010x}, its decoded bytes \
     {found:#010x}"
)]
pub struct ChecksumMismatch {
    pub expected: u32,
    pub found: u32,
}

/// Hands the output to a function on the decoding thread.
struct DirectSink<'o, E> {
    out: &'o mut dyn FnMut(Chunk<'_>) -> Result<(), E>,
    /// The hash of the current frame's content, when it has a checksum.
    hash: Option<Xxh64>,
}

impl<E> RingSink for DirectSink<'_, E> {
    type Error = E;

    fn bytes(&mut self, base: *const u8, start: usize, len: usize) -> Result<(), E> {
        // SAFETY: the range was written by libzstd, on this thread, which
        // decodes nothing while the slice lives.
        let bytes = unsafe { std::slice::from_raw_parts(base.add(start), len) };
        (self.out)(Chunk::Bytes(bytes))?;
        if let Some(hash) = &mut self.hash {
            hash.update(bytes);
        }
        Ok(())
    }

    fn zeros(&mut self, len: usize) -> Result<(), E> {
        (self.out)(Chunk::Zeros(len))?;
        if let Some(hash) = &mut self.hash {
            hash.update_zeros(len);
        }
        Ok(())
    }

    /// Returns at once: the bytes were used before [`DirectSink::bytes`] returned.
    fn reclaim(&mut self, _start: usize, _end: usize) -> Result<(), E> {
        Ok(())
    }

    fn release(&mut self) -> Result<(), E> {
        Ok(())
    }

    fn begin_frame(&mut self, checksummed: bool) -> Result<(), E> {
        self.hash = checksummed.then(Xxh64::default);
        Ok(())
    }

    fn end_frame(&mut self, checksum: Option<u32>) -> Result<(), Stop<E>> {
        verify_checksum(self.hash.take(), checksum).map_err(Stop::Input)
    }
}

/// A pointer to a ring, sent to the thread that takes its output.
struct RingBase(*const u8);

// SAFETY: the receiving thread reads only ranges that the decoding thread
// leaves unchanged until their acknowledgement arrives (see `ChannelSink`).
unsafe impl Send for RingBase {}

/// Output sent from the decoding thread to the taking one.
enum Message {
    Bytes {
        base: RingBase,
        start: usize,
        len: usize,
    },
    Zeros(usize),
    /// A frame starts, with a content checksum or not.
    BeginFrame(bool),
    /// A frame ends, with this checksum if it has one.
    EndFrame(Option<u32>),
}

/// The taking thread stopped before the decoding one.
#[derive(Debug)]
struct Disconnected;

/// Sends the output to another thread, which acknowledges each range of
/// bytes once it used them.
struct ChannelSink {
    messages: mpsc::SyncSender<Message>,
    acknowledged: mpsc::Receiver<()>,
    /// The ranges sent and not acknowledged yet, oldest first.
    in_use: VecDeque<(usize, usize)>,
}

impl ChannelSink {
    /// Waits for the oldest range in use to be acknowledged.
    fn wait_for_oldest(&mut self) -> Result<(), Disconnected> {
        self.acknowledged.recv().map_err(|_| Disconnected)?;
        self.in_use.pop_front();
        Ok(())
    }
}

impl RingSink for ChannelSink {
    type Error = Disconnected;

    fn bytes(&mut self, base: *const u8, start: usize, len: usize) -> Result<(), Disconnected> {
        let message = Message::Bytes {
            base: RingBase(base),
            start,
            len,
        };
        self.messages.send(message).map_err(|_| Disconnected)?;
        self.in_use.push_back((start, start + len));
        Ok(())
    }

    fn zeros(&mut self, len: usize) -> Result<(), Disconnected> {
        self.messages
            .send(Message::Zeros(len))
            .map_err(|_| Disconnected)
    }

    fn reclaim(&mut self, start: usize, end: usize) -> Result<(), Disconnected> {
        while self
            .in_use
            .iter()
            .any(|&(used_start, used_end)| used_start < end && start < used_end)
        {
            self.wait_for_oldest()?;
        }
        Ok(())
    }

    fn release(&mut self) -> Result<(), Disconnected> {
        while !self.in_use.is_empty() {
            self.wait_for_oldest()?;
        }
        Ok(())
    }

    fn begin_frame(&mut self, checksummed: bool) -> Result<(), Disconnected> {
        self.messages
            .send(Message::BeginFrame(checksummed))
            .map_err(|_| Disconnected)
    }

    /// Sends the checksum, which the taking thread verifies.
    fn end_frame(&mut self, checksum: Option<u32>) -> Result<(), Stop<Disconnected>> {
        self.messages
            .send(Message::EndFrame(checksum))
            .map_err(|_| Stop::Output(Disconnected))
    }
}

/// Skips a skippable frame whose magic number was read.
fn skip_frame(input: &mut dyn Read) -> io::Result<()> {
    let mut size = [0u8; 4];
    if read_full(input, &mut size)? < size.len() {
        return Err(truncated("in a skippable frame's header"));
    }
    let size = u64::from(u32::from_le_bytes(size));
    let skipped = io::copy(&mut input.take(size), &mut io::sink())?;
    if skipped < size {
        return Err(truncated("in a skippable frame"));
    }
    Ok(())
}

/// The parts of a frame header the ring is sized by.
struct FrameParameters {
    /// Bytes the ring must hold: the window and room for two blocks.
    ring_len: usize,
    block_max: usize,
    /// The frame ends with a content checksum.
    checksummed: bool,
}

fn frame_parameters(header: &[u8]) -> io::Result<FrameParameters> {
    let mut parsed = sys::ZSTD_FrameHeader {
        frameContentSize: 0,
        windowSize: 0,
        blockSizeMax: 0,
        frameType: sys::ZSTD_FrameType_e::ZSTD_frame,
        headerSize: 0,
        dictID: 0,
        checksumFlag: 0,
        _reserved1: 0,
        _reserved2: 0,
    };
    // SAFETY: `parsed` is a valid header structure to fill, and libzstd
    // reads at most `header.len()` bytes from `header`.
    let code =
        unsafe { sys::ZSTD_getFrameHeader(&mut parsed, header.as_ptr().cast(), header.len()) };
    check(code)?;
    if code != 0 {
        return Err(corrupt("the frame header is incomplete"));
    }

    if parsed.windowSize > MAX_WINDOW {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            WindowTooLarge {
                needed: parsed.windowSize,
            },
        ));
    }
    // SAFETY: a pure function of its two numbers.
    let ring_len =
        unsafe { sys::ZSTD_decodingBufferSize_min(parsed.windowSize, parsed.frameContentSize) };
    check(ring_len)?;

    // An empty frame has a window and blocks of 0 bytes.
    let block_max = usize::try_from(parsed.blockSizeMax).unwrap_or(usize::MAX);
    if block_max > MAX_STEP || block_max > ring_len {
        return Err(corrupt("the frame header gives an impossible block size"));
    }
    Ok(FrameParameters {
        ring_len,
        block_max,
        checksummed: parsed.checksumFlag != 0,
    })
}

/// Returns the block type of a 3-byte block header.
fn block_type(header: &[u8]) -> Option<u32> {
    match header {
        &[first, ..] => Some((u32::from(first) >> 1) & 3),
        [] => None,
    }
}

/// A libzstd decompression context, used through the buffer-less API.
struct Context(NonNull<sys::ZSTD_DCtx>);

impl Context {
    fn new() -> io::Result<Context> {
        // SAFETY: allocates a context, or returns null.
        let context = unsafe { sys::ZSTD_createDCtx() };
        let context = NonNull::new(context)
            .map(Context)
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "libzstd has no memory"))?;
        // The content checksum is verified by the sink (`verify_checksum`).
        // SAFETY: the context is valid; ZSTD_d_experimentalParam3 is
        // ZSTD_d_forceIgnoreChecksum in zstd.h.
        check(unsafe {
            sys::ZSTD_DCtx_setParameter(
                context.0.as_ptr(),
                sys::ZSTD_dParameter::ZSTD_d_experimentalParam3,
                sys::ZSTD_forceIgnoreChecksum_e::ZSTD_d_ignoreChecksum as std::ffi::c_int,
            )
        })?;
        Ok(context)
    }

    fn begin(&mut self) -> io::Result<()> {
        // SAFETY: the context is valid, and not referencing a ring yet.
        check(unsafe { sys::ZSTD_decompressBegin(self.0.as_ptr()) }).map(drop)
    }

    /// Returns how many input bytes the next step takes; 0 when the frame
    /// is complete.
    fn next_step_len(&self) -> usize {
        // SAFETY: the context is valid.
        unsafe { sys::ZSTD_nextSrcSizeToDecompress(self.0.as_ptr()) }
    }

    fn next_step_kind(&self) -> sys::ZSTD_nextInputType_e {
        // SAFETY: the context is valid.
        unsafe { sys::ZSTD_nextInputType(self.0.as_ptr()) }
    }

    /// Takes a step that produces no output: a header or a checksum.
    fn step_without_output(&mut self, input: &[u8]) -> io::Result<()> {
        // SAFETY: the context is valid; with no room for output, libzstd
        // writes nothing, and it reads `input.len()` bytes of `input`.
        let code = unsafe {
            sys::ZSTD_decompressContinue(
                self.0.as_ptr(),
                std::ptr::null_mut(),
                0,
                input.as_ptr().cast(),
                input.len(),
            )
        };
        match check(code)? {
            0 => Ok(()),
            _ => Err(corrupt("a header step produced output")),
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was made by ZSTD_createDCtx and is freed once.
        unsafe { sys::ZSTD_freeDCtx(self.0.as_ptr()) };
    }
}

// SAFETY: a context is used by one thread at a time, and libzstd keeps no
// per-thread state for it.
unsafe impl Send for Context {}

/// The buffer blocks are decoded into, in turn, and wrapped around once
/// the room left could not hold another block (the round buffer of
/// libzstd's buffer-less API). libzstd reads the previous window of output
/// from it, so bytes are only overwritten once they are older than the
/// window. They are handed on long before that.
struct Ring {
    /// The memory, from `Box::into_raw`: reached only through this pointer,
    /// so that the pointers libzstd keeps into it stay valid.
    memory: *mut [u8],
    base: *mut u8,
    len: usize,
    block_max: usize,
    /// The end of the decoded bytes.
    end: usize,
    /// The start of the decoded bytes not handed on yet.
    pending: usize,
}

impl Ring {
    fn new(parameters: &FrameParameters) -> Ring {
        // At most 128 MiB, two blocks and the slack (see `MAX_WINDOW`),
        // zeroed by the allocator, so pages are touched only as blocks land
        // in them.
        let len = parameters.ring_len + RING_SLACK;
        let memory = Box::into_raw(vec![0u8; len].into_boxed_slice());
        let base = memory.cast::<u8>();
        Ring {
            memory,
            base,
            len,
            block_max: parameters.block_max,
            end: 0,
            pending: 0,
        }
    }

    fn fits(&self, parameters: &FrameParameters) -> bool {
        self.len >= parameters.ring_len + RING_SLACK
    }

    /// Starts a new frame, which refers to no earlier output.
    fn restart(&mut self, block_max: usize) {
        self.block_max = block_max;
        self.end = 0;
        self.pending = 0;
    }

    /// Decodes one block's content at the end of the ring, and hands on
    /// what is pending once it grows large, or the block itself when it
    /// is known to be all zeros.
    fn decode_block<S: RingSink>(
        &mut self,
        context: &mut Context,
        input: &[u8],
        zeros: bool,
        sink: &mut S,
    ) -> Result<(), Stop<S::Error>> {
        if self.len - self.end < self.block_max {
            self.flush(sink).map_err(Stop::Output)?;
            self.end = 0;
            self.pending = 0;
        }
        // A block's content is at most `block_max` bytes, and libzstd
        // writes nothing past the room it is given.
        let room = (self.len - self.end).min(2 * self.block_max);
        sink.reclaim(self.end, self.end + room)
            .map_err(Stop::Output)?;
        // SAFETY: `end + room` is within the allocation, which lives as
        // long as the ring, and no bytes handed on are in that range.
        // libzstd writes at most `room` bytes there, and reads earlier
        // output in the ring, which nothing writes.
        let code = unsafe {
            sys::ZSTD_decompressContinue(
                context.0.as_ptr(),
                self.base.add(self.end).cast(),
                room,
                input.as_ptr().cast(),
                input.len(),
            )
        };
        let produced = check(code)?.min(room);

        if zeros {
            self.flush(sink).map_err(Stop::Output)?;
            self.end += produced;
            self.pending = self.end;
            return sink.zeros(produced).map_err(Stop::Output);
        }
        self.end += produced;
        if self.end - self.pending >= FLUSH_LEN {
            self.flush(sink).map_err(Stop::Output)?;
        }
        Ok(())
    }

    /// Hands on the decoded bytes not handed on yet.
    fn flush<S: RingSink>(&mut self, sink: &mut S) -> Result<(), S::Error> {
        let len = self.end - self.pending;
        if len == 0 {
            return Ok(());
        }
        let start = self.pending;
        self.pending = self.end;
        sink.bytes(self.base, start, len)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: made by `Box::into_raw` in `Ring::new`, freed only here.
        drop(unsafe { Box::from_raw(self.memory) });
    }
}

// SAFETY: the ring owns its memory; `base` points into it.
unsafe impl Send for Ring {}

/// Returns libzstd's result, or its error as an `io::Error`.
fn check(code: usize) -> io::Result<usize> {
    // SAFETY: pure functions of the code; the name is a static C string.
    unsafe {
        if sys::ZSTD_isError(code) == 0 {
            return Ok(code);
        }
        let name = std::ffi::CStr::from_ptr(sys::ZSTD_getErrorName(code));
        Err(corrupt(&name.to_string_lossy()))
    }
}

/// Reads `bytes[filled..]`, failing when the input ends first.
fn read_step(input: &mut dyn Read, bytes: &mut [u8], filled: usize, place: &str) -> io::Result<()> {
    let rest = bytes.get_mut(filled..).unwrap_or(&mut []);
    let wanted = rest.len();
    if read_full(input, rest)? < wanted {
        return Err(truncated(place));
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends, and returns the count.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match input.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn corrupt(problem: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {problem}"))
}

fn truncated(place: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("zstd: the stream ends {place}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output of [`decode`], zeros spelled out, and how it ended.
    struct Decoded {
        output: Vec<u8>,
        zero_chunks: usize,
        error: Option<io::Error>,
    }

    fn decode_all(input: &[u8]) -> Decoded {
        decode_with(input, false)
    }

    /// Decodes `input` on this thread, or on another one `beside` it.
    fn decode_with(input: &[u8], beside: bool) -> Decoded {
        let mut output = Vec::new();
        let mut zero_chunks = 0;
        let mut out = |chunk: Chunk<'_>| -> Result<(), ()> {
            match chunk {
                Chunk::Bytes(bytes) => output.extend_from_slice(bytes),
                Chunk::Zeros(len) => {
                    zero_chunks += 1;
                    output.resize(output.len() + len, 0);
                }
            }
            Ok(())
        };
        let outcome = if beside {
            decode_beside(&mut &input[..], &mut out)
        } else {
            decode(&mut &input[..], &mut out)
        };
        let error = match outcome {
            Ok(()) => None,
            Err(Stop::Input(error)) => Some(error),
            Err(Stop::Output(())) => unreachable!("the receiver never fails"),
        };
        Decoded {
            output,
            zero_chunks,
            error,
        }
    }

    /// Bytes that repeat within a 64 KiB window, with long zero runs, as
    /// cores have.
    fn sample(len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        let mut state = 0x2545_f491_u32;
        for (index, byte) in bytes.iter_mut().enumerate() {
            if (index / 300_000) % 3 == 2 {
                continue;
            }
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *byte = if index % 4096 < 1024 {
                (state >> 24) as u8
            } else {
                (index % 251) as u8
            };
        }
        bytes
    }

    fn compress(bytes: &[u8], window_log: i32) -> Vec<u8> {
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_checksum(true).unwrap();
        encoder.window_log(window_log as u32).unwrap();
        std::io::Write::write_all(&mut encoder, bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn output_matches_the_streaming_decoder() {
        // A 64 KiB window over 4 MiB makes the ring wrap many times.
        let bytes = sample(4 << 20);
        let compressed = compress(&bytes, 16);
        let decoded = decode_all(&compressed);
        assert!(decoded.error.is_none(), "{:?}", decoded.error);
        assert_eq!(decoded.output.len(), bytes.len());
        assert!(decoded.output == bytes, "decoded bytes differ");
        assert!(decoded.zero_chunks > 0, "no block was recognised as zeros");
        assert!(zstd::stream::decode_all(&compressed[..]).unwrap() == decoded.output);
    }

    #[test]
    fn decoding_beside_gives_the_same_output() {
        let bytes = sample(4 << 20);
        let compressed = compress(&bytes, 16);
        let decoded = decode_with(&compressed, true);
        assert!(decoded.error.is_none(), "{:?}", decoded.error);
        assert!(decoded.output == bytes, "decoded bytes differ");
        assert_eq!(decoded.zero_chunks, decode_all(&compressed).zero_chunks);

        let cut = decode_with(&compressed[..compressed.len() / 2], true);
        assert!(cut.error.is_some());
        assert_eq!(
            cut.output,
            decode_all(&compressed[..compressed.len() / 2]).output
        );
    }

    #[test]
    fn failed_output_stops_decoding_beside() {
        let compressed = compress(&sample(4 << 20), 16);
        let mut chunks = 0;
        let outcome = decode_beside(&mut &compressed[..], &mut |_chunk| {
            chunks += 1;
            if chunks == 3 {
                return Err("disk full");
            }
            Ok(())
        });
        assert!(
            matches!(outcome, Err(Stop::Output("disk full"))),
            "{outcome:?}"
        );
        assert_eq!(chunks, 3);
    }

    #[test]
    fn wrong_checksum_is_damage() {
        let bytes = sample(1 << 20);
        let mut compressed = compress(&bytes, 18);
        let last = compressed.len() - 1;
        compressed[last] ^= 0x01;
        for beside in [false, true] {
            let decoded = decode_with(&compressed, beside);
            let error = decoded.error.expect("an error");
            assert!(
                error.to_string().contains("content checksum mismatch"),
                "{error}"
            );
            // Every byte was written before the checksum could be checked.
            assert!(decoded.output == bytes, "beside: {beside}");
        }
    }

    #[test]
    fn empty_frames_decode_to_nothing() {
        // A frame of no content, as `zstd` writes for an empty input.
        let empty = zstd::bulk::compress(&[], 3).unwrap();
        let bytes = sample(200_000);
        let mut input = empty.clone();
        input.extend_from_slice(&compress(&bytes, 18));
        input.extend_from_slice(&empty);
        for beside in [false, true] {
            let decoded = decode_with(&input, beside);
            assert!(decoded.error.is_none(), "{:?}", decoded.error);
            assert!(decoded.output == bytes, "beside: {beside}");
        }
        let alone = decode_all(&empty);
        assert!(alone.error.is_none(), "{:?}", alone.error);
        assert!(alone.output.is_empty());
    }

    #[test]
    fn cut_checksum_is_named() {
        let compressed = compress(&sample(100_000), 18);
        let error = decode_all(&compressed[..compressed.len() - 2])
            .error
            .expect("an error");
        assert!(
            error.to_string().contains("in the content checksum"),
            "{error}"
        );
    }

    #[test]
    fn skippable_frames_are_skipped() {
        let first = sample(300_000);
        let second: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
        let mut input = compress(&first, 17);
        input.extend_from_slice(&0x184D_2A53u32.to_le_bytes());
        input.extend_from_slice(&5u32.to_le_bytes());
        input.extend_from_slice(b"skip!");
        input.extend_from_slice(&compress(&second, 20));
        let Decoded { output, error, .. } = decode_all(&input);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(output.len(), first.len() + second.len());
        assert!(output[..first.len()] == first[..]);
        assert!(output[first.len()..] == second[..]);
    }

    #[test]
    fn damage_is_an_error_never_wrong_bytes() {
        let bytes = sample(1 << 20);
        let compressed = compress(&bytes, 18);
        // A stream cut inside a frame keeps the blocks before the cut.
        let cut = compressed.len() / 2;
        let decoded = decode_all(&compressed[..cut]);
        let error = decoded.error.expect("an error");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
        assert!(
            decoded.output.len() > bytes.len() / 4,
            "{}",
            decoded.output.len()
        );
        assert!(bytes.starts_with(&decoded.output), "kept bytes differ");

        // A flipped byte in the last block's literals shows as a checksum
        // failure, or as a decoding error.
        let mut flipped = compressed.clone();
        let at = flipped.len() - 40;
        flipped[at] ^= 0x55;
        let error = decode_all(&flipped).error.expect("an error");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");

        // Bytes after the last frame that start no frame.
        let mut trailing = compressed;
        trailing.extend_from_slice(b"ELF!");
        let error = decode_all(&trailing).error.expect("an error");
        assert!(
            error.to_string().contains("no zstd magic number"),
            "{error}"
        );
    }

    #[test]
    fn oversized_windows_are_refused() {
        // Frame header: magic, descriptor 0 (window descriptor follows, no
        // checksum, no content size), window descriptor for 2^31 bytes.
        let mut input = ZSTD_MAGIC.to_le_bytes().to_vec();
        input.extend_from_slice(&[0x00, (31 - 10) << 3]);
        input.extend_from_slice(&[0; 16]);
        let error = decode_all(&input).error.expect("an error");
        assert!(
            error.to_string().contains("window of 2147483648 bytes"),
            "{error}"
        );
        assert!(
            error
                .get_ref()
                .is_some_and(|inner| inner.is::<WindowTooLarge>()),
            "{error:?}"
        );
    }
}
