"""The session's registry fixtures take a real Docker push (the harness the e2e tests stand on)."""

import json
from pathlib import Path

import docker
import pytest
from support.registry import Registry


def push_sample(docker_client: docker.DockerClient, registry: Registry, sample_app: Path) -> str:
    """Build the sample app, push it as fixture/sample:0.0.1 and return the digest the daemon reported."""
    reference = f"{registry.host}/fixture/sample"
    if registry.username:
        docker_client.login(registry.username, registry.password, registry=registry.host)
    image, _ = docker_client.images.build(
        path=str(sample_app), tag=f"{reference}:0.0.1", buildargs={"VERSION": "0.0.1"}
    )
    assert image.attrs["Config"]["Entrypoint"][:2] == ["/bin/busybox", "httpd"]
    pushed = [json.loads(line) for line in docker_client.images.push(reference, tag="0.0.1").splitlines()]
    return next(item["aux"]["Digest"] for item in pushed if "aux" in item)


@pytest.mark.parametrize("fixture", ["registry", "open_registry"])
def test_registry_fixtures_serve_pushes(
    fixture: str, request: pytest.FixtureRequest, docker_client: docker.DockerClient, sample_app: Path
) -> None:
    registry = request.getfixturevalue(fixture)

    reported = push_sample(docker_client, registry, sample_app)

    assert registry.tags("fixture/sample") == ["0.0.1"]
    assert registry.manifest_digest("fixture/sample", "0.0.1") == reported
    assert registry.tags("fixture/never-pushed") == []
