"""The README's first command: the whole loop, run as a person runs it, read from its last line.

Twice: with the simulated cluster (`image-tagger demo`, what a `pip install` user has) and with production
and staging as two real clusters (`--cluster-bin`, what `./dev demo` runs): Flux's own controllers on two
API servers, every selection held against image-tagger's offline prediction by the demo itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"
IMAGE = r"127\.0\.0\.1:[0-9]+/demo/app"
PINNED = r"@sha256:[0-9a-f]{64}"  # production runs name:tag@digest: its policy reflects digests
# Every step in which an environment's image changes; "tag v2.0.0 (another major)" changes none.
CHANGING = ("tag v1.0.0", "push to main", "tag v1.1.0", "second push to main", "tag v1.2.0", "push the fix to main")
# Production's releases: each reaches production only through the pull-request gate, signed and merged.
RELEASED = {"tag v1.0.0": "1.0.0", "tag v1.1.0": "1.1.0", "tag v1.2.0": "1.2.0", "tag v1.2.1": "1.2.1"}
STOLEN = "a release pushed by hand with a stolen registry password"


def run_demo(docker_client: docker.DockerClient, *args: str, env: dict[str, str] | None = None) -> tuple[dict, str]:
    """The demo's JSON line and its whole output; it must leave no image of its own in the daemon."""
    before = {tag for image in docker_client.images.list() for tag in image.tags}
    done = subprocess.run(
        [sys.executable, "-m", "image_tagger", "demo", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    host = result["production"].split("/", 1)[0]
    after = {tag for image in docker_client.images.list() for tag in image.tags}
    assert not {tag for tag in after - before if tag.startswith(f"{host}/demo/app:")}
    return result, done.stdout


def assert_scenario(result: dict[str, Any], out: str) -> dict[str, dict[str, Any]]:
    """What both cluster modes must end with, step by step; returns the steps by title."""
    production, staging = result["production"], result["staging"]
    assert re.fullmatch(rf"{IMAGE}:1\.2\.1{PINNED}", production)
    assert re.fullmatch(rf"{IMAGE}:main-[0-9a-f]{{7}}-[0-9]+", staging)
    steps = {step["step"]: step for step in result["steps"]}
    for step in steps.values():
        assert step["production"] is None or re.fullmatch(rf"{IMAGE}:[0-9.]+{PINNED}", step["production"]), step
        step["production"] = step["production"] and step["production"].split("@")[0]  # the tag, for the checks below
    assert steps["tag v1.0.0"]["production"].endswith(":1.0.0")
    assert steps["tag v1.0.0"]["staging"] is None
    first_main = steps["push to main"]["staging"]
    assert first_main and first_main != staging
    assert steps["push to main"]["production"].endswith(":1.0.0")
    assert steps["tag v2.0.0 (another major)"]["production"].endswith(":1.0.0")
    assert steps["tag v1.1.0"]["staging"] == first_main
    # v1.1.0 tags the commit main already built: the release is that very image, promoted by digest.
    assert steps["tag v1.1.0"]["promoted_from"] == first_main.rsplit(":", 1)[1]
    assert steps["tag v1.0.0"]["promoted_from"] is None
    # v1.2.0 turned out bad: rolled back by excluding it, production serves 1.1.0 again, then the fix 1.2.1 flows.
    assert steps["tag v1.2.0"]["production"].endswith(":1.2.0")
    assert steps["v1.2.0 turns out bad: roll back"]["production"].endswith(":1.1.0")
    assert steps["push the fix to main"]["production"].endswith(":1.1.0")
    assert "rollback clusters/production 1.2.0" in out
    # Each environment really ran its image: the page reports the version the image was built as.
    assert f"page says 'version {first_main.rsplit(':', 1)[1]}'" in out
    assert f"page says 'version {staging.rsplit(':', 1)[1]}'" in out
    assert result["scan_interval"] == "5m"
    # Every push that changed an environment was applied within seconds of the push, not at the next scan.
    for title in (*CHANGING, "tag v1.2.1"):
        assert steps[title]["applied_after_push_seconds"] is not None, title
        assert steps[title]["applied_after_push_seconds"] < 60, steps[title]
    assert steps["tag v2.0.0 (another major)"]["applied_after_push_seconds"] is None
    assert steps["v1.2.0 turns out bad: roll back"]["applied_after_push_seconds"] is not None
    assert_gate(steps, out)
    return steps


def assert_gate(steps: dict[str, dict[str, Any]], out: str) -> None:
    """Signed releases reach production through the gate and a merge; the hand-pushed one is refused there."""
    for title, version in {**RELEASED, "v1.2.0 turns out bad: roll back": "1.1.0"}.items():
        assert steps[title]["signed"] is not False, title
        gate = steps[title]["gate"]["production"]
        assert gate["merged"] is True, (title, gate)
        assert re.fullmatch(
            rf"{IMAGE}:{re.escape(version)}@sha256:[0-9a-f]{{64}}: signed by the demo's cosign\.pub "
            rf"for version {re.escape(version)}",
            gate["check"],
        ), gate
        assert steps[title]["production"].endswith(f":{version}"), title
    for title in ("push to main", "second push to main", "push the fix to main", "tag v2.0.0 (another major)"):
        assert steps[title]["gate"] is None, title  # staging commits straight to its branch; nothing to propose
    assert out.count("merged #") == len(RELEASED) + 1  # + the rollback's proposal of 1.1.0
    assert "the pull-request action's own run, verify-key = the demo's cosign.pub" in out

    stolen, before = steps[STOLEN], steps["tag v1.2.1"]
    assert re.fullmatch(rf"{IMAGE}:1\.3\.0@sha256:[0-9a-f]{{64}}", stolen["pushed"])
    assert stolen["signed"] is False and stolen["promoted_from"] is None
    refused = stolen["gate"]["production"]
    assert refused["merged"] is False
    digest = stolen["pushed"].rsplit("@", 1)[1]
    assert refused["check"].endswith(f":1.3.0@{digest}: unsigned (no cosign signature for this digest)"), refused
    # Production stays on the signed release; staging's policy passed over 1.3.0; nothing was applied.
    assert stolen["production"] == before["production"] and stolen["production"].endswith(":1.2.1")
    assert stolen["staging"] == before["staging"]
    assert stolen["applied_after_push_seconds"] is None
    assert stolen["selected_after_push_seconds"] is not None  # Flux did select it: the gate is what held
    part = out[out.index(f"== {STOLEN}") :]
    assert f"check FAILED: {refused['check']}" in part
    assert "not merged: #" in part and "Do not merge: not signed as required." in part
    assert "stands for one made with a stolen password" in part


def test_simulated_demo_runs_the_scenario_and_says_it_is_simulated(docker_client: docker.DockerClient) -> None:
    result, out = run_demo(docker_client)
    assert_scenario(result, out)
    assert "SIMULATED" in out.splitlines()[2]
    assert result["cluster"] == {"production": "simulated", "staging": "simulated"}
    # Commits were made with the automation's message template and pushed to the config repo.
    assert out.count("Update images (flux-system/app)") == 9
    assert out.count("Flux notified:") == 9  # the stand-in Receiver, once per push


def pinned(folder: str, module: str) -> str:
    """The version a cluster/ wrapper module pins for `module` (its go.mod's require line)."""
    text = (CLUSTER / folder / "go.mod").read_text()
    return re.search(rf"^\s*(?:require )?{re.escape(module)} (v\S+)", text, re.MULTILINE).group(1)


def demo_processes() -> list[str]:
    """Command lines of processes a demo's clusters started (their state lives in the demo's temp folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if proc.name.isdigit() and "image-tagger-demo-" in cmdline and "/clusters/" in cmdline:
            found.append(cmdline)
    return found


def test_real_demo_runs_the_scenario_on_two_clusters_with_flux_deciding(
    docker_client: docker.DockerClient, cluster_bin_dir: Path
) -> None:
    env = {**os.environ, "PATH": f"{cluster_bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result, out = run_demo(docker_client, f"--cluster-bin={cluster_bin_dir}", env=env)
    steps = assert_scenario(result, out)
    assert "SIMULATED" not in out and "simulated" not in out

    # The two API servers and the controllers that ran, by their own account.
    kubernetes = pinned("kubernetes", "k8s.io/kubernetes")
    for name in ("production", "staging"):
        cluster = result["cluster"][name]
        assert cluster["kube-apiserver"] == kubernetes
        for controller, version in cluster["flux"].items():
            assert version == pinned(f"flux/{controller}", f"github.com/fluxcd/{controller}"), controller
        assert len(cluster["flux"]) == 5
    assert out.count("cluster    ") == 2

    # Flux did Flux's part: both Receivers notified per push, each selection the offline prediction,
    # the automation's own commits, the Deployment read from the API server, the stand-in kubelet named so.
    pushes = sum(1 for step in result["steps"] if step["pushed"])
    assert out.count("Flux notified:") == 2 * pushes
    assert out.count("offline: the same)") == 2 * len(result["steps"])
    # + the rollback, v1.2.1 and the hand-pushed 1.3.0, which the automation proposes on its branch all the same
    assert out.count("image-automation-controller committed") == len(CHANGING) + 3
    assert out.count("fluxcdbot: Update images (flux-system/app)") == len(CHANGING) + 3
    assert out.count("pushed to config.git over HTTP (flux/app-production)") == len(RELEASED) + 2
    assert "Flux passes over 1.3.0: " in out  # staging's policy: not a main build
    stolen = out[out.index(f"== {STOLEN}") :]
    assert re.search(r"production Flux: .* ImagePolicy app-production selects 1\.3\.0", stolen)
    assert "unchanged: nothing was merged" in stolen
    assert "(the stand-in for a kubelet)" in out
    # v2.0.0: the real controllers pass over another major; the rollback: they drop 1.2.0 for 1.1.0.
    assert "Flux passes over 2.0.0: ignored: other major" in out
    rollback = out[out.index("== v1.2.0 turns out bad") : out.index("== push the fix to main")]
    assert re.search(r"production Flux: .* ImagePolicy app-production selects 1\.1\.0", rollback)
    assert "carries 1.1.0" in rollback and "after the commit" in rollback
    figures = {title: steps[title]["applied_after_push_seconds"] for title in (*CHANGING, "tag v1.2.1")}
    print(f"applied after push (s): {figures}")
    assert not demo_processes()
