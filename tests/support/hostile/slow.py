"""A slow or oversized HTTP server on 127.0.0.1: on its own (a Flux receiver that answers 200) or in front of an
upstream (the local GitHub API, a registry), whose answers it passes on slowly or replaces by a huge one.

Rules, first match wins (method and path regexes, like tests/support/faultproxy.py):
- `trickle_headers`: the status line and headers one byte per `interval`, then the body at once;
- `trickle_body`: the headers at once, then the body one byte per `interval` (an endless one without upstream);
- `oversized`: a body of `size` bytes, sent as fast as the client reads, declared (Content-Length) or not
  (read until close), so a client must count, not only trust the header;
- `stall`: nothing at all for `interval` seconds, then the answer;
- `retry_later`: 503 with `Retry-After: <interval>`, a wait the client is asked for rather than one it is made to.
Every request is recorded with the bytes sent back (`Exchange.sent`), so a test can show how much a client
read before it gave up. Slow sends stop as soon as the client goes away, or when the server closes.
"""

from __future__ import annotations

import http.client
import itertools
import re
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SKIP = {"host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
OK_BODY = b'{"ok":true}'


@dataclass
class Rule:
    kind: str  # trickle_headers | trickle_body | oversized | stall | retry_later
    path: str = ""
    method: str = ""
    interval: float = 1.0
    size: int = 0
    declare: bool = True
    times: int = -1  # -1: every time
    hits: int = 0

    def take(self, method: str, path: str) -> bool:
        if self.times >= 0 and self.hits >= self.times:
            return False
        if (self.method and not re.fullmatch(self.method, method)) or not re.search(self.path, path):
            return False
        self.hits += 1
        return True


@dataclass
class Exchange:
    """One request, the rule that met it (or ""), and how many bytes went back before the client left."""

    method: str
    path: str
    rule: str
    sent: int = 0
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None


class SlowServer:
    """Serve with `with slow_server(upstream) as server:`; `server.url` is its base URL (http://127.0.0.1:port)."""

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream.rstrip("/") if upstream else None
        self.rules: list[Rule] = []
        self.exchanges: list[Exchange] = []
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def add(self, kind: str, path: str = "", **kw: object) -> Rule:
        rule = Rule(kind, path, **kw)  # type: ignore[arg-type]
        with self._lock:
            self.rules.append(rule)
        return rule

    def trickle_headers(self, path: str = "", interval: float = 1.0, **kw: object) -> Rule:
        return self.add("trickle_headers", path, interval=interval, **kw)

    def trickle_body(self, path: str = "", interval: float = 1.0, **kw: object) -> Rule:
        return self.add("trickle_body", path, interval=interval, **kw)

    def oversized(self, path: str = "", size: int = 256 << 20, declare: bool = True, **kw: object) -> Rule:
        return self.add("oversized", path, size=size, declare=declare, **kw)

    def stall(self, path: str = "", seconds: float = 3600.0, **kw: object) -> Rule:
        return self.add("stall", path, interval=seconds, **kw)

    def sent(self, kind: str | None = None) -> int:
        """Bytes sent back, over every exchange (or those met by one kind of rule)."""
        return sum(e.sent for e in self.exchanges if kind is None or e.rule == kind)

    def start(self) -> SlowServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    # --- serving ---------------------------------------------------------------------------------------

    def _match(self, method: str, path: str) -> Rule | None:
        with self._lock:
            return next((rule for rule in self.rules if rule.take(method, path)), None)

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        """The upstream's answer (its own URLs pointed at us), or 200 with a short JSON body."""
        if self.upstream is None:
            return 200, [("Content-Type", "application/json")], OK_BODY
        parts = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(parts.netloc, timeout=60)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            reply = connection.getresponse()
            data = reply.read().replace(self.upstream.encode(), self.url.encode())
            kept = [(k, v.replace(self.upstream, self.url)) for k, v in reply.getheaders() if k.lower() not in SKIP]
            return reply.status, kept, data
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rule = owner._match(self.command, self.path)
                exchange = Exchange(self.command, self.path, rule.kind if rule else "")
                owner.exchanges.append(exchange)
                try:
                    owner._serve(self, rule, exchange, body)
                except OSError:  # the client gave up: what it got is in exchange.sent
                    self.close_connection = True
                finally:
                    exchange.ended = time.monotonic()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

        return Handler

    def _serve(self, handler: BaseHTTPRequestHandler, rule: Rule | None, exchange: Exchange, body: bytes) -> None:
        out = handler.wfile
        if rule and rule.kind == "stall" and self._closing.wait(rule.interval):
            return
        if rule and rule.kind == "retry_later":
            handler.close_connection = True
            head = f"HTTP/1.1 503 Service Unavailable\r\nRetry-After: {rule.interval:.0f}\r\nContent-Length: 0\r\n\r\n"
            self._send(out, head.encode(), exchange)
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in SKIP}
        status, answer_headers, data = self._answer(handler.command, handler.path, headers, body)
        endless = rule is not None and rule.kind == "trickle_body" and self.upstream is None
        size = rule.size if rule and rule.kind == "oversized" else len(data)
        declared = not endless and not (rule and rule.kind == "oversized" and not rule.declare)
        lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in answer_headers]
        lines += [f"Content-Length: {size}" if declared else "Connection: close", "", ""]
        head = "\r\n".join(lines).encode("latin-1")
        handler.close_connection = True
        if rule and rule.kind == "trickle_headers":
            self._trickle(out, head, rule.interval, exchange)
        else:
            self._send(out, head, exchange)
        if handler.command == "HEAD":
            return
        if rule and rule.kind == "oversized":
            block = b"x" * 65536
            while exchange.sent < size + len(head) and not self._closing.is_set():
                self._send(out, block[: size + len(head) - exchange.sent], exchange)
        elif rule and rule.kind == "trickle_body":
            self._trickle(out, itertools.repeat(120) if endless else data, rule.interval, exchange)
        else:
            self._send(out, data, exchange)

    def _send(self, out: object, data: bytes, exchange: Exchange) -> None:
        out.write(data)  # type: ignore[attr-defined]
        out.flush()  # type: ignore[attr-defined]
        exchange.sent += len(data)

    def _trickle(self, out: object, data: Iterable[int], interval: float, exchange: Exchange) -> None:
        for byte in data:
            self._send(out, bytes((byte,)), exchange)
            if self._closing.wait(interval):
                return


@contextmanager
def slow_server(upstream: str | None = None) -> Iterator[SlowServer]:
    """A SlowServer while the block runs; without `upstream` it answers every request 200 `{"ok":true}`."""
    server = SlowServer(upstream).start()
    try:
        yield server
    finally:
        server.close()


class TimeLimitExceeded(BaseException):
    """Not an Exception (nor the OSError that TimeoutError is): a client's `except` clauses cannot swallow it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail the block if it runs longer (SIGALRM in the main thread, again each second should it be caught), so
    a hang cannot stall the suite; a blocking socket read is interrupted too."""

    def expired(signum: int, frame: object) -> None:
        raise TimeLimitExceeded(f"still running after the test's limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
