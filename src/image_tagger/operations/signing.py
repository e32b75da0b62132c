"""Signing inside the job: an image is signed by digest, for the version its tag will say, before that tag is
written, so no one who reads the registry ever sees a signed release's tag without its signature.

The key is opened first of all (a key that cannot be used is bad input, exit 2, before anything is built or
pushed). A registry that refuses the signature stops the job before any tag: the result says so, and that the
image is in the registry by digest only. Keyless signing (edges/keyless.py: cosign, with the job's OIDC token) is
refused as early when the job may not ask for a token, and its signature is read back before any tag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from image_tagger.edges import oidc
from image_tagger.edges.keyless import KeylessSigner
from image_tagger.edges.signer import SigningKey, load_signing_key
from image_tagger.model.errors import PublishError
from image_tagger.model.imagename import ImageName
from image_tagger.model.inputs import Keyless, Signing
from image_tagger.model.log import Log
from image_tagger.model.ports import RegistryView
from image_tagger.model.registry import RegistryAuth
from image_tagger.rules import signatures

Signer = SigningKey | KeylessSigner


def open_signer(signing: Signing | None) -> SigningKey | None:
    return load_signing_key(signing.key.encode(), signing.password, signing.source) if signing else None


def open_keyless(keyless: Keyless, credentials: RegistryAuth, env: Mapping[str, str]) -> KeylessSigner:
    """Keyless signing, refused (exit 2) before the build when the job may not ask for an OIDC token."""
    return KeylessSigner(keyless.signer_image, oidc.endpoint(env), credentials)


def sign(
    registry_session: Callable[[], RegistryView],
    signer: Signer,
    image: ImageName,
    digest: str,
    version: str,
    log: Log,
) -> str:
    """A signature of `digest` for `image:version`, unless the registry holds ours already (keyless: always a new
    one, see sign_keyless); its payload's digest."""
    if isinstance(signer, KeylessSigner):
        return sign_keyless(registry_session, signer, image, digest, version, log)
    document = signatures.payload(image.name, digest, version)
    public = signer.public()

    def ours(existing: list[signatures.SignatureLayer]) -> bool:
        return any(layer.payload == document and public.verifies(layer.payload, layer.signature) for layer in existing)

    try:
        with registry_session() as session:
            session.put_signature(digest, signatures.SignatureLayer(document, signer.sign(document)), unless=ours)
    except PublishError as err:
        raise not_signed(image, digest, version, err) from err
    log.info(f"{image.ref(version)}: signed {digest} for version {version} with {signer.name}")
    return signatures.digest_of(document)


def not_signed(image: ImageName, digest: str, version: str, err: PublishError) -> PublishError:
    return PublishError(
        f"{image.ref(version)} was not signed ({err}); no tag was written: {image.name}@{digest} is in the "
        "registry by digest only"
    )


def sign_keyless(
    registry_session: Callable[[], RegistryView],
    signer: KeylessSigner,
    image: ImageName,
    digest: str,
    version: str,
    log: Log,
) -> str:
    """cosign signs `digest` keyless, then the registry must hold a signature naming this digest, version and
    repository (read back, as every tag is) before any tag is written; returns that payload's digest. The
    certificate in it cannot be checked here (that needs Sigstore's trust root): cosign's verify does that."""
    try:
        signer.sign(image, digest, version, log)
        with registry_session() as session:
            layers = session.signature_layers(digest)
        found = [
            layer for layer in layers if signatures.claim_problem(layer.payload, digest, image.name, version) is None
        ]
        if not found:
            raise PublishError(f"cosign finished, but the registry holds no signature of it for version {version}")
    except PublishError as err:
        raise not_signed(image, digest, version, err) from err
    log.info(f"{image.ref(version)}: signed {digest} for version {version} keyless (GitHub OIDC, Fulcio, Rekor)")
    return signatures.digest_of(found[-1].payload)
