"""The GitHub edge, through PyGithub: the base branch's files, and the one pull request per automation branch.

Every call shares one deadline (`DEADLINE` seconds for the whole run, retries and their waits included) and
each answer is read up to `MAX_ANSWER` bytes: PyGithub's requests sessions get a `BoundedAdapter`.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.PullRequest import PullRequest
from github.Repository import Repository
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass, Requester

from image_tagger.edges.httpbounds import AnswerTooLarge, BoundedAdapter, Deadline, DeadlineExceeded
from image_tagger.model.errors import PublishError

PERMISSIONS = "permissions: contents: read, pull-requests: write"
DEADLINE = 300.0  # seconds for every GitHub call of one run, and the registry look-ups between them
TIMEOUT = 30  # seconds for one exchange with GitHub: connect, headers and body
MAX_ANSWER = 32 << 20  # bytes of one answer (a recursive tree of a large repository is a few MB)
MAX_ERROR_PEEK = 64 << 10  # bytes of a 403's body read to tell a rate limit from a refusal


@dataclass(frozen=True)
class Outcome:
    operation: str  # created | updated | unchanged
    number: int
    url: str


def blob_sha(data: bytes) -> str:
    """git's object id of a file's bytes: a file whose id the base tree lists is unchanged there."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's object id, not security


class _Retry(GithubRetry):
    """PyGithub's retry (5xx, rate limits), whose waits never run past the deadline and whose look into a 403's
    body is bounded."""

    def __init__(self, remaining: Callable[[], float] = lambda: math.inf, **kwargs: Any) -> None:
        self.remaining = remaining
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> _Retry:
        kw["remaining"] = self.remaining
        return super().new(**kw)

    def sleep(self, response: Any = None) -> None:
        asked = self.get_retry_after(response) if response is not None and self.respect_retry_after_header else None
        wait = self.get_backoff_time() if asked is None else asked
        if wait >= self.remaining():
            raise DeadlineExceeded(f"GitHub asked for a wait of {wait:g} s before retrying, past the deadline")
        super().sleep(response)

    @staticmethod
    def get_content(resp: Any, url: str) -> bytes:  # type: ignore[override]
        return resp.read(MAX_ERROR_PEEK, decode_content=True) or b""


def _bounded(base: type, remaining: Callable[[], float]) -> type:
    """PyGithub's connection class `base`, its requests session mounted with a BoundedAdapter (same retry)."""

    class Bounded(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            adapter = BoundedAdapter(
                remaining,
                MAX_ANSWER,
                max_retries=self.retry,
                pool_connections=self.pool_size,
                pool_maxsize=self.pool_size,
            )
            self.session.mount(f"{self.protocol}://", adapter)

    return Bounded


class GitHub:
    """One repository through the REST API at `api_url` (GITHUB_API_URL: api.github.com or a GHES host)."""

    def __init__(
        self, api_url: str, token: str, repository: str, *, deadline: float = DEADLINE, retries: int = 3
    ) -> None:
        self.api_url = api_url
        self.repository = repository
        self.deadline = Deadline(deadline)
        # PyGithub's own hook for its connection classes; a Requester reads them once, when it is made. The client
        # is lazy from the start, so that the repository shares its Requester (withLazy would make a new one).
        Requester.injectConnectionClasses(
            _bounded(HTTPRequestsConnectionClass, self.deadline.remaining),
            _bounded(HTTPSRequestsConnectionClass, self.deadline.remaining),
        )
        try:
            self.client = Github(
                auth=Auth.Token(token),
                base_url=api_url,
                timeout=TIMEOUT,
                retry=_Retry(self.deadline.remaining, total=retries),
                lazy=True,
            )
        finally:
            Requester.resetConnectionClasses()
        self.repo: Repository = self.client.get_repo(repository)

    def close(self) -> None:
        self.client.close()

    def fail(self, error: Exception, doing: str) -> PublishError:
        """One line for a failed call: what we were doing, what GitHub said, and what usually fixes it."""
        if isinstance(error, GithubException):
            data = error.data if isinstance(error.data, dict) else {}
            message = " ".join(str(data.get("message") or error.message or error.data or "").split())
            if error.status == 401:
                return PublishError(
                    f"GitHub refused the token while {doing} (HTTP 401: {message or 'Bad credentials'}); "
                    "give github-token the workflow's GITHUB_TOKEN (the default) or a token of this repository"
                )
            if error.status == 403:
                return PublishError(f"GitHub denied {doing} (HTTP 403: {message}); the job needs {PERMISSIONS}")
            return PublishError(f"GitHub answered HTTP {error.status} while {doing}: {message}")
        if isinstance(error, RecursionError):  # PyGithub parses answers with json.loads, which recurses per level
            return PublishError(f"the GitHub API at {self.api_url} answered JSON nested too deep while {doing}")
        if isinstance(error, DeadlineExceeded):
            return PublishError(
                f"GitHub API at {self.api_url} gave no whole answer while {doing} within the run's deadline "
                f"({self.deadline.seconds:g} s for all calls, {TIMEOUT} s per call): {error}"
            )
        if isinstance(error, AnswerTooLarge):
            return PublishError(f"GitHub API at {self.api_url} while {doing}: {error}")
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return PublishError(f"cannot reach the GitHub API at {self.api_url} while {doing}: {reason}")

    def base_files(self, base: str, paths: list[str], local: dict[str, bytes]) -> dict[str, bytes]:
        """The bytes of those of `paths` that exist on `base` and differ from `local` (one tree listing, one blob
        request per differing file). A path `base` lacks is left out; a path whose blob equals ours maps to ours."""
        doing = f"reading branch {base!r} of {self.repository}"
        try:
            tree = self.repo.get_git_tree(base, recursive=True)
            if tree.raw_data.get("truncated"):
                raise PublishError(f"the tree of {base!r} is too large for one API listing (truncated)")
            shas = {element.path: element.sha for element in tree.tree if element.type == "blob"}
            found: dict[str, bytes] = {}
            for path in paths:
                sha = shas.get(path)
                if sha is None:
                    continue
                if sha == blob_sha(local[path]):
                    found[path] = local[path]
                    continue
                blob = self.repo.get_git_blob(sha)
                found[path] = base64.b64decode(blob.content) if blob.encoding == "base64" else blob.content.encode()
        except GithubException as error:
            if error.status in (404, 409, 422):
                raise PublishError(f"no branch {base!r} in {self.repository} (HTTP {error.status}); set base") from None
            raise self.fail(error, doing) from None
        except (requests.RequestException, RecursionError) as error:
            raise self.fail(error, doing) from None
        return found

    def open_or_update(self, head: str, base: str, title: str, body: str, labels: list[str]) -> Outcome:
        """The open pull request from `head` into `base`, edited to `title`/`body`, else a new one; then `labels`."""
        owner = self.repository.split("/", 1)[0]
        doing = f"looking for the open pull request from {head!r}"
        try:
            pull = self._open_pull(owner, head, base)
            operation = "updated"
            if pull is None:
                doing = f"opening a pull request from {head!r} into {base!r}"
                try:
                    pull = self.repo.create_pull(base=base, head=head, title=title, body=body)
                    operation = "created"
                except GithubException as error:
                    # Another run opened it in between: GitHub refuses a second one for the same head and base.
                    if error.status != 422 or "already exists" not in str(error.data):
                        raise
                    pull = self._open_pull(owner, head, base)
                    if pull is None:
                        raise
            if operation == "updated":
                if pull.title == title and (pull.body or "") == body:
                    operation = "unchanged"
                else:
                    doing = f"updating pull request #{pull.number}"
                    pull.edit(title=title, body=body)
            have = {label.name for label in pull.labels} if operation != "created" else set()
            missing = [label for label in labels if label not in have]
            if missing:
                doing = f"labelling pull request #{pull.number}"
                # The documented body, {"labels": [...]}; PyGithub's add_to_labels sends a bare list, a form
                # GitHub's OpenAPI description no longer lists.
                self.client.requester.requestJsonAndCheck("POST", f"{pull.issue_url}/labels", input={"labels": missing})
        except GithubException as error:
            raise self.fail(error, doing) from None
        except (requests.RequestException, RecursionError) as error:
            raise self.fail(error, doing) from None
        return Outcome(operation, pull.number, pull.html_url)

    def _open_pull(self, owner: str, head: str, base: str) -> PullRequest | None:
        pulls = self.repo.get_pulls(state="open", head=f"{owner}:{head}", base=base)
        return next(iter(pulls), None)
