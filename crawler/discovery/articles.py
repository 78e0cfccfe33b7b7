"""Is a page an article? What its markup says, read from the raw bytes without building a DOM
(the spider asks for pages reached by links, when the outlet has no ``allow`` patterns)."""

from __future__ import annotations

import json
import re

_ARTICLE_TYPES = re.compile(r'"@type"\s*:\s*\[?\s*"(?:News|Blog|Report|Scholarly)?Article"')
_OG_ARTICLE = re.compile(rb"<meta\b(?=[^>]*\bproperty\s*=\s*[\"']?og:type)(?=[^>]*\bcontent\s*="
                         rb"\s*[\"']?article\b)", re.IGNORECASE)
_LD_JSON = re.compile(rb"<script\b[^>]*application/ld\+json[^>]*>(.*?)</script>",
                      re.IGNORECASE | re.DOTALL)
_DATED_ARTICLE = re.compile(rb"<article\b.*?(?:<time\b[^>]*\bdatetime|itemprop\s*=\s*[\"']?"
                            rb"datePublished)", re.IGNORECASE | re.DOTALL)


def markup_says_article(body: bytes) -> bool:
    """og:type article, JSON-LD (News)Article, or an <article> carrying a date: read from the
    bytes, without building a DOM in the crawl process."""
    if _OG_ARTICLE.search(body):
        return True
    for match in _LD_JSON.finditer(body):
        block = match.group(1).decode("utf-8", "replace")
        if _ARTICLE_TYPES.search(block) or _ld_is_article(block):
            return True
    return _DATED_ARTICLE.search(body) is not None


def _ld_is_article(block: str) -> bool:
    try:
        data = json.loads(block)
    except ValueError:
        return False
    items = data if isinstance(data, list) else data.get("@graph", [data]) if isinstance(
        data, dict) else []
    for item in items:
        kind = item.get("@type") if isinstance(item, dict) else None
        kinds = kind if isinstance(kind, list) else [kind]
        if any(isinstance(k, str) and k.endswith("Article") for k in kinds):
            return True
    return False
