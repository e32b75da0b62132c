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
import socketserver
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


class _Answers(socketserver.StreamRequestHandler):
    timeout = ANSWER_TIMEOUT

    def handle(self) -> None:
        server: _CredentialServer = self.server  # type: ignore[assignment]
        try:
            asked = self.rfile.readline(MAX_MESSAGE).decode(errors="replace").strip()
        except OSError:
            return
        known = registry_of(asked) == server.registry
        answer = {"ServerURL": asked, "Username": server.username, "Secret": server.password} if known else {}
        self.wfile.write(json.dumps(answer).encode())


class _CredentialServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, registry: str, username: str, password: str) -> None:
        super().__init__(str(path), _Answers)
        self.registry, self.username, self.password = registry, username, password


@contextmanager
def serve(folder: Path, registry: str, username: str, password: str) -> Iterator[Path]:
    """Answer the helper for `registry` alone, over a socket in `folder` (which must be 0700), until the block ends."""
    if folder.stat().st_mode & 0o077:
        raise PermissionError(f"{folder} is open to other users; the credential socket needs a private folder")
    path = folder / "credentials.sock"
    server = _CredentialServer(path, registry, username, password)
    # shutdown() waits for the serve loop's next poll: at the default 0.5 s, up to half a second of every
    # build with a login went on waiting for it (bench_publish, issue 17); a short poll costs nothing.
    thread = threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL,), name="credential-socket", daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.shutdown()
        server.server_close()
        path.unlink(missing_ok=True)
