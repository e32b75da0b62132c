"""BuildKit's rawjson progress rendered for a job log, and the in-memory credential helper buildx calls.

The records follow buildx's `--progress=rawjson` shape (a SolveStatus per line: vertexes with digest,
name, started/completed/cached/error; logs with the vertex, base64 data); the real stream is exercised
end to end in test_buildkit.py.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from image_tagger.edges import credhelper, credrelay
from image_tagger.edges.buildlog import TAIL_LINES, BuildProgress, split_stream

T0, T1 = "2026-12-01T00:00:00.000000000Z", "2026-12-01T00:00:01.500000000Z"


def vertex(digest: str, name: str, **state: object) -> dict:
    return {"vertexes": [{"digest": digest, "name": name, **state}]}


def log(digest: str, text: str) -> dict:
    return {"logs": [{"vertex": digest, "stream": 1, "data": base64.b64encode(text.encode()).decode()}]}


def render(records: list[dict]) -> tuple[list[str], BuildProgress]:
    progress = BuildProgress()
    return [line for record in records for line in progress.feed(record)], progress


def test_steps_are_numbered_and_end_cached_done_or_in_error() -> None:
    lines, progress = render(
        [
            vertex("a", "[1/3] COPY app /app"),
            vertex("b", "[2/3] RUN make"),
            vertex("a", "[1/3] COPY app /app", cached=True, started=T0, completed=T0),
            vertex("b", "[2/3] RUN make", started=T0),
            log("b", "compiling\nlin"),
            log("b", "king\n"),
            vertex("b", "[2/3] RUN make", started=T0, completed=T1),
        ]
    )
    assert lines == [
        "#1 [1/3] COPY app /app",
        "#1 CACHED",
        "#2 [2/3] RUN make",
        "#2 compiling",
        "#2 linking",
        "#2 DONE 1.5s",
    ]
    assert progress.failure is None


def test_a_failure_names_the_step_its_error_and_its_last_lines_not_a_cancelled_sibling() -> None:
    output = "".join(f"line {n}\n" for n in range(30)) + "fatal: no space"
    lines, progress = render(
        [
            vertex("x", "[test 2/2] RUN ./check", started=T0),
            log("x", output),
            vertex("x", "[test 2/2] RUN ./check", started=T0, completed=T1, error="exit code: 3"),
            vertex("y", "[other 1/1] RUN sleep 9", started=T0, completed=T1, error="context canceled"),
        ]
    )
    assert progress.failure is not None
    assert progress.failure.step == "[test 2/2] RUN ./check"
    assert progress.failure.error == "exit code: 3"
    assert progress.failure.tail[-1] == "fatal: no space"  # the unterminated last line is not lost
    assert len(progress.failure.tail) == TAIL_LINES
    assert "#1 ERROR: exit code: 3" in lines and "#2 ERROR: context canceled" in lines
    assert str(progress.failure).startswith("step [test 2/2] RUN ./check failed: exit code: 3\nlast output:\n")


def run_helper(action: str, server: str, socket_path: Path) -> subprocess.CompletedProcess[str]:
    """The helper program as its script runs it: an empty environment but for its package's folder and its socket,
    no site packages."""
    env = {credrelay.SOCKET_ENV: str(socket_path), "PYTHONPATH": str(Path(credrelay.__file__).parents[2])}
    return subprocess.run(
        [sys.executable, "-S", "-m", credrelay.__name__, action],
        input=server,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_credential_helper_answers_only_for_its_registry(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with credhelper.serve(private, "127.0.0.1:5000", "ci-bot", "pa55") as local_socket:
        local = run_helper("get", "127.0.0.1:5000", local_socket)
        other = run_helper("get", "ghcr.io", local_socket)
        assert run_helper("store", "{}", local_socket).returncode == 0
        assert run_helper("delete-everything", "", local_socket).returncode == 2
    with credhelper.serve(private, "docker.io", "hub-user", "hub-token") as hub_socket:
        hub = run_helper("get", "https://index.docker.io/v1/", hub_socket)

    assert (local.returncode, json.loads(local.stdout)["Secret"]) == (0, "pa55")
    assert json.loads(hub.stdout)["Username"] == "hub-user"
    assert other.returncode == 1 and "pa55" not in other.stdout + other.stderr
    gone = run_helper("get", "127.0.0.1:5000", local_socket)  # the build is over: nobody answers
    assert gone.returncode == 1 and "did not answer" in gone.stdout
    (tmp_path / "open").mkdir(mode=0o755)
    with pytest.raises(PermissionError, match="private folder"), credhelper.serve(tmp_path / "open", "a", "b", "c"):
        pass


def test_the_stream_splits_compact_and_pretty_printed_records_and_plain_lines() -> None:
    """buildx 0.14+ prints one JSON object a line, Debian trixie's 0.13 pretty-prints them; errors are text."""
    records = [
        vertex("a", "[1/2] RUN make", started=T0),
        log("a", "hello\n"),
        vertex("a", "[1/2] RUN make", completed=T1),
    ]
    compact = "".join(json.dumps(r) + "\n" for r in records)
    pretty = "".join(json.dumps(r, indent=2) + "\n" for r in records)
    for text in (compact, pretty):
        stream = text + "ERROR: failed to build: exit code 2\n"
        for size in (1, 7, 4096):  # arriving in any pieces
            chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
            assert list(split_stream(chunks)) == [*records, "ERROR: failed to build: exit code 2"]
    assert list(split_stream(["no newline at the end"])) == ["no newline at the end"]
