"""What naming decides: the options it takes and the plan of tags it returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from image_tagger.model.imagename import ImageName
from image_tagger.model.states import PlanKind, PushMode


@dataclass(frozen=True)
class NamingOptions:
    """The naming inputs: how the tag plan is built from the git event."""

    tag_prefix: str = ""
    major_version: int | None = None
    sha_length: int = 7
    timestamp: str = "push"
    timestamp_value: int | None = None
    floating_tags: bool = False
    push: PushMode = PushMode.AUTO
    notes: tuple[str, ...] = ()  # remarks about the inputs, carried into the plan for the log and summary


@dataclass(frozen=True)
class TagPlan:
    """What to publish: the primary tag (`version`) first, then any floating tags."""

    kind: PlanKind
    version: str
    image: ImageName
    push: bool
    extra_tags: tuple[str, ...] = ()
    timestamp: int | None = None
    timestamp_source: str | None = None  # push, commit, build or given
    timestamp_from: str | None = None  # the same in words: the event field or object it was read from
    notes: tuple[str, ...] = field(default=())

    @property
    def tag_names(self) -> tuple[str, ...]:
        return (self.version, *self.extra_tags)

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(self.image.ref(t) for t in self.tag_names)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "version": self.version,
            "repository": self.image.name,
            "tags": list(self.refs),
            "push": self.push,
            "timestamp": self.timestamp,
            "timestamp_source": self.timestamp_source,
        }
