"""What an automation branch changes: the marked image references that differ between the base and the head."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from image_tagger.pullrequest.markers import Marked, image_name_beside


@dataclass(frozen=True)
class Ref:
    """One side of a change: image name, tag and digest as the manifests write them (any may be empty)."""

    name: str = ""
    tag: str = ""
    digest: str = ""


@dataclass
class ImageChange:
    """One image of one policy going from `old` to `new`, and the files (`path:line`) that say so."""

    policy: str
    old: Ref
    new: Ref
    places: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.new.name or self.old.name

    @property
    def short_name(self) -> str:
        """`app` for `docker.io/acme/app`: what the title calls the image."""
        return self.name.rsplit("/", 1)[-1] if self.name else self.policy.split(":", 1)[-1]


def split_reference(value: str) -> Ref:
    """`name:tag@digest` (tag after the last ':' following the last '/'), as Flux writes full-reference markers."""
    rest, _, digest = value.partition("@")
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        return Ref(rest[:colon], rest[colon + 1 :], digest)
    return Ref(rest, "", digest)


def _ref(fields: dict[str, str], name_beside: str) -> Ref:
    """A Ref from the fields one policy marks in one place: the full reference, or :name/:tag/:digest parts."""
    ref = split_reference(fields[""]) if "" in fields else Ref()
    return Ref(
        fields.get("name") or ref.name or name_beside,
        fields.get("tag") or ref.tag,
        fields.get("digest") or ref.digest,
    )


def _by_policy(marked: Iterable[Marked]) -> dict[tuple[str, str], list[Marked]]:
    grouped: dict[tuple[str, str], list[Marked]] = defaultdict(list)
    for item in marked:
        grouped[(item.path, item.policy)].append(item)
    return grouped


def image_changes(
    head: list[Marked], base: list[Marked], head_text: Callable[[str], str], prefix: str = ""
) -> list[ImageChange]:
    """The images whose marked reference differs between `base` and `head` (files relative to the same folder).

    Fields pair by file, setter and order of appearance; a policy's fields in one file make one reference
    (several places of one policy, e.g. a Deployment and a CronJob, are one change when they agree).
    `head_text(path)` gives a head file's text, to find the image name beside a `:tag` marker.
    """
    base_fields = _by_policy(base)
    found: dict[tuple[str, Ref, Ref], ImageChange] = {}
    for (path, policy), items in _by_policy(head).items():
        old_items = base_fields.get((path, policy), [])
        changed = [item for item in items if _counterpart(item, items, old_items) != item.value]
        if not changed:
            continue
        beside = ""
        if not any(i.field in ("", "name") for i in items):
            beside = image_name_beside(head_text(path), items[0].line)
        new = _ref({i.field: i.value for i in items}, beside)
        old = _ref({i.field: i.value for i in old_items}, beside) if old_items else Ref(new.name)
        change = found.setdefault((policy, old, new), ImageChange(policy, old, new))
        change.places += [f"{prefix}{path}:{item.line}" for item in changed]
    return list(found.values())


def _counterpart(item: Marked, items: list[Marked], old_items: list[Marked]) -> str | None:
    """The base value of the same setter at the same position among that setter's fields, None if there is none."""
    index = [i for i in items if i.setter == item.setter].index(item)
    same = [i for i in old_items if i.setter == item.setter]
    return same[index].value if index < len(same) else None
