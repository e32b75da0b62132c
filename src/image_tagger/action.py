"""Entry point of the container action: INPUT_* and GITHUB_* in, outputs and a job summary out.

The runner passes inputs as `INPUT_<NAME>` with hyphens kept (`INPUT_MAJOR-VERSION`), which is
why the Dockerfile runs Python directly instead of through a shell.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from actions_toolkit import core
from actions_toolkit.command import issue_command

from image_tagger import context, docker_ops, preview, registry_client, report
from image_tagger.errors import InputError, PublishError
from image_tagger.imagename import parse_image
from image_tagger.naming import NamingOptions, TagPlan, parse_major, parse_sha_length, plan_tags
from image_tagger.publish import BuildSpec, Credentials, parse_build_args, publish


class ActionsLog:
    """Build and push logs folded into `::group::` blocks of the job log."""

    def info(self, text: str) -> None:
        print(text, flush=True)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        print(f"::group::{title}", flush=True)
        try:
            yield
        finally:
            print("::endgroup::", flush=True)


def _input(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(f"INPUT_{name.replace(' ', '_').upper()}", default).strip() or default


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = _input(env, name, "false").lower()
    if value not in ("true", "false"):
        raise InputError(f"{name} {value!r} is not accepted; accepted: true | false")
    return value == "true"


def overlay_targets(workspace: Path, overlay: str) -> list[preview.PolicyTarget]:
    """Read the overlay before anything is built, so a bad one fails the step with nothing pushed."""
    return preview.find_targets(preview.load_objects(workspace / overlay)) if overlay else []


def overlay_outlook(targets: list[preview.PolicyTarget], plan: TagPlan, credentials: Credentials) -> list[str]:
    """What the overlay's policies do with the new tag, from the registry's current tag list."""
    auth = registry_client.RegistryAuth(credentials.username, credentials.password)
    try:
        tags = registry_client.list_tags(plan.image.name, auth)
    except PublishError as err:
        issue_command("warning", {}, f"overlay preview skipped: {err}")
        return []
    return preview.outlook(targets, tags, plan.image.name, plan.version)


def run(env: Mapping[str, str]) -> int:
    """The whole step; returns the exit code."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or Path.cwd())
    options = NamingOptions(
        tag_prefix=_input(env, "tag-prefix"),
        major_version=parse_major(_input(env, "major-version")),
        sha_length=parse_sha_length(_input(env, "sha-length", "7")),
        timestamp=_input(env, "timestamp", "push"),
        floating_tags=_flag(env, "floating-tags"),
        push=_input(env, "push", "auto"),
    )
    image = parse_image(_input(env, "image"), _input(env, "registry", "docker.io"))
    credentials = Credentials(_input(env, "username"), env.get("INPUT_PASSWORD", ""))
    ctx = context.resolve({}, env, checkout=workspace)
    plan = plan_tags(ctx, image, options, now=int(time.time()))
    build_context = workspace / _input(env, "context", ".")
    file = _input(env, "file")
    dockerfile = workspace / file if file else build_context / "Dockerfile"
    build = BuildSpec(
        context=build_context,
        dockerfile=dockerfile,
        build_args=parse_build_args(env.get("INPUT_BUILD-ARGS", "")),
        source_url=ctx.source_url,
        revision=ctx.sha,
    )
    targets = overlay_targets(workspace, _input(env, "overlay"))
    for note in plan.notes:
        issue_command("notice", {}, note)
    print(f"{plan.kind} {ctx.ref} -> {', '.join(plan.refs)} (push: {str(plan.push).lower()})", flush=True)
    client = docker_ops.connect()
    result = publish(client, plan, build, credentials, ActionsLog(), datetime.now(UTC))
    for name, value in report.outputs(result).items():
        core.set_output(name, value)
    verdicts = report.flux_verdicts(plan, options.major_version)
    forecast = overlay_outlook(targets, plan, credentials) if targets else []
    for line in forecast:
        print(f"flux: {line}", flush=True)
    summary_path = env.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as fh:
            fh.write(report.summary(result, verdicts, forecast))
    print(f"{'Pushed' if result.pushed else 'Built'} {result.image_ref}", flush=True)
    return 0


def main() -> int:
    password = os.environ.get("INPUT_PASSWORD", "")
    if password:
        core.set_secret(password)
    try:
        return run(os.environ)
    except InputError as err:
        issue_command("error", {"title": "Invalid input"}, str(err))
        return 2
    except PublishError as err:
        issue_command("error", {"title": "Publish failed"}, str(err))
        return 1
    except Exception as err:  # still an annotation and a failed step, never a bare traceback
        issue_command("error", {"title": "Unexpected failure"}, f"{type(err).__name__}: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
