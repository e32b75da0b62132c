"""Every wait has a deadline and every answer a size limit, over the whole exchange: hostile servers
(tests/support/hostile/slow.py) trickle headers or bodies, send huge answers or stall, and each client gives up
within its stated deadline, having read little. Every test runs under its own time limit, so a regression
fails instead of hanging the suite."""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import assert_input_error, explain, run_cli
from support.faultproxy import FaultProxy, fault_proxy
from support.hostile.slow import SlowServer, slow_server, time_limit
from support.registry import Registry
from test_pull_request_action import api, checkout, config_repo, images, release_app, run_action  # noqa: F401

from image_tagger.edges.docker_ops import TIMEOUT_ENV
from image_tagger.edges.notify import ATTEMPTS, TIMEOUT, notify, worst_case
from image_tagger.edges.registry.session import list_tags
from image_tagger.model.errors import PublishError
from image_tagger.operations.publish import PUSH_ATTEMPTS
from image_tagger.pullrequest.github import MAX_ANSWER

TOKEN = "tok-bounds-0123456789"
PAYLOAD = {"image": "127.0.0.1:5000/acme/app", "tags": ["1.0.0"], "digest": ""}
LEFTOVER = 16 << 20  # bytes a client may have taken into socket buffers before it stopped reading


def max_rss() -> int:
    """This process's peak resident memory, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.fixture
def receiver() -> Iterator[SlowServer]:
    with slow_server() as server:
        yield server


def timed_notify(server: SlowServer) -> tuple[float, object]:
    started = time.monotonic()
    with time_limit(worst_case() + 10):
        notification = notify(server.url + "/hook/abc", TOKEN, PAYLOAD, sleep=time.sleep)
    return time.monotonic() - started, notification


@pytest.mark.slow  # waits out the 9 s deadline
def test_notify_gives_up_on_trickled_headers_within_its_deadline(receiver: SlowServer) -> None:
    receiver.trickle_headers(interval=0.2)  # ~70 bytes of headers: 14 s a try, each byte well inside 2.5 s

    took, notification = timed_notify(receiver)

    assert not notification.ok
    assert notification.attempts == ATTEMPTS
    assert f"no answer within {TIMEOUT:g} s" in notification.detail
    assert ATTEMPTS * TIMEOUT - 0.5 < took < worst_case() + 1


def test_notify_reads_no_trickled_body(receiver: SlowServer) -> None:
    receiver.trickle_body(interval=0.2)  # endless, read until close

    took, notification = timed_notify(receiver)

    assert notification.ok, notification.detail
    assert took < TIMEOUT
    assert receiver.sent("trickle_body") < 1024


@pytest.mark.parametrize("declare", [True, False], ids=["declared", "undeclared"])
def test_notify_reads_no_oversized_answer(receiver: SlowServer, declare: bool) -> None:
    receiver.oversized(size=512 << 20, declare=declare)
    before = max_rss()

    took, notification = timed_notify(receiver)

    assert notification.ok, notification.detail
    assert took < TIMEOUT
    assert receiver.sent("oversized") < LEFTOVER
    assert max_rss() - before < 64 << 20


@pytest.mark.slow  # waits out the deadline
def test_registry_client_gives_up_on_trickled_headers_at_its_deadline() -> None:
    with slow_server() as registry:
        registry.trickle_headers(interval=0.2)  # 14 s of headers, each byte well inside the 30 s read timeout
        started = time.monotonic()
        with time_limit(12), pytest.raises(PublishError, match=r"gave up .* \(deadline 3 s\)"):
            list_tags(f"{registry.host}/acme/app", deadline=3)
        assert time.monotonic() - started < 4


@pytest.fixture
def github_front(request: pytest.FixtureRequest) -> Iterator[SlowServer]:
    """The local GitHub API (validated against GitHub's OpenAPI description) of test_pull_request_action, behind
    a slow server."""
    with slow_server(request.getfixturevalue("api").url) as front:
        yield front


def run_pull_request(
    request: pytest.FixtureRequest, front: SlowServer, registry: Registry, tmp_path: Path
) -> tuple[float, dict]:
    """The pull-request action's run against `front`, with a 5 s deadline; the test's own limit is 60 s."""
    bare = request.getfixturevalue("config_repo")
    release_app(bare, tmp_path, registry)
    workspace = checkout(bare, tmp_path / "w" / "ws")
    started = time.monotonic()
    with time_limit(60):
        result = run_action(workspace, front, registry, {"timeout-seconds": "5"})  # type: ignore[arg-type]
    return time.monotonic() - started, result


def one_error(result: dict) -> str:
    assert result["returncode"] == 1, result["stdout"] + result["stderr"]
    assert "Traceback" not in result["stderr"]
    assert len(result["errors"]) == 1, result["stdout"]
    return result["errors"][0].message


@pytest.mark.parametrize(
    ("kind", "path"),
    [("trickle_body", r"/git/trees/"), ("trickle_headers", r"/pulls\?")],
    ids=["tree-body", "pulls-headers"],
)
def test_pull_request_action_ends_within_its_deadline_against_a_trickling_api(
    kind: str, path: str, request: pytest.FixtureRequest, github_front: SlowServer, registry: Registry, tmp_path: Path
) -> None:
    github_front.add(kind, path, interval=0.2, method="GET")  # 1-2 KB: minutes, each byte inside 30 s

    took, result = run_pull_request(request, github_front, registry, tmp_path)

    assert "within the run's deadline (5 s for all calls" in one_error(result)
    assert took < 5 + 10  # the deadline, and the interpreter's start-up on a busy machine
    assert github_front.sent(kind) < 1024


def test_pull_request_action_does_not_wait_past_its_deadline_when_asked_to_retry_later(
    request: pytest.FixtureRequest, github_front: SlowServer, registry: Registry, tmp_path: Path
) -> None:
    github_front.add("retry_later", r"/git/trees/", interval=3600)

    took, result = run_pull_request(request, github_front, registry, tmp_path)

    assert "GitHub asked for a wait of 3600 s before retrying, past the deadline" in one_error(result)
    assert took < 5 + 10


@pytest.mark.parametrize("declare", [True, False], ids=["declared", "undeclared"])
def test_pull_request_action_refuses_an_oversized_answer(
    declare: bool, request: pytest.FixtureRequest, github_front: SlowServer, registry: Registry, tmp_path: Path
) -> None:
    github_front.oversized(r"/git/trees/", size=512 << 20, declare=declare)

    _, result = run_pull_request(request, github_front, registry, tmp_path)

    assert f"over the {MAX_ANSWER} byte limit" in one_error(result)
    assert github_front.sent("oversized") < MAX_ANSWER + LEFTOVER


POLICY = """\
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata: {name: app, namespace: flux-system}
spec:
  imageRepositoryRef: {name: app}
  policy: {semver: {range: ">=1.0.0"}}
"""


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("select", "--tags", "{fifo}", "--policy", "{policy}"), "--tags"),
        (("select", "--tags", "{tags}", "--policy", "{fifo}"), "--policy"),
        (("select", "--tags", "/dev/zero", "--policy", "{policy}"), "--tags /dev/zero: a device"),
        (("publish", "--image", "127.0.0.1:9/a/b", "--workspace", ".", "--secrets-file", "{fifo}"), "--secrets-file"),
        (("preview", "{fifo}"), "overlay file"),
    ],
    ids=["select-tags", "select-policy", "select-tags-device", "publish-secrets-file", "preview-overlay"],
)
def test_a_fifo_or_device_named_on_the_command_line_is_refused_at_once(
    args: tuple[str, ...], named: str, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "tags").write_text("1.0.0\n1.2.0\n")
    paths = {"fifo": fifo, "policy": tmp_path / "policy.yaml", "tags": tmp_path / "tags"}
    started = time.monotonic()

    done = run_cli(*(arg.format(**paths) for arg in args), cwd=tmp_path, timeout=20)  # nobody ever writes the FIFO

    assert_input_error(done, named, "not a regular file")
    assert time.monotonic() - started < 10


SDK_TIMEOUT = "3"  # IMAGE_TAGGER_DOCKER_TIMEOUT: the daemon's silence on the manifest PUT ends the push after 3 s


@pytest.fixture
def push_proxy(registry: Registry) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as proxy:
        yield proxy


def publish_through(proxy: FaultProxy, registry: Registry, workspace: Path, repository: str, version: str):
    """`publish --json` of `refs/tags/v<version>` through the proxy, the SDK's timeout shortened."""
    return run_cli(
        *("publish", "--image", f"{proxy.host}/{repository}", "--workspace", str(workspace), "--json"),
        *("--promote", "never", "--ref", f"refs/tags/v{version}"),
        *("--username", registry.username, "--password-stdin"),
        stdin=registry.password + "\n",
        env={TIMEOUT_ENV: SDK_TIMEOUT},
        timeout=240,
    )


def test_a_manifest_put_stalled_once_is_retried_and_lands(
    push_proxy: FaultProxy, registry: Registry, sample_app: Path
) -> None:
    push_proxy.stall(r"/manifests/2\.0\.0$", seconds=8, times=1, method="PUT")  # then forwarded: it lands late

    done = publish_through(push_proxy, registry, sample_app, "bounds/stall-once", "2.0.0")

    assert done.returncode == 0, explain(done)
    assert "Traceback" not in done.stderr
    assert "did not answer in time (nothing for 3 s" in done.stderr and "attempt 2" in done.stderr
    assert json.loads(done.stdout)["digest"] == registry.manifest_digest("bounds/stall-once", "2.0.0")


def test_a_manifest_put_that_always_stalls_is_a_failed_push_that_says_what_the_registry_holds(
    push_proxy: FaultProxy, registry: Registry, sample_app: Path
) -> None:
    push_proxy.stall(r"/manifests/2\.0\.1$", seconds=600, times=-1, method="PUT")
    started = time.monotonic()

    done = publish_through(push_proxy, registry, sample_app, "bounds/stall-always", "2.0.1")

    assert done.returncode == 1, explain(done)
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"] == "failed" and not result["pushed"]
    error = result["errors"][f"{push_proxy.host}/bounds/stall-always:2.0.1"]
    assert "did not answer in time" in error and "read back:" in error and "missing from the registry" in error
    assert registry.tags("bounds/stall-always") == []  # truthful: nothing there when it said so
    assert len(push_proxy.requests(path=r"/manifests/2\.0\.1$", method="PUT")) == PUSH_ATTEMPTS
    assert time.monotonic() - started < 150
