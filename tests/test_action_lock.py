"""requirements/action.txt, the action image's hash lock, agrees with pyproject.toml and holds PyGithub's stack."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "action.txt"
# The pull-request action uses PyGithub; releases are signed with cryptography (cosign's key file opened with
# PyNaCl).
PULL_REQUEST_STACK = {"pygithub", "pynacl", "pyjwt"}
SIGNING = {"cryptography", "pynacl"}


def pyproject_dependencies() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(spec) for spec in project["dependencies"]]


def locked() -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, hashes), from pip-compile's `name==version \\ --hash=sha256:…` entries."""
    text = LOCK.read_text()
    pins: dict[str, tuple[Version, list[str]]] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"([A-Za-z0-9._-]+)==(\S+)", entry)
        if head:
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", entry)
            pins[canonicalize_name(head[1])] = (Version(head[2]), hashes)
    return pins


def test_lock_pins_a_version_inside_every_pyproject_range():
    pins = locked()
    for requirement in pyproject_dependencies():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in {LOCK.name}"
        assert requirement.specifier.contains(pins[name][0]), (name, str(pins[name][0]), str(requirement.specifier))


def test_lock_input_is_pyprojects_dependency_list():
    lines = (REPO / "requirements" / "action.in").read_text().splitlines()
    wanted = [line for line in lines if line.strip() and not line.startswith("#")]
    assert [Requirement(line) for line in wanted] == pyproject_dependencies()


def test_every_pin_is_exact_and_hashed():
    text = LOCK.read_text()
    entries = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    pins = locked()
    assert len(entries) == len(pins) > 6
    assert all(re.fullmatch(r"[a-z0-9._-]+==\S+ \\", line) for line in entries), entries
    assert all(hashes for _, hashes in pins.values())
    assert "--index-url" not in text and "--find-links" not in text and "--extra-index-url" not in text


def test_the_pull_request_and_signing_stacks_are_locked():
    assert set(locked()) >= PULL_REQUEST_STACK | SIGNING


def test_lock_header_says_how_to_regenerate_it():
    assert "requirements/compile.sh" in LOCK.read_text().split("\n\n")[0]
    script = (REPO / "requirements" / "compile.sh").read_text()
    assert "--generate-hashes" in script
