"""The ImagePolicy specs this project ships in `flux/`, as data, so tools can evaluate them offline.

tests/test_kustomize_render.py checks that the rendered base says exactly this.
"""

from __future__ import annotations

from typing import Any

RELEASE_PATTERN = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"


def release_policy(major: int) -> dict[str, Any]:
    """Follow one major: every new M.x.y release, never M+1, never a prerelease or a branch build; pinned to the
    digest the release had when Flux selected it."""
    return {
        "policy": {"semver": {"range": f"{major}.x"}},  # Masterminds: >=M.0.0 <M+1.0.0, no prereleases
        "filterTags": {"pattern": RELEASE_PATTERN},
        "digestReflectionPolicy": "IfNotPresent",
    }


def branch_policy() -> dict[str, Any]:
    """Follow the newest main build, ordered by the Unix timestamp at the end of its tag."""
    return {
        "policy": {"numerical": {"order": "asc"}},
        "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"},
    }
