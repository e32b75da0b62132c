"""The setter-marked values of a tree of manifests, read with the same marker rules Flux applies.

`image_tagger.fluxrules.setters.plan_updates` finds every marker Flux would honour; run with a sentinel value for
each policy the files name, each marked field shows up as a change whose `old` is the value in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from image_tagger.fluxrules import files
from image_tagger.fluxrules.setters import ImageRef, plan_updates

_MARKER = re.compile(r'"\$imagepolicy"\s*:\s*"([^"]*)"')
_POLICY_KEY = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
# Never a real value: every marked field differs from it, so every one is reported.
_SENTINEL = ImageRef("pull-request.invalid/flux-ci-cd-probe", "probe")


@dataclass(frozen=True)
class Marked:
    """One marked field: the file (relative to the tree), the setter (`ns:policy[:field]`), its value and line."""

    path: str
    setter: str
    value: str
    line: int

    @property
    def policy(self) -> str:
        return ":".join(self.setter.split(":")[:2])

    @property
    def field(self) -> str:
        parts = self.setter.split(":")
        return parts[2] if len(parts) > 2 else ""


def policy_keys(root: Path) -> set[str]:
    """`ns:policy` of every marker in the manifests under `root` (a cheap scan before the exact reading)."""
    keys: set[str] = set()
    for candidate in files.walk(root.resolve(), []):
        data, _ = files.read_regular(candidate.real, files.MAX_FILE_BYTES)
        if data and b'"$imagepolicy"' in data:
            for setter in _MARKER.findall(data.decode("utf-8", "replace")):
                key = ":".join(setter.split(":")[:2])
                if _POLICY_KEY.fullmatch(key):
                    keys.add(key)
    return keys


def marked_values(root: Path, keys: set[str] | None = None) -> list[Marked]:
    """Every field under `root` that a marker naming one of `keys` (default: all found) makes Flux rewrite."""
    keys = policy_keys(root) if keys is None else keys
    if not keys:
        return []
    updates = plan_updates(root, {key: _SENTINEL for key in sorted(keys)})
    return [Marked(u.path, c.setter, c.old, c.line) for u in updates for c in u.changes]


def image_name_beside(text: str, line: int) -> str:
    """For a `:tag`/`:digest` marker on `line` (1-based) of a kustomize `images:` entry: its newName, else name."""
    try:
        documents = list(YAML(typ="rt", pure=True).load_all(text))
    except YAMLError:
        return ""
    for mapping in _mappings(documents):
        for key in mapping:
            position = mapping.lc.value(key)
            if position and position[0] + 1 == line:
                name = mapping.get("newName") or mapping.get("name")
                return name if isinstance(name, str) else ""
    return ""


def _mappings(node: object) -> Iterator[CommentedMap]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, CommentedMap):
            yield current
            stack.extend(current.values())
        elif isinstance(current, CommentedSeq | list):
            stack.extend(current)
