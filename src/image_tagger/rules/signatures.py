"""Image signatures in cosign's format, as pure data: the signed payload, the signature image that carries it, and
the claims a verifier checks. No keys and no I/O here (edges/signer.py signs, the registry session stores).

cosign's tag-based layout, which cosign 2 and 3, Kyverno, sigstore's policy-controller and Flux's OCIRepository all
verify: the signatures of the manifest `sha256:<hex>` live in an image tagged `sha256-<hex>.sig`, one layer per
signature. A layer is the payload (a JSON "simple signing" document naming the manifest digest and the repository)
and carries the base64 signature in an annotation. Our payloads also name the `version` (the tag) and the
`repository` in cosign's optional annotations, so a signature binds an image to one version: an old signed image
pushed again under a newer tag carries no signature for that tag.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PAYLOAD_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
# A keyless signature's certificate (PEM), its issuing chain (PEM) and the Rekor bundle (JSON), as cosign annotates.
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
PAYLOAD_TYPE = "cosign container image signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MAX_PAYLOAD = 64 << 10  # a payload is a few hundred bytes; anything larger is not one of ours
VERSION, REPOSITORY = "version", "repository"


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def signature_tag(digest: str) -> str:
    """`sha256-<hex>.sig`: where cosign keeps the signatures of the manifest `digest`."""
    algorithm, _, hexdigits = digest.partition(":")
    return f"{algorithm}-{hexdigits}.sig"


def payload(repository: str, digest: str, version: str) -> bytes:
    """The simple-signing document for `digest`, bound to `version` and `repository` (cosign's optional claims)."""
    document = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": {REPOSITORY: repository, VERSION: version},
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class SignatureLayer:
    """One signature: the payload's bytes and the base64 signature over them; a keyless one also carries its
    certificate, chain and Rekor bundle (empty for a key's signature)."""

    payload: bytes
    signature: str
    certificate: str = ""
    chain: str = ""
    bundle: str = ""

    @classmethod
    def read(cls, payload: bytes, annotations: Mapping[str, str]) -> SignatureLayer:
        """The layer of `payload` with the annotations listed_signatures found beside it."""
        return cls(
            payload,
            annotations[SIGNATURE_ANNOTATION],
            annotations.get(CERTIFICATE_ANNOTATION, ""),
            annotations.get(CHAIN_ANNOTATION, ""),
            annotations.get(BUNDLE_ANNOTATION, ""),
        )

    def descriptor(self) -> dict[str, object]:
        keyless = {
            CERTIFICATE_ANNOTATION: self.certificate,
            CHAIN_ANNOTATION: self.chain,
            BUNDLE_ANNOTATION: self.bundle,
        }
        return {
            "mediaType": PAYLOAD_MEDIA_TYPE,
            "size": len(self.payload),
            "digest": digest_of(self.payload),
            "annotations": {SIGNATURE_ANNOTATION: self.signature, **{k: v for k, v in keyless.items() if v}},
        }


def signature_image(layers: Sequence[SignatureLayer]) -> tuple[bytes, bytes]:
    """The signature image holding `layers`, as (manifest, config) bytes: an OCI image whose layers are the
    payloads, as cosign writes it (its config lists them as the root filesystem's layers)."""
    config = {
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(layer.payload) for layer in layers]},
    }
    config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config_bytes), "digest": digest_of(config_bytes)},
        "layers": [layer.descriptor() for layer in layers],
    }
    return json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode(), config_bytes


def listed_signatures(manifest: Mapping[str, object]) -> list[tuple[str, int, dict[str, str]]]:
    """(payload digest, size, string annotations) of each signature layer of a signature image, the base64
    signature among the annotations; others are skipped."""
    found = []
    for layer in manifest.get("layers") or []:
        if not isinstance(layer, dict) or layer.get("mediaType") != PAYLOAD_MEDIA_TYPE:
            continue
        annotations = layer.get("annotations") or {}
        strings = {k: v for k, v in annotations.items() if isinstance(v, str)} if isinstance(annotations, dict) else {}
        digest, size = layer.get("digest"), layer.get("size")
        if (
            isinstance(digest, str)
            and isinstance(size, int)
            and SIGNATURE_ANNOTATION in strings
            and 0 < size <= MAX_PAYLOAD
        ):
            found.append((digest, size, strings))
    return found


def claim_problem(document: bytes, digest: str, repository: str, version: str) -> str | None:
    """Why a validly signed payload does not vouch for `repository:version` at `digest`; None when it does."""
    try:
        parsed = json.loads(document)
        critical, optional = parsed["critical"], parsed.get("optional") or {}
        signed_digest = critical["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError):
        return "its payload is not a cosign signature payload"
    if critical.get("type") != PAYLOAD_TYPE:
        return f"its payload is of type {str(critical.get('type'))[:60]!r}, not a cosign image signature"
    if signed_digest != digest:
        return f"it signs {str(signed_digest)[:80]}, not {digest}"
    if not isinstance(optional, dict) or optional.get(VERSION) is None:
        return "it names no version (signed without the version annotation)"
    if optional.get(VERSION) != version:
        return f"it was signed for version {str(optional.get(VERSION))[:60]!r}, not {version!r} (a replayed tag)"
    if optional.get(REPOSITORY) != repository:
        return f"it was signed for repository {str(optional.get(REPOSITORY))[:120]!r}, not {repository!r}"
    return None
