"""`image-tagger publish` against the plain tools doing the same job. Run: .venv/bin/python benchmarks/bench_publish.py

Same job on both sides, per engine: log in to an htpasswd registry on loopback, build the sample app (FROM scratch
with a static busybox, one RUN step) with BuildKit through the same buildx binary on the daemon's default builder,
the same three OCI labels and SOURCE_DATE_EPOCH, and push one new tag.

- publish: `image-tagger publish --image HOST/bench/app --workspace DIR --username U --password-stdin --json`
           (BuildKit builds and pushes the tag in one buildx run, the login checked beside it; reads the tag back)
- plain:   `git rev-parse` + `git show` (the tag), `docker login --password-stdin` into a fresh DOCKER_CONFIG that
           holds buildx as a CLI plugin, `docker buildx build --push -t REF --label ... DIR`

It also prints what the issue asks of a light action: the time the action's imports take before its build (the
entry module, which holds the BuildKit edge: its cumulative -X importtime, fastest of 7 runs, and what importing it
adds to `python -c pass`, uninstrumented, fastest of 11; host venv), and with --action-image REF that image's size
and the same import times inside it.

Fairness: every run gets a commit of its own (a changed index.html), so each side builds and pushes a new tag whose
COPY index.html and RUN layers are new, while the busybox layer is cached and already in the registry for both
(one untimed warm-up of each side per engine sees to that). Sides alternate which goes first in each round.
`--variant nocache` adds --no-cache to both sides (every step reruns). `--rtt-ms N` puts the registry N ms away
for both sides (latency.py: a TCP proxy that delays each direction by half of it), so the round trips a job makes
decide, as over a network, rather than the CPU a loopback request takes. BUILDX_NO_DEFAULT_ATTESTATIONS=1 for the
plain side too, as image-tagger sets it, and on the containerd store (which holds attestations) the plain side asks
for the SLSA provenance publish adds there (`--provenance=mode=min`, its choice when no event says the repository is
public): both push the same index with an attestation manifest.

Prints figures only; nothing here is asserted (targets are measured, not tested).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import latency
import requests
from common import ENGINES, IDENTITY, docker_host, find_buildx

from image_tagger.demo import localregistry, sampleapp

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench", "bench-" + uuid.uuid4().hex[:12]
REPOSITORY = "bench/app"
SIGNING_KEY = REPO / "tests" / "fixtures" / "cosign" / "cosign.key"  # a test-only key (see its README)
SIGNING_PASSWORD = "test-only: never a real key"
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, " + (
    "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"
)


def run(argv: list[str], *, env: dict[str, str], stdin: str | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:4])} ... failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return done.stdout


def git(workspace: Path, *args: str) -> str:
    return run(["git", *IDENTITY, *args], env=dict(os.environ), cwd=workspace).strip()


def new_commit(workspace: Path) -> None:
    """A change that invalidates COPY index.html and the RUN step after it, nothing before."""
    page = workspace / "index.html"
    page.write_text(sampleapp.INDEX_HTML + f"<!-- {uuid.uuid4().hex} -->\n")
    git(workspace, "commit", "--quiet", "-am", "bench change")


def make_workspace(root: Path, payload_mb: int) -> Path:
    workspace = root / "app"
    if sampleapp.static_busybox() is None:
        sys.exit("no static busybox (apt-get install busybox-static): the sample app is built FROM scratch")
    sampleapp.write_app(workspace)
    if payload_mb:  # a heavier job: a RUN step writing N MiB of random bytes, rerun (and pushed) on every change
        dd = f"/bin/busybox dd if=/dev/urandom of=/payload bs=1048576 count={payload_mb} 2>/dev/null"
        with (workspace / "Dockerfile").open("a") as dockerfile:
            dockerfile.write(f'RUN ["/bin/busybox", "sh", "-c", "{dd}"]\n')
    git(workspace, "init", "--quiet")
    git(workspace, "add", "--all")
    git(workspace, "commit", "--quiet", "-m", "sample app")
    return workspace


class Sides:
    """Both ways of doing the job against one engine and one registry; each call returns (seconds, parts, ref)."""

    def __init__(
        self, host: str, registry: str, workspace: Path, buildx: str, scratch: Path, no_cache: bool, attests: bool
    ):
        self.registry, self.workspace, self.scratch, self.no_cache = registry, workspace, scratch, no_cache
        self.attests = attests  # the image store holds attestations: publish adds SLSA provenance (mode=min here)
        self.image = f"{registry}/{REPOSITORY}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DOCKER_", "IMAGE_TAGGER_"))}
        self.env = {**clean, "DOCKER_HOST": host, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}
        self.tagger_env = {**self.env, "IMAGE_TAGGER_BUILDX": buildx}
        self.buildx = buildx
        self.refs: list[str] = []

    def signed(self) -> tuple[float, dict[str, float], str]:
        """The same publish, signed with the tests' cosign key (issue 18: a signed publish within 1.1x)."""
        return self.publish(("--signing-key", str(SIGNING_KEY)), {"COSIGN_PASSWORD": SIGNING_PASSWORD})

    def publish(
        self, extra: tuple[str, ...] = (), extra_env: dict[str, str] | None = None
    ) -> tuple[float, dict[str, float], str]:
        """The CLI; its stderr group lines (`== Build`, `== Push`) are timestamped as they arrive to split phases."""
        argv = [str(REPO / ".venv" / "bin" / "image-tagger"), "publish", "--image", self.image]
        argv += ["--workspace", str(self.workspace), "--username", USER, "--password-stdin", "--json", *extra]
        if self.no_cache:
            argv.append("--no-cache")
        marks: dict[str, float] = {}
        start = time.perf_counter()
        with subprocess.Popen(
            argv,
            env={**self.tagger_env, **(extra_env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdin and proc.stdout and proc.stderr
            proc.stdin.write(PASSWORD + "\n")
            proc.stdin.close()
            said = []
            for line in proc.stderr:
                said.append(line)
                for phase in ("Build", "Push"):
                    if line.startswith(f"== {phase}") and phase not in marks:
                        marks[phase] = time.perf_counter()
            out = proc.stdout.read()
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"image-tagger publish failed ({proc.returncode}):\n{''.join(said)[-2000:]}")
        build, push = marks.get("Build", start), marks.get("Push", start + seconds)
        parts = {"start+tag+login": build - start, "build": push - build, "push": start + seconds - push}
        result = json.loads(out)
        ref = f"{self.image}:{result['version']}"
        self.refs.append(ref)
        return seconds, parts, ref

    def plain(self) -> tuple[float, dict[str, float], str]:
        config = self.scratch / f"docker-config-{uuid.uuid4().hex[:8]}"
        (config / "cli-plugins").mkdir(parents=True)
        (config / "cli-plugins" / "docker-buildx").symlink_to(self.buildx)
        env = {**self.env, "DOCKER_CONFIG": str(config)}
        parts: dict[str, float] = {}
        start = time.perf_counter()
        sha = git(self.workspace, "rev-parse", "HEAD")
        committed = git(self.workspace, "show", "-s", "--format=%ct", "HEAD")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(committed)))
        version = f"main-{sha[:7]}-{committed}"
        ref = f"{self.image}:{version}"
        mark = time.perf_counter()
        parts["tag"] = mark - start
        run(["docker", "login", "--username", USER, "--password-stdin", self.registry], env=env, stdin=PASSWORD)
        parts["login"] = time.perf_counter() - mark
        mark = time.perf_counter()
        build = ["docker", "buildx", "build", "--push", "-t", ref]
        build += ["--label", f"org.opencontainers.image.revision={sha}"]
        build += ["--label", f"org.opencontainers.image.version={version}"]
        build += ["--label", f"org.opencontainers.image.created={created}"]
        build += ["--build-arg", f"SOURCE_DATE_EPOCH={committed}"]
        build += ["--no-cache"] if self.no_cache else []
        build += ["--provenance=mode=min"] if self.attests else []  # what publish asks for with no event to read
        run([*build, str(self.workspace)], env=env)
        parts["build+push"] = time.perf_counter() - mark
        seconds = time.perf_counter() - start
        self.refs.append(ref)
        shutil.rmtree(config)
        return seconds, parts, ref

    def cleanup(self) -> None:
        for ref in self.refs:
            subprocess.run(["docker", "image", "rm", ref], env=self.env, capture_output=True)


def pushed_shape(ref: str) -> tuple[str, int, list[str]]:
    """What the registry holds for `ref`: manifest media type, layer count, config label names (fairness check)."""
    host, _, rest = ref.partition("/")
    repository, _, tag = rest.rpartition(":")
    auth, base = (USER, PASSWORD), f"http://{host}/v2/{repository}"
    response = requests.get(f"{base}/manifests/{tag}", auth=auth, headers={"Accept": ACCEPT}, timeout=10)
    response.raise_for_status()
    manifest = response.json()
    if "manifests" in manifest:  # an index: say so, and describe its first image
        return (manifest["mediaType"] + f" of {len(manifest['manifests'])}", -1, [])
    config = requests.get(f"{base}/blobs/{manifest['config']['digest']}", auth=auth, timeout=10).json()
    labels = sorted((config.get("config") or {}).get("Labels") or {})
    return manifest.get("mediaType", "?"), len(manifest["layers"]), labels


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):6.2f}s  min {min(values):6.2f}s  max {max(values):6.2f}s"


def bench_engine(name: str, args: argparse.Namespace, registry: str, buildx: str, scratch: Path) -> dict:
    host = docker_host(name)
    try:
        server = run(["docker", "version", "--format", "{{.Server.Version}}"], env={**os.environ, "DOCKER_HOST": host})
    except RuntimeError as error:
        print(f"engine {name} ({host}): no daemon answers, skipped\n{error}")
        return {}
    workspace = make_workspace(scratch / f"ws-{name}-{args.variant}", args.payload_mb)
    status = run(["docker", "info", "--format", "{{json .DriverStatus}}"], env={**os.environ, "DOCKER_HOST": host})
    attests = "io.containerd.snapshotter" in status
    sides = Sides(host, registry, workspace, buildx, scratch, args.variant == "nocache", attests)
    # --pair signing: `plain` is an unsigned publish and `publish` a signed one (the ratio is signed/unsigned).
    ways: dict[str, Callable[[], tuple[float, dict[str, float], str]]] = {
        "publish": sides.signed if args.pair == "signing" else sides.publish,
        "plain": sides.publish if args.pair == "signing" else sides.plain,
    }
    print(
        f"\n== Engine {name} ({server.strip()}, {host}), {args.variant}, +{args.payload_mb} MiB, {args.rounds} rounds"
    )
    try:
        for way in ways.values():  # warm-up: busybox layer into the build cache and the registry, caches warm
            new_commit(workspace)
            way()
        times: dict[str, list[float]] = {"publish": [], "plain": [], "pre_publish": [], "pre_plain": []}
        last: dict[str, str] = {}
        for index in range(args.rounds):
            order = ["publish", "plain"] if index % 2 == 0 else ["plain", "publish"]
            line = []
            for way in order:
                new_commit(workspace)
                seconds, parts, last[way] = ways[way]()
                times[way].append(seconds)
                # Time before the build starts: process start, tag, login (the part the tool adds, if any).
                times[f"pre_{way}"].append(parts.get("start+tag+login", parts.get("tag", 0) + parts.get("login", 0)))
                detail = " (" + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()) + ")" if parts else ""
                line.append(f"{way} {seconds:6.2f}s{detail}")
            ratio = times["publish"][-1] / times["plain"][-1]
            print(f"  round {index + 1}: " + "  then  ".join(line) + f"  ratio {ratio:.3f}")
        shapes = {way: pushed_shape(ref) for way, ref in last.items()}
        alike = "alike" if shapes["publish"] == shapes["plain"] else "DIFFERENT"
        print(
            f"  pushed images {alike}: "
            + "; ".join(f"{w} {t} {n} layers labels {lb}" for w, (t, n, lb) in shapes.items())
        )
    finally:
        sides.cleanup()
    ratio = statistics.median(times["publish"]) / statistics.median(times["plain"])
    paired = statistics.median(p / q for p, q in zip(times["publish"], times["plain"], strict=True))
    print(f"  publish {summary(times['publish'])}")
    print(f"  plain   {summary(times['plain'])}")
    target = 1.1 if args.pair == "signing" else 1.05
    print(f"  ratio publish/plain: of medians {ratio:.3f}, median of paired ratios {paired:.3f} (target <= {target})")
    return {"engine": name, "version": server.strip(), **times, "ratio": ratio, "paired": paired}


# What the action imports before its build starts: the entry module, which imports the BuildKit edge (the Docker
# SDK edge of the login check loads in a thread beside the build).
ENTRY_MODULE = "image_tagger.entry.action"
BEFORE_BUILD = f"import {ENTRY_MODULE}"


def import_ms(python: list[str], runs: int = 7) -> float:
    """The fastest of `runs` of BEFORE_BUILD under -X importtime: the entry module's cumulative import, in ms (the
    interpreter's own start-up imports, `encodings`, `site`, `zipimport`, come with any Python program and are
    left out; summed in, they would add some 7 ms)."""
    best = float("inf")
    for _ in range(runs):
        done = subprocess.run([*python, "-X", "importtime", "-c", BEFORE_BUILD], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(python)} could not import the action:\n{done.stderr[-2000:]}")
        rows = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
        entry = [int(row[1]) for row in rows if row[2].strip() == ENTRY_MODULE]
        best = min(best, entry[0] / 1000)
    return best


# Without -X importtime's own cost: `python -c pass` and `python -c "import <entry>"`, side by side in one
# container, fastest of each; the difference is what the imports add to the start.
IMPORT_WALL = f"""
import subprocess, sys, time
def fastest(code):
    best = 1e9
    for _ in range(int(sys.argv[1])):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - started)
    return best
print((fastest({BEFORE_BUILD!r}) - fastest("pass")) * 1000)
"""


def import_wall_ms(python: list[str], runs: int = 11) -> float:
    """What importing the entry module adds to Python's start, uninstrumented (IMPORT_WALL), in ms."""
    done = subprocess.run([*python, "-c", IMPORT_WALL, str(runs)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(python)} could not time the imports:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip())


def action_image_figures(ref: str) -> tuple[float, float, float]:
    """The image's size (MB, as `docker image inspect` says) and BEFORE_BUILD's import time inside it (instrumented,
    and not)."""
    size = run(["docker", "image", "inspect", "-f", "{{.Size}}", ref], env=dict(os.environ))
    python = ["docker", "run", "--rm", "--entrypoint", "python", ref]
    return int(size) / 1e6, import_ms(python), import_wall_ms(python)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", nargs="+", choices=sorted(ENGINES), default=sorted(ENGINES))
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds per engine (default 5)")
    parser.add_argument("--variant", choices=("changed", "nocache"), default="changed")
    parser.add_argument(
        "--pair",
        choices=("plain", "signing"),
        default="plain",
        help="publish vs the plain tools (default), or a signed publish vs an unsigned one (target <= 1.1)",
    )
    parser.add_argument("--payload-mb", type=int, default=0, help="extra RUN step writing N MiB (default 0)")
    parser.add_argument("--buildx", default="", help="buildx binary (default $IMAGE_TAGGER_BUILDX, PATH, ./dev's)")
    parser.add_argument("--action-image", default="", help="the action's image, for its size and import time")
    parser.add_argument(
        "--rtt-ms", type=float, default=0, help="put the registry this many ms away, both sides (default 0: loopback)"
    )
    args = parser.parse_args()
    buildx = find_buildx(args.buildx)
    # As an installed command runs: byte-compiled (pip compiles at install; with PYTHONDONTWRITEBYTECODE set, as on
    # these machines, every changed module of an editable install would be compiled again on each run: 15-25 ms).
    run([sys.executable, "-m", "compileall", "-q", str(REPO / "src")], env=dict(os.environ))
    host_imports = import_ms([sys.executable]), import_wall_ms([sys.executable])
    image = action_image_figures(args.action_image) if args.action_image else None
    if shutil.which("htpasswd") is None or shutil.which("docker-registry") is None:
        sys.exit("needs htpasswd (apache2-utils) and docker-registry (Debian's distribution)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    try:
        entry = run(["htpasswd", "-Bbn", USER, PASSWORD], env=dict(os.environ)).strip()
        (scratch / "htpasswd").write_text(entry + "\n")
        with (
            localregistry.serve(scratch / "registry", localregistry.htpasswd_auth(scratch / "htpasswd")) as served,
            latency.delayed(served.host, args.rtt_ms) if args.rtt_ms else nullcontext(served.host) as registry,
        ):
            away = f", {args.rtt_ms:g} ms away through {registry}" if args.rtt_ms else ""
            print(f"registry {served.host} (htpasswd){away}, buildx {buildx}")
            results = [bench_engine(name, args, registry, buildx, scratch) for name in args.engine]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    variant = args.variant + (f" +{args.payload_mb} MiB RUN" if args.payload_mb else "")
    variant += f", registry {args.rtt_ms:g} ms away" if args.rtt_ms else ""
    print(
        "\n| Engine | job | publish median (min-max) | plain median (min-max) | publish/plain | paired | before build |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in filter(None, results):
        cells = [f"{statistics.median(r[w]):.2f} s ({min(r[w]):.2f}-{max(r[w]):.2f})" for w in ("publish", "plain")]
        before = f"{statistics.median(r['pre_publish']):.2f} s vs {statistics.median(r['pre_plain']):.2f} s"
        row = [f"{r['engine']} ({r['version']})", variant, *cells, f"{r['ratio']:.3f}", f"{r['paired']:.3f}", before]
        print("| " + " | ".join(row) + " |")
    print(
        "\nper run (s), publish / plain: "
        + "; ".join(
            f"{r['engine']}: " + " ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(r["publish"], r["plain"], strict=True))
            for r in filter(None, results)
        )
    )
    ratios = ", ".join(f"{r['engine']} {r['ratio']:.3f}" for r in filter(None, results))
    size = (
        f"action image {image[0]:.0f} MB, imports in it {image[1]:.0f} ms ({image[2]:.0f} uninstrumented); "
        if image
        else ""
    )
    imports = f"imports before the build {host_imports[0]:.0f} ms ({host_imports[1]:.0f} uninstrumented) (host)"
    print(f"\n{size}{imports}; publish/plain {ratios} ({variant})")


if __name__ == "__main__":
    main()
