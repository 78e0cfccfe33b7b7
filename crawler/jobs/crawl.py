"""Running one crawl job: Scrapy's CrawlerProcess with the outlet spider, to the end, and the
run's record in the archive's ``state/runs.jsonl``.

A CrawlerProcess runs once per Python process; callers that crawl more than once (the
scheduler) start a process per crawl.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crawler.job import CrawlJob
from crawler.store.backends import open_store

if TYPE_CHECKING:  # Scrapy is imported when a crawl runs
    from crawler.crawl.archiving import ArchivingExtension


@dataclass
class CrawlOutcome:
    """How a crawl ended: its archiving extension (None when the crawl failed before it was
    built), its result (empty when the crawl never committed) and the crawl's Scrapy stats."""

    run: ArchivingExtension | None
    result: dict[str, Any]
    stats: dict[str, Any]


def run_crawl(job: CrawlJob, log_level: str = "WARNING", *,
              exit_code: Callable[[dict[str, Any], dict[str, Any]], int]) -> CrawlOutcome:
    """Run one crawl job to the end and record the run; `exit_code` gives the code the caller
    reports for the result and stats, which the run record keeps."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.crawl.settings")
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.project import get_project_settings

    from crawler.crawl.archiving import ArchivingExtension
    from crawler.crawl.spider import OutletSpider
    from crawler.records import run_record
    from crawler.store.run_records import record_run

    store = open_store(job.config.archive, job.archive_uri)  # a bad URI fails before any fetch
    settings = get_project_settings()
    settings.set("LOG_LEVEL", log_level.upper(), priority="cmdline")
    if job.redis:  # one worker of a crawl shared through Redis (crawler.jobs.cluster)
        from crawler.crawl.frontier import cluster_settings

        settings.setdict(cluster_settings(job), priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(OutletSpider)
    process.crawl(crawler, job=job)
    process.start()
    try:
        run = crawler.get_extension(ArchivingExtension)
    except RuntimeError:  # the crawl failed before its extensions were built (logged above)
        run = None
    result: dict[str, Any] = getattr(run, "result", None) or {}
    stats = crawler.stats.get_stats()
    record_run(store, run_record(job, result, stats, exit_code(result, stats)))
    return CrawlOutcome(run, result, stats)
