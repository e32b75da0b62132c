"""`image-tagger rollback OVERLAY TAG [--undo]` on copies of the example consumer, against real registries.

The consumer includes the base remotely (`file://…//flux?ref=v1.0.0`, served from a tagged local git repo),
its ImageRepository names a registry fixture seeded with tags, the CLI runs as a process, and what Flux
would do is read back through the real kustomize and `image-tagger preview`.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from support.cli import assert_input_error, explain, run_cli
from support.disk import fill, immutable, small_disk
from support.registry import Registry, basic_entry, write_docker_config
from test_kustomize_render import crd_schemas, validate_against_crd

from image_tagger.edges.kustomize import kustomize_command, point_consumer_at, publish_flux_base
from image_tagger.fluxrules.goports.goregex import GoRegexp
from image_tagger.model.errors import InputError
from image_tagger.operations.rollback import exclusion_for, quote_meta
from image_tagger.rules import yamlblock

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_IMAGE = "docker.io/acme/app"
DEFAULT = r"^.*\.sig$"
# The base's list: Flux's default kept first, then the signature and attestation tags (flux/automation).
BASE = [DEFAULT, r"^.*\.att$", r"^.*\.sbom$", r"^sha256-[0-9a-f]{64}$"]
RELEASES = ["1.0.0", "1.1.0", "1.2.0"]


@pytest.fixture(scope="module")
def flux_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return publish_flux_base(REPO, tmp_path_factory.mktemp("published") / "flux-ci-cd", "v1.0.0")


def seeded(registry: Registry, tags: list[str]) -> str:
    """A repository of its own for one test, holding `tags`; the image as an ImageRepository names it."""
    return registry.seed(f"rollback/t{uuid.uuid4().hex[:10]}", tags)


def make_consumer(root: Path, flux_url: str, image: str) -> Path:
    """kustomize/ copied as a config repository: the served base, and `image` wherever the example names one."""
    consumer = Path(shutil.copytree(REPO / "kustomize", root / "config-repo"))
    point_consumer_at(consumer, flux_url, "v1.0.0")
    for path in consumer.rglob("*.yaml"):
        path.write_text(path.read_text().replace(EXAMPLE_IMAGE, image))
    return consumer


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def render(overlay: Path) -> list[dict[str, Any]]:
    command = kustomize_command()
    assert command, "kubectl or kustomize is needed"
    out = subprocess.run([*command, str(overlay)], check=True, capture_output=True, text=True).stdout
    return [d for d in YAML(typ="safe").load_all(out) if d]


def repository(objects: list[dict[str, Any]], name: str = "app") -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == "ImageRepository" and o["metadata"]["name"] == name]
    return found


def logged_in(registry: Registry, tmp_path: Path) -> dict[str, str]:
    entry = basic_entry(registry.username, registry.password)
    return {"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", {"auths": {registry.host: entry}}))}


def rollback(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli("rollback", *args, env=env)


def selected(overlay: Path, env: dict[str, str]) -> dict[str, str]:
    done = run_cli("preview", str(overlay), "--json", env=env)
    assert done.returncode == 0, explain(done)
    return {p["policy"]: p["selected"] for p in json.loads(done.stdout)}


def assert_one_line(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert done.returncode == 0, explain(done)
    assert len(done.stdout.splitlines()) == 1, explain(done)
    for part in parts:
        assert part in done.stdout, explain(done)


def test_rollback_a_release_then_a_fix_flows_then_undo(
    registry: Registry, flux_url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    image = seeded(registry, RELEASES)
    consumer = make_consumer(tmp_path_factory.mktemp("consumer"), flux_url, image)
    overlay = consumer / "clusters" / "production"
    env = logged_in(registry, tmp_path)
    before = snapshot(consumer)
    assert selected(overlay, env) == {"flux-system/app-production": "1.2.0"}

    done = rollback(str(overlay), "1.2.0", env=env)

    assert_one_line(done, "rollback-app.yaml", "kustomization.yaml", "app-production selects 1.1.0")
    objects = render(overlay)
    assert repository(objects)["spec"]["exclusionList"] == [*BASE, r"^1\.2\.0$"]
    schemas = crd_schemas()
    for obj in objects:
        if obj["apiVersion"].endswith("toolkit.fluxcd.io/v1"):
            validate_against_crd(schemas, obj)
    kustomization = (overlay / "kustomization.yaml").read_bytes()
    original = before["clusters/production/kustomization.yaml"]
    assert kustomization.startswith(original)  # every line and comment as it was; the listing appended
    assert YAML(typ="safe").load(kustomization[len(original) :])["patches"] == [
        {"path": "rollback-app.yaml", "target": {"kind": "ImageRepository", "name": "app"}}
    ]
    changed = {path for path, data in snapshot(consumer).items() if before.get(path) != data}
    assert changed == {"clusters/production/kustomization.yaml", "clusters/production/rollback-app.yaml"}
    assert selected(overlay, env) == {"flux-system/app-production": "1.1.0"}

    registry.seed(image.split("/", 1)[1], ["1.2.1"])  # the fixed release flows as usual: no hold to forget
    assert selected(overlay, env) == {"flux-system/app-production": "1.2.1"}

    done = rollback(str(overlay), "1.2.0", "--undo", env=env)

    assert_one_line(done, "removed", "rollback-app.yaml", "1.2.0")
    assert snapshot(consumer) == before  # byte for byte, the patch file gone
    assert repository(render(overlay))["spec"]["exclusionList"] == BASE
    assert selected(overlay, env) == {"flux-system/app-production": "1.2.1"}


def test_staging_skips_a_bad_main_build(open_registry: Registry, flux_url: str, tmp_path: Path) -> None:
    builds = ["main-1a2b3c4-1764110000", "main-5d6e7f8-1764200000", "main-9a8b7c6-1764300000"]
    image = seeded(open_registry, builds)
    overlay = make_consumer(tmp_path, flux_url, image) / "clusters" / "staging"
    env = {"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", {}))}

    done = rollback(str(overlay), builds[2], "--image", image, env=env)

    assert_one_line(done, f"app-staging selects {builds[1]}")
    assert repository(render(overlay))["spec"]["exclusionList"] == [*BASE, r"^main-9a8b7c6-1764300000$"]
    assert selected(overlay, env) == {"flux-system/app-staging": builds[1]}


SECRET_PATCH = """\
# Pull secret, as flux/README.md shows it.
patches:
  - target:
      kind: ImageRepository
      name: app
    patch: |
      - op: add
        path: /spec/secretRef
        value:
          name: regcred
  # Our own exclusions come first.
  - target:
      kind: ImageRepository
      name: app
    patch: |-
      - op: add
        path: /spec/exclusionList
        value: ['^.*\\.sig$', '^.*-debug$']

# end of the cluster's kustomization
"""


def test_existing_patches_comments_exclusions_and_pull_secret_are_kept(
    registry: Registry, flux_url: str, tmp_path: Path
) -> None:
    """A kustomization with patches of its own (block scalars, comments), custom exclusions and a pull secret."""
    image = seeded(registry, [*RELEASES, "1.2.0-debug"])
    consumer = make_consumer(tmp_path, flux_url, image)
    overlay = consumer / "clusters" / "production"
    config = json.dumps({"auths": {registry.host: basic_entry(registry.username, registry.password)}})
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": "flux-system"},
        "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()},
    }
    YAML().dump(secret, overlay / "secret.yaml")
    kustomization = overlay / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("  - image-automation.yaml\n", "  - image-automation.yaml\n  - secret.yaml\n")
        + SECRET_PATCH
    )
    env = {"DOCKER_CONFIG": str(write_docker_config(tmp_path / "no-login", {}))}  # only the Secret logs in
    before = snapshot(consumer)
    original = kustomization.read_text().splitlines(keepends=True)

    first = rollback(str(overlay), "1.2.0", env=env)
    second = rollback(str(overlay), "1.1.0", env=env)

    assert_one_line(first, "app-production selects 1.1.0")
    assert_one_line(second, "app-production selects 1.0.0")
    spec = repository(render(overlay))["spec"]
    assert spec["secretRef"] == {"name": "regcred"}
    assert spec["exclusionList"] == [DEFAULT, r"^.*-debug$", r"^1\.2\.0$", r"^1\.1\.0$"]
    edited = kustomization.read_text().splitlines(keepends=True)
    added = ["  - path: rollback-app.yaml\n", "    target:\n", "      kind: ImageRepository\n", "      name: app\n"]
    at = original.index("  # Our own exclusions come first.\n") + 8  # after the last item, before the blank line
    assert edited == original[:at] + added + original[at:]
    patch = (overlay / "rollback-app.yaml").read_text()
    assert YAML(typ="safe").load(patch) == [
        {"op": "add", "path": "/spec/exclusionList/-", "value": r"^1\.2\.0$"},
        {"op": "add", "path": "/spec/exclusionList/-", "value": r"^1\.1\.0$"},
    ]
    assert selected(overlay, env) == {"flux-system/app-production": "1.0.0"}

    undo_first = rollback(str(overlay), "1.2.0", "--undo", env=env)

    assert_one_line(undo_first, "rollback-app.yaml")
    assert repository(render(overlay))["spec"]["exclusionList"] == [DEFAULT, r"^.*-debug$", r"^1\.1\.0$"]
    assert kustomization.read_text().splitlines(keepends=True) == edited
    assert selected(overlay, env) == {"flux-system/app-production": "1.2.0"}

    assert_one_line(rollback(str(overlay), "1.1.0", "--undo", env=env), "removed")
    assert snapshot(consumer) == before


@pytest.fixture
def two_images(open_registry: Registry, flux_url: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """One production cluster following two images, one kustomization each (flux/README.md, several images)."""
    images = {name: seeded(open_registry, RELEASES) for name in ("shop", "cart")}
    consumer = make_consumer(tmp_path, flux_url, images["shop"])
    cluster = consumer / "clusters" / "production"
    settings = YAML(typ="safe").load((cluster / "image-automation.yaml").read_text())
    components = YAML(typ="safe").load((cluster / "kustomization.yaml").read_text())["components"]
    for name, image in images.items():
        folder = cluster / "images" / name
        folder.mkdir(parents=True)
        settings["data"] = {**settings["data"], "name": name, "image": image}
        settings["metadata"]["namespace"] = name
        YAML().dump(settings, folder / "image-automation.yaml")
        YAML().dump({"resources": ["image-automation.yaml"], "components": components}, folder / "kustomization.yaml")
    (cluster / "kustomization.yaml").write_text(
        "# two images\nresources:\n  - sync.yaml\n  - apps.yaml\n  - images/shop\n  - images/cart\n"
    )
    return cluster, images


def test_several_images_take_the_one_named(two_images: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    cluster, images = two_images
    env = {"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", {}))}
    before = snapshot(cluster)

    without = rollback(str(cluster), "1.2.0", env=env)
    unknown = rollback(str(cluster), "1.2.0", "--image", "basket", env=env)

    assert_input_error(without, "several images", "--image", "flux-system/shop", "flux-system/cart")
    assert_input_error(unknown, "--image basket", "matches no ImageRepository")
    assert snapshot(cluster) == before

    done = rollback(str(cluster), "1.2.0", "--image", "cart", env=env)

    assert_one_line(done, "rollback-cart.yaml", "flux-system/cart-production selects 1.1.0")
    objects = render(cluster)
    assert repository(objects, "cart")["spec"]["exclusionList"] == [*BASE, r"^1\.2\.0$"]
    assert repository(objects, "shop")["spec"]["exclusionList"] == BASE
    assert selected(cluster, env) == {"flux-system/shop-production": "1.2.0", "flux-system/cart-production": "1.1.0"}
    assert_one_line(rollback(str(cluster), "1.2.0", "--image", images["cart"], "--undo", env=env), "removed")
    assert snapshot(cluster) == before


@pytest.mark.parametrize(
    ("where", "args", "parts"),
    [
        ("production", ["1.3.0"], ["1.3.0", "not a tag of"]),
        ("production", ["v1.2.0"], ["v1.2.0", "not a tag of"]),
        ("production", ["1.2.0:latest"], ["not an image tag"]),
        ("production", ["1.2.0", "--undo"], ["1.2.0", "not excluded", "nothing to undo"]),
        ("production", ["1.2.0", "--image", "shop"], ["--image shop", "matches no ImageRepository"]),
        ("apps", ["1.2.0"], ["renders no ImageRepository"]),
        ("plain-folder", ["1.2.0"], ["not a kustomization"]),
        ("file", ["1.2.0"], ["not a kustomization"]),
        ("missing", ["1.2.0"], ["not a kustomization"]),
        ("flow-patches", ["1.2.0"], ["patches is not a block list"]),
    ],
)
def test_bad_input_changes_nothing(
    where: str, args: list[str], parts: list[str], open_registry: Registry, flux_url: str, tmp_path: Path
) -> None:
    consumer = make_consumer(tmp_path, flux_url, seeded(open_registry, RELEASES))
    overlay = {
        "production": consumer / "clusters" / "production",
        "apps": consumer / "apps" / "production",
        "plain-folder": consumer / "apps",
        "file": consumer / "clusters" / "production" / "sync.yaml",
        "missing": consumer / "clusters" / "nowhere",
        "flow-patches": consumer / "clusters" / "production",
    }[where]
    if where == "flow-patches":
        kustomization = overlay / "kustomization.yaml"
        kustomization.write_text(kustomization.read_text() + "patches: []\n")
    before = snapshot(consumer)

    done = rollback(str(overlay), *args, env={"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", {}))})

    assert_input_error(done, *parts)
    assert snapshot(consumer) == before


def test_a_tag_already_excluded_is_refused(open_registry: Registry, flux_url: str, tmp_path: Path) -> None:
    consumer = make_consumer(tmp_path, flux_url, seeded(open_registry, [*RELEASES, "1.2.0.sig"]))
    overlay = consumer / "clusters" / "production"
    env = {"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", {}))}
    assert_one_line(rollback(str(overlay), "1.2.0", env=env), "selects 1.1.0")
    after_first = snapshot(consumer)

    again = rollback(str(overlay), "1.2.0", env=env)
    signature = rollback(str(overlay), "1.2.0.sig", env=env)

    assert_input_error(again, "already excluded", r"^1\.2\.0$")
    assert_input_error(signature, "already excluded", DEFAULT)
    assert snapshot(consumer) == after_first


def test_an_exclusion_flux_cannot_compile_is_refused(open_registry: Registry, flux_url: str, tmp_path: Path) -> None:
    """The repository's list is compiled once, as Flux compiles it. Before: GoRegexError escaped as a traceback."""
    consumer = make_consumer(tmp_path, flux_url, seeded(open_registry, RELEASES))
    overlay = consumer / "clusters" / "production"
    kustomization = overlay / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text()
        + "patches:\n  - target:\n      kind: ImageRepository\n      name: app\n    patch: |-\n"
        + "      - op: add\n        path: /spec/exclusionList\n        value: ['^1\\.0', '(?=x)']\n"
    )
    before = snapshot(consumer)

    done = rollback(str(overlay), "1.2.0", env={"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", {}))})

    assert_input_error(
        done, "ImageRepository flux-system/app", "spec.exclusionList: invalid regular expression pattern '(?=x)'"
    )
    assert snapshot(consumer) == before


@pytest.mark.parametrize("tag", ["1.2.0", "main-3f2c1a9-1764110000", "v1.2.3-rc.1_build", "latest"])
def test_the_exclusion_matches_exactly_the_tag(tag: str) -> None:
    pattern = exclusion_for(tag)
    assert GoRegexp(pattern).search(tag).group(0) == tag
    for other in (f"{tag}x", f"x{tag}", tag.replace(".", "x"), tag[:-1]):
        if other != tag:
            assert not GoRegexp(pattern).matches(other), other
    metachars = "\\.+*?()|[]{}^$"
    assert GoRegexp(f"^{quote_meta(metachars)}$").search(metachars).group(0) == metachars


LISTING = "- path: rollback-app.yaml\n  target:\n    kind: ImageRepository\n    name: app\n"


@pytest.mark.parametrize(
    "text",
    [
        "resources:\n- a\npatches:\n- path: x.yaml\n# tail\n",  # indentless lists, a trailing comment
        "resources:\n  - a\npatches: # none yet\nnamePrefix: p-\n",  # an empty key with a comment
        "kind: Kustomization",  # no list to copy, no final line end
        "kind: Kustomization\n\n# end\n",
        "resources:\n    - a\n",  # four-space lists
        "patches:\n  - patch: |\n      - op: remove\n        path: /x\n    target: {kind: X}\n\n\n",
    ],
)
def test_listing_edits_touch_only_their_lines(text: str) -> None:
    added = yamlblock.append(text, "patches", LISTING, "k")
    entries = yamlblock.values(added, "patches", "k")
    assert entries[-1] == YAML(typ="safe").load(LISTING)[0]
    kept = [line for line in added.split("\n") if line.strip().startswith(("resources", "- a", "# ", "kind: K"))]
    assert all(line in text.split("\n") for line in kept)
    assert yamlblock.remove(added, "patches", len(entries) - 1, "k") == text


@pytest.mark.parametrize("text", ["patches: []\n", "patches: [{path: x.yaml}]\n", "- a\n", "a: [\n"])
def test_layouts_not_edited_line_by_line_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        yamlblock.append(text, "patches", LISTING, "k")


def assert_failed_cleanly(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    """The I/O-failure contract: exit 1, one stderr line naming the file, nothing on stdout, no traceback."""
    assert done.returncode == 1, explain(done)
    assert done.stdout == "", explain(done)
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, explain(done)
    for part in parts:
        assert part in done.stderr, explain(done)


@pytest.mark.parametrize(
    ("stage", "frozen", "args"),
    [
        ("fresh", "kustomization.yaml", ["1.2.0"]),  # a new patch and its listing: the listing cannot be written
        ("rolled-back", "rollback-app.yaml", ["1.1.0"]),  # a second exclusion into the existing patch
        ("rolled-back", "kustomization.yaml", ["1.2.0", "--undo"]),  # the patch deleted, the listing kept
    ],
)
def test_a_file_that_cannot_be_written_changes_nothing_and_leaves_nothing(
    stage: str, frozen: str, args: list[str], open_registry: Registry, flux_url: str, tmp_path: Path
) -> None:
    """Before: `.kustomization.yaml.rollback-tmp` (or the patch's) stayed in the overlay for a later `git add`."""
    overlay = make_consumer(tmp_path, flux_url, seeded(open_registry, RELEASES)) / "clusters" / "production"
    env = {"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", {}))}
    if stage == "rolled-back":
        assert_one_line(rollback(str(overlay), "1.2.0", env=env), "selects 1.1.0")
    before = snapshot(overlay)

    with immutable(overlay / frozen):
        done = rollback(str(overlay), *args, env=env)

    assert snapshot(overlay) == before, explain(done)  # byte for byte, and no temporary file beside them
    assert_failed_cleanly(done, f"OVERLAY {overlay}: {frozen}", "not writable")


def test_a_full_disk_changes_nothing_and_leaves_nothing(open_registry: Registry, flux_url: str, tmp_path: Path) -> None:
    """Room for the new patch's temporary copy, not for the kustomization's: neither file changes."""
    overlay = make_consumer(tmp_path, flux_url, seeded(open_registry, RELEASES)) / "clusters" / "production"
    env = {"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", {}))}
    with small_disk(overlay):
        fill(overlay, leave=4096)  # one tmpfs page
        before = snapshot(overlay)

        done = rollback(str(overlay), "1.2.0", env=env)

        assert snapshot(overlay) == before, explain(done)
        assert_failed_cleanly(done, f"OVERLAY {overlay}: kustomization.yaml", "No space left on device")
