"""The credential helper buildx runs for our registry, as buildx runs it: its script, `get` with the server on stdin.

On Linux the script reads the credential from a sealed memfd of this process (credhelper.provide); elsewhere it
runs the Python relay, which asks a socket; both are run here for real (the relay by taking memfd away).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from image_tagger.edges import credhelper


@pytest.fixture
def private(tmp_path: Path) -> Path:
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    return folder


@contextmanager
def helper(private: Path, registry: str, username: str, password: str) -> Iterator[Path]:
    """The helper's script as buildx finds it, for the block's duration."""
    with credhelper.provide(private, registry, username, password) as script:
        path = private / "docker-credential-image-tagger"
        path.write_text(script)
        path.chmod(0o700)
        yield path


def ask(path: Path, action: str, server: str = "") -> subprocess.CompletedProcess[str]:
    """As docker-credential-helpers' client asks: the server on stdin, no newline; an empty environment."""
    return subprocess.run([str(path), action], input=server, env={}, capture_output=True, text=True, check=False)


def assert_answers_for_its_registry_alone(private: Path) -> None:
    password = 'pa"55 \\ $HOME `id` \u00e9'  # JSON escapes and shell syntax reach buildx as they are
    with helper(private, "127.0.0.1:5000", "ci-bot", password) as path:
        local, other = ask(path, "get", "127.0.0.1:5000"), ask(path, "get", "ghcr.io")
        assert (ask(path, "store", "{}").returncode, ask(path, "erase", "x").returncode) == (0, 0)
        listed = ask(path, "list")
        unknown = ask(path, "delete-everything")
    with helper(private, "docker.io", "hub-user", "hub-token") as path:
        hub = ask(path, "get", "https://index.docker.io/v1/")
    with helper(private, "[::1]:5000", "v6", "pw") as path:
        brackets, bare = ask(path, "get", "[::1]:5000"), ask(path, "get", "::1")

    assert local.returncode == 0, local.stderr
    assert (json.loads(local.stdout)["Username"], json.loads(local.stdout)["Secret"]) == ("ci-bot", password)
    assert json.loads(hub.stdout)["Username"] == "hub-user"
    assert other.returncode == 1 and other.stdout.strip() == "credentials not found in native keychain"
    assert password not in other.stdout + other.stderr
    assert (listed.returncode, json.loads(listed.stdout)) == (0, {})
    assert unknown.returncode == 2 and "accepted: get | store | erase | list" in unknown.stderr
    assert json.loads(brackets.stdout)["Username"] == "v6" and bare.returncode == 1  # `[` is no pattern
    gone = ask(path, "get", "[::1]:5000")  # the build is over: nothing answers
    assert (
        gone.returncode == 1 and "pw" not in gone.stdout and ("gone" in gone.stdout or "did not answer" in gone.stdout)
    )


def test_the_helper_answers_from_memory_for_its_registry_alone(private: Path) -> None:
    with credhelper.provide(private, "127.0.0.1:5000", "u", "p") as script:
        assert "/proc/" in script and "python" not in script  # shell builtins: it starts nothing
    assert_answers_for_its_registry_alone(private)


def test_the_credential_in_memory_is_sealed_and_no_child_inherits_it(private: Path) -> None:
    with credhelper.provide(private, "127.0.0.1:5000", "u", "s3cret") as script:
        answer = next(line for line in script.splitlines() if "/proc/" in line).rsplit("<", 1)[1].split(";")[0]
        assert "memfd:image-tagger-credential" in os.readlink(answer)
        with pytest.raises(OSError), open(answer, "a") as sealed:  # noqa: PTH123 - the /proc link, as written
            sealed.write("x")
        listing = "import os\nfor n in os.listdir('/proc/self/fd'):\n    print(os.path.realpath('/proc/self/fd/' + n))"
        inherited = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, check=True).stdout
        assert "image-tagger-credential" not in inherited
        assert not any(p.name == "credentials.sock" for p in private.iterdir())  # nothing on the file system
    assert not Path(answer).exists() or "image-tagger-credential" not in os.readlink(answer)


def test_without_memfd_the_relay_answers_over_a_private_socket(private: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "memfd_create")
    with credhelper.provide(private, "127.0.0.1:5000", "u", "p") as script:
        assert "image_tagger.edges.credrelay" in script and " -i " in script  # `env -i`, then the relay
    assert_answers_for_its_registry_alone(private)
    (private.parent / "open").mkdir(mode=0o755)
    with (
        pytest.raises(PermissionError, match="private folder"),
        credhelper.provide(private.parent / "open", "a", "b", "c"),
    ):
        pass


def test_a_sandbox_that_refuses_memfd_gets_the_relay(private: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object) -> int:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "memfd_create", refused)
    with credhelper.provide(private, "127.0.0.1:5000", "u", "p") as script:
        assert "image_tagger.edges.credrelay" in script
    assert_answers_for_its_registry_alone(private)
