"""The action end to end, run exactly as GitHub's runner runs a released `docker://` action, on Engine 20.10
and Engine 28, against a real registry.

Named deviations from the runner (see support/github_runner.py): the action image is built with
`--build-arg BASE_IMAGE=<local python>` (no Docker Hub) and released to
a loopback registry; `docker run --network host` (the registry listens on 127.0.0.1); our dockerd's socket
mounted as /var/run/docker.sock.
"""

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import docker
import pytest
from support.engines import EngineMissing, probe
from support.github_runner import (
    ALL_DEVIATIONS,
    ActionRun,
    GithubRunner,
    declared_inputs,
    input_env_name,
    parse_file_command,
    parse_workflow_commands,
)
from support.keyless import BEARER, SIGNERS, Recorder, github_oidc, jwt, runner_env, serve, stand_in_signer
from support.receiver import closed_port_url, serve_receiver
from support.registry import Registry, serve_registry

from image_tagger.demo import sampleapp
from image_tagger.edges import gitcmd
from image_tagger.edges.registry.session import RegistrySession
from image_tagger.edges.signer import load_public_key
from image_tagger.model.imagename import ImageName
from image_tagger.model.registry import RegistryAuth
from image_tagger.operations.publish import SETTLE_ENV
from image_tagger.operations.verify import verify

REPO = Path(__file__).resolve().parents[1]
IMAGE = "acme/app"
PUSHED_AT = 1764110000
NAMED_DEVIATIONS = ALL_DEVIATIONS


@pytest.fixture(scope="module")
def released_action(
    docker_client: docker.DockerClient,
    python_base_image: str,
    open_registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> GithubRunner:
    """The action as released: its image built and pushed once, action.yml pinned to it by digest."""
    builder = GithubRunner(action_dir=REPO, base_image=python_base_image)
    builder.publish(open_registry.host, tmp_path_factory.mktemp("released-action"))
    return builder


@pytest.fixture(scope="module", params=["20.10", "28"])
def runner(request: pytest.FixtureRequest, released_action: GithubRunner) -> Iterator[GithubRunner]:
    """A runner on Engine 20.10 and one on Engine 28 (as GitHub's hosted runners run): each pulls the released
    image like "Set up job" does for a `docker://` action, runs the steps, and removes the image afterwards."""
    try:
        engine = probe(request.param)
    except EngineMissing as missing:
        pytest.fail(f"{missing}; `./dev test` starts it", pytrace=False)
    runner = GithubRunner(
        action_dir=released_action.action_dir, deviations=released_action.deviations, docker_host=engine.docker_host
    )
    runner.pull()
    yield runner
    runner.remove_image()


@pytest.fixture(scope="module")
def registry(
    runner: GithubRunner, registry_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """A registry per engine: release tags are immutable, so the two engines' runs of `v1.4.2` (from two
    sample-app commits) must not meet in one repository."""
    with serve_registry(tmp_path_factory.mktemp("registry"), "ci-bot", "s3cr3t-Pa55-4-tests") as served:
        yield served


def push_event(ref: str, sha: str) -> dict:
    """The parts of a `push` webhook payload the action may read."""
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": sha,
        "created": ref.startswith("refs/tags/"),
        "head_commit": {"id": sha, "timestamp": "2025-11-25T22:33:20Z", "message": "sample app"},
        "repository": {
            "full_name": IMAGE,
            "name": "app",
            "owner": {"login": "acme"},
            "default_branch": "main",
            "pushed_at": PUSHED_AT,
        },
        "pusher": {"name": "dev"},
    }


def run_push(
    runner: GithubRunner, registry: Registry, workspace: Path, ref: str, password: str | None = None, **inputs: str
) -> ActionRun:
    """One push-triggered step with the registry login inputs filled in."""
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=workspace, check=True, capture_output=True, text=True
    ).stdout.strip()
    given = {
        "image": IMAGE,
        "registry": registry.host,
        "username": registry.username,
        "password": registry.password if password is None else password,
        **inputs,
    }
    root = workspace.parents[1]
    settle = {SETTLE_ENV: os.environ[SETTLE_ENV]}  # conftest's short release settle interval, as a step's `env:`
    return runner.run(root, workspace, event=push_event(ref, sha), ref=ref, sha=sha, inputs=given, step_env=settle)


def explain(run: ActionRun) -> str:
    """Assertion context: the step's exit code and the tail of its logs."""
    return f"rc={run.returncode}\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"


def test_tag_push_builds_and_pushes_the_release(runner: GithubRunner, registry: Registry, sample_app: Path) -> None:
    run = run_push(runner, registry, sample_app, "refs/tags/v1.4.2", **{"major-version": "1"})

    assert run.returncode == 0, explain(run)
    assert set(run.deviations) <= NAMED_DEVIATIONS
    reference = f"{registry.host}/{IMAGE}"
    digest = registry.manifest_digest(IMAGE, "1.4.2")
    assert run.outputs["version"] == "1.4.2"
    assert run.outputs["tags"].splitlines() == [f"{reference}:1.4.2"]
    assert run.outputs["digest"] == digest
    assert run.outputs["image"] == f"{reference}:1.4.2@{digest}"
    assert run.outputs["pushed"] == "true"
    assert json.loads(run.outputs["json"])["digest"] == digest
    assert "1.4.2" in registry.tags(IMAGE)
    assert "<table>" in run.summary or re.search(r"^\|.*\|\s*$", run.summary, re.MULTILINE), run.summary
    assert f"{reference}:1.4.2" in run.summary
    assert digest in run.summary and "releases of major 1" in run.summary
    assert run.named("group"), "build and push logs are folded into ::group:: blocks"
    # The right password is as secret as a wrong one: masked first, then nowhere.
    assert run.commands[0].name == "add-mask" and run.commands[0].message == registry.password
    visible = "\n".join(line for line in run.stdout.splitlines() if "::add-mask::" not in line)
    for text in (visible, run.stderr, json.dumps(run.outputs), run.summary):
        assert registry.password not in text


def test_pull_request_is_built_but_not_pushed(runner: GithubRunner, registry: Registry, sample_app: Path) -> None:
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=sample_app, check=True, capture_output=True, text=True
    ).stdout.strip()
    event = {"number": 17, "pull_request": {"number": 17, "head": {"sha": sha}}, "repository": {"full_name": IMAGE}}
    inputs = {"image": IMAGE, "registry": registry.host, "username": registry.username, "password": registry.password}
    run = runner.run(
        sample_app.parents[1],
        sample_app,
        event=event,
        ref="refs/pull/17/merge",
        sha="f" * 40,
        inputs=inputs,
        event_name="pull_request",
    )

    assert run.returncode == 0, explain(run)
    assert re.fullmatch(rf"pr-17-{sha[:7]}-[0-9]+", run.outputs["version"]), run.outputs
    assert run.outputs["pushed"] == "false" and run.outputs["digest"] == ""
    assert run.outputs["version"] not in registry.tags(IMAGE)


def test_main_push_tags_branch_sha_and_push_time(runner: GithubRunner, registry: Registry, sample_app: Path) -> None:
    run = run_push(runner, registry, sample_app, "refs/heads/main")

    assert run.returncode == 0, explain(run)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=sample_app, capture_output=True, text=True).stdout
    version = run.outputs["version"]
    assert re.fullmatch(r"main-[0-9a-f]{7}-[0-9]+", version)
    assert version == f"main-{sha[:7]}-{PUSHED_AT}"
    assert version in registry.tags(IMAGE)


def leaked_in_files(folder: Path, secrets: list[bytes]) -> list[Path]:
    """Every file under `folder` whose bytes contain one of `secrets`."""
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink() and any(s in path.read_bytes() for s in secrets)
    ]


def test_wrong_password_fails_masked_and_pushes_nothing(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    wrong = "wr0ng-Pa55-zq81xv"
    run = run_push(runner, registry, sample_app, "refs/tags/v1.5.0", password=wrong, **{"major-version": "1"})

    assert run.returncode != 0, explain(run)
    assert run.named("error"), explain(run)
    assert run.commands[0].name == "add-mask" and run.commands[0].message == wrong, explain(run)
    assert "1.5.0" not in registry.tags(IMAGE)
    secrets = [wrong.encode(), base64.b64encode(f"{registry.username}:{wrong}".encode())]
    visible_stdout = "\n".join(line for line in run.stdout.splitlines() if not line.lstrip().startswith("::add-mask::"))
    for text in (visible_stdout, run.stderr, json.dumps(run.outputs), run.summary):
        assert not any(secret.decode() in text for secret in secrets)
    assert leaked_in_files(run.temp_dir, secrets) == []
    assert leaked_in_files(run.workspace, secrets) == []
    with closing(docker.DockerClient(base_url=runner.docker_host)) as client:
        for image in client.images.list():
            assert wrong not in json.dumps(image.attrs), image.tags


def test_major_version_mismatch_fails_and_pushes_nothing(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    run = run_push(runner, registry, sample_app, "refs/tags/v2.0.0", **{"major-version": "1"})

    assert run.returncode != 0, explain(run)
    assert run.named("error"), explain(run)
    assert "2.0.0" not in registry.tags(IMAGE)


# The harness itself: its parsers must agree with the runner, or every e2e assertion above means little.


def test_output_file_parser_reads_toolkit_heredocs_and_plain_lines() -> None:
    text = "version<<ghadelimiter_1\n1.4.2\nghadelimiter_1\ntags<<EOF\na:1\nb:1\nEOF\npushed=true\n"

    assert parse_file_command(text) == {"version": "1.4.2", "tags": "a:1\nb:1", "pushed": "true"}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("tags<<EOF\na\n", "Matching delimiter not found"),
        ("tags<<EOF\na\nEOF", "EOF marker missing new line"),
        ("just-a-line\n", "Invalid format"),
    ],
)
def test_output_file_parser_rejects_what_the_runner_rejects(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_file_command(text)


def test_command_parser_unescapes_and_honours_stop_commands() -> None:
    text = (
        "plain\n  ::add-mask::s3cret\n::error file=a%3Ab.py,line=3::bad%0Aworse %25\n"
        "::stop-commands::tok\n::error::ignored\n::tok::\n::unknown::x\n::endgroup::\n"
    )

    commands = parse_workflow_commands(text, "stdout")

    assert [(c.name, c.message) for c in commands] == [
        ("add-mask", "s3cret"),
        ("error", "bad\nworse %"),
        ("stop-commands", "tok"),
        ("endgroup", ""),
    ]
    assert commands[1].properties == {"file": "a:b.py", "line": "3"}


def test_run_argv_passes_every_declared_input_by_name_only(tmp_path: Path) -> None:
    runner = GithubRunner(action_dir=REPO, image="abc123:" + "0" * 32)
    files = {"GITHUB_OUTPUT": tmp_path / "set_output_x"}
    env = runner.step_env(
        {"image": IMAGE},
        ref="refs/tags/v1.4.2",
        sha="a" * 40,
        event_name="push",
        repository=IMAGE,
        root=tmp_path,
        files=files,
    )
    argv = runner.run_argv(env, temp=tmp_path / "_temp", workspace=tmp_path / "ws", args=())

    names = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-e"]
    assert names[-2:] == ["GITHUB_ACTIONS=true", "CI=true"]
    assert all("=" not in name for name in names[:-2])
    assert {input_env_name(name) for name in declared_inputs(REPO / "action.yml")} <= set(names)
    assert env["INPUT_MAJOR-VERSION"] == "" and env["INPUT_IMAGE"] == IMAGE
    assert env["GITHUB_REF_NAME"] == "v1.4.2" and env["GITHUB_REF_TYPE"] == "tag"
    assert argv[:3] == ["docker", "run", "--name"] and argv[4:9] == [
        "--label",
        runner.label,
        "--workdir",
        "/github/workspace",
        "--rm",
    ]
    assert argv[-1] == runner.image
    assert argv[-7:-1:2] == ["-v"] * 3


def test_overlay_outlook_reports_the_release_policy_move(
    runner: GithubRunner, registry_binary: str, sample_app: Path, tmp_path: Path
) -> None:
    """A rendered Flux overlay in the workspace: the summary says how the release policy moves.

    Its own registry, so that v1.0.0 is the first release the policy ever sees (the session registry already
    holds this module's 1.4.2).
    """
    with serve_registry(tmp_path / "registry", "ci-bot", "0verlay-Pa55") as fresh:
        repository = (REPO / "flux" / "automation" / "image-repository.yaml").read_text()
        pointed = repository.replace("docker.io/acme/app", f"{fresh.host}/{IMAGE}")
        assert pointed != repository
        release_policy = (REPO / "flux" / "image-policy.yaml").read_text()
        (sample_app / "flux-overlay.yaml").write_text(f"{pointed}---\n{release_policy}")

        first = run_push(runner, fresh, sample_app, "refs/tags/v1.0.0", overlay="flux-overlay.yaml")
        second = run_push(runner, fresh, sample_app, "refs/tags/v1.1.0", overlay="flux-overlay.yaml")

    assert first.returncode == 0, explain(first)
    assert "- flux-system/app-production (1.x): nothing → 1.0.0\n" in first.summary, first.summary
    assert second.returncode == 0, explain(second)
    assert "- flux-system/app-production (1.x): 1.0.0 → 1.1.0\n" in second.summary, second.summary


def test_floating_tags_point_at_the_release_digest(runner: GithubRunner, registry: Registry, sample_app: Path) -> None:
    run = run_push(runner, registry, sample_app, "refs/tags/v3.2.1", **{"floating-tags": "true"})

    assert run.returncode == 0, explain(run)
    reference = f"{registry.host}/{IMAGE}"
    assert run.outputs["tags"].splitlines() == [f"{reference}:{t}" for t in ("3.2.1", "3.2", "3", "latest")]
    digest = run.outputs["digest"]
    assert {registry.manifest_digest(IMAGE, t) for t in ("3.2.1", "3.2", "3", "latest")} == {digest}


BUILDKIT_APP = """\
FROM scratch
COPY --chmod=755 busybox /bin/busybox
SHELL ["/bin/busybox", "sh", "-c"]
RUN /bin/busybox mkdir -p /usr/bin && /bin/busybox --install -s /bin
ARG TARGETARCH
RUN --mount=type=cache,target=/cache echo "$TARGETARCH" > /arch && touch /cache/used
RUN --mount=type=secret,id=npm_token wc -c < /run/secrets/npm_token > /token-length
"""
HEREDOC = """\
RUN <<EOT
echo heredoc-ran > /heredoc
EOT
"""


def commit_dockerfile(workspace: Path, text: str) -> None:
    (workspace / "Dockerfile").write_text(text)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "--quiet", "-am", "buildkit"],
        cwd=workspace,
        check=True,
    )


def test_a_buildkit_dockerfile_with_a_secret_builds_right_and_the_secret_stays_out(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    secret = "npm-T0ken-xk29-only-for-the-build"
    newer = runner.docker_host != probe("20.10").docker_host
    commit_dockerfile(sample_app, BUILDKIT_APP + (HEREDOC if newer else ""))

    run = run_push(runner, registry, sample_app, "refs/heads/main", secrets=f"npm_token={secret}\n")

    assert run.returncode == 0, explain(run)
    masks = [c.message for c in run.named("add-mask")]
    assert secret in masks and run.commands[: len(masks)] == run.named("add-mask")  # masked before anything else
    visible = "\n".join(line for line in run.stdout.splitlines() if "::add-mask::" not in line)
    for text in (visible, run.stderr, json.dumps(run.outputs), run.summary):
        assert secret not in text
    assert leaked_in_files(run.temp_dir, [secret.encode()]) == []
    image = run.outputs["tags"].splitlines()[0]
    with closing(docker.DockerClient(base_url=runner.docker_host)) as client:
        read = lambda path: client.containers.run(image, ["cat", path], remove=True).decode()  # noqa: E731
        assert read("/token-length").strip() == str(len(secret))
        assert read("/arch").strip() in ("amd64", "arm64")
        if newer:
            assert read("/heredoc") == "heredoc-ran\n"
        assert secret not in json.dumps(client.api.inspect_image(image)) + json.dumps(client.api.history(image))
        saved = b"".join(client.images.get(image).save())
        assert secret.encode() not in saved
    assert re.search(r"^#\d+ \[[^]]+\] RUN --mount=type=secret", run.stdout, re.M), run.stdout


def test_a_failing_step_is_the_error_annotation_with_its_output(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    commit_dockerfile(
        sample_app,
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo disk-full-here; exit 7"]\n',
    )

    run = run_push(runner, registry, sample_app, "refs/heads/main")

    assert run.returncode == 1, explain(run)
    [error] = run.named("error")
    assert error.properties["title"].startswith("Build failed: [2/2] RUN"), error
    assert "exit code: 7" in error.message and "disk-full-here" in error.message, error
    assert run.outputs == {}  # nothing was pushed, so nothing is reported as pushed


def test_build_output_cannot_issue_workflow_commands(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    commit_dockerfile(
        sample_app,
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo ::set-output name=pushed::forged; echo ::error::forged-annotation"]\n',
    )

    run = run_push(runner, registry, sample_app, "refs/heads/main", **{"no-cache": "true"})

    assert run.returncode == 0, explain(run)
    assert "::error::forged-annotation" in run.stdout  # printed, but inside ::stop-commands::
    assert not any("forged" in c.message for c in run.commands if c.name in ("error", "set-output")), run.commands
    assert run.outputs["pushed"] == "true"


def test_a_push_notifies_the_flux_receiver_with_a_signature_flux_accepts(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    token = "rcv-T0ken-9x7q-hmac-key"
    with serve_receiver(token) as receiver:
        run = run_push(
            runner,
            registry,
            sample_app,
            "refs/tags/v4.0.0",
            **{"flux-receiver-url": receiver.url, "flux-receiver-secret": token},
        )

    assert run.returncode == 0, explain(run)
    [delivery] = receiver.deliveries
    assert delivery.accepted, delivery
    sent = json.loads(delivery.body)
    assert sent == {
        "image": f"{registry.host}/{IMAGE}",
        "tags": [f"{registry.host}/{IMAGE}:4.0.0"],
        "digest": registry.manifest_digest(IMAGE, "4.0.0"),
    }
    assert "Flux: notified" in run.summary
    assert token in [c.message for c in run.named("add-mask")]
    visible = "\n".join(line for line in run.stdout.splitlines() if "::add-mask::" not in line)
    for text in (visible, run.stderr, json.dumps(run.outputs), run.summary):
        assert token not in text


def test_a_receiver_that_refuses_is_a_warning_not_a_failed_step(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    with serve_receiver("the-right-token") as receiver:
        run = run_push(
            runner,
            registry,
            sample_app,
            "refs/tags/v4.0.1",
            **{"flux-receiver-url": receiver.url, "flux-receiver-secret": "a-wrong-token"},
        )

    assert run.returncode == 0, explain(run)
    assert run.outputs["pushed"] == "true"
    assert [d.status for d in receiver.deliveries] == [400]
    assert run.named("warning") and "not notified" in run.summary


def test_each_cluster_s_receiver_is_notified_with_its_own_token(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    tokens = ("prod-rcv-T0ken-4q8z", "stag-rcv-T0ken-7w2m")
    with serve_receiver(tokens[0]) as production, serve_receiver(tokens[1]) as staging:
        run = run_push(
            runner,
            registry,
            sample_app,
            "refs/tags/v4.0.2",
            **{"flux-receiver-url": f"{production.url}\n{staging.url}\n", "flux-receiver-secret": "\n".join(tokens)},
        )

    assert run.returncode == 0, explain(run)
    digest = registry.manifest_digest(IMAGE, "4.0.2")
    for receiver in (production, staging):
        [delivery] = receiver.deliveries
        assert delivery.accepted and json.loads(delivery.body)["digest"] == digest
    reported = json.loads(run.outputs["json"])
    assert reported["flux_notified"] is True
    assert reported["flux_receivers"] == [
        {"origin": production.origin, "notified": True},
        {"origin": staging.origin, "notified": True},
    ]
    assert f"- Flux: notified ({production.origin} answered 200)\n" in run.summary
    assert f"- Flux: notified ({staging.origin} answered 200)\n" in run.summary
    assert set(tokens) <= {c.message for c in run.named("add-mask")}
    visible = "\n".join(line for line in run.stdout.splitlines() if "::add-mask::" not in line)
    for text in (visible, run.stderr, json.dumps(run.outputs), run.summary):
        for secret in (*tokens, production.path, staging.path):
            assert secret not in text


def test_tokens_that_do_not_pair_up_with_the_receivers_are_refused_before_the_build(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    with serve_receiver("tok-one-8d") as production, serve_receiver("tok-two-8d") as staging:
        run = run_push(
            runner,
            registry,
            sample_app,
            "refs/tags/v4.0.3",
            **{
                "flux-receiver-url": f"{production.url}\n{staging.url}",
                "flux-receiver-secret": "tok-one-8d\ntok-two-8d\ntok-three-8d",
            },
        )

    assert run.returncode == 2, explain(run)
    [error] = run.named("error")
    assert error.properties["title"] == "Invalid input"
    assert error.message.startswith("flux-receiver-secret has 3 tokens for 2 URLs of flux-receiver-url; accepted:")
    assert "4.0.3" not in registry.tags(IMAGE) and run.outputs == {}
    assert not run.named("group"), "nothing was built"
    assert production.deliveries == staging.deliveries == []


def test_a_receiver_that_is_down_is_a_warning_and_the_other_is_still_notified(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    token = "one-rcv-T0ken-for-both"
    down = closed_port_url()
    with serve_receiver(token) as staging:
        run = run_push(
            runner,
            registry,
            sample_app,
            "refs/tags/v4.0.4",
            **{"flux-receiver-url": f"{down}\n{staging.url}", "flux-receiver-secret": token},
        )

    assert run.returncode == 0, explain(run)
    assert run.outputs["pushed"] == "true"
    assert [d.status for d in staging.deliveries] == [200]
    down_origin = down.rpartition("/hook/")[0]
    [warning] = run.named("warning")
    assert warning.properties["title"] == "Flux not notified"
    assert warning.message.startswith(f"Flux not notified: {down_origin}: connection failed"), warning
    assert json.loads(run.outputs["json"])["flux_receivers"] == [
        {"origin": down_origin, "notified": False},
        {"origin": staging.origin, "notified": True},
    ]
    assert f"- Flux: **not notified** ({down_origin}: connection failed" in run.summary
    assert f"- Flux: notified ({staging.origin} answered 200)" in run.summary
    for text in (run.stdout, run.stderr, run.summary, json.dumps(run.outputs)):
        assert "/hook/" not in text


def test_two_runs_for_one_pull_request_commit_give_one_image_config(
    runner: GithubRunner, registry: Registry, tmp_path: Path
) -> None:
    """The image has no git: the commit's time comes from the checkout's objects (a depth-1 pack, as
    actions/checkout leaves it), so `created` is the commit's and a re-run builds the same config."""
    origin = tmp_path / "origin"
    origin.mkdir()
    busybox = sampleapp.static_busybox()
    assert busybox, "no static busybox (install busybox-static)"
    shutil.copy2(busybox, origin / "busybox")
    # Files only, into / : a folder that COPY creates carries the build's own time on the classic store.
    (origin / "Dockerfile").write_text("FROM scratch\nCOPY busybox /\nCOPY Dockerfile /\n")
    for args in (("init", "-q"), ("add", "--all"), ("commit", "-q", "-m", "pull request head")):
        gitcmd.git(origin, *args, when=1764000000)
    sha = gitcmd.git(origin, "rev-parse", "HEAD")
    workspace = tmp_path / "root" / "work" / "app"
    workspace.mkdir(parents=True)
    gitcmd.git(workspace, "init", "-q")
    gitcmd.git(workspace, "-c", "fetch.unpackLimit=1", "fetch", "-q", "--depth=1", f"file://{origin}", sha)
    gitcmd.git(workspace, "checkout", "-q", "FETCH_HEAD")
    event = {"number": 17, "pull_request": {"number": 17, "head": {"sha": sha}, "updated_at": "2025-12-01T10:00:00Z"}}
    inputs = {"image": IMAGE, "registry": registry.host, "timestamp": "commit"}

    def one_run() -> ActionRun:
        root = workspace.parents[1]
        pull = {"event": event, "ref": "refs/pull/17/merge", "sha": sha, "event_name": "pull_request"}
        return runner.run(root, workspace, inputs=inputs, **pull)

    first, second = one_run(), one_run()

    assert first.returncode == 0 and second.returncode == 0, explain(first) + explain(second)
    assert first.outputs["version"] == f"pr-17-{sha[:7]}-1764000000"  # timestamp: commit, read without git
    assert "no commit time" not in first.stdout + first.summary
    with closing(docker.DockerClient(base_url=runner.docker_host)) as client:
        image = client.images.get(json.loads(first.outputs["json"])["image_id"])
        assert image.labels["org.opencontainers.image.created"] == "2025-11-24T16:00:00Z"
        if runner.docker_host == probe("28").docker_host:  # 20.10's BuildKit predates SOURCE_DATE_EPOCH
            assert image.attrs["Created"].startswith("2025-11-24T16:00:00")
            assert json.loads(first.outputs["json"])["image_id"] == json.loads(second.outputs["json"])["image_id"]


def test_keyless_signing_from_inside_the_action_container(
    runner: GithubRunner, registry: Registry, sample_app: Path, tmp_path: Path
) -> None:
    """`keyless-signing` as the runner runs the action: the action, itself a container with no host path of its
    own, starts the stand-in cosign (tests/support/keyless.py) through the mounted socket and copies its files in;
    the runner's bearer for OIDC tokens is masked first, and neither it nor the token shows anywhere."""
    token = jwt("repo:acme/keyless:ref:refs/tags/v1.4.2")
    recorder = Recorder(registry)
    ref = "refs/tags/v1.4.2"
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=sample_app, check=True, capture_output=True, text=True
    ).stdout.strip()
    inputs = {
        "image": "acme/keyless",
        "registry": registry.host,
        "username": registry.username,
        "password": registry.password,
        "keyless-signing": "true",
    }
    with (
        closing(docker.DockerClient(base_url=runner.docker_host)) as client,
        stand_in_signer(client, tmp_path / "standin", recorder) as standin,
        serve(github_oidc(token)) as github,
    ):
        step_env = {SETTLE_ENV: os.environ[SETTLE_ENV], **runner_env(github)}
        run = runner.run(
            sample_app.parents[1],
            sample_app,
            event=push_event(ref, sha),
            ref=ref,
            sha=sha,
            inputs={**inputs, "signer-image": standin},
            step_env=step_env,
        )
        leftovers = client.containers.list(all=True, filters=SIGNERS)

    assert run.returncode == 0, explain(run)
    assert json.loads(run.outputs["json"])["signed"] is True
    login = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    assert recorder.handed["token"] == token
    assert json.loads(recorder.handed["config"]) == {"auths": {registry.host: {"auth": login}}}
    assert recorder.tags_while_signing == [] and "1.4.2" in registry.tags("acme/keyless")
    assert BEARER in [command.message for command in run.named("add-mask")]
    visible = "\n".join(line for line in run.stdout.splitlines() if "::add-mask::" not in line)
    for text in (visible, run.stderr, json.dumps(run.outputs), run.summary):
        assert token not in text and BEARER not in text and registry.password not in text
    assert leftovers == []


COSIGN = REPO / "tests" / "fixtures" / "cosign"  # a cosign v3.1.3 key pair, for tests only
COSIGN_PASSWORD = "test-only: never a real key"


def test_a_signed_release_is_signed_before_its_tag_and_a_key_that_does_not_open_is_one_error(
    runner: GithubRunner, registry: Registry, sample_app: Path
) -> None:
    """In the released image: a wrong signing-password is exit 2 and one error, the build it ran beside shown not
    at all and nothing pushed; the right one signs the release for its version (libsodium's scrypt in the image)."""
    key = (COSIGN / "cosign.key").read_text()
    refused = run_push(
        runner, registry, sample_app, "refs/tags/v6.0.1", **{"signing-key": key, "signing-password": "not it"}
    )
    assert refused.returncode == 2, explain(refused)
    [error] = refused.named("error")
    assert error.properties["title"] == "Invalid input", explain(refused)
    assert error.message.startswith("signing-key: the password does not open this key"), error.message
    assert not refused.named("group") and "6.0.1" not in registry.tags(IMAGE), explain(refused)

    signed = run_push(
        runner, registry, sample_app, "refs/tags/v6.0.1", **{"signing-key": key, "signing-password": COSIGN_PASSWORD}
    )
    assert signed.returncode == 0, explain(signed)
    assert json.loads(signed.outputs["json"])["signed"] is True
    assert len(signed.named("group")) == len(signed.named("endgroup")) > 0  # the held log's groups, whole
    name = ImageName(registry.host, IMAGE)
    public = load_public_key((COSIGN / "cosign.pub").read_bytes(), "cosign.pub")
    verdict = verify(name.ref("6.0.1"), public, lambda _: RegistrySession(name, RegistryAuth(*registry.auth)))
    assert verdict.ok, verdict.line
