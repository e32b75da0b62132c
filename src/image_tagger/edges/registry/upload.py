"""An image from the Docker daemon into a registry by digest, with no tag: what a signed release needs, because its
tag may only appear once the signature is there, and neither the daemon nor BuildKit's docker driver can push
without a tag.

The daemon hands the image over as `docker save` does (its config and each layer as a tar); layers that arrive
uncompressed are gzipped here (fixed header, no timestamp, so one layer always gives one digest), in parallel,
and every blob is uploaded unless the repository has it. The manifest goes last, by digest: a Docker v2 manifest,
as the daemon's own push would write it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from image_tagger.edges.registry.session import Manifest, RegistrySession
from image_tagger.model.errors import PublishError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
GZIP_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
GZIP_MAGIC = b"\x1f\x8b"
GZIP_LEVEL = 6  # what the daemon's and BuildKit's pushes use
CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    path: Path
    digest: str
    size: int

    def opener(self) -> Callable[[], contextlib.AbstractContextManager[IO[bytes]]]:
        return lambda: self.path.open("rb")


def _hashed(path: Path) -> Blob:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return Blob(path, "sha256:" + digest.hexdigest(), path.stat().st_size)


def _compressed(layer: Path) -> Blob:
    """The layer as the registry gets it: as it is when already gzipped, else gzipped without a timestamp."""
    with layer.open("rb") as source:
        if source.read(2) == GZIP_MAGIC:
            return _hashed(layer)
    target = layer.with_name(layer.name + ".gz")
    with (
        layer.open("rb") as source,
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0) as packed,
    ):
        shutil.copyfileobj(source, packed, CHUNK)
    return _hashed(target)


def unpack(saved: Iterable[bytes], folder: Path) -> tuple[Path, list[Path]]:
    """Write a `docker save` stream into `folder`; the config file and the layer files, in order."""
    with (
        io.BufferedReader(_Stream(iter(saved)), CHUNK) as stream,
        tarfile.open(fileobj=stream, mode="r|") as archive,
    ):
        archive.extractall(folder, filter="data")
    try:
        [entry] = json.loads((folder / "manifest.json").read_text())
        config = folder / entry["Config"]
        layers = [folder / name for name in entry["Layers"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PublishError(f"the daemon's saved image has no usable manifest.json ({err})") from None
    if not all(path.resolve().is_relative_to(folder.resolve()) for path in (config, *layers)):
        raise PublishError("the daemon's saved image names files outside itself")
    return config, layers


def upload(config: Path, layers: list[Path], session_for: Callable[[], RegistrySession]) -> Manifest:
    """Upload the image's blobs, then its manifest by digest (no tag); the manifest as stored."""
    with ThreadPoolExecutor(max_workers=4) as pool:  # zlib and the sockets release the GIL
        packed = list(pool.map(_compressed, layers))
    config_blob = _hashed(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config_blob.size, "digest": config_blob.digest},
        "layers": [{"mediaType": GZIP_LAYER, "size": blob.size, "digest": blob.digest} for blob in packed],
    }
    body = json.dumps(manifest, indent=3).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()

    def put(blob: Blob) -> None:
        with session_for() as session:  # a session per blob: each has its own deadline
            session.put_blob(blob.opener(), blob.digest)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(put, [config_blob, *packed]))
    with session_for() as session:
        session.put_manifest(digest, Manifest(digest, DOCKER_MANIFEST, body, session.image.registry))
    return Manifest(digest, DOCKER_MANIFEST, body)


class _Stream(io.RawIOBase):
    """A file over an iterator of chunks, for tarfile's streaming mode: each chunk handed on through a memoryview,
    so a read copies only what it returns (a layer of hundreds of MB goes through in one pass)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            chunk = next(self.chunks, b"")
            if not chunk:
                return 0
            self.pending = memoryview(chunk)
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()
        super().close()
