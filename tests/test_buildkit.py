"""BuildKit builds through `image-tagger publish` on real daemons (Engine 20.10 and 28), pushed to a real registry.

The Dockerfiles use what only BuildKit does (cache and secret mounts, heredocs, `COPY --chmod/--link`,
TARGETARCH, stages); each test reads the result back from the image, the registry or the log.
Engine 20.10's built-in Dockerfile frontend predates heredocs and `COPY --link`: those run on 28 only.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from support.cli import assert_input_error, explain, run_cli
from support.engines import Engine, EngineMissing, probe
from support.registry import Registry
from support.sample_app import git

from image_tagger.demo.sampleapp import static_busybox

SECRET = "bk-s3cret-V4lue-91x"
COMMIT_TIME = 1764110000

SETUP = """\
FROM scratch AS base
COPY --chmod=755 busybox /bin/busybox
SHELL ["/bin/busybox", "sh", "-c"]
RUN /bin/busybox mkdir -p /usr/bin && /bin/busybox --install -s /bin
"""
FEATURES = """\
ARG TARGETARCH
ARG TARGETPLATFORM
RUN echo "$TARGETARCH $TARGETPLATFORM" > /platform
RUN --mount=type=cache,target=/cache echo run >> /cache/runs && wc -l < /cache/runs > /cache-runs
RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /token-length
COPY . /ctx/
"""
NEWER_FEATURES = """\
RUN <<EOT
echo heredoc-ran > /heredoc
EOT
COPY --link --chmod=640 Dockerfile /linked
"""
STAGES = """\
FROM base AS final
RUN echo final > /stage
FROM base AS other
RUN echo other > /stage
"""


@pytest.fixture(params=["20.10", "28"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each test that asks for it runs once on Engine 20.10 and once on Engine 28."""
    try:
        return probe(request.param)
    except EngineMissing as missing:
        pytest.fail(f"{missing}; `./dev test` starts it", pytrace=False)


@pytest.fixture
def client(engine: Engine) -> Iterator[docker.DockerClient]:
    with engine.client() as client:
        yield client


@pytest.fixture
def repository(request: pytest.FixtureRequest) -> str:
    return "buildkit/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")


def make_workspace(root: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    """A committed checkout (commit time fixed) holding a static busybox and `dockerfile`."""
    busybox = static_busybox()
    assert busybox is not None, "busybox-static is needed: test images are built FROM scratch"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "busybox")
    (root / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (root / name).write_text(text)
    git(root, "init", "--quiet")
    git(root, "add", "--all")
    stamp = f"@{COMMIT_TIME} +0000"
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "--quiet", "-m", "app"],
        cwd=root,
        check=True,
        env={**os.environ, "GIT_COMMITTER_DATE": stamp, "GIT_AUTHOR_DATE": stamp},
    )
    return root


def publish(
    engine: Engine,
    workspace: Path,
    registry: Registry,
    repository: str,
    *extra: str,
    login: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`image-tagger publish --json` on `engine`, the password on stdin when logging in."""
    credentials = ("--username", registry.username, "--password-stdin") if login else ()
    return run_cli(
        "publish",
        *("--image", f"{registry.host}/{repository}", "--workspace", str(workspace), "--json"),
        *credentials,
        *extra,
        stdin=registry.password + "\n" if login else None,
        env={"DOCKER_HOST": engine.docker_host, **(env or {})},
        timeout=300,
    )


def read_file(client: docker.DockerClient, image: str, path: str) -> str:
    """A file's text from the image, read by running its busybox."""
    return client.containers.run(image, ["cat", path], remove=True).decode()


def saved_bytes(client: docker.DockerClient, image: str) -> bytes:
    """Every layer and the config as `docker save` writes them, uncompressed, for a search."""
    raw = b"".join(client.images.get(image).save(named=True))
    parts = [raw]
    with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
        for member in archive.getmembers():
            data = archive.extractfile(member)
            if data is None:
                continue
            blob = data.read()
            try:
                with tarfile.open(fileobj=io.BytesIO(blob)) as layer:
                    parts += [layer.extractfile(m).read() for m in layer.getmembers() if m.isfile()]
            except tarfile.TarError:
                parts.append(blob)
    return b"\n".join(parts)


def test_buildkit_only_dockerfile_builds_right_and_keeps_the_secret_out(
    engine: Engine, client: docker.DockerClient, registry: Registry, repository: str, tmp_path: Path
) -> None:
    newer = not engine.version.startswith("20.")
    dockerfile = SETUP + FEATURES + (NEWER_FEATURES if newer else "") + STAGES
    workspace = make_workspace(
        tmp_path / "app", dockerfile, {".dockerignore": "ignored.txt\n", "ignored.txt": "not for the image\n"}
    )
    secrets = tmp_path / "secrets"
    secrets.write_text(f"token={SECRET}\n")

    done = publish(engine, workspace, registry, repository, "--secrets-file", str(secrets), "--target", "final")

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    image = result["tags"][0]
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
    assert read_file(client, image, "/platform") == f"{arch} linux/{arch}\n"
    assert read_file(client, image, "/token-length").strip() == str(len(SECRET))  # the value, without the line break
    assert read_file(client, image, "/stage") == "final\n"  # the `target` stage, not the last one
    assert read_file(client, image, "/cache-runs").strip().isdigit()
    listing = client.containers.run(image, ["ls", "/ctx"], remove=True).decode().split()
    assert "Dockerfile" in listing and "ignored.txt" not in listing  # .dockerignore honoured
    if newer:
        assert read_file(client, image, "/heredoc") == "heredoc-ran\n"
        mode = client.containers.run(image, ["stat", "-c", "%a", "/linked"], remove=True).decode().strip()
        assert mode == "640"
    assert result["digest"] == registry.manifest_digest(repository, result["version"])
    # The secret is nowhere: not in the logs or the result, not in the image's config, history or layers.
    assert SECRET not in done.stdout + done.stderr
    assert SECRET.encode() not in saved_bytes(client, image)
    assert SECRET not in json.dumps(client.api.history(image))


def test_labels_are_written_into_the_config_without_extra_steps(
    engine: Engine, client: docker.DockerClient, registry: Registry, repository: str, tmp_path: Path
) -> None:
    workspace = make_workspace(tmp_path / "app", SETUP)
    sha = git(workspace, "rev-parse", "HEAD")

    done = publish(engine, workspace, registry, repository)

    assert done.returncode == 0, explain(done)
    image = client.images.get(json.loads(done.stdout)["tags"][0])
    labels = image.labels
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.created"] == "2025-11-25T22:33:20Z"  # the commit time
    history = [step["CreatedBy"] for step in client.api.history(image.id)]
    assert not any("LABEL" in step for step in history), history
    assert len(history) == 3  # COPY, SHELL, RUN: the Dockerfile's own steps, none for the labels


def test_a_rebuild_of_the_same_commit_gives_the_same_image_on_engine_28(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    engine = probe("28")
    # Files only, into / : a folder that COPY or RUN creates carries the build's own time on the classic store.
    workspace = make_workspace(tmp_path / "app", "FROM scratch\nCOPY busybox /\nCOPY Dockerfile /\n")
    first = publish(engine, workspace, registry, repository, "--push", "false", "--no-cache")
    second = publish(engine, workspace, registry, repository, "--push", "false", "--no-cache")
    assert first.returncode == 0 and second.returncode == 0, explain(first) + explain(second)
    with engine.client() as client:
        image = client.images.get(json.loads(first.stdout)["tags"][0])
        assert image.attrs["Created"].startswith("2025-11-25T22:33:20")  # SOURCE_DATE_EPOCH = commit time
    assert json.loads(first.stdout)["image_id"] == json.loads(second.stdout)["image_id"]


def test_a_failing_step_is_reported_with_its_last_output(
    engine: Engine, registry: Registry, repository: str, tmp_path: Path
) -> None:
    dockerfile = SETUP + "RUN echo first-line && echo went-wrong-here && exit 3\n"
    workspace = make_workspace(tmp_path / "app", dockerfile)

    done = publish(engine, workspace, registry, repository)

    assert done.returncode == 1, explain(done)
    last = done.stderr.strip().splitlines()
    failure = "\n".join(last[last.index(next(line for line in last if line.startswith("image-tagger: failed"))) :])
    assert "RUN echo first-line && echo went-wrong-here && exit 3" in failure
    assert "exit code: 3" in failure
    assert "went-wrong-here" in failure
    assert registry.tags(repository) == []


def test_private_base_images_are_pulled_with_the_given_credentials(
    engine: Engine, client: docker.DockerClient, registry: Registry, repository: str, tmp_path: Path
) -> None:
    base_workspace = make_workspace(tmp_path / "base", SETUP + "RUN echo v1 > /base-version\n")
    base = publish(engine, base_workspace, registry, repository + "-base", "--ref", "refs/tags/v1.0.0")
    assert base.returncode == 0, explain(base)
    base_ref = json.loads(base.stdout)["tags"][0]
    client.images.remove(base_ref, force=True)
    app = make_workspace(tmp_path / "app", f"FROM {base_ref}\nRUN cat /base-version > /seen\n")

    anonymous = publish(engine, app, registry, repository, "--push", "false", login=False)
    assert anonymous.returncode == 1, explain(anonymous)
    assert "401" in anonymous.stderr or "unauthorized" in anonymous.stderr.lower(), explain(anonymous)

    done = publish(engine, app, registry, repository, "--push", "false")
    assert done.returncode == 0, explain(done)
    assert read_file(client, json.loads(done.stdout)["tags"][0], "/seen") == "v1\n"
    assert registry.password not in done.stdout + done.stderr


def test_pull_takes_the_registry_base_over_the_local_one(
    engine: Engine, client: docker.DockerClient, registry: Registry, repository: str, tmp_path: Path
) -> None:
    base_workspace = make_workspace(tmp_path / "base", SETUP + "RUN echo v1 > /base-version\n")
    first = publish(engine, base_workspace, registry, repository + "-base", "--ref", "refs/tags/v1.0.0")
    assert first.returncode == 0, explain(first)
    base_ref = json.loads(first.stdout)["tags"][0]
    local_v1 = client.images.get(base_ref).id
    (base_workspace / "Dockerfile").write_text(SETUP + "RUN echo v2 > /base-version\n")
    git(base_workspace, "commit", "--quiet", "-am", "v2")
    second = publish(
        engine, base_workspace, registry, repository + "-base", "--ref", "refs/tags/v1.0.0", "--overwrite-releases"
    )
    assert second.returncode == 0, explain(second)
    app = make_workspace(tmp_path / "app", f"FROM {base_ref}\nRUN cat /base-version > /seen\n")

    fresh = publish(engine, app, registry, repository, "--push", "false", "--pull", "--no-cache")

    assert fresh.returncode == 0, explain(fresh)
    assert client.images.get(base_ref).id != local_v1  # pulled again
    assert read_file(client, json.loads(fresh.stdout)["tags"][0], "/seen") == "v2\n"


def test_no_cache_reruns_every_step(engine: Engine, registry: Registry, repository: str, tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "app", SETUP + "RUN echo once > /once\n")
    first = publish(engine, workspace, registry, repository, "--push", "false")
    cached = publish(engine, workspace, registry, repository, "--push", "false")
    uncached = publish(engine, workspace, registry, repository, "--push", "false", "--no-cache")
    assert all(d.returncode == 0 for d in (first, cached, uncached)), explain(uncached)
    assert re.search(r"^#\d+ CACHED", cached.stderr, re.M), cached.stderr
    assert not re.search(r"^#\d+ CACHED", uncached.stderr, re.M), uncached.stderr


def test_multi_platform_needs_the_containerd_image_store(
    engine: Engine, registry: Registry, repository: str, tmp_path: Path
) -> None:
    workspace = make_workspace(tmp_path / "app", "FROM scratch\nCOPY Dockerfile /\n")

    done = publish(engine, workspace, registry, repository, "--platforms", "linux/amd64,linux/arm64")

    assert done.returncode == 1, explain(done)
    assert "containerd image store" in done.stderr.splitlines()[-1], explain(done)
    assert registry.tags(repository) == []


def test_cache_export_needs_the_containerd_image_store(
    engine: Engine, registry: Registry, repository: str, tmp_path: Path
) -> None:
    workspace = make_workspace(tmp_path / "app", "FROM scratch\nCOPY Dockerfile /\n")
    cache = f"type=registry,ref={registry.host}/{repository}:buildcache,mode=max"

    done = publish(engine, workspace, registry, repository, "--cache-to", cache)

    assert done.returncode == 1, explain(done)
    assert "containerd image store" in done.stderr.splitlines()[-1], explain(done)
    assert registry.tags(repository) == []


def test_a_multi_platform_index_and_registry_cache_on_the_containerd_store(
    registry: Registry, repository: str, tmp_path: Path
) -> None:
    engine = probe("28-containerd")
    workspace = make_workspace(tmp_path / "app", SETUP + "COPY Dockerfile /\n")
    cache = f"{registry.host}/{repository}-cache:buildcache"

    done = publish(
        engine,
        workspace,
        registry,
        repository,
        *("--platforms", "linux/amd64,linux/arm64"),
        *("--cache-to", f"type=registry,ref={cache},mode=max"),
    )

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    index = registry.manifest(repository, result["version"])
    platforms = {
        f"{m['platform']['os']}/{m['platform']['architecture']}"
        for m in index.get("manifests", [])
        if m.get("platform", {}).get("os") != "unknown"
    }
    assert platforms == {"linux/amd64", "linux/arm64"}, index
    assert result["digest"] == registry.manifest_digest(repository, result["version"])
    assert registry.tags(repository + "-cache") == ["buildcache"]
    with engine.client() as client:
        client.images.remove(result["tags"][0], force=True)
        client.api.prune_builds(all=True)
    again = publish(
        engine,
        workspace,
        registry,
        repository,
        *("--push", "false", "--platforms", "linux/amd64", "--cache-from", f"type=registry,ref={cache}"),
    )
    assert again.returncode == 0, explain(again)
    assert re.search(r"^#\d+ CACHED", again.stderr, re.M), again.stderr


def test_the_legacy_builder_runs_only_when_asked(
    engine: Engine, client: docker.DockerClient, registry: Registry, repository: str, tmp_path: Path
) -> None:
    workspace = make_workspace(tmp_path / "app", "FROM scratch\nCOPY busybox /bin/busybox\n")
    secrets = tmp_path / "secrets"
    secrets.write_text(f"token={SECRET}\n")

    legacy = publish(engine, workspace, registry, repository, "--builder", "legacy", "--push", "false")
    refused = publish(engine, workspace, registry, repository, "--builder", "legacy", "--secrets-file", str(secrets))
    no_buildx_path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "docker-buildx").exists()
    )
    missing = publish(
        engine, workspace, registry, repository, "--push", "false", env={"PATH": no_buildx_path, "HOME": str(tmp_path)}
    )

    assert legacy.returncode == 0, explain(legacy)
    history = client.api.history(json.loads(legacy.stdout)["tags"][0])
    assert not any("buildkit" in (step.get("Comment") or "") for step in history)
    assert_input_error(refused, "secrets", "BuildKit")
    assert SECRET not in refused.stderr
    assert missing.returncode == 1, explain(missing)
    assert "buildx" in missing.stderr and "builder: legacy" in missing.stderr, explain(missing)


@pytest.mark.parametrize("builder", ["buildkit", "legacy"])
def test_a_single_platform_push_on_the_containerd_store(
    builder: str, registry: Registry, repository: str, tmp_path: Path
) -> None:
    """The containerd image store cannot tag by image id: pushes retag from the run's own build tag."""
    engine = probe("28-containerd")
    workspace = make_workspace(tmp_path / "app", "FROM scratch\nCOPY busybox /bin/busybox\n")

    done = publish(
        engine,
        workspace,
        registry,
        f"{repository}-{builder}",
        "--builder",
        builder,
        "--floating-tags",
        "--ref",
        "refs/tags/v1.0.0",
        "--promote",
        "never",
    )

    assert done.returncode == 0, explain(done)
    result = json.loads(done.stdout)
    digests = {registry.manifest_digest(f"{repository}-{builder}", tag) for tag in ("1.0.0", "1.0", "1", "latest")}
    assert digests == {result["digest"]}
    with engine.client() as client:
        local = {tag for image in client.images.list() for tag in image.tags}
    assert not any("image-tagger-build-" in tag for tag in local)  # the run's own tag is gone again
