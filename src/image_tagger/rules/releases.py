"""What a release may do to the registry: pure decisions, no I/O.

A release tag names one commit forever. Before anything is pushed under it, the registry's current
image for that tag (if any) is compared by the commit in its `org.opencontainers.image.revision`
label: the same commit is already published (nothing to do), another commit is refused unless
overwriting was asked for. A release whose commit already has a branch build in the registry is
promoted: the release tag is pointed at that very manifest, so production runs the bytes staging ran.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from image_tagger.model.errors import PublishError, ReleaseLost

REVISION = "org.opencontainers.image.revision"
VERSION = "org.opencontainers.image.version"
# A promoted release's own version travels as an OCI referrer of the image (an artifact whose subject is the
# image's manifest): the image, its labels and its digest stay the branch build's.
RELEASE_ARTIFACT = "application/vnd.flux-ci-cd.release.v1+json"
# `<branch>-<sha>-<unix-seconds>` as the naming contract writes branch builds (pull requests are `pr-…`).
# Compiled on first use (a release that may promote), not before every build (issue 17).
_PULL_REQUEST = r"pr-[0-9]+"
_BRANCH_BUILD = r"(?P<branch>[a-z0-9_.-]+)-(?P<sha>[0-9a-f]{4,40})-(?P<ts>[0-9]{1,10})"


@dataclass(frozen=True)
class Existing:
    """What the registry holds under a tag: its manifest digest and the commit its config names."""

    tag: str
    digest: str
    revision: str | None
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)


def already_published(existing: Existing | None, sha: str, overwrite: bool) -> bool:
    """True when the release tag names this commit already, False when it may be pushed; raises PublishError
    when another commit holds it."""
    if existing is None:
        return False
    if existing.revision and existing.revision.lower() == sha.lower():
        return True
    if overwrite:
        return False
    raise PublishError(
        f"release tag {existing.tag} already names {_commit(existing)} ({existing.digest}), not this commit "
        f"{sha[:12]}; release tags are immutable: publish a new version, or set overwrite-releases: true to replace it"
    )


def check_holder(tag: str, existing: Existing | None, sha: str, when: str) -> None:
    """After this run pushed `tag`: it must still name `sha`, else a concurrent release replaced ours (ReleaseLost)."""
    if existing is None:
        raise PublishError(f"release tag {tag} is gone from the registry {when}; something deleted it")
    if existing.revision and existing.revision.lower() == sha.lower():
        return
    raise ReleaseLost(
        f"release tag {tag} names {_commit(existing)} ({existing.digest}), not this commit {sha[:12]}: a run of "
        f"that commit released the same version at the same time and replaced ours {when}; the release is theirs"
    )


def _commit(existing: Existing) -> str:
    return existing.revision[:12] if existing.revision else "an unknown commit (no revision label)"


def branch_build_candidates(tags: Iterable[str], sha: str) -> list[str]:
    """Branch-build tags whose short sha is a prefix of `sha`, newest timestamp first (labels decide later)."""
    found = []
    for tag in tags:
        match = re.fullmatch(_BRANCH_BUILD, tag)
        if match and not re.fullmatch(_PULL_REQUEST, match["branch"]) and sha.lower().startswith(match["sha"]):
            found.append((int(match["ts"]), tag))
    return [tag for _, tag in sorted(found, reverse=True)]


def release_annotations(version: str, revision: str) -> dict[str, str]:
    """What the release's referrer says: the same keys the image's labels use, with the release's values."""
    return {VERSION: version, REVISION: revision}
