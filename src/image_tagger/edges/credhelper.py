"""A Docker credential helper that asks this process for the registry credential, never a file or an environment.

buildx reads registry credentials only through the Docker config; a config with `auths` would put the
password on disk, and a variable in buildx's environment would reach every process buildx starts. So
the BuildKit edge writes a config naming this helper (`credHelpers`, for our registry only) and, for
the build's duration, serves the one credential over a Unix socket in its private (0700) temporary
folder (`serve`). buildx starts the helper with buildx's own environment (build secrets included), so
the helper's script exec's `env -i` at once and this program runs with nothing but the socket's path
and PYTHONPATH. It asks the socket for the server URL docker gave it; the socket answers only for the
registry being built for. The protocol: `get` with the server URL on stdin, JSON out; the program is
credrelay.py.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from image_tagger.edges.credrelay import ANSWER_TIMEOUT, MAX_MESSAGE
from image_tagger.model.errors import InputError
from image_tagger.model.imagename import DOCKER_HUB, registry_of_server

# The keys under which Docker's config code asks for Docker Hub's credentials.
HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/")


def config_keys(registry: str) -> tuple[str, ...]:
    """credHelpers keys that route `registry` to this helper."""
    return HUB_KEYS if registry == DOCKER_HUB else (registry,)


def registry_of(server: str) -> str | None:
    """The registry host a server URL names (`https://index.docker.io/v1/` is docker.io); None if none."""
    try:
        return registry_of_server(server)
    except InputError:
        return None


SHUTDOWN_POLL = 0.02  # seconds


def _question(conn: socket.socket) -> str:
    """The server URL the helper asks for: its first line, at most MAX_MESSAGE bytes (it sends one and waits)."""
    received = b""
    while b"\n" not in received and len(received) < MAX_MESSAGE:
        chunk = conn.recv(MAX_MESSAGE - len(received))
        if not chunk:
            break
        received += chunk
    return received.split(b"\n", 1)[0].decode(errors="replace").strip()


def _answer(conn: socket.socket, registry: str, username: str, password: str) -> None:
    """One question: the credential when the helper asks for `registry`, else an empty answer."""
    with conn:
        conn.settimeout(ANSWER_TIMEOUT)
        try:
            asked = _question(conn)
            known = registry_of(asked) == registry
            answer = {"ServerURL": asked, "Username": username, "Secret": password} if known else {}
            conn.sendall(json.dumps(answer).encode())
        except OSError:
            return


def _accept(listener: socket.socket, stop: threading.Event, *credential: str) -> None:
    """Each question in a thread of its own, until `stop`; the listener's timeout is the poll."""
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(target=_answer, args=(conn, *credential), daemon=True).start()


@contextmanager
def serve(folder: Path, registry: str, username: str, password: str) -> Iterator[Path]:
    """Answer the helper for `registry` alone, over a socket in `folder` (which must be 0700), until the block ends.

    A plain accept loop, not socketserver: that module and its imports cost before every build (issue 17)."""
    if folder.stat().st_mode & 0o077:
        raise PermissionError(f"{folder} is open to other users; the credential socket needs a private folder")
    path = folder / "credentials.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        try:
            listener.listen()
            # The end waits for the loop's next poll: at socketserver's default 0.5 s, up to half a second of every
            # build with a login went on waiting for it (bench_publish, issue 17); a short poll costs nothing.
            listener.settimeout(SHUTDOWN_POLL)
            stop = threading.Event()
            args = (listener, stop, registry, username, password)
            thread = threading.Thread(target=_accept, args=args, name="credential-socket", daemon=True)
            thread.start()
            try:
                yield path
            finally:
                stop.set()
                thread.join()
        finally:
            path.unlink(missing_ok=True)
