"""Kustomize edge: render overlays with the real kustomize, and serve this project's Flux base the way
GitHub would (a tagged git repo) so that consumers can be rendered offline (tests, demo).

Consumers reference the base as `https://github.com/OWNER/flux-ci-cd//flux[/SUB]?ref=TAG`; kustomize
fetches such URLs with `git fetch`, so a local repo reached through `file://` behaves exactly alike
(tag resolution, `..` inside the repo, failure on an unknown ref) without any network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from image_tagger.edges.childenv import GIT, child_env
from image_tagger.edges.gitcmd import git
from image_tagger.model.errors import InputError

# A remote reference to the base: any scheme, the `//flux` repo path, optional sub-component, pinned ref.
# What ./dev builds (cluster/kustomize/go.mod): its kustomize/api is the one kustomize-controller of Flux v2.9.4 uses.
PINNED_KUSTOMIZE = "sigs.k8s.io/kustomize/kustomize/v5@v5.8.1"
KUSTOMIZE_TIMEOUT = 120  # seconds for `kustomize build` of an overlay (remote bases are fetched over the network)
FLUX_REFERENCE = re.compile(
    r"(?P<base>[a-z][a-z0-9+.-]*://[^\s\"']+?//flux)(?P<sub>(?:/[\w.-]+)*)\?ref=(?P<ref>[\w.+/-]+)"
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
    git(dest, "init", "--quiet")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "--message", f"flux-ci-cd {tag}")
    git(dest, "tag", tag)
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


def kustomize_output(directory: Path) -> str:
    """`kubectl kustomize DIR`'s YAML; raises CalledProcessError (stderr kept) when it fails."""
    command = kustomize_command()
    if command is None:
        raise InputError(
            f"{directory} is a kustomize overlay but neither kustomize nor kubectl is installed here: install "
            f"kustomize v5 (`go install {PINNED_KUSTOMIZE}`, the version Flux's kustomize-controller builds with), "
            f"or give a rendered file (`kustomize build {directory} > flux-objects.yaml`) or plain manifests"
        )
    # kustomize fetches remote bases with git; it needs nothing of ours.
    done = subprocess.run(
        [*command, str(directory)],
        env=child_env(*GIT),
        check=True,
        capture_output=True,
        text=True,
        timeout=KUSTOMIZE_TIMEOUT,
    )
    return done.stdout
