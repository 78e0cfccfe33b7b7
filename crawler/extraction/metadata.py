"""Article metadata from the page's own markup: title, authors, published and modified dates
(``crawler.extraction.dates``), site name, description, tags, categories, declared language.

Every value comes from what the page states (JSON-LD, meta tags, ``<time>``, its dateline, the
URL) or from the feed/sitemap entry that listed it; the crawl date is never a published date.
Absent values are None (empty lists for tags and categories).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from lxml.html import HtmlElement

from crawler.extraction.dates import page_dates

_ARTICLE_TYPES = ("Article", "BlogPosting", "Report", "LiveBlogPosting", "Posting")
_AUTHOR_META = ("article:author", "author", "parsely-author", "sailthru.author", "dc.creator",
                "dcterms.creator", "byl", "citation_author")
# "A, B", "A; B", "A and B" in the languages crawled (a comma only between full names)
_AUTHOR_SEPARATORS = re.compile(r"\s*(?:;|,\s*(?=\S+\s+\S+)|\s(?:and|und|et|i|и|і|та)\s)\s*")
# " | ", " - ", "::"...; and "标题_频道_网站": an underscore before a Han or kana character
_TITLE_SEPARATOR = re.compile(r"\s+[|\-–—·:»/\\•]+\s+|\s*::\s*|\s+\|\s*|\s*\|\s+"
                              r"|_(?=[\u3040-\u30ff\u3400-\u9fff])")
_BYLINE_LEAD = re.compile(r"^(?:by|von|par|por|przez|автор|авторка|author)\s*[:\s]\s*",
                          re.IGNORECASE)


def page_metadata(tree: HtmlElement, url: str | None = None, *,
                  listed_date: str | None = None) -> dict[str, Any]:
    """Metadata of a parsed page; `listed_date` is the date a feed or sitemap gave the page
    (after what the page states: ``crawler.extraction.dates``)."""
    meta = _meta_tags(tree)
    ld = _json_ld(tree)
    article = next((o for o in ld if _is_article(o)), None)
    page = next((o for o in ld if _types(o) & {"WebPage", "NewsArticle"}), None)
    sitename = (_first(meta, "og:site_name") or _publisher(article) or _site_from_ld(ld)
                or _first(meta, "application-name"))
    title = _title(tree, meta, article, sitename, url)
    authors = _authors(tree, meta, article)
    published, modified = page_dates(tree, url, meta, article or page, listed_date)
    return {
        "title": title,
        "authors": authors,
        "author": "; ".join(authors) or None,
        "date": published,
        "date_modified": modified,
        "sitename": sitename,
        "description": (_first(meta, "description", "og:description", "twitter:description")
                        or _ld_text(article, "description")),
        "tags": _unique(_keywords(meta, article)),
        "categories": _unique(_sections(meta, article)),
        "page_language": _page_language(tree, meta, article),
    }


# ---------------------------------------------------------------- sources


def _meta_tags(tree: HtmlElement) -> dict[str, list[str]]:
    """``<meta>`` values by lower-cased name/property/itemprop, in document order."""
    found: dict[str, list[str]] = {}
    for el in tree.iter("meta"):
        key = el.get("property") or el.get("name") or el.get("itemprop") or el.get("http-equiv")
        value = el.get("content") or el.get("datetime")
        if key and value and value.strip():
            found.setdefault(key.strip().lower(), []).append(" ".join(value.split()))
    for el in tree.xpath("//*[@itemprop][not(self::meta)]"):
        key = el.get("itemprop", "").strip().lower()
        if key in ("datepublished", "datemodified", "author", "headline"):
            value = el.get("datetime") or el.get("content") or el.text_content()
            if value and value.strip():
                found.setdefault(f"itemprop:{key}", []).append(" ".join(value.split()))
    return found


def _first(meta: dict[str, list[str]], *names: str) -> str | None:
    for name in names:
        values = meta.get(name)
        if values:
            return values[0]
    return None


def _json_ld(tree: HtmlElement) -> list[dict[str, Any]]:
    """Every JSON-LD object of the page, ``@graph`` and lists flattened."""
    objects: list[dict[str, Any]] = []
    for script in tree.xpath("//script[contains(@type, 'ld+json')]"):
        try:
            data = json.loads(script.text or "")
        except ValueError:
            continue
        stack = [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                if "@graph" in item:
                    stack.extend(item["@graph"] if isinstance(item["@graph"], list) else [])
                objects.append(item)
                main = item.get("mainEntity")
                if isinstance(main, dict):
                    stack.append(main)
    return objects


def _types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.rsplit("/", 1)[-1] for k in kinds if isinstance(k, str)}


def _is_article(obj: dict[str, Any]) -> bool:
    return any(k.endswith(_ARTICLE_TYPES) for k in _types(obj))


def _ld_text(obj: dict[str, Any] | None, key: str) -> str | None:
    if not obj:
        return None
    value = obj.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value")
    return " ".join(value.split()) if isinstance(value, str) and value.strip() else None


def _names(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    names = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("name")
        if isinstance(item, str) and item.strip() and not item.startswith(("http:", "https:")):
            names.append(" ".join(item.split()))
    return names


def _publisher(article: dict[str, Any] | None) -> str | None:
    names = _names((article or {}).get("publisher"))
    return names[0] if names else None


def _site_from_ld(objects: list[dict[str, Any]]) -> str | None:
    site = next((o for o in objects if "WebSite" in _types(o)), None)
    return _ld_text(site, "name")


# ---------------------------------------------------------------- title


def _title(tree: HtmlElement, meta: dict[str, list[str]], article: dict[str, Any] | None,
           sitename: str | None, url: str | None) -> str | None:
    """The headline without the site's name around it ("Headline | Site")."""
    h1 = next((" ".join(h.text_content().split()) for h in tree.iter("h1")
               if h.text_content().strip()), None)
    head = tree.find(".//title")
    title_tag = " ".join(head.text_content().split()) if head is not None else None
    candidates = (_first(meta, "og:title"), _ld_text(article, "headline"),
                  _first(meta, "twitter:title"), title_tag, h1)
    site_names = {_fold(n) for n in (sitename, _host_name(url)) if n}
    for candidate in candidates:
        if candidate and not _is_site(candidate, site_names):
            return _strip_site(candidate, site_names, h1)
    return None


def _strip_site(title: str, site_names: set[str], h1: str | None) -> str:
    parts = [p for p in _TITLE_SEPARATOR.split(title) if p.strip()]
    if len(parts) < 2:
        return title
    kept = list(parts)
    while len(kept) > 1 and _is_site(kept[-1], site_names):
        kept.pop()
    while len(kept) > 1 and _is_site(kept[0], site_names):
        kept.pop(0)
    if (len(kept) > 1 and h1 and not _is_site(h1, site_names)
            and _fold(h1) in {_fold(p) for p in kept}):
        return h1  # "Headline - Section - Site" whose headline is the page's <h1>
    if len(kept) == len(parts):
        return title
    # cut the title text itself, so separators inside the headline survive
    start = title.find(kept[0])
    end = title.rfind(kept[-1]) + len(kept[-1])
    return title[start:end].strip()


def _is_site(part: str, site_names: set[str]) -> bool:
    folded = _fold(part)
    squeezed = re.sub(r"\W+", "", folded)
    return folded in site_names or any(squeezed and squeezed == re.sub(r"\W+", "", s)
                                       for s in site_names)


def _host_name(url: str | None) -> str | None:
    """"tech-wire" from https://www.tech-wire.example.com/...: the label before the suffix."""
    host = urlsplit(url or "").hostname or ""
    if not re.search(r"[a-z]", host):
        return None  # an IP address names no site
    labels = [x for x in host.split(".") if x not in ("www", "m", "amp")]
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return labels[-3]  # example.co.uk, example.com.ua
    return labels[-2] if len(labels) >= 2 else None


_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "or", "ne", "in"})


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


# ---------------------------------------------------------------- authors


def _authors(tree: HtmlElement, meta: dict[str, list[str]],
             article: dict[str, Any] | None) -> list[str]:
    names = _names((article or {}).get("author"))
    if not names:
        for key in _AUTHOR_META:
            names = [v for v in meta.get(key, ()) if not v.startswith(("http:", "https:"))]
            if names:
                break
    if not names:
        names = meta.get("itemprop:author", [])
    if not names:
        names = [" ".join(a.text_content().split()) for a in tree.xpath("//a[@rel='author']")]
    cleaned = []
    for name in names:
        for part in _AUTHOR_SEPARATORS.split(name):
            part = _BYLINE_LEAD.sub("", part).strip(" ,;")
            if 1 < len(part) <= 80 and part not in cleaned:
                cleaned.append(part)
    return cleaned


# ---------------------------------------------------------------- tags, categories, language


def _keywords(meta: dict[str, list[str]], article: dict[str, Any] | None) -> list[str]:
    tags = list(meta.get("article:tag", ()))
    keywords = (article or {}).get("keywords")
    if isinstance(keywords, list):
        tags += [k for k in keywords if isinstance(k, str)]
    elif isinstance(keywords, str):
        tags += keywords.split(",")
    if not tags:
        for key in ("news_keywords", "keywords"):
            for value in meta.get(key, ()):
                tags += value.split(",")
    return tags


def _sections(meta: dict[str, list[str]], article: dict[str, Any] | None) -> list[str]:
    sections = list(meta.get("article:section", ()))
    section = (article or {}).get("articleSection")
    if isinstance(section, list):
        sections += [s for s in section if isinstance(s, str)]
    elif isinstance(section, str):
        sections.append(section)
    return sections


def _unique(values: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for value in values:
        value = " ".join(value.split())
        if value and value.casefold() not in seen:
            seen[value.casefold()] = value
    return list(seen.values())


def _page_language(tree: HtmlElement, meta: dict[str, list[str]],
                   article: dict[str, Any] | None) -> str | None:
    """The language the page declares (``<html lang>``, Content-Language, og:locale)."""
    declared = (tree.get("lang") or tree.get("xml:lang") or _first(meta, "content-language")
                or _first(meta, "og:locale") or _ld_text(article, "inLanguage") or "")
    code = re.split(r"[-_,\s]", declared.strip().lower(), maxsplit=1)[0]
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None
