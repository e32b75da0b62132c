"""Releases you can trust, through `image-tagger publish` against a real daemon and a real registry.

Release tags are immutable (a re-run of the same commit is "already published", another commit is
refused), a release of a commit that staging already ran is promoted by digest (no build), and what a
run reports as pushed is, in the registry, the image that run built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.cli import assert_input_error, explain, run_cli
from support.registry import Registry
from support.sample_app import git

from image_tagger.model.errors import PublishError
from image_tagger.rules.releases import (
    RELEASE_ARTIFACT,
    Existing,
    ReleaseLost,
    already_published,
    branch_build_candidates,
    check_holder,
)

SHA = "3f2c1a9e" + "0" * 32


def test_release_verdicts() -> None:
    assert already_published(None, SHA, overwrite=False) is False
    assert already_published(Existing("1.4.2", "sha256:a", SHA.upper()), SHA, overwrite=False) is True
    assert already_published(Existing("1.4.2", "sha256:a", "b" * 40), SHA, overwrite=True) is False
    with pytest.raises(PublishError, match=r"1\.4\.2 already names bbbbbbbbbbbb .* not this commit 3f2c1a9e0000"):
        already_published(Existing("1.4.2", "sha256:a", "b" * 40), SHA, overwrite=False)
    with pytest.raises(PublishError, match="unknown commit"):
        already_published(Existing("1.4.2", "sha256:a", None), SHA, overwrite=False)


def test_a_release_tag_another_commit_pushed_over_ours_is_lost() -> None:
    check_holder("1.4.2", Existing("1.4.2", "sha256:a", SHA.upper()), SHA, "now")  # still ours: nothing raised
    with pytest.raises(ReleaseLost, match=r"names bbbbbbbbbbbb \(sha256:a\), not this commit 3f2c1a9e0000: .* now"):
        check_holder("1.4.2", Existing("1.4.2", "sha256:a", "b" * 40), SHA, "now")
    with pytest.raises(ReleaseLost, match="unknown commit"):
        check_holder("1.4.2", Existing("1.4.2", "sha256:a", None), SHA, "now")
    with pytest.raises(PublishError, match="gone from the registry now"):
        check_holder("1.4.2", None, SHA, "now")


def test_branch_build_candidates_are_this_commits_newest_first() -> None:
    tags = ["main-3f2c1a9-100", "main-3f2c1a9-300", "feature-x-3f2c-200", "main-aaaaaaa-999", "pr-7-3f2c1a9-400"]
    tags += ["1.4.2", "main-3f2c1a9-12345678901", "pr-fix-3f2c1a9e-50"]
    assert branch_build_candidates(tags, SHA) == [
        "main-3f2c1a9-300",
        "feature-x-3f2c-200",
        "main-3f2c1a9-100",
        "pr-fix-3f2c1a9e-50",
    ]


@pytest.fixture
def repository(request: pytest.FixtureRequest) -> str:
    return "releases/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")


def publish(registry: Registry, workspace: Path, repository: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "publish",
        *("--image", f"{registry.host}/{repository}", "--workspace", str(workspace), "--json"),
        *("--username", registry.username, "--password-stdin", *extra),
        stdin=registry.password + "\n",
        timeout=300,
    )


def new_commit(workspace: Path, text: str) -> str:
    (workspace / "index.html").write_text(text)
    git(workspace, "commit", "--quiet", "-am", text)
    return git(workspace, "rev-parse", "HEAD")


def built(done: subprocess.CompletedProcess[str]) -> bool:
    """Whether the run built anything (BuildKit's step lines in the log)."""
    return bool(re.search(r"^#\d+ ", done.stderr, re.M))


def test_a_release_tag_is_never_silently_overwritten(registry: Registry, sample_app: Path, repository: str) -> None:
    first_sha = git(sample_app, "rev-parse", "HEAD")
    first = publish(registry, sample_app, repository, "--ref", "refs/tags/v1.4.2", "--promote", "never")
    assert first.returncode == 0, explain(first)
    digest = registry.manifest_digest(repository, "1.4.2")

    again = publish(registry, sample_app, repository, "--ref", "refs/tags/v1.4.2")
    other_sha = new_commit(sample_app, "a different commit")
    refused = publish(registry, sample_app, repository, "--ref", "refs/tags/v1.4.2", "--sha", other_sha)

    assert again.returncode == 0, explain(again)
    assert json.loads(again.stdout)["outcome"] == "already-published"
    assert json.loads(again.stdout)["digest"] == digest and not built(again)
    assert refused.returncode == 1, explain(refused)
    assert first_sha[:12] in refused.stderr and other_sha[:12] in refused.stderr, explain(refused)
    assert not built(refused)
    assert registry.manifest_digest(repository, "1.4.2") == digest

    forced = publish(
        registry, sample_app, repository, "--ref", "refs/tags/v1.4.2", "--sha", other_sha, "--overwrite-releases"
    )
    assert forced.returncode == 0, explain(forced)
    assert registry.manifest_digest(repository, "1.4.2") == json.loads(forced.stdout)["digest"] != digest


def test_a_release_of_a_commit_staging_ran_is_promoted_by_digest(
    registry: Registry, sample_app: Path, repository: str
) -> None:
    staging = publish(registry, sample_app, repository, "--ref", "refs/heads/main")
    assert staging.returncode == 0, explain(staging)
    branch_tag = json.loads(staging.stdout)["version"]

    release = publish(registry, sample_app, repository, "--ref", "refs/tags/v2.0.0", "--floating-tags")

    assert release.returncode == 0, explain(release)
    result = json.loads(release.stdout)
    assert (result["outcome"], result["promoted_from"]) == ("promoted", branch_tag)
    assert not built(release)
    assert f"promoted from {branch_tag}" in release.stderr
    staged = registry.manifest_digest(repository, branch_tag)
    assert result["digest"] == staged
    assert {registry.manifest_digest(repository, tag) for tag in ("2.0.0", "2.0", "2", "latest")} == {staged}
    # The labels are the branch build's (they are its bytes); the release's version is a referrer beside it, listed
    # where the distribution spec's fallback puts it (this registry has no referrers API).
    assert registry.labels(repository, "2.0.0")["org.opencontainers.image.version"] == branch_tag
    assert result["labels"]["org.opencontainers.image.version"] == branch_tag
    referrers = registry.manifest(repository, staged.replace(":", "-", 1))["manifests"]
    assert [entry["digest"] for entry in referrers] == [result["release_referrer"]]
    artifact = registry.manifest(repository, result["release_referrer"])
    assert artifact["subject"]["digest"] == staged and artifact["artifactType"] == RELEASE_ARTIFACT
    assert artifact["annotations"]["org.opencontainers.image.version"] == "2.0.0"

    again = publish(registry, sample_app, repository, "--ref", "refs/tags/v2.0.0")
    assert json.loads(again.stdout)["release_referrer"] == result["release_referrer"]  # the same artifact, once
    assert len(registry.manifest(repository, staged.replace(":", "-", 1))["manifests"]) == 1

    rebuilt = publish(registry, sample_app, repository, "--ref", "refs/tags/v2.0.1", "--promote", "never")
    assert rebuilt.returncode == 0, explain(rebuilt)
    assert json.loads(rebuilt.stdout)["outcome"] == "pushed" and built(rebuilt)


def test_concurrent_runs_never_report_each_others_image(registry: Registry, sample_app: Path, repository: str) -> None:
    """Two runs of one commit and timestamp, building different images, at once on one daemon."""
    (sample_app / "Dockerfile").write_text(
        (sample_app / "Dockerfile").read_text()
        + 'ARG FLAVOUR\nRUN ["/bin/busybox", "sh", "-c", "echo $FLAVOUR > /flavour"]\n'
    )
    git(sample_app, "commit", "--quiet", "-am", "flavour")
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def run(flavour: str) -> None:
        results[flavour] = publish(
            registry,
            sample_app,
            repository,
            "--ref",
            "refs/heads/main",
            "--timestamp",
            "1764110000",
            "--build-arg",
            f"FLAVOUR={flavour}",
        )

    threads = [threading.Thread(target=run, args=(flavour,)) for flavour in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert any(done.returncode == 0 for done in results.values()), [explain(d) for d in results.values()]
    for done in results.values():
        if done.returncode == 0:
            result = json.loads(done.stdout)
            assert registry.manifest(repository, result["digest"])["config"]["digest"] == result["image_id"]
        else:
            assert "another run" in done.stderr or "failed" in done.stderr, explain(done)


def test_a_failure_to_write_outputs_still_says_what_was_pushed(
    registry: Registry, sample_app: Path, repository: str, tmp_path: Path
) -> None:
    """The action's own process (its Python, not its container): GITHUB_OUTPUT points at a missing folder."""
    sha = git(sample_app, "rev-parse", "HEAD")
    env = {
        "INPUT_IMAGE": f"{registry.host}/{repository}",
        "INPUT_USERNAME": registry.username,
        "INPUT_PASSWORD": registry.password,
        "GITHUB_WORKSPACE": str(sample_app),
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": sha,
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_OUTPUT": str(tmp_path / "missing" / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path),  # a directory
    }
    done = subprocess.run(
        [sys.executable, "-m", "image_tagger.entry.action"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 1, explain(done)
    [error] = [line for line in done.stdout.splitlines() if line.startswith("::error")]
    [tag] = registry.tags(repository)
    assert "writing the step's outputs failed" in error and f"{registry.host}/{repository}:{tag}" in error, error
    visible = "\n".join(line for line in done.stdout.splitlines() if not line.startswith("::add-mask::"))
    assert registry.password not in visible + done.stderr


def test_a_settle_interval_that_is_not_seconds_is_refused(registry: Registry, sample_app: Path, repository: str):
    for bad in ("soon", "-1", "nan", "601"):
        done = run_cli(
            *("publish", "--image", f"{registry.host}/{repository}", "--workspace", str(sample_app)),
            env={"IMAGE_TAGGER_RELEASE_SETTLE": bad},
        )
        assert_input_error(done, "IMAGE_TAGGER_RELEASE_SETTLE", repr(bad))
    assert registry.tags(repository) == []
