"""A throw-away registry on a free loopback port, for the demo and the tests.

Debian's `docker-registry` when installed (no image pull needed), else a `registry:2` container,
so the demo also runs on a laptop with Docker Desktop.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import requests

from image_tagger.edges.childenv import child_env
from image_tagger.model.errors import PublishError

REGISTRY_IMAGE = "registry:2"


@dataclass(frozen=True)
class LocalRegistry:
    host: str
    log: Path


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def htpasswd_auth(path: Path) -> str:
    """The `auth:` section for an htpasswd file of bcrypt entries (`htpasswd -Bbn`)."""
    return f"auth:\n  htpasswd:\n    realm: flux-ci-cd\n    path: {path}\n"


def config_text(storage: Path, address: str, auth: str = "") -> str:
    """distribution 2.x config: filesystem storage, one listen address, an optional `auth:` section."""
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n"
        f"{auth}"
    )


def _wait_ready(host: str, alive, log: Path, expected: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and alive():
        try:
            if requests.get(f"http://{host}/v2/", timeout=1).status_code == expected:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    raise PublishError(f"local registry on {host} did not start: {tail.strip() or 'no log'}")


@contextmanager
def serve(root: Path, auth: str = "") -> Iterator[LocalRegistry]:
    """Run a registry storing under `root` until the block ends; `auth` is a config `auth:` section."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "registry.log"
    binary = shutil.which("docker-registry")
    expected = 401 if auth else 200
    if binary:
        config = root / "config.yml"
        config.write_text(config_text(root / "data", f"127.0.0.1:{port}", auth))
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [binary, "serve", str(config)], env=child_env(), stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            _wait_ready(f"127.0.0.1:{port}", lambda: process.poll() is None, log, expected)
            yield LocalRegistry(f"127.0.0.1:{port}", log)
        finally:
            process.terminate()
            process.wait(timeout=10)
        return
    if auth:
        raise PublishError("a registry with auth needs Debian's docker-registry (apt-get install docker-registry)")
    yield from _serve_container(port, log)


def _serve_container(port: int, log: Path) -> Iterator[LocalRegistry]:
    """Fallback without docker-registry: the official image, published on loopback only."""
    client = docker.from_env()
    container = client.containers.run(REGISTRY_IMAGE, detach=True, remove=True, ports={"5000/tcp": ("127.0.0.1", port)})
    try:
        _wait_ready(f"127.0.0.1:{port}", lambda: True, log, 200)
        yield LocalRegistry(f"127.0.0.1:{port}", log)
    finally:
        container.stop(timeout=5)
