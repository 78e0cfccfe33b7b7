"""A page's bytes as the crawl's extraction sees them, for pages that do not come from a live
crawl (stored WARC records, local files).

During a crawl, Scrapy undoes the Content-Encoding (HttpCompressionMiddleware) and finds the
text encoding (TextResponse, with w3lib). These functions do the same, with the same libraries
and in the same order, so a re-extraction gets the crawl's very input without running Scrapy.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from gzip import GzipFile
from io import BytesIO

from charset_normalizer import from_bytes
from w3lib.encoding import (
    html_body_declared_encoding,
    html_to_unicode,
    http_content_type_encoding,
    read_bom,
    resolve_encoding,
)

_CHUNK = 64 * 1024
_DEFAULT_ENCODING = "ascii"  # TextResponse's, before it infers one from the body


def decoded_page(payload: bytes, content_encoding: list[str], content_type: list[str]
                 ) -> tuple[bytes, str]:
    """A stored page's body and encoding as a crawl's spider saw them: Content-Encoding undone,
    the encoding found as Scrapy finds it (the last Content-Type counts, as in its Headers)."""
    body = decode_content(payload, content_encoding)
    return body, page_encoding(body, content_type[-1] if content_type else "")


def page_encoding(body: bytes, content_type: str = "") -> str:
    """The encoding Scrapy's TextResponse gives a page: its BOM, the Content-Type charset, the
    charset the page declares, else one inferred from the bytes."""
    declared = read_bom(body)[0] or http_content_type_encoding(content_type) \
        or html_body_declared_encoding(body)
    if declared:
        return declared
    return html_to_unicode(content_type, body, auto_detect_fun=_auto_detect,
                           default_encoding=_DEFAULT_ENCODING)[0]


def _auto_detect(text: bytes) -> str | None:
    for encoding in (_DEFAULT_ENCODING, "utf-8"):
        try:
            text.decode(encoding)
        except UnicodeError:
            continue
        return resolve_encoding(encoding)
    match = from_bytes(text).best()
    return resolve_encoding(match.encoding) if match else None


def decode_content(body: bytes, content_encoding: Iterable[str]) -> bytes:
    """Undo the codings, last applied first, stopping at one not known (as Scrapy does)."""
    codings = [c.strip().lower() for value in content_encoding for c in value.split(",")
               if c.strip()]
    while codings and codings[-1] in _DECODERS:
        body = _DECODERS[codings.pop()](body)
    return body


def _gunzip(data: bytes) -> bytes:
    """As much as the stream gives: a CRC error or a cut-off end after some output is not fatal
    (Scrapy's ``gunzip``)."""
    f = GzipFile(fileobj=BytesIO(data))
    out = BytesIO()
    while True:
        try:
            chunk = f.read1(_CHUNK)
        except (OSError, EOFError, struct.error):
            if out.getbuffer().nbytes > 0:
                break
            raise
        if not chunk:
            break
        out.write(chunk)
    return out.getvalue()


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error:  # raw deflate, as some servers send it
        return zlib.decompress(data, -zlib.MAX_WBITS)


def _unbrotli(data: bytes) -> bytes:
    import brotli

    return brotli.decompress(data)


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": _gunzip, "x-gzip": _gunzip, "deflate": _inflate, "br": _unbrotli}
