"""The demo's stand-in for Flux's notification-controller webhook: a generic-hmac Receiver on loopback.

It checks `X-Signature` against the HMAC of the body, as Flux does, and remembers when each valid
notification arrived: the moment Flux would rescan the image instead of waiting for its next interval.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from image_tagger.edges import notify
from image_tagger.model.receivers import Receiver


@dataclass
class DemoReceiver:
    url: str
    token: str = field(repr=False)
    accepted: list[float] = field(default_factory=list)  # monotonic times of valid notifications

    @property
    def receiver(self) -> Receiver:
        return Receiver(self.url, self.token)


@contextmanager
def serve() -> Iterator[DemoReceiver]:
    state = DemoReceiver("", secrets.token_hex(16))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # the demo prints its own timeline
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            expected = notify.signature(state.token, body)
            valid = hmac.compare_digest(expected, self.headers.get(notify.SIGNATURE_HEADER, ""))
            if valid:
                state.accepted.append(time.monotonic())
            self.send_response(200 if valid else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook/demo"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
