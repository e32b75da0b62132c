"""Signing inside the job: an image is signed by digest, for the version its tag will say, before that tag is
written, so no one who reads the registry ever sees a signed release's tag without its signature.

The key is opened first of all (a key that cannot be used is bad input, exit 2, before anything is built or
pushed). A registry that refuses the signature stops the job before any tag: the result says so, and that the
image is in the registry by digest only.
"""

from __future__ import annotations

from collections.abc import Callable

from image_tagger.edges.signer import SigningKey, load_signing_key
from image_tagger.model.errors import PublishError
from image_tagger.model.imagename import ImageName
from image_tagger.model.inputs import Signing
from image_tagger.model.log import Log
from image_tagger.model.ports import RegistryView
from image_tagger.rules import signatures


def open_signer(signing: Signing | None) -> SigningKey | None:
    return load_signing_key(signing.key.encode(), signing.password, signing.source) if signing else None


def sign(
    registry_session: Callable[[], RegistryView],
    signer: SigningKey,
    image: ImageName,
    digest: str,
    version: str,
    log: Log,
) -> str:
    """A signature of `digest` for `image:version`, unless the registry holds ours already; its payload's digest."""
    document = signatures.payload(image.name, digest, version)
    public = signer.public()
    try:
        with registry_session() as session:
            if not any(
                layer.payload == document and public.verifies(layer.payload, layer.signature)
                for layer in session.signature_layers(digest)
            ):
                session.put_signature(digest, signatures.SignatureLayer(document, signer.sign(document)))
    except PublishError as err:
        raise PublishError(
            f"{image.ref(version)} was not signed ({err}); no tag was written: {image.name}@{digest} is in the "
            "registry by digest only"
        ) from err
    log.info(f"{image.ref(version)}: signed {digest} for version {version} with {signer.name}")
    return signatures.digest_of(document)
