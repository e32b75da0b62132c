"""What the Docker daemon's image store can hold, asked before a build without the Docker SDK: over a Unix socket
(the runner mounts /var/run/docker.sock), one `GET /info` with the standard library; any other DOCKER_HOST (tcp,
TLS, ssh) through the SDK. The SDK costs some 60 ms of imports before the build; this costs a few."""

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
    """`GET /info` over the socket, HTTP/1.0 so the daemon closes when done; bounded in time and size."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(daemon_timeout())
        try:
            conn.connect(path)
            conn.sendall(b"GET /info HTTP/1.0\r\nHost: docker\r\n\r\n")
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
                if len(received) > MAX_INFO:
                    raise PublishError(f"Docker daemon at {path}: its /info answer is over {MAX_INFO} bytes")
        except OSError as err:
            raise PublishError(f"Docker daemon not reachable at {path}: {err.strerror or err}") from err
    head, _, body = received.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/") or status.split(b" ", 2)[1:2] != [b"200"]:
        raise PublishError(f"Docker daemon at {path}: /info answered {status[:80]!r}")
    try:
        parsed = json.loads(body)
    except ValueError as err:
        raise PublishError(f"Docker daemon at {path}: /info is not JSON ({err})") from err
    return parsed if isinstance(parsed, dict) else {}


def has_containerd_store(info: Mapping[str, Any]) -> bool:
    """Whether the daemon keeps images in containerd: multi-platform images, cache export, attestations."""
    status = info.get("DriverStatus") or []
    return any(isinstance(pair, list) and len(pair) == 2 and pair[1] == CONTAINERD_STORE for pair in status)
