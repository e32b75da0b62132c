"""A local stand-in for Docker's `docker/buildx-bin` image (Docker Hub is unreachable here): FROM scratch with the
buildx binary at `/buildx`, made from the `docker-buildx` that `./dev test` puts on PATH (Debian sid's build).

The action's Dockerfile takes `--build-arg BUILDX_IMAGE=<tag>` and copies `/buildx` out of it.
"""

import contextlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker

BUILDX_VERSION = "0.29.1"
TAG = f"flux-ci-cd-test/buildx-bin:{BUILDX_VERSION}"


class BuildxMissing(Exception):
    """No docker-buildx on PATH; `./dev test` provides one."""


def buildx_binary() -> Path:
    """The real file behind `docker-buildx` on PATH (./dev puts a symlink there)."""
    found = shutil.which("docker-buildx")
    if found is None:
        raise BuildxMissing("docker-buildx is not on PATH; `./dev test` puts Debian sid's buildx there")
    return Path(found).resolve()


def buildx_version(binary: Path) -> str:
    """`docker-buildx version`'s first line, e.g. `github.com/docker/buildx 0.29.1 ...`."""
    result = subprocess.run([str(binary), "version"], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def rootfs_tar(binary: Path, into: Path) -> Path:
    """A tar with just `buildx` (0755, root-owned), the layout of docker/buildx-bin."""
    tarball = into / "buildx-bin.tar"
    with tarfile.open(tarball, "w") as tar:
        info = tar.gettarinfo(str(binary), arcname="buildx")
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o755
        info.mtime = int(info.mtime)
        with binary.open("rb") as data:
            tar.addfile(info, data)
    return tarball


def ensure_buildx_image(docker_host: str, tag: str = TAG) -> str:
    """Return `tag`, importing it into the daemon at `docker_host` only when that daemon lacks it."""
    with contextlib.closing(docker.DockerClient(base_url=docker_host)) as client:
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
        binary = buildx_binary()
        with tempfile.TemporaryDirectory(prefix="buildx-bin-") as tmp:
            tarball = rootfs_tar(binary, Path(tmp))
            repository, _, version = tag.rpartition(":")
            # A file path makes the SDK send the tar as the request body, like `docker import <file>`.
            client.api.import_image(src=str(tarball), repository=repository, tag=version)
        client.images.get(tag)  # raises with the daemon's reason if the import did not produce the tag
    return tag
