"""A registry account, as logins and registry sessions use it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RegistryAuth:
    """One registry account; empty username means anonymous."""

    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def basic(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username else None
