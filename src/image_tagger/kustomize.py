"""Kustomize edge: render overlays with the real kustomize, and serve this project's Flux base the way
GitHub would (a tagged git repo) so that consumers can be rendered offline (tests, demo).

Consumers reference the base as `https://github.com/OWNER/flux-ci-cd//flux[/SUB]?ref=TAG`; kustomize
fetches such URLs with `git fetch`, so a local repo reached through `file://` behaves exactly alike
(tag resolution, `..` inside the repo, failure on an unknown ref) without any network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from image_tagger.errors import InputError

# A remote reference to the base: any scheme, the `//flux` repo path, optional sub-component, pinned ref.
FLUX_REFERENCE = re.compile(
    r"(?P<base>[a-z][a-z0-9+.-]*://[^\s\"']+?//flux)(?P<sub>(?:/[\w.-]+)*)\?ref=(?P<ref>[\w.+/-]+)"
)
# Commits must not depend on (or be refused by) the caller's git identity and config.
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "flux-ci-cd",
    "GIT_AUTHOR_EMAIL": "flux-ci-cd@example.invalid",
    "GIT_COMMITTER_NAME": "flux-ci-cd",
    "GIT_COMMITTER_EMAIL": "flux-ci-cd@example.invalid",
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        env={**os.environ, **GIT_ENV},
    )


def publish_flux_base(repo_root: Path, dest: Path, tag: str) -> str:
    """Commit `repo_root/flux` (working tree, uncommitted edits included) into a new repo at `dest`, tag it.

    Returns the URL consumers put before `?ref=`, e.g. `file:///tmp/x/repo//flux`.
    """
    source = repo_root / "flux"
    if not (source / "kustomization.yaml").is_file():
        raise InputError(f"repo_root: {repo_root} has no flux/kustomization.yaml; give a flux-ci-cd checkout")
    dest = dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, dest / "flux")
    _git(dest, "init", "--quiet", "--initial-branch=main")
    _git(dest, "add", "--all")
    _git(dest, "commit", "--quiet", "--message", f"flux-ci-cd {tag}")
    _git(dest, "tag", tag)
    return f"{dest.as_uri()}//flux"


def point_consumer_at(consumer_dir: Path, url: str, ref: str) -> list[Path]:
    """Rewrite every base reference in the consumer's kustomization.yaml files to `url[/SUB]?ref=ref`.

    Sub-components (`//flux/staging`) keep their sub-path. Returns the files changed.
    """
    changed = []
    for path in sorted(consumer_dir.rglob("kustomization.yaml")):
        text = path.read_text()
        rewritten = FLUX_REFERENCE.sub(lambda match: f"{url}{match['sub']}?ref={ref}", text)
        if rewritten != text:
            path.write_text(rewritten)
            changed.append(path)
    if not changed:
        raise InputError(f"consumer_dir: {consumer_dir} has no kustomization.yaml referencing //flux?ref=")
    return changed


def kustomize_command() -> list[str] | None:
    """`kustomize build` or `kubectl kustomize`, whichever is installed."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIR` as parsed objects; raises CalledProcessError (stderr kept) when it fails."""
    command = kustomize_command()
    if command is None:
        raise InputError(f"{directory} is a kustomize overlay but neither kustomize nor kubectl is installed")
    result = subprocess.run([*command, str(directory)], check=True, capture_output=True, text=True)
    return [document for document in YAML(typ="safe").load_all(result.stdout) if document]
