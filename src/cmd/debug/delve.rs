//! Running delve on a core: which Go releases an installed delve supports,
//! its command lines, and the headless server's start.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

const TRACE_TARGET: &str = "gocrash::debug";
/// The line delve's headless server prints once it accepts connections,
/// followed by the address.
const LISTENING_PREFIX: &str = "API server listening at:";
/// Lines of delve's stderr kept to explain a failure.
pub const KEPT_STDERR_LINES: usize = 20;

/// A `major.minor` release, of Go or of delve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Reads `Version: 1.20.2` from the output of `dlv version`.
pub fn parse_delve_version(output: &str) -> Option<Release> {
    let line = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Version:"))?;
    parse_release(line.trim().trim_start_matches('v'))
}

/// Reads the release of a Go version string such as `go1.22.10` or
/// `go1.24rc1`.
pub fn parse_go_version(version: &str) -> Option<Release> {
    parse_release(version.trim().strip_prefix("go")?)
}

fn parse_release(text: &str) -> Option<Release> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor_text: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let minor = minor_text.parse().ok()?;
    Some(Release { major, minor })
}

/// Returns the newest Go release a delve release supports.
///
/// Each delve release states it in `pkg/goversion/compat.go`
/// (`MaxSupportedVersionOfGoMinor`): delve 1.20 supports Go up to 1.20
/// (its compat.go lists 1.18 to 1.20). Since 1.20 delve numbers its
/// releases after the newest Go they support; before, delve 1.N supported
/// Go 1.(N+10), from delve 1.4 (Go 1.14) to 1.9 (Go 1.19).
/// NOTE: the rule is extrapolated for delve releases newer than 1.25.
pub fn newest_supported_go(delve: Release) -> Option<Release> {
    if delve.major != 1 {
        return None;
    }
    let go_minor = if delve.minor >= 20 {
        delve.minor
    } else {
        delve.minor.checked_add(10)?
    };
    Some(Release {
        major: 1,
        minor: go_minor,
    })
}

/// Builds the warning for a binary whose Go is newer than delve supports.
pub fn too_new_warning(delve: Release, go: Release, newest: Release) -> String {
    format!(
        "delve {delve} supports Go up to {newest}, but the binary was built by Go {go}; gocrash passes \
         --check-go-version=false so that delve starts anyway. Goroutine lists, stacks and variables of \
         runtime structures changed after Go {newest} (goroutine status and wait reasons, inlined frames, \
         map and channel contents) may be shown wrong or not at all; install a delve of {go} or newer for \
         a full picture, or use `gocrash symbolize` for the stacks"
    )
}

/// The command line of `dlv core`, headless or interactive.
#[derive(Clone, Debug)]
pub struct DelveCommand {
    pub dlv: PathBuf,
    pub binary: PathBuf,
    pub core: PathBuf,
    /// `Some` for the headless server, `None` for the terminal client.
    pub listen: Option<SocketAddr>,
    pub skip_version_check: bool,
}

impl DelveCommand {
    /// Returns the arguments after the program name.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "core".to_string(),
            self.binary.display().to_string(),
            self.core.display().to_string(),
        ];
        if let Some(listen) = self.listen {
            args.push("--headless".to_string());
            args.push(format!("--listen={listen}"));
            args.push("--api-version=2".to_string());
            args.push("--accept-multiclient".to_string());
        }
        if self.skip_version_check {
            args.push("--check-go-version=false".to_string());
        }
        args
    }

    /// Returns the command line as a shell would show it, for messages.
    pub fn display(&self) -> String {
        let mut words = vec![self.dlv.display().to_string()];
        words.extend(self.args());
        words.join(" ")
    }

    /// Builds the process. When gocrash dies, even by SIGKILL, the kernel
    /// sends delve SIGTERM, so a server is never left behind.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.dlv);
        command.args(self.args());
        // SAFETY: prctl is async-signal-safe, and the closure touches no
        // memory shared with the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }
}

/// Runs `dlv version` and returns its release.
pub fn delve_version(dlv: &Path) -> anyhow::Result<Release> {
    let output = Command::new(dlv)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| not_runnable(dlv, err))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr_part = match stderr.trim() {
            "" => "and wrote nothing to stderr".to_owned(),
            text => format!("and wrote: {text}"),
        };
        anyhow::bail!(
            "`{} version` failed ({}) {stderr_part}; is {} delve?",
            dlv.display(),
            output.status,
            dlv.display()
        );
    }
    parse_delve_version(&stdout).with_context(|| {
        format!(
            "cannot read a version in the output of `{} version`: {:?}",
            dlv.display(),
            stdout.trim()
        )
    })
}

/// Explains why delve could not be run.
pub fn not_runnable(dlv: &Path, err: std::io::Error) -> anyhow::Error {
    // A path with a slash is run as it is, without a search of PATH.
    if err.kind() == std::io::ErrorKind::NotFound && dlv.components().count() > 1 {
        anyhow::anyhow!(
            "delve was not found at {}: no such file; pass --dlv with the path of dlv",
            dlv.display()
        )
    } else if err.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "delve ({}) is not installed or not on PATH; install it (Debian: apt-get install delve; \
             elsewhere: go install github.com/go-delve/delve/cmd/dlv@latest) or pass --dlv PATH",
            dlv.display()
        )
    } else {
        anyhow::Error::new(err).context(format!("cannot run delve ({})", dlv.display()))
    }
}

/// An event the threads reading delve's output send.
#[derive(Debug)]
pub enum DelveEvent {
    /// The server accepts connections at this address.
    Listening(String),
    /// Delve's stdout ended: it exited or closed it.
    StdoutClosed,
}

/// The last lines delve wrote to stderr, kept by a reader thread.
pub struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    reader: Option<JoinHandle<()>>,
}

/// How long [`StderrTail::describe`] waits for the reader to reach the end
/// of delve's stderr. A process delve started may keep the pipe open, so
/// the wait is bounded.
const TAIL_WAIT: Duration = Duration::from_secs(2);

impl StderrTail {
    /// Returns the kept lines, indented, once the reader has seen the end of
    /// the pipe or [`TAIL_WAIT`] has passed.
    pub fn describe(&self) -> String {
        let deadline = Instant::now() + TAIL_WAIT;
        while self
            .reader
            .as_ref()
            .is_some_and(|reader| !reader.is_finished())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let lines: Vec<String> = self
            .lines
            .lock()
            .map(|kept| kept.iter().map(|line| format!("  {line}")).collect())
            .unwrap_or_default();
        if lines.is_empty() {
            "delve wrote nothing to stderr".to_string()
        } else {
            format!("last lines of delve's stderr:\n{}", lines.join("\n"))
        }
    }
}

/// Starts threads that read a headless delve's stdout and stderr. The
/// listening line of stdout is sent as an event. Other stdout lines go to
/// gocrash's stderr, because delve's banner and warnings are diagnostics,
/// not gocrash's output. Stderr lines go there too, and the last
/// [`KEPT_STDERR_LINES`] are kept.
pub fn watch_output(child: &mut Child, events: Sender<DelveEvent>) -> StderrTail {
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.trim().strip_prefix(LISTENING_PREFIX) {
                    let _ = events.send(DelveEvent::Listening(address.trim().to_string()));
                } else {
                    stderr_line!("dlv: {line}");
                }
            }
            let _ = events.send(DelveEvent::StdoutClosed);
        });
    }
    let lines = Arc::new(Mutex::new(VecDeque::new()));
    let reader = child.stderr.take().map(|stderr| {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || keep_tail(stderr, &lines))
    });
    StderrTail { lines, reader }
}

fn keep_tail(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        tracing::debug!(target: TRACE_TARGET, line = %line, "delve stderr");
        stderr_line!("dlv: {line}");
        if let Ok(mut kept) = tail.lock() {
            if kept.len() == KEPT_STDERR_LINES {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    }
}

/// Builds the VS Code launch configuration that attaches to the server.
pub fn vscode_configuration(address: &str, binary: &Path) -> String {
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "0"));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = binary
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "core".to_string());
    let port: u16 = port.parse().unwrap_or(0);
    // Written by hand to keep the order a person expects; the strings are
    // escaped by serde_json.
    let quote = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string());
    format!(
        "{{\n  \"name\": {},\n  \"type\": \"go\",\n  \"request\": \"attach\",\n  \"mode\": \"remote\",\n  \"host\": {},\n  \"port\": {port}\n}}",
        quote(&format!("gocrash: core of {name}")),
        quote(host)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delve_version_is_read() {
        let output = "Delve Debugger\nVersion: 1.20.2\nBuild: $Id: e0c278ad8e $\n";
        assert_eq!(
            parse_delve_version(output),
            Some(Release {
                major: 1,
                minor: 20
            })
        );
        assert_eq!(
            parse_delve_version("Version: v1.9.1"),
            Some(Release { major: 1, minor: 9 })
        );
        assert_eq!(parse_delve_version("Delve Debugger\n"), None);
    }

    #[test]
    fn go_version_is_read() {
        assert_eq!(
            parse_go_version("go1.22.10"),
            Some(Release {
                major: 1,
                minor: 22
            })
        );
        assert_eq!(
            parse_go_version("go1.24rc1"),
            Some(Release {
                major: 1,
                minor: 24
            })
        );
        assert_eq!(parse_go_version("devel +abc"), None);
    }

    #[test]
    fn supported_go_follows_delve_release() {
        let go = |minor| Some(Release { major: 1, minor });
        assert_eq!(
            newest_supported_go(Release {
                major: 1,
                minor: 20
            }),
            go(20)
        );
        assert_eq!(
            newest_supported_go(Release {
                major: 1,
                minor: 24
            }),
            go(24)
        );
        assert_eq!(newest_supported_go(Release { major: 1, minor: 9 }), go(19));
        assert_eq!(newest_supported_go(Release { major: 1, minor: 7 }), go(17));
        assert_eq!(newest_supported_go(Release { major: 2, minor: 0 }), None);
    }

    #[test]
    fn headless_command_line() {
        let command = DelveCommand {
            dlv: PathBuf::from("dlv"),
            binary: PathBuf::from("/srv/api"),
            core: PathBuf::from("/run/user/0/gocrash/debug-7-0.core"),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            skip_version_check: true,
        };
        assert_eq!(
            command.display(),
            "dlv core /srv/api /run/user/0/gocrash/debug-7-0.core --headless --listen=127.0.0.1:0 \
             --api-version=2 --accept-multiclient --check-go-version=false"
        );
        let interactive = DelveCommand {
            listen: None,
            skip_version_check: false,
            ..command
        };
        assert_eq!(
            interactive.args(),
            ["core", "/srv/api", "/run/user/0/gocrash/debug-7-0.core"]
        );
    }

    #[test]
    fn vscode_configuration_names_port() {
        let text = vscode_configuration("127.0.0.1:40123", Path::new("/srv/api"));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["port"], 40123);
        assert_eq!(value["host"], "127.0.0.1");
        assert_eq!(value["mode"], "remote");
        assert_eq!(value["name"], "gocrash: core of api");
        let v6 = vscode_configuration("[::1]:7000", Path::new("/srv/api"));
        let value: serde_json::Value = serde_json::from_str(&v6).unwrap();
        assert_eq!(value["host"], "::1");
    }
}
