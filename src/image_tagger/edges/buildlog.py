"""BuildKit's progress stream (buildx `--progress=rawjson`) as lines a person reads in a job log.

Pure: feed it decoded JSON records, get lines back. Steps are numbered in order of appearance like
buildx's plain output (`#5 [2/3] RUN make`), RUN output is prefixed with its step, and each step ends
with CACHED, DONE or ERROR. It remembers each step's last output lines, so a failed build is reported
as the failing step, its error and what it printed last.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TAIL_LINES = 12
MAX_RECORD = 16 << 20  # a "record" longer than this is not one: its text is passed on as plain lines
# The exporter's progress lines that name what it wrote, in the order an image id is taken from them.
_IMAGE_IDS = ("writing image", "exporting manifest list", "exporting config")
_EXPORTED = re.compile(rf"({'|'.join(_IMAGE_IDS)}) (sha256:[0-9a-f]{{64}})")


@dataclass
class _Step:
    number: int
    name: str
    started: str | None = None
    done: bool = False
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    partial: str = ""


@dataclass(frozen=True)
class StepFailure:
    step: str
    error: str
    tail: tuple[str, ...]

    def __str__(self) -> str:
        shown = "\n".join(self.tail)
        return f"step {self.step} failed: {self.error}" + (f"\nlast output:\n{shown}" if shown else "")


def _seconds(started: str | None, completed: str | None) -> str:
    try:
        span = datetime.fromisoformat(completed or "") - datetime.fromisoformat(started or "")
    except ValueError:
        return ""
    return f" {span.total_seconds():.1f}s"


def split_stream(chunks: Iterable[str]) -> Iterator[dict[str, Any] | str]:
    """buildx's output as JSON records and plain text lines.

    buildx prints one compact JSON object per line (0.14 and later) or pretty-printed objects over
    many lines (0.13, as Debian trixie ships it); its own errors are plain lines in between.
    """
    decoder = json.JSONDecoder()
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        while buffer := buffer.lstrip():
            if buffer[0] == "{" and len(buffer) < MAX_RECORD:
                try:
                    record, end = decoder.raw_decode(buffer)
                except ValueError:
                    break  # the object goes on in the next chunk
                buffer = buffer[end:]
                if isinstance(record, dict):
                    yield record
                continue
            line, newline, rest = buffer.partition("\n")
            if not newline:
                break
            yield line
            buffer = rest
    yield from (line for line in buffer.splitlines() if line.strip())


class BuildProgress:
    """Turns SolveStatus records into log lines and keeps what a failure report needs: the step that failed, and the
    image the exporter wrote (`image_id`), which tells a failed push of a built image from a failed build."""

    def __init__(self) -> None:
        self._steps: dict[str, _Step] = {}
        self.failure: StepFailure | None = None
        self._exported: dict[str, str] = {}

    @property
    def image_id(self) -> str:
        """The image id as the exporter named it: the daemon's image (classic store), the index of a multi-platform
        image, else the single image's config (containerd store); "" before the export."""
        return next((self._exported[kind] for kind in _IMAGE_IDS if kind in self._exported), "")

    def _step(self, digest: str, name: str = "") -> _Step:
        step = self._steps.get(digest)
        if step is None:
            step = self._steps[digest] = _Step(len(self._steps) + 1, name)
        elif name and not step.name:
            step.name = name
        return step

    def feed(self, record: dict[str, Any]) -> list[str]:
        lines: list[str] = []
        for vertex in record.get("vertexes") or []:
            lines += self._vertex(vertex)
        for entry in record.get("logs") or []:
            lines += self._log(entry)
        for warning in record.get("warnings") or []:
            lines += self._warning(warning)
        for status in record.get("statuses") or []:
            if exported := _EXPORTED.fullmatch(str(status.get("id", ""))):
                self._exported[exported[1]] = exported[2]
        return lines

    def _vertex(self, vertex: dict[str, Any]) -> list[str]:
        step = self._step(str(vertex.get("digest", "")), str(vertex.get("name", "")))
        lines: list[str] = []
        if vertex.get("started") and step.started is None:
            step.started = vertex["started"]
            lines.append(f"#{step.number} {step.name}")
        if step.done:
            return lines
        if vertex.get("cached"):
            step.done = True
            lines.append(f"#{step.number} CACHED {step.name}" if step.started is None else f"#{step.number} CACHED")
        elif vertex.get("error"):
            step.done = True
            lines += self._flush(step)
            lines.append(f"#{step.number} ERROR: {vertex['error']}")
            # A cancelled sibling is a consequence: report the step that failed first.
            if self.failure is None and "context canceled" not in vertex["error"]:
                self.failure = StepFailure(step.name, str(vertex["error"]), tuple(step.tail))
        elif vertex.get("completed"):
            step.done = True
            lines += self._flush(step)
            lines.append(f"#{step.number} DONE{_seconds(step.started, vertex['completed'])}")
        return lines

    def _log(self, entry: dict[str, Any]) -> list[str]:
        step = self._step(str(entry.get("vertex", "")))
        try:
            text = base64.b64decode(entry.get("data") or "").decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return []
        *complete, step.partial = (step.partial + text).split("\n")
        return [self._output(step, line) for line in complete]

    def _flush(self, step: _Step) -> list[str]:
        if not step.partial:
            return []
        line, step.partial = step.partial, ""
        return [self._output(step, line)]

    def _output(self, step: _Step, line: str) -> str:
        line = line.rstrip("\r")
        step.tail.append(line)
        return f"#{step.number} {line}"

    def _warning(self, warning: dict[str, Any]) -> list[str]:
        try:
            text = base64.b64decode(warning.get("short") or "").decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return []
        return [f"WARNING: {text}"] if text else []
