//! Fills a [`CrashReport`] from what could be read: the goroutines rebuilt
//! from the core (through [`crate::render::Report`], as `symbolize` does),
//! else the crash text journald stored, and the journal entry.
//!
//! The core is preferred for the headline and the goroutines because it
//! survives whatever journald lost. The text is used when there is no
//! usable core. The signature is computed from the text where there is
//! text, as `gocrash list --signature` does, so both find the same crashes.

use std::collections::BTreeMap;

use ingest::coredump::CoredumpRecord;
use ingest::crashtext::CrashText;
use ingest::signature::{compute, is_deadlock_message, is_sent_signal, CrashInput};
use ingest::traceback::Traceback;
use symbolizer::goroutines::Goroutine;
use symbolizer::unwind::Frame;

use super::model::{
    BuildFacts, CrashReport, CreatorView, Earlier, FrameView, GoroutineView, Group, Headline,
    JournalText, ProcessFacts, SignalFacts, SignatureFacts, SCHEMA,
};
use super::source::SourceFinder;
use crate::cmd::list::format_rfc3339;
use crate::render::{
    self, describe_stop, has_fault_address, interrupted_c_frames, printed_frames, printed_name,
    signal_name, Report,
};

/// The sources a report is made from.
pub struct Inputs<'a> {
    pub record: Option<&'a CoredumpRecord>,
    pub text: Option<&'a CrashText>,
    /// The goroutines rebuilt from the core, when the core and the binary
    /// could be opened.
    pub core: Option<&'a Report<'a>>,
    /// The reason there is no core-based report.
    pub core_missing: Option<String>,
    /// The core file named on the command line or found in the journal.
    pub core_path: Option<String>,
}

/// Builds the report. `earlier` is left empty for the caller to fill.
pub fn gather(inputs: &Inputs<'_>, source_roots: &[String]) -> CrashReport {
    let mut missing = Vec::new();
    let mut warnings = Vec::new();
    if let Some(reason) = &inputs.core_missing {
        missing.push(reason.clone());
    }
    let text = inputs.text.filter(|t| !t.traceback.is_empty());
    if text.is_none() {
        missing.push(match inputs.record {
            Some(_) if inputs.text.is_some() => {
                "the journal holds the service's output, but no Go crash report in it".to_owned()
            }
            Some(_) => "the journal holds no crash text of the process".to_owned(),
            None => "no journal entry names this core, so there is no crash text".to_owned(),
        });
    }
    if let Some(core) = inputs.core {
        missing.extend(core.missing.iter().cloned());
        warnings.extend(core.warnings.iter().cloned());
    }

    let build = build_facts(inputs.core);
    let mut finder = SourceFinder::new(source_roots, build.main_module.as_deref());
    let core_process = inputs.core.and_then(|c| c.process.as_ref().ok().copied());

    let (headline, crashing, groups, goroutines_from) = match (inputs.core, core_process, text) {
        (Some(report), Some(process), _) => {
            let mut crashing =
                core_crashing_goroutine(report).map(|g| core_goroutine(g, Some(&mut finder)));
            // A fault in C code called through cgo: the C frames the signal
            // interrupted go above the goroutine's, which the runtime's
            // traceback leaves out.
            if let (Some(view), Some((_, c_frames))) =
                (crashing.as_mut(), interrupted_c_frames(process, report))
            {
                let mut frames = frame_views(c_frames, Some(&mut finder));
                for frame in &mut frames {
                    frame.function.push_str(" (C)");
                }
                view.frames.splice(0..0, frames);
            }
            let groups = core_groups(report, process);
            (core_headline(report, process), crashing, groups, "core")
        }
        (_, _, Some(text)) => {
            let (crashing, groups) = text_goroutines(&text.traceback, &mut finder);
            (text_headline(text), crashing, groups, "text")
        }
        _ => (Headline::default(), None, Vec::new(), "none"),
    };

    let signature = match (text, inputs.core, core_process) {
        (Some(text), _, _) => Some(SignatureFacts {
            from: "text",
            signature: compute(&CrashInput::from_traceback(&text.traceback)),
        }),
        (None, Some(report), Some(process)) => Some(SignatureFacts {
            from: "core",
            signature: compute(&CrashInput::from_process(process, &report.crash.core)),
        }),
        _ => None,
    };

    let journal_text = match inputs.text {
        Some(text) => JournalText {
            present: true,
            lines: text.line_count(),
            loss: crate::cmd::info::loss_parts(&text.loss),
        },
        None => JournalText::default(),
    };

    CrashReport {
        schema: SCHEMA,
        partial: !missing.is_empty(),
        missing,
        warnings,
        headline,
        process: process_facts(inputs),
        build,
        goroutines_from,
        crashing,
        groups,
        journal_text,
        signature,
        earlier: Earlier::default(),
    }
}

fn process_facts(inputs: &Inputs<'_>) -> ProcessFacts {
    let mut facts = ProcessFacts {
        core_file: inputs.core_path.clone(),
        ..ProcessFacts::default()
    };
    if let Some(record) = inputs.record {
        let usec = record.crash_time_usec();
        facts.host = record.hostname.clone();
        facts.unit = record.unit_name().map(str::to_owned);
        facts.time = Some(format_rfc3339(usec));
        facts.time_usec = Some(usec);
        facts.pid = Some(record.pid);
        facts.executable = record.exe.as_ref().map(|p| p.display().to_string());
        facts.cursor = Some(record.cursor.clone());
    }
    if let Some(report) = inputs.core {
        let core = &report.crash.core;
        if facts.pid.is_none() {
            facts.pid = core.process().map(|p| p.pid);
        }
        if facts.executable.is_none() {
            facts.executable = core.executable().map(|e| e.path.display().to_string());
        }
    }
    facts
}

fn build_facts(core: Option<&Report<'_>>) -> BuildFacts {
    let Some(report) = core else {
        return BuildFacts {
            error: Some("no binary was read".to_owned()),
            ..BuildFacts::default()
        };
    };
    let binary = Some(report.crash.binary.path().display().to_string());
    match &report.build_info {
        Ok(info) => BuildFacts {
            go_version: Some(info.go_version.clone()),
            main_module: info.main.as_ref().map(|m| m.path.clone()),
            main_module_version: info.main.as_ref().map(|m| m.version.clone()),
            vcs_revision: info.vcs_revision().map(str::to_owned),
            vcs_time: info.vcs_time().map(str::to_owned),
            vcs_modified: info.vcs_modified(),
            binary,
            error: None,
        },
        Err(error) => BuildFacts {
            binary,
            error: Some(error.clone()),
            ..BuildFacts::default()
        },
    }
}

fn panic_line(value: &str, recovered: bool, repanicked: bool) -> String {
    let suffix = match (recovered, repanicked) {
        (true, true) => " [recovered, repanicked]",
        (true, false) => " [recovered]",
        _ => "",
    };
    format!("panic: {value}{suffix}")
}

fn core_headline(report: &Report<'_>, process: &symbolizer::goroutines::Process) -> Headline {
    let crash = process.crash();
    let mut headline = Headline {
        kind: "unknown",
        from: "core",
        ..Headline::default()
    };
    for panic in crash.panics.iter().filter(|p| !p.goexit) {
        headline
            .lines
            .push(panic_line(&panic.value, panic.recovered, panic.repanicked));
    }
    if !headline.lines.is_empty() {
        headline.kind = "panic";
    }
    if let Some(message) = &report.fatal_error {
        headline.lines.push(format!("fatal error: {message}"));
        if headline.kind == "unknown" {
            headline.kind = "fatal_error";
        }
    }
    if let Some(signal) = crash.signal {
        headline.signal = Some(signal_facts(
            signal.signo,
            i64::try_from(signal.code).ok(),
            signal.addr,
            signal.pc,
        ));
    }
    if let Some((_, signal)) = &report.fatal_signal {
        let facts = signal_facts(
            signal.signo,
            Some(i64::from(signal.code)),
            signal.addr,
            signal.pc,
        );
        let line = match (&facts.name, &facts.description) {
            (Some(name), Some(description)) => format!("{name}: {description}"),
            _ => format!("signal {}", signal.signo),
        };
        headline.lines.push(line);
        headline.signal = Some(facts);
        if headline.kind == "unknown" {
            headline.kind = "signal";
        }
    }
    headline.first_line = headline
        .lines
        .first()
        .and_then(|l| l.lines().next())
        .map(str::to_owned);
    headline
}

fn signal_facts(number: u32, code: Option<i64>, addr: u64, pc: u64) -> SignalFacts {
    let names = signal_name(number);
    SignalFacts {
        number,
        name: names.map(|(n, _)| n.to_owned()),
        description: names.map(|(_, d)| d.to_owned()),
        code,
        fault_address: has_fault_address(number).then(|| format!("{addr:#x}")),
        pc: Some(format!("{pc:#x}")),
    }
}

fn text_headline(text: &CrashText) -> Headline {
    let traceback = &text.traceback;
    let mut headline = Headline {
        kind: "unknown",
        from: "text",
        first_line: text.headline(),
        ..Headline::default()
    };
    for panic in &traceback.panics {
        headline
            .lines
            .push(panic_line(&panic.value, panic.recovered, panic.repanicked));
    }
    if !headline.lines.is_empty() {
        headline.kind = "panic";
    }
    if let Some(fatal) = &traceback.fatal {
        headline
            .lines
            .push(format!("fatal error: {}", fatal.message));
        if headline.kind == "unknown" {
            headline.kind = "fatal_error";
        }
    }
    if let Some(signal) = &traceback.signal {
        let number = signal
            .number
            .and_then(|n| u32::try_from(n).ok())
            .or_else(|| {
                signal.name.as_deref().and_then(|name| {
                    (1..=31).find(|&n| signal_name(n).is_some_and(|(s, _)| s == name))
                })
            });
        if let Some(number) = number {
            let mut facts = signal_facts(number, signal.code_signed(), signal.addr.unwrap_or(0), 0);
            facts.fault_address = signal
                .addr
                .filter(|_| has_fault_address(number))
                .map(|a| format!("{a:#x}"));
            facts.pc = signal.pc.map(|pc| format!("{pc:#x}"));
            if headline.kind == "unknown" {
                headline.kind = "signal";
                headline.lines.push(
                    headline
                        .first_line
                        .clone()
                        .unwrap_or_else(|| format!("signal {number}")),
                );
            }
            headline.signal = Some(facts);
        }
    }
    headline
}

/// Reports whether a frame's source lines are worth showing. The runtime's
/// own functions (`panic`, `runtime.sigpanic`) sit above the program's
/// frames in every crash and do not locate it, so theirs are left out.
fn shows_source(function: &str) -> bool {
    ingest::traceback::classify_function(function) != ingest::traceback::FunctionClass::Runtime
}

/// Turns physical frames into the logical frames a report shows, inlined
/// calls included, with source lines when `finder` is given.
fn frame_views(physical_frames: &[Frame], mut finder: Option<&mut SourceFinder>) -> Vec<FrameView> {
    let mut frames = Vec::new();
    for frame in physical_frames {
        let pc = Some(format!("{:#x}", frame.pc));
        if frame.source.is_empty() {
            frames.push(FrameView {
                function: format!("?? (no Go function at pc {:#x})", frame.pc),
                file: None,
                line: None,
                inlined: false,
                pc,
                source: None,
            });
            continue;
        }
        let physical = frame.source.len() - 1;
        for (index, source) in frame.source.iter().enumerate() {
            let snippet = match (&mut finder, &source.file, source.line) {
                (Some(finder), Some(file), Some(line)) if shows_source(&source.function) => {
                    Some(finder.snippet(file, line))
                }
                _ => None,
            };
            frames.push(FrameView {
                function: printed_name(&source.function).to_owned(),
                file: source.file.as_deref().map(str::to_owned),
                line: source.line,
                inlined: index < physical,
                pc: pc.clone(),
                source: snippet,
            });
        }
    }
    frames
}

/// Turns a goroutine rebuilt from the core into its view, with source
/// lines when `finder` is given.
fn core_goroutine(goroutine: &Goroutine, finder: Option<&mut SourceFinder>) -> GoroutineView {
    let frames = frame_views(printed_frames(goroutine), finder);
    let stack_note = match (&goroutine.error, &goroutine.walk) {
        (Some(error), _) => Some(format!("unreadable: {error}")),
        (None, Some(walk)) if !walk.stop.is_complete() => Some(format!(
            "the stack walk stopped early: {}",
            describe_stop(&walk.stop)
        )),
        (None, Some(walk)) => walk.elided.map(|e| {
            format!(
                "{} frames left out in the middle of a deep stack",
                e.logical
            )
        }),
        _ => None,
    };
    GoroutineView {
        id: goroutine.goid,
        status: goroutine.status_text.to_string(),
        wait_minutes: goroutine.wait_minutes,
        locked_to_thread: goroutine.locked_to_thread,
        frames,
        created_by: goroutine.created_by.as_ref().map(|c| CreatorView {
            function: printed_name(&c.function).to_owned(),
            file: c.file.as_deref().map(str::to_owned),
            line: c.line,
            parent_goroutine: c.parent_goid.filter(|&p| p != 0),
        }),
        stack_note,
    }
}

/// Returns the goroutine the crash happened on: none for a signal sent
/// from outside, such as an operator's `kill -QUIT`, which only interrupted
/// the goroutine it found. A SIGQUIT the process relayed to itself counts
/// as sent from outside, as the runtime relays an operator's SIGQUIT.
fn core_crashing_goroutine<'a>(report: &Report<'a>) -> Option<&'a Goroutine> {
    let own_pid = report.crash.core.process().map(|p| p.pid);
    let sent = report.fatal_signal.as_ref().is_some_and(|(_, signal)| {
        let name = signal_name(signal.signo).map(|(name, _)| name);
        let from_other_process = own_pid != Some(render::signal::sender(signal));
        is_sent_signal(name, Some(i64::from(signal.code)))
            && (name == Some("SIGQUIT") || from_other_process)
    });
    if sent {
        return None;
    }
    report.crashing_goroutine()
}

fn core_groups(report: &Report<'_>, process: &symbolizer::goroutines::Process) -> Vec<Group> {
    let crashing = core_crashing_goroutine(report);
    let views = render::printing_order(report, process)
        .into_iter()
        .filter(|g| !crashing.is_some_and(|c| std::ptr::eq(c, *g)))
        .map(|g| core_goroutine(g, None));
    group_views(views)
}

/// Groups goroutines whose status, frames and creator are equal; ids and
/// wait times may differ.
fn group_views(views: impl Iterator<Item = GoroutineView>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for view in views {
        let key = group_key(&view);
        let minutes = view.wait_minutes;
        let at = match index.get(&key) {
            Some(&at) => at,
            None => {
                index.insert(key, groups.len());
                groups.push(Group {
                    count: 0,
                    ids: Vec::new(),
                    min_wait_minutes: None,
                    max_wait_minutes: None,
                    goroutine: view.clone(),
                });
                groups.len() - 1
            }
        };
        let Some(group) = groups.get_mut(at) else {
            continue;
        };
        group.count += 1;
        group.ids.extend(view.id);
        if let Some(minutes) = minutes {
            group.min_wait_minutes =
                Some(group.min_wait_minutes.map_or(minutes, |m| m.min(minutes)));
            group.max_wait_minutes =
                Some(group.max_wait_minutes.map_or(minutes, |m| m.max(minutes)));
        }
    }
    groups
}

fn group_key(view: &GoroutineView) -> String {
    let mut key = format!("{}|{}|", view.status, view.locked_to_thread);
    for frame in &view.frames {
        key.push_str(&format!(
            "{}@{:?}:{:?};",
            frame.function, frame.file, frame.line
        ));
    }
    if let Some(creator) = &view.created_by {
        key.push_str(&format!(
            "|{}@{:?}:{:?}",
            creator.function, creator.file, creator.line
        ));
    }
    if let Some(note) = &view.stack_note {
        key.push_str(note);
    }
    key
}

/// Reads the goroutines of the crash text: the first one printed is the
/// crashing one, unless the crash has none (a deadlock, or a signal sent
/// from outside).
fn text_goroutines(
    traceback: &Traceback,
    finder: &mut SourceFinder,
) -> (Option<GoroutineView>, Vec<Group>) {
    let deadlock = traceback
        .fatal
        .as_ref()
        .is_some_and(|f| is_deadlock_message(&f.message));
    let sent = traceback.panics.is_empty()
        && traceback.fatal.is_none()
        && traceback
            .signal
            .as_ref()
            .is_some_and(|s| is_sent_signal(s.name.as_deref(), s.code_signed()));
    let mut goroutines = traceback.main_goroutines();
    let crashing = if deadlock || sent {
        None
    } else {
        goroutines
            .next()
            .map(|g| text_goroutine(g, Some(&mut *finder)))
    };
    let groups = group_views(goroutines.map(|g| text_goroutine(g, None)));
    (crashing, groups)
}

fn text_goroutine(
    goroutine: &ingest::traceback::Goroutine,
    mut finder: Option<&mut SourceFinder>,
) -> GoroutineView {
    let status = goroutine.wait_reason.clone().unwrap_or_else(|| {
        serde_json::to_value(goroutine.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    });
    let frames = goroutine
        .frames
        .iter()
        .map(|frame| {
            let line = frame.line.map(i64::from);
            let source = match (&mut finder, &frame.file, line) {
                (Some(finder), Some(file), Some(line)) if shows_source(&frame.function) => {
                    Some(finder.snippet(file, line))
                }
                _ => None,
            };
            FrameView {
                function: frame.function.clone(),
                file: frame.file.clone(),
                line,
                inlined: frame.inlined,
                pc: frame.pc.map(|pc| format!("{pc:#x}")),
                source,
            }
        })
        .collect();
    let stack_note = if goroutine.stack_unavailable {
        Some("the runtime printed no stack".to_owned())
    } else {
        goroutine.elided.as_ref().map(|e| match e.count {
            Some(count) => format!("the runtime left out {count} frames"),
            None => "the runtime left out frames".to_owned(),
        })
    };
    GoroutineView {
        id: Some(goroutine.id.0),
        status,
        wait_minutes: goroutine.wait_minutes,
        locked_to_thread: goroutine.locked_to_thread,
        frames,
        created_by: goroutine.created_by.as_ref().map(|c| CreatorView {
            function: c.function.clone(),
            file: c.file.clone(),
            line: c.line.map(i64::from),
            parent_goroutine: c.parent.map(|p| p.0),
        }),
        stack_note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: u64, status: &str, minutes: Option<u64>, functions: &[&str]) -> GoroutineView {
        GoroutineView {
            id: Some(id),
            status: status.to_owned(),
            wait_minutes: minutes,
            locked_to_thread: false,
            frames: functions
                .iter()
                .map(|function| FrameView {
                    function: (*function).to_owned(),
                    file: Some("/src/main.go".to_owned()),
                    line: Some(10),
                    inlined: false,
                    pc: Some(format!("{:#x}", 0x1000 + id)),
                    source: None,
                })
                .collect(),
            created_by: None,
            stack_note: None,
        }
    }

    #[test]
    fn groups_join_identical_stacks() {
        let views = vec![
            view(5, "chan receive", Some(3), &["main.worker"]),
            view(2, "select", None, &["main.loop"]),
            view(7, "chan receive", Some(1), &["main.worker"]),
            view(9, "chan receive", None, &["main.worker"]),
        ];
        let groups = group_views(views.into_iter());
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].ids, [5, 7, 9]);
        assert_eq!(groups[0].min_wait_minutes, Some(1));
        assert_eq!(groups[0].max_wait_minutes, Some(3));
        assert_eq!(groups[1].count, 1);
        assert_eq!(groups[1].ids, [2]);
    }

    #[test]
    fn groups_split_on_status_and_frames() {
        let views = vec![
            view(1, "chan receive", None, &["main.worker"]),
            view(2, "chan send", None, &["main.worker"]),
            view(3, "chan receive", None, &["main.other"]),
        ];
        assert_eq!(group_views(views.into_iter()).len(), 3);
    }

    #[test]
    fn panic_lines_carry_recovery() {
        assert_eq!(panic_line("boom", false, false), "panic: boom");
        assert_eq!(panic_line("boom", true, false), "panic: boom [recovered]");
        assert_eq!(
            panic_line("boom", true, true),
            "panic: boom [recovered, repanicked]"
        );
    }

    #[test]
    fn fault_address_only_for_faults() {
        let segv = signal_facts(11, Some(1), 0x10, 0x4000);
        assert_eq!(segv.fault_address.as_deref(), Some("0x10"));
        assert_eq!(segv.name.as_deref(), Some("SIGSEGV"));
        let quit = signal_facts(3, Some(0), 0x10, 0x4000);
        assert_eq!(quit.fault_address, None);
        assert_eq!(quit.pc.as_deref(), Some("0x4000"));
    }
}
