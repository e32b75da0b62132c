"""A registry that echoes credentials and serves forged tag names: a real registry behind a FaultProxy.

- `deny_manifest_puts()`: every manifest PUT is answered HTTP 403 in the registry's JSON error format,
  quoting the request's Authorization in each form a WAF or a careless registry might: the header
  (`Basic <base64>`), the decoded `user:password`, and URL-encoded (`quote`, `quote_plus`) copies.
  The Docker daemon passes that message on as its push error.
- `inject_tags(*tags)`: every tag list the registry answers gains these tags (names no registry would
  store: line breaks, `::warning::`, ESC sequences), as a hostile or compromised registry could send.

Everything else is forwarded to the real registry, so logins, blob uploads and reads work as usual.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, quote_plus, urlsplit

from support.faultproxy import Elsewhere, FaultProxy, Seen, _ProxyHandler


def echoed(authorization: str) -> str:
    """What the 403 says: the header, and the credentials decoded from it in plain and URL-encoded forms."""
    scheme, _, value = authorization.partition(" ")
    try:
        pair = base64.b64decode(value, validate=True).decode() if scheme.lower() == "basic" else value
    except (binascii.Error, UnicodeDecodeError):
        pair = value
    user, _, password = pair.partition(":")
    return (
        f"access denied for {authorization} ({pair}); "
        f"also tried https://{quote(user, safe='')}:{quote(password, safe='')}@registry/ "
        f"as {quote(pair, safe='')} and {quote_plus(pair)}"
    )


class EchoingRegistry(FaultProxy):
    """The proxy; `host` is where clients (the daemon, the CLI, the action) are pointed."""

    def __init__(self, upstream: str, elsewhere: Elsewhere) -> None:
        super().__init__(upstream, elsewhere)
        self.deny_puts = False
        self.injected: list[str] = []
        proxy = self

        class Handler(_HostileHandler):
            owner = proxy

        self.server.RequestHandlerClass = Handler

    def deny_manifest_puts(self) -> None:
        self.deny_puts = True

    def inject_tags(self, *tags: str) -> None:
        self.injected += tags


class _HostileHandler(_ProxyHandler):
    owner: EchoingRegistry

    def do_any(self) -> None:
        path = urlsplit(self.path).path
        if self.owner.deny_puts and self.command == "PUT" and "/manifests/" in path:
            self.owner.record(Seen(self.command, self.path, dict(self.headers.items())))
            self._discard_body()
            message = echoed(self.headers.get("Authorization", ""))
            body = {"errors": [{"code": "DENIED", "message": message, "detail": message}]}
            self._reply(403, json.dumps(body).encode())
            return
        if self.owner.injected and self.command == "GET" and path.endswith("/tags/list"):
            self.owner.record(Seen(self.command, self.path, dict(self.headers.items())))
            self._answer_with_injected_tags()
            return
        super().do_any()

    do_GET = do_HEAD = do_PUT = do_PATCH = do_POST = do_DELETE = do_any  # noqa: N815

    def _answer_with_injected_tags(self) -> None:
        host, port = self.owner.upstream.rsplit(":", 1)
        upstream = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            upstream.request("GET", self.path, headers=dict(self.headers.items()))
            answer = upstream.getresponse()
            body = answer.read()
        finally:
            upstream.close()
        if answer.status == 200:
            listing = json.loads(body)
            listing["tags"] = [*(listing.get("tags") or []), *self.owner.injected]
            body = json.dumps(listing).encode()
        passed = {
            k: v for k, v in answer.getheaders() if k.lower() in ("www-authenticate", "docker-distribution-api-version")
        }
        self._reply(answer.status, body, passed)


@contextmanager
def echoing_registry(upstream: str) -> Iterator[EchoingRegistry]:
    """An EchoingRegistry in front of the registry at `upstream` (host:port)."""
    elsewhere = Elsewhere()
    proxy = EchoingRegistry(upstream, elsewhere)
    try:
        yield proxy
    finally:
        proxy.close()
        elsewhere.close()
