"""The ImagePolicy specs this project ships in `flux/`, as data, so tools can evaluate them offline."""

from __future__ import annotations

import re
from typing import Any

RELEASE_PATTERN = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"


def release_policy(major: int) -> dict[str, Any]:
    """Follow one major: every new M.x.y release, never M+1, never a prerelease or a branch build."""
    return {
        "policy": {"semver": {"range": f"{major}.x"}},  # Masterminds: >=M.0.0 <M+1.0.0, no prereleases
        "filterTags": {"pattern": RELEASE_PATTERN},
    }


def branch_policy(branch: str = "main") -> dict[str, Any]:
    """Follow the newest build of one branch, ordered by the Unix timestamp at the end of its tag."""
    return {
        "policy": {"numerical": {"order": "asc"}},
        "filterTags": {"pattern": f"^{re.escape(branch)}-[a-f0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"},
    }
