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
difference fails the step), the commit the automation pushed, and the Deployment's image. Production's
automation pushes to a branch of its own (flux/pull-request); the demo runs the gate on it (`gate`) and merges
what passes, which is how a release reaches production's Deployment.
"""

from __future__ import annotations

import contextlib
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

from image_tagger.demo import DemoError, cluster, gate, kubelet, webhooks
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
)
from image_tagger.edges import manifests
from image_tagger.edges.gitcmd import git, query
from image_tagger.model.receivers import Receiver

NAMESPACE = "flux-system"
POLL_SECONDS = 0.1
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
DEFAULT_EXCLUSION = "^.*\\.sig$"  # what Flux scans with when an ImageRepository lists no exclusions
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
    image_receivers: list[Receiver] = field(default_factory=list)  # generic-hmac: the action notifies
    git_receivers: list[Receiver] = field(default_factory=list)  # github: the git server calls on a push

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


def latest_digest(found: dict[str, Any] | None) -> str:
    """The digest Flux recorded with the tag (production reflects digests), "" where it records none."""
    return ((found or {}).get("status", {}).get("latestRef") or {}).get("digest", "")


class Watch:
    """Polls every environment's Deployment image and ImagePolicy selection from the moment of a push, so the
    demo can say when each changed without the time it spends reading other objects counting against Flux."""

    def __init__(self, envs: dict[str, Env], since: float) -> None:
        self.envs = envs
        self.since = since
        self._apis = {name: KubeAPI(Path(env.info.kubeconfig)) for name, env in envs.items()}  # sessions of its own
        # (env, "deployment" | "policy") -> value -> seconds from `since` to the first look that saw it
        self.seen: dict[tuple[str, str], dict[str, float]] = {}
        self.first_look = time.monotonic() - since
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _note(self, env: str, what: str, value: str | None) -> None:
        if value:
            self.seen.setdefault((env, what), {}).setdefault(value, time.monotonic() - self.since)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, env in self.envs.items():
                api = self._apis[name]
                with contextlib.suppress(DemoError):  # a look that failed is a look missed; the waits have deadlines
                    self._note(name, "deployment", container_image(api.get(env.deployment)))
                    self._note(name, "policy", latest_tag(api.get(env.policy)))
            self._stop.wait(POLL_SECONDS)

    def arrival(self, env: str, what: str, value: str) -> float:
        """Seconds from `since` to the first look at `env`'s `what` that saw `value`."""
        return wait(f"{env}: {what} at {value}", lambda: self.seen.get((env, what), {}).get(value))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for api in self._apis.values():
            api.close()


class RealClusters:
    """The demo's `--cluster-bin` mode: Flux on two API servers does what the simulated mode predicts."""

    label = "real"

    def __init__(self, envs: dict[str, Env], scan_interval: str) -> None:
        self.envs = envs
        self.scan_interval = scan_interval

    @property
    def receivers(self) -> list[Receiver]:
        return [receiver for env in self.envs.values() for receiver in env.image_receivers]

    def describe(self) -> dict[str, Any]:
        return {
            name: {"kube-apiserver": env.api.version(), "flux": flux_versions(env.info)}
            for name, env in self.envs.items()
        }

    def follow(self, world: World, tags: list[str], since: float, new_tags: list[str]) -> dict[str, Followed]:
        """Wait until each cluster acted on the push of `new_tags` (none: a config commit) made at `since`."""
        watch = Watch(self.envs, since)
        try:
            return {name: self._follow_one(world, env, tags, watch, new_tags) for name, env in self.envs.items()}
        finally:
            watch.stop()

    def _follow_one(self, world: World, env: Env, tags: list[str], watch: Watch, new_tags: list[str]) -> Followed:
        _, objects = render_cluster(world, env.name)
        prediction = predict(objects, world.image, tags)
        count = self._scanned(env, objects, pushed=bool(new_tags))
        evaluated = self._evaluated(env)
        selected, digest = latest_tag(evaluated), latest_digest(evaluated)
        say(
            f"  {env.name:<10} Flux: ImageRepository {env.repository.name} holds {count} tag(s) after its scan; "
            f"ImagePolicy {env.policy.name} selects {selected or 'nothing'}{f' ({digest})' if digest else ''}"
        )
        if (selected, digest) != (prediction.selected, prediction.digest):
            raise DemoError(
                f"{env.name}: Flux's ImagePolicy {env.policy.name} selects {selected or 'nothing'} {digest}, "
                f"image-tagger predicted {prediction.selected or 'nothing'} {prediction.digest} "
                f"({prediction.error or 'no error'})"
            )
        indent(f"(image-tagger predicted {prediction.selected or 'nothing'} offline: the same)")
        for tag in new_tags:
            if tag != selected:
                indent(f"Flux passes over {tag}: {prediction.target.spec.why_ignored(tag)}")
        before = world.serving.get(env.name)
        wanted = f"{world.image}:{selected}" + (f"@{digest}" if digest else "")  # what the marker receives
        if selected is None or wanted == before:
            indent(f"Deployment {env.deployment.namespace}/{env.deployment.name} unchanged")
            return Followed(selected)
        selected_after = watch.arrival(env.name, "policy", selected)
        iua = the(objects, "ImageUpdateAutomation")
        path = iua["spec"]["update"]["path"].removeprefix("./")
        branch = iua["spec"]["git"]["push"]["branch"]
        wait(f"{env.name}: {wanted} on the automation's branch {branch}", lambda: proposes(world, branch, path, wanted))
        commit = git(world.config_bare, "log", "-1", "--format=%h %an: %s", branch, "--", path)
        indent(f"image-automation-controller committed {commit}, pushed to config.git over HTTP ({branch})")
        # With flux/pull-request the automation proposes; the release reaches the cluster only through the gate.
        gated = gate.review(world, iua) if gate.gated_branch(iua) else None
        if gated and not gated.merged:
            indent(f"Deployment {env.deployment.namespace}/{env.deployment.name} unchanged: nothing was merged")
            return Followed(selected, selected_after, None, gated)
        applied_after = watch.arrival(env.name, "deployment", wanted)
        indent(
            f"kustomize-controller applied it: Deployment {env.deployment.namespace}/{env.deployment.name} "
            f"carries {selected} {applied_after:.2f} s after the {'push' if new_tags else 'commit'}"
        )
        if applied_after <= watch.first_look + POLL_SECONDS:
            indent("(already at the demo's first look: Flux found the tag on its own before it was notified)")
        version = kubelet.page_version(world.client, wanted)
        kubelet.report_available(env.api, env.deployment, env.api.get(env.deployment) or {})
        indent(f"the demo ran {wanted} (the stand-in for a kubelet): page says 'version {version}'")
        world.serving[env.name] = wanted
        return Followed(selected, selected_after, applied_after, gated)

    def _scanned(self, env: Env, objects: list[dict[str, Any]], *, pushed: bool) -> int:
        """Until the ImageRepository has scanned since the push (the Receiver's request handled) or since the
        config commit (its new exclusion list observed); returns the number of tags it stored."""
        rendered = the(objects, "ImageRepository")["spec"].get("exclusionList") or [DEFAULT_EXCLUSION]

        def done() -> int | None:
            found = env.api.get(env.repository) or {}
            status = found.get("status", {})
            if pushed:
                asked = found["metadata"].get("annotations", {}).get(REQUESTED_AT)
                if not asked or status.get("lastHandledReconcileAt") != asked:
                    return None
            elif status.get("observedExclusionList") != rendered:
                return None
            return (status.get("lastScanResult") or {}).get("tagCount") if ready(found) else None

        return wait(f"{env.name}: ImageRepository {env.repository.name} scan", done)

    def _evaluated(self, env: Env) -> dict[str, Any]:
        """The ImagePolicy once evaluated after the scan: a reconcile request, as `flux reconcile image policy`
        makes, and its handling. A read barrier: Flux has already acted on the scan when it is handled."""
        stamp = str(time.time_ns())
        env.api.merge_patch(env.policy, {"metadata": {"annotations": {REQUESTED_AT: stamp}}})

        def done() -> dict[str, Any] | None:
            found = env.api.get(env.policy) or {}
            return found if found.get("status", {}).get("lastHandledReconcileAt") == stamp else None

        return wait(f"{env.name}: ImagePolicy {env.policy.name} evaluation", done)


def proposes(world: World, branch: str, path: str, ref: str) -> bool:
    """Whether `branch` of config.git exists and names `ref` (as `name:tag`, digest or not) under `path`."""
    lines = query(world.config_bare, "grep", "-h", "-F", "-e", ref, branch, "--", path) or ""
    return re.search(re.escape(ref) + r"(?![\w.-])", lines) is not None  # 1.3.0, not 1.3.0-rc.1


def _start_env(name: str, world: World, state: Path, bin_dir: Path) -> Env:
    """One cluster up and bootstrapped from `clusters/<name>` of the config repository."""
    started = time.monotonic()
    try:
        info, _ = cluster.up(state / name, bin_dir, services=False)
    except cluster.ClusterError as err:
        raise DemoError(f"{name} cluster: {err}") from None
    api = KubeAPI(Path(info.kubeconfig))
    checkout, objects = render_cluster(world, name)
    apps = manifests.kustomize_build(checkout / the(objects, "Kustomization", "apps")["spec"]["path"])
    env = Env(
        name,
        info,
        api,
        repository=_ref(the(objects, "ImageRepository")),
        policy=_ref(the(objects, "ImagePolicy")),
        deployment=_ref(the(apps, "Deployment")),
    )
    _bootstrap(env, objects)
    say(f"cluster    {name}: up and bootstrapped in {time.monotonic() - started:.1f} s ({info.api_url})")
    return env


def _bootstrap(env: Env, objects: list[dict[str, Any]]) -> None:
    """README, "On a real cluster": each Receiver's token secret, then what `flux bootstrap` would apply (the
    GitRepository and Kustomization `flux-system` of sync.yaml); Flux applies the rest of the folder itself."""
    receivers = [obj for obj in objects if obj.get("kind") == "Receiver"]
    tokens = {}
    for receiver in receivers:
        tokens[receiver["metadata"]["name"]] = token = secrets.token_hex(20)
        secret = {"name": receiver["spec"]["secretRef"]["name"], "namespace": receiver["metadata"]["namespace"]}
        env.api.apply({"apiVersion": "v1", "kind": "Secret", "metadata": secret, "stringData": {"token": token}})
    for obj in objects:
        if obj.get("kind") in ("GitRepository", "Kustomization") and obj["metadata"]["name"] == "flux-system":
            env.api.apply(obj)
    sync = Ref("Kustomization", NAMESPACE, "flux-system")
    wait(f"{env.name}: {sync}", lambda: ready(env.api.get(sync)))
    for receiver in receivers:
        ref = _ref(receiver)
        found = wait(f"{env.name}: {ref}", lambda ref=ref: _if_ready(env.api.get(ref)))
        hook = Receiver(env.receiver_url(found), tokens[ref.name])
        (env.git_receivers if receiver["spec"]["type"] == "github" else env.image_receivers).append(hook)
    if not env.image_receivers:
        raise DemoError(f"{env.name}: the config has no generic-hmac Receiver (flux/receiver-hmac) to notify")
    wait(f"{env.name}: {env.deployment}", lambda: env.api.get(env.deployment))


def _if_ready(found: dict[str, Any] | None) -> dict[str, Any] | None:
    """A Receiver that is ready and says its webhook path."""
    return found if ready(found) and found.get("status", {}).get("webhookPath") else None


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
            started = pool.map(lambda name: _start_env(name, world, state, bin_dir), ENVIRONMENTS)
            envs = dict(zip(ENVIRONMENTS, started, strict=True))
        for env in envs.values():
            stack.callback(env.api.close)
            for receiver in env.git_receivers:  # GitHub's webhooks of the config repository, one per cluster
                webhooks.add_webhook(world.config_bare, receiver.url, receiver.secret)
        _, objects = render_cluster(world, "production")
        yield RealClusters(envs, str(the(objects, "ImageRepository")["spec"]["interval"]))
