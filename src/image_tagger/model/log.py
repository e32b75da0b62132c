"""Where a job writes its progress: the runner's log with groups, the CLI's stderr, or a quiet buffer."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol


class Log(Protocol):
    def info(self, text: str) -> None: ...
    def group(self, title: str) -> AbstractContextManager[None]: ...
