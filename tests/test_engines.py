"""The test machine's Docker Engines, as `./dev test` sets them up: each answers with the expected version and
image store, and the standalone `docker-buildx` on PATH builds with BuildKit on every one of them."""

import io
import subprocess
import tarfile
from pathlib import Path

import docker
import pytest
from support.engines import Engine

pytestmark = pytest.mark.real  # the daemons and buildx themselves

SNAPSHOTTER = ["driver-type", "io.containerd.snapshotter.v1"]
ENGINE_FIXTURES = {"20.10": "engine20", "28": "engine28", "28-containerd": "engine28_containerd"}


@pytest.fixture(params=list(ENGINE_FIXTURES))
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(ENGINE_FIXTURES[request.param])


def test_all_three_engines_answer(engines: list[Engine]) -> None:
    assert [engine.name for engine in engines] == ["20.10", "28", "28-containerd"]
    for engine in engines:
        with engine.client() as client:
            assert client.ping()


def test_versions_and_image_stores(engine20: Engine, engine28: Engine, engine28_containerd: Engine) -> None:
    assert engine20.version.startswith("20.10.")
    assert engine28.version.startswith("28.")
    assert engine28_containerd.version.startswith("28.")
    with engine28.client() as client:
        assert SNAPSHOTTER not in client.info()["DriverStatus"]
    with engine28_containerd.client() as client:
        assert SNAPSHOTTER in client.info()["DriverStatus"]


def test_default_docker_host_is_engine_20(engine20: Engine, docker_client: docker.DockerClient) -> None:
    assert docker_client.version()["Version"] == engine20.version


def test_buildx_on_path_is_0_29() -> None:
    result = subprocess.run(["docker-buildx", "version"], capture_output=True, text=True, check=True)
    assert "0.29." in result.stdout


def test_buildkit_builds_on_each_engine(engine: Engine, tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text(f"hello {engine.name}\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\nLABEL fci.engine-test=yes\n")
    tag = f"flux-ci-cd-test/engine-check:{engine.name}"
    build = ["docker-buildx", "build", "--load", "--progress=plain", "-t", tag, str(context)]
    result = subprocess.run(build, capture_output=True, text=True, env=engine.env(DOCKER_CONFIG=str(tmp_path / "cfg")))
    assert result.returncode == 0, result.stderr
    with engine.client() as client:
        image = client.images.get(tag)
        assert image.labels["fci.engine-test"] == "yes"
        container = client.containers.create(tag, command=["/nothing"])
        try:
            stream, _ = container.get_archive("/hello.txt")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.extractfile("hello.txt")
                assert member is not None and member.read() == f"hello {engine.name}\n".encode()
        finally:
            container.remove()
            client.images.remove(tag)
