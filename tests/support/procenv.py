"""What each process a run starts holds in its environment: `/proc/<pid>/environ` of every descendant, and
what its file descriptors point at.

A sampler thread walks /proc (this kernel has no `/proc/<pid>/task/*/children`) every millisecond or
so, follows parent pids from the run's own pid, and keeps every distinct (command line, environment) a
descendant showed; a process that exec's (a shell script exec'ing env -i, then Python) shows each stage.
A short-lived command (git answers in a few milliseconds) may slip between two polls, so `recording_wrapper`
puts a script in front of it that copies its own environ to a file, then exec's the real command.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One process stage: its argv and its environment as the kernel holds them."""

    pid: int
    argv: tuple[str, ...]
    environ: tuple[tuple[str, str], ...]
    fds: tuple[str, ...] = ()  # what its open file descriptors point at (`memfd:NAME (deleted)` for a memfd)

    @property
    def env(self) -> dict[str, str]:
        return dict(self.environ)

    def holding(self, value: str) -> list[str]:
        """Names of the variables whose value contains `value`."""
        return [name for name, text in self.environ if value in text]


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _open_files(pid: int) -> tuple[str, ...]:
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return ()
    targets = []
    for name in names:
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            continue
    return tuple(sorted(targets))


def _parse_environ(raw: bytes) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in raw.split(b"\0"):
        if item:
            name, _, value = item.decode(errors="replace").partition("=")
            pairs.append((name, value))
    return tuple(pairs)


class EnvironSampler(threading.Thread):
    """Samples the environment of every descendant of `root` until `stop()`."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.samples: set[Sample] = set()
        self._parents: dict[int, int] = {}
        self._halt = threading.Event()

    def _parent(self, pid: int) -> int:
        if pid not in self._parents:
            stat = _read(f"/proc/{pid}/stat") or b""
            fields = stat[stat.rfind(b")") + 2 :].split()  # the command name may hold spaces and parentheses
            self._parents[pid] = int(fields[1]) if len(fields) > 1 else 0
        return self._parents[pid]

    def _descendants(self) -> list[int]:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        found = {self.root}
        changed = True
        while changed:
            changed = False
            for pid in pids:
                if pid not in found and self._parent(pid) in found:
                    found.add(pid)
                    changed = True
        found.discard(self.root)
        return sorted(found)

    def run(self) -> None:
        while not self._halt.is_set():
            for pid in self._descendants():
                before = _read(f"/proc/{pid}/cmdline")
                environ = _read(f"/proc/{pid}/environ")
                fds = _open_files(pid)
                if before and environ is not None and _read(f"/proc/{pid}/cmdline") == before:  # no exec between
                    argv = tuple(part.decode(errors="replace") for part in before.split(b"\0") if part)
                    self.samples.add(Sample(pid, argv, _parse_environ(environ), fds))
            self._halt.wait(0.001)

    def stop(self) -> set[Sample]:
        self._halt.set()
        self.join(timeout=10)
        return self.samples


def recording_wrapper(bin_dir: Path, records: Path, command: str) -> None:
    """`bin_dir/command`: saves its own environ under `records`, then exec's the real `command`."""
    real = shutil.which(command)
    assert real, f"{command} is not installed"
    bin_dir.mkdir(parents=True, exist_ok=True)
    records.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / command
    wrapper.write_text(f'#!/bin/sh\ncat /proc/$$/environ > "{records}/{command}.$$"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)


def recorded(records: Path) -> list[Sample]:
    """What the recording wrappers saved, as samples named after the command."""
    return [Sample(int(path.suffix[1:]), (path.stem,), _parse_environ(path.read_bytes())) for path in records.iterdir()]
