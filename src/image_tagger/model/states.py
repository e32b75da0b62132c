"""Every state and mode the job names, as StrEnums: JSON, outputs and summaries keep the same strings, and a
typo is a NameError at import instead of a state nobody checks for."""

from __future__ import annotations

from enum import StrEnum


class TagState(StrEnum):
    """What one tag of the plan is after the run."""

    PUSHED = "pushed"
    PROMOTED = "promoted"  # the release tag names a branch build's manifest (a registry-side copy, no build)
    ALREADY_PUBLISHED = "already-published"  # the release tag already named this commit's image
    BUILT = "built"  # built and not pushed (push: false, or a pull request)
    FAILED = "failed"
    NOT_PUSHED = "not pushed"  # a tag the run did not reach (an earlier one failed)


# The states in which the tag names this run's image in the registry.
IN_REGISTRY = (TagState.PUSHED, TagState.PROMOTED, TagState.ALREADY_PUBLISHED)


class PlanKind(StrEnum):
    """What the git ref is, and so how its tags are named."""

    RELEASE = "release"
    BRANCH = "branch"
    PULL_REQUEST = "pull_request"


class Builder(StrEnum):
    BUILDKIT = "buildkit"
    LEGACY = "legacy"


class ProvenanceMode(StrEnum):
    """SLSA provenance with the image: `auto` is max for public repositories and min for others (or unknown)."""

    AUTO = "auto"
    MAX = "max"
    MIN = "min"
    FALSE = "false"


class PushMode(StrEnum):
    """`auto` pushes branches and releases, not pull requests."""

    AUTO = "auto"
    TRUE = "true"
    FALSE = "false"


class PromoteMode(StrEnum):
    """`auto` points a release at this commit's branch build when the registry has one."""

    AUTO = "auto"
    NEVER = "never"
