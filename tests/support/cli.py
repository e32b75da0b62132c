"""`image-tagger` run as a user runs it: a real process, its exit code, stdout and stderr."""

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`python -m image_tagger ARGS`, without the GITHUB_* environment of a CI job running these tests."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return subprocess.run(
        [sys.executable, "-m", "image_tagger", *args],
        env={**clean, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def explain(done: subprocess.CompletedProcess[str]) -> str:
    """Assertion context: exit code and both streams."""
    return f"rc={done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"


def assert_input_error(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    """The CLI's bad-input contract: exit code 2, nothing on stdout, one stderr line naming `parts`."""
    assert done.returncode == 2, explain(done)
    assert done.stdout == "", explain(done)
    assert len(done.stderr.splitlines()) == 1, explain(done)
    for part in parts:
        assert part in done.stderr, explain(done)
