"""A stand-in for notification-controller's webhook receiver on 127.0.0.1, for one Receiver of type generic-hmac
(or github: the same check of `X-Hub-Signature-256` instead of `X-Signature`).

It checks what Flux v1.9.x checks (`internal/server/receiver_handlers.go`, `limits.go`, and go-github's
`ValidateSignature`), in Flux's order: a body over 3 MiB is 413; a request URI other than the webhook path,
`/hook/` + hex sha256(token + name + namespace) and matched whole (a query string included), is 404; then
`X-Signature` must be `<sha1|sha256|sha512>=<hex>` (prefix case-sensitive, hex of either case, even length) and
the decoded MAC must equal, compared in constant time, the HMAC of the raw body keyed with the token: else 400.
A valid request is 200. Every method is handled, as Flux does.

Faults for the sender's retries: `fail(n, status)` answers the next n requests with `status` (Flux's 500 when
annotating fails, 503 while the Receiver is not ready) before looking at them; `stall(seconds)` holds every
request that long before answering (released at once on close). Every request is recorded as a `Delivery`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 3 * 1024 * 1024
HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")  # Go's hex.DecodeString: either case, even length, nothing else


def webhook_path(token: str, name: str, namespace: str) -> str:
    """`status.webhookPath` as notification-controller computes it (api/v1 Receiver.GetWebhookPath)."""
    return "/hook/" + hashlib.sha256((token + name + namespace).encode()).hexdigest()


def signature_valid(header: str | None, body: bytes, token: str) -> bool:
    """go-github's ValidateSignature, as Flux calls it for generic-hmac."""
    if not header:
        return False
    prefix, sep, hexdigest = header.partition("=")
    if not sep or prefix not in HASHES or not _HEX.fullmatch(hexdigest):
        return False
    expected = hmac.new(token.encode(), body, HASHES[prefix]).digest()
    return hmac.compare_digest(bytes.fromhex(hexdigest), expected)


@dataclass(frozen=True)
class Delivery:
    """One request as received, and the status it was answered with."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float = 0.0  # time.monotonic() when the request had arrived whole (before any stall)

    @property
    def accepted(self) -> bool:
        return self.status == 200


class HmacReceiver:
    """The receiver while it serves: its URL, what reached it, and fault switches."""

    def __init__(
        self, token: str, name: str = "app-image-tagger", namespace: str = "flux-system", header: str = "X-Signature"
    ) -> None:
        self.token = token
        self.header = header
        self.path = webhook_path(token, name, namespace)
        self.deliveries: list[Delivery] = []
        self._failures: list[int] = []
        self._stall = 0.0
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return self.origin + self.path

    def fail(self, times: int, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def stall(self, seconds: float) -> None:
        self._stall = seconds

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
        if len(body) > MAX_BODY:
            return 413
        if path != self.path:
            return 404
        signature = next((v for k, v in headers.items() if k.lower() == self.header.lower()), None)
        return 200 if signature_valid(signature, body, self.token) else 400

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY + 1))
                arrived = time.monotonic()
                if owner._stall:
                    owner._released.wait(owner._stall)
                headers = dict(self.headers.items())
                status = owner._answer(self.path, headers, body)
                owner.deliveries.append(Delivery(self.command, self.path, headers, body, status, arrived))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up while we stalled
                    pass

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = handle_any

        return Handler

    def start(self) -> HmacReceiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()


def closed_port_url() -> str:
    """A webhook URL on a loopback port nothing listens on: a receiver that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook/{'0' * 64}"


@contextmanager
def serve_receiver(
    token: str, name: str = "app-image-tagger", namespace: str = "flux-system", header: str = "X-Signature"
) -> Iterator[HmacReceiver]:
    receiver = HmacReceiver(token, name, namespace, header).start()
    try:
        yield receiver
    finally:
        receiver.close()
