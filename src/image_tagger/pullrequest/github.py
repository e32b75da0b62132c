"""The GitHub edge, through PyGithub: the base branch's files, and the one pull request per automation branch."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.PullRequest import PullRequest
from github.Repository import Repository

from image_tagger.errors import PublishError

PERMISSIONS = "permissions: contents: read, pull-requests: write"


@dataclass(frozen=True)
class Outcome:
    operation: str  # created | updated | unchanged
    number: int
    url: str


def blob_sha(data: bytes) -> str:
    """git's object id of a file's bytes: a file whose id the base tree lists is unchanged there."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's object id, not security


class GitHub:
    """One repository through the REST API at `api_url` (GITHUB_API_URL: api.github.com or a GHES host)."""

    def __init__(self, api_url: str, token: str, repository: str, *, timeout: int = 30, retries: int = 3) -> None:
        self.api_url = api_url
        self.repository = repository
        self.client = Github(
            auth=Auth.Token(token), base_url=api_url, timeout=timeout, retry=GithubRetry(total=retries)
        )
        self.repo: Repository = self.client.get_repo(repository, lazy=True)

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
