"""BuildKit's rawjson progress rendered for a job log.

The records follow buildx's `--progress=rawjson` shape (a SolveStatus per line: vertexes with digest,
name, started/completed/cached/error; logs with the vertex, base64 data); the real stream is exercised
end to end in test_buildkit.py.
"""

from __future__ import annotations

import base64
import json

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
