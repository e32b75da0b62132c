"""Go `regexp` behaviour for user-written patterns (ImagePolicy filterTags, ImageRepository exclusionList).

Flux compiles those with Go's RE2 engine; Python's `re` accepts look-arounds and back-references and lets
`$` match before a trailing newline, so a pattern validated with `re` can be one Flux stalls on. google-re2
is the same engine as Go's but accepts a little more (`\\C`, duplicate and non-ASCII group names); those
extras are rejected here so that acceptance equals Go's.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from types import MappingProxyType

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
# Bounded: with 1 GiB one pathological filterTags took 46 s and 1.07 GB. 32 MiB still compiles what
# Go users write (\pL{1000}, which RE2's default 8 MiB refuses) and refuses \pL{1000}\pL{1000} in 0.2 s.
MAX_MEM = 32 << 20
_OPTIONS.max_mem = MAX_MEM
_GROUP_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class GoRegexError(ValueError):
    """A pattern Go's regexp.Compile rejects; the message follows Go's `error parsing regexp: …`."""


def _go_only_error(pattern: str) -> str | None:
    """What Go rejects that RE2 C++ accepted: `\\C`, duplicate or non-ASCII capture names.

    Only called on patterns RE2 already parsed, so escapes, classes and group syntax are well formed.
    """
    names: set[str] = set()
    i, in_class = 0, False
    while i < len(pattern):
        if pattern[i] == "\\":
            escape = pattern[i + 1 : i + 2]
            if escape == "C":
                return "invalid escape sequence: `\\C`"
            if escape == "Q" and not in_class:
                end = pattern.find("\\E", i + 2)
                i = len(pattern) if end < 0 else end + 2
                continue
            i += 2
        elif in_class:
            if pattern.startswith("[:", i) and (end := pattern.find(":]", i + 2)) >= 0:
                i = end + 2
                continue
            in_class = pattern[i] != "]"
            i += 1
        elif pattern[i] == "[":
            in_class = True
            i += 1
            i += pattern.startswith("^", i)
            i += pattern.startswith("]", i)  # a leading ] is a literal member
        elif pattern.startswith(("(?P<", "(?<"), i):
            start = pattern.index("<", i) + 1
            end = pattern.index(">", start)
            name = pattern[start:end]
            if not set(name) <= _GROUP_NAME_CHARS:
                return f"invalid named capture: `{pattern[i : end + 1]}`"
            if name in names:
                return f"duplicate capture group name: `{name}`"
            names.add(name)
            i = end + 1
        else:
            i += 1
    return None


@dataclass(frozen=True)
class GoMatch:
    """First match of a search: the subject and each group's span ((-1, -1) when it did not take part)."""

    text: str
    spans: tuple[tuple[int, int], ...]
    names: MappingProxyType[str, int]

    def group(self, index: int) -> str | None:
        start, end = self.spans[index]
        return None if start < 0 else self.text[start:end]


class GoRegexp:
    """A compiled user pattern with Go's acceptance rules and unanchored leftmost-first search."""

    def __init__(self, pattern: str) -> None:
        try:
            self._regexp = re2.compile(pattern, _OPTIONS)
        except (re2.error, UnicodeEncodeError) as err:
            detail = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
            if "pattern too large" in detail:
                detail = f"pattern too large: needs more than {MAX_MEM >> 20} MiB to compile (RE2 memory limit)"
            raise GoRegexError(f"error parsing regexp: {detail}") from None
        if problem := _go_only_error(pattern):
            raise GoRegexError(f"error parsing regexp: {problem}")
        self.pattern = pattern
        self._names = MappingProxyType(dict(self._regexp.groupindex))

    def search(self, text: str) -> GoMatch | None:
        """Go FindStringSubmatchIndex: the leftmost match, preferring what a backtracker would pick."""
        m = self._regexp.search(text)
        if m is None:
            return None
        spans = tuple(m.span(i) for i in range(self._regexp.groups + 1))
        return GoMatch(text, spans, self._names)

    def matches(self, text: str) -> bool:
        """Go MatchString: is there a match anywhere in `text`."""
        return self._regexp.search(text) is not None


def _is_name_char(ch: str) -> bool:
    """Go unicode.IsLetter / unicode.IsDigit / '_' (letters are L*, digits are Nd)."""
    category = unicodedata.category(ch)
    return ch == "_" or category[0] == "L" or category == "Nd"


def _template_ref(template: str) -> tuple[str, str] | None:
    """Parse `name`/`{name}` after a `$`; returns (name, rest) or None when the `$` is literal."""
    brace = template.startswith("{")
    body = template[1:] if brace else template
    end = 0
    while end < len(body) and _is_name_char(body[end]):
        end += 1
    if end == 0:
        return None
    if brace:
        if end >= len(body) or body[end] != "}":
            return None
        return body[:end], body[end + 1 :]
    return body[:end], body[end:]


def _group_number(name: str) -> int:
    """Go's rule: ASCII digits, no leading zero, under 1e9 (it gives up once the value reaches 1e8)."""
    if not (name.isascii() and name.isdigit()) or len(name) > 9 or (name[0] == "0" and len(name) > 1):
        return -1
    return int(name)


def go_expand(template: str, match: GoMatch) -> str:
    """Go Regexp.ExpandString: `$1`, `${1}`, `$name`, `${name}`, `$$`; unknown or unset groups give ""."""
    out: list[str] = []
    while (dollar := template.find("$")) >= 0:
        out.append(template[:dollar])
        template = template[dollar + 1 :]
        if template.startswith("$"):
            out.append("$")
            template = template[1:]
            continue
        ref = _template_ref(template)
        if ref is None:
            out.append("$")
            continue
        name, template = ref
        index = _group_number(name)
        if index < 0:
            index = match.names.get(name, -1)
        if 0 <= index < len(match.spans):
            out.append(match.group(index) or "")
    out.append(template)
    return "".join(out)
