"""Git context from a local checkout: which ref it is, and a source URL safe to put in an image label."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from image_tagger.context import from_local_git, source_url
from image_tagger.errors import InputError


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


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


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


def test_detached_head_without_a_version_tag_asks_for_the_ref(repo: Path):
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(InputError, match="detached HEAD"):
        from_local_git(repo)
