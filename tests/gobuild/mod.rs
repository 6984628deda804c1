//! Builds small Go programs at test time with every Go toolchain installed
//! on the machine, for tests that compare gocrash with the Go tools.
//!
//! The toolchains are Debian's Go 1.19 at `/usr/lib/go-1.19` and the ones
//! `scripts/setup` unpacks under `/var/cache/gocrash/go/<version>/go`. Each
//! runs offline (`GOPROXY=off`, `GOTOOLCHAIN=local`) with its own build cache.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DEBIAN_GO_119: &str = "/usr/lib/go-1.19/bin/go";
const TOOLCHAIN_ROOT: &str = "/var/cache/gocrash/go";
const CACHE_ROOT: &str = "/var/cache/gocrash/gocache";

/// One installed Go toolchain.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The release, such as `1.21.13`.
    pub version: String,
    pub go: PathBuf,
}

impl Toolchain {
    /// Returns the minor release number (21 for `1.21.13`).
    pub fn minor(&self) -> u32 {
        self.version
            .split('.')
            .nth(1)
            .and_then(|minor| minor.parse().ok())
            .unwrap_or(0)
    }

    /// Returns a `go` command that runs offline with this toolchain's own
    /// build cache, in `dir`.
    pub fn command(&self, dir: &Path) -> Command {
        let mut command = Command::new(&self.go);
        command
            .current_dir(dir)
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOCACHE", Path::new(CACHE_ROOT).join(&self.version))
            .env_remove("GOROOT")
            .env_remove("GOPATH");
        trust_every_directory(&mut command);
        command
    }

    /// Builds the main package in `dir` into `output` with extra `go build`
    /// arguments and environment, and panics with the go command's output
    /// when the build fails.
    pub fn build(&self, dir: &Path, output: &Path, args: &[&str], env: &[(&str, &str)]) {
        let mut command = self.command(dir);
        command.arg("build").arg("-o").arg(output).args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let result = command
            .output()
            .unwrap_or_else(|err| panic!("{}: cannot run: {err}", self.go.display()));
        assert!(
            result.status.success(),
            "go {} build {args:?} {env:?} failed:\n{}",
            self.version,
            String::from_utf8_lossy(&result.stderr)
        );
    }

    /// Runs `go <args>` on a built binary and returns its output.
    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir)
            .args(args)
            .output()
            .unwrap_or_else(|err| panic!("{}: cannot run: {err}", self.go.display()))
    }
}

/// Lets git (run by the go command to stamp `vcs.*` settings) read
/// repositories owned by another user, such as a temporary directory.
pub fn trust_every_directory(command: &mut Command) {
    command
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*");
}

/// Returns every installed toolchain, oldest first.
pub fn installed() -> Vec<Toolchain> {
    let mut toolchains = Vec::new();
    if Path::new(DEBIAN_GO_119).exists() {
        toolchains.push(Toolchain {
            version: "1.19.8".to_owned(),
            go: PathBuf::from(DEBIAN_GO_119),
        });
    }
    if let Ok(entries) = std::fs::read_dir(TOOLCHAIN_ROOT) {
        for entry in entries.flatten() {
            let version = entry.file_name().to_string_lossy().into_owned();
            let go = entry.path().join("go/bin/go");
            if go.exists() {
                toolchains.push(Toolchain { version, go });
            }
        }
    }
    toolchains.sort_by_key(|toolchain| {
        toolchain
            .version
            .split('.')
            .map(|part| part.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    toolchains
}

/// Returns the installed toolchains, or `None` after saying why on stderr
/// when there is none. Under `CI=true` a missing toolchain fails the test.
pub fn installed_or_skip() -> Option<Vec<Toolchain>> {
    let toolchains = installed();
    if !toolchains.is_empty() {
        return Some(toolchains);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("no Go toolchain at {DEBIAN_GO_119} or under {TOOLCHAIN_ROOT}; run scripts/setup");
    }
    eprintln!(
        "skipped: no Go toolchain at {DEBIAN_GO_119} or under {TOOLCHAIN_ROOT}; run scripts/setup"
    );
    None
}

/// Writes `files` (path relative to `dir`, contents) into `dir`.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, contents) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create source directory");
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
    }
}

/// Runs git in `dir` with a fixed identity, and panics when it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .args([
            "-c",
            "user.name=gocrash tests",
            "-c",
            "user.email=tests@gocrash.invalid",
        ])
        .args(args);
    trust_every_directory(&mut command);
    let output = command.output().expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns the GNU build ID `readelf -n` shows for `binary`, if any.
pub fn readelf_gnu_build_id(binary: &Path) -> Option<String> {
    let output = Command::new("readelf")
        .arg("-n")
        .arg(binary)
        .output()
        .expect("readelf runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.trim().strip_prefix("Build ID: ").map(str::to_owned))
}
