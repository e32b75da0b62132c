"""`./dev cluster up|down|status` with the real etcd, kube-apiserver and Flux controllers (cluster/build's).

One cluster for the module: the real image-reflector-controller scans our registry and its ImagePolicies
select what `image-tagger select` predicts; the real source-controller fetches from our git server; what
`image-tagger preview --config-repo` predicts is what the automation commits and the kustomize-controller
applies; `down` leaves no process behind. Missing binaries are built (about 22 minutes cold), never skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from support.cli import explain, run_cli
from support.flux_cluster import RECONCILE_SECONDS, condition_ready, git, kubectl, wait_for
from support.registry import push_tags

from image_tagger.demo import cluster
from image_tagger.fluxrules import commitmsg, setters
from image_tagger.fluxrules.imageref import ImageRef

REPO = Path(__file__).resolve().parents[1]
TAGS = ["1.0.0", "1.1.0", "1.2.0", "1.2.1-rc.1", "2.0.0", "main-abc1234-1700000000", "main-def5678-1700000500"]
TAGS += ["main-0123abc-1699999999", "1.1.0.sig", "latest"]


POLICIES = {
    "app-v1": {"semver": {"range": ">=1.0.0 <2.0.0"}},
    "app-main": {"numerical": {"order": "asc"}},
}
FILTERS = {"app-main": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"}}


def policy_manifest(name: str) -> dict:
    spec = {"imageRepositoryRef": {"name": "app"}, "policy": POLICIES[name]}
    if name in FILTERS:
        spec["filterTags"] = FILTERS[name]
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": spec,
    }


def test_the_cluster_answers_and_up_again_finds_it(running: cluster.ClusterInfo, cluster_bin_dir: Path) -> None:
    assert "Server Version: v1.36.3" in kubectl(running, "version")
    again, already = cluster.up(Path(running.state_dir), cluster_bin_dir)
    assert already and again.pieces == running.pieces
    assert Path(running.kubeconfig).stat().st_mode & 0o077 == 0
    done = subprocess.run(
        [sys.executable, "-m", "image_tagger.demo.cluster", "status", f"--state-dir={running.state_dir}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, explain(done)
    for name in cluster.STOP_ORDER:
        assert name in done.stdout
    total = cluster.status(Path(running.state_dir)).total_rss_kib
    assert 0 < total < 2 * 1024 * 1024, f"{total} KiB resident"


def test_image_policies_select_what_image_tagger_select_predicts(running: cluster.ClusterInfo, tmp_path: Path) -> None:
    push_tags(running.registry, "demo/app", TAGS, requests.Session())
    image = f"{running.registry}/demo/app"
    repository = {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageRepository",
        "metadata": {"name": "app", "namespace": "flux-system"},
        "spec": {"image": image, "interval": "1m", "insecure": True, "provider": "generic"},
    }
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump(repository))
    scanned = wait_for(running, "imagerepository", "app", condition_ready)
    assert scanned["status"]["lastScanResult"]["tagCount"] == len(TAGS) - 1  # `.sig` excluded by default
    # Applied after the first scan: a policy reconciled before it waits 30 s for tags.
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump_all(policy_manifest(n) for n in POLICIES))
    (tmp_path / "tags").write_text("\n".join(TAGS) + "\n")
    for name in POLICIES:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(policy_manifest(name)))
        predicted = run_cli("select", f"--policy={path}", f"--tags={tmp_path / 'tags'}")
        assert predicted.returncode == 0, explain(predicted)
        selected = wait_for(running, "imagepolicy", name, lambda found: "latestRef" in found.get("status", {}))
        assert selected["status"]["latestRef"] == {"name": image, "tag": predicted.stdout.strip()}
    assert {
        name: wait_for(running, "imagepolicy", name, condition_ready)["status"]["latestRef"]["tag"] for name in POLICIES
    } == {"app-v1": "1.2.0", "app-main": "main-def5678-1700000500"}


def deployment(image: str) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: default\nspec:\n"
        "  template:\n    spec:\n      containers:\n        - name: app\n"
        f'          image: {image}:1.0.0 # {{"$imagepolicy": "flux-system:app-v1"}}\n'
    )


@pytest.fixture(scope="module")
def config_checkout(running: cluster.ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of the cluster's config repository, its first commit pushed: one Deployment with a setter."""
    work = tmp_path_factory.mktemp("config") / "work"
    git("init", "--quiet", "--initial-branch=main", str(work))
    (work / "apps").mkdir()
    (work / "apps" / "deploy.yaml").write_text(deployment(f"{running.registry}/demo/app"))
    git("-C", str(work), "add", "apps")
    git("-C", str(work), "commit", "--quiet", "--message=first")
    git("-C", str(work), "push", "--quiet", running.config_repository_url, "main")
    return work


def test_source_controller_fetches_a_push_to_the_git_server(
    running: cluster.ClusterInfo, config_checkout: Path
) -> None:
    head = git("-C", str(config_checkout), "rev-parse", "HEAD")
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "config", "namespace": "flux-system"},
        "spec": {"url": running.config_repository_url, "interval": "1m", "ref": {"branch": "main"}},
    }
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump(source))
    fetched = wait_for(running, "gitrepository", "config", condition_ready)
    assert fetched["status"]["artifact"]["revision"] == f"main@sha1:{head}"


def automation_manifest(name: str, branch: str, path: str, template: str | None = None) -> dict:
    """An ImageUpdateAutomation of GitRepository `name`: checks out and pushes `branch`, updates `path`."""
    commit: dict = {"author": {"name": "fluxcdbot", "email": "fluxcdbot@users.noreply.github.com"}}
    if template is not None:
        commit["messageTemplate"] = template
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageUpdateAutomation",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {
            "interval": "1m",
            "sourceRef": {"kind": "GitRepository", "name": name},
            "git": {"checkout": {"ref": {"branch": branch}}, "commit": commit, "push": {"branch": branch}},
            "update": {"path": path, "strategy": "Setters"},
        },
    }


def test_the_automation_pushes_what_image_tagger_update_writes(
    running: cluster.ClusterInfo, config_checkout: Path
) -> None:
    """Needs app-v1 (selected above) and the GitRepository `config`: the real automation commits over HTTP."""
    head = git("-C", str(config_checkout), "rev-parse", "HEAD")
    automation = automation_manifest("config", "main", "./apps")
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump(automation))
    deadline = time.monotonic() + RECONCILE_SECONDS
    while (pushed := git("ls-remote", running.config_repository_url, "main").split()[0]) == head:
        assert time.monotonic() < deadline, "the automation pushed nothing"
        time.sleep(0.5)
    image = f"{running.registry}/demo/app"
    predicted = run_cli("update", str(config_checkout / "apps"), f"--policy=flux-system:app-v1={image}:1.2.0")
    assert predicted.returncode == 0, explain(predicted)
    git("-C", str(config_checkout), "fetch", "--quiet", running.config_repository_url, "main")
    assert git("-C", str(config_checkout), "log", "-1", "--format=%an", pushed) == "fluxcdbot"
    committed = git("-C", str(config_checkout), "show", f"{pushed}:apps/deploy.yaml") + "\n"
    assert committed == (config_checkout / "apps" / "deploy.yaml").read_text()
    assert f"{image}:1.2.0 #" in committed


PREVIEW_TEMPLATE = (
    "Preview {{ .AutomationObject }}\n\n{{ range .Changed.Changes }}{{ .OldValue }} -> {{ .NewValue }}\n{{ end }}"
)


def preview_repository(registry: str) -> dict[str, str]:
    """A config repository like kustomize/: the cluster overlay (Flux's image objects) and the app it deploys."""
    image = f"{registry}/demo/preview"
    flux = [
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageRepository",
            "metadata": {"name": "preview", "namespace": "flux-system"},
            "spec": {"image": image, "interval": "1m", "insecure": True, "provider": "generic"},
        },
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": "preview-v1", "namespace": "flux-system"},
            "spec": {"imageRepositoryRef": {"name": "preview"}, "policy": {"semver": {"range": "1.x"}}},
        },
        automation_manifest("preview", "preview", "./apps/preview", PREVIEW_TEMPLATE),
    ]
    return {
        "clusters/preview/image-automation.yaml": yaml.safe_dump_all(flux),
        "clusters/preview/kustomization.yaml": "resources:\n  - image-automation.yaml\n",
        "apps/preview/kustomization.yaml": "resources:\n  - deployment.yaml\n",
        "apps/preview/deployment.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: preview\n  namespace: default\nspec:\n"
            "  selector:\n    matchLabels:\n      app: preview\n  template:\n    metadata:\n      labels:\n"
            "        app: preview\n    spec:\n      containers:\n        - name: app\n"
            f'          image: {image}:1.0.0 # {{"$imagepolicy": "flux-system:preview-v1"}}\n'
        ),
    }


def reconcile_now(info: cluster.ClusterInfo, kind: str, name: str) -> None:
    """Flux's `reconcile.fluxcd.io/requestedAt`: act now instead of at the next interval."""
    stamp = f"reconcile.fluxcd.io/requestedAt={time.time_ns()}"
    kubectl(info, "--namespace=flux-system", "annotate", "--overwrite", kind, name, stamp)


def test_preview_predicts_what_the_cluster_then_does(running: cluster.ClusterInfo, tmp_path: Path) -> None:
    """`preview --config-repo`, run before Flux acts, names the tag, files, content and message Flux commits,
    and the image of the Deployment the Kustomization then applies."""
    work = tmp_path / "config"
    git("init", "--quiet", "--initial-branch=preview", str(work))
    for name, text in preview_repository(running.registry).items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    git("-C", str(work), "add", ".")
    git("-C", str(work), "commit", "--quiet", "--message=first")
    git("-C", str(work), "push", "--quiet", running.config_repository_url, "preview")
    head = git("-C", str(work), "rev-parse", "HEAD")
    push_tags(
        running.registry, "demo/preview", ["1.0.0", "1.3.0", "1.4.0-rc.1", "2.0.0", "1.3.0.sig"], requests.Session()
    )
    predicted = run_cli("preview", str(work / "clusters" / "preview"), f"--config-repo={work}")
    assert predicted.returncode == 0, explain(predicted)
    image = f"{running.registry}/demo/preview"
    lines = predicted.stdout.splitlines()
    expected_tag = lines[0].removeprefix(f"flux-system/preview-v1: {image}:")
    assert expected_tag == "1.3.0", explain(predicted)  # 1.x: not the prerelease, not 2.0.0, not `.sig`
    start = lines.index("automation flux-system/preview (path ./apps/preview): would commit 1 file(s)") + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("--- a/"))
    message = [line.removeprefix("    ") for line in lines[start:end]]  # indented by 4, then the diffs
    (tmp_path / "predicted.diff").write_text(predicted.stdout[predicted.stdout.index("--- a/") :])
    git("-C", str(work), "apply", str(tmp_path / "predicted.diff"))  # the predicted files, left uncommitted

    objects = yaml.safe_load_all((work / "clusters" / "preview" / "image-automation.yaml").read_text())
    repository, policy, automation = objects
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "preview", "namespace": "flux-system"},
        "spec": {"url": running.config_repository_url, "interval": "1m", "ref": {"branch": "preview"}},
    }
    apps = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "preview", "namespace": "flux-system"},
        "spec": {
            "interval": "1m",
            "path": "./apps/preview",
            "prune": False,
            "wait": False,
            "sourceRef": {"kind": "GitRepository", "name": "preview"},
        },
    }
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump_all([source, apps, repository]))
    wait_for(running, "imagerepository", "preview", condition_ready)
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump(policy))
    assert wait_for(running, "imagepolicy", "preview-v1", condition_ready)["status"]["latestRef"] == {
        "name": image,
        "tag": expected_tag,
    }
    wait_for(running, "kustomization", "preview", condition_ready)
    jsonpath = "--output=jsonpath={.spec.template.spec.containers[0].image}"
    assert kubectl(running, "--namespace=default", "get", "deployment", "preview", jsonpath) == f"{image}:1.0.0"
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump(automation))
    deadline = time.monotonic() + RECONCILE_SECONDS
    while (pushed := git("ls-remote", running.config_repository_url, "preview").split()[0]) == head:
        assert time.monotonic() < deadline, "the automation pushed nothing"
        time.sleep(0.5)
    git("-C", str(work), "fetch", "--quiet", running.config_repository_url, "preview")
    changed = git("-C", str(work), "diff", "--name-only", head, pushed).splitlines()
    assert changed == git("-C", str(work), "diff", "--name-only").splitlines() == ["apps/preview/deployment.yaml"]
    for path in changed:
        assert git("-C", str(work), "show", f"{pushed}:{path}", strip=False) == (work / path).read_text()
    theirs = git("-C", str(work), "cat-file", "commit", pushed, strip=False).split("\n\n", 1)[1].splitlines()
    assert theirs[0] == message[0] and sorted(theirs) == sorted(message), (theirs, message)

    reconcile_now(running, "gitrepository", "preview")
    reconcile_now(running, "kustomization", "preview")
    deadline = time.monotonic() + RECONCILE_SECONDS
    while (applied := kubectl(running, "--namespace=default", "get", "deployment", "preview", jsonpath)) != (
        f"{image}:{expected_tag}"
    ):
        assert time.monotonic() < deadline, f"the Kustomization left the Deployment at {applied}"
        time.sleep(0.5)


def pinned_objects(image: str) -> list[dict]:
    """The release channel's shape (IfNotPresent, as flux/ ships it) and an Always twin, on their own image."""
    repository = {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageRepository",
        "metadata": {"name": "pinned", "namespace": "flux-system"},
        "spec": {"image": image, "interval": "1m", "insecure": True, "provider": "generic"},
    }
    policies = []
    for name, extra in (("pinned-v1", {}), ("pinned-always", {"interval": "10m"})):
        reflection = "Always" if extra else "IfNotPresent"
        spec = {"imageRepositoryRef": {"name": "pinned"}, "policy": {"semver": {"range": "1.x"}}}
        policies.append(
            {
                "apiVersion": "image.toolkit.fluxcd.io/v1",
                "kind": "ImagePolicy",
                "metadata": {"name": name, "namespace": "flux-system"},
                "spec": {**spec, "digestReflectionPolicy": reflection, **extra},
            }
        )
    return [repository, *policies]


def pinned_files(image: str, old_digest: str) -> dict[str, str]:
    """Every marker form on a pinned policy: the full reference, and name, tag and digest on separate fields."""
    return {
        "deploy.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: pinned\n  namespace: default\nspec:\n"
            "  template:\n    spec:\n      containers:\n        - name: app\n"
            f'          image: {image}:1.0.0 # {{"$imagepolicy": "flux-system:pinned-v1"}}\n'
        ),
        "images.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: app\n"
            f'    newName: {image} # {{"$imagepolicy": "flux-system:pinned-v1:name"}}\n'
            '    newTag: 1.0.0 # {"$imagepolicy": "flux-system:pinned-v1:tag"}\n'
            f'    digest: {old_digest} # {{"$imagepolicy": "flux-system:pinned-v1:digest"}}\n'
        ),
    }


def test_a_pinned_policy_commits_what_image_tagger_update_writes_with_digests(
    running: cluster.ClusterInfo, tmp_path: Path
) -> None:
    """digestReflectionPolicy: the real reflector records the digest `select` reads, the real automation commits
    what `update --digest-reflection` writes (files and message, byte for byte), and when the tag moves to other
    content IfNotPresent keeps the recorded digest while Always follows it."""
    http = requests.Session()
    image = f"{running.registry}/demo/pinned"
    digests = {tag: push_tags(running.registry, "demo/pinned", [tag], http, {"v": tag}) for tag in ("1.0.0", "1.1.0")}
    objects = pinned_objects(image)
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump(objects[0]))
    wait_for(running, "imagerepository", "pinned", condition_ready)
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump_all(objects[1:]))
    (tmp_path / "tags").write_text("1.0.0\n1.1.0\n")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(objects[1]))
    selected = run_cli(
        "select", f"--policy={tmp_path / 'policy.yaml'}", f"--tags={tmp_path / 'tags'}", f"--image={image}"
    )
    assert (selected.returncode, selected.stdout) == (0, f"1.1.0@{digests['1.1.0']}\n"), explain(selected)
    for name in ("pinned-v1", "pinned-always"):
        found = wait_for(running, "imagepolicy", name, condition_ready)
        assert found["status"]["latestRef"] == {"name": image, "tag": "1.1.0", "digest": digests["1.1.0"]}

    work = tmp_path / "config"
    git("init", "--quiet", "--initial-branch=pinned", str(work))
    (work / "apps").mkdir()
    for name, text in pinned_files(image, digests["1.0.0"]).items():
        (work / "apps" / name).write_text(text)
    git("-C", str(work), "add", ".")
    git("-C", str(work), "commit", "--quiet", "--message=first")
    git("-C", str(work), "push", "--quiet", running.config_repository_url, "pinned")
    head = git("-C", str(work), "rev-parse", "HEAD")
    ref = ImageRef(image, "1.1.0", digests["1.1.0"])
    changes = [c for u in setters.plan_updates(work / "apps", {"flux-system:pinned-v1": ref}) for c in u.changes]
    message = commitmsg.render(PREVIEW_TEMPLATE, ("flux-system", "pinned"), changes)
    assignment = f"--policy=flux-system:pinned-v1={image}:1.1.0"
    predicted = run_cli("update", str(work / "apps"), assignment, "--digest-reflection=IfNotPresent")
    assert (predicted.returncode, predicted.stdout) == (0, "deploy.yaml\nimages.yaml\n"), explain(predicted)

    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "pinned", "namespace": "flux-system"},
        "spec": {"url": running.config_repository_url, "interval": "1m", "ref": {"branch": "pinned"}},
    }
    automation = automation_manifest("pinned", "pinned", "./apps", PREVIEW_TEMPLATE)
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump(source))
    wait_for(running, "gitrepository", "pinned", condition_ready)
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump(automation))
    deadline = time.monotonic() + RECONCILE_SECONDS
    while (pushed := git("ls-remote", running.config_repository_url, "pinned").split()[0]) == head:
        assert time.monotonic() < deadline, "the automation pushed nothing"
        time.sleep(0.5)
    git("-C", str(work), "fetch", "--quiet", running.config_repository_url, "pinned")
    for name in ("deploy.yaml", "images.yaml"):
        committed = git("-C", str(work), "show", f"{pushed}:apps/{name}", strip=False)
        assert committed == (work / "apps" / name).read_text(), name
    assert f"image: {ref} #" in (work / "apps" / "deploy.yaml").read_text()
    theirs = git("-C", str(work), "cat-file", "commit", pushed, strip=False).split("\n\n", 1)[1]
    # Two files changed: Flux lists .Changed.Changes in Go map order, so the lines, not their order, are compared.
    assert theirs.split("\n")[0] == message.split("\n")[0], (theirs, message)
    assert sorted(theirs.split("\n")) == sorted(message.split("\n")), (theirs, message)
    assert f"-> {ref}\n" in theirs

    moved = push_tags(running.registry, "demo/pinned", ["1.1.0"], http, {"v": "1.1.0", "moved": True})
    stamps = {}
    for name in ("pinned-v1", "pinned-always"):
        stamps[name] = str(time.time_ns())
        annotation = f"reconcile.fluxcd.io/requestedAt={stamps[name]}"
        kubectl(running, "--namespace=flux-system", "annotate", "--overwrite", "imagepolicy", name, annotation)
    handled = {
        name: wait_for(running, "imagepolicy", name, lambda f, s=stamp: f["status"].get("lastHandledReconcileAt") == s)
        for name, stamp in stamps.items()
    }
    assert handled["pinned-v1"]["status"]["latestRef"]["digest"] == digests["1.1.0"]  # IfNotPresent: kept
    assert handled["pinned-always"]["status"]["latestRef"]["digest"] == moved  # Always: followed
    kept = run_cli("update", str(work / "apps"), assignment, "--digest-reflection=IfNotPresent")
    assert (kept.returncode, kept.stdout) == (0, ""), explain(kept)  # offline, the files hold the recorded digest


def test_down_leaves_no_process(running: cluster.ClusterInfo) -> None:
    state = Path(running.state_dir)
    stopped = cluster.down(state)
    assert stopped == list(cluster.STOP_ORDER)
    left = [name for name, piece in running.pieces.items() if Path(f"/proc/{piece.pid}").exists()]
    assert not left, f"still running after down: {left}"
    assert cluster.status(state) is None


def processes_in(folder: Path) -> list[int]:
    """Pids whose working folder is `folder` (every piece runs in the state folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == folder:
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_piece_that_exits_is_named_with_its_log_and_the_rest_stopped(cluster_bin_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "build" / "bin"
    broken.mkdir(parents=True)
    for binary in cluster_bin_dir.iterdir():
        (broken / binary.name).symlink_to(binary)
    (broken / "etcd").unlink()
    (broken / "etcd").write_text("#!/bin/sh\necho 'etcd: cannot start' >&2\nexit 3\n")
    (broken / "etcd").chmod(0o755)
    state = tmp_path / "state"
    done = subprocess.run(
        [sys.executable, "-m", "image_tagger.demo.cluster", "up", f"--state-dir={state}", f"--bin-dir={broken}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, explain(done)
    log = state / "logs" / "etcd.log"
    assert done.stderr == f"./dev cluster up: etcd exited before answering on /health; see its log {log}\n"
    assert "cannot start" in log.read_text()
    assert cluster.status(state) is None
    assert processes_in(state) == []
