"""`image-tagger preview` against a real htpasswd registry, on the example consumer rendered with the real base.

Credentials come from a Docker config (DOCKER_CONFIG), as they do for a developer; the base is served
from a tagged local git repo so that kustomize fetches the consumer's `//flux?ref=` remote offline.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from support.cli import explain, run_cli
from support.registry import Registry, basic_entry, write_docker_config

from image_tagger.demo import localregistry
from image_tagger.edges.kustomize import PINNED_KUSTOMIZE, point_consumer_at, publish_flux_base
from image_tagger.edges.manifests import kustomize_build

REPO = Path(__file__).resolve().parents[1]
REPOSITORY = "cli-preview/app"
TAGS = ["1.0.0", "1.4.2", "1.5.0-rc.1", "2.0.0", "main-3f2c1a9-1764110000", "main-0b1c2d3-1764200000"]
EXPECTED = {"production": "1.4.2", "staging": "main-0b1c2d3-1764200000"}
EXAMPLE_IMAGE = "docker.io/acme/app"  # what kustomize/ names; the consumer copy names the test registry instead


@pytest.fixture(scope="module")
def image(registry: Registry) -> str:
    """The seeded repository as an ImageRepository names it."""
    return registry.seed(REPOSITORY, TAGS)


@pytest.fixture(scope="module")
def consumer(image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config repo made from kustomize/: the published base, and the registry image everywhere it names one."""
    url = publish_flux_base(REPO, tmp_path_factory.mktemp("published") / "flux-ci-cd", "v1.0.0")
    root = Path(shutil.copytree(REPO / "kustomize", tmp_path_factory.mktemp("consumer") / "config-repo"))
    point_consumer_at(root, url, "v1.0.0")
    for path in root.rglob("*.yaml"):
        path.write_text(path.read_text().replace(EXAMPLE_IMAGE, image))
    return root


@pytest.fixture(scope="module")
def rendered(consumer: Path) -> dict[str, list[dict[str, Any]]]:
    return {env: kustomize_build(consumer / "clusters" / env) for env in EXPECTED}


@pytest.fixture
def credentials(registry: Registry, tmp_path: Path) -> dict[str, str]:
    """The environment of a developer logged in to the registry (`docker login` writes this config)."""
    entry = basic_entry(registry.username, registry.password)
    return {"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", {"auths": {registry.host: entry}}))}


def write_objects(path: Path, objects: list[dict[str, Any]], image: str | None = None) -> Path:
    """Objects as one multi-document YAML file, the ImageRepository's spec.image replaced when given."""
    if image:
        objects = [
            {**o, "spec": {**o["spec"], "image": image}} if o["kind"] == "ImageRepository" else o for o in objects
        ]
    with path.open("w") as out:
        YAML(typ="safe").dump_all(objects, out)
    return path


def preview(overlay: Path, env: dict[str, str], *extra: str):
    return run_cli("preview", str(overlay), *extra, env=env)


@pytest.mark.parametrize("form", ["rendered-file", "overlay-dir"])
@pytest.mark.parametrize("cluster", list(EXPECTED))
def test_preview_selects_what_flux_will(
    cluster: str,
    form: str,
    registry: Registry,
    image: str,
    consumer: Path,
    rendered: dict[str, list[dict[str, Any]]],
    credentials: dict[str, str],
    tmp_path: Path,
) -> None:
    overlay = consumer / "clusters" / cluster
    if form == "rendered-file":
        overlay = write_objects(tmp_path / "rendered.yaml", rendered[cluster])

    done = preview(overlay, credentials, "--json")

    assert done.returncode == 0, explain(done)
    # Production reflects digests (IfNotPresent): the digest the registry names for the tag, as Flux reads it.
    digest = registry.manifest_digest(REPOSITORY, EXPECTED[cluster]) if cluster == "production" else ""
    assert json.loads(done.stdout) == [
        {
            "policy": f"flux-system/app-{cluster}",
            "image": image,
            "selected": EXPECTED[cluster],
            "digest": digest,
            "error": None,
        }
    ]


def test_without_credentials_names_the_registry(
    registry: Registry, image: str, rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    overlay = write_objects(tmp_path / "rendered.yaml", rendered["production"])
    empty = tmp_path / "empty-docker-config"
    empty.mkdir()

    done = preview(overlay, {"DOCKER_CONFIG": str(empty)}, "--json")

    assert (done.returncode, done.stdout) == (1, ""), explain(done)
    assert len(done.stderr.splitlines()) == 1 and registry.host in done.stderr, explain(done)


def test_unreachable_registry_is_named(
    rendered: dict[str, list[dict[str, Any]]], credentials: dict[str, str], tmp_path: Path
) -> None:
    closed = f"127.0.0.1:{localregistry.free_port()}"
    overlay = write_objects(tmp_path / "rendered.yaml", rendered["production"], f"{closed}/acme/app")

    done = preview(overlay, credentials, "--json")

    assert (done.returncode, done.stdout) == (1, ""), explain(done)
    assert len(done.stderr.splitlines()) == 1 and closed in done.stderr, explain(done)


MARKED_VALUE = re.compile(r"(?P<key>image: )(?P<value>\S+)(?P<rest> #.*)")


def test_config_repo_shows_the_automation_commit(
    registry: Registry, image: str, consumer: Path, credentials: dict[str, str]
) -> None:
    marked = consumer / "apps" / "production" / "image.yaml"
    [old] = [line for line in marked.read_text().splitlines() if "app-production" in line]
    pinned = f"{image}:1.4.2@{registry.manifest_digest(REPOSITORY, '1.4.2')}"  # production pins the digest
    new = MARKED_VALUE.sub(rf"\g<key>{pinned}\g<rest>", old)
    before = marked.read_bytes()

    done = preview(consumer / "clusters" / "production", credentials, "--config-repo", str(consumer))

    assert done.returncode == 0, explain(done)
    assert f"flux-system/app-production: {pinned}\n" in done.stdout
    assert "--- a/apps/production/image.yaml\n+++ b/apps/production/image.yaml\n" in done.stdout, explain(done)
    assert f"\n-{old}\n+{new}\n" in done.stdout, explain(done)
    # The commit message the automation's template renders for this change, before the diff.
    assert "    Update images (flux-system/app)\n" in done.stdout, explain(done)
    assert f" -> {pinned}" in done.stdout.split("--- a/")[0].split("would commit 1 file(s)")[1], explain(done)
    assert marked.read_bytes() == before  # a preview writes nothing
    # Once the automation wrote it, IfNotPresent keeps that digest even if the tag now names other content.
    recorded = f"{image}:1.4.2@sha256:{'e' * 64}"
    marked.write_text(marked.read_text().replace(f"{image}:1.0.0", recorded))
    try:
        kept = preview(consumer / "clusters" / "production", credentials, "--config-repo", str(consumer))
    finally:
        marked.write_bytes(before)
    assert kept.returncode == 0, explain(kept)
    assert f"flux-system/app-production: {recorded}\n" in kept.stdout, explain(kept)
    assert "automation flux-system/app (path ./apps/production): nothing to commit" in kept.stdout, explain(kept)


def test_pull_secret_of_the_image_repository_is_used_like_flux_does(
    registry: Registry, image: str, rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """With spec.secretRef and the Secret in the overlay, preview logs in as Flux would, without a Docker config."""
    dockerconfig = json.dumps({"auths": {registry.host: basic_entry(registry.username, registry.password)}})
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": "flux-system"},
        "data": {".dockerconfigjson": base64.b64encode(dockerconfig.encode()).decode()},
    }
    objects = [
        {**o, "spec": {**o["spec"], "secretRef": {"name": "regcred"}}} if o["kind"] == "ImageRepository" else o
        for o in rendered["production"]
    ]
    empty = tmp_path / "empty-docker-config"
    empty.mkdir()
    overlay = write_objects(tmp_path / "rendered.yaml", [*objects, secret])

    done = preview(overlay, {"DOCKER_CONFIG": str(empty)}, "--json")

    assert done.returncode == 0, explain(done)
    assert json.loads(done.stdout)[0]["selected"] == EXPECTED["production"]


def test_without_kustomize_the_error_says_what_to_install(tmp_path: Path) -> None:
    """A fresh machine has neither kustomize nor kubectl: one line naming the pinned kustomize, exit 2."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources: []\n")
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("git",):  # what the CLI may need besides kustomize
        (bare / tool).symlink_to(shutil.which(tool))
    done = run_cli("preview", str(overlay), env={"PATH": str(bare)})
    assert done.returncode == 2, explain(done)
    [line] = done.stderr.splitlines()
    assert f"go install {PINNED_KUSTOMIZE}" in line and str(overlay) in line


def test_the_pinned_kustomize_is_the_one_dev_builds_and_flux_renders_with() -> None:
    """The version the error names is cluster/kustomize's pin, whose kustomize/api kustomize-controller uses."""
    cluster = Path(__file__).resolve().parents[1] / "cluster"
    module, version = PINNED_KUSTOMIZE.split("@")
    wrapper = (cluster / "kustomize" / "go.mod").read_text()
    assert re.search(rf"^\s*{re.escape(module)} {re.escape(version)}\b", wrapper, re.MULTILINE)
    api = re.compile(r"^\s*(?:replace )?sigs\.k8s\.io/kustomize/api (?:=> sigs\.k8s\.io/kustomize/api )?(v\S+)", re.M)
    controller = (cluster / "flux" / "kustomize-controller" / "go.mod").read_text()
    assert api.search(wrapper).group(1) == api.search(controller).group(1)
