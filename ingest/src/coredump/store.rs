//! systemd-coredump's store of core files, and the state of each record's
//! core.
//!
//! systemd-coredump keeps cores in `/var/lib/systemd/coredump` (the path is
//! compiled in) as `core.COMM.UID.BOOT_ID.PID.TIMESTAMP[.zst|.lz4|.xz]`, and
//! names the file in the entry's `COREDUMP_FILENAME`. Because any process can
//! forge an entry, a named file is accepted only when it sits directly in
//! that directory under a `core.` name, and it is opened without following a
//! symbolic link in its last component. When the journal and the cores were
//! copied from another host, [`CoredumpStore::remapped`] looks the same file
//! names up in another directory. Directories above the file are trusted.
//!
//! The file and the journal entry have separate lifetimes: the core can be
//! removed (vacuuming, the three-day tmpfiles rule) while its entry stays,
//! and [`CoreState`] says which case a record is in, the way coredumpctl's
//! COREFILE column does.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::CoredumpRecord;

/// Where systemd-coredump stores cores; systemd has no option to change it.
pub const DEFAULT_COREDUMP_DIR: &str = "/var/lib/systemd/coredump";
/// Prefix of every core file systemd-coredump keeps. Temporary files being
/// written start with `.#core` and are never accepted.
pub const CORE_FILE_PREFIX: &str = "core.";

/// The directory cores are read from.
#[derive(Clone, Debug)]
pub struct CoredumpStore {
    dir: PathBuf,
    remapped: bool,
}

impl Default for CoredumpStore {
    fn default() -> CoredumpStore {
        CoredumpStore {
            dir: PathBuf::from(DEFAULT_COREDUMP_DIR),
            remapped: false,
        }
    }
}

/// Where a record's core is, or why it cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CoreState {
    /// A regular file, `size` bytes on disk (compressed).
    Present {
        #[serde(serialize_with = "lossy")]
        path: PathBuf,
        size: u64,
    },
    /// The entry names a file that no longer exists.
    Missing {
        #[serde(serialize_with = "lossy")]
        path: PathBuf,
    },
    /// The file exists but cannot be opened (usually permissions: cores are
    /// readable by root and, through an ACL, the crashed user).
    Inaccessible {
        #[serde(serialize_with = "lossy")]
        path: PathBuf,
        reason: String,
    },
    /// The entry names a file gocrash refuses to open.
    Rejected {
        #[serde(serialize_with = "lossy")]
        path: PathBuf,
        reason: PathRejection,
    },
    /// The core is inside the journal entry, `len` bytes.
    Journal { len: u64 },
    /// No core was stored; the entry's `MESSAGE` says why (size limits,
    /// `Storage=none`, RLIMIT_CORE).
    None,
}

impl CoreState {
    /// Returns the short label coredumpctl uses for the state, with
    /// `truncated` for a stored core cut at a size limit.
    pub fn label(&self, truncated: bool) -> &'static str {
        match self {
            CoreState::Present { .. } | CoreState::Journal { .. } if truncated => "truncated",
            CoreState::Present { .. } => "present",
            CoreState::Missing { .. } => "missing",
            CoreState::Inaccessible { .. } => "inaccessible",
            CoreState::Rejected { .. } => "rejected",
            CoreState::Journal { .. } => "journal",
            CoreState::None => "none",
        }
    }

    /// Reports whether the core can be read.
    pub fn is_available(&self) -> bool {
        matches!(self, CoreState::Present { .. } | CoreState::Journal { .. })
    }
}

/// Why a `COREDUMP_FILENAME` is not opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum PathRejection {
    #[error("the path is not absolute")]
    NotAbsolute,
    #[error("the path is not directly inside /var/lib/systemd/coredump")]
    OutsideStore,
    #[error("the file name does not start with \"core.\"")]
    NotCoreName,
    #[error("the file is a symbolic link")]
    Symlink,
    #[error("the path is not a regular file")]
    NotRegularFile,
}

/// A core file opened for reading.
#[derive(Debug)]
pub struct StoredCore {
    /// The file's path, for messages.
    pub path: PathBuf,
    /// The open file; it stays the same file even if the path is replaced.
    pub file: File,
    /// Size on disk.
    pub size: u64,
}

impl StoredCore {
    /// Returns a path that reopens exactly this file: `/proc/self/fd/N`,
    /// which cannot be swapped for a symbolic link after the checks, or the
    /// original path where `/proc` is not mounted.
    pub fn read_path(&self) -> PathBuf {
        let fd_path = PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()));
        if fd_path.exists() {
            fd_path
        } else {
            self.path.clone()
        }
    }
}

/// Failure to open a record's core.
#[derive(Debug, thiserror::Error)]
pub enum CoreAccessError {
    #[error("no core was stored for this crash")]
    NotStored,
    #[error("the core is stored inside the journal entry, not in a file")]
    InJournal,
    #[error("refusing to open {path}")]
    Rejected {
        path: PathBuf,
        #[source]
        reason: PathRejection,
    },
    #[error("failed to open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl CoredumpStore {
    /// Reads cores from another directory, where cores copied from another
    /// host keep their file names.
    pub fn remapped(dir: impl Into<PathBuf>) -> CoredumpStore {
        CoredumpStore {
            dir: dir.into(),
            remapped: true,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Maps a `COREDUMP_FILENAME` to the file to open, after checking that
    /// it names a core directly inside the coredump directory.
    pub fn locate(&self, stored: &Path) -> Result<PathBuf, PathRejection> {
        if !stored.is_absolute() {
            return Err(PathRejection::NotAbsolute);
        }
        if stored
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        {
            return Err(PathRejection::OutsideStore);
        }
        if stored.parent() != Some(Path::new(DEFAULT_COREDUMP_DIR)) {
            return Err(PathRejection::OutsideStore);
        }
        let name = stored.file_name().ok_or(PathRejection::OutsideStore)?;
        if !name.as_bytes().starts_with(CORE_FILE_PREFIX.as_bytes()) {
            return Err(PathRejection::NotCoreName);
        }
        Ok(if self.remapped {
            self.dir.join(name)
        } else {
            stored.to_path_buf()
        })
    }

    /// Finds out where a record's core is, opening the file to be sure it
    /// can be read.
    pub fn state(&self, record: &CoredumpRecord) -> CoreState {
        if let Some(stored) = &record.filename {
            return match self.open(record) {
                Ok(core) => CoreState::Present {
                    path: core.path,
                    size: core.size,
                },
                Err(CoreAccessError::Rejected { path, reason }) => {
                    CoreState::Rejected { path, reason }
                }
                Err(CoreAccessError::Open { path, source }) => match source.kind() {
                    io::ErrorKind::NotFound => CoreState::Missing { path },
                    _ => CoreState::Inaccessible {
                        path,
                        reason: source.to_string(),
                    },
                },
                Err(CoreAccessError::NotStored | CoreAccessError::InJournal) => {
                    CoreState::Missing {
                        path: stored.clone(),
                    }
                }
            };
        }
        match record.inline_core_len {
            Some(len) => CoreState::Journal { len },
            None => CoreState::None,
        }
    }

    /// Opens a record's core file without following a symbolic link.
    pub fn open(&self, record: &CoredumpRecord) -> Result<StoredCore, CoreAccessError> {
        let Some(stored) = &record.filename else {
            return Err(if record.inline_core_len.is_some() {
                CoreAccessError::InJournal
            } else {
                CoreAccessError::NotStored
            });
        };
        let path = self
            .locate(stored)
            .map_err(|reason| CoreAccessError::Rejected {
                path: stored.clone(),
                reason,
            })?;
        open_regular_nofollow(&path)
    }
}

/// Opens a file for reading when it is a regular file and not a symbolic
/// link. O_NONBLOCK keeps the open from waiting for a writer when the path
/// is a FIFO, which is then rejected. It does not change reads of a
/// regular file.
pub fn open_regular_nofollow(path: &Path) -> Result<StoredCore, CoreAccessError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(file) => file,
        // O_NOFOLLOW makes open fail with ELOOP on a symbolic link.
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err(CoreAccessError::Rejected {
                path: path.to_path_buf(),
                reason: PathRejection::Symlink,
            })
        }
        Err(source) => {
            return Err(CoreAccessError::Open {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let metadata = file.metadata().map_err(|source| CoreAccessError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if !metadata.is_file() {
        return Err(CoreAccessError::Rejected {
            path: path.to_path_buf(),
            reason: PathRejection::NotRegularFile,
        });
    }
    Ok(StoredCore {
        path: path.to_path_buf(),
        file,
        size: metadata.len(),
    })
}

/// What a core's file name says about the crash: systemd-coredump names
/// files `core.COMM.UID.BOOT_ID.PID.TIMESTAMP[.EXT]`, with `.`, `/`, spaces
/// and unprintable bytes of COMM escaped as `\xNN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreFileName {
    pub comm: String,
    pub uid: u32,
    pub boot_id: String,
    pub pid: u32,
    /// Microseconds since the epoch, one-second precision.
    pub timestamp_usec: u64,
    /// `zst`, `lz4`, `xz`, or `None` for an uncompressed core.
    pub extension: Option<String>,
}

impl CoreFileName {
    /// Reads a core file name. Returns `None` for names systemd-coredump
    /// does not write.
    pub fn parse(name: &str) -> Option<CoreFileName> {
        let rest = name.strip_prefix(CORE_FILE_PREFIX)?;
        // COMM is escaped, so it holds no dot: the parts split cleanly.
        let parts: Vec<&str> = rest.split('.').collect();
        let (comm, uid, boot_id, pid, timestamp, extension) = match parts.as_slice() {
            [comm, uid, boot, pid, ts] => (*comm, *uid, *boot, *pid, *ts, None),
            [comm, uid, boot, pid, ts, ext] => (*comm, *uid, *boot, *pid, *ts, Some(*ext)),
            _ => return None,
        };
        let boot_is_id = boot_id.len() == 32 && boot_id.bytes().all(|b| b.is_ascii_hexdigit());
        if !boot_is_id {
            return None;
        }
        Some(CoreFileName {
            comm: unescape(comm)?,
            uid: uid.parse().ok()?,
            boot_id: boot_id.to_string(),
            pid: pid.parse().ok()?,
            timestamp_usec: timestamp.parse().ok()?,
            extension: extension.map(str::to_string),
        })
    }
}

/// Undoes systemd's `\xNN` escaping of a file name part.
fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'\\' {
            if bytes.get(index + 1) != Some(&b'x') {
                return None;
            }
            let hex = text.get(index + 2..index + 4)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 4;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn lossy<S: serde::Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_confines_to_the_store() {
        let store = CoredumpStore::default();
        let good = Path::new("/var/lib/systemd/coredump/core.app.0.abc.1.2.zst");
        assert_eq!(store.locate(good), Ok(good.to_path_buf()));
        for (bad, reason) in [
            ("core.app.zst", PathRejection::NotAbsolute),
            ("/etc/shadow", PathRejection::OutsideStore),
            (
                "/var/lib/systemd/coredump/../../../etc/core.x",
                PathRejection::OutsideStore,
            ),
            (
                "/var/lib/systemd/coredump/sub/core.x",
                PathRejection::OutsideStore,
            ),
            (
                "/var/lib/systemd/coredump/.#core.app.tmp",
                PathRejection::NotCoreName,
            ),
            (
                "/var/lib/systemd/coredump/passwd",
                PathRejection::NotCoreName,
            ),
        ] {
            assert_eq!(store.locate(Path::new(bad)), Err(reason), "{bad}");
        }
    }

    #[test]
    fn remapped_store_keeps_file_name() {
        let store = CoredumpStore::remapped("/srv/copied-cores");
        let stored = Path::new("/var/lib/systemd/coredump/core.app.0.abc.1.2.zst");
        assert_eq!(
            store.locate(stored),
            Ok(PathBuf::from("/srv/copied-cores/core.app.0.abc.1.2.zst"))
        );
        assert_eq!(
            store.locate(Path::new("/tmp/core.app.0.abc.1.2.zst")),
            Err(PathRejection::OutsideStore)
        );
    }

    #[test]
    fn open_refuses_symlinks_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("core.real");
        std::fs::write(&target, b"core bytes").unwrap();
        let link = dir.path().join("core.link");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        let opened = open_regular_nofollow(&target).unwrap();
        assert_eq!(opened.size, 10);
        assert_eq!(std::fs::read(opened.read_path()).unwrap(), b"core bytes");
        assert!(matches!(
            open_regular_nofollow(&link),
            Err(CoreAccessError::Rejected {
                reason: PathRejection::Symlink,
                ..
            })
        ));
        assert!(matches!(
            open_regular_nofollow(dir.path()),
            Err(CoreAccessError::Rejected {
                reason: PathRejection::NotRegularFile,
                ..
            })
        ));
        assert!(matches!(
            open_regular_nofollow(&dir.path().join("core.gone")),
            Err(CoreAccessError::Open { .. })
        ));
    }

    /// A FIFO with no writer would block a plain open forever.
    #[test]
    fn fifo_is_rejected_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("core.fifo.zst");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|status| status.success()), "mkfifo runs");
        assert!(matches!(
            open_regular_nofollow(&fifo),
            Err(CoreAccessError::Rejected {
                reason: PathRejection::NotRegularFile,
                ..
            })
        ));
    }

    #[test]
    fn state_labels_match_coredumpctl() {
        let path = PathBuf::from("/x");
        let present = CoreState::Present {
            path: path.clone(),
            size: 1,
        };
        assert_eq!(present.label(false), "present");
        assert_eq!(present.label(true), "truncated");
        assert_eq!(CoreState::Journal { len: 5 }.label(true), "truncated");
        assert_eq!(CoreState::Missing { path }.label(true), "missing");
        assert_eq!(CoreState::None.label(false), "none");
    }

    #[test]
    fn core_file_names_parse() {
        let name = "core.cgoabort.0.5c2e0aa8c0474f8facde8dcfcd702c47.18775.1796418265000000.zst";
        let parsed = CoreFileName::parse(name).unwrap();
        assert_eq!(parsed.comm, "cgoabort");
        assert_eq!(parsed.uid, 0);
        assert_eq!(parsed.boot_id, "5c2e0aa8c0474f8facde8dcfcd702c47");
        assert_eq!(parsed.pid, 18775);
        assert_eq!(parsed.timestamp_usec, 1796418265000000);
        assert_eq!(parsed.extension.as_deref(), Some("zst"));

        let escaped = "core.a\\x2eout.1000.5c2e0aa8c0474f8facde8dcfcd702c47.7.1000000";
        let parsed = CoreFileName::parse(escaped).unwrap();
        assert_eq!(parsed.comm, "a.out");
        assert_eq!(parsed.extension, None);

        assert_eq!(CoreFileName::parse("core.x.0.notaboot.1.2"), None);
        assert_eq!(CoreFileName::parse("vmcore"), None);
        assert_eq!(
            CoreFileName::parse("core.a\\y.0.5c2e0aa8c0474f8facde8dcfcd702c47.1.2"),
            None
        );
    }
}
