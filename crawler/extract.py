"""Article text and metadata from an HTML page: runs in worker processes, never on the reactor.

``extract_document`` is a pure function of the page, so a re-extraction of stored WARCs gives
the same result as the crawl did.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import lxml.html
import trafilatura

# Measured on the Scrapinghub article-body benchmark (benchmarks/extraction.py): precision-
# favouring extraction scores higher F1 than the defaults or recall-favouring settings.
EXTRACTION_PROFILE: dict[str, Any] = {
    "include_comments": False,
    "include_tables": True,
    "favor_precision": True,
    "deduplicate": False,
}

_BLANK_LINES = re.compile(r"\n\s*\n+")


def extract_document(
    html: bytes | str,
    url: str | None = None,
    *,
    encoding: str | None = None,
    prune: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """Title, author, date, language, sitename and body text of the page; None if no article.

    `text` holds the article body only, paragraphs separated by one blank line.
    """
    if isinstance(html, bytes):
        html = html.decode(encoding or "utf-8", errors="replace")
    if not html.strip():
        return None
    try:
        tree = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return None
    for selector in prune:
        for element in tree.cssselect(selector):
            element.drop_tree()
    doc = trafilatura.bare_extraction(tree, url=url, with_metadata=True, **EXTRACTION_PROFILE)
    if doc is None:
        return None
    data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text = _paragraphs(data.get("text") or "", data.get("title"))
    if not text:
        return None
    page_lang = (tree.get("lang") or "").split("-")[0].lower() or None
    return {
        "title": data.get("title") or None,
        "author": data.get("author") or None,
        "date": data.get("date") or None,
        "language": detect_language(text) or page_lang,
        "page_language": page_lang,
        "sitename": data.get("sitename") or None,
        "description": data.get("description") or None,
        "text": text,
        "text_digest": "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }


def _paragraphs(text: str, title: str | None) -> str:
    """One paragraph per line in trafilatura's output -> paragraphs separated by blank lines;
    the headline is metadata, so a first line repeating it is not body text."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and title and _folded(lines[0]) == _folded(title):
        lines = lines[1:]
    return "\n\n".join(lines)


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (py3langid, bundled model: no download)."""
    if len(text) < 20:
        return None
    import py3langid

    lang, _score = py3langid.classify(text[:5000])
    return lang


def warm_up() -> None:
    """Import and initialise the heavy parts once per worker process."""
    detect_language("warm up the language model with a sentence of plain text")
    extract_document("<html><body><article><p>" + "Warm up. " * 40 + "</p></article></body></html>")
