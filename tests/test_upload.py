"""An image from a real daemon into a real registry by digest, with no tag (issue 18: a signed release's tag comes
last): the daemon's copy (`docker save`, the classic store), or BuildKit's OCI layout with every platform and the
provenance (the containerd store); the daemon's pull of that digest gives back the very image that was built."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import time
from pathlib import Path

import docker
import pytest
from support.engines import Engine
from support.registry import Registry

from image_tagger.edges.jobports import UPLOADS_AHEAD, DockerDaemon
from image_tagger.edges.registry.session import RegistrySession
from image_tagger.edges.registry.upload import GZIP_LAYER, PIECE, _compressed, upload_saved
from image_tagger.model.errors import BuildError, PublishError
from image_tagger.model.imagename import parse_image
from image_tagger.model.inputs import BuildOptions
from image_tagger.model.log import KeptLog
from image_tagger.model.ports import BuildRequest
from image_tagger.model.registry import RegistryAuth
from image_tagger.rules.releases import VERSION


def test_an_image_goes_up_by_digest_and_comes_back_the_same(
    docker_client: docker.DockerClient, open_registry: Registry, sample_app: Path, tmp_path: Path
) -> None:
    image, _ = docker_client.images.build(path=str(sample_app), rm=True)
    name = parse_image(f"{open_registry.host}/upload/app")
    folder, again_folder = tmp_path / "saved", tmp_path / "again"
    folder.mkdir()
    again_folder.mkdir()

    def session() -> RegistrySession:
        return RegistrySession(name, RegistryAuth())

    digests: list[str] = []  # what runs beside the upload (the signature) gets the manifest's digest
    stored = upload_saved(docker_client.api.get_image(image.id), folder, session, digests.append)
    again = upload_saved(docker_client.api.get_image(image.id), again_folder, session)  # blobs there: the manifest

    assert again == stored and open_registry.tags("upload/app") == []  # by digest only: no tag
    written = [path for path in folder.rglob("*") if path.is_file()]
    tars = [path for path in written if path.read_bytes()[257:262] == b"ustar"]
    assert tars == [] and any(path.suffix == ".gz" for path in written)  # gzipped on the way in, never kept as tars
    assert digests == [stored.digest]
    manifest = open_registry.manifest("upload/app", stored.digest)
    assert manifest["config"]["digest"] == image.id
    assert {layer["mediaType"] for layer in manifest["layers"]} == {GZIP_LAYER}
    pulled = docker_client.images.pull(f"{name.name}@{stored.digest}")
    assert pulled.id == image.id
    docker_client.images.remove(f"{name.name}@{stored.digest}", force=True)


def test_a_multi_platform_index_with_provenance_goes_up_by_digest_from_buildkit_s_oci_layout(
    engine28_containerd: Engine, open_registry: Registry, sample_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the containerd store a build for the upload leaves BuildKit's OCI layout, not an image in the daemon;
    uploaded, the registry holds the index by digest only, with both platforms and their provenance, and a pull of
    it by digest gives the image back."""
    name = parse_image(f"{open_registry.host}/upload/index")
    options = BuildOptions(sample_app, sample_app / "Dockerfile", platforms=("linux/amd64", "linux/arm64"))
    build_ref = name.ref("image-tagger-build-upload")
    request = BuildRequest(
        options, name, ("1.0.0",), build_ref, {VERSION: "1.0.0"}, 0, RegistryAuth(), provenance="max", by_digest=True
    )
    monkeypatch.setenv("DOCKER_HOST", engine28_containerd.docker_host)  # buildx's daemon too
    with engine28_containerd.client() as client:
        daemon = DockerDaemon(client)
        image_id = daemon.build(request, KeptLog())
        try:
            digests: list[str] = []
            stored = daemon.upload(build_ref, name, RegistryAuth(), digests.append)
        finally:
            daemon.untag(build_ref)
        assert client.images.list(name=name.name) == []  # nothing of it in the daemon

        assert stored.digest == image_id and stored.is_index and open_registry.tags("upload/index") == []
        assert digests == [stored.digest]
        index = open_registry.manifest("upload/index", stored.digest)
        kinds = [entry.get("annotations", {}).get("vnd.docker.reference.type", "image") for entry in index["manifests"]]
        platforms = {entry["platform"]["architecture"] for entry in index["manifests"]}
        assert sorted(kinds) == ["attestation-manifest"] * 2 + ["image"] * 2 and platforms >= {"amd64", "arm64"}
        # The registry took each manifest only once its blobs were there; a kubelet's pull by digest gets the image.
        pulled = client.images.pull(f"{name.name}@{stored.digest}")
        assert pulled.labels == {VERSION: "1.0.0"}
        client.images.remove(f"{name.name}@{stored.digest}", force=True)


def test_the_classic_store_s_copy_comes_over_the_socket_without_the_sdk(
    engine28: Engine, open_registry: Registry, sample_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no client handed in, a signed job on the classic store asks the daemon's socket itself for the image it
    loaded (`docker save`) and for the drop of its tag, as the Docker SDK would; a tag the daemon does not have is
    one line saying so."""
    name = parse_image(f"{open_registry.host}/upload/socket")
    with engine28.client() as client:
        image, _ = client.images.build(path=str(sample_app), rm=True)
        build_ref, kept = name.ref("image-tagger-build-socket"), name.ref("1.0.0")
        image.tag(build_ref)
        image.tag(kept)
        monkeypatch.setenv("DOCKER_HOST", engine28.docker_host)
        daemon = DockerDaemon()
        stored = daemon.upload(build_ref, name, RegistryAuth())
        daemon.untag(build_ref)

        assert open_registry.manifest("upload/socket", stored.digest)["config"]["digest"] == image.id
        assert client.images.get(image.id).tags == [kept]  # only that tag is gone
        missing = rf"^the daemon did not hand over {build_ref}: reference does not exist$"
        with pytest.raises(PublishError, match=missing):
            daemon.upload(build_ref, name, RegistryAuth())
        daemon.untag(build_ref)  # gone already: not the job's failure
        client.images.remove(kept)


def test_uploads_started_beside_a_build_are_used_or_ended_and_all_ended_when_the_build_fails(
    engine28: Engine, open_registry: Registry, sample_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While BuildKit builds an image for an upload by digest, the registry's blob uploads are started beside it (a
    blob then goes up in one request); the upload leaves none of them open, and a build that fails ends them all."""
    monkeypatch.setenv("DOCKER_HOST", engine28.docker_host)
    name = parse_image(f"{open_registry.host}/upload/ahead")

    def request(tag: str) -> BuildRequest:
        options = BuildOptions(sample_app, sample_app / "Dockerfile")
        return BuildRequest(options, name, (tag,), name.ref(f"build-{tag}"), {}, 0, RegistryAuth(), by_digest=True)

    daemon = DockerDaemon()
    built = request("1.0.0")
    daemon.build(built, KeptLog())
    deadline = time.monotonic() + 10
    while open_registry.open_uploads("upload/ahead") < UPLOADS_AHEAD and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_registry.open_uploads("upload/ahead") == UPLOADS_AHEAD
    stored = daemon.upload(built.build_ref, name, RegistryAuth())
    daemon.untag(built.build_ref)
    assert open_registry.open_uploads("upload/ahead") == 0
    assert open_registry.manifest("upload/ahead", stored.digest)["config"]["digest"]

    (sample_app / "Dockerfile").write_text((sample_app / "Dockerfile").read_text() + "RUN false\n")
    with pytest.raises(BuildError):
        daemon.build(request("1.0.1"), KeptLog())
    assert open_registry.open_uploads("upload/ahead") == 0


def test_a_layer_is_gzipped_in_pieces_side_by_side_into_one_gzip_stream(tmp_path: Path) -> None:
    """Pieces deflated side by side make one gzip stream of the layer, the same bytes every time (one layer, one
    digest), hashed as written; a layer that is gzipped already goes as it is."""
    data = bytes(range(256)) * 4096 + random.Random(18).randbytes(PIECE) + b"x" * 300_000  # three pieces
    layer = tmp_path / "layer.tar"
    layer.write_bytes(data)

    first = _compressed(layer)
    again = _compressed(layer)

    packed = first.path.read_bytes()
    header = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=header, compresslevel=1, mtime=0):  # what it was before
        pass
    assert gzip.decompress(packed) == data and packed[:10] == header.getvalue()[:10]
    assert first == again and first.digest == "sha256:" + hashlib.sha256(packed).hexdigest()
    assert first.size == len(packed) < len(data)
    assert _compressed(first.path).path == first.path  # gzipped already
