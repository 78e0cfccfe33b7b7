"""Article candidates from feeds (RSS 2.0, RSS 1.0/RDF, Atom) and sitemaps (urlset, sitemap
index, Google News), with their dates.

Parsing is by local element names, so feeds with wrong or missing namespaces still yield their
entries; a document that is not a feed or sitemap at all (an HTML error page served as XML, say)
raises ``NotADiscoveryDocument``. The XML parser resolves no entities and fetches nothing.

A document is read as it is parsed, never held whole (as decoded bytes, a tree or a list): its
bytes are gunzipped chunk by chunk up to ``MAX_DOCUMENT_BYTES``, so a gzip bomb stops there;
finished elements are dropped after every chunk; entries past ``max_entries`` are counted, not
read. A site that lists millions of URLs costs time, not memory.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from itertools import islice
from typing import Literal

from lxml import etree

Kind = Literal["feed", "sitemap", "sitemapindex"]
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # the sitemaps protocol's limit, uncompressed
_CHUNK = 64 * 1024
_SNIFF = 1024 * 1024  # a document whose root has not opened by then is no feed or sitemap
_DATE_TAGS = ("published", "pubDate", "date", "issued", "publication_date", "updated",
              "modified", "lastmod")
_SAFE = {"resolve_entities": False, "no_network": True, "recover": True, "huge_tree": False,
         "remove_comments": True, "remove_pis": True}


_Link = Callable[[etree._Element], "str | None"]  # reads an entry element's URL


class NotADiscoveryDocument(ValueError):
    """The body is not a feed or sitemap (bad XML, an HTML page, an unknown root)."""


@dataclass(frozen=True)
class Candidate:
    url: str
    date: str | None = None   # ISO date of publication (or last modification), if given
    title: str | None = None


class Listing:
    """A feed, sitemap or sitemap index, read as it is parsed: what it is as soon as its root
    opens, then its entries in the order listed, a batch at a time.

    Not thread-safe: make every call from one thread (lxml parsers belong to the thread that
    made them).
    """

    def __init__(self, body: bytes, max_entries: int,
                 max_bytes: int = MAX_DOCUMENT_BYTES) -> None:
        self.max_entries = max_entries
        self.skipped = 0              # entries past max_entries: counted, not read
        self.cut: str | None = None   # why the document was read only in part
        self._events = self._parse(body, max_bytes)
        _, root = next(self._events)
        name = _local(root)
        if name not in _ROOTS:
            raise NotADiscoveryDocument(f"root element <{name}> is neither a feed nor a sitemap")
        self.kind, self._links = _ROOTS[name]
        self._entries = self._read_entries()

    def next_batch(self, size: int) -> list[Candidate]:
        """Up to `size` more entries; [] once the document is read."""
        return list(islice(self._entries, size))

    def _read_entries(self) -> Iterator[Candidate]:
        listed = 0
        for event, element in self._events:
            if event != "end" or (link := self._links.get(_local(element))) is None:
                continue
            if listed < self.max_entries:
                if candidate := _candidate(element, link):
                    yield candidate
            else:
                self.skipped += 1
            listed += 1
            element.clear()

    def _parse(self, body: bytes, max_bytes: int) -> Iterator[tuple[str, etree._Element]]:
        """("root", the root element), then the parser's events for root and entry elements;
        after each chunk, the elements parsed completely are dropped."""
        parser = etree.XMLPullParser(events=("start", "end"), tag=_TAGS, **_SAFE)
        root: etree._Element | None = None
        fed = 0
        for chunk in self._chunks(body, max_bytes):
            try:
                parser.feed(chunk)
            except etree.XMLSyntaxError as exc:
                if root is None:
                    raise NotADiscoveryDocument(f"not XML: {exc}") from None
                return
            fed += len(chunk)
            events = parser.read_events()
            if root is None:
                first = next(events, None)
                if first is None:
                    if fed < _SNIFF:
                        continue
                    break  # the root (named by close) is something else
                root = first[1].getroottree().getroot()
                yield "root", root
            yield from events
            _prune(root)
        if self.cut:  # no close(): it would make entries of the elements left open
            if root is None:
                raise NotADiscoveryDocument(self.cut)
            return
        try:
            last = parser.close()
        except etree.XMLSyntaxError as exc:
            if root is None:
                raise NotADiscoveryDocument(f"not XML: {exc}") from None
            return
        if root is None:
            if last is None:
                raise NotADiscoveryDocument("empty or not XML")
            yield "root", last
        yield from parser.read_events()

    def _chunks(self, body: bytes, max_bytes: int) -> Iterator[bytes]:
        """The document's bytes, gunzipped if gzip, leading white space dropped, in chunks up
        to `max_bytes` in all: a gzip bomb is never inflated past it."""
        gzipped = body[:2] == b"\x1f\x8b"
        stream = gzip.GzipFile(fileobj=io.BytesIO(body)) if gzipped else io.BytesIO(body)
        total, started = 0, False
        while True:
            room = max_bytes - total
            try:
                chunk = stream.read(min(_CHUNK, room + 1))
            except (OSError, EOFError, zlib.error) as exc:
                self.cut = f"bad gzip: {exc}"
                return
            if not chunk:
                return
            if len(chunk) > room:
                self.cut = f"larger than {max_bytes} bytes uncompressed"
                if room:
                    yield chunk[:room]
                return
            total += len(chunk)
            if not started:
                chunk = chunk.lstrip()
                started = bool(chunk)
            if chunk:
                yield chunk


def _prune(root: etree._Element) -> None:
    """Drop every finished element: all but the last child of each open element, down to an
    entry (one still open keeps its children). What a document holds between its entries
    cannot pile up."""
    element = root
    while isinstance(element.tag, str) and _local(element) not in _ENTRY_NAMES and len(element):
        del element[:-1]
        element = element[-1]


def _candidate(element: etree._Element, link: _Link) -> Candidate | None:
    url = link(element)
    if not url:
        return None
    values: dict[str, str] = {}
    for child in element.iter():
        if isinstance(child.tag, str):
            values.setdefault(_local(child), (child.text or "").strip())
    published = next((d for t in _DATE_TAGS if (d := parse_date(values.get(t, "")))), None)
    return Candidate(url, published, values.get("title") or None)


def _loc(element: etree._Element) -> str | None:
    for child in element:
        if isinstance(child.tag, str) and _local(child) == "loc":
            return (child.text or "").strip() or None
    return None


def _feed_link(element: etree._Element) -> str | None:
    links = [c for c in element if isinstance(c.tag, str) and _local(c) == "link"]
    for link in links:  # Atom: rel="alternate" or no rel
        if link.get("href") and link.get("rel", "alternate") == "alternate":
            return link.get("href").strip()
    for link in links:  # RSS: the element's text
        if (link.text or "").strip():
            return link.text.strip()
    for child in element:  # RSS guid isPermaLink, RDF rdf:about
        if isinstance(child.tag, str) and _local(child) == "guid" and \
                child.get("isPermaLink", "true") == "true" and (child.text or "").startswith(
                    ("http://", "https://")):
            return child.text.strip()
    about = next((v for k, v in element.attrib.items() if k.endswith("about")), None)
    return about.strip() if about else None


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def parse_date(text: str) -> str | None:
    """ISO date (YYYY-MM-DD) of an RFC 822, ISO 8601 or W3C date string, as written (in its own
    time zone, as the page's dates are read); None if none."""
    text = text.strip()
    if not text:
        return None
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            match = re.match(r"(\d{4})-(\d{2})-(\d{2})", text)
            return "-".join(match.groups()) if match else None
    return moment.date().isoformat()


# root element -> (kind, {entry element: how to read its link})
_ROOTS: dict[str, tuple[Kind, dict[str, _Link]]] = {
    "urlset": ("sitemap", {"url": _loc}),
    "sitemapindex": ("sitemapindex", {"sitemap": _loc}),
    **{name: ("feed", {"item": _feed_link, "entry": _feed_link})
       for name in ("rss", "RDF", "feed", "channel")},
}
_ENTRY_NAMES = {name for _, links in _ROOTS.values() for name in links}
# the parser reports only these elements (in any namespace): the rest costs no Python call
_TAGS = tuple(f"{{*}}{name}" for name in (*_ROOTS, *_ENTRY_NAMES))
