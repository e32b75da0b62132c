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

import requests

from image_tagger.errors import PublishError

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


def config_text(storage: Path, port: int, htpasswd: Path | None) -> str:
    """distribution 2.x config: filesystem storage, loopback only, optional htpasswd (bcrypt) auth."""
    auth = f"auth:\n  htpasswd:\n    realm: flux-ci-cd\n    path: {htpasswd}\n" if htpasswd else ""
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
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
def serve(root: Path, htpasswd: Path | None = None) -> Iterator[LocalRegistry]:
    """Run a registry storing under `root` until the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "registry.log"
    binary = shutil.which("docker-registry")
    expected = 401 if htpasswd else 200
    if binary:
        config = root / "config.yml"
        config.write_text(config_text(root / "data", port, htpasswd))
        with log.open("wb") as sink:
            process = subprocess.Popen([binary, "serve", str(config)], stdout=sink, stderr=subprocess.STDOUT)
        try:
            _wait_ready(f"127.0.0.1:{port}", lambda: process.poll() is None, log, expected)
            yield LocalRegistry(f"127.0.0.1:{port}", log)
        finally:
            process.terminate()
            process.wait(timeout=10)
        return
    yield from _serve_container(root, port, htpasswd, log, expected)


def _serve_container(root: Path, port: int, htpasswd: Path | None, log: Path, expected: int):
    """Fallback without docker-registry: the official image, published on loopback only."""
    import docker

    client = docker.from_env()
    config = root / "config.yml"
    mounted = Path("/etc/docker/registry/htpasswd") if htpasswd else None
    config.write_text(config_text(Path("/var/lib/registry"), 5000, mounted).replace("127.0.0.1:5000", ":5000"))
    volumes = {str(config): {"bind": "/etc/docker/registry/config.yml", "mode": "ro"}}
    if htpasswd:
        volumes[str(htpasswd)] = {"bind": str(mounted), "mode": "ro"}
    container = client.containers.run(
        REGISTRY_IMAGE, detach=True, remove=True, ports={"5000/tcp": ("127.0.0.1", port)}, volumes=volumes
    )
    try:
        _wait_ready(f"127.0.0.1:{port}", lambda: True, log, expected)
        yield LocalRegistry(f"127.0.0.1:{port}", log)
    finally:
        container.stop(timeout=5)
