"""The CLI on hostile or broken input: invalid policies in an overlay, RE2 memory, deeply nested YAML, fields of
another type than Flux's CRDs give them, folders that do not exist."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML
from support.cli import assert_input_error, explain, run_cli
from support.crds import crd_schemas, validate_against_crd
from support.registry import Registry

from image_tagger.demo import localregistry
from image_tagger.fluxrules import standard

IMAGE_API = "image.toolkit.fluxcd.io/v1"


def flux_objects(policy_spec: dict, fields: dict[tuple[str, str], Any] | None = None) -> list[dict[str, Any]]:
    """An ImageRepository on a closed loopback port and one ImagePolicy: no registry needs to answer.

    `fields` sets (kind, dotted path) to a value, e.g. {("ImageRepository", "spec.exclusionList"): "^x$"}.
    """
    objects = [
        {
            "apiVersion": IMAGE_API,
            "kind": "ImageRepository",
            "metadata": {"name": "app", "namespace": "flux-system"},
            "spec": {"image": f"127.0.0.1:{localregistry.free_port()}/acme/app"},
        },
        {
            "apiVersion": IMAGE_API,
            "kind": "ImagePolicy",
            "metadata": {"name": "app-production", "namespace": "flux-system"},
            "spec": {"imageRepositoryRef": {"name": "app"}, **policy_spec},
        },
    ]
    for (kind, path), value in (fields or {}).items():
        *parents, key = path.split(".")
        node = next(obj for obj in objects if obj["kind"] == kind)
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return objects


def write_objects(path: Path, objects: list[dict[str, Any]]) -> Path:
    with path.open("w") as out:
        YAML(typ="safe").dump_all(objects, out)
    return path


def overlay(tmp_path: Path, policy_spec: dict, fields: dict[tuple[str, str], Any] | None = None) -> Path:
    return write_objects(tmp_path / "objects.yaml", flux_objects(policy_spec, fields))


def test_preview_invalid_policy_is_exit_2_naming_it(tmp_path: Path) -> None:
    """Before: exit 0 and "nothing selected (invalid regular expression ...)" (or a registry error first)."""
    spec = {**standard.release_policy(1), "filterTags": {"pattern": "^(?P<v>.*"}}
    done = run_cli("preview", str(overlay(tmp_path, spec)), "--json")
    assert_input_error(done, "ImagePolicy flux-system/app-production is invalid", "spec.filterTags.pattern")


def test_preview_too_large_pattern_is_exit_2_quickly(tmp_path: Path) -> None:
    spec = {**standard.release_policy(1), "filterTags": {"pattern": r"^\pL{1000}\pL{1000}\pL{1000}$"}}
    started = time.monotonic()
    done = run_cli("preview", str(overlay(tmp_path, spec)))
    assert_input_error(done, "flux-system/app-production", "pattern too large")
    assert time.monotonic() - started < 10


def test_preview_valid_policy_still_reaches_the_registry(tmp_path: Path) -> None:
    done = run_cli("preview", str(overlay(tmp_path, standard.release_policy(1))))
    assert done.returncode == 1 and "cannot reach" in done.stderr, explain(done)


def test_preview_deeply_nested_yaml_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 20000 + "]" * 20000)
    done = run_cli("preview", str(path))
    assert_input_error(done, "nested deeper than 100 levels", str(path))


def test_select_deeply_nested_yaml_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("kind: ImagePolicy\nspec: " + "{a: " * 20000 + "1" + "}" * 20000 + "\n")
    tags = tmp_path / "tags.txt"
    tags.write_text("1.0.0\n")
    done = run_cli("select", "--policy", str(path), "--tags", str(tags))
    assert_input_error(done, "--policy", "nested deeper than 100 levels")


def test_select_too_large_pattern_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    spec = {**standard.release_policy(1), "filterTags": {"pattern": r"\pL{1000}\pL{1000}"}}
    with path.open("w") as out:
        YAML(typ="safe").dump({"apiVersion": IMAGE_API, "kind": "ImagePolicy", "spec": spec}, out)
    tags = tmp_path / "tags.txt"
    tags.write_text("1.0.0\n")
    done = run_cli("select", "--policy", str(path), "--tags", str(tags))
    assert_input_error(done, "spec.filterTags.pattern", "pattern too large")


# Fields the tools read, of another type than the CRD gives them: the API server refuses such an object, so
# Flux never acts on it. Before: a string exclusionList was read as no exclusions at all (a prediction of
# what never happens); a string secretRef or imageRepositoryRef was an AttributeError traceback.
WRONG_TYPES = [
    ("ImageRepository", "spec.exclusionList", r"^1\.2\.0$", "ImageRepository flux-system/app", "a string"),
    ("ImageRepository", "spec.exclusionList", [r"^.*\.sig$", 1.5], "ImageRepository flux-system/app", "a number"),
    ("ImageRepository", "spec.secretRef", "regcred", "ImageRepository flux-system/app", "a string"),
    ("ImageRepository", "spec.image", ["acme/app"], "ImageRepository flux-system/app", "a list"),
    ("ImagePolicy", "spec.imageRepositoryRef", "app", "ImagePolicy flux-system/app-production", "a string"),
    ("ImagePolicy", "metadata.labels", "tier=web", "ImagePolicy flux-system/app-production", "a string"),
]


@pytest.mark.parametrize(("kind", "path", "value", "named", "found"), WRONG_TYPES)
def test_preview_refuses_a_field_the_crd_refuses(
    kind: str, path: str, value: Any, named: str, found: str, tmp_path: Path
) -> None:
    objects = flux_objects(standard.release_policy(1), {(kind, path): value})
    if not path.startswith("metadata"):  # the CRD's schema itself refuses it (labels are the API server's)
        with pytest.raises(jsonschema.ValidationError):
            validate_against_crd(crd_schemas(), next(obj for obj in objects if obj["kind"] == kind))
    done = run_cli("preview", str(write_objects(tmp_path / "objects.yaml", objects)))
    assert_input_error(done, named, path.split(".")[-1], found)


def test_select_refuses_a_string_exclusion_list(tmp_path: Path) -> None:
    """Before: the string was ignored and select printed 1.2.0, the tag it was meant to exclude."""
    objects = flux_objects(standard.release_policy(1), {("ImageRepository", "spec.exclusionList"): r"^1\.2\.0$"})
    tags = tmp_path / "tags.txt"
    tags.write_text("1.1.0\n1.2.0\n")
    done = run_cli("select", "--policy", str(write_objects(tmp_path / "both.yaml", objects)), "--tags", str(tags))
    assert_input_error(done, "ImageRepository flux-system/app", "spec.exclusionList is a string")


@pytest.mark.real  # rollback renders the overlay with kustomize
def test_rollback_refuses_a_string_exclusion_list(tmp_path: Path) -> None:
    objects = flux_objects(standard.release_policy(1), {("ImageRepository", "spec.exclusionList"): r"^1\.2\.0$"})
    write_objects(tmp_path / "objects.yaml", objects)
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - objects.yaml\n")
    done = run_cli("rollback", str(tmp_path), "1.1.0")
    assert_input_error(done, "ImageRepository flux-system/app", "spec.exclusionList is a string")


@pytest.mark.parametrize("config_repo", ["/nonexistent", "", "objects.yaml"])
def test_preview_refuses_a_config_repo_that_is_no_folder(config_repo: str, tmp_path: Path) -> None:
    """Before: ignored, and preview went on to the registry without a word about the automation."""
    objects = overlay(tmp_path, standard.release_policy(1))
    value = str(tmp_path / config_repo) if config_repo == "objects.yaml" else config_repo
    done = run_cli("preview", str(objects), "--config-repo", value)
    assert_input_error(done, "--config-repo", "is not a directory")


def test_preview_refuses_an_automation_whose_path_the_config_repo_lacks(
    open_registry: Registry, tmp_path: Path
) -> None:
    """Flux's automation fails on a missing update.path. Before: "nothing to commit"."""
    image = open_registry.seed("hardening/app", ["1.0.0", "1.1.0"])
    automation = {
        "apiVersion": IMAGE_API,
        "kind": "ImageUpdateAutomation",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {"update": {"path": "./apps/production"}},
    }
    objects = [*flux_objects(standard.release_policy(1), {("ImageRepository", "spec.image"): image}), automation]
    path = write_objects(tmp_path / "objects.yaml", objects)
    repo = tmp_path / "config"
    repo.mkdir()
    done = run_cli("preview", str(path), "--config-repo", str(repo))
    assert_input_error(done, "automation flux-system/apps", "update.path ./apps/production", str(repo))
    automation["spec"] = {"update": "./apps/production"}  # a string where the CRD wants an object
    done = run_cli("preview", str(write_objects(path, objects)), "--config-repo", str(repo))
    assert_input_error(done, "automation flux-system/apps", "spec.update is a string")
