"""The extraction pipeline: article pages -> text records, extraction in a process pool.

The reactor only hands pages to the pool and writes the finished record to the run; Scrapy's
scraper slot limits how many pages wait here, so memory stays bounded when extraction is the
bottleneck. The one thing the reactor adds is counting each page's paragraph fingerprints for
the outlet's learned templates (a few set operations; ``crawler.extraction.templates``).
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import DeferredSemaphore

from crawler.crawl.archiving import ArchiveRun
from crawler.crawl.threads import run_in
from crawler.extraction.document import extract_document, extraction_pool
from crawler.extraction.templates import TemplateLearner

logger = logging.getLogger(__name__)

# Metadata beside the DESIGN.md fields, when the page states it (lists may be empty).
METADATA_FIELDS = ("authors", "description", "tags", "categories")


class ExtractionPipeline:
    def __init__(self, run: ArchiveRun, workers: int, stats: Any) -> None:
        self.run = run
        self.stats = stats
        self.pool = extraction_pool(workers)
        # The executor keeps every submitted page until a worker takes it: bound what waits, so
        # a slow pool holds back the scraper (and so the downloader) instead of filling memory.
        self.slots = DeferredSemaphore(2 * workers)
        self.templates = TemplateLearner()
        self.bodies = {o.name: o.body for o in run.job.outlets}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractionPipeline:
        workers = crawler.settings.getint("NEWSARCHIVE_EXTRACT_WORKERS") or os.cpu_count() or 1
        return cls(ArchiveRun.from_crawler(crawler), workers, crawler.stats)

    async def process_item(self, item: Any) -> Any:
        page = ItemAdapter(item)
        capture = page["capture"]
        text_shard = await maybe_deferred_to_future(self.run.begin_text(capture["warc_file"]))
        await maybe_deferred_to_future(self.slots.acquire())
        try:
            extracted = await maybe_deferred_to_future(run_in(self.pool, partial(
                extract_document, page["body"], page["url"], encoding=page.get("encoding"),
                prune=tuple(page.get("prune") or ()), body=self.bodies.get(page["outlet"]),
                listed_date=page.get("listed_date"),
                templates=self.templates.templates(page["outlet"]))))
            if extracted:  # before the slot goes to the next page, which then knows this one
                self.templates.observe(page["outlet"], extracted["fingerprints"])
        except Exception:
            logger.exception("extraction failed for %s", page["url"])
            self.stats.inc_value("newsarchive/extraction_errors")
            extracted = None
        finally:
            self.slots.release()
        record, state = self.text_and_state(page, extracted)
        await maybe_deferred_to_future(self.run.add_text(text_shard, record, state))
        return {k: v for k, v in (record or {}).items() if k != "text"} or {"url": page["url"]}

    def text_and_state(self, page: ItemAdapter, extracted: dict[str, Any] | None
                       ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The text record (None when there is no text, or the same text as the archive's
        latest) and what the URL's state learns: it is an article, and its latest text."""
        state: dict[str, Any] = {"url": page["url"], "outlet": page["outlet"], "article": True}
        if not extracted:
            self.stats.inc_value("newsarchive/articles_without_text")
            return None, state
        previous = page.get("previous_text")
        if previous and previous.get("digest") == extracted["text_digest"]:
            self.stats.inc_value("newsarchive/articles_text_unchanged")
            return None, state
        record = text_record(page, extracted, self.run.crawl_id)
        self.stats.inc_value("newsarchive/articles")
        state["text"] = {"revision": record["revision"], "digest": record["text_digest"],
                         **{k: record[k] for k in ("crawl_id", "warc_record_id", "fetched_at")}}
        return record, state

    def close_spider(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)


def text_record(page: ItemAdapter, extracted: dict[str, Any], crawl_id: str) -> dict[str, Any]:
    """The DESIGN.md text record: page identity, extracted fields, pointer to the capture."""
    capture = page["capture"]
    record = {
        "url": page["url"],
        "outlet": page["outlet"],
        "crawl_id": crawl_id,
        "fetched_at": capture["fetched_at"],
        "status": page["status"],
        **{k: extracted.get(k) for k in ("title", "author", "date", "language", "sitename",
                                          "text")},
        **{k: capture[k] for k in ("warc_file", "warc_offset", "warc_length", "warc_record_id",
                                   "payload_digest")},
        "text_digest": extracted["text_digest"],
    }
    record["language_expected"] = page.get("language")
    record["canonical_url"] = page.get("canonical_url")
    record["listed_date"] = page.get("listed_date")  # the feed/sitemap date, if any
    record.update({k: extracted.get(k) for k in METADATA_FIELDS})
    previous = page.get("previous_text")  # the archive's latest text of this URL, now edited
    record["revision"] = previous["revision"] + 1 if previous else 1
    record["previous_revision"] = {k: previous[k] for k in (
        "crawl_id", "warc_record_id", "fetched_at", "digest")} if previous else None
    return record
