"""Link extraction from raw HTML bytes, without building a tree.

A link-following crawl runs this on every page (~150 links each); a regex scan of the bytes, as
Heritrix's ExtractorHTML does, costs a fraction of a DOM parse and holds no tree in memory. It
may also see links in comments or scripts: the outlet's domain filter bounds what is followed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

_ATTR = rb"""\s(?:href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))"""
_ANCHOR = re.compile(rb"<a\b[^>]*?" + _ATTR, re.IGNORECASE)
_BASE = re.compile(rb"<base\b[^>]*?" + _ATTR, re.IGNORECASE)
_NOT_WEB = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # mailto:, tel:, javascript: ...


def page_links(body: bytes, page_url: str, encoding: str = "utf-8") -> Iterator[str]:
    """Absolute http(s) URLs of the page's ``<a href>`` links, without fragments, once each."""
    base = page_url
    match = _BASE.search(body, 0, 65536)
    if match:
        base = urljoin(page_url, _decode(match, encoding))
    parts = urlsplit(base)
    origin = f"{parts.scheme}://{parts.netloc}"
    seen: set[bytes] = set()
    for match in _ANCHOR.finditer(body):
        raw = match.group(1) or match.group(2) or match.group(3) or b""
        if raw in seen:
            continue
        seen.add(raw)
        href = _decode(match, encoding).strip()
        if not href or href[0] == "#":
            continue
        if href[0] == "/" and href[:2] != "//":
            url = origin + href
        elif href.startswith(("http://", "https://")):
            url = href
        elif _NOT_WEB.match(href):
            continue
        else:
            url = urljoin(base, href)
        yield url.split("#", 1)[0]


def _decode(match: re.Match[bytes], encoding: str) -> str:
    raw = match.group(1) or match.group(2) or match.group(3) or b""
    text = raw.decode(encoding, errors="replace")
    return html.unescape(text) if "&" in text else text


def rel_links(body: bytes, rel: str, limit: int = 262144) -> list[str]:
    """hrefs of ``<a>``/``<link>`` elements whose rel includes `rel` (next, canonical...)."""
    pattern = _REL_CACHE.get(rel)
    if pattern is None:
        pattern = _REL_CACHE[rel] = re.compile(
            rb"<(?:a|link)\b(?=[^>]*\brel\s*=\s*[\"']?(?:[^\"'>]*\s)?" + re.escape(rel.encode())
            + rb"\b)[^>]*?" + _ATTR, re.IGNORECASE)
    return [html.unescape((m.group(1) or m.group(2) or m.group(3)).decode("utf-8", "replace"))
            .strip() for m in pattern.finditer(body, 0, limit if rel != "next" else len(body))]


_REL_CACHE: dict[str, re.Pattern[bytes]] = {}
