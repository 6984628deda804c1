//! Opens core files as systemd-coredump and the kernel leave them: zstd, lz4
//! (frame format), xz, or plain ELF.
//!
//! The format is recognised from the file's first bytes, never from its name,
//! because some systemd builds wrote lz4 data under a `.zst` name. A plain
//! core is memory-mapped as it is. A compressed one is decompressed as a
//! stream, in fixed-size blocks, into a private unnamed temporary file, and
//! that file is memory-mapped, so the core never sits in anonymous memory.
//! Zero pages become holes in that file, since cores are mostly untouched
//! reservations. Parsing the ELF inside is left to [`crate::core`]; this module
//! only produces its bytes.
//!
//! The decompressed stream is never trusted to end. Its first bytes must be
//! a 64-bit ELF header, unless the caller requests [`Content::Raw`]. It is
//! not read past the end of the core its program headers describe, nor past
//! [`MAX_DECOMPRESSED_LEN`].

mod background;
mod extent;
mod lz4_frame;
mod xxh64;
mod zstd_blocks;

pub use extent::MAX_DECOMPRESSED_LEN;

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use memmap2::Mmap;

use extent::{CoreExtent, NotElf};
use lz4_frame::FrameEnd;

use crate::threads::spawn_or_return;

/// Size of the buffer the decompressed stream is cut into.
pub const BLOCK_SIZE: usize = 1 << 20;

/// Size of the input buffer handed to the decoders.
const INPUT_BUFFER_SIZE: usize = 1 << 16;

/// Granularity of holes: an all-zero run of this many bytes, aligned in the
/// output, is skipped with a seek instead of written. This is the page size of
/// amd64 and of most arm64 kernels, the unit in which cores contain zeros.
const HOLE_SIZE: usize = 4096;

/// An all-zero page, compared against to find holes.
static ZERO_PAGE: [u8; HOLE_SIZE] = [0; HOLE_SIZE];

/// Number of leading bytes needed to recognise every supported format.
const MAGIC_LEN: usize = 6;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
/// The lz4 legacy frame, which `lz4 -l` writes.
const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
const XZ_MAGIC: [u8; 6] = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];

/// Reports whether a little-endian frame magic number starts a skippable
/// frame, which zstd and lz4 share: the 16 numbers 0x184D2A50 to
/// 0x184D2A5F.
fn is_skippable_magic(magic: u32) -> bool {
    magic & 0xFFFF_FFF0 == 0x184D_2A50
}

/// Container format of a core file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain ELF file.
    None,
    Zstd,
    /// The lz4 frame format, as written by the `lz4` tool.
    Lz4,
    Xz,
}

impl Compression {
    /// Recognises a format from the first bytes of a file.
    pub fn detect(prefix: &[u8]) -> Option<Compression> {
        if prefix.starts_with(&ZSTD_MAGIC) {
            Some(Compression::Zstd)
        } else if prefix.starts_with(&LZ4_FRAME_MAGIC) || prefix.starts_with(&LZ4_LEGACY_MAGIC) {
            Some(Compression::Lz4)
        } else if prefix.starts_with(&XZ_MAGIC) {
            Some(Compression::Xz)
        } else if prefix.starts_with(&ELF_MAGIC) {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// Returns the name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "plain ELF",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::Xz => "xz",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Progress of a decompression, reported after every block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Compressed bytes read from the file so far.
    pub bytes_in: u64,
    /// Decompressed bytes produced so far.
    pub bytes_out: u64,
    /// Size of the compressed file.
    pub total_in: u64,
}

/// Expected content of a decompressed stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Content {
    /// A 64-bit ELF core: the stream must start with an ELF header, and is
    /// not read past the end its program headers describe.
    #[default]
    Core,
    /// Any bytes, up to [`MAX_DECOMPRESSED_LEN`].
    Raw,
}

/// Destination of [`decompress_to`].
pub enum Output<'a> {
    /// A stream, written without holes.
    Writer(&'a mut dyn Write),
    /// A regular file, written from its current start with holes where the
    /// core has zero pages; its length is set at the end.
    File(&'a mut File),
}

/// Settings for decompressing a core.
#[derive(Clone, Debug, Default)]
pub struct DecompressOptions {
    /// Directory for the temporary file; the system temporary directory when
    /// `None`. A multi-GiB core needs that much free space there, minus holes.
    pub temp_dir: Option<PathBuf>,
    /// The path that messages and [`CoreImage::source`] give for the core,
    /// when it is read through another one, such as a `/proc/self/fd` link
    /// to a file of the coredump store. When `None`, they give the path read.
    pub shown_path: Option<PathBuf>,
}

/// Failure to turn a core file into ELF bytes.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error("failed to open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to read {path} at offset {offset:#x}")]
    Read {
        path: PathBuf,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("{path} is {len} bytes long, too short to be a core")]
    TooShort { path: PathBuf, len: u64 },
    #[error("{path} is neither an ELF core nor a zstd, lz4 or xz stream: it starts with {found}")]
    UnknownFormat {
        path: PathBuf,
        found: String,
        /// The first bytes are printable text, such as a crash text given
        /// in place of a core.
        is_text: bool,
    },
    #[error(
        "{format} stream in {path} is truncated or corrupt: the decoder failed after reading \
         {offset:#x} compressed bytes and producing {decompressed:#x} bytes"
    )]
    Corrupt {
        path: PathBuf,
        format: Compression,
        /// Compressed bytes read when the decoder failed. Decoders read ahead
        /// by up to one input buffer, so the damage lies at or before it.
        offset: u64,
        /// Decompressed bytes produced before the failure.
        decompressed: u64,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is not a 64-bit ELF core: the decompressed {format} stream starts with {found}"
    )]
    NotElf {
        path: PathBuf,
        format: Compression,
        /// The stream's first bytes in hex, or the ELF class found.
        found: String,
    },
    #[error(
        "{format} stream in {path} is truncated at byte {offset:#x} of the input, after \
         {decompressed:#x} decompressed bytes"
    )]
    Truncated {
        path: PathBuf,
        format: Compression,
        /// Length of the input, where the stream stops inside a frame.
        offset: u64,
        /// Decompressed bytes produced before the cut.
        decompressed: u64,
    },
    #[error(
        "{format} stream in {path} fails its content checksum at the end of a frame, after \
         {decompressed:#x} decompressed bytes: any byte of that frame may be wrong"
    )]
    ChecksumMismatch {
        path: PathBuf,
        format: Compression,
        /// Decompressed bytes produced, the failing frame's included.
        decompressed: u64,
        #[source]
        source: io::Error,
    },
    #[error(
        "{format} stream in {path} cannot be decompressed past {decompressed:#x} bytes: it is \
         not damaged, but needs more than gocrash supports"
    )]
    Unsupported {
        path: PathBuf,
        format: Compression,
        /// Decompressed bytes produced before the unsupported part.
        decompressed: u64,
        #[source]
        source: io::Error,
    },
    #[error(
        "{format} stream in {path} ends after {len:#x} decompressed bytes, before the end of the \
         core its program headers describe ({limit:#x}): the core was cut before it was compressed"
    )]
    EndsEarly {
        path: PathBuf,
        format: Compression,
        /// Decompressed bytes.
        len: u64,
        /// The end of the core the program headers describe.
        limit: u64,
    },
    #[error(
        "{format} stream in {path} goes on past {limit:#x} decompressed bytes, {bound}; the rest \
         was not read"
    )]
    TooLong {
        path: PathBuf,
        format: Compression,
        limit: u64,
        /// Source of the limit, as a phrase for the message.
        bound: &'static str,
    },
    #[error(
        "failed to write the decompressed core of {path} to a temporary file in {dir} at offset \
         {offset:#x}; that directory needs free space for the core minus its zero pages \
         (set TMPDIR to use another)"
    )]
    TempWrite {
        path: PathBuf,
        dir: PathBuf,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("failed to create a temporary file in {dir}")]
    TempFile {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write the decompressed core of {path} at offset {offset:#x}")]
    Write {
        path: PathBuf,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("failed to memory-map {path}")]
    Map {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl DecompressError {
    /// Returns how many decompressed bytes were kept when the error leaves a
    /// usable first part of the stream: a cut, a corrupt stream, one that
    /// goes on too long, or a temporary file that could take no more.
    /// `None` for errors that keep nothing.
    pub fn partial_len(&self) -> Option<u64> {
        match self {
            DecompressError::Corrupt { decompressed, .. }
            | DecompressError::Unsupported { decompressed, .. }
            | DecompressError::ChecksumMismatch { decompressed, .. }
            | DecompressError::Truncated { decompressed, .. } => Some(*decompressed),
            DecompressError::TooLong { limit, .. } => Some(*limit),
            DecompressError::EndsEarly { len, .. } => Some(*len),
            DecompressError::TempWrite { offset, .. } => Some(*offset),
            _ => None,
        }
    }

    /// Returns true when the compressed input itself is at fault, false
    /// when it is the machine (the input could not be read, or the
    /// decompressed core had no room).
    pub fn is_damaged_input(&self) -> bool {
        matches!(
            self,
            DecompressError::Corrupt { .. }
                | DecompressError::Truncated { .. }
                | DecompressError::TooLong { .. }
                | DecompressError::EndsEarly { .. }
                | DecompressError::ChecksumMismatch { .. }
                | DecompressError::NotElf { .. }
                | DecompressError::UnknownFormat { .. }
                | DecompressError::TooShort { .. }
        )
    }
}

/// Outcome of a streaming decompression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    pub compression: Compression,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The length the core's ELF program headers describe, when they were
    /// read ([`Content::Core`]). A stream shorter than this was cut before
    /// it was compressed, as systemd-coredump cuts cores at its size limit.
    pub described_len: Option<u64>,
}

/// The ELF bytes of a core, memory-mapped from the original file (plain
/// cores) or from a private temporary copy (compressed cores).
pub struct CoreImage {
    map: Option<Mmap>,
    source: PathBuf,
    compression: Compression,
    damage: Option<DecompressError>,
    /// The decompressed copy; the map stays valid without it, but keeping it
    /// lets tests check its mode and allocation.
    #[cfg_attr(not(test), allow(dead_code))]
    temp: Option<File>,
    /// The decompression still running, for an image opened by
    /// [`CoreImage::open_in_background`].
    background: Option<background::Background>,
}

impl fmt::Debug for CoreImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreImage")
            .field("source", &self.source)
            .field("compression", &self.compression)
            .field("len", &self.bytes().len())
            .field("damage", &self.damage)
            .finish()
    }
}

impl CoreImage {
    /// Opens a core file, decompressing it when it is compressed.
    ///
    /// A truncated or corrupt compressed stream still gives an image holding
    /// what was decompressed before the damage, and so does a temporary
    /// directory that fills up; [`CoreImage::damage`] then returns the error.
    /// Only a stream that yields no byte at all fails.
    pub fn open(
        path: &Path,
        options: &DecompressOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<CoreImage, DecompressError> {
        match CoreImage::prepare(path, options)? {
            Prepared::Plain(image, total_in) => Ok(image.read_whole(total_in, progress)),
            Prepared::Compressed(input) => decompress_here(input, progress),
        }
    }

    /// Opens a core file as [`CoreImage::open`] does, but returns a
    /// compressed one as soon as its headers and notes are decompressed.
    /// The rest is decompressed on a thread of its own, and reads of bytes
    /// not yet there wait for them (see [`CoreImage::gate`]).
    /// [`CoreImage::wait_for_decompression`] returns how the stream ended.
    pub fn open_in_background(
        path: &Path,
        options: &DecompressOptions,
        mut progress: background::SendProgress,
    ) -> Result<CoreImage, DecompressError> {
        match CoreImage::prepare(path, options)? {
            Prepared::Plain(image, total_in) => Ok(image.read_whole(total_in, &mut *progress)),
            Prepared::Compressed(input) => match background::open(input, progress) {
                Ok(opened) => opened,
                Err((input, mut progress)) => decompress_here(input, &mut *progress),
            },
        }
    }

    /// Reports a plain core of `len` bytes as read whole.
    fn read_whole(self, len: u64, progress: &mut dyn FnMut(Progress)) -> CoreImage {
        progress(Progress {
            bytes_in: len,
            bytes_out: len,
            total_in: len,
        });
        self
    }

    /// Opens and maps a plain core, or opens a compressed one and creates
    /// the temporary file it is decompressed into.
    fn prepare(path: &Path, options: &DecompressOptions) -> Result<Prepared, DecompressError> {
        let read_path = path;
        let path = options.shown_path.as_deref().unwrap_or(read_path);
        let (file, compression, total_in) = open_and_detect(read_path, path)?;
        if compression == Compression::None {
            let image = CoreImage {
                map: map_file(&file, path)?,
                source: path.to_path_buf(),
                compression,
                damage: None,
                temp: None,
                background: None,
            };
            return Ok(Prepared::Plain(image, total_in));
        }

        let dir = options.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        // An unnamed file (O_TMPFILE where the file system has it) that
        // vanishes with the process. O_TMPFILE applies the umask to 0666, so
        // the mode is narrowed to 0600 before any byte of the core lands.
        let temp_error = |source| DecompressError::TempFile {
            dir: dir.clone(),
            source,
        };
        let temp = tempfile::tempfile_in(&dir).map_err(temp_error)?;
        temp.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(temp_error)?;
        Ok(Prepared::Compressed(background::Input {
            path: path.to_path_buf(),
            file,
            compression,
            total_in,
            temp,
            dir,
        }))
    }

    /// Returns the gate of a decompression still running in the background.
    /// Bytes of [`CoreImage::bytes`] past its count of final bytes must not
    /// be read.
    pub(crate) fn gate(&self) -> Option<&background::Gate> {
        self.background.as_ref().map(background::Background::gate)
    }

    /// Waits for a decompression started by [`CoreImage::open_in_background`]
    /// to end. The first call after it started returns the error that left
    /// the core partial or unusable. Such a core must be opened again with
    /// [`CoreImage::open`], which keeps what the stream gave before the error.
    pub fn wait_for_decompression(&self) -> Result<(), DecompressError> {
        match &self.background {
            Some(background) => background.wait(),
            None => Ok(()),
        }
    }

    /// Returns the ELF bytes of the core.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Returns the path of the file the core was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Returns the decoder error when the compressed stream was damaged and
    /// the image holds only what came before it.
    pub fn damage(&self) -> Option<&DecompressError> {
        self.damage.as_ref()
    }

    pub fn is_partial(&self) -> bool {
        self.damage.is_some()
    }
}

/// A core file opened by [`CoreImage::prepare`].
enum Prepared {
    /// A plain core, mapped, and its length.
    Plain(CoreImage, u64),
    Compressed(background::Input),
}

/// Decompresses `input` into its temporary file on this thread, and maps it.
fn decompress_here(
    input: background::Input,
    progress: &mut dyn FnMut(Progress),
) -> Result<CoreImage, DecompressError> {
    let background::Input {
        path,
        file,
        compression,
        total_in,
        mut temp,
        dir,
    } = input;
    let mut sink = SparseFile::new(&mut temp);
    let stream = Stream {
        path: &path,
        file,
        compression,
        total_in,
        content: Content::Core,
    };
    let outcome = decompress_checked(stream, &mut sink, progress);
    let damage = settle(outcome, sink, &path, &dir)?;
    Ok(CoreImage {
        map: map_file(&temp, &path)?,
        source: path,
        compression,
        damage,
        temp: Some(temp),
        background: None,
    })
}

/// Decides what a finished decompression into `sink` leaves: `Ok(None)` for
/// a whole core, `Ok(Some(error))` for a partial one (a damaged stream, a
/// full temporary directory) whose bytes before the error are right, and
/// `Err` when nothing usable was written. Sets the file's length.
fn settle(
    outcome: Result<StreamSummary, DecompressError>,
    sink: SparseFile<'_>,
    path: &Path,
    dir: &Path,
) -> Result<Option<DecompressError>, DecompressError> {
    let temp_write_error = |offset, source| DecompressError::TempWrite {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        offset,
        source,
    };
    let damage = match outcome {
        Ok(_) => None,
        Err(error) if error.partial_len().is_some() && sink.len > 0 => Some(error),
        // A full temporary directory keeps the blocks written before it
        // filled up: a partial core, as a cut stream gives, is worth more
        // at the time of a crash than none.
        Err(DecompressError::Write { source, .. }) if sink.len > 0 => {
            Some(temp_write_error(sink.len, source))
        }
        Err(DecompressError::Write { source, .. }) => {
            return Err(temp_write_error(sink.len, source))
        }
        Err(error) => return Err(error),
    };
    let len = sink.len;
    // Setting the length extends the file over the zero pages at its
    // end, which a file size limit can forbid: the core then ends after
    // its last written page, a partial core again.
    let damage = match (sink.finish(), damage) {
        (Ok(()), damage) => damage,
        (Err(source), None) => Some(temp_write_error(len, source)),
        (Err(source), Some(damage)) => {
            tracing::debug!(target: "gocrash::decompress", %source, len, "cannot extend the partial core over its last zero pages");
            Some(damage)
        }
    };
    if let Some(error) = &damage {
        tracing::debug!(target: "gocrash::decompress", %error, "keeping the partial core");
    }
    Ok(damage)
}

/// Writes the decompressed ELF bytes of a core file to `writer`, without
/// holes. Plain cores are copied. On a damaged stream the bytes before the
/// damage have been written when the error is returned.
pub fn decompress_to_writer<W: Write>(
    path: &Path,
    writer: &mut W,
    progress: &mut dyn FnMut(Progress),
) -> Result<StreamSummary, DecompressError> {
    decompress_to(path, Output::Writer(writer), Content::Core, progress)
}

/// Writes the decompressed ELF bytes of a core file to `file` from its
/// current start, leaving holes where the core has zero pages, and sets the
/// file's length. On a damaged stream the bytes before the damage have been
/// written when the error is returned.
pub fn decompress_to_file(
    path: &Path,
    file: &mut File,
    progress: &mut dyn FnMut(Progress),
) -> Result<StreamSummary, DecompressError> {
    decompress_to(path, Output::File(file), Content::Core, progress)
}

/// Writes the decompressed bytes of a core file to `output`, checked
/// against `content`. On a damaged stream the bytes before the damage have been
/// written when the error is returned.
pub fn decompress_to(
    path: &Path,
    output: Output<'_>,
    content: Content,
    progress: &mut dyn FnMut(Progress),
) -> Result<StreamSummary, DecompressError> {
    let (file, compression, total_in) = open_and_detect(path, path)?;
    let stream = Stream {
        path,
        file,
        compression,
        total_in,
        content,
    };
    match output {
        Output::Writer(inner) => {
            let mut sink = PlainWriter { inner, len: 0 };
            decompress_checked(stream, &mut sink, progress)
        }
        Output::File(file) => {
            let mut sink = SparseFile::new(file);
            let outcome = decompress_checked(stream, &mut sink, progress);
            let len = sink.len;
            // The stream counts whole blocks, and the sink records where in
            // the block the write failed.
            let outcome = outcome.map_err(|error| match error {
                DecompressError::Write { path, source, .. } => DecompressError::Write {
                    path,
                    offset: len,
                    source,
                },
                other => other,
            });
            let finished = sink.finish().map_err(|source| DecompressError::Write {
                path: path.to_path_buf(),
                offset: len,
                source,
            });
            let summary = outcome?;
            finished?;
            Ok(summary)
        }
    }
}

/// Recognises the format of the core file at `path` from its content, as
/// the decompression does: skippable frames before a zstd or lz4 frame
/// included.
pub fn detect_file(path: &Path) -> Result<Compression, DecompressError> {
    open_and_detect(path, path).map(|(_, compression, _)| compression)
}

/// Opens the file at `read_path` and recognises its format; errors name
/// `path`.
fn open_and_detect(
    read_path: &Path,
    path: &Path,
) -> Result<(File, Compression, u64), DecompressError> {
    let mut file = File::open(read_path).map_err(|source| DecompressError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let read_error = |offset, source| DecompressError::Read {
        path: path.to_path_buf(),
        offset,
        source,
    };
    let total_in = file
        .metadata()
        .map_err(|source| read_error(0, source))?
        .len();

    let mut magic = [0u8; MAGIC_LEN];
    let mut filled = 0;
    while filled < MAGIC_LEN {
        let Some(rest) = magic.get_mut(filled..) else {
            break;
        };
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(read_error(filled as u64, source)),
        }
    }
    let prefix = magic.get(..filled).unwrap_or(&[]);
    if filled < ELF_MAGIC.len() {
        return Err(DecompressError::TooShort {
            path: path.to_path_buf(),
            len: total_in,
        });
    }
    let mut too_many_skippable = false;
    let detected = Compression::detect(prefix).or_else(|| {
        let magic = u32::from_le_bytes(prefix.get(..4)?.try_into().ok()?);
        if !is_skippable_magic(magic) {
            return None;
        }
        match detect_after_skippable(&file, total_in) {
            Ok(compression) => Some(compression),
            Err(SkippableEnd::TooMany) => {
                too_many_skippable = true;
                None
            }
            Err(SkippableEnd::NoFrame) => None,
        }
    });
    let Some(compression) = detected else {
        // Text, such as a crash text given in place of a core, is shown as
        // text, which tells more than its bytes in hex.
        let is_text = prefix
            .iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\n' || b == b'\t');
        let hex = prefix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        let skippable = prefix
            .get(..4)
            .and_then(|magic| magic.try_into().ok())
            .is_some_and(|magic| is_skippable_magic(u32::from_le_bytes(magic)));
        let found = if is_text {
            format!("the text {:?}", String::from_utf8_lossy(prefix))
        } else if too_many_skippable {
            format!(
                "{hex}, more than {MAX_LEADING_SKIPPABLE} skippable frames, the most looked past \
                 for a zstd or lz4 frame"
            )
        } else if skippable {
            format!("{hex}, a skippable frame that no zstd or lz4 frame follows")
        } else {
            hex
        };
        return Err(DecompressError::UnknownFormat {
            path: path.to_path_buf(),
            found,
            is_text,
        });
    };
    file.seek(SeekFrom::Start(0))
        .map_err(|source| read_error(0, source))?;
    tracing::debug!(target: "gocrash::decompress", path = %path.display(), %compression, total_in, "recognised core file");
    Ok((file, compression, total_in))
}

/// Leading skippable frames looked past to recognise a stream's format, one
/// read each.
const MAX_LEADING_SKIPPABLE: usize = 4096;

/// The reason no format was found after leading skippable frames.
enum SkippableEnd {
    /// Something other than a zstd or lz4 frame, or nothing, follows them.
    NoFrame,
    /// More than [`MAX_LEADING_SKIPPABLE`] of them.
    TooMany,
}

/// Recognises a zstd or lz4 stream that starts with skippable frames (a
/// frame both formats share) by the first frame after them.
fn detect_after_skippable(file: &File, len: u64) -> Result<Compression, SkippableEnd> {
    let mut position = 0u64;
    for _ in 0..MAX_LEADING_SKIPPABLE {
        let mut header = [0u8; 8];
        file.read_exact_at(&mut header, position)
            .map_err(|_| SkippableEnd::NoFrame)?;
        let [m0, m1, m2, m3, s0, s1, s2, s3] = header;
        let magic = u32::from_le_bytes([m0, m1, m2, m3]);
        if !is_skippable_magic(magic) {
            return match Compression::detect(&header[..4]) {
                Some(format @ (Compression::Zstd | Compression::Lz4)) => Ok(format),
                _ => Err(SkippableEnd::NoFrame),
            };
        }
        let size = u32::from_le_bytes([s0, s1, s2, s3]);
        position = position
            .checked_add(8 + u64::from(size))
            .filter(|&next| next < len)
            .ok_or(SkippableEnd::NoFrame)?;
    }
    Err(SkippableEnd::TooMany)
}

fn map_file(file: &File, path: &Path) -> Result<Option<Mmap>, DecompressError> {
    let len = file
        .metadata()
        .map_err(|source| DecompressError::Map {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the map is read-only. Another process could still truncate a
    // plain core while it is mapped, and an access would then raise SIGBUS.
    // Cores in systemd-coredump's store are written once and never modified,
    // and a decompressed copy is an unnamed file only this process can reach.
    let map = unsafe { Mmap::map(file) }.map_err(|source| DecompressError::Map {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Some(map))
}

/// Counts the compressed bytes the decoder has pulled and remembers whether
/// the file itself failed, so a read error is not blamed on the stream.
struct CountingReader {
    file: File,
    count: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.file.read(buf) {
            Ok(n) => {
                self.count.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed.store(true, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }
}

/// Decoded output, as a decoder hands it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk<'a> {
    Bytes(&'a [u8]),
    /// This many zero bytes.
    Zeros(usize),
}

impl Chunk<'_> {
    fn len(&self) -> usize {
        match self {
            Chunk::Bytes(bytes) => bytes.len(),
            Chunk::Zeros(len) => *len,
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Destination of decompressed blocks.
trait BlockSink {
    fn write_block(&mut self, block: &[u8]) -> io::Result<()>;

    /// Receives `len` bytes that the decoder found to be zeros without
    /// comparing them (zstd blocks that repeat a zero byte).
    fn write_zeros(&mut self, len: usize) -> io::Result<()> {
        zero_pages(len, |page| self.write_block(page))
    }

    /// Receives the core's length and the end of its headers and notes,
    /// once its program headers were read, before the block holding them.
    fn layout_known(&mut self, _limit: u64, _headers_end: u64) -> io::Result<()> {
        Ok(())
    }
}

/// Hands `len` zero bytes to `write`, a page at most at a time.
fn zero_pages(len: usize, mut write: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut left = len;
    while left > 0 {
        let page = left.min(HOLE_SIZE);
        write(ZERO_PAGE.get(..page).unwrap_or(&[]))?;
        left -= page;
    }
    Ok(())
}

struct PlainWriter<'w, W: Write + ?Sized> {
    inner: &'w mut W,
    len: u64,
}

impl<W: Write + ?Sized> BlockSink for PlainWriter<'_, W> {
    fn write_block(&mut self, block: &[u8]) -> io::Result<()> {
        self.inner.write_all(block)?;
        self.len = self.len.saturating_add(block.len() as u64);
        Ok(())
    }
}

/// Writes blocks at increasing offsets, seeking over zero pages.
struct SparseFile<'f> {
    file: &'f mut File,
    len: u64,
}

impl<'f> SparseFile<'f> {
    fn new(file: &'f mut File) -> SparseFile<'f> {
        SparseFile { file, len: 0 }
    }

    /// Sets the length, which also materialises a trailing hole.
    fn finish(self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.flush()
    }
}

impl BlockSink for SparseFile<'_> {
    /// Writes the block's non-zero pages. On a failed write, `len` ends
    /// after the last byte written, so that every byte before it is right.
    fn write_block(&mut self, block: &[u8]) -> io::Result<()> {
        let mut pending: Option<(u64, usize, usize)> = None;
        for (index, page) in block.chunks(HOLE_SIZE).enumerate() {
            let start = index * HOLE_SIZE;
            // A slice comparison runs as one `bcmp`, several times faster
            // than testing byte by byte.
            let zero = ZERO_PAGE.get(..page.len()) == Some(page);
            match (&mut pending, zero) {
                (Some((_, _, end)), false) => *end = start + page.len(),
                (None, false) => {
                    pending = Some((self.len + start as u64, start, start + page.len()))
                }
                (Some(_), true) => {
                    if let Some((offset, from, to)) = pending.take() {
                        self.write_run(offset, block.get(from..to).unwrap_or(&[]))?;
                    }
                }
                (None, true) => {}
            }
        }
        if let Some((offset, from, to)) = pending {
            self.write_run(offset, block.get(from..to).unwrap_or(&[]))?;
        }
        self.len += block.len() as u64;
        Ok(())
    }

    /// Leaves a hole: the file reads as zeros where nothing was written.
    fn write_zeros(&mut self, len: usize) -> io::Result<()> {
        self.len += len as u64;
        Ok(())
    }
}

impl SparseFile<'_> {
    /// Writes `bytes` at `offset`. On a failure, `len` ends after the last
    /// byte written, which may be inside the run.
    fn write_run(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut written = 0;
        let outcome = self.file.seek(SeekFrom::Start(offset)).and_then(|_| {
            while let Some(rest) = bytes.get(written..).filter(|rest| !rest.is_empty()) {
                match self.file.write(rest) {
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        });
        if outcome.is_err() {
            self.len = offset + written as u64;
        }
        outcome
    }
}

/// An opened input file and how to read it.
struct Stream<'p> {
    path: &'p Path,
    file: File,
    compression: Compression,
    total_in: u64,
    content: Content,
}

/// Decompresses `stream` into `sink` through a [`CheckedSink`], then checks
/// that an lz4 input ends where its frames do.
fn decompress_checked(
    stream: Stream<'_>,
    sink: &mut dyn BlockSink,
    progress: &mut dyn FnMut(Progress),
) -> Result<StreamSummary, DecompressError> {
    let Stream {
        path,
        file,
        compression,
        total_in,
        content,
    } = stream;
    // A second handle for the lz4 frame walk, which reads by offset.
    let walk_file = match compression {
        Compression::Lz4 => file.try_clone().ok(),
        _ => None,
    };
    let mut checked = CheckedSink {
        inner: sink,
        extent: (content == Content::Core).then(CoreExtent::default),
        len: 0,
        stop: None,
        layout_sent: false,
    };
    let stream = Stream {
        path,
        file,
        compression,
        total_in,
        content,
    };
    let outcome = decompress_stream(stream, &mut checked, progress);
    let not_elf = |reason: NotElf| DecompressError::NotElf {
        path: path.to_path_buf(),
        format: compression,
        found: match reason {
            NotElf::Magic(bytes) => bytes,
            NotElf::Class(class) => format!("an ELF header of class {class}, not 2 (64-bit)"),
        },
    };
    match checked.stop.take() {
        Some(Stop::NotElf(reason)) => return Err(not_elf(reason)),
        Some(Stop::TooLong { limit, described }) => {
            return Err(DecompressError::TooLong {
                path: path.to_path_buf(),
                format: compression,
                limit,
                bound: if described {
                    "the end of the core its ELF program headers describe"
                } else {
                    "the most gocrash decompresses"
                },
            })
        }
        None => {}
    }
    let truncated = |at| DecompressError::Truncated {
        path: path.to_path_buf(),
        format: compression,
        offset: at,
        decompressed: checked.len,
    };
    match outcome {
        Ok(summary) => {
            if let Some(extent) = &checked.extent {
                extent.finish().map_err(not_elf)?;
            }
            let described_len = checked
                .extent
                .as_ref()
                .filter(|extent| extent.is_described())
                .map(CoreExtent::limit);
            match lz4_cut(walk_file.as_ref(), total_in) {
                Some(at) => Err(truncated(at)),
                None => Ok(StreamSummary {
                    described_len,
                    ..summary
                }),
            }
        }
        Err(error @ DecompressError::Corrupt { .. }) => {
            match lz4_cut(walk_file.as_ref(), total_in) {
                Some(at) => Err(truncated(at)),
                None => Err(error),
            }
        }
        Err(error) => Err(error),
    }
}

/// Reason a [`CheckedSink`] stopped the stream.
enum Stop {
    NotElf(NotElf),
    TooLong { limit: u64, described: bool },
}

/// Passes blocks on to `inner` while they are those of a core: the first
/// must start an ELF header, and none goes past the core's extent.
struct CheckedSink<'s> {
    inner: &'s mut dyn BlockSink,
    /// `None` for [`Content::Raw`].
    extent: Option<CoreExtent>,
    /// Bytes passed on.
    len: u64,
    /// Set when a block was refused; the write then fails.
    stop: Option<Stop>,
    /// Whether `inner` received the core's layout.
    layout_sent: bool,
}

impl BlockSink for CheckedSink<'_> {
    fn write_block(&mut self, block: &[u8]) -> io::Result<()> {
        if let Some(extent) = self.extent.as_mut() {
            if let Err(reason) = extent.observe(block) {
                self.stop = Some(Stop::NotElf(reason));
                return Err(io::Error::other("the stream is not an ELF core"));
            }
            if let (false, Some(headers_end)) = (self.layout_sent, extent.headers_end()) {
                self.layout_sent = true;
                self.inner.layout_known(extent.limit(), headers_end)?;
            }
        }
        let kept = self.room_for(block.len());
        if kept > 0 {
            self.inner.write_block(block.get(..kept).unwrap_or(&[]))?;
            self.len += kept as u64;
        }
        self.reject_rest(kept, block.len())
    }

    fn write_zeros(&mut self, len: usize) -> io::Result<()> {
        if self
            .extent
            .as_ref()
            .is_some_and(|extent| !extent.is_settled())
        {
            // The core's first bytes are still being checked.
            return zero_pages(len, |page| self.write_block(page));
        }
        let kept = self.room_for(len);
        if kept > 0 {
            self.inner.write_zeros(kept)?;
            self.len += kept as u64;
        }
        self.reject_rest(kept, len)
    }
}

impl CheckedSink<'_> {
    /// Returns the most decompressed bytes the stream may contain.
    fn limit(&self) -> u64 {
        self.extent
            .as_ref()
            .map_or(MAX_DECOMPRESSED_LEN, CoreExtent::limit)
    }

    /// Returns how many of `len` more bytes fit within the limit.
    fn room_for(&self, len: usize) -> usize {
        let room = self.limit().saturating_sub(self.len);
        // `room` is below `len` when it is the smaller, so it fits a usize.
        room.min(len as u64) as usize
    }

    /// Stops the stream when only `kept` of `len` bytes fitted.
    fn reject_rest(&mut self, kept: usize, len: usize) -> io::Result<()> {
        if kept < len {
            let described = self.extent.as_ref().is_some_and(CoreExtent::is_described);
            self.stop = Some(Stop::TooLong {
                limit: self.limit(),
                described,
            });
            return Err(io::Error::other("the stream is longer than the core"));
        }
        Ok(())
    }
}

/// Returns where an lz4 input stops inside a frame, when it does.
fn lz4_cut(file: Option<&File>, len: u64) -> Option<u64> {
    match lz4_frame::walk(file?, len) {
        Ok(FrameEnd::Truncated { at }) => Some(at),
        Ok(FrameEnd::Complete | FrameEnd::Unknown) => None,
        Err(error) => {
            tracing::debug!(target: "gocrash::decompress", %error, "cannot walk the lz4 frames");
            None
        }
    }
}

fn decompress_stream(
    stream: Stream<'_>,
    sink: &mut dyn BlockSink,
    progress: &mut dyn FnMut(Progress),
) -> Result<StreamSummary, DecompressError> {
    let Stream {
        path,
        file,
        compression,
        total_in,
        ..
    } = stream;
    let count = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let skipper = match compression {
        Compression::Lz4 => Some(file.try_clone().map_err(|source| DecompressError::Read {
            path: path.to_path_buf(),
            offset: 0,
            source,
        })?),
        _ => None,
    };
    let counting = CountingReader {
        file,
        count: Arc::clone(&count),
        failed: Arc::clone(&failed),
    };
    // The lz4 decoder stops at skippable frames, so they are left out below
    // it; the reader that does so must see the file's own offsets.
    let raw: Box<dyn Read + Send> = match skipper {
        Some(file) => Box::new(lz4_frame::WithoutSkippable::new(
            counting,
            file,
            total_in,
            Arc::clone(&count),
        )),
        None => Box::new(counting),
    };
    let mut input = BufReader::with_capacity(INPUT_BUFFER_SIZE, raw);
    let mut bytes_out = 0u64;
    let mut write = |chunk: Chunk<'_>, read_error: Option<io::Error>| {
        if !chunk.is_empty() {
            let written = match chunk {
                Chunk::Bytes(data) => sink.write_block(data),
                Chunk::Zeros(len) => sink.write_zeros(len),
            };
            written.map_err(|source| DecompressError::Write {
                path: path.to_path_buf(),
                offset: bytes_out,
                source,
            })?;
            bytes_out += chunk.len() as u64;
            progress(Progress {
                bytes_in: count.load(Ordering::Relaxed),
                bytes_out,
                total_in,
            });
        }
        let Some(source) = read_error else {
            return Ok(());
        };
        let offset = count.load(Ordering::Relaxed);
        if failed.load(Ordering::Relaxed) {
            return Err(DecompressError::Read {
                path: path.to_path_buf(),
                offset,
                source,
            });
        }
        if source
            .get_ref()
            .is_some_and(|inner| inner.is::<zstd_blocks::WindowTooLarge>())
        {
            return Err(DecompressError::Unsupported {
                path: path.to_path_buf(),
                format: compression,
                decompressed: bytes_out,
                source,
            });
        }
        if fails_checksum(&source) {
            return Err(DecompressError::ChecksumMismatch {
                path: path.to_path_buf(),
                format: compression,
                decompressed: bytes_out,
                source,
            });
        }
        Err(DecompressError::Corrupt {
            path: path.to_path_buf(),
            format: compression,
            offset,
            decompressed: bytes_out,
            source: explain_lz4_skippable(source),
        })
    };
    let written = match compression {
        Compression::None => pump(Box::new(input), &mut write),
        Compression::Zstd => {
            match zstd_blocks::decode_beside(&mut input, &mut |chunk| write(chunk, None)) {
                Ok(()) => Ok(()),
                Err(zstd_blocks::Stop::Output(error)) => Err(error),
                Err(zstd_blocks::Stop::Input(error)) => write(Chunk::Bytes(&[]), Some(error)),
            }
        }
        Compression::Lz4 => pump(Box::new(lz4_frame::AllFrames::new(input)), &mut write),
        // `xz` output may hold several concatenated streams, which `xz -d` accepts.
        Compression::Xz => pump(
            Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
            &mut write,
        ),
    };
    written?;
    let bytes_in = count.load(Ordering::Relaxed);
    tracing::debug!(target: "gocrash::decompress", path = %path.display(), bytes_in, bytes_out, "decompressed core");
    Ok(StreamSummary {
        compression,
        bytes_in,
        bytes_out,
        described_len: None,
    })
}

/// Replaces the lz4 decoder's error for a skippable frame, which reaches
/// it only where [`lz4_frame::WithoutSkippable`] stops following the
/// frames, with one that gives the next step.
fn explain_lz4_skippable(error: io::Error) -> io::Error {
    let skippable = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<lz4_flex::frame::Error>())
        .is_some_and(|inner| matches!(inner, lz4_flex::frame::Error::SkippableFrame(_)));
    if skippable {
        io::Error::other(
            "the stream has an lz4 skippable frame that gocrash cannot read past \
             here (after a legacy frame, or cut short); decompress it with `lz4 -d` first",
        )
    } else {
        error
    }
}

/// Reports whether a decoder failed because the content checksum at the end
/// of a frame does not match the bytes it gave.
fn fails_checksum(error: &io::Error) -> bool {
    let Some(inner) = error.get_ref() else {
        return false;
    };
    inner.is::<zstd_blocks::ChecksumMismatch>()
        || matches!(
            inner.downcast_ref::<lz4_flex::frame::Error>(),
            Some(lz4_flex::frame::Error::ContentChecksumError)
        )
}

/// Receives each decoded block, with the error that ended the stream after
/// it, if one did.
type BlockWriter<'w> = dyn FnMut(Chunk<'_>, Option<io::Error>) -> Result<(), DecompressError> + 'w;

/// A block the decoder filled: the block, how many bytes it filled, and the
/// error that stopped the decoder, if one did.
type Filled = (Vec<u8>, usize, Option<io::Error>);

/// The number of blocks passed between the decoding thread and the writing
/// one: one being decoded, one being written, one waiting.
const PIPELINE_BLOCKS: usize = 3;

/// Hands each block of `decoder`'s output to `write`, with the error that
/// ended the stream, until the stream ends or `write` fails.
///
/// Decoding runs on a thread of its own, so that it overlaps with finding
/// the zero pages and copying the others to the page cache. In profiles of
/// the corpus's largest core, those took about a third of the decoding
/// time. When the thread cannot start, both run here in turn.
fn pump(decoder: Box<dyn Read + Send>, write: &mut BlockWriter<'_>) -> Result<(), DecompressError> {
    std::thread::scope(|scope| {
        let (free_sender, free_receiver) = mpsc::channel::<Vec<u8>>();
        let (filled_sender, filled_receiver) = mpsc::sync_channel::<Filled>(PIPELINE_BLOCKS);
        let decode = move |mut decoder: Box<dyn Read + Send>| {
            // The writer returns each block it is done with, and stops
            // returning them when it stops.
            while let Ok(mut block) = free_receiver.recv() {
                let (filled, error) = fill_block(&mut *decoder, &mut block);
                let last = filled < block.len() || error.is_some();
                if filled_sender.send((block, filled, error)).is_err() || last {
                    return;
                }
            }
        };
        if let Err(decoder) = spawn_or_return(scope, "gocrash-decompress", decoder, decode) {
            return pump_here(decoder, write);
        }

        for _ in 0..PIPELINE_BLOCKS {
            // The thread may already have stopped on a short stream.
            let _ = free_sender.send(vec![0u8; BLOCK_SIZE]);
        }
        for (block, filled, error) in filled_receiver {
            let last = filled < block.len() || error.is_some();
            write(Chunk::Bytes(block.get(..filled).unwrap_or(&[])), error)?;
            if last {
                break;
            }
            let _ = free_sender.send(block);
        }
        Ok(())
    })
}

/// Does what [`pump`] does, on the calling thread alone.
fn pump_here(
    mut decoder: Box<dyn Read + Send>,
    write: &mut BlockWriter<'_>,
) -> Result<(), DecompressError> {
    let mut block = vec![0u8; BLOCK_SIZE];
    loop {
        let (filled, error) = fill_block(&mut *decoder, &mut block);
        let last = filled < block.len() || error.is_some();
        write(Chunk::Bytes(block.get(..filled).unwrap_or(&[])), error)?;
        if last {
            return Ok(());
        }
    }
}

/// Reads until the block is full, the stream ends or the decoder fails, and
/// returns how many bytes were read together with the failure.
fn fill_block(decoder: &mut dyn Read, block: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while let Some(rest) = block.get_mut(filled..) {
        if rest.is_empty() {
            break;
        }
        match decoder.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Builds a fake core: an ELF magic, then data with long zero runs between
    /// non-zero pages, like a core's mostly untouched reservations.
    fn sample_core() -> Vec<u8> {
        let mut bytes = vec![0u8; 3 * BLOCK_SIZE + 12345];
        bytes[..4].copy_from_slice(&ELF_MAGIC);
        bytes[4] = 2; // ELFCLASS64
        for (i, b) in bytes[HOLE_SIZE..2 * HOLE_SIZE].iter_mut().enumerate() {
            *b = (i % 251) as u8 + 1;
        }
        let tail = bytes.len() - 10;
        bytes[tail] = 0xaa;
        bytes[2 * BLOCK_SIZE + 7] = 0x55;
        bytes
    }

    fn compress(bytes: &[u8], compression: Compression) -> Vec<u8> {
        match compression {
            Compression::None => bytes.to_vec(),
            Compression::Zstd => zstd::encode_all(bytes, 3).unwrap(),
            Compression::Lz4 => {
                // 64 KiB blocks, the lz4 frame library's default block size.
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB);
                let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
                encoder.write_all(bytes).unwrap();
                encoder.finish().unwrap()
            }
            Compression::Xz => {
                let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
                encoder.write_all(bytes).unwrap();
                encoder.finish().unwrap()
            }
        }
    }

    fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn detect_recognises_every_magic() {
        assert_eq!(Compression::detect(&ZSTD_MAGIC), Some(Compression::Zstd));
        assert_eq!(
            Compression::detect(&LZ4_FRAME_MAGIC),
            Some(Compression::Lz4)
        );
        assert_eq!(
            Compression::detect(&LZ4_LEGACY_MAGIC),
            Some(Compression::Lz4)
        );
        assert_eq!(Compression::detect(&XZ_MAGIC), Some(Compression::Xz));
        assert_eq!(
            Compression::detect(b"\x7fELF\x02\x01"),
            Some(Compression::None)
        );
        assert_eq!(
            Compression::detect(b"\xfd7zXZ"),
            None,
            "xz needs all six magic bytes"
        );
        assert_eq!(Compression::detect(b"PK\x03\x04"), None);
    }

    /// Returns a skippable frame with `payload`, as zstd and lz4 write one.
    fn skippable_frame(payload: &[u8]) -> Vec<u8> {
        let mut frame = 0x184D_2A53u32.to_le_bytes().to_vec();
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    #[test]
    fn zstd_after_skippable_frames_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let core = sample_core();
        let mut bytes = skippable_frame(b"metadata");
        bytes.extend(skippable_frame(&[]));
        bytes.extend(compress(&core, Compression::Zstd));
        let path = write_temp(&dir, "skippable.zst", &bytes);
        let mut out = Vec::new();
        let summary = decompress_to_writer(&path, &mut out, &mut |_| {}).unwrap();
        assert_eq!(summary.compression, Compression::Zstd);
        assert!(out == core, "the decompressed core differs");
    }

    #[test]
    fn many_skippable_frames_are_looked_past() {
        let dir = tempfile::tempdir().unwrap();
        let core = sample_core();
        let mut bytes = Vec::new();
        for _ in 0..MAX_LEADING_SKIPPABLE - 1 {
            bytes.extend(skippable_frame(b"metadata"));
        }
        bytes.extend(compress(&core, Compression::Zstd));
        let path = write_temp(&dir, "skippable.zst", &bytes);
        let mut out = Vec::new();
        let summary = decompress_to_writer(&path, &mut out, &mut |_| {}).unwrap();
        assert_eq!(summary.compression, Compression::Zstd);
        assert!(out == core, "the decompressed core differs");
    }

    #[test]
    fn too_many_skippable_frames_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        for _ in 0..=MAX_LEADING_SKIPPABLE {
            bytes.extend(skippable_frame(&[]));
        }
        bytes.extend(compress(&sample_core(), Compression::Zstd));
        let path = write_temp(&dir, "skippable.zst", &bytes);
        let error = decompress_to_writer(&path, &mut io::sink(), &mut |_| {}).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("more than 4096 skippable frames"),
            "{message}"
        );
    }

    #[test]
    fn oversized_window_is_unsupported_not_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        // A zstd frame header with no checksum or content size, and a
        // window descriptor for 2^31 bytes.
        let mut bytes = ZSTD_MAGIC.to_vec();
        bytes.extend_from_slice(&[0x00, (31 - 10) << 3]);
        bytes.extend_from_slice(&[0; 16]);
        let path = write_temp(&dir, "window.zst", &bytes);
        let error = decompress_to_writer(&path, &mut io::sink(), &mut |_| {}).unwrap_err();
        let message = crate::error_chain(&error);
        assert!(
            matches!(
                error,
                DecompressError::Unsupported {
                    decompressed: 0,
                    ..
                }
            ),
            "{message}"
        );
        assert!(!error.is_damaged_input(), "{message}");
        assert!(message.contains("`zstd -d --memory=2048MB`"), "{message}");
    }

    #[test]
    fn lz4_skippable_frames_are_skipped_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let core = sample_core();
        let (head, tail) = core.split_at(core.len() / 3);
        // Before the first frame, between two frames, two in a row, and
        // after the last, as `lz4 -d` accepts them.
        let mut bytes = skippable_frame(b"metadata");
        bytes.extend(compress(head, Compression::Lz4));
        bytes.extend(skippable_frame(&[]));
        bytes.extend(skippable_frame(&[7; 300]));
        bytes.extend(compress(tail, Compression::Lz4));
        bytes.extend(skippable_frame(b"end"));
        let path = write_temp(&dir, "skippable.lz4", &bytes);
        let mut out = Vec::new();
        let summary = decompress_to_writer(&path, &mut out, &mut |_| {}).unwrap();
        assert_eq!(summary.compression, Compression::Lz4);
        assert_eq!(out.len(), core.len());
        assert!(out == core, "the decompressed core differs");

        // A skippable frame cut short is a cut stream.
        let cut = &bytes[..bytes.len() - 2];
        let path = write_temp(&dir, "cut-skippable.lz4", cut);
        let error = decompress_to_writer(&path, &mut io::sink(), &mut |_| {}).unwrap_err();
        assert!(
            matches!(error, DecompressError::Truncated { offset, .. } if offset == cut.len() as u64),
            "{error}"
        );
    }

    #[test]
    fn lz4_frames_of_different_layouts_are_decoded() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        let dir = tempfile::tempdir().unwrap();
        let core = sample_core();
        let layouts = [
            (BlockSize::Max4MB, BlockMode::Linked),
            (BlockSize::Max64KB, BlockMode::Independent),
            (BlockSize::Max64KB, BlockMode::Independent),
            (BlockSize::Max1MB, BlockMode::Linked),
        ];
        let piece = core.len().div_ceil(layouts.len());
        let mut bytes = Vec::new();
        for (part, (size, mode)) in core.chunks(piece).zip(layouts) {
            let info = FrameInfo::new().block_size(size).block_mode(mode);
            let mut encoder = FrameEncoder::with_frame_info(info, Vec::new());
            encoder.write_all(part).unwrap();
            bytes.extend(encoder.finish().unwrap());
        }
        let path = write_temp(&dir, "layouts.lz4", &bytes);
        let mut out = Vec::new();
        decompress_to_writer(&path, &mut out, &mut |_| {}).unwrap();
        assert!(out == core, "the decompressed core differs");
    }

    #[test]
    fn skippable_frame_alone_is_no_known_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = skippable_frame(b"metadata");
        bytes.extend_from_slice(b"\x7fELF\x02\x01\x01");
        let path = write_temp(&dir, "skippable", &bytes);
        let error = decompress_to_writer(&path, &mut io::sink(), &mut |_| {}).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, DecompressError::UnknownFormat { .. }),
            "{message}"
        );
        assert!(
            message.contains("a skippable frame that no zstd or lz4 frame follows"),
            "{message}"
        );
    }

    #[test]
    fn every_format_gives_identical_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let core = sample_core();
        for compression in [
            Compression::None,
            Compression::Zstd,
            Compression::Lz4,
            Compression::Xz,
        ] {
            // Misleading names prove the format comes from the content.
            let path = write_temp(
                &dir,
                &format!("core.{}.zst", compression.name()),
                &compress(&core, compression),
            );
            let mut reports = Vec::new();
            let options = DecompressOptions {
                temp_dir: Some(dir.path().to_path_buf()),
                shown_path: None,
            };
            let image = CoreImage::open(&path, &options, &mut |p| reports.push(p)).unwrap();
            assert_eq!(image.compression(), compression);
            assert!(!image.is_partial());
            assert!(
                image.bytes() == core.as_slice(),
                "{compression} bytes differ"
            );
            let last = reports.last().copied().unwrap();
            assert_eq!(last.bytes_out, core.len() as u64);
            assert_eq!(last.total_in, std::fs::metadata(&path).unwrap().len());
            assert_eq!(
                last.bytes_in, last.total_in,
                "{compression} input not fully read"
            );
        }
    }

    #[test]
    fn sparse_file_skips_zero_pages() {
        let dir = tempfile::tempdir().unwrap();
        let core = sample_core();
        let path = write_temp(&dir, "core.zst", &compress(&core, Compression::Zstd));
        let mut out = tempfile::tempfile_in(dir.path()).unwrap();
        let summary = decompress_to_file(&path, &mut out, &mut |_| {}).unwrap();
        assert_eq!(summary.bytes_out, core.len() as u64);
        let meta = out.metadata().unwrap();
        assert_eq!(meta.len(), core.len() as u64);
        // Three non-zero pages (plus file system metadata blocks at most).
        let allocated = meta.blocks() * 512;
        assert!(
            allocated < 16 * HOLE_SIZE as u64,
            "allocated {allocated} bytes of {}",
            meta.len()
        );
        let mut back = Vec::new();
        out.seek(SeekFrom::Start(0)).unwrap();
        out.read_to_end(&mut back).unwrap();
        assert!(back == core);
    }

    #[test]
    fn temporary_copy_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_temp(&dir, "core.xz", &compress(&sample_core(), Compression::Xz));
        let options = DecompressOptions {
            temp_dir: Some(dir.path().to_path_buf()),
            ..DecompressOptions::default()
        };
        let image = CoreImage::open(&path, &options, &mut |_| {}).unwrap();
        assert_eq!(image.bytes().len(), sample_core().len());
        // The copy has no name: only the compressed file is in the directory.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("core.xz")]);
        let temp = image.temp.as_ref().unwrap();
        assert_eq!(temp.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn writer_receives_all_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let core = sample_core();
        let path = write_temp(&dir, "core", &compress(&core, Compression::Lz4));
        let mut out = Vec::new();
        let summary = decompress_to_writer(&path, &mut out, &mut |_| {}).unwrap();
        assert_eq!(summary.compression, Compression::Lz4);
        assert!(out == core);
    }

    #[test]
    fn truncated_streams_keep_a_partial_image() {
        let dir = tempfile::tempdir().unwrap();
        let core = sample_core();
        for compression in [Compression::Zstd, Compression::Lz4, Compression::Xz] {
            let compressed = compress(&core, compression);
            let cut = compressed.len() * 3 / 4;
            let path = write_temp(
                &dir,
                &format!("cut.{}", compression.name()),
                &compressed[..cut],
            );
            let image = CoreImage::open(&path, &DecompressOptions::default(), &mut |_| {}).unwrap();
            // The lz4 frame walk names the cut; the other decoders fail at it.
            let (Some(DecompressError::Corrupt { offset, format, .. })
            | Some(DecompressError::Truncated { offset, format, .. })) = image.damage()
            else {
                panic!(
                    "{compression}: expected a corrupt-stream error, got {:?}",
                    image.damage()
                );
            };
            assert_eq!(*format, compression);
            assert_eq!(*offset, cut as u64, "{compression}: offset of the damage");
            assert!(!image.bytes().is_empty(), "{compression}: nothing kept");
            assert!(
                core.starts_with(image.bytes()),
                "{compression}: kept bytes differ"
            );
        }
    }

    #[test]
    fn shown_path_names_the_core() {
        let dir = tempfile::tempdir().unwrap();
        let compressed = compress(&sample_core(), Compression::Zstd);
        let cut = compressed.len() * 3 / 4;
        let read = write_temp(&dir, "read.zst", &compressed[..cut]);
        let shown = dir.path().join("core.service.0.zst");
        let options = DecompressOptions {
            shown_path: Some(shown.clone()),
            ..DecompressOptions::default()
        };
        let image = CoreImage::open(&read, &options, &mut |_| {}).unwrap();
        assert_eq!(image.source(), shown);
        let message = crate::error_chain(image.damage().expect("the stream is cut"));
        assert!(message.contains(&shown.display().to_string()), "{message}");
        assert!(!message.contains("read.zst"), "{message}");

        let missing = dir.path().join("missing.zst");
        let options = DecompressOptions {
            shown_path: Some(shown.clone()),
            ..DecompressOptions::default()
        };
        let error = CoreImage::open(&missing, &options, &mut |_| {}).unwrap_err();
        assert!(
            matches!(&error, DecompressError::Open { path, .. } if *path == shown),
            "{error:?}"
        );
    }

    /// Returns the offsets of an lz4 frame's block size fields, the end
    /// mark's included.
    fn lz4_block_starts(frame: &[u8]) -> Vec<usize> {
        let mut starts = Vec::new();
        // Magic, FLG, BD and header checksum: the encoder writes no
        // content size or dictionary id.
        let mut position = 7;
        loop {
            starts.push(position);
            let size = u32::from_le_bytes(frame[position..position + 4].try_into().unwrap());
            if size == 0 {
                return starts;
            }
            position += 4 + (size & 0x7fff_ffff) as usize;
        }
    }

    #[test]
    fn lz4_cut_between_blocks_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let core = sample_core();
        let frame = compress(&core, Compression::Lz4);
        let starts = lz4_block_starts(&frame);
        assert!(starts.len() > 10, "the core spans many blocks");
        for &cut in &[
            starts[1],
            starts[starts.len() / 2],
            starts[starts.len() - 1],
        ] {
            let path = write_temp(&dir, "cut.lz4", &frame[..cut]);
            let image = CoreImage::open(&path, &DecompressOptions::default(), &mut |_| {}).unwrap();
            let Some(DecompressError::Truncated {
                offset,
                decompressed,
                ..
            }) = image.damage()
            else {
                panic!("cut at {cut:#x}: {:?}", image.damage());
            };
            assert_eq!(*offset, cut as u64);
            assert_eq!(*decompressed, image.bytes().len() as u64);
            assert!(core.starts_with(image.bytes()), "cut at {cut:#x}");
            let message = image.damage().unwrap().to_string();
            assert!(
                message.contains(&format!("truncated at byte {cut:#x} of the input")),
                "{message}"
            );
        }
    }

    #[test]
    fn lz4_cut_after_header_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let frame = compress(&sample_core(), Compression::Lz4);
        for cut in [4, 7] {
            let path = write_temp(&dir, "head.lz4", &frame[..cut]);
            let error =
                CoreImage::open(&path, &DecompressOptions::default(), &mut |_| {}).unwrap_err();
            assert!(
                matches!(error, DecompressError::Truncated { offset, decompressed: 0, .. } if offset == cut as u64),
                "cut at {cut}: {error}"
            );
        }
    }

    #[test]
    fn lz4_content_checksum_is_verified() {
        let dir = tempfile::tempdir().unwrap();
        let info = lz4_flex::frame::FrameInfo::new().content_checksum(true);
        let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(&sample_core()).unwrap();
        let mut frame = encoder.finish().unwrap();
        let last = frame.len() - 1;
        frame[last] ^= 0xff;
        let path = write_temp(&dir, "sum.lz4", &frame);
        let error = decompress_to_writer(&path, &mut io::sink(), &mut |_| {}).unwrap_err();
        assert!(
            matches!(error, DecompressError::ChecksumMismatch { .. }),
            "{error}"
        );
    }

    #[test]
    fn zstd_checksum_mismatch_keeps_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let core = sample_core();
        // systemd-coredump's frames end with a content checksum.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_checksum(true).unwrap();
        encoder.write_all(&core).unwrap();
        let mut compressed = encoder.finish().unwrap();
        let last = compressed.len() - 1;
        compressed[last] ^= 0x01;
        let path = write_temp(&dir, "sum.zst", &compressed);
        let image = CoreImage::open(&path, &DecompressOptions::default(), &mut |_| {}).unwrap();
        let damage = image.damage().expect("damage");
        assert!(
            matches!(damage, DecompressError::ChecksumMismatch { decompressed, .. }
                if *decompressed == core.len() as u64),
            "{damage}"
        );
        assert!(damage.is_damaged_input());
        assert!(image.bytes() == &core[..]);
    }

    #[test]
    fn xz_cuts_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let compressed = compress(&sample_core(), Compression::Xz);
        // Inside the stream header, inside the block, and inside the index
        // and footer that follow the last block.
        for cut in [
            8,
            compressed.len() / 2,
            compressed.len() - 12,
            compressed.len() - 1,
        ] {
            let path = write_temp(&dir, "cut.xz", &compressed[..cut]);
            let error = decompress_to_writer(&path, &mut io::sink(), &mut |_| {}).unwrap_err();
            assert!(
                matches!(error, DecompressError::Corrupt { .. }),
                "cut at {cut:#x}: {error}"
            );
        }
    }

    #[test]
    fn text_stream_is_not_a_core() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_temp(
            &dir,
            "text.zst",
            &compress(b"hello world\n", Compression::Zstd),
        );
        let error = CoreImage::open(&path, &DecompressOptions::default(), &mut |_| {}).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, DecompressError::NotElf { .. }), "{message}");
        assert!(message.contains("is not a 64-bit ELF core"), "{message}");
        assert!(message.contains("68 65 6c 6c 6f"), "{message}");

        let mut out = Vec::new();
        let summary =
            decompress_to(&path, Output::Writer(&mut out), Content::Raw, &mut |_| {}).unwrap();
        assert_eq!(summary.bytes_out, 12);
        assert_eq!(out, b"hello world\n");
    }

    #[test]
    fn zero_stream_fails_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = vec![0u8; 4 * BLOCK_SIZE];
        let path = write_temp(&dir, "zeros.zst", &compress(&zeros, Compression::Zstd));
        let mut out = Vec::new();
        let error = decompress_to_writer(&path, &mut out, &mut |_| {}).unwrap_err();
        assert!(matches!(error, DecompressError::NotElf { .. }), "{error}");
        assert!(out.is_empty(), "wrote {} bytes", out.len());
    }

    /// Builds the first bytes of an x86-64 core with one PT_LOAD of
    /// `filesz` bytes at file offset 0x1000.
    fn core_header(filesz: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; 0x1000];
        bytes[..4].copy_from_slice(&ELF_MAGIC);
        bytes[4] = 2; // ELFCLASS64
        bytes[5] = 1; // little-endian
        bytes[6] = 1; // EV_CURRENT
        bytes[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
        bytes[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        bytes[20..24].copy_from_slice(&1u32.to_le_bytes());
        bytes[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        bytes[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        bytes[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let phdr = &mut bytes[64..120];
        phdr[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        phdr[8..16].copy_from_slice(&0x1000u64.to_le_bytes());
        phdr[32..40].copy_from_slice(&filesz.to_le_bytes());
        phdr[40..48].copy_from_slice(&filesz.to_le_bytes());
        bytes
    }

    #[test]
    fn stream_is_cut_at_core_extent() {
        let dir = tempfile::tempdir().unwrap();
        // A core of 0x3000 bytes followed by 3 MiB of a repeated byte, as a
        // decompression bomb built from a real core's headers would be.
        let mut bytes = core_header(0x2000);
        bytes.resize(0x3000, 0x41);
        bytes.resize(0x3000 + 3 * BLOCK_SIZE, 0x41);
        let path = write_temp(&dir, "bomb.zst", &compress(&bytes, Compression::Zstd));
        let options = DecompressOptions {
            temp_dir: Some(dir.path().to_path_buf()),
            ..DecompressOptions::default()
        };
        let image = CoreImage::open(&path, &options, &mut |_| {}).unwrap();
        assert_eq!(image.bytes().len(), 0x3000);
        assert!(image.bytes() == &bytes[..0x3000]);
        let Some(error @ DecompressError::TooLong { limit, .. }) = image.damage() else {
            panic!("{:?}", image.damage());
        };
        assert_eq!(*limit, 0x3000);
        assert!(
            error.to_string().contains("ELF program headers describe"),
            "{error}"
        );

        let mut out = Vec::new();
        let error = decompress_to_writer(&path, &mut out, &mut |_| {}).unwrap_err();
        assert_eq!(error.partial_len(), Some(0x3000));
        assert_eq!(out.len(), 0x3000);
    }

    #[test]
    fn stream_may_end_before_core_extent() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = core_header(0x2000);
        bytes.resize(0x2000, 0x41);
        let path = write_temp(&dir, "short.zst", &compress(&bytes, Compression::Zstd));
        let mut out = Vec::new();
        let summary = decompress_to_writer(&path, &mut out, &mut |_| {}).unwrap();
        assert_eq!(summary.bytes_out, 0x2000);
        // The program header's segment ends at 0x1000 + 0x2000.
        assert_eq!(summary.described_len, Some(0x3000));
    }

    #[test]
    fn truncated_stream_is_an_error_for_writers() {
        let dir = tempfile::tempdir().unwrap();
        let compressed = compress(&sample_core(), Compression::Zstd);
        let path = write_temp(&dir, "cut.zst", &compressed[..compressed.len() - 5]);
        let error = decompress_to_writer(&path, &mut io::sink(), &mut |_| {}).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, DecompressError::Corrupt { .. }),
            "{message}"
        );
        assert!(message.contains("cut.zst"), "{message}");
        assert!(
            message.contains(&format!("{:#x}", compressed.len() - 5)),
            "{message}"
        );
    }

    #[test]
    fn unknown_and_short_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_temp(&dir, "core.zst", b"PK\x03\x04rest");
        let error = CoreImage::open(&path, &DecompressOptions::default(), &mut |_| {}).unwrap_err();
        assert!(matches!(
            error,
            DecompressError::UnknownFormat { is_text: false, .. }
        ));
        assert!(error.to_string().contains("50 4b 03 04 72 65"), "{error}");

        let path = write_temp(&dir, "crash.txt", b"panic: boom\n");
        let error = CoreImage::open(&path, &DecompressOptions::default(), &mut |_| {}).unwrap_err();
        assert!(matches!(
            error,
            DecompressError::UnknownFormat { is_text: true, .. }
        ));
        assert!(
            error
                .to_string()
                .ends_with("it starts with the text \"panic:\""),
            "{error}"
        );

        let path = write_temp(&dir, "short", b"\x7fE");
        let error = CoreImage::open(&path, &DecompressOptions::default(), &mut |_| {}).unwrap_err();
        assert!(
            matches!(error, DecompressError::TooShort { len: 2, .. }),
            "{error}"
        );

        let error = CoreImage::open(
            &dir.path().join("absent"),
            &DecompressOptions::default(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(error, DecompressError::Open { .. }), "{error}");
    }
}
