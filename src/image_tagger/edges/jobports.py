"""The publish job's ports (model.ports) on the real world: the Docker daemon with the classic builder or
BuildKit, the registry's HTTP API, and Flux's Receivers.

The Docker SDK (docker, requests, urllib3: some 100 ms of imports) is imported on first use: BuildKit builds and
pushes through buildx, so a BuildKit job needs it only for its login check, which runs beside the build, and for a
few daemon questions; none of it delays the build's start (issue 17)."""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from image_tagger.edges import buildkit, daemoninfo
from image_tagger.model.errors import PublishError, PushStalled
from image_tagger.model.imagename import ImageName
from image_tagger.model.log import Log
from image_tagger.model.ports import BuildRequest, JobEdges, RegistryOpener, RegistryView, StoredManifest
from image_tagger.model.receivers import Notification, Receiver
from image_tagger.model.registry import RegistryAuth
from image_tagger.model.result import PublishResult
from image_tagger.model.states import Builder

if TYPE_CHECKING:
    import docker

    from image_tagger.edges.registry.session import Handshake


class DockerDaemon:
    """The Daemon port: connects on first use, so a run refused before any build needs no daemon."""

    def __init__(self, client: docker.DockerClient | None = None, registry: RegistryOpener | None = None) -> None:
        self._client = client
        self._registry = registry or registry_opener()  # the job's, for `upload`
        self._built: dict[str, str] = {}  # image ids of the legacy builder's builds, by build_ref
        self._layouts: dict[str, Path] = {}  # folders of the OCI layouts exported for `upload`, by build_ref
        self._containerd: bool | None = None
        self._ahead: tuple[threading.Thread, Callable[[], RegistryView]] | None = None  # see _beside_build

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            from image_tagger.edges import docker_ops

            self._client = docker_ops.connect()
        return self._client

    def containerd_store(self) -> bool:
        """Whether the daemon keeps images in containerd (multi-platform images, cache export, attestations)."""
        if self._containerd is None:
            path = self._socket()
            if path is not None:
                self._containerd = daemoninfo.has_containerd_store(daemoninfo.info_over_socket(path))
            else:
                from docker.errors import DockerException

                try:
                    self._containerd = daemoninfo.has_containerd_store(self.client.info())
                except DockerException as err:
                    raise PublishError(f"Docker daemon not reachable: {err}") from err
        return self._containerd

    def attestations(self) -> bool:
        return self.containerd_store()

    def _socket(self) -> str | None:
        """The daemon's Unix socket, where the standard library asks it without the Docker SDK (unless a client
        was handed in)."""
        return daemoninfo.socket_path() if self._client is None else None

    def login(self, image: ImageName, credentials: RegistryAuth) -> None:
        path = self._socket()
        registry = None if image.is_docker_hub else image.registry
        if path is not None:
            daemoninfo.login_over_socket(path, registry, credentials.username, credentials.password)
            return
        from image_tagger.edges import docker_ops

        docker_ops.login(self.client, image, credentials.username, credentials.password)

    def build(self, request: BuildRequest, log: Log) -> str:
        try:
            return self._build(request, log)
        except BaseException:
            self._end_ahead()
            raise

    def _build(self, request: BuildRequest, log: Log) -> str:
        if request.options.builder == Builder.LEGACY:
            from image_tagger.edges import docker_ops

            self._beside_build((), request)
            labels = dict(request.labels)
            image_id = docker_ops.build(self.client, request.options, request.build_ref, labels, log)
            docker_ops.tag(self.client, request.build_ref, request.image, request.tags)
            self._built[request.build_ref] = image_id
            return image_id
        if request.by_digest and self.containerd_store():  # every platform and attestation, in an OCI layout
            folder = self._layouts[request.build_ref] = buildkit.private_folder()
            try:
                return self._buildkit(request, [request.image.ref(request.tags[0])], log, layout=folder / LAYOUT)
            except BaseException:
                self.untag(request.build_ref)
                raise
        return self._buildkit(request, [*(request.image.ref(tag) for tag in request.tags), request.build_ref], log)

    def push(self, request: BuildRequest, tag: str, log: Log) -> str:
        if request.options.builder != Builder.LEGACY:
            return self._buildkit(request, [request.image.ref(tag)], log, push=True)
        from image_tagger.edges import docker_ops

        docker_ops.tag(self.client, request.build_ref, request.image, (tag,))  # from our own tag: see publish
        credentials = request.credentials if request.credentials.username else None
        try:
            docker_ops.push(self.client, request.image, tag, log, credentials)
        except PushStalled as err:  # name what was built, for the read-back
            raise PushStalled(str(err), self._built[request.build_ref]) from err
        return self._built[request.build_ref]

    def _buildkit(
        self, request: BuildRequest, refs: list[str], log: Log, push: bool = False, layout: Path | None = None
    ) -> str:
        # What the job needs after the build loads while BuildKit builds: the registry client for the read-back or
        # the upload, the Docker SDK (some 0.15 s of imports) that saves the daemon's copy for an upload from it, the
        # report and the clean-up of the build's folder (issue 17).
        after = [REGISTRY_MODULE] if push or request.by_digest else []
        after += ["docker"] if request.by_digest and layout is None and self._socket() is None else []
        after += AFTER_BUILD
        # BuildKit stamps the image config and layer history with SOURCE_DATE_EPOCH; an explicit build-arg wins.
        build_args = {"SOURCE_DATE_EPOCH": str(request.source_date_epoch), **request.options.build_args}
        return buildkit.build(
            request.options,
            request.image,
            refs,
            dict(request.labels),
            build_args,
            request.credentials,
            log,
            containerd_store=self.containerd_store,
            push=push,
            stop=request.stop,
            provenance=request.provenance,
            layout=layout,
            started=lambda: self._beside_build(after, request),
        )

    def _beside_build(self, modules: Sequence[str], request: BuildRequest) -> None:
        """Once the build runs: let the job's work beside it go, and import `modules` in a thread; for an upload by
        digest, that thread then gets the registry ready."""
        if request.started is not None:
            request.started.set()
        ready = None
        if request.by_digest:
            ready = partial(self._registry, request.image, request.credentials, AHEAD_DEADLINE)
        if not modules and ready is None:
            return
        thread = threading.Thread(target=_prepare, args=(modules, ready), daemon=True)
        thread.start()
        if ready is not None:
            self._ahead = thread, ready

    def _end_ahead(self) -> None:
        """End the uploads started beside the build and left unused (a registry keeps an upload for days)."""
        if self._ahead is None:
            return
        thread, opener = self._ahead
        self._ahead = None
        thread.join()  # bounded by its session's deadline
        with contextlib.suppress(PublishError), opener() as leftover:
            leftover.cancel_uploads()

    def untag(self, ref: str) -> None:
        if ref in self._layouts:  # nothing of it in the daemon
            import shutil  # after the build (issue 17)

            shutil.rmtree(self._layouts.pop(ref), ignore_errors=True)
            return
        path = self._socket()
        if path is not None:
            daemoninfo.untag_over_socket(path, ref)
            return
        from image_tagger.edges import docker_ops

        docker_ops.untag(self.client, ref)

    def upload(
        self, ref: str, image: ImageName, credentials: RegistryAuth, beside: Callable[[str], object] | None = None
    ) -> StoredManifest:
        from image_tagger.edges.registry import upload

        def session() -> RegistryView:
            return self._registry(image, credentials)

        try:
            if ref in self._layouts:
                return upload.upload_layout(self._layouts[ref] / LAYOUT, session, beside)
            import tempfile

            with tempfile.TemporaryDirectory(prefix="image-tagger-upload-") as folder:
                return upload.upload_saved(self._saved(ref), Path(folder), session, beside)
        finally:
            self._end_ahead()

    def _saved(self, ref: str) -> Iterator[bytes]:
        """The daemon's copy of `ref`, as `docker save` streams it."""
        path = self._socket()
        if path is not None:
            yield from daemoninfo.save_over_socket(path, ref)
            return
        from docker.errors import DockerException

        try:
            yield from self.client.api.get_image(ref)
        except DockerException as err:
            raise PublishError(f"the daemon did not hand over {ref}: {err}") from err


LAYOUT = "image.oci.tar"  # BuildKit's OCI layout archive, in the build's own folder
# Blob uploads started beside the build, for an upload by digest: each of its blobs then goes up in one request, not
# two. A signed image of a commit mostly needs five: its config, the one or two layers a commit changes, and the
# signature's payload and config; one more or one less costs a request at the end.
UPLOADS_AHEAD = 5


# The registry session and the notifier are imported on first use: a branch build opens no registry session
# before its build, and most jobs name no Receiver, so neither adds to the start-up before the build (issue 17).


REGISTRY_MODULE = "image_tagger.edges.registry.session"
AFTER_BUILD = ("image_tagger.model.report", "image_tagger.rules.report", "image_tagger.fluxrules.policy", "shutil")


AHEAD_DEADLINE = 10.0  # seconds for the handshake and the uploads started beside the build


def _prepare(modules: Sequence[str], registry: Callable[[], RegistryView] | None) -> None:
    """Load what the job needs after its build; for an upload by digest, learn how the registry authorizes it (so none
    of the upload's sessions waits for a 401) and start its blob uploads. What fails here the upload meets and
    reports."""
    for name in modules:
        importlib.import_module(name)
    if registry is not None:
        with contextlib.suppress(PublishError), registry() as session:
            session.authorize()
            session.open_uploads(UPLOADS_AHEAD)


def registry_opener() -> RegistryOpener:
    """One job's registry sessions: each with its own deadline, all sharing what the registry said about
    authorization per repository and account (a session's first request needs no 401 of its own)."""
    handshakes: dict[tuple[str, str, RegistryAuth], Handshake] = {}

    def registry_session(image: ImageName, credentials: RegistryAuth, deadline: float | None = None) -> RegistryView:
        from image_tagger.edges.registry.session import DEFAULT_DEADLINE, Handshake, RegistrySession

        handshake = handshakes.setdefault((image.registry, image.path, credentials), Handshake())
        return RegistrySession(image, credentials, deadline=deadline or DEFAULT_DEADLINE, handshake=handshake)

    return registry_session


def announce_all(
    receivers: Sequence[Receiver], result: PublishResult, log: Callable[[str], None]
) -> list[Notification]:
    if not receivers:
        return []
    from image_tagger.edges import notify

    return notify.announce_all(receivers, result, log)


def real_edges(client: docker.DockerClient | None = None) -> JobEdges:
    """The edges every entry point publishes with (the demo hands in its own daemon client)."""
    registry = registry_opener()
    return JobEdges(daemon=DockerDaemon(client, registry), registry=registry, notify=announce_all)
