"""`image-tagger verify IMAGE:TAG --key PUB` (or keyless: `--certificate-identity ID --certificate-oidc-issuer
ISSUER`): does the registry's image for that tag carry a signature by that signer, made for that very version and
repository?

Checked against the digest the tag names now (an index's own digest, for multi-platform images), never against
the tag alone: a registry that swaps content, or someone who pushes an old signed image under a newer tag, is
refused. One line says why.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from image_tagger.edges.keylessverify import KeylessCheck
from image_tagger.edges.signer import PublicKey
from image_tagger.model.errors import InputError
from image_tagger.model.imagename import ImageName, parse_image
from image_tagger.rules import signatures

ACCEPTED_REFERENCE = "IMAGE:TAG, e.g. ghcr.io/acme/app:1.4.2"


class SignedRepository(Protocol):
    def manifest(self, reference: str) -> object | None: ...

    def signature_layers(self, digest: str) -> list[signatures.SignatureLayer]: ...


Signer = PublicKey | KeylessCheck  # each says why a signature layer is not its own (`problem`), and its `name`


@dataclass(frozen=True)
class Verdict:
    ok: bool
    line: str


def split_reference(reference: str) -> tuple[ImageName, str]:
    """`name:tag` into the repository and the tag; a digest or a missing tag is refused (a tag is what we check)."""
    name, _, tag = reference.strip().rpartition(":")
    if not name or "/" in tag or not tag:
        raise InputError(f"IMAGE {reference!r} names no tag; accepted: {ACCEPTED_REFERENCE}")
    return parse_image(name), tag


def verify(
    reference: str,
    signer: Signer,
    session_for: Callable[[ImageName], AbstractContextManager[SignedRepository]],
    digest: str = "",
) -> Verdict:
    """The verdict on `reference`: ok only with a signature by `signer` for this digest, version and repository (the
    same claims for a key's signature and a keyless one).

    `digest` pins the image (a manifest written `name:tag@digest` runs that digest, whatever the tag names now);
    without it, the digest the tag names in the registry is checked."""
    image, tag = split_reference(reference)
    with session_for(image) as session:
        if not digest:
            manifest = session.manifest(tag)
            if manifest is None:
                return Verdict(False, f"{image.ref(tag)}: no such tag in the registry")
            digest = str(getattr(manifest, "digest", ""))
        layers = session.signature_layers(digest)
    if not layers:
        return Verdict(False, f"{image.ref(tag)}@{digest}: unsigned (no cosign signature for this digest)")
    problems, others = [], []
    for layer in layers:
        if (other := signer.problem(layer)) is not None:
            others.append(other)
            continue
        problem = signatures.claim_problem(layer.payload, digest, image.name, tag)
        if problem is None:
            return Verdict(True, f"{image.ref(tag)}@{digest}: signed by {signer.name} for version {tag}")
        problems.append(problem)
    if problems:
        return Verdict(False, f"{image.ref(tag)}@{digest}: signed by {signer.name}, but {problems[0]}")
    why = "; ".join(dict.fromkeys(others))
    return Verdict(False, f"{image.ref(tag)}@{digest}: {len(layers)} signature(s), none by {signer.name}: {why}")
