"""action.yml and the shipped workflow are what GitHub and its linters accept; the Dockerfile keeps its contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_action_yml_matches_the_github_action_schema():
    done = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-actions", REPO / "action.yml"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_action_declares_the_contracted_inputs_and_outputs():
    action = YAML(typ="safe").load((REPO / "action.yml").read_text())
    assert action["runs"] == {"using": "docker", "image": "Dockerfile"}
    assert {"icon", "color"} <= set(action["branding"])
    required = {
        "image",
        "registry",
        "username",
        "password",
        "major-version",
        "context",
        "file",
        "push",
        "build-args",
        "tag-prefix",
        "sha-length",
        "timestamp",
    }
    assert required <= set(action["inputs"])
    assert action["inputs"]["registry"]["default"] == "docker.io"
    assert {"version", "tags", "digest", "image", "pushed", "json"} <= set(action["outputs"])


def test_dockerfile_takes_a_base_image_first_and_runs_python_directly():
    lines = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "ARG BASE_IMAGE=python:3.12-slim"
    assert lines[-1] == 'ENTRYPOINT ["python", "-m", "image_tagger.action"]'


WORKFLOWS = [REPO / "examples" / "workflows" / "image.yml", REPO / ".github" / "workflows" / "ci.yml"]


def test_workflows_match_the_schema_and_pass_zizmor():
    for command in (
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS],
        [BIN / "zizmor", "--offline", *WORKFLOWS],
    ):
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
