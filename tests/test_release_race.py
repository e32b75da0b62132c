"""Two commits releasing one version at the same moment: at most one run reports success, and it is right.

Registries have no compare-and-swap on tags, so this is the real thing: two `image-tagger publish`
processes from two throwaway repositories (two commits, two different pages) started together against
the real htpasswd registry, for several rounds on Engine 20.10 and two where the rival runs on Engine 28.
Whatever the interleaving, never both exit 0; the run that exits 0 finds the release tag naming its own
commit (the registry's manifest and config labels, read after both ended); the other exits 1 and its stderr
names the commit holding the tag.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import explain
from support.engines import Engine, probe
from support.registry import Registry
from support.sample_app import git, make_sample_app

from image_tagger.operations.publish import SETTLE_ENV
from image_tagger.rules.releases import REVISION

# Shorter than the product's 10 s to keep the suite quick; both runs start together on one machine, so their
# release-tag pushes land well within it (a rival lagging more than the settle interval is the documented limit).
SETTLE = 4
# Both runs on Engine 20.10 (one daemon: each retags the shared local 3.0.0 from its own build tag, so a
# push may carry the rival's image and the read-back catches it), and the rival on Engine 28 (two runners:
# two daemons, so both pushes succeed and only the settle check decides).
ROUNDS = [("20.10", "20.10")] * 4 + [("20.10", "28")] * 2
VERSION = "3.0.0"


def commit_of(tmp_path: Path, name: str) -> tuple[Path, str]:
    """A repository of its own, tagged v3.0.0, whose page (an image layer) says which one it is."""
    workspace = tmp_path / name
    make_sample_app(workspace)
    (workspace / "index.html").write_text(f"<p>{name}</p>\n")
    git(workspace, "commit", "--quiet", "-am", f"release from {name}")
    git(workspace, "tag", f"v{VERSION}")
    return workspace, git(workspace, "rev-parse", "HEAD")


def start(registry: Registry, engine: Engine, workspace: Path, repository: str) -> subprocess.Popen[str]:
    """`image-tagger publish` as run_cli runs it, but not waited for: the rival starts at the same moment."""
    env = engine.env(IMAGE_TAGGER_PASSWORD=registry.password, **{SETTLE_ENV: str(SETTLE)})
    clean = {k: v for k, v in env.items() if not k.startswith("GITHUB_")}
    return subprocess.Popen(
        [sys.executable, "-m", "image_tagger", "publish", "--json", "--floating-tags", "--major-version", "3"]
        + ["--image", f"{registry.host}/{repository}", "--workspace", str(workspace)]
        + ["--username", registry.username],
        env=clean,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize(("round_", "engines"), list(enumerate(ROUNDS)))
def test_two_commits_releasing_one_version_never_both_succeed(
    round_: int, engines: tuple[str, str], registry: Registry, tmp_path: Path
) -> None:
    repository = f"release-race/round-{round_}-{os.getpid()}"
    daemons = [probe(name) for name in engines]
    (first, first_sha), (second, second_sha) = commit_of(tmp_path, "first"), commit_of(tmp_path, "second")
    try:
        runs = [start(registry, daemons[0], first, repository), start(registry, daemons[1], second, repository)]
        done = dict(zip((first_sha, second_sha), (finish(run) for run in runs), strict=True))
    finally:
        for daemon in daemons:
            with daemon.client() as client:
                for image in client.images.list(name=f"{registry.host}/{repository}"):
                    client.images.remove(image.id, force=True)
    story = "\n\n".join(f"{sha[:12]}: {explain(run)}" for sha, run in done.items())

    winners = [sha for sha, run in done.items() if run.returncode == 0]
    assert len(winners) <= 1, f"both runs reported success:\n{story}"
    holder = registry.labels(repository, VERSION)[REVISION]
    assert holder in done, story
    for sha, run in done.items():
        if run.returncode == 0:
            assert holder == sha, f"{sha[:12]} exited 0 but {VERSION} names {holder[:12]}:\n{story}"
            assert json.loads(run.stdout)["tag_states"][f"{registry.host}/{repository}:{VERSION}"] == "pushed"
            continue
        assert run.returncode == 1, story
        assert len(run.stderr.strip().splitlines()[-1:]) == 1, story
        assert holder[:12] in run.stderr.strip().splitlines()[-1], f"{sha[:12]}'s error names no holder:\n{story}"
        if run.stdout:  # a push had started: the result must not claim the release tag
            result = json.loads(run.stdout)
            assert result["pushed"] is False, story
            assert result["tag_states"][f"{registry.host}/{repository}:{VERSION}"] != "pushed", story
    assert winners == [holder], f"the run holding the tag should have won:\n{story}"
