"""An image into a registry by digest, with no tag: what a signed release needs, because its tag may only appear once
the signature is there, and neither the daemon nor BuildKit's docker driver can push without a tag.

Two sources. On the containerd image store BuildKit exports the image as an OCI layout (`--output type=oci`): the
index with every platform and the provenance attestation, layers already compressed by BuildKit; each blob and
manifest goes up by digest, the index last (`upload_layout`). The classic store can export no OCI layout, so its
image comes from the daemon as `docker save` hands it over (one platform, no attestation: the classic store holds
none): layers that arrive uncompressed are gzipped here as they stream in from the daemon, never written to disk
uncompressed (fixed header, no timestamp, so one layer always gives one digest), each uploaded as soon as it is
gzipped while the daemon still writes the next, and a Docker v2 manifest goes last, as the daemon's own push would
write it (`upload_saved`). Blobs the repository has already are not sent again, but for small ones (ASK_FIRST).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import struct
import tarfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from isal import isal_zlib

from image_tagger.edges.registry.session import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, Manifest, RegistrySession
from image_tagger.model.errors import PublishError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
GZIP_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
GZIP_MAGIC = b"\x1f\x8b"
# gzip is on a signed job's critical path (the daemon's own push remembers which compressed blob each layer had, so
# it compresses a base layer once; we cannot). ISA-L's deflate at its level 2 is 5-12x faster than zlib's fastest level
# (a 2 MB binary in 6 ms, not 32; 64 MiB of random bytes in 0.12 s, not 1.4 s: bench_publish --payload-mb) for ~4 %
# more bytes, and as deterministic (same bytes in, same bytes out); its level 3 takes twice as long for 2 % fewer. The
# bytes are ours alone either way (Go's gzip, zlib and ISA-L differ at every level).
GZIP_LEVEL = 2
# A layer is deflated in pieces of this size, two side by side (ISA-L releases the GIL), as pigz does: a 2 MB layer
# takes half the time on two cores. The gzip header has no name and no time (xfl 4: fastest; OS 255: unknown).
PIECE = 1 << 20
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"
CHUNK = 1 << 20
TAR_BLOCK = 512  # a tar's first header: "ustar" at offset 257 tells a layer from a config or a manifest
MAX_MANIFEST = 4 << 20  # an index or manifest is a few KB
# Blobs up to this size go up without a HEAD asking whether the repository has them: such blobs are mostly new (the
# image config names the commit; attestations; the small layers a commit changes), so the HEAD would mostly add a
# request, and sending one again costs two small ones. A larger blob goes up only when the HEAD finds it missing.
ASK_FIRST = 64 << 10
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


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
    """The layer as the registry gets it: as it is when already gzipped, else gzipped beside it (`_gzipped`)."""
    with layer.open("rb") as source:
        if source.read(2) == GZIP_MAGIC:
            return _hashed(layer)
        source.seek(0)
        with ThreadPoolExecutor(max_workers=2) as deflaters:
            return _gzipped(source, layer.with_name(layer.name + ".gz"), deflaters)


def _gzipped(source: IO[bytes], target: Path, deflaters: ThreadPoolExecutor, first: bytes = b"") -> Blob:
    """`first`, then the rest of `source`, gzipped into `target` without a timestamp: its pieces (PIECE) deflated side
    by side, two in flight (memory stays bounded), written in order and hashed as they are written."""
    digest, crc, size = hashlib.sha256(), 0, 0

    def write(out: IO[bytes], data: bytes) -> None:
        digest.update(data)
        out.write(data)

    with target.open("wb") as out:
        write(out, GZIP_HEADER)
        pending: deque[Future[bytes]] = deque()
        piece = first + source.read(PIECE - len(first))
        while True:
            following = source.read(PIECE)
            crc, size = isal_zlib.crc32(piece, crc), size + len(piece)
            pending.append(deflaters.submit(_deflate, piece, not following))
            while len(pending) > 2 or (pending and not following):
                write(out, pending.popleft().result())
            if not following:
                break
            piece = following
        write(out, struct.pack("<II", crc, size & 0xFFFFFFFF))
    return Blob(target, "sha256:" + digest.hexdigest(), target.stat().st_size)


def _deflate(piece: bytes, last: bool) -> bytes:
    """One piece of a deflate stream: raw deflate, ended on a byte boundary (a full flush, so the next piece starts
    afresh: the output depends on the bytes alone) or, for the last piece, by the final block."""
    packer = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    return packer.compress(piece) + packer.flush(isal_zlib.Z_FINISH if last else isal_zlib.Z_FULL_FLUSH)


def _streamed(saved: Iterable[bytes], folder: Path, packed: Callable[[Path, Blob], None]) -> tuple[Path, list[Path]]:
    """Write a `docker save` stream into `folder` (tarfile's `data` filter: nothing outside it); the config file and
    the layer files, in order. Each uncompressed layer (a tar) is gzipped on its way in, beside `<name>.gz` and never
    written as it came, and handed to `packed(path, blob)` at once; the rest is written as it is."""
    with (
        io.BufferedReader(_Stream(iter(saved)), CHUNK) as stream,
        tarfile.open(fileobj=stream, mode="r|") as archive,
        ThreadPoolExecutor(max_workers=2) as deflaters,
    ):
        for member in archive:
            if not member.isreg():
                archive.extract(member, folder, filter="data")
                continue
            path = folder / tarfile.data_filter(member, str(folder)).name
            path.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None  # a regular file
            head = source.read(TAR_BLOCK)
            if len(head) == TAR_BLOCK and head[257:262] == b"ustar":
                packed(path, _gzipped(source, path.with_name(path.name + ".gz"), deflaters, head))
                continue
            with path.open("wb") as out:
                out.write(head)
                while chunk := source.read(CHUNK):
                    out.write(chunk)
    try:
        [entry] = json.loads((folder / "manifest.json").read_text())
        config = folder / entry["Config"]
        layers = [folder / name for name in entry["Layers"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PublishError(f"the daemon's saved image has no usable manifest.json ({err})") from None
    if not all(path.resolve().is_relative_to(folder.resolve()) for path in (config, *layers)):
        raise PublishError("the daemon's saved image names files outside itself")
    return config, layers


def _put(session_for: Callable[[], RegistrySession], blob: Blob) -> Blob:
    with session_for() as session:  # a session per blob: each has its own deadline
        session.put_blob(blob.opener(), blob.digest, check=blob.size > ASK_FIRST)
    return blob


def _put_manifest(session_for: Callable[[], RegistrySession], manifest: Manifest) -> None:
    with session_for() as session:
        session.put_manifest(manifest.digest, manifest)  # by digest: no tag


def upload_saved(
    saved: Iterable[bytes],
    folder: Path,
    session_for: Callable[[], RegistrySession],
    beside: Callable[[str], object] | None = None,
) -> Manifest:
    """Upload the image in a `docker save` stream, unpacked in `folder`: each layer gzipped as it streams in and sent
    as soon as it is, then the config and the manifest by digest (no tag); the manifest as stored. `beside(digest)`
    runs as soon as the digest is known, while blobs still go up."""
    with ThreadPoolExecutor(max_workers=4) as pool:  # ISA-L and the sockets release the GIL
        gzipped: dict[Path, Blob] = {}
        puts: list[Future[Blob]] = []

        def packed(path: Path, blob: Blob) -> None:
            gzipped[path.resolve()] = blob
            puts.append(pool.submit(_put, session_for, blob))

        config, layers = _streamed(saved, folder, packed)
        config_blob = _hashed(config)
        puts.append(pool.submit(_put, session_for, config_blob))
        blobs: list[Blob] = []
        for layer in layers:  # one that came gzipped, or no tar at all (an empty layer), is packed here
            blob = gzipped.get(key := layer.resolve())
            if blob is None:
                blob = gzipped[key] = _compressed(layer)
                puts.append(pool.submit(_put, session_for, blob))
            blobs.append(blob)
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": config_blob.size, "digest": config_blob.digest},
            "layers": [{"mediaType": GZIP_LAYER, "size": blob.size, "digest": blob.digest} for blob in blobs],
        }
        body = json.dumps(manifest, indent=3).encode()
        stored = Manifest("sha256:" + hashlib.sha256(body).hexdigest(), DOCKER_MANIFEST, body)
        return _finish(pool, puts, [stored], session_for, beside)


def upload_layout(
    archive: Path, session_for: Callable[[], RegistrySession], beside: Callable[[str], object] | None = None
) -> Manifest:
    """Upload the image BuildKit exported as an OCI layout archive (`--output type=oci`) by digest, with no tag:
    every blob, then each image and attestation manifest, the index last; the index (or, for one platform without
    attestations, the manifest) as stored. The archive is unpacked beside itself and removed. `beside(digest)`
    runs while the blobs go up."""
    folder = archive.with_name(archive.name + ".d")
    with tarfile.open(archive) as layout:
        layout.extractall(folder, filter="data")
    archive.unlink()
    try:
        [top] = json.loads((folder / "index.json").read_text())["manifests"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PublishError(f"the exported image has no usable index.json with one image in it ({err})") from None
    blobs: dict[str, Blob] = {}
    manifests: dict[str, Manifest] = {}  # children before the index that lists them
    _walk(folder, top, blobs, manifests)
    # All of an image's blobs at once (one platform with provenance has six): a second wave of requests cost
    # 0.03-0.07 s on the loopback registry (signed vs unsigned: x1.10-1.12 with four at a time, x1.02-1.08 with eight).
    with ThreadPoolExecutor(max_workers=8) as pool:
        puts = [pool.submit(_put, session_for, blob) for blob in blobs.values()]
        return _finish(pool, puts, list(manifests.values()), session_for, beside)


def _finish(
    pool: ThreadPoolExecutor,
    puts: list[Future[Blob]],
    manifests: list[Manifest],
    session_for: Callable[[], RegistrySession],
    beside: Callable[[str], object] | None,
) -> Manifest:
    """Run `beside` with the last manifest's digest while the blob `puts` end, then put the manifests, children
    first (image manifests side by side, any index in order, the last one last); the last one. An upload's error
    comes first; then `beside`'s. `beside` has a thread of its own: it does not queue behind the blobs."""
    *children, top = manifests
    with ThreadPoolExecutor(max_workers=1) as own:
        aside = own.submit(beside, top.digest) if beside is not None else None
        for put in puts:
            put.result()
        images = [manifest for manifest in children if not manifest.is_index]
        list(pool.map(partial(_put_manifest, session_for), images))
        for nested in (manifest for manifest in children if manifest.is_index):  # BuildKit nests none
            _put_manifest(session_for, nested)
        _put_manifest(session_for, top)
        if aside is not None:
            aside.result()
    return top


def _walk(folder: Path, descriptor: Any, blobs: dict[str, Blob], manifests: dict[str, Manifest]) -> None:
    """Collect the blobs and manifests `descriptor` reaches in the layout at `folder`, children first."""
    try:
        digest, media_type = descriptor["digest"], descriptor["mediaType"]
        path = _layout_blob(folder, digest)
        if path.stat().st_size > MAX_MANIFEST:
            raise ValueError(f"manifest {digest} is larger than {MAX_MANIFEST} bytes")
        body = path.read_bytes()
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise ValueError(f"{digest} does not match its bytes")
        parsed = json.loads(body)
        if media_type in INDEX_MEDIA_TYPES:
            for child in parsed["manifests"]:
                _walk(folder, child, blobs, manifests)
        elif media_type in MANIFEST_MEDIA_TYPES:
            for entry in (parsed["config"], *parsed["layers"]):
                blobs[entry["digest"]] = Blob(_layout_blob(folder, entry["digest"]), entry["digest"], entry["size"])
        else:
            raise ValueError(f"a {str(media_type)[:80]!r} is neither an image manifest nor an index")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PublishError(f"the exported image's OCI layout is not usable ({err})") from None
    manifests[digest] = Manifest(digest, media_type, body)


def _layout_blob(folder: Path, digest: Any) -> Path:
    """Where the layout keeps `digest`, a sha256 digest (anything else is not one of BuildKit's)."""
    if not isinstance(digest, str) or not SHA256.fullmatch(digest):
        raise ValueError(f"{str(digest)[:80]!r} is not a sha256 digest")
    path = folder / "blobs" / "sha256" / digest.removeprefix("sha256:")
    if not path.is_file():
        raise ValueError(f"blob {digest} is missing")
    return path


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
