"""The commit message image-automation-controller writes, for the templates this project ships.

Flux renders `spec.git.commit.messageTemplate` with Go text/template over `.AutomationObject`,
`.Changed` and `.Values`. This covers the subset such templates use: field actions, `range` over
`.Changed.Changes` and Go's `{{-`/`-}}` whitespace trimming. Anything else is refused, not guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from image_tagger.model.errors import UnsupportedTemplate

DEFAULT_MESSAGE = "Update from image update automation"
_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.DOTALL)


class Changed(Protocol):
    """A setter's change as the template sees it (`setters.Change` is one)."""

    @property
    def old(self) -> str: ...
    @property
    def new(self) -> str: ...
    @property
    def setter(self) -> str: ...


def _tokens(template: str) -> list[tuple[str, str]]:
    """Split into ("text", s) and ("action", s), applying the trim markers to the neighbouring text."""
    out: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        out += [("text", text), ("action", m.group(2))]
        pos, trim_next = m.end(), bool(m.group(3))
    tail = template[pos:]
    out.append(("text", tail.lstrip(" \t\r\n") if trim_next else tail))
    return out


def _field(action: str, scope: Mapping[str, str]) -> str:
    if action not in scope:
        raise UnsupportedTemplate(f"unsupported template action {{{{ {action} }}}}")
    return scope[action]


def render(
    template: str,
    automation: tuple[str, str],
    changes: Sequence[Changed],
    values: Mapping[str, str] | None = None,
) -> str:
    """Render like Flux; an empty template gives Flux's default message.

    Changes come in `changes` order. Flux ranges over them in Go map order (Result.Changes walks a map of
    files, each a map of objects), which is random once several files or objects change: only the set of
    rendered changes is then predictable, not their order (tests/test_differential.py compares it so).
    """
    if not template:
        return DEFAULT_MESSAGE
    # .Changed.Changes lists each (old, new, setter) once, however many lines it changed.
    unique = list(dict.fromkeys((change.old, change.new, change.setter) for change in changes))
    namespace, name = automation
    scope = {
        ".AutomationObject": f"{namespace}/{name}",
        ".AutomationObject.Name": name,
        ".AutomationObject.Namespace": namespace,
        **{f".Values.{k}": v for k, v in (values or {}).items()},
    }
    tokens = _tokens(template)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "text":
            out.append(value)
        elif value == "range .Changed.Changes":
            end = next((j for j in range(i + 1, len(tokens)) if tokens[j] == ("action", "end")), None)
            if end is None:
                raise UnsupportedTemplate("range without end")
            body = tokens[i + 1 : end]
            for old, new, setter in unique:
                inner = {".OldValue": old, ".NewValue": new, ".Setter": setter}
                out += [v if k == "text" else _field(v, inner) for k, v in body]
            i = end
        else:
            out.append(_field(value, scope))
        i += 1
    return "".join(out)
