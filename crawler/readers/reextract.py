"""Extraction re-run over stored WARCs, written as a new text version (`newsarchive reextract`).

Nothing is fetched. Each WARC is read once, as a stream; the articles are the response records
the crawl itself extracted (the records of its own text shards, by ``warc_offset``), so a new
version covers the same pages. Their bodies are decoded as Scrapy decoded them during the crawl
(Content-Encoding undone, the same response encoding) and go through the same
``extract_document`` in a process pool, with the outlet's selectors from the config and its
templates learned again page after page, as the crawl's pipeline learns them. The records are
written as ``text/vN/NAME.jsonl.gz``; then ``text/vN/manifest.json`` commits the version.
Older versions are kept; readers (``crawler.readers.listing.text_entries``) use the newest
committed one.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import tempfile
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.capture.stored import stored_response
from crawler.capture.text_shard import TextShard
from crawler.config import Config, OutletConfig
from crawler.errors import ArchiveError
from crawler.extraction.decoding import decoded_page
from crawler.extraction.document import extract_document
from crawler.extraction.pool import ExtractionPool
from crawler.extraction.templates import TemplateLearner
from crawler.layout import (
    basename,
    default_spool_dir,
    text_version_key,
    text_version_manifest_key,
    tmp_dir,
)
from crawler.readers.listing import text_versions
from crawler.records import record_pointer, text_record, text_version_manifest
from crawler.store.backends import ArchiveStore

logger = logging.getLogger(__name__)


def reextract_crawls(store: ArchiveStore, manifests: list[dict[str, Any]], config: Config,
                     archive_uri: str, workers: int = 0) -> Iterator[CrawlResult]:
    """Write each crawl's next text version, one crawl after the other, in `workers` extraction
    processes (default: one per CPU); each crawl's result as soon as its version is committed."""
    spool = default_spool_dir(config.archive, archive_uri)
    timeout = max((o.crawl.extract_timeout for o in config.outlets),
                  default=config.crawl.extract_timeout)
    with OrderedPool(workers or os.cpu_count() or 1, timeout) as pool:
        for manifest in manifests:
            yield reextract_crawl(store, manifest, config, pool, spool)


# ---------------------------------------------------------------- one crawl


@dataclass
class CrawlResult:
    crawl_id: str
    version: int
    warcs: int = 0
    articles: int = 0        # pages the crawl extracted (its own text records)
    records: int = 0         # text records of the new version
    changed: int = 0         # of which the text differs from the crawl's own
    no_text: int = 0         # pages that give no text now
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # per outlet: prune...

    def summary(self) -> str:
        return (f"crawl {self.crawl_id}: text v{self.version} written from {self.warcs} WARC"
                f" file(s): {self.records} of {self.articles} articles, {self.changed} with new"
                f" text, {self.no_text} without text now; earlier versions kept, dump reads"
                f" v{self.version}")


def reextract_crawl(store: ArchiveStore, manifest: dict[str, Any], config: Config,
                    pool: OrderedPool, spool: Path) -> CrawlResult:
    """Write the crawl's next text version; its manifest goes last, after every shard."""
    crawl_id = manifest["crawl_id"]
    version = max(text_versions(store, crawl_id), default=1) + 1
    result = CrawlResult(crawl_id, version)
    own_text = {basename(e["key"]): e for e in manifest["files"] if e["kind"] == "text"}
    elsewhere = _articles_elsewhere(
        store, own_text, {e["key"] for e in manifest["files"] if e["kind"] == "warc"})
    outlets = {o.name: o for o in config.outlets}
    templates = TemplateLearner()  # learned again, page after page, as the crawl learned them
    scratch = tmp_dir(spool)  # beside the spool's files, where no delivery picks them up
    scratch.mkdir(parents=True, exist_ok=True)
    entries = []
    with tempfile.TemporaryDirectory(prefix="reextract-", dir=scratch) as work:
        for warc in (e for e in manifest["files"] if e["kind"] == "warc"):
            name = basename(warc["key"])
            key = text_version_key(crawl_id, version, name)
            articles = _articles(store, own_text.get(name), warc["key"])
            articles.update(elsewhere.get(warc["key"], {}))
            result.warcs += 1
            result.articles += len(articles)
            shard = TextShard(Path(work) / key.rsplit("/", 1)[1], key)
            try:
                pages = _pages(store, warc["key"], articles, outlets, result)
                for page, extracted in pool.map_ordered(pages, templates.templates):
                    if extracted is None:
                        result.no_text += 1
                        continue
                    templates.observe(page.page["outlet"], extracted["fingerprints"])
                    record = text_record(page.page, extracted, crawl_id)
                    own = articles[record["warc_offset"]]  # the article's place in its history
                    record.update(revision=own.get("revision", 1),
                                  previous_revision=own.get("previous_revision"))
                    shard.add(record)
                    result.records += 1
                    if record["text_digest"] != articles[record["warc_offset"]]["text_digest"]:
                        result.changed += 1
            finally:
                entry = shard.close()
            store.put_file(shard.path, key, entry.sha256)
            entries.append(entry)
    version_manifest = text_version_manifest(
        crawl_id=crawl_id, version=version, extraction=result.settings,
        counts={"articles": result.articles, "text_records": result.records,
                "changed": result.changed, "without_text": result.no_text},
        files=entries)
    store.put_bytes(text_version_manifest_key(crawl_id, version),
                    (json.dumps(version_manifest, indent=1, ensure_ascii=False) + "\n").encode())
    return result


def _own_records(store: ArchiveStore, text_entry: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The crawl's own text records of one shard, without their text."""
    if not text_entry.get("records"):
        return
    with store.open(text_entry["key"]) as raw, gzip.GzipFile(fileobj=raw) as gz:
        for line in io.TextIOWrapper(gz, encoding="utf-8"):
            record = json.loads(line)
            record.pop("text", None)
            yield record


def _articles(store: ArchiveStore, text_entry: dict[str, Any] | None,
              warc_key: str) -> dict[int, dict[str, Any]]:
    """The crawl's own text records of one WARC's shard that point into that WARC, by
    response offset."""
    if text_entry is None:
        return {}
    return {r["warc_offset"]: r for r in _own_records(store, text_entry)
            if r["warc_file"] == warc_key}


def _articles_elsewhere(store: ArchiveStore, own_text: dict[str, dict[str, Any]],
                        warc_keys: set[str]) -> dict[str, dict[int, dict[str, Any]]]:
    """Text records that went to another WARC's shard than their capture's, by WARC key and
    offset: an article is decided on after its response was written, and the WARC may have
    rotated (and its shard closed) meanwhile. Few; read in one pass before the WARCs."""
    elsewhere: dict[str, dict[int, dict[str, Any]]] = {}
    for name, entry in own_text.items():
        for record in _own_records(store, entry):
            if basename(record["warc_file"]) == name:
                continue
            if record["warc_file"] not in warc_keys:
                raise ArchiveError(f"{entry['key']}: {record['url']} points into "
                                   f"{record['warc_file']}, not a WARC of this crawl")
            elsewhere.setdefault(record["warc_file"], {})[record["warc_offset"]] = record
    return elsewhere


@dataclass(frozen=True)
class Page:
    """An article's stored response, ready for extraction, and its text record's identity."""

    html: bytes
    encoding: str | None
    prune: tuple[str, ...]  # the outlet's CSS selectors, as in the crawl
    container: str | None
    page: dict[str, Any]  # what the text record is built from: url, outlet, status...


def _pages(store: ArchiveStore, warc_key: str,
           articles: dict[int, dict[str, Any]], outlets: dict[str, OutletConfig],
           result: CrawlResult) -> Iterator[Page]:
    """Stream the WARC; yield the article responses, in file order."""
    from warcio.archiveiterator import ArchiveIterator

    if not articles:
        return
    left = set(articles)
    with store.open(warc_key) as raw:
        records = ArchiveIterator(raw)
        for record in records:
            offset = records.offset
            if offset not in left:
                continue
            left.discard(offset)
            own = articles[offset]
            stored = stored_response(record)
            if stored.record_type != "response" or stored.record_id != own["warc_record_id"]:
                raise ArchiveError(f"{warc_key} @ {offset}: not the response record "
                                   f"{own['warc_record_id']} of {own['url']}")
            records.read_to_end()
            outlet = outlets.get(own["outlet"]) or OutletConfig(own["outlet"])
            result.settings.setdefault(outlet.name, {"prune": list(outlet.prune),
                                                     "body": outlet.body})
            # The page as the spider handed it over: what the crawl's record took from it
            # (url, outlet, expected language...), then what the capture itself says.
            yield Page(*decoded_page(stored.payload, stored.header("Content-Encoding"),
                                    stored.header("Content-Type")), tuple(outlet.prune),
                       outlet.body, {
                **own,
                "language": own.get("language_expected"),
                "status": stored.status,
                "capture": record_pointer(warc_key, offset, records.get_record_length(),
                                          stored.record_id, stored.payload_digest, stored.date),
            })
    if left:
        raise ArchiveError(f"{warc_key}: no record at offset(s) {sorted(left)[:5]} that the "
                           f"crawl's text points at")


# ---------------------------------------------------------------- extraction pool


def _extract(page: Page, templates: Collection[int]) -> dict[str, Any] | None:
    """Worker side: the crawl's extraction of one page."""
    return extract_document(page.html, page.page["url"], encoding=page.encoding,
                            prune=page.prune, body=page.container, templates=templates,
                            listed_date=page.page.get("listed_date"))


class OrderedPool:
    """The extraction pool fed in order with a bounded number of pages in flight (flat memory);
    a broken pool is replaced and its pages tried again, a page over `timeout` s stopped."""

    def __init__(self, workers: int, timeout: float) -> None:
        self.workers = workers
        self.executor = ExtractionPool(workers, timeout)

    def __enter__(self) -> OrderedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def map_ordered(self, pages: Iterator[Page], templates: Callable[[str], Collection[int]]
                    ) -> Iterator[tuple[Page, dict[str, Any] | None]]:
        """(page, extracted or None) in page order; at most 2 pages per worker wait. Each page
        goes with its outlet's templates as learned when it is handed over."""
        pending: deque[tuple[Page, Future]] = deque()
        for page in pages:
            if len(pending) >= 2 * self.workers:
                yield _outcome(*pending.popleft())
            pending.append((page, self.executor.submit(
                _extract, page, templates(page.page["outlet"]))))
        while pending:
            yield _outcome(*pending.popleft())


def _outcome(page: Page, future: Future) -> tuple[Page, dict[str, Any] | None]:
    """As in the crawl, a page whose extraction fails is a page without text, not a stop; a
    pool that broke under the page on every try stops the version (nothing is committed)."""
    try:
        return page, future.result()
    except BrokenProcessPool:
        raise
    except Exception:
        logger.exception("extraction failed for %s", page.page["url"])
        return page, None
