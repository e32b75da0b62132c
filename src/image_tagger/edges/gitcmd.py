"""Running git: one place for the isolated identity the tools' own commits use, and for git's environment.

git gets the allowlisted environment (childenv) and its own GIT_* settings, never this process's secrets.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from image_tagger.edges.childenv import GIT, child_env
from image_tagger.model.errors import PublishError

# Commits made by the tools (demo repos, the served Flux base) must not depend on, or be refused by,
# the caller's git identity and config.
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "flux-ci-cd",
    "GIT_AUTHOR_EMAIL": "flux-ci-cd@example.invalid",
    "GIT_COMMITTER_NAME": "flux-ci-cd",
    "GIT_COMMITTER_EMAIL": "flux-ci-cd@example.invalid",
}


def git(cwd: Path, *args: str, when: int | None = None, identity: tuple[str, str] | None = None) -> str:
    """Run git in `cwd` as the tools (or `identity`: name, email); `when` fixes the commit time (Unix seconds)."""
    env = child_env(*GIT, values=GIT_ENV)
    if identity is not None:
        name, email = identity
        env |= {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": name}
        env |= {"GIT_COMMITTER_EMAIL": email}
    if when is not None:
        env |= {"GIT_AUTHOR_DATE": f"@{when} +0000", "GIT_COMMITTER_DATE": f"@{when} +0000"}
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise PublishError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}")
    return done.stdout.strip()


def query(path: Path, *args: str) -> str | None:
    """A read-only question to the user's own checkout (their config applies); None when git cannot answer."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), *args], env=child_env(*GIT), capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
