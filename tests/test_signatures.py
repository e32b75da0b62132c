"""Signatures in cosign's format (issue 18): the payload and signature image as data, the registry session that
stores and reads them on a real registry, and `verify`'s verdicts: a signature by that key, for that digest,
version and repository passes; another key, an unsigned image and a replayed tag are refused with the reason.
cosign's own client judges the format in tests/test_cosign.py."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.registry import Registry

from image_tagger.edges.registry.session import RegistrySession
from image_tagger.edges.signer import PublicKey, SigningKey, load_public_key
from image_tagger.model.errors import InputError
from image_tagger.model.imagename import ImageName
from image_tagger.model.registry import RegistryAuth
from image_tagger.operations.verify import split_reference, verify
from image_tagger.rules import signatures

DIGEST = "sha256:" + "ab" * 32
REPOSITORY = "127.0.0.1:5000/acme/app"


def key_pair(name: str = "cosign.key") -> tuple[SigningKey, PublicKey]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return SigningKey(name, private), load_public_key(pem, name.replace(".key", ".pub"))


def test_the_payload_is_cosign_s_simple_signing_document_with_version_and_repository() -> None:
    document = json.loads(signatures.payload(REPOSITORY, DIGEST, "1.4.2"))
    assert document == {
        "critical": {
            "identity": {"docker-reference": REPOSITORY},
            "image": {"docker-manifest-digest": DIGEST},
            "type": "cosign container image signature",
        },
        "optional": {"repository": REPOSITORY, "version": "1.4.2"},
    }
    assert signatures.signature_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"


def test_the_signature_image_lists_each_payload_as_a_layer_with_its_signature() -> None:
    layers = [signatures.SignatureLayer(b'{"a":1}', "c2ln"), signatures.SignatureLayer(b'{"b":2}', "c2lnMg==")]
    manifest, config = signatures.signature_image(layers)
    parsed = json.loads(manifest)
    assert parsed["config"]["digest"] == signatures.digest_of(config)
    assert [layer["digest"] for layer in parsed["layers"]] == json.loads(config)["rootfs"]["diff_ids"]
    assert signatures.listed_signatures(parsed) == [
        (signatures.digest_of(b'{"a":1}'), 7, {signatures.SIGNATURE_ANNOTATION: "c2ln"}),
        (signatures.digest_of(b'{"b":2}'), 7, {signatures.SIGNATURE_ANNOTATION: "c2lnMg=="}),
    ]
    parsed["layers"][0]["size"] = signatures.MAX_PAYLOAD + 1  # not a payload of ours: never fetched
    parsed["layers"][1]["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
    assert signatures.listed_signatures(parsed) == []


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ((REPOSITORY, DIGEST, "1.4.2"), None),
        ((REPOSITORY, "sha256:" + "cd" * 32, "1.4.2"), "it signs sha256:cdcd"),
        ((REPOSITORY, DIGEST, "1.0.0"), "signed for version '1.0.0', not '1.4.2' (a replayed tag)"),
        (("127.0.0.1:5000/other/app", DIGEST, "1.4.2"), "signed for repository '127.0.0.1:5000/other/app'"),
    ],
)
def test_claims_bind_the_digest_the_version_and_the_repository(claims: tuple[str, str, str], problem: str) -> None:
    found = signatures.claim_problem(signatures.payload(*claims), DIGEST, REPOSITORY, "1.4.2")
    assert found == problem if problem is None else problem in (found or "")


def test_a_payload_without_a_version_or_of_another_type_vouches_for_nothing() -> None:
    bare = {"critical": {"image": {"docker-manifest-digest": DIGEST}, "type": signatures.PAYLOAD_TYPE}}
    assert "names no version" in (signatures.claim_problem(json.dumps(bare).encode(), DIGEST, REPOSITORY, "1") or "")
    bare["critical"]["type"] = "atomic container signature"
    assert "not a cosign image signature" in (
        signatures.claim_problem(json.dumps(bare).encode(), DIGEST, REPOSITORY, "1") or ""
    )
    assert "not a cosign signature payload" in (signatures.claim_problem(b"[]", DIGEST, REPOSITORY, "1") or "")


def test_a_signature_checks_only_with_its_own_key_and_its_own_payload() -> None:
    signer, public = key_pair()
    _, other = key_pair("other.key")
    document = signatures.payload(REPOSITORY, DIGEST, "1.4.2")
    signature = signer.sign(document)
    assert public.verifies(document, signature)
    assert not other.verifies(document, signature)
    assert not public.verifies(document.replace(b"1.4.2", b"1.4.3"), signature)
    assert not public.verifies(document, "not base64!")


def test_a_file_without_a_public_key_is_exit_2_naming_it() -> None:
    with pytest.raises(InputError, match=r"^keys/cosign.pub: no PUBLIC KEY block"):
        load_public_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "keys/cosign.pub")


@pytest.mark.parametrize("reference", ["acme/app", "acme/app@sha256:" + "ab" * 32, "127.0.0.1:5000/acme/app"])
def test_verify_wants_a_tag(reference: str) -> None:
    with pytest.raises(InputError, match="names no tag|carries a digest"):
        split_reference(reference)


@pytest.fixture
def signed_image(open_registry: Registry, request: pytest.FixtureRequest) -> tuple[ImageName, str, str]:
    """A release in a real registry, a repository per test: the repository, its tag and the digest the tag names."""
    path = "signed/" + request.node.name.removeprefix("test_")[:40].replace("_", "-")
    open_registry.seed(path, ["1.4.2", "1.5.0"])
    return ImageName(open_registry.host, path), "1.4.2", open_registry.manifest_digest(path, "1.4.2")


def session_for(image: ImageName):
    @contextmanager
    def opened(_: ImageName):
        with RegistrySession(image, RegistryAuth()) as session:
            yield session

    return opened


def test_signatures_are_stored_beside_the_image_and_read_back(signed_image: tuple[ImageName, str, str]) -> None:
    image, tag, digest = signed_image
    signer, public = key_pair()
    first = signatures.SignatureLayer(signatures.payload(image.name, digest, tag), "")
    first = signatures.SignatureLayer(first.payload, signer.sign(first.payload))
    second_payload = signatures.payload(image.name, digest, "main-3f2c1a9-1764110000")
    second = signatures.SignatureLayer(second_payload, signer.sign(second_payload))

    with RegistrySession(image, RegistryAuth()) as session:
        session.put_signature(digest, first)
        session.put_signature(digest, second)
        session.put_signature(digest, first)  # the same signature again: kept once
        stored = session.signature_layers(digest)

    assert stored == [second, first]
    assert verify(image.ref(tag), public, session_for(image)).ok


def test_verify_refuses_another_key_an_unsigned_image_and_a_replayed_tag(
    signed_image: tuple[ImageName, str, str], open_registry: Registry
) -> None:
    image, tag, digest = signed_image
    signer, public = key_pair()
    _, other = key_pair("other.key")
    opened = session_for(image)

    unsigned = verify(image.ref(tag), public, opened)
    assert not unsigned.ok and "unsigned (no cosign signature for this digest)" in unsigned.line

    document = signatures.payload(image.name, digest, tag)
    with RegistrySession(image, RegistryAuth()) as session:
        session.put_signature(digest, signatures.SignatureLayer(document, signer.sign(document)))
    assert verify(image.ref(tag), public, opened).ok
    by_another = verify(image.ref(tag), other, opened)
    assert not by_another.ok and "1 signature(s), none by other.pub" in by_another.line

    # The signed 1.4.2 image pushed again as 1.5.0: the registry's 1.5.0 now names the signed digest.
    with RegistrySession(image, RegistryAuth()) as session:
        session.put_manifest("1.5.0", session.manifest(tag))
    replayed = verify(image.ref("1.5.0"), public, opened)
    assert not replayed.ok and "signed for version '1.4.2', not '1.5.0' (a replayed tag)" in replayed.line
    missing = verify(image.ref("9.9.9"), public, opened)
    assert not missing.ok and "no such tag" in missing.line
