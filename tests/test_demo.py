"""The README's first command: the whole loop, run as a person runs it, read from its last line."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import docker


def test_demo_runs_the_scenario_to_the_end(docker_client: docker.DockerClient) -> None:
    before = {tag for image in docker_client.images.list() for tag in image.tags}
    done = subprocess.run([sys.executable, "-m", "image_tagger", "demo"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    production, staging = result["production"], result["staging"]
    assert re.fullmatch(r"127\.0\.0\.1:[0-9]+/demo/app:1\.2\.1", production)
    assert re.fullmatch(r"127\.0\.0\.1:[0-9]+/demo/app:main-[0-9a-f]{7}-[0-9]+", staging)

    steps = {step["step"]: step for step in result["steps"]}
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
    assert "rollback clusters/production 1.2.0" in done.stdout
    # Every push notified the Receiver, and the policies selected within seconds instead of the next scan.
    assert result["scan_interval"] == "5m"
    timed = [s["selected_after_push_seconds"] for s in result["steps"] if s["pushed"]]
    assert timed and all(t is not None and t < 30 for t in timed), timed
    assert done.stdout.count("Flux notified:") == len(timed)
    # Each environment really ran its image: the page reports the version the image was built as.
    assert f"page says 'version {first_main.rsplit(':', 1)[1]}'" in done.stdout
    assert f"page says 'version {staging.rsplit(':', 1)[1]}'" in done.stdout
    # Commits were made with the automation's message template and pushed to the config repo.
    assert done.stdout.count("Update images (flux-system/app)") == 8
    # It cleans up after itself: no demo image is left in the daemon.
    host = production.split("/", 1)[0]
    after = {tag for image in docker_client.images.list() for tag in image.tags}
    assert not {tag for tag in after - before if tag.startswith(f"{host}/demo/app:")}
