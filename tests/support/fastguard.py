"""The fast tier's fence: under `pytest --fast` nothing outside the test's own process tree is reachable.

A fast test may use files, git, Python, this venv's tools, programs it wrote under the temp directory (a fake
credential helper), and servers it starts itself in Python, on loopback or a Unix socket. Anything else (a
Docker daemon, a registry process, kustomize, a host name, another machine) is refused with FastTierViolation,
and every refusal is also written to a log that fails the test afterwards, so product code that catches the
exception cannot hide it. Python children (`image-tagger` run as a process) inherit the fence through
sitecustomize and the environment; a child given a hand-made environment without it is outside the fence.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Where the Docker SDK, the docker CLI and buildx look: a socket that cannot exist.
NO_DAEMON = "unix:///nonexistent/fast-tier-has-no-docker-daemon.sock"
# The ports and Unix socket paths this process tree listens on, one a line, for its Python children too.
LISTENING = "FCI_FAST_TIER_LISTENING"
# The file every refusal in the process tree is appended to.
VIOLATIONS = "FCI_FAST_TIER_VIOLATIONS"
SITE = Path(__file__).resolve().parent / "fastsite"
VENV_BIN = Path(sys.executable).parent
TEMP = Path(tempfile.gettempdir()).resolve()


class FastTierViolation(AssertionError):
    """A fast test reached for something outside its process tree."""


def refuse(what: str) -> FastTierViolation:
    """The exception to raise, logged first so that catching it changes nothing."""
    message = (
        f"fast tier: {what}. A fast test reaches only files, git, Python and servers it starts itself; mark it "
        "@pytest.mark.real (tests/conftest.py) if it needs more"
    )
    with open(os.environ[VIOLATIONS], "a") as log:
        log.write(message + "\n")
    return FastTierViolation(message)


def violations() -> list[str]:
    """The refusals logged since the last call, which empties the log."""
    log = Path(os.environ[VIOLATIONS])
    found = log.read_text().splitlines()
    log.write_text("")
    return found


def _listening() -> set[str]:
    return set(filter(None, os.environ.get(LISTENING, "").split("\n")))


def _socket_path(address: Any) -> str:
    return address.decode() if isinstance(address, bytes) else str(address)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    ip = _ip(host)
    return host == "localhost" if ip is None else ip.is_loopback


def _check_address(family: int, address: Any) -> None:
    if family == socket.AF_UNIX:
        if _socket_path(address) not in _listening():
            raise refuse(f"connect to the Unix socket {_socket_path(address)}, which no server of this test binds")
    elif family in (socket.AF_INET, socket.AF_INET6):
        host, port = address[0], address[1]
        if not _is_loopback(host):
            raise refuse(f"connect to {host}:{port}, off this machine")
        if str(port) not in _listening():
            raise refuse(f"connect to {host}:{port}, where no server of this test listens")


def _program_allowed(program: str) -> bool:
    where = Path(os.path.abspath(program) if os.sep in program else shutil.which(program) or program)
    if where.name in ("git", Path(sys.executable).name):
        return True
    return where.parent == VENV_BIN or (where.is_absolute() and where.resolve().is_relative_to(TEMP))


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_bind = socket.socket.bind
_getaddrinfo = socket.getaddrinfo
_popen_init = subprocess.Popen.__init__


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self.family, address)
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self.family, address)
    return _connect_ex(self, address)


def _guarded_bind(self: socket.socket, address: Any) -> None:
    _bind(self, address)
    if self.family == socket.AF_UNIX:
        where = _socket_path(address)
    elif self.family in (socket.AF_INET, socket.AF_INET6):
        where = str(self.getsockname()[1])
    else:
        return
    os.environ[LISTENING] = "\n".join(sorted(_listening() | {where}))


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = str(host.decode() if isinstance(host, bytes) else host or "")
    ip = _ip(name)
    if ip is None and name not in ("", "localhost"):
        raise refuse(f"look up the host name {name!r} (DNS is the network)")
    if ip is not None and not (ip.is_loopback or ip.is_unspecified):
        raise refuse(f"reach {name}, off this machine")
    return _getaddrinfo(host, *args, **kwargs)


def _guarded_popen_init(self: subprocess.Popen, args: Any, *positional: Any, **kwargs: Any) -> None:
    if kwargs.get("executable") is not None:
        program = os.fsdecode(kwargs["executable"])
    elif isinstance(args, (str, bytes, os.PathLike)):
        program = os.fsdecode(args)
        program = program.split()[0] if kwargs.get("shell") else program
    else:
        program = os.fsdecode(args[0])
    if not _program_allowed(program):
        raise refuse(f"start {program!r} (only git, Python, this venv's tools and the test's own programs run)")
    _popen_init(self, args, *positional, **kwargs)


def install() -> None:
    """Fence this process, and through the environment its Python children and any Docker client."""
    if VIOLATIONS not in os.environ:
        descriptor, log = tempfile.mkstemp(prefix="fci-fast-tier-violations-")
        os.close(descriptor)
        os.environ[VIOLATIONS] = log
    os.environ["DOCKER_HOST"] = NO_DAEMON
    os.environ.setdefault(LISTENING, "")
    paths = [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]
    if str(SITE) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(SITE), *paths])
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.socket.bind = _guarded_bind  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo
    subprocess.Popen.__init__ = _guarded_popen_init  # type: ignore[method-assign]
