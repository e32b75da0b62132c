"""Session fixtures built from real parts: our dockerds, a real `docker-registry`, a real git workspace.

Two tiers: `pytest --fast` (`./dev test --fast`) runs only the tests that need none of those parts, fenced by
tests/support/fastguard.py; plain `pytest` runs everything.
"""

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from support import fastguard
from support.cli import explain
from support.engines import Engine, EngineMissing, configured_engines, probe
from support.python_base import ensure_python_base
from support.registry import Registry, serve_registry
from support.sample_app import make_sample_app

from image_tagger.demo import cluster

# The fixtures that start or need a real part (a daemon, a registry process, the cluster's binaries, kustomize for
# the overlays rendered from flux_url): a test requesting one, even through another fixture, is not fast.
REAL_PARTS = frozenset(
    {
        "flux_url",
        "docker_client",
        "registry_binary",
        "registry",
        "open_registry",
        "python_base_image",
        "engines",
        "engine20",
        "engine28",
        "engine28_containerd",
        "cluster_bin_dir",
        "running",
        "cosign",
    }
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="only the fast tier: no Docker daemon, no registry process, no binaries but git, no network",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fast: set by tests/conftest.py on every test that needs no real part")
    config.addinivalue_line(
        "markers", "real: needs a real part (a daemon, a binary, the network) though it requests no real-part fixture"
    )
    config.addinivalue_line("markers", "slow: needs no real part but takes seconds (it waits out a deadline)")
    if config.getoption("fast"):
        fastguard.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.getoption("fast"):
        os.unlink(os.environ[fastguard.VIOLATIONS])


def is_fast(item: pytest.Item) -> bool:
    """Fast unless it is marked real or slow, or requests a real part, directly or through another fixture."""
    marked = item.get_closest_marker("real") or item.get_closest_marker("slow")
    return marked is None and not REAL_PARTS & set(getattr(item, "fixturenames", ()))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the fast tier (so `-m "not fast"` selects the rest) and, under --fast, keeps only it."""
    for item in items:
        if is_fast(item):
            item.add_marker(pytest.mark.fast)
    if config.getoption("fast"):
        config.hook.pytest_deselected(items=[item for item in items if not is_fast(item)])
        items[:] = [item for item in items if is_fast(item)]


def refusals_fail(item: pytest.Item) -> Iterator[None]:
    """In the fast tier, a refusal anywhere in the test's process tree fails it, even one the code caught."""
    outcome = yield
    if item.config.getoption("fast") and (found := fastguard.violations()):
        outcome.force_exception(fastguard.FastTierViolation("\n".join(found)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from refusals_fail(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from refusals_fail(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from refusals_fail(item)


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest) -> None:
    """A real part asked for at run time (request.getfixturevalue) in the fast tier fails instead of starting."""
    if fixturedef.argname in REAL_PARTS and request.config.getoption("fast"):
        raise fastguard.refuse(f"the fixture {fixturedef.argname!r} starts a real part")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client for the daemon at DOCKER_HOST; fails (not skips) the requesting tests when none answers."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        reason = f"no Docker daemon answers at {where} ({type(error).__name__}); `./dev test` starts one"
        pytest.fail(reason, pytrace=False)
    before = {image.id for image in client.images.list()}
    yield client
    # Images the tests built for loopback registries would pile up in a long-lived daemon.
    for image in client.images.list():
        if image.id not in before and any(tag.startswith("127.0.0.1:") for tag in image.tags):
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(image.id, force=True)


@pytest.fixture(scope="session")
def registry_binary() -> str:
    """Debian's docker-registry; there is no registry:2 fallback because Docker Hub is unreachable."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail(
            "docker-registry not installed (apt-get install docker-registry); `.ci/run` installs it", pytrace=False
        )
    return binary


@pytest.fixture(scope="session")
def registry(registry_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry requiring HTTP Basic login as `ci-bot` (the action's login path)."""
    with serve_registry(tmp_path_factory.mktemp("registry"), "ci-bot", "s3cr3t-Pa55-4-tests") as r:
        yield r


@pytest.fixture(scope="session")
def open_registry(registry_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry without auth (anonymous push)."""
    with serve_registry(tmp_path_factory.mktemp("open-registry")) as r:
        yield r


@pytest.fixture
def sample_app(tmp_path: Path) -> Path:
    """A committed app workspace with a FROM scratch Dockerfile, at the runner's `<work>/repo/repo` depth."""
    workspace = tmp_path / "repo" / "repo"
    make_sample_app(workspace)
    return workspace


@pytest.fixture(scope="session")
def python_base_image(docker_client: docker.DockerClient) -> str:
    """The local stand-in for python:3.12-slim, built once per daemon (mmdebstrap + docker import)."""
    return ensure_python_base()


def _engine_or_fail(name: str) -> Engine:
    try:
        return probe(name)
    except EngineMissing as missing:
        pytest.fail(f"{missing}; `./dev test` starts the 20.10 and both Engine 28 daemons", pytrace=False)


@pytest.fixture(scope="session")
def engines() -> list[Engine]:
    """Every daemon `./dev test` runs (20.10, 28, 28-containerd); fails (not skips) when one is missing."""
    try:
        return configured_engines()
    except EngineMissing as missing:
        pytest.fail(f"{missing}; `./dev test` starts the 20.10 and both Engine 28 daemons", pytrace=False)


@pytest.fixture(scope="session")
def engine20() -> Engine:
    """Debian bookworm's Engine 20.10, the default DOCKER_HOST."""
    return _engine_or_fail("20.10")


@pytest.fixture(scope="session")
def engine28() -> Engine:
    """Engine 28 (Debian sid's packages) with the classic image store."""
    return _engine_or_fail("28")


@pytest.fixture(scope="session")
def engine28_containerd() -> Engine:
    """Engine 28 with the containerd image store: multi-platform images, registry cache export."""
    return _engine_or_fail("28-containerd")


# A release waits this long after pushing its tag before checking it again (publish.RELEASE_SETTLE_SECONDS is
# 10 s): the suite's releases race nobody but test_release_race, which sets its own.
os.environ.setdefault("IMAGE_TAGGER_RELEASE_SETTLE", "0.2")


CLUSTER_BUILD_SECONDS = 3600  # a cold build measured 22 minutes on 2 busy cores


@pytest.fixture(scope="session")
def cluster_bin_dir() -> Path:
    """The real etcd, kube-apiserver, kubectl and Flux controllers; `cluster/build` builds what is missing."""
    done = subprocess.run(
        [Path(__file__).resolve().parents[1] / "cluster" / "build"],
        capture_output=True,
        text=True,
        timeout=CLUSTER_BUILD_SECONDS,
        check=False,
    )
    assert done.returncode == 0, explain(done)
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def cosign() -> Path:
    """The pinned cosign (tools/cosign), built once from the Go module proxy: the judge of our signatures."""
    done = subprocess.run(
        [Path(__file__).resolve().parents[1] / "tools" / "cosign" / "build"],
        capture_output=True,
        text=True,
        timeout=CLUSTER_BUILD_SECONDS,
        check=False,
    )
    assert done.returncode == 0, explain(done)
    return Path(done.stdout.strip().splitlines()[-1]) / "cosign"


@pytest.fixture(scope="module")
def running(cluster_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ClusterInfo]:
    """A whole local cluster for one test module, stopped after it."""
    state = tmp_path_factory.mktemp("cluster")
    info, already = cluster.up(state, cluster_bin_dir)
    assert not already
    yield info
    cluster.down(state)
