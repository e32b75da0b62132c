"""The Docker Engines `./dev test` runs for the suite: Debian bookworm's 20.10 and Engine 28 from sid's packages,
the latter twice (classic image store, containerd image store). Each is announced by one environment variable."""

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import docker

# name -> (environment variable with its unix:// socket, containerd image store)
ENGINE_VARS = {
    "20.10": ("FCI_DOCKER_HOST_20", False),
    "28": ("FCI_DOCKER_HOST_28", False),
    "28-containerd": ("FCI_DOCKER_HOST_28C", True),
}


@dataclass(frozen=True)
class Engine:
    """One running daemon: `docker_host` is what DOCKER_HOST (or `base_url`) must be set to for it."""

    name: str
    docker_host: str
    version: str
    containerd_store: bool

    @contextlib.contextmanager
    def client(self) -> Iterator[docker.DockerClient]:
        """`with engine.client() as client:` a Docker SDK client for this daemon, closed afterwards."""
        client = client_for(self)
        try:
            yield client
        finally:
            client.close()

    def env(self, **extra: str) -> dict[str, str]:
        """os.environ with DOCKER_HOST pointing at this daemon, for subprocesses (docker-buildx, the CLI)."""
        return {**os.environ, "DOCKER_HOST": self.docker_host, **extra}


def client_for(engine: Engine) -> docker.DockerClient:
    """A Docker SDK client for `engine`'s daemon."""
    return docker.DockerClient(base_url=engine.docker_host)


class EngineMissing(Exception):
    """An engine is not configured or does not answer; the message says which and why."""


def probe(name: str) -> Engine:
    """The engine `name` as configured in the environment, asking the daemon for its version."""
    variable, containerd_store = ENGINE_VARS[name]
    docker_host = os.environ.get(variable, "")
    if not docker_host:
        raise EngineMissing(f"Docker Engine {name}: {variable} is not set")
    try:
        with contextlib.closing(docker.DockerClient(base_url=docker_host)) as client:
            version = client.version()["Version"]
    except docker.errors.DockerException as error:
        raise EngineMissing(f"Docker Engine {name}: no daemon answers at {docker_host} ({error})") from error
    return Engine(name, docker_host, version, containerd_store)


def configured_engines() -> list[Engine]:
    """All engines of ENGINE_VARS, in that order; raises EngineMissing naming every one that is missing."""
    engines, problems = [], []
    for name in ENGINE_VARS:
        try:
            engines.append(probe(name))
        except EngineMissing as missing:
            problems.append(str(missing))
    if problems:
        raise EngineMissing("; ".join(problems))
    return engines
