"""Git context from a local checkout: which ref it is, and a source URL safe to put in an image label."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import assert_input_error, run_cli

from image_tagger.edges.context import IN_CHECKOUT, TEST_MERGE, commit_time_of, from_local_git, resolve, source_url
from image_tagger.model.errors import InputError


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("https://github.com/acme/app.git", "https://github.com/acme/app"),
        ("https://user:ghp_SECRET@github.com/acme/app.git", "https://github.com/acme/app"),
        ("https://gitlab-ci-token:glcbt-XYZ@gitlab.example.com:8443/g/app", "https://gitlab.example.com:8443/g/app"),
        ("git@github.com:acme/app.git", "https://github.com/acme/app"),
        ("ssh://git@github.com/acme/app.git", "https://github.com/acme/app"),
        (None, None),
        ("/srv/git/app.git", None),
    ],
)
def test_source_url_never_carries_credentials(remote, url):
    assert source_url(remote) == url


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True, env=os.environ | (env or {})
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "one")
    git(tmp_path, "remote", "add", "origin", "https://bot:t0ken@example.com/acme/app.git")
    return tmp_path


def test_only_version_tags_make_a_local_release(repo: Path):
    git(repo, "tag", "deployed")
    assert from_local_git(repo).ref == "refs/heads/main"
    git(repo, "tag", "app/v1.2.0")
    ctx = from_local_git(repo)
    assert (ctx.ref, ctx.source_url) == ("refs/tags/app/v1.2.0", "https://example.com/acme/app")


def test_a_local_checkout_s_commit_time_comes_from_git_with_its_sha_and_no_object_reader(repo: Path):
    """The CLI asks git anyway: the time comes with the sha, and dulwich (some 16 ms to load) stays out of the way;
    a user's log.showSignature does not get in the way of the answer."""
    git(repo, "config", "log.showSignature", "true")
    git(repo, "commit", "-q", "--allow-empty", "-m", "two", env={"GIT_COMMITTER_DATE": "1700000000 +0200"})
    probe = (
        "import sys; from pathlib import Path; from image_tagger.edges.context import resolve; "
        f"ctx = resolve({{}}, {{}}, Path({str(repo)!r})); "
        "print(ctx.sha, ctx.commit_time, ctx.commit_time_from, 'dulwich' in sys.modules, sep='|')"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().split("|") == [git(repo, "rev-parse", "HEAD"), "1700000000", IN_CHECKOUT, "False"]
    other = git(repo, "rev-parse", "HEAD~1")
    assert resolve({"sha": other}, {}, repo).commit_time == int(git(repo, "show", "-s", "--format=%ct", other))


def test_detached_head_without_a_version_tag_asks_for_the_ref(repo: Path):
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(InputError, match="detached HEAD"):
        from_local_git(repo)


def github_run(tmp_path: Path, event: bytes, **env: str) -> dict[str, str]:
    """The environment of a pull-request workflow run whose event file holds `event`."""
    (tmp_path / "event.json").write_bytes(event)
    return {
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_REF": "refs/pull/3/merge",
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        **env,
    }


def pull_event(**head: object) -> bytes:
    return json.dumps({"pull_request": {"number": 3, "updated_at": "2026-01-01T00:00:00Z", "head": head}}).encode()


@pytest.mark.parametrize(
    ("event", "named"),
    [
        (b'{"pull_request": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested deeper than 100 levels"),
        (b"{" + b'"a": {' * 101 + b"}" * 102, "nested deeper than 100 levels"),
        (b"[]", "not a JSON object"),
        (b'{"pull_request": {"head": "main"}}', "pull_request.head is not a JSON object"),
        (pull_event(sha=["0123456"]), "pull_request.head.sha is not a string"),
    ],
    ids=["deep", "just-past-the-cap", "array", "head-string", "sha-list"],
)
def test_a_malformed_event_file_is_exit_2_naming_it(event: bytes, named: str, tmp_path: Path) -> None:
    """Before: a RecursionError traceback (deep), an AttributeError (head string), or the event silently ignored."""
    env = github_run(tmp_path, event)
    done = run_cli("tags", "--image", "acme/app", env=env)
    assert_input_error(done, f"GITHUB_EVENT_PATH {tmp_path / 'event.json'}", named)


def test_a_control_character_in_an_event_sha_is_exit_2(tmp_path: Path) -> None:
    """Before: git was asked about the sha first: ValueError("embedded null byte"), exit 1 in the action."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "Dockerfile").write_text("FROM scratch\n")
    env = github_run(tmp_path, pull_event(sha="0123456\x00789abcdef"))
    event_field = r"event field pull_request.head.sha '0123456\\x00789abcdef' holds a control"
    with pytest.raises(InputError, match=rf"^GITHUB_EVENT_PATH {tmp_path / 'event.json'}: {event_field}"):
        resolve({}, env, checkout=workspace)
    done = run_cli("publish", "--image", "acme/app", "--workspace", str(workspace), env=env)
    assert_input_error(done, "pull_request.head.sha", "control character")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GITHUB_REF": "refs/heads/main\n::warning::forged"}, "GITHUB_REF"),
        ({"GITHUB_SHA": "0123456789abcdef\r"}, "GITHUB_SHA"),
    ],
)
def test_a_control_character_in_the_run_s_ref_or_sha_is_exit_2(env: dict[str, str], named: str, tmp_path: Path) -> None:
    """Before: the newline was slugged into a branch tag, exit 0."""
    run = github_run(tmp_path, b"{}", GITHUB_EVENT_NAME="push", **env)
    done = run_cli("tags", "--image", "acme/app", env=run)
    assert_input_error(done, named, "control character")


def test_a_sha_like_an_option_is_never_one_for_git(repo: Path) -> None:
    """Before: an event sha `--output=FILE` was an option of `git show`, which wrote FILE."""
    assert commit_time_of(repo, f"--output={repo / 'written'}") is None
    assert not (repo / "written").exists()


HEAD_TIME, MERGE_TIME = 1764000000, 1764000900


@pytest.fixture
def origin(tmp_path: Path) -> dict[str, str]:
    """A repository with main, a pull request's head commit and GitHub's test merge of it (two parents)."""
    where = tmp_path / "origin"
    where.mkdir()
    stamp = {"GIT_COMMITTER_DATE": f"@{HEAD_TIME - 600} +0000", "GIT_AUTHOR_DATE": f"@{HEAD_TIME - 600} +0000"}
    git(where, "init", "-q", env=stamp)
    git(where, "commit", "-q", "--allow-empty", "-m", "main", env=stamp)
    main = git(where, "rev-parse", "HEAD")
    when = {"GIT_COMMITTER_DATE": f"@{HEAD_TIME} +0000", "GIT_AUTHOR_DATE": "@1000000000 +0000"}
    git(where, "checkout", "-q", "-b", "feature", env=when)
    git(where, "commit", "-q", "--allow-empty", "-m", "head", env=when)
    head = git(where, "rev-parse", "HEAD")
    merged = {"GIT_COMMITTER_DATE": f"@{MERGE_TIME} +0000", "GIT_AUTHOR_DATE": f"@{MERGE_TIME} +0000"}
    git(where, "checkout", "-q", main)
    git(where, "merge", "-q", "--no-ff", "-m", "test merge", head, env=merged)
    return {"origin": str(where), "main": main, "head": head, "merge": git(where, "rev-parse", "HEAD")}


def shallow_checkout(origin: dict[str, str], commit: str, dest: Path) -> Path:
    """What actions/checkout makes: one commit fetched at depth 1, written as a pack (not loose objects)."""
    dest.mkdir()
    git(dest, "init", "-q")
    git(dest, "-c", "fetch.unpackLimit=1", "fetch", "-q", "--depth=1", f"file://{origin['origin']}", commit)
    git(dest, "checkout", "-q", "FETCH_HEAD")
    assert list((dest / ".git" / "objects" / "pack").glob("*.pack")), "the commit is in a pack"
    return dest


def pull_request_env(tmp_path: Path, origin: dict[str, str]) -> dict[str, str]:
    event = {"number": 7, "pull_request": {"number": 7, "head": {"sha": origin["head"]}, "updated_at": 1764001000}}
    return github_run(
        tmp_path, json.dumps(event).encode(), GITHUB_EVENT_NAME="pull_request", GITHUB_SHA=origin["merge"]
    ) | {"GITHUB_REF": "refs/pull/7/merge"}


def test_the_commit_time_comes_from_a_shallow_packed_checkout_with_no_git(
    origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The action's image has no git: the head commit's committer time is read from the checkout's pack."""
    checkout = shallow_checkout(origin, origin["head"], tmp_path / "head")
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    ctx = resolve({}, pull_request_env(tmp_path, origin), checkout=checkout)
    assert (ctx.sha, ctx.commit_time, ctx.commit_time_from) == (origin["head"], HEAD_TIME, "the commit in the checkout")
    assert ctx.push_time == 1764001000 and "pull_request.updated_at" in (ctx.push_time_from or "")


def test_a_test_merge_checkout_gives_the_merge_commit_s_time(origin, tmp_path: Path) -> None:
    """actions/checkout's default for a pull request: the test merge at depth 1, without the head commit."""
    checkout = shallow_checkout(origin, origin["merge"], tmp_path / "merge")
    assert git(checkout, "cat-file", "-t", origin["merge"]) == "commit"
    with pytest.raises(subprocess.CalledProcessError):
        git(checkout, "cat-file", "-t", origin["head"])
    ctx = resolve({}, pull_request_env(tmp_path, origin), checkout=checkout)
    assert (ctx.commit_time, ctx.commit_time_from) == (MERGE_TIME, TEST_MERGE)


def test_a_merge_that_does_not_hold_the_head_commit_gives_no_time(origin, tmp_path: Path) -> None:
    checkout = shallow_checkout(origin, origin["main"], tmp_path / "main")
    env = pull_request_env(tmp_path, origin) | {"GITHUB_SHA": origin["main"]}
    assert resolve({}, env, checkout=checkout).commit_time is None


def test_the_checkout_s_commit_time_wins_over_the_event_s(origin, tmp_path: Path) -> None:
    """One commit, one config: a push (head_commit in the event) and a manual run read the same time."""
    checkout = shallow_checkout(origin, origin["head"], tmp_path / "head")
    event = {"head_commit": {"timestamp": "2001-09-09T01:46:40Z"}, "repository": {"pushed_at": 1764002000}}
    env = github_run(tmp_path, json.dumps(event).encode(), GITHUB_EVENT_NAME="push", GITHUB_SHA=origin["head"])
    ctx = resolve({}, env | {"GITHUB_REF": "refs/heads/feature"}, checkout=checkout)
    assert ctx.commit_time == HEAD_TIME
    ctx = resolve({}, env | {"GITHUB_REF": "refs/heads/feature"}, checkout=tmp_path / "nowhere")
    assert (ctx.commit_time, ctx.commit_time_from) == (1000000000, "the event's head_commit.timestamp")
