"""A file's YAML documents as kyaml's ByteReader splits them, as node trees with offsets into the text.

The setters edit the text in place, so every node keeps where it starts and ends; ruamel's events give
those offsets, go-yaml v3 decides what a document is (only the first of a chunk, a null root is none).
"""

import bisect
import re
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from image_tagger.fluxrules.goports.goyaml import BLOCK, source_scalar
from image_tagger.fluxrules.goports.yaml11 import NULL

_SEPARATOR = re.compile(r"\n---.*\n")  # kyaml splitDocuments
_PROPERTIES = re.compile(r"(?:[&!][^ \t\n]*[ \t\n]+)+")  # anchor / tag in front of a scalar
_BLOCK_HEADER = re.compile(r"[|>](?:[-+][0-9]?|[0-9][-+]?)?")
_PARSER = YAML(typ="safe", pure=True)
MAX_YAML_DEPTH = 100  # nested collections per document; deeper files are skipped with a note


@dataclass
class Node:
    kind: str  # "scalar" | "map" | "seq" | "alias"
    start: int  # absolute offsets in the normalised text (scalars: start of the scalar text itself)
    end: int
    props: int = 0  # scalars: where an anchor/tag in front of the text begins (== start without them)
    event: ScalarEvent | None = None
    flow: bool = False
    children: list["Node"] = field(default_factory=list)  # map: key, value, key, value, ...

    def pairs(self) -> Iterator[tuple["Node", "Node"]]:
        return zip(self.children[::2], self.children[1::2], strict=True)

    def is_empty(self) -> bool:
        """A scalar with nothing written (``key:``), which is never a marker nor laid out."""
        return self.kind == "scalar" and not self.event.value and not self.event.style


class TooDeep(YAMLError):
    """Collections nested deeper than MAX_YAML_DEPTH (the tree walks recurse once per level)."""


def _leaf(event: ScalarEvent | AliasEvent, chunk: str, offset: int) -> Node:
    if isinstance(event, ScalarEvent):
        props = start = event.start_mark.index
        if event.anchor or event.tag is not None:
            start += len(_PROPERTIES.match(chunk, start)[0])
        return Node("scalar", offset + start, offset + event.end_mark.index, offset + props, event)
    return Node("alias", offset + event.start_mark.index, offset + event.end_mark.index)


def _build(event: object, events: Iterator[object], chunk: str, offset: int) -> Node:
    """The node tree of one document from its events, iteratively, at most MAX_YAML_DEPTH collections deep."""
    if isinstance(event, ScalarEvent | AliasEvent):
        return _leaf(event, chunk, offset)
    stack: list[Node] = []
    while True:
        if isinstance(event, ScalarEvent | AliasEvent):
            stack[-1].children.append(_leaf(event, chunk, offset))
        elif isinstance(event, MappingStartEvent | SequenceStartEvent):
            if len(stack) >= MAX_YAML_DEPTH:
                raise TooDeep(f"YAML nested more than {MAX_YAML_DEPTH} collections deep")
            kind = "map" if isinstance(event, MappingStartEvent) else "seq"
            node = Node(kind, offset + event.start_mark.index, 0, flow=bool(event.flow_style))
            if stack:
                stack[-1].children.append(node)
            stack.append(node)
        else:
            node = stack.pop()
            node.end = offset + event.end_mark.index
            if not stack:
                return node
        event = next(events, None)
        if event is None:
            raise YAMLError("unterminated collection")


def _first_document(chunk: str, offset: int) -> Node | None:
    """go-yaml v3 ``Decoder.Decode`` reads only the first document of a chunk; None if there is none."""
    with closing(_PARSER.parse(chunk)) as events:
        next(events)
        if isinstance(next(events), StreamEndEvent):
            return None
        root = _build(next(events), events, chunk, offset)
        next(events)  # the document end must parse too
    return root


def _split_documents(norm: str) -> tuple[list[tuple[int, str]], set[int]] | None:
    """kyaml ``splitDocuments``: (offset, chunk) pairs and the separator line numbers; None if invalid."""
    chunks, separator_lines, previous, line, counted = [], set(), 0, 0, 0
    for match in _SEPARATOR.finditer(norm):
        rest = match[0][4:].strip()
        if rest and not rest.startswith("#"):
            return None
        chunks.append((previous, norm[previous : match.start()] + "\n"))
        line += norm.count("\n", counted, match.start())  # counted incrementally: linear in the file size
        counted = match.start()
        separator_lines.add(line + 1)
        previous = match.end()
    chunks.append((previous, norm[previous:]))
    return chunks, separator_lines


def _parse_roots(chunks: list[tuple[int, str]]) -> list[Node | None] | None:
    """Root mapping per chunk (None for empty/null documents); None when Flux skips the file."""
    roots = []
    for offset, chunk in chunks:
        try:
            root = _first_document(chunk, offset)
        except TooDeep:
            raise
        except YAMLError:
            return None
        if root is not None and root.kind == "scalar" and source_scalar(root.event).tag == NULL:
            root = None
        if root is not None and root.kind != "map":
            return None
        roots.append(root)
    return roots


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


class Source:
    """A file's normalised text, its documents' trees, and line lookups (what is content, what is layout)."""

    def __init__(
        self, norm: str, chunks: list[tuple[int, str]], separator_lines: set[int], roots: list[Node | None]
    ) -> None:
        self.norm = norm
        self.chunks = chunks
        self.separator_lines = separator_lines
        self.roots = roots
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", norm)]
        self.lines = norm.split("\n")
        self.covered: set[int] = set()  # lines inside multi-line scalars (content, not layout)
        self.content_end: dict[int, int] = {}  # line -> column after its last scalar/flow collection
        self.multi_line_scalars = False  # a plain or quoted scalar spans lines
        for root in roots:
            if root is not None:
                self._index(root)

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset) - 1

    def column(self, offset: int) -> int:
        return offset - self.line_starts[self.line(offset)]

    def line_end(self, offset: int) -> int:
        end = self.norm.find("\n", offset)
        return len(self.norm) if end < 0 else end

    def header_end(self, node: Node) -> int:
        """Where a block scalar's ``|``/``>`` header (with its chomping and indentation indicators) ends."""
        return _BLOCK_HEADER.match(self.norm, node.start).end()

    def comment_only(self, line: int) -> bool:
        return line not in self.covered and self.lines[line].lstrip(" \t").startswith("#")

    def _index(self, root: Node) -> None:
        """Record which lines are scalar content and where each line's YAML content ends."""
        for node in _walk(root):
            if node.kind in ("map", "seq") and not node.flow or node.is_empty():
                continue
            first, last = self.line(node.start), self.line(node.end)
            last -= self.column(node.end) == 0 and last > first
            self.content_end[last] = max(self.content_end.get(last, 0), self.column(node.end))
            if node.kind != "scalar":
                continue
            self.covered.update(range(first + 1, last + 1))
            if node.event.style in BLOCK:
                self.content_end[first] = self.column(self.header_end(node))
            elif last > first:
                self.multi_line_scalars = True


def parse(norm: str) -> Source | None:
    """The documents of a normalised (no BOM, LF) text; None when Flux skips the file as not YAML it edits.

    Raises ``TooDeep`` for collections nested over ``MAX_YAML_DEPTH``.
    """
    split = _split_documents(norm)
    roots = split and _parse_roots(split[0])
    if not split or roots is None:
        return None
    return Source(norm, *split, roots)
