"""A local api.github.com for the REST calls the pull-request action makes, held to GitHub's own contract.

Every request and every response is validated with openapi-core against GitHub's published OpenAPI description
(`@octokit/openapi`, installed in tools/ by `npm ci --prefix tools`), so the test server cannot drift from what
GitHub documents: a request the description does not allow, or a response body our fake builds wrong, is a
`violation` the tests assert away. Response bodies start from the description's own examples.

Repositories are real bare git repositories: git trees and blobs come from them, so the "base branch" the action
reads is whatever the test pushed there.

Named deviations: the description's `servers` entry is replaced by this server's URL; 401 answers (GitHub sends
them for a bad token on any operation, the description lists 401 for few) are checked against `basic-error`;
the description's examples are completed where they lag its schemas (`simple-user.type`, `language`, …).
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

REPO = Path(__file__).resolve().parents[2]
DESCRIPTION = REPO / "tools" / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"
EXAMPLE_API = "https://api.github.com"
EXAMPLE_WEB = "https://github.com"


def load_description() -> dict[str, Any]:
    if not DESCRIPTION.is_file():
        raise RuntimeError(f"{DESCRIPTION} is missing: run `npm ci --prefix tools` (./dev test does)")
    return json.loads(DESCRIPTION.read_text())


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int


@dataclass
class GitHubAPI:
    """Serve with `with GitHubAPI(...) as api:`; `api.url` is the base URL for PyGithub / GITHUB_API_URL."""

    repositories: dict[str, Path]  # "owner/name" -> bare git repository
    token: str
    description: dict[str, Any] = field(default_factory=load_description)
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> GitHubAPI:
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        spec = copy.copy(self.description)
        spec["servers"] = [{"url": self.url}]
        self.openapi = OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))
        self.examples = json.loads(
            json.dumps(self.description["components"]["examples"]).replace(EXAMPLE_API, self.url)
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join()

    # --- the WSGI app: authenticate, route, validate both ways -----------------------------------------

    def wsgi(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        response = self.answer(request)
        self.check(request, response)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body
        self.calls.append(Call(request.method, request.path, dict(request.args), parsed, response.status_code))
        return response(environ, start_response)

    def check(self, request: Request, response: Response) -> None:
        where = f"{request.method} {request.full_path.rstrip('?')}"
        if response.status_code == 401:
            schema = self.description["components"]["schemas"]["basic-error"]
            try:
                jsonschema.validate(json.loads(response.get_data()), schema)
            except (ValueError, jsonschema.ValidationError) as error:
                self.violations.append(f"{where}: 401 body is no basic-error: {error}")
            return
        try:
            self.openapi.validate_request(WerkzeugOpenAPIRequest(request))
        except Exception as error:  # noqa: BLE001 - every failure is a violation to report
            self.violations.append(f"request {where}: {_explain(error)}")
            return
        try:
            self.openapi.validate_response(WerkzeugOpenAPIRequest(request), WerkzeugOpenAPIResponse(response))
        except Exception as error:  # noqa: BLE001
            self.violations.append(f"response {response.status_code} to {where}: {_explain(error)}")

    def answer(self, request: Request) -> Response:
        authorization = request.headers.get("Authorization", "")
        if authorization not in (f"token {self.token}", f"Bearer {self.token}"):
            return self.json(
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"},
            )
        parts = request.path.strip("/").split("/")
        if len(parts) < 4 or parts[0] != "repos" or f"{parts[1]}/{parts[2]}" not in self.repositories:
            return self.not_found()
        full_name, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        route = (request.method, rest[0], len(rest))
        if route == ("GET", "git", 3) and rest[1] == "trees":
            return self.tree(full_name, rest[2], request.args.get("recursive"))
        if route == ("GET", "git", 3) and rest[1] == "blobs":
            return self.blob(full_name, rest[2])
        if route == ("GET", "pulls", 1):
            return self.list_pulls(full_name, request.args)
        if route == ("POST", "pulls", 1):
            return self.create_pull(full_name, request.get_json())
        if route == ("PATCH", "pulls", 2):
            return self.update_pull(full_name, int(rest[1]), request.get_json())
        if route == ("POST", "issues", 3) and rest[2] == "labels":
            return self.add_labels(full_name, int(rest[1]), request.get_json())
        return self.not_found()

    # --- responses ----------------------------------------------------------------------------------

    def json(self, status: int, body: Any) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")

    def not_found(self) -> Response:
        return self.json(
            404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}
        )

    def tree(self, full_name: str, ref: str, recursive: str | None) -> Response:
        repo = self.repositories[full_name]
        try:
            sha = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{tree}}").strip()
        except subprocess.CalledProcessError:
            return self.not_found()
        listing = git(repo, "ls-tree", "-l", *(["-r", "-t"] if recursive else []), sha)
        entries = []
        for line in listing.splitlines():
            meta, path = line.split("\t", 1)
            mode, kind, object_sha, size = meta.split()
            entry = {"path": path, "mode": mode, "type": kind, "sha": object_sha}
            entry["url"] = f"{self.url}/repos/{full_name}/git/{kind}s/{object_sha}"
            if kind == "blob":
                entry["size"] = int(size)
            entries.append(entry)
        return self.json(
            200,
            {"sha": sha, "url": f"{self.url}/repos/{full_name}/git/trees/{sha}", "tree": entries, "truncated": False},
        )

    def blob(self, full_name: str, sha: str) -> Response:
        repo = self.repositories[full_name]
        done = subprocess.run(["git", "-C", str(repo), "cat-file", "blob", sha], capture_output=True)
        if done.returncode != 0:
            return self.not_found()
        return self.json(
            200,
            {
                "content": base64.encodebytes(done.stdout).decode(),
                "encoding": "base64",
                "url": f"{self.url}/repos/{full_name}/git/blobs/{sha}",
                "sha": sha,
                "size": len(done.stdout),
                "node_id": "B_" + sha[:16],
            },
        )

    def example(self, name: str) -> Any:
        return copy.deepcopy(self.examples[name]["value"])

    def pull_object(self, full_name: str, pull: dict[str, Any], simple: bool) -> dict[str, Any]:
        """A `pull-request` (or `pull-request-simple`) from the description's example, made to say `pull`."""
        body = self.example("pull-request-simple-items")[0] if simple else self.example("pull-request")
        number = pull["number"]
        owner = full_name.split("/")[0]
        api = f"{self.url}/repos/{full_name}"
        body |= {
            "id": 1000 + number,
            "number": number,
            "state": pull["state"],
            "title": pull["title"],
            "body": pull["body"],
            "labels": [self.label(full_name, name) for name in pull["labels"]],
            "url": f"{api}/pulls/{number}",
            "issue_url": f"{api}/issues/{number}",
            "html_url": f"{EXAMPLE_WEB}/{full_name}/pull/{number}",
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "milestone": None,
            "locked": False,
            "active_lock_reason": None,
            "closed_at": None,
            "merged_at": None,
        }
        body["head"] |= {"ref": pull["head"], "label": f"{owner}:{pull['head']}"}
        body["base"] |= {"ref": pull["base"], "label": f"{owner}:{pull['base']}"}
        return _complete(body)

    def label(self, full_name: str, name: str) -> dict[str, Any]:
        label = self.example("label-items")[0]
        return label | {
            "name": name,
            "url": f"{self.url}/repos/{full_name}/labels/{name}",
            "id": abs(hash(name)) % 10**9,
        }

    def open_pulls(self, full_name: str) -> list[dict[str, Any]]:
        return [p for p in self.pulls.get(full_name, []) if p["state"] == "open"]

    def list_pulls(self, full_name: str, args: Any) -> Response:
        found = [
            p
            for p in self.pulls.get(full_name, [])
            if p["state"] == args.get("state", "open")
            and (not args.get("head") or f"{full_name.split('/')[0]}:{p['head']}" == args["head"])
            and (not args.get("base") or p["base"] == args["base"])
        ]
        return self.json(200, [self.pull_object(full_name, p, simple=True) for p in found])

    def create_pull(self, full_name: str, data: dict[str, Any]) -> Response:
        repo = self.repositories[full_name]
        owner = full_name.split("/")[0]
        for side in ("head", "base"):
            if subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"refs/heads/{data[side]}"]
            ).returncode:
                return self.invalid(f"{side} {data[side]} does not exist", side)
        if any(p["head"] == data["head"] and p["base"] == data["base"] for p in self.open_pulls(full_name)):
            return self.invalid(f"A pull request already exists for {owner}:{data['head']}.", "")
        pulls = self.pulls.setdefault(full_name, [])
        pull = {
            "number": len(pulls) + 1,
            "state": "open",
            "labels": [],
            "title": data["title"],
            "body": data.get("body", ""),
        }
        pull |= {"head": data["head"], "base": data["base"]}
        pulls.append(pull)
        return self.json(201, self.pull_object(full_name, pull, simple=False))

    def invalid(self, message: str, field_name: str) -> Response:
        return self.json(
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": "PullRequest", "field": field_name, "code": "custom", "message": message}],
                "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
            },
        )

    def find(self, full_name: str, number: int) -> dict[str, Any] | None:
        return next((p for p in self.pulls.get(full_name, []) if p["number"] == number), None)

    def update_pull(self, full_name: str, number: int, data: dict[str, Any]) -> Response:
        pull = self.find(full_name, number)
        if pull is None:
            return self.not_found()
        pull |= {k: v for k, v in data.items() if k in ("title", "body", "state")}
        return self.json(200, self.pull_object(full_name, pull, simple=False))

    def add_labels(self, full_name: str, number: int, data: Any) -> Response:
        pull = self.find(full_name, number)
        if pull is None:
            return self.not_found()
        names = data.get("labels", []) if isinstance(data, dict) else data
        names = [n["name"] if isinstance(n, dict) else n for n in ([names] if isinstance(names, str) else names)]
        pull["labels"] += [n for n in names if n not in pull["labels"]]
        return self.json(200, [self.label(full_name, n) for n in pull["labels"]])


def _complete(body: dict[str, Any]) -> dict[str, Any]:
    """Fill what the description's examples lag behind its schemas: `type` of users, `language` of repositories."""
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "login" in node and "avatar_url" in node:
                node.setdefault("type", "User")
            if "full_name" in node and "owner" in node:
                node.setdefault("language", None)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return body


def _explain(error: Exception) -> str:
    """openapi-core's error with the schema errors underneath (the part that says which field)."""
    cause = error.__cause__
    details = [f"{e.json_path}: {e.message}" for e in getattr(cause, "schema_errors", [])][:5]
    return f"{type(error).__name__}: {str(error)[:200]}" + (f" ({'; '.join(details)})" if details else "")
