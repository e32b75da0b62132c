"""What Flux's go-yaml v3 re-serialisation of a changed file would change besides the set scalars.

The rules: docs/flux-semantics.md §5.7.

Reported, never applied: the edit stays minimal, and ``FileUpdate.reformat`` says why Flux's commit
would differ.  The comment-indentation check is a heuristic.
"""

import bisect

from image_tagger.fluxrules.yamltree import Node, Source


def findings(text: str, source: Source) -> tuple[str, ...]:
    """Each way the Flux normal form differs from ``text`` (parsed as ``source``), once, in the order found."""
    found = _Findings(source)
    if source.multi_line_scalars:
        found.add("multi-line scalars are re-emitted on one line")
    if "\r\n" in text:
        found.add("CRLF line endings become LF")
    if text.startswith("\ufeff"):
        found.add("the byte order mark is dropped")
    if source.norm and not source.norm.endswith("\n"):
        found.add("a final newline is added")
    found.documents()
    found.lines()
    return tuple(found.reasons)


def _sequence_style(chunk_lines: list[str]) -> int:
    """kyaml ``DeriveSeqIndentStyle``: extra indent of '- ' under its key (0 compact, 2 wide)."""
    for index, line in enumerate(chunk_lines):
        before, dash, _ = line.partition("- ")
        if not dash or before.strip(" ") or index == 0:
            continue
        key_index = index - 1
        while key_index > 0 and chunk_lines[key_index].lstrip(" ").startswith("#"):
            key_index -= 1
        key_line = chunk_lines[key_index]
        trimmed = key_line.strip(" ")
        if trimmed.count(":") != 1 or not trimmed.endswith(":"):
            continue
        extra = len(before) - (len(key_line) - len(key_line.lstrip(" ")))
        if extra in (0, 2):
            return extra
    return 0


def _is_empty_map(node: Node | None) -> bool:
    return node is not None and node.kind == "map" and not node.children


def _get(node: Node | None, key: str) -> Node | None:
    if node is None or node.kind != "map":
        return None
    return next((v for k, v in node.pairs() if k.kind == "scalar" and k.event.value == key), None)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


class _Findings:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.reasons: dict[str, None] = {}

    def add(self, reason: str) -> None:
        self.reasons[reason] = None

    def layout(self, node: Node, column: int, sequence_extra: int) -> None:
        """Where go-yaml v3 (indent 2, the document's sequence style) would lay block collections out differently."""
        if node.kind not in ("map", "seq") or node.flow:
            return
        source = self.source
        if source.column(node.start) != column:
            self.add("indentation is normalised to 2 spaces")
        if node.kind == "seq":
            for item in node.children:
                start = item.props if item.kind == "scalar" else item.start
                if not item.is_empty() and source.norm[start - 2 : start] != "- ":
                    self.add("spacing after '-' is normalised to one space")
                self.layout(item, source.column(node.start) + 2, sequence_extra)
            return
        for key, value in node.pairs():
            key_column = source.column(key.start)
            expected = key_column + 2
            if value.kind == "seq" and not value.flow:
                extra = source.column(value.start) - key_column
                if extra in (0, 2) and extra != sequence_extra:
                    self.add(f"sequences are re-indented {'wide' if sequence_extra else 'compact'}")
                expected = key_column + (extra if extra in (0, 2) else sequence_extra)
            elif value.kind != "map" or value.flow:
                start = value.props if value.kind == "scalar" else value.start
                if not value.is_empty() and source.norm[key.end : start] != ": ":
                    self.add("spacing after ':' is normalised to one space")
            self.layout(value, expected, sequence_extra)

    def documents(self) -> None:
        roots, chunks = self.source.roots, self.source.chunks
        for root, (_, chunk) in zip(roots, chunks, strict=True):
            if root is None:
                if len(chunks) > 1:
                    self.add("empty or comment-only documents are dropped")
                continue
            self.layout(root, 0, _sequence_style(chunk.split("\n")))
            metadata = _get(root, "metadata")
            if _is_empty_map(metadata) or _is_empty_map(_get(metadata, "annotations")):
                self.add("empty metadata/annotations maps are removed")
        if len(roots) == 1 and roots[0] is not None and _get(roots[0], "items") is not None:
            kind = _get(roots[0], "kind")
            if kind is not None and kind.kind == "scalar" and kind.event.value in ("List", "ResourceList"):
                self.add("the List is unwrapped into separate documents")

    def lines(self) -> None:
        source = self.source
        lines = source.lines[:-1] if source.norm.endswith("\n") else source.lines
        content = [n for n, line in enumerate(lines) if line.strip() and not source.comment_only(n)]
        for number, line in enumerate(lines):
            if number in source.covered:
                continue
            if not line.strip():
                self.add("blank lines are removed")
            elif line != line.rstrip(" \t"):
                self.add("trailing whitespace is removed")
            if number in source.separator_lines:
                if line.rstrip() != "---":
                    self.add("comments on '---' lines are dropped")
            elif line.startswith("---"):
                self.add("an explicit '---' document start is dropped")
            if line.rstrip() == "..." or line.startswith("... "):
                self.add("'...' document end markers are dropped")
            if source.comment_only(number):
                self.comment_indent(number, content)
            elif number in source.content_end:
                rest = line[source.content_end[number] :]
                before = rest[: rest.find("#")] if "#" in rest else ""
                if before.endswith(("  ", "\t")):
                    self.add("the space before a line comment becomes exactly one")

    def comment_indent(self, number: int, content: list[int]) -> None:
        """Heuristic: v3 prints a comment line at the indentation of a neighbouring node."""
        position = bisect.bisect(content, number)
        neighbours = [content[i] for i in (position - 1, position) if 0 <= i < len(content)]
        allowed = {_indent(self.source.lines[n]) for n in neighbours} | ({0} if position == len(content) else set())
        if _indent(self.source.lines[number]) not in allowed:
            self.add("comment lines are re-indented")
