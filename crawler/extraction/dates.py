"""A page's published and modified dates: what the article states, then htmldate, then the
feed's or sitemap's date; never the crawl date (a wrong date is worse than none).

The published date, first found wins:

1. what the article states about itself: JSON-LD ``datePublished`` (``dateCreated``), the meta
   tags that name a publication date, a ``<time>`` marked as such or the first one near the
   headline, then a full date written in the article's dateline (a short line around the
   headline: "15.08.2025", "28.06.2025, 14:05", "2025年8月15日", "15 августа 2025", "Aug. 15,
   2025"), in every language of ``MONTHS`` and in CJK and numeric formats;
2. htmldate on the page (the original date, the page's URL given) in its exact mode: the URL,
   header and JSON, ``<abbr>``, date-classed elements, ``<time>``, timestamps;
3. the date the feed or sitemap listed the URL with;
4. htmldate's text scan, only for a date the page writes as a dateline is written (a short
   line outside its paragraphs): not a date the story tells of, nor a day htmldate fills in
   for a year or a month (a copyright line, "in May 2025").

The modified date comes from what the page states alone (JSON-LD ``dateModified``, modified
meta tags, ``<time itemprop=dateModified>``, an "updated" dateline) and is dropped when it is
earlier than the published date. Dates are ``YYYY-MM-DD`` as written (the page's own time zone).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from lxml.html import HtmlElement

from crawler.extraction.scripts import WORD

# Meta tags that state the publication date, most specific first.
PUBLISHED_META = ("article:published_time", "og:article:published_time", "og:published_time",
                  "datepublished", "date_published", "published_time", "article.published",
                  "publish-date", "publish_date", "publishdate", "pubdate", "parsely-pub-date",
                  "sailthru.date", "dc.date.issued", "dcterms.issued", "dc.date.created",
                  "dcterms.created", "dc.date", "dcterms.date", "citation_publication_date",
                  "citation_date", "date", "itemprop:datepublished")
# Meta tags that state the last modification.
MODIFIED_META = ("article:modified_time", "og:article:modified_time", "og:updated_time",
                 "datemodified", "date_modified", "modified_time", "article.updated",
                 "last-modified", "dc.date.modified", "dcterms.modified",
                 "itemprop:datemodified")

# Month names (and their abbreviations) per language, in the forms a date uses ("15 августа",
# "15 sierpnia", "15 Αυγούστου"): one tuple per month, January first. Add a key to add a language.
MONTHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "en": (("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
           ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
           ("september", "sept", "sep"), ("october", "oct"), ("november", "nov"),
           ("december", "dec")),
    "ru": (("января", "январь", "янв"), ("февраля", "февраль", "фев"), ("марта", "март", "мар"),
           ("апреля", "апрель", "апр"), ("мая", "май"), ("июня", "июнь", "июн"),
           ("июля", "июль", "июл"), ("августа", "август", "авг"),
           ("сентября", "сентябрь", "сен", "сент"), ("октября", "октябрь", "окт"),
           ("ноября", "ноябрь", "ноя"), ("декабря", "декабрь", "дек")),
    "uk": (("січня", "січень", "січ"), ("лютого", "лютий", "лют"), ("березня", "березень", "бер"),
           ("квітня", "квітень", "квіт"), ("травня", "травень", "трав"),
           ("червня", "червень", "черв"), ("липня", "липень", "лип"),
           ("серпня", "серпень", "серп"), ("вересня", "вересень", "вер"),
           ("жовтня", "жовтень", "жовт"), ("листопада", "листопад", "лист"),
           ("грудня", "грудень", "груд")),
    "pl": (("stycznia", "styczeń", "sty"), ("lutego", "luty", "lut"), ("marca", "marzec", "mar"),
           ("kwietnia", "kwiecień", "kwi"), ("maja", "maj"), ("czerwca", "czerwiec", "cze"),
           ("lipca", "lipiec", "lip"), ("sierpnia", "sierpień", "sie"),
           ("września", "wrzesień", "wrz"), ("października", "październik", "paź"),
           ("listopada", "listopad", "lis"), ("grudnia", "grudzień", "gru")),
    "de": (("januar", "jänner", "jan"), ("februar", "feb"), ("märz", "mär"), ("april", "apr"),
           ("mai",), ("juni", "jun"), ("juli", "jul"), ("august", "aug"),
           ("september", "sep", "sept"), ("oktober", "okt"), ("november", "nov"),
           ("dezember", "dez")),
    "fr": (("janvier", "janv"), ("février", "fevrier", "févr"), ("mars",), ("avril", "avr"),
           ("mai",), ("juin",), ("juillet", "juil"), ("août", "aout"), ("septembre", "sept"),
           ("octobre", "oct"), ("novembre", "nov"), ("décembre", "decembre", "déc")),
    "es": (("enero", "ene"), ("febrero", "feb"), ("marzo", "mar"), ("abril", "abr"), ("mayo",),
           ("junio", "jun"), ("julio", "jul"), ("agosto", "ago"),
           ("septiembre", "setiembre", "sept", "sep"), ("octubre", "oct"),
           ("noviembre", "nov"), ("diciembre", "dic")),
    "it": (("gennaio", "gen"), ("febbraio", "feb"), ("marzo", "mar"), ("aprile", "apr"),
           ("maggio", "mag"), ("giugno", "giu"), ("luglio", "lug"), ("agosto", "ago"),
           ("settembre", "set"), ("ottobre", "ott"), ("novembre", "nov"), ("dicembre", "dic")),
    "pt": (("janeiro", "jan"), ("fevereiro", "fev"), ("março", "marco", "mar"), ("abril", "abr"),
           ("maio", "mai"), ("junho", "jun"), ("julho", "jul"), ("agosto", "ago"),
           ("setembro", "set"), ("outubro", "out"), ("novembro", "nov"), ("dezembro", "dez")),
    "el": (("ιανουαρίου", "ιανουάριος", "ιαν"), ("φεβρουαρίου", "φεβρουάριος", "φεβ"),
           ("μαρτίου", "μάρτιος", "μαρ"), ("απριλίου", "απρίλιος", "απρ"), ("μαΐου", "μάιος"),
           ("ιουνίου", "ιούνιος", "ιουν"), ("ιουλίου", "ιούλιος", "ιουλ"),
           ("αυγούστου", "αύγουστος", "αυγ"), ("σεπτεμβρίου", "σεπτέμβριος", "σεπ"),
           ("οκτωβρίου", "οκτώβριος", "οκτ"), ("νοεμβρίου", "νοέμβριος", "νοε"),
           ("δεκεμβρίου", "δεκέμβριος", "δεκ")),
}
# Words that mark the date after them as the publication or the modification ("Published:
# 15.08.2025, updated: 16.08.2025"), any language; a date after neither is the publication.
PUBLISHED = ("published", "posted", "опубликовано", "опубліковано", "opublikowano",
             "veröffentlicht", "publié", "publicado", "pubblicato", "δημοσίευση",
             "δημοσιεύθηκε", "发布", "發布", "公開", "掲載", "投稿")
UPDATED = ("updated", "modified", "обновлено", "обновлён", "изменено", "оновлено",
           "zaktualizowano", "aktualizacja", "aktualisiert", "geändert", "mis à jour", "modifié",
           "actualizado", "actualización", "aggiornato", "atualizado", "ενημερώθηκε",
           "ενημέρωση", "更新", "修改")

_MONTH_NUMBER = {name.casefold(): number for months in MONTHS.values()
                 for number, names in enumerate(months, start=1) for name in names}
_MONTH_NAME = "|".join(sorted(map(re.escape, _MONTH_NUMBER), key=len, reverse=True))
# a full date as written in a dateline; a day-first slashed date only when the day says so
_TEXT_DATE = re.compile(
    rf"(?<![\d.])(?:"
    rf"(?P<cy>(?:19|20)\d\d)\s*[年년]\s*(?P<cm>[01]?\d)\s*[月월]\s*(?P<cd>[0-3]?\d)\s*[日일]?"
    rf"|(?P<iy>(?:19|20)\d\d)[-./](?P<im>[01]?\d)[-./](?P<id>[0-3]?\d)(?![\d])"
    rf"|(?P<ed>[0-3]?\d)[.-](?P<em>[01]?\d)[.-](?P<ey>(?:19|20)\d\d)(?!\d)"
    rf"|(?P<sd>[0-3]?\d)/(?P<sm>[01]?\d)/(?P<sy>(?:19|20)\d\d)(?!\d)"
    rf"|(?P<nd>[0-3]?\d)(?:st|nd|rd|th)?\.?\s+(?:de\s+)?(?P<nm>{_MONTH_NAME})\.?,?\s+(?:de\s+)?"
    rf"(?P<ny>(?:19|20)\d\d)"
    rf"|(?P<mm>{_MONTH_NAME})\.?\s+(?P<md>[0-3]?\d)(?:st|nd|rd|th)?,?\s+(?P<my>(?:19|20)\d\d)"
    rf")(?![\d])", re.IGNORECASE)
_CLOCK = re.compile(r"(?<!\d)[0-2]?\d\s*[:時时点點]\s*[0-5]\d(?:\s*分)?(?!\d)")
_KEYWORD = re.compile("|".join(f"(?P<{kind}>{'|'.join(map(re.escape, words))})" for kind, words
                               in (("updated", UPDATED), ("published", PUBLISHED))),
                      re.IGNORECASE)
_DATELINE = 160  # characters: a longer run of text is a paragraph, not a dateline
_DATELINE_WORDS = 12  # words but its dates and times: a dateline says little else
_MAX_DATELINES = 50  # runs of text with dates read in one scope (a page of dated teasers)
_HEADER_LEVELS = 4  # the headline's ancestors searched for its dateline, nearest first
_PROSE = frozenset({"h1", "p", "li", "blockquote", "td", "dd", "figcaption"})
_ISO = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?![\d])")
_SLASHED = re.compile(r"^\s*(\d{4})/(\d{1,2})/(\d{1,2})(?![\d])")
_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})(?:$|[T\s])")
_DAY_FIRST = re.compile(r"^\s*(?:\w+,?\s+)?(\d{1,2})\s+([^\W\d_]{3,9})\.?,?\s+(\d{4})\b")
_MONTH_FIRST = re.compile(r"^\s*(?:\w+,?\s+)?([^\W\d_]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?"
                          r"\s+(\d{4})\b")


def page_dates(tree: HtmlElement, url: str | None, meta: dict[str, list[str]],
               article: dict[str, Any] | None, listed_date: str | None = None
               ) -> tuple[str | None, str | None]:
    """(published, modified) of a parsed page, ``YYYY-MM-DD`` or None; see the module's
    docstring for the order. `meta` are the page's meta tags by lower-cased name, `article`
    its JSON-LD article object."""
    published = (_first_date(_ld_values(article, "datePublished", "dateCreated"))
                 or _first_date(v for key in PUBLISHED_META for v in meta.get(key, ()))
                 or _first_date(_time_elements(tree)))
    modified = (_first_date(_ld_values(article, "dateModified"))
                or _first_date(v for key in MODIFIED_META for v in meta.get(key, ()))
                or _first_date(tree.xpath("//time[@itemprop='dateModified']/@datetime")))
    if not (published and modified):
        line_published, line_modified = dateline_dates(tree)
        published, modified = published or line_published, modified or line_modified
    published = (published or _htmldate(tree, url, extensive=False) or parse_date(listed_date)
                 or _htmldate_text(tree, url))
    if modified and published and modified < published:
        modified = None  # an update before the publication: one of them is wrong
    return published, modified


def _ld_values(article: dict[str, Any] | None, *keys: str) -> list[str]:
    values = [(article or {}).get(key) for key in keys]
    return [v for v in values if isinstance(v, str)]


def _first_date(values: Any) -> str | None:
    for value in values:
        found = parse_date(value)
        if found:
            return found
    return None


def _time_elements(tree: HtmlElement) -> list[str]:
    """``<time datetime>`` of the article: marked as the publication time, else the first one
    near the headline (never one from a sidebar or a teaser list further down)."""
    marked = tree.xpath("//time[@pubdate or @itemprop='datePublished'][@datetime]/@datetime")
    if marked:
        return [str(v) for v in marked]
    for scope in _header_scopes(tree):
        found = scope.xpath(".//time[not(@itemprop='dateModified')]/@datetime")
        if found:
            return [str(found[0])]
    return [str(v) for v in tree.xpath("(//article//time/@datetime)[1]")]


def _header_scopes(tree: HtmlElement) -> list[HtmlElement]:
    """The headline's nearest ancestors (the article's header, then the article), or the first
    ``<article>`` of a page without a headline."""
    h1 = next(tree.iter("h1"), None)
    scopes = []
    scope = h1
    for _ in range(_HEADER_LEVELS):
        scope = scope.getparent() if scope is not None else None
        if scope is None or scope.tag in ("body", "html"):
            break
        scopes.append(scope)
    if not scopes:
        scopes = tree.xpath("(//article)[1]")
    return scopes


def dateline_dates(tree: HtmlElement) -> tuple[str | None, str | None]:
    """(published, modified) written in the article's dateline: the short runs of text around
    its headline, nearest first, outside the headline and the body's paragraphs; a date after
    an "updated" word (and no "published" word since) is the modification; the first of each
    in the page's order (a list of teasers further down has dates too)."""
    for scope in _header_scopes(tree):
        published: list[str] = []
        modified: list[str] = []
        for text, matches in _written_dates(scope):
            keywords = [(k.start(), k.lastgroup) for k in _KEYWORD.finditer(text)]
            for start, found in matches:
                kind = next((kind for at, kind in reversed(keywords) if at < start), None)
                (modified if kind == "updated" else published).append(found)
        if published or modified:  # the nearest dateline: never one further out
            return (published[0] if published else None, modified[0] if modified else None)
    return None, None


def _written_dates(scope: HtmlElement) -> Iterator[tuple[str, list[tuple[int, str]]]]:
    """The short runs of text in `scope`, outside headline and paragraphs, that hold full
    dates: (text, [(where, YYYY-MM-DD)]), the first ``_MAX_DATELINES`` of them. Linear in the
    scope's size: each ancestor's verdict is taken once."""
    prose: dict[HtmlElement, bool] = {}
    found = 0
    for text in scope.xpath(".//text()"):
        if not 6 <= len(text) <= _DATELINE or not any(c.isdigit() for c in text):
            continue
        matches = [(m.start(), day) for m in _TEXT_DATE.finditer(text)
                   if (day := _from_match(m))]
        if matches and not _is_prose(text) and not _in_prose(text, scope, prose):
            yield text, matches
            found += 1
            if found == _MAX_DATELINES:
                return


def _is_prose(text: str) -> bool:
    """More words than a dateline has, besides its dates and clock times."""
    return len(WORD.findall(without_dates(text))) > _DATELINE_WORDS


def _in_prose(text: Any, scope: HtmlElement, verdicts: dict[HtmlElement, bool]) -> bool:
    """Whether a run of text belongs to the headline or to a paragraph (a date the story tells
    of, not the story's own); `verdicts` keeps each element's, so none is read twice."""
    element = text.getparent()
    if text.is_tail:
        element = element.getparent()
    while element is not None and element is not scope:
        if element.tag in _PROSE:
            if element not in verdicts:
                verdicts[element] = element.tag == "h1" or _is_prose(
                    element.text_content()[:_DATELINE * 4])
            if verdicts[element]:
                return True
        element = element.getparent()
    return False


def without_dates(text: str) -> str:
    """`text` without the full dates and clock times written in it ("2025年8月14日 14時05分")."""
    return _CLOCK.sub(" ", _TEXT_DATE.sub(" ", text))


def _from_match(match: re.Match[str]) -> str | None:
    g = match.groupdict()
    for y, m, d in (("cy", "cm", "cd"), ("iy", "im", "id"), ("ey", "em", "ed"),
                    ("ny", "nm", "nd"), ("my", "mm", "md")):
        if g[y]:
            month = g[m] if g[m].isdigit() else _MONTH_NUMBER.get(g[m].casefold())
            return _valid(g[y], month, g[d]) if month else None
    if g["sy"] and int(g["sd"]) > 12 >= int(g["sm"]):  # 15/08/2025: no month 15
        return _valid(g["sy"], g["sm"], g["sd"])
    return None


def _htmldate(tree: HtmlElement, url: str | None, *, extensive: bool) -> str | None:
    """htmldate's original date of the page."""
    import htmldate  # in the extraction workers only, as trafilatura

    return htmldate.find_date(tree, url=url, original_date=True, extensive_search=extensive,
                              min_date="1990-01-01")


def _htmldate_text(tree: HtmlElement, url: str | None) -> str | None:
    """htmldate's text scan, kept only when the page writes that date as a dateline does, a
    short line outside its paragraphs: the scan also reads dates the story tells of ("on 12
    May 1994"), and fills in a day for a year or a month (a copyright line, "in May 2025")."""
    found = _htmldate(tree, url, extensive=True)
    page_body = tree.find("body")
    if not found or page_body is None:
        return None
    stated = {day for _, matches in _written_dates(page_body) for _, day in matches}
    return found if found in stated else None


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
    match = _DAY_FIRST.match(value)
    if match:
        day, month, year = match.groups()
        return _valid(year, _MONTH_NUMBER.get(month.casefold()), day)
    match = _MONTH_FIRST.match(value)
    if match:
        month, day, year = match.groups()
        return _valid(year, _MONTH_NUMBER.get(month.casefold()), day)
    return None


def _valid(year: str | int | None, month: str | int | None, day: str | int | None
           ) -> str | None:
    try:
        found = date(int(year), int(month), int(day))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not 1990 <= found.year <= datetime.now(UTC).year + 1:
        return None
    return found.isoformat()
