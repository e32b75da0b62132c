"""What the registry says about each side of a change: the manifest digest and the OCI source/revision labels."""

from __future__ import annotations

from dataclasses import dataclass

from image_tagger.edges.registry.session import RegistrySession
from image_tagger.model.errors import InputError, PublishError
from image_tagger.model.imagename import normalise_registry, parse_image
from image_tagger.model.registry import RegistryAuth
from image_tagger.pullrequest.changes import Ref

SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"
DEADLINE = 60.0  # seconds per image side, retries included


@dataclass(frozen=True)
class Facts:
    """The registry's answer for one reference; `problem` says why a field is missing."""

    digest: str = ""
    source: str = ""
    revision: str = ""
    problem: str = ""


def lookup(ref: Ref, credentials: dict[str, RegistryAuth], deadline: float = DEADLINE) -> Facts:
    """Digest and labels of `ref` (its digest when the manifest pins one, else its tag); never raises.

    `credentials` maps a registry host to its account; images of other registries are read anonymously, so an
    account is only ever sent to the registry it is for.
    """
    if not ref.name or not (ref.tag or ref.digest):
        return Facts(problem="no image reference")
    try:
        image = parse_image(ref.name)
        auth = credentials.get(normalise_registry(image.registry))
        with RegistrySession(image, auth, deadline=deadline) as session:
            manifest = session.manifest(ref.digest or ref.tag)
            if manifest is None:
                return Facts(problem=f"{ref.name}:{ref.tag or ref.digest} is not in the registry")
            labels = session.config_labels(manifest)
    except (InputError, PublishError) as error:
        return Facts(ref.digest, problem=str(error))
    return Facts(manifest.digest, labels.get(SOURCE, ""), labels.get(REVISION, ""))
