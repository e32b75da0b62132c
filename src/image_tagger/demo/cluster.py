"""A local Flux cluster on loopback: etcd, kube-apiserver, Flux's five controllers, a git server, a registry.

The binaries come from `cluster/build` (real etcd, Kubernetes and Flux, built from pinned Go modules);
this module only starts, watches and stops them. Everything lives in one state folder: logs, pids, ports,
the kubeconfig (mode 600; its token is never printed), etcd's data, the git repositories and the registry's
storage. Each `up` on a stopped state folder starts a fresh cluster. The demo and the differential tests
use `up`, `down` and `status`; `./dev cluster up|down|status` is `main`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from image_tagger.demo.localregistry import config_text, free_port
from image_tagger.edges.childenv import child_env

CONTROLLERS = (
    "source-controller",
    "kustomize-controller",
    "notification-controller",
    "image-reflector-controller",
    "image-automation-controller",
)
# Stopped in this order: whatever talks to the API server first, kube-apiserver before etcd (with etcd gone
# it retries for over a minute).
STOP_ORDER = (*CONTROLLERS, "git-server", "registry", "kube-apiserver", "etcd")
# The git server and the registry: a cluster of the demo goes without, sharing the demo's own.
SERVICES = ("git-server", "registry")
READY_SECONDS = 90
STOP_SECONDS = 20
RUNTIME_NAMESPACE = "flux-system"
CONFIG_REPOSITORY = "config.git"


class ClusterError(Exception):
    """A piece did not start or answer; the message names it and its log."""


@dataclass
class Piece:
    """One process `up` started: its pid, the start time /proc gives it (so a reused pid is never
    signalled), its ports by role, and its log."""

    pid: int
    start_time: str
    ports: dict[str, int]
    log: str


@dataclass
class ClusterInfo:
    """What a user or a test needs to talk to the cluster."""

    state_dir: str
    bin_dir: str
    kubeconfig: str
    api_url: str
    git_url: str
    registry: str
    pieces: dict[str, Piece] = field(default_factory=dict)

    @property
    def kubectl(self) -> str:
        return str(Path(self.bin_dir) / "kubectl")

    @property
    def config_repository_url(self) -> str:
        return f"{self.git_url}/{CONFIG_REPOSITORY}"


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One `up` or `down` at a time per state folder (a second one waits)."""
    with (state_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _state_file(state_dir: Path) -> Path:
    return state_dir / "cluster.json"


def _proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks); None when the pid is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def _alive(piece: Piece) -> bool:
    return _proc_start_time(piece.pid) == piece.start_time


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def load(state_dir: Path) -> ClusterInfo | None:
    """The cluster recorded in `state_dir`, None when there is none."""
    try:
        data = json.loads(_state_file(state_dir).read_text())
    except FileNotFoundError:
        return None
    data["pieces"] = {name: Piece(**piece) for name, piece in data["pieces"].items()}
    return ClusterInfo(**data)


def _save(info: ClusterInfo) -> None:
    path = _state_file(Path(info.state_dir))
    path.with_suffix(".tmp").write_text(json.dumps(asdict(info), indent=1))
    path.with_suffix(".tmp").replace(path)


class _Starter:
    """Starts pieces in their own session (so `down` can stop a piece with its children), recording each
    in the state file at once: a failed `up` can always be stopped."""

    def __init__(self, info: ClusterInfo) -> None:
        self.info = info
        self.logs = Path(info.state_dir) / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], ports: dict[str, int], env: dict[str, str] | None = None) -> None:
        log = self.logs / f"{name}.log"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env or child_env(),
                cwd=self.info.state_dir,
                start_new_session=True,
            )
        start_time = _proc_start_time(process.pid) or ""
        self.info.pieces[name] = Piece(process.pid, start_time, ports, str(log))
        _save(self.info)

    def wait(self, name: str, ready, what: str) -> None:
        """Poll `ready()` until it is true; a piece that exits or stays silent past READY_SECONDS fails."""
        piece = self.info.pieces[name]
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if not _alive(piece):
                raise ClusterError(f"{name} exited before answering {what}; see its log {piece.log}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise ClusterError(f"{name} did not answer {what} within {READY_SECONDS} s; see its log {piece.log}")


def _get(url: str, context: ssl.SSLContext | None = None, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return response.status, response.read(4096)
    except urllib.error.HTTPError as err:
        return err.code, b""


def _kubeconfig(path: Path, api_url: str, ca: Path, token: str) -> None:
    text = (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: fci\n  cluster:\n    server: {api_url}\n    certificate-authority: {ca}\n"
        f"users:\n- name: admin\n  user:\n    token: {token}\n"
        "contexts:\n- name: fci\n  context:\n    cluster: fci\n    user: admin\n"
        "current-context: fci\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _fresh(state_dir: Path) -> None:
    """Remove what a previous cluster left in `state_dir` (only the names this module writes)."""
    for name in ("etcd-data", "certs", "git", "registry", "source-data", "reflector-data", "logs"):
        shutil.rmtree(state_dir / name, ignore_errors=True)
    for name in ("kubeconfig", "tokens.csv", "sa.key", "sa.pub", "cluster.json"):
        (state_dir / name).unlink(missing_ok=True)


def up(state_dir: Path, bin_dir: Path, *, services: bool = True) -> tuple[ClusterInfo, bool]:
    """Start the cluster recorded in `state_dir`, or find it running. Returns (info, already_running).
    Without `services` it has no git server and registry of its own (`git_url` and `registry` are empty).

    On any failure what this call started is stopped again and ClusterError names the piece and its log.
    """
    state_dir = state_dir.resolve()
    bin_dir = bin_dir.resolve()
    missing = [name for name in ("etcd", "kube-apiserver", "kubectl", *CONTROLLERS) if not (bin_dir / name).is_file()]
    if missing:
        raise ClusterError(f"{bin_dir}: missing {', '.join(missing)} (run ./dev cluster build)")
    registry_binary = shutil.which("docker-registry") if services else ""
    if services and not registry_binary:
        raise ClusterError("docker-registry is not installed (apt-get install docker-registry)")
    state_dir.mkdir(parents=True, exist_ok=True)
    with _locked(state_dir):
        existing = load(state_dir)
        if existing:
            expected = set(STOP_ORDER) - (set() if services else set(SERVICES))
            if all(_alive(piece) for piece in existing.pieces.values()) and set(existing.pieces) == expected:
                return existing, True
            _down(existing)
        _fresh(state_dir)
        try:
            return _start(state_dir, bin_dir, registry_binary), False
        except BaseException:
            info = load(state_dir)
            if info:
                _down(info)
            raise


def _start(state_dir: Path, bin_dir: Path, registry_binary: str) -> ClusterInfo:
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    git_port, registry_port = free_port(), free_port()
    info = ClusterInfo(
        state_dir=str(state_dir),
        bin_dir=str(bin_dir),
        kubeconfig=str(state_dir / "kubeconfig"),
        api_url=f"https://127.0.0.1:{api_port}",
        git_url=f"http://127.0.0.1:{git_port}" if registry_binary else "",
        registry=f"127.0.0.1:{registry_port}" if registry_binary else "",
    )
    starter = _Starter(info)
    if registry_binary:
        _start_services(starter, state_dir, registry_binary, git_port, registry_port)
    _start_cluster(starter, state_dir, bin_dir, etcd_port, peer_port, api_port)
    if registry_binary:
        registry_url = f"http://{info.registry}/v2/"
        starter.wait("registry", lambda: _get(registry_url)[0] == 200, "on /v2/")
        refs = f"{info.config_repository_url}/info/refs?service=git-upload-pack"
        starter.wait("git-server", lambda: _get(refs)[0] == 200, "on info/refs")
    for name in CONTROLLERS:
        health = info.pieces[name].ports["health"]
        starter.wait(name, lambda health=health: _get(f"http://127.0.0.1:{health}/readyz")[0] == 200, "on /readyz")
    return info


def _start_services(
    starter: _Starter, state_dir: Path, registry_binary: str, git_port: int, registry_port: int
) -> None:
    """The registry and the git server need nothing else: they start first and are checked last."""
    info = starter.info
    (state_dir / "registry").mkdir()
    registry_config = state_dir / "registry" / "config.yml"
    registry_config.write_text(config_text(state_dir / "registry" / "data", info.registry))
    starter.start("registry", [registry_binary, "serve", str(registry_config)], {"http": registry_port})
    git_root = state_dir / "git"
    subprocess.run(
        ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(git_root / CONFIG_REPOSITORY)],
        check=True,
        env=child_env(),
    )
    starter.start(
        "git-server",
        [sys.executable, "-m", "image_tagger.demo.githttp", str(git_root), str(git_port)],
        {"http": git_port},
    )


def _start_cluster(
    starter: _Starter, state_dir: Path, bin_dir: Path, etcd_port: int, peer_port: int, api_port: int
) -> None:
    """etcd, kube-apiserver, the CRDs and namespace, then the five controllers (not waited for here)."""
    info = starter.info
    etcd = f"http://127.0.0.1:{etcd_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    starter.start(
        "etcd",
        [
            str(bin_dir / "etcd"),
            "--name=fci",
            f"--data-dir={state_dir / 'etcd-data'}",
            f"--listen-client-urls={etcd}",
            f"--advertise-client-urls={etcd}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=fci={peer}",
            "--unsafe-no-fsync",
            "--listen-metrics-urls=",
        ],
        {"client": etcd_port, "peer": peer_port},
    )

    # The service-account signing pair the API server insists on, and the one admin token.
    subprocess.run(["openssl", "genrsa", "-out", "sa.key", "2048"], cwd=state_dir, check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], cwd=state_dir, check=True, capture_output=True
    )
    token = secrets.token_hex(24)
    fd = os.open(state_dir / "tokens.csv", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"{token},admin,admin,system:masters\n")
    starter.wait("etcd", lambda: _get(f"{etcd}/health")[0] == 200, "on /health")

    starter.start(
        "kube-apiserver",
        [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={state_dir / 'certs'}",
            f"--token-auth-file={state_dir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={state_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={state_dir / 'sa.key'}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
        ],
        {"https": api_port},
    )
    # With --cert-dir and no --tls-cert-file the API server makes its own CA and serving certificate
    # (both in apiserver.crt, SAN 127.0.0.1): the kubeconfig verifies TLS with it.
    ca = state_dir / "certs" / "apiserver.crt"

    def api_ready() -> bool:
        if not ca.exists():
            return False
        context = ssl.create_default_context(cafile=str(ca))
        return _get(f"{info.api_url}/readyz", context, token) == (200, b"ok")

    starter.wait("kube-apiserver", api_ready, "on /readyz")
    _kubeconfig(Path(info.kubeconfig), info.api_url, ca, token)

    crds = bin_dir.parent / "crds"
    kubectl = [info.kubectl, f"--kubeconfig={info.kubeconfig}"]
    with (starter.logs / "kubectl.log").open("ab") as sink:
        for argv in (
            ["apply", "--server-side", *(f"--filename={crds / name}" for name in CONTROLLERS)],
            ["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
            ["create", "namespace", RUNTIME_NAMESPACE],
        ):
            done = subprocess.run(
                [*kubectl, *argv], stdout=sink, stderr=subprocess.STDOUT, env=child_env(), timeout=90, check=False
            )
            if done.returncode:
                raise ClusterError(f"kubectl {argv[0]} failed; see {starter.logs / 'kubectl.log'}")

    env = child_env(values={"KUBECONFIG": info.kubeconfig, "RUNTIME_NAMESPACE": RUNTIME_NAMESPACE})
    for name in CONTROLLERS:
        ports = {"metrics": free_port(), "health": free_port()}
        extra: list[str] = []
        if name == "source-controller":
            ports["storage"] = free_port()
            storage = state_dir / "source-data"
            storage.mkdir()  # source-controller exits when its storage folder does not exist
            addr = f"127.0.0.1:{ports['storage']}"
            extra = [f"--storage-path={storage}", f"--storage-addr={addr}", f"--storage-adv-addr={addr}"]
        elif name == "image-reflector-controller":
            storage = state_dir / "reflector-data"
            storage.mkdir()
            extra = [f"--storage-path={storage}"]
        elif name == "kustomize-controller":
            # A new revision ends a health check in progress instead of waiting out its timeout: without it a
            # rollout that never becomes ready (an unreleased image, a bad release) holds its fix for 5 minutes.
            extra = ["--feature-gates=CancelHealthCheckOnNewRevision=true"]
        elif name == "notification-controller":
            ports["events"], ports["receiver"] = free_port(), free_port()
            extra = [f"--events-addr=127.0.0.1:{ports['events']}", f"--receiverAddr=127.0.0.1:{ports['receiver']}"]
        argv = [
            str(bin_dir / name),
            f"--metrics-addr=127.0.0.1:{ports['metrics']}",
            f"--health-addr=127.0.0.1:{ports['health']}",
            "--enable-leader-election=false",
            *extra,
        ]
        starter.start(name, argv, ports, env)


def _signal_group(piece: Piece, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(piece.pid, signum)


def _reap(pid: int) -> None:
    """Collect the exit status when the piece is this process's child (an in-process `up`)."""
    deadline = time.monotonic() + STOP_SECONDS
    # A Go program's leader shows as a zombie while its other threads still exit: wait until it is reapable.
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.05)


def _stop(piece: Piece) -> None:
    """SIGTERM to the piece's process group, SIGKILL after STOP_SECONDS."""
    _signal_group(piece, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while _alive(piece) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(piece):
        _signal_group(piece, signal.SIGKILL)
        while _alive(piece):
            time.sleep(0.05)
    _reap(piece.pid)


def down(state_dir: Path) -> list[str]:
    """Stop what `up` started in `state_dir` (and only that); returns the names of the pieces that ran."""
    state_dir = state_dir.resolve()
    if not state_dir.is_dir():
        return []
    with _locked(state_dir):
        info = load(state_dir)
        return _down(info) if info else []


def _down(info: ClusterInfo) -> list[str]:
    stopped = []
    for name in STOP_ORDER:
        piece = info.pieces.get(name)
        if piece and _alive(piece):
            _stop(piece)
            stopped.append(name)
    _state_file(Path(info.state_dir)).unlink()
    return stopped


@dataclass
class Status:
    """What runs: per piece, alive or not, its ports and resident memory."""

    info: ClusterInfo
    running: dict[str, bool]
    rss_kib: dict[str, int]

    @property
    def total_rss_kib(self) -> int:
        return sum(self.rss_kib.values())


def status(state_dir: Path) -> Status | None:
    """The recorded cluster's pieces, whether each runs and its RSS (from /proc); None when none is recorded."""
    info = load(state_dir.resolve())
    if info is None:
        return None
    running = {name: _alive(piece) for name, piece in info.pieces.items()}
    rss = {name: _rss_kib(piece.pid) if running[name] else 0 for name, piece in info.pieces.items()}
    return Status(info, running, rss)


def describe(info: ClusterInfo) -> str:
    """The lines a user pastes into a shell, and where things are."""
    return "\n".join(
        (
            f"export KUBECONFIG={info.kubeconfig}",
            f"export PATH={info.bin_dir}:$PATH",
            f"# API server: {info.api_url}",
            f"# git server: {info.git_url}/ (push and fetch over HTTP; the config repository: "
            f"{info.config_repository_url})",
            f"# registry: {info.registry} (plain HTTP: ImageRepository spec.insecure: true)",
            f"# logs: {Path(info.state_dir) / 'logs'}",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev cluster", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", required=True, type=Path, help="folder for the cluster's files")
    parser.add_argument("--bin-dir", type=Path, help="cluster/build's bin folder (for up)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            if args.bin_dir is None:
                parser.error("up needs --bin-dir")
            started = time.monotonic()
            info, already = up(args.state_dir, args.bin_dir)
            if already:
                print(f"# the cluster in {info.state_dir} already runs", file=sys.stderr)
            else:
                print(f"# cluster up in {time.monotonic() - started:.1f} s", file=sys.stderr)
            print(describe(info))
        elif args.command == "down":
            stopped = down(args.state_dir)
            print(f"stopped: {', '.join(stopped)}" if stopped else f"no cluster runs from {args.state_dir}")
        else:
            state = status(args.state_dir)
            if state is None:
                print(f"no cluster runs from {args.state_dir}")
                return 1
            for name, piece in state.info.pieces.items():
                ports = " ".join(f"{role}={port}" for role, port in piece.ports.items())
                what = f"pid {piece.pid}, {state.rss_kib[name] // 1024} MiB" if state.running[name] else "NOT RUNNING"
                print(f"{name:28} {what:24} {ports}")
            print(f"{'total resident memory':28} {state.total_rss_kib // 1024} MiB")
            print(f"export KUBECONFIG={state.info.kubeconfig}")
            return 0 if all(state.running.values()) else 1
    except ClusterError as err:
        print(f"./dev cluster {args.command}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
