"""Entry point of the pull-request action: open or update the pull request of a Flux automation branch.

Inputs come as INPUT_* (hyphens kept), the repository and branch from GITHUB_*. Bad input: exit 2 with one
`::error` line; GitHub or registry trouble that stops the run: exit 1 with one `::error` line. The log,
outputs and summary pass one redaction of the token and the registry login (`runnerio.Runner`); what
GitHub or the registry answers is printed one line each, control characters escaped.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from image_tagger.edges import keylessverify
from image_tagger.edges.context import read_event
from image_tagger.edges.httpbounds import Deadline
from image_tagger.edges.registry.session import RegistrySession
from image_tagger.edges.runnerio import Runner
from image_tagger.edges.signer import load_public_key
from image_tagger.model.errors import InputError, PublishError, exit_code
from image_tagger.model.imagename import ImageName, normalise_registry
from image_tagger.model.registry import RegistryAuth
from image_tagger.operations.verify import Signer, Verdict, verify
from image_tagger.pullrequest import render
from image_tagger.pullrequest.changes import ImageChange, image_changes
from image_tagger.pullrequest.facts import DEADLINE as LOOKUP_DEADLINE
from image_tagger.pullrequest.facts import Facts, lookup
from image_tagger.pullrequest.github import DEADLINE, GitHub, Outcome
from image_tagger.pullrequest.inputs import PULL_REQUEST_INPUTS
from image_tagger.pullrequest.markers import marked_values, policy_keys
from image_tagger.rules.inputs import parse_seconds, raw_inputs, read
from image_tagger.rules.redact import Redactor, one_line

MAX_DEADLINE = 3600.0
_LABEL = re.compile(r"[^,\n]{1,50}")
_BRANCH = re.compile(r"(?!/)(?!.*(?:\.\.|//|@\{|\.lock(?:/|$)))[^\s~^:?*\[\\\x00-\x1f\x7f]+(?<![/.])")


@dataclass(frozen=True)
class Inputs:
    token: str
    path: str
    base: str
    branch: str
    labels: list[str]
    registry: str
    username: str
    password: str
    repository: str
    api_url: str
    workspace: Path
    deadline: float = DEADLINE
    signer: Signer | None = None  # the gate: every changed image signed by it (a key, or a keyless identity)


def read_inputs(env: Mapping[str, str]) -> Inputs:
    """The action's inputs and the GITHUB_* it needs; InputError names the first bad one."""
    given = read(PULL_REQUEST_INPUTS, raw_inputs(env))
    token = given["github-token"].strip()
    if not token:
        raise InputError("github-token is empty; give the workflow's token: github-token: ${{ github.token }}")
    repository = env.get("GITHUB_REPOSITORY", "")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
        raise InputError(f"GITHUB_REPOSITORY {repository!r} is not OWNER/REPO; run this as a step of a workflow")
    workspace = Path(env.get("GITHUB_WORKSPACE") or ".").resolve()
    path = given["path"]
    if not path:
        raise InputError("path is required: the automation's update path, e.g. apps/production")
    folder = (workspace / path).resolve()
    if not folder.is_relative_to(workspace):
        raise InputError(f"path {path!r} leads out of the workspace; give a folder of the checkout")
    if not folder.is_dir():
        raise InputError(f"path {path!r} is not a folder of the checkout; check out the repository first")
    branch = given["branch"]
    if not branch:
        ref = env.get("GITHUB_REF", "")
        if not ref.startswith("refs/heads/"):
            raise InputError(f"branch is empty and GITHUB_REF {ref!r} is not a branch; run on pushes to it")
        branch = ref.removeprefix("refs/heads/")
    base = given["base"] or _default_branch(env)
    for name, value in (("branch", branch), ("base", base)):
        if not _BRANCH.fullmatch(value):
            raise InputError(f"{name} {value!r} is not a branch name")
    if branch == base:
        raise InputError(f"branch and base are both {base!r}; the automation must push to a branch of its own")
    labels = [label.strip() for label in re.split(r"[,\n]", given["labels"]) if label.strip()]
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise InputError(f"label {label[:60]!r} is longer than GitHub's 50 characters")
    username, password = given["registry-username"], given["registry-password"]
    if password and not username:
        raise InputError("registry-password is set but registry-username is empty")
    try:
        registry = normalise_registry(given["registry"])
    except InputError as error:
        raise InputError(f"registry: {error}") from None
    api_url = (env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/")
    deadline = _deadline(given["timeout-seconds"])
    signer = _gate_signer(given)
    return Inputs(
        token.strip(),
        path,
        base,
        branch,
        labels,
        registry,
        username,
        password,
        repository,
        api_url,
        workspace,
        deadline,
        signer,
    )


KEYLESS_INPUTS = ("verify-certificate-identity", "verify-certificate-identity-regexp", "verify-certificate-oidc-issuer")


def _gate_signer(given: Mapping[str, str]) -> Signer | None:
    """The gate's signer: verify-key's public key, or the keyless identity under verify-trusted-root (else the
    pinned public-good root); neither: no gate. Both, or half an identity: exit 2."""
    identity, regexp, issuer = (given[name].strip() or None for name in KEYLESS_INPUTS)
    keyless, root = any((identity, regexp, issuer)), given["verify-trusted-root"].strip()
    if given["verify-key"].strip() and keyless:
        raise InputError("verify-key and verify-certificate-* are both set; accepted: one of them")
    if root and not keyless:
        raise InputError("verify-trusted-root is set without verify-certificate-identity; accepted: both, or none")
    if given["verify-key"].strip():
        return load_public_key(given["verify-key"].encode(), "verify-key")
    if not keyless:
        return None
    trusted = (root.encode(), "verify-trusted-root") if root else None
    return keylessverify.keyless_check((identity, regexp, issuer), KEYLESS_INPUTS, trusted)


def _deadline(text: str) -> float:
    """timeout-seconds: the one deadline of every GitHub and registry call of the run."""
    return parse_seconds("timeout-seconds", text, DEADLINE, 1, MAX_DEADLINE)


def _default_branch(env: Mapping[str, str]) -> str:
    """The repository's default branch from the push event (no API call), when base is not given."""
    repository = read_event(env.get("GITHUB_EVENT_PATH")).get("repository")
    branch = repository.get("default_branch") if isinstance(repository, dict) else None
    if not isinstance(branch, str) or not branch:
        raise InputError("base is empty and the event names no default branch; set base (e.g. main)")
    return branch


@dataclass
class Result:
    changes: list[ImageChange]
    facts: dict[tuple[int, str], Facts]
    title: str
    body: str
    outcome: Outcome | None
    verdicts: dict[int, Verdict] = field(default_factory=dict)  # the gate's, per change, when the gate is on

    @property
    def refused(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts.values() if not verdict.ok]


class PullRequests(Protocol):
    """Where `run` reads the base branch and opens the pull request: GitHub (`github.GitHub`), or the demo's local
    stand-in for it over a bare repository (`demo.gate`)."""

    deadline: Deadline

    def base_files(self, base: str, paths: list[str], local: dict[str, bytes]) -> dict[str, bytes]: ...

    def open_or_update(self, head: str, base: str, title: str, body: str, labels: list[str]) -> Outcome: ...


def run(inputs: Inputs, github: PullRequests) -> Result:
    """Compare the marked images of the checkout (the head) with the base branch, then open or update the PR."""
    folder = (inputs.workspace / inputs.path).resolve()
    prefix = folder.relative_to(inputs.workspace).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    keys = policy_keys(folder)
    head = marked_values(folder, keys)
    local = {m.path: (folder / m.path).read_bytes() for m in head}
    base_bytes = github.base_files(inputs.base, [prefix + p for p in local], {prefix + p: b for p, b in local.items()})
    with tempfile.TemporaryDirectory(prefix="pr-base-") as scratch:
        for path, data in base_bytes.items():
            target = Path(scratch) / path.removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        base = marked_values(Path(scratch), keys)
    changes = image_changes(head, base, lambda p: local[p].decode("utf-8", "replace"), prefix)
    if not changes:
        return Result([], {}, "", "", None)
    credentials = {inputs.registry: RegistryAuth(inputs.username, inputs.password)} if inputs.username else {}
    facts = {}
    for index, change in enumerate(changes):
        for side, ref in (("old", change.old), ("new", change.new)):  # within the run's one deadline
            facts[(index, side)] = lookup(ref, credentials, min(LOOKUP_DEADLINE, github.deadline.remaining()))
    verdicts = gate(changes, inputs, credentials, github) if inputs.signer else {}
    title, body = render.title(changes), render.body(changes, facts, inputs.branch, inputs.base, verdicts)
    outcome = github.open_or_update(inputs.branch, inputs.base, title, body, inputs.labels)
    return Result(changes, facts, title, body, outcome, verdicts)


def gate(
    changes: list[ImageChange], inputs: Inputs, credentials: dict[str, RegistryAuth], github: PullRequests
) -> dict[int, Verdict]:
    """Each changed image's verdict: a signature by verify-key (or the keyless identity) for the digest it will run,
    its tag and repository.
    A registry that cannot answer is a refusal too: the check fails closed."""
    assert inputs.signer is not None

    def opened(image: ImageName) -> RegistrySession:
        auth = credentials.get(image.registry)  # an account only ever goes to the registry it is for
        return RegistrySession(image, auth, deadline=min(LOOKUP_DEADLINE, github.deadline.remaining()))

    verdicts = {}
    for index, change in enumerate(changes):
        reference = f"{change.new.name}:{change.new.tag}"
        try:
            verdicts[index] = verify(reference, inputs.signer, opened, change.new.digest)
        except (InputError, PublishError) as error:
            verdicts[index] = Verdict(False, f"{reference}: not verified ({error})")
    return verdicts


def report(result: Result, inputs: Inputs, runner: Runner) -> None:
    """Outputs, the job summary and one log line per image."""
    outcome = result.outcome
    url = one_line(outcome.url) if outcome else ""  # GitHub's answer: it must not start a line of its own
    images = [
        {
            "image": c.name,
            "policy": c.policy,
            "old": c.old.tag,
            "new": c.new.tag,
            "digest": result.facts[(i, "new")].digest,
            "compare": render.compare_url(result.facts[(i, "old")], result.facts[(i, "new")]),
        }
        for i, c in enumerate(result.changes)
    ]
    values = {
        "operation": outcome.operation if outcome else "none",
        "number": str(outcome.number) if outcome else "",
        "url": url,
    }
    values["json"] = json.dumps({**values, "title": result.title, "images": images}, sort_keys=True)
    for name, value in values.items():
        runner.output(name, value)
    if outcome is None:
        where = f"between {inputs.branch!r} and {inputs.base!r} under {inputs.path}"
        print(f"no marked image differs {where}: no pull request")
        return
    for i, change in enumerate(result.changes):
        problem = result.facts[(i, "new")].problem or result.facts[(i, "old")].problem
        if problem:
            runner.annotate("warning", problem, title=f"Registry: {change.name}")
    for verdict in result.refused:
        runner.annotate("error", one_line(verdict.line), title="Not signed as required")
    print(one_line(f"pull request #{outcome.number} {outcome.operation}: {result.title} ({url})"))
    runner.summary(f"### Pull request #{outcome.number} {outcome.operation}\n\n{result.body}")


def main(environ: Mapping[str, str] | None = None) -> int:
    """The whole step; returns the exit code."""
    env = os.environ if environ is None else environ
    redactor = Redactor()
    redactor.add_inputs(PULL_REQUEST_INPUTS, raw_inputs(env))
    runner = Runner(redactor, env)
    with runner.log():
        return _step(env, runner)


def _step(env: Mapping[str, str], runner: Runner) -> int:
    """Inputs, the run and its report: each failure is one error annotation on one line, never a traceback."""
    try:
        inputs = read_inputs(env)
    except InputError as error:
        runner.annotate("error", _one_line(error), title="Invalid input")
        return 2
    github = GitHub(inputs.api_url, inputs.token, inputs.repository, deadline=inputs.deadline)
    try:
        result = run(inputs, github)
        report(result, inputs, runner)
        if result.refused:  # the pull request says why; the failed check keeps it from merging
            return 1
    except Exception as error:  # noqa: BLE001 - the step's one error line, never a traceback
        code = exit_code(error)
        if code is None:
            runner.annotate("error", _one_line(f"{type(error).__name__}: {error}"), title="Unexpected failure")
        else:
            runner.annotate("error", _one_line(error), title="Invalid input" if code == 2 else "Pull request failed")
        return code or 1
    finally:
        github.close()
    return 0


def _one_line(error: object) -> str:
    return " ".join(str(error).split())


if __name__ == "__main__":
    sys.exit(main())
