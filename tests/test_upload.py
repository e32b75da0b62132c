"""An image from a real daemon into a real registry by digest, with no tag (issue 18: a signed release's tag comes
last): the daemon's pull of that digest gives back the very image that was built."""

from __future__ import annotations

from pathlib import Path

import docker
from support.registry import Registry

from image_tagger.edges.registry.session import RegistrySession
from image_tagger.edges.registry.upload import GZIP_LAYER, unpack, upload
from image_tagger.model.imagename import parse_image
from image_tagger.model.registry import RegistryAuth


def test_an_image_goes_up_by_digest_and_comes_back_the_same(
    docker_client: docker.DockerClient, open_registry: Registry, sample_app: Path, tmp_path: Path
) -> None:
    image, _ = docker_client.images.build(path=str(sample_app), rm=True)
    name = parse_image(f"{open_registry.host}/upload/app")
    folder = tmp_path / "saved"
    folder.mkdir()

    config, layers = unpack(docker_client.api.get_image(image.id), folder)
    stored = upload(config, layers, lambda: RegistrySession(name, RegistryAuth()))
    again = upload(config, layers, lambda: RegistrySession(name, RegistryAuth()))  # blobs there: only the manifest

    assert again == stored and open_registry.tags("upload/app") == []  # by digest only: no tag
    manifest = open_registry.manifest("upload/app", stored.digest)
    assert manifest["config"]["digest"] == image.id
    assert {layer["mediaType"] for layer in manifest["layers"]} == {GZIP_LAYER}
    pulled = docker_client.images.pull(f"{name.name}@{stored.digest}")
    assert pulled.id == image.id
    docker_client.images.remove(f"{name.name}@{stored.digest}", force=True)
