"""The fast tier stays worth having and stays honest: `pytest --fast` collects hundreds of tests, none of them
asks for a real part, and its fence (tests/support/fastguard.py) refuses a daemon, a host name, a binary and a
stranger's port, even when the code under test catches the refusal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REAL_PARTS
from support.cli import explain

TESTS = Path(__file__).resolve().parent
FAST_TIER_MINIMUM = 300
# Dumps what `--fast` kept: each test's id, its fixtures (with those of its fixtures) and its markers.
DUMP = """
import json, os

def pytest_collection_finish(session):
    kept = {item.nodeid: {"fixtures": sorted(item.fixturenames), "marks": sorted({m.name for m in item.iter_markers()})}
            for item in session.items}
    with open(os.environ["TIERS_DUMP"], "w") as out:
        json.dump(kept, out)
"""


def pytest_outside_the_fence(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A pytest of its own: when this test runs in the fast tier, its child must not log into our fence's log."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FCI_FAST_TIER_") and k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_fast_tier_is_hundreds_of_tests_that_ask_for_no_real_part(tmp_path: Path) -> None:
    (tmp_path / "tiers_dump.py").write_text(DUMP)
    dump = tmp_path / "kept.json"
    done = pytest_outside_the_fence(
        "--fast", "--collect-only", "-q", "-p", "tiers_dump",
        cwd=TESTS.parent,
        env={"PYTHONPATH": str(tmp_path), "TIERS_DUMP": str(dump)},
    )  # fmt: skip
    assert done.returncode == 0, explain(done)
    kept = json.loads(dump.read_text())

    assert len(kept) >= FAST_TIER_MINIMUM, f"the fast tier shrank to {len(kept)} tests"
    for nodeid, item in kept.items():
        assert not REAL_PARTS & set(item["fixtures"]), nodeid
        assert "fast" in item["marks"] and not {"real", "slow"} & set(item["marks"]), nodeid
    # The job's decisions through our fakes are the heart of the fast tier; the daemon tests are not in it.
    assert sum(nodeid.startswith("tests/test_job.py::") for nodeid in kept) >= 15
    assert not any(nodeid.startswith(("tests/test_engines.py", "tests/test_buildkit.py")) for nodeid in kept)


PROBES = """
import socket
import subprocess
import sys

import docker
import pytest


def test_a_daemon_the_code_gives_up_on():
    try:
        docker.from_env().ping()
    except Exception:
        pass  # code that degrades quietly: the fence fails the test all the same


def test_a_host_name():
    socket.create_connection(("registry-1.docker.io", 443), timeout=1)


def test_another_machine():
    socket.create_connection(("192.0.2.1", 443), timeout=1)


def test_a_binary():
    subprocess.run(["kustomize", "version"], capture_output=True)


def test_a_python_child_reaching_out():
    subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"])


def test_a_loopback_port_no_server_of_ours_holds():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
    socket.create_connection(("127.0.0.1", port + 1), timeout=1)


def test_a_real_part_asked_for_at_run_time(request):
    request.getfixturevalue("docker_client")


def test_a_server_of_our_own_and_git_are_fine(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        socket.create_connection(server.getsockname(), timeout=1).close()
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
"""


def test_the_fence_fails_every_reach_outside_and_lets_our_own_parts_be(tmp_path: Path) -> None:
    (tmp_path / "test_probes.py").write_text(PROBES)
    done = pytest_outside_the_fence(
        "--fast", "-p", "conftest", str(tmp_path), cwd=tmp_path, env={"PYTHONPATH": str(TESTS)}
    )
    assert done.returncode == 1, explain(done)
    failures = failure_sections(done.stdout)

    assert "test_a_server_of_our_own_and_git_are_fine" not in failures, explain(done)
    for probe, says in {
        "test_a_daemon_the_code_gives_up_on": "the Unix socket /nonexistent/fast-tier-has-no-docker-daemon.sock",
        "test_a_host_name": "look up the host name 'registry-1.docker.io'",
        "test_another_machine": "reach 192.0.2.1, off this machine",
        "test_a_binary": "start 'kustomize'",
        "test_a_python_child_reaching_out": "reach 192.0.2.1, off this machine",
        "test_a_loopback_port_no_server_of_ours_holds": "where no server of this test listens",
        "test_a_real_part_asked_for_at_run_time": "the fixture 'docker_client' starts a real part",
    }.items():
        assert says in failures.pop(probe, ""), explain(done)
    assert not failures, explain(done)


def failure_sections(stdout: str) -> dict[str, str]:
    """pytest's failure report split by test: `____ test_name ____` heads each test's section."""
    parts = re.split(r"^_{3,} (test_\w+) _{3,}$", stdout.split("short test summary info")[0], flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))
