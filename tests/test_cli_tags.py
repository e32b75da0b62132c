"""`image-tagger tags` as outside checks call it: a real process, exit codes, stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SHA = "3f2c1a9e5b7d0c4a1f2e3d4c5b6a79881726354a"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return subprocess.run(
        [sys.executable, "-m", "image_tagger", "tags", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=cwd,
        timeout=60,
    )


def test_release_prints_full_references():
    done = run("--image", "acme/app", "--ref", "refs/tags/v1.4.2", "--sha", SHA)
    assert (done.returncode, done.stdout) == (0, "docker.io/acme/app:1.4.2\n")


def test_json_has_version_tags_and_push():
    done = run(
        "--image", "ghcr.io/acme/app", "--ref", "refs/heads/main", "--sha", SHA, "--timestamp", "1764110000", "--json"
    )
    data = json.loads(done.stdout)
    assert data["version"] == "main-3f2c1a9-1764110000"
    assert data["tags"] == ["ghcr.io/acme/app:main-3f2c1a9-1764110000"]
    assert data["push"] is True


def test_registry_flag_and_pull_request():
    done = run(
        "--image",
        "acme/app",
        "--registry",
        "127.0.0.1:5000",
        "--ref",
        "refs/pull/5/merge",
        "--sha",
        SHA,
        "--event",
        "pull_request",
        "--timestamp",
        "7",
        "--json",
    )
    data = json.loads(done.stdout)
    assert data["tags"] == ["127.0.0.1:5000/acme/app:pr-5-3f2c1a9-7"]
    assert data["push"] is False


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--ref", "refs/tags/v1.2"], "git tag"),
        (["--ref", "refs/tags/v1.2.3+build.5"], "build metadata"),
        (["--ref", "refs/tags/v2.0.0", "--major-version", "1"], "major-version"),
        (["--ref", "refs/tags/v1.0.0", "--major-version", "one"], "major-version"),
        (["--ref", "refs/heads/main", "--sha-length", "2"], "sha-length"),
        (["--ref", "refs/heads/main", "--timestamp", "yesterday"], "timestamp"),
        (["--ref", "refs/heads/main", "--pr-number", "x"], "--pr-number"),
        (["--ref", "refs/heads/main", "--bogus"], "--bogus"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_empty_stdout(args, names):
    done = run("--image", "acme/app", "--sha", SHA, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert names in done.stderr


def test_bad_image_exits_2():
    done = run("--image", "acme/app:latest", "--ref", "refs/tags/v1.0.0", "--sha", SHA)
    assert (done.returncode, done.stdout) == (2, "")
    assert "image 'acme/app:latest' carries a tag" in done.stderr


def test_github_environment_supplies_what_flags_leave_out(tmp_path):
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"repository": {"pushed_at": 1764110123}, "head_commit": {"timestamp": "2025-11-25T22:00:00Z"}})
    )
    env = {
        "GITHUB_REF": "refs/heads/Feature/X",
        "GITHUB_SHA": SHA,
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(event),
    }
    done = run("--image", "acme/app", "--json", env=env)
    assert json.loads(done.stdout)["version"] == "feature-x-3f2c1a9-1764110123"
    # A --ref of its own reads the commit from the checkout it runs in (not this one: CI checks out detached).
    done = run("--image", "acme/app", "--json", "--ref", "refs/tags/v3.1.4", env=env, cwd=checkout(tmp_path / "app"))
    assert json.loads(done.stdout)["version"] == "3.1.4"


def test_pull_request_event_uses_head_commit(tmp_path):
    event = tmp_path / "event.json"
    head = "abcdef0123456789abcdef0123456789abcdef01"
    event.write_text(json.dumps({"number": 9, "pull_request": {"number": 9, "head": {"sha": head}}}))
    env = {
        "GITHUB_REF": "refs/pull/9/merge",
        "GITHUB_SHA": SHA,
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
    }
    data = json.loads(run("--image", "acme/app", "--json", "--timestamp", "build", env=env).stdout)
    assert data["version"].startswith("pr-9-abcdef0-")
    assert data["timestamp_source"] == "build"


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"]


def checkout(path: Path) -> Path:
    """A checkout on branch main with one commit made at 1764000000."""
    env = {**os.environ, "GIT_COMMITTER_DATE": "@1764000000 +0000", "GIT_AUTHOR_DATE": "@1764000000 +0000"}
    subprocess.run([*GIT, "init", "-q", path], check=True)
    subprocess.run([*GIT, "commit", "-q", "--allow-empty", "-m", "x"], cwd=path, check=True, env=env)
    return path


def test_local_checkout_supplies_ref_and_commit_time(tmp_path):
    checkout(tmp_path)
    data = json.loads(run("--image", "acme/app", "--json", cwd=tmp_path).stdout)
    assert data["version"].startswith("main-") and data["version"].endswith("-1764000000")
    assert data["timestamp_source"] == "commit"
    subprocess.run([*GIT, "tag", "v0.3.0"], cwd=tmp_path, check=True)
    assert json.loads(run("--image", "acme/app", "--json", cwd=tmp_path).stdout)["version"] == "0.3.0"


def test_flags_naming_another_ref_ignore_the_surrounding_workflow(tmp_path):
    """Run inside an unrelated pull-request workflow, `--ref refs/heads/main` is still a branch build."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"number": 3, "pull_request": {"number": 3, "head": {"sha": "b" * 40}}}))
    env = {
        "GITHUB_REF": "refs/pull/3/merge",
        "GITHUB_SHA": "c" * 40,
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
    }
    data = json.loads(
        run(
            "--image", "acme/app", "--ref", "refs/heads/main", "--sha", SHA, "--timestamp", "9", "--json", env=env
        ).stdout
    )
    assert (data["version"], data["push"]) == ("main-3f2c1a9-9", True)
    data = json.loads(run("--image", "acme/app", "--json", "--timestamp", "9", env=env).stdout)
    assert (data["version"], data["push"]) == ("pr-3-bbbbbbb-9", False)


def event_env(tmp_path: Path, name: str, ref: str, payload: dict) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps(payload))
    return {"GITHUB_REF": ref, "GITHUB_SHA": SHA, "GITHUB_EVENT_NAME": name, "GITHUB_EVENT_PATH": str(event)}


@pytest.mark.parametrize(
    ("name", "ref", "payload", "stamp"),
    [
        (
            "pull_request",
            "refs/pull/9/merge",
            {"number": 9, "pull_request": {"number": 9, "head": {"sha": SHA}, "updated_at": "2025-11-25T22:33:20Z"}},
            1764110000,
        ),
        ("workflow_dispatch", "refs/heads/main", {"repository": {"pushed_at": "2025-11-25T22:33:20Z"}}, 1764110000),
    ],
)
def test_re_runs_of_pull_requests_and_dispatches_keep_their_tag(tmp_path, name, ref, payload, stamp):
    """The event's own time, the same in every re-run: pull_request.updated_at, repository.pushed_at."""
    data = json.loads(run("--image", "acme/app", "--json", env=event_env(tmp_path, name, ref, payload)).stdout)
    assert data["version"].endswith(f"-3f2c1a9-{stamp}")
    assert data["timestamp_source"] == "push"


@pytest.mark.parametrize("pushed_at", [float("nan"), 1e400, -5, 10**11, "yesterday", [1]])
def test_event_times_that_are_not_times_are_refused(tmp_path, pushed_at):
    payload = json.loads(json.dumps({"repository": {"pushed_at": pushed_at}}, allow_nan=True))
    done = run("--image", "acme/app", env=event_env(tmp_path, "push", "refs/heads/main", payload))
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert "repository.pushed_at" in done.stderr and len(done.stderr.splitlines()) == 1


def test_an_upper_case_owner_is_lower_cased_with_a_notice_other_bad_names_stay_errors():
    done = run("--image", "Acme/App", "--ref", "refs/tags/v1.2.3", "--sha", SHA)
    assert (done.returncode, done.stdout) == (0, "docker.io/acme/app:1.2.3\n")
    assert "lower-cased to 'acme/app'" in done.stderr
    refused = run("--image", "Acme/App!", "--ref", "refs/tags/v1.2.3", "--sha", SHA)
    assert refused.returncode == 2 and "Acme/App!" in refused.stderr
