"""Hostile answers against every sink: credentials a registry echoes back, and tag names or API answers
made to look like workflow commands or terminal controls.

Real parts throughout: the Docker daemon pushes through an echoing proxy in front of a real htpasswd registry
(support/hostile/echo.py), `image-tagger` and both actions run as processes, and the pull-request action talks
to the local GitHub API that is checked against GitHub's OpenAPI description.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from support.cli import assert_input_error, explain, run_cli
from support.github_api import EXAMPLE_WEB, GitHubAPI
from support.github_runner import declared_inputs, input_env_name, run_module_as_step
from support.hostile.echo import EchoingRegistry, echoing_registry
from support.registry import Registry, basic_entry, serve_registry, write_docker_config
from support.sample_app import git
from test_pull_request_action import BRANCH, OWNER_REPO, automation_commit, checkout, seed_config_repo

from image_tagger.fluxrules.setters import ImageRef

REPO = Path(__file__).resolve().parents[1]
USERNAME = "ci-bot"
PASSWORD = "Sp3c!al p@ss/w0rd+=%x"  # URL-encoding, base64 padding and JSON all change it
FORGED_TAG = "zzz\x1b[31m\n::warning::FORGED-by-registry\r##[error]FORGED-legacy"


def echoed_forms(username: str, password: str) -> dict[str, str]:
    """Every form in which a server may echo the login back."""
    pair = f"{username}:{password}"
    standard, urlsafe = base64.b64encode(pair.encode()).decode(), base64.urlsafe_b64encode(pair.encode()).decode()
    return {
        "password": password,
        "user:password": pair,
        "base64": standard,
        "base64 unpadded": standard.rstrip("="),
        "urlsafe base64": urlsafe,
        "urlsafe base64 unpadded": urlsafe.rstrip("="),
        "quote(password)": quote(password, safe=""),
        "quote_plus(password)": quote_plus(password),
        "quote(pair)": quote(pair, safe=""),
        "quote_plus(pair)": quote_plus(pair),
    }


def leaks(text: str) -> list[str]:
    return [name for name, form in echoed_forms(USERNAME, PASSWORD).items() if form in text]


def forged_lines(text: str) -> list[str]:
    """Lines that drive a terminal, or that the runner would parse as a command holding forged text (a mask of a
    refused input is ours: its value is escaped, and masking it only hides more)."""
    return [
        line
        for line in text.splitlines()
        if "\x1b" in line
        or "FORGED" in line
        and line.lstrip().startswith(("::", "##["))
        and not line.startswith("::add-mask::")
    ]


@pytest.fixture(scope="module")
def registry(registry_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry whose password changes under every encoding."""
    with serve_registry(tmp_path_factory.mktemp("hostile-registry"), USERNAME, PASSWORD) as served:
        yield served


@pytest.fixture
def proxy(registry: Registry) -> Iterator[EchoingRegistry]:
    with echoing_registry(registry.host) as served:
        yield served


@pytest.fixture
def repository(request: pytest.FixtureRequest) -> str:
    return "hostile/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60].strip("-")


def publish(proxy: EchoingRegistry, workspace: Path, repository: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(
        "publish",
        *("--image", f"{proxy.host}/{repository}", "--workspace", str(workspace), "--ref", "refs/heads/main"),
        *("--username", USERNAME, "--password-stdin", *extra),
        stdin=PASSWORD + "\n",
        timeout=300,
    )


@pytest.mark.parametrize("form", ["--json", "text"])
def test_publish_never_prints_the_credentials_a_registry_echoes(
    form: str, proxy: EchoingRegistry, registry: Registry, sample_app: Path, repository: str
) -> None:
    proxy.deny_manifest_puts()

    done = publish(proxy, sample_app, repository, *([form] if form == "--json" else []))

    assert done.returncode == 1, explain(done)
    assert proxy.requests(r"/manifests/", method="PUT"), "the daemon never reached the echoing manifest PUT"
    assert "access denied for Basic [redacted] ([redacted])" in done.stderr, explain(done)
    assert leaks(done.stdout + done.stderr) == [], explain(done)
    if form == "--json":
        errors = json.loads(done.stdout)["errors"]
        assert errors and all("[redacted]" in text for text in errors.values()), errors
    assert registry.tags(repository) == []


def run_action(workspace: Path, temp: Path, inputs: dict[str, str], ref: str = "refs/heads/main") -> dict:
    """`python -m image_tagger.entry.action` with the runner's INPUT_* and GITHUB_* for a push of `ref`."""
    temp.mkdir(parents=True, exist_ok=True)
    event = temp / "event.json"
    sha = git(workspace, "rev-parse", "HEAD")
    event.write_text(json.dumps({"ref": ref, "after": sha, "repository": {"full_name": "acme/app"}}))
    given = declared_inputs(REPO / "action.yml") | inputs
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GITHUB_", "INPUT_"))}
    env |= {input_env_name(name): value for name, value in given.items()}
    env |= {
        "GITHUB_REF": ref,
        "GITHUB_SHA": sha,
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_WORKSPACE": str(workspace),
    }
    return run_module_as_step("image_tagger.entry.action", env, temp)


def action_explain(run: dict) -> str:
    return f"rc={run['returncode']}\nstdout:\n{run['stdout'][-3000:]}\nstderr:\n{run['stderr'][-2000:]}"


def test_the_action_never_writes_the_credentials_a_registry_echoes(
    proxy: EchoingRegistry, registry: Registry, sample_app: Path, repository: str, tmp_path: Path
) -> None:
    proxy.deny_manifest_puts()
    inputs = {"image": repository, "registry": proxy.host, "username": USERNAME, "password": PASSWORD}

    run = run_action(sample_app, tmp_path / "runner", inputs)

    assert run["returncode"] == 1, action_explain(run)
    errors = [c for c in run["commands"] if c.name == "error"]
    assert len(errors) == 1 and "access denied for Basic [redacted] ([redacted])" in errors[0].message, errors
    visible = "\n".join(line for line in run["stdout"].splitlines() if not line.startswith("::add-mask::"))
    everything = visible + run["stderr"] + json.dumps(run["outputs"]) + run["summary"]
    assert leaks(everything) == [], action_explain(run)
    assert "[redacted]" in run["outputs"]["json"] and "[redacted]" in run["summary"]
    masked = {c.message for c in run["commands"] if c.name == "add-mask"}
    assert set(echoed_forms(USERNAME, PASSWORD).values()) <= masked  # the runner masks every form too
    assert registry.tags(repository) == []


def overlay(path: Path, image: str) -> Path:
    """An ImageRepository and an alphabetical ImagePolicy: the forged tag sorts last, so the policy picks it."""
    path.write_text(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
        f"metadata:\n  name: app\n  namespace: flux-system\nspec:\n  image: {image}\n  interval: 5m\n"
        "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"
        "metadata:\n  name: app-latest\n  namespace: flux-system\n"
        "spec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    alphabetical:\n      order: asc\n"
    )
    return path


def test_preview_prints_a_forged_tag_escaped(proxy: EchoingRegistry, registry: Registry, tmp_path: Path) -> None:
    registry.seed("hostile/preview", ["1.0.0"])
    image = f"{proxy.host}/hostile/preview"
    proxy.inject_tags(FORGED_TAG)
    config = write_docker_config(tmp_path / "docker", {"auths": {proxy.host: basic_entry(USERNAME, PASSWORD)}})
    env = {"DOCKER_CONFIG": str(config)}
    path = overlay(tmp_path / "overlay.yaml", image)

    text = run_cli("preview", str(path), env=env)
    as_json = run_cli("preview", str(path), "--json", env=env)

    assert text.returncode == 0, explain(text)
    assert forged_lines(text.stdout + text.stderr) == [], explain(text)
    assert len(text.stdout.splitlines()) == 1, explain(text)
    assert "zzz\\x1b[31m\\n::warning::FORGED-by-registry\\r##[error]FORGED-legacy" in text.stdout, explain(text)
    assert as_json.returncode == 0, explain(as_json)
    assert forged_lines(as_json.stdout) == []
    assert json.loads(as_json.stdout)[0]["selected"] == FORGED_TAG  # the data itself, faithfully, as JSON
    assert leaks(text.stdout + text.stderr + as_json.stdout + as_json.stderr) == []


def test_the_action_forecast_prints_a_forged_tag_escaped(
    proxy: EchoingRegistry, registry: Registry, sample_app: Path, repository: str, tmp_path: Path
) -> None:
    proxy.inject_tags(FORGED_TAG)
    overlay(sample_app / "flux-overlay.yaml", f"{proxy.host}/{repository}")
    inputs = {
        "image": repository,
        "registry": proxy.host,
        "username": USERNAME,
        "password": PASSWORD,
        "overlay": "flux-overlay.yaml",
    }

    run = run_action(sample_app, tmp_path / "runner", inputs)

    assert run["returncode"] == 0, action_explain(run)
    flux = [line for line in run["stdout"].splitlines() if line.startswith("flux: ")]
    assert len(flux) == 1 and "stays on zzz\\x1b[31m\\n::warning::FORGED-by-registry" in flux[0], flux
    assert forged_lines(run["stdout"]) == [], action_explain(run)
    assert [c for c in run["commands"] if "FORGED" in c.name + c.message] == []
    assert "\x1b" not in run["summary"] + json.dumps(run["outputs"], ensure_ascii=False)
    assert "\n::warning::" not in run["summary"]


def test_a_username_with_a_line_break_is_refused_before_anything_is_pushed(
    registry: Registry, sample_app: Path, repository: str, tmp_path: Path
) -> None:
    username = f"{USERNAME}\n::warning::FORGED-by-input"
    inputs = {"image": repository, "registry": registry.host, "username": username, "password": PASSWORD}

    run = run_action(sample_app, tmp_path / "runner", inputs)
    cli = run_cli(
        "publish",
        *("--image", f"{registry.host}/{repository}", "--workspace", str(sample_app), "--username", username),
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )

    assert run["returncode"] == 2, action_explain(run)
    errors = [c for c in run["commands"] if c.name == "error"]
    assert len(errors) == 1 and errors[0].message.startswith("username holds a line break"), errors
    assert forged_lines(run["stdout"]) == [] and run["outputs"] == {}
    assert_input_error(cli, "username", "line break")
    assert registry.tags(repository) == []


# --- the pull-request action: GitHub's own answer, forged ---------------------------------------------------------

TOKEN = "ghs_hostile-api-token-0123456789"


def test_the_pull_request_action_prints_a_forged_html_url_on_one_line(registry: Registry, tmp_path: Path) -> None:
    registry.seed("acme/app", ["1.4.1", "1.4.2"])
    bare = seed_config_repo(tmp_path, registry.host)
    policies = {"flux-system:app-production": ImageRef(f"{registry.host}/acme/app", "1.4.2")}
    automation_commit(bare, tmp_path / "automation", policies)
    workspace = checkout(bare, tmp_path / "work" / "ws")
    forged = f"{EXAMPLE_WEB}/{OWNER_REPO}/pull/1\n::error::FORGED-by-api\x1b[2J"

    with GitHubAPI({OWNER_REPO: bare}, TOKEN) as api:
        genuine = api.pull_object
        api.pull_object = lambda full_name, pull, simple: genuine(full_name, pull, simple) | {"html_url": forged}
        run = run_pull_request_action(workspace, api, registry, BRANCH, OWNER_REPO)

    assert run["returncode"] == 0, action_explain(run)
    assert forged_lines(run["stdout"]) == [], action_explain(run)
    assert [c.name for c in run["commands"]] == ["add-mask"] * len(run["commands"]), run["commands"]
    assert run["outputs"]["url"] == f"{EXAMPLE_WEB}/{OWNER_REPO}/pull/1\\n::error::FORGED-by-api\\x1b[2J"
    assert "\x1b" not in run["summary"] + run["outputs"]["json"]
    assert TOKEN not in run["stdout"].split("\n", 1)[1] + run["summary"] + json.dumps(run["outputs"])


def run_pull_request_action(workspace: Path, api: GitHubAPI, registry: Registry, branch: str, repo: str) -> dict:
    temp = workspace.parent / "_temp"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(temp),
        "INPUT_GITHUB-TOKEN": TOKEN,
        "INPUT_PATH": "apps/production",
        "INPUT_BASE": "main",
        "INPUT_REGISTRY": registry.host,
        "INPUT_REGISTRY-USERNAME": registry.username,
        "INPUT_REGISTRY-PASSWORD": registry.password,
        "GITHUB_REPOSITORY": repo,
        "GITHUB_REF": f"refs/heads/{branch}",
        "GITHUB_API_URL": api.url,
        "GITHUB_WORKSPACE": str(workspace),
    }
    return run_module_as_step("image_tagger.pullrequest", env, temp, timeout=120)
