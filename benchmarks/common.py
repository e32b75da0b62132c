"""What the benchmarks share: the engines `./dev test` starts, the buildx they drive, a git identity."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from image_tagger.edges import buildkit
from image_tagger.model.errors import PublishError

ENGINES = {  # name -> (environment variable `./dev test` sets, default socket)
    "20": ("FCI_DOCKER_HOST_20", "unix:///run/fci/docker.sock"),
    "28": ("FCI_DOCKER_HOST_28", "unix:///run/fci28/docker.sock"),
    "28c": ("FCI_DOCKER_HOST_28C", "unix:///run/fci28c/docker.sock"),
}
IDENTITY = ["-c", "user.name=Bench", "-c", "user.email=bench@example.invalid", "-c", "init.defaultBranch=main"]


def docker_host(name: str) -> str:
    variable, default = ENGINES[name]
    return os.environ.get(variable) or default


def find_buildx(given: str) -> str:
    """--buildx, else where the product itself looks (IMAGE_TAGGER_BUILDX, PATH, the CLI plugin folders)."""
    try:
        found = given if given and os.access(given, os.X_OK) else buildkit.find_buildx()
    except PublishError as err:
        sys.exit(f"no buildx binary ({err}); pass --buildx")
    return str(Path(found).resolve())
