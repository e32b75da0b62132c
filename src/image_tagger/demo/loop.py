"""`image-tagger demo`: the whole loop on one machine, with real parts wherever one can run.

git tag/push (bare repos stand in for GitHub) -> the action's own code builds and pushes to a
local registry -> the registry is scanned -> the rendered ImagePolicies select -> setters update
a clone of the config repo, committed with the automation's template and pushed back -> the
rendered overlay's image runs as a container and its page says which version each environment
serves. Only the Kubernetes cluster is missing; the config repo is what Flux would apply.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import requests

from image_tagger import docker_ops, kustomize, manifests, notify, registry_client, rollback
from image_tagger.context import GitContext, commit_time_of
from image_tagger.demo import DemoError, localregistry, receiver, sampleapp, source
from image_tagger.demo.receiver import DemoReceiver
from image_tagger.errors import PublishError
from image_tagger.flux import automation, setters
from image_tagger.gitcmd import git
from image_tagger.imagename import parse_image
from image_tagger.inputs import BuildOptions
from image_tagger.naming import NamingOptions, plan_tags
from image_tagger.publish import Provenance, PublishResult, publish
from image_tagger.registry_client import RegistryAuth

ENVIRONMENTS = ("production", "staging")
BASE_TAG = "v1.0.0"
EXAMPLE_IMAGE = "docker.io/acme/app"
UNRELEASED = "0.0.0"


class QuietLog:
    """Build logs are kept and shown only when a step fails; the timeline is what the demo prints."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)

    def group(self, title: str) -> AbstractContextManager[None]:
        self.lines.append(f"== {title}")
        return nullcontext()


@dataclass
class World:
    """Everything the demo made, so each step can reach it and the end can clean it up."""

    root: Path
    registry: str
    client: docker.DockerClient
    clock: int
    image: str = ""
    serving: dict[str, str] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)
    receiver: DemoReceiver = field(default_factory=lambda: DemoReceiver("", ""))
    scan_interval: str = ""

    def tick(self) -> int:
        self.clock += 60
        return self.clock

    @property
    def app(self) -> Path:
        return self.root / "app"

    @property
    def config(self) -> Path:
        return self.root / "config"


def say(text: str = "") -> None:
    print(text, flush=True)


# --- set-up: a registry, the flux-ci-cd base at a tag, an app repo and a config repo ------------------


def make_repos(world: World, checkout: Path | None) -> None:
    """Bare repos stand in for GitHub: app.git, config.git, and flux-ci-cd tagged at BASE_TAG."""
    served = source.stage(world.root / "source", checkout)
    url = kustomize.publish_flux_base(served, world.root / "flux-ci-cd", BASE_TAG)
    for name in ("app", "config"):
        git(world.root, "init", "--quiet", "--bare", f"{name}.git")
    git(world.root, "clone", "--quiet", str(world.root / "app.git"), str(world.app))
    sampleapp.write_app(world.app)
    git(world.app, "add", "--all")
    git(world.app, "commit", "--quiet", "-m", "sample app", when=world.tick())
    git(world.app, "push", "--quiet", "origin", "HEAD:main")
    shutil.copytree(served / "kustomize", world.config)
    kustomize.point_consumer_at(world.config / "clusters", url, BASE_TAG)
    for path in world.config.rglob("*.yaml"):
        text = path.read_text()
        text = re.sub(rf"{re.escape(EXAMPLE_IMAGE)}:[\w.-]+", f"{world.image}:{UNRELEASED}", text)
        path.write_text(text.replace(EXAMPLE_IMAGE, world.image))
    git(world.config, "init", "--quiet")
    git(world.config, "add", "--all")
    git(world.config, "commit", "--quiet", "-m", "config for production and staging", when=world.tick())
    git(world.config, "remote", "add", "origin", str(world.root / "config.git"))
    git(world.config, "push", "--quiet", "origin", "HEAD:main")


# --- one step of the scenario -----------------------------------------------------------------------


def push_app(world: World, ref: str) -> str:
    """A developer's push: a commit on main, or a tag on main's head. Returns the commit id."""
    if ref.startswith("refs/heads/"):
        page = world.app / "index.html"
        page.write_text(page.read_text() + f"<!-- change {world.tick()} -->\n")
        git(world.app, "commit", "--quiet", "-am", f"change {world.clock}", when=world.clock)
        git(world.app, "push", "--quiet", "origin", "HEAD:main")
    else:
        git(world.app, "tag", ref.removeprefix("refs/tags/"), when=world.tick())
        git(world.app, "push", "--quiet", "origin", ref)
    return git(world.app, "rev-parse", "HEAD")


def build_and_push(world: World, ref: str, sha: str) -> PublishResult:
    """What the action does for this push (same naming, build and push code), from a fresh checkout."""
    checkout = world.root / "ci" / sha[:12]
    if not checkout.exists():
        git(world.root, "clone", "--quiet", str(world.root / "app.git"), str(checkout))
    git(checkout, "checkout", "--quiet", sha)
    ctx = GitContext(event="push", ref=ref, sha=sha, push_time=world.clock, source_url=str(world.root / "app.git"))
    plan = plan_tags(ctx, parse_image(world.image), NamingOptions(major_version=None), now=world.clock)
    build = BuildOptions(checkout, checkout / "Dockerfile", {"VERSION": plan.version})
    provenance = Provenance(sha, ctx.source_url, commit_time_of(checkout, sha))
    log = QuietLog()
    try:
        result = publish(world.client, plan, build, provenance, RegistryAuth(), log, datetime.now(UTC))
    except PublishError:
        print("\n".join(log.lines[-30:]), file=sys.stderr)
        raise
    world.built += list(plan.refs)
    return result


def the(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of `kind` (and `name`) the example consumer renders; its absence is a failed step."""
    for obj in objects:
        if obj.get("kind") == kind and name in (None, (obj.get("metadata") or {}).get("name")):
            return obj
    raise DemoError(f"the rendered config has no {kind} {name or ''}".rstrip())


def scan_interval(world: World) -> str:
    """How often the rendered ImageRepository is scanned: the wait a Receiver notification saves."""
    objects = manifests.kustomize_build(world.config / "clusters" / "production")
    return str(the(objects, "ImageRepository")["spec"].get("interval", "?"))


def fresh_config(world: World, checkout: Path) -> Path:
    """A checkout of config.git at its newest commit, as a controller fetches it."""
    if checkout.exists():
        git(checkout, "pull", "--quiet", "--ff-only")
    else:
        git(world.root, "clone", "--quiet", str(world.root / "config.git"), str(checkout))
    return checkout


def automate(world: World, env: str, tags: list[str]) -> tuple[str, str | None]:
    """One cluster's image automation: select, set, commit with its template, push to config.git."""
    work = fresh_config(world, world.root / "automation" / env)
    objects = manifests.kustomize_build(work / "clusters" / env)
    predictions = automation.predict(automation.find_targets(objects), automation.KnownTags({world.image: tags}))
    (prediction,) = predictions
    if prediction.selected is None:
        return f"{prediction.policy} selects nothing yet ({prediction.error})", None
    (commit,) = automation.plan_commits(work, automation.find_automations(objects), predictions)
    verdict = f"{prediction.policy} selects {prediction.selected}"
    if not commit.updates:
        return verdict + " (manifests already there)", None
    setters.write_updates(work.resolve(), commit.updates)
    spec = the(objects, "ImageUpdateAutomation")["spec"]
    author = spec["git"]["commit"]["author"]
    git(work, "add", "--all")
    identity = (author.get("name", "fluxcdbot"), author["email"])
    git(work, "commit", "--quiet", "-m", commit.message, when=world.tick(), identity=identity)
    git(work, "push", "--quiet", "origin", f"HEAD:{spec['git']['push']['branch']}")
    return verdict, f"{git(work, 'rev-parse', '--short', 'HEAD')} {commit.message.splitlines()[0]}"


@contextmanager
def running(world: World, ref: str) -> Iterator[str]:
    """Pull `ref` from the registry and run it; yields the page it serves."""
    world.client.images.pull(ref)
    port = localregistry.free_port()
    container = world.client.containers.run(
        ref, command=["-p", f"127.0.0.1:{port}"], network_mode="host", detach=True, remove=True
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                yield requests.get(f"http://127.0.0.1:{port}/", timeout=2).text
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise DemoError(f"{ref} did not serve its page on 127.0.0.1:{port}") from None
                time.sleep(0.2)
    finally:
        container.stop(timeout=2)


def deploy(world: World, env: str) -> str:
    """What the cluster would run now: the config repo's rendered app image, run and asked its version."""
    checkout = fresh_config(world, world.root / "cluster" / env)
    objects = manifests.kustomize_build(checkout / "clusters" / env)
    apps = the(objects, "Kustomization", "apps")
    rendered = manifests.kustomize_build(checkout / apps["spec"]["path"])
    deployment = the(rendered, "Deployment")
    ref = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    if ref.endswith(f":{UNRELEASED}"):
        world.serving.pop(env, None)
        return "nothing yet (no release of the image)"
    with running(world, ref) as page:
        match = re.search(r"version ([^<\s]+)", page)
    world.serving[env] = ref
    return f"{ref} -> page says 'version {match.group(1) if match else '?'}'"


def reconcile(world: World, since: float | None = None) -> float | None:
    """Each cluster scans, selects, commits and serves; returns the seconds from `since` to the first selection."""
    tags = registry_client.list_tags(world.image)
    say(f"  registry {world.image}: {' '.join(sorted(tags))}")
    selected_after = None
    for env in ENVIRONMENTS:
        verdict, commit = automate(world, env, tags)
        if since is not None and selected_after is None:
            selected_after = time.monotonic() - since
        say(f"  {env:<10} policy {verdict}")
        if commit:
            say(f"  {'':<10} commit {commit} (pushed to config.git)")
        say(f"  {'':<10} serves {deploy(world, env)}")
    return selected_after


def step(world: World, title: str, ref: str) -> dict[str, Any]:
    """A push to the app repository: the action publishes, notifies the Receiver, and the clusters follow."""
    say(f"\n== {title}")
    sha = push_app(world, ref)
    say(f"  git      {ref} at {sha[:7]} pushed to app.git")
    result = build_and_push(world, ref, sha)
    pushed = result.image_ref
    if result.promoted_from:
        say(f"  action   promoted {result.promoted_from} to {pushed} (no build: the bytes staging ran)")
    else:
        say(f"  action   built and pushed {pushed}")
    pushed_at = time.monotonic()
    notification = notify.announce(world.receiver.receiver, result)
    say(f"  flux     {notification.detail}")
    selected_after = reconcile(world, pushed_at if notification.ok else None)
    if selected_after is not None:
        say(
            f"  {'':<10} selected {selected_after:.2f}s after the push (without the Receiver: at the next scan, "
            f"every {world.scan_interval})"
        )
    return {
        "step": title,
        "pushed": pushed,
        "promoted_from": result.promoted_from,
        "selected_after_push_seconds": selected_after,
        **{env: world.serving.get(env) for env in ENVIRONMENTS},
    }


def rollback_step(world: World, title: str, tag: str) -> dict[str, Any]:
    """An operator excludes a bad release in the production overlay; the automation writes the last good one back."""
    say(f"\n== {title}")
    work = fresh_config(world, world.root / "operator")
    outcome = rollback.run(work / "clusters" / "production", tag)
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", f"Roll back {tag}", when=world.tick())
    git(work, "push", "--quiet", "origin", "HEAD:main")
    say(f"  operator image-tagger rollback clusters/production {tag}; committed and pushed to config.git")
    say(f"  {'':<10} {outcome.line.split('; ', 1)[-1]}")
    reconcile(world)
    return {"step": title, "pushed": None, **{env: world.serving.get(env) for env in ENVIRONMENTS}}


SCENARIO = (
    ("tag v1.0.0", "refs/tags/v1.0.0"),
    ("push to main", "refs/heads/main"),
    ("tag v2.0.0 (another major)", "refs/tags/v2.0.0"),
    ("tag v1.1.0", "refs/tags/v1.1.0"),
    ("second push to main", "refs/heads/main"),
    ("tag v1.2.0", "refs/tags/v1.2.0"),
    ("v1.2.0 turns out bad: roll back", "rollback 1.2.0"),
    ("push the fix to main", "refs/heads/main"),
    ("tag v1.2.1", "refs/tags/v1.2.1"),
)


def run(checkout: Path | None = None) -> dict[str, Any]:
    client = docker_ops.connect()
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="image-tagger-demo-")))
        registry = stack.enter_context(localregistry.serve(root / "registry"))
        world = World(root, registry.host, client, clock=int(time.time()))
        world.image = f"{registry.host}/demo/app"
        stack.callback(_remove_images, world)
        say(f"registry   {registry.host} (local); image {world.image}")
        make_repos(world, checkout)
        say(f"repos      app.git, config.git (kustomize/ layout, flux/ included remotely at {BASE_TAG})")
        world.receiver = stack.enter_context(receiver.serve())
        world.scan_interval = scan_interval(world)
        steps = [
            rollback_step(world, title, ref.split()[1]) if ref.startswith("rollback ") else step(world, title, ref)
            for title, ref in SCENARIO
        ]
        return {
            **{env: world.serving.get(env) for env in ENVIRONMENTS},
            "scan_interval": world.scan_interval,
            "steps": steps,
        }


def _remove_images(world: World) -> None:
    for ref in world.built:
        with suppress(docker.errors.DockerException):
            world.client.images.remove(ref, force=True)


def main(checkout: Path | None = None) -> int:
    result = run(checkout)
    say()
    print(json.dumps(result), flush=True)
    return 0
