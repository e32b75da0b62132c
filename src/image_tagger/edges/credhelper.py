"""The Docker credential helper buildx runs for our registry: the registry credential for buildx's push, never in a
file on disk or an environment variable.

buildx reads registry credentials only through the Docker config; a config with `auths` would put the
password on disk, and a variable in buildx's environment would reach every process buildx starts. So
the BuildKit edge writes a config naming our helper (`credHelpers`, for our registry's keys only) and
`provide` gives it the helper's script, which answers for the build's duration and for that registry alone:

- On Linux the credential sits in this process's memory, in a sealed memfd (no path, no disk, not
  inherited by any child). The script is shell builtins only: for one of the registry's keys it reads the
  answer through /proc/<our pid>/fd/<n>, which only a process allowed to read our memory can open, and
  prints it. It starts nothing, so the build secrets in buildx's environment, which it inherits, go no
  further. About 1 ms a lookup.
- Elsewhere (no memfd) the script exec's `env -i` and a Python relay (credrelay.py, `python -S`), which
  asks a socket in the private (0700) build folder that this process serves (`serve`); the relay runs with
  nothing but the socket's path and PYTHONPATH. Some 25 ms a lookup, and buildx looks up twice a push,
  which is why Linux does not use it (issue 17).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from image_tagger.edges import credrelay
from image_tagger.edges.childenv import on_path
from image_tagger.edges.credrelay import ANSWER_TIMEOUT, MAX_MESSAGE, NOT_FOUND
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


@contextmanager
def provide(folder: Path, registry: str, username: str, password: str) -> Iterator[str]:
    """The helper's script, which answers for `registry` alone until the block ends: from a sealed memfd of this
    process where Linux has one, else through the relay and a socket in `folder` (which must be 0700)."""
    fd = None
    if hasattr(os, "memfd_create") and os.path.isdir(f"/proc/{os.getpid()}/fd"):
        with contextlib.suppress(OSError):  # a sandbox that refuses memfd_create: the relay, then
            fd = _sealed({"Username": username, "Secret": password})
    if fd is None:
        with serve(folder, registry, username, password) as socket_path:
            yield _relay_script(socket_path)
        return
    try:
        yield _reader_script(config_keys(registry), f"/proc/{os.getpid()}/fd/{fd}")
    finally:
        os.close(fd)


def _sealed(answer: dict[str, str]) -> int:
    """`answer` as one JSON line in a sealed memfd (close-on-exec: no child inherits it), whose /proc path a process
    allowed to read our memory can open; its descriptor. OSError when it cannot be made, and nothing is left open."""
    import fcntl  # only a build that pushes with a login needs it (issue 17)

    fd = os.memfd_create(f"{credrelay.NAME}-credential", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        data = memoryview(json.dumps(answer).encode() + b"\n")
        while data:
            data = data[os.write(fd, data) :]
        seals = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL  # nobody changes it
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _reader_script(keys: tuple[str, ...], answer: str) -> str:
    """The helper as shell builtins: `get` for one of `keys` prints the answer, any other server is not found."""
    patterns = " | ".join(shlex.quote(key) for key in keys)  # quoted: a literal match, `[::1]` included
    return f"""#!/bin/sh
# {credrelay.NAME}'s credential helper for one build: it answers for its registry alone, from {credrelay.NAME}'s memory.
case $1 in
get)
    IFS= read -r server || :
    case $server in
    {patterns}) ;;
    *) echo '{NOT_FOUND}'; exit 1 ;;
    esac
    if IFS= read -r answer <{shlex.quote(answer)}; then
        printf '%s\\n' "$answer"
    else
        echo '{credrelay.NAME}: the credential is gone (its build is over)'
        exit 1
    fi ;;
store | erase) while IFS= read -r _; do :; done ;;
list) echo '{{}}' ;;
*) echo "{credrelay.NAME}: unknown action '$1'; accepted: get | store | erase | list" >&2; exit 2 ;;
esac
"""


def _relay_script(socket_path: Path) -> str:
    """The helper as `env -i` and the Python relay: the relay gets only where its package is and where to ask."""
    clean = {"PYTHONPATH": str(Path(credrelay.__file__).parents[2]), credrelay.SOCKET_ENV: str(socket_path)}
    assignments = " ".join(shlex.quote(f"{key}={value}") for key, value in clean.items())
    return (
        "#!/bin/sh\n"
        f"exec {shlex.quote(on_path('env') or '/usr/bin/env')} -i {assignments} "
        f'{shlex.quote(sys.executable)} -S -m {credrelay.__name__} "$@"\n'
    )
