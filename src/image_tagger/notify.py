"""Reconcile seconds after a push: a signed POST to a Flux Receiver of type `generic-hmac`.

What notification-controller (v1.9.x, `internal/server/receiver_handlers.go`) does with the request: it looks
the Receiver up by the whole request URI (`status.webhookPath`, `/hook/<sha256 of token+name+namespace>`), so a
query string never matches; it reads the raw body (at most 3 MiB) and checks `X-Signature: <hash>=<hex>` with
go-github's `ValidateSignature`: `<hash>` is `sha1`, `sha256` or `sha512`, and the hex must equal, compared in
constant time, the HMAC of exactly those bytes keyed with the `token` of the Receiver's secret. It answers 200
once the listed resources are annotated for reconciliation, 400 for a wrong or missing signature, 404 when no
Receiver has that path, 503 while the Receiver is suspended or not ready, 500 when annotating failed.

The image is already in the registry when this runs, so `notify` never raises: a failed notification is a
`Notification(ok=False, detail=...)` that the action turns into a warning, after a short bounded retry
(`worst_case()` seconds at most, however slowly a receiver trickles its answer; only the status line and
headers are read, never the body). A retried POST may reach Flux twice; a second reconcile request is harmless.
Neither the secret, the signature nor the webhook path (it is derived from the token) is ever part of `detail`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

from image_tagger.errors import InputError
from image_tagger.httpbounds import Deadline, bounded_session

if TYPE_CHECKING:  # publish imports inputs, which may import this module
    from image_tagger.publish import PublishResult

SIGNATURE_HEADER = "X-Signature"
ATTEMPTS = 3
TIMEOUT = 2.5  # seconds per request: connecting, sending, and the answer's status and headers together
BACKOFF = 0.5  # seconds before the second attempt, doubled before each further one
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")
_REFUSED = {
    400: "the Receiver refused the signature (400): flux-receiver-secret must be the token of the Receiver's secret",
    404: "no Receiver has that path (404): flux-receiver-url must end with the Receiver's status.webhookPath",
    413: "the Receiver refused the body as too large (413)",
}


@dataclass(frozen=True)
class Receiver:
    """Where to notify Flux, and the token that signs the notification."""

    url: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Notification:
    """Whether Flux was notified; `detail` names the receiver's origin, never its path or the secret."""

    ok: bool
    detail: str
    attempts: int = 0


def parse_receiver_url(text: str) -> str:
    """An http(s) URL without credentials, query or fragment; refusals never echo the URL (it may hold a password)."""
    url = text.strip()
    accepted = "accepted: https://<host>[:port]<status.webhookPath of the Receiver>"
    if not url:
        raise InputError(f"flux-receiver-url is empty; {accepted}")
    if _UNSAFE.search(url):
        raise InputError(f"flux-receiver-url contains whitespace or control characters; {accepted}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        raise InputError(f"flux-receiver-url is not a URL; {accepted}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InputError(f"flux-receiver-url must be an http:// or https:// URL; {accepted}")
    if "@" in parts.netloc:
        raise InputError(
            "flux-receiver-url must not carry credentials (user:password@): the Receiver checks the signature, "
            f"made with flux-receiver-secret; {accepted}"
        )
    if not parts.hostname:
        raise InputError(f"flux-receiver-url names no host; {accepted}")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InputError(
            "flux-receiver-url must not have a query or fragment: Flux matches the whole request path against "
            f"status.webhookPath; {accepted}"
        )
    return url


def parse_receiver(url: str, secret: str) -> Receiver | None:
    """The two inputs together: both empty is no notification, one without the other is refused."""
    if not url.strip() and not secret:
        return None
    if not secret.strip():
        raise InputError(
            "flux-receiver-secret is empty but flux-receiver-url is set; accepted: the token of the "
            "generic-hmac Receiver's secret (a Receiver of that type refuses unsigned requests)"
        )
    if not url.strip():
        raise InputError("flux-receiver-secret is set but flux-receiver-url is empty; accepted: both, or neither")
    return Receiver(parse_receiver_url(url), secret)


def receiver_payload(result: PublishResult) -> dict[str, object]:
    """What the notification says: the repository, the tags this run left in the registry, the digest."""
    return {
        "image": result.plan.image.name,
        "tags": result.tags_in("pushed", "promoted", "already-published"),
        "digest": result.digest or "",
    }


def signature(secret: str, body: bytes) -> str:
    """The `X-Signature` value Flux checks: `sha256=` and the hex HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_request(url: str, secret: str, payload: Mapping[str, object]) -> tuple[bytes, dict[str, str]]:
    """The body (compact JSON, keys sorted) and the headers that sign it; refuses a bad URL or an empty secret."""
    parse_receiver_url(url)
    if not secret:
        raise InputError("flux-receiver-secret is empty; accepted: the token of the Receiver's secret")
    body = json.dumps(dict(payload), separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "image-tagger",
        SIGNATURE_HEADER: signature(secret, body),
    }
    return body, headers


def worst_case(attempts: int = ATTEMPTS, timeout: float = TIMEOUT, backoff: float = BACKOFF) -> float:
    """The longest `notify` can take, whatever the receiver does: it is also `notify`'s overall deadline."""
    return attempts * timeout + sum(backoff * 2**n for n in range(attempts - 1))


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc}"


def _failure(err: requests.RequestException, timeout: float) -> str:
    """What went wrong, by kind only: exception texts carry the URL, and so the token-derived path."""
    if isinstance(err, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(err, requests.ConnectionError):
        return f"connection failed ({type(err).__name__})"
    return f"request failed ({type(err).__name__})"


def notify(
    url: str,
    secret: str,
    payload: Mapping[str, object],
    *,
    attempts: int = ATTEMPTS,
    timeout: float = TIMEOUT,
    backoff: float = BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] | None = None,
) -> Notification:
    """POST the signed payload; retries dropped connections, timeouts, 429 and 5xx. Never raises."""
    try:
        body, headers = signed_request(url, secret, payload)
    except InputError as err:
        return Notification(False, f"Flux not notified: {err}")
    where = origin(url)
    deadline = Deadline(worst_case(attempts, timeout, backoff))
    http = bounded_session(deadline.remaining, max_body=0)  # the body is never read
    outcome = ""
    try:
        for attempt in range(1, attempts + 1):
            try:
                # A number as timeout bounds the whole exchange (connect, send, status and headers); the body
                # is never read, so neither a trickled nor a huge one holds us or fills memory.
                response = http.post(
                    url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
                )
            except requests.RequestException as err:
                outcome = _failure(err, timeout)
            else:
                status = response.status_code
                response.close()
                if 200 <= status < 300:
                    return Notification(True, f"Flux notified: {where} answered {status}", attempt)
                if 300 <= status < 400:
                    return Notification(
                        False,
                        f"Flux not notified: {where} redirects ({status}); give flux-receiver-url the final address",
                        attempt,
                    )
                if status not in RETRY_STATUSES:
                    reason = _REFUSED.get(status, f"{where} answered {status}")
                    return Notification(False, f"Flux not notified: {reason}", attempt)
                outcome = f"answered {status}"
            wait = backoff * 2 ** (attempt - 1)
            if attempt == attempts or wait >= deadline.remaining():
                break
            if log:
                log(f"Flux receiver {where}: {outcome} (attempt {attempt} of {attempts}); next in {wait:g} s")
            sleep(wait)
    finally:
        http.close()
    return Notification(False, f"Flux not notified: {where}: {outcome} (after {attempt} attempts)", attempt)


def announce(receiver: Receiver, result: PublishResult, log: Callable[[str], None] | None = None) -> Notification:
    """Tell the Receiver about a pushed result (the action and `image-tagger publish` alike)."""
    return notify(receiver.url, receiver.secret, receiver_payload(result), log=log)


def summary_text(notification: Notification) -> str:
    """The job summary's line about Flux, to append after the rest of the summary."""
    if notification.ok:
        return f"\nFlux: notified ({notification.detail.removeprefix('Flux notified: ')})\n"
    reason = notification.detail.removeprefix("Flux not notified: ")
    return f"\nFlux: **not notified** ({reason}); it finds the image at its next scan of the repository\n"
