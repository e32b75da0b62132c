""".github/scripts/pin_action_image.py: only runs.image changes, and only to a Dockerfile or a digest-pinned image."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / ".github" / "scripts" / "pin_action_image.py"
PINNED = "docker://ghcr.io/flux-ci-cd/flux-ci-cd:1.4.2@sha256:" + "ab" * 32


def pin(action: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, "--action", action, *args], capture_output=True, text=True, check=False
    )


def test_pins_the_real_action_yml_and_back_byte_for_byte(tmp_path: Path) -> None:
    action = tmp_path / "action.yml"
    original = (REPO / "action.yml").read_bytes()
    action.write_bytes(original)

    assert pin(action, "--image", PINNED).returncode == 0
    pinned = action.read_bytes()
    assert pinned == original.replace(b"\n  image: Dockerfile\n", f"\n  image: {PINNED}\n".encode())
    assert pin(action, "--dockerfile").returncode == 0
    assert action.read_bytes() == original


def test_only_the_runs_image_line_changes_comments_crlf_and_other_image_keys_stay(tmp_path: Path) -> None:
    action = tmp_path / "action.yml"
    text = (
        "name: x\r\ninputs:\r\n  image:\r\n    description: the image: not this one\r\n    default: ''\r\n"
        "runs:   # how\r\n  using: docker\r\n  # image: commented out\r\n"
        "  image: docker://old.example/a:1@sha256:" + "0" * 64 + "  # released\r\n"
        "  env:\r\n    image: also-not-this\r\nbranding:\r\n  icon: tag\r\n"
    )
    action.write_bytes(text.encode())

    assert pin(action, "--dockerfile").returncode == 0
    expected = text.replace("docker://old.example/a:1@sha256:" + "0" * 64, "Dockerfile")
    assert action.read_bytes() == expected.encode()


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/o/r:1.0.0@sha256:" + "0" * 64,  # no docker://
        "docker://ghcr.io/o/r:1.0.0",  # a tag alone moves
        "docker://ghcr.io/o/r@sha256:" + "0" * 63,
        "docker://ghcr.io/O/r@sha256:" + "0" * 64,  # repository names are lower-case
        "docker://ghcr.io/o/r:1.0.0@sha256:" + "0" * 64 + "\nusing: node20",
        "Dockerfile",
    ],
)
def test_refuses_what_is_not_a_digest_pinned_docker_reference(tmp_path: Path, image: str) -> None:
    action = tmp_path / "action.yml"
    action.write_bytes((REPO / "action.yml").read_bytes())

    done = pin(action, "--image", image)

    assert done.returncode == 2 and "--image must be" in done.stderr
    assert action.read_bytes() == (REPO / "action.yml").read_bytes()


def test_accepts_a_loopback_registry_with_port(tmp_path: Path) -> None:
    action = tmp_path / "action.yml"
    action.write_bytes((REPO / "action.yml").read_bytes())
    image = "docker://127.0.0.1:5000/flux-ci-cd/flux-ci-cd:0.0.0-test@sha256:" + "1" * 64

    assert pin(action, "--image", image).returncode == 0
    assert f"\n  image: {image}\n" in action.read_text()


@pytest.mark.parametrize(
    "text",
    ["name: x\n", "runs:\n  using: docker\n", "runs:\n  using: docker\n  image: a\n  image: b\n"],
)
def test_fails_without_exactly_one_runs_image(tmp_path: Path, text: str) -> None:
    action = tmp_path / "action.yml"
    action.write_text(text)

    done = pin(action, "--dockerfile")

    assert done.returncode == 1 and "pin_action_image" in done.stderr
    assert action.read_text() == text


def test_the_pull_request_action_pins_to_the_same_image_and_back(tmp_path: Path) -> None:
    action = tmp_path / "action.yml"
    original = (REPO / "pull-request" / "action.yml").read_bytes()
    action.write_bytes(original)

    assert pin(action, "--image", PINNED).returncode == 0
    assert f"\n  image: {PINNED}\n".encode() in action.read_bytes()
    assert pin(action, "--dockerfile", "../Dockerfile").returncode == 0
    assert action.read_bytes() == original
