"""A regular (non-editable) install: the wheel carries the flux/ base and the kustomize/ example, and
`image-tagger demo` completes from any directory, with no checkout beside it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.real  # pip builds and installs the wheel; the demo needs a Docker daemon

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source")  # what a clean checkout holds: no build/ or egg-info leftovers
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("src", "flux", "kustomize"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", out, source],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("image_tagger-*.whl")
    return built


def test_the_wheel_carries_the_base_and_the_example(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for part, packaged in (("flux", "base"), ("kustomize", "example")):
        shipped = sorted(str(p.relative_to(REPO / part)) for p in (REPO / part).rglob("*") if p.is_file())
        assert shipped
        assert {f"image_tagger/demo/{packaged}/{name}" for name in shipped} <= names
    assert "image_tagger/demo/loop.py" in names
    assert "image_tagger/edges/sigstore_trusted_root.json" in names  # keyless verify's pinned trust root


def test_the_demo_runs_from_an_installed_wheel_anywhere(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    target = Path(
        subprocess.run(
            [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, wheel],
        check=True,
        capture_output=True,
    )
    # Its dependencies come from this test environment's site-packages (a .pth line adds the folder only:
    # the editable install of the checkout there is not activated).
    (target / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PYTHONPATH"))}

    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import image_tagger; print(image_tagger.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    done = subprocess.run(
        [venv / "bin" / "python", "-m", "image_tagger", "demo"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert where.startswith(str(target)), where
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r".+/demo/app:1\.2\.1@sha256:[0-9a-f]{64}", result["production"]), result  # pinned
