"""The publish job's ports (model.ports) on the real world: the Docker daemon with the classic builder or
BuildKit, the registry's HTTP API, and Flux's Receivers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import docker

from image_tagger.edges import buildkit, docker_ops
from image_tagger.model.imagename import ImageName
from image_tagger.model.log import Log
from image_tagger.model.ports import BuildRequest, JobEdges, RegistryView
from image_tagger.model.receivers import Notification, Receiver
from image_tagger.model.registry import RegistryAuth
from image_tagger.model.result import PublishResult
from image_tagger.model.states import Builder


class DockerDaemon:
    """The Daemon port: connects on first use, so a run refused before any build needs no daemon."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker_ops.connect()
        return self._client

    def login(self, image: ImageName, credentials: RegistryAuth) -> None:
        docker_ops.login(self.client, image, credentials.username, credentials.password)

    def build(self, request: BuildRequest, log: Log) -> str:
        labels = dict(request.labels)
        if request.options.builder == Builder.LEGACY:
            image_id = docker_ops.build(self.client, request.options, request.build_ref, labels, log)
            docker_ops.tag(self.client, request.build_ref, request.image, request.tags)
            return image_id
        # BuildKit stamps the image config and layer history with SOURCE_DATE_EPOCH; an explicit build-arg wins.
        build_args = {"SOURCE_DATE_EPOCH": str(request.source_date_epoch), **request.options.build_args}
        refs = [*(request.image.ref(tag) for tag in request.tags), request.build_ref]
        return buildkit.build(
            self.client, request.options, request.image, refs, labels, build_args, request.credentials, log
        )

    def tag(self, source: str, image: ImageName, tags: Iterable[str]) -> None:
        docker_ops.tag(self.client, source, image, tags)

    def push(self, image: ImageName, tag: str, log: Log) -> None:
        docker_ops.push(self.client, image, tag, log)

    def untag(self, ref: str) -> None:
        docker_ops.untag(self.client, ref)


# The registry session and the notifier are imported on first use: a branch build opens no registry session
# before its build, and most jobs name no Receiver, so neither adds to the start-up before the build (issue 17).


def registry_session(image: ImageName, credentials: RegistryAuth) -> RegistryView:
    from image_tagger.edges.registry.session import RegistrySession

    return RegistrySession(image, credentials)


def announce_all(
    receivers: Sequence[Receiver], result: PublishResult, log: Callable[[str], None]
) -> list[Notification]:
    if not receivers:
        return []
    from image_tagger.edges import notify

    return notify.announce_all(receivers, result, log)


def real_edges(client: docker.DockerClient | None = None) -> JobEdges:
    """The edges every entry point publishes with (the demo hands in its own daemon client)."""
    return JobEdges(daemon=DockerDaemon(client), registry=registry_session, notify=announce_all)
