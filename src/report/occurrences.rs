//! The signature of each crash the journal lists, for `gocrash list
//! --signature` and for the earlier occurrences in a report.
//!
//! Reading a crash text from the journal and parsing it takes milliseconds;
//! rebuilding the goroutines from a core means decompressing it, which can
//! take seconds. So the text is used wherever the journal has one, and the
//! core only where it has none. A progress line appears on stderr when the
//! work runs long.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ingest::coredump::CoredumpRecord;
use ingest::crashtext::{self, TextOptions};
use ingest::select::{CrashSource, OpenOptions, Selector};
use ingest::signature::{compute, CrashInput, Signature};
use symbolizer::binary::Binary;
use symbolizer::core::{Core, CoreOptions};
use symbolizer::goroutines::Process;

/// Crashes whose signatures are computed at once. Reading text is mostly
/// waiting on journal files, so a few overlap well even on two cores.
const WORKERS: usize = 4;
/// Work shorter than this shows no progress line.
const PROGRESS_DELAY: Duration = Duration::from_millis(500);

/// A crash's signature and what it was computed from.
#[derive(Clone, Debug)]
pub struct RecordSignature {
    pub signature: Signature,
    /// `text` or `core`.
    pub from: &'static str,
}

/// Computes the signature of every record, in order. A record whose text
/// and core both fail gets the reason instead.
pub fn signatures(
    selector: &Selector,
    records: &[CoredumpRecord],
) -> Vec<Result<RecordSignature, String>> {
    let results: Vec<Mutex<Option<Result<RecordSignature, String>>>> =
        records.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let from_cores = AtomicUsize::new(0);
    let progress = Mutex::new(Progress::new(records.len()));
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(records.len()) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(record) = records.get(index) else {
                    break;
                };
                let result = record_signature(selector, record);
                if matches!(&result, Ok(s) if s.from == "core") {
                    from_cores.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(Ok(mut slot)) = results.get(index).map(Mutex::lock) {
                    *slot = Some(result);
                }
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Ok(mut progress) = progress.lock() {
                    progress.update(finished, from_cores.load(Ordering::Relaxed));
                }
            });
        }
    });
    if let Ok(mut progress) = progress.lock() {
        progress.finish();
    }
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err("not computed".to_owned()))
        })
        .collect()
}

/// Computes one record's signature: from its crash text, else its core.
pub fn record_signature(
    selector: &Selector,
    record: &CoredumpRecord,
) -> Result<RecordSignature, String> {
    let text_error =
        match crashtext::read(&selector.journal, record, &TextOptions::signature_only()) {
            Ok(Some(text)) if !text.traceback.is_empty() => {
                return Ok(RecordSignature {
                    signature: compute(&CrashInput::from_traceback(&text.traceback)),
                    from: "text",
                })
            }
            Ok(_) => "no crash text".to_owned(),
            Err(error) => format!("{:#}", anyhow::Error::new(error)),
        };
    match core_signature(selector, record) {
        Ok(signature) => Ok(RecordSignature {
            signature,
            from: "core",
        }),
        Err(core_error) => Err(format!("{text_error}; {core_error}")),
    }
}

/// Rebuilds the goroutines from a record's core to compute its signature,
/// with the executable the core names. A Go build ID that differs from the
/// core's is an error, because another build's tables give wrong frames.
/// Unlike `symbolize`, a binary without a Go build ID is used unchecked.
fn core_signature(selector: &Selector, record: &CoredumpRecord) -> Result<Signature, String> {
    let options = OpenOptions {
        text: None,
        ..OpenOptions::default()
    };
    let core = selector
        .core_of(record, &options)
        .map_err(|error| format!("{:#}", anyhow::Error::new(error)))?;
    let source = CrashSource {
        record: None,
        core,
        text: None,
    };
    let path = source.core_path().ok_or_else(|| "no core".to_owned())?;

    let core = Core::open(&path, &CoreOptions::default())
        .map_err(|error| format!("cannot read the core: {:#}", anyhow::Error::new(error)))?;
    let exe = core
        .executable()
        .map(|e| e.path.clone())
        .ok_or_else(|| "the core does not name its executable".to_owned())?;

    let binary = Binary::open(&exe).map_err(|error| {
        format!(
            "cannot open {}: {:#}",
            exe.display(),
            anyhow::Error::new(error)
        )
    })?;
    let in_core = core.executable().map(|e| e.build_ids.go.clone());
    let in_binary = symbolizer::buildid::read(binary.elf()).ids.go;
    if let (Some(Some(in_core)), Some(in_binary)) = (in_core, &in_binary) {
        if &in_core != in_binary {
            return Err(format!(
                "{} is not the build that crashed (Go build ID {in_binary}, the core has {in_core})",
                exe.display()
            ));
        }
    }
    let process = Process::load(&core, &binary)
        .map_err(|error| format!("cannot rebuild the goroutines: {error}"))?;
    Ok(compute(&CrashInput::from_process(&process, &core)))
}

/// A one-line count on stderr, redrawn in place, shown only on a terminal
/// once the work has lasted [`PROGRESS_DELAY`].
struct Progress {
    total: usize,
    started: Instant,
    bar: Option<indicatif::ProgressBar>,
    enabled: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            started: Instant::now(),
            bar: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, done: usize, from_cores: usize) {
        if self.bar.is_none() && self.enabled && self.started.elapsed() >= PROGRESS_DELAY {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(self.total as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("signatures [{bar:30}] {pos}/{len} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(format!("({from_cores} from cores)"));
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
