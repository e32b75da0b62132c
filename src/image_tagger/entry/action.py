"""Entry point of the container action: INPUT_* and GITHUB_* in, outputs and a job summary out.

The runner passes inputs as `INPUT_<NAME>` with hyphens kept (`INPUT_MAJOR-VERSION`), which is
why the Dockerfile runs Python directly instead of through a shell.
"""

from __future__ import annotations

import gc

# While the step's modules load, the collector would scan their objects again and again and find nothing to free:
# some 4 ms of the start before the build (issue 17). It is paused for the imports; what they made lives for the
# whole step, so it is then frozen out of every later collection. (So the imports below follow code: E402.)
# ruff: noqa: E402
gc.disable()

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from image_tagger.edges import context
from image_tagger.edges.jobports import real_edges
from image_tagger.edges.runnerio import Runner
from image_tagger.model.errors import PublishError, exit_code
from image_tagger.operations import publish
from image_tagger.rules import inputs
from image_tagger.rules.publishinputs import ID_TOKEN_REQUEST_ENV, PUBLISH_INPUTS
from image_tagger.rules.redact import Redactor, one_line

if TYPE_CHECKING:
    from image_tagger.model.report import PublishReport
    from image_tagger.model.result import PublishResult

gc.freeze()
gc.enable()


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
        token = os.urandom(16).hex()  # unguessable, as secrets.token_hex, without its imports before the build
        self.runner.command("group", {}, one_line(title))
        self.runner.command("stop-commands", {}, token)
        try:
            yield
        finally:
            self.runner.command(token, {}, "")
            self.runner.command("endgroup", {}, "")


def secrets_of(env: Mapping[str, str]) -> Redactor:
    """Every input declared secret, from the raw inputs (so even a refused input is redacted), and the runner's
    bearer for OIDC tokens."""
    redactor = Redactor()
    redactor.add_inputs(PUBLISH_INPUTS, inputs.raw_inputs(env))
    redactor.add_secret(env.get(ID_TOKEN_REQUEST_ENV, ""))
    return redactor


def run(runner: Runner) -> int:
    """The whole step; returns the exit code."""
    env = runner.env
    workspace = Path(env.get("GITHUB_WORKSPACE") or Path.cwd())
    given = inputs.parse(inputs.raw_inputs(env), workspace)
    ctx = context.resolve({}, env, checkout=workspace)
    return render(runner, publish.run(given, ctx, real_edges(), ActionsLog(runner)))


def render(runner: Runner, job: PublishReport) -> int:
    """The report as the runner shows it: notices, log lines, warnings, outputs and summary, the error last."""
    from image_tagger.rules import report  # after the build (issue 17)

    for note in job.plan.notes:
        runner.annotate("notice", note)
    if job.result is not None:
        print(report.heading(job.result), flush=True)
        for warning in job.warnings:
            runner.annotate("warning", warning)
        for line in job.forecast:
            print(f"flux: {line}", flush=True)
        for notification in job.notifications:
            if notification.ok:
                print(notification.detail, flush=True)
            else:
                runner.annotate("warning", notification.detail, title="Flux not notified")
        write_results(runner, job, job.result)
    if job.failure is not None:
        runner.annotate("error", job.failure.message, title=job.failure.title)
    return job.exit_code


def write_results(runner: Runner, job: PublishReport, result: PublishResult) -> None:
    """Outputs and summary; if the runner's files cannot take them, say what is in the registry regardless."""
    from image_tagger.rules import report

    try:
        for name, value in report.outputs(result, job.notifications).items():
            runner.output(name, value)
        runner.summary(report.job_summary(job, result))
    except Exception as err:  # OSError, or actions-toolkit's bare Exception for a missing GITHUB_OUTPUT file
        pushed = ", ".join(result.in_registry) or "nothing"
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
    except Exception as err:  # noqa: BLE001 - the step's one error line, never a traceback
        code = exit_code(err)
        if code is None:
            runner.annotate("error", f"{type(err).__name__}: {err}", title="Unexpected failure")
        else:
            runner.annotate("error", str(err), title="Invalid input" if code == 2 else "Publish failed")
        return code or 1


if __name__ == "__main__":
    from image_tagger.entry import leave

    leave(main())
