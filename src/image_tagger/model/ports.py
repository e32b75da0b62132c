"""What the publish job needs from outside, as interfaces of our own.

The job (operations.publish.run) decides; these do: the Docker daemon and BuildKit build and push, a
registry session reads and copies manifests, the notifier tells Flux's Receivers, the clock and sleep pace
retries and settle intervals. `operations.publish.real_edges()` wraps the real ones; the fast tests hand in
fakes of these (never a mock of the Docker SDK), so the job's decisions run without a daemon or a network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from image_tagger.model.imagename import ImageName
from image_tagger.model.inputs import BuildOptions
from image_tagger.model.log import Log
from image_tagger.model.receivers import Notification, Receiver
from image_tagger.model.registry import RegistryAuth
from image_tagger.model.result import PublishResult


class StoredManifest(Protocol):
    """A manifest as the registry holds it: its digest, and its JSON."""

    @property
    def digest(self) -> str: ...

    def json(self) -> dict[str, Any]: ...


class RegistryView(Protocol):
    """One session with the image's repository, for one phase of the job (it carries its own deadline)."""

    def __enter__(self) -> RegistryView: ...

    def __exit__(self, *exc: object) -> None: ...

    def tags(self, missing_ok: bool = False) -> list[str]: ...

    def manifest(self, reference: str) -> Any: ...  # a StoredManifest, or None when the tag is not there

    def config_labels(self, manifest: Any) -> dict[str, str]: ...

    def put_manifest(self, tag: str, manifest: Any) -> str: ...

    def attach(self, subject: Any, artifact_type: str, annotations: Mapping[str, str]) -> str: ...

    def signature_layers(self, digest: str) -> list[Any]: ...  # rules.signatures.SignatureLayer

    def put_signature(
        self, digest: str, layer: Any, unless: Callable[[list[Any]], bool] | None = None
    ) -> str | None: ...

    def authorize(self) -> None: ...  # the registry's handshake for an upload, ahead of it

    # blob uploads started ahead, for the sessions sharing its handshake
    def open_uploads(self, count: int) -> None: ...

    def cancel_uploads(self) -> None: ...  # those left unused, ended


class RegistryOpener(Protocol):
    """Opens a session; `deadline` (seconds for everything it does, retries included) shortens the default."""

    def __call__(self, image: ImageName, credentials: RegistryAuth, deadline: float | None = None) -> RegistryView: ...


@dataclass(frozen=True)
class BuildRequest:
    """One build: the options, every tag to give the image, and the labels and time the job decided.

    `stop` is set by the job when the build must end early (the login it checks meanwhile was refused). `started` is
    set once the build runs: the job's work beside it (the login check, opening a signing key) waits for that, so its
    imports do not hold the interpreter while the build starts.
    """

    options: BuildOptions
    image: ImageName
    tags: tuple[str, ...]  # the plan's tags, then this run's own build tag (`build_ref`)
    build_ref: str
    labels: Mapping[str, str]
    source_date_epoch: int  # BuildKit stamps the image config and layer history with it
    credentials: RegistryAuth
    stop: threading.Event | None = field(default=None, compare=False)
    provenance: str | None = None  # SLSA provenance mode for BuildKit (max, min), when the builder stores it
    by_digest: bool = False  # the image goes to the registry by Daemon.upload (a signed one), not by a tag push
    started: threading.Event | None = field(default=None, compare=False)


class Daemon(Protocol):
    """The Docker daemon (and BuildKit through it); each call raises PublishError on failure.

    `build` leaves the image in the daemon under the request's tags and `build_ref` (a request `by_digest` on the
    containerd image store: as an OCI layout with every platform and attestation, kept for `upload`); returns the
    image id (the index digest for an index).
    `upload` puts a built image in the registry by digest, with no tag (a signed image is tagged only once
    its signature is there), and returns its manifest (or index) as stored; `beside(digest)` runs as soon as the
    digest is known, while the blobs still go up (the signature), and its error is raised after the upload's.
    `push` puts one tag of the request's image in the registry and returns the image id it pushed: BuildKit
    builds and pushes in one go (a push again after a failed one rebuilds from cache), the legacy builder's
    image (built first) is tagged from `build_ref` and pushed by the daemon. A failed build step raises
    BuildError; a failed push a PublishError (NotPushed when BuildKit built the image).
    """

    def login(self, image: ImageName, credentials: RegistryAuth) -> None: ...

    def attestations(self) -> bool: ...  # whether BuildKit's image store here can hold attestations

    def build(self, request: BuildRequest, log: Log) -> str: ...

    def push(self, request: BuildRequest, tag: str, log: Log) -> str: ...

    def untag(self, ref: str) -> None: ...  # drops what `build` left under `ref`; never fails the job

    def upload(  # by digest: a StoredManifest
        self, ref: str, image: ImageName, credentials: RegistryAuth, beside: Callable[[str], object] | None = None
    ) -> Any: ...


Notifier = Callable[[Sequence[Receiver], PublishResult, Callable[[str], None]], list[Notification]]


@dataclass(frozen=True)
class JobEdges:
    """Everything the job touches outside its own decisions."""

    daemon: Daemon
    registry: RegistryOpener
    notify: Notifier
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
