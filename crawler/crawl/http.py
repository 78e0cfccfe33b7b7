"""An HTTP/1.1 download handler that keeps the exchange's heads exactly as they crossed the wire.

Scrapy's ``Headers`` normalise header case, drop the reason phrase and lose connection headers
(``Connection``, ``Keep-Alive``) and the interleaving of repeated headers. An archive must
record what was sent and received, so this handler tees the request head written to the socket
and the response head read from it, and hands both to the WARC capture middleware in
``request.meta["wire_heads"]`` as ``(request_head, response_head)`` bytes, each ending with the
blank line. It uses the same hooks Scrapy's own handler uses (a protocol subclass on the
connection pool, an attribute stashed on the Twisted response).

It also guards every connection, whatever its URL's host text says (a name may resolve to
anything, and again differently later): a connection that reaches an internal address
(loopback, private, link-local...) is dropped before a byte is written, unless the address is
one the request's outlet lives on (its own hosts as resolved when the crawl opened,
``HostScope.addresses``; for a requisite, ``HostScope.embed_addresses``). And it refuses a
response head longer than ``NEWSARCHIVE_MAX_RESPONSE_HEAD``: Twisted would otherwise keep
reading header lines forever.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any

from scrapy.core.downloader.handlers.http11 import (
    HTTP11DownloadHandler,
    _LenientHTTP11ClientFactory,
    _LenientHTTP11ClientProtocol,
    _ScrapyAgent,
)
from scrapy.exceptions import IgnoreRequest
from scrapy.utils._download_handlers import wrap_twisted_exceptions
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from twisted.web._newclient import HEADER, STATUS
from twisted.web.client import HTTPConnectionPool, ResponseFailed

from crawler.discovery.urls import is_internal_address

WIRE_HEADS_META = "wire_heads"


class InternalAddressRefused(IgnoreRequest):
    """The connection reached an internal address its outlet does not live on."""


class ResponseHeadTooLarge(Exception):
    """The server sent more response head than the limit without ending it."""


class _TeeTransport:
    """Proxies a transport, keeping a copy of what is written (the request head and body)."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self._transport.write(data)

    def writeSequence(self, data: list[bytes]) -> None:  # noqa: N802 (Twisted's name)
        self.written.extend(data)
        self._transport.writeSequence(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _WireRecordingProtocol(_LenientHTTP11ClientProtocol):
    """Records the raw request head and the raw bytes of the response head; refuses a response
    head longer than `max_head`."""

    def __init__(self, quiescent_callback: Callable[[Any], None], max_head: int) -> None:
        super().__init__(quiescent_callback)
        self._max_head = max_head or sys.maxsize  # 0: no limit
        self._head_bytes: bytearray | None = None  # while the response head is being read
        self._response_head = b""

    def request(self, request: Any) -> Any:
        real = self.transport
        tee = _TeeTransport(real)
        self.transport = tee
        self._head_bytes = bytearray()
        self._response_head = b""
        try:
            d = super().request(request)
        finally:
            self.transport = real
        sent = b"".join(tee.written)
        request_head = sent[: sent.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in sent else sent

        def attach(response: Any) -> Any:
            response._newsarchive_wire_heads = (request_head, self._response_head)
            return response

        return d.addCallbacks(attach, _head_refusal)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (Twisted's name)
        buf = self._head_bytes
        if buf is None:
            super().dataReceived(data)
            return
        buf.extend(data[: self._max_head + 1 - len(buf)])
        self._response_head = _final_head(bytes(buf))  # before the parser hands the response on
        super().dataReceived(data)
        if self._head_bytes is not buf:
            return  # that response is over, and another request began on the connection
        parser = self._parser
        if parser is None or parser.state not in (STATUS, HEADER):
            self._head_bytes = None  # the head has been read (or the connection is gone)
        elif len(buf) > self._max_head:
            self._head_bytes = None
            self._giveUp(Failure(ResponseHeadTooLarge(
                f"response head over {self._max_head} bytes")))


def _head_refusal(failure: Failure) -> Failure:
    """A refused head as itself, not as the ResponseFailed Twisted wraps it in (which Scrapy
    would retry)."""
    if failure.check(ResponseFailed):
        for reason in failure.value.reasons:
            if reason.check(ResponseHeadTooLarge):
                return reason
    return failure


def _final_head(data: bytes) -> bytes:
    """The last response head in `data`, skipping interim 1xx heads; b"" if incomplete."""
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return b""
        head, data = data[: end + 4], data[end + 4 :]
        status = head.split(b" ", 2)[1:2]
        if not (status and status[0].startswith(b"1") and status[0] != b"101"):
            return head


class _WireRecordingFactory(_LenientHTTP11ClientFactory):
    def __init__(self, quiescent_callback: Callable[[Any], None], metadata: Any,
                 max_head: int) -> None:
        super().__init__(quiescent_callback, metadata)
        self._max_head = max_head

    def buildProtocol(self, addr: Any) -> _WireRecordingProtocol:  # noqa: N802
        return _WireRecordingProtocol(self._quiescentCallback, self._max_head)


class _PeerCheckingFactory(Factory):
    """Builds a connection's protocol only for a peer the outlet may reach: a refused
    connection is closed before TLS or HTTP writes a byte."""

    noisy = False

    def __init__(self, factory: Factory, allowed: frozenset[str] | None) -> None:
        self._factory = factory
        self._allowed = allowed  # None: any internal address

    def buildProtocol(self, addr: Any) -> Protocol | None:  # noqa: N802
        if self._allowed is not None and is_internal_address(addr.host) and \
                addr.host not in self._allowed:
            raise InternalAddressRefused(f"internal address {addr.host}")
        return self._factory.buildProtocol(addr)


class _GuardedEndpoint:
    """An endpoint whose connections are checked by their peer address."""

    def __init__(self, endpoint: Any, allowed: frozenset[str] | None) -> None:
        self._endpoint = endpoint
        self._allowed = allowed

    def __repr__(self) -> str:
        return repr(self._endpoint)

    def connect(self, factory: Factory) -> Deferred[Any]:
        return self._endpoint.connect(_PeerCheckingFactory(factory, self._allowed))


class _GuardedPool:
    """The handler's connection pool as one request sees it: new connections are checked
    against the internal addresses the request's outlet lives on, and a pooled connection is
    reused only by requests with the same ones."""

    def __init__(self, pool: HTTPConnectionPool, allowed: frozenset[str] | None) -> None:
        self._pool = pool
        self._allowed = allowed
        self.persistent = pool.persistent

    def getConnection(self, key: tuple[Hashable, ...], endpoint: Any) -> Deferred[Any]:  # noqa: N802
        return self._pool.getConnection((*key, self._allowed),
                                        _GuardedEndpoint(endpoint, self._allowed))


class _WireRecordingAgent(_ScrapyAgent):
    def _cb_latency(self, result: Any, request: Any, start_time: float) -> Any:
        heads = getattr(result, "_newsarchive_wire_heads", None)
        if heads is not None:
            request.meta[WIRE_HEADS_META] = heads
        return super()._cb_latency(result, request, start_time)


class WireRecordingDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, recording the exchange's raw heads for the WARC, keeping
    connections off internal addresses the outlet does not live on and bounding response
    heads."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        max_head = crawler.settings.getint("NEWSARCHIVE_MAX_RESPONSE_HEAD")
        self._pool._factory = partial(_WireRecordingFactory, max_head=max_head)

    async def download_request(self, request: Any) -> Any:
        # through a proxy the peer is the proxy, which resolves and connects itself
        pool = self._pool if request.meta.get("proxy") else _GuardedPool(
            self._pool, self._allowed_addresses(request))
        agent = _WireRecordingAgent(
            contextFactory=self._contextFactory,
            bindAddress=self._bind_address,
            pool=pool,
            maxsize=self._default_maxsize,
            warnsize=self._default_warnsize,
            fail_on_dataloss=self._fail_on_dataloss,
            crawler=self._crawler,
            tls_verbose_logging=self._tls_verbose_logging,
        )
        with wrap_twisted_exceptions():
            return await maybe_deferred_to_future(agent.download_request(request))

    def _allowed_addresses(self, request: Any) -> frozenset[str] | None:
        """The internal addresses the request's outlet lives on (for a requisite, those its
        embeds may reach: ``HostScope.embed_addresses``); for a request of no outlet
        (robots.txt, asked for a host an outlet's request was let through to), every
        outlet's. None: any."""
        scopes = getattr(self._crawler.spider, "scopes", {})
        scope = scopes.get(request.meta.get("outlet"))
        if scope is not None:
            return scope.embed_addresses if request.meta.get("requisite") else scope.addresses
        if any(s.embed_addresses is None for s in scopes.values()):
            return None
        return frozenset().union(*(s.addresses for s in scopes.values()))
