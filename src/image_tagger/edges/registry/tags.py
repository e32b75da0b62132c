"""The tag source `preview` and `rollback` read: the registry's tags for an ImageRepository, fetched once
per image with the account Flux would use (its pull Secret), else the Docker config's login.

Apart from `session` and `credentials` because it joins the two for Flux's objects: it is the one
edge module that knows an ImageRepository, and it remembers the logins it read so the caller can
redact them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from image_tagger.edges.registry.credentials import credentials_for, credentials_from_secret
from image_tagger.edges.registry.session import list_tags
from image_tagger.fluxrules import automation
from image_tagger.model.imagename import parse_image
from image_tagger.model.registry import RegistryAuth


@dataclass
class RegistryTags:
    """Tags from the registry, read with the pull secret Flux would use, else the Docker config's login."""

    cache: dict[str, list[str]] = field(default_factory=dict)
    logins: list[RegistryAuth] = field(default_factory=list)  # what was read: the CLI redacts it

    def tags(self, target: automation.Scanned) -> Sequence[str]:
        if not target.image:
            return ()
        if target.image not in self.cache:
            registry = parse_image(target.image).registry
            if target.pull_secret is not None:
                auth = credentials_from_secret(target.pull_secret, registry)
            else:
                auth = credentials_for(registry)
            self.logins.append(auth)
            self.cache[target.image] = list_tags(target.image, auth)
        return self.cache[target.image]
