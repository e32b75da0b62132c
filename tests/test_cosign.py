"""Our signatures against cosign's own client (tools/cosign, v3 from the Go module proxy), on a loopback registry
with no transparency log: a key cosign made opens here; what we sign, cosign verifies (its annotation check
included), a signed multi-platform index with its provenance too; what cosign signs, our `verify` reads."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.cli import assert_input_error, explain, run_cli
from support.engines import Engine
from support.registry import Registry, basic_entry, write_docker_config

from image_tagger.edges.registry.session import RegistrySession
from image_tagger.edges.signer import load_public_key, load_signing_key, new_key_pair
from image_tagger.model.errors import InputError
from image_tagger.model.imagename import ImageName
from image_tagger.model.registry import RegistryAuth
from image_tagger.operations.verify import verify
from image_tagger.rules import signatures

PASSWORD = "correct horse 1.4"


def run_cosign(cosign: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """cosign offline: its home (TUF cache) in the test's folder, no transparency log, loopback registries."""
    environment = {"PATH": os.environ["PATH"], "HOME": str(cwd), "TUF_ROOT": str(cwd / "tuf"), **env}
    return subprocess.run(
        [str(cosign), *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def keys(cosign: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    done = run_cosign(cosign, "generate-key-pair", cwd=folder, COSIGN_PASSWORD=PASSWORD)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture
def image(open_registry: Registry, request: pytest.FixtureRequest) -> tuple[ImageName, str]:
    path = "cosign/" + request.node.name.removeprefix("test_")[:40].replace("_", "-")
    open_registry.seed(path, ["1.4.2"])
    return ImageName(open_registry.host, path), open_registry.manifest_digest(path, "1.4.2")


def cosign_verify(cosign: Path, keys: Path, reference: str, *claims: str) -> subprocess.CompletedProcess[str]:
    return run_cosign(
        cosign,
        "verify",
        "--key",
        str(keys / "cosign.pub"),
        "--insecure-ignore-tlog=true",
        "--allow-http-registry",
        *claims,
        reference,
        cwd=keys,
    )


def test_a_cosign_key_opens_with_its_password_and_only_with_it(keys: Path) -> None:
    text = (keys / "cosign.key").read_bytes()
    signer = load_signing_key(text, PASSWORD, "cosign.key")
    public = load_public_key((keys / "cosign.pub").read_bytes(), "cosign.pub")
    assert public.verifies(b"payload", signer.sign(b"payload"))
    with pytest.raises(InputError, match=r"^cosign.key: the password does not open this key"):
        load_signing_key(text, PASSWORD + "!", "cosign.key")
    with pytest.raises(InputError, match=r"^cosign.pub: no ENCRYPTED SIGSTORE PRIVATE KEY block"):
        load_signing_key((keys / "cosign.pub").read_bytes(), PASSWORD, "cosign.pub")


def test_a_key_pair_we_make_is_one_cosign_opens(cosign: Path, tmp_path: Path) -> None:
    """The demo's throw-away key (new_key_pair) is cosign's own format: cosign opens it with the password and
    derives the same public key; we open it too, and only with that password."""
    text, public = new_key_pair(PASSWORD, "demo.pub")
    (tmp_path / "demo.key").write_text(text)
    done = run_cosign(cosign, "public-key", "--key", "demo.key", cwd=tmp_path, COSIGN_PASSWORD=PASSWORD)
    assert done.returncode == 0, done.stderr
    ours = public.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert (
        load_public_key(done.stdout.encode(), "cosign's answer").key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == ours
    )
    assert public.verifies(b"payload", load_signing_key(text.encode(), PASSWORD, "demo.key").sign(b"payload"))
    with pytest.raises(InputError, match=r"^demo.key: the password does not open this key"):
        load_signing_key(text.encode(), PASSWORD + "!", "demo.key")


def test_cosign_verifies_what_we_sign_with_its_version(cosign: Path, keys: Path, image: tuple[ImageName, str]) -> None:
    name, digest = image
    signer = load_signing_key((keys / "cosign.key").read_bytes(), PASSWORD, "cosign.key")
    document = signatures.payload(name.name, digest, "1.4.2")
    with RegistrySession(name, RegistryAuth()) as session:
        session.put_signature(digest, signatures.SignatureLayer(document, signer.sign(document)))

    reference = f"{name.name}@{digest}"
    done = cosign_verify(cosign, keys, reference, "-a", "version=1.4.2", "-a", f"repository={name.name}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert digest in done.stdout and '"version":"1.4.2"' in done.stdout
    other = cosign_verify(cosign, keys, reference, "-a", "version=1.5.0")
    assert other.returncode != 0, other.stdout


def test_our_verify_reads_what_cosign_signs(cosign: Path, keys: Path, image: tuple[ImageName, str]) -> None:
    name, digest = image
    done = run_cosign(
        cosign,
        "sign",
        "--key",
        str(keys / "cosign.key"),
        "--tlog-upload=false",
        "--new-bundle-format=false",
        "--use-signing-config=false",
        "--allow-http-registry",
        "--yes",
        "-a",
        "version=1.4.2",
        "-a",
        f"repository={name.name}",
        f"{name.name}@{digest}",
        cwd=keys,
        COSIGN_PASSWORD=PASSWORD,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    public = load_public_key((keys / "cosign.pub").read_bytes(), "cosign.pub")

    def opened(_: ImageName) -> RegistrySession:
        return RegistrySession(name, RegistryAuth())

    verdict = verify(name.ref("1.4.2"), public, opened)
    assert verdict.ok, verdict.line


def test_the_cli_verifies_on_an_authenticated_registry_and_says_why_not(
    registry: Registry, keys: Path, tmp_path: Path
) -> None:
    """`image-tagger verify` with the Docker config's login: exit 0 for the signed release, exit 1 with the reason
    for a replay and for another key, exit 2 for a key file that holds no key; the login never printed."""
    registry.seed("cosign/cli", ["1.4.2"])
    name = ImageName(registry.host, "cosign/cli")
    digest = registry.manifest_digest("cosign/cli", "1.4.2")
    signer = load_signing_key((keys / "cosign.key").read_bytes(), PASSWORD, "cosign.key")
    document = signatures.payload(name.name, digest, "1.4.2")
    with RegistrySession(name, RegistryAuth(registry.username, registry.password)) as session:
        session.put_signature(digest, signatures.SignatureLayer(document, signer.sign(document)))
        session.put_manifest("1.5.0", session.manifest("1.4.2"))
    config = {"auths": {registry.host: basic_entry(registry.username, registry.password)}}
    env = {"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", config))}
    other = tmp_path / "other.pub"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    good = run_cli("verify", name.ref("1.4.2"), "--key", str(keys / "cosign.pub"), env=env)
    replay = run_cli("verify", name.ref("1.5.0"), "--key", str(keys / "cosign.pub"), env=env)
    foreign = run_cli("verify", name.ref("1.4.2"), "--key", str(other), env=env)
    no_key = run_cli("verify", name.ref("1.4.2"), "--key", str(keys / "cosign.key"), env=env)

    assert good.returncode == 0 and f"@{digest}: signed by" in good.stdout, explain(good)
    assert replay.returncode == 1 and replay.stdout == "", explain(replay)
    assert len(replay.stderr.splitlines()) == 1 and "not '1.5.0' (a replayed tag)" in replay.stderr
    assert foreign.returncode == 1 and "none by" in foreign.stderr, explain(foreign)
    assert_input_error(no_key, "cosign.key", "no PUBLIC KEY block")
    for done in (good, replay, foreign):
        assert registry.password not in done.stdout + done.stderr


# What the engine builds for a signed release: on the classic store one platform, no provenance (said plainly); on
# the containerd store an index of two platforms with their SLSA provenance, as an unsigned publish would push it.
SIGNED_RELEASES = {
    "engine20": (),
    "engine28_containerd": ("--platforms", "linux/amd64,linux/arm64", "--provenance", "max"),
}


@pytest.mark.parametrize("engine_fixture", sorted(SIGNED_RELEASES))
def test_a_signed_release_is_never_visible_unsigned_and_cosign_verifies_it(
    cosign: Path,
    keys: Path,
    open_registry: Registry,
    sample_app: Path,
    engine_fixture: str,
    request: pytest.FixtureRequest,
) -> None:
    """`publish --signing-key` on a real daemon and registry, while another thread polls the tag list: whenever
    the release tag is there, so is its signature, of the digest the tag names (the index, on the containerd store,
    with both platforms and the provenance inside). cosign verifies the release with the version annotation."""
    engine: Engine = request.getfixturevalue(engine_fixture)
    repository = f"cosign/release-{engine.name}"
    name = ImageName(open_registry.host, repository)
    public = load_public_key((keys / "cosign.pub").read_bytes(), "cosign.pub")
    stop, unsigned_sightings, sightings = threading.Event(), [], []

    def poll() -> None:
        while not stop.is_set():
            if "1.4.2" in open_registry.tags(repository):
                sightings.append(1)
                with RegistrySession(name, RegistryAuth()) as session:
                    verdict = verify(name.ref("1.4.2"), public, lambda _: session)
                    if not verdict.ok:
                        unsigned_sightings.append(verdict.line)  # why, for the assertion's message
            time.sleep(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        done = run_cli(
            *("publish", "--json", "--image", name.name, "--workspace", str(sample_app)),
            *("--ref", "refs/tags/v1.4.2", "--floating-tags", "--signing-key", str(keys / "cosign.key")),
            *SIGNED_RELEASES[engine_fixture],
            env={"COSIGN_PASSWORD": PASSWORD, "DOCKER_HOST": engine.docker_host},
            timeout=300,
        )
        time.sleep(0.2)
    finally:
        stop.set()
        poller.join(10)

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    assert result["signed"] is True and result["outcome"] == "pushed"
    assert sightings and unsigned_sightings == [], unsigned_sightings
    assert PASSWORD not in done.stdout + done.stderr
    assert result["digest"] == open_registry.manifest_digest(repository, "1.4.2")  # the tag's digest is the signed one
    reference = f"{name.name}@{result['digest']}"
    verified = cosign_verify(cosign, keys, reference, "-a", "version=1.4.2", "-a", f"repository={name.name}")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    by_tag = cosign_verify(cosign, keys, name.ref("1.4.2"), "-a", "version=1.4.2")  # cosign resolves the tag itself
    assert by_tag.returncode == 0 and result["digest"] in by_tag.stdout, by_tag.stdout + by_tag.stderr
    ours = run_cli("verify", name.ref("1.4.2"), "--key", str(keys / "cosign.pub"))
    assert ours.returncode == 0 and f"@{result['digest']}: signed by" in ours.stdout, explain(ours)
    floating = verify(name.ref("1.4"), public, lambda _: RegistrySession(name, RegistryAuth()))
    assert not floating.ok and "signed for version '1.4.2', not '1.4'" in floating.line  # verify exact versions
    stored = open_registry.manifest(repository, "1.4.2")
    if engine.containerd_store:
        entries = stored["manifests"]
        images = {e["platform"]["architecture"] for e in entries if e["platform"]["os"] != "unknown"}
        attestations = [e for e in entries if e.get("annotations", {}).get("vnd.docker.reference.type")]
        assert images == {"amd64", "arm64"} and len(attestations) == 2, stored
        layers = open_registry.manifest(repository, attestations[0]["digest"])["layers"]
        predicates = {layer["annotations"]["in-toto.io/predicate-type"] for layer in layers}
        assert any(p.startswith("https://slsa.dev/provenance/") for p in predicates), predicates
        assert result["provenance"] == "SLSA provenance, mode=max"
    else:
        assert "manifests" not in stored
        assert result["provenance"].startswith("none: this daemon's classic image store cannot hold attestations")


def test_a_wrong_signing_password_is_exit_2_before_anything_is_pushed(
    keys: Path, open_registry: Registry, sample_app: Path
) -> None:
    name = ImageName(open_registry.host, "cosign/refused")
    done = run_cli(
        *("publish", "--image", name.name, "--workspace", str(sample_app), "--ref", "refs/tags/v1.4.2"),
        *("--signing-key", str(keys / "cosign.key")),
        env={"COSIGN_PASSWORD": "not it"},
    )
    assert_input_error(done, f"--signing-key {keys / 'cosign.key'}", "the password does not open this key")
    assert open_registry.tags("cosign/refused") == []
