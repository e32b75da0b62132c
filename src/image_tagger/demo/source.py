"""Where the demo takes the `flux/` base and the `kustomize/` example from: the installed package's copy,
or a flux-ci-cd checkout given with `--source`."""

from __future__ import annotations

import shutil
from pathlib import Path

from image_tagger.demo import DemoError

PARTS = ("flux", "kustomize")
# Their names in the wheel: not `flux` again beside the Flux base and the fluxrules package.
PACKAGED = {"flux": "base", "kustomize": "example"}


def packaged(part: str) -> Path:
    """The wheel's copy, installed beside this module; run from a checkout (src/), the checkout's own."""
    here = Path(__file__).resolve()
    installed = here.parent / PACKAGED[part]
    return installed if installed.is_dir() else here.parents[3] / part


def stage(dest: Path, checkout: Path | None = None) -> Path:
    """A folder holding `flux/` and `kustomize/`, as a checkout lays them out; returns it."""
    for part in PARTS:
        origin = checkout / part if checkout is not None else packaged(part)
        if not (origin / "kustomization.yaml").is_file() and not (origin / "README.md").is_file():
            where = f"--source {checkout}" if checkout is not None else "the installed package"
            raise DemoError(f"{where} has no {part}/; accepted: a flux-ci-cd checkout (flux/ and kustomize/)")
        shutil.copytree(origin, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    return dest
