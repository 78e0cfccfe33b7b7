"""An HTTP/1.1 download handler that keeps the exchange's heads exactly as they crossed the wire.

Scrapy's ``Headers`` normalise header case, drop the reason phrase and lose connection headers
(``Connection``, ``Keep-Alive``) and the interleaving of repeated headers. An archive must
record what was sent and received, so this handler tees the request head written to the socket
and the response head read from it, and hands both to the WARC capture middleware in
``request.meta["wire_heads"]`` as ``(request_head, response_head)`` bytes, each ending with the
blank line. It uses the same hooks Scrapy's own handler uses (a protocol subclass on the
connection pool, an attribute stashed on the Twisted response).
"""

from __future__ import annotations

from typing import Any

from scrapy.core.downloader.handlers.http11 import (
    HTTP11DownloadHandler,
    _LenientHTTP11ClientFactory,
    _LenientHTTP11ClientProtocol,
    _ScrapyAgent,
)
from scrapy.utils._download_handlers import wrap_twisted_exceptions
from scrapy.utils.defer import maybe_deferred_to_future

WIRE_HEADS_META = "wire_heads"
_MAX_HEAD = 256 * 1024  # a response head larger than this is not recorded raw


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
    """Records the raw request head and the raw bytes of the response head."""

    _response_bytes: bytearray | None = None

    def request(self, request: Any) -> Any:
        real = self.transport
        tee = _TeeTransport(real)
        self.transport = tee
        self._response_bytes = bytearray()
        try:
            d = super().request(request)
        finally:
            self.transport = real
        sent = b"".join(tee.written)
        request_head = sent[: sent.find(b"\r\n\r\n") + 4] if b"\r\n\r\n" in sent else sent
        received = self._response_bytes

        def attach(response: Any) -> Any:
            response._newsarchive_wire_heads = (request_head, _final_head(bytes(received)))
            self._response_bytes = None
            return response

        d.addCallback(attach)
        return d

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (Twisted's name)
        buf = self._response_bytes
        if buf is not None and len(buf) < _MAX_HEAD and not _head_complete(buf):
            buf.extend(data[: _MAX_HEAD - len(buf)])
        super().dataReceived(data)


def _head_complete(buf: bytearray) -> bool:
    """True once the final (non-1xx) response head has been read."""
    return _final_head(bytes(buf)) != b""


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
    def buildProtocol(self, addr: Any) -> _WireRecordingProtocol:  # noqa: N802
        return _WireRecordingProtocol(self._quiescentCallback)


class _WireRecordingAgent(_ScrapyAgent):
    def _cb_latency(self, result: Any, request: Any, start_time: float) -> Any:
        heads = getattr(result, "_newsarchive_wire_heads", None)
        if heads is not None:
            request.meta[WIRE_HEADS_META] = heads
        return super()._cb_latency(result, request, start_time)


class WireRecordingDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, recording the exchange's raw heads for the WARC."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self._pool._factory = _WireRecordingFactory

    async def download_request(self, request: Any) -> Any:
        agent = _WireRecordingAgent(
            contextFactory=self._contextFactory,
            bindAddress=self._bind_address,
            pool=self._pool,
            maxsize=self._default_maxsize,
            warnsize=self._default_warnsize,
            fail_on_dataloss=self._fail_on_dataloss,
            crawler=self._crawler,
            tls_verbose_logging=self._tls_verbose_logging,
        )
        with wrap_twisted_exceptions():
            return await maybe_deferred_to_future(agent.download_request(request))
