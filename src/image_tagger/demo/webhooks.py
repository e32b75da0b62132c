"""GitHub's push webhooks for the git server's bare repositories (demo/githttp.py stands in for GitHub).

Flux's notification-controller has a Receiver of type `github` (flux/receiver-github) that fetches the config
repository when GitHub calls it, so a push is applied in seconds instead of at the GitRepository's next poll.
`add_webhook` registers a URL and a secret for one bare repository, as a repository webhook on GitHub does, and
installs a `post-receive` hook. git runs it after every push and `git http-backend` answers the pusher only
once it has finished: when `git push` returns, every webhook was told (or failed).

Each pushed ref is one delivery per webhook, what GitHub sends and notification-controller v1.9 checks
(`internal/server/receiver_handlers.go`, go-github's `ValidatePayload`): a POST with `Content-Type:
application/json`, `X-GitHub-Event: push`, `X-GitHub-Delivery: <uuid>` and `X-Hub-Signature-256: sha256=<hex
HMAC-SHA256 of the exact body keyed with the secret>`. Deliveries run side by side and all end by
DEADLINE_SECONDS after the hook starts (connect, send and the status line; the answer's body is never read),
so an unreachable or silent webhook delays a push by that much at most and never fails it: the refs are
already updated when post-receive runs. The secrets stay in WEBHOOKS_FILE (mode 0600) inside the bare
repository, which git http-backend never serves; the hook reads them there, so they are on no command line and
in no environment. The hook's lines (shown to the pusher as `remote: ...`) name a webhook by its origin only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from image_tagger.edges.httpbounds import Deadline, bounded_session
from image_tagger.edges.notify import origin, signature

WEBHOOKS_FILE = "webhooks.json"
DEADLINE_SECONDS = 4.0
ZERO = "0" * 40
_HOOK = """#!/bin/sh
# GitHub's push webhooks ({module}); the URLs and secrets are in ../{file}.
exec {python} -I -m {module}
"""


@dataclass(frozen=True)
class Webhook:
    """One registered webhook: where to POST, and the key of the signature (never shown)."""

    url: str
    secret: str = field(repr=False)


def _hook_text() -> str:
    """`python -I`: the hook runs in the bare repository, whose files must not shadow our modules."""
    return _HOOK.format(module=__name__, file=WEBHOOKS_FILE, python=shlex.quote(sys.executable))


def webhooks(bare_repo: Path) -> list[Webhook]:
    """The webhooks registered for `bare_repo`, in the order they were added."""
    try:
        data = json.loads((bare_repo / WEBHOOKS_FILE).read_text())
    except FileNotFoundError:
        return []
    return [Webhook(entry["url"], entry["secret"]) for entry in data]


def add_webhook(bare_repo: Path, url: str, secret: str) -> None:
    """Deliver GitHub's `push` event to `url`, signed with `secret`, after every push to `bare_repo`.

    The file of secrets is written 0600 through a temporary file beside it, so a push that runs meanwhile
    reads the old list or the new one, never half of it. ValueError for a URL that is not http(s) or an empty
    secret (Flux's github Receiver refuses unsigned deliveries)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the webhook URL must be http(s)://<host>[:port]/<path>")
    if not secret:
        raise ValueError("the webhook secret is empty; Flux's github Receiver needs the token of its secret")
    hook = bare_repo / "hooks" / "post-receive"
    if hook.exists() and __name__ not in hook.read_text(errors="replace"):
        raise ValueError(f"{hook} exists and is not ours; not replacing it")
    entries = [{"url": w.url, "secret": w.secret} for w in webhooks(bare_repo)] + [{"url": url, "secret": secret}]
    target = bare_repo / WEBHOOKS_FILE
    temporary = target.with_name(f".{WEBHOOKS_FILE}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(entries, out)
    temporary.replace(target)
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(_hook_text())
    hook.chmod(0o755)


def repository(git_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """GitHub's `repository` fields for the pushed repository: its path under the server's root (git
    http-backend passes GIT_PROJECT_ROOT, githttp the request's Host), else its folder as a file:// URL."""
    root, host = environ.get("GIT_PROJECT_ROOT"), environ.get("HTTP_HOST")
    if root and host and git_dir.is_relative_to(Path(root).resolve()):
        path = git_dir.relative_to(Path(root).resolve()).as_posix()
        clone_url = f"http://{host}/{path}"
    else:
        path, clone_url = git_dir.name, git_dir.as_uri()
    full_name = path.removesuffix(".git")
    return {"name": full_name.rsplit("/", 1)[-1], "full_name": full_name, "clone_url": clone_url}


def push_event(ref: str, before: str, after: str, repo: dict[str, str], pusher: dict[str, str]) -> dict[str, object]:
    """The body of GitHub's `push` event for one ref (the fields a receiver reads; no commit list)."""
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "created": before == ZERO,
        "deleted": after == ZERO,
        "repository": repo,
        "pusher": pusher,
    }


def deliver(webhook: Webhook, event: Mapping[str, object], deadline: Deadline) -> str:
    """POST one signed `push` event; the line that says how it went. Never raises for the network's sake."""
    body = json.dumps(dict(event), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/image-tagger-demo",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature(webhook.secret, body),
    }
    where = f"webhook {origin(webhook.url)}: push {event['ref']}"
    http = bounded_session(deadline.remaining, max_body=0)
    try:
        response = http.post(webhook.url, data=body, headers=headers, allow_redirects=False, stream=True)
    except requests.Timeout:
        return f"{where} not delivered: no answer within {DEADLINE_SECONDS:g} s"
    except requests.RequestException as err:  # its text names the URL, whose path may derive from the secret
        return f"{where} not delivered ({type(err).__name__})"
    finally:
        http.close()
    response.close()
    return f"{where} {'delivered' if response.ok else 'refused'} ({response.status_code})"


def on_push(git_dir: Path, updates: list[tuple[str, str, str]], environ: Mapping[str, str]) -> list[str]:
    """Every (before, after, ref) pushed, to every webhook of `git_dir`, side by side within one deadline."""
    hooks = webhooks(git_dir)
    if not hooks or not updates:
        return []
    deadline = Deadline(DEADLINE_SECONDS)
    repo = repository(git_dir, environ)
    pusher = {"name": environ.get("GIT_COMMITTER_NAME", ""), "email": environ.get("GIT_COMMITTER_EMAIL", "")}
    jobs = [(hook, push_event(ref, before, after, repo, pusher)) for before, after, ref in updates for hook in hooks]
    with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
        return list(pool.map(lambda job: deliver(*job, deadline), jobs))


def main() -> int:
    """git's post-receive: `<old> <new> <ref>` per line on stdin. Always 0: the push has already happened."""
    try:
        fields = [line.split() for line in sys.stdin.read().splitlines()]
        updates = [(before, after, ref) for before, after, ref in (f for f in fields if len(f) == 3)]
        lines = on_push(Path.cwd().resolve(), updates, os.environ)
    except Exception as err:  # noqa: BLE001 - a broken webhook file must not look like a failed push
        lines = [f"webhooks not delivered: {type(err).__name__}"]
    for line in lines:
        with contextlib.suppress(OSError):
            print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
