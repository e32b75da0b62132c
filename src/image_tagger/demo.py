"""`image-tagger demo`: the main job end to end on one machine, with a local registry and Docker.

A sample app gets a release tag and a push to main; each is planned by the naming contract,
built and pushed with the same code the action runs, and the registry is read back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from image_tagger import context, docker_ops, localregistry, sampleapp
from image_tagger.imagename import parse_image
from image_tagger.naming import NamingOptions, plan_tags
from image_tagger.publish import BuildSpec, Credentials, PublishResult, publish

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Demo Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.invalid",
    "GIT_COMMITTER_NAME": "Demo Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.invalid",
}


@dataclass
class Repo:
    """A git working tree the demo commits to; commit times are explicit so builds order exactly."""

    path: Path
    clock: int

    def git(self, *args: str) -> str:
        stamp = f"@{self.clock} +0000"
        env = {**os.environ, **GIT_IDENTITY, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        done = subprocess.run(
            ["git", "-c", "init.defaultBranch=main", *args],
            cwd=self.path,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    def commit(self, message: str) -> None:
        self.clock += 60
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)


class QuietLog:
    """Build logs are only shown when a step fails; the timeline is what the demo prints."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str) -> None:
        self.lines.append(text)

    def group(self, title: str) -> AbstractContextManager[None]:
        self.lines.append(f"== {title}")
        return nullcontext()


def say(text: str) -> None:
    print(text, flush=True)


def publish_head(client, app: Repo, image: str, registry: str, major: int | None) -> PublishResult:
    """Exactly `image-tagger publish` on the app checkout: plan from git, build, push."""
    ctx = context.from_local_git(app.path)
    plan = plan_tags(
        ctx, parse_image(image, registry), NamingOptions(major_version=major, timestamp="commit"), app.clock
    )
    build = BuildSpec(app.path, app.path / "Dockerfile", {"VERSION": plan.version}, ctx.source_url, ctx.sha)
    log = QuietLog()
    try:
        return publish(client, plan, build, Credentials(), log, datetime.now(UTC))
    except Exception:
        print("\n".join(log.lines[-40:]), file=sys.stderr)
        raise


def run(image: str = "demo/app") -> dict[str, object]:
    client = docker_ops.connect()
    with tempfile.TemporaryDirectory(prefix="image-tagger-demo-") as tmp:
        root = Path(tmp)
        with localregistry.serve(root / "registry") as reg:
            say(f"registry   {reg.host} (local, anonymous)")
            app = Repo(root / "app", clock=int(datetime.now(UTC).timestamp()))
            sampleapp.write_app(app.path)
            app.git("init", "--quiet")
            app.commit("sample app")
            pushed = []
            app.git("tag", "v1.0.0")
            result = publish_head(client, app, image, reg.host, major=1)
            say(f"tag v1.0.0 -> pushed {result.image_ref}")
            pushed.append(result.image_ref)
            (app.path / "index.html").write_text(sampleapp.INDEX_HTML.replace("demo app", "demo app, main"))
            app.commit("change on main")
            result = publish_head(client, app, image, reg.host, major=1)
            say(f"main push  -> pushed {result.image_ref}")
            pushed.append(result.image_ref)
    return {"pushed": pushed}


def main() -> int:
    summary = run()
    print(json.dumps(summary))
    return 0
