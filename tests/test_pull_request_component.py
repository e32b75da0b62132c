"""flux/pull-request: the release channel's automation commits to a branch of its own, not to the config branch.

Rendered the way a consumer renders it: this checkout's flux/ published as a tagged git repository and
included remotely (`file://…//flux/pull-request?ref=…`), then every Flux object validated against the vendored
Flux CRD schemas. The last test runs the gate on the demo's real clusters (Flux's own controllers).
"""

import os
import re
import shutil
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import docker
import jsonschema
import pytest
from ruamel.yaml import YAML
from support.crds import crd_schemas, validate_against_crd

from image_tagger.demo import githttp, localregistry, loop, realclusters
from image_tagger.demo.world import World
from image_tagger.edges.gitcmd import git
from image_tagger.edges.kustomize import point_consumer_at, publish_flux_base
from image_tagger.edges.manifests import kustomize_build

REPO = Path(__file__).resolve().parents[1]
TAG = "v1.0.0"


@pytest.fixture(scope="module")
def flux_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return publish_flux_base(REPO, tmp_path_factory.mktemp("published") / "flux-ci-cd", TAG)


def production(dest: Path, url: str, components: list[str]) -> Path:
    """kustomize/ copied and pointed at the published base; the production cluster lists `components` (sub-paths)."""
    consumer = dest / "config-repo"
    shutil.copytree(REPO / "kustomize", consumer)
    point_consumer_at(consumer, url, TAG)
    cluster = consumer / "clusters" / "production"
    kustomization = cluster / "kustomization.yaml"
    document = YAML(typ="safe").load(kustomization.read_text())
    document["components"] = [f"{url}{sub}?ref={TAG}" for sub in components]
    YAML().dump(document, kustomization)
    return cluster


def settings(cluster: Path) -> dict[str, str]:
    return YAML(typ="safe").load((cluster / "image-automation.yaml").read_text())["data"]


def only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def test_automation_checks_out_the_config_branch_and_pushes_to_its_own(flux_url: str, tmp_path: Path) -> None:
    cluster = production(tmp_path, flux_url, ["", "/pull-request"])
    objects = kustomize_build(cluster)

    git = only(objects, "ImageUpdateAutomation")["spec"]["git"]
    assert git["checkout"]["ref"] == {"branch": settings(cluster)["branch"]}
    assert git["push"] == {"branch": "flux/app-production"}
    # Everything else is the release channel unchanged.
    assert only(objects, "ImagePolicy")["metadata"]["name"] == "app-production"
    assert only(objects, "ImageUpdateAutomation")["spec"]["update"]["path"] == settings(cluster)["path"]
    schemas = crd_schemas()
    flux_objects = [o for o in objects if o["apiVersion"].split("/")[0].endswith("toolkit.fluxcd.io")]
    assert len(flux_objects) == len(objects) == 6
    for obj in flux_objects:
        validate_against_crd(schemas, obj)


def test_branch_follows_the_name_setting(flux_url: str, tmp_path: Path) -> None:
    cluster = production(tmp_path, flux_url, ["", "/pull-request"])
    path = cluster / "image-automation.yaml"
    path.write_text(path.read_text().replace("name: app\n", "name: shop\n"))

    automation = only(kustomize_build(cluster), "ImageUpdateAutomation")

    assert automation["metadata"]["name"] == "shop"
    assert automation["spec"]["git"]["push"]["branch"] == "flux/shop-production"
    assert automation["spec"]["git"]["checkout"]["ref"]["branch"] == "main"


def test_without_the_component_the_automation_pushes_to_the_config_branch(flux_url: str, tmp_path: Path) -> None:
    cluster = production(tmp_path, flux_url, [""])
    git = only(kustomize_build(cluster), "ImageUpdateAutomation")["spec"]["git"]
    assert git["push"] == {"branch": "main"}


def readme_patch() -> str:
    """The `patches:` example of pull-request/README.md that sets another branch (the docs are tested)."""
    text = (REPO / "pull-request" / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    return next(block for block in blocks if block.startswith("patches:") and "/spec/git/push/branch" in block)


def test_documented_patch_sets_another_branch(flux_url: str, tmp_path: Path) -> None:
    cluster = production(tmp_path, flux_url, ["", "/pull-request"])
    patch = readme_patch()
    wanted = re.search(r"value: (\S+)", patch)[1]
    kustomization = cluster / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + patch)

    objects = kustomize_build(cluster)

    assert only(objects, "ImageUpdateAutomation")["spec"]["git"]["push"] == {"branch": wanted}
    assert wanted != "flux/app-production"
    validate_against_crd(crd_schemas(), only(objects, "ImageUpdateAutomation"))


def test_listed_before_the_channel_fails_to_render(flux_url: str, tmp_path: Path) -> None:
    cluster = production(tmp_path, flux_url, ["/pull-request", ""])
    with pytest.raises(subprocess.CalledProcessError) as failure:
        kustomize_build(cluster)
    assert "nothing selected by ImagePolicy" in failure.value.stderr


def test_crd_schema_check_is_real(flux_url: str, tmp_path: Path) -> None:
    """The same validation refuses a push.branch that is not a string."""
    automation = only(kustomize_build(production(tmp_path, flux_url, ["", "/pull-request"])), "ImageUpdateAutomation")
    automation["spec"]["git"]["push"]["branch"] = ["flux/app-production"]
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'string'"):
        validate_against_crd(crd_schemas(), automation)


def test_real_automation_pushes_to_its_own_branch_and_main_waits_for_the_merge(
    docker_client: docker.DockerClient, cluster_bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the component, Flux's own image-automation-controller (on the demo's real clusters) commits the
    release to flux/app-production; main and the production Deployment stay as they were until the branch is
    merged, and then kustomize-controller applies it."""
    monkeypatch.setenv("PATH", f"{cluster_bin_dir}{os.pathsep}{os.environ['PATH']}")  # kustomize as the cluster's
    with ExitStack() as stack:
        registry = stack.enter_context(localregistry.serve(tmp_path / "registry"))
        git_server = stack.enter_context(githttp.serve(tmp_path))
        world = World(tmp_path, registry.host, docker_client, clock=1_800_000_000)
        world.image = f"{registry.host}/demo/gate"
        stack.callback(loop.remove_images, world)
        loop.make_repos(world, REPO, f"{git_server}/config.git")  # production lists flux/pull-request, as the demo
        kustomization = world.config / "clusters" / "production" / "kustomization.yaml"
        assert re.search(r"//flux/pull-request\?ref=", kustomization.read_text())
        clusters = stack.enter_context(realclusters.start(world, cluster_bin_dir))
        production = clusters.envs["production"]
        main_before = git(world.config_bare, "rev-parse", "main")
        deployed_before = realclusters.container_image(production.api.get(production.deployment))

        sha = loop.push_app(world, "refs/tags/v1.0.0")
        job, _, _ = loop.build_and_push(world, "refs/tags/v1.0.0", sha, clusters.receivers)
        assert job.notifications and all(notification.ok for notification in job.notifications)

        def proposed() -> str | None:
            found = subprocess.run(
                ["git", "-C", str(world.config_bare), "show", "flux/app-production:apps/production/image.yaml"],
                capture_output=True,
                text=True,
                check=False,
            )
            return found.stdout if found.returncode == 0 else None

        image_yaml = realclusters.wait("the automation's branch flux/app-production", proposed)
        assert f"{world.image}:1.0.0@sha256:" in image_yaml  # production pins the release's digest
        author = git(world.config_bare, "log", "-1", "--format=%an", "flux/app-production")
        assert author == "fluxcdbot"
        # The gate holds: main is untouched and the cluster still runs what main says, a while after the commit.
        time.sleep(5)
        assert git(world.config_bare, "rev-parse", "main") == main_before
        assert realclusters.container_image(production.api.get(production.deployment)) == deployed_before
        assert deployed_before.endswith(":0.0.0")

        # Merging the pull request (a fast-forward of main, as GitHub's merge would land it) lets Flux apply it.
        git(world.config, "fetch", "--quiet", "origin", "flux/app-production")
        git(world.config, "push", "--quiet", "origin", "FETCH_HEAD:main")
        realclusters.wait(
            "the merged release in the production Deployment",
            lambda: (realclusters.container_image(production.api.get(production.deployment)) or "").startswith(
                f"{world.image}:1.0.0@sha256:"
            ),
        )
