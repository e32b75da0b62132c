"""Production pins digests (issue 18, item 4): `digestReflectionPolicy` as image-reflector-controller applies it.

Pure parts without a registry: the IfNotPresent/Always/Never rule, the digest the manifests already record, the
commit message with digests, `update` keeping a recorded digest. Then a real registry: the digest a HEAD names
(an image manifest, an OCI index), read as Flux reads it, and `select`, `update` and `preview` writing
`name:tag@digest`. tests/test_cluster.py and tests/test_differential.py hold it against the real controllers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
import requests
from support.cli import explain, run_cli
from support.registry import Registry, basic_entry, push_tags, write_docker_config

from image_tagger.edges.registry.session import RegistrySession
from image_tagger.fluxrules import automation, commitmsg, policy, setters, standard
from image_tagger.fluxrules.imageref import ImageRef
from image_tagger.model.errors import PolicyFailure
from image_tagger.model.imagename import parse_image
from image_tagger.model.registry import RegistryAuth

REPO = Path(__file__).resolve().parents[1]
OLD, NEW = "sha256:" + "0" * 64, "sha256:" + "1" * 64
IMAGE = "docker.io/acme/app"
# go-containerregistry remote.Head's Accept (pkg/v1/remote: allManifestMediaTypes, comma-joined), which Flux sends.
GGCR_HEAD_ACCEPT = (
    "application/vnd.docker.distribution.manifest.v1+json,application/vnd.docker.distribution.manifest.v1+prettyjws,"
    "application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json,"
    "application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.index.v1+json"
)


class Lookups:
    """A registry stand-in for the rule: counts the lookups, answers NEW (or None: no manifest)."""

    def __init__(self, answer: str | None = NEW) -> None:
        self.answer, self.count = answer, 0

    def __call__(self) -> str | None:
        self.count += 1
        return self.answer


# --- the rule: IRC updateImageRefs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reflection", "previous", "digest", "looked_up"),
    [
        ("Never", ImageRef(IMAGE, "1.4.2", OLD), "", 0),
        ("IfNotPresent", None, NEW, 1),  # the policy's first evaluation
        ("IfNotPresent", ImageRef(IMAGE, "1.4.2", OLD), OLD, 0),  # same name and tag: the recorded digest stays
        ("IfNotPresent", ImageRef(IMAGE, "1.4.1", OLD), NEW, 1),  # a new tag: its digest
        ("IfNotPresent", ImageRef("docker.io/acme/other", "1.4.2", OLD), NEW, 1),  # another name
        ("IfNotPresent", ImageRef(IMAGE, "1.4.2"), NEW, 1),  # recorded without a digest
        ("Always", ImageRef(IMAGE, "1.4.2", OLD), NEW, 1),  # every time: a moved tag is followed
    ],
)
def test_reflection_rule(reflection: str, previous: ImageRef | None, digest: str, looked_up: int) -> None:
    lookup = Lookups()
    assert policy.latest_ref(reflection, ImageRef(IMAGE, "1.4.2"), previous, lookup) == ImageRef(IMAGE, "1.4.2", digest)
    assert lookup.count == looked_up


def test_a_tag_without_a_manifest_fails_like_flux() -> None:
    with pytest.raises(PolicyFailure, match=f"failed fetching digest of {IMAGE}:1.4.2"):
        policy.latest_ref("Always", ImageRef(IMAGE, "1.4.2"), None, Lookups(None))


def test_the_shipped_release_policy_pins_and_the_branch_policy_does_not() -> None:
    assert policy.parse_policy(standard.release_policy(1)).reflection == "IfNotPresent"
    assert policy.parse_policy(standard.branch_policy()).reflection == "Never"
    assert policy.parse_policy({**standard.branch_policy(), "digestReflectionPolicy": None}).reflection == "Never"


# --- offline: the manifests stand in for the policy's status --------------------------------------------------

TARGETS = automation.find_targets(
    [
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageRepository",
            "metadata": {"name": "app", "namespace": "flux-system"},
            "spec": {"image": IMAGE},
        },
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": "app-production", "namespace": "flux-system"},
            "spec": {"imageRepositoryRef": {"name": "app"}, **standard.release_policy(1)},
        },
    ]
)


class CountingTags(automation.KnownTags):
    looked_up: list[str]

    def digest(self, target: automation.Scanned, tag: str) -> str | None:
        self.looked_up.append(tag)
        return super().digest(target, tag)


def source(digests: dict[str, str]) -> CountingTags:
    found = CountingTags({IMAGE: ["1.0.0", "1.4.2"]}, digests)
    object.__setattr__(found, "looked_up", [])
    return found


def test_if_not_present_keeps_the_recorded_digest_without_asking_the_registry() -> None:
    tags = source({f"{IMAGE}:1.4.2": NEW})
    [kept] = automation.predict(TARGETS, tags, {"flux-system:app-production": OLD})
    assert (str(kept.ref), tags.looked_up) == (f"{IMAGE}:1.4.2@{OLD}", [])
    [fresh] = automation.predict(TARGETS, tags)
    assert (str(fresh.ref), tags.looked_up) == (f"{IMAGE}:1.4.2@{NEW}", ["1.4.2"])


def test_a_missing_manifest_is_no_selection_with_flux_reason() -> None:
    [prediction] = automation.predict(TARGETS, source({}))
    assert prediction.ref is None and prediction.error.startswith(f"failed fetching digest of {IMAGE}:1.4.2")


def marked(image: str) -> str:
    return f'image: {image} # {{"$imagepolicy": "flux-system:app-production"}}\n'


def test_recorded_digests_come_from_full_reference_markers_of_the_same_name_and_tag(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(marked(f"{IMAGE}:1.4.2@{OLD}"))
    (tmp_path / "b.yaml").write_text(marked(f"{IMAGE}:1.4.2"))  # no digest: no record, no disagreement
    ref = {"flux-system:app-production": ImageRef(IMAGE, "1.4.2")}
    assert setters.recorded_digests(tmp_path, ref) == {"flux-system:app-production": OLD}
    assert setters.recorded_digests(tmp_path, {"flux-system:app-production": ImageRef(IMAGE, "1.5.0")}) == {}
    (tmp_path / "c.yaml").write_text(marked(f"{IMAGE}:1.4.2@{NEW}"))
    assert setters.recorded_digests(tmp_path, ref) == {}  # two records disagree: looked up instead


def test_the_commit_message_carries_the_digests(tmp_path: Path) -> None:
    """flux/'s template over .Changed.Changes: old and new are the whole references, digests included."""
    template = (REPO / "flux" / "automation" / "image-update-automation.yaml").read_text()
    assert "range .Changed.Changes" in template
    (tmp_path / "a.yaml").write_text(marked(f"{IMAGE}:1.0.0@{OLD}"))
    [update] = setters.plan_updates(tmp_path, {"flux-system:app-production": ImageRef(IMAGE, "1.4.2", NEW)})
    text = "Update\n{{ range .Changed.Changes }}- {{ .OldValue }} -> {{ .NewValue }}\n{{ end }}"
    message = commitmsg.render(text, ("flux-system", "app"), update.changes)
    assert message == f"Update\n- {IMAGE}:1.0.0@{OLD} -> {IMAGE}:1.4.2@{NEW}\n"


def test_update_keeps_the_digest_the_files_hold_and_never_asks_the_registry(tmp_path: Path) -> None:
    """IfNotPresent and the same tag: nothing to change (the registry named is closed: it would fail if asked)."""
    image = "127.0.0.1:9/acme/app"
    (tmp_path / "a.yaml").write_text(marked(f"{image}:1.4.2@{OLD}"))
    assignment = f"--policy=flux-system:app-production={image}:1.4.2"
    done = run_cli("update", str(tmp_path), assignment, "--digest-reflection=IfNotPresent")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), explain(done)
    explicit = run_cli("update", str(tmp_path), f"{assignment}@{NEW}", "--digest-reflection=Always")
    assert (explicit.returncode, explicit.stdout) == (0, "a.yaml\n"), explain(explicit)  # a given digest wins
    assert (tmp_path / "a.yaml").read_text() == marked(f"{image}:1.4.2@{NEW}")


def test_head_sends_flux_accept_and_reads_the_digest_header() -> None:
    """What remote.Head sends and reads: a HEAD, ggcr's Accept, the Docker-Content-Digest (a sha256 one)."""
    seen: list[tuple[str, str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
            seen.append((self.command, self.path, self.headers.get("Accept")))
            found = self.path.endswith("/1.4.2")
            self.send_response(200 if found else 404)
            if found:
                self.send_header("Docker-Content-Digest", NEW)
                self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        with RegistrySession(parse_image(f"127.0.0.1:{server.server_port}/acme/app"), RegistryAuth()) as session:
            assert session.head_digest("1.4.2") == NEW
            assert session.head_digest("9.9.9") is None
    finally:
        server.shutdown()
    assert seen == [
        ("HEAD", "/v2/acme/app/manifests/1.4.2", GGCR_HEAD_ACCEPT),
        ("HEAD", "/v2/acme/app/manifests/9.9.9", GGCR_HEAD_ACCEPT),
    ]


# --- a real registry ------------------------------------------------------------------------------------------

REPOSITORY = "digests/app"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> Iterator[dict[str, str]]:
    """Two releases with digests of their own, and 1.5.0 an OCI index over 1.4.2's image: tag -> digest."""
    http = requests.Session()
    http.auth = registry.auth
    digests = {tag: push_tags(registry.host, REPOSITORY, [tag], http, {"tag": tag}) for tag in ("1.0.0", "1.4.2")}
    image = registry.manifest(REPOSITORY, "1.4.2")
    body = json.dumps(image).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": image["mediaType"],
                "digest": digests["1.4.2"],
                "size": len(body),
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    raw = json.dumps(index).encode()
    put = http.put(
        f"http://{registry.host}/v2/{REPOSITORY}/manifests/1.5.0",
        data=raw,
        headers={"Content-Type": OCI_INDEX},
        timeout=10,
    )
    put.raise_for_status()
    digests["1.5.0"] = "sha256:" + hashlib.sha256(raw).hexdigest()
    assert put.headers["Docker-Content-Digest"] == digests["1.5.0"]
    yield digests


def test_head_digest_is_the_manifest_or_the_index(registry: Registry, pushed: dict[str, str]) -> None:
    account = RegistryAuth(registry.username, registry.password)
    with RegistrySession(parse_image(f"{registry.host}/{REPOSITORY}"), account) as session:
        assert {tag: session.head_digest(tag) for tag in pushed} == pushed
        assert session.head_digest("0.0.9") is None
    assert len(set(pushed.values())) == 3  # the index's digest, not its image's


@pytest.fixture
def logged_in(registry: Registry, tmp_path: Path) -> dict[str, str]:
    entry = basic_entry(registry.username, registry.password)
    return {"DOCKER_CONFIG": str(write_docker_config(tmp_path / "docker", {"auths": {registry.host: entry}}))}


def test_select_prints_the_tag_and_its_digest(
    registry: Registry, pushed: dict[str, str], logged_in: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "tags").write_text("\n".join(pushed) + "\n")
    policy_file = REPO / "flux" / "image-policy.yaml"  # the shipped release policy (1.x, IfNotPresent)
    image = f"--image={registry.host}/{REPOSITORY}"
    done = run_cli("select", f"--policy={policy_file}", f"--tags={tmp_path / 'tags'}", image, env=logged_in)
    assert (done.returncode, done.stdout) == (0, f"1.5.0@{pushed['1.5.0']}\n"), explain(done)
    tag_only = run_cli("select", f"--policy={policy_file}", f"--tags={tmp_path / 'tags'}", env=logged_in)
    assert (tag_only.returncode, tag_only.stdout) == (0, "1.5.0\n"), explain(tag_only)
    assert "reflects digests (IfNotPresent)" in tag_only.stderr


def test_update_writes_name_tag_at_digest(
    registry: Registry, pushed: dict[str, str], logged_in: dict[str, str], tmp_path: Path
) -> None:
    apps = Path(shutil.copytree(REPO / "kustomize" / "apps", tmp_path / "apps"))
    image = f"{registry.host}/{REPOSITORY}"
    production = apps / "production" / "image.yaml"
    production.write_text(production.read_text().replace("docker.io/acme/app", image))
    assignment = f"--policy=flux-system:app-production={image}:1.4.2"
    done = run_cli("update", str(apps), assignment, "--digest-reflection=IfNotPresent", env=logged_in)
    assert (done.returncode, done.stdout) == (0, "production/image.yaml\n"), explain(done)
    assert f"image: {image}:1.4.2@{pushed['1.4.2']} #" in production.read_text()
    # The tag moves to other content: IfNotPresent keeps the recorded digest, Always follows the registry.
    moved = push_tags(registry.host, REPOSITORY, ["1.4.2"], _session(registry), {"tag": "1.4.2", "moved": True})
    kept = run_cli("update", str(apps), assignment, "--digest-reflection=IfNotPresent", env=logged_in)
    assert (kept.returncode, kept.stdout) == (0, ""), explain(kept)
    followed = run_cli("update", str(apps), assignment, "--digest-reflection=Always", env=logged_in)
    assert (followed.returncode, followed.stdout) == (0, "production/image.yaml\n"), explain(followed)
    assert f"image: {image}:1.4.2@{moved} #" in production.read_text()
    push_tags(registry.host, REPOSITORY, ["1.4.2"], _session(registry), {"tag": "1.4.2"})  # back, for the others


def _session(registry: Registry) -> requests.Session:
    http = requests.Session()
    http.auth = registry.auth
    return http
