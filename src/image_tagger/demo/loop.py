"""`image-tagger demo`: the whole loop on one machine, with real parts wherever one can run.

git tag/push (bare repos stand in for GitHub) -> the action's own code builds and pushes to a local
registry, signed with a key made for the run, and notifies Flux's Receivers -> the clusters scan, select and
commit to the config repository (production to a branch that the pull-request gate checks before the demo
merges it) and apply it -> the image the Deployment names runs as a container (the stand-in for a kubelet)
and its page says which version each environment serves. The clusters are two real ones (`realclusters`, with
`--cluster-bin`: Flux's own controllers on kube-apiserver) or simulated (`simulated`: image-tagger's
reproduction of Flux); the scenario, the repositories and the output are the same.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any, Protocol

import docker
from ruamel.yaml import YAML

from image_tagger.demo import DemoError, githttp, localregistry, realclusters, sampleapp, simulated, source
from image_tagger.demo.world import ENVIRONMENTS, UNRELEASED, Followed, World, fresh_config, say
from image_tagger.edges import docker_ops, kustomize, notify
from image_tagger.edges.context import commit_time_of
from image_tagger.edges.gitcmd import git
from image_tagger.edges.jobports import real_edges
from image_tagger.edges.registry.session import list_tags
from image_tagger.edges.signer import new_key_pair
from image_tagger.model.errors import PublishError
from image_tagger.model.git import GitContext
from image_tagger.model.imagename import parse_image
from image_tagger.model.inputs import BuildOptions, PublishInputs, ReleaseOptions, Signing
from image_tagger.model.log import KeptLog
from image_tagger.model.plan import NamingOptions
from image_tagger.model.receivers import Receiver
from image_tagger.model.registry import RegistryAuth
from image_tagger.model.report import PublishReport
from image_tagger.model.result import PublishResult
from image_tagger.model.states import Builder, TagState
from image_tagger.operations import publish, rollback
from image_tagger.rules.naming import plan_tags

BASE_TAG = "v1.0.0"
EXAMPLE_IMAGE = "docker.io/acme/app"
EXAMPLE_CONFIG_REPOSITORY = "ssh://git@github.com/your-org/your-config-repo"
# The action's notification rescans the image; GitHub's push webhook fetches the config repository.
RECEIVER_COMPONENTS = ("receiver-hmac", "receiver-github")


class Clusters(Protocol):
    """A cluster mode: where production and staging run, and how the demo learns what they did."""

    label: str
    scan_interval: str

    @property
    def receivers(self) -> list[Receiver]: ...

    def describe(self) -> dict[str, Any]: ...

    def follow(self, world: World, tags: list[str], since: float, new_tags: list[str]) -> dict[str, Followed]:
        """What each environment did after the push of `new_tags` at `since` (none: a config commit)."""
        ...


# --- set-up: a registry, the flux-ci-cd base at a tag, an app repo and a config repo ------------------


def make_repos(world: World, checkout: Path | None, config_url: str) -> None:
    """Bare repos stand in for GitHub: app.git, config.git, and flux-ci-cd tagged at BASE_TAG. The config
    repository is the example consumer with kustomize/README.md's "Replace before use" done."""
    served = source.stage(world.root / "source", checkout)
    url = kustomize.publish_flux_base(served, world.root / "flux-ci-cd", BASE_TAG)
    for name in ("app", "config"):
        git(world.root, "init", "--quiet", "--bare", "--initial-branch=main", f"{name}.git")
    git(world.root, "clone", "--quiet", str(world.root / "app.git"), str(world.app))
    sampleapp.write_app(world.app)
    git(world.app, "add", "--all")
    git(world.app, "commit", "--quiet", "-m", "sample app", when=world.tick())
    git(world.app, "push", "--quiet", "origin", "HEAD:main")
    shutil.copytree(served / "kustomize", world.config)
    kustomize.point_consumer_at(world.config / "clusters", url, BASE_TAG)
    for kustomization in world.config.glob("clusters/*/kustomization.yaml"):  # README, "On a real cluster", step 4
        add_components(kustomization, [f"{url}/{name}?ref={BASE_TAG}" for name in RECEIVER_COMPONENTS])
    # Production behind the pull-request gate (README, "Production safety"): listed after the channel.
    add_components(world.config / "clusters/production/kustomization.yaml", [f"{url}/pull-request?ref={BASE_TAG}"])
    for path in world.config.rglob("*.yaml"):
        text = path.read_text()
        text = re.sub(rf"{re.escape(EXAMPLE_IMAGE)}:[\w.-]+", f"{world.image}:{UNRELEASED}", text)
        text = text.replace(EXAMPLE_IMAGE, world.image).replace(EXAMPLE_CONFIG_REPOSITORY, config_url)
        # The demo's git server has no login: the deploy key's secret (README, "On a real cluster") is not needed.
        path.write_text(text.replace("  secretRef:\n    name: flux-system\n", ""))
    git(world.config, "init", "--quiet", "--initial-branch=main")
    git(world.config, "add", "--all")
    git(world.config, "commit", "--quiet", "-m", "config for production and staging", when=world.tick())
    git(world.config, "remote", "add", "origin", str(world.config_bare))
    git(world.config, "push", "--quiet", "origin", "HEAD:main")


def add_components(kustomization: Path, components: list[str]) -> None:
    """Append to the kustomization's `components:` list, keeping the rest of the file as written."""
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)  # the example's own style: "  - item" under a key
    document = yaml.load(kustomization.read_text())
    document.setdefault("components", []).extend(components)
    with kustomization.open("w") as out:
        yaml.dump(document, out)


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


def build_and_push(
    world: World, ref: str, sha: str, receivers: list[Receiver]
) -> tuple[PublishReport, PublishResult, float]:
    """What the action does for this push (the same job: naming, build, push, notification), from a fresh
    checkout; returns the job's report, what it left in the registry, and the wall clock when it was there."""
    checkout = world.root / "ci" / sha[:12]
    if not checkout.exists():
        git(world.root, "clone", "--quiet", str(world.root / "app.git"), str(checkout))
    git(checkout, "checkout", "--quiet", sha)
    ctx = GitContext(
        event="push",
        ref=ref,
        sha=sha,
        push_time=world.clock,
        commit_time=commit_time_of(checkout, sha),
        source_url=str(world.root / "app.git"),
    )
    image, naming = parse_image(world.image), NamingOptions()
    # The app's page shows the version it was built as: a build-arg, as a workflow passes a `tags` step's output.
    version = plan_tags(ctx, image, naming, now=world.clock).version
    build = BuildOptions(checkout, checkout / "Dockerfile", {"VERSION": version})
    given = PublishInputs(
        checkout, image, naming, RegistryAuth(), build, ReleaseOptions(), None, tuple(receivers), world.signing
    )
    log = KeptLog()  # shown only when the step fails
    job = publish.run(given, ctx, real_edges(world.client), log)
    if job.failure is not None or job.result is None or job.pushed_at is None:
        print("\n".join(log.lines[-30:]), file=sys.stderr)
        raise PublishError(job.failure.message if job.failure else f"{job.plan.version} was not pushed")
    world.built += list(job.plan.refs)
    return job, job.result, job.pushed_at


def registry_tags(world: World) -> list[str]:
    tags = list_tags(world.image)
    say(f"  registry {world.image}: {' '.join(sorted(tags))}")
    return tags


def outcome(world: World, title: str, followed: dict[str, Followed], **fields: Any) -> dict[str, Any]:
    """A step's JSON: what was pushed, when the clusters selected and applied it, what each environment serves."""
    selected = [f.selected_after for f in followed.values() if f.selected_after is not None]
    applied = [f.applied_after for f in followed.values() if f.applied_after is not None]
    gated = {env: f.gate.json() for env, f in followed.items() if f.gate is not None}
    return {
        "step": title,
        **fields,
        "selected_after_push_seconds": round(min(selected), 2) if selected else None,
        "applied_after_push_seconds": round(min(applied), 2) if applied else None,
        "gate": gated or None,
        **{env: world.serving.get(env) for env in ENVIRONMENTS},
    }


def step(world: World, clusters: Clusters, title: str, ref: str) -> dict[str, Any]:
    """A push to the app repository: the action publishes, notifies the Receivers, and the clusters follow."""
    say(f"\n== {title}")
    sha = push_app(world, ref)
    say(f"  git      {ref} at {sha[:7]} pushed to app.git")
    job, result, pushed_wall = build_and_push(world, ref, sha, clusters.receivers)
    pushed = result.image_ref
    if result.promoted_from:
        say(f"  action   promoted {result.promoted_from} to {pushed} (no build: the bytes staging ran)")
    else:
        say(f"  action   built and pushed {pushed}")
    if result.signature:
        say(f"  {'':<8} signed for version {job.plan.version} before the tag appeared (the demo's key)")
    pushed_at = time.monotonic() - (time.time() - pushed_wall)  # the job's wall clock, on the monotonic one
    for notification in job.notifications:  # the job notified every Receiver, side by side, as the action does
        say(f"  flux     {notification.detail}")
        if not notification.ok:
            raise DemoError(f"{title}: {notification.detail}")
    new_tags = [ref.rsplit(":", 1)[1] for ref in result.tags_in(TagState.PUSHED, TagState.PROMOTED)]
    followed = clusters.follow(world, registry_tags(world), pushed_at, new_tags)
    report = outcome(
        world, title, followed, pushed=pushed, promoted_from=result.promoted_from, signed=bool(result.signature)
    )
    if report["applied_after_push_seconds"] is not None:
        say(
            f"  {'':<10} applied {report['applied_after_push_seconds']:.2f} s after the push (without the Receivers: "
            f"at the next scan, every {clusters.scan_interval})"
        )
    return report


def rollback_step(world: World, clusters: Clusters, title: str, tag: str) -> dict[str, Any]:
    """An operator excludes a bad release in the production overlay; the automation writes the last good one back."""
    say(f"\n== {title}")
    work = fresh_config(world, world.root / "operator")
    result = rollback.run(work / "clusters" / "production", tag)
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "-m", f"Roll back {tag}", when=world.tick())
    git(work, "push", "--quiet", "origin", "HEAD:main")
    committed_at = time.monotonic()
    say(f"  operator image-tagger rollback clusters/production {tag}; committed and pushed to config.git")
    say(f"  {'':<10} {result.line.split('; ', 1)[-1]}")
    followed = clusters.follow(world, registry_tags(world), committed_at, [])
    return outcome(world, title, followed, pushed=None, signed=None)


def stolen_password_step(world: World, clusters: Clusters, title: str, tag: str) -> dict[str, Any]:
    """Someone with the registry's password builds the app and pushes `tag` by hand: no action, no signature.
    The automation proposes it like any release; production's gate refuses it, staging's policy passes it over."""
    say(f"\n== {title}")
    image = parse_image(world.image)
    ref = image.ref(tag)
    log = KeptLog()
    build = BuildOptions(world.app, world.app / "Dockerfile", {"VERSION": tag}, builder=Builder.LEGACY)
    world.built.append(ref)
    try:
        docker_ops.build(world.client, build, ref, {}, log)
        digest = docker_ops.push(world.client, image, tag, log)
    except PublishError:
        print("\n".join(log.lines[-30:]), file=sys.stderr)
        raise
    pushed_at = time.monotonic()
    say(f"  someone  docker build -t {ref} && docker push {ref}: {digest}, no signature")
    say(f"  {'':<8} (the demo's registry has no login: this push stands for one made with a stolen password)")
    # The thief notifies no one; the demo asks the Receivers to rescan now, in place of the next scan.
    payload = {"image": world.image, "tags": [tag], "digest": digest}
    for receiver in clusters.receivers:
        notification = notify.notify(receiver.url, receiver.secret, payload)
        say(f"  flux     {notification.detail} (the demo's nudge: else the next scan, every {clusters.scan_interval})")
    followed = clusters.follow(world, registry_tags(world), pushed_at, [tag])
    return outcome(world, title, followed, pushed=f"{ref}@{digest}", promoted_from=None, signed=False)


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
    ("a release pushed by hand with a stolen registry password", "stolen 1.3.0"),
)
STEPS = {"rollback": rollback_step, "stolen": stolen_password_step}  # the other entries are pushes to app.git


def run(checkout: Path | None = None, cluster_bin: Path | None = None) -> dict[str, Any]:
    client = docker_ops.connect()
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="image-tagger-demo-")))
        registry = stack.enter_context(localregistry.serve(root / "registry"))
        world = World(root, registry.host, client, clock=int(time.time()))
        world.image = f"{registry.host}/demo/app"
        stack.callback(remove_images, world)
        say(f"registry   {registry.host} (local); image {world.image}")
        git_server = stack.enter_context(githttp.serve(root))
        make_repos(world, checkout, f"{git_server}/config.git")
        say(
            f"repos      app.git, config.git on {git_server} (kustomize/ layout, flux/ included remotely at {BASE_TAG})"
        )
        clusters: Clusters
        if cluster_bin is None:
            say("clusters   SIMULATED: image-tagger's reproduction of Flux plays both (./dev demo runs real ones)")
            clusters = stack.enter_context(simulated.start(world))
        else:
            say("clusters   production and staging: two real clusters (kube-apiserver + Flux's five controllers)")
            clusters = stack.enter_context(realclusters.start(world, cluster_bin))
        password = secrets.token_urlsafe(24)
        key, world.public_key = new_key_pair(password, "the demo's cosign.pub")
        world.signing = Signing(key, password, source="the demo's cosign.key")
        say("signing    a throw-away cosign key pair (ECDSA P-256): every release is signed before its tag exists")
        say("gate       production's automation pushes to flux/app-production; the pull-request gate checks it")
        steps = [
            STEPS[ref.split()[0]](world, clusters, title, ref.split()[1])
            if " " in ref
            else step(world, clusters, title, ref)
            for title, ref in SCENARIO
        ]
        return {
            **{env: world.serving.get(env) for env in ENVIRONMENTS},
            "scan_interval": clusters.scan_interval,
            "cluster": clusters.describe(),
            "steps": steps,
        }


def remove_images(world: World) -> None:
    for ref in world.built:
        with suppress(docker.errors.DockerException):
            world.client.images.remove(ref, force=True)


def main(checkout: Path | None = None, cluster_bin: Path | None = None) -> int:
    result = run(checkout, cluster_bin)
    say()
    print(json.dumps(result), flush=True)
    return 0
