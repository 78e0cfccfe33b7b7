"""Article candidates from feeds (RSS 2.0, RSS 1.0/RDF, Atom) and sitemaps (urlset, sitemap
index, Google News), with their dates.

Parsing is by local element names, so feeds with wrong or missing namespaces still yield their
entries; a document that is not a feed or sitemap at all (an HTML error page served as XML, say)
raises ``NotADiscoveryDocument``. The XML parser resolves no entities and fetches nothing.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from lxml import etree

Kind = Literal["feed", "sitemap", "sitemapindex"]
_MAX_XML = 64 * 1024 * 1024  # a sitemap may be 50 MB uncompressed
_DATE_TAGS = ("published", "pubDate", "date", "issued", "publication_date", "updated",
              "modified", "lastmod")


_Link = Callable[[etree._Element], "str | None"]  # reads an entry element's URL


class NotADiscoveryDocument(ValueError):
    """The body is not a feed or sitemap (bad XML, an HTML page, an unknown root)."""


@dataclass(frozen=True)
class Candidate:
    url: str
    date: str | None = None   # ISO date of publication (or last modification), if given
    title: str | None = None


def parse_document(body: bytes) -> tuple[Kind, list[Candidate]]:
    """What the document is and the URLs it lists (articles, or sitemaps for an index)."""
    if body[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as gz:
                body = gz.read(_MAX_XML + 1)
        except (OSError, EOFError) as exc:
            raise NotADiscoveryDocument(f"bad gzip: {exc}") from None
        if len(body) > _MAX_XML:
            raise NotADiscoveryDocument("larger than 64 MB uncompressed")
    kind: Kind | None = None
    entry_tags: dict[str, _Link] = {}
    entries: list[Candidate] = []
    # streamed: each entry is read once complete, then dropped, so a 50,000-URL sitemap never
    # sits in memory as a tree
    events = etree.iterparse(io.BytesIO(body.lstrip()), events=("start", "end"),
                             resolve_entities=False, no_network=True, recover=True,
                             huge_tree=False, remove_comments=True)
    try:
        for event, element in events:
            if kind is None:  # the root element
                name = _local(element)
                if name not in _ROOTS:
                    raise NotADiscoveryDocument(
                        f"root element <{name}> is neither a feed nor a sitemap")
                kind, entry_tags = _ROOTS[name]
            elif event == "end" and isinstance(element.tag, str) and \
                    (link := entry_tags.get(_local(element))):
                if candidate := _candidate(element, link):
                    entries.append(candidate)
                element.clear()
                while element.getprevious() is not None:
                    del element.getparent()[0]
    except etree.XMLSyntaxError as exc:
        if kind is None:
            raise NotADiscoveryDocument(f"not XML: {exc}") from None
    if kind is None:
        raise NotADiscoveryDocument("empty or not XML")
    return kind, entries


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
    """ISO date (YYYY-MM-DD, UTC) of an RFC 822, ISO 8601 or W3C date string; None if none."""
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
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


# root element -> (kind, {entry element: how to read its link})
_ROOTS: dict[str, tuple[Kind, dict[str, _Link]]] = {
    "urlset": ("sitemap", {"url": _loc}),
    "sitemapindex": ("sitemapindex", {"sitemap": _loc}),
    **{name: ("feed", {"item": _feed_link, "entry": _feed_link})
       for name in ("rss", "RDF", "feed", "channel")},
}
