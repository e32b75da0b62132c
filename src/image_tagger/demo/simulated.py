"""The simulated cluster: what `image-tagger demo` does without Go (a `pip install` user's demo).

No Kubernetes and no Flux: image-tagger's own reproduction of Flux's decisions plays both clusters. It
scans the registry, selects with the rendered ImagePolicies, writes the setters, commits with the
automation's message template and pushes to its push branch of config.git (production's goes through the
pull-request gate, `gate`, as with the real clusters), then runs the image the config branch names.
The Receiver is a stand-in that checks signatures as Flux does. The output says "simulated" throughout;
`./dev demo` (the `realclusters` mode) shows Flux's own controllers doing the same.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from image_tagger.demo import gate, kubelet, receiver
from image_tagger.demo.receiver import DemoReceiver
from image_tagger.demo.world import (
    ENVIRONMENTS,
    UNRELEASED,
    Followed,
    World,
    fresh_config,
    indent,
    predict,
    render_cluster,
    say,
    the,
)
from image_tagger.edges import manifests
from image_tagger.edges.gitcmd import git, query
from image_tagger.fluxrules import automation, setters
from image_tagger.model.receivers import Receiver


class SimulatedClusters:
    label = "simulated"

    def __init__(self, hook: DemoReceiver, scan_interval: str) -> None:
        self.hook = hook
        self.scan_interval = scan_interval

    @property
    def receivers(self) -> list[Receiver]:
        return [self.hook.receiver]

    def describe(self) -> dict[str, Any]:
        return dict.fromkeys(ENVIRONMENTS, "simulated")

    def follow(self, world: World, tags: list[str], since: float, new_tags: list[str]) -> dict[str, Followed]:
        followed = {}
        for env in ENVIRONMENTS:
            selected, commit, iua = automate(world, env, tags)
            if not commit:
                indent(f"serves {deploy(world, env)}")
                followed[env] = Followed(selected)
                continue
            selected_after = time.monotonic() - since
            indent(f"commit {commit} (pushed to config.git, branch {iua['spec']['git']['push']['branch']})")
            gated = gate.review(world, iua) if gate.gated_branch(iua) else None
            # The simulated cluster applies the config branch as it stands: at once, unless the gate kept it out.
            applied_after = time.monotonic() - since if gated is None or gated.merged else None
            indent(f"serves {deploy(world, env)}")
            followed[env] = Followed(selected, selected_after, applied_after, gated)
        return followed


def automate(world: World, env: str, tags: list[str]) -> tuple[str | None, str | None, dict[str, Any]]:
    """One simulated cluster's image automation: select, set, commit with its template, push to its push branch.
    Returns the selection, the commit (none when nothing changed) and the ImageUpdateAutomation."""
    _, objects = render_cluster(world, env)
    iua = the(objects, "ImageUpdateAutomation")
    prediction = predict(objects, world.image, tags)
    if prediction.selected is None:
        say(f"  {env:<10} policy {prediction.policy} selects nothing yet ({prediction.error})")
        return None, None, iua
    say(f"  {env:<10} policy {prediction.policy} selects {prediction.selected} (simulated)")
    work = automation_tree(world, env, iua["spec"]["git"])
    (commit,) = automation.plan_commits(work, automation.find_automations(objects), [prediction])
    if not commit.updates:
        indent("manifests already there")
        return prediction.selected, None, iua
    setters.write_updates(work.resolve(), commit.updates)
    spec = iua["spec"]
    author = spec["git"]["commit"]["author"]
    git(work, "add", "--all")
    identity = (author.get("name", "fluxcdbot"), author["email"])
    git(work, "commit", "--quiet", "-m", commit.message, when=world.tick(), identity=identity)
    git(work, "push", "--quiet", "origin", f"HEAD:{spec['git']['push']['branch']}")
    return prediction.selected, f"{git(work, 'rev-parse', '--short', 'HEAD')} {commit.message.splitlines()[0]}", iua


def automation_tree(world: World, env: str, spec: dict[str, Any]) -> Path:
    """The tree the automation writes to: its push branch as config.git has it, when that exists (Flux's
    image-automation-controller switches to it: a proposal not merged yet stays under the next one), else the
    branch it checks out."""
    work = world.root / "automation-push" / env
    if not work.exists():
        git(world.root, "clone", "--quiet", str(world.config_bare), str(work))
    git(work, "fetch", "--quiet", "--prune", "origin")
    push, checkout = spec["push"]["branch"], spec["checkout"]["ref"]["branch"]
    start = push if query(work, "rev-parse", "--verify", "--quiet", f"origin/{push}") else checkout
    git(work, "checkout", "--quiet", "-B", push, f"origin/{start}")
    return work


def deploy(world: World, env: str) -> str:
    """What the cluster would run now: the config repo's rendered app image, run and asked its version."""
    checkout = fresh_config(world, world.root / "cluster" / env)
    objects = manifests.kustomize_build(checkout / "clusters" / env)
    apps = the(objects, "Kustomization", "apps")
    rendered = manifests.kustomize_build(checkout / apps["spec"]["path"])
    ref = the(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    if ref.endswith(f":{UNRELEASED}"):
        world.serving.pop(env, None)
        return "nothing yet (no release of the image)"
    version = kubelet.page_version(world.client, ref)
    world.serving[env] = ref
    return f"{ref} -> page says 'version {version}' (the demo runs it: the stand-in for a kubelet)"


@contextmanager
def start(world: World) -> Iterator[SimulatedClusters]:
    with receiver.serve() as hook:
        _, objects = render_cluster(world, "production")
        yield SimulatedClusters(hook, str(the(objects, "ImageRepository")["spec"].get("interval", "?")))
