"""Least privilege for secrets: every process a publish starts holds only the variables it needs.

A real `image-tagger publish` (registry user + password in IMAGE_TAGGER_PASSWORD, a build secret, a
Flux receiver secret) and the action's own process (`python -m image_tagger.entry.action` with INPUT_*, as the
container runs it) build on Engine 20.10 with `--cache-from` of the htpasswd registry, so BuildKit asks
buildx for the registry's credentials and buildx runs our credential helper. While they run,
support.procenv samples `/proc/<pid>/environ` and the open files of every descendant of the run's pid (a
sampler thread polling /proc every millisecond); git, which answers within milliseconds, is also run through a
recording wrapper on PATH that saves its own environ. The credential helper is a shell script of builtins that
lives for a millisecond or two, so the sampler may miss it; that it answered is shown by the push itself, to a
registry that refuses anonymous pushes. A child sampled between vfork and exec still shows its parent's memory
(argv and environ): one showing the top process's argv counts as the top.

Asserted: no process but the top one holds the password, base64 of user:password or the receiver
secret, in its environment or through the credential's memfd (which only the top process holds, and the helper's
script opens for the one `read` that answers buildx: a sample may catch it there); the
build secret is only in buildx's environment, under the names on its `--secret ...,env=NAME` flags (and in the
credential helper's shell, which buildx starts with its own environment and which starts nothing); a Python
relay of the helper (where there is no memfd) holds no build secret, no IMAGE_TAGGER_PASSWORD, no INPUT_*.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.cli import explain
from support.procenv import EnvironSampler, Sample, recorded, recording_wrapper
from support.receiver import serve_receiver
from support.registry import Registry
from support.sample_app import git

from image_tagger.edges.childenv import DOCKER, GIT, child_env

BUILD_SECRET = "bld-s3cret-c0ffee-42"
RECEIVER_SECRET = "rcv-s3cret-7d1f9e"
HELPER = "docker-credential-image-tagger"


@dataclass(frozen=True)
class Run:
    done: subprocess.CompletedProcess[str]
    samples: list[Sample]


@pytest.fixture
def repository(request: pytest.FixtureRequest) -> str:
    return "child-env/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")


@pytest.fixture
def receiver_url() -> Iterator[str]:
    with serve_receiver(RECEIVER_SECRET) as receiver:
        yield receiver.url


@pytest.fixture
def app(sample_app: Path) -> Path:
    """The sample app, with a build step that needs the build secret (so it must still reach the build)."""
    dockerfile = sample_app / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text()
        + 'RUN --mount=type=secret,id=token,required=true ["/bin/busybox", "test", "-s", "/run/secrets/token"]\n'
    )
    git(sample_app, "commit", "--quiet", "-am", "a build step that reads a secret")
    return sample_app


def sampled_run(argv: list[str], env: Mapping[str, str], tmp_path: Path) -> Run:
    """Run `argv` with git behind a recording wrapper, sampling its descendants' environments meanwhile."""
    wrappers, records = tmp_path / "wrappers", tmp_path / "records"
    recording_wrapper(wrappers, records, "git")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    full_env = {**clean, **env, "PATH": f"{wrappers}{os.pathsep}{os.environ['PATH']}"}
    with subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        sampler = EnvironSampler(proc.pid)
        sampler.start()
        stdout, stderr = proc.communicate(timeout=300)
    samples = [*sampler.stop(), *recorded(records)]
    return Run(subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr), samples)


def is_buildx(sample: Sample) -> bool:
    return bool(sample.argv) and Path(sample.argv[0]).name == "docker-buildx"


def is_helper_program(sample: Sample) -> bool:
    return "image_tagger.edges.credrelay" in sample.argv and Path(sample.argv[0]).name != "env"


def is_helper_launcher(sample: Sample) -> bool:
    """The helper's script (/bin/sh; off Linux it exec's `env -i` and the relay): buildx starts it with buildx's own
    environment."""
    script = any(Path(arg).name == HELPER for arg in sample.argv)
    return (script or "image_tagger.edges.credrelay" in sample.argv) and not is_helper_program(sample)


def secret_env_names(samples: list[Sample]) -> set[str]:
    """The variable names buildx's `--secret id=…,env=NAME` flags name."""
    names = set()
    for sample in filter(is_buildx, samples):
        for flag, value in zip(sample.argv, sample.argv[1:], strict=False):
            if flag == "--secret":
                names |= {part.removeprefix("env=") for part in value.split(",") if part.startswith("env=")}
    return names


def assert_least_privilege(run: Run, registry: Registry, git_runs: bool) -> None:
    """`git_runs`: the CLI asks a local checkout's git for the ref; the action reads the commit's objects itself."""
    samples, story = run.samples, explain(run.done)
    assert run.done.returncode == 0, story
    seen = {Path(s.argv[0]).name for s in samples}
    assert any(map(is_buildx, samples)), f"buildx was never sampled: {seen}"
    ran_git = any(s.argv == ("git",) for s in samples)
    assert ran_git == git_runs, "git never ran through the recording wrapper" if git_runs else "the action ran git"
    basic = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    allowed_names = secret_env_names(samples)
    assert allowed_names, "buildx was given no --secret flag"
    problems = set()
    for sample in samples:
        if sample.argv == tuple(run.done.args):
            continue  # a child between vfork and exec still shows the top process's memory: the top one
        where = f"{Path(sample.argv[0]).name} {' '.join(sample.argv[1:3])}"
        for what, value in (("password", registry.password), ("user:password", basic), ("receiver", RECEIVER_SECRET)):
            if sample.holding(value):
                problems.add(f"{where}: the {what} secret in {sample.holding(value)}")
        if any("image-tagger-credential" in target for target in sample.fds) and not is_helper_launcher(sample):
            problems.add(f"{where}: the credential's memfd is open in it")
        holders = sample.holding(BUILD_SECRET)
        if holders and not (is_buildx(sample) or is_helper_launcher(sample)) or not set(holders) <= allowed_names:
            problems.add(f"{where}: the build secret in {holders}")
        leaked = [k for k in sample.env if k == "IMAGE_TAGGER_PASSWORD" or k.startswith("INPUT_") or k in holders]
        if is_helper_program(sample) and leaked:
            problems.add(f"the credential helper holds {leaked}")
    assert not problems, "\n".join(sorted(problems))


def test_cli_publish_gives_each_child_only_what_it_needs(
    registry: Registry, app: Path, repository: str, receiver_url: str, tmp_path: Path
) -> None:
    secrets_file = tmp_path / "build-secrets"
    secrets_file.write_text(f"token={BUILD_SECRET}\n")
    image = f"{registry.host}/{repository}"
    argv = [sys.executable, "-m", "image_tagger", "publish", "--json", "--image", image, "--workspace", str(app)]
    argv += ["--username", registry.username, "--secrets-file", str(secrets_file)]
    argv += ["--cache-from", f"type=registry,ref={image}:buildcache", "--flux-receiver-url", receiver_url]
    env = {"IMAGE_TAGGER_PASSWORD": registry.password, "IMAGE_TAGGER_RECEIVER_SECRET": RECEIVER_SECRET}

    run = sampled_run(argv, env, tmp_path)

    assert_least_privilege(run, registry, git_runs=True)
    assert '"flux_notified": true' in run.done.stdout, explain(run.done)


def test_action_gives_each_child_only_what_it_needs(
    registry: Registry, app: Path, repository: str, receiver_url: str, tmp_path: Path
) -> None:
    image = f"{registry.host}/{repository}"
    for name in ("output", "summary"):
        (tmp_path / name).touch()
    env = {
        "INPUT_IMAGE": image,
        "INPUT_USERNAME": registry.username,
        "INPUT_PASSWORD": registry.password,
        "INPUT_SECRETS": f"token={BUILD_SECRET}",
        "INPUT_CACHE-FROM": f"type=registry,ref={image}:buildcache",
        "INPUT_FLUX-RECEIVER-URL": receiver_url,
        "INPUT_FLUX-RECEIVER-SECRET": RECEIVER_SECRET,
        "GITHUB_WORKSPACE": str(app),
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": git(app, "rev-parse", "HEAD"),
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
    }

    run = sampled_run([sys.executable, "-m", "image_tagger.entry.action"], env, tmp_path)

    assert_least_privilege(run, registry, git_runs=False)
    assert "Flux notified" in run.done.stdout, explain(run.done)


def test_a_child_environment_is_an_allowlist() -> None:
    environ = {"PATH": "/bin", "LC_ALL": "C", "GIT_DIR": "/g", "IMAGE_TAGGER_PASSWORD": "pw", "INPUT_SECRETS": "s=1"}
    environ |= {"GITHUB_TOKEN": "t", "DOCKER_HOST": "unix:///d.sock"}
    assert child_env(environ=environ) == {"PATH": "/bin", "LC_ALL": "C"}
    assert child_env(*GIT, *DOCKER, values={"GIT_AUTHOR_NAME": "ci"}, environ=environ) == {
        "PATH": "/bin",
        "LC_ALL": "C",
        "GIT_DIR": "/g",
        "DOCKER_HOST": "unix:///d.sock",
        "GIT_AUTHOR_NAME": "ci",
    }
