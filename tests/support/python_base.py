"""Build a local Python base image from Debian packages, because Docker Hub (python:3.12-slim) is unreachable.

Debian trixie, like python:3.12-slim (Debian 13); its interpreter is trixie's python3 (3.13), not a 3.12 build.

Stdlib only, so `.ci/run` can prebuild it with the system python: `python3 tests/support/python_base.py`.
"""

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = "trixie"
TAG = f"flux-ci-cd-test/python-base:{SUITE}"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PACKAGES = "python3,python3-pip,python3-venv,python-is-python3,ca-certificates"
# What python:*-slim users expect: pip may install into the system interpreter, output unbuffered.
IMAGE_CHANGES = (
    "ENV PIP_BREAK_SYSTEM_PACKAGES=1",
    "ENV PYTHONUNBUFFERED=1",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)


def docker_env(docker_host: str | None) -> dict[str, str] | None:
    """The environment for `docker` commands against `docker_host` (None: DOCKER_HOST as it is)."""
    return None if docker_host is None else {**os.environ, "DOCKER_HOST": docker_host}


def image_exists(tag: str, docker_host: str | None = None) -> bool:
    """True when the daemon already has `tag` (the build is slow, so it is made once per daemon)."""
    inspect = ["docker", "image", "inspect", tag]
    return subprocess.run(inspect, capture_output=True, env=docker_env(docker_host)).returncode == 0


def mmdebstrap_argv(tarball: Path) -> list[str]:
    """The rootfs build; the host CA bundle goes in so pip inside image builds trusts this network's proxy."""
    copy_ca = f'cp {shlex.quote(str(HOST_CA_BUNDLE))} "$1/etc/ssl/certs/ca-certificates.crt"'
    hooks = ["--customize-hook", copy_ca] if HOST_CA_BUNDLE.is_file() else []
    return ["mmdebstrap", "--variant=apt", f"--include={PACKAGES}", *hooks, SUITE, str(tarball)]


def ensure_python_base(tag: str = TAG, docker_host: str | None = None) -> str:
    """Return `tag`, building it with mmdebstrap + `docker import` only when the daemon lacks it."""
    if image_exists(tag, docker_host):
        return tag
    with tempfile.TemporaryDirectory(prefix="pybase-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(mmdebstrap_argv(tarball), check=True, stdout=subprocess.DEVNULL)
        changes = [arg for change in IMAGE_CHANGES for arg in ("-c", change)]
        docker_import = ["docker", "import", *changes, str(tarball), tag]
        subprocess.run(docker_import, check=True, stdout=subprocess.DEVNULL, env=docker_env(docker_host))
    return tag


if __name__ == "__main__":
    started = time.monotonic()
    print(
        f"python base image {ensure_python_base()} ready in {time.monotonic() - started:.0f}s",
        file=sys.stderr,
    )
