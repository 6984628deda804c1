//! Decompression that goes on while the core is read.
//!
//! The core's program headers, in its first block, give its length. The
//! temporary file is then extended to that length and mapped at once, and
//! the decompression goes on in a thread of its own. A [`Gate`] counts the
//! leading bytes of the file that are final, and makes a reader of later
//! bytes wait for them. Goroutines live mostly in the heap, which
//! comes before the large and mostly zero reservations at the end of a Go
//! core, so the walk can run while the rest of the core is decompressed.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::{
    decompress_checked, map_file, settle, BlockSink, Compression, Content, CoreImage,
    DecompressError, Progress, SparseFile, Stream,
};

/// The outcome of a decompression: `Ok(None)` for a whole core,
/// `Ok(Some(error))` for a partial one, `Err` when nothing usable was written.
type Settled = Result<Option<DecompressError>, DecompressError>;

/// How far a decompression running in the background has come.
#[derive(Debug, Default)]
pub struct Gate {
    /// Leading bytes of the core that are final in the temporary file.
    written: AtomicU64,
    /// Set when no more bytes will come.
    done: AtomicBool,
    /// The core's length and the end of its headers and notes, once known.
    layout: Mutex<Option<(u64, u64)>>,
    changed: Condvar,
}

impl Gate {
    /// Waits until at least `len` leading bytes are final or the stream has
    /// ended, and returns how many are final.
    pub fn wait_for(&self, len: u64) -> u64 {
        let written = self.written.load(Ordering::Acquire);
        if written >= len {
            return written;
        }
        let mut guard = self.layout.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let written = self.written.load(Ordering::Acquire);
            if written >= len || self.done.load(Ordering::Acquire) {
                return written;
            }
            guard = self
                .changed
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until the core's layout is known, or returns `None` when the
    /// stream ended first.
    fn wait_for_layout(&self) -> Option<(u64, u64)> {
        let mut guard = self.layout.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(layout) = *guard {
                return Some(layout);
            }
            if self.done.load(Ordering::Acquire) {
                return None;
            }
            guard = self
                .changed
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn advance(&self, written: u64) {
        self.written.store(written, Ordering::Release);
        self.notify();
    }

    /// Returns the core's length and the end of its headers and notes,
    /// once known.
    fn layout(&self) -> Option<(u64, u64)> {
        *self.layout.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_layout(&self, layout: (u64, u64)) {
        *self.layout.lock().unwrap_or_else(PoisonError::into_inner) = Some(layout);
        self.changed.notify_all();
    }

    fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.notify();
    }

    /// Wakes every waiter. Taking the lock orders the wake-up after a
    /// waiter's check of the counters, so that no wake-up is lost.
    fn notify(&self) {
        let _guard = self.layout.lock().unwrap_or_else(PoisonError::into_inner);
        self.changed.notify_all();
    }
}

/// Ends the gate when the decompressing thread stops, even by a panic, so
/// that no reader waits forever.
struct FinishOnDrop<'g>(&'g Gate);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Writes the core into the temporary file and moves the gate on after
/// each block.
struct GatedSink<'f> {
    sparse: SparseFile<'f>,
    gate: &'f Gate,
}

impl BlockSink for GatedSink<'_> {
    fn write_block(&mut self, block: &[u8]) -> std::io::Result<()> {
        self.sparse.write_block(block)?;
        self.gate.advance(self.sparse.len);
        Ok(())
    }

    fn write_zeros(&mut self, len: usize) -> std::io::Result<()> {
        self.sparse.write_zeros(len)?;
        self.gate.advance(self.sparse.len);
        Ok(())
    }

    /// Extends the file to the core's length so that it can be mapped now.
    /// A file that cannot be extended (a file size limit) is written as
    /// the plain decompression writes it, and read once it is complete.
    fn layout_known(&mut self, limit: u64, headers_end: u64) -> std::io::Result<()> {
        match self.sparse.file.set_len(limit) {
            Ok(()) => self.gate.set_layout((limit, headers_end)),
            Err(error) => {
                tracing::debug!(target: "gocrash::decompress", %error, limit, "cannot extend the temporary file, so the core is read once decompressed");
            }
        }
        Ok(())
    }
}

/// A decompression running in the background, and the gate readers pass.
#[derive(Debug)]
pub(super) struct Background {
    gate: Arc<Gate>,
    handle: Mutex<Option<JoinHandle<Settled>>>,
}

impl Background {
    pub(super) fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Waits for the decompression to end. The first call returns
    /// `Err(damage)` when the core is partial or unusable, later calls
    /// `Ok(())`.
    pub(super) fn wait(&self) -> Result<(), DecompressError> {
        let handle = self
            .handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match handle.map(join) {
            None | Some(Ok(None)) => Ok(()),
            Some(Ok(Some(damage)) | Err(damage)) => Err(damage),
        }
    }
}

fn join(handle: JoinHandle<Settled>) -> Settled {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The opened compressed core that [`open`] decompresses.
pub(super) struct Input {
    /// The path shown in messages.
    pub path: PathBuf,
    pub file: File,
    pub compression: Compression,
    pub total_in: u64,
    /// The unnamed temporary file, and the directory it is in.
    pub temp: File,
    pub dir: PathBuf,
}

/// Progress reports from the decompressing thread.
pub(super) type SendProgress = Box<dyn FnMut(Progress) + Send>;

/// Starts decompressing `input` into its temporary file on a thread of its
/// own, and returns the image once the core's headers and notes are in it.
/// Returns the input back when the thread cannot start.
#[allow(clippy::result_large_err)]
pub(super) fn open(
    input: Input,
    progress: SendProgress,
) -> Result<Result<CoreImage, DecompressError>, (Input, SendProgress)> {
    // The thread writes through the input's handle of the temporary file,
    // and the image maps it through this one.
    let temp = match input.temp.try_clone() {
        Ok(temp) => temp,
        Err(source) => {
            return Ok(Err(DecompressError::TempFile {
                dir: input.dir,
                source,
            }))
        }
    };
    let (path, compression) = (input.path.clone(), input.compression);
    let gate = Arc::new(Gate::default());
    let thread_gate = Arc::clone(&gate);
    // The input goes to the thread through a channel, so that it comes back
    // when the thread cannot start.
    let (sender, receiver) = std::sync::mpsc::channel::<(Input, SendProgress)>();
    let spawned = std::thread::Builder::new()
        .name("gocrash-core".to_owned())
        .spawn(move || -> Settled {
            let _finish = FinishOnDrop(&thread_gate);
            let Ok((mut input, mut progress)) = receiver.recv() else {
                return Ok(None);
            };
            let stream = Stream {
                path: &input.path,
                file: input.file,
                compression: input.compression,
                total_in: input.total_in,
                content: Content::Core,
            };
            let mut sink = GatedSink {
                sparse: SparseFile::new(&mut input.temp),
                gate: &thread_gate,
            };
            let outcome = decompress_checked(stream, &mut sink, &mut *progress);
            let written = sink.sparse.len;
            let settled = settle(outcome, sink.sparse, &input.path, &input.dir);
            // The file was extended to the core's length up front, so the
            // bytes of a core cut before it was compressed would read as
            // zeros. The caller reads such a core again at its length.
            match (settled, thread_gate.layout()) {
                (Ok(None), Some((limit, _))) if written < limit => {
                    Ok(Some(DecompressError::EndsEarly {
                        path: input.path.clone(),
                        format: input.compression,
                        len: written,
                        limit,
                    }))
                }
                (settled, _) => settled,
            }
        });
    let handle = match spawned {
        Ok(handle) => handle,
        Err(error) => {
            tracing::debug!(target: "gocrash::decompress", %error, "cannot start the decompression thread");
            return Err((input, progress));
        }
    };
    if let Err(unsent) = sender.send((input, progress)) {
        // The thread ended before it received the work; nothing was read.
        let _ = join(handle);
        return Err(unsent.0);
    }

    let Some((_, headers_end)) = gate.wait_for_layout() else {
        // The stream ended before its program headers were read, or the
        // file could not be extended: the core is read as it was left.
        let damage = match join(handle) {
            Ok(damage) => damage,
            Err(error) => return Ok(Err(error)),
        };
        return Ok(map_file(&temp, &path).map(|map| CoreImage {
            map,
            source: path,
            compression,
            damage,
            temp: Some(temp),
            background: None,
        }));
    };
    gate.wait_for(headers_end);
    let map = match map_file(&temp, &path) {
        Ok(map) => map,
        Err(error) => return Ok(Err(error)),
    };
    Ok(Ok(CoreImage {
        map,
        source: path,
        compression,
        damage: None,
        temp: Some(temp),
        background: Some(Background {
            gate,
            handle: Mutex::new(Some(handle)),
        }),
    }))
}
