"""Reconcile seconds after a push: the signed notification to a Flux generic-hmac Receiver, and flux/receiver-hmac.

The notification goes to a local endpoint on 127.0.0.1 that checks the signature exactly as notification-controller
does (support/receiver.py); the component is rendered as a consumer renders it and validated against the vendored
Flux Receiver CRD.
"""

import hashlib
import hmac
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from support.crds import crd_schemas, validate_against_crd
from support.receiver import closed_port_url, serve_receiver, signature_valid, webhook_path
from test_kustomize_render import (
    REPO,
    TAG,
    copy_consumer,
    kustomize_build,
    load_yaml,
    only,
)

from image_tagger.edges.kustomize import publish_flux_base
from image_tagger.edges.notify import (
    ATTEMPTS,
    BACKOFF,
    TIMEOUT,
    announce_all,
    notify,
    receiver_payload,
    signature,
    signed_request,
    worst_case,
)
from image_tagger.model.errors import InputError
from image_tagger.model.imagename import parse_image
from image_tagger.model.plan import TagPlan
from image_tagger.model.receivers import Notification, Receiver
from image_tagger.model.result import PublishResult
from image_tagger.rules.receivers import MAX_RECEIVERS, parse_receiver_url, parse_receivers
from image_tagger.rules.report import json_fields, summary_text

TOKEN = "tok-9f8e7d6c5b4a39281706"  # distinctive, so a leak into any text is found
DIGEST = "sha256:" + "ab" * 32
PAYLOAD = {
    "image": "docker.io/acme/app",
    "tags": ["docker.io/acme/app:1.4.2", "docker.io/acme/app:1.4", "docker.io/acme/app:1"],
    "digest": DIGEST,
}


class Sleeps(list[float]):
    """A `sleep` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def origin_of(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.partition('/')[0]}"


# --- signing (pure) ---------------------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_the_body_keyed_with_the_token() -> None:
    # RFC 4231 test case 2: an HMAC-SHA256 computed by someone else.
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert signature("Jefe", b"what do ya want for nothing?") == f"sha256={expected}"


def test_signed_request_signs_exactly_the_bytes_it_sends() -> None:
    body, headers = signed_request("https://flux.example.com/hook/abc", TOKEN, PAYLOAD)
    assert json.loads(body) == PAYLOAD
    assert body == json.dumps(PAYLOAD, separators=(",", ":"), sort_keys=True).encode()
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Signature"] == "sha256=" + hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
    assert signature_valid(headers["X-Signature"], body, TOKEN)
    assert not signature_valid(headers["X-Signature"], body + b" ", TOKEN)
    assert not signature_valid(headers["X-Signature"], body, TOKEN + "x")
    # Pure: the same input gives the same bytes and headers.
    assert signed_request("https://flux.example.com/hook/abc", TOKEN, dict(reversed(PAYLOAD.items()))) == (
        body,
        headers,
    )


def test_signed_request_refuses_a_bad_url_or_an_empty_secret() -> None:
    with pytest.raises(InputError, match="http:// or https://"):
        signed_request("ftp://flux.example.com/hook/abc", TOKEN, PAYLOAD)
    with pytest.raises(InputError, match="flux-receiver-secret is empty"):
        signed_request("https://flux.example.com/hook/abc", "", PAYLOAD)


def test_the_test_receiver_checks_as_go_github_does() -> None:
    body = b'{"a":1}'
    mac = hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
    assert signature_valid(f"sha256={mac}", body, TOKEN)
    assert signature_valid(f"sha256={mac.upper()}", body, TOKEN)  # hex.DecodeString takes either case
    assert signature_valid("sha1=" + hmac.new(TOKEN.encode(), body, hashlib.sha1).hexdigest(), body, TOKEN)
    assert signature_valid("sha512=" + hmac.new(TOKEN.encode(), body, hashlib.sha512).hexdigest(), body, TOKEN)
    for wrong in (None, "", mac, f"SHA256={mac}", f"sha256={mac[:-1]}", f"sha256= {mac}", f"md5={mac}", "sha256="):
        assert not signature_valid(wrong, body, TOKEN), wrong


def test_webhook_path_is_flux_s_digest_of_token_name_and_namespace() -> None:
    digest = hashlib.sha256(b"tok" + b"app-image-tagger" + b"flux-system").hexdigest()
    assert webhook_path("tok", "app-image-tagger", "flux-system") == f"/hook/{digest}"


# --- the URL and the input pair -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://flux.example.com/hook/0a1b",
        "http://127.0.0.1:9292/hook/0a1b",
        "HTTPS://flux.example.com:8443/prefix/hook/0a1b",
        "  https://flux.example.com/hook/0a1b\n",
    ],
)
def test_receiver_url_accepted(url: str) -> None:
    assert parse_receiver_url(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("flux.example.com/hook/0a1b", "http:// or https://"),
        ("ftp://flux.example.com/hook/0a1b", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("https://bot:hunter2@flux.example.com/hook/0a1b", "credentials"),
        ("https://bot@flux.example.com/hook/0a1b", "credentials"),
        ("https:///hook/0a1b", "no host"),
        ("https://flux.example.com:99999/hook/0a1b", "not a URL"),
        ("https://flux.example.com:port/hook/0a1b", "not a URL"),
        ("https://flux.example.com/hook/0a1b?x=1", "query or fragment"),
        ("https://flux.example.com/hook/0a1b?", "query or fragment"),
        ("https://flux.example.com/hook/0a1b#top", "query or fragment"),
        ("https://flux.example.com/hook/0a 1b", "whitespace"),
        ("https://flux.example.com/hook/0a1b\r\nX-Evil: 1", "whitespace"),
    ],
)
def test_receiver_url_refused_without_echoing_it(url: str, reason: str) -> None:
    with pytest.raises(InputError, match=re.escape(reason)) as refused:
        parse_receiver_url(url)
    assert "flux-receiver-url" in str(refused.value)
    assert "hunter2" not in str(refused.value) and "bot@" not in str(refused.value)


def test_receiver_inputs_go_together() -> None:
    assert parse_receivers("", "") == ()
    assert parse_receivers("  \n\n", "") == ()
    receivers = parse_receivers("https://flux.example.com/hook/0a1b", TOKEN)
    assert receivers == (Receiver("https://flux.example.com/hook/0a1b", TOKEN),)
    assert TOKEN not in repr(receivers)
    with pytest.raises(InputError, match="flux-receiver-secret is empty"):
        parse_receivers("https://flux.example.com/hook/0a1b", "")
    with pytest.raises(InputError, match="flux-receiver-url is empty"):
        parse_receivers("", TOKEN)
    with pytest.raises(InputError, match="credentials") as refused:
        parse_receivers(f"https://x:{TOKEN}@flux.example.com/hook/0a1b", TOKEN)
    assert TOKEN not in str(refused.value)


PROD, STAGING = "https://flux.prod.example.com/hook/0a1b", "https://flux.staging.example.com:8443/hook/2c3d"


def test_several_receivers_one_per_line_each_with_its_own_token() -> None:
    """Production and staging, each its own notification-controller: URLs and tokens pair up by line."""
    assert parse_receivers(f"\n{PROD}\n\n  {STAGING}  \n", f"{TOKEN}\n\n{TOKEN[::-1]}\r\n") == (
        Receiver(PROD, TOKEN),
        Receiver(STAGING, TOKEN[::-1]),
    )


def test_one_token_signs_for_every_receiver() -> None:
    assert parse_receivers(f"{PROD}\n{STAGING}", f"{TOKEN}\n") == (Receiver(PROD, TOKEN), Receiver(STAGING, TOKEN))


@pytest.mark.parametrize(
    ("urls", "tokens", "counts"),
    [
        (f"{PROD}\n{STAGING}", "tok-a\ntok-b\ntok-c", "3 tokens for 2 URLs"),
        (f"{PROD}\n{STAGING}\nhttps://flux.dev.example.com/hook/4e5f", "tok-a\ntok-b", "2 tokens for 3 URLs"),
        (PROD, "tok-a\ntok-b", "2 tokens for 1 URLs"),
    ],
)
def test_tokens_that_do_not_pair_up_with_the_urls_are_refused(urls: str, tokens: str, counts: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_receivers(urls, tokens)
    message = str(refused.value)
    assert message.startswith(f"flux-receiver-secret has {counts} of flux-receiver-url; accepted: one token for every")
    assert "\n" not in message
    for secret in ("tok-a", "tok-b", "tok-c", "flux.prod", "/hook/"):
        assert secret not in message


def test_a_bad_line_is_refused_by_its_number_without_echoing_it() -> None:
    with pytest.raises(InputError, match="^flux-receiver-url line 3 must not carry credentials") as refused:
        parse_receivers(f"{PROD}\n\nhttps://bot:hunter2@flux.staging.example.com/hook/2c3d", TOKEN)
    assert "hunter2" not in str(refused.value) and "flux.staging" not in str(refused.value)
    with pytest.raises(InputError, match="^flux-receiver-url line 2 must not have a query"):
        parse_receivers(f"{PROD}\n{STAGING}?x=1", TOKEN)


def test_one_receiver_twice_or_too_many_are_refused() -> None:
    with pytest.raises(InputError, match="names one Receiver twice"):
        parse_receivers(f"{PROD}\n{STAGING}\n {PROD}", TOKEN)
    many = "\n".join(f"https://flux{n}.example.com/hook/0a1b" for n in range(MAX_RECEIVERS + 1))
    with pytest.raises(InputError, match=f"has {MAX_RECEIVERS + 1} URLs; accepted: 1 to {MAX_RECEIVERS}"):
        parse_receivers(many, TOKEN)
    assert len(parse_receivers(many.rpartition("\n")[0], TOKEN)) == MAX_RECEIVERS


def test_payload_names_the_repository_the_tags_in_the_registry_and_the_digest() -> None:
    plan = TagPlan("release", "1.4.2", parse_image("acme/app"), True, ("1.4", "1"))
    result = PublishResult(plan, "sha256:config", DIGEST, {"1.4.2": "pushed", "1.4": "pushed", "1": "failed"})
    assert receiver_payload(result) == {
        "image": "docker.io/acme/app",
        "tags": ["docker.io/acme/app:1.4.2", "docker.io/acme/app:1.4"],
        "digest": DIGEST,
    }


# --- delivery to a signature-checking endpoint ----------------------------------------------------------------------


def test_a_correct_signature_is_accepted_on_the_first_attempt() -> None:
    with serve_receiver(TOKEN) as receiver:
        sleeps = Sleeps()
        notification = notify(receiver.url, TOKEN, PAYLOAD, sleep=sleeps)
    assert notification == Notification(True, f"Flux notified: {receiver.origin} answered 200", 1, receiver.origin)
    assert sleeps == []
    [delivery] = receiver.deliveries
    assert delivery.accepted and delivery.method == "POST" and delivery.path == receiver.path
    assert json.loads(delivery.body) == PAYLOAD
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["X-Signature"] == signed_request(receiver.url, TOKEN, PAYLOAD)[1]["X-Signature"]


def test_a_wrong_secret_is_refused_by_the_endpoint_and_reported_not_raised() -> None:
    with serve_receiver(TOKEN) as receiver:
        sleeps = Sleeps()
        notification = notify(receiver.url, "not-the-token", PAYLOAD, sleep=sleeps)
    assert not notification.ok and notification.attempts == 1
    assert "(400)" in notification.detail and "flux-receiver-secret" in notification.detail
    assert notification.detail.startswith(f"Flux not notified: {receiver.origin} refused the signature")
    assert [d.status for d in receiver.deliveries] == [400]  # a refused signature is not retried
    assert sleeps == []


def test_a_wrong_path_is_404_and_not_retried() -> None:
    with serve_receiver(TOKEN) as receiver:
        notification = notify(receiver.origin + webhook_path(TOKEN, "other", "flux-system"), TOKEN, PAYLOAD)
    assert not notification.ok and "status.webhookPath" in notification.detail
    assert notification.detail.startswith(f"Flux not notified: {receiver.origin} has no Receiver at that path (404)")
    assert [d.status for d in receiver.deliveries] == [404]


def test_server_errors_are_retried_with_backoff() -> None:
    with serve_receiver(TOKEN) as receiver:
        receiver.fail(2, 500)
        sleeps = Sleeps()
        notification = notify(receiver.url, TOKEN, PAYLOAD, sleep=sleeps)
    assert notification.ok and notification.attempts == 3
    assert [d.status for d in receiver.deliveries] == [500, 500, 200]
    assert sleeps == [BACKOFF, BACKOFF * 2]
    assert len({d.body for d in receiver.deliveries}) == 1  # the same signed body every time


def test_a_receiver_that_stays_unavailable_is_a_failure_after_the_last_attempt() -> None:
    lines: list[str] = []
    with serve_receiver(TOKEN) as receiver:
        receiver.fail(ATTEMPTS + 1, 503)
        notification = notify(receiver.url, TOKEN, PAYLOAD, sleep=Sleeps(), log=lines.append)
    assert notification == Notification(
        False,
        f"Flux not notified: {receiver.origin}: answered 503 (after {ATTEMPTS} attempts)",
        ATTEMPTS,
        receiver.origin,
    )
    assert len(receiver.deliveries) == ATTEMPTS
    assert lines == [
        f"Flux receiver {receiver.origin}: answered 503 (attempt 1 of 3); next in 0.5 s",
        f"Flux receiver {receiver.origin}: answered 503 (attempt 2 of 3); next in 1 s",
    ]


def test_defaults_stay_under_ten_seconds() -> None:
    assert worst_case() == ATTEMPTS * TIMEOUT + BACKOFF + 2 * BACKOFF
    assert worst_case() < 10


@pytest.mark.slow  # waits out the 9 s bound
def test_a_stalled_endpoint_is_given_up_within_the_bound() -> None:
    """Defaults and real sleeps: three attempts that each wait their whole timeout, and nothing longer."""
    with serve_receiver(TOKEN) as receiver:
        receiver.stall(60)
        started = time.monotonic()
        notification = notify(receiver.url, TOKEN, PAYLOAD)
        elapsed = time.monotonic() - started
    assert not notification.ok and notification.attempts == ATTEMPTS
    assert f"no answer within {TIMEOUT:g} s" in notification.detail
    assert ATTEMPTS * TIMEOUT <= elapsed < worst_case() + 0.5


def test_a_closed_port_is_a_failure_not_an_exception() -> None:
    notification = notify(closed_port_url(), TOKEN, PAYLOAD, sleep=Sleeps())
    assert not notification.ok and notification.attempts == ATTEMPTS
    assert "connection failed" in notification.detail


def test_a_bad_url_is_a_failure_not_an_exception() -> None:
    notification = notify("https://bot:pw@flux.example.com/hook/0a1b", TOKEN, PAYLOAD)
    assert not notification.ok and notification.attempts == 0
    assert "credentials" in notification.detail and "pw@" not in notification.detail


def test_a_redirect_is_not_followed() -> None:
    with serve_receiver(TOKEN) as receiver:
        receiver.fail(1, 307)
        notification = notify(receiver.url, TOKEN, PAYLOAD, sleep=Sleeps())
    assert not notification.ok and "redirects (307)" in notification.detail
    assert len(receiver.deliveries) == 1


def test_neither_secret_nor_signature_reach_details_or_logs(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 logs each request line at DEBUG
    notifications: list[Notification] = []
    with serve_receiver(TOKEN) as receiver:
        secret_signature = signed_request(receiver.url, TOKEN, PAYLOAD)[1]["X-Signature"].removeprefix("sha256=")
        notifications.append(notify(receiver.url, TOKEN, PAYLOAD, log=print))
        notifications.append(notify(receiver.url, TOKEN[::-1], PAYLOAD, log=print))
        receiver.fail(ATTEMPTS, 500)
        notifications.append(notify(receiver.url, TOKEN, PAYLOAD, sleep=Sleeps(), log=print))
        receiver.stall(5)
        notifications.append(notify(receiver.url, TOKEN, PAYLOAD, attempts=2, timeout=0.3, log=print))
    notifications.append(notify(closed_port_url(), TOKEN, PAYLOAD, sleep=Sleeps(), log=print))
    captured = capsys.readouterr()
    ours = [n.detail for n in notifications] + [summary_text([n]) for n in notifications]
    ours += [captured.out, captured.err, repr(notifications), summary_text(notifications)]
    ours += [json.dumps(json_fields(notifications))]
    assert [n.ok for n in notifications] == [True, False, False, False, False]
    assert "POST /hook/" in caplog.text  # urllib3's DEBUG lines do name the path, never the token or signature
    hook_digest = receiver.path.removeprefix("/hook/")
    for text in [*ours, caplog.text]:
        for secret in (TOKEN, TOKEN[::-1], secret_signature):
            assert secret not in text, text
    for text in ours:  # the path is derived from the token: kept out of what we print
        assert hook_digest not in text, text


def test_summary_says_whether_flux_was_notified() -> None:
    notified = Notification(True, "Flux notified: https://flux.example.com answered 200", 1, "https://flux.example.com")
    assert summary_text([notified]) == "\nFlux: notified (https://flux.example.com answered 200)\n"
    down = Notification(False, "Flux not notified: https://b.example.com: answered 503", 3, "https://b.example.com")
    refused = summary_text([down])
    assert refused.startswith("\nFlux: **not notified** (https://b.example.com: answered 503)")
    assert "next scan" in refused
    # Several: a list, one item per receiver in the order given.
    assert summary_text([notified, down]) == (
        "\n- Flux: notified (https://flux.example.com answered 200)\n"
        "- Flux: **not notified** (https://b.example.com: answered 503); it finds the image at its next scan of the "
        "repository\n"
    )


def test_json_says_per_receiver_whether_it_was_notified() -> None:
    assert json_fields([]) == {}  # no Receiver set, or nothing pushed: today's keys only
    one = Notification(True, "Flux notified: https://a.example.com answered 200", 1, "https://a.example.com")
    assert json_fields([one]) == {
        "flux_notified": True,
        "flux_receivers": [{"origin": "https://a.example.com", "notified": True}],
    }
    down = Notification(False, "Flux not notified: http://b.example.com:81: answered 503", 3, "http://b.example.com:81")
    assert json_fields([down, one]) == {
        "flux_notified": False,  # true only when every Receiver was notified
        "flux_receivers": [
            {"origin": "http://b.example.com:81", "notified": False},
            {"origin": "https://a.example.com", "notified": True},
        ],
    }


# --- several receivers (one per cluster) ------------------------------------------------------------------------------


def pushed_result() -> PublishResult:
    plan = TagPlan("release", "1.4.2", parse_image("acme/app"), True, ("1.4", "1"))
    return PublishResult(plan, "sha256:config", DIGEST, {"1.4.2": "pushed", "1.4": "pushed", "1": "pushed"})


def test_each_receiver_is_notified_with_its_own_token() -> None:
    with serve_receiver("production-token") as production, serve_receiver("staging-token") as staging:
        receivers = parse_receivers(f"{production.url}\n{staging.url}", "production-token\nstaging-token")
        notifications = announce_all(receivers, pushed_result())
    assert [(n.ok, n.origin) for n in notifications] == [(True, production.origin), (True, staging.origin)]
    for endpoint in (production, staging):
        [delivery] = endpoint.deliveries
        assert delivery.accepted and json.loads(delivery.body) == receiver_payload(pushed_result())


def test_one_token_is_accepted_by_every_receiver_that_has_it() -> None:
    with serve_receiver(TOKEN, "app-image-tagger") as production, serve_receiver(TOKEN, "app-staging") as staging:
        assert production.path != staging.path  # the path also derives from the Receiver's name
        notifications = announce_all(parse_receivers(f"{production.url}\n{staging.url}", TOKEN), pushed_result())
    assert [n.ok for n in notifications] == [True, True]
    assert [d.status for d in production.deliveries + staging.deliveries] == [200, 200]


@pytest.mark.slow  # waits out the 9 s bound
def test_a_receiver_that_is_down_neither_stops_nor_delays_the_others() -> None:
    """The first receiver stalls for every attempt; the second is still notified at once, and all within the bound."""
    lines: list[str] = []
    with serve_receiver("staging-token") as staging, serve_receiver(TOKEN) as stalled:
        stalled.stall(60)
        receivers = parse_receivers(f"{stalled.url}\n{closed_port_url()}\n{staging.url}", f"{TOKEN}\nx\nstaging-token")
        started = time.monotonic()
        notifications = announce_all(receivers, pushed_result(), log=lines.append)
        took = time.monotonic() - started
    assert [n.ok for n in notifications] == [False, False, True]  # in the order given, whatever finished first
    assert [n.origin for n in notifications] == [stalled.origin, origin_of(receivers[1].url), staging.origin]
    assert f"no answer within {TIMEOUT:g} s" in notifications[0].detail
    assert "connection failed" in notifications[1].detail
    [delivery] = staging.deliveries
    assert delivery.accepted and delivery.at - started < 1, "the receivers before it held it up"
    assert took < worst_case() + 0.5  # side by side: one receiver's bound for all of them, not the sum
    assert all(line.startswith("Flux receiver http://127.0.0.1:") for line in lines), lines  # whole lines only
    assert len(lines) == 2 * (ATTEMPTS - 1)


def test_no_receivers_is_no_notification() -> None:
    assert announce_all((), pushed_result()) == []


# --- flux/receiver-hmac ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flux_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return publish_flux_base(REPO, tmp_path_factory.mktemp("published") / "flux-ci-cd", TAG)


def cluster_with(dest: Path, flux_url: str, components: list[str], **settings: str) -> list[dict[str, Any]]:
    """The example production cluster with extra components (sub-paths of flux/) and optionally other settings."""
    cluster = copy_consumer(dest, flux_url) / "clusters" / "production"
    kustomization = cluster / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "".join(f"  - {flux_url}/{c}?ref={TAG}\n" for c in components))
    if settings:
        document = load_yaml(cluster / "image-automation.yaml")
        document["data"].update(settings)
        YAML().dump(document, cluster / "image-automation.yaml")
    return kustomize_build(cluster)


def test_receiver_hmac_rescans_the_image_repository(flux_url: str, tmp_path: Path) -> None:
    objects = cluster_with(tmp_path, flux_url, ["receiver-hmac"])
    receiver, repository = only(objects, "Receiver"), only(objects, "ImageRepository")
    validate_against_crd(crd_schemas(), receiver)
    assert receiver["apiVersion"] == "notification.toolkit.fluxcd.io/v1"
    assert receiver["metadata"]["name"] == "app-image-tagger"
    assert receiver["metadata"]["namespace"] == repository["metadata"]["namespace"] == "flux-system"
    assert receiver["spec"]["type"] == "generic-hmac"
    assert receiver["spec"]["secretRef"] == {"name": "image-tagger-webhook-token"}
    assert receiver["spec"]["resources"] == [
        {"apiVersion": repository["apiVersion"], "kind": "ImageRepository", "name": repository["metadata"]["name"]}
    ]
    assert "events" not in receiver["spec"]  # generic-hmac does not filter by events


@pytest.mark.parametrize("order", [["receiver", "receiver-hmac"], ["receiver-hmac", "receiver"]])
def test_both_receivers_side_by_side_in_either_order(order: list[str], flux_url: str, tmp_path: Path) -> None:
    """A hyphenated name is renamed once: flux/receiver's replacements must not reach the hmac Receiver."""
    objects = cluster_with(tmp_path, flux_url, order, name="my-app")
    receivers = {o["spec"]["type"]: o for o in objects if o["kind"] == "Receiver"}
    assert {t: r["metadata"]["name"] for t, r in receivers.items()} == {
        "dockerhub": "my-app-dockerhub",
        "generic-hmac": "my-app-image-tagger",
    }
    for receiver in receivers.values():
        assert receiver["spec"]["resources"][0]["name"] == "my-app"
        validate_against_crd(crd_schemas(), receiver)


def test_readme_commands_name_the_rendered_objects(flux_url: str, tmp_path: Path) -> None:
    """flux/README.md's secret and webhook-path commands name what the component renders."""
    receiver = only(cluster_with(tmp_path, flux_url, ["receiver-hmac"]), "Receiver")
    readme = (REPO / "flux" / "README.md").read_text()
    section = readme[readme.index("## Push notification from the action") :]
    secret = receiver["spec"]["secretRef"]["name"]
    assert f"kubectl -n flux-system create secret generic {secret} \\\n" in section
    assert f"kubectl -n flux-system get receiver {receiver['metadata']['name']} " in section
    assert "//flux/receiver-hmac?ref=" in section


def test_the_endpoint_answers_at_the_rendered_receivers_webhook_path(flux_url: str, tmp_path: Path) -> None:
    """The path Flux would give the rendered Receiver is where a signed notification is accepted."""
    receiver = only(cluster_with(tmp_path, flux_url, ["receiver-hmac"]), "Receiver")
    name, namespace = receiver["metadata"]["name"], receiver["metadata"]["namespace"]
    with serve_receiver(TOKEN, name, namespace) as endpoint:
        url = endpoint.origin + webhook_path(TOKEN, name, namespace)
        assert notify(url, TOKEN, PAYLOAD).ok
        assert not notify(url + "?x", TOKEN, PAYLOAD).ok  # refused before sending: Flux would answer 404
    assert [d.status for d in endpoint.deliveries] == [200]
