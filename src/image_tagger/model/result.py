"""What a publish did: per tag its state, the digest, the promotion, and where the image comes from."""

from __future__ import annotations

from dataclasses import dataclass, field

from image_tagger.model.errors import PublishError
from image_tagger.model.plan import TagPlan
from image_tagger.model.states import IN_REGISTRY, TagState


@dataclass(frozen=True)
class Provenance:
    """Where the image comes from: written into its labels, and its build time when the commit's is known."""

    revision: str
    source_url: str | None = None
    commit_time: int | None = None
    commit_time_from: str | None = None  # where the commit time was read, in words
    private: bool | None = None  # whether the repository is private (the event's word): the provenance's mode


@dataclass(frozen=True)
class PublishResult:
    """What happened, per tag (TagState); a tag missing from `states` was not reached."""

    plan: TagPlan
    image_id: str
    digest: str | None
    states: dict[str, TagState] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    promoted_from: str | None = None
    # The OCI labels the image carries: those this run built with, or, for a release that was promoted or already
    # there, those the registry holds (a promoted release keeps its branch build's: they are part of its bytes).
    labels: dict[str, str] = field(default_factory=dict)
    created_from: str | None = None  # where the `created` label's time came from, in words
    release_referrer: str | None = None  # the artifact that carries a promoted release's own version beside it
    signature: str = ""  # the signed payload's digest, when the image was signed for this version
    provenance: str = ""  # what provenance the image carries, in words ("" for a copy of an image already pushed)
    warnings: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        """The primary tag names this run's image in the registry (pushed, promoted or already there)."""
        return self.states.get(self.plan.version) in IN_REGISTRY

    @property
    def pushed(self) -> bool:
        """This run wrote the primary tag: built and pushed, or promoted (the tag copied onto the branch build's
        manifest). A release already published from this commit is available, not pushed: nothing was written."""
        return self.states.get(self.plan.version) in (TagState.PUSHED, TagState.PROMOTED)

    @property
    def outcome(self) -> TagState:
        return self.states.get(self.plan.version, TagState.BUILT)

    @property
    def image_ref(self) -> str:
        primary = self.plan.image.ref(self.plan.version)
        return f"{primary}@{self.digest}" if self.digest and self.available else primary

    def tags_in(self, *states: TagState) -> list[str]:
        return [self.plan.image.ref(tag) for tag in self.plan.tag_names if self.states.get(tag) in states]

    @property
    def in_registry(self) -> list[str]:
        """The references this run left in the registry, naming its image."""
        return self.tags_in(*IN_REGISTRY)

    def as_dict(self) -> dict[str, object]:
        planned = {key: value for key, value in self.plan.as_dict().items() if key != "push"}  # `pushed` says it
        return {
            **planned,
            "image": self.image_ref,  # as the `image` output: name:tag@digest
            "image_id": self.image_id,
            "digest": self.digest or "",
            "pushed": self.pushed,
            "outcome": self.outcome,
            "promoted_from": self.promoted_from or "",
            "labels": self.labels,
            "created_from": self.created_from or "",
            "release_referrer": self.release_referrer or "",
            "signed": bool(self.signature),
            "provenance": self.provenance,
            "tag_states": {
                self.plan.image.ref(tag): self.states.get(tag, TagState.NOT_PUSHED) for tag in self.plan.tag_names
            },
            "errors": {self.plan.image.ref(tag): text for tag, text in self.errors.items()},
        }


class PushFailed(PublishError):
    """A push failed after the build; `result` says exactly which tags are in the registry and which not."""

    def __init__(self, message: str, result: PublishResult) -> None:
        super().__init__(message)
        self.result = result
