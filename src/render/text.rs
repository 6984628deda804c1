//! The report for a person: what crashed and why, the crashing goroutine
//! first, the other goroutines grouped by identical stacks, and where the
//! binary came from.

use std::hash::{BuildHasher, Hash, Hasher};
use std::io::{self, Write};
use std::sync::Arc;

use symbolizer::goroutines::{Goroutine, Process};
use symbolizer::hashing::{FastMap, FastState};
use symbolizer::unwind::{Frame, StackKind};

use super::escape::{escape_line, EscapingWriter};
use super::{
    collapse_recursion, compact_ids, describe_stop, has_fault_address, interrupted_c_frames,
    printed_frames, printed_name, printing_order, repeated_text, signal_name, Report, StackItem,
};
use crate::crash_input::{describe_ids, BinarySource, IdCheck};

/// The size of `pr_psargs` in the kernel's NT_PRPSINFO note.
const PSARGS_LEN: usize = 80;

/// Returns the note that follows a command line from NT_PRPSINFO, or an
/// empty string. A line that fills `pr_psargs` (79 bytes and the NUL) may
/// have been cut by the kernel.
pub fn psargs_cut_note(psargs: &str) -> &'static str {
    if psargs.len() >= PSARGS_LEN - 1 {
        " (cut at 80 bytes by the kernel)"
    } else {
        ""
    }
}
/// Indentation of a function line, and of its position line below it.
const FUNCTION_INDENT: &str = "  ";
const POSITION_INDENT: &str = "      ";

/// Writes the report.
pub fn write(out: &mut dyn Write, report: &Report<'_>) -> io::Result<()> {
    let mut escaped = EscapingWriter::new(out);
    write_escaped(&mut escaped, report)?;
    escaped.finish()
}

/// Writes the report through a writer that escapes control characters.
fn write_escaped(out: &mut dyn Write, report: &Report<'_>) -> io::Result<()> {
    if let IdCheck::Forced { in_core, in_binary } = &report.crash.id_check {
        // Before anything read through the binary: every frame below may
        // be wrong, and the notes at the end come too late for that.
        writeln!(
            out,
            "WARNING: {} is not the binary that crashed (--force): the core has {in_core}, \
             the binary {in_binary}. Function names and lines below may be wrong.",
            report.crash.binary.path().display()
        )?;
        writeln!(out)?;
    }
    write_journal_text(out, report)?;
    match &report.process {
        Ok(process) => {
            write_headline(out, process, report)?;
            write_goroutines(out, process, report)?;
        }
        Err(error) => writeln!(out, "No goroutine could be rebuilt: {error}")?,
    }
    write_build(out, report)?;
    write_core(out, report)?;
    if !report.missing.is_empty() {
        writeln!(out)?;
        // With another build's binary, the core may well be whole: what is
        // missing can be what that binary cannot read in it.
        let cause = match report.crash.id_check {
            IdCheck::Forced { .. } => {
                "the core is incomplete or damaged, or read with another build"
            }
            _ => "the core is incomplete or damaged",
        };
        writeln!(out, "Missing ({cause}):")?;
        for line in &report.missing {
            writeln!(out, "  {line}")?;
        }
    }
    if !report.warnings.is_empty() {
        writeln!(out)?;
        writeln!(out, "Warnings:")?;
        for line in &report.warnings {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

/// Writes what the journal kept of the crash text: its headline and what
/// journald lost, above what the core shows.
fn write_journal_text(out: &mut dyn Write, report: &Report<'_>) -> io::Result<()> {
    let Some(text) = &report.journal_text else {
        return Ok(());
    };
    match (&text.error, &text.headline) {
        (Some(error), _) => writeln!(out, "journal: the crash text could not be read: {error}")?,
        (None, Some(headline)) => writeln!(out, "journal: {headline}")?,
        (None, None) if text.lines == 0 => {
            writeln!(out, "journal: no crash text was logged for this process")?
        }
        (None, None) => writeln!(
            out,
            "journal: {} lines of output, without a Go crash report",
            text.lines
        )?,
    }
    if text.loss.is_empty() && text.lines > 0 {
        writeln!(out, "journal loss: none found")?;
    }
    for loss in &text.loss {
        writeln!(out, "journal loss: {loss}")?;
    }
    writeln!(out)
}

fn write_headline(out: &mut dyn Write, process: &Process, report: &Report<'_>) -> io::Result<()> {
    let crash = process.crash();
    let mut wrote = false;
    let panics: Vec<_> = crash.panics.iter().filter(|p| !p.goexit).collect();
    for (index, panic) in panics.iter().enumerate() {
        let suffix = match (panic.recovered, panic.repanicked) {
            (true, true) => " [recovered, repanicked]",
            (true, false) => " [recovered]",
            _ => "",
        };
        let lead = if index == 0 {
            "panic: "
        } else {
            "  then panic: "
        };
        writeln!(
            out,
            "{lead}{}{suffix}",
            panic.value.replace("\n\t", "\n    ")
        )?;
        wrote = true;
    }
    if let Some(message) = &report.fatal_error {
        writeln!(out, "fatal error: {}", message.replace('\n', "\n    "))?;
        wrote = true;
    }
    if let Some(signal) = crash.signal {
        let name = signal_name(signal.signo).map_or_else(
            || format!("signal {}", signal.signo),
            |(n, d)| format!("{n} ({d})"),
        );
        if has_fault_address(signal.signo) {
            writeln!(
                out,
                "signal: {name} at address {:#x}, pc {:#x}",
                signal.addr, signal.pc
            )?;
        } else {
            writeln!(out, "signal: {name}, pc {:#x}", signal.pc)?;
        }
        wrote = true;
    }
    if let Some((thread, signal)) = &report.fatal_signal {
        let name = signal_name(signal.signo).map_or_else(
            || format!("signal {}", signal.signo),
            |(n, d)| format!("{n} ({d})"),
        );
        let m = process
            .threads()
            .iter()
            .find(|t| t.id == *thread)
            .and_then(|t| t.m)
            .map(|m| format!(", m {}", m.id));
        writeln!(
            out,
            "fatal signal: {name}, {}, at pc {:#x} (thread {thread}{})",
            signal_cause(signal.signo, signal.code),
            signal.pc,
            m.unwrap_or_default()
        )?;
        if has_fault_address(signal.signo) {
            writeln!(out, "fault address: {:#x}", signal.addr)?;
        }
        wrote = true;
    }
    if !wrote {
        match crash
            .core_signal
            .and_then(|s| u32::try_from(s).ok())
            .and_then(signal_name)
        {
            Some((name, description)) => writeln!(out, "killed by {name} ({description})")?,
            None => writeln!(out, "the core records no panic, fatal error or signal")?,
        }
    }
    match (report.crashing_goroutine(), &report.no_goroutine_reason()) {
        (Some(goroutine), _) => {
            writeln!(out, "crashed in goroutine {}", goroutine.goid.unwrap_or(0))?
        }
        (None, Some(reason)) => writeln!(out, "no crashing goroutine: {reason}")?,
        (None, None) => {}
    }
    Ok(())
}

/// Describes a signal's `si_code`: who sent it, or for a fault, its kind
/// (Linux `siginfo.h`).
fn signal_cause(signo: u32, code: i32) -> String {
    let text = match (signo, code) {
        (_, 0) => "sent with kill",
        (_, -6) => "sent with tgkill (raise or abort)",
        (_, -1) => "sent with sigqueue",
        (_, 0x80) => "sent by the kernel",
        (11, 1) => "address not mapped",
        (11, 2) => "invalid permissions for the mapped object",
        (7, 1) => "invalid address alignment",
        (7, 2) => "nonexistent physical address",
        (8, 1) => "integer divide by zero",
        (4, 1) => "illegal opcode",
        _ => return format!("si_code {code}"),
    };
    text.to_owned()
}

/// Writes the C frames a fatal signal interrupted, from the crashing
/// thread's walk: a fault in C code called through cgo, which the runtime's
/// goroutine traceback does not show.
fn write_c_frames(out: &mut dyn Write, process: &Process, report: &Report<'_>) -> io::Result<()> {
    let Some((thread_id, frames)) = interrupted_c_frames(process, report) else {
        return Ok(());
    };
    writeln!(out)?;
    writeln!(out, "C code the signal interrupted (thread {thread_id}):")?;
    write_frames(out, frames)
}

/// A group of goroutines with identical stacks.
struct Group<'a> {
    goroutines: Vec<&'a Goroutine>,
}

fn write_goroutines(out: &mut dyn Write, process: &Process, report: &Report<'_>) -> io::Result<()> {
    let crashing = report.crashing_goroutine();
    if let Some(frames) = process.runtime_stack() {
        writeln!(out)?;
        // Without the thread's M, its stacks' bounds are unknown.
        if frames.first().map(|f| f.stack) == Some(StackKind::Unknown) {
            writeln!(
                out,
                "runtime stack (stack of the crashing thread; which stack is unknown, as its M \
                 could not be read):"
            )?;
        } else {
            writeln!(out, "runtime stack (system stack of the crashing thread):")?;
        }
        write_frames(out, frames)?;
    }
    write_c_frames(out, process, report)?;
    if let Some(goroutine) = crashing {
        writeln!(out)?;
        writeln!(out, "{}", header(&[goroutine], "crashed"))?;
        write_stack(out, goroutine)?;
    }

    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut index: FastMap<GroupKey<'_>, usize> = FastMap::default();
    // Goroutines are first compared by a cheap fingerprint, and the group
    // key is built only for the first goroutine of each fingerprint.
    let state = FastState::default();
    let mut seen: FastMap<u64, Vec<(&Goroutine, usize)>> = FastMap::default();
    for goroutine in printing_order(report, process) {
        if crashing.is_some_and(|c| std::ptr::eq(c, goroutine)) {
            continue;
        }
        let candidates = seen.entry(fingerprint(&state, goroutine)).or_default();
        let known = candidates
            .iter()
            .find(|(first, _)| same_stack(first, goroutine))
            .map(|&(_, at)| at);
        let at = known.unwrap_or_else(|| {
            let at = *index.entry(group_key(goroutine)).or_insert_with(|| {
                groups.push(Group {
                    goroutines: Vec::new(),
                });
                groups.len() - 1
            });
            candidates.push((goroutine, at));
            at
        });
        if let Some(group) = groups.get_mut(at) {
            group.goroutines.push(goroutine);
        }
    }
    if groups.is_empty() {
        return Ok(());
    }
    let total: usize = groups.iter().map(|g| g.goroutines.len()).sum();
    writeln!(out)?;
    if groups.len() == total {
        let noun = if total == 1 {
            "goroutine"
        } else {
            "goroutines"
        };
        writeln!(out, "{total} other {noun}")?;
    } else {
        writeln!(
            out,
            "Other goroutines: {total} in {} groups of identical stacks",
            groups.len()
        )?;
    }
    for group in &groups {
        writeln!(out)?;
        writeln!(out, "{}", header(&group.goroutines, ""))?;
        if let Some(first) = group.goroutines.first() {
            write_stack(out, first)?;
        }
    }
    Ok(())
}

/// One call site as a group key compares it: function, file and line.
type SourceKey<'g> = (&'g str, Option<&'g str>, Option<i64>);

/// The key goroutines are grouped by: status, frames with their positions,
/// and creator. Ids, addresses and wait times may differ between members
/// of a group. It borrows from the goroutine, because building a string
/// per goroutine cost a tenth of the run on a 10,000-goroutine core.
#[derive(PartialEq, Eq, Hash)]
struct GroupKey<'g> {
    status: &'g str,
    locked: bool,
    frames: Vec<SourceKey<'g>>,
    creator: Option<SourceKey<'g>>,
    error: Option<&'g str>,
}

/// Hashes what [`same_stack`] compares.
fn fingerprint(state: &FastState, goroutine: &Goroutine) -> u64 {
    let mut hasher = state.build_hasher();
    goroutine.status_text.hash(&mut hasher);
    goroutine.locked_to_thread.hash(&mut hasher);
    for frame in printed_frames(goroutine) {
        std::ptr::hash(Arc::as_ptr(&frame.source), &mut hasher);
    }
    goroutine
        .created_by
        .as_ref()
        .map(|c| c.pc)
        .hash(&mut hasher);
    goroutine.error.hash(&mut hasher);
    hasher.finish()
}

/// Reports whether two goroutines certainly have equal group keys: their
/// frames share the same source frames (the walk resolves each pc once and
/// shares the result) and they were created at the same pc.
fn same_stack(a: &Goroutine, b: &Goroutine) -> bool {
    let (frames_a, frames_b) = (printed_frames(a), printed_frames(b));
    a.status_text == b.status_text
        && a.locked_to_thread == b.locked_to_thread
        && frames_a.len() == frames_b.len()
        && frames_a
            .iter()
            .zip(frames_b)
            .all(|(x, y)| Arc::ptr_eq(&x.source, &y.source))
        && a.created_by.as_ref().map(|c| c.pc) == b.created_by.as_ref().map(|c| c.pc)
        && a.error == b.error
}

fn group_key(goroutine: &Goroutine) -> GroupKey<'_> {
    let frames = printed_frames(goroutine)
        .iter()
        .flat_map(|frame| frame.source.iter())
        .map(|source| {
            (
                source.function.as_str(),
                source.file.as_deref(),
                source.line,
            )
        })
        .collect();
    GroupKey {
        status: &goroutine.status_text,
        locked: goroutine.locked_to_thread,
        frames,
        creator: goroutine
            .created_by
            .as_ref()
            .map(|c| (&*c.function, c.file.as_deref(), c.line)),
        error: goroutine.error.as_deref(),
    }
}

/// `goroutine 7 [chan receive, 3 minutes]:` for one goroutine, or
/// `4 goroutines [chan receive, 1-3 minutes]: 5, 7-9` for a group.
fn header(goroutines: &[&Goroutine], note: &str) -> String {
    let Some(first) = goroutines.first() else {
        return String::new();
    };
    let mut state = first.status_text.to_string();
    let minutes: Vec<u64> = goroutines
        .iter()
        .filter_map(|g| g.wait_minutes)
        .filter(|&m| m >= 1)
        .collect();
    if let (Some(low), Some(high)) = (minutes.iter().min(), minutes.iter().max()) {
        if low == high {
            state.push_str(&format!(", {low} minutes"));
        } else {
            state.push_str(&format!(", {low}-{high} minutes"));
        }
    }
    if first.locked_to_thread {
        state.push_str(", locked to thread");
    }
    let note = if note.is_empty() {
        String::new()
    } else {
        format!(" ({note})")
    };
    if goroutines.len() == 1 {
        let id = first
            .goid
            .map_or_else(|| format!("at {:#x}", first.address), |id| id.to_string());
        return format!("goroutine {id} [{state}]{note}:");
    }
    let ids: Vec<u64> = goroutines.iter().filter_map(|g| g.goid).collect();
    format!(
        "{} goroutines [{state}]{note}: {}",
        goroutines.len(),
        compact_ids(&ids)
    )
}

fn write_stack(out: &mut dyn Write, goroutine: &Goroutine) -> io::Result<()> {
    if let Some(error) = &goroutine.error {
        return writeln!(out, "{FUNCTION_INDENT}(unreadable: {error})");
    }
    let frames = printed_frames(goroutine);
    // A stack deeper than the frames a walk keeps lost its middle.
    let elided = goroutine.walk.as_ref().and_then(|walk| walk.elided);
    let split = elided.and_then(|e| e.after.checked_sub(goroutine.printed_from));
    match (elided, split) {
        (Some(elided), Some(split)) if split <= frames.len() => {
            let (head, tail) = frames.split_at(split);
            write_frames(out, head)?;
            writeln!(
                out,
                "{FUNCTION_INDENT}... {} frames left out in the middle of a deep stack ...",
                elided.logical
            )?;
            write_frames(out, tail)?;
        }
        _ => write_frames(out, frames)?,
    }
    if let Some(walk) = &goroutine.walk {
        if !walk.stop.is_complete() {
            writeln!(
                out,
                "{FUNCTION_INDENT}(the stack walk stopped early: {})",
                describe_stop(&walk.stop)
            )?;
        }
    }
    if let Some(creator) = &goroutine.created_by {
        let parent = creator
            .parent_goid
            .filter(|&p| p != 0)
            .map(|p| format!(" in goroutine {p}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{FUNCTION_INDENT}created by {}{parent}",
            printed_name(&creator.function)
        )?;
        writeln!(
            out,
            "{POSITION_INDENT}{}",
            position(creator.file.as_deref(), creator.line)
        )?;
    }
    Ok(())
}

fn write_frames(out: &mut dyn Write, frames: &[Frame]) -> io::Result<()> {
    for item in collapse_recursion(frames, |a, b| a.pc == b.pc) {
        let frame = match item {
            StackItem::Frame(frame) => frame,
            StackItem::Repeated { frames, times } => {
                writeln!(out, "{FUNCTION_INDENT}{}", repeated_text(frames, times))?;
                continue;
            }
        };
        let Some((physical, inlined)) = frame.source.split_last() else {
            writeln!(
                out,
                "{FUNCTION_INDENT}?? (no Go function at pc {:#x})",
                frame.pc
            )?;
            continue;
        };
        for source in inlined {
            writeln!(
                out,
                "{FUNCTION_INDENT}{} (inlined)",
                printed_name(&source.function)
            )?;
            writeln!(
                out,
                "{POSITION_INDENT}{}",
                position(source.file.as_deref(), source.line)
            )?;
        }
        writeln!(out, "{FUNCTION_INDENT}{}", printed_name(&physical.function))?;
        writeln!(
            out,
            "{POSITION_INDENT}{}",
            position(physical.file.as_deref(), physical.line)
        )?;
    }
    Ok(())
}

fn position(file: Option<&str>, line: Option<i64>) -> String {
    match (file, line) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(file), None) => file.to_owned(),
        _ => "?".to_owned(),
    }
}

fn write_build(out: &mut dyn Write, report: &Report<'_>) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "Build:")?;
    match &report.build_info {
        Ok(info) => {
            writeln!(out, "  Go version:   {}", info.go_version)?;
            if let Some(path) = &info.path {
                writeln!(out, "  package:      {path}")?;
            }
            if let Some(main) = &info.main {
                writeln!(out, "  module:       {} {}", main.path, main.version)?;
            }
            if let Some(revision) = info.vcs_revision() {
                let modified = if info.setting("vcs.modified") == Some("true") {
                    " (modified)"
                } else {
                    ""
                };
                let time = info
                    .vcs_time()
                    .map(|t| format!(", {t}"))
                    .unwrap_or_default();
                writeln!(out, "  revision:     {revision}{modified}{time}")?;
            }
        }
        Err(error) => writeln!(out, "  no build information: {error}")?,
    }
    let crash = report.crash;
    let source = match crash.binary_source {
        BinarySource::Core => "the executable the core names",
        BinarySource::Argument => "given with --binary",
        BinarySource::DirectorySearch => "found by build ID under --binary",
    };
    writeln!(
        out,
        "  binary:       {} ({source})",
        crash.binary.path().display()
    )?;
    let check = match &crash.id_check {
        IdCheck::Matched { kinds } => format!("matches the core ({})", kinds.join(" and ")),
        IdCheck::Unverified => {
            "not verified: the core and the binary share no kind of build ID".to_owned()
        }
        IdCheck::Forced { in_core, .. } => format!("differs from the core's {in_core} (--force)"),
    };
    writeln!(
        out,
        "  build ID:     {}; {check}",
        describe_ids(&crash.binary_ids)
    )?;
    let core_has = if crash.core_ids.go.is_some() || crash.core_ids.gnu.is_some() {
        describe_ids(&crash.core_ids)
    } else if crash.core.executable().is_none() {
        "unknown: the core does not name its executable".to_owned()
    } else if crash.core.is_partial() {
        "unknown: the executable's first page may be in the part of the core that is missing"
            .to_owned()
    } else {
        "no build ID in the executable's first page".to_owned()
    };
    writeln!(out, "  core has:     {core_has}")
}

fn write_core(out: &mut dyn Write, report: &Report<'_>) -> io::Result<()> {
    let core = &report.crash.core;
    writeln!(out)?;
    writeln!(out, "Core:")?;
    let display_path = report
        .crash
        .source
        .as_ref()
        .and_then(|s| s.core_display_path());
    writeln!(
        out,
        "  file:         {}",
        display_path
            .as_deref()
            .unwrap_or(&report.crash.core_path)
            .display()
    )?;
    let record = report.crash.source.as_ref().and_then(|s| s.record.as_ref());
    if let Some(record) = record {
        let unit = record
            .unit_name()
            .map(|u| format!("unit {u}, "))
            .unwrap_or_default();
        writeln!(out, "  journal:      {unit}entry {}", record.cursor)?;
    }
    if let Some(process) = core.process() {
        writeln!(
            out,
            "  process:      {} (pid {}, uid {})",
            process.fname, process.pid, process.uid
        )?;
    }
    // systemd-coredump reads COREDUMP_CMDLINE whole from /proc, while
    // NT_PRPSINFO keeps the first 80 bytes of the command line.
    let journal_cmdline = record
        .and_then(|r| r.cmdline.as_deref())
        .filter(|cmdline| !cmdline.is_empty());
    match (journal_cmdline, core.process()) {
        (Some(cmdline), _) => writeln!(out, "  command line: {}", escape_line(cmdline))?,
        (None, Some(process)) if !process.psargs.is_empty() => {
            writeln!(
                out,
                "  command line: {}{}",
                escape_line(&process.psargs),
                psargs_cut_note(&process.psargs)
            )?;
        }
        _ => {}
    }
    if let Some(exe) = core.executable() {
        let deleted = if exe.deleted {
            " (deleted or replaced after the program started)"
        } else {
            ""
        };
        writeln!(out, "  executable:   {}{deleted}", exe.path.display())?;
    }
    writeln!(out, "  threads:      {}", core.threads().len())?;
    if let Ok(process) = &report.process {
        let live = process
            .goroutines()
            .iter()
            .filter(|g| !super::is_dead(g))
            .count();
        let dead = process.goroutines().len() - live;
        writeln!(
            out,
            "  goroutines:   {live}, and {dead} dead ones the runtime keeps for reuse"
        )?;
    }
    Ok(())
}
