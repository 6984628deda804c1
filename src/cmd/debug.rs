//! `gocrash debug`: hands a crash to delve.
//!
//! delve reads only plain ELF cores, and systemd-coredump stores them
//! compressed, so the core is first decompressed into a private file (see
//! [`scratch`]). The binary is found as `gocrash symbolize` finds it. Then
//! `dlv core` runs either as a headless JSON-RPC server on a loopback
//! address, with gocrash in the foreground supervising it, or (`--exec`) as
//! delve's own terminal client. Either way, when delve exits or gocrash
//! receives a signal to stop (SIGINT, SIGTERM, SIGHUP), delve is stopped and the
//! decompressed core removed.

mod delve;
mod scratch;

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use object::Object;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use symbolizer::decompress::{self, Compression};

use ingest::select::{CrashSource, Selector};

use super::list::JournalArgs;
use crate::crash_input::{self, CrashArgs};
use crate::exit::{Status, WithStatus};

use self::delve::{DelveCommand, DelveEvent, Release};
use self::scratch::ScratchCore;

const TRACE_TARGET: &str = "gocrash::debug";
/// How long delve gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often the supervisor checks whether delve has exited.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Where a process reaches its own open files.
const PROCESS_FD_DIR: &str = "/proc/self/fd";

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when delve exits with 0, or when gocrash stopped it on \
SIGINT, SIGTERM or SIGHUP; 1 on failure (no usable core or binary, a binary without DWARF, \
delve missing, delve exiting before it listens or with an error); 2 for an invalid command line, such as a \
--listen address that is not loopback without --allow-remote; 3 when no crash matched."
)]
pub struct Args {
    #[command(flatten)]
    pub crash: CrashArgs,

    #[command(flatten)]
    pub journal: JournalArgs,

    /// Address for delve's API server, IP:PORT or localhost:PORT (which is
    /// 127.0.0.1); port 0 lets the system pick a free port. Must be a
    /// loopback address unless --allow-remote is given.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: String,

    /// Accept a --listen address other machines can reach. Anyone who
    /// connects to delve's API can read the core's memory and make delve
    /// run programs as you.
    #[arg(long)]
    pub allow_remote: bool,

    /// Run delve's terminal client here instead of a server.
    #[arg(long, conflicts_with = "allow_remote")]
    pub exec: bool,

    /// The delve executable.
    #[arg(long, value_name = "PATH", default_value = "dlv")]
    pub dlv: PathBuf,

    /// Print where delve serves the core as one JSON object, gocrash.debug/1
    /// (docs/json.md), instead of the text.
    #[arg(long, conflicts_with = "exec")]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let listen = if args.exec {
        None
    } else {
        Some(listen_address(&args.listen, args.allow_remote)?)
    };

    let delve_release = delve::delve_version(&args.dlv)?;
    let dir = scratch::runtime_dir()?;
    let removed = scratch::remove_leftovers(&dir);
    if !removed.is_empty() {
        stderr_line!(
            "gocrash: removed {} decompressed core(s) left in {} by gocrash runs that were killed",
            removed.len(),
            dir.display()
        );
    }

    let prepared = prepare_core(&args.crash, &args.journal.selector(), &dir)?;
    let skip_version_check = check_go_support(delve_release, prepared.go_version.as_deref());
    let command = DelveCommand {
        dlv: args.dlv.clone(),
        binary: prepared.binary.clone(),
        core: prepared.plain_core().to_path_buf(),
        listen,
        skip_version_check,
    };
    tracing::info!(target: TRACE_TARGET, command = %command.display(), "starting delve");

    if args.exec {
        run_interactive(&command)
    } else {
        run_server(&command, &prepared, args.json)
    }
}

/// Parses `--listen` and rejects an address other hosts can reach, unless
/// `--allow-remote` accepts it. The host `localhost` is 127.0.0.1, fixed
/// rather than looked up, so that it cannot resolve to another host.
fn listen_address(text: &str, allow_remote: bool) -> anyhow::Result<SocketAddr> {
    let localhost_port = text
        .rsplit_once(':')
        .filter(|(host, _)| host.eq_ignore_ascii_case("localhost"))
        .map(|(_, port)| port);
    let parsed = match localhost_port {
        Some(port) => port
            .parse::<u16>()
            .map(|port| SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)))
            .map_err(|err| err.to_string()),
        None => text.parse::<SocketAddr>().map_err(|err| err.to_string()),
    };
    let address = parsed.map_err(|err| WithStatus {
        status: Status::Usage,
        message: format!(
            "invalid --listen address {text:?} ({err}); give IP:PORT or localhost:PORT, such as 127.0.0.1:0"
        ),
    })?;
    if address.ip().is_loopback() {
        return Ok(address);
    }
    if !allow_remote {
        return Err(WithStatus {
            status: Status::Usage,
            message: format!(
                "--listen {address} is not a loopback address: delve's API lets anyone who connects read the \
                 core's memory and run programs as you; listen on 127.0.0.1 and use an SSH tunnel, or pass \
                 --allow-remote if every host that can reach {address} is trusted"
            ),
        }
        .into());
    }
    stderr_line!(
        "gocrash: warning: delve will listen on {address}, which other hosts can reach; anyone who connects \
         can read the core's memory and make delve run programs as you"
    );
    Ok(address)
}

/// A core ready for delve.
struct PreparedCore {
    /// The path the core is read from.
    source: PathBuf,
    /// The core's path for messages: its path in systemd-coredump's store
    /// where `source` is a descriptor of it.
    display: PathBuf,
    /// The journal's record of the crash. It owns the temporary copy of a
    /// core stored inside the journal, which must live as long as delve
    /// reads it.
    _selected: Option<CrashSource>,
    /// The decompressed copy; `None` when the source is a plain core.
    scratch: Option<ScratchCore>,
    binary: PathBuf,
    go_version: Option<String>,
}

impl PreparedCore {
    fn plain_core(&self) -> &Path {
        self.scratch
            .as_ref()
            .map_or(self.source.as_path(), ScratchCore::path)
    }
}

/// Finds the core the arguments select, decompresses it into `dir` when
/// it is compressed, and finds its binary.
fn prepare_core(
    crash: &CrashArgs,
    selector: &Selector,
    dir: &Path,
) -> anyhow::Result<PreparedCore> {
    let (source, selected) = crash_input::select_core(crash.crash.as_deref(), selector)?;

    // The selector opens a core in systemd-coredump's store without
    // following links and reads it through /proc/self/fd, a path that means
    // nothing in delve's process, so such a core is copied even when plain.
    let display = selected
        .as_ref()
        .and_then(CrashSource::core_display_path)
        .unwrap_or_else(|| source.clone());
    let compression = compression_of(&source)?;
    let scratch = match compression {
        Compression::None if !source.starts_with(PROCESS_FD_DIR) => None,
        _ => {
            let (scratch, mut file) = ScratchCore::create(dir)?;
            let started = Instant::now();
            let verb = if compression == Compression::None {
                "copying"
            } else {
                "decompressing"
            };
            stderr_line!(
                "gocrash: {verb} {} ({}) to {}",
                display.display(),
                compression.name(),
                scratch.path().display()
            );
            decompress::decompress_to_file(&source, &mut file, &mut |_| {})
                .with_context(|| format!("cannot decompress {}", display.display()))?;
            file.sync_all()
                .with_context(|| format!("cannot write {}", scratch.path().display()))?;
            tracing::info!(target: TRACE_TARGET, elapsed_ms = started.elapsed().as_millis() as u64, "decompressed the core");
            Some(scratch)
        }
    };
    let plain = scratch.as_ref().map_or(source.as_path(), ScratchCore::path);

    let opened = crash_input::open_with(
        &CrashArgs {
            crash: Some(plain.display().to_string()),
            binary: crash.binary.clone(),
            force: crash.force,
            read_in_background: false,
            reads_crash_text: false,
        },
        selector,
    )
    .with_context(|| format!("cannot prepare {} for delve", display.display()))?;
    for warning in &opened.warnings {
        stderr_line!("gocrash: warning: {warning}");
    }
    let binary = opened.binary.path().to_path_buf();
    // delve 1.20 announces its listening address before it loads the
    // binary, so a binary without DWARF would be served as if it worked.
    let elf = opened.binary.elf();
    if elf.section_by_name(".debug_info").is_none() && elf.section_by_name(".zdebug_info").is_none()
    {
        anyhow::bail!(
            "cannot debug {} in delve: {} has no DWARF debugging information (it was built with \
             -ldflags=-w or stripped), which delve needs; `gocrash symbolize` reads the goroutines \
             without it",
            display.display(),
            binary.display()
        );
    }
    let go_version = match symbolizer::buildinfo::read(opened.binary.elf()) {
        Ok(info) => Some(info.go_version),
        Err(err) => {
            tracing::info!(target: TRACE_TARGET, error = %err, "no build information; the Go version is unknown");
            None
        }
    };
    Ok(PreparedCore {
        source,
        display,
        _selected: selected,
        scratch,
        binary,
        go_version,
    })
}

fn compression_of(path: &Path) -> anyhow::Result<Compression> {
    decompress::detect_file(path).map_err(anyhow::Error::new)
}

/// Warns when the binary's Go is newer than delve supports, and returns
/// whether delve's own version check must be turned off.
fn check_go_support(delve_release: Release, go_version: Option<&str>) -> bool {
    let Some(go) = go_version.and_then(delve::parse_go_version) else {
        return false;
    };
    let Some(newest) = delve::newest_supported_go(delve_release) else {
        return false;
    };
    if go <= newest {
        return false;
    }
    stderr_line!(
        "gocrash: warning: {}",
        delve::too_new_warning(delve_release, go, newest)
    );
    true
}

/// The event that ends the server's supervision.
enum Stop {
    Exited(ExitStatus),
    Signal(i32),
}

/// Runs delve's headless server and supervises it until it exits or a
/// signal stops gocrash.
fn run_server(
    command: &DelveCommand,
    prepared: &PreparedCore,
    json: bool,
) -> anyhow::Result<Status> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install the signal handlers")?;
    let mut process = command.command();
    // Its own process group keeps a Ctrl-C in the terminal from reaching
    // delve before gocrash has decided how to stop it.
    process
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = process
        .spawn()
        .map_err(|err| delve::not_runnable(&command.dlv, err))?;

    let (events, received) = mpsc::channel::<Event>();
    let delve_events = events.clone();
    let (output_events, output) = mpsc::channel::<DelveEvent>();
    let tail = delve::watch_output(&mut child, output_events);
    std::thread::spawn(move || {
        for event in output {
            if delve_events.send(Event::Delve(event)).is_err() {
                break;
            }
        }
    });
    let handle = signals.handle();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if events.send(Event::Signal(signal)).is_err() {
                break;
            }
        }
    });

    let mut listening = false;
    let stop = loop {
        if let Some(status) = child.try_wait().context("cannot wait for delve")? {
            break Stop::Exited(status);
        }
        match received.recv_timeout(POLL_INTERVAL) {
            Ok(Event::Delve(DelveEvent::Listening(address))) => {
                listening = true;
                if json {
                    print_connection_json(&address, command, prepared)?;
                } else {
                    print_connection(&address, command, prepared)?;
                }
            }
            Ok(Event::Delve(DelveEvent::StdoutClosed)) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Event::Signal(signal)) => break Stop::Signal(signal),
            Err(RecvTimeoutError::Disconnected) => {}
        }
    };
    handle.close();

    match stop {
        Stop::Signal(signal) => {
            tracing::info!(target: TRACE_TARGET, signal, "stopping delve");
            stop_delve(&mut child)?;
            stderr_line!("gocrash: stopped delve and removed the decompressed core");
            Ok(Status::Success)
        }
        Stop::Exited(status) if listening && status.success() => {
            stderr_line!("gocrash: delve exited");
            Ok(Status::Success)
        }
        Stop::Exited(status) => {
            let when = if listening {
                "exited"
            } else {
                "failed to start"
            };
            anyhow::bail!(
                "delve {when} ({}): {}\n{}",
                describe_status(status),
                command.display(),
                tail.describe()
            )
        }
    }
}

/// Messages to the supervising loop.
enum Event {
    Delve(DelveEvent),
    Signal(i32),
}

/// Prints how to connect, on stdout.
fn print_connection(
    address: &str,
    command: &DelveCommand,
    prepared: &PreparedCore,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let go = prepared
        .go_version
        .as_deref()
        .unwrap_or("unknown Go version");
    writeln!(out, "delve is serving the core at {address}")?;
    writeln!(out, "  binary: {} ({go})", command.binary.display())?;
    match &prepared.scratch {
        Some(scratch) => writeln!(
            out,
            "  core:   {} (decompressed to {})",
            prepared.display.display(),
            scratch.path().display()
        )?,
        None => writeln!(out, "  core:   {}", prepared.display.display())?,
    }
    writeln!(out)?;
    writeln!(out, "Connect from a terminal:")?;
    writeln!(out, "  dlv connect {address}")?;
    writeln!(out)?;
    writeln!(
        out,
        "Or add this configuration to .vscode/launch.json and start it:"
    )?;
    for line in delve::vscode_configuration(address, &command.binary).lines() {
        writeln!(out, "  {line}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Press Ctrl-C to stop delve and remove the decompressed core."
    )?;
    out.flush()?;
    Ok(())
}

/// The address delve serves the core at, and how to connect, as `--json`
/// prints them.
#[derive(serde::Serialize)]
struct Connection<'a> {
    schema: &'static str,
    address: &'a str,
    binary: &'a Path,
    go_version: Option<&'a str>,
    core: &'a Path,
    decompressed_core: Option<&'a Path>,
    connect: String,
    vscode: serde_json::Value,
}

/// Prints how to connect as one JSON document, on stdout.
fn print_connection_json(
    address: &str,
    command: &DelveCommand,
    prepared: &PreparedCore,
) -> anyhow::Result<()> {
    let vscode = delve::vscode_configuration(address, &command.binary);
    let connection = Connection {
        schema: "gocrash.debug/1",
        address,
        binary: &command.binary,
        go_version: prepared.go_version.as_deref(),
        core: &prepared.display,
        decompressed_core: prepared.scratch.as_ref().map(ScratchCore::path),
        connect: format!("dlv connect {address}"),
        vscode: serde_json::from_str(&vscode).context("the launch configuration is JSON")?,
    };
    let mut out = std::io::stdout().lock();
    crate::output::write_json(&mut out, &connection, crate::output::indent_stdout_json())?;
    Ok(())
}

/// Sends delve SIGTERM, and SIGKILL if it is still there after
/// [`STOP_GRACE`]; then reaps it.
fn stop_delve(child: &mut Child) -> anyhow::Result<()> {
    if child.try_wait().context("cannot wait for delve")?.is_some() {
        return Ok(());
    }
    let pid = libc::pid_t::try_from(child.id()).context("delve's pid does not fit pid_t")?;
    // SAFETY: kill has no memory effects; pid is our own unreaped child, so
    // it cannot name another process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if child.try_wait().context("cannot wait for delve")?.is_some() {
            return Ok(());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    tracing::warn!(target: TRACE_TARGET, pid, "delve did not exit after SIGTERM; killing it");
    child.kill().context("cannot kill delve")?;
    child.wait().context("cannot wait for delve")?;
    Ok(())
}

/// Runs delve's terminal client with this terminal. A Ctrl-C belongs to
/// delve then, so gocrash ignores SIGINT while delve runs and passes
/// SIGTERM and SIGHUP on.
fn run_interactive(command: &DelveCommand) -> anyhow::Result<Status> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot install the signal handlers")?;
    let mut child = command
        .command()
        .spawn()
        .map_err(|err| delve::not_runnable(&command.dlv, err))?;
    let pid = libc::pid_t::try_from(child.id()).context("delve's pid does not fit pid_t")?;
    let status = loop {
        for signal in signals.pending() {
            if signal != SIGINT {
                // SAFETY: kill has no memory effects. The child is not reaped
                // until try_wait returns its status, so the pid is still its.
                unsafe { libc::kill(pid, signal) };
            }
        }
        if let Some(status) = child.try_wait().context("cannot wait for delve")? {
            break status;
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    if status.success() {
        return Ok(Status::Success);
    }
    anyhow::bail!(
        "delve exited ({}): {}",
        describe_status(status),
        command.display()
    )
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_listen_is_accepted() {
        assert_eq!(listen_address("127.0.0.1:0", false).unwrap().port(), 0);
        assert!(listen_address("[::1]:4000", false)
            .unwrap()
            .ip()
            .is_loopback());
    }

    #[test]
    fn remote_listen_needs_allow_remote() {
        let err = listen_address("0.0.0.0:0", false).unwrap_err();
        let with = err.downcast_ref::<WithStatus>().unwrap();
        assert_eq!(with.status, Status::Usage);
        assert!(
            with.message.contains("not a loopback address"),
            "{}",
            with.message
        );
        assert!(listen_address("0.0.0.0:0", true).is_ok());
    }

    #[test]
    fn localhost_listen_is_ipv4_loopback() {
        assert_eq!(
            listen_address("localhost:0", false).unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 0))
        );
        assert_eq!(
            listen_address("LocalHost:4000", false).unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 4000))
        );
        let err = listen_address("localhost:http", false).unwrap_err();
        assert_eq!(
            err.downcast_ref::<WithStatus>().unwrap().status,
            Status::Usage
        );
    }

    #[test]
    fn malformed_listen_is_usage_error() {
        let err = listen_address("localhost", false).unwrap_err();
        assert_eq!(
            err.downcast_ref::<WithStatus>().unwrap().status,
            Status::Usage
        );
    }

    #[test]
    fn newer_go_skips_version_check() {
        let delve = Release {
            major: 1,
            minor: 20,
        };
        assert!(!check_go_support(delve, Some("go1.19.8")));
        assert!(!check_go_support(delve, Some("go1.20.14")));
        assert!(check_go_support(delve, Some("go1.22.10")));
        assert!(!check_go_support(delve, None));
    }
}
