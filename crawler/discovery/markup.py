"""What a page's markup says, read in one pass of libxml2's HTML tokenizer (lxml): its links,
pagination, canonical link, announced feeds, whether it is an article, and (when asked) its
requisites: what a browser loads to render it (stylesheets, scripts, images of every kind, fonts
and images its inline CSS names, frames, media, icons).

A tokenizer reads each character a bounded number of times, so the work is linear in the page's
size whatever the markup (a tag opened and never closed, elements nested a million deep), where
regexes over the bytes were quadratic. No tree is built: a parser target keeps only what is
asked. Comments, ``<script>``, ``<textarea>``, ``<xmp>``, ``<title>`` are text to the tokenizer,
so an ``<a href>`` (or an ``<img src>``) inside them is no link; ``<template>`` content is never
rendered, so nothing in it counts either. ``<noscript>`` content is markup to libxml2, as to a
browser without script: its images and stylesheets are requisites.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from lxml import etree

from crawler.discovery.css import (
    InlineStyles,
    declarations_references,
    stylesheet_references,
)

_MAX_LD_JSON = 256 * 1024  # a JSON-LD block larger than this is not read
_LD_ARTICLE = re.compile(r'"@type"\s*+:\s*+(?:\[\s*+)?"(?:News|Blog|Report|Scholarly)?Article"')
_OG_ARTICLE = re.compile(r"\s*article\b", re.IGNORECASE)
_FEED_TYPES = ("application/rss+xml", "application/atom+xml")

STYLESHEET, FRAME, MEDIA, ASSET = "stylesheet", "frame", "media", "asset"
"""Requisite kinds: a stylesheet's CSS and a frame's page are read for their own requisites; a
media body (video, audio) is fetched only when the outlet wants media; an asset is a leaf."""
_ICONS = {"icon", "apple-touch-icon", "apple-touch-icon-precomposed", "mask-icon"}
_PRELOADS = {"style": STYLESHEET, "font": ASSET, "script": ASSET, "image": ASSET}
_LAZY_SOURCES = ("data-src", "data-lazy-src", "data-original")
_LAZY_SETS = ("data-srcset", "data-lazy-srcset")
_BACKGROUND_TAGS = {"body", "table", "td", "th", "tr"}


@dataclass(frozen=True)
class Markup:
    links: list[str]       # <a href>: absolute http(s) URLs, no fragment, once each, page order
    next_pages: list[str]  # rel=next of <a> and <link>, absolute
    canonical: str | None  # the first <link rel=canonical>, absolute
    feeds: list[str]       # <link rel=alternate type=application/rss+xml|atom+xml>, absolute
    says_article: bool     # og:type article, JSON-LD (News)Article, or an <article> with a date
    requisites: list[Requisite] = field(default_factory=list)  # absolute, once each, in order


@dataclass(frozen=True)
class Requisite:
    url: str   # absolute http(s), without fragment, as written (not canonicalized: replay
               # looks the page's own reference up)
    kind: str  # STYLESHEET, FRAME, MEDIA or ASSET


def read_markup(body: bytes, page_url: str, encoding: str = "utf-8", *,
                head_only: bool = False, styles: InlineStyles | None = None) -> Markup:
    """The page's markup, decoded as the response was; `head_only` stops at ``</head>`` (all an
    article page without requisites is asked for: its canonical link). With `styles` (the
    crawl's memory of inline ``<style>`` blocks), its requisites are read too."""
    if head_only and (end := body.find(b"</head>")) > 0:
        body = body[:end]
    parser, reader = _thread_parser()
    reader.reset(styles)
    try:
        parser.feed(body.decode(encoding, "replace"))
        parser.close()
    except BaseException:
        del _PARSERS.pair  # left mid-document: the next page gets a new one
        raise
    return reader.markup(page_url)


# One parser and its target per thread, reused page after page: an lxml target parser and its
# context refer to each other, so a parser made per page (with the target's lists and libxml2's
# parsing context) would wait for the cyclic garbage collector, which comes rarely in a long
# crawl; a crawl reading thousands of pages grew by each one.
_PARSERS = threading.local()


def _thread_parser() -> tuple[etree.HTMLParser, _Reader]:
    pair = getattr(_PARSERS, "pair", None)
    if pair is None:
        reader = _Reader()
        pair = _PARSERS.pair = (etree.HTMLParser(target=reader), reader)
    return pair


# Elements that can make a browser load something, by name; any other, by its style attribute
_CARRIER_TAGS = ("img", "source", "input", "link", "script", "style", "iframe", "frame",
                 "video", "audio", "track", "embed", "object", "image", "use", "feimage", "base")
_STYLED = etree.XPath("//*[@style or @background]")


def tree_requisites(tree: etree._Element, page_url: str, styles: InlineStyles
                    ) -> list[Requisite]:
    """The requisites of a page already parsed into a tree (the extraction's, before it is
    cleaned: a page is parsed once). lxml picks the elements that can load something, in C;
    each is read as the tokenizer's reader reads it; ``<template>`` content is not."""
    reader = _Reader(styles)
    carriers = list(tree.iter(*_CARRIER_TAGS))
    carriers += [e for e in _STYLED(tree) if e.tag not in _CARRIER_TAGS]
    for element in carriers:
        if next(element.iterancestors("template"), None) is not None:
            continue
        parent = element.getparent()
        reader.media = int(parent is not None and parent.tag in ("video", "audio"))
        reader.start(element.tag, element.attrib)
        if reader.style is not None:  # a <style> block: its text, at once
            reader.data(element.text or "")
            reader.end("style")
    return reader.markup(page_url).requisites


class _Reader:
    """lxml parser target: called for each start and end tag and each text run."""

    def __init__(self, styles: InlineStyles | None = None) -> None:
        self.reset(styles)

    def reset(self, styles: InlineStyles | None = None) -> None:
        """Ready for the next document."""
        self.styles = styles  # None: requisites are not asked for
        self.requisites: dict[str, str] = {}  # raw reference -> kind, in order
        self.media = 0      # open <video>/<audio> elements: their <source> is media
        self.style: list[str] | None = None  # the <style> block being read
        self.base: str | None = None
        self.hrefs: dict[str, None] = {}  # distinct raw hrefs, in order
        self.next_pages: list[str] = []
        self.canonical: str | None = None
        self.feeds: list[str] = []
        self.says_article = False
        self.template = 0  # open <template> elements
        self.article = 0   # open <article> elements
        self.ld_json: list[str] | None = None  # the JSON-LD block being read
        self.ld_size = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "template" or self.template:
            self.template += tag == "template"
            return
        if self.styles is not None:
            self.requisite(tag, attrib)
        if tag == "a":
            href = attrib.get("href")
            if href is not None:
                self.hrefs[href] = None
                if "rel" in attrib and "next" in _tokens(attrib["rel"]):
                    self.next_pages.append(href)
        elif tag == "link":
            href, rel = attrib.get("href"), _tokens(attrib.get("rel", ""))
            if href is None:
                return
            if "next" in rel:
                self.next_pages.append(href)
            if "canonical" in rel and self.canonical is None:
                self.canonical = href
            if "alternate" in rel and attrib.get("type", "").strip().lower().startswith(
                    _FEED_TYPES):
                self.feeds.append(href)
        elif tag == "base":
            if self.base is None and "href" in attrib:
                self.base = attrib["href"]
        elif tag == "meta":
            if attrib.get("property", "").strip().lower() == "og:type" and _OG_ARTICLE.match(
                    attrib.get("content", "")):
                self.says_article = True
        elif tag == "script":
            if "application/ld+json" in attrib.get("type", "").lower():
                self.ld_json, self.ld_size = [], 0
        elif tag == "article":
            self.article += 1
        if self.article and ("datetime" in attrib and tag == "time" or "datepublished" in
                             _tokens(attrib.get("itemprop", ""))):
            self.says_article = True

    def requisite(self, tag: str, attrib: dict[str, str]) -> None:
        """What the element makes a browser load."""
        found = self.requisites
        if tag in ("img", "source") or tag == "input" and attrib.get("type", "").lower() == \
                "image":
            kind = MEDIA if tag == "source" and self.media else ASSET
            for name in ("src", *_LAZY_SOURCES):
                if name in attrib:
                    found.setdefault(attrib[name], kind)
            for name in ("srcset", *_LAZY_SETS):
                if name in attrib:
                    for url in srcset_urls(attrib[name]):
                        found.setdefault(url, ASSET)
        elif tag == "link":
            href, rel = attrib.get("href"), set(_tokens(attrib.get("rel", "")))
            if href is not None:
                if "stylesheet" in rel:
                    found.setdefault(href, STYLESHEET)
                elif rel & _ICONS:
                    found.setdefault(href, ASSET)
                elif "preload" in rel or "modulepreload" in rel:
                    kind = _PRELOADS.get(attrib.get("as", "script" if "modulepreload" in rel
                                                    else "").strip().lower())
                    if kind:
                        found.setdefault(href, kind)
        elif tag in ("script", "track", "embed"):
            if "src" in attrib:
                found.setdefault(attrib["src"], ASSET)
        elif tag in ("iframe", "frame"):
            for name in ("src", *_LAZY_SOURCES):
                if name in attrib:
                    found.setdefault(attrib[name], FRAME)
        elif tag in ("video", "audio"):
            self.media += 1
            if "src" in attrib:
                found.setdefault(attrib["src"], MEDIA)
            if "poster" in attrib:
                found.setdefault(attrib["poster"], ASSET)
        elif tag == "object":
            if "data" in attrib:
                found.setdefault(attrib["data"], ASSET)
        elif tag in ("image", "use", "feimage"):  # SVG
            href = attrib.get("href") or attrib.get("xlink:href")
            if href and not href.startswith("#"):
                found.setdefault(href, ASSET)
        elif tag == "style":
            self.style = []
        if "style" in attrib:
            for url in declarations_references(attrib["style"]):
                found.setdefault(url, ASSET)
        if "background" in attrib and tag in _BACKGROUND_TAGS:
            found.setdefault(attrib["background"], ASSET)

    def end(self, tag: str) -> None:
        if self.template:
            self.template -= tag == "template"
        elif tag in ("video", "audio") and self.media:
            self.media -= 1
        elif tag == "style" and self.style is not None and self.styles is not None:
            for ref in self.styles.references("".join(self.style)):
                self.requisites.setdefault(ref.url, STYLESHEET if ref.imported else ASSET)
            self.style = None
        elif tag == "article":
            self.article -= 1
        elif tag == "script" and self.ld_json is not None:
            if not self.says_article and self.ld_size <= _MAX_LD_JSON:
                self.says_article = _ld_says_article("".join(self.ld_json))
            self.ld_json = None

    def data(self, text: str) -> None:
        if self.style is not None:
            self.style.append(text)
        elif self.ld_json is not None:
            self.ld_size += len(text)
            if self.ld_size <= _MAX_LD_JSON:
                self.ld_json.append(text)

    def close(self) -> None:
        pass

    def markup(self, page_url: str) -> Markup:
        base = urljoin(page_url, self.base.strip()) if self.base else page_url
        parts = urlsplit(base)
        origin = f"{parts.scheme}://{parts.netloc}"
        links = dict.fromkeys(url for href in self.hrefs
                              if (url := _absolute(href, base, origin)) is not None)
        requisites: dict[str, str] = {}
        for href, kind in self.requisites.items():
            if (url := _absolute(href, base, origin)) is not None:
                requisites.setdefault(url, kind)
        return Markup(
            links=list(links),
            next_pages=[urljoin(base, href.strip()) for href in self.next_pages],
            canonical=urljoin(base, self.canonical.strip()) if self.canonical else None,
            feeds=[urljoin(base, href.strip()) for href in self.feeds],
            says_article=self.says_article,
            requisites=[Requisite(url, kind) for url, kind in requisites.items()])


def _tokens(value: str) -> list[str]:
    """An attribute's space-separated values (rel, itemprop), compared case-insensitively."""
    return value.lower().split()


def stylesheet_requisites(text: str, sheet_url: str) -> list[Requisite]:
    """What a stylesheet loads, resolved against its own URL, as a page's references are; an
    ``@import`` is a stylesheet itself."""
    parts = urlsplit(sheet_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    found: dict[str, str] = {}
    for ref in stylesheet_references(text):
        if (url := _absolute(ref.url, sheet_url, origin)) is not None:
            found.setdefault(url, STYLESHEET if ref.imported else ASSET)
    return [Requisite(url, kind) for url, kind in found.items()]


def srcset_urls(value: str) -> list[str]:
    """The image candidates' URLs of a ``srcset`` (HTML's parsing rules: a URL is a run of
    non-space characters, trailing commas excepted; descriptors run to the next comma, and a
    comma inside parentheses does not end them)."""
    urls, i, n = [], 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        start = i
        while i < n and not value[i].isspace():
            i += 1
        url = value[start:i]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth = 0
            while i < n:
                char = value[i]
                if char == "(":
                    depth += 1
                elif char == ")" and depth:
                    depth -= 1
                elif char == "," and not depth:
                    break
                i += 1
        if url:
            urls.append(url)
    return urls


def _absolute(href: str, base: str, origin: str) -> str | None:
    """An absolute http(s) URL without its fragment; None for mailto:, javascript:, data:,
    #top..."""
    href = href.strip()
    if not href or href[0] == "#":
        return None
    if href[0] == "/" and href[:2] != "//":  # the common cases first: urljoin is slow
        url = origin + href
    elif href.startswith(("http://", "https://")):
        url = href
    else:
        url = urljoin(base, href)
        if urlsplit(url).scheme not in ("http", "https"):
            return None
    return url.split("#", 1)[0]


def _ld_says_article(block: str) -> bool:
    """An (News|Blog|Report|Scholarly)Article @type anywhere in the block, or an @type ending in
    Article at its top level or in its @graph. Deep nesting is refused, not recursed into."""
    if _LD_ARTICLE.search(block):
        return True
    try:
        data = json.loads(block)
    except (ValueError, RecursionError):
        return False
    items = data if isinstance(data, list) else data.get("@graph", [data]) if isinstance(
        data, dict) else []
    for item in items:
        kind = item.get("@type") if isinstance(item, dict) else None
        kinds = kind if isinstance(kind, list) else [kind]
        if any(isinstance(k, str) and k.endswith("Article") for k in kinds):
            return True
    return False
