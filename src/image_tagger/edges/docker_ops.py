"""The Docker edge: log in, tag and push through the Docker SDK, and the legacy builder.

Credentials stay in the SDK client's memory (no config file, nothing under HOME); errors that
the SDK reports inside its JSON streams instead of raising are turned into PublishError.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import docker
import requests
import urllib3
from docker.errors import APIError, DockerException

from image_tagger.edges.daemonwait import TIMEOUT_ENV, daemon_timeout
from image_tagger.model.errors import PublishError, PushStalled
from image_tagger.model.imagename import ImageName
from image_tagger.model.inputs import BuildOptions
from image_tagger.model.log import Log
from image_tagger.model.registry import RegistryAuth

_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


# What the SDK raises when the daemon stays silent past the client's timeout (requests as a call starts, urllib3
# while its stream is read) or the connection to it breaks: never a traceback.
DAEMON_SILENT = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


def silent(client: docker.DockerClient, err: BaseException) -> str:
    """DAEMON_SILENT `err` in words: a timeout says how long the daemon was silent."""
    if isinstance(err, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return f"the daemon did not answer in time (nothing for {client.api.timeout:g} s, {TIMEOUT_ENV})"
    return f"the connection to the daemon broke ({type(err).__name__})"


def connect() -> docker.DockerClient:
    """A client for DOCKER_HOST (or the default socket); a clear error when no daemon answers."""
    try:
        client = docker.from_env(timeout=daemon_timeout())  # type: ignore[arg-type] - a float is what requests takes
        client.ping()
    except DockerException as err:
        raise PublishError(f"Docker daemon not reachable (DOCKER_HOST or /var/run/docker.sock): {err}") from err
    return client


def login(client: docker.DockerClient, image: ImageName, username: str, password: str) -> None:
    """Ask the daemon to verify the credentials now, so a wrong password fails before any build."""
    registry = None if image.is_docker_hub else image.registry
    try:
        client.login(username=username, password=password, registry=registry, reauth=True)
    except APIError as err:
        raise PublishError(
            f"login to {image.registry} as {username!r} failed: {err.explanation or err.status_code}"
        ) from err


def _stream_errors(chunks: Iterable[Mapping[str, Any]], log: Log) -> Iterator[Mapping[str, Any]]:
    """Log progress lines and raise on the first error record the daemon sends."""
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            raise PublishError(str(chunk.get("error") or detail.get("message") or chunk).strip())
        text = chunk.get("stream") or chunk.get("status")
        if text and text.strip():
            progress = f" {chunk['id']}" if chunk.get("id") else ""
            log.info(f"{text.rstrip()}{progress}")
        yield chunk


def build(
    client: docker.DockerClient,
    options: BuildOptions,
    ref: str,
    labels: Mapping[str, str],
    log: Log,
) -> str:
    """The legacy builder (`builder: legacy`), for daemons or Dockerfiles that need it; returns the image id."""
    image_id = None
    with log.group(f"Build {ref} (legacy builder)"):
        try:
            stream = client.api.build(
                path=str(options.context),
                dockerfile=str(options.dockerfile),
                tag=ref,
                buildargs=dict(options.build_args),
                labels=dict(labels),
                target=options.target or None,
                pull=options.pull,
                nocache=options.no_cache,
                rm=True,
                forcerm=True,
                decode=True,
            )
            for chunk in _stream_errors(stream, log):
                image_id = (chunk.get("aux") or {}).get("ID", image_id)
            if image_id is None:
                image_id = client.images.get(ref).id
        except (APIError, DockerException) as err:
            raise PublishError(f"build of {ref} failed: {err}") from err
        except DAEMON_SILENT as err:
            raise PublishError(f"build of {ref} failed: {silent(client, err)}") from err
    return image_id


def tag(client: docker.DockerClient, source: str, image: ImageName, tags: Iterable[str]) -> None:
    """Point `tags` at `source`, a reference by name: the containerd image store cannot tag by image id."""
    for name in tags:
        try:
            client.api.tag(source, image.name, name)
        except (APIError, DockerException) as err:
            raise PublishError(f"tagging {image.ref(name)} failed: {err}") from err


def untag(client: docker.DockerClient, ref: str) -> None:
    """Drop one local tag (the image stays under its other tags); a failure here is not the job's failure."""
    with contextlib.suppress(APIError, DockerException):
        client.api.remove_image(ref, noprune=True)


def push(
    client: docker.DockerClient, image: ImageName, tag_name: str, log: Log, credentials: RegistryAuth | None = None
) -> str:
    """Push one tag, with `credentials` when given (the job's own, not whatever the client logged in with);
    returns the registry's manifest digest reported at the end of the push."""
    digest = None
    auth = {"username": credentials.username, "password": credentials.password} if credentials else None
    with log.group(f"Push {image.ref(tag_name)}"):
        try:
            stream = client.api.push(image.name, tag=tag_name, stream=True, decode=True, auth_config=auth)
            for chunk in _stream_errors(stream, log):
                # The classic store reports the digest in `aux`; the containerd store only in the status line.
                said = _PUSHED_DIGEST.search(str(chunk.get("status") or ""))
                digest = (chunk.get("aux") or {}).get("Digest") or (said.group(1) if said else digest)
        except (APIError, DockerException) as err:
            raise PublishError(f"push of {image.ref(tag_name)} failed: {err}") from err
        except DAEMON_SILENT as err:
            raise PushStalled(
                f"push of {image.ref(tag_name)} failed: {silent(client, err)}; the push was abandoned, a manifest "
                "already sent may still land"
            ) from err
    if not digest:
        raise PublishError(f"push of {image.ref(tag_name)} reported no digest")
    return digest
