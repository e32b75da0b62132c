"""The example consumer (kustomize/) renders against the versioned base (flux/) fetched as a remote would.

The base is served from a tagged local git repo through `file://`, so kustomize resolves the tag with
the same `git fetch` it uses for GitHub; the objects it produces are checked for what Flux will do.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import re2
from ruamel.yaml import YAML
from support.crds import crd_schemas, validate_against_crd

from image_tagger.edges.kustomize import point_consumer_at, publish_flux_base
from image_tagger.edges.manifests import kustomize_build
from image_tagger.fluxrules import policy, standard

pytestmark = pytest.mark.real  # kustomize renders every overlay here

REPO = Path(__file__).resolve().parents[1]
TAG = "v1.0.0"
ENVIRONMENTS = ("production", "staging")
STRICT_RELEASE = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"
# A line-comment marker in any spacing Flux accepts: `key: value # {"$imagepolicy": "ns:name[:field]"}`.
MARKER_LINE = re.compile(r"^ *(?:- )?[\w.-]+:\s+(?P<value>\S+)\s+#+\s*(?P<marker>\{.*\})\s*$")


@pytest.fixture(scope="module")
def flux_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """This checkout's flux/ published once per module as a tagged repo."""
    return publish_flux_base(REPO, tmp_path_factory.mktemp("published") / "flux-ci-cd", TAG)


def copy_consumer(dest: Path, url: str, ref: str = TAG) -> Path:
    """A private copy of kustomize/ pointing at the published base, as a user's config repo would."""
    consumer = dest / "config-repo"
    shutil.copytree(REPO / "kustomize", consumer)
    point_consumer_at(consumer, url, ref)
    return consumer


@pytest.fixture(scope="module")
def consumer(flux_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_consumer(tmp_path_factory.mktemp("consumer"), flux_url)


@pytest.fixture(scope="module")
def clusters(consumer: Path) -> dict[str, list[dict[str, Any]]]:
    return {env: kustomize_build(consumer / "clusters" / env) for env in ENVIRONMENTS}


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def config_of(consumer_root: Path, env: str) -> dict[str, str]:
    """The settings the cluster gives the base (its local-config ConfigMap)."""
    return load_yaml(consumer_root / "clusters" / env / "image-automation.yaml")["data"]


def only(objects: list[dict[str, Any]], kind: str, **fields: str) -> dict[str, Any]:
    """The single rendered object of `kind` whose metadata matches `fields`."""
    found = [o for o in objects if o["kind"] == kind and all(o["metadata"].get(k) == v for k, v in fields.items())]
    assert len(found) == 1, f"expected one {kind} {fields}, got {len(found)}"
    return found[0]


def markers(root: Path) -> list[tuple[Path, str, str]]:
    """(file, value, setter) for every marked scalar Flux would consider under `root` (docs/flux-semantics.md §5.3)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml")):
        text = path.read_text()
        if '"$imagepolicy"' not in text:
            continue
        for line in text.splitlines():
            match = MARKER_LINE.match(line)
            if match:
                found.append((path, match["value"], json.loads(match["marker"])["$imagepolicy"]))
    return found


def test_cluster_renders_the_flux_objects_and_drops_the_settings(
    clusters: dict[str, list[dict[str, Any]]],
) -> None:
    for objects in clusters.values():
        kinds = sorted(o["kind"] for o in objects)
        assert kinds == [
            "GitRepository",
            "ImagePolicy",
            "ImageRepository",
            "ImageUpdateAutomation",
            "Kustomization",
            "Kustomization",
        ]
        assert all(o["metadata"]["namespace"] == "flux-system" for o in objects)
        assert not any("config.kubernetes.io/local-config" in str(o) for o in objects)
        image_versions = {o["apiVersion"] for o in objects if o["apiVersion"].startswith("image.")}
        assert image_versions == {"image.toolkit.fluxcd.io/v1"}


def test_production_policy_follows_exactly_one_major(consumer: Path, clusters: dict[str, list[dict[str, Any]]]) -> None:
    objects = clusters["production"]
    policy = only(objects, "ImagePolicy")
    major = config_of(consumer, "production")["major"]
    assert policy["metadata"]["name"] == "app-production"
    repository = only(objects, "ImageRepository")["metadata"]["name"]
    assert policy["spec"]["imageRepositoryRef"] == {"name": repository}
    # Masterminds: "M.x" means ">=M.0.0 <M+1.0.0", prereleases excluded (the range names none).
    assert policy["spec"]["policy"] == {"semver": {"range": f"{major}.x"}}
    assert policy["spec"]["filterTags"] == {"pattern": STRICT_RELEASE}
    pattern = re2.compile(policy["spec"]["filterTags"]["pattern"])
    assert pattern.search("1.4.2") and pattern.search("10.0.20")
    # Equal-precedence spellings (ties), prereleases, two-dot-less and branch tags are all filtered out.
    for other in ("v1.4.2", "01.4.2", "1.4.2+build.7", "1.5.0-rc.1", "1.4", "main-3f2c1a9-1764110000"):
        assert not pattern.search(other), other


def test_staging_policy_orders_main_builds_by_timestamp(clusters: dict[str, list[dict[str, Any]]]) -> None:
    policy = only(clusters["staging"], "ImagePolicy")
    assert policy["metadata"]["name"] == "app-staging"
    assert policy["metadata"]["annotations"] == {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}
    assert policy["spec"]["policy"] == {"numerical": {"order": "asc"}}
    assert policy["spec"]["filterTags"]["extract"] == "$ts"
    pattern = re2.compile(policy["spec"]["filterTags"]["pattern"])
    assert pattern.search("main-3f2c1a9-1764110000").group("ts") == "1764110000"
    for other in ("1.4.2", "feature-3f2c1a9-1764110000", "main-3f2c1a9", "main-3F2C1A9-1764110000"):
        assert not pattern.search(other), other


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_automation_commits_where_the_settings_say(
    env: str, consumer: Path, clusters: dict[str, list[dict[str, Any]]]
) -> None:
    objects, config = clusters[env], config_of(consumer, env)
    automation = only(objects, "ImageUpdateAutomation")["spec"]
    source = only(objects, "GitRepository", name=config["gitRepository"])
    assert automation["sourceRef"] == {"kind": "GitRepository", "name": source["metadata"]["name"]}
    assert automation["git"]["checkout"]["ref"] == {"branch": config["branch"]}
    assert automation["git"]["push"] == {"branch": config["branch"]}
    assert automation["update"] == {"strategy": "Setters", "path": config["path"]}
    assert only(objects, "Kustomization", name="apps")["spec"]["path"] == config["path"]
    template = automation["git"]["commit"]["messageTemplate"]
    assert "range .Changed.Changes" in template and ".Updated" not in template
    assert automation["git"]["commit"]["author"]["email"]
    assert only(objects, "ImageRepository")["spec"]["image"] == config["image"]


def test_settings_flow_into_every_object(flux_url: str, tmp_path: Path) -> None:
    consumer = copy_consumer(tmp_path, flux_url)
    settings = consumer / "clusters" / "production" / "image-automation.yaml"
    document = load_yaml(settings)
    document["data"] = {
        "name": "shop",
        "image": "docker.io/example/shop",
        "major": "3",
        "gitRepository": "fleet",
        "branch": "image-updates",
        "path": "./deploy/prod",
    }
    YAML().dump(document, settings)
    objects = kustomize_build(settings.parent)
    automation = only(objects, "ImageUpdateAutomation")["spec"]
    assert only(objects, "ImageRepository")["spec"]["image"] == "docker.io/example/shop"
    assert only(objects, "ImagePolicy")["spec"]["policy"]["semver"]["range"] == "3.x"
    assert automation["sourceRef"]["name"] == "fleet"
    assert automation["git"]["checkout"]["ref"]["branch"] == automation["git"]["push"]["branch"]
    assert automation["git"]["push"]["branch"] == "image-updates"
    assert automation["update"]["path"] == "./deploy/prod"
    policy = only(objects, "ImagePolicy")
    assert only(objects, "ImageRepository")["metadata"]["name"] == "shop"
    assert only(objects, "ImageUpdateAutomation")["metadata"]["name"] == "shop"
    assert policy["metadata"]["name"] == "shop-production"
    assert policy["spec"]["imageRepositoryRef"] == {"name": "shop"}
    assert policy["metadata"]["labels"]["image.flux-ci-cd.io/name"] == "shop"
    assert automation["policySelector"] == {"matchLabels": {"image.flux-ci-cd.io/name": "shop"}}


def test_one_cluster_follows_two_images(flux_url: str, tmp_path: Path) -> None:
    """One kustomization per image under the cluster folder: names and policy selectors keep them apart."""
    consumer = copy_consumer(tmp_path, flux_url)
    cluster = consumer / "clusters" / "production"
    kustomization = load_yaml(cluster / "kustomization.yaml")
    settings = load_yaml(cluster / "image-automation.yaml")
    for name in ("shop", "cart"):
        folder = cluster / "images" / name
        folder.mkdir(parents=True)
        settings["data"] = {**settings["data"], "name": name, "image": f"docker.io/example/{name}"}
        # The settings are never applied; a namespace of their own only keeps the two ConfigMaps apart.
        settings["metadata"]["namespace"] = name
        YAML().dump(settings, folder / "image-automation.yaml")
        YAML().dump(
            {"resources": ["image-automation.yaml"], "components": kustomization["components"]},
            folder / "kustomization.yaml",
        )
    YAML().dump({"resources": ["sync.yaml", "apps.yaml", "images/shop", "images/cart"]}, cluster / "kustomization.yaml")

    objects = kustomize_build(cluster)

    repos = {o["metadata"]["name"]: o["spec"]["image"] for o in objects if o["kind"] == "ImageRepository"}
    assert repos == {"shop": "docker.io/example/shop", "cart": "docker.io/example/cart"}
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ImagePolicy"}
    assert {n: p["spec"]["imageRepositoryRef"]["name"] for n, p in policies.items()} == {
        "shop-production": "shop",
        "cart-production": "cart",
    }
    automations = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "ImageUpdateAutomation"}
    for name, spec in automations.items():
        selected = [
            p
            for p in policies.values()
            if p["metadata"]["labels"] == {**p["metadata"]["labels"], **spec["policySelector"]["matchLabels"]}
        ]
        assert [p["metadata"]["name"] for p in selected] == [f"{name}-production"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_markers_name_this_clusters_policy_and_the_scanned_image(
    env: str, consumer: Path, clusters: dict[str, list[dict[str, Any]]]
) -> None:
    objects = clusters[env]
    automation = only(objects, "ImageUpdateAutomation")
    namespace = automation["metadata"]["namespace"]
    policies = {o["metadata"]["name"] for o in objects if o["kind"] == "ImagePolicy"}
    image = only(objects, "ImageRepository")["spec"]["image"]
    found = markers(consumer / automation["spec"]["update"]["path"])
    assert found, f"no markers under the {env} update path"
    deployments = [o for o in kustomize_build(consumer / "apps" / env) if o["kind"] == "Deployment"]
    rendered_images = {c["image"] for d in deployments for c in d["spec"]["template"]["spec"]["containers"]}
    for path, value, setter in found:
        marker_namespace, policy, *field = setter.split(":")
        assert (marker_namespace, field) == (namespace, []), f"{path}: {setter}"
        assert policy in policies, f"{path}: {setter} names no policy of the {env} cluster"
        # Flux writes spec.image verbatim before ":tag" (pitfall 13): same string, or a diff on first run.
        assert value.rsplit(":", 1)[0] == image, f"{path}: {value}"
        assert value in rendered_images


def test_markers_differ_between_environments(consumer: Path) -> None:
    setters = {env: {setter for _, _, setter in markers(consumer / "apps" / env)} for env in ENVIRONMENTS}
    assert setters["production"].isdisjoint(setters["staging"])


def test_marked_files_are_in_flux_normal_form(consumer: Path) -> None:
    """Flux rewrites a changed file in this form (docs/flux-semantics.md §5.7); files in it change only at the tag."""
    marked = {path for path, _, _ in markers(consumer / "apps")}
    assert marked
    for path in marked:
        raw = path.read_bytes()
        lines = raw.decode().split("\n")
        assert b"\r" not in raw and b"\t" not in raw and raw.endswith(b"\n"), path
        assert lines[0] != "---" and "" not in lines[:-1], f"{path}: leading --- or blank line"
        for line in lines:
            indent = len(line) - len(line.lstrip(" "))
            assert indent % 2 == 0 and not line.endswith(" "), f"{path}: {line!r}"
            assert not re.search(r"\S {2,}#", line), f"{path}: more than one space before a comment"


@pytest.fixture
def with_receiver(flux_url: str, tmp_path: Path) -> list[dict[str, Any]]:
    """The production cluster with the optional Docker Hub receiver component added."""
    cluster = copy_consumer(tmp_path, flux_url) / "clusters" / "production"
    kustomization = cluster / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + f"  - {flux_url}/receiver?ref={TAG}\n")
    return kustomize_build(cluster)


def test_receiver_rescans_the_image_repository(with_receiver: list[dict[str, Any]]) -> None:
    receiver = only(with_receiver, "Receiver")
    repository = only(with_receiver, "ImageRepository")
    assert receiver["apiVersion"] == "notification.toolkit.fluxcd.io/v1"
    assert receiver["metadata"]["namespace"] == repository["metadata"]["namespace"]
    assert receiver["spec"]["type"] == "dockerhub"
    assert receiver["spec"]["secretRef"]["name"]
    reference = {"apiVersion": repository["apiVersion"], "kind": "ImageRepository"}
    assert receiver["spec"]["resources"] == [{**reference, "name": repository["metadata"]["name"]}]


def readme_yaml(containing: str) -> str:
    """The fenced YAML example of flux/README.md that contains `containing` (the docs are tested)."""
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "flux" / "README.md").read_text(), re.DOTALL)
    return next(block for block in blocks if containing in block)


def test_documented_pull_secret_patch_applies_after_the_component(flux_url: str, tmp_path: Path) -> None:
    cluster = copy_consumer(tmp_path, flux_url) / "clusters" / "production"
    kustomization = cluster / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + readme_yaml("secretRef"))
    objects = kustomize_build(cluster)
    repository = only(objects, "ImageRepository")
    assert repository["spec"]["secretRef"] == {"name": "dockerhub-credentials"}
    assert repository["spec"]["image"] == config_of(cluster.parent.parent, "production")["image"]


def test_flux_objects_match_the_crd_schemas(
    clusters: dict[str, list[dict[str, Any]]], with_receiver: list[dict[str, Any]]
) -> None:
    schemas = crd_schemas()
    objects = [o for rendered in (*clusters.values(), with_receiver) for o in rendered]
    for obj in objects:
        validate_against_crd(schemas, obj)
    broken = json.loads(json.dumps(only(clusters["production"], "ImagePolicy")))
    broken["spec"]["policy"]["semver"] = {}
    with pytest.raises(jsonschema.ValidationError, match="range"):
        validate_against_crd(schemas, broken)


WORKLOAD_SCHEMAS = {
    "Deployment": {
        "type": "object",
        "required": ["apiVersion", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "apps/v1"},
            "metadata": {"required": ["name", "namespace"]},
            "spec": {
                "required": ["selector", "template"],
                "properties": {
                    "selector": {"required": ["matchLabels"]},
                    "template": {
                        "required": ["metadata", "spec"],
                        "properties": {
                            "metadata": {"required": ["labels"]},
                            "spec": {
                                "required": ["containers"],
                                "properties": {
                                    "containers": {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": {
                                            "required": ["name", "image"],
                                            "properties": {"image": {"type": "string"}},
                                        },
                                    }
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "Service": {
        "type": "object",
        "required": ["apiVersion", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "v1"},
            "metadata": {"required": ["name", "namespace"]},
            "spec": {
                "required": ["selector", "ports"],
                "properties": {"ports": {"type": "array", "minItems": 1, "items": {"required": ["port"]}}},
            },
        },
    },
}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_app_workloads_are_well_formed(env: str, consumer: Path) -> None:
    objects = kustomize_build(consumer / "apps" / env)
    deployment, service = only(objects, "Deployment"), only(objects, "Service")
    for obj in (deployment, service):
        jsonschema.validate(obj, WORKLOAD_SCHEMAS[obj["kind"]])
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert service["metadata"]["namespace"] == deployment["metadata"]["namespace"]


def test_unknown_ref_fails_to_render(flux_url: str, tmp_path: Path) -> None:
    consumer = copy_consumer(tmp_path, flux_url, ref="v1.0.1")
    with pytest.raises(subprocess.CalledProcessError) as failure:
        kustomize_build(consumer / "clusters" / "production")
    assert "v1.0.1" in failure.value.stderr


def test_missing_setting_fails_to_render(flux_url: str, tmp_path: Path) -> None:
    cluster = copy_consumer(tmp_path, flux_url) / "clusters" / "staging"
    settings = cluster / "image-automation.yaml"
    kept = [line for line in settings.read_text().splitlines(True) if not line.lstrip().startswith("path:")]
    settings.write_text("".join(kept))
    with pytest.raises(subprocess.CalledProcessError) as failure:
        kustomize_build(cluster)
    assert "data.path" in failure.value.stderr


def test_point_consumer_at_keeps_sub_components(tmp_path: Path) -> None:
    consumer = tmp_path / "c"
    shutil.copytree(REPO / "kustomize" / "clusters", consumer)
    changed = point_consumer_at(consumer, "file:///srv/repo//flux", "v2.3.4")
    assert {p.parent.name for p in changed} == set(ENVIRONMENTS)
    staging = (consumer / "staging" / "kustomization.yaml").read_text()
    assert "  - file:///srv/repo//flux/staging?ref=v2.3.4\n" in staging
    assert "github.com" not in staging


TAGS = [
    "1.0.0",
    "1.4.2",
    "v1.4.3",
    "1.4.3+build.7",
    "1.5.0-rc.1",
    "2.0.0",
    "2.0.0.sig",
    "main-3f2c1a9-1764110000",
    "main-0b1c2d3-1764200000",
    "main-9e8d7c6-1764150000",
]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # newest plain 1.x.y release: not the prerelease, not 2.0.0, not the "v"/metadata spellings
        ("production", "1.4.2"),
        # highest unix timestamp among main builds
        ("staging", "main-0b1c2d3-1764200000"),
    ],
)
def test_policy_engine_picks_from_the_rendered_policy(
    env: str, expected: str, clusters: dict[str, list[dict[str, Any]]]
) -> None:
    objects = clusters[env]
    stored = policy.scan_tags(TAGS, only(objects, "ImageRepository")["spec"]["exclusionList"])
    assert policy.select_tag(only(objects, "ImagePolicy")["spec"], stored) == expected


def test_rendered_policies_are_the_ones_the_tools_evaluate(clusters: dict[str, list[dict[str, Any]]]) -> None:
    """The action's summary and `preview` reason with image_tagger.fluxrules.standard: it must say what flux/ says."""
    production = {
        k: v for k, v in only(clusters["production"], "ImagePolicy")["spec"].items() if k != "imageRepositoryRef"
    }
    staging = {k: v for k, v in only(clusters["staging"], "ImagePolicy")["spec"].items() if k != "imageRepositoryRef"}
    assert production == standard.release_policy(1)
    assert staging == standard.branch_policy()
