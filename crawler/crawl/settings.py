"""Scrapy settings of newsarchive: WARC capture before decompression, extraction in a process
pool, sane crawl defaults. ``newsarchive crawl`` uses this module; the checkout's ``settings.py``
(``scrapy crawl outlet``) starts from it."""

import os

BOT_NAME = "newsarchive"
SPIDER_MODULES = ["crawler.crawl.spider"]

# Which config file `scrapy crawl outlet` reads (the CLI passes its own).
NEWSARCHIVE_CONFIG = os.environ.get("NEWSARCHIVE_CONFIG", "")
# Extraction worker processes (0: one per CPU core).
NEWSARCHIVE_EXTRACT_WORKERS = 0
# Overrides every outlet's warc_max_size when set (bytes).
NEWSARCHIVE_WARC_MAX_SIZE = 0

DOWNLOAD_HANDLERS = {
    "http": "crawler.crawl.http.WireRecordingDownloadHandler",
    "https": "crawler.crawl.http.WireRecordingDownloadHandler",
}
DOWNLOADER_MIDDLEWARES = {
    # first: off-outlet and internal URLs are refused before robots.txt or a slot is involved
    "crawler.crawl.politeness.OutletScopeMiddleware": 50,
    # Scrapy's, but every request waiting for a host's robots.txt gets its rules
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.crawl.robots.RobotsTxtMiddleware": 100,
    # after robots.txt: the host's Crawl-delay is known
    "crawler.crawl.politeness.OutletSlotMiddleware": 110,
    # a resumed crawl answers what it captured before it was killed from its own WARCs
    "crawler.crawl.resume.ArchivedResponseMiddleware": 120,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    # scope (outlet domains, internal addresses) is OutletScopeMiddleware's; the config has no
    # HTTP credentials: neither would change a request, both would cost every one
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "crawler.crawl.politeness.RetryAfterMiddleware": 550,
    # Scrapy's, without decoding every page that holds no refresh
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    "crawler.crawl.refresh.LeanMetaRefreshMiddleware": 580,
    # above HttpCompressionMiddleware (590): responses are captured as received
    "crawler.crawl.warc_capture.WarcCaptureMiddleware": 950,
}
SPIDER_MIDDLEWARES = {
    # the spider counts link hops per outlet itself (meta "hops": pagination is free); Scrapy's
    # depth tracking and its meta-copy debugging aid would only add a layer around every output
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}
ITEM_PIPELINES = {
    "crawler.crawl.extraction_pipeline.ExtractionPipeline": 300,
}
EXTENSIONS = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    # the crawl's archive: capture writer, delivery, URL state (other components reach it with
    # crawler.get_extension); listed first, so it is there when they are built
    "crawler.crawl.archiving.ArchivingExtension": 0,
    "crawler.crawl.progress.Progress": 500,
    "crawler.crawl.politeness.PageSizeGuard": 510,
}

# Bodies are stored as received: ask only for encodings every WARC reader can decode
# (warcio cannot reliably read back br/zstd, pywb garbles zstd).
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Encoding": "gzip, deflate",
}

# Measured (benchmarks/crawl.py, 1,000-article outlet on 127.0.0.1): Twisted's asyncio reactor
# adds ~300 ms of latency per request here and makes the same crawl 4x slower than epoll.
TWISTED_REACTOR = "twisted.internet.epollreactor.EPollReactor"

ROBOTSTXT_OBEY = True
# Per outlet host: `concurrency` and `delay` from the config (crawler.crawl.politeness), adapted by
# AutoThrottle unless the outlet sets a delay or robots.txt a Crawl-delay.
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS = 32
# Within a priority, requests in the order found (Scrapy's default is last found first): a
# sitemap or feed lists its newest articles first, a section page its newest links. The FIFO
# disk queue reads its file forward (LIFO seeks and truncates it on every pop: ~1/3 more CPU).
SCHEDULER_DISK_QUEUE = "scrapy.squeues.PickleFifoDiskQueue"
SCHEDULER_MEMORY_QUEUE = "scrapy.squeues.FifoMemoryQueue"
# Outputs of one response handled at a time. Scrapy starts this many cooperative tasks for every
# response however few outputs it has; the spider yields one item per article (requests are only
# queued), and responses are still processed side by side: 1 spares the work (~5% of the crawl
# process's CPU, measured beside 16 on the same pages).
CONCURRENT_ITEMS = 1
CONCURRENT_REQUESTS_PER_DOMAIN = 8
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
# A response whose head (status line and headers) runs longer is failed (0: no limit): Twisted
# alone reads header lines without end (hundreds of MB of them, as many in memory).
NEWSARCHIVE_MAX_RESPONSE_HEAD = 64 * 1024
RETRY_TIMES = 2
COOKIES_ENABLED = False
REDIRECT_MAX_TIMES = 10
HTTPERROR_ALLOW_ALL = False
LOG_LEVEL = "INFO"
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
# Scrapy's in-memory stats without the deprecation shim it puts around every call (~20 a page)
STATS_CLASS = "crawler.crawl.stats.CrawlStatsCollector"
# Seen requests in 8 bytes each (Scrapy's own set: ~100): memory stays flat as a crawl grows.
DUPEFILTER_CLASS = "crawler.crawl.dupefilter.CompactDupeFilter"
FEED_EXPORT_ENCODING = "utf-8"
