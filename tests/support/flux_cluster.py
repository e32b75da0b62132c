"""Driving the real cluster of `./dev cluster up` from tests: kubectl, bounded waits, git with a fixed identity.

The fixtures (`cluster_bin_dir`, `running`) live in tests/conftest.py so test_cluster.py and
test_differential.py share them; each module gets its own cluster (the modules leave objects behind).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable

from image_tagger.demo import cluster
from support.cli import explain

RECONCILE_SECONDS = 90
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
GIT_ENV |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def kubectl(info: cluster.ClusterInfo, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    done = subprocess.run(
        [info.kubectl, f"--kubeconfig={info.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, explain(done)
    return done.stdout


def wait_for(info: cluster.ClusterInfo, kind: str, name: str, ready: Callable[[dict], bool]) -> dict:
    """The object once `ready(object)` holds; fails with its status after RECONCILE_SECONDS."""
    deadline = time.monotonic() + RECONCILE_SECONDS
    while True:
        found = json.loads(kubectl(info, "--namespace=flux-system", "get", kind, name, "--output=json"))
        if ready(found):
            return found
        assert time.monotonic() < deadline, f"{kind}/{name} not ready: {json.dumps(found.get('status'))}"
        time.sleep(0.5)


def ready_status(found: dict) -> str | None:
    """The Ready condition's status ("True", "False", "Unknown") for the object's current generation."""
    status = found.get("status", {})
    for condition in status.get("conditions", []):
        if condition["type"] == "Ready" and condition.get("observedGeneration") == found["metadata"]["generation"]:
            return condition["status"]
    return None


def condition_ready(found: dict) -> bool:
    return ready_status(found) == "True"


def git(*args: str, strip: bool = True) -> str:
    done = subprocess.run(
        ["git", *args], capture_output=True, text=True, env={**os.environ, **GIT_ENV}, timeout=30, check=False
    )
    assert done.returncode == 0, explain(done)
    return done.stdout.strip() if strip else done.stdout
