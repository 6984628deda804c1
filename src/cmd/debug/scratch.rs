//! The private directory where `gocrash debug` keeps decompressed cores
//! while delve reads them.
//!
//! Cores hold a process's memory, secrets included, so the directory is
//! the user's own (`$XDG_RUNTIME_DIR/gocrash`, else `/tmp/gocrash-UID`) with
//! mode 0700, and an existing one owned by someone else or open to others
//! is rejected rather than used. Each file is named after the pid of the
//! gocrash that made it (`debug-PID-N.core`). A run that is killed cannot
//! remove its file, so every run first removes the files of pids that are
//! no longer a running gocrash.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;

const TRACE_TARGET: &str = "gocrash::debug";
/// Name prefix and suffix of the temporary cores.
const FILE_PREFIX: &str = "debug-";
const FILE_SUFFIX: &str = ".core";
/// The kernel's short name (`/proc/PID/comm`) of a running gocrash.
const PROCESS_NAME: &str = "gocrash";

/// Numbers the files one run makes.
static NEXT_FILE: AtomicU32 = AtomicU32::new(0);

/// Returns the directory for temporary cores, creating it with mode 0700.
pub fn runtime_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|value| !value.is_empty()) {
        Some(base) => PathBuf::from(base).join("gocrash"),
        // SAFETY: getuid takes no arguments, touches no memory and always succeeds (POSIX).
        None => PathBuf::from(format!("/tmp/gocrash-{}", unsafe { libc::getuid() })),
    };
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => {
            return Err(err)
                .with_context(|| format!("cannot create the directory {}", dir.display()))
        }
    }
    check_private(&dir)?;
    Ok(dir)
}

/// Rejects a directory that is a symbolic link, is not the user's, or that
/// others can read or enter.
fn check_private(dir: &Path) -> anyhow::Result<()> {
    let metadata =
        fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    // SAFETY: getuid takes no arguments, touches no memory and always succeeds (POSIX).
    let uid = unsafe { libc::getuid() };
    if !metadata.is_dir() {
        anyhow::bail!(
            "{} is not a directory; remove it so that gocrash can create its own",
            dir.display()
        );
    }
    if metadata.uid() != uid {
        anyhow::bail!(
            "{} belongs to uid {}, not to you (uid {uid}); remove it or set XDG_RUNTIME_DIR",
            dir.display(),
            metadata.uid()
        );
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{} has mode {mode:03o}, so others can reach the cores in it; run chmod 700 on it",
            dir.display()
        );
    }
    Ok(())
}

/// A temporary core file, removed when dropped.
#[derive(Debug)]
pub struct ScratchCore {
    path: PathBuf,
}

impl ScratchCore {
    /// Creates an empty file, readable by the user only, named after this
    /// process's pid.
    pub fn create(dir: &Path) -> anyhow::Result<(ScratchCore, File)> {
        let number = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            "{FILE_PREFIX}{}-{number}{FILE_SUFFIX}",
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create the temporary core {}", path.display()))?;
        Ok((ScratchCore { path }, file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchCore {
    fn drop(&mut self) {
        match fs::remove_file(&self.path) {
            Ok(()) => {
                tracing::debug!(target: TRACE_TARGET, path = %self.path.display(), "removed the temporary core")
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(
                target: TRACE_TARGET,
                path = %self.path.display(),
                error = %err,
                "cannot remove the temporary core"
            ),
        }
    }
}

/// Removes the temporary cores of gocrash runs that are gone. Returns the
/// paths removed.
pub fn remove_leftovers(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if is_running_gocrash(pid) {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(target: TRACE_TARGET, path = %path.display(), pid, "removed a core left by a gocrash that is gone");
                removed.push(path);
            }
            Err(err) => tracing::warn!(
                target: TRACE_TARGET,
                path = %path.display(),
                error = %err,
                "cannot remove a core left by an earlier run"
            ),
        }
    }
    removed
}

/// Returns the pid in a name `debug-PID-N.core`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    let (pid, number) = rest.split_once('-')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Tells whether `pid` is a running gocrash. A pid the kernel reused for
/// another program does not keep a file alive.
fn is_running_gocrash(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    match fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => comm.trim_end() == PROCESS_NAME,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_file_names() {
        assert_eq!(owner_pid("debug-4242-0.core"), Some(4242));
        assert_eq!(owner_pid("debug-4242-17.core"), Some(4242));
        assert_eq!(owner_pid("debug-4242.core"), None);
        assert_eq!(owner_pid("debug-x-1.core"), None);
        assert_eq!(owner_pid("other-4242-0.core"), None);
        assert_eq!(owner_pid("debug-4242-0.core.tmp"), None);
    }

    #[test]
    fn leftovers_of_dead_pids_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid_max on Linux is at most 4194304, so this pid never runs.
        let dead = dir.path().join("debug-4194305-0.core");
        let own = dir
            .path()
            .join(format!("debug-{}-9.core", std::process::id()));
        let unrelated = dir.path().join("notes.txt");
        for path in [&dead, &own, &unrelated] {
            fs::write(path, b"x").unwrap();
        }

        let removed = remove_leftovers(dir.path());

        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists());
        assert!(own.exists());
        assert!(unrelated.exists());
    }

    #[test]
    fn scratch_core_is_private_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (core, _file) = ScratchCore::create(dir.path()).unwrap();
        let path = core.path().to_path_buf();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            owner_pid(path.file_name().unwrap().to_str().unwrap()),
            Some(std::process::id())
        );
        drop(core);
        assert!(!path.exists());
    }

    #[test]
    fn open_directory_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_private(dir.path()).unwrap_err().to_string();
        assert!(err.contains("mode 755"), "{err}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        check_private(dir.path()).unwrap();
    }
}
