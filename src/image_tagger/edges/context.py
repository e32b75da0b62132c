"""Git context: what was pushed, read from GitHub's environment and event file, or a local checkout.

This is the only module that knows where the facts come from; naming only sees `GitContext`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from image_tagger.edges.gitobjects import read_commit
from image_tagger.model.errors import InputError
from image_tagger.model.git import GitContext
from image_tagger.rules import jsonlimits

# A local checkout's patterns, compiled on first use: a workflow run never needs them (issue 17).
_SCP_REMOTE = r"(?:[^@/]+@)?([^:/]+):(?!//)(.+)"  # git@github.com:org/repo.git
_VERSION_TAG = r"(?:^|/)v?[0-9]+\.[0-9]+\.[0-9]+"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_EVENT_BYTES = 25 << 20  # GitHub caps webhook payloads at 25 MB
ACCEPTED_REF = "a git ref such as refs/tags/v1.2.3 or refs/heads/main"
ACCEPTED_SHA = "the commit's hex digits"


MAX_UNIX = 9_999_999_999  # ten digits: the year 2286, and a tag that always fits


def _unix(value: Any, field: str) -> int | None:
    """Event payloads carry times as Unix seconds (push) or ISO 8601 strings (elsewhere).

    A value that is present but not a sane time (NaN, 1e400, negative, past ten digits) is refused
    rather than turned into a strange tag.
    """
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int | float):
        seconds = value
    elif isinstance(value, str):
        try:
            seconds = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            seconds = None
    else:
        seconds = None
    if seconds is None or not math.isfinite(seconds) or not 0 <= seconds <= MAX_UNIX:
        raise InputError(
            f"event field {field} {str(value)[:40]!r} is not a time; accepted: Unix seconds from 0 to {MAX_UNIX} "
            "or an ISO 8601 date"
        )
    return int(seconds)


def read_event(path: str | None) -> dict[str, Any]:
    """The webhook payload GitHub writes to GITHUB_EVENT_PATH; empty when there is none.

    Read through the bounded JSON loader: a file that is not a JSON object, too large or nested too
    deep is bad input (exit 2) naming the file, never a traceback.
    """
    if not path or not Path(path).exists():
        return {}
    try:
        data = jsonlimits.load_file(Path(path), MAX_EVENT_BYTES)
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise InputError(f"GITHUB_EVENT_PATH {path}: not a readable JSON event ({reason})") from None
    if not isinstance(data, dict):
        raise InputError(f"GITHUB_EVENT_PATH {path}: not a JSON object; accepted: the webhook event GitHub writes")
    return data


def _plain(value: str, name: str, accepted: str) -> str:
    """A value that becomes part of a ref, sha or tag: refused when it holds a control character (NUL, newline)."""
    if _CONTROL.search(value):
        raise InputError(f"{name} {value[:80]!r} holds a control character; accepted: {accepted}")
    return value


def _object(parent: Mapping[str, Any], field: str) -> dict[str, Any]:
    """The object at dotted `field` (its last part a key of `parent`); absent or null is empty, else an object."""
    value = parent.get(field.rsplit(".", 1)[-1])
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"event field {field} is not a JSON object; accepted: the webhook event GitHub writes")
    return value


PUSHED_AT = "repository.pushed_at, the repository's last push"
UPDATED_AT = "pull_request.updated_at, the pull request's last update"
HEAD_COMMIT = "the event's head_commit.timestamp"
IN_CHECKOUT = "the commit in the checkout"
TEST_MERGE = "GitHub's test merge commit in the checkout (made when the pull request was last updated)"


def event_time(name: str, repo: Mapping[str, Any], pull: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """The time a re-run of the same event sees again, so the tag stays the same, and the field it came from.

    push and workflow_dispatch: `repository.pushed_at`; pull requests: `pull_request.updated_at`.
    """
    if name in ("push", "workflow_dispatch"):
        return _unix(repo.get("pushed_at"), "repository.pushed_at"), PUSHED_AT
    if name in ("pull_request", "pull_request_target"):
        return _unix(pull.get("updated_at"), "pull_request.updated_at"), UPDATED_AT
    return None, None


def repository_private(event: Mapping[str, Any]) -> bool | None:
    """Whether the repository is private, as the event says (`repository.private`); None when it does not."""
    repository = event.get("repository")
    private = repository.get("private") if isinstance(repository, dict) else None
    return private if isinstance(private, bool) else None


def from_github(env: Mapping[str, str], event: Mapping[str, Any]) -> GitContext:
    """Context of a workflow run; a pull request names its head commit, not the merge commit."""
    name = env.get("GITHUB_EVENT_NAME", "")
    ref = _plain(env.get("GITHUB_REF", ""), "GITHUB_REF", ACCEPTED_REF)
    sha = _plain(env.get("GITHUB_SHA", ""), "GITHUB_SHA", ACCEPTED_SHA)
    try:
        pull = _object(event, "pull_request")
        pr_number = None
        if pull:
            head_sha = _object(pull, "pull_request.head").get("sha")
            if head_sha is not None and not isinstance(head_sha, str):
                raise InputError(f"event field pull_request.head.sha is not a string; accepted: {ACCEPTED_SHA}")
            sha = _plain(head_sha, "event field pull_request.head.sha", ACCEPTED_SHA) if head_sha else sha
            pr_number = pull.get("number") if isinstance(pull.get("number"), int) else None
        push_time, push_time_from = event_time(name, _object(event, "repository"), pull)
        commit_time = _unix(_object(event, "head_commit").get("timestamp"), "head_commit.timestamp")
    except InputError as err:
        raise InputError(f"GITHUB_EVENT_PATH {env.get('GITHUB_EVENT_PATH', '')}: {err}") from None
    server, slug = env.get("GITHUB_SERVER_URL", "https://github.com"), env.get("GITHUB_REPOSITORY", "")
    return GitContext(
        event=name,
        ref=ref,
        sha=sha,
        pr_number=pr_number,
        push_time=push_time,
        commit_time=commit_time,
        source_url=f"{server}/{slug}" if slug else None,
        push_time_from=push_time_from if push_time is not None else None,
        private=repository_private(event),
        commit_time_from=HEAD_COMMIT if commit_time is not None else None,
    )


def source_url(remote: str | None) -> str | None:
    """A browsable https URL for `org.opencontainers.image.source`, never with credentials in it."""
    from urllib.parse import urlsplit  # a local checkout's remote: a workflow run never needs it (issue 17)

    if not remote:
        return None
    if m := re.fullmatch(_SCP_REMOTE, remote):
        host, path = m.group(1), m.group(2)
    else:
        parts = urlsplit(remote)
        if not parts.hostname:
            return None
        host = parts.hostname + (f":{parts.port}" if parts.port and parts.scheme in ("http", "https") else "")
        path = parts.path
    return f"https://{host}/{path.strip('/').removesuffix('.git')}"


def _release_tag(tags: str | None) -> str | None:
    """A tag on HEAD that reads like a version (`v1.2.3`, `app/v1.2.3`); other tags do not make releases."""
    return next((t for t in sorted((tags or "").splitlines(), reverse=True) if re.search(_VERSION_TAG, t)), None)


def from_local_git(path: Path) -> GitContext:
    """Context of a local checkout: a version tag on HEAD makes a release, else the current branch."""
    from image_tagger.edges.gitcmd import queries  # git itself: a workflow run reads the event instead

    head, tags, branch, remote = queries(
        path,
        ("-c", "log.showSignature=false", "log", "-1", "--format=%H %ct", "HEAD"),  # the commit and its time
        ("tag", "--points-at", "HEAD"),
        ("symbolic-ref", "-q", "HEAD"),
        ("config", "--get", "remote.origin.url"),
    )
    sha, _, committed = (head or "").partition(" ")
    if not sha:
        raise InputError(f"{path} is not a git checkout with a commit; give --ref and --sha")
    tag = _release_tag(tags)
    ref = f"refs/tags/{tag}" if tag else branch
    if ref is None:
        raise InputError(f"{path} has a detached HEAD and no version tag on it; give --ref")
    time = int(committed) if committed.isdigit() else None
    return GitContext(
        event="push",
        ref=ref,
        sha=sha,
        source_url=source_url(remote),
        commit_time=time,
        commit_time_from=IN_CHECKOUT if time is not None else None,
    )


def commit_time_of(path: Path, sha: str) -> int | None:
    """The commit time (`%ct`) of `sha` in the checkout at `path`, read from its objects; None when absent."""
    facts = read_commit(path, sha)
    return facts.time if facts else None


def with_commit_time(ctx: GitContext, checkout: Path, run_sha: str) -> GitContext:
    """The commit's own time from the checkout's objects first: the same for every event that builds the commit
    (a push, a pull request, a manual run, a rebuild), so one commit gives one image config.

    Else the event's head_commit; else, for a pull request checked out as GitHub's test merge at depth 1 (the head
    commit itself not fetched), the merge commit's time, when its parents name the head commit.
    """
    if facts := read_commit(checkout, ctx.sha):
        return replace(ctx, commit_time=facts.time, commit_time_from=IN_CHECKOUT)
    if ctx.commit_time is not None:
        return ctx
    merge = read_commit(checkout, run_sha) if run_sha and run_sha != ctx.sha else None
    if merge and any(parent.startswith(ctx.sha) for parent in merge.parents[1:]):
        return replace(ctx, commit_time=merge.time, commit_time_from=TEST_MERGE)
    return ctx


def resolve(
    overrides: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    checkout: Path | None = None,
) -> GitContext:
    """Flags first, then GitHub's environment, then the local checkout fill in what is missing.

    The workflow's event only describes a ref the flags leave alone: `--ref` naming another ref
    (a tool run inside some unrelated workflow) must not inherit that run's event, PR or push time.
    """
    env = os.environ if env is None else env
    given = {k: v for k, v in overrides.items() if v is not None}
    for key, accepted in (("ref", ACCEPTED_REF), ("sha", ACCEPTED_SHA)):
        if key in given:
            _plain(given[key], f"--{key}", accepted)
    run_ref, run_sha = env.get("GITHUB_REF", ""), ""
    if (run_ref or env.get("GITHUB_SHA")) and given.get("ref", run_ref) == run_ref:
        base = from_github(env, read_event(env.get("GITHUB_EVENT_PATH")))
        run_sha = env.get("GITHUB_SHA", "")  # the commit the workflow checked out: a pull request's test merge
    elif given.get("ref") and given.get("sha"):
        event = "pull_request" if given["ref"].startswith("refs/pull/") else "push"
        base = GitContext(event=event, ref="", sha="")
    else:
        checkout = checkout or Path.cwd()
        base = from_local_git(checkout)
    ctx = replace(base, **given)
    # git told a local checkout's commit time with its sha; otherwise the objects are read (dulwich: some 16 ms)
    if ctx.sha and checkout is not None and not (ctx.commit_time_from == IN_CHECKOUT and ctx.sha == base.sha):
        ctx = with_commit_time(ctx, checkout, run_sha)
    if not ctx.ref:
        raise InputError("ref is missing; accepted: --ref refs/tags/v1.2.3 | refs/heads/main (or GITHUB_REF)")
    if not ctx.sha:
        raise InputError("sha is missing; accepted: --sha with the commit's hex digits (or GITHUB_SHA)")
    return ctx
