"""The action image's size, and what a cold job pays to get it. Run: .venv/bin/python benchmarks/bench_action_image.py

Two ways a job gets the action's image, each followed by one run of the action on a tiny workspace (the sample app,
built with BuildKit and pushed to a loopback registry), as GitHub's runner runs a container action:

(a) build per job, today's `runs.image: Dockerfile`: `docker build --no-cache` of the repository's Dockerfile
    (pip installs the lock from PyPI, so the build needs network), then `docker run`;
(b) prebuilt, the released `docker://` action: the image built the same way (cold, BuildKit) on another engine,
    as the release workflow would, and pushed to a loopback registry; the measured daemon then `docker pull`s it
    and runs it. Built elsewhere because BuildKit's cache keeps the layers of what a daemon built: pulling the
    image (a) just built only says "Already exists" for every layer (measured 0.0 s). The pull line says how many
    layers were really fetched.

Deviation (Docker Hub is unreachable here): the base is a local stand-in, `--build-arg BASE_IMAGE=` (Debian
trixie's python3 via tests/support/python_base.py). It stays on the daemon (other tests share it), so neither flow
pays the base download: on a hosted runner (a) would also pull python:3.12-slim and download buildx's .deb, and
(b) pulls those same layers as part of the image.
`docker build` goes through buildx as a CLI plugin (BuildKit, as on hosted runners); `--builder legacy` for the
Engine's legacy builder. The loopback registry is plain HTTP and local, so (b)'s pull measures unpacking more than
the network: a real pull from ghcr.io adds transfer time for the compressed size printed.

Prints figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
# The action's build context: a `git archive` of --tree (HEAD by default, so files others are editing in the work
# tree do not leak into the measurement) or the work tree itself (--tree worktree). Set in main.
ACTION = REPO

from common import ENGINES, IDENTITY, docker_host, find_buildx  # noqa: E402

from image_tagger.demo import localregistry, sampleapp  # noqa: E402

ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
NO_NETWORK = re.compile(
    r"Temporary failure in name resolution|Network is unreachable|Failed to establish a new connection|"
    r"No matching distribution found|Could not find a version|ConnectTimeout|Max retries exceeded|"
    r"Name or service not known|Connection refused",
    re.I,
)


def docker(*args: str, check: bool = True, host: str = "") -> subprocess.CompletedProcess[str]:
    """The docker CLI against `host` or os.environ's DOCKER_HOST, with DOCKER_CONFIG as main set it."""
    env = {**os.environ, "DOCKER_HOST": host} if host else None
    done = subprocess.run(["docker", *args], capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} ... failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def git(workspace: Path, *args: str) -> str:
    done = subprocess.run(["git", *IDENTITY, *args], cwd=workspace, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def new_commit(workspace: Path) -> str:
    """A fresh commit, so each action run builds and pushes a new tag (same work for both flows)."""
    (workspace / "index.html").write_text(sampleapp.INDEX_HTML + f"<!-- {uuid.uuid4().hex} -->\n")
    git(workspace, "commit", "--quiet", "-am", "bench change")
    return git(workspace, "rev-parse", "HEAD")


def make_workspace(workspace: Path) -> None:
    if sampleapp.static_busybox() is None:
        sys.exit("no static busybox (apt-get install busybox-static): the sample app is built FROM scratch")
    sampleapp.write_app(workspace)
    git(workspace, "init", "--quiet")
    git(workspace, "add", "--all")
    git(workspace, "commit", "--quiet", "-m", "sample app")


def copy_image(tag: str, host: str, source_host: str) -> bool:
    """`docker save | docker load` from another engine that has `tag` (faster than rebuilding the base)."""
    if docker("image", "inspect", tag, check=False, host=host).returncode == 0:
        return True
    if docker("image", "inspect", tag, check=False, host=source_host).returncode != 0:
        return False
    source_env = {**os.environ, "DOCKER_HOST": source_host}
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE, env=source_env)
    loaded = subprocess.run(
        ["docker", "load"], stdin=save.stdout, capture_output=True, env={**os.environ, "DOCKER_HOST": host}
    )
    save.wait()
    return loaded.returncode == 0 and save.returncode == 0


def bases(host: str) -> str:
    """The local stand-in for python:3.12-slim on this engine (made once per daemon)."""
    from support import python_base

    if host != docker_host("20"):
        copy_image(python_base.TAG, host, docker_host("20"))
    return python_base.ensure_python_base(docker_host=host)


def release(registry: str, host: str, scratch: Path) -> str:
    """The release workflow's part, on another engine: a cold BuildKit build, pushed, then removed there.

    Built elsewhere so that the measured engine holds none of its own layers: BuildKit's cache keeps the layers of
    whatever it built, and a pull of an image the same daemon built only says "Already exists" (measured: 0.0 s).
    """
    base = bases(host)
    ref = f"{registry}/flux-ci-cd/flux-ci-cd:0.0.0-{uuid.uuid4().hex[:12]}"
    done = docker(*build_argv(ref, base, "host"), check=False, host=host)
    if done.returncode != 0:
        raise RuntimeError(f"release build on {host} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    docker("push", ref, host=host)
    docker("image", "rm", ref, host=host)
    return ref


def image_size(ref: str) -> tuple[int, int]:
    """Uncompressed size and layer count as the daemon reports them."""
    done = docker("image", "inspect", "--format", "{{.Size}} {{len .RootFS.Layers}}", ref)
    size, layers = done.stdout.split()
    return int(size), int(layers)


def pushed_sizes(ref: str) -> list[int]:
    """Compressed layer sizes of the manifest the registry holds for `ref` (what a pull transfers at most)."""
    host, _, rest = ref.partition("/")
    repository, _, tag = rest.rpartition(":")
    response = requests.get(f"http://{host}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT}, timeout=10)
    response.raise_for_status()
    return [layer["size"] for layer in response.json()["layers"]]


def push_event(ref: str, sha: str) -> dict:
    return {
        "ref": ref,
        "after": sha,
        "head_commit": {"id": sha, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "repository": {"full_name": "acme/app", "name": "app", "owner": {"login": "acme"}, "default_branch": "main"},
    }


def run_action(image: str, root: Path, workspace: Path, registry: str) -> float:
    """One step running the action like GitHub's runner (tests/support/github_runner.py); returns its seconds."""
    from support.github_runner import GithubRunner

    runner = GithubRunner(action_dir=ACTION)
    runner.image = image
    sha = new_commit(workspace)
    ref = "refs/heads/main"
    inputs = {"image": "bench/app", "registry": registry, "push": "true"}
    seconds, done = timed(runner.run, root, workspace, event=push_event(ref, sha), ref=ref, sha=sha, inputs=inputs)
    if done.returncode != 0 or done.outputs.get("pushed") != "true":
        raise RuntimeError(f"the action failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return seconds


def build_argv(tag: str, base: str, network: str) -> list[str]:
    dockerfile = ACTION / "Dockerfile"
    from support.github_runner import LOCAL_DEBIAN_ARCHIVE  # snapshot.debian.org is unreachable here

    argv = ["build", "--no-cache", "-t", tag, "--build-arg", f"BASE_IMAGE={base}"]
    argv += ["--build-arg", f"DEBIAN_ARCHIVE={LOCAL_DEBIAN_ARCHIVE}"]
    argv += ["--network", network] if network else []
    return [*argv, "-f", str(dockerfile), str(dockerfile.parent)]


def bench_engine(name: str, args: argparse.Namespace, registry: str, scratch: Path) -> dict:
    host = docker_host(name)
    os.environ["DOCKER_HOST"] = host  # the runner harness and the docker CLI both read it
    server = docker("version", "--format", "{{.Server.Version}}", check=False)
    if server.returncode != 0:
        print(f"engine {name} ({host}): no daemon answers, skipped")
        return {}
    version = server.stdout.strip()
    try:
        base = bases(host)
    except Exception as error:  # noqa: BLE001 - a missing piece is reported, not raised
        print(f"engine {name}: the base images are not ready ({type(error).__name__}: {error}); skipped")
        return {}
    network = args.build_network
    if network == "auto":
        network = "" if docker("network", "inspect", "bridge", check=False).returncode == 0 else "host"
    root = scratch / f"runner-{name}"
    workspace = root / "work" / "app"
    make_workspace(workspace)
    label = f"bench-action-{name}"
    rows: dict[str, dict[str, list[float]]] = {"a": {"get": [], "run": []}, "b": {"get": [], "run": []}}
    sizes: dict[str, int] = {}
    built = f"{label}:{uuid.uuid4().hex}"
    builder = args.release_engine or {"20": "28", "28": "20", "28c": "28"}[name]
    print(f"\n== Engine {name} ({version}, {host}), builder {args.builder}, build network {network or 'default'}")
    released = release(registry, docker_host(builder), scratch)
    os.environ["DOCKER_HOST"] = host
    print(f"  release {released} built (cold, BuildKit) and pushed from Engine {builder}")
    fetched: list[str] = []
    try:
        for index in range(args.rounds):
            # (a) build per job: a cold build (no build cache), then the step
            seconds, done = timed(docker, *build_argv(built, base, network), check=False)
            if done.returncode != 0:
                said = done.stdout[-3000:] + done.stderr[-3000:]
                why = "for lack of network (pip could not reach PyPI)" if NO_NETWORK.search(said) else ""
                print(f"  (a) docker build FAILED {why} after {seconds:.1f}s:\n{said}")
                if not network:
                    print("  try --build-network host (Engine 28 here runs with --iptables=false: no NAT)")
                return {}
            rows["a"]["get"].append(seconds)
            rows["a"]["run"].append(run_action(built, root, workspace, registry))
            if index == 0:
                size, layers = image_size(built)
                base_size, base_layers = image_size(base)
                compressed = pushed_sizes(released)
                sizes = {"size": size, "layers": layers, "base_size": base_size, "base_layers": base_layers}
                sizes |= {"compressed": sum(compressed), "compressed_own": sum(compressed[base_layers:])}
            docker("image", "rm", built)
            # (b) prebuilt: pull (the daemon has the base layers only), then the step
            seconds, done = timed(docker, "pull", released)
            fetched.append(
                f"{done.stdout.count('Pull complete')} layers pulled, {done.stdout.count('Already exists')} present"
            )
            rows["b"]["get"].append(seconds)
            rows["b"]["run"].append(run_action(released, root, workspace, registry))
            docker("image", "rm", released, check=False)
            print(
                f"  round {index + 1}: (a) build {rows['a']['get'][-1]:6.1f}s + run {rows['a']['run'][-1]:5.1f}s"
                f"   (b) pull {rows['b']['get'][-1]:6.1f}s ({fetched[-1]}) + run {rows['b']['run'][-1]:5.1f}s"
            )
    finally:
        docker("image", "rm", "--force", built, released, check=False)
    return {"engine": name, "version": version, "rows": rows, "sizes": sizes, "fetched": fetched}


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", nargs="+", choices=sorted(ENGINES), default=["20"])
    parser.add_argument("--rounds", type=int, default=1, help="cold jobs per flow and engine (default 1)")
    parser.add_argument("--builder", choices=("buildkit", "legacy"), default="buildkit", help="for `docker build`")
    parser.add_argument(
        "--build-network", default="auto", help="`docker build --network` (auto: host only without a bridge)"
    )
    parser.add_argument(
        "--release-engine", choices=sorted(ENGINES), help="engine building the pushed release (default: another one)"
    )
    parser.add_argument("--tree", default="HEAD", help="git revision to build the action from, or `worktree`")
    parser.add_argument("--buildx", default="", help="buildx binary (default $IMAGE_TAGGER_BUILDX, PATH, ./dev's)")
    args = parser.parse_args()
    buildx = find_buildx(args.buildx)
    scratch = Path(tempfile.mkdtemp(prefix="bench-action-image-"))
    global ACTION
    if args.tree != "worktree":
        ACTION = scratch / "action"
        ACTION.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.tree], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(ACTION)], input=archive.stdout, check=True)
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", args.tree], capture_output=True, text=True
        )
        print(f"action built from {args.tree} ({commit.stdout.strip()})")
    config = scratch / "docker-config"
    (config / "cli-plugins").mkdir(parents=True)
    (config / "cli-plugins" / "docker-buildx").symlink_to(buildx)
    (config / "config.json").write_text(json.dumps({}))
    os.environ["DOCKER_CONFIG"] = str(config)
    os.environ["DOCKER_BUILDKIT"] = "1" if args.builder == "buildkit" else "0"
    results = []
    try:
        with localregistry.serve(scratch / "registry") as served:
            print(f"registry {served.host} (open), buildx {buildx}")
            results = [bench_engine(name, args, served.host, scratch) for name in args.engine]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for r in filter(None, results):
        s = r["sizes"]
        print(
            f"\nEngine {r['engine']} ({r['version']}): action image {s['size'] / 1e6:.0f} MB in {s['layers']} layers, "
        )
        print(
            f"  {(s['size'] - s['base_size']) / 1e6:.0f} MB on top of the base ({s['base_size'] / 1e6:.0f} MB); "
            f"as pushed {s['compressed'] / 1e6:.0f} MB compressed, {s['compressed_own'] / 1e6:.0f} MB of it "
            "its own layers (the rest is the base)"
        )
    print("\n| Engine | round | flow | get the image | run the action | total |")
    print("|---|---|---|---|---|---|")
    for r in filter(None, results):
        for index in range(len(r["rows"]["a"]["get"])):
            for key, flow in (("a", "(a) `docker build --no-cache` + run"), ("b", "(b) `docker pull` + run")):
                get, run = r["rows"][key]["get"][index], r["rows"][key]["run"][index]
                note = f" ({r['fetched'][index]})" if key == "b" else ""
                cells = [f"{r['engine']} ({r['version']})", str(index + 1), flow + note]
                print("| " + " | ".join([*cells, f"{get:.1f} s", f"{run:.1f} s", f"{get + run:.1f} s"]) + " |")


if __name__ == "__main__":
    main()
