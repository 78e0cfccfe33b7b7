"""Scrapy settings of this checkout, for ``scrapy crawl outlet -a outlet=NAME`` run from here:
newsarchive's own (``crawler.crawl.settings``, which ``newsarchive crawl`` uses) and the spiders
of ``spiders/``. Local overrides go below the import."""

from crawler.crawl.settings import *  # noqa: F403

SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"
