"""A reverse proxy on 127.0.0.1 in front of a real registry, with faults injected by rule.

HTTP/1.1, threaded, streaming both ways (Content-Length and chunked request bodies, any response), the
Host header passed through unchanged so that the registry's `Location` URLs point back at the proxy:
a Docker daemon pushes through it like through the registry itself. Every request is recorded
(method, path, headers) for assertions.

Faults are rules (method regex, path regex, how many times), first match wins:
`status` (503, 429 + Retry-After, ...), `stall` (wait, then forward), `drop` (close without answer),
`link_elsewhere` (forward, add `Link: <http://127.0.0.2:PORT/...>; rel="next"`), `echo_authorization`
(an error whose body repeats the request's Authorization), `slow_body` (one byte per interval),
`endless_body`, `big_body` (a declared huge Content-Length), `endless_pages` (a tag list that always
has a next page). The `elsewhere` server on another loopback address records what reaches it.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Seen:
    """One request as it arrived: method, path with query, and its headers (names as sent)."""

    method: str
    path: str
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class Rule:
    kind: str
    path: str = ""
    method: str = ""
    times: int = 1  # -1: every time
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    size: int = 0
    after: int = 0  # let this many matching requests through first
    hits: int = 0
    passed: int = 0

    def take(self, method: str, path: str) -> bool:
        if self.times >= 0 and self.hits >= self.times:
            return False
        if self.method and not re.fullmatch(self.method, method):
            return False
        if not re.search(self.path, path):
            return False
        if self.passed < self.after:
            self.passed += 1
            return False
        self.hits += 1
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def get_request(self):
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle/delayed-ACK stalls
        return connection, address


def _serve(server: _Server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


class Elsewhere:
    """Another host (127.0.0.2): answers every GET with a one-tag page and records what it was sent."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.bodies: dict[str, bytes] = {}  # path -> what a redirect to here serves
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
                body = owner.bodies.get(urlsplit(self.path).path)
                if body is None:
                    body = json.dumps({"name": "elsewhere", "tags": ["from-elsewhere"]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET  # noqa: N815

        self.server = _Server(("127.0.0.2", 0), Handler)
        self.host = f"127.0.0.2:{self.server.server_address[1]}"
        _serve(self.server)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FaultProxy:
    """The proxy: `host` to point clients at, `seen` requests, rules added by the fault methods."""

    def __init__(self, upstream: str, elsewhere: Elsewhere) -> None:
        self.upstream = upstream
        self.elsewhere = elsewhere
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self.closing = threading.Event()
        self._lock = threading.Lock()
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        _serve(self.server)

    # --- faults ---------------------------------------------------------------------------------

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def status(self, path: str, status: int = 503, times: int = 1, headers: dict[str, str] | None = None, **kw):
        return self.add(Rule("status", path, status=status, times=times, headers=headers or {}, **kw))

    def stall(self, path: str, seconds: float, times: int = 1, **kw) -> Rule:
        return self.add(Rule("stall", path, seconds=seconds, times=times, **kw))

    def drop(self, path: str, times: int = 1, **kw) -> Rule:
        return self.add(Rule("drop", path, times=times, **kw))

    def link_elsewhere(self, path: str, times: int = 1, **kw) -> Rule:
        return self.add(Rule("link", path, times=times, **kw))

    def echo_authorization(self, path: str, status: int = 500, times: int = 1, **kw) -> Rule:
        return self.add(Rule("echo", path, status=status, times=times, **kw))

    def slow_body(self, path: str, seconds: float = 5.0, times: int = -1, **kw) -> Rule:
        return self.add(Rule("slow", path, seconds=seconds, times=times, **kw))

    def endless_body(self, path: str, times: int = -1, **kw) -> Rule:
        return self.add(Rule("endless", path, times=times, **kw))

    def big_body(self, path: str, size: int, times: int = -1, **kw) -> Rule:
        return self.add(Rule("big", path, size=size, times=times, **kw))

    def redirect_elsewhere(self, path: str, times: int = -1, **kw) -> Rule:
        """Fetch the answer from the registry, park it on `elsewhere`, and answer 307 to it (blob storage)."""
        return self.add(Rule("redirect", path, times=times, **kw))

    def endless_pages(self, path: str = r"/tags/list", times: int = -1, **kw) -> Rule:
        return self.add(Rule("pages", path, times=times, **kw))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.seen.clear()

    def match(self, method: str, path: str) -> Rule | None:
        with self._lock:
            return next((r for r in self.rules if r.take(method, path)), None)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def requests(self, path: str = "", method: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if re.search(path, s.path) and (not method or s.method == method)]

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_any(self) -> None:
        owner = self.owner
        owner.record(Seen(self.command, self.path, dict(self.headers.items())))
        rule = owner.match(self.command, self.path)
        kind = rule.kind if rule else "forward"
        if kind == "drop":
            self._discard_body()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == "stall":
            time.sleep(rule.seconds)
        if kind in ("status", "echo", "slow", "endless", "big", "pages"):
            self._discard_body()
            getattr(self, f"_answer_{kind}")(rule)
            return
        if kind == "redirect":
            self._discard_body()
            self._redirect_elsewhere()
            return
        self._forward(extra_headers=self._elsewhere_link() if kind == "link" else {})

    do_GET = do_HEAD = do_PUT = do_PATCH = do_POST = do_DELETE = do_any  # noqa: N815

    # --- injected answers -------------------------------------------------------------------------

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _answer_status(self, rule: Rule) -> None:
        body = {"errors": [{"code": "UNAVAILABLE", "message": f"injected HTTP {rule.status}"}]}
        self._reply(rule.status, json.dumps(body).encode(), rule.headers)

    def _answer_echo(self, rule: Rule) -> None:
        auth = self.headers.get("Authorization", "")
        body = {
            "errors": [{"code": "DENIED", "message": f"header {auth} not accepted", "detail": auth}],
            "echo": auth,
        }
        self._reply(rule.status, json.dumps(body).encode(), rule.headers)

    def _answer_slow(self, rule: Rule) -> None:
        """A JSON body without end (delimited by closing), one byte every `seconds`, until the client goes away."""
        self._start_stream(200, {"Content-Type": "application/json", "Connection": "close"})
        self._trickle(b'{"tags": [', rule.seconds, size=1)

    def _answer_endless(self, rule: Rule) -> None:
        self._start_stream(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        chunk = b" " * CHUNK
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        while not self.owner.closing.is_set() and sent < (4 << 30):
            try:
                self.wfile.write(frame)
            except OSError:
                return
            sent += len(chunk)

    def _answer_big(self, rule: Rule) -> None:
        self._start_stream(200, {"Content-Type": "application/json", "Content-Length": str(rule.size)})
        self._trickle(b"", 0, size=CHUNK, total=rule.size)

    def _answer_pages(self, rule: Rule) -> None:
        """Page N of a tag list that never ends: one tag, and a Link to page N+1 on this host."""
        url = urlsplit(self.path)
        page = int(parse_qs(url.query).get("page", ["0"])[0])
        body = json.dumps({"name": "endless", "tags": [f"page-{page}"]}).encode()
        self._reply(200, body, {"Link": f'<{url.path}?n=1&page={page + 1}>; rel="next"'})

    def _start_stream(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True

    def _trickle(self, prefix: bytes, seconds: float, size: int, total: int | None = None) -> None:
        """`prefix`, then spaces, `size` bytes per write and `seconds` apart, up to `total` bytes."""
        offset = 0
        while not self.owner.closing.is_set() and (total is None or offset < total):
            piece = (prefix[offset:] + b" " * size)[:size]
            if total is not None:
                piece = piece[: total - offset]
            try:
                self.wfile.write(piece)
                self.wfile.flush()
            except OSError:
                return
            offset += len(piece)
            if seconds and self.owner.closing.wait(seconds):
                return

    def _redirect_elsewhere(self) -> None:
        host, port = self.owner.upstream.rsplit(":", 1)
        upstream = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            upstream.request(self.command, self.path, headers=dict(self.headers.items()))
            answer = upstream.getresponse()
            body = answer.read()
        finally:
            upstream.close()
        if answer.status != 200:
            passed = {k: v for k, v in answer.getheaders() if k.lower() in ("www-authenticate", "content-type")}
            self._reply(answer.status, body, passed)
            return
        storage = f"/storage{urlsplit(self.path).path}"
        self.owner.elsewhere.bodies[storage] = body
        self._reply(307, b"", {"Location": f"http://{self.owner.elsewhere.host}{storage}?X-Amz-Signature=abc"})

    def _elsewhere_link(self) -> dict[str, str]:
        path = urlsplit(self.path).path
        return {"Link": f'<http://{self.owner.elsewhere.host}{path}?n=1000&last=zzz>; rel="next"'}

    # --- forwarding -------------------------------------------------------------------------------

    def _request_body(self) -> Iterator[bytes]:
        """The request body as it arrives: Content-Length bytes, or the decoded chunks of a chunked body."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(CHUNK, remaining))
                    if not data:
                        return
                    remaining -= len(data)
                    yield data
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    return
                remaining -= len(data)
                yield data

    def _discard_body(self) -> None:
        for _ in self._request_body():
            pass

    def _forward(self, extra_headers: dict[str, str]) -> None:
        host, port = self.owner.upstream.rsplit(":", 1)
        upstream = http.client.HTTPConnection(host, int(port), timeout=300)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    upstream.putheader(name, value)
            if chunked:
                upstream.putheader("Transfer-Encoding", "chunked")
            upstream.endheaders()
            for data in self._request_body():
                upstream.send(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
            if chunked:
                upstream.send(b"0\r\n\r\n")
            answer = upstream.getresponse()
            self._relay(answer, extra_headers)
        finally:
            upstream.close()

    def _relay(self, answer: http.client.HTTPResponse, extra_headers: dict[str, str]) -> None:
        self.send_response_only(answer.status, answer.reason)
        no_body = self.command == "HEAD" or answer.status in (204, 304) or 100 <= answer.status < 200
        length = answer.getheader("Content-Length")
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        for name, value in extra_headers.items():
            self.send_header(name, value)
        chunked = not no_body and length is None
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            return
        while data := answer.read1(CHUNK):
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A FaultProxy (and its `elsewhere` host) in front of the registry at `upstream` (host:port)."""
    elsewhere = Elsewhere()
    proxy = FaultProxy(upstream, elsewhere)
    try:
        yield proxy
    finally:
        proxy.close()
        elsewhere.close()
