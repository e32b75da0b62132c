"""SLSA provenance with the image (issue 18, item 1), on real engines: with the containerd image store the pushed
tag names an index holding the image and an attestation manifest with BuildKit's provenance, and the daemon pulls
the very image from it; with the classic store the push is as before and the result says plainly there is none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from support.cli import explain, run_cli
from support.engines import EngineMissing, probe
from support.registry import Registry

from image_tagger.edges.registry.session import RegistrySession
from image_tagger.model.imagename import parse_image

INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = f"{INDEX}, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


def engine_or_fail(name: str):
    try:
        return probe(name)
    except EngineMissing as missing:
        pytest.fail(f"{missing}; `./dev test` starts it", pytrace=False)


def manifest(registry: Registry, repository: str, reference: str) -> dict:
    answer = requests.get(
        f"http://{registry.host}/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT}, timeout=10
    )
    answer.raise_for_status()
    return answer.json()


def publish(engine_host: str, registry: Registry, workspace: Path, repository: str, *extra: str):
    return run_cli(
        *("publish", "--json", "--image", f"{registry.host}/{repository}", "--workspace", str(workspace), *extra),
        env={"DOCKER_HOST": engine_host},
        timeout=300,
    )


def test_with_the_containerd_store_the_index_carries_slsa_provenance(open_registry: Registry, sample_app: Path) -> None:
    engine = engine_or_fail("28-containerd")
    done = publish(engine.docker_host, open_registry, sample_app, "provenance/app", "--provenance", "max")

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    assert result["provenance"] == "SLSA provenance, mode=max"
    index = manifest(open_registry, "provenance/app", result["version"])
    assert index["mediaType"] == INDEX and result["digest"]
    kinds = {
        entry.get("annotations", {}).get("vnd.docker.reference.type", "image"): entry for entry in index["manifests"]
    }
    assert set(kinds) == {"image", "attestation-manifest"}
    attestation = manifest(open_registry, "provenance/app", kinds["attestation-manifest"]["digest"])
    predicates = {layer["annotations"]["in-toto.io/predicate-type"] for layer in attestation["layers"]}
    assert any(p.startswith("https://slsa.dev/provenance/") for p in predicates), predicates
    # The digest Flux's digest reflection records for the release (production pins it): the index's, not its image's.
    with RegistrySession(parse_image(f"{open_registry.host}/provenance/app")) as session:
        assert session.head_digest(result["version"]) == result["digest"] != kinds["image"]["digest"]
    with engine.client() as client:  # what a kubelet does: pull by tag, get the image from the index
        pulled = client.images.pull(f"{open_registry.host}/provenance/app", tag=result["version"])
        assert pulled.attrs["Config"]["Labels"]["org.opencontainers.image.version"] == result["version"]


def test_with_the_classic_store_the_result_says_there_is_none(open_registry: Registry, sample_app: Path) -> None:
    engine = engine_or_fail("20.10")
    done = publish(engine.docker_host, open_registry, sample_app, "provenance/classic", "--provenance", "max")

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    assert result["provenance"].startswith("none: this daemon's classic image store cannot hold attestations")
    assert manifest(open_registry, "provenance/classic", result["version"])["mediaType"] != INDEX
