"""Entry point of the container action: INPUT_* and GITHUB_* in, outputs and a job summary out.

The runner passes inputs as `INPUT_<NAME>` with hyphens kept (`INPUT_MAJOR-VERSION`), which is
why the Dockerfile runs Python directly instead of through a shell.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from actions_toolkit import core
from actions_toolkit.command import issue_command

from image_tagger import context, docker_ops, inputs, manifests, notify, registry_client, report
from image_tagger.buildkit import BuildError
from image_tagger.errors import InputError, PublishError
from image_tagger.flux import automation
from image_tagger.naming import TagPlan, plan_tags
from image_tagger.publish import Provenance, PublishResult, PushFailed, publish


class ActionsLog:
    """Build and push logs folded into `::group::` blocks of the job log.

    Inside a group the runner's command parsing is paused (`::stop-commands::`), so a line that a
    Dockerfile's RUN step prints can never act as a workflow command (set an output, mask, annotate).
    """

    def info(self, text: str) -> None:
        print(text, flush=True)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        token = secrets.token_hex(16)
        print(f"::group::{title}", flush=True)
        print(f"::stop-commands::{token}", flush=True)
        try:
            yield
        finally:
            print(f"::{token}::", flush=True)
            print("::endgroup::", flush=True)


def raw_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """The runner's `INPUT_<NAME>` variables (hyphens kept) under the action's input names."""
    return {key.removeprefix("INPUT_").lower(): value for key, value in env.items() if key.startswith("INPUT_")}


def mask_secrets(env: Mapping[str, str]) -> None:
    """Mask every secret value, and the forms a registry exchange derives from the password, before anything runs."""
    password = env.get("INPUT_PASSWORD", "")
    if password:
        core.set_secret(password)
        user = env.get("INPUT_USERNAME", "").strip()
        core.set_secret(base64.b64encode(f"{user}:{password}".encode()).decode())
    mask_lines(env.get("INPUT_FLUX-RECEIVER-SECRET", ""))
    for line in env.get("INPUT_SECRETS", "").splitlines():
        _, sep, value = line.partition("=")
        mask_lines(value if sep else line)  # a line that is not id=value may be a pasted secret itself


def mask_lines(text: str) -> None:
    """The runner masks line by line: each non-blank line of a secret is masked on its own."""
    for line in text.splitlines():
        if line.strip():
            core.set_secret(line)


def overlay_outlook(
    targets: list[automation.PolicyTarget], plan: TagPlan, credentials: registry_client.RegistryAuth
) -> list[str]:
    """What the overlay's policies do with the new tag, from the registry's current tag list."""
    try:
        tags = registry_client.list_tags(plan.image.name, credentials)
    except PublishError as err:
        issue_command("warning", {}, f"overlay preview skipped: {err}")
        return []
    return automation.outlook(targets, tags, plan.image.name, plan.version)


def run(env: Mapping[str, str]) -> int:
    """The whole step; returns the exit code."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or Path.cwd())
    given = inputs.parse(raw_inputs(env), workspace, env.get("INPUT_PASSWORD", ""))
    ctx = context.resolve({}, env, checkout=workspace)
    plan = plan_tags(ctx, given.image, given.naming, now=int(time.time()))
    targets = automation.find_targets(manifests.load_objects(given.overlay)) if given.overlay else []
    for note in plan.notes:
        issue_command("notice", {}, note)
    print(f"{plan.kind} {ctx.ref} -> {', '.join(plan.refs)} (push: {str(plan.push).lower()})", flush=True)
    client = docker_ops.connect()
    provenance = Provenance(ctx.sha, ctx.source_url, ctx.commit_time)
    failure: PushFailed | None = None
    try:
        result = publish(
            client, plan, given.build, provenance, given.credentials, ActionsLog(), datetime.now(UTC), given.release
        )
    except PushFailed as err:
        result, failure = err.result, err
    print(f"{report.HEADINGS.get(result.outcome, result.outcome)}: {result.image_ref}", flush=True)
    verdicts = report.flux_verdicts(plan, given.naming.major_version)
    forecast = overlay_outlook(targets, plan, given.credentials) if targets and result.pushed else []
    for line in forecast:
        print(f"flux: {line}", flush=True)
    summary = report.summary(result, verdicts, forecast)
    if given.receiver is not None and result.pushed:  # the release tag is in the registry: Flux may rescan now
        notification = notify.announce(given.receiver, result, log=print)
        if notification.ok:
            print(notification.detail, flush=True)
        else:
            issue_command("warning", {"title": "Flux not notified"}, notification.detail)
        summary += "\n" + notify.summary_text(notification)
    write_results(env, result, summary)
    if failure is not None:
        raise failure
    return 0


def write_results(env: Mapping[str, str], result: PublishResult, summary: str) -> None:
    """Outputs and summary; if the runner's files cannot take them, say what is in the registry regardless."""
    try:
        for name, value in report.outputs(result).items():
            core.set_output(name, value)
        summary_path = env.get("GITHUB_STEP_SUMMARY")
        if summary_path:
            with open(summary_path, "a", encoding="utf-8") as fh:
                fh.write(summary)
    except Exception as err:  # OSError, or actions-toolkit's bare Exception for a missing GITHUB_OUTPUT file
        pushed = ", ".join(result.tags_in("pushed", "promoted", "already-published")) or "nothing"
        reason = getattr(err, "strerror", None) or str(err)
        raise PublishError(
            f"writing the step's outputs failed ({reason}); in the registry: {pushed} ({result.digest})"
        ) from err


def main() -> int:
    mask_secrets(os.environ)
    try:
        return run(os.environ)
    except InputError as err:
        issue_command("error", {"title": "Invalid input"}, str(err))
        return 2
    except BuildError as err:
        title = f"Build failed: {err.step}" if err.step else "Build failed"
        issue_command("error", {"title": title}, str(err))
        return 1
    except PublishError as err:
        issue_command("error", {"title": "Publish failed"}, str(err))
        return 1
    except Exception as err:  # still an annotation and a failed step, never a bare traceback
        issue_command("error", {"title": "Unexpected failure"}, f"{type(err).__name__}: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
