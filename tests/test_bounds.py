"""Every wait has a deadline and every answer a size limit, over the whole exchange: hostile servers
(tests/support/hostile/slow.py) trickle headers or bodies, send huge answers or stall, and each client gives up
within its stated deadline, having read little. Every test runs under its own time limit, so a regression
fails instead of hanging the suite."""

from __future__ import annotations

import resource
import time

import pytest
from support.hostile.slow import SlowServer, slow_server, time_limit

from image_tagger.errors import PublishError
from image_tagger.notify import ATTEMPTS, TIMEOUT, notify, worst_case
from image_tagger.registry_client import list_tags

TOKEN = "tok-bounds-0123456789"
PAYLOAD = {"image": "127.0.0.1:5000/acme/app", "tags": ["1.0.0"], "digest": ""}
LEFTOVER = 16 << 20  # bytes a client may have taken into socket buffers before it stopped reading


def max_rss() -> int:
    """This process's peak resident memory, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.fixture
def receiver() -> SlowServer:
    with slow_server() as server:
        yield server


def timed_notify(server: SlowServer) -> tuple[float, object]:
    started = time.monotonic()
    with time_limit(worst_case() + 10):
        notification = notify(server.url + "/hook/abc", TOKEN, PAYLOAD, sleep=time.sleep)
    return time.monotonic() - started, notification


def test_notify_gives_up_on_trickled_headers_within_its_deadline(receiver: SlowServer) -> None:
    receiver.trickle_headers(interval=0.2)  # ~70 bytes of headers: 14 s a try, each byte well inside 2.5 s

    took, notification = timed_notify(receiver)

    assert not notification.ok
    assert notification.attempts == ATTEMPTS
    assert f"no answer within {TIMEOUT:g} s" in notification.detail
    assert ATTEMPTS * TIMEOUT - 0.5 < took < worst_case() + 1


def test_notify_reads_no_trickled_body(receiver: SlowServer) -> None:
    receiver.trickle_body(interval=0.2)  # endless, read until close

    took, notification = timed_notify(receiver)

    assert notification.ok, notification.detail
    assert took < TIMEOUT
    assert receiver.sent("trickle_body") < 1024


@pytest.mark.parametrize("declare", [True, False], ids=["declared", "undeclared"])
def test_notify_reads_no_oversized_answer(receiver: SlowServer, declare: bool) -> None:
    receiver.oversized(size=512 << 20, declare=declare)
    before = max_rss()

    took, notification = timed_notify(receiver)

    assert notification.ok, notification.detail
    assert took < TIMEOUT
    assert receiver.sent("oversized") < LEFTOVER
    assert max_rss() - before < 64 << 20


def test_registry_client_gives_up_on_trickled_headers_at_its_deadline() -> None:
    with slow_server() as registry:
        registry.trickle_headers(interval=0.2)  # 14 s of headers, each byte well inside the 30 s read timeout
        started = time.monotonic()
        with time_limit(12), pytest.raises(PublishError, match=r"gave up .* \(deadline 3 s\)"):
            list_tags(f"{registry.host}/acme/app", deadline=3)
        assert time.monotonic() - started < 4
