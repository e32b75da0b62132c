"""Flux image-automation-controller's setters, applied offline as in-place scalar edits.

Flux re-serialises every changed file with go-yaml v3 (docs/flux-semantics.md §5.7).  On files already in that
normal form only the marked scalars change, so rewriting just those scalars reproduces Flux byte for
byte; for other files the edit is still minimal and ``FileUpdate.reformat`` says what Flux would also
change.  Limits (documented, not guessed): markers are only looked for on block-context scalars (not
inside flow collections ``[a, b]``/``{a: b}``), empty values (``key: # {...}``) are never markers, a
head comment counts when it is the single comment line right above ``- item``, a rewritten block
scalar keeps its original body indentation, and the ``reformat`` comment-indentation check is a
heuristic.

The parts: ``imageref`` (policy assignments, setter values), ``yamltree`` (documents as node trees with
offsets), ``goyaml`` (how a set scalar is printed), ``reformat`` (the normal-form findings), ``files``
(the safe walk and all-or-nothing writes); this module finds the markers and edits the text.
"""

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from image_tagger.fluxrules import files, reformat, yamltree
from image_tagger.fluxrules.goports.goyaml import BLOCK, emit, set_value, source_scalar
from image_tagger.fluxrules.imageref import DIGEST, ImageRef, setter_values
from image_tagger.fluxrules.yamltree import Node, Source
from image_tagger.model.errors import InputError

TOKEN = b'"$imagepolicy"'
_LINE_COMMENT = re.compile(r"[ \t]+(#.*)")
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


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
        before, after = _split_lines(self.before), _split_lines(self.after)
        out = [f"--- a/{self.path}\n", f"+++ b/{self.path}\n"]
        matcher = difflib.SequenceMatcher(None, before, after)
        matcher.opcodes = _aligned_opcodes(before, after)  # what get_grouped_opcodes reads; linear time
        for group in matcher.get_grouped_opcodes(3):
            first, last = group[0], group[-1]
            old = _unified_range(first[1], last[2])
            new = _unified_range(first[3], last[4])
            out.append(f"@@ -{old} +{new} @@\n")
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    out += [" " + line for line in before[i1:i2]]
                    continue
                out += ["-" + line for line in before[i1:i2]] + ["+" + line for line in after[j1:j2]]
        if len(out) == 2:
            return ""
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)


def _unified_range(start: int, stop: int) -> str:
    """difflib's ``_format_range_unified``."""
    length = stop - start
    beginning = start + 1 if length else start
    return f"{beginning}" if length == 1 else f"{beginning},{length}"


_RESYNC = 64  # lines looked ahead for the end of an edit


def _aligned_opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib opcodes for two texts that differ only at a few edited spans, in linear time.

    ``unified_diff`` is quadratic on a large file with many changed lines (365 s for a 5 MB one):
    equal lines are taken in step, and only each short window where the texts differ goes to difflib.
    """
    ops: list[tuple[str, int, int, int, int]] = []
    i = j = 0
    while i < len(a) or j < len(b):
        start_i, start_j = i, j
        while i < len(a) and j < len(b) and a[i] == b[j]:
            i, j = i + 1, j + 1
        if i > start_i:
            ops.append(("equal", start_i, i, start_j, j))
        if i == len(a) or j == len(b):
            end_i, end_j = len(a), len(b)
        else:
            end_i, end_j = _resync(a, b, i, j)
        window = difflib.SequenceMatcher(None, a[i:end_i], b[j:end_j]).get_opcodes()
        ops += [(tag, i + i1, i + i2, j + j1, j + j2) for tag, i1, i2, j1, j2 in window]
        i, j = end_i, end_j
    merged: list[tuple[str, int, int, int, int]] = []
    for op in ops:
        if merged and op[0] == "equal" == merged[-1][0]:
            merged[-1] = ("equal", merged[-1][1], op[2], merged[-1][3], op[4])
        elif op[1] < op[2] or op[3] < op[4]:
            merged.append(op)
    return merged or [("equal", 0, 0, 0, 0)]


def _resync(a: list[str], b: list[str], i: int, j: int) -> tuple[int, int]:
    """The nearest (i', j') past a mismatch from where three lines (or the rest) agree again; else the ends."""
    for total in range(1, 2 * _RESYNC + 1):
        for di in range(max(0, total - _RESYNC), min(total, _RESYNC) + 1):
            ei, ej = i + di, j + total - di
            if ei > len(a) or ej > len(b):
                continue
            if a[ei : ei + 3] == b[ej : ej + 3] and (ei + 3 <= len(a) or len(a) - ei == len(b) - ej):
                return ei, ej
    return len(a), len(b)


def _split_lines(text: str) -> list[str]:
    """Lines with their endings, splitting only at '\\n' (str.splitlines also splits at \\v, \\x1c...)."""
    return _LINE.findall(text)


@dataclass
class _Edit:
    start: int
    end: int
    text: str


class _FilePlan:
    """Markers and edits of one file (offsets in the normalised text)."""

    def __init__(self, source: Source, setters: Mapping[str, str]) -> None:
        self.source = source
        self.setters = setters
        self.edits: list[_Edit] = []
        self.changes: list[Change] = []

    def marker(self, node: Node, item: bool) -> str | None:
        """The setter named by the node's line comment, else (sequence items) its head comment.

        docs/flux-semantics.md §5.5."""
        source = self.source
        comment_from = node.end
        if node.event.style in BLOCK:
            comment_from = source.header_end(node)
        elif node.is_empty():
            return None
        match = _LINE_COMMENT.match(source.norm, comment_from)
        if match:
            return _setter_name(match[1], self.setters)
        line = source.line(node.props)
        prefix = source.norm[source.line_starts[line] : node.props]
        if not item or prefix.strip(" \t-") or "-" not in prefix or line == 0:
            return None
        if not source.comment_only(line - 1) or (line > 1 and source.comment_only(line - 2)):
            return None  # no head comment, or one of several lines (then it is not a JSON object)
        return _setter_name(source.lines[line - 1].lstrip(" \t"), self.setters)

    def visit(self, node: Node, item: bool = False, owner_column: int = 0) -> None:
        """kyaml's walk: mapping values and sequence items, never keys, never through aliases."""
        if node.kind == "scalar":
            setter = self.marker(node, item)
            if setter is not None:
                self.apply(node, setter, owner_column)
        elif node.kind == "map" and not node.flow:
            for key, value in node.pairs():
                self.visit(value, False, self.source.column(key.start))
        elif node.kind == "seq" and not node.flow:
            for child in node.children:
                self.visit(child, True, self.source.column(node.start))

    def apply(self, node: Node, setter: str, owner_column: int) -> None:
        """Rewrite the scalar (and its tag) as go-yaml v3 would print it after the setter ran."""
        norm = self.source.norm
        original = source_scalar(node.event)
        new = self.setters[setter]
        tag, style, text = emit(set_value(original, new))
        prefix = (f"&{node.event.anchor} " if node.event.anchor else "") + (f"{tag} " if tag else "")
        if original.style in BLOCK:
            header_end = self.source.header_end(node)
            body_start = min(self.source.line_end(header_end) + 1, node.end)
            body = [line for line in norm[body_start : node.end].split("\n") if line.strip()]
            indent = len(body[0]) - len(body[0].lstrip(" ")) if body else owner_column + 2
            header, body_text = (style + "-", " " * indent + text + "\n") if style in BLOCK else (text, "")
            self.edits += [_Edit(node.props, header_end, prefix + header), _Edit(body_start, node.end, body_text)]
        elif norm[node.props : node.end] != prefix + text:
            self.edits.append(_Edit(node.props, node.end, prefix + text))
        if original.value != new:
            self.changes.append(Change(setter, original.value, new, self.source.line(node.start) + 1))

    def apply_edits(self, original: str, bom: int) -> str:
        """Map the edits back onto the original text (BOM and CRLF kept; lines correspond 1:1)."""
        starts = [bom] + [m.end() for m in re.finditer("\n", original)]
        newline = "\r\n" if "\r\n" in original else "\n"
        pieces, done = [], 0
        for edit in sorted(self.edits, key=lambda e: e.start):
            begin = starts[self.source.line(edit.start)] + self.source.column(edit.start)
            end = starts[self.source.line(edit.end)] + self.source.column(edit.end)
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


def _plan_file(path: str, text: str, setters: Mapping[str, str]) -> FileUpdate | None:
    bom = 1 if text.startswith("\ufeff") else 0
    source = yamltree.parse(text[bom:].replace("\r\n", "\n"))
    if source is None:
        return None
    plan = _FilePlan(source, setters)
    for root in source.roots:
        if root is not None:
            plan.visit(root)
    if not plan.changes:
        return None
    return FileUpdate(path, text, plan.apply_edits(text, bom), tuple(plan.changes), reformat.findings(text, source))


def plan_updates(root: Path, policies: Mapping[str, ImageRef], notes: list[str] | None = None) -> list[FileUpdate]:
    """The files Flux's setters would rewrite under ``root`` (its update path), in walk order.

    Files the walk or the limits skip (symlinks out of ``root``, FIFOs and other non-regular files, files
    over ``files.MAX_FILE_BYTES``, YAML nested over ``yamltree.MAX_YAML_DEPTH``) are appended to ``notes``.
    """
    setters = setter_values(policies)
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
        except yamltree.TooDeep as error:
            notes.append(f"skipped {candidate.rel}: {error} (not parsed)")
            continue
        if update:
            updates.append(update)
    return updates


def write_updates(root: Path, updates: Sequence[FileUpdate]) -> None:
    """Write the planned files all or none, each atomically; ``files.FileError`` names the file that stopped it."""
    files.write_all(root, [(u.path, u.before.encode("utf-8"), u.after.encode("utf-8")) for u in updates])


def recorded_digests(root: Path, policies: Mapping[str, ImageRef]) -> dict[str, str]:
    """Per policy, the digest its full-reference markers under ``root`` already hold for the policy's name and tag.

    Offline there is no ImagePolicy status; the manifests the automation last wrote are its record. A policy whose
    markers disagree (or hold none) is left out: its digest has to be looked up.
    """
    bare = {key: ImageRef(ref.name, ref.tag) for key, ref in policies.items()}
    found: dict[str, set[str]] = {}
    for update in plan_updates(root, bare):
        for change in update.changes:
            ref = bare.get(change.setter)
            prefix = f"{ref}@" if ref else ""
            if ref and change.old.startswith(prefix) and DIGEST.fullmatch(change.old.removeprefix(prefix)):
                found.setdefault(change.setter, set()).add(change.old.removeprefix(prefix))
    return {key: digests.pop() for key, digests in found.items() if len(digests) == 1}
