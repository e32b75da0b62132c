"""Production and staging as two real clusters: the demo with `--cluster-bin` (what `./dev demo` runs).

Each environment is a cluster of its own (`cluster.up`: etcd, kube-apiserver and Flux's five controllers),
bootstrapped as kustomize/README.md tells a user, minus `flux bootstrap` itself (it needs GitHub): the
secrets the Receivers name, then the GitRepository and Kustomization `flux-system` of the config
repository's `clusters/<env>/sync.yaml`; from there Flux applies the folder itself, the flux-ci-cd base
included remotely. The registry and the git server are the demo's, shared by both clusters as Docker Hub
and GitHub would be; the git server calls each cluster's `github` Receiver on every push, as GitHub's
webhook would.

Nothing here decides anything Flux decides. After each push the demo reads the clusters: the
ImageRepository's scan, the ImagePolicy's selection (held against image-tagger's offline prediction: a
difference fails the step), the Deployment's image, and the commit the automation pushed.
"""

from __future__ import annotations

import mmap
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from image_tagger import manifests, notify
from image_tagger.demo import DemoError, cluster, kubelet, webhooks
from image_tagger.demo.kubeapi import KubeAPI, Ref
from image_tagger.demo.world import (
    ENVIRONMENTS,
    FLUX_SECONDS,
    Followed,
    World,
    indent,
    predict,
    render_cluster,
    say,
    the,
    version_of,
)
from image_tagger.gitcmd import git

NAMESPACE = "flux-system"
POLL_SECONDS = 0.1
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
_MODULE_VERSION = re.compile(rb"(?:^|\n)mod\tgithub\.com/fluxcd/([\w-]+-controller)\t(v[^\t\n]+)")


@dataclass
class Env:
    """One environment's cluster and the objects of it the demo reads."""

    name: str
    info: cluster.ClusterInfo
    api: KubeAPI
    repository: Ref
    policy: Ref
    deployment: Ref
    automation: Ref
    image_receivers: list[notify.Receiver] = field(default_factory=list)  # generic-hmac: the action notifies
    git_receivers: list[notify.Receiver] = field(default_factory=list)  # github: the git server calls on a push

    def receiver_url(self, found: dict[str, Any]) -> str:
        path = found["status"]["webhookPath"]
        return f"http://127.0.0.1:{self.info.pieces['notification-controller'].ports['receiver']}{path}"


def flux_versions(info: cluster.ClusterInfo) -> dict[str, str]:
    """Each running controller's module version, read from the build information in its executable."""
    versions = {}
    for name in cluster.CONTROLLERS:
        with (
            open(f"/proc/{info.pieces[name].pid}/exe", "rb") as exe,
            mmap.mmap(exe.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            found = {m.group(1).decode(): m.group(2).decode() for m in _MODULE_VERSION.finditer(data)}
        versions[name] = found.get(name, "unknown")
    return versions


def wait(what: str, check: Callable[[], Any], seconds: float = FLUX_SECONDS) -> Any:
    """`check()`'s first truthy answer, polled; a DemoError naming `what` when none comes in time."""
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise DemoError(f"{what}: not within {seconds:g} s")
        time.sleep(POLL_SECONDS)


def ready(found: dict[str, Any] | None) -> bool:
    """Flux's Ready condition, True for the object's current generation."""
    if not found:
        return False
    generation = found["metadata"].get("generation")
    return any(
        c["type"] == "Ready" and c["status"] == "True" and c.get("observedGeneration") == generation
        for c in found.get("status", {}).get("conditions", [])
    )


def container_image(found: dict[str, Any] | None) -> str | None:
    return found["spec"]["template"]["spec"]["containers"][0]["image"] if found else None


def latest_tag(found: dict[str, Any] | None) -> str | None:
    latest = (found or {}).get("status", {}).get("latestRef") or {}
    return latest.get("tag")


class Watch:
    """Polls every environment's Deployment image from the moment of a push, so the demo can say when each
    one changed without the time it spends reading Flux's other objects counting against Flux."""

    def __init__(self, envs: dict[str, Env], since: float) -> None:
        self.envs = envs
        self.since = since
        self.seen: dict[str, dict[str, float]] = {name: {} for name in envs}  # env -> image -> seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, env in self.envs.items():
                image = container_image(env.api.get(env.deployment))
                if image:
                    self.seen[name].setdefault(image, time.monotonic() - self.since)
            self._stop.wait(POLL_SECONDS)

    def arrival(self, env: str, image: str) -> float:
        """Seconds from the push to the Deployment carrying `image`."""
        return wait(f"{env}: Deployment with {image}", lambda: self.seen[env].get(image))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class RealClusters:
    """The demo's `--cluster-bin` mode: Flux on two API servers does what the simulated mode predicts."""

    label = "real"

    def __init__(self, world: World, envs: dict[str, Env]) -> None:
        self.world = world
        self.envs = envs
        self.scan_interval = ""

    @property
    def receivers(self) -> list[notify.Receiver]:
        return [receiver for env in self.envs.values() for receiver in env.image_receivers]

    def describe(self) -> dict[str, Any]:
        return {
            name: {"kube-apiserver": env.api.version(), "flux": flux_versions(env.info)}
            for name, env in self.envs.items()
        }

    def follow(self, world: World, tags: list[str], since: float, *, pushed: bool) -> dict[str, Followed]:
        """Wait until each cluster acted on the push (or config commit) of `since`, and report what it did."""
        watch = Watch(self.envs, since)
        try:
            return {name: self._follow_one(world, env, tags, watch, pushed=pushed) for name, env in self.envs.items()}
        finally:
            watch.stop()

    def _follow_one(self, world: World, env: Env, tags: list[str], watch: Watch, *, pushed: bool) -> Followed:
        checkout, objects = render_cluster(world, env.name)
        prediction = predict(objects, world.image, tags)
        before = container_image(env.api.get(env.deployment))
        scanned = self._scanned(env, objects, pushed=pushed)
        selected = latest_tag(self._evaluated(env))
        say(
            f"  {env.name:<10} Flux: {env.repository.name} scanned {scanned} tag(s); policy {env.policy.name} "
            f"{'selects ' + selected if selected else 'selects nothing'}"
        )
        if selected != prediction.selected:
            raise DemoError(
                f"{env.name}: Flux's ImagePolicy {env.policy.name} selects {selected or 'nothing'}, "
                f"image-tagger predicted {prediction.selected or 'nothing'} ({prediction.error or 'no error'})"
            )
        indent(f"image-tagger predicted {prediction.selected or 'nothing'}: the same")
        if selected is None:
            indent(f"Deployment {env.deployment.namespace}/{env.deployment.name} keeps {before} (no release yet)")
            return Followed(None)
        wanted = f"{world.image}:{selected}"
        if wanted == before:
            ignored = [t for t in tags if t not in (selected,)]
            indent(
                f"Deployment keeps {version_of(before)}; nothing newer for this policy among {len(ignored)} other tag(s)"
            )
            return Followed(selected)
        applied_after = watch.arrival(env.name, wanted)
        commit = git(world.config_bare, "log", "-1", "--format=%h %an: %s", "main", "--", self._update_path(objects))
        indent(f"Flux committed {commit} (image-automation-controller, pushed to config.git over HTTP)")
        indent(
            f"Deployment {env.deployment.namespace}/{env.deployment.name} carries {selected}, "
            f"{applied_after:.2f} s after the {'push' if pushed else 'commit'} (kustomize-controller applied it)"
        )
        found = env.api.get(env.deployment)
        version = kubelet.page_version(world.client, wanted)
        kubelet.report_available(env.api, env.deployment, found)
        indent(f"kubelet stand-in ran {wanted}: page says 'version {version}'")
        world.serving[env.name] = wanted
        del checkout
        return Followed(selected, applied_after=applied_after)

    def _update_path(self, objects: list[dict[str, Any]]) -> str:
        return the(objects, "ImageUpdateAutomation")["spec"]["update"]["path"].removeprefix("./")

    def _scanned(self, env: Env, objects: list[dict[str, Any]], *, pushed: bool) -> int:
        """Until the ImageRepository has scanned since the push (the Receiver's request handled) or since the
        config commit (its new exclusion list observed); returns the number of tags it stored."""
        rendered = the(objects, "ImageRepository")["spec"].get("exclusionList") or ["^.*\\.sig$"]

        def done() -> int | None:
            found = env.api.get(env.repository) or {}
            status = found.get("status", {})
            if pushed:
                asked = found["metadata"].get("annotations", {}).get(REQUESTED_AT)
                if not asked or status.get("lastHandledReconcileAt") != asked:
                    return None
            elif status.get("observedExclusionList") != rendered:
                return None
            result = status.get("lastScanResult") or {}
            return result.get("tagCount") if ready(found) else None

        return wait(f"{env.name}: ImageRepository {env.repository.name} scan", done)

    def _evaluated(self, env: Env) -> dict[str, Any]:
        """The ImagePolicy once it has been evaluated after the scan: a reconcile request, as `flux reconcile
        image policy` makes, and its handling; a read barrier that changes nothing Flux decides."""
        stamp = str(time.time_ns())
        env.api.merge_patch(env.policy, {"metadata": {"annotations": {REQUESTED_AT: stamp}}})

        def done() -> dict[str, Any] | None:
            found = env.api.get(env.policy) or {}
            return found if found.get("status", {}).get("lastHandledReconcileAt") == stamp else None

        return wait(f"{env.name}: ImagePolicy {env.policy.name} evaluation", done)


def _start_env(name: str, world: World, state: Path, bin_dir: Path) -> Env:
    """One cluster up and bootstrapped from `clusters/<name>` of the config repository."""
    started = time.monotonic()
    info, _ = cluster.up(state / name, bin_dir, services=False)
    api = KubeAPI(Path(info.kubeconfig))
    _, objects = render_cluster(world, name)
    apps = the(objects, "Kustomization", "apps")
    _, rendered_apps = render_cluster_path(world, name, apps["spec"]["path"])
    deployment = the(rendered_apps, "Deployment")
    env = Env(
        name,
        info,
        api,
        repository=_ref(the(objects, "ImageRepository")),
        policy=_ref(the(objects, "ImagePolicy")),
        deployment=_ref(deployment),
        automation=_ref(the(objects, "ImageUpdateAutomation")),
    )
    receivers = [obj for obj in objects if obj.get("kind") == "Receiver"]
    tokens = {}
    for receiver in receivers:  # README, "On a real cluster": create each Receiver's token secret
        secret = receiver["spec"]["secretRef"]["name"]
        tokens[receiver["metadata"]["name"]] = token = secrets.token_hex(20)
        api.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret, "namespace": receiver["metadata"]["namespace"]},
                "stringData": {"token": token},
            }
        )
    # What `flux bootstrap` would apply: the config repository and the Kustomization of this cluster's folder.
    for obj in objects:
        if obj.get("kind") in ("GitRepository", "Kustomization") and obj["metadata"]["name"] == "flux-system":
            api.apply(obj)
    wait(f"{name}: Kustomization flux-system", lambda: ready(api.get(Ref("Kustomization", NAMESPACE, "flux-system"))))
    for receiver in receivers:
        ref = _ref(receiver)
        found = wait(f"{name}: {ref}", lambda ref=ref: (lambda f: f if ready(f) else None)(api.get(ref)))
        hook = notify.Receiver(env.receiver_url(found), tokens[ref.name])
        (env.git_receivers if receiver["spec"]["type"] == "github" else env.image_receivers).append(hook)
    wait(f"{name}: {env.deployment}", lambda: api.get(env.deployment))
    say(f"cluster    {name}: up and bootstrapped in {time.monotonic() - started:.1f} s ({info.api_url})")
    return env


def render_cluster_path(world: World, name: str, path: str) -> tuple[Path, list[dict[str, Any]]]:
    checkout = world.root / "automation" / name
    return checkout, manifests.kustomize_build(checkout / path)


def _ref(obj: dict[str, Any]) -> Ref:
    meta = obj["metadata"]
    return Ref(obj["kind"], meta.get("namespace", "default"), meta["name"])


@contextmanager
def start(world: World, bin_dir: Path) -> Iterator[RealClusters]:
    """Both clusters up (in parallel) and bootstrapped; stopped again on the way out, whatever happened."""
    state = world.root / "clusters"
    with ExitStack() as stack:
        for name in ENVIRONMENTS:
            stack.callback(cluster.down, state / name)
        with ThreadPoolExecutor(len(ENVIRONMENTS)) as pool:
            envs = dict(zip(ENVIRONMENTS, pool.map(lambda n: _start_env(n, world, state, bin_dir), ENVIRONMENTS)))
        for env in envs.values():
            stack.callback(env.api.close)
            for receiver in env.git_receivers:
                webhooks.add_webhook(world.config_bare, receiver.url, receiver.secret)
        clusters = RealClusters(world, envs)
        clusters.scan_interval = str(the(render_cluster(world, "production")[1], "ImageRepository")["spec"]["interval"])
        yield clusters
