"""The two questions a BuildKit job asks the Docker daemon around its build, without the Docker SDK: what its image
store can hold (`GET /info`) and whether the registry takes the login (`POST /auth`, as `docker login` asks), over
a Unix socket (the runner mounts /var/run/docker.sock) with the standard library; any other DOCKER_HOST (tcp, TLS,
ssh) goes through the SDK. The SDK costs some 60 ms of imports before the build, and about 0.15 s in the login
check's thread beside it, where it competes with the build's start for the interpreter; this costs a few."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from typing import Any

from image_tagger.edges.daemonwait import daemon_timeout
from image_tagger.model.errors import PublishError

CONTAINERD_STORE = "io.containerd.snapshotter.v1"
MAX_INFO = 4 << 20
DEFAULT_SOCKET = "/var/run/docker.sock"


def socket_path(env: Mapping[str, str] = os.environ) -> str | None:
    """The daemon's Unix socket, or None when DOCKER_HOST names another kind of address."""
    host = env.get("DOCKER_HOST", "") or f"unix://{DEFAULT_SOCKET}"
    return host.removeprefix("unix://") if host.startswith("unix://") else None


def info_over_socket(path: str) -> dict[str, Any]:
    """`GET /info` over the socket."""
    status, answer = _ask(path, b"GET /info HTTP/1.0\r\nHost: docker\r\n\r\n", "/info")
    if status != b"200":
        raise PublishError(f"Docker daemon at {path}: /info answered {status[:80]!r}")
    return answer


def login_over_socket(path: str, registry: str | None, username: str, password: str) -> None:
    """`POST /auth` over the socket: the daemon asks the registry (Docker Hub when `registry` is None)."""
    fields = {"username": username, "password": password, **({"serveraddress": registry} if registry else {})}
    body = json.dumps(fields).encode()
    head = f"POST /auth HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    status, answer = _ask(path, head.encode() + b"\r\n\r\n" + body, "/auth")
    if status != b"200":
        said = answer.get("message") if isinstance(answer.get("message"), str) else status.decode(errors="replace")
        raise PublishError(f"login to {registry or 'docker.io'} as {username!r} failed: {said}")


def _ask(path: str, request: bytes, endpoint: str) -> tuple[bytes, dict[str, Any]]:
    """One request over the socket, HTTP/1.0 so the daemon closes when done; bounded in time and size. Its status
    code and JSON body ({} when the body is not an object)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(daemon_timeout())
        try:
            conn.connect(path)
            conn.sendall(request)
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
                if len(received) > MAX_INFO:
                    raise PublishError(f"Docker daemon at {path}: its {endpoint} answer is over {MAX_INFO} bytes")
        except OSError as err:
            raise PublishError(f"Docker daemon not reachable at {path}: {err.strerror or err}") from err
    head, _, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    if not status_line.startswith(b"HTTP/"):
        raise PublishError(f"Docker daemon at {path}: {endpoint} answered {status_line[:80]!r}")
    status = (status_line.split(b" ", 2)[1:2] or [b""])[0]
    try:
        parsed = json.loads(body)
    except ValueError as err:
        if status == b"200":
            raise PublishError(f"Docker daemon at {path}: {endpoint} is not JSON ({err})") from err
        parsed = {}
    return status, parsed if isinstance(parsed, dict) else {}


def has_containerd_store(info: Mapping[str, Any]) -> bool:
    """Whether the daemon keeps images in containerd: multi-platform images, cache export, attestations."""
    status = info.get("DriverStatus") or []
    return any(isinstance(pair, list) and len(pair) == 2 and pair[1] == CONTAINERD_STORE for pair in status)
