"""JSON from outside through one bounded loader: registry and GitHub API answers nested thousands deep (the
decoder's RecursionError, a traceback before) or just past the cap are one line naming the server; a Docker
config or an event file like that is bad input (exit 2) naming the file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.cli import assert_input_error, explain, run_cli

from image_tagger.edges.registry.session import RegistrySession, list_tags
from image_tagger.model.errors import PublishError
from image_tagger.pullrequest import action as pr_action
from image_tagger.pullrequest.changes import Ref
from image_tagger.pullrequest.facts import lookup
from image_tagger.pullrequest.github import GitHub
from image_tagger.rules import jsonlimits

DEEP = b"[" * 100_000 + b"]" * 100_000  # far past the interpreter's recursion limit
JUST_PAST = b"[" * (jsonlimits.MAX_DEPTH + 1) + b"]" * (jsonlimits.MAX_DEPTH + 1)  # decodes, yet over the cap


@contextmanager
def answering(routes: Mapping[str, tuple[int, dict[str, str], bytes]]) -> Iterator[str]:
    """A loopback HTTP server giving each GET whose path starts with a route its fixed answer; yields host:port."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Keep pytest output clean."""

        def do_GET(self) -> None:
            status, headers, body = next(
                (answer for prefix, answer in routes.items() if self.path.startswith(prefix)), (404, {}, b"")
            )
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value.replace("{origin}", f"http://{host}"))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host = f"127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()


def overlay(path: Path, image: str) -> Path:
    """An ImageRepository of `image` and one ImagePolicy reading it."""
    path.write_text(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
        f"metadata: {{name: app, namespace: flux-system}}\nspec: {{image: {image}}}\n---\n"
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: app, namespace: flux-system}\n"
        "spec: {imageRepositoryRef: {name: app}, policy: {semver: {range: 1.x}}}\n"
    )
    return path


def one_line(error: pytest.ExceptionInfo[BaseException], *parts: str) -> None:
    text = str(error.value)
    assert "\n" not in text and all(part in text for part in parts), text


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        (DEEP, "nested deeper than 100 levels"),
        (JUST_PAST, "nested deeper than 100 levels"),
        (b'{"a": ' * 101 + b"1" + b"}" * 101, "nested deeper than 100 levels"),
        (b'"' + b"x" * 2000 + b'"', "2002 bytes, over the 1000-byte limit"),
        (b"<html>", "Expecting value"),
    ],
)
def test_the_loader_refuses_deep_large_or_broken_json(text: bytes, refused: str) -> None:
    with pytest.raises(jsonlimits.JSONError, match=refused) as error:
        jsonlimits.loads(text, max_bytes=1000 if b"x" * 2000 in text else len(text))
    assert "\n" not in str(error.value)
    deepest = b"[" * jsonlimits.MAX_DEPTH + b"]" * jsonlimits.MAX_DEPTH
    assert jsonlimits.loads(deepest, len(deepest)) is not None  # the cap itself is fine


@pytest.mark.parametrize("body", [DEEP, JUST_PAST], ids=["deep", "just-past"])
def test_preview_of_a_deeply_nested_tag_list_is_one_line_naming_the_registry(body: bytes, tmp_path: Path) -> None:
    """Before: a RecursionError traceback from json (exit 1, dozens of lines)."""
    tags = (200, {"Content-Type": "application/json"}, b'{"tags": ' + body + b"}")
    with answering({"/v2/acme/app/tags/list": tags}) as host:
        objects = overlay(tmp_path / "objects.yaml", f"{host}/acme/app")
        done = run_cli("preview", str(objects), env={"DOCKER_CONFIG": str(tmp_path)})
    assert done.returncode == 1, explain(done)
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, explain(done)
    assert f"registry {host}" in done.stderr and "nested deeper than 100 levels" in done.stderr, explain(done)


def test_a_deeply_nested_manifest_config_blob_or_token_answer_is_a_publish_error() -> None:
    json_type = {"Content-Type": "application/json"}
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "0" * 64}}).encode()
    with answering({"/v2/a/manifests/deep": (200, json_type, DEEP), "/v2/b/manifests/": (200, {}, manifest)}) as host:
        with RegistrySession(f"{host}/a") as session, pytest.raises(PublishError) as error:
            session.manifest("deep")  # no manifest media type: the body says which it is
        one_line(error, f"registry {host}", "nested deeper than 100 levels")
    # A manifest read for its labels by the pull-request action: its problem, never an exception.
    blob = {"/v2/acme/app/manifests/": (200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, DEEP)}
    with answering(blob) as host:
        facts = lookup(Ref(f"{host}/acme/app", "1.0.0", ""), {})
    assert f"registry {host}" in facts.problem and "nested deeper than 100 levels" in facts.problem, facts
    challenge = {"WWW-Authenticate": 'Bearer realm="{origin}/token",service="x"'}
    with answering({"/v2/": (401, challenge, b""), "/token": (200, json_type, DEEP)}) as host:
        with pytest.raises(PublishError) as error:
            list_tags(f"{host}/acme/app")
        one_line(error, f"registry {host}", "nested deeper than 100 levels")
    with answering({"/v2/": (403, json_type, DEEP)}) as host:  # an error body is read for its messages only
        with pytest.raises(PublishError) as error:
            list_tags(f"{host}/acme/app")
        one_line(error, f"registry {host}", "HTTP 403")


def test_a_deeply_nested_github_api_answer_is_a_publish_error_naming_the_api() -> None:
    """PyGithub decodes answers itself with json.loads: its RecursionError becomes one line."""
    with answering({"/repos/acme/config/git/trees/": (200, {"Content-Type": "application/json"}, DEEP)}) as host:
        github = GitHub(f"http://{host}", "token", "acme/config", retries=0)
        try:
            with pytest.raises(PublishError) as error:
                github.base_files("main", ["apps/app.yaml"], {"apps/app.yaml": b"x"})
        finally:
            github.close()
    one_line(error, f"http://{host}", "nested too deep", "reading branch 'main'")


def test_a_deeply_nested_docker_config_is_exit_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b'{"auths": ' + DEEP + b"}")
    objects = overlay(tmp_path / "objects.yaml", "127.0.0.1:9/acme/app")
    done = run_cli("preview", str(objects), env={"DOCKER_CONFIG": str(tmp_path)})
    assert_input_error(done, f"docker config {tmp_path / 'config.json'}", "nested deeper than 100 levels")


def test_the_pull_request_action_refuses_a_deeply_nested_event_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The event file names the default branch when `base` is not given. Before: a RecursionError traceback."""
    event = tmp_path / "event.json"
    event.write_bytes(b'{"repository": ' + DEEP + b"}")
    (tmp_path / "apps").mkdir()
    env = {
        "INPUT_GITHUB-TOKEN": "token",
        "INPUT_PATH": "apps",
        "GITHUB_REPOSITORY": "acme/config",
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_REF": "refs/heads/flux-image-updates",
        "GITHUB_EVENT_PATH": str(event),
    }
    assert pr_action.main(env) == 2
    [error] = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("::add-mask::")]
    assert error.startswith("::error title=Invalid input::"), error
    assert str(event) in error and "nested deeper than 100 levels" in error, error
