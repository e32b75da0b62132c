"""The config repository's push webhook: flux/receiver-github, and GitHub's push event from our git server.

The component is rendered as a consumer renders it (test_kustomize_render's published base) and validated
against the vendored Receiver CRD. The webhooks are delivered by a real `git push` over HTTP to demo/githttp.py
(real git http-backend, which runs the post-receive hook): first to a local endpoint that checks the signature
as go-github does (support/receiver.py), then to the real notification-controller of `./dev cluster`, whose
Receiver makes the real source-controller fetch the pushed commit.
"""

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML
from support.cli import explain
from support.crds import crd_schemas, validate_against_crd
from support.flux_cluster import GIT_ENV, condition_ready, git, kubectl, wait_for
from support.receiver import serve_receiver, signature_valid, webhook_path
from test_kustomize_render import (  # noqa: F401 - flux_url is a fixture
    REPO,
    TAG,
    copy_consumer,
    flux_url,
    kustomize_build,
    load_yaml,
    only,
)
from test_notify import cluster_with

from image_tagger.demo import cluster
from image_tagger.demo.githttp import GitHandler
from image_tagger.demo.webhooks import DEADLINE_SECONDS, WEBHOOKS_FILE, ZERO, add_webhook, webhooks

TOKEN = "gh-tok-5e4d3c2b1a0f9e8d"  # distinctive, so a leak into any text is found
GITHUB_RECEIVER = ("flux-system-github", "flux-system")  # the rendered Receiver's name and namespace

# --- flux/receiver-github -------------------------------------------------------------------------------------------


def test_receiver_github_fetches_the_config_repository(flux_url: str, tmp_path: Path) -> None:  # noqa: F811
    objects = cluster_with(tmp_path, flux_url, ["receiver-github"])
    receiver = only(objects, "Receiver")
    source = only(objects, "GitRepository")  # what the cluster's flux-system Kustomization is built from
    validate_against_crd(crd_schemas(), receiver)
    assert (receiver["metadata"]["name"], receiver["metadata"]["namespace"]) == GITHUB_RECEIVER
    assert receiver["metadata"]["namespace"] == source["metadata"]["namespace"]
    assert receiver["spec"]["type"] == "github"
    assert receiver["spec"]["events"] == ["ping", "push"]
    assert receiver["spec"]["secretRef"] == {"name": "github-webhook-token"}
    assert receiver["spec"]["resources"] == [
        {"apiVersion": source["apiVersion"], "kind": "GitRepository", "name": source["metadata"]["name"]}
    ]
    assert "managed-by" not in str(receiver["metadata"]["labels"])  # flux/receiver would rename it


def test_receiver_github_follows_the_git_repository_setting(flux_url: str, tmp_path: Path) -> None:  # noqa: F811
    receiver = only(cluster_with(tmp_path, flux_url, ["receiver-github"], gitRepository="fleet-config"), "Receiver")
    assert receiver["metadata"]["name"] == "fleet-config-github"
    assert receiver["spec"]["resources"][0]["name"] == "fleet-config"


@pytest.mark.parametrize(
    "order", [["receiver-github", "receiver", "receiver-hmac"], ["receiver", "receiver-hmac", "receiver-github"]]
)
def test_three_receivers_side_by_side(order: list[str], flux_url: str, tmp_path: Path) -> None:  # noqa: F811
    """Hyphenated names are renamed once each: no component's replacements reach another's Receiver."""
    objects = cluster_with(tmp_path, flux_url, order, name="my-app", gitRepository="my-config")
    receivers = {o["spec"]["type"]: o for o in objects if o["kind"] == "Receiver"}
    assert {t: (r["metadata"]["name"], r["spec"]["resources"][0]["name"]) for t, r in receivers.items()} == {
        "dockerhub": ("my-app-dockerhub", "my-app"),
        "generic-hmac": ("my-app-image-tagger", "my-app"),
        "github": ("my-config-github", "my-config"),
    }
    assert len({r["spec"]["secretRef"]["name"] for r in receivers.values()}) == 3
    for receiver in receivers.values():
        validate_against_crd(crd_schemas(), receiver)


def test_listed_for_two_images_of_one_cluster_the_build_fails(flux_url: str, tmp_path: Path) -> None:  # noqa: F811
    """It follows the repository: flux/README.md says to list it once per cluster, and twice is an error."""
    cluster = copy_consumer(tmp_path, flux_url) / "clusters" / "production"
    settings = load_yaml(cluster / "image-automation.yaml")
    components = [*load_yaml(cluster / "kustomization.yaml")["components"], f"{flux_url}/receiver-github?ref={TAG}"]
    for name in ("shop", "cart"):
        settings["data"]["name"] = settings["metadata"]["namespace"] = name
        (cluster / name).mkdir()
        YAML().dump(settings, cluster / name / "image-automation.yaml")
        kustomization = {"resources": ["image-automation.yaml"], "components": components}
        YAML().dump(kustomization, cluster / name / "kustomization.yaml")
    YAML().dump({"resources": ["sync.yaml", "shop", "cart"]}, cluster / "kustomization.yaml")
    with pytest.raises(subprocess.CalledProcessError) as failure:
        kustomize_build(cluster)
    assert "flux-system-github" in failure.value.stderr, failure.value.stderr
    assert "already registered id" in failure.value.stderr


def test_readme_commands_name_the_rendered_objects(flux_url: str, tmp_path: Path) -> None:  # noqa: F811
    receiver = only(cluster_with(tmp_path, flux_url, ["receiver-github"]), "Receiver")
    readme = (REPO / "flux" / "README.md").read_text()
    section = readme[readme.index("## GitHub push webhook") :]
    assert f"kubectl -n flux-system create secret generic {receiver['spec']['secretRef']['name']} \\\n" in section
    assert f"kubectl -n flux-system get receiver {receiver['metadata']['name']} " in section
    assert "//flux/receiver-github?ref=" in section
    assert "//flux/receiver-github?ref=" in (REPO / "README.md").read_text()


# --- push webhooks from the git server ------------------------------------------------------------------------------


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """demo/githttp.py on a free port serving `root` (one bare repository, config.git): (root, its URL)."""
    root = tmp_path / "git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(root / "config.git"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (GitHandler,), {"root": root}))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def commit(work: Path, message: str) -> str:
    """A new commit in `work` (made if needed); its sha."""
    if not work.exists():
        git("init", "--quiet", "--initial-branch=main", str(work))
    (work / "file").write_text(message + "\n")
    git("-C", str(work), "add", "file")
    git("-C", str(work), "commit", "--quiet", f"--message={message}")
    return git("-C", str(work), "rev-parse", "HEAD")


def push(work: Path, url: str, *refspecs: str) -> tuple[str, float]:
    """`git push` (its stderr: the hook's `remote:` lines) and how long it took."""
    started = time.monotonic()
    done = subprocess.run(
        ["git", "-C", str(work), "push", url, *refspecs],
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, explain(done)
    return done.stderr, time.monotonic() - started


def test_a_push_delivers_githubs_signed_push_event(git_server: tuple[Path, str], tmp_path: Path) -> None:
    root, server = git_server
    bare, url = root / "config.git", f"{server}/config.git"
    with serve_receiver(TOKEN, *GITHUB_RECEIVER, header="X-Hub-Signature-256") as receiver:
        add_webhook(bare, receiver.url, TOKEN)
        head = commit(tmp_path / "work", "first")
        output, _ = push(tmp_path / "work", url, "main", "main:refs/tags/v1")
        # The hook ran before git http-backend answered: the deliveries are in when the push returns.
        assert [d.status for d in receiver.deliveries] == [200, 200], output
    events = sorted((json.loads(d.body) for d in receiver.deliveries), key=lambda e: e["ref"])
    assert events == [
        {
            "ref": ref,
            "before": ZERO,
            "after": head,
            "created": True,
            "deleted": False,
            "repository": {"name": "config", "full_name": "config", "clone_url": url},
            "pusher": {"name": "flux", "email": "flux@http.127.0.0.1"},
        }
        for ref in ("refs/heads/main", "refs/tags/v1")
    ]
    for delivery in receiver.deliveries:
        assert delivery.method == "POST" and delivery.path == webhook_path(TOKEN, *GITHUB_RECEIVER)
        assert delivery.headers["Content-Type"] == "application/json"
        assert delivery.headers["X-GitHub-Event"] == "push"
        assert uuid.UUID(delivery.headers["X-GitHub-Delivery"]).version == 4
        assert signature_valid(delivery.headers["X-Hub-Signature-256"], delivery.body, TOKEN)
        assert delivery.headers["X-Hub-Signature-256"].startswith("sha256=")
    assert len({d.headers["X-GitHub-Delivery"] for d in receiver.deliveries}) == 2
    assert f"remote: webhook {receiver.origin}: push refs/heads/main delivered (200)" in output
    hook = (bare / "hooks" / "post-receive").read_text()
    for text in (output, hook):
        assert TOKEN not in text and receiver.path.removeprefix("/hook/") not in text
    assert (bare / WEBHOOKS_FILE).stat().st_mode & 0o777 == 0o600
    assert webhooks(bare)[0].secret == TOKEN and TOKEN not in repr(webhooks(bare))


def silent_listener() -> socket.socket:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow  # waits out the webhooks' deadlines
def test_failing_webhooks_never_fail_or_hold_the_push(git_server: tuple[Path, str], tmp_path: Path) -> None:
    """A wrong secret is refused, a silent and a closed port fail; the push succeeds within the deadline,
    and the webhook that works is still told."""
    root, server = git_server
    bare, url = root / "config.git", f"{server}/config.git"
    with serve_receiver(TOKEN, *GITHUB_RECEIVER, header="X-Hub-Signature-256") as receiver, silent_listener() as silent:
        silent_origin = f"http://127.0.0.1:{silent.getsockname()[1]}"
        closed_origin = f"http://127.0.0.1:{closed_port()}"
        add_webhook(bare, silent_origin + "/hook/x", TOKEN)
        add_webhook(bare, receiver.url, "not-the-token")
        add_webhook(bare, closed_origin + "/hook/x", TOKEN)
        add_webhook(bare, receiver.url, TOKEN)
        head = commit(tmp_path / "work", "first")
        output, seconds = push(tmp_path / "work", url, "main")
        assert sorted(d.status for d in receiver.deliveries) == [200, 400], output
    print(f"push with a silent webhook: {seconds:.2f} s")
    assert seconds < DEADLINE_SECONDS + 2, output
    assert git("ls-remote", url, "main").split()[0] == head
    for line in (
        f"remote: webhook {silent_origin}: push refs/heads/main not delivered: no answer within {DEADLINE_SECONDS:g} s",
        f"remote: webhook {receiver.origin}: push refs/heads/main refused (400)",
        f"remote: webhook {closed_origin}: push refs/heads/main not delivered (ConnectionError)",
        f"remote: webhook {receiver.origin}: push refs/heads/main delivered (200)",
    ):
        assert line in output, output
    assert TOKEN not in output and "/hook/" not in output


def test_a_broken_webhook_file_is_reported_and_the_push_succeeds(git_server: tuple[Path, str], tmp_path: Path) -> None:
    root, server = git_server
    bare, url = root / "config.git", f"{server}/config.git"
    add_webhook(bare, "http://127.0.0.1:9/hook/x", TOKEN)
    (bare / WEBHOOKS_FILE).write_text("{not json")
    head = commit(tmp_path / "work", "first")
    output, _ = push(tmp_path / "work", url, "main")
    assert "remote: webhooks not delivered: JSONDecodeError" in output
    assert git("ls-remote", url, "main").split()[0] == head


def test_add_webhook_refuses_bad_input_and_changes_nothing(tmp_path: Path) -> None:
    bare = tmp_path / "config.git"
    git("init", "--quiet", "--bare", str(bare))
    hooks_before = sorted(p.name for p in (bare / "hooks").iterdir())
    for url, secret, message in (
        ("ftp://127.0.0.1/hook", TOKEN, "must be http"),
        ("http:///hook", TOKEN, "must be http"),
        ("http://127.0.0.1/hook", "", "secret is empty"),
    ):
        with pytest.raises(ValueError, match=message):
            add_webhook(bare, url, secret)
    assert sorted(p.name for p in (bare / "hooks").iterdir()) == hooks_before
    assert not (bare / WEBHOOKS_FILE).exists()
    (bare / "hooks" / "post-receive").write_text("#!/bin/sh\necho someone else's hook\n")
    with pytest.raises(ValueError, match="not ours"):
        add_webhook(bare, "http://127.0.0.1/hook", TOKEN)
    assert not (bare / WEBHOOKS_FILE).exists()


# --- the real notification-controller -------------------------------------------------------------------------------


def receiver_url(info: cluster.ClusterInfo, path: str) -> str:
    return f"http://127.0.0.1:{info.pieces['notification-controller'].ports['receiver']}{path}"


def revision(info: cluster.ClusterInfo, name: str) -> str:
    jsonpath = "--output=jsonpath={.status.artifact.revision}"
    return kubectl(info, "--namespace=flux-system", "get", "gitrepository", name, jsonpath)


def test_a_push_to_the_config_repository_is_fetched_in_seconds(
    running: cluster.ClusterInfo,
    flux_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The Receiver the component renders, its secret, and a webhook on the config repository: the real
    source-controller has the pushed commit seconds after the push, though the GitRepository polls hourly."""
    work = tmp_path / "config"
    first = commit(work, "first")
    git("-C", str(work), "push", "--quiet", running.config_repository_url, "main")
    receiver: dict[str, Any] = only(cluster_with(tmp_path, flux_url, ["receiver-github"]), "Receiver")
    name, namespace = receiver["metadata"]["name"], receiver["metadata"]["namespace"]
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": receiver["spec"]["resources"][0]["name"], "namespace": namespace},
        "spec": {"url": running.config_repository_url, "interval": "1h", "ref": {"branch": "main"}},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": receiver["spec"]["secretRef"]["name"], "namespace": namespace},
        "stringData": {"token": TOKEN},
    }
    kubectl(running, "apply", "--filename=-", stdin=yaml.safe_dump_all([source, secret, receiver]))
    path = wait_for(running, "receiver", name, condition_ready)["status"]["webhookPath"]
    assert path == webhook_path(TOKEN, name, namespace)
    wait_for(running, "gitrepository", source["metadata"]["name"], condition_ready)
    assert revision(running, "flux-system") == f"main@sha1:{first}"

    bare = Path(running.state_dir) / "git" / cluster.CONFIG_REPOSITORY
    add_webhook(bare, receiver_url(running, path), TOKEN)
    second = commit(work, "second")
    output, pushed = push(work, running.config_repository_url, "main")
    started = time.monotonic() - pushed
    assert "push refs/heads/main delivered (200)" in output, output
    while (fetched := revision(running, "flux-system")) != f"main@sha1:{second}":
        assert time.monotonic() - started < 15, f"still {fetched}"
        time.sleep(0.1)
    seconds = time.monotonic() - started
    print(f"push to new artifact: {seconds:.2f} s (the push itself {pushed:.2f} s)")
    assert seconds < 10


def test_flux_refuses_a_wrong_secret_and_the_push_still_succeeds(running: cluster.ClusterInfo, tmp_path: Path) -> None:
    """Needs the Receiver above. A repository whose webhooks are the Receiver with a wrong secret and a port
    that never answers: the push returns within the deadline, and Flux was not asked to fetch."""
    requested = "--output=jsonpath={.metadata.annotations.reconcile\\.fluxcd\\.io/requestedAt}"
    before = kubectl(running, "--namespace=flux-system", "get", "gitrepository", "flux-system", requested)
    path = wait_for(running, "receiver", GITHUB_RECEIVER[0], condition_ready)["status"]["webhookPath"]
    bare = Path(running.state_dir) / "git" / "other.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    with silent_listener() as silent:
        add_webhook(bare, receiver_url(running, path), "not-the-token")
        add_webhook(bare, f"http://127.0.0.1:{silent.getsockname()[1]}/hook/x", TOKEN)
        head = commit(tmp_path / "other", "first")
        output, seconds = push(tmp_path / "other", f"{running.git_url}/other.git", "main")
    print(f"push with a refused and a silent webhook: {seconds:.2f} s")
    assert "push refs/heads/main refused (400)" in output, output
    assert "not delivered: no answer within" in output, output
    assert seconds < DEADLINE_SECONDS + 2
    assert git("ls-remote", f"{running.git_url}/other.git", "main").split()[0] == head
    assert kubectl(running, "--namespace=flux-system", "get", "gitrepository", "flux-system", requested) == before
