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
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import DeferredSemaphore

from crawler.crawl.archiving import ArchivingExtension
from crawler.crawl.politeness import outlet_stat
from crawler.crawl.threads import run_in
from crawler.discovery.markup import Requisite
from crawler.extraction.document import extract_with_requisites
from crawler.extraction.pool import ExtractionPool
from crawler.extraction.templates import TemplateLearner
from crawler.records import text_record
from crawler.store.state import article_state

logger = logging.getLogger(__name__)

class ExtractionPipeline:
    def __init__(self, crawler: Crawler, archive: ArchivingExtension, workers: int) -> None:
        self.crawler = crawler
        self.archive = archive
        self.stats = crawler.stats
        # one pool for the crawl's outlets: the most patient outlet's timeout applies
        self.pool = ExtractionPool(workers, timeout=max(
            o.crawl.extract_timeout for o in archive.job.outlets))
        # The executor keeps every submitted page until a worker takes it: bound what waits, so
        # a slow pool holds back the scraper (and so the downloader) instead of filling memory.
        self.slots = DeferredSemaphore(2 * workers)
        self.templates = TemplateLearner()
        self.bodies = {o.name: o.body for o in archive.job.outlets}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExtractionPipeline:
        workers = crawler.settings.getint("NEWSARCHIVE_EXTRACT_WORKERS") or os.cpu_count() or 1
        archive = crawler.get_extension(ArchivingExtension)
        if archive is None:
            raise NotConfigured("ArchivingExtension is not enabled: no text shard to write into")
        return cls(crawler, archive, workers)

    async def process_item(self, item: Any) -> Any:
        page = ItemAdapter(item)
        capture = page["capture"]
        text_shard = await maybe_deferred_to_future(self.archive.begin_text(capture["warc_file"]))
        await maybe_deferred_to_future(self.slots.acquire())
        try:
            extracted, requisites = await maybe_deferred_to_future(run_in(self.pool, partial(
                extract_with_requisites, page["body"], page["url"],
                requisites=bool(page.get("requisites")), encoding=page.get("encoding"),
                prune=tuple(page.get("prune") or ()), body=self.bodies.get(page["outlet"]),
                listed_date=page.get("listed_date"),
                templates=self.templates.templates(page["outlet"]))))
            self.fetch_requisites(page, requisites)
            if extracted:  # before the slot goes to the next page, which then knows this one
                self.templates.observe(page["outlet"], extracted["fingerprints"])
            failed = False
        except Exception:
            logger.exception("extraction failed for %s", page["url"])
            self.stats.inc_value("newsarchive/extraction_errors")
            extracted, failed = None, True
        finally:
            self.slots.release()
        record, state = self.text_and_state(page, extracted, failed)
        written = await maybe_deferred_to_future(self.archive.add_text(text_shard, record, state))
        if failed or not written:  # the URL stays due: the next crawl extracts it again
            self.stats.inc_value(outlet_stat(page["outlet"], "articles/failed"))
        return {k: v for k, v in (record or {}).items() if k != "text"} or {"url": page["url"]}

    def fetch_requisites(self, page: ItemAdapter, requisites: list[Requisite]) -> None:
        """What the article loads, read by its extraction, goes to the spider's requisites."""
        spider = self.crawler.spider
        outlet = spider.outlets[page["outlet"]]
        for request in spider.requisites(outlet, requisites, 1, page["url"]):
            self.crawler.engine.crawl(request)

    def text_and_state(self, page: ItemAdapter, extracted: dict[str, Any] | None,
                       failed: bool = False) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The text record (None when there is no text, or the same text as the archive's
        latest) and what the URL's state learns: it is an article, and its latest text; a page
        whose extraction `failed` is not extracted yet."""
        if failed:
            return None, article_state(page["url"], page["outlet"], extracted=False)
        if not extracted:
            self.stats.inc_value("newsarchive/articles_without_text")
            self.stats.inc_value(outlet_stat(page["outlet"], "articles/no_text"))
            return None, article_state(page["url"], page["outlet"])
        previous = page.get("previous_text")
        if previous and previous.get("digest") == extracted["text_digest"]:
            self.stats.inc_value("newsarchive/articles_text_unchanged")
            return None, article_state(page["url"], page["outlet"])
        record = text_record(page, extracted, self.archive.crawl_id)
        self.stats.inc_value("newsarchive/articles")
        return record, article_state(page["url"], page["outlet"], {
            "revision": record["revision"], "digest": record["text_digest"],
            **{k: record[k] for k in ("crawl_id", "warc_record_id", "fetched_at")}})

    def close_spider(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)

