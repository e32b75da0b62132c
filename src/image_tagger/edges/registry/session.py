"""Talking to a registry: one session per repository, with retries, a deadline, bounded answers and
credentials that never leave the registry's own origin.

Names are read like an ImageRepository's `spec.image` (`acme/app` is `docker.io/acme/app`, `alpine`
is `docker.io/library/alpine`). Registry failures are one PublishError line naming the registry and image.
Apart from `credentials` because the two change for different reasons: this module follows the
distribution API and its failure modes; where an account comes from (Docker config, helpers, Secrets)
is the other's business, and a session only ever receives the RegistryAuth it was given.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import random
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import IO, Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3

from image_tagger.edges.httpbounds import bounded_session
from image_tagger.model.errors import PublishError
from image_tagger.model.imagename import DOCKER_HUB, ImageName, parse_image, plain_http
from image_tagger.model.registry import RegistryAuth
from image_tagger.rules import jsonlimits, signatures
from image_tagger.rules.redact import Redactor

DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"
PAGE_SIZE = 1000
DEFAULT_DEADLINE = 120.0  # seconds for everything one session does, retries and slow bodies included
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # per socket read
RETRY_BASE = 0.25  # first backoff; doubles per attempt, with jitter, up to RETRY_CAP
RETRY_CAP = 8.0
RETRY_AFTER_CAP = 30.0  # a registry's Retry-After is honoured up to this
MAX_PAGES = 200
MAX_BODY = 16 << 20  # tag list pages, manifests, config blobs
MAX_TOKEN_BODY = 1 << 20
MAX_REDIRECTS = 5
_RETRY_STATUSES = frozenset({408, 429})
MANIFEST_MEDIA_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
INDEX_MEDIA_TYPES = frozenset(MANIFEST_MEDIA_TYPES[2:])
# The Accept of go-containerregistry's remote.Head, with which Flux's image-reflector-controller reads a tag's digest:
# schema 1, then image manifests, then indexes (Docker's, then OCI's), comma-joined. The registry answers with the
# digest of what it stores under the tag: the index, where there is one.
HEAD_ACCEPT = ",".join(
    (
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        *MANIFEST_MEDIA_TYPES,
    )
)
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
OCI_MANIFEST, OCI_INDEX = MANIFEST_MEDIA_TYPES[1], MANIFEST_MEDIA_TYPES[3]
# The OCI image spec's empty descriptor: an artifact with nothing but annotations uses it as config and layer.
EMPTY_BLOB = b"{}"
EMPTY = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()}
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]*))')


def registry_endpoint(registry: str) -> str:
    """Base URL of the registry API: Hub's real endpoint, plain http on loopback (as Flux's `insecure`)."""
    if registry == DOCKER_HUB:
        return DOCKER_HUB_ENDPOINT
    scheme = "http" if plain_http(registry) else "https"
    return f"{scheme}://{registry}"


def tags_url(image: ImageName, page_size: int = PAGE_SIZE) -> str:
    """First page of `GET /v2/<repo>/tags/list`."""
    return f"{registry_endpoint(image.registry)}/v2/{image.path}/tags/list?n={page_size}"


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), {m[1].lower(): m[2] or m[3] for m in _CHALLENGE_PARAM_RE.finditer(params)}


def _reason(err: BaseException) -> str:
    """urllib3 nests the socket error in reprs; the last clause (`[Errno 111] Connection refused`) says it."""
    cause = err.args[0] if err.args else err
    text = str(getattr(cause, "reason", cause))
    return text.rsplit(": ", 1)[-1].strip(" )'\"") or type(err).__name__


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with default ports filled in: credentials go to one origin only."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: where a plain-http token realm cannot be intercepted on the way."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """`Retry-After` in seconds, from delta-seconds or an HTTP date; None when absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")
# A request body: bytes, or a callable that opens it afresh (a file) for each attempt.
Body = bytes | Callable[[], contextlib.AbstractContextManager[IO[bytes]]] | None


def _looks_like_digest(reference: str) -> bool:
    return ":" in reference and reference.split(":", 1)[0] in ("sha256", "sha384", "sha512")


def _digest_of(algorithm: str, body: bytes) -> str:
    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry holds it: the bytes its digest is computed over."""

    digest: str
    media_type: str
    body: bytes = field(repr=False)
    registry: str = field(default="", compare=False)  # where it came from, for errors

    def json(self) -> dict[str, Any]:
        """The manifest as an object, read through the bounded JSON loader."""
        where = f"registry {self.registry}: " if self.registry else ""
        try:
            parsed = jsonlimits.loads(self.body, MAX_BODY)
        except jsonlimits.JSONError as err:
            raise PublishError(f"{where}manifest {self.digest} is not usable JSON ({err})") from None
        if not isinstance(parsed, dict):
            raise PublishError(f"{where}manifest {self.digest} is not a JSON object")
        return parsed

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES


@dataclass(frozen=True)
class _Reply:
    """A whole (bounded) answer: status, headers, final URL and body."""

    method: str
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def what(self) -> str:
        return f"{self.method} {urlsplit(self.url).path}"

    def next_link(self) -> str | None:
        for link in requests.utils.parse_header_links(self.headers.get("Link", "")):
            if "next" in str(link.get("rel", "")).split() and link.get("url"):
                return urljoin(self.url, link["url"])
        return None


@dataclass
class Handshake:
    """What a registry said about authorization (its last challenge, the bearer tokens got per scope), shared by the
    sessions one job opens with one repository and one account: each session has its own deadline, but only the
    first needs the 401 that names the scheme (a signed publish opens some ten), and an expired token is asked for
    again on the next 401 as before."""

    challenge: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    uploads: deque[str] = field(default_factory=deque)  # blob uploads started ahead (open_uploads), each used once


class _Transient(Exception):
    """A failure worth another attempt (5xx, 429, dropped or stalled connection)."""

    def __init__(self, what: str, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """An auth hook that adds nothing: it stops requests from adding ~/.netrc credentials on its own."""
    return request


class RegistrySession:
    """Every call to one repository of one registry: retries, an overall deadline, credentials kept home.

    - Transient failures (HTTP 5xx, 408, 429 with `Retry-After`, dropped connections, timeouts) are
      retried with exponential backoff and jitter until `deadline` seconds after the session started;
      then one PublishError says what kept failing. Connection refused is not retried: nothing listens.
    - Authorization goes only to the registry's own origin (scheme, host, port): never to another host
      named by a `Link` page, a redirect (followed here, not by requests) or a blob's storage location.
      Bearer tokens are fetched only from an https realm or a loopback one.
    - Bodies are streamed and bounded (`max_body`), tag lists by `max_pages`, slow bodies by the deadline.
    - Errors quote only the registry's JSON `errors[].message`, with anything credential-like redacted.
    """

    def __init__(
        self,
        image: ImageName | str,
        auth: RegistryAuth | None = None,
        *,
        deadline: float = DEFAULT_DEADLINE,
        timeout: float = READ_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
        max_body: int = MAX_BODY,
        retry_base: float = RETRY_BASE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        http: requests.Session | None = None,
        handshake: Handshake | None = None,
    ) -> None:
        self.image = parse_image(image) if isinstance(image, str) else image
        self.auth = auth or RegistryAuth()
        self.deadline = deadline
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.page_size = page_size
        self.max_pages = max_pages
        self.max_body = max_body
        self.retry_base = retry_base
        self._sleep, self._clock, self._jitter = sleep, clock, jitter
        # Its adapter ends connect and headers at the deadline however slowly they come; _read bounds the body.
        self.http = http or bounded_session(self._remaining, max_body)
        self.endpoint = registry_endpoint(self.image.registry)
        self._origin = _origin(self.endpoint)
        self._started = clock()
        self._handshake = handshake or Handshake()
        self._tokens = self._handshake.tokens
        self._last = ""

    def __enter__(self) -> RegistrySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # --- the public operations --------------------------------------------------------------------

    def tags(self, missing_ok: bool = False) -> list[str]:
        """All tags, following `Link: rel="next"` pages (at most `max_pages`), in the registry's order.

        A repository the registry does not know is an error, or no tags with `missing_ok` (before a first push).
        """
        tags: list[str] = []
        seen: set[str] = set()
        url: str | None = tags_url(self.image, self.page_size)
        while url:
            if url in seen:
                raise self.fail(f"pagination loops back to {url}")
            if len(seen) >= self.max_pages:
                raise self.fail(f"tag list goes on past {self.max_pages} pages; stopped there (page limit)")
            seen.add(url)
            reply = self._send("GET", url, {"Accept": "application/json"})
            if reply.status == 404:
                if missing_ok:
                    return []
                raise self.fail(f"no repository {self.image.path} (HTTP 404)")
            if reply.status != 200:
                raise self._status_error(reply)
            page = self._json(reply).get("tags") or []
            if not isinstance(page, list) or not all(isinstance(tag, str) for tag in page):
                raise self.fail(f"{reply.url} returned invalid JSON (tags is not a list of strings)")
            tags.extend(page)
            url = reply.next_link()
        return tags

    def manifest(self, reference: str) -> Manifest | None:
        """The manifest or index a tag or digest names, exactly as stored; None when there is none (404)."""
        url = f"{self.endpoint}/v2/{self.image.path}/manifests/{reference}"
        reply = self._send("GET", url, {"Accept": ", ".join(MANIFEST_MEDIA_TYPES)})
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise self._status_error(reply)
        claimed = reply.headers.get("Docker-Content-Digest", "").strip()
        wanted = [d for d in (claimed, reference if _looks_like_digest(reference) else "") if d]
        for digest in wanted:
            algorithm = digest.split(":", 1)[0]
            if algorithm not in ("sha256", "sha384", "sha512") or _digest_of(algorithm, reply.body) != digest:
                raise self.fail(f"manifest {reference}: its bytes do not match digest {digest}")
        media_type = reply.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if media_type not in MANIFEST_MEDIA_TYPES:
            media_type = str(self._json(reply).get("mediaType") or media_type)
        digest = wanted[0] if wanted else _digest_of("sha256", reply.body)
        return Manifest(digest, media_type, reply.body, self.image.registry)

    def head_digest(self, reference: str) -> str | None:
        """The digest the registry names for a tag in a HEAD of its manifest, as Flux reflects it into an ImagePolicy
        (`remote.Head`: its Accept, and the `Docker-Content-Digest` header, which must be a sha256 digest); None when
        the registry has no manifest there (404)."""
        reply = self._send(
            "HEAD", f"{self.endpoint}/v2/{self.image.path}/manifests/{reference}", {"Accept": HEAD_ACCEPT}
        )
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise self._status_error(reply)
        digest = reply.headers.get("Docker-Content-Digest", "").strip()
        if not _SHA256.fullmatch(digest):
            raise self.fail(f"HEAD of manifest {reference}: no sha256 Docker-Content-Digest ({digest[:80]!r})")
        return digest

    def config_labels(self, manifest: Manifest) -> dict[str, str]:
        """The image config's Labels; for an index, those of its first linux image."""
        if manifest.is_index:
            entries = manifest.json().get("manifests") or []
            chosen = next(
                (
                    e
                    for e in entries
                    if isinstance(e, dict)
                    and (e.get("platform") or {}).get("os") == "linux"
                    and e.get("mediaType", MANIFEST_MEDIA_TYPES[0]) not in INDEX_MEDIA_TYPES
                ),
                None,
            )
            if chosen is None or not isinstance(chosen.get("digest"), str):
                raise self.fail(f"index {manifest.digest} holds no linux image")
            found = self.manifest(chosen["digest"])
            if found is None or found.is_index:
                raise self.fail(f"index {manifest.digest}: its linux image {chosen['digest']} is missing")
            manifest = found
        config = manifest.json().get("config") or {}
        digest = config.get("digest") if isinstance(config, dict) else None
        if not isinstance(digest, str) or not _looks_like_digest(digest):
            raise self.fail(f"manifest {manifest.digest} names no config blob")
        body = self.blob(digest, "config blob")
        try:
            parsed = jsonlimits.loads(body, self.max_body)
        except jsonlimits.JSONError as err:
            raise self.fail(f"config blob {digest} is not usable JSON ({err})") from None
        labels = ((parsed if isinstance(parsed, dict) else {}).get("config") or {}).get("Labels") or {}
        if not isinstance(labels, dict):
            raise self.fail(f"config blob {digest}: Labels is not an object")
        return {str(k): str(v) for k, v in labels.items()}

    def blob(self, digest: str, what: str = "blob") -> bytes:
        """A blob's bytes, checked against its digest."""
        reply = self._send("GET", f"{self.endpoint}/v2/{self.image.path}/blobs/{digest}", {})
        if reply.status != 200:
            raise self._status_error(reply)
        if _digest_of(digest.split(":", 1)[0], reply.body) != digest:
            raise self.fail(f"{what} {digest}: its bytes do not match the digest")
        return reply.body

    def signature_layers(self, digest: str) -> list[signatures.SignatureLayer]:
        """The cosign signatures stored for the manifest `digest` (its `sha256-<hex>.sig` image); none: []."""
        found = self.manifest(signatures.signature_tag(digest))
        if found is None:
            return []
        return [
            signatures.SignatureLayer.read(self.blob(layer, "signature payload"), annotations)
            for layer, _, annotations in signatures.listed_signatures(found.json())
        ]

    def put_signature(
        self,
        digest: str,
        layer: signatures.SignatureLayer,
        unless: Callable[[list[signatures.SignatureLayer]], bool] | None = None,
    ) -> str | None:
        """Add one signature of the manifest `digest` to its signature image, keeping the ones there; the signature
        image's digest, or None when `unless(the ones there)` says so and nothing more is written.

        Two round trips for a new image's first signature: the ones there are read while the payload and the config
        as it is with no other signature go up (new bytes: no HEAD), then the manifest goes last, as cosign writes
        it. Only when other signatures are there does the config that lists them all go up in between."""
        alone = signatures.signature_image([layer])[1]
        with ThreadPoolExecutor(max_workers=3) as pool:
            read = pool.submit(self.signature_layers, digest)
            blobs = [
                pool.submit(self.put_blob, blob, signatures.digest_of(blob), check=False)
                for blob in (layer.payload, alone)
            ]
            found = read.result()
            for put in blobs:
                put.result()
        if unless is not None and unless(found):
            return None
        manifest, config = signatures.signature_image([*(other for other in found if other != layer), layer])
        if config != alone:
            self.put_blob(config, signatures.digest_of(config), check=False)
        self._put(f"manifests/{signatures.signature_tag(digest)}", signatures.OCI_MANIFEST, manifest)
        return signatures.digest_of(manifest)

    def put_manifest(self, tag: str, manifest: Manifest) -> str:
        """Store `manifest` (its exact bytes and media type) under `tag`, a registry-side copy; its digest."""
        reply = self._put(f"manifests/{tag}", manifest.media_type, manifest.body)
        digest = reply.headers.get("Docker-Content-Digest", "").strip() or manifest.digest
        if digest != manifest.digest:
            raise self.fail(f"tag {tag}: registry stored digest {digest}, not {manifest.digest}")
        return digest

    def attach(self, subject: Manifest, artifact_type: str, annotations: Mapping[str, str]) -> str:
        """Store an OCI artifact whose `subject` is `subject` (the distribution spec's referrers): facts that travel
        beside an image without changing a byte of it or its digest. Returns the artifact's digest.

        A registry that does not index referrers itself (no `OCI-Subject` in its answer) gets the spec's
        fallback: the artifact listed in an index tagged `sha256-<hex of the subject>`.
        """
        empty = {**EMPTY, "size": len(EMPTY_BLOB)}
        self.put_blob(EMPTY_BLOB, empty["digest"])
        artifact = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": empty,
            "layers": [empty],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.body)},
            "annotations": dict(annotations),
        }
        body = json.dumps(artifact, separators=(",", ":"), sort_keys=True).encode()
        digest = _digest_of("sha256", body)
        reply = self._put(f"manifests/{digest}", OCI_MANIFEST, body)
        if reply.headers.get("OCI-Subject", "").strip() != subject.digest:
            entry = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "artifactType": artifact_type}
            self._list_referrer(subject, entry | {"annotations": dict(annotations)})
        return digest

    def _list_referrer(self, subject: Manifest, entry: dict[str, Any]) -> None:
        """Add `entry` to the referrers index tagged `<alg>-<hex>` (the spec's tag schema), keeping what is there."""
        tag = subject.digest.replace(":", "-", 1)
        found = self.manifest(tag)
        listed = found.json().get("manifests") if found is not None and found.is_index else None
        entries = [e for e in listed or [] if isinstance(e, dict) and e.get("digest") != entry["digest"]]
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*entries, entry]}
        self._put(f"manifests/{tag}", OCI_INDEX, json.dumps(index, separators=(",", ":")).encode())

    def authorize(self) -> None:
        """Learn how the registry authorizes an upload to this repository (its challenge; a bearer token to pull and
        push) from `GET /v2/`, the distribution API's version check, ahead of the upload: sessions that share this
        one's Handshake then send their first request authorized."""
        reply = self._send("GET", f"{self.endpoint}/v2/", {}, scope="pull,push")
        if reply.status != 200:
            raise self._status_error(reply)

    def open_uploads(self, count: int) -> None:
        """Start `count` blob uploads ahead, for the sessions that share this one's Handshake: each blob put_blob sends
        then goes up in one request, not two. A signed publish starts them while its image builds (edges/jobports.py,
        issue 18); over a network each saves a round trip to the registry per blob after the build."""
        with ThreadPoolExecutor(max_workers=count) as pool:
            self._handshake.uploads.extend(pool.map(lambda _: self._start_upload(), range(count)))

    def cancel_uploads(self) -> None:
        """End the uploads started ahead and left unused (a registry keeps an upload for days); best effort."""
        while True:
            try:
                url = self._handshake.uploads.popleft()
            except IndexError:
                return
            with contextlib.suppress(PublishError):
                self._send("DELETE", url, {}, scope="pull,push")

    def put_blob(self, body: Body, digest: str, *, check: bool = True) -> None:
        """A blob in one monolithic upload (bytes, or a file opened afresh per attempt), unless the repository has
        it already (a HEAD asks first; `check=False` skips it for bytes that are surely new). An upload started
        ahead is used when there is one; one the registry no longer knows is replaced by a new one."""
        base = f"{self.endpoint}/v2/{self.image.path}/blobs/"
        if check and self._send("HEAD", base + digest, {}, scope="pull,push").status == 200:
            return
        try:
            ahead: str | None = self._handshake.uploads.popleft()
        except IndexError:
            ahead = None
        done = self._end_upload(ahead or self._start_upload(), digest, body)
        if ahead and done.status in (400, 404):  # expired or unknown by now: BLOB_UPLOAD_UNKNOWN, or a bad state
            done = self._end_upload(self._start_upload(), digest, body)
        if done.status not in (201, 204):
            raise self._status_error(done)

    def _start_upload(self) -> str:
        """`POST .../blobs/uploads/`: where the blob's bytes are to go."""
        started = self._send(
            "POST",
            f"{self.endpoint}/v2/{self.image.path}/blobs/uploads/",
            {"Content-Length": "0"},
            b"",
            scope="pull,push",
        )
        location = started.headers.get("Location", "")
        if started.status != 202 or not location:
            raise self._status_error(started)
        return urljoin(started.url, location)

    def _end_upload(self, upload: str, digest: str, body: Body) -> _Reply:
        """`PUT <upload>?digest=`: the whole blob in the request that ends the upload."""
        upload += ("&" if urlsplit(upload).query else "?") + urlencode({"digest": digest})
        return self._send("PUT", upload, {"Content-Type": "application/octet-stream"}, body, scope="pull,push")

    def _put(self, path: str, media_type: str, body: bytes) -> _Reply:
        reply = self._send(
            "PUT", f"{self.endpoint}/v2/{self.image.path}/{path}", {"Content-Type": media_type}, body, scope="pull,push"
        )
        if reply.status not in (200, 201):
            raise self._status_error(reply)
        return reply

    # --- errors -----------------------------------------------------------------------------------

    def fail(self, what: str) -> PublishError:
        return PublishError(f"registry {self.image.registry}: {_one_line(what)} (image {self.image.name})")

    def _refused(self) -> PublishError:
        if self.auth.username:
            return self.fail(f"credentials of {self.auth.username!r} were refused (HTTP 401)")
        return self.fail("refused anonymous access (HTTP 401); docker login, or check the repository name")

    def _status_error(self, reply: _Reply) -> PublishError:
        detail = self._error_messages(reply)
        return self.fail(f"HTTP {reply.status} from {reply.what}{': ' + detail if detail else ''}")

    def _error_messages(self, reply: _Reply) -> str:
        """The registry's JSON `errors[].message`, trimmed and redacted; never any other part of a body."""
        try:
            parsed = jsonlimits.loads(reply.body[:65536], 65536)
        except ValueError:
            return ""
        errors = parsed.get("errors") if isinstance(parsed, dict) else None
        if not isinstance(errors, list):
            return ""
        messages = [str(e["message"]) for e in errors if isinstance(e, dict) and isinstance(e.get("message"), str)]
        return self.redact("; ".join(m.strip() for m in messages[:3]))[:300]

    def redact(self, text: str) -> str:
        """`text` on one line, without anything that could be a credential of this session (or a token it got)."""
        redactor = Redactor()
        redactor.add_login(self.auth.username, self.auth.password)
        for token in self._tokens.values():
            redactor.add_secret(token)
        return _one_line(redactor(text))

    def _json(self, reply: _Reply) -> dict[str, Any]:
        try:
            body = jsonlimits.loads(reply.body, self.max_body)
        except jsonlimits.JSONError as err:
            raise self.fail(f"{reply.url} returned invalid JSON ({err})") from None
        if not isinstance(body, dict):
            raise self.fail(f"{reply.url} returned invalid JSON (expected an object)")
        return body

    # --- one logical request: retries, redirects, authorization -------------------------------------

    def _remaining(self) -> float:
        return self.deadline - (self._clock() - self._started)

    def _gave_up(self, attempts: int) -> PublishError:
        elapsed = self._clock() - self._started
        return self.fail(
            f"gave up after {attempts} attempt(s) in {elapsed:.1f} s (deadline {self.deadline:g} s); last: {self._last}"
        )

    def _backoff(self, attempt: int) -> float:
        delay = min(RETRY_CAP, self.retry_base * 2 ** (attempt - 1))
        return delay * (0.5 + 0.5 * self._jitter())

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], data: Body = None, *, scope: str = "pull"
    ) -> _Reply:
        attempts = 0
        while True:
            attempts += 1
            try:
                return self._attempt(method, url, headers, data, scope)
            except _Transient as err:
                self._last = err.what
                asked = err.retry_after
                wait = self._backoff(attempts) if asked is None else min(asked, RETRY_AFTER_CAP)
                if wait >= self._remaining():
                    raise self._gave_up(attempts) from None
                self._sleep(wait)

    def _attempt(self, method: str, url: str, headers: Mapping[str, str], data: Body, scope: str) -> _Reply:
        negotiated = False
        hops = 0
        while True:
            home = _origin(url) == self._origin
            authorization = self._authorization(scope) if home else ""
            sent = {**headers, **({"Authorization": authorization} if authorization else {})}
            reply = self._exchange(method, url, sent, data)
            location = reply.headers.get("Location")
            if reply.status in (301, 302, 303, 307, 308) and location:
                hops += 1
                if method not in ("GET", "HEAD") or hops > MAX_REDIRECTS:
                    raise self.fail(f"{reply.what} redirected (HTTP {reply.status}); not followed")
                url = urljoin(url, location)
                continue
            if reply.status == 401 and home and not negotiated:
                negotiated = True
                self._handshake.challenge = reply.headers.get("WWW-Authenticate", "")
                self._tokens.pop(scope, None)
                if not self._authorization(scope):
                    raise self._refused()
                continue
            if reply.status == 401:
                if not home:
                    raise self.fail(f"{urlsplit(url).netloc} asked for credentials (HTTP 401); they are not sent there")
                raise self._refused()
            if reply.status in _RETRY_STATUSES or reply.status >= 500:
                retry_after = parse_retry_after(reply.headers.get("Retry-After", ""))
                raise _Transient(f"HTTP {reply.status} from {reply.what}", retry_after)
            return reply

    def _authorization(self, scope: str) -> str:
        """The Authorization for the registry's origin, from the last challenge; "" before any."""
        if not self._handshake.challenge:
            return ""
        scheme, params = parse_challenge(self._handshake.challenge)
        if scheme == "basic":
            if not self.auth.username:
                return ""
            pair = f"{self.auth.username}:{self.auth.password}".encode()
            return f"Basic {base64.b64encode(pair).decode()}"
        if scheme == "bearer" and params.get("realm"):
            if scope not in self._tokens:
                self._tokens[scope] = self._token(params, scope)
            return f"Bearer {self._tokens[scope]}"
        return ""

    def _token(self, params: dict[str, str], actions: str) -> str:
        """The distribution token flow: GET realm?service=&scope=repository:<repo>:<actions>, basic auth if any."""
        realm = params["realm"]
        parts = urlsplit(realm)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname or "")):
            raise self.fail(f"token realm {realm} is neither https nor loopback; refused to send credentials there")
        query = {"scope": f"repository:{self.image.path}:{actions}"}
        if params.get("service"):
            query["service"] = params["service"]
        url = f"{realm}{'&' if parts.query else '?'}{urlencode(query)}"
        headers = {}
        if self.auth.username:
            pair = f"{self.auth.username}:{self.auth.password}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        reply = self._exchange("GET", url, headers, None, limit=MAX_TOKEN_BODY)
        if reply.status in (401, 403):
            raise self._refused()
        if reply.status in _RETRY_STATUSES or reply.status >= 500:
            retry_after = parse_retry_after(reply.headers.get("Retry-After", ""))
            raise _Transient(f"HTTP {reply.status} from token server {parts.netloc}", retry_after)
        if reply.status != 200:
            raise self.fail(f"token server {realm} answered HTTP {reply.status}")
        body = self._json(reply)
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise self.fail(f"token server {realm} returned no token")
        return token

    def _exchange(
        self, method: str, url: str, headers: Mapping[str, str], data: Body, limit: int | None = None
    ) -> _Reply:
        """One HTTP request and its whole body, within the deadline; transport trouble is _Transient.

        A callable `data` opens the body afresh for each attempt (a file, streamed: a retry sends it whole again)."""
        remaining = self._remaining()
        if remaining <= 0:
            raise _Transient(self._last or f"deadline reached before {method} {urlsplit(url).path}")
        timeout = (min(self.connect_timeout, remaining), min(self.timeout, remaining))
        what = f"{method} {urlsplit(url).path}"
        opened = data() if callable(data) else contextlib.nullcontext(data)
        try:
            with opened as body:
                response = self.http.request(
                    method,
                    url,
                    headers=dict(headers),
                    data=body,
                    timeout=timeout,
                    stream=True,
                    allow_redirects=False,
                    auth=_no_netrc,
                )
        except requests.Timeout:
            raise _Transient(f"{what} did not answer within {timeout[1]:.3g} s") from None
        except requests.ConnectionError as err:
            reason = _reason(err)
            if "refused" in reason.lower():
                raise self.fail(f"cannot reach {url}: {reason}") from None
            raise _Transient(f"connection dropped during {what} ({reason})") from None
        except requests.RequestException as err:
            raise self.fail(f"cannot reach {url}: {_reason(err)}") from None
        with response:
            body = self._read(response, what, self.max_body if limit is None else limit)
        return _Reply(method, url, response.status_code, response.headers, body)

    def _read(self, response: requests.Response, what: str, limit: int) -> bytes:
        """The body, streamed: refused past `limit` bytes, abandoned at the deadline however slowly it comes."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self.fail(f"answer to {what} is {int(declared)} bytes, over the {limit} byte limit")
        chunks: list[bytes] = []
        size = 0
        sock = _socket_of(response)
        while True:
            remaining = self._remaining()
            if remaining <= 0:
                raise _Transient(f"the answer to {what} was still arriving at the deadline ({size} bytes so far)")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(max(0.01, min(self.timeout, remaining)))
            try:
                chunk = response.raw.read1(65536, decode_content=True)
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as err:
                if self._remaining() <= 0:
                    raise _Transient(
                        f"the answer to {what} was still arriving at the deadline ({size} bytes so far)"
                    ) from None
                raise _Transient(f"connection dropped while reading the answer to {what} ({_reason(err)})") from None
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise self.fail(f"answer to {what} is over the {limit} byte limit; not read further")
            chunks.append(chunk)


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The connection's socket (urllib3 2 through http.client), to bound each read by the deadline."""
    fp = getattr(getattr(response.raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _one_line(text: str) -> str:
    return _CONTROL_RE.sub(" ", text).strip()


def list_tags(
    image: str,
    auth: RegistryAuth | None = None,
    timeout: float = READ_TIMEOUT,
    page_size: int = PAGE_SIZE,
    *,
    deadline: float = DEFAULT_DEADLINE,
) -> list[str]:
    """All tags of `image` (an ImageRepository spec.image), following `Link: rel="next"` pages.

    `auth=None` lists anonymously; pass `credentials.credentials_for(registry)` to use the Docker config.
    Tags come back in the registry's order (distribution 2.x does not sort them).
    """
    with RegistrySession(parse_image(image), auth, timeout=timeout, page_size=page_size, deadline=deadline) as session:
        return session.tags()
