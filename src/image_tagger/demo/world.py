"""What every part of the demo shares: the world it made (registry, repositories, images) and its printout.

The scenario (`loop`) pushes and publishes; a cluster mode (`simulated` or `realclusters`) says what the
clusters then did. Both read the config repository the same way and ask the same offline prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from image_tagger.demo import DemoError
from image_tagger.edges import manifests
from image_tagger.edges.gitcmd import git
from image_tagger.edges.registry.tags import RegistryTags
from image_tagger.edges.signer import PublicKey
from image_tagger.fluxrules import automation
from image_tagger.model.inputs import Signing

ENVIRONMENTS = ("production", "staging")
UNRELEASED = "0.0.0"  # the tag the config repository starts with: no release of the image exists yet
FLUX_SECONDS = 90.0  # how long the demo waits for a cluster to follow a push before it calls the step failed


@dataclass
class World:
    """Everything the demo made, so each step can reach it and the end can clean it up."""

    root: Path
    registry: str
    client: docker.DockerClient
    clock: int
    image: str = ""
    serving: dict[str, str] = field(default_factory=dict)  # environment -> the image reference it runs
    built: list[str] = field(default_factory=list)
    signing: Signing | None = None  # the demo's throw-away cosign key: every release it publishes is signed
    public_key: PublicKey | None = None  # what the pull-request gate verifies against
    pull_requests: list[PullRequest] = field(default_factory=list)  # on the stand-in for GitHub (demo.gate)

    def tick(self) -> int:
        self.clock += 60
        return self.clock

    @property
    def app(self) -> Path:
        return self.root / "app"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def config_bare(self) -> Path:
        """The config repository as its server holds it (GitHub's stand-in)."""
        return self.root / "config.git"


@dataclass
class PullRequest:
    """A pull request on the demo's stand-in for GitHub: the automation's branch proposed into the config branch."""

    number: int
    head: str
    base: str
    title: str
    body: str
    merged: bool = False


@dataclass(frozen=True)
class Gated:
    """What the pull-request gate made of the automation's proposal: merged, or left open and why."""

    number: int
    merged: bool
    check: str  # the gate's line per image, joined with "; "

    def json(self) -> dict[str, Any]:
        return {"pull_request": self.number, "merged": self.merged, "check": self.check}


@dataclass
class Followed:
    """What one environment did after a push or a config commit: Flux's choice and when it arrived."""

    selected: str | None  # the tag the environment's policy selects afterwards
    selected_after: float | None = None  # seconds from the push to that selection, when it changed
    applied_after: float | None = None  # seconds from the push to the Deployment (or config) carrying it
    gate: Gated | None = None  # production's pull-request gate, when the automation proposed a change


def say(text: str = "") -> None:
    print(text, flush=True)


def indent(text: str) -> None:
    """A line under the environment column of the timeline."""
    say(f"  {'':<10} {text}")


def the(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of `kind` (and `name`) the example consumer renders; its absence is a failed step."""
    for obj in objects:
        if obj.get("kind") == kind and name in (None, (obj.get("metadata") or {}).get("name")):
            return obj
    raise DemoError(f"the rendered config has no {kind} {name or ''}".rstrip())


def fresh_config(world: World, checkout: Path) -> Path:
    """A checkout of config.git at its newest commit, as a controller fetches it."""
    if checkout.exists():
        git(checkout, "pull", "--quiet", "--ff-only")
    else:
        git(world.root, "clone", "--quiet", str(world.config_bare), str(checkout))
    return checkout


def render_cluster(world: World, env: str) -> tuple[Path, list[dict[str, Any]]]:
    """The newest config's `clusters/<env>` rendered with the real kustomize, and the checkout it came from."""
    checkout = fresh_config(world, world.root / "automation" / env)
    return checkout, manifests.kustomize_build(checkout / "clusters" / env)


def predict(objects: list[dict[str, Any]], image: str, tags: list[str]) -> automation.Prediction:
    """image-tagger's offline answer for the one policy of a cluster: what Flux will select from `tags`, and the digest
    it records with it where the policy reflects digests (production), read from the registry as Flux reads it."""
    (prediction,) = automation.predict(automation.find_targets(objects), RegistryTags(cache={image: list(tags)}))
    return prediction
