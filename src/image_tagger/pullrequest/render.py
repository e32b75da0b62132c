"""The pull request's title and body (Markdown) for a list of image changes.

Labels, digests and registry errors come from outside: they are shown with control characters escaped,
so none of them can break a table row or start a line of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from image_tagger.operations.verify import Verdict
from image_tagger.pullrequest.changes import ImageChange
from image_tagger.pullrequest.facts import Facts
from image_tagger.rules.redact import escape_controls

MARK = "<!-- flux-ci-cd/pull-request -->"
TITLE_LIMIT = 256
ARROW = "\N{RIGHTWARDS ARROW}"


def tag_of(side: str) -> str:
    return side or "(none)"


def title(changes: list[ImageChange]) -> str:
    """`app: 1.4.1 → 1.4.2`, several joined by `, `; cut with `…` past GitHub's 256 characters."""
    parts = [
        f"{c.short_name}: {tag_of(c.old.tag or c.old.digest)} {ARROW} {tag_of(c.new.tag or c.new.digest)}"
        for c in changes
    ]
    text = ", ".join(parts)
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "\N{HORIZONTAL ELLIPSIS}"


def compare_url(old: Facts, new: Facts) -> str:
    """`<source>/compare/<old revision>...<new revision>` when both images name one http(s) source, else ""."""
    source = _repository(new.source)
    if not (old.revision and new.revision and source) or _repository(old.source) != source:
        return ""
    if urlsplit(source).scheme not in ("http", "https"):
        return ""
    return f"{source}/compare/{old.revision}...{new.revision}"


def _repository(source: str) -> str:
    return source.strip().removesuffix("/").removesuffix(".git")


def short(revision: str) -> str:
    return revision[:12]


def _code(text: str) -> str:
    return f"`{escape_controls(text)}`" if text else ""


def body(
    changes: list[ImageChange],
    facts: dict[tuple[int, str], Facts],
    head: str,
    base: str,
    verdicts: Mapping[int, Verdict] | None = None,
) -> str:
    """One table row per image and a section each: old and new tag and digest, revisions and the compare link; with
    the signature gate, each image's verdict, the refusals first."""
    verdicts = verdicts or {}
    lines = [
        MARK,
        f"Flux's image automation committed these updates to `{head}`. Merging this pull request into `{base}` "
        "deploys them; until then the cluster keeps running what it runs.",
        "",
    ]
    refused = [verdict for verdict in verdicts.values() if not verdict.ok]
    if refused:
        lines += ["**Do not merge: not signed as required.**", ""]
        lines += [f"- {escape_controls(verdict.line)}" for verdict in refused]
        lines += [""]
    lines += [
        "| image | from | to | digest | changes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for index, change in enumerate(changes):
        old, new = facts[(index, "old")], facts[(index, "new")]
        link = compare_url(old, new)
        what = f"[{short(old.revision)}...{short(new.revision)}]({escape_controls(link)})" if link else ""
        cells = (_code(change.name), _code(change.old.tag), _code(change.new.tag), _code(new.digest), what)
        lines.append("| " + " | ".join(cells) + " |")
    for index, change in enumerate(changes):
        old, new = facts[(index, "old")], facts[(index, "new")]
        lines += ["", f"### {change.name or change.policy} ({change.policy})", ""]
        for label, ref, fact in (("from", change.old, old), ("to", change.new, new)):
            detail = ", ".join(
                part
                for part in (
                    f"digest {_code(fact.digest)}" if fact.digest else "",
                    f"revision {_code(fact.revision)}" if fact.revision else "",
                    f"source {escape_controls(fact.source)}" if fact.source else "",
                    f"registry: {escape_controls(fact.problem)}" if fact.problem else "",
                )
                if part
            )
            lines.append(f"- {label} {_code(ref.tag) or '(none)'}" + (f": {detail}" if detail else ""))
        link = compare_url(old, new)
        if link:
            lines.append(f"- compare: {escape_controls(link)}")
        lines.append("- marked in: " + ", ".join(_code(place) for place in change.places))
        if index in verdicts:
            mark = "signed" if verdicts[index].ok else "**refused**"
            lines.append(f"- signature: {mark}: {escape_controls(verdicts[index].line)}")
    return "\n".join(lines) + "\n"
