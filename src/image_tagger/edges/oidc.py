"""GitHub's OIDC token for keyless signing: the runner's token endpoint, asked for audience `sigstore`.

The runner sets ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN only when the job has `permissions:
id-token: write`; both are checked before the build (`endpoint`), and a token is asked for right before each
signature (`request_token`), since it lives minutes, not a whole build. The request's bearer and the token are
secrets: neither is ever part of an error, and the request goes only over https (or to loopback, for tests).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from image_tagger.model.errors import InputError, PublishError
from image_tagger.rules.publishinputs import ID_TOKEN_REQUEST_ENV

URL_ENV = "ACTIONS_ID_TOKEN_REQUEST_URL"
TOKEN_ENV = ID_TOKEN_REQUEST_ENV
AUDIENCE = "sigstore"  # what Fulcio accepts
DEADLINE = 30.0  # seconds for the whole request, retries included
ATTEMPTS = 3
BACKOFF = 1.0  # seconds before the second try, doubled before the third
MAX_ANSWER = 64 << 10  # the answer is a JSON object holding one token of about 1 KiB
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
MISSING = (
    f"keyless-signing needs GitHub's OIDC token, but {URL_ENV} is not set; add `permissions: id-token: write` to the "
    "job (or the workflow), or sign with signing-key"
)


@dataclass(frozen=True)
class TokenEndpoint:
    """Where the runner hands out OIDC tokens, and the bearer that asks for one."""

    url: str
    bearer: str = field(repr=False)

    @property
    def origin(self) -> str:
        """What errors name: the scheme and host, never a query or the bearer."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


def endpoint(env: Mapping[str, str]) -> TokenEndpoint:
    """The token endpoint from the runner's environment; InputError (exit 2) when the job may not ask for one."""
    url, bearer = env.get(URL_ENV, "").strip(), env.get(TOKEN_ENV, "").strip()
    if not url:
        raise InputError(MISSING)
    if not bearer:
        raise InputError(
            f"keyless-signing: {URL_ENV} is set but {TOKEN_ENV} is not; accepted: both, as the runner sets them for "
            "a job with `permissions: id-token: write`"
        )
    from image_tagger.edges.registry.session import is_loopback_host

    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname or "")):
        raise InputError(f"{URL_ENV} is not an https URL; accepted: the runner's https token endpoint")
    return TokenEndpoint(url, bearer)


def with_audience(url: str, audience: str) -> str:
    """The request URL with `audience` added to its query, as actions/toolkit's getIDToken adds it."""
    return f"{url}{'&' if urlsplit(url).query else '?'}{urlencode({'audience': audience})}"


def request_token(where: TokenEndpoint, audience: str = AUDIENCE) -> str:
    """A fresh OIDC token for `audience`; PublishError names the endpoint's origin and the failure, never a secret."""
    import requests

    from image_tagger.edges.httpbounds import AnswerTooLarge, Deadline, DeadlineExceeded, bounded_session

    deadline = Deadline(DEADLINE)
    failure = ""
    with bounded_session(deadline.remaining, MAX_ANSWER) as http:
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(max(0.0, min(BACKOFF * 2 ** (attempt - 1), deadline.remaining())))
            try:
                answer = http.get(
                    with_audience(where.url, audience),
                    headers={"Authorization": f"Bearer {where.bearer}", "Accept": "application/json"},
                    allow_redirects=False,
                )
            except (DeadlineExceeded, AnswerTooLarge) as err:  # our own words, which name no URL
                raise PublishError(f"no OIDC token from {where.origin}: {err}") from None
            except requests.RequestException as err:  # its text may quote the URL: the kind of failure is enough
                failure = type(err).__name__
                continue
            if answer.status_code >= 500 or answer.status_code == 429:
                failure = f"HTTP {answer.status_code}"
                continue
            if answer.status_code != 200:
                raise PublishError(f"the OIDC token endpoint {where.origin} refused: HTTP {answer.status_code}")
            return _token_of(answer.content, where)
    raise PublishError(f"no OIDC token from {where.origin} after {ATTEMPTS} attempts ({failure})")


def _token_of(body: bytes, where: TokenEndpoint) -> str:
    """The answer's `value`, which must be a JWT (three base64url parts) whose claims are a JSON object."""
    try:
        value = json.loads(body)["value"]
        header, claims, _ = value.split(".")
        json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise PublishError(f"the OIDC token endpoint {where.origin} answered without a JWT") from None
    if not _JWT.fullmatch(value):
        raise PublishError(f"the OIDC token endpoint {where.origin} answered without a JWT")
    return value
