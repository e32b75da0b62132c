"""Flux image-automation-controller's setters, applied offline as in-place scalar edits.

Flux re-serialises every changed file with go-yaml v3 (flux-semantics §5.7).  On files already in that
normal form only the marked scalars change, so rewriting just those scalars reproduces Flux byte for
byte; for other files the edit is still minimal and ``FileUpdate.reformat`` says what Flux would also
change.  Limits (documented, not guessed): markers are only looked for on block-context scalars (not
inside flow collections ``[a, b]``/``{a: b}``), empty values (``key: # {...}``) are never markers, a
head comment counts when it is the single comment line right above ``- item``, a rewritten block
scalar keeps its original body indentation, and the ``reformat`` comment-indentation check is a
heuristic.
"""

import bisect
import difflib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from image_tagger.errors import InputError
from image_tagger.flux import files
from image_tagger.flux.yaml11 import NULL, STR, is_non_string, resolve, short_tag

TOKEN = b'"$imagepolicy"'
_ASSIGNMENT_FORM = "NS:NAME=IMAGE:TAG[@sha256:<64 hex>]"
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_POLICY_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# go-containerregistry name.ParseReference (what Flux uses to validate the full-ref setter value).
_REGISTRY = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?")
_REPOSITORY = re.compile(r"[a-z0-9_./-]{2,255}")
_TAG = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

_SEPARATOR = re.compile(r"\n---.*\n")  # kyaml splitDocuments
_PROPERTIES = re.compile(r"(?:[&!][^ \t\n]*[ \t\n]+)+")  # anchor / tag in front of a scalar
_BLOCK_HEADER = re.compile(r"[|>](?:[-+][0-9]?|[0-9][-+]?)?")
_LINE_COMMENT = re.compile(r"[ \t]+(#.*)")
_QUOTES = ("'", '"')
_BLOCK = ("|", ">")
_DOUBLE_ESCAPES = {
    "\0": "0", "\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r",
    "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N", "\u2028": "L", "\u2029": "P",
}  # fmt: skip
_PARSER = YAML(typ="safe", pure=True)
MAX_YAML_DEPTH = 100  # nested collections per document; deeper files are skipped with a note


@dataclass(frozen=True)
class ImageRef:
    """An ImagePolicy ``status.latestRef``."""

    name: str
    tag: str
    digest: str = ""

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class Change:
    """One setter that changed a value (Flux records only old != new)."""

    setter: str
    old: str
    new: str
    line: int


@dataclass(frozen=True)
class FileUpdate:
    """A file Flux would write: its bytes before and after the setters run."""

    path: str
    before: str
    after: str
    changes: tuple[Change, ...]
    reformat: tuple[str, ...]

    def diff(self) -> str:
        """Unified diff in git's a/ b/ form, marking missing final newlines like git does."""
        lines = difflib.unified_diff(
            _split_lines(self.before), _split_lines(self.after), f"a/{self.path}", f"b/{self.path}"
        )
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _split_lines(text: str) -> list[str]:
    """Lines with their endings, splitting only at '\\n' (str.splitlines also splits at \\v, \\x1c...)."""
    return re.findall(r"[^\n]*\n|[^\n]+", text)


def _ref_problem(ref: ImageRef) -> str | None:
    """Why Flux would reject ``str(ref)`` as an image reference, or None."""
    first, slash, rest = ref.name.partition("/")
    registry_only = "." in ref.name and not slash and ref.name != "rocket.chat"  # ggcr's special cases
    has_registry = registry_only or slash and ("." in first or ":" in first)
    registry, repository = (first, rest) if has_registry else ("", ref.name)
    if registry and not _REGISTRY.fullmatch(registry):
        return f"bad registry {registry!r}"
    if not registry_only and not _REPOSITORY.fullmatch(repository):
        return f"bad repository {repository!r} (lowercase a-z 0-9 _ . / -)"
    if not _TAG.fullmatch(ref.tag):
        return f"bad tag {ref.tag!r}"
    if ref.digest and not _DIGEST.fullmatch(ref.digest):
        return f"bad digest {ref.digest!r}"
    return None


def _key_problem(key: str) -> str | None:
    namespace, colon, name = key.partition(":")
    if not colon or not _NAMESPACE.fullmatch(namespace) or not _POLICY_NAME.fullmatch(name):
        return f"bad policy {key!r}"
    return None


def parse_policy_assignment(text: str) -> tuple[str, ImageRef]:
    """``NS:NAME=IMAGE:TAG[@DIGEST]`` -> ``("NS:NAME", ImageRef)``; the tag follows the last ':' after the last '/'."""
    key, equals, image = text.partition("=")
    image, at, digest = image.partition("@")
    colon = image.rfind(":")
    if not equals or colon <= image.rfind("/"):
        problem = "missing '='" if not equals else "missing ':TAG'"
    else:
        ref = ImageRef(image[:colon], image[colon + 1 :], digest)
        problem = _key_problem(key) or ("empty digest" if at and not digest else _ref_problem(ref))
    if problem:
        raise InputError(f"policy assignment {text!r}: {problem}; expected {_ASSIGNMENT_FORM}")
    return key, ref


def _setter_values(policies: Mapping[str, ImageRef]) -> dict[str, str]:
    """Every setter name Flux registers per policy (§5.2), with its value."""
    values = {}
    for key, ref in policies.items():
        problem = _key_problem(key) or _ref_problem(ref)
        if problem:
            raise InputError(f"policy {key}={ref}: {problem}; expected {_ASSIGNMENT_FORM}")
        values |= {key: str(ref), f"{key}:tag": ref.tag, f"{key}:name": ref.name, f"{key}:digest": ref.digest}
    return values


# --- go-yaml v3 scalar model: what kyaml's setter does to the node and how the encoder prints it ---


@dataclass(frozen=True)
class _Scalar:
    value: str
    style: str  # "" plain, "'", '"', "|", ">"
    tag: str  # short tag as go-yaml v3 holds it
    tagged: bool  # the tag was written in the source (v3 TaggedStyle): always printed


def _source_scalar(event: ScalarEvent) -> _Scalar:
    style = event.style or ""
    if event.tag not in (None, "!"):
        return _Scalar(event.value, style, short_tag(str(event.tag)), True)
    return _Scalar(event.value, style, STR if style else resolve(event.value, v3=True), False)


def _set_value(node: _Scalar, value: str) -> _Scalar:
    """kyaml: assign the value, then ``FormatNonStringStyle`` for a string-typed setter (§5.6)."""
    if not is_non_string(value):
        return replace(node, value=value)
    if node.tag == NULL:
        return replace(node, value=value, style="", tagged=False)
    quoted = node.style in _QUOTES
    return _Scalar(value, node.style if quoted else '"', STR, node.tagged and quoted)


@dataclass(frozen=True)
class _Analysis:
    block_plain: bool
    single_quoted: bool
    block: bool


def _printable(char: str) -> bool:
    """go-yaml's is_printable: no C0/C1 controls, surrogates, BOM or characters beyond the BMP."""
    code = ord(char)
    return code == 0x0A or 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD and code != 0xFEFF


def _analyse(value: str) -> _Analysis:
    """go-yaml v3 ``yaml_emitter_analyze_scalar`` for block context."""
    if not value:
        return _Analysis(True, True, False)
    indicators = value[:3] in ("---", "...") or value[0] in "#,[]{}&*!|>'\"%@`"
    indicators |= value[0] in "?:-" and value[1:2] in ("", " ", "\t")
    indicators |= ": " in value or ":\t" in value or value.endswith(":")
    indicators |= any(blank + "#" in value for blank in " \t\n")
    special = any(not _printable(c) and c != "\t" for c in value)
    breaks = "\n" in value
    edge_space = value[0] in " \n" or value[-1] in " \n"
    space_break = " \n" in value
    break_space = "\n " in value
    plain = not (edge_space or break_space or space_break or "\t" in value or special or breaks or indicators)
    single = not (break_space or space_break or "\t" in value or special)
    return _Analysis(plain, single, not (value[-1] == " " or space_break or special))


def _double_quoted(value: str) -> str:
    """go-yaml v3 double-quoted scalar (no line folding: Flux's encoder does not wrap)."""
    out = []
    for char in value:
        if _printable(char) and char not in '"\\\n\u2028\u2029':
            out.append(char)
        elif char in _DOUBLE_ESCAPES:
            out.append("\\" + _DOUBLE_ESCAPES[char])
        else:
            code = ord(char)
            out.append(f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}")
    return '"' + "".join(out) + '"'


def _emit(node: _Scalar) -> tuple[str, str, str]:
    """(tag text, style, scalar text) the go-yaml v3 encoder writes for a block-context scalar."""
    tag, force_quotes = node.tag, False
    if not node.tagged:
        if tag == STR and node.style or resolve(node.value, v3=True) == tag:
            tag = ""
        elif tag == STR:
            tag, force_quotes = "", True
    style = node.style or ("|" if "\n" in node.value else '"' if force_quotes else "")
    analysis = _analyse(node.value)
    if style == "" and not analysis.block_plain:
        style = "'"
    if style == "'" and not analysis.single_quoted or style in _BLOCK and not analysis.block:
        style = '"'
    text = {
        "": node.value,
        "'": "'" + node.value.replace("'", "''") + "'",
        '"': _double_quoted(node.value),
    }.get(style, node.value)
    return (tag if tag.startswith("!") else f"!<{tag}>") if tag else "", style, text


# --- parsing: kyaml ByteReader document split + a small node tree from ruamel events ---


@dataclass
class _Node:
    kind: str  # "scalar" | "map" | "seq" | "alias"
    start: int  # absolute offsets in the normalised text (scalars: start of the scalar text itself)
    end: int
    props: int = 0  # scalars: where an anchor/tag in front of the text begins (== start without them)
    event: ScalarEvent | None = None
    flow: bool = False
    children: list["_Node"] = field(default_factory=list)  # map: key, value, key, value, ...

    def pairs(self) -> Iterator[tuple["_Node", "_Node"]]:
        return zip(self.children[::2], self.children[1::2], strict=True)


def _leaf(event: ScalarEvent | AliasEvent, chunk: str, offset: int) -> _Node:
    if isinstance(event, ScalarEvent):
        props = start = event.start_mark.index
        if event.anchor or event.tag is not None:
            start += len(_PROPERTIES.match(chunk, start)[0])
        return _Node("scalar", offset + start, offset + event.end_mark.index, offset + props, event)
    return _Node("alias", offset + event.start_mark.index, offset + event.end_mark.index)


class _TooDeep(YAMLError):
    """Collections nested deeper than MAX_YAML_DEPTH (the tree walks below recurse once per level)."""


def _build(event: object, events: Iterator[object], chunk: str, offset: int) -> _Node:
    """The node tree of one document from its events, iteratively, at most MAX_YAML_DEPTH collections deep."""
    if isinstance(event, ScalarEvent | AliasEvent):
        return _leaf(event, chunk, offset)
    stack: list[_Node] = []
    while True:
        if isinstance(event, ScalarEvent | AliasEvent):
            stack[-1].children.append(_leaf(event, chunk, offset))
        elif isinstance(event, MappingStartEvent | SequenceStartEvent):
            if len(stack) >= MAX_YAML_DEPTH:
                raise _TooDeep(f"YAML nested more than {MAX_YAML_DEPTH} collections deep")
            kind = "map" if isinstance(event, MappingStartEvent) else "seq"
            node = _Node(kind, offset + event.start_mark.index, 0, flow=bool(event.flow_style))
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


def _first_document(chunk: str, offset: int) -> _Node | None:
    """go-yaml v3 ``Decoder.Decode`` reads only the first document of a chunk; None if there is none."""
    with closing(_PARSER.parse(chunk)) as events:
        next(events)
        if isinstance(next(events), StreamEndEvent):
            return None
        root = _build(next(events), events, chunk, offset)
        next(events)  # the document end must parse too
    return root


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


def _walk(node: _Node) -> Iterator[_Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


# --- one file ---


@dataclass
class _Edit:
    start: int
    end: int
    text: str


class _FilePlan:
    """Markers, edits and normal-form findings of one file (offsets in the normalised text)."""

    def __init__(self, norm: str, setters: Mapping[str, str]) -> None:
        self.norm = norm
        self.setters = setters
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", norm)]
        self.lines = norm.split("\n")
        self.covered: set[int] = set()  # lines inside multi-line scalars (content, not layout)
        self.content_end: dict[int, int] = {}  # line -> column after its last scalar/flow collection
        self.edits: list[_Edit] = []
        self.changes: list[Change] = []
        self.reasons: dict[str, None] = {}

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset) - 1

    def column(self, offset: int) -> int:
        return offset - self.line_starts[self.line(offset)]

    def line_end(self, offset: int) -> int:
        end = self.norm.find("\n", offset)
        return len(self.norm) if end < 0 else end

    def comment_only(self, line: int) -> bool:
        return line not in self.covered and self.lines[line].lstrip(" \t").startswith("#")

    def index(self, root: _Node) -> None:
        """Record which lines are scalar content and where each line's YAML content ends."""
        for node in _walk(root):
            if node.kind in ("map", "seq") and not node.flow or _is_empty(node):
                continue
            first, last = self.line(node.start), self.line(node.end)
            last -= self.column(node.end) == 0 and last > first
            self.content_end[last] = max(self.content_end.get(last, 0), self.column(node.end))
            if node.kind != "scalar":
                continue
            self.covered.update(range(first + 1, last + 1))
            if node.event.style in _BLOCK:
                self.content_end[first] = self.column(_BLOCK_HEADER.match(self.norm, node.start).end())
            elif last > first:
                self.finding("multi-line scalars are re-emitted on one line")

    def marker(self, node: _Node, item: bool) -> str | None:
        """The setter named by the node's line comment, else (sequence items) its head comment (§5.5)."""
        comment_from = node.end
        if node.event.style in _BLOCK:
            comment_from = _BLOCK_HEADER.match(self.norm, node.start).end()
        elif _is_empty(node):
            return None
        match = _LINE_COMMENT.match(self.norm, comment_from)
        if match:
            return _setter_name(match[1], self.setters)
        line = self.line(node.props)
        prefix = self.norm[self.line_starts[line] : node.props]
        if not item or prefix.strip(" \t-") or "-" not in prefix or line == 0:
            return None
        if not self.comment_only(line - 1) or (line > 1 and self.comment_only(line - 2)):
            return None  # no head comment, or one of several lines (then it is not a JSON object)
        return _setter_name(self.lines[line - 1].lstrip(" \t"), self.setters)

    def visit(self, node: _Node, item: bool = False, owner_column: int = 0) -> None:
        """kyaml's walk: mapping values and sequence items, never keys, never through aliases."""
        if node.kind == "scalar":
            setter = self.marker(node, item)
            if setter is not None:
                self.apply(node, setter, owner_column)
        elif node.kind == "map" and not node.flow:
            for key, value in node.pairs():
                self.visit(value, False, self.column(key.start))
        elif node.kind == "seq" and not node.flow:
            for child in node.children:
                self.visit(child, True, self.column(node.start))

    def apply(self, node: _Node, setter: str, owner_column: int) -> None:
        """Rewrite the scalar (and its tag) as go-yaml v3 would print it after the setter ran."""
        source = _source_scalar(node.event)
        new = self.setters[setter]
        tag, style, text = _emit(_set_value(source, new))
        prefix = (f"&{node.event.anchor} " if node.event.anchor else "") + (f"{tag} " if tag else "")
        if source.style in _BLOCK:
            header_end = _BLOCK_HEADER.match(self.norm, node.start).end()
            body_start = min(self.line_end(header_end) + 1, node.end)
            body = [line for line in self.norm[body_start : node.end].split("\n") if line.strip()]
            indent = len(body[0]) - len(body[0].lstrip(" ")) if body else owner_column + 2
            header, body_text = (style + "-", " " * indent + text + "\n") if style in _BLOCK else (text, "")
            self.edits += [_Edit(node.props, header_end, prefix + header), _Edit(body_start, node.end, body_text)]
        elif self.norm[node.props : node.end] != prefix + text:
            self.edits.append(_Edit(node.props, node.end, prefix + text))
        if source.value != new:
            self.changes.append(Change(setter, source.value, new, self.line(node.start) + 1))

    # Flux normal form (§5.7)

    def finding(self, reason: str) -> None:
        self.reasons[reason] = None

    def layout(self, node: _Node, column: int, sequence_extra: int) -> None:
        """Where go-yaml v3 (indent 2, the document's sequence style) would lay block collections out differently."""
        if node.kind not in ("map", "seq") or node.flow:
            return
        if self.column(node.start) != column:
            self.finding("indentation is normalised to 2 spaces")
        if node.kind == "seq":
            for item in node.children:
                start = item.props if item.kind == "scalar" else item.start
                if not _is_empty(item) and self.norm[start - 2 : start] != "- ":
                    self.finding("spacing after '-' is normalised to one space")
                self.layout(item, self.column(node.start) + 2, sequence_extra)
            return
        for key, value in node.pairs():
            key_column = self.column(key.start)
            expected = key_column + 2
            if value.kind == "seq" and not value.flow:
                extra = self.column(value.start) - key_column
                if extra in (0, 2) and extra != sequence_extra:
                    self.finding(f"sequences are re-indented {'wide' if sequence_extra else 'compact'}")
                expected = key_column + (extra if extra in (0, 2) else sequence_extra)
            elif value.kind != "map" or value.flow:
                start = value.props if value.kind == "scalar" else value.start
                if not _is_empty(value) and self.norm[key.end : start] != ": ":
                    self.finding("spacing after ':' is normalised to one space")
            self.layout(value, expected, sequence_extra)

    def document_findings(self, roots: list[_Node | None], chunks: list[tuple[int, str]]) -> None:
        for root, (_, chunk) in zip(roots, chunks, strict=True):
            if root is None:
                if len(chunks) > 1:
                    self.finding("empty or comment-only documents are dropped")
                continue
            self.layout(root, 0, _sequence_style(chunk.split("\n")))
            metadata = _get(root, "metadata")
            if _is_empty_map(metadata) or _is_empty_map(_get(metadata, "annotations")):
                self.finding("empty metadata/annotations maps are removed")
        if len(roots) == 1 and roots[0] is not None and _get(roots[0], "items") is not None:
            kind = _get(roots[0], "kind")
            if kind is not None and kind.kind == "scalar" and kind.event.value in ("List", "ResourceList"):
                self.finding("the List is unwrapped into separate documents")

    def line_findings(self, separator_lines: set[int]) -> None:
        lines = self.lines[:-1] if self.norm.endswith("\n") else self.lines
        content = [n for n, line in enumerate(lines) if line.strip() and not self.comment_only(n)]
        for number, line in enumerate(lines):
            if number in self.covered:
                continue
            if not line.strip():
                self.finding("blank lines are removed")
            elif line != line.rstrip(" \t"):
                self.finding("trailing whitespace is removed")
            if number in separator_lines:
                if line.rstrip() != "---":
                    self.finding("comments on '---' lines are dropped")
            elif line.startswith("---"):
                self.finding("an explicit '---' document start is dropped")
            if line.rstrip() == "..." or line.startswith("... "):
                self.finding("'...' document end markers are dropped")
            if self.comment_only(number):
                self.comment_indent(number, content)
            elif number in self.content_end:
                rest = line[self.content_end[number] :]
                before = rest[: rest.find("#")] if "#" in rest else ""
                if before.endswith(("  ", "\t")):
                    self.finding("the space before a line comment becomes exactly one")

    def comment_indent(self, number: int, content: list[int]) -> None:
        """Heuristic: v3 prints a comment line at the indentation of a neighbouring node."""
        position = bisect.bisect(content, number)
        neighbours = [content[i] for i in (position - 1, position) if 0 <= i < len(content)]
        allowed = {_indent(self.lines[n]) for n in neighbours} | ({0} if position == len(content) else set())
        if _indent(self.lines[number]) not in allowed:
            self.finding("comment lines are re-indented")

    def apply_edits(self, original: str, bom: int) -> str:
        """Map the edits back onto the original text (BOM and CRLF kept; lines correspond 1:1)."""
        starts = [bom] + [m.end() for m in re.finditer("\n", original)]
        newline = "\r\n" if "\r\n" in original else "\n"
        pieces, done = [], 0
        for edit in sorted(self.edits, key=lambda e: e.start):
            begin = starts[self.line(edit.start)] + self.column(edit.start)
            end = starts[self.line(edit.end)] + self.column(edit.end)
            pieces += [original[done:begin], edit.text.replace("\n", newline)]
            done = end
        return "".join([*pieces, original[done:]])


def _setter_name(comment: str, setters: Mapping[str, str]) -> str | None:
    """fieldmeta: strip leading '#', the rest must be a JSON string map with a known ``$imagepolicy``."""
    try:
        data = json.loads(comment.lstrip("#"))
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str | None) for v in data.values()):
        return None
    name = data.get("$imagepolicy")
    return name if name in setters else None


def _is_empty(node: _Node) -> bool:
    return node.kind == "scalar" and not node.event.value and not node.event.style


def _is_empty_map(node: _Node | None) -> bool:
    return node is not None and node.kind == "map" and not node.children


def _get(node: _Node | None, key: str) -> _Node | None:
    if node is None or node.kind != "map":
        return None
    return next((v for k, v in node.pairs() if k.kind == "scalar" and k.event.value == key), None)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


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


def _parse_roots(chunks: list[tuple[int, str]]) -> list[_Node | None] | None:
    """Root mapping per chunk (None for empty/null documents); None when Flux skips the file."""
    roots = []
    for offset, chunk in chunks:
        try:
            root = _first_document(chunk, offset)
        except _TooDeep:
            raise
        except YAMLError:
            return None
        if root is not None and root.kind == "scalar" and _source_scalar(root.event).tag == NULL:
            root = None
        if root is not None and root.kind != "map":
            return None
        roots.append(root)
    return roots


def _plan_file(path: str, text: str, setters: Mapping[str, str]) -> FileUpdate | None:
    bom = 1 if text.startswith("\ufeff") else 0
    norm = text[bom:].replace("\r\n", "\n")
    split = _split_documents(norm)
    roots = split and _parse_roots(split[0])
    if not split or roots is None:
        return None
    plan = _FilePlan(norm, setters)
    for root in roots:
        if root is not None:
            plan.index(root)
            plan.visit(root)
    if not plan.changes:
        return None
    if "\r\n" in text:
        plan.finding("CRLF line endings become LF")
    if bom:
        plan.finding("the byte order mark is dropped")
    if norm and not norm.endswith("\n"):
        plan.finding("a final newline is added")
    plan.document_findings(roots, split[0])
    plan.line_findings(split[1])
    return FileUpdate(path, text, plan.apply_edits(text, bom), tuple(plan.changes), tuple(plan.reasons))


def plan_updates(root: Path, policies: Mapping[str, ImageRef], notes: list[str] | None = None) -> list[FileUpdate]:
    """The files Flux's setters would rewrite under ``root`` (its update path), in walk order.

    Files the walk or the limits skip (symlinks out of ``root``, FIFOs and other non-regular files, files
    over ``files.MAX_FILE_BYTES``, YAML nested over ``MAX_YAML_DEPTH``) are appended to ``notes``.
    """
    setters = _setter_values(policies)
    if not root.is_dir():
        raise InputError(f"update path {str(root)!r}: not a directory; expected a manifests directory")
    root = root.resolve()  # Flux's SecureJoin resolves symlinks in the update path itself
    notes = [] if notes is None else notes
    updates = []
    for candidate in files.walk(root, notes):
        try:
            data, why_not = files.read_regular(candidate.real, files.MAX_FILE_BYTES)
        except FileNotFoundError:
            continue  # removed since the walk saw it
        except OSError as error:
            raise files.FileError(f"{candidate.rel}: cannot be read ({error.strerror or error})") from None
        if data is None:
            notes.append(f"skipped {candidate.rel}: {why_not}")
            continue
        if TOKEN not in data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # go-yaml rejects it: a "problem file" for Flux
        try:
            update = _plan_file(candidate.rel, text, setters)
        except _TooDeep as error:
            notes.append(f"skipped {candidate.rel}: {error} (not parsed)")
            continue
        if update:
            updates.append(update)
    return updates


def write_updates(root: Path, updates: Sequence[FileUpdate]) -> None:
    """Write the planned files all or none, each atomically; ``files.FileError`` names the file that stopped it."""
    files.write_all(root, [(u.path, u.before.encode("utf-8"), u.after.encode("utf-8")) for u in updates])
