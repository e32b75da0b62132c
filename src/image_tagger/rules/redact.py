"""What may reach a log, an output or a summary: one redaction of this run's secrets, and text that forges nothing.

A server may echo a credential back in any form it saw it in (an error quoting the request's
`Authorization: Basic <base64>`, a URL with `user:password@`, a JSON body), so a `Redactor` knows each
secret in those forms and replaces every occurrence, overlapping ones included, with `[redacted]`.

Text from outside (registry tag names, API answers, daemon and BuildKit output, input values) must
never begin a workflow command (`::name::`, or the legacy `##[name]`) nor drive a terminal: `one_line`
escapes control characters visibly (`\\n`, `\\x1b`) and defuses a line that would start a command.

`SafeStream` applies both to every complete line written to a stream: one place per sink.
"""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

from image_tagger.model.inputspec import InputSpec, Mask

REDACTED = "[redacted]"
_SECRET_WORDS_RE = re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]{4,}")
# C0 and C1 controls (tab aside), line and paragraph separators, bidirectional overrides.
_CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}
COMMAND_STARTS = ("::", "##[")
# What urllib.parse.quote never escapes. Our own two lines instead of urllib.parse, which with ipaddress costs some
# 2 ms before every build (issue 17); tests/test_redact.py holds url_forms to urllib's answers.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def url_forms(value: str) -> tuple[str, str]:
    """`value` as urllib.parse's quote(value, safe="") and quote_plus(value) write it (UTF-8, `%XX`)."""
    quoted = "".join(chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in value.encode())
    return quoted, quoted.replace("%20", "+")  # a "%" itself is "%25": "%20" can only be a space


class Redactor:
    """Every credential and secret one run holds, in the forms a server may echo it; call it on text."""

    def __init__(self) -> None:
        self._forms: dict[str, None] = {}  # insertion-ordered set: the raw values come first, then derived forms

    def add_secret(self, value: str) -> None:
        """A secret value: each non-blank line on its own (as the runner masks), also URL- and JSON-escaped."""
        for line in value.splitlines():
            if line.strip():
                self._add(line.strip(), *url_forms(line.strip()))

    def add_build_secrets(self, text: str) -> None:
        """Build secrets as given (`id=value` per line): each value; a line that is not `id=value` may be a
        pasted secret itself, so it is taken whole."""
        for line in text.splitlines():
            _, sep, value = line.partition("=")
            self.add_secret(value if sep else line)

    def add_login(self, username: str, password: str) -> None:
        """A registry login: the password, `user:password`, its base64 (standard, URL-safe, with and without
        padding) and URL-encoded forms."""
        if not password:
            return
        self.add_secret(password)
        if not username:
            return
        pair = f"{username}:{password}"
        encoded = [base64.b64encode(pair.encode()).decode(), base64.urlsafe_b64encode(pair.encode()).decode()]
        self._add(pair, *url_forms(pair), *encoded, *(e.rstrip("=") for e in encoded))

    def add_inputs(self, specs: tuple[InputSpec, ...], raw: Mapping[str, str]) -> None:
        """Every input declared secret, from the raw inputs as given (so even a refused value is redacted)."""
        for spec in specs:
            value = raw.get(spec.name, "")
            if spec.secret is Mask.LOGIN:
                self.add_login(raw.get(spec.user, "").strip(), value)
            elif spec.secret is Mask.ID_VALUES:
                self.add_build_secrets(value)
            elif spec.secret is Mask.LINES:
                self.add_secret(value)

    def _add(self, *forms: str) -> None:
        for form in forms:
            for variant in (form, json.dumps(form)[1:-1]):  # as it appears inside a JSON string
                if variant:
                    self._forms[variant] = None

    @property
    def values(self) -> list[str]:
        """Every form, raw values first: what the action also registers as masks with the runner."""
        return list(self._forms)

    def __call__(self, text: str) -> str:
        """`text` with every known form replaced, and `Basic <x>` / `Bearer <x>` credentials too."""
        covered: list[tuple[int, int]] = []
        for form in self._forms:
            start = text.find(form)
            while start >= 0:
                covered.append((start, start + len(form)))
                start = text.find(form, start + 1)
        if covered:
            pieces, last = [], 0
            for start, end in _merged(covered):
                pieces += [text[last:start], REDACTED]
                last = end
            text = "".join(pieces) + text[last:]
        return _SECRET_WORDS_RE.sub(lambda m: f"{m[1]} {REDACTED}", text)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans as one: a secret that overlaps another is hidden whole."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def escape_controls(text: str, keep: str = "") -> str:
    """Control characters (but tab and those in `keep`) as visible escapes: `\\n`, `\\x1b`, `\\u2028`."""

    def visible(match: re.Match[str]) -> str:
        char = match[0]
        if char in keep:
            return char
        return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")

    return _CONTROL_RE.sub(visible, text)


def is_one_line(text: str) -> bool:
    """No line break, tab or other control character: what a name, a tag or a username may hold."""
    return "\t" not in text and not _CONTROL_RE.search(text)


def one_line(text: str) -> str:
    """Outside data fit to print as (part of) one log line: controls escaped, no command at its start."""
    text = escape_controls(text)
    body = text.lstrip()
    if body.startswith(COMMAND_STARTS):
        lead = len(text) - len(body)
        text = f"{text[:lead]}\\x{ord(body[0]):02x}{body[1:]}"
    return text


def safe_lines(text: str) -> str:
    """Several lines of outside data: each line on its own through `one_line` (`\\r\\n` ends a line too)."""
    return "\n".join(one_line(line.removesuffix("\r")) for line in text.split("\n"))


class SafeStream(io.TextIOBase):
    """A text stream whose every complete line is cleaned (redacted, made safe) before `raw` sees it.

    A partial line waits for its end (or `finish`), so a secret split across two writes is still found.
    `command` writes one line of our own workflow commands past the cleaning.
    """

    def __init__(self, raw: TextIO, clean: Callable[[str], str]) -> None:
        super().__init__()
        self.raw = raw
        self.clean = clean
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *complete, self._pending = (self._pending + text).split("\n")
        for line in complete:
            self.raw.write(self.clean(line) + "\n")
        return len(text)

    def flush(self) -> None:
        if not self.raw.closed:
            self.raw.flush()

    def finish(self) -> None:
        """Write what is left of an unfinished last line."""
        if self._pending:
            self.raw.write(self.clean(self._pending))
            self._pending = ""
        self.raw.flush()

    def command(self, line: str) -> None:
        """One line of our own (a workflow command), at the start of a line, not cleaned."""
        if self._pending:
            self.raw.write(self.clean(self._pending) + "\n")
            self._pending = ""
        self.raw.write(line + "\n")
        self.raw.flush()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.raw, "encoding", "utf-8")


@contextmanager
def guarded(redactor: Redactor, *names: str) -> Iterator[dict[str, SafeStream]]:
    """`sys.stdout` and/or `sys.stderr` (by name) as SafeStreams for the duration: redacted, then made safe."""
    streams = {name: SafeStream(getattr(sys, name), lambda line: safe_lines(redactor(line))) for name in names}
    for name, stream in streams.items():
        setattr(sys, name, stream)
    try:
        yield streams
    finally:
        for name, stream in streams.items():
            stream.finish()
            setattr(sys, name, stream.raw)
