"""Build a local Python base image from Debian packages, because Docker Hub (python:3.12-slim) is unreachable.

Stdlib only, so `.ci/run` can prebuild it with the system python: `python3 tests/support/python_base.py`.
"""

import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TAG = "flux-ci-cd-test/python-base:bookworm"
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


def image_exists(tag: str) -> bool:
    """True when the daemon already has `tag` (the build is slow, so it is made once per daemon)."""
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def mmdebstrap_argv(tarball: Path) -> list[str]:
    """The rootfs build; the host CA bundle goes in so pip inside image builds trusts this network's proxy."""
    copy_ca = f'cp {shlex.quote(str(HOST_CA_BUNDLE))} "$1/etc/ssl/certs/ca-certificates.crt"'
    hooks = ["--customize-hook", copy_ca] if HOST_CA_BUNDLE.is_file() else []
    return ["mmdebstrap", "--variant=apt", f"--include={PACKAGES}", *hooks, "bookworm", str(tarball)]


def ensure_python_base(tag: str = TAG) -> str:
    """Return `tag`, building it with mmdebstrap + `docker import` only when the daemon lacks it."""
    if image_exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="pybase-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        subprocess.run(mmdebstrap_argv(tarball), check=True, stdout=subprocess.DEVNULL)
        changes = [arg for change in IMAGE_CHANGES for arg in ("-c", change)]
        subprocess.run(["docker", "import", *changes, str(tarball), tag], check=True, stdout=subprocess.DEVNULL)
    return tag


if __name__ == "__main__":
    started = time.monotonic()
    print(
        f"python base image {ensure_python_base()} ready in {time.monotonic() - started:.0f}s",
        file=sys.stderr,
    )
