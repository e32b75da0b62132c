"""Running git: one place for the isolated identity the tools' own commits use, and for git's environment.

git gets the allowlisted environment (childenv) and its own GIT_* settings, never this process's secrets.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from image_tagger.edges.childenv import GIT, child_env
from image_tagger.model.errors import PublishError

QUERY_TIMEOUT = 30.0  # seconds for one question to the user's checkout

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
    """One read-only question to the user's own checkout; None when git cannot answer (see `queries`)."""
    return queries(path, args)[0]


def queries(path: Path, *questions: tuple[str, ...]) -> list[str | None]:
    """Read-only questions to the user's own checkout (their config applies), each answer None when git cannot
    give it. They run side by side: git's start-up, not its work, is most of each answer's time."""
    started: list[subprocess.Popen[str] | None] = []
    for args in questions:
        try:
            started.append(
                subprocess.Popen(
                    ["git", "-C", str(path), *args],
                    env=child_env(*GIT),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
        except OSError:
            started.append(None)
    return [_answer(proc) for proc in started]


def _answer(proc: subprocess.Popen[str] | None) -> str | None:
    if proc is None:
        return None
    try:
        out, _ = proc.communicate(timeout=QUERY_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return (out.strip() or None) if proc.returncode == 0 else None
