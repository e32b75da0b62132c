"""A git server over plain HTTP for the local cluster: `git http-backend` behind a small threaded server.

Flux's source- and image-automation-controller need a remote they can fetch from and push to over HTTP.
Python's CGI handler (deprecated) would do it, but it drops to `nobody` when run as root; this one runs
the backend as the caller, with every repository under one root and pushes allowed.

    python -m image_tagger.demo.githttp ROOT PORT

The demo runs one in a thread of its own (`serve`), for both of its clusters.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from image_tagger.edges.childenv import child_env

MAX_BODY = 256 * 1024 * 1024  # a push of the demo's config repository is a few KiB
BACKEND_SECONDS = 120


class GitHandler(BaseHTTPRequestHandler):
    """One request: its body (Content-Length or chunked) to `git http-backend`, the CGI answer back."""

    root: Path

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._backend(b"")

    def do_POST(self) -> None:  # noqa: N802
        try:
            body = self._body()
        except ValueError as err:
            self.send_error(400, str(err))
            return
        self._backend(body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline(100).split(b";")[0].strip() or b"0", 16)
                total += size
                if total > MAX_BODY:
                    raise ValueError("request body too large")
                if size == 0:
                    self.rfile.readline(100)
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(100)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length)

    def _backend(self, body: bytes) -> None:
        path, _, query = self.path.partition("?")
        values = {
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": "flux",
            "HTTP_HOST": self.headers.get("Host", ""),  # for the push webhooks' clone_url (demo/webhooks.py)
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        try:
            done = subprocess.run(
                ["git", "http-backend"],
                input=body,
                capture_output=True,
                env=child_env(values=values),
                timeout=BACKEND_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.send_error(504, "git http-backend timed out")
            return
        head, _, payload = done.stdout.partition(b"\r\n\r\n")  # http-backend ends its CGI headers with CRLF
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if done.returncode and done.stderr:
            self.log_message("git http-backend: %s", done.stderr.decode(errors="replace").strip()[-500:])


def _server(root: Path, port: int, *, access_log: bool = True) -> ThreadingHTTPServer:
    attributes: dict[str, object] = {"root": root.resolve()}
    if not access_log:  # in the demo's own process: its stderr is the demo's output
        attributes["log_request"] = lambda *_: None
    handler = type("Handler", (GitHandler,), attributes)
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve every repository under `root` on a free loopback port; yields `http://127.0.0.1:<port>`."""
    server = _server(root, 0, access_log=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str]) -> None:
    _server(Path(argv[0]), int(argv[1])).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
