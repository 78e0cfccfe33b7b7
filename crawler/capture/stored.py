"""A stored HTTP exchange read back: a ``response`` or ``revisit`` record's identity, status,
headers and payload as received (Content-Encoding kept), as a live response would bring them.
What a resumed crawl answers from its own WARCs, and what ``reextract`` extracts again."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from warcio.archiveiterator import ArchiveIterator


@dataclass(frozen=True)
class StoredResponse:
    record_type: str  # response, or revisit (no payload of its own)
    record_id: str
    date: str
    payload_digest: str | None
    profile: str | None  # a revisit's WARC-Profile
    status: int
    headers: list[tuple[str, str]]  # the HTTP headers as stored, in order
    payload: bytes

    def header(self, name: str) -> list[str]:
        """Every value of an HTTP header (case-insensitive name), in order."""
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


def stored_response(record: Any) -> StoredResponse:
    """From a warcio record positioned at its start (its payload is read here)."""
    head, http = record.rec_headers, record.http_headers
    revisit = record.rec_type == "revisit"
    return StoredResponse(
        record.rec_type, head.get_header("WARC-Record-ID"), head.get_header("WARC-Date"),
        head.get_header("WARC-Payload-Digest"),
        head.get_header("WARC-Profile") if revisit else None,
        int(http.get_statuscode()), list(http.headers),
        b"" if revisit else record.raw_stream.read())


def read_stored_response(data: bytes) -> StoredResponse:
    """One record from the bytes of its gzip member (what a pointer's offset and length read).

    warcio's iterator and its generator refer to each other: left suspended, the pair (with
    the member's bytes and the reader's buffers) waits for the cyclic garbage collector, which
    in a long crawl comes rarely; a crawl reading back thousands of records grew by each one.
    The generator is closed here, so they go at once."""
    records = ArchiveIterator(io.BytesIO(data))
    try:
        return stored_response(next(records))
    finally:
        records.the_iter.close()
