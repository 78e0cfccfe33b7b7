"""The outlet spider of this checkout (``scrapy crawl outlet``): newsarchive's own, found here by
Scrapy's spider loader, which lists only the classes a spider module defines."""

from crawler.crawl.spider import OutletSpider as _OutletSpider


class OutletSpider(_OutletSpider):
    """``scrapy crawl outlet -a outlet=NAME[,NAME] [-a config=FILE] [-a archive=URI]``."""
