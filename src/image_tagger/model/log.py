"""Where a job writes its progress: the runner's log with groups, the CLI's stderr, a quiet buffer, or a log held
back until the job knows it may show it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol


class Log(Protocol):
    def info(self, text: str) -> None: ...
    def group(self, title: str) -> AbstractContextManager[None]: ...


class KeptLog:
    """Keeps the lines instead of showing them: the demo prints them only when a step fails (its timeline is
    what it shows), and the fast tests read them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)

    def group(self, title: str) -> AbstractContextManager[None]:
        self.lines.append(f"== {title}")
        return nullcontext()


class HeldLog:
    """Holds a job's lines (and groups) back until `release()`, from any thread, then writes through to `log`; lines
    never released are never shown. A signed job opens its key beside the build: a key that cannot be used is bad
    input, answered with one line (exit 2), not with a build log that stops halfway."""

    def __init__(self, log: Log) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._held: list[tuple[str, str]] | None = []  # ("info" | "group" | "end", text), until released
        self._open: list[AbstractContextManager[None]] = []  # the groups entered on `log`, innermost last

    def info(self, text: str) -> None:
        self._event("info", text)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self._event("group", title)
        try:
            yield
        finally:
            self._event("end", title)

    def release(self) -> None:
        """Write what was held, and everything from now on, to `log`."""
        with self._lock:
            held, self._held = self._held or [], None
            for kind, text in held:
                self._write(kind, text)

    def _event(self, kind: str, text: str) -> None:
        with self._lock:
            if self._held is None:
                self._write(kind, text)
            else:
                self._held.append((kind, text))

    def _write(self, kind: str, text: str) -> None:
        if kind == "info":
            self._log.info(text)
        elif kind == "group":
            group = self._log.group(text)
            group.__enter__()
            self._open.append(group)
        else:
            self._open.pop().__exit__(None, None, None)
