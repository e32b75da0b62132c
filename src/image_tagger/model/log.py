"""Where a job writes its progress: the runner's log with groups, the CLI's stderr, or a quiet buffer."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
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
