"""The crawl's extraction run on local HTML files (`newsarchive extract PATH...`).

For HTML that came from elsewhere (another crawler, a browser's "save page", a benchmark set):
each file (plain or ``.gz``; a directory means every file under it) goes through exactly the
``extract_document`` a crawl runs, and one JSON record per file is printed.

Files given together are treated like one outlet's pages in one crawl: a paragraph found on
``MIN_PAGES`` or more of them (files of one host, when their URLs are known) is a template and
is dropped. That needs a first pass over the files, so with that many files each is read twice.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.config import css_selector_problem
from crawler.errors import UsageError
from crawler.extraction.decoding import page_encoding
from crawler.extraction.templates import MIN_PAGES, TemplateLearner

_CANONICAL = (
    re.compile(rb"<link\b(?=[^>]*\brel\s*=\s*[\"']?canonical)[^>]*\bhref\s*=\s*[\"']([^\"'>\s]+)",
               re.IGNORECASE),
    re.compile(rb"<meta\b(?=[^>]*\bproperty\s*=\s*[\"']?og:url)[^>]*\bcontent\s*=\s*[\"']"
               rb"([^\"'>\s]+)", re.IGNORECASE),
)
RECORD_FIELDS = ("source", "url", "title", "author", "authors", "date", "date_modified",
                 "language", "language_expected", "page_language", "sitename", "description",
                 "tags", "categories", "text", "text_digest")


def extract_files(files: list[Path], url: str | None = None, lang: str | None = None,
                  prune: tuple[str, ...] = (), body: str | None = None,
                  learn_templates: bool = True) -> Iterator[dict[str, Any]]:
    """One record per file, in order: `url` is the page's URL (one file only; default: the
    page's own canonical link or og:url), `lang` the expected language, `prune` and `body` CSS
    selectors as an outlet's. With `learn_templates` and at least MIN_PAGES files, every file is
    read once before this returns to learn the templates; the records are extracted as they are
    read from the iterator."""
    _check_selectors([*prune, *([body] if body else [])])
    learner = TemplateLearner()
    if learn_templates and len(files) >= MIN_PAGES:
        for path in files:
            page_url, doc = _extract(path, url, prune, body, ())
            if doc:
                learner.observe(_group(page_url), doc["fingerprints"])
    return _records(files, url, lang, prune, body, learner.templates)


def _records(files: list[Path], url: str | None, lang: str | None, prune: tuple[str, ...],
             body: str | None, templates: Callable[[str], Collection[int]]
             ) -> Iterator[dict[str, Any]]:
    for path in files:
        page_url, doc = _extract(path, url, prune, body, templates)
        yield _record(path, page_url, lang, doc)


def files_under(paths: list[str]) -> list[Path]:
    """The files named, a directory standing for every file under it (hidden ones left out)."""
    return list(_files(paths))


def _files(paths: list[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            yield path
        else:
            raise UsageError(f"{name}: no such file or directory")


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None


def _extract(path: Path, url: str | None, prune: tuple[str, ...], body: str | None,
             templates: Any) -> tuple[str | None, dict[str, Any] | None]:
    """The page's URL and its extraction; `templates` is a set or a function of the host."""
    html = _read(path)
    url = url or _page_url(html)
    if callable(templates):
        templates = templates(_group(url))
    from crawler.extraction.document import extract_document  # trafilatura: only when extracting

    return url, extract_document(html, url, encoding=page_encoding(html), prune=prune, body=body,
                                 templates=templates)


def _record(path: Path, url: str | None, lang: str | None,
            doc: dict[str, Any] | None) -> dict[str, Any]:
    record: dict[str, Any] = {k: (doc or {}).get(k) for k in RECORD_FIELDS}
    record.update(source=str(path), url=url, language_expected=lang)
    return record


def _page_url(html: bytes) -> str | None:
    """The URL the page gives itself (canonical link, og:url), when it is absolute."""
    head = html[:65536]
    for pattern in _CANONICAL:
        match = pattern.search(head)
        if match:
            url = match.group(1).decode("utf-8", "replace")
            if urlsplit(url).scheme in ("http", "https"):
                return url
    return None


def _group(url: str | None) -> str:
    """Templates are learned per host (all files together when their URLs are unknown)."""
    return urlsplit(url or "").hostname or ""


def _check_selectors(selectors: list[str]) -> None:
    for selector in selectors:
        problem = css_selector_problem(selector)
        if problem:
            raise UsageError(problem)
