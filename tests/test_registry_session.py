"""RegistrySession against real docker-registry processes, through the fault proxy.

Retries and the deadline, credentials that stay with the registry (Link pages, redirects, token realms),
errors that never quote a credential, and the bounds on pages, body size and slow bodies; then the
public operations (manifest, config_labels, put_manifest, tags) on the htpasswd and open registries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterator

import pytest
import requests
from support.faultproxy import FaultProxy, fault_proxy
from support.registry import Registry, push_tags

from image_tagger.edges.jobports import registry_opener
from image_tagger.edges.registry.session import (
    MANIFEST_MEDIA_TYPES,
    MAX_BODY,
    Manifest,
    RegistrySession,
    list_tags,
    parse_retry_after,
)
from image_tagger.model.errors import PublishError
from image_tagger.model.imagename import parse_image
from image_tagger.model.registry import RegistryAuth
from image_tagger.rules import signatures

REPOSITORY = "session/app"
TAGS = ["1.0.0", "1.1.0", "latest"]
LABELS = {"org.opencontainers.image.revision": "3f2c1a9e", "org.opencontainers.image.version": "1.1.0"}
DOCKER_MANIFEST, OCI_MANIFEST, _, OCI_INDEX = MANIFEST_MEDIA_TYPES


@pytest.fixture(scope="module")
def seeded(registry: Registry, open_registry: Registry) -> None:
    registry.seed(REPOSITORY, TAGS)
    open_registry.seed(REPOSITORY, TAGS)


@pytest.fixture
def proxy(registry: Registry, seeded: None) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as p:
        yield p


@pytest.fixture
def open_proxy(open_registry: Registry, seeded: None) -> Iterator[FaultProxy]:
    with fault_proxy(open_registry.host) as p:
        yield p


def account(registry: Registry) -> RegistryAuth:
    return RegistryAuth(registry.username, registry.password)


def session(proxy: FaultProxy, auth: RegistryAuth | None = None, **kw) -> RegistrySession:
    return RegistrySession(parse_image(f"{proxy.host}/{REPOSITORY}"), auth, **kw)


def one_line(error: pytest.ExceptionInfo[PublishError], *parts: str) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, text
    return text


# --- retries and the deadline -------------------------------------------------------------------------


def test_survives_a_503_and_a_429_with_retry_after(registry: Registry, proxy: FaultProxy) -> None:
    proxy.status(r"/tags/list", 503, after=1)  # after the anonymous 401
    proxy.status(r"/tags/list", 429, headers={"Retry-After": "1"}, after=1)
    started = time.monotonic()

    tags = session(proxy, account(registry)).tags()

    assert sorted(tags) == TAGS
    assert 1.0 <= time.monotonic() - started < 5  # the Retry-After second was waited
    assert len(proxy.requests(r"/tags/list")) == 4  # 401, 503, 429, 200


def test_survives_a_dropped_connection_and_a_stall(registry: Registry, proxy: FaultProxy) -> None:
    proxy.drop(r"/tags/list", after=1)
    proxy.stall(r"/tags/list", 3, after=1)
    assert sorted(session(proxy, account(registry), timeout=1).tags()) == TAGS


def test_retry_after_and_backoff_with_an_injected_clock(registry: Registry, proxy: FaultProxy) -> None:
    """Retry-After is honoured up to its cap; otherwise the waits grow exponentially (with jitter)."""
    waits: list[float] = []
    proxy.status(r"/tags/list", 429, headers={"Retry-After": "7"}, after=1)
    proxy.status(r"/tags/list", 429, headers={"Retry-After": "3600"}, after=1)
    proxy.status(r"/tags/list", 502, times=3, after=1)
    s = session(proxy, account(registry), sleep=waits.append, jitter=lambda: 1.0, retry_base=0.5)
    assert sorted(s.tags()) == TAGS
    assert waits == [7.0, 30.0, 2.0, 4.0, 8.0]  # attempts 3, 4, 5 of one request


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("soon") is None


def test_persistent_503_fails_at_the_deadline(registry: Registry, proxy: FaultProxy) -> None:
    proxy.status(r"/tags/list", 503, times=-1)
    started = time.monotonic()

    with pytest.raises(PublishError) as error:
        session(proxy, account(registry), deadline=2).tags()

    elapsed = time.monotonic() - started
    assert elapsed < 3, elapsed
    one_line(error, f"registry {proxy.host}", f"{proxy.host}/{REPOSITORY}", "gave up", "deadline 2 s", "HTTP 503")


def test_slow_body_fails_at_the_deadline(registry: Registry, proxy: FaultProxy) -> None:
    """One byte every 5 s: the session gives up at its deadline, not when the body ends (never)."""
    proxy.slow_body(r"/tags/list", seconds=5, after=1)
    started = time.monotonic()

    with pytest.raises(PublishError) as error:
        session(proxy, account(registry), deadline=3).tags()

    elapsed = time.monotonic() - started
    assert 2.5 < elapsed < 4, elapsed
    one_line(error, "gave up", "deadline 3 s", "still arriving at the deadline")


def test_stalled_registry_fails_at_the_deadline(registry: Registry, proxy: FaultProxy) -> None:
    proxy.stall(r"/tags/list", 30, times=-1)
    started = time.monotonic()
    with pytest.raises(PublishError) as error:
        list_tags(f"{proxy.host}/{REPOSITORY}", account(registry), deadline=2)
    assert time.monotonic() - started < 3
    one_line(error, "gave up", "did not answer")


# --- credentials stay home ------------------------------------------------------------------------------


def test_link_to_another_host_gets_no_credentials(registry: Registry, proxy: FaultProxy) -> None:
    proxy.link_elsewhere(r"/tags/list", after=1)

    tags = list_tags(f"{proxy.host}/{REPOSITORY}", account(registry))

    assert sorted(tags) == sorted([*TAGS, "from-elsewhere"])
    [page] = proxy.elsewhere.seen
    assert page.header("Authorization") is None, page.headers
    assert page.path.endswith("tags/list?n=1000&last=zzz")
    assert (
        proxy.requests(r"/tags/list")[-1]
        .header(
            "Authorization",
        )
        .startswith("Basic ")
    )


def test_redirected_blob_download_goes_without_credentials(registry: Registry, proxy: FaultProxy) -> None:
    """Registries send blob downloads to storage hosts; the credentials stay with the registry."""
    manifest = push_labelled(registry, "redirected")
    proxy.redirect_elsewhere(r"/blobs/sha256:")

    with session(proxy, account(registry)) as s:
        assert s.config_labels(manifest) == LABELS

    [download] = proxy.elsewhere.seen
    assert download.path.startswith("/storage/v2/") and download.header("Authorization") is None
    assert proxy.requests(r"/blobs/")[-1].header("Authorization").startswith("Basic ")


@pytest.mark.parametrize("realm", ["http://auth.example.com/token", "http://10.0.0.1/token", "ftp://127.0.0.1/t"])
def test_bearer_realm_must_be_https_or_loopback(registry: Registry, proxy: FaultProxy, realm: str) -> None:
    challenge = f'Bearer realm="{realm}",service="registry"'
    proxy.status(r"/tags/list", 401, headers={"WWW-Authenticate": challenge}, times=-1)

    with pytest.raises(PublishError) as error:
        session(proxy, account(registry)).tags()

    one_line(error, f"token realm {realm} is neither https nor loopback", "refused to send credentials")
    assert [s.header("Authorization") for s in proxy.seen] == [None]


@pytest.mark.parametrize("status", [400, 403, 500])
def test_echoed_credentials_never_reach_the_error(registry: Registry, proxy: FaultProxy, status: int) -> None:
    proxy.echo_authorization(r"/tags/list", status=status, times=-1, after=1)
    pair = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()

    with pytest.raises(PublishError) as error:
        session(proxy, account(registry), deadline=1.5).tags()

    text = one_line(error, f"HTTP {status}")
    assert registry.password not in text and pair not in text, text
    assert proxy.requests(r"/tags/list")[-1].header("Authorization") == f"Basic {pair}"  # it was echoed
    if status != 500:  # a final 4xx quotes the registry's message, redacted; a retried 5xx only its status
        assert "header Basic [redacted] not accepted" in text, text


def test_redaction_of_tokens_and_lookalikes(registry: Registry) -> None:
    s = RegistrySession(parse_image(f"{registry.host}/{REPOSITORY}"), account(registry))
    s._tokens["pull"] = "eyJhbGciOi.secret-token.sig"
    pair = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    text = s.redact(f"a {registry.password} b {pair} c eyJhbGciOi.secret-token.sig d Bearer abcdef123\nnext line")
    assert text == "a [redacted] b [redacted] c [redacted] d Bearer [redacted] next line"


# --- bounded work ----------------------------------------------------------------------------------------


def test_endless_pagination_stops_at_the_page_limit(open_proxy: FaultProxy) -> None:
    open_proxy.endless_pages()
    started = time.monotonic()

    with pytest.raises(PublishError) as error:
        session(open_proxy).tags()

    one_line(error, "past 200 pages", "page limit")
    assert len(open_proxy.requests(r"/tags/list")) == 200
    assert time.monotonic() - started < 10


def test_custom_page_limit(open_proxy: FaultProxy) -> None:
    open_proxy.endless_pages()
    with pytest.raises(PublishError, match="past 7 pages"):
        session(open_proxy, max_pages=7).tags()


def test_oversized_body_is_refused(open_proxy: FaultProxy) -> None:
    open_proxy.big_body(r"/tags/list", size=MAX_BODY + 1)
    with pytest.raises(PublishError) as error:
        session(open_proxy).tags()
    one_line(error, f"over the {MAX_BODY} byte limit")


def test_endless_chunked_body_stops_at_the_limit(open_proxy: FaultProxy) -> None:
    """No Content-Length to refuse up front: reading stops once the limit is passed."""
    open_proxy.endless_body(r"/manifests/")
    started = time.monotonic()
    with pytest.raises(PublishError) as error:
        session(open_proxy).manifest("1.0.0")
    one_line(error, f"over the {MAX_BODY} byte limit", "not read further")
    assert time.monotonic() - started < 10


# --- the public operations on real registries ------------------------------------------------------------


def push_blob(registry: Registry, http: requests.Session, data: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    started = http.post(f"http://{registry.host}/v2/{REPOSITORY}/blobs/uploads/", timeout=10)
    started.raise_for_status()
    upload = requests.compat.urljoin(started.url, started.headers["Location"])
    http.put(upload, params={"digest": digest}, data=data, timeout=10).raise_for_status()
    return digest


def put(registry: Registry, http: requests.Session, tag: str, media_type: str, document: dict) -> Manifest:
    body = json.dumps(document, indent=1).encode()  # deliberately not canonical: bytes must survive as-is
    url = f"http://{registry.host}/v2/{REPOSITORY}/manifests/{tag}"
    http.put(url, data=body, headers={"Content-Type": media_type}, timeout=10).raise_for_status()
    return Manifest(f"sha256:{hashlib.sha256(body).hexdigest()}", media_type, body)


def push_labelled(registry: Registry, tag: str, media_type: str = DOCKER_MANIFEST) -> Manifest:
    http = requests.Session()
    http.auth = registry.auth
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": LABELS}}).encode()
    config_type = (
        "application/vnd.oci.image.config.v1+json"
        if media_type == OCI_MANIFEST
        else ("application/vnd.docker.container.image.v1+json")
    )
    digest = push_blob(registry, http, config)
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": len(config), "digest": digest},
        "layers": [],
    }
    return put(registry, http, tag, media_type, document)


def test_manifest_labels_and_registry_side_copy(registry: Registry) -> None:
    pushed = push_labelled(registry, "2.0.0")
    with RegistrySession(parse_image(f"{registry.host}/{REPOSITORY}"), account(registry)) as s:
        manifest = s.manifest("2.0.0")
        assert manifest == pushed
        assert manifest.digest == registry.manifest_digest(REPOSITORY, "2.0.0")
        assert manifest.json()["config"]["digest"].startswith("sha256:")
        assert s.manifest(manifest.digest) == pushed
        assert s.manifest("no-such-tag") is None
        assert s.config_labels(manifest) == LABELS

        assert s.put_manifest("2.0.0-copy", manifest) == manifest.digest
        assert registry.manifest_digest(REPOSITORY, "2.0.0-copy") == manifest.digest
        assert "2.0.0-copy" in s.tags()


def test_index_labels_come_from_its_linux_image(registry: Registry) -> None:
    image = push_labelled(registry, "oci-image", OCI_MANIFEST)
    http = requests.Session()
    http.auth = registry.auth
    attestation = {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.body)}
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {**attestation, "platform": {"os": "unknown", "architecture": "unknown"}},
            {**attestation, "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    pushed = put(registry, http, "3.0.0", OCI_INDEX, index)
    with RegistrySession(parse_image(f"{registry.host}/{REPOSITORY}"), account(registry)) as s:
        manifest = s.manifest("3.0.0")
        assert manifest == pushed and manifest.is_index
        assert s.config_labels(manifest) == LABELS
        assert s.put_manifest("3.0.0-copy", manifest) == pushed.digest
    assert registry.manifest_digest(REPOSITORY, "3.0.0-copy") == pushed.digest


def test_open_registry_copy_anonymously(open_registry: Registry, seeded: None) -> None:
    with RegistrySession(parse_image(f"{open_registry.host}/{REPOSITORY}")) as s:
        manifest = s.manifest("1.0.0")
        assert s.put_manifest("1.0.0-promoted", manifest) == manifest.digest
        assert s.config_labels(manifest) == {}
    assert "1.0.0-promoted" in open_registry.tags(REPOSITORY)


def test_tampered_manifest_is_refused(registry: Registry, proxy: FaultProxy) -> None:
    """A Docker-Content-Digest that is not the sha256 of the bytes is an error, not a digest to trust."""
    wrong = "sha256:" + "0" * 64
    proxy.status(r"/manifests/1.0.0", 200, headers={"Docker-Content-Digest": wrong}, times=-1)
    with pytest.raises(PublishError) as error:
        session(proxy, account(registry)).manifest("1.0.0")
    one_line(error, f"do not match digest {wrong}")


def test_wrong_password_for_a_manifest(registry: Registry) -> None:
    wrong = RegistryAuth(registry.username, "wrong")
    with (
        RegistrySession(parse_image(f"{registry.host}/{REPOSITORY}"), wrong) as s,
        pytest.raises(PublishError, match="credentials of 'ci-bot' were refused"),
    ):
        s.manifest("1.0.0")


def test_seed_helper_still_matches(registry: Registry) -> None:
    http = requests.Session()
    http.auth = registry.auth
    push_tags(registry.host, REPOSITORY, ["seeded-again"], http)
    assert "seeded-again" in list_tags(f"{registry.host}/{REPOSITORY}", account(registry))


# --- the requests of a signed upload ------------------------------------------------------------------


def asked(proxy: FaultProxy) -> list[tuple[str, str, bool]]:
    """Each request the proxy saw: method, path (an upload's id left out), and whether it carried Authorization."""
    return [
        (s.method, re.sub(r"/uploads/[^?]+.*", "/uploads/…", s.path), s.header("Authorization") is not None)
        for s in proxy.seen
    ]


def test_the_job_s_sessions_share_the_registry_s_handshake(registry: Registry, proxy: FaultProxy) -> None:
    """Each session has its own deadline, but only the first learns how the registry authorizes (its 401, here from
    `authorize`, ahead of an upload): the job's other sessions with that repository and account send their first
    request authorized. Another account has a handshake of its own."""
    opener = registry_opener()
    image = parse_image(f"{proxy.host}/{REPOSITORY}")
    with opener(image, account(registry)) as first:
        first.authorize()
    with opener(image, account(registry)) as second:
        assert second.manifest("1.0.0") is not None
    assert asked(proxy) == [
        ("GET", "/v2/", False),
        ("GET", "/v2/", True),
        ("GET", f"/v2/{REPOSITORY}/manifests/1.0.0", True),
    ]
    proxy.seen.clear()
    with pytest.raises(PublishError), opener(image, RegistryAuth(registry.username, "wrong")) as other:
        other.manifest("1.0.0")
    assert asked(proxy)[0] == ("GET", f"/v2/{REPOSITORY}/manifests/1.0.0", False)


def test_a_first_signature_takes_two_round_trips_and_a_later_one_keeps_those_there(
    registry: Registry, proxy: FaultProxy
) -> None:
    """`put_signature` reads the signatures there while its payload and the config of a lone signature go up (new
    bytes: no HEAD), then writes the signature image last. A second signature adds the config that lists both before
    that; one that `unless` finds there already writes no manifest."""
    image = parse_image(f"{proxy.host}/signatures/app")
    subject = "sha256:" + hashlib.sha256(b"the image").hexdigest()
    first, second = (signatures.SignatureLayer(f'{{"n":{n}}}'.encode(), f"c2lnbmF0dXJl{n}") for n in (1, 2))
    opener = registry_opener()
    signature_image = f"/v2/signatures/app/manifests/{signatures.signature_tag(subject)}"
    blob = [("POST", "/v2/signatures/app/blobs/uploads/", True), ("PUT", "/v2/signatures/app/blobs/uploads/…", True)]
    with opener(image, account(registry)) as session:
        session.authorize()
        proxy.seen.clear()
        assert session.put_signature(subject, first) is not None
        *together, last = asked(proxy)
        assert sorted(together) == sorted([("GET", signature_image, True), *blob * 2])
        assert last == ("PUT", signature_image, True)
        proxy.seen.clear()
        session.put_signature(subject, second)
        puts = [request for request in asked(proxy) if request[0] == "PUT"]
        assert puts == [blob[1]] * 3 + [("PUT", signature_image, True)]  # payload, a lone config, then both's
        proxy.seen.clear()
        assert session.put_signature(subject, first, unless=lambda there: first in there) is None
        assert ("PUT", signature_image, True) not in asked(proxy)
    with opener(image, account(registry)) as session:
        assert session.signature_layers(subject) == [first, second]


def test_blobs_go_up_in_one_request_each_through_uploads_started_ahead(registry: Registry, proxy: FaultProxy) -> None:
    """`open_uploads` starts uploads for the sessions sharing its handshake: each blob then takes one PUT, not a POST
    and a PUT; one the registry no longer knows is replaced by a fresh upload; those left over are ended."""
    opener = registry_opener()
    image = parse_image(f"{proxy.host}/ahead/app")
    blobs = [f"blob {n}".encode() for n in range(4)]
    with opener(image, account(registry)) as opening:
        opening.authorize()
        opening.open_uploads(3)
    proxy.seen.clear()
    with opener(image, account(registry)) as first, opener(image, account(registry)) as second:
        first.put_blob(blobs[0], signatures.digest_of(blobs[0]), check=False)
        second.put_blob(blobs[1], signatures.digest_of(blobs[1]), check=False)
    assert asked(proxy) == [("PUT", "/v2/ahead/app/blobs/uploads/…", True)] * 2
    with opener(image, account(registry)) as session:
        [stale] = list(session._handshake.uploads)  # noqa: SLF001 - the one left, ended behind the session's back
        assert requests.delete(stale, auth=registry.auth, timeout=10).status_code == 204
        proxy.seen.clear()
        session.put_blob(blobs[2], signatures.digest_of(blobs[2]), check=False)
    assert asked(proxy) == [
        ("PUT", "/v2/ahead/app/blobs/uploads/…", True),  # 404: the registry no longer knows it
        ("POST", "/v2/ahead/app/blobs/uploads/", True),
        ("PUT", "/v2/ahead/app/blobs/uploads/…", True),
    ]
    with opener(image, account(registry)) as opening:
        opening.open_uploads(2)
    proxy.seen.clear()
    with opener(image, account(registry)) as session:
        session.put_blob(blobs[3], signatures.digest_of(blobs[3]), check=False)
        session.cancel_uploads()
        session.cancel_uploads()  # nothing left: nothing asked
    assert asked(proxy) == [
        ("PUT", "/v2/ahead/app/blobs/uploads/…", True),
        ("DELETE", "/v2/ahead/app/blobs/uploads/…", True),
    ]
    for blob in blobs:
        url = f"http://{registry.host}/v2/ahead/app/blobs/{signatures.digest_of(blob)}"
        assert requests.get(url, auth=registry.auth, timeout=10).content == blob
