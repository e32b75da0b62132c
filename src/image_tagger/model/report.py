"""What one publish run did, as the action, `image-tagger publish` and the demo render it."""

from __future__ import annotations

from dataclasses import dataclass

from image_tagger.model.plan import TagPlan
from image_tagger.model.receivers import Notification
from image_tagger.model.result import PublishResult


@dataclass(frozen=True)
class Verdict:
    """What one of the shipped Flux policies does with the new tag."""

    policy: str
    picks: bool
    reason: str


@dataclass(frozen=True)
class Failure:
    """Why the run failed: the one error line, and the title the action's annotation gives it."""

    message: str
    title: str = "Publish failed"


@dataclass(frozen=True)
class PublishReport:
    """The run's one report: the plan, per tag what happened (`result`), what Flux will do, who was notified.

    `result` is None when the run failed before anything reached the registry (a refused login or release,
    a failed build): then there is nothing to report but the failure, and the entry points write no outputs.
    """

    plan: TagPlan
    result: PublishResult | None
    verdicts: tuple[Verdict, ...] = ()
    forecast: tuple[str, ...] = ()  # the overlay's policies, one line each, from the registry's tags
    notifications: tuple[Notification, ...] = ()
    warnings: tuple[str, ...] = ()  # things that did not work but fail nothing (an overlay preview skipped)
    failure: Failure | None = None
    pushed_at: float | None = None  # the clock when the tags were in the registry, before the Receivers heard

    @property
    def exit_code(self) -> int:
        return 1 if self.failure else 0
