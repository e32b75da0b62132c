"""`image-tagger verify --certificate-identity … --certificate-oidc-issuer …` (issue 18): keyless cosign signatures
checked offline against a Sigstore trust root, on a real loopback registry.

A test Sigstore (tests/support/sigstore.py: a Fulcio CA chain and a Rekor key made here) signs as cosign does; its
trusted_root.json stands in for the public-good one through --trusted-root. cosign's own client verifies one of
these signatures with the same trust root, so the format is cosign's."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from support.cli import assert_input_error, explain, run_cli
from support.registry import Registry
from support.sigstore import GITHUB_ISSUER, WORKFLOW, FulcioCA, LocalSigstore, Rekor
from test_cosign import run_cosign

from image_tagger.edges import keylessverify
from image_tagger.edges.registry.session import RegistrySession
from image_tagger.edges.signer import SigningKey
from image_tagger.model.errors import InputError
from image_tagger.model.imagename import ImageName
from image_tagger.model.registry import RegistryAuth
from image_tagger.operations.verify import verify
from image_tagger.rules import signatures

FLAGS = ("--certificate-identity", "--certificate-identity-regexp", "--certificate-oidc-issuer")


@pytest.fixture(scope="module")
def sigstore() -> LocalSigstore:
    return LocalSigstore()


@pytest.fixture(scope="module")
def trust(sigstore: LocalSigstore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trust") / "trusted_root.json"
    path.write_bytes(sigstore.trusted_root())
    return path


@pytest.fixture
def release(open_registry: Registry, request: pytest.FixtureRequest) -> tuple[ImageName, str]:
    """1.4.2 and 1.5.0 in a real registry, a repository per test; the digest 1.4.2 names."""
    path = "keyless-verify/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[-60:].strip("-")
    open_registry.seed(path, ["1.4.2", "1.5.0"])
    return ImageName(open_registry.host, path), open_registry.manifest_digest(path, "1.4.2")


def store(image: ImageName, digest: str, layer: signatures.SignatureLayer) -> None:
    with RegistrySession(image, RegistryAuth()) as session:
        session.put_signature(digest, layer)


def check(sigstore: LocalSigstore, identity: str = WORKFLOW, issuer: str = GITHUB_ISSUER, regexp: str | None = None):
    who = keylessverify.identity(None if regexp else identity, regexp, issuer, FLAGS)
    return keylessverify.KeylessCheck(who, keylessverify.load_trust_root(sigstore.trusted_root(), "test root"))


def opened(image: ImageName):
    @contextmanager
    def session(_: ImageName) -> Iterator[RegistrySession]:
        with RegistrySession(image, RegistryAuth()) as open_session:
            yield open_session

    return session


def test_a_keyless_signature_for_the_identity_issuer_and_version_passes(
    sigstore: LocalSigstore, release: tuple[ImageName, str]
) -> None:
    image, digest = release
    store(image, digest, sigstore.sign(signatures.payload(image.name, digest, "1.4.2")))
    verdict = verify(image.ref("1.4.2"), check(sigstore), opened(image))
    assert verdict.ok, verdict.line
    assert (
        verdict.line
        == f"{image.ref('1.4.2')}@{digest}: signed by {WORKFLOW} (issuer {GITHUB_ISSUER}) for version 1.4.2"
    )
    pattern = r"^https://github\.com/acme/app/\.github/workflows/release\.yml@refs/tags/v"
    assert verify(image.ref("1.4.2"), check(sigstore, regexp=pattern), opened(image)).ok
    other_pattern = check(sigstore, regexp=r"^https://github\.com/acme/app/\.github/workflows/nightly\.yml@")
    assert "signed by another identity" in verify(image.ref("1.4.2"), other_pattern, opened(image)).line


OTHER_CA, OTHER_REKOR = FulcioCA("rogue-fulcio"), Rekor()


@pytest.mark.parametrize(
    ("signed", "why"),
    [
        (
            {"identity": "https://github.com/mallory/app/.github/workflows/release.yml@refs/tags/v1.4.2"},
            "signed by another identity (https://github.com/mallory/app/.github/workflows/release.yml@refs/tags/v1.4.2)",
        ),
        ({"identity": "release@acme.example"}, "signed by another identity (release@acme.example)"),
        ({"issuer": "https://accounts.google.com"}, "signed through another issuer (https://accounts.google.com)"),
        ({"issuer": None}, "signed through another issuer (None)"),
        ({"ca": OTHER_CA}, "untrusted: its certificate does not chain to test root's Fulcio CA"),
        ({"usage": ExtendedKeyUsageOID.CLIENT_AUTH}, "untrusted: its certificate is not for code signing"),
        ({"logged": False}, "no transparency-log proof (no Rekor bundle)"),
        ({"rekor": OTHER_REKOR}, "its Rekor bundle's signature does not verify with the trusted Rekor key"),
        ({"late": timedelta(minutes=20)}, "outside its certificate's validity"),
    ],
    ids=["identity", "email", "issuer", "no-issuer", "chain", "usage", "no-bundle", "rekor", "expired"],
)
def test_a_keyless_signature_is_refused_saying_why(
    sigstore: LocalSigstore, release: tuple[ImageName, str], signed: dict, why: str
) -> None:
    image, digest = release
    store(image, digest, sigstore.sign(signatures.payload(image.name, digest, "1.4.2"), **signed))
    verdict = verify(image.ref("1.4.2"), check(sigstore), opened(image))
    assert not verdict.ok
    assert (
        f"{image.ref('1.4.2')}@{digest}: 1 signature(s), none by {WORKFLOW} (issuer {GITHUB_ISSUER}): " in verdict.line
    )
    assert why in verdict.line


def test_the_legacy_issuer_extension_counts_and_the_newer_one_wins(sigstore: LocalSigstore) -> None:
    """Fulcio writes the issuer twice, the same (.1.1, deprecated, and .1.8); where only one is there it counts, and
    where they differ the newer one does, as sigstore-go reads them."""
    document = signatures.payload("r/app", "sha256:" + "ab" * 32, "1.4.2")
    assert check(sigstore).problem(sigstore.sign(document, issuer=None, legacy_issuer=GITHUB_ISSUER)) is None
    both = sigstore.sign(document, issuer="https://accounts.google.com", legacy_issuer=GITHUB_ISSUER)
    assert "another issuer (https://accounts.google.com)" in (check(sigstore).problem(both) or "")


def test_a_bundle_for_another_signature_payload_or_certificate_is_refused(sigstore: LocalSigstore) -> None:
    """A valid SET is not enough: its entry must log this payload, this signature and this certificate."""
    document = signatures.payload("r/app", "sha256:" + "ab" * 32, "1.4.2")
    good, other = sigstore.sign(document), sigstore.sign(document.replace(b"1.4.2", b"1.4.3"))
    who = check(sigstore)
    swapped_payload = signatures.SignatureLayer(
        good.payload, good.signature, good.certificate, good.chain, other.bundle
    )
    assert who.problem(swapped_payload) == "its Rekor entry logs another payload"
    twin = sigstore.sign(document)  # same payload, another key and certificate
    spliced = signatures.SignatureLayer(document, good.signature, good.certificate, good.chain, twin.bundle)
    assert who.problem(spliced) == "its Rekor entry logs another signature"
    far = {"body": "e30=", "integratedTime": 10**30, "logIndex": 1, "logID": sigstore.rekor.log_id}
    for text in ("{}", "[" * 5000, '{"Payload": []}', json.dumps({"SignedEntryTimestamp": "", "Payload": far})):
        forged = signatures.SignatureLayer(document, good.signature, good.certificate, good.chain, text)
        assert who.problem(forged) == "no transparency-log proof (its Rekor bundle does not read)"
    not_pem = signatures.SignatureLayer(document, good.signature, "-----BEGIN CERTIFICATE-----\nAAAA\n")
    assert who.problem(not_pem) == "its certificate is not a PEM certificate with a key we know"
    assert who.problem(signatures.SignatureLayer(document, twin.signature, good.certificate)) == (
        "its signature is not by its certificate's key"
    )


def test_unsigned_a_key_s_signature_and_a_replayed_version_are_refused(
    sigstore: LocalSigstore, release: tuple[ImageName, str]
) -> None:
    image, digest = release
    keyless = check(sigstore)
    unsigned = verify(image.ref("1.4.2"), keyless, opened(image))
    assert not unsigned.ok and unsigned.line.endswith(": unsigned (no cosign signature for this digest)")

    document = signatures.payload(image.name, digest, "1.4.2")
    store(
        image,
        digest,
        signatures.SignatureLayer(document, SigningKey("k", ec.generate_private_key(ec.SECP256R1())).sign(document)),
    )
    keyed = verify(image.ref("1.4.2"), keyless, opened(image))
    assert not keyed.ok and keyed.line.endswith(": a key's signature, not a keyless one (no certificate)")

    store(image, digest, sigstore.sign(document))  # beside the key's signature: the keyless one counts
    assert verify(image.ref("1.4.2"), keyless, opened(image)).ok
    with RegistrySession(image, RegistryAuth()) as session:
        session.put_manifest("1.5.0", session.manifest("1.4.2"))  # the signed 1.4.2 pushed again as 1.5.0
    replayed = verify(image.ref("1.5.0"), keyless, opened(image))
    assert not replayed.ok
    said = f"signed by {WORKFLOW} (issuer {GITHUB_ISSUER}), but it was signed for version '1.4.2', not '1.5.0'"
    assert f"{said} (a replayed tag)" in replayed.line


def test_a_trust_root_that_is_not_one_is_exit_2_naming_the_file(tmp_path: Path) -> None:
    for text, what in (
        (b"{}", "it holds no Fulcio certificate chain or no ECDSA Rekor key"),
        (b"[]", "not a trusted_root.json"),
        (
            b'{"certificateAuthorities": [{"certChain": {"certificates": [{"rawBytes": "AAAA"}]}}]}',
            "not a trusted_root.json",
        ),
    ):
        with pytest.raises(InputError, match=rf"^roots/x.json: {what}"):
            keylessverify.load_trust_root(text, "roots/x.json")
    public = keylessverify.public_good()
    assert public.authorities and list(public.logs) == [
        "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"  # rekor.sigstore.dev's log ID
    ]


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--certificate-identity", WORKFLOW), "--certificate-oidc-issuer is needed for keyless"),
        (("--certificate-oidc-issuer", GITHUB_ISSUER), "--certificate-identity or --certificate-identity-regexp"),
        (
            (
                "--certificate-identity",
                WORKFLOW,
                "--certificate-identity-regexp",
                "x",
                "--certificate-oidc-issuer",
                "i",
            ),
            "give one of them",
        ),
        (
            ("--certificate-identity-regexp", "(?=x)", "--certificate-oidc-issuer", GITHUB_ISSUER),
            "error parsing regexp",
        ),
        (("--key", "cosign.pub", "--certificate-identity", WORKFLOW), "--key and --certificate-identity"),
        ((), "verify needs --key PUB"),
        (("--key", "cosign.pub", "--trusted-root", "root.json"), "--trusted-root is for keyless verification"),
    ],
)
def test_the_cli_refuses_incomplete_keyless_flags_with_exit_2(flags: tuple[str, ...], said: str) -> None:
    assert_input_error(run_cli("verify", "127.0.0.1:9/acme/app:1.4.2", *flags), said)


def test_the_cli_verifies_keyless_with_a_trusted_root_and_says_why_not(
    sigstore: LocalSigstore, trust: Path, release: tuple[ImageName, str], tmp_path: Path
) -> None:
    image, digest = release
    store(image, digest, sigstore.sign(signatures.payload(image.name, digest, "1.4.2")))
    with RegistrySession(image, RegistryAuth()) as session:
        session.put_manifest("1.5.0", session.manifest("1.4.2"))
    keyless = (
        "--certificate-identity",
        WORKFLOW,
        "--certificate-oidc-issuer",
        GITHUB_ISSUER,
        "--trusted-root",
        str(trust),
    )

    good = run_cli("verify", image.ref("1.4.2"), *keyless)
    replay = run_cli("verify", image.ref("1.5.0"), *keyless)
    other = run_cli("verify", image.ref("1.4.2"), *keyless[:1], WORKFLOW + "x", *keyless[2:])
    public_good = run_cli("verify", image.ref("1.4.2"), *keyless[:4])  # the pinned public-good root: not our CA
    (tmp_path / "bad.json").write_text("{")
    bad_root = run_cli("verify", image.ref("1.4.2"), *keyless[:5], str(tmp_path / "bad.json"))

    assert good.returncode == 0 and f"@{digest}: signed by {WORKFLOW}" in good.stdout, explain(good)
    assert replay.returncode == 1 and "(a replayed tag)" in replay.stderr, explain(replay)
    assert other.returncode == 1 and "signed by another identity" in other.stderr, explain(other)
    assert public_good.returncode == 1, explain(public_good)
    assert "its Rekor bundle is from a log the trust root does not hold" in public_good.stderr
    for done in (replay, other, public_good):
        assert len(done.stderr.splitlines()) == 1 and done.stdout == ""
    assert_input_error(bad_root, "bad.json: not a trusted_root.json")


def test_cosign_verifies_our_test_keyless_signature_with_the_same_trust_root(
    cosign: Path, sigstore: LocalSigstore, trust: Path, release: tuple[ImageName, str]
) -> None:
    """The format is cosign's: cosign v3.1.3 verifies the signature (certificate, chain, Rekor bundle, identity and
    annotations) against the test trust root, and refuses another identity. No SCT is made (--insecure-ignore-sct)."""
    image, digest = release
    store(image, digest, sigstore.sign(signatures.payload(image.name, digest, "1.4.2")))
    common = ("verify", "--trusted-root", str(trust), "--insecure-ignore-sct", "--allow-http-registry")
    reference = f"{image.name}@{digest}"

    done = run_cosign(
        cosign,
        *common,
        "--certificate-identity",
        WORKFLOW,
        "--certificate-oidc-issuer",
        GITHUB_ISSUER,
        "-a",
        "version=1.4.2",
        reference,
        cwd=trust.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [verified] = json.loads(done.stdout)
    assert (
        verified["optional"]["version"] == "1.4.2" and verified["critical"]["image"]["docker-manifest-digest"] == digest
    )
    assert "The code-signing certificate was verified using trusted certificate authority certificates" in done.stderr
    assert "Existence of the claims in the transparency log was verified offline" in done.stderr
    other = run_cosign(
        cosign,
        *common,
        "--certificate-identity",
        WORKFLOW + "x",
        "--certificate-oidc-issuer",
        GITHUB_ISSUER,
        reference,
        cwd=trust.parent,
    )
    assert other.returncode != 0, other.stdout


def sigstore_go_testdata() -> Path:
    """sigstore-go's module, the version the pinned cosign is built with (tools/cosign/go.mod), from the Go module
    cache (fetched from the Go module proxy when missing): its test bundles are real public-good signatures."""
    tools = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        ["bash", "-c", ". cluster/env.sh && cd tools/cosign && go mod download -json github.com/sigstore/sigstore-go"],
        cwd=tools,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, explain(done)
    return Path(json.loads(done.stdout)["Dir"]) / "pkg" / "testing" / "data" / "bundles"


@pytest.mark.parametrize(
    ("bundle", "identity", "issuer"),
    [
        (
            "sigstore.js@2.0.0-provenance.sigstore.json",
            "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main",
            GITHUB_ISSUER,
        ),
        ("dsse.sigstore.json", "brian@dehamer.com", "https://github.com/login/oauth"),
    ],
)
def test_real_public_good_signatures_check_against_the_pinned_trust_root(
    cosign: Path, bundle: str, identity: str, issuer: str
) -> None:
    """Two real public-good keyless signatures (sigstore-go's test bundles, read from the Go module cache the
    cosign build fills, not copied here): their Rekor SETs verify with the pinned Rekor key over our canonical JSON,
    a changed field does not, and their Fulcio certificates chain to the pinned Fulcio CA at their integration time
    and name their identity and issuer as cosign reads them. (DSSE entries, not cosign's hashedrekord: the
    entry-to-layer match is covered above.)"""
    document = json.loads((sigstore_go_testdata() / bundle).read_text())
    material = document["verificationMaterial"]
    logged = material["tlogEntries"][0]
    text = json.dumps(
        {
            "SignedEntryTimestamp": logged["inclusionPromise"]["signedEntryTimestamp"],
            "Payload": {
                "body": logged["canonicalizedBody"],
                "integratedTime": int(logged["integratedTime"]),
                "logIndex": int(logged["logIndex"]),
                "logID": base64.b64decode(logged["logId"]["keyId"]).hex(),
            },
        }
    )
    entry = keylessverify.read_bundle(text)
    assert entry is not None
    public_good = keylessverify.KeylessCheck(keylessverify.Identity(issuer, identity), keylessverify.public_good())
    assert public_good.log_problem(entry) is None
    moved = keylessverify.read_bundle(text.replace(logged["integratedTime"], str(int(logged["integratedTime"]) + 1)))
    assert moved is not None and "does not verify with the trusted Rekor key" in (public_good.log_problem(moved) or "")
    certificate = material.get("certificate") or material["x509CertificateChain"]["certificates"][0]
    cert = x509.load_der_x509_certificate(base64.b64decode(certificate["rawBytes"]))
    assert public_good.chain_problem(cert, entry.integrated) is None
    assert keylessverify.certificate_names(cert) == [identity]
    assert keylessverify.certificate_issuer(cert) == issuer
    with_test_root = keylessverify.KeylessCheck(
        public_good.who, keylessverify.load_trust_root(LocalSigstore().trusted_root(), "test root")
    )
    assert with_test_root.log_problem(entry) and with_test_root.chain_problem(cert, entry.integrated)
