"""The environment of every process we start: an allowlist of what that child needs, never ours minus a denylist.

This process may hold the registry password (IMAGE_TAGGER_PASSWORD, or INPUT_PASSWORD in the action),
build secrets (INPUT_SECRETS), the receiver secret and whatever else the caller's environment carries;
an environment is readable by any process of the same user, so a child gets none of it unless it is
named here. BASE is what any program needs to run as the user asked (where programs and home are, the
language, temporary files, the network's proxies and CA certificates); each edge adds what its program
reads, and sets what it must hand over itself (`values`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

# A name ending in `*` is a prefix.
BASE = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
# Which daemon, and how to reach it: what the docker CLI and buildx read.
DOCKER = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_API_VERSION")
# git's own settings (GIT_CONFIG_*, GIT_SSH_COMMAND, GIT_ASKPASS, ...), where its user config lives and the
# ssh agent for ssh remotes; kustomize fetches remote bases with git.
GIT = ("GIT_*", "XDG_CONFIG_HOME", "SSH_AUTH_SOCK")


def _allowed(name: str, allowlist: Iterable[str]) -> bool:
    return any(name.startswith(entry[:-1]) if entry.endswith("*") else name == entry for entry in allowlist)


def child_env(
    *needs: str, values: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`environ`'s (default os.environ's) variables named by BASE or `needs`, then `values` on top."""
    source = os.environ if environ is None else environ
    allowlist = (*BASE, *needs)
    return {name: value for name, value in source.items() if _allowed(name, allowlist)} | dict(values or {})


def on_path(name: str) -> str | None:
    """`name` in the first PATH folder that has it executable, as shutil.which finds it: shutil (with the
    compression modules it imports) and tempfile cost some 3 ms before the build (issue 17)."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None
