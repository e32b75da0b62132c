"""What a BuildKit job asks the Docker daemon around its build, without the Docker SDK: what its image store can hold
(`GET /info`), whether the registry takes the login (`POST /auth`, as `docker login` asks), and for a signed job on
the classic store the image it loaded (`docker save`) and the drop of its tag, over a Unix socket (the runner mounts
/var/run/docker.sock) with the standard library; any other DOCKER_HOST (tcp, TLS, ssh) goes through the SDK. The
SDK costs some 60 ms of imports before the build, about 0.15 s in the login check's thread beside it, where it
competes with the build's start for the interpreter, and two requests of its own when it connects; this costs a
few."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from image_tagger.edges.daemonwait import daemon_timeout
from image_tagger.model.errors import PublishError

CONTAINERD_STORE = "io.containerd.snapshotter.v1"
MAX_INFO = 4 << 20
CHUNK = 1 << 20  # a saved image's reads
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


def save_over_socket(path: str, ref: str) -> Iterator[bytes]:
    """`GET /images/<ref>/get` over the socket, what `docker save` asks: the image's tar as the daemon streams it (each
    read bounded by the daemon timeout, as the SDK bounds it), for an upload by digest from the classic store."""
    request = f"GET /images/{ref}/get HTTP/1.0\r\nHost: docker\r\n\r\n".encode()  # a reference's characters: no escapes
    with _sent(path, request) as conn:
        received = b""
        while b"\r\n\r\n" not in received and len(received) <= MAX_INFO and (chunk := conn.recv(65536)):
            received += chunk
        status, body = _status(path, received, "/images/get")
        if status != b"200":
            while len(body) <= MAX_INFO and (chunk := conn.recv(65536)):
                body += chunk
            raise PublishError(f"the daemon did not hand over {ref}: {_message(body) or status.decode()}")
        if body:
            yield body
        while chunk := conn.recv(CHUNK):
            yield chunk


def untag_over_socket(path: str, ref: str) -> None:
    """`DELETE /images/<ref>?noprune=1` over the socket, what `docker rmi --no-prune` asks: one local tag gone (the
    image stays under its other tags); a failure here is not the job's failure."""
    request = f"DELETE /images/{ref}?noprune=1 HTTP/1.0\r\nHost: docker\r\n\r\n".encode()
    with contextlib.suppress(PublishError):
        _ask(path, request, "/images")


def _ask(path: str, request: bytes, endpoint: str) -> tuple[bytes, dict[str, Any]]:
    """One request over the socket, HTTP/1.0 so the daemon closes when done; bounded in time and size. Its status
    code and JSON body ({} when the body is not an object)."""
    with _sent(path, request) as conn:
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
            if len(received) > MAX_INFO:
                raise PublishError(f"Docker daemon at {path}: its {endpoint} answer is over {MAX_INFO} bytes")
    status, body = _status(path, received, endpoint)
    try:
        parsed = json.loads(body)
    except ValueError as err:
        if status == b"200":
            raise PublishError(f"Docker daemon at {path}: {endpoint} is not JSON ({err})") from err
        parsed = {}
    return status, parsed if isinstance(parsed, dict) else {}


@contextlib.contextmanager
def _sent(path: str, request: bytes) -> Iterator[socket.socket]:
    """A connection to the daemon's socket with `request` sent, each wait bounded by the daemon timeout; the network's
    failures, also while the answer is read, become one PublishError."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(daemon_timeout())
        try:
            conn.connect(path)
            conn.sendall(request)
            yield conn
        except OSError as err:
            raise PublishError(f"Docker daemon not reachable at {path}: {err.strerror or err}") from err


def _status(path: str, received: bytes, endpoint: str) -> tuple[bytes, bytes]:
    """The status code of an answer, and the part of its body that came with the head."""
    head, _, body = received.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    if not status_line.startswith(b"HTTP/"):
        raise PublishError(f"Docker daemon at {path}: {endpoint} answered {status_line[:80]!r}")
    return (status_line.split(b" ", 2)[1:2] or [b""])[0], body


def _message(body: bytes) -> str:
    """The daemon's error `message`, if its answer is JSON that has one."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    said = parsed.get("message") if isinstance(parsed, dict) else None
    return said if isinstance(said, str) else ""


def has_containerd_store(info: Mapping[str, Any]) -> bool:
    """Whether the daemon keeps images in containerd: multi-platform images, cache export, attestations."""
    status = info.get("DriverStatus") or []
    return any(isinstance(pair, list) and len(pair) == 2 and pair[1] == CONTAINERD_STORE for pair in status)
