"""The released action, as a consumer's runner sees it: action.yml names `docker://REF@sha256:…`, "Set up job"
pulls exactly that image, and the step runs it with the runner's `docker run` list (no build anywhere)."""

import subprocess
from pathlib import Path

import docker
from ruamel.yaml import YAML
from support.github_runner import ALL_DEVIATIONS, BUILD_ARG_BASE_IMAGE, LOOPBACK_RELEASE, GithubRunner
from support.registry import Registry

REPO = Path(__file__).resolve().parents[1]


def test_docker_action_is_pulled_by_digest_and_run_as_the_runner_does(
    docker_client: docker.DockerClient,
    python_base_image: str,
    open_registry: Registry,
    sample_app: Path,
    tmp_path: Path,
) -> None:
    runner = GithubRunner(action_dir=REPO, base_image=python_base_image)
    pinned = runner.publish(open_registry.host, tmp_path / "action")
    try:
        reference = runner.pull()
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=sample_app, check=True, capture_output=True, text=True
        ).stdout.strip()
        event = {"number": 5, "pull_request": {"number": 5, "head": {"sha": sha}}, "repository": {"full_name": "a/b"}}
        run = runner.run(
            sample_app.parents[1],
            sample_app,
            event=event,
            ref="refs/pull/5/merge",
            sha=sha,
            inputs={"image": "acme/app", "registry": open_registry.host},
            event_name="pull_request",
        )
        repo_digests = docker_client.images.get(reference).attrs["RepoDigests"]
    finally:
        runner.remove_image()

    runs = YAML(typ="safe").load((tmp_path / "action" / "action.yml").read_text())["runs"]
    assert runs == {"using": "docker", "image": pinned}
    assert reference == pinned.removeprefix("docker://")
    name, _, digest = reference.partition("@")
    repository = name.removeprefix(f"{open_registry.host}/").rpartition(":")[0]
    assert open_registry.manifest_digest(repository, name.rpartition(":")[2]) == digest
    assert f"{name.rpartition(':')[0]}@{digest}" in repo_digests
    assert run.argv[-1] == reference, run.argv[-3:]
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.outputs["pushed"] == "false" and run.outputs["version"].startswith("pr-5-")
    assert {LOOPBACK_RELEASE, BUILD_ARG_BASE_IMAGE} <= set(run.deviations) <= ALL_DEVIATIONS
    # The pinned copy holds action.yml only: a docker:// action needs nothing else from the repository.
    assert sorted(p.name for p in (tmp_path / "action").iterdir()) == ["action.yml"]
