"""`newsarchive extract PATH...`: the crawl's extraction run on local HTML files.

For HTML that came from elsewhere (another crawler, a browser's "save page", a benchmark set):
each file (plain or ``.gz``; a directory means every file under it) goes through exactly the
``extract_document`` a crawl runs, and one JSON record per file is printed.

Files given together are treated like one outlet's pages in one crawl: a paragraph found on
``MIN_PAGES`` or more of them (files of one host, when their URLs are known) is a template and
is dropped. That needs a first pass over the files, so with that many files each is read twice.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from crawler.cli.main import EXIT_OK
from crawler.errors import UsageError
from crawler.extraction.templates import MIN_PAGES, TemplateLearner

_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([a-zA-Z0-9_.:-]+)", re.IGNORECASE)
_CANONICAL = (
    re.compile(rb"<link\b(?=[^>]*\brel\s*=\s*[\"']?canonical)[^>]*\bhref\s*=\s*[\"']([^\"'>\s]+)",
               re.IGNORECASE),
    re.compile(rb"<meta\b(?=[^>]*\bproperty\s*=\s*[\"']?og:url)[^>]*\bcontent\s*=\s*[\"']"
               rb"([^\"'>\s]+)", re.IGNORECASE),
)
RECORD_FIELDS = ("source", "url", "title", "author", "authors", "date", "language",
                 "language_expected", "page_language", "sitename", "description", "tags",
                 "categories", "text", "text_digest")


def add_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    cmd = subparsers.add_parser(
        "extract", parents=[common],
        help="extract clean text from local HTML files (plain or .gz), one JSON line per file")
    cmd.add_argument("paths", nargs="+", metavar="PATH",
                     help="HTML files, .gz files, or directories (every file under them)")
    cmd.add_argument("--url", help="the page's URL (one file only; default: the page's "
                     "canonical link or og:url)")
    cmd.add_argument("--lang", help="the language you expect, recorded as language_expected "
                     "beside the detected one (as an outlet's `language`)")
    cmd.add_argument("--prune", action="append", default=[], metavar="SELECTOR",
                     help="CSS selector removed before extraction (repeatable)")
    cmd.add_argument("--body", metavar="SELECTOR", help="CSS selector of the article container")
    cmd.add_argument("--no-templates", action="store_true",
                     help="do not learn templates across the files")
    cmd.add_argument("-o", "--output", help="write to this file instead of stdout")
    cmd.set_defaults(func=cmd_extract)


def cmd_extract(args: argparse.Namespace) -> int:
    files = list(_files(args.paths))
    if not files:
        raise UsageError("no files to extract")
    if args.url and len(files) > 1:
        raise UsageError("--url names one page: give it with a single file")
    _check_selectors([*args.prune, *([args.body] if args.body else [])])
    learner = TemplateLearner()
    if not args.no_templates and len(files) >= MIN_PAGES:
        for path in files:
            url, doc = _extract(path, args, ())
            if doc:
                learner.observe(_group(url), doc["fingerprints"])
    out: TextIO = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for path in files:
            url, doc = _extract(path, args, learner.templates)
            out.write(json.dumps(_record(path, url, args.lang, doc), ensure_ascii=False) + "\n")
    finally:
        if args.output:
            out.close()
    return EXIT_OK


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


def _extract(path: Path, args: argparse.Namespace, templates: Any
             ) -> tuple[str | None, dict[str, Any] | None]:
    """The page's URL and its extraction; `templates` is a set or a function of the host."""
    html = _read(path)
    url = args.url or _page_url(html)
    if callable(templates):
        templates = templates(_group(url))
    from crawler.extraction.document import extract_document  # trafilatura: only when extracting

    return url, extract_document(html, url, encoding=_encoding(html), prune=tuple(args.prune),
                                 body=args.body, templates=templates)


def _record(path: Path, url: str | None, lang: str | None,
            doc: dict[str, Any] | None) -> dict[str, Any]:
    record: dict[str, Any] = {k: (doc or {}).get(k) for k in RECORD_FIELDS}
    record.update(source=str(path), url=url, language_expected=lang)
    return record


def _encoding(html: bytes) -> str:
    """The charset the page declares (BOM, <meta charset>), else UTF-8."""
    if html.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    match = _CHARSET.search(html[:4096])
    if match:
        name = match.group(1).decode("ascii", "replace")
        try:
            b"".decode(name)
            return name
        except LookupError:
            pass
    return "utf-8"


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
    from cssselect import GenericTranslator, SelectorError

    for selector in selectors:
        try:
            GenericTranslator().css_to_xpath(selector)
        except SelectorError as exc:
            raise UsageError(f"invalid CSS selector {selector!r}: {exc}") from None
