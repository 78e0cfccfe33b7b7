"""WARC capture of every HTTP exchange, as a downloader middleware.

Placed above HttpCompressionMiddleware (590), it sees each response before decompression, so the
body is stored as received (Content-Encoding kept), and each redirect hop, error status and
robots.txt fetch separately. Heads come from the wire (see ``crawler.crawl.http``); when a download
handler does not provide them, they are rebuilt from Scrapy's request and response.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import urldefrag, urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future

from crawler.capture.warc import warc_date
from crawler.capture.writer import Exchange
from crawler.crawl.archiving import ArchivingExtension
from crawler.crawl.http import WIRE_HEADS_META
from crawler.records import record_pointer

CAPTURE_META = "warc_capture"
"""``request.meta`` key under which the response record's location is left for the spider."""

ARCHIVED_FLAG = "archived"
"""Response flag: answered from the crawl's own WARC (a resumed crawl), not the network."""

_HOP_BY_HOP_AFTER_DECODING = (b"transfer-encoding",)


class WarcCaptureMiddleware:
    def __init__(self, archive: ArchivingExtension) -> None:
        self.archive = archive

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcCaptureMiddleware:
        archive = crawler.get_extension(ArchivingExtension)
        if archive is None:
            raise NotConfigured("ArchivingExtension is not enabled: nothing to capture into")
        return cls(archive)

    async def process_response(self, request: Request, response: Response) -> Response:
        if ARCHIVED_FLAG in response.flags:
            return response  # captured already, by the run this one resumes
        request_head, response_head = request.meta.pop(WIRE_HEADS_META, (b"", b""))
        exchange = Exchange(
            url=urldefrag(response.url)[0],
            date=warc_date(),
            ip_address=str(response.ip_address) if response.ip_address else None,
            status=response.status,
            mime=_mime(response),
            request_head=request_head or _request_head(request),
            request_body=request.body,
            response_head=_strip_transfer_encoding(response_head) or _response_head(response),
            response_body=response.body,
            truncated="download_stopped" in response.flags,
            outlet=request.meta.get("outlet"),
            requisite=bool(request.meta.get("requisite")),
            # a whole page of an outlet: the spider's parse decides whether a text follows
            awaits_spider=request.callback is None and bool(request.meta.get("outlet"))
            and not request.meta.get("requisite") and response.status == 200
            and "download_stopped" not in response.flags,
            etag=_header(response, b"ETag"),
            last_modified=_header(response, b"Last-Modified"),
        )
        written = await maybe_deferred_to_future(self.archive.write_exchange(exchange))
        request.meta[CAPTURE_META] = {
            **record_pointer(written.warc_key, written.offset, written.length, written.record_id,
                             written.payload_digest, exchange.date),
            "revisit": written.profile,  # a revisit record: the archive had this payload already
            "awaits_spider": exchange.awaits_spider,  # its shard waits for the spider's word
        }
        return response


def _mime(response: Response) -> str:
    content_type = response.headers.get(b"Content-Type") or b""
    return content_type.split(b";")[0].strip().decode("latin-1").lower()


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _strip_transfer_encoding(head: bytes) -> bytes:
    """The body is stored de-chunked, so the head must not claim a transfer coding."""
    if not head:
        return head
    lines = head.split(b"\r\n")
    kept = [line for line in lines
            if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP_AFTER_DECODING]
    return b"\r\n".join(kept)


def _request_head(request: Request) -> bytes:
    parts = urlsplit(request.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{request.method} {target} HTTP/1.1".encode()]
    if b"Host" not in request.headers:
        lines.append(b"Host: " + parts.netloc.encode("idna"))
    for name, values in request.headers.items():
        lines.extend(name + b": " + value for value in values)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _response_head(response: Response) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    protocol = response.protocol or "HTTP/1.1"
    lines = [f"{protocol} {response.status} {reason}".rstrip().encode()]
    for name, values in response.headers.items():
        lines.extend(name + b": " + value for value in values)
    return b"\r\n".join(lines) + b"\r\n\r\n"
