"""The tag source `preview`, `select`, `update` and `rollback` read: the registry's tags for an ImageRepository,
fetched once per image, and the digest of a tag as Flux reflects it, each with the account Flux would use (its
pull Secret), else the Docker config's login.

Apart from `session` and `credentials` because it joins the two for Flux's objects: it is the one
edge module that knows an ImageRepository, and it remembers the logins it read so the caller can
redact them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from image_tagger.edges.registry.credentials import credentials_for, credentials_from_secret
from image_tagger.edges.registry.session import RegistrySession, list_tags
from image_tagger.fluxrules import automation
from image_tagger.model.imagename import parse_image
from image_tagger.model.registry import RegistryAuth


@dataclass
class RegistryTags:
    """Tags and digests from the registry, read with the pull secret Flux would use, else the Docker config's login.

    `cache` may be filled in advance with tags already listed (the demo lists them once for every cluster).
    """

    cache: dict[str, list[str]] = field(default_factory=dict)
    logins: list[RegistryAuth] = field(default_factory=list)  # what was read: the CLI redacts it
    digests: dict[str, str | None] = field(default_factory=dict)  # image:tag -> digest, once per run

    def _login(self, image: str, pull_secret: Mapping[str, Any] | None) -> RegistryAuth:
        registry = parse_image(image).registry
        auth = credentials_from_secret(pull_secret, registry) if pull_secret is not None else credentials_for(registry)
        self.logins.append(auth)
        return auth

    def tags(self, target: automation.Scanned) -> Sequence[str]:
        if not target.image:
            return ()
        if target.image not in self.cache:
            self.cache[target.image] = list_tags(target.image, self._login(target.image, target.pull_secret))
        return self.cache[target.image]

    def digest(self, target: automation.Scanned, tag: str) -> str | None:
        """The digest a HEAD of `image:tag` names (Flux's digest reflection); None when there is no such manifest."""
        return self.digest_of(target.image or "", tag, target.pull_secret)

    def digest_of(self, image: str, tag: str, pull_secret: Mapping[str, Any] | None = None) -> str | None:
        ref = f"{image}:{tag}"
        if ref not in self.digests:
            with RegistrySession(parse_image(image), self._login(image, pull_secret)) as session:
                self.digests[ref] = session.head_digest(tag)
        return self.digests[ref]
