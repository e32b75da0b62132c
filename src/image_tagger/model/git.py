"""The git event a run publishes for: what naming reads, parsed once from the runner or a checkout."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GitContext:
    """What was pushed and when, with where each fact came from."""

    event: str
    ref: str
    sha: str
    pr_number: int | None = None
    push_time: int | None = None
    commit_time: int | None = None
    source_url: str | None = None
    # Where the two times came from, in words for the log and summary (the event field, or the object read).
    push_time_from: str | None = None
    commit_time_from: str | None = None
    private: bool | None = None  # the event's repository.private: None when unknown (a local checkout)
