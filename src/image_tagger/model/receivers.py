"""Flux Receivers to notify after a push, and what each answered."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Receiver:
    """Where to notify Flux, and the token that signs the notification."""

    url: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Notification:
    """Whether Flux was notified at `origin`; `detail` names that origin, never the path or the secret."""

    ok: bool
    detail: str
    attempts: int = 0
    origin: str = ""  # empty when the URL was refused before anything was sent
