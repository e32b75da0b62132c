"""Pushes through a fault-injecting proxy in front of the real registry: transient faults are survived,
persistent ones fail quickly, and the result says exactly which tags reached the registry."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import explain, run_cli
from support.faultproxy import FaultProxy, fault_proxy
from support.registry import Registry
from support.sample_app import git


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as p:
        yield p


@pytest.fixture
def repository(request: pytest.FixtureRequest) -> str:
    return "faults/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")


def publish(
    proxy: FaultProxy, registry: Registry, workspace: Path, repository: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "publish",
        *("--image", f"{proxy.host}/{repository}", "--workspace", str(workspace), "--json", "--promote", "never"),
        *("--username", registry.username, "--password-stdin", *extra),
        stdin=registry.password + "\n",
        timeout=300,
    )


def manifest_puts(proxy: FaultProxy, tag: str) -> int:
    return len(proxy.requests(path=f"/manifests/{tag}$", method="PUT"))


def test_one_503_on_the_manifest_put_is_retried(
    proxy: FaultProxy, registry: Registry, sample_app: Path, repository: str
) -> None:
    proxy.status(r"/manifests/1\.0\.0$", 503, times=1, method="PUT")

    done = publish(proxy, registry, sample_app, repository, "--ref", "refs/tags/v1.0.0")

    assert done.returncode == 0, explain(done)
    assert json.loads(done.stdout)["digest"] == registry.manifest_digest(repository, "1.0.0")
    assert manifest_puts(proxy, r"1\.0\.0") == 2
    assert "attempt 2" in done.stderr


def test_a_429_with_retry_after_is_honoured(
    proxy: FaultProxy, registry: Registry, sample_app: Path, repository: str
) -> None:
    proxy.status(r"/manifests/1\.0\.1$", 429, times=1, method="PUT", headers={"Retry-After": "1"})

    done = publish(proxy, registry, sample_app, repository, "--ref", "refs/tags/v1.0.1")

    assert done.returncode == 0, explain(done)
    assert registry.tags(repository) == ["1.0.1"]


def test_a_persistent_fault_fails_quickly_and_says_what_was_pushed(
    proxy: FaultProxy, registry: Registry, sample_app: Path, repository: str
) -> None:
    proxy.status(r"/manifests/1$", 503, times=-1, method="PUT")
    started = time.monotonic()

    done = publish(proxy, registry, sample_app, repository, "--ref", "refs/tags/v1.4.2", "--floating-tags")

    took = time.monotonic() - started
    assert done.returncode == 1, explain(done)
    result = json.loads(done.stdout)
    states = {ref.rsplit(":", 1)[1]: state for ref, state in result["tag_states"].items()}
    assert states == {"1.4.2": "pushed", "1.4": "pushed", "1": "failed", "latest": "not pushed"}
    assert result["digest"] == registry.manifest_digest(repository, "1.4.2")
    assert sorted(registry.tags(repository)) == ["1.4", "1.4.2"]
    last = done.stderr.strip().splitlines()[-1]
    assert f"{proxy.host}/{repository}:1:" in last and "not pushed:" in last and ":latest" in last, last
    assert took < 60, took  # retries are bounded (printed, not a timing assertion of the build)
    print(f"persistent 503: failed after {took:.1f}s")


def test_a_dropped_connection_is_retried(
    proxy: FaultProxy, registry: Registry, sample_app: Path, repository: str
) -> None:
    proxy.drop(r"/manifests/1\.0\.2$", times=1, method="PUT")

    done = publish(proxy, registry, sample_app, repository, "--ref", "refs/tags/v1.0.2")

    assert done.returncode == 0, explain(done)
    assert registry.tags(repository) == ["1.0.2"]
    assert git(sample_app, "rev-parse", "HEAD") in json.dumps(registry.labels(repository, "1.0.2"))
