"""Edits of block lists in hand-written YAML (kustomization files, JSON6902 patch files) that keep every other byte.

ruamel.yaml's round-trip loader says where the list and each of its items start; an edit then inserts or
removes whole lines, so comments, quoting, indentation and blank lines elsewhere stay exactly as they were,
and removing what an insertion added gives back the original bytes. Every edit is checked by loading the
result: it must be the old data with exactly that item added or removed, or the edit is refused.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML, YAMLError

from image_tagger.model.errors import LayoutError

DEFAULT_INDENT = 2  # dash column of a new top-level list, when the file has no other block list to copy


@dataclass(frozen=True)
class Item:
    first: int  # line of the item's "-"
    last: int  # its last content line (inclusive; trailing blank and comment lines excluded)
    dash: int  # column of the "-"


def load(text: str, source: str) -> Any:
    """The single document of `text`, round-trip loaded (positions kept); a LayoutError when it is not YAML."""
    try:
        return YAML(typ="rt").load(text)
    except YAMLError as err:
        raise LayoutError(f"{source}: not a YAML document ({str(err).splitlines()[0]})") from None


def _safe(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_layout(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def items(text: str, key: str | None, source: str) -> list[Item]:
    """The items of the block list at top-level `key` (or the root list when `key` is None); [] when absent."""
    root = load(text, source)
    seq = root if key is None else (root.get(key) if isinstance(root, dict) else None)
    if seq is None:
        return []
    if not isinstance(seq, list) or (seq and seq.fa.flow_style()):
        raise LayoutError(f"{source}: {key or 'the document'} is not a block list; write it as `- item` lines")
    lines = text.split("\n")
    found = []
    for index in range(len(seq)):
        line, column = seq.lc.item(index)
        before = lines[line][:column].rstrip(" ")
        if not before.endswith("-") or before[:-1].strip(" -"):
            raise LayoutError(f"{source}: item {index + 1} of {key or 'the list'} does not start on its own '-' line")
        dash = len(before) - 1
        end = line + 1
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > dash):
            end += 1
        last = end - 1
        while last > line and _is_layout(lines[last]):
            last -= 1
        found.append(Item(line, last, dash))
    return found


def _check(before: str, after: str, source: str, change) -> str:
    """`after`, if it loads as `before`'s data changed by `change`; else the edit is refused."""
    expected = copy.deepcopy(_safe(before))
    expected = change(expected)
    try:
        loaded = _safe(after)
    except YAMLError:
        loaded = object()
    if loaded != expected:
        raise LayoutError(f"{source}: cannot edit this file's layout line by line; make the change by hand")
    return after


def _reindent(block: str, dash: int) -> list[str]:
    return [(" " * dash + line) if line else line for line in block.rstrip("\n").split("\n")]


def _list_indent(text: str, source: str) -> int:
    """The dash column of the file's other top-level block lists (resources:, components:), else DEFAULT_INDENT."""
    root = load(text, source)
    for key, value in root.items() if isinstance(root, dict) else ():
        if isinstance(value, list) and value and not value.fa.flow_style():
            with_dash = items(text, key, source)
            if with_dash:
                return with_dash[0].dash
    return DEFAULT_INDENT


def append(text: str, key: str | None, item: str, source: str) -> str:
    """`text` with `item` (YAML of one list item, "- " at column 0) added last to the list at `key`.

    A missing top-level `key` is added at the end of the file (`key:` and the item)."""
    value = _safe(item)[0]
    lines = text.split("\n")
    found = items(text, key, source)
    root = load(text, source)
    if found:
        at, dash = found[-1].last + 1, found[-1].dash
        new = lines[:at] + _reindent(item, dash) + lines[at:]
    elif key is None:
        raise LayoutError(f"{source}: not a list of patch operations")
    elif isinstance(root, dict) and key in root:  # `key:` with nothing (null) after it
        line = root.lc.key(key)[0]
        if lines[line].split("#", 1)[0].strip() != f"{key}:":
            raise LayoutError(f"{source}: {key} is not a block list; write it as `- item` lines")
        dash = _list_indent(text, source)
        new = lines[: line + 1] + _reindent(item, dash) + lines[line + 1 :]
    else:
        if not isinstance(root, dict):
            raise LayoutError(f"{source}: not a YAML mapping")
        ends = lines[-1] == ""  # keep the file's own last line end (or its lack of one)
        body = lines[:-1] if ends else lines
        new = [*body, f"{key}:", *_reindent(item, _list_indent(text, source)), *([""] if ends else [])]

    def change(data: Any) -> Any:
        if key is None:
            return [*data, value]
        data[key] = [*(data.get(key) or []), value]
        return data

    return _check(text, "\n".join(new), source, change)


def remove(text: str, key: str | None, index: int, source: str) -> str:
    """`text` without item `index` of the list at `key`.

    A top-level `key:` line left with no item goes too, unless it carries more (a comment): then it stays, empty."""
    found = items(text, key, source)
    item = found[index]
    lines = text.split("\n")
    drop = set(range(item.first, item.last + 1))
    root = load(text, source)
    emptied = key is not None and len(found) == 1
    if emptied and lines[root.lc.key(key)[0]].strip() == f"{key}:":
        drop.add(root.lc.key(key)[0])
    else:
        emptied = False
    kept_empty = key is not None and len(found) == 1 and not emptied
    new = [line for number, line in enumerate(lines) if number not in drop]

    def change(data: Any) -> Any:
        if key is None:
            return [v for i, v in enumerate(data) if i != index]
        if emptied:
            del data[key]
        elif kept_empty:
            data[key] = None
        else:
            data[key] = [v for i, v in enumerate(data[key]) if i != index]
        return data

    return _check(text, "\n".join(new), source, change)


def values(text: str, key: str | None, source: str) -> Sequence[Any]:
    """The list at `key` as plain data ([] when absent)."""
    data = _safe(text)
    if key is None:
        return data if isinstance(data, list) else []
    return (data.get(key) if isinstance(data, dict) else None) or []
