"""The CLI on hostile or broken input: invalid policies in an overlay, RE2 memory, deeply nested YAML."""

from __future__ import annotations

import time
from pathlib import Path

from ruamel.yaml import YAML
from support.cli import assert_input_error, explain, run_cli

from image_tagger.demo import localregistry
from image_tagger.flux import standard

IMAGE_API = "image.toolkit.fluxcd.io/v1"


def overlay(tmp_path: Path, policy_spec: dict) -> Path:
    """An ImageRepository on a closed loopback port and one ImagePolicy: no registry needs to answer."""
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
    path = tmp_path / "objects.yaml"
    with path.open("w") as out:
        YAML(typ="safe").dump_all(objects, out)
    return path


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
