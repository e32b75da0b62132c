"""Production's pull-request gate, as the demo runs it after the automation pushed to a branch of its own.

The check is the pull-request action's own code (`pullrequest.action.run`, verify-key = the demo's public key),
run on a checkout of that branch. GitHub's part is played by `LocalPullRequests`, a stand-in over the bare
config repository: it reads the base branch with git and keeps the pull requests in the demo's memory; it has
no API and no web page. When the check passes the demo merges, as a person would once branch protection lets
them (a merge commit on the config branch, as GitHub's merge button makes); when it fails nothing is merged.
"""

from __future__ import annotations

import subprocess
from typing import Any

from image_tagger.demo import DemoError
from image_tagger.demo.world import Gated, PullRequest, World, fresh_config, say
from image_tagger.edges.childenv import GIT, child_env
from image_tagger.edges.gitcmd import GIT_ENV, git
from image_tagger.edges.httpbounds import Deadline
from image_tagger.model.errors import PublishError
from image_tagger.pullrequest.action import Inputs, run
from image_tagger.pullrequest.github import DEADLINE, Outcome

REVIEWER = ("a person with the merge button", "reviewer@example.invalid")
MERGE_TRIES = 3  # the other cluster's automation may push to the config branch between our fetch and our push


def gated_branch(automation: dict[str, Any]) -> str | None:
    """The branch the ImageUpdateAutomation pushes to when it is not the one it checks out (flux/pull-request)."""
    spec = automation["spec"]["git"]
    push = spec.get("push", {}).get("branch")
    return push if push and push != spec["checkout"]["ref"]["branch"] else None


class LocalPullRequests:
    """A stand-in for GitHub's pull requests of config.git: what `run` asks of GitHub, answered from the bare
    repository and the demo's list of pull requests."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.deadline = Deadline(DEADLINE)

    def base_files(self, base: str, paths: list[str], local: dict[str, bytes]) -> dict[str, bytes]:
        found = {}
        for path in paths:
            shown = subprocess.run(
                ["git", "-C", str(self.world.config_bare), "show", f"{base}:{path}"],
                env=child_env(*GIT, values=GIT_ENV),
                capture_output=True,
                check=False,
            )
            if shown.returncode == 0:
                found[path] = shown.stdout
        return found

    def open_or_update(self, head: str, base: str, title: str, body: str, labels: list[str]) -> Outcome:
        pulls = self.world.pull_requests
        pull = next((p for p in pulls if p.head == head and p.base == base and not p.merged), None)
        if pull is None:
            pull = PullRequest(len(pulls) + 1, head, base, title, body)
            pulls.append(pull)
            operation = "created"
        elif (pull.title, pull.body) == (title, body):
            operation = "unchanged"
        else:
            pull.title, pull.body, operation = title, body, "updated"
        return Outcome(operation, pull.number, f"{self.world.config_bare}#pull-{pull.number}")


def review(world: World, automation: dict[str, Any]) -> Gated:
    """The pull-request action's run on the automation's branch (its update path against the branch it checks out),
    then the merge when every changed image is signed by the demo's key."""
    spec = automation["spec"]
    branch, base = spec["git"]["push"]["branch"], spec["git"]["checkout"]["ref"]["branch"]
    path = spec["update"]["path"].removeprefix("./")
    workspace = world.root / "gate"
    if not workspace.exists():
        git(world.root, "clone", "--quiet", str(world.config_bare), str(workspace))
    git(workspace, "fetch", "--quiet", "origin")
    git(workspace, "checkout", "--quiet", "--detach", f"origin/{branch}")
    inputs = Inputs(
        token="",
        path=path,
        base=base,
        branch=branch,
        labels=[],
        registry=world.registry,
        username="",
        password="",
        repository="demo/config",
        api_url="",
        workspace=workspace,
        signer=world.public_key,
    )
    try:
        result = run(inputs, LocalPullRequests(world))
    except PublishError as error:
        raise DemoError(f"the pull-request gate on {branch}: {error}") from None
    if result.outcome is None:
        raise DemoError(f"the pull-request gate: no marked image differs between {branch} and {base} under {path}")
    number = result.outcome.number
    gate = f"  {'gate':<10}"
    say(f"{gate} pull request #{number} {result.outcome.operation} (stand-in for GitHub): {result.title}")
    say(f"{gate} (the pull-request action's own run, verify-key = the demo's cosign.pub)")
    for verdict in result.verdicts.values():
        say(f"{gate} check {'passed' if verdict.ok else 'FAILED'}: {verdict.line}")
    check = "; ".join(verdict.line for verdict in result.verdicts.values())
    if result.refused:
        say(f"{gate} not merged: #{number} stays open, saying 'Do not merge: not signed as required.'")
        return Gated(number, False, check)
    commit = merge(world, branch, base, number)
    world.pull_requests[number - 1].merged = True  # the next proposal opens a new pull request
    say(f"{gate} merged #{number} into {base} ({commit}), as a person does once the required check passes")
    return Gated(number, True, check)


def merge(world: World, branch: str, base: str, number: int) -> str:
    """A merge commit of `branch` on `base`, pushed to config.git; returns its short id."""
    work = fresh_config(world, world.root / "reviewer")
    for _ in range(MERGE_TRIES):
        git(work, "fetch", "--quiet", "origin", base, branch)
        git(work, "reset", "--quiet", "--hard", f"origin/{base}")
        message = f"Merge pull request #{number} from {branch}"
        git(
            work, "merge", "--quiet", "--no-ff", "-m", message, f"origin/{branch}", when=world.tick(), identity=REVIEWER
        )
        try:
            git(work, "push", "--quiet", "origin", f"HEAD:{base}")
        except PublishError:  # the config branch moved under us: merge again on top of it
            continue
        return git(work, "rev-parse", "--short", "HEAD")
    raise DemoError(f"merging #{number} into {base}: the push was refused {MERGE_TRIES} times")
