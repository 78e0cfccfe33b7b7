"""Article metadata from the page's own markup: title, authors, published date, site name,
description, tags, categories, declared language.

Every value comes from what the page states (JSON-LD, meta tags, ``<time>``, the URL) or from
the feed/sitemap entry that listed it; nothing is guessed from the text, and the crawl date is
never a published date. Absent values are None (empty lists for tags and categories).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml.html import HtmlElement

_ARTICLE_TYPES = ("Article", "BlogPosting", "Report", "LiveBlogPosting", "Posting")
# Meta tags that state the publication date, most specific first.
_DATE_META = ("article:published_time", "og:article:published_time", "og:published_time",
              "datepublished", "date_published", "published_time", "article.published",
              "publish-date", "publish_date", "publishdate", "pubdate", "parsely-pub-date",
              "sailthru.date", "dc.date.issued", "dcterms.issued", "dc.date.created",
              "dcterms.created", "dc.date", "dcterms.date", "citation_publication_date",
              "citation_date", "date")
_AUTHOR_META = ("article:author", "author", "parsely-author", "sailthru.author", "dc.creator",
                "dcterms.creator", "byl", "citation_author")
# "A, B", "A; B", "A and B" in the languages crawled (a comma only between full names)
_AUTHOR_SEPARATORS = re.compile(r"\s*(?:;|,\s*(?=\S+\s+\S+)|\s(?:and|und|et|i|и|і|та)\s)\s*")
_TITLE_SEPARATOR = re.compile(r"\s+[|\-–—·:»/\\•]+\s+|\s*::\s*|\s+\|\s*|\s*\|\s+")
_BYLINE_LEAD = re.compile(r"^(?:by|von|par|por|przez|автор|авторка|author)\s*[:\s]\s*",
                          re.IGNORECASE)
_MONTHS = {m: i for i, names in enumerate((
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",),
    ("jun", "june"), ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"),
    ("oct", "october"), ("nov", "november"), ("dec", "december")), start=1) for m in names}
_ISO = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?![\d])")
_SLASHED = re.compile(r"^\s*(\d{4})/(\d{1,2})/(\d{1,2})(?![\d])")
_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})(?:$|[T\s])")
_NAMED = re.compile(r"^\s*(?:\w+,?\s+)?(?:(\d{1,2})\s+([a-z]{3,9})\.?|([a-z]{3,9})\.?\s+"
                    r"(\d{1,2})(?:st|nd|rd|th)?),?\s+(\d{4})\b", re.IGNORECASE)
_URL_DATES = (
    re.compile(r"/((?:19|20)\d{2})[/_-](\d{1,2})[/_-](\d{1,2})(?:[/_.-]|$)"),
    re.compile(r"/((?:19|20)\d{2})/([a-z]{3})/(\d{1,2})(?:/|$)", re.IGNORECASE),
    re.compile(r"(?:^|[/_-])((?:19|20)\d{2})(\d{2})(\d{2})(?:[/_.-]|$)"),
)


def page_metadata(tree: HtmlElement, url: str | None = None, *,
                  listed_date: str | None = None) -> dict[str, Any]:
    """Metadata of a parsed page; `listed_date` (from a feed or sitemap) is the date of last
    resort, after JSON-LD, meta tags, ``<time>`` and the URL."""
    meta = _meta_tags(tree)
    ld = _json_ld(tree)
    article = next((o for o in ld if _is_article(o)), None)
    page = next((o for o in ld if _types(o) & {"WebPage", "NewsArticle"}), None)
    sitename = (_first(meta, "og:site_name") or _publisher(article) or _site_from_ld(ld)
                or _first(meta, "application-name"))
    title = _title(tree, meta, article, sitename, url)
    authors = _authors(tree, meta, article)
    return {
        "title": title,
        "authors": authors,
        "author": "; ".join(authors) or None,
        "date": _published(tree, meta, article or page, url, listed_date),
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
        if key in ("datepublished", "author", "headline"):
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


# ---------------------------------------------------------------- date


def _published(tree: HtmlElement, meta: dict[str, list[str]], article: dict[str, Any] | None,
               url: str | None, listed_date: str | None) -> str | None:
    """JSON-LD, then meta tags, then ``<time>``, then the URL, then the feed/sitemap entry."""
    for value in _ld_dates(article):
        found = parse_date(value)
        if found:
            return found
    for key in (*_DATE_META, "itemprop:datepublished"):
        for value in meta.get(key, ()):
            found = parse_date(value)
            if found:
                return found
    for value in _time_elements(tree):
        found = parse_date(value)
        if found:
            return found
    found = url_date(url)
    if found:
        return found
    return parse_date(listed_date) if listed_date else None


def _ld_dates(article: dict[str, Any] | None) -> list[str]:
    if not article:
        return []
    values = [article.get("datePublished"), article.get("dateCreated")]
    return [v for v in values if isinstance(v, str)]


def _time_elements(tree: HtmlElement) -> list[str]:
    """``<time datetime>`` of the article: marked as the publication time, else the first one
    near the headline (never one from a sidebar or a teaser list further down)."""
    marked = tree.xpath("//time[@pubdate or @itemprop='datePublished'][@datetime]/@datetime")
    if marked:
        return [str(v) for v in marked]
    h1 = next(tree.iter("h1"), None)
    if h1 is not None:
        scope = h1
        for _ in range(4):
            scope = scope.getparent()
            if scope is None:
                break
            found = scope.xpath(".//time/@datetime")
            if found:
                return [str(found[0])]
    found = tree.xpath("(//article//time/@datetime)[1]")
    return [str(v) for v in found]


def url_date(url: str | None) -> str | None:
    """A full date written in the URL's path (/2025/08/14/, /2019/nov/19/, /20250814-...)."""
    path = unquote(urlsplit(url or "").path)
    for pattern in _URL_DATES:
        match = pattern.search(path)
        if match:
            year, month, day = match.groups()
            found = _valid(year, _MONTHS.get(month.lower(), month) if month.isalpha() else month,
                           day)
            if found:
                return found
    return None


def parse_date(value: str | None) -> str | None:
    """``YYYY-MM-DD`` from ISO 8601, ``YYYY/MM/DD``, ``YYYYMMDD``, RFC 2822 or "19 Nov 2019";
    the date as written (its own time zone), None when the value is no full date."""
    if not value:
        return None
    value = value.strip()
    for pattern in (_ISO, _SLASHED, _COMPACT):
        match = pattern.match(value)
        if match:
            return _valid(*match.groups())
    if re.match(r"^\s*\w{3},", value):
        try:
            return _valid(*parsedate_to_datetime(value).strftime("%Y %m %d").split())
        except (TypeError, ValueError, IndexError):
            pass
    match = _NAMED.match(value)
    if match:
        day1, month1, month2, day2, year = match.groups()
        month = _MONTHS.get((month1 or month2 or "").lower())
        if month:
            return _valid(year, month, day1 or day2)
    return None


def _valid(year: str | int, month: str | int, day: str | int) -> str | None:
    try:
        found = date(int(year), int(month), int(day))
    except (TypeError, ValueError):
        return None
    if not 1990 <= found.year <= datetime.now(UTC).year + 1:
        return None
    return found.isoformat()


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
