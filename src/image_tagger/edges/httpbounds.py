"""Whole-exchange bounds for HTTP through requests: one deadline over connect, headers and body, and a size limit.

requests' and urllib3's timeouts bound each socket operation, not the exchange: a server that trickles one
byte every few seconds holds a request as long as it likes, and a non-streamed answer is read whole into
memory. `BoundedAdapter` starts a watchdog per exchange that shuts the connection's socket down at the
deadline (which ends any read in progress, of headers or body), and reads the body itself, streamed,
refusing it past `max_body`. A number given as a request's `timeout` bounds its whole exchange here.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
_CHUNK = 16384  # decoded bytes per read: a compressed answer cannot overshoot the limit by much


class DeadlineExceeded(requests.Timeout):
    """The whole exchange (or the caller's overall deadline) ran out."""


class AnswerTooLarge(requests.RequestException):
    """The answer's body is over the size limit; it was not read further."""


class Deadline:
    """An instant on the monotonic clock; `remaining()` is what is left of it (negative once passed)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._at = clock() + seconds

    def remaining(self) -> float:
        return self._at - self._clock()


class _Exchange:
    """The sockets of one exchange, shut down by a timer at its deadline."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = False
        self.expired = False
        self._timer = threading.Timer(min(seconds, threading.TIMEOUT_MAX), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            if sock is None or self._done:
                return
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._timer.cancel()
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    """End reads in progress on another thread; the plain socket call, so a TLS socket's state is left alone."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_current = threading.local()


def _watch(sock: socket.socket | None) -> None:
    exchange: _Exchange | None = getattr(_current, "exchange", None)
    if exchange is not None:
        exchange.watch(sock)


class _Watched:
    """A connection whose socket joins the exchange in progress on this thread, once connected and per response."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch(self.sock)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _watch(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class BoundedAdapter(HTTPAdapter):
    """Every exchange ends by `remaining()` seconds from its start (and by a numeric `timeout`), its body read
    up to `max_body` bytes. With `stream=True` only connect and headers are watched: the caller reads the body
    and must bound it itself."""

    def __init__(
        self,
        remaining: Callable[[], float],
        max_body: int,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        self.remaining = remaining
        self.max_body = max_body
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if manager.pool_classes_by_scheme is urllib3.poolmanager.pool_classes_by_scheme:  # not SOCKS
            manager.pool_classes_by_scheme = _POOLS
        return manager

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        budget = self.remaining()
        connect, read = timeout if isinstance(timeout, tuple) else (self.connect_timeout, self.read_timeout)
        if isinstance(timeout, int | float):
            budget = min(budget, float(timeout))
        if budget <= 0:
            raise DeadlineExceeded("the deadline passed before the request was sent", request=request)
        per_operation = (min(connect or budget, budget), min(read or budget, budget))
        exchange = _Exchange(budget)
        _current.exchange = exchange
        try:
            response = super().send(request, stream=True, timeout=per_operation, **kwargs)
            if not stream:
                self._read(response)
            if exchange.expired:  # a body read to its close may have ended early, cut off by the watchdog
                response.close()
                raise DeadlineExceeded(f"no whole answer within {budget:.3g} s", request=request)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            if exchange.expired:
                raise DeadlineExceeded(f"no whole answer within {budget:.3g} s", request=request) from None
            if isinstance(err, requests.RequestException):
                raise
            raise requests.ConnectionError(err, request=request) from None
        finally:
            exchange.finish()
            _current.exchange = None
        return response

    def _read(self, response: requests.Response) -> None:
        """The body into `response.content`, refused past `max_body` bytes (declared or counted)."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            response.close()
            raise AnswerTooLarge(f"the answer declares {int(declared)} bytes, over the {self.max_body} byte limit")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > self.max_body:
                response.close()
                raise AnswerTooLarge(f"the answer is over the {self.max_body} byte limit; not read further")
            chunks.append(chunk)
        response._content = b"".join(chunks)  # noqa: SLF001 - what requests itself sets once a body is read
        response._content_consumed = True  # noqa: SLF001
        response.close()


def bounded_session(remaining: Callable[[], float], max_body: int, **kwargs: Any) -> requests.Session:
    """A session whose every exchange goes through a `BoundedAdapter`."""
    session = requests.Session()
    adapter = BoundedAdapter(remaining, max_body, **kwargs)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
