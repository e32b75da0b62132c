"""Entry point of the container action: INPUT_* and GITHUB_* in, outputs and a job summary out.

The runner passes inputs as `INPUT_<NAME>` with hyphens kept (`INPUT_MAJOR-VERSION`), which is
why the Dockerfile runs Python directly instead of through a shell.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from image_tagger.edges import context, docker_ops, manifests, notify
from image_tagger.edges.buildkit import BuildError
from image_tagger.edges.registry.session import list_tags
from image_tagger.edges.runnerio import Runner
from image_tagger.fluxrules import automation
from image_tagger.model.errors import InputError, PublishError
from image_tagger.model.plan import TagPlan
from image_tagger.model.receivers import Notification
from image_tagger.model.registry import RegistryAuth
from image_tagger.model.result import Provenance, PublishResult
from image_tagger.operations.publish import PushFailed, publish
from image_tagger.rules import inputs, report
from image_tagger.rules.naming import plan_tags
from image_tagger.rules.redact import Redactor, one_line


class ActionsLog:
    """Build and push logs folded into `::group::` blocks of the job log.

    Every line is redacted and escaped by the runner's guarded stdout; inside a group the runner's command
    parsing is paused too (`::stop-commands::`), so a line that a Dockerfile's RUN step prints can never
    act as a workflow command (set an output, mask, annotate).
    """

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def info(self, text: str) -> None:
        print(text, flush=True)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        token = secrets.token_hex(16)
        self.runner.command("group", {}, one_line(title))
        self.runner.command("stop-commands", {}, token)
        try:
            yield
        finally:
            self.runner.command(token, {}, "")
            self.runner.command("endgroup", {}, "")


def raw_inputs(env: Mapping[str, str]) -> dict[str, str]:
    """The runner's `INPUT_<NAME>` variables (hyphens kept) under the action's input names."""
    return {key.removeprefix("INPUT_").lower(): value for key, value in env.items() if key.startswith("INPUT_")}


def secrets_of(env: Mapping[str, str]) -> Redactor:
    """Every credential and secret of the step, from the raw inputs (so even a refused input is redacted)."""
    redactor = Redactor()
    redactor.add_login(env.get("INPUT_USERNAME", "").strip(), env.get("INPUT_PASSWORD", ""))
    redactor.add_secret(env.get("INPUT_FLUX-RECEIVER-SECRET", ""))
    redactor.add_build_secrets(env.get("INPUT_SECRETS", ""))
    return redactor


def overlay_outlook(
    runner: Runner, targets: list[automation.PolicyTarget], plan: TagPlan, credentials: RegistryAuth
) -> list[str]:
    """What the overlay's policies do with the new tag, from the registry's current tag list (one line each:
    the tags are the registry's, so a tag name cannot start a line of its own)."""
    try:
        tags = list_tags(plan.image.name, credentials)
    except PublishError as err:
        runner.annotate("warning", f"overlay preview skipped: {err}")
        return []
    return [one_line(line) for line in automation.outlook(targets, tags, plan.image.name, plan.version)]


def run(runner: Runner) -> int:
    """The whole step; returns the exit code."""
    env = runner.env
    workspace = Path(env.get("GITHUB_WORKSPACE") or Path.cwd())
    given = inputs.parse(raw_inputs(env), workspace, env.get("INPUT_PASSWORD", ""))
    ctx = context.resolve({}, env, checkout=workspace)
    plan = plan_tags(ctx, given.image, given.naming, now=int(time.time()))
    targets = automation.find_targets(manifests.load_objects(given.overlay)) if given.overlay else []
    for note in plan.notes:
        runner.annotate("notice", note)
    print(f"{plan.kind} {ctx.ref} -> {', '.join(plan.refs)} (push: {str(plan.push).lower()})", flush=True)
    client = docker_ops.connect()
    provenance = Provenance(ctx.sha, ctx.source_url, ctx.commit_time)
    failure: PushFailed | None = None
    try:
        result = publish(
            client,
            plan,
            given.build,
            provenance,
            given.credentials,
            ActionsLog(runner),
            datetime.now(UTC),
            given.release,
        )
    except PushFailed as err:
        result, failure = err.result, err
    print(f"{report.HEADINGS.get(result.outcome, result.outcome)}: {result.image_ref}", flush=True)
    verdicts = report.flux_verdicts(plan, given.naming.major_version)
    forecast = overlay_outlook(runner, targets, plan, given.credentials) if targets and result.pushed else []
    for line in forecast:
        print(f"flux: {line}", flush=True)
    summary = report.summary(result, verdicts, forecast)
    # The release tag is in the registry: every cluster's Flux may rescan now.
    notifications = notify.announce_all(given.receivers, result, log=print) if result.pushed else []
    for notification in notifications:
        if notification.ok:
            print(notification.detail, flush=True)
        else:
            runner.annotate("warning", notification.detail, title="Flux not notified")
    if notifications:
        summary += "\n" + report.summary_text(notifications)
    write_results(runner, result, summary, notifications)
    if failure is not None:
        raise failure
    return 0


def write_results(
    runner: Runner, result: PublishResult, summary: str, notifications: Sequence[Notification] = ()
) -> None:
    """Outputs and summary; if the runner's files cannot take them, say what is in the registry regardless."""
    try:
        for name, value in report.outputs(result, notifications).items():
            runner.output(name, value)
        runner.summary(summary)
    except Exception as err:  # OSError, or actions-toolkit's bare Exception for a missing GITHUB_OUTPUT file
        pushed = ", ".join(result.tags_in("pushed", "promoted", "already-published")) or "nothing"
        reason = getattr(err, "strerror", None) or str(err)
        raise PublishError(
            f"writing the step's outputs failed ({reason}); in the registry: {pushed} ({result.digest})"
        ) from err


def main() -> int:
    runner = Runner(secrets_of(os.environ), os.environ)
    with runner.log():
        return _step(runner)


def _step(runner: Runner) -> int:
    """The step and its exit code: every failure is one annotation, never a bare traceback."""
    try:
        return run(runner)
    except InputError as err:
        runner.annotate("error", str(err), title="Invalid input")
        return 2
    except BuildError as err:
        runner.annotate("error", str(err), title=f"Build failed: {err.step}" if err.step else "Build failed")
        return 1
    except PublishError as err:
        runner.annotate("error", str(err), title="Publish failed")
        return 1
    except Exception as err:
        runner.annotate("error", f"{type(err).__name__}: {err}", title="Unexpected failure")
        return 1


if __name__ == "__main__":
    sys.exit(main())
