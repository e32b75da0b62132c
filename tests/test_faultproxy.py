"""The fault proxy itself: transparent for a real Docker push and pull, and each fault does what it says."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator

import docker
import pytest
import requests
from support.faultproxy import FaultProxy, fault_proxy
from support.registry import Registry

REPOSITORY = "faultproxy/app"


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as p:
        yield p


@pytest.fixture
def open_proxy(open_registry: Registry) -> Iterator[FaultProxy]:
    with fault_proxy(open_registry.host) as p:
        yield p


def build_context() -> io.BytesIO:
    """FROM scratch with a 3 MiB random file: a layer big enough for a multi-write upload."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY payload /payload\n"), ("payload", os.urandom(3 << 20))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def test_docker_push_and_pull_through_the_proxy(
    docker_client: docker.DockerClient, registry: Registry, proxy: FaultProxy
) -> None:
    image, _ = docker_client.images.build(fileobj=build_context(), custom_context=True, rm=True)
    ref = f"{proxy.host}/{REPOSITORY}"
    image.tag(ref, "1.0.0")
    auth = {"username": registry.username, "password": registry.password}

    events = list(docker_client.images.push(ref, "1.0.0", auth_config=auth, stream=True, decode=True))

    assert not [e for e in events if "error" in e], events
    assert registry.tags(REPOSITORY) == ["1.0.0"]
    digest = next(e["aux"]["Digest"] for e in events if "aux" in e)
    assert registry.manifest_digest(REPOSITORY, "1.0.0") == digest
    methods = {s.method for s in proxy.requests(REPOSITORY)}
    assert {"HEAD", "POST", "PUT"} <= methods, methods  # blob checks, upload sessions, manifest
    assert proxy.requests(r"/blobs/uploads/", "PATCH") or proxy.requests(r"/blobs/uploads/.*digest=", "PUT")

    docker_client.images.remove(f"{ref}:1.0.0")
    pulled = docker_client.images.pull(ref, "1.0.0", auth_config=auth)
    assert pulled.id == image.id
    docker_client.images.remove(f"{ref}:1.0.0")


def test_faults_apply_by_rule_and_count(open_registry: Registry, open_proxy: FaultProxy) -> None:
    open_registry.seed(REPOSITORY, ["1.0.0"])
    url = f"http://{open_proxy.host}/v2/{REPOSITORY}/tags/list"
    open_proxy.status(r"/tags/list", 429, times=1, headers={"Retry-After": "3"})
    open_proxy.drop(r"/tags/list", times=1)

    first = requests.get(url, timeout=10)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=10)
    assert requests.get(url, timeout=10).json()["tags"] == ["1.0.0"]
    assert len(open_proxy.requests(r"/tags/list")) == 3


def test_link_elsewhere_and_echo(open_registry: Registry, open_proxy: FaultProxy) -> None:
    open_registry.seed(REPOSITORY, ["1.0.0"])
    url = f"http://{open_proxy.host}/v2/{REPOSITORY}/tags/list"
    open_proxy.link_elsewhere(r"/tags/list")
    open_proxy.echo_authorization(r"/tags/list", status=400)

    linked = requests.get(url, timeout=10)
    assert linked.links["next"]["url"].startswith(f"http://{open_proxy.elsewhere.host}/")
    assert open_proxy.elsewhere.host.startswith("127.0.0.2:")
    requests.get(linked.links["next"]["url"], headers={"Authorization": "Basic Zm9vOmJhcg=="}, timeout=10)
    assert [s.header("Authorization") for s in open_proxy.elsewhere.seen] == ["Basic Zm9vOmJhcg=="]
    echoed = requests.get(url, headers={"Authorization": "Bearer tok"}, timeout=10)
    assert echoed.status_code == 400 and "Bearer tok" in echoed.text
