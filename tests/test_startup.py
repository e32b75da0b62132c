"""What the action has loaded when its build starts (issue 17): a run of the real entry point up to the moment it
starts buildx, in a process of its own, must not have imported what only some jobs or only the job's end need.

A module named here that comes back before the build makes every job's build start later: load it where it is
used, or in the thread that loads the job's after-build modules while BuildKit builds (edges/jobports).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Only the end of a job needs these (the report, the registry client's read-back, the build folder's clean-up, the
# build log's parser once buildx runs), or only some jobs (a local checkout's git, a Receiver's URL, an overlay's
# YAML and Flux's rules, signing, the Docker SDK of the legacy builder and the login check beside the build).
NOT_BEFORE_THE_BUILD = {
    "image_tagger.model.report",
    "image_tagger.rules.report",
    "image_tagger.edges.buildlog",
    "image_tagger.edges.gitcmd",
    "image_tagger.edges.registry.session",
    "image_tagger.edges.docker_ops",
    "image_tagger.edges.manifests",
    "image_tagger.fluxrules.automation",
    "image_tagger.operations.signing",
    "docker",
    "requests",
    "yaml",
    "cryptography",
    "shutil",
    "tempfile",
    "socketserver",
    "urllib.parse",
    "ipaddress",
}

# The action's entry point as the image runs it, stopped where it starts buildx; it writes which modules it had
# loaded then that the interpreter's own start-up had not.
STOP_AT_BUILD = """
import json, subprocess, sys
at_start = set(sys.modules)

def start(self, argv, *args, **kwargs):
    if list(argv[1:2]) == ["build"]:
        with open(sys.argv[1], "w") as out:
            json.dump(sorted(set(sys.modules) - at_start), out)
        raise OSError("stopped where the build starts")
    return popen(self, argv, *args, **kwargs)

popen, subprocess.Popen.__init__ = subprocess.Popen.__init__, start
from image_tagger.entry import action
sys.exit(action.main())
"""


def test_the_build_starts_before_what_only_some_jobs_or_the_end_need(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "Dockerfile").write_text("FROM scratch\n")
    buildx = tmp_path / "docker-buildx"
    buildx.write_text("#!/bin/sh\nexit 1\n")
    buildx.chmod(0o755)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"repository": {"pushed_at": 1764590500, "private": False}}))
    loaded = tmp_path / "loaded.json"
    # A hand-made environment: no daemon, registry or network is reached (the run stops before buildx starts).
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DOCKER_HOST": "unix:///nonexistent/startup-test.sock",
        "IMAGE_TAGGER_BUILDX": str(buildx),
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_WORKSPACE": str(workspace),
        "INPUT_IMAGE": "127.0.0.1:5999/startup/app",
        "INPUT_USERNAME": "ci-bot",  # the credential socket is served before the build
        "INPUT_PASSWORD": "startup-test-only",
        "INPUT_PUSH": "false",  # no login check beside the build: its thread would import the Docker SDK
        "INPUT_PROVENANCE": "false",  # no question to the daemon
    }
    done = subprocess.run(
        [sys.executable, "-c", STOP_AT_BUILD, str(loaded)], env=env, capture_output=True, text=True, timeout=60
    )

    assert "stopped where the build starts" in done.stdout + done.stderr, done.stdout + done.stderr
    before_build = set(json.loads(loaded.read_text()))
    assert "image_tagger.edges.buildkit" in before_build  # the run did reach the build
    assert not before_build & NOT_BEFORE_THE_BUILD, sorted(before_build & NOT_BEFORE_THE_BUILD)
