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
Neither the secret, the signature nor the webhook path (it is derived from the token) is ever part of `detail`,
which names the receiver by its origin (scheme, host and port) alone.

One run may notify several Receivers (one per cluster: production and staging each run their own
notification-controller): `announce_all` notifies them side by side, each with its own retries and deadline, so
one that is down neither stops nor delays the others, and all of them together take `worst_case()` at most.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from image_tagger.edges.httpbounds import Deadline, bounded_session
from image_tagger.model.errors import InputError
from image_tagger.model.receivers import Notification, Receiver
from image_tagger.model.result import PublishResult
from image_tagger.rules.receivers import parse_receiver_url

SIGNATURE_HEADER = "X-Signature"
ATTEMPTS = 3
TIMEOUT = 2.5  # seconds per request: connecting, sending, and the answer's status and headers together
BACKOFF = 0.5  # seconds before the second attempt, doubled before each further one
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REFUSED = {
    400: "refused the signature (400): flux-receiver-secret must be the token of the Receiver's secret",
    404: "has no Receiver at that path (404): flux-receiver-url must end with the Receiver's status.webhookPath",
    413: "refused the body as too large (413)",
}


def receiver_payload(result: PublishResult) -> dict[str, object]:
    """What the notification says: the repository, the tags this run left in the registry, the digest."""
    return {
        "image": result.plan.image.name,
        "tags": result.in_registry,
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
    """`scheme://host[:port]`: how a receiver is named in what we print (its path derives from the token)."""
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
                    return Notification(True, f"Flux notified: {where} answered {status}", attempt, where)
                if 300 <= status < 400:
                    return Notification(
                        False,
                        f"Flux not notified: {where} redirects ({status}); give flux-receiver-url the final address",
                        attempt,
                        where,
                    )
                if status not in RETRY_STATUSES:
                    reason = _REFUSED.get(status, f"answered {status}")
                    return Notification(False, f"Flux not notified: {where} {reason}", attempt, where)
                outcome = f"answered {status}"
            wait = backoff * 2 ** (attempt - 1)
            if attempt == attempts or wait >= deadline.remaining():
                break
            if log:
                log(f"Flux receiver {where}: {outcome} (attempt {attempt} of {attempts}); next in {wait:g} s")
            sleep(wait)
    finally:
        http.close()
    return Notification(False, f"Flux not notified: {where}: {outcome} (after {attempt} attempts)", attempt, where)


def announce(receiver: Receiver, result: PublishResult, log: Callable[[str], None] | None = None) -> Notification:
    """Tell one Receiver about a pushed result."""
    return notify(receiver.url, receiver.secret, receiver_payload(result), log=log)


def announce_all(
    receivers: Sequence[Receiver], result: PublishResult, log: Callable[[str], None] | None = None
) -> list[Notification]:
    """Tell every Receiver about a pushed result, side by side (the action and `image-tagger publish` alike).

    One notification per receiver, in their order; never raises. `log` gets whole lines, one at a time."""
    if not receivers:
        return []
    lock = threading.Lock()

    def one_line_at_a_time(line: str) -> None:  # print() writes a line and its end separately: no interleaving
        with lock:
            if log is not None:
                log(line)

    with ThreadPoolExecutor(max_workers=len(receivers), thread_name_prefix="flux-receiver") as pool:
        return list(pool.map(lambda receiver: announce(receiver, result, log=one_line_at_a_time), receivers))
