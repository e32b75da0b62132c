"""The runner's sinks, shared by both actions: the job log, workflow commands, outputs and the step summary.

Every sink passes the run's one `Redactor`. While `Runner.log()` is open, stdout and stderr are `SafeStream`s:
whatever any code prints there is redacted and made safe line by line, so text from outside can never
act as a workflow command; only the commands written through `Runner.command` reach the runner as such.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from actions_toolkit.command import Command, issue_command

from image_tagger.rules.redact import Redactor, SafeStream, escape_controls, guarded, one_line


class Runner:
    """One step's view of the runner: log, commands, outputs and summary, all through one redactor."""

    def __init__(self, redactor: Redactor, env: Mapping[str, str]) -> None:
        self.redactor = redactor
        self.env = env
        self._stdout: SafeStream | None = None

    @contextmanager
    def log(self) -> Iterator[None]:
        """Register every secret form as a mask first (before anything else is printed), then guard stdout."""
        for value in self.redactor.values:
            issue_command("add-mask", {}, value)  # core.set_secret, without core's imports (requests: issue 17)
        with guarded(self.redactor, "stdout", "stderr") as streams:  # the runner reads commands from both
            self._stdout = streams["stdout"]
            try:
                yield
            finally:
                self._stdout = None

    def command(self, name: str, properties: Mapping[str, str], message: str) -> None:
        """A workflow command of ours; property values and the message escaped as actions/toolkit does."""
        fields = {key: one_line(self.redactor(value)) for key, value in properties.items()}
        line = str(Command(name, fields, escape_controls(self.redactor(message), keep="\n")))
        if self._stdout is not None:
            self._stdout.command(line)
        else:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def annotate(self, kind: str, message: str, title: str = "") -> None:
        """An `error`, `warning` or `notice` annotation (a multi-line message stays multi-line, escaped)."""
        self.command(kind, {"title": title} if title else {}, message)

    def output(self, name: str, value: str) -> None:
        """A step output, redacted; through GITHUB_OUTPUT when the runner gives one."""
        if self.env.get("GITHUB_OUTPUT"):
            from actions_toolkit import core  # after the build: it imports requests for its OIDC client

            core.set_output(name, self.redactor(value))
        else:
            self.command("set-output", {"name": name}, value)

    def summary(self, markdown: str) -> None:
        """Append to the job summary, redacted (an OSError says the file could not take it)."""
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(escape_controls(self.redactor(markdown), keep="\n"))
