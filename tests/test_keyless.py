"""Keyless signing (issue 18): what the action hands the signer, checked here without GitHub, Fulcio or Rekor.

With the stand-ins of tests/support/keyless.py: GitHub's OIDC token endpoint, and a "cosign" signer image that
records what it is handed and posts it to the test, which then writes a signature into the registry as cosign
would. Then the real cosign (tools/cosign) packed into an image, with its Fulcio and Rekor pointed at loopback
recorders: its request for a certificate carries our token. A real keyless signature needs GitHub's OIDC issuer
and Sigstore's public services, so none is made here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import docker
import pytest
from support.cli import assert_input_error, explain, run_cli
from support.keyless import (
    BEARER,
    SIGNERS,
    Answer,
    Recorder,
    Server,
    first_sighting,
    github_oidc,
    jwt,
    runner_env,
    scratch_image,
    serve,
    stand_in_signer,
)
from support.registry import Registry

from image_tagger.edges import keyless, oidc
from image_tagger.entry.action import secrets_of
from image_tagger.model.errors import InputError, PublishError
from image_tagger.model.imagename import ImageName
from image_tagger.model.log import KeptLog, Log
from image_tagger.model.registry import RegistryAuth
from image_tagger.operations import signing
from image_tagger.rules import signatures
from image_tagger.rules.publishinputs import COSIGN_IMAGE

DIGEST = "sha256:" + "ab" * 32


# --- the token request (fast) ---


def test_the_token_request_carries_the_bearer_and_audience_sigstore() -> None:
    token = jwt("repo:acme/app:ref:refs/tags/v1.4.2")
    with serve(github_oidc(token)) as github:
        assert oidc.request_token(oidc.endpoint(runner_env(github))) == token
    [(method, path, headers, _)] = github.seen
    assert method == "GET" and urlsplit(path).path == "/idtoken"
    assert parse_qs(urlsplit(path).query) == {"api-version": ["2.0"], "audience": ["sigstore"]}
    assert headers["Authorization"] == f"Bearer {BEARER}"


def test_a_refused_or_failing_token_request_names_the_endpoint_and_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oidc, "BACKOFF", 0.01)
    token = jwt("repo:acme/app:ref:refs/tags/v1.4.2")
    with serve(github_oidc(token)) as github:
        wrong = oidc.endpoint({**runner_env(github), oidc.TOKEN_ENV: "not-the-bearer"})
        with pytest.raises(PublishError, match=rf"^the OIDC token endpoint {github.url} refused: HTTP 401$"):
            oidc.request_token(wrong)
    with serve(lambda *_: (503, b"busy")) as busy:
        with pytest.raises(PublishError, match=r"after 3 attempts \(HTTP 503\)$") as failed:
            oidc.request_token(oidc.endpoint(runner_env(busy)))
        assert len(busy.seen) == 3 and BEARER not in str(failed.value)
    for body in (b'{"value": "not-a-jwt"}', b'{"value": "a.bm90IGpzb24.c2ln"}', b"[]"):
        with serve(lambda *_, body=body: (200, body)) as odd, pytest.raises(PublishError, match="without a JWT"):
            oidc.request_token(oidc.endpoint(runner_env(odd)))
    too_large = pytest.raises(PublishError, match="over the 65536 byte limit")
    with serve(lambda *_: (200, b"x" * (oidc.MAX_ANSWER + 1))) as large, too_large:
        oidc.request_token(oidc.endpoint(runner_env(large)))


def test_without_id_token_permission_the_endpoint_is_bad_input_naming_the_permission() -> None:
    with pytest.raises(InputError, match=r"add `permissions: id-token: write` to the job"):
        oidc.endpoint({})
    with pytest.raises(InputError, match=f"{oidc.TOKEN_ENV} is not"):
        oidc.endpoint({oidc.URL_ENV: "https://token.example/x"})
    with pytest.raises(InputError, match="not an https URL"):
        oidc.endpoint({oidc.URL_ENV: "http://token.example/x", oidc.TOKEN_ENV: BEARER})


# --- what the signer is handed (fast) ---


def test_the_signer_gets_the_digest_the_annotations_and_yes() -> None:
    hub = ImageName("docker.io", "acme/app")
    assert keyless.signer_arguments(hub, DIGEST, "1.4.2") == [
        "sign",
        "--yes",
        "--identity-token=/image-tagger-signer/token",
        "--new-bundle-format=false",
        "--use-signing-config=false",
        "-a",
        "version=1.4.2",
        "-a",
        "repository=docker.io/acme/app",
        f"docker.io/acme/app@{DIGEST}",
    ]
    assert "--allow-http-registry" in keyless.signer_arguments(ImageName("127.0.0.1:5000", "a"), DIGEST, "1")
    pair = base64.b64encode(b"acme:s3cret").decode()
    assert json.loads(keyless.docker_config(hub, RegistryAuth("acme", "s3cret"))) == {
        "auths": {"https://index.docker.io/v1/": {"auth": pair}}
    }
    assert json.loads(keyless.docker_config(ImageName("ghcr.io", "acme/app"), RegistryAuth())) == {"auths": {}}


def test_the_signer_image_is_pulled_by_its_digest() -> None:
    digest = COSIGN_IMAGE.partition("@")[2]
    assert keyless.pull_reference(COSIGN_IMAGE) == ("ghcr.io/sigstore/cosign/cosign", digest)
    assert keyless.pull_reference("127.0.0.1:5000/cosign") == ("127.0.0.1:5000/cosign", "latest")
    assert keyless.pull_reference("127.0.0.1:5000/cosign:v3") == ("127.0.0.1:5000/cosign", "v3")


class Layers:
    """A registry session's signature read-back, holding `layers` (the job's RegistryView, for this one call)."""

    def __init__(self, layers: list[signatures.SignatureLayer]) -> None:
        self.layers = layers

    def __enter__(self) -> Layers:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def signature_layers(self, _: str) -> list[signatures.SignatureLayer]:
        return self.layers


class FinishedSigner(keyless.KeylessSigner):
    """A signer whose cosign run ended well: what it left in the registry is up to the test."""

    def sign(self, target: ImageName, digest: str, version: str, log: Log) -> None:
        log.info(f"stand-in: signed {target.name}@{digest} for {version}")


@pytest.mark.parametrize(
    ("claims", "signed"),
    [
        (None, False),
        (("127.0.0.1:5000/acme/app", DIGEST, "1.0.0"), False),  # another version's signature is not this one's
        (("127.0.0.1:5000/acme/app", DIGEST, "1.4.2"), True),
    ],
)
def test_no_tag_until_the_registry_holds_a_signature_for_the_version(claims: tuple | None, signed: bool) -> None:
    image = ImageName("127.0.0.1:5000", "acme/app")
    layers = [signatures.SignatureLayer(signatures.payload(*claims), "c2ln")] if claims else []
    signer = FinishedSigner("stand-in", oidc.TokenEndpoint("http://127.0.0.1:9/x", BEARER), RegistryAuth())
    log = KeptLog()
    if signed:
        assert signing.sign(lambda: Layers(layers), signer, image, DIGEST, "1.4.2", log) == signatures.digest_of(
            layers[0].payload
        )
        assert log.lines[-1].endswith("for version 1.4.2 keyless (GitHub OIDC, Fulcio, Rekor)")
        return
    with pytest.raises(PublishError) as refused:
        signing.sign(lambda: Layers(layers), signer, image, DIGEST, "1.4.2", log)
    assert str(refused.value) == (
        f"{image.ref('1.4.2')} was not signed (cosign finished, but the registry holds no signature of it for "
        f"version 1.4.2); no tag was written: {image.name}@{DIGEST} is in the registry by digest only"
    )


def test_the_runner_s_token_request_bearer_is_redacted_in_the_action() -> None:
    redact = secrets_of({oidc.TOKEN_ENV: BEARER, "INPUT_IMAGE": "acme/app"})
    assert redact(f"GET /idtoken with {BEARER}") == "GET /idtoken with [redacted]"


def test_keyless_without_the_permission_is_exit_2_before_anything(sample_app: Path) -> None:
    done = run_cli(
        *("publish", "--image", "127.0.0.1:9/keyless/refused", "--workspace", str(sample_app)),
        *("--ref", "refs/tags/v1.4.2", "--keyless-signing"),
        env={oidc.URL_ENV: "", oidc.TOKEN_ENV: ""},
    )
    assert_input_error(done, "keyless-signing needs GitHub's OIDC token", "permissions: id-token: write")


def test_a_key_and_keyless_together_are_exit_2(sample_app: Path, tmp_path: Path) -> None:
    key = tmp_path / "cosign.key"
    key.write_text(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    )
    done = run_cli(
        *("publish", "--image", "127.0.0.1:9/keyless/both", "--workspace", str(sample_app)),
        *("--ref", "refs/tags/v1.4.2", "--keyless-signing", "--signing-key", str(key)),
    )
    assert_input_error(done, "signing-key and keyless-signing: true are both set; accepted: one of them")
    bad = run_cli("publish", "--image", "acme/app", "--keyless-signing", "--signer-image", "Not An Image")
    assert_input_error(bad, "signer-image 'Not An Image' is not an image reference")


# --- the stand-in signer and the real cosign, on the daemon and a registry ---


def publish_keyless(registry: Registry, repository: str, workspace: Path, signer_image: str, github: Server):
    return run_cli(
        *("publish", "--json", "--image", f"{registry.host}/{repository}", "--workspace", str(workspace)),
        *("--ref", "refs/tags/v1.4.2", "--keyless-signing", "--signer-image", signer_image),
        *(("--username", registry.username) if registry.username else ()),
        env={**runner_env(github), "IMAGE_TAGGER_PASSWORD": registry.password},
        timeout=300,
    )


def test_the_stand_in_signer_gets_the_token_one_login_and_the_digest_and_the_tag_comes_after_it(
    docker_client: docker.DockerClient, registry: Registry, sample_app: Path, tmp_path: Path
) -> None:
    """The whole keyless path with a stand-in cosign, on the daemon and a registry that wants a login."""
    token = jwt("repo:acme/app:ref:refs/tags/v1.4.2")
    recorder = Recorder(registry)
    repository = "keyless/standin"
    with (
        stand_in_signer(docker_client, tmp_path / "standin", recorder) as standin,
        serve(github_oidc(token)) as github,
        first_sighting(registry, repository, "1.4.2") as sightings,
    ):
        done = publish_keyless(registry, repository, sample_app, standin, github)

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    assert result["signed"] is True and result["outcome"] == "pushed"
    digest, name = result["digest"], f"{registry.host}/{repository}"
    handed = recorder.handed
    assert handed["argv"].splitlines() == keyless.signer_arguments(
        ImageName(registry.host, repository), digest, "1.4.2"
    )
    assert handed["token"] == token  # exactly the token, without a line break
    login = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    assert json.loads(handed["config"]) == {"auths": {registry.host: {"auth": login}}}
    assert {line.split()[0] for line in handed["listing"].splitlines()[1:]} == {"-r--r--r--"}
    env = dict(line.split("=", 1) for line in handed["env"].splitlines())
    assert env["DOCKER_CONFIG"] == "/image-tagger-signer"
    assert not {key for key in env if key.startswith(("ACTIONS_", "IMAGE_TAGGER", "INPUT_", "GITHUB_"))}
    for secret in (token, registry.password, login, BEARER):
        assert secret not in handed["env"] + handed["argv"]
        assert secret not in done.stdout + done.stderr
    assert "stand-in cosign: token [redacted]" in done.stderr  # its output reached the log, redacted
    assert recorder.tags_while_signing == []  # signed by digest, no tag yet
    assert recorder.finished is not None and sightings and min(sightings) > recorder.finished
    assert [urlsplit(path).path for _, path, _, _ in github.seen] == ["/idtoken"]
    assert f"{name}:1.4.2: signed {digest} for version 1.4.2 keyless" in done.stderr
    assert docker_client.containers.list(all=True, filters=SIGNERS) == []  # removed, with its files


def test_a_signer_that_fails_leaves_no_tag_and_the_result_says_so(
    docker_client: docker.DockerClient, open_registry: Registry, sample_app: Path, tmp_path: Path
) -> None:
    recorder = Recorder(open_registry, status=500)
    repository = "keyless/refused"
    with (
        stand_in_signer(docker_client, tmp_path / "standin", recorder) as standin,
        serve(github_oidc(jwt("repo:acme/app:ref:refs/tags/v1.4.2"))) as github,
    ):
        done = publish_keyless(open_registry, repository, sample_app, standin, github)

    assert done.returncode == 1, explain(done)
    assert recorder.handed, explain(done)
    assert "1.4.2 was not signed (cosign (" in done.stderr and "exited with status 1" in done.stderr
    assert "no tag was written" in done.stderr and "by digest only" in done.stderr
    assert open_registry.tags(repository) == []
    assert docker_client.containers.list(all=True, filters=SIGNERS) == []


REAL_COSIGN = """\
sub=$1
shift
exec /cosign "$sub" "--fulcio-url=$FULCIO" "--rekor-url=$REKOR" "$@"
"""


def test_the_real_cosign_asks_fulcio_for_a_certificate_with_our_token(
    cosign: Path, docker_client: docker.DockerClient, open_registry: Registry, sample_app: Path, tmp_path: Path
) -> None:
    """cosign v3.1.3 as the signer image, its Fulcio and Rekor loopback recorders (its only change: the wrapper adds
    their URLs): it asks Fulcio for a certificate with our token; the recorder refuses, so no tag appears."""
    token = jwt("repo:acme/app:ref:refs/tags/v1.4.2")
    repository = "keyless/cosign"
    refuse: Answer = lambda *_: (500, b'{"code": 500, "message": "a recorder, not Fulcio"}')  # noqa: E731
    with (
        serve(refuse) as fulcio,
        serve(refuse) as rekor,
        scratch_image(
            docker_client,
            tmp_path / "cosign",
            f"COPY cosign /cosign\nCOPY wrapper.sh /wrapper.sh\nENV FULCIO={fulcio.url} REKOR={rekor.url}\n"
            'ENTRYPOINT ["/bin/sh", "/wrapper.sh"]\n',
            cosign=cosign,
            **{"wrapper.sh": REAL_COSIGN},
        ) as image,
        serve(github_oidc(token)) as github,
    ):
        done = publish_keyless(open_registry, repository, sample_app, image, github)

    assert done.returncode == 1, explain(done)
    assert fulcio.seen, explain(done)
    for method, path, headers, body in fulcio.seen:
        assert (method, path) == ("POST", "/api/v2/signingCert")
        assert headers["Authorization"] == f"Bearer {token}"
        assert "proofOfPossession" in json.loads(body)["publicKeyRequest"]
    assert rekor.seen == []  # no certificate, so nothing to log
    assert "Generating ephemeral keys..." in done.stderr  # cosign's own output, in the log
    assert "was not signed (cosign (" in done.stderr and "exited with status 1" in done.stderr, explain(done)
    assert open_registry.tags(repository) == []
    assert token not in done.stdout + done.stderr
    assert docker_client.containers.list(all=True, filters=SIGNERS) == []
