"""The pull-request action end to end: real git repositories (a bare config repository, the automation's clone,
the workflow's checkout), a real registry holding labelled images, and a local GitHub REST API whose every
request and response is checked against GitHub's published OpenAPI description (tests/support/github_api.py).

The action runs as its container runs it, `python -m image_tagger.pullrequest` with INPUT_* and GITHUB_*.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from ruamel.yaml import YAML
from support.github_api import GitHubAPI
from support.github_runner import PIN_SCRIPT, GithubRunner, run_module_as_step
from support.registry import OCI_MANIFEST_TYPE, Registry, push_tags
from support.sigstore import GITHUB_ISSUER, WORKFLOW, LocalSigstore

from image_tagger.edges.registry.session import RegistrySession
from image_tagger.edges.signer import SigningKey
from image_tagger.fluxrules.setters import ImageRef, plan_updates, write_updates
from image_tagger.model.imagename import parse_image
from image_tagger.model.registry import RegistryAuth
from image_tagger.rules import signatures

REPO = Path(__file__).resolve().parents[1]
TOKEN = "ghs_pull-request-test-token-0123456789"
OWNER_REPO = "acme/config"
BRANCH = "flux/app-production"
INPUTS = (
    *("github-token", "path", "base", "branch", "labels"),
    *("registry", "registry-username", "registry-password", "verify-key", "timeout-seconds"),
    *("verify-certificate-identity", "verify-certificate-identity-regexp", "verify-certificate-oidc-issuer"),
    "verify-trusted-root",
)
REVISIONS = {tag: hashlib.sha1(tag.encode()).hexdigest() for tag in ("1.4.1", "1.4.2", "1.4.3", "2.0.0", "2.1.0")}


def push_image(registry: Registry, repository: str, tag: str, labels: dict[str, str]) -> str:
    """A manifest whose config carries `labels` under `repository:tag`; returns the registry's digest."""
    http = requests.Session()
    http.auth = registry.auth
    config = {"architecture": "amd64", "os": "linux", "config": {"Labels": labels}}
    return push_tags(registry.host, repository, [tag], http, config, OCI_MANIFEST_TYPE)


def labels_of(source: str, tag: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.revision": REVISIONS[tag],
        "org.opencontainers.image.version": tag,
    }


@pytest.fixture(scope="module")
def images(registry: Registry) -> dict[str, str]:
    """app 1.4.1-1.4.3 and cart 2.0.0/2.1.0 in the (password-protected) registry; `name:tag` -> digest."""
    digests = {}
    for tag in ("1.4.1", "1.4.2", "1.4.3"):
        digests[f"app:{tag}"] = push_image(registry, "acme/app", tag, labels_of("https://github.com/acme/app", tag))
    for tag in ("2.0.0", "2.1.0"):
        digests[f"cart:{tag}"] = push_image(registry, "acme/cart", tag, labels_of("https://github.com/acme/cart", tag))
    return digests


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=fluxcdbot", "-c", "user.email=fluxcdbot@users.noreply.github.com"]
    done = subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def config_files(host: str) -> dict[str, str]:
    """A config repository like kustomize/: production with a full-reference marker and a kustomize images
    entry with a `:tag` marker, staging (outside the action's path) with its own marker."""
    return {
        "apps/production/image.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: app\nspec:\n"
            "  template:\n    spec:\n      containers:\n        - name: app\n"
            f'          image: {host}/acme/app:1.4.1 # {{"$imagepolicy": "flux-system:app-production"}}\n'
        ),
        "apps/production/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - image.yaml\n"
            f"images:\n  - name: {host}/acme/cart\n"
            '    newTag: 2.0.0 # {"$imagepolicy": "flux-system:cart-production:tag"}\n'
        ),
        "apps/staging/image.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
            "      containers:\n        - name: app\n"
            f"          image: {host}/acme/app:main-3f2c1a9-1764110000"
            ' # {"$imagepolicy": "flux-system:app-staging"}\n'
        ),
    }


@pytest.fixture
def config_repo(tmp_path: Path, registry: Registry, images: dict[str, str]) -> Path:
    """The bare config repository ("GitHub"), main holding config_files()."""
    return seed_config_repo(tmp_path, registry.host)


def seed_config_repo(tmp_path: Path, host: str) -> Path:
    """A bare repository under tmp_path whose main holds config_files(host)."""
    bare = tmp_path / "config.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "--quiet", str(bare), str(seed))
    for path, text in config_files(host).items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(text)
    git(seed, "add", "--all")
    git(seed, "commit", "--quiet", "-m", "config")
    git(seed, "push", "--quiet", "origin", "HEAD:main")
    return bare


def automation_commit(bare: Path, work: Path, policies: dict[str, ImageRef]) -> None:
    """What Flux's automation does with a push branch: check it out (or main), apply setters, commit, push."""
    if not work.exists():
        git(bare.parent, "clone", "--quiet", str(bare), str(work))
        exists = git(work, "ls-remote", "--heads", "origin", BRANCH).strip()
        git(work, "checkout", "--quiet", "-B", BRANCH, f"origin/{BRANCH}" if exists else "origin/main")
    root = work / "apps" / "production"
    updates = plan_updates(root, policies)
    assert updates, policies
    write_updates(root, updates)
    git(work, "commit", "--quiet", "--all", "-m", "Update images (flux-system/app)")
    git(work, "push", "--quiet", "origin", f"HEAD:{BRANCH}")


def release_app(config_repo: Path, tmp_path: Path, registry: Registry, tag: str = "1.4.2") -> None:
    """The common start: the automation moved production's app to `tag` on its branch."""
    policies = {"flux-system:app-production": ImageRef(f"{registry.host}/acme/app", tag)}
    automation_commit(config_repo, tmp_path / "automation", policies)


def checkout(bare: Path, into: Path) -> Path:
    """The workflow's actions/checkout of the pushed automation branch (depth 1: the action needs no history)."""
    if into.exists():
        subprocess.run(["rm", "-rf", str(into)], check=True)
    git(bare.parent, "clone", "--quiet", "--depth", "1", "--branch", BRANCH, bare.as_uri(), str(into))
    return into


def run_action(
    workspace: Path, api: GitHubAPI, registry: Registry, inputs: dict[str, str] | None = None, ref: str = ""
) -> dict:
    """`python -m image_tagger.pullrequest` with the environment the runner gives the container."""
    temp = workspace.parent / "_temp"
    event = temp / "event.json"
    temp.mkdir(exist_ok=True)
    event.write_text(json.dumps({"ref": ref or f"refs/heads/{BRANCH}", "repository": {"default_branch": "main"}}))
    given = dict.fromkeys(INPUTS, "") | {
        "github-token": TOKEN,
        "path": "apps/production",
        "labels": "release, flux-automation",
        "registry": registry.host,
        "registry-username": registry.username,
        "registry-password": registry.password,
    }
    given |= inputs or {}
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(temp),
        **{f"INPUT_{name.upper()}": value for name, value in given.items()},
        "GITHUB_REPOSITORY": OWNER_REPO,
        "GITHUB_REF": ref or f"refs/heads/{BRANCH}",
        "GITHUB_API_URL": api.url,
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_ACTIONS": "true",
    }
    run = run_module_as_step("image_tagger.pullrequest", env, temp, timeout=120)
    return run | {"errors": [c for c in run["commands"] if c.name == "error"]}


@pytest.fixture
def api(config_repo: Path):
    with GitHubAPI({OWNER_REPO: config_repo}, TOKEN) as served:
        yield served
        assert served.violations == [], "\n".join(served.violations)


def calls(api: GitHubAPI, method: str, suffix: str) -> list:
    return [c for c in api.calls if c.method == method and c.path.endswith(suffix)]


def test_first_run_opens_a_pull_request_then_a_new_change_updates_it(
    config_repo: Path, api: GitHubAPI, registry: Registry, images: dict[str, str], tmp_path: Path
) -> None:
    host = registry.host
    automation = tmp_path / "automation"
    automation_commit(config_repo, automation, {"flux-system:app-production": ImageRef(f"{host}/acme/app", "1.4.2")})

    first = run_action(checkout(config_repo, tmp_path / "work" / "ws"), api, registry)

    assert first["returncode"] == 0, first["stdout"] + first["stderr"]
    assert first["outputs"]["operation"] == "created"
    assert [c.body for c in calls(api, "POST", "/pulls")] == [
        {"title": "app: 1.4.1 → 1.4.2", "body": api.pulls[OWNER_REPO][0]["body"], "base": "main", "head": BRANCH}
    ]
    pull = api.pulls[OWNER_REPO][0]
    assert pull["title"] == "app: 1.4.1 → 1.4.2"
    assert pull["labels"] == ["release", "flux-automation"]
    body = pull["body"]
    assert f"`{host}/acme/app`" in body and "`1.4.1`" in body and "`1.4.2`" in body
    assert images["app:1.4.2"] in body and images["app:1.4.1"] in body
    assert f"https://github.com/acme/app/compare/{REVISIONS['1.4.1']}...{REVISIONS['1.4.2']}" in body
    assert "apps/production/image.yaml:11" in body
    assert "staging" not in body and "cart" not in body
    assert first["outputs"]["number"] == "1"
    assert json.loads(first["outputs"]["json"])["images"][0]["digest"] == images["app:1.4.2"]
    logged = [line for line in first["stdout"].splitlines() if not line.startswith("::add-mask::")]
    assert first["stdout"].splitlines()[0] == f"::add-mask::{TOKEN}"  # masked before anything else is printed
    assert TOKEN not in "\n".join(logged) + first["stderr"] + first["summary"]

    # Flux commits again on its branch: app moves on and cart (a kustomize images entry, `:tag` marker) too.
    automation_commit(
        config_repo,
        automation,
        {
            "flux-system:app-production": ImageRef(f"{host}/acme/app", "1.4.3"),
            "flux-system:cart-production": ImageRef(f"{host}/acme/cart", "2.1.0"),
        },
    )
    second = run_action(checkout(config_repo, tmp_path / "work" / "ws"), api, registry)

    assert second["returncode"] == 0, second["stdout"] + second["stderr"]
    assert second["outputs"]["operation"] == "updated"
    assert len(api.pulls[OWNER_REPO]) == 1 and len(calls(api, "POST", "/pulls")) == 1
    pull = api.pulls[OWNER_REPO][0]
    assert pull["title"] == "app: 1.4.1 → 1.4.3, cart: 2.0.0 → 2.1.0"
    assert f"https://github.com/acme/app/compare/{REVISIONS['1.4.1']}...{REVISIONS['1.4.3']}" in pull["body"]
    assert f"https://github.com/acme/cart/compare/{REVISIONS['2.0.0']}...{REVISIONS['2.1.0']}" in pull["body"]
    assert images["cart:2.1.0"] in pull["body"]
    assert len(calls(api, "POST", "/labels")) == 1  # the labels were already there
    assert [c.body for c in calls(api, "PATCH", "/pulls/1")] == [{"title": pull["title"], "body": pull["body"]}]

    third = run_action(checkout(config_repo, tmp_path / "work" / "ws"), api, registry)
    assert third["outputs"]["operation"] == "unchanged"
    assert len(calls(api, "PATCH", "/pulls/1")) == 1


def test_bad_token_is_one_line_and_exit_1(
    config_repo: Path, api: GitHubAPI, registry: Registry, tmp_path: Path
) -> None:
    release_app(config_repo, tmp_path, registry)
    result = run_action(checkout(config_repo, tmp_path / "w" / "ws"), api, registry, {"github-token": "ghs_wrong"})

    assert result["returncode"] == 1
    assert len(result["errors"]) == 1 and "\n" not in result["errors"][0].message
    assert "HTTP 401" in result["errors"][0].message and "github-token" in result["errors"][0].message
    assert result["stderr"] == ""
    assert OWNER_REPO not in api.pulls


@pytest.mark.parametrize(
    ("inputs", "ref", "says"),
    [
        ({"path": ""}, "", "path is required"),
        ({"path": "../outside"}, "", "leads out of the workspace"),
        ({"labels": "x" * 51}, "", "50 characters"),
        ({"base": BRANCH}, "", "both"),
        ({"github-token": ""}, "", "github-token is empty"),
        ({}, "refs/tags/v1.0.0", "is not a branch"),
        ({"verify-certificate-identity": WORKFLOW}, "", "verify-certificate-oidc-issuer is needed for keyless"),
        ({"verify-certificate-oidc-issuer": GITHUB_ISSUER}, "", "verify-certificate-identity or verify-certificate-"),
        ({"verify-key": "x", "verify-certificate-identity": WORKFLOW}, "", "verify-key and verify-certificate-*"),
        ({"verify-trusted-root": "{}"}, "", "verify-trusted-root is set without verify-certificate-identity"),
        (
            {
                "verify-certificate-identity": WORKFLOW,
                "verify-certificate-oidc-issuer": "i",
                "verify-trusted-root": "{",
            },
            "",
            "verify-trusted-root: not a trusted_root.json",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    inputs: dict[str, str], ref: str, says: str, config_repo: Path, api: GitHubAPI, registry: Registry, tmp_path: Path
) -> None:
    workspace = tmp_path / "w" / "ws"
    git(tmp_path, "clone", "--quiet", str(config_repo), str(workspace))
    result = run_action(workspace, api, registry, inputs, ref)

    assert result["returncode"] == 2, result["stdout"] + result["stderr"]
    assert len(result["errors"]) == 1 and says in result["errors"][0].message
    assert "\n" not in result["errors"][0].message
    assert api.calls == []


def test_nothing_changed_opens_nothing(config_repo: Path, api: GitHubAPI, registry: Registry, tmp_path: Path) -> None:
    work = tmp_path / "automation"
    git(tmp_path, "clone", "--quiet", str(config_repo), str(work))
    git(work, "push", "--quiet", "origin", f"HEAD:{BRANCH}")  # the branch exists, with main's content

    result = run_action(checkout(config_repo, tmp_path / "w" / "ws"), api, registry)

    assert result["returncode"] == 0, result["stdout"] + result["stderr"]
    assert result["outputs"]["operation"] == "none"
    assert OWNER_REPO not in api.pulls
    assert [c.path for c in api.calls] == [f"/repos/{OWNER_REPO}/git/trees/main"]


def test_an_open_pull_request_from_another_run_is_updated_not_doubled(
    config_repo: Path, api: GitHubAPI, registry: Registry, tmp_path: Path
) -> None:
    """GitHub refuses a second pull request for one head and base (422); the action then updates the open one."""
    release_app(config_repo, tmp_path, registry)
    api.pulls[OWNER_REPO] = [
        {"number": 1, "state": "open", "labels": [], "title": "older", "body": "", "head": BRANCH, "base": "main"}
    ]
    hidden = api.list_pulls
    api.list_pulls = lambda full_name, args: (
        api.json(200, []) if not calls(api, "POST", "/pulls") else hidden(full_name, args)
    )

    result = run_action(checkout(config_repo, tmp_path / "w" / "ws"), api, registry)

    assert result["returncode"] == 0, result["stdout"] + result["stderr"]
    assert result["outputs"]["operation"] == "updated"
    assert [c.status for c in calls(api, "POST", "/pulls")] == [422]
    assert len(api.pulls[OWNER_REPO]) == 1 and api.pulls[OWNER_REPO][0]["title"] == "app: 1.4.1 → 1.4.2"


def test_registry_trouble_still_opens_the_pull_request_and_warns(
    config_repo: Path, api: GitHubAPI, registry: Registry, tmp_path: Path
) -> None:
    release_app(config_repo, tmp_path, registry)
    result = run_action(checkout(config_repo, tmp_path / "w" / "ws"), api, registry, {"registry-password": "wrong"})

    assert result["returncode"] == 0, result["stdout"] + result["stderr"]
    warnings = [c for c in result["commands"] if c.name == "warning"]
    assert warnings and "refused" in warnings[0].message
    body = api.pulls[OWNER_REPO][0]["body"]
    assert "registry:" in body and "/compare/" not in body


def test_action_metadata_runs_the_main_image_with_its_own_entrypoint() -> None:
    """pull-request/action.yml: the repository's one Dockerfile, `python -m image_tagger.pullrequest`, and the
    inputs the tests give are exactly the declared ones."""
    action_dir = Path(__file__).resolve().parents[1] / "pull-request"
    manifest = YAML(typ="safe").load((action_dir / "action.yml").read_text())
    runs = manifest["runs"]
    assert runs["using"] == "docker" and (action_dir / runs["image"]).resolve() == action_dir.parent / "Dockerfile"
    assert [runs["entrypoint"], *runs["args"]] == ["python", "-m", "image_tagger.pullrequest"]
    assert set(manifest["inputs"]) == set(INPUTS)
    assert manifest["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert [name for name, spec in manifest["inputs"].items() if spec.get("required")] == ["path"]


def test_the_released_image_runs_it_as_the_runner_runs_a_docker_action(
    config_repo: Path,
    api: GitHubAPI,
    registry: Registry,
    tmp_path: Path,
    python_base_image: str,
    open_registry: Registry,
) -> None:
    """One image for both actions: pull-request/action.yml pinned to the released image, run with its
    entrypoint and args by the runner-faithful harness (docker pull, then the runner's docker run)."""
    builder = GithubRunner(action_dir=REPO, base_image=python_base_image)
    pinned = builder.publish(open_registry.host, tmp_path / "released")
    action = tmp_path / "pull-request-action"
    action.mkdir()
    shutil.copyfile(REPO / "pull-request" / "action.yml", action / "action.yml")
    subprocess.run([sys.executable, PIN_SCRIPT, "--action", action / "action.yml", "--image", pinned], check=True)
    runner = GithubRunner(action_dir=action, deviations=builder.deviations)
    runner.pull()
    host = registry.host
    release_app(config_repo, tmp_path, registry)
    workspace = checkout(config_repo, tmp_path / "repo" / "repo")
    inputs = {
        "github-token": TOKEN,
        "path": "apps/production",
        "registry": host,
        "registry-username": registry.username,
        "registry-password": registry.password,
    }
    try:
        run = runner.run(
            tmp_path,
            workspace,
            event={"ref": f"refs/heads/{BRANCH}", "repository": {"default_branch": "main"}},
            ref=f"refs/heads/{BRANCH}",
            sha=git(workspace, "rev-parse", "HEAD").strip(),
            inputs=inputs,
            repository=OWNER_REPO,
            server={"GITHUB_API_URL": api.url},
        )
    finally:
        runner.remove_image()

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.argv[run.argv.index("--entrypoint") + 1] == "python"
    assert run.argv[-2:] == ["-m", "image_tagger.pullrequest"]
    assert run.outputs["operation"] == "created"
    assert api.pulls[OWNER_REPO][0]["title"] == "app: 1.4.1 → 1.4.2"
    visible = "\n".join(line for line in run.stdout.splitlines() if "::add-mask::" not in line)
    assert TOKEN not in visible + run.stderr + run.summary


def gate_run(
    config_repo: Path, tmp_path: Path, api: GitHubAPI, registry: Registry, gate: dict[str, str], version: str
) -> dict:
    """Release `version` of the app, then run the pull-request action with the `gate` inputs."""
    release_app(config_repo, tmp_path, registry, version)
    return run_action(checkout(config_repo, tmp_path / "work" / "ws"), api, registry, gate)


def assert_not_signed_as_required(refused: dict, api: GitHubAPI, version: str) -> str:
    """The gate refused `version`: exit 1, the pull request says not to merge, one error annotation names it; the
    pull request's body."""
    assert refused["returncode"] == 1, refused["stdout"] + refused["stderr"]
    body = api.pulls[OWNER_REPO][0]["body"]
    assert "**Do not merge: not signed as required.**" in body
    [error] = refused["errors"]
    assert error.properties.get("title") == "Not signed as required" and version in error.message
    return body


def test_the_gate_passes_a_signed_release_and_refuses_an_unsigned_one(
    config_repo: Path, api: GitHubAPI, registry: Registry, images: dict[str, str], tmp_path: Path
) -> None:
    """verify-key set: 1.4.2 carries a signature for its version, so the check passes; 1.4.3, pushed with the
    registry password alone (nothing signed), fails it, and the pull request says why before anyone merges."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    name = parse_image(f"{registry.host}/acme/app")
    document = signatures.payload(name.name, images["app:1.4.2"], "1.4.2")
    with RegistrySession(name, RegistryAuth(registry.username, registry.password)) as session:
        signed = SigningKey("release.key", private).sign(document)
        session.put_signature(images["app:1.4.2"], signatures.SignatureLayer(document, signed))
    gate = {"verify-key": public.decode()}

    passed = gate_run(config_repo, tmp_path, api, registry, gate, "1.4.2")
    assert passed["returncode"] == 0, passed["stdout"] + passed["stderr"]
    assert "- signature: signed:" in api.pulls[OWNER_REPO][0]["body"]

    refused = gate_run(config_repo, tmp_path, api, registry, gate, "1.4.3")
    body = assert_not_signed_as_required(refused, api, "1.4.3")
    assert f"{name.name}:1.4.3@{images['app:1.4.3']}: unsigned" in body
    assert refused["outputs"]["operation"] == "updated"  # the pull request itself is up to date


def test_the_gate_requires_keyless_signatures_by_the_release_workflow(
    config_repo: Path, api: GitHubAPI, registry: Registry, images: dict[str, str], tmp_path: Path
) -> None:
    """Keyless gate (a test Sigstore's trust root as verify-trusted-root): 1.4.2, signed keyless by the release
    workflow of its tag, passes; 1.4.3, signed keyless by a pull request's workflow of the same repository, fails,
    and the pull request says whose signature it carries. (After the verify-key test: it leaves 1.4.3 signed.)"""
    sigstore = LocalSigstore()
    name = parse_image(f"{registry.host}/acme/app")
    pull_request_workflow = "https://github.com/acme/app/.github/workflows/ci.yml@refs/pull/7/merge"
    with RegistrySession(name, RegistryAuth(registry.username, registry.password)) as session:
        for tag, identity in (("1.4.2", WORKFLOW), ("1.4.3", pull_request_workflow)):
            digest = images[f"app:{tag}"]
            session.put_signature(digest, sigstore.sign(signatures.payload(name.name, digest, tag), identity))
    gate = {
        "verify-certificate-identity-regexp": r"^https://github\.com/acme/app/\.github/workflows/release\.yml@refs/tags/v",
        "verify-certificate-oidc-issuer": GITHUB_ISSUER,
        "verify-trusted-root": sigstore.trusted_root().decode(),
    }

    passed = gate_run(config_repo, tmp_path, api, registry, gate, "1.4.2")
    assert passed["returncode"] == 0, passed["stdout"] + passed["stderr"]
    assert (
        f"- signature: signed: {name.name}:1.4.2@{images['app:1.4.2']}: signed by an identity matching"
        in (api.pulls[OWNER_REPO][0]["body"])
    )

    refused = gate_run(config_repo, tmp_path, api, registry, gate, "1.4.3")
    body = assert_not_signed_as_required(refused, api, "1.4.3")
    assert f"signed by another identity ({pull_request_workflow})" in body
