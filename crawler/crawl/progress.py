"""Progress on a terminal during a crawl: pages, articles, WARC bytes, upload queue."""

from __future__ import annotations

import sys
from typing import TextIO

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet.task import LoopingCall

from crawler.crawl.archiving import ArchivingExtension


class Progress:
    """Rewrites one status line on stderr every second, when stderr is a terminal."""

    def __init__(self, crawler: Crawler, stream: TextIO = sys.stderr) -> None:
        self.crawler = crawler
        self.stream = stream
        self.loop = LoopingCall(self.show)
        self.archive: ArchivingExtension | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Progress:
        ext = cls(crawler)
        if not ext.stream.isatty():
            raise NotConfigured  # nothing to show: stderr is not a terminal
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self) -> None:
        self.archive = self.crawler.get_extension(ArchivingExtension)
        if self.archive is not None:
            self.loop.start(1.0, now=False)

    def closed(self) -> None:
        if self.loop.running:
            self.loop.stop()
            self.show()
            self.stream.write("\n")

    def show(self) -> None:
        archive, stats = self.archive, self.crawler.stats
        self.stream.write(
            f"\r{archive.counts['responses']} pages, "
            f"{stats.get_value('newsarchive/articles', 0)} articles, "
            f"{archive.counts['warc_bytes'] / 1e6:.1f} MB WARC, "
            f"{archive.delivery.uploads_pending} upload(s) queued   ")
        self.stream.flush()
