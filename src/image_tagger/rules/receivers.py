"""Flux Receiver inputs, parsed once: the URLs and tokens of the Receivers to notify after a push."""

from __future__ import annotations

import re

from image_tagger.model.errors import InputError
from image_tagger.model.receivers import Receiver

MAX_RECEIVERS = 16  # notified side by side, a thread each


_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")


def parse_receiver_url(text: str, name: str = "flux-receiver-url") -> str:
    """An http(s) URL without credentials, query or fragment; refusals never echo the URL (it may hold a password)
    but call it `name`: the input, or with several URLs its line."""
    from urllib.parse import urlsplit  # only for a job that names a Receiver (issue 17)

    url = text.strip()
    accepted = "accepted: https://<host>[:port]<status.webhookPath of the Receiver>"
    if not url:
        raise InputError(f"{name} is empty; {accepted}")
    if _UNSAFE.search(url):
        raise InputError(f"{name} contains whitespace or control characters; {accepted}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        raise InputError(f"{name} is not a URL; {accepted}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InputError(f"{name} must be an http:// or https:// URL; {accepted}")
    if "@" in parts.netloc:
        raise InputError(
            f"{name} must not carry credentials (user:password@): the Receiver checks the signature, "
            f"made with flux-receiver-secret; {accepted}"
        )
    if not parts.hostname:
        raise InputError(f"{name} names no host; {accepted}")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InputError(
            f"{name} must not have a query or fragment: Flux matches the whole request path against "
            f"status.webhookPath; {accepted}"
        )
    return url


def _lines(text: str) -> list[tuple[int, str]]:
    """The non-blank lines of an input, trimmed, with their line numbers (refusals name a line, never echo it)."""
    return [(number, line.strip()) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]


def parse_receivers(urls: str, secrets: str) -> tuple[Receiver, ...]:
    """The two inputs together: URLs one per line, and either one token for all of them or one per URL, in order.


    Both empty is no notification; anything else that does not pair up is refused, naming the counts."""
    url_lines, tokens = _lines(urls), [token for _, token in _lines(secrets)]
    if not url_lines and not tokens:
        return ()
    if not tokens:
        raise InputError(
            "flux-receiver-secret is empty but flux-receiver-url is set; accepted: the token of the "
            "generic-hmac Receiver's secret (a Receiver of that type refuses unsigned requests)"
        )
    if not url_lines:
        raise InputError("flux-receiver-secret is set but flux-receiver-url is empty; accepted: both, or neither")
    if len(url_lines) > MAX_RECEIVERS:
        raise InputError(f"flux-receiver-url has {len(url_lines)} URLs; accepted: 1 to {MAX_RECEIVERS}, one per line")
    if len(tokens) not in (1, len(url_lines)):
        raise InputError(
            f"flux-receiver-secret has {len(tokens)} tokens for {len(url_lines)} URLs of flux-receiver-url; "
            f"accepted: one token for every URL, or one token per line, as many as the URLs and in their order"
        )
    name = "flux-receiver-url line {}" if len(url_lines) > 1 else "flux-receiver-url"
    parsed = [parse_receiver_url(url, name.format(number)) for number, url in url_lines]
    if len(set(parsed)) < len(parsed):
        raise InputError("flux-receiver-url names one Receiver twice; accepted: each Receiver's URL once")
    if len(tokens) == 1:
        tokens *= len(parsed)
    return tuple(Receiver(url, token) for url, token in zip(parsed, tokens, strict=True))
