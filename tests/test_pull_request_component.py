"""flux/pull-request: the release channel's automation commits to a branch of its own, not to the config branch.

Rendered the way a consumer renders it: this checkout's flux/ published as a tagged git repository and
included remotely (`file://…//flux/pull-request?ref=…`), then every Flux object validated against the vendored
Flux CRD schemas.
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML
from support.crds import crd_schemas, validate_against_crd

from image_tagger.kustomize import point_consumer_at, publish_flux_base
from image_tagger.manifests import kustomize_build

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
