"""Article text and metadata from an HTML page: runs in worker processes, never on the reactor.

``extract_document`` is a pure function of the page (and of the outlet's settings and learned
templates passed in), so a re-extraction of stored WARCs gives the same result as the crawl did.
The steps, in order:

1. parse; read the metadata from the untouched page (``crawler.extraction.metadata``);
2. the outlet's overrides: ``prune`` selectors removed, the ``body`` selector's element(s) kept;
   then the page regions trafilatura deletes unread (``aside``, ``nav``, ``footer``, ``menu``);
3. the standfirst (the page's description set apart above the body) removed: it is metadata;
4. generic teaser and widget removal (``crawler.extraction.boilerplate``);
5. an article body split in sibling chunks (around ads) joined back into one container;
6. trafilatura with ``EXTRACTION_PROFILE`` finds the body;
7. the headline, a byline or dateline at the top or bottom, and the outlet's learned template
   blocks (``crawler.extraction.templates``) are dropped; paragraphs are joined with blank lines.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Collection
from configparser import ConfigParser
from copy import deepcopy
from functools import cache
from typing import Any

import lxml.etree
import lxml.html
from lxml.html import HtmlElement

from crawler.extraction.boilerplate import remove_boilerplate
from crawler.extraction.dates import without_dates
from crawler.extraction.metadata import page_metadata
from crawler.extraction.scripts import CJK_WEIGHT, WORD, cjk_characters, text_length
from crawler.extraction.templates import fingerprint, without_templates

# Measured on the Scrapinghub article-body benchmark (benchmarks/extraction.py --profiles),
# with the project's own cleaning in front: trafilatura's balanced mode without its fallback
# extractors scores the highest F1 and is the fastest; favor_precision then cuts recall more
# than it adds precision, because the widgets it is cautious about are gone already.
EXTRACTION_PROFILE: dict[str, Any] = {
    "fast": True,
    "favor_precision": False,
    "favor_recall": False,
    "include_comments": False,
    "include_tables": True,
    "deduplicate": False,
}

LANGUAGE_SAMPLE = 600  # characters of the text language detection reads

# Every element an HtmlElement, chosen in C: lxml.html's own parser asks a Python method for each
# element's class (forms and inputs get their own), which cost a tenth of the extraction.
_PARSER = lxml.etree.HTMLParser(remove_comments=True, remove_pis=True, collect_ids=False,
                                encoding="utf-8")
_PARSER.set_element_class_lookup(lxml.etree.ElementDefaultClassLookup(
    element=lxml.html.HtmlElement, comment=lxml.html.HtmlComment,
    pi=lxml.html.HtmlProcessingInstruction, entity=lxml.html.HtmlEntity))
# Never text, and trafilatura drops them anyway: gone once the metadata (JSON-LD) is read, so the
# cleaning passes walk a smaller tree.
_NOT_TEXT = ("script", "style", "noscript", "svg")
# Page regions trafilatura deletes unread (its MANUALLY_CLEANED tags, whatever their content):
# gone once the outlet's body selector had its say, so our passes and trafilatura's walk a tree
# about half the size (the same text: on the Scrapinghub set, the fixture outlets, the benchmark
# pages).
_REGIONS = ("aside", "nav", "footer", "menu")
# Class names of an article body container (in any letter case): a body cut in chunks repeats
# the same class on sibling containers.
_BODY_CLASS = re.compile(r"article[-_]{0,2}(?:body|content|text)|entry-content|body-text"
                         r"|post-(?:content|body)|story-(?:body|content)|content-body",
                         re.IGNORECASE)
# Elements that can hold a standfirst (with at most 3 child elements: a paragraph, not a box)
_STANDFIRST_TAGS = ("p", "h2", "h3", "h4", "div", "span")
# C0 control characters but tab, newline and carriage return: libxml2 stops reading a page at
# most of them (trafilatura, which cleans its input, then finds text where we found none).
_HTML_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# What no text record holds: control characters but tab and newline (a JSON-LD "\u001b"), and
# lone surrogates (a JSON-LD "\ud800": no UTF-8 can say them), which become U+FFFD.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_DIGIT = re.compile(r"\d")
_BYLINE = re.compile(r"^(?:by|von|par|por|przez|autor|autorka|автор|авторка|text|texte|texto|"
                     r"текст)\b\s*:?\s*")
_NAME_SEPARATORS = re.compile(r"\s*(?:[,;|·•]|\s(?:and|und|et|y|i|и|і|та)\s)\s*")


def extract_document(
    html: bytes | str,
    url: str | None = None,
    *,
    encoding: str | None = None,
    prune: tuple[str, ...] = (),
    body: str | None = None,
    listed_date: str | None = None,
    templates: Collection[int] = (),
) -> dict[str, Any] | None:
    """Title, authors, date, language, sitename, description, tags, categories and body text
    of the page; None if it has no article text.

    `text` holds the article body only, paragraphs separated by one blank line. `prune` and
    `body` are the outlet's CSS selectors; `listed_date` is the date the feed or sitemap gave
    the page (last resort); `templates` are the outlet's learned template block fingerprints.
    `fingerprints` lists the fingerprints of the page's paragraphs (templates included), for
    the template learner.
    """
    tree = parse_html(html, encoding)
    if tree is None:
        return None
    meta = {k: _printable(v) for k, v in page_metadata(tree, url, listed_date=listed_date).items()}
    headlines = _headlines(tree, meta["title"])
    lxml.etree.strip_elements(tree, *_NOT_TEXT, with_tail=False)
    for selector in prune:
        for element in tree.cssselect(selector):
            element.drop_tree()
    if body:
        _keep_only(tree, body)
    lxml.etree.strip_elements(tree, *_REGIONS, with_tail=False)
    _drop_standfirst(tree, meta["description"])
    remove_boilerplate(tree)
    _join_split_bodies(tree)
    # imported here, not at the top: the crawl process imports this module, only the pool's
    # workers extract (a quarter of a second and tens of MB not spent in the crawl)
    import trafilatura

    doc = trafilatura.bare_extraction(tree, url=url, config=_trafilatura_config(
        _mostly_cjk(tree)), **EXTRACTION_PROFILE)
    if doc is None:
        return None
    lines = [" ".join(line.split()) for line in (doc.text or "").splitlines()]
    lines = [line for line in lines if line]
    lines = _without_meta_lines(lines, headlines, meta["authors"])
    prints = [fingerprint(line) for line in lines]
    lines = without_templates(lines, prints, templates)
    text = _printable("\n\n".join(lines))
    if not text:
        return None
    return {
        **meta,
        "language": detect_language(text) or meta["page_language"],
        "text": text,
        "text_digest": "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "fingerprints": prints,
    }


def _mostly_cjk(tree: HtmlElement) -> bool:
    """Whether the page's text is mostly Chinese or Japanese (a third of its characters, white
    space aside, are Han or kana: the rest is punctuation, digits, Latin names)."""
    page_body = tree.find("body")
    sample = "".join((page_body if page_body is not None else tree).text_content().split())
    return cjk_characters(sample) * 3 >= len(sample) > 0


@cache
def _trafilatura_config(cjk: bool) -> ConfigParser:
    """trafilatura's settings; for Chinese and Japanese text its character thresholds divided
    by ``CJK_WEIGHT``: 250 characters is a short text in a spaced script but three Chinese
    paragraphs, and below it trafilatura gives up its extraction for the whole page's text."""
    from trafilatura.settings import use_config

    config = use_config()
    if cjk:
        config = deepcopy(config)
        for key in ("MIN_EXTRACTED_SIZE", "MIN_DUPLCHECK_SIZE"):
            config.set("DEFAULT", key, str(config.getint("DEFAULT", key) // CJK_WEIGHT))
    return config


def parse_html(html: bytes | str, encoding: str | None = None) -> HtmlElement | None:
    """The page as an lxml tree (comments and processing instructions dropped), or None."""
    if isinstance(html, bytes):
        html = html.decode(encoding or "utf-8", errors="replace")
    html = _HTML_CONTROL.sub("", html)
    if not html.strip():
        return None
    try:  # re-encoded, so an XML declaration naming another charset cannot mislead lxml
        return lxml.html.document_fromstring(html.encode("utf-8", errors="replace"),
                                             parser=_PARSER)
    except (ValueError, lxml.etree.ParserError):
        return None


def _printable(value: Any) -> Any:
    """A string (or a list of them) as a text record can hold it: see ``_CONTROL``."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", _CONTROL.sub("", value))
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def _line_key(text: str) -> str:
    """Paragraphs compared blind to case and whitespace."""
    return " ".join(text.split()).casefold()


def _headlines(tree: HtmlElement, title: str | None) -> set[str]:
    """The page's headline as the page writes it (<h1>, og:title, <title>, the clean title)."""
    found = {_line_key(h.text_content()) for h in tree.iter("h1")}
    found.update(_line_key(v) for v in tree.xpath("//meta[@property='og:title']/@content"))
    head = tree.find(".//title")
    if head is not None:
        found.add(_line_key(head.text_content()))
    if title:
        found.add(_line_key(title))
    found.discard("")
    return found


def _without_meta_lines(lines: list[str], headlines: set[str], authors: list[str]
                        ) -> list[str]:
    """The headline, byline and dateline at the top (in any order), and a byline or dateline at
    the bottom of the body are metadata, not text."""
    names = {_line_key(a) for a in authors}
    start, end = 0, len(lines)
    while start < end and (_line_key(lines[start]) in headlines
                           or _is_meta_line(lines[start], names)):
        start += 1
    while end > start and _is_meta_line(lines[end - 1], names):
        end -= 1
    return lines[start:end]


def _is_meta_line(line: str, names: set[str]) -> bool:
    length = text_length(line)
    if length > 100:
        return False
    words = WORD.findall(without_dates(line).casefold())
    if length <= 40 and _DIGIT.search(line) and len(words) <= 3:
        return True  # "10 августа, 09:00", "date 2025-08-14", "2025年8月14日 14時05分"
    if not names:
        return False
    rest = _BYLINE.sub("", _line_key(line))
    parts = [p for p in _NAME_SEPARATORS.split(rest) if p and not _DIGIT.search(p)]
    return bool(parts) and all(p in names for p in parts)


def _keep_only(tree: HtmlElement, selector: str) -> None:
    """The outlet's `body` selector: only the matching element(s) stay in <body>; a page where
    nothing matches is left whole (the generic extraction still applies)."""
    page_body = tree.find("body")
    if page_body is None:
        return
    matches = [m for m in tree.cssselect(selector) if page_body in m.iterancestors()]
    if not matches:
        return
    outer = [m for m in matches if not any(a in matches for a in m.iterancestors())]
    container = lxml.html.Element("article")
    for element in outer:
        element.tail = None
        if element.tag in _REGIONS:  # the outlet says this is the article, not a side region
            element.tag = "div"
        container.append(element)  # moves it out of its old place
    for child in list(page_body):
        page_body.remove(child)
    page_body.text = None
    page_body.append(container)


def _drop_standfirst(tree: HtmlElement, description: str | None) -> None:
    """The standfirst is the page's description printed on its own above the body; the same
    text as the first of the body's paragraphs (a lede reused as description) stays."""
    page_body = tree.find("body") if description else None
    if page_body is None:
        return
    element = _first_with_text(page_body, " ".join(description.split()))
    if element is None:
        return
    block = element  # the paragraph, or the box holding nothing but it
    while (block.getparent() is not None and block.getparent().tag not in ("body", "html")
           and sum(1 for c in block.getparent() if isinstance(c.tag, str)
                   and c.text_content().strip()) == 1):
        block = block.getparent()
    if not any(c.tag == block.tag and (c.tag == "p" or c.get("class") == block.get("class"))
               and text_length(c.text_content()) >= 40 for c in block.itersiblings()):
        element.drop_tree()  # no paragraph like it follows: it is not the body's first


def _first_with_text(root: HtmlElement, text: str) -> HtmlElement | None:
    """The first paragraph-like element whose text, whitespace collapsed, is `text` (a loop in
    Python: libxml2's XPath for the same test costs three times as much)."""
    for element in root.iter(_STANDFIRST_TAGS):
        if len(element) <= 3:
            content = element.text_content()
            if len(content) >= len(text) and " ".join(content.split()) == text:
                return element
    return None


def _join_split_bodies(tree: HtmlElement) -> None:
    """Body chunks that share one container class and one grandparent (a body cut by ads or
    embeds) become one container, so the whole body is found, not only its first chunk."""
    groups: dict[str, list[HtmlElement]] = defaultdict(list)
    for element in tree.xpath("//*[@class][self::div or self::section or self::article]"):
        cls = element.get("class", "")
        if _BODY_CLASS.search(cls):
            groups[cls].append(element)
    for chunks in groups.values():
        if len(chunks) < 2 or len({c.getparent().getparent() for c in chunks}) != 1:
            continue
        if any(a in chunks for c in chunks for a in c.iterancestors()):
            continue
        first = chunks[0]
        for chunk in chunks[1:]:
            for child in list(chunk):
                first.append(child)
            chunk.drop_tree()


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (py3langid, bundled model: no download).

    The first ``LANGUAGE_SAMPLE`` characters decide: py3langid walks the text byte by byte in
    Python (a tenth of a page's extraction at 1,000 Cyrillic characters). On 419 texts in 12
    languages (Scrapinghub's, the fixture outlets', the seeds', the benchmark's Polish,
    Ukrainian and Russian pages) 600 characters gave the same language as 1,000 for every one
    (and on 171 of them 1,000 the same as 2,000); 300 still did."""
    if len(text) < 20:
        return None
    import py3langid

    lang, _score = py3langid.classify(text[:LANGUAGE_SAMPLE])
    return lang
