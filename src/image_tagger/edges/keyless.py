"""Keyless signing by cosign's own image, run beside the action through the Docker daemon the action already uses.

Why a second image: Sigstore's keyless flow (Fulcio's certificate, Rekor's log entry) in Python would add the
`sigstore` library and its dependencies, some 40 MB, to an action image that has 2 MB left of its 150 MB budget;
cosign's image is pulled only by the jobs that sign keyless, and it is cosign itself that signs.

What the signer gets, and nothing more: the OIDC token and a Docker config holding only the target registry's
login, as read-only files copied into the created container (Docker's archive API: the action runs in a container
itself, so a host path it could mount does not exist), the digest reference, the `version` and `repository`
annotations, and `--yes`. No environment of ours, no mount. The container is removed afterwards, its files with
it. Its output is logged with the token and the registry password redacted.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from image_tagger.edges import oidc
from image_tagger.model.errors import PublishError
from image_tagger.model.imagename import ImageName, plain_http
from image_tagger.model.log import Log
from image_tagger.model.registry import RegistryAuth
from image_tagger.rules.redact import Redactor, one_line
from image_tagger.rules.signatures import REPOSITORY, VERSION

if TYPE_CHECKING:
    import docker

FILES = "/image-tagger-signer"  # the folder of the token and the Docker config, inside the signer's container
TOKEN_FILE = f"{FILES}/token"
SIGN_DEADLINE = 300.0  # seconds for cosign's whole run: Fulcio, Rekor and the registry, with its own retries
MAX_LINES, MAX_OUTPUT = 200, 64 << 10  # the end of cosign's output that reaches the log
HUB_CONFIG_KEY = "https://index.docker.io/v1/"  # the key Docker (and cosign's keychain) use for Docker Hub


def signer_arguments(target: ImageName, digest: str, version: str) -> list[str]:
    """cosign's command line: the digest, never a tag; cosign's classic signature layout (a `.sig` image beside
    the signed one), which our `verify`, the pull-request gate and cosign 2 verifiers read; public-good Fulcio
    and Rekor."""
    return [
        "sign",
        "--yes",
        f"--identity-token={TOKEN_FILE}",
        "--new-bundle-format=false",
        "--use-signing-config=false",
        *(["--allow-http-registry"] if plain_http(target.registry) else []),
        "-a",
        f"{VERSION}={version}",
        "-a",
        f"{REPOSITORY}={target.name}",
        f"{target.name}@{digest}",
    ]


def docker_config(target: ImageName, credentials: RegistryAuth) -> bytes:
    """A Docker config with the target registry's login alone (none for an anonymous push)."""
    auths = {}
    if credentials.username:
        pair = f"{credentials.username}:{credentials.password}".encode()
        auths[HUB_CONFIG_KEY if target.is_docker_hub else target.registry] = {"auth": base64.b64encode(pair).decode()}
    return json.dumps({"auths": auths}).encode()


def signer_files(token: str, config: bytes) -> bytes:
    """A tar of the signer's folder: the token (without a line break, which cosign would send on) and the config,
    readable, not writable, by whichever user the signer image runs as."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo(FILES.lstrip("/"))
        folder.type, folder.mode = tarfile.DIRTYPE, 0o555
        tar.addfile(folder)
        for name, body in (("token", token.encode()), ("config.json", config)):
            entry = tarfile.TarInfo(f"{folder.name}/{name}")
            entry.size, entry.mode = len(body), 0o444
            tar.addfile(entry, io.BytesIO(body))
    return buffer.getvalue()


def pull_reference(reference: str) -> tuple[str, str]:
    """(repository, tag or digest) as the daemon's pull takes them; a digest wins over a tag beside it."""
    name, _, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    repository, tag = (name[:colon], name[colon + 1 :]) if colon > slash else (name, "latest")
    return repository, digest or tag


@dataclass(frozen=True)
class KeylessSigner:
    """Signs with cosign from `image`, a token from `endpoint` and the registry login `credentials`."""

    image: str
    endpoint: oidc.TokenEndpoint
    credentials: RegistryAuth = field(repr=False)
    name: str = "keyless-signing"

    def sign(self, target: ImageName, digest: str, version: str, log: Log) -> None:
        """cosign signs `target@digest` for `version`; PublishError when it cannot (its last output line says why)."""
        from image_tagger.edges import docker_ops

        client = docker_ops.connect()
        with log.group(f"Sign {target.name}@{digest} keyless ({self.image})"):
            local = self._ensure_image(client, log)
            token = oidc.request_token(self.endpoint)  # after the pull: a token lives minutes
            redact = Redactor()
            redact.add_secret(token)
            redact.add_login(self.credentials.username, self.credentials.password)
            files = signer_files(token, docker_config(target, self.credentials))
            status, output = run_signer(client, local, signer_arguments(target, digest, version), files)
            lines = [one_line(redact(line)) for line in output.splitlines() if line.strip()]
            for line in lines:
                log.info(line)
        if status != 0:
            said = lines[-1] if lines else "no output"
            raise PublishError(f"cosign ({self.image}) exited with status {status}: {said}")

    def _ensure_image(self, client: docker.DockerClient, log: Log) -> str:
        """The signer image in the daemon, pulled when missing; returns the reference to run it by."""
        from docker.errors import DockerException, ImageNotFound

        from image_tagger.edges.docker_ops import DAEMON_SILENT

        repository, tag = pull_reference(self.image)
        local = f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}"
        try:
            client.images.get(local)
            return local
        except ImageNotFound:
            log.info(f"pulling the signer image {self.image}")
        except (DockerException, *DAEMON_SILENT) as err:
            raise PublishError(f"the Docker daemon did not show the signer image {self.image}: {err}") from err
        try:
            client.api.pull(repository, tag=tag)
        except (DockerException, *DAEMON_SILENT) as err:
            raise PublishError(f"the signer image {self.image} could not be pulled: {err}") from err
        return local


def run_signer(client: docker.DockerClient, image: str, arguments: list[str], files: bytes) -> tuple[int, str]:
    """Create the signer's container (host network: it reaches what the runner reaches, loopback registries
    included; no capabilities), copy `files` in, run it to its end within SIGN_DEADLINE, and remove it; returns its
    exit status and the end of its output."""
    from docker.errors import DockerException

    from image_tagger.edges.docker_ops import DAEMON_SILENT

    api = client.api
    try:
        container = api.create_container(
            image,
            command=arguments,
            environment={"DOCKER_CONFIG": FILES},
            host_config=api.create_host_config(
                network_mode="host", cap_drop=["ALL"], security_opt=["no-new-privileges"]
            ),
            labels={"org.flux-ci-cd.role": "keyless-signer"},
        )["Id"]
    except (DockerException, *DAEMON_SILENT) as err:
        raise PublishError(f"the signer's container could not be created from {image}: {err}") from err
    try:
        api.put_archive(container, "/", files)
        api.start(container)
        try:
            status = int(api.wait(container, timeout=SIGN_DEADLINE)["StatusCode"])
        except DAEMON_SILENT:
            raise PublishError(f"cosign did not finish within {SIGN_DEADLINE:g} s") from None
        output = api.logs(container, stdout=True, stderr=True, tail=MAX_LINES)[-MAX_OUTPUT:]
    except DockerException as err:
        raise PublishError(f"the signer's container from {image} failed: {err}") from err
    finally:
        removed = _removed(client, container)
    if not removed:  # its files hold the registry login: no tag goes up while it may linger unnoticed
        raise PublishError(f"the signer's container {container[:12]} could not be removed; remove it (docker rm -f)")
    return status, output.decode("utf-8", "replace")


def _removed(client: docker.DockerClient, container: str) -> bool:
    """Remove the container (killing it if it still runs), with its files; False when the daemon would not."""
    from docker.errors import DockerException, NotFound

    from image_tagger.edges.docker_ops import DAEMON_SILENT

    for _ in range(2):
        try:
            client.api.remove_container(container, force=True)
            return True
        except NotFound:
            return True
        except (DockerException, *DAEMON_SILENT):
            continue
    return False
