"""A commit's facts read straight from a checkout's object store (loose or packed), with no git program.

The action's image has no git (it would cost tens of MB), and in the runner's container the checkout belongs to
another user, which git refuses ("dubious ownership"). dulwich reads the object files as they are, shallow
clones included; it is imported only when a time is wanted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_REVISION = re.compile(r"HEAD|[0-9a-f]{4,64}")


@dataclass(frozen=True)
class CommitFacts:
    """The commit's own facts that a tag and the image's times depend on."""

    sha: str
    time: int  # the committer time, as `git log --format=%ct` prints it
    parents: tuple[str, ...]


def read_commit(checkout: Path, revision: str) -> CommitFacts | None:
    """`HEAD` or a (possibly abbreviated) commit id in the repository holding `checkout`; None when it is not
    there (no repository, a shallow clone without it, any unreadable object). Anything else is never a lookup."""
    if not _REVISION.fullmatch(revision):
        return None
    from dulwich.objects import Commit
    from dulwich.objectspec import parse_commit
    from dulwich.repo import Repo

    try:
        with Repo.discover(str(checkout)) as repo:
            commit = parse_commit(repo, revision.encode())
    except Exception:  # noqa: BLE001 - no repository, a missing or corrupt object: all mean "not readable here"
        return None
    if not isinstance(commit, Commit):
        return None
    return CommitFacts(commit.id.decode(), commit.commit_time, tuple(p.decode() for p in commit.parents))
