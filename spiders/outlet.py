"""OutletSpider: one generic spider, driven by the outlets' config.

It starts from each outlet's start URLs, follows links that stay on the outlet's hosts, and
hands the pages that are articles (by the ``allow``/``deny`` regexes, or by their markup when
no ``allow`` is set) to the extraction pipeline. Every fetch is captured in the WARC whether
or not it is an article.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response, TextResponse

from crawler.capture import CAPTURE_META
from crawler.config import OutletConfig, load_config
from crawler.job import CrawlJob
from crawler.links import page_links

_ARTICLE_TYPES = re.compile(r'"@type"\s*:\s*\[?\s*"(?:News|Blog|Report|Scholarly)?Article"')


class OutletSpider(scrapy.Spider):
    name = "outlet"

    def __init__(self, job: CrawlJob, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.outlets = {o.name: o for o in job.outlets}
        self._allow = {o.name: [re.compile(p) for p in o.allow] for o in job.outlets}
        self._deny = {o.name: [re.compile(p) for p in o.deny] for o in job.outlets}
        self.scheduled: Counter[str] = Counter()
        self._seen: set[bytes] = set()  # 8-byte URL digests: one fetch per URL per crawl

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, job: CrawlJob | None = None,
                     outlet: str | None = None, config: str | None = None,
                     archive: str | None = None, **kwargs: Any) -> OutletSpider:
        """``scrapy crawl outlet -a outlet=NAME[,NAME] [-a config=FILE] [-a archive=URI]``."""
        if job is None:
            cfg = load_config(config or crawler.settings.get("NEWSARCHIVE_CONFIG") or None)
            names = [n for n in (outlet or "").split(",") if n]
            job = CrawlJob.create(cfg, names, archive)
        spider = super().from_crawler(crawler, *args, job=job, **kwargs)
        first = job.outlets[0].crawl
        crawler.settings.set("USER_AGENT", first.user_agent, priority="spider")
        crawler.settings.set("ROBOTSTXT_OBEY", any(o.crawl.obey_robots for o in job.outlets),
                             priority="spider")
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for outlet in self.job.outlets:
            for url in outlet.start_urls:
                request = self._request(outlet, url)
                if request is not None:
                    yield request

    def _request(self, outlet: OutletConfig, url: str) -> scrapy.Request | None:
        """A request for a URL not yet scheduled, while the outlet is under max_pages."""
        limit = outlet.crawl.max_pages
        if limit and self.scheduled[outlet.name] >= limit:
            return None
        digest = hashlib.blake2b(url.encode(), digest_size=8).digest()
        if digest in self._seen:
            return None
        self._seen.add(digest)
        self.scheduled[outlet.name] += 1
        meta = {"outlet": outlet.name, "download_timeout": outlet.crawl.download_timeout}
        if not outlet.crawl.obey_robots:
            meta["dont_obey_robotstxt"] = True
        return scrapy.Request(url, callback=self.parse, meta=meta,
                              headers={"User-Agent": outlet.crawl.user_agent})

    def parse(self, response: Response) -> Iterator[Any]:
        outlet = self.outlets[response.meta["outlet"]]
        if not isinstance(response, TextResponse) or b"html" not in (
                response.headers.get(b"Content-Type") or b"text/html"):
            return
        if self.is_article(outlet, response):
            yield {
                "url": response.url,
                "outlet": outlet.name,
                "status": response.status,
                "body": response.body,
                "encoding": response.encoding,
                "language": outlet.language,
                "prune": outlet.prune,
                "capture": response.meta[CAPTURE_META],
            }
        for url in self.links(outlet, response):
            request = self._request(outlet, url)
            if request is not None:
                yield request

    def links(self, outlet: OutletConfig, response: TextResponse) -> Iterator[str]:
        """The page's links that stay on the outlet's hosts."""
        inside = tuple(f"{scheme}://{host}/" for host in outlet.domains
                       for scheme in ("http", "https"))
        for url in page_links(response.body, response.url, response.encoding):
            if url.startswith(inside) or url + "/" in inside:
                yield url

    def is_article(self, outlet: OutletConfig, response: TextResponse) -> bool:
        """Matches `allow` (or, without `allow`, says so in its markup) and not `deny`."""
        url = response.url
        if any(p.search(url) for p in self._deny[outlet.name]):
            return False
        if self._allow[outlet.name]:
            return any(p.search(url) for p in self._allow[outlet.name])
        return markup_says_article(response)


def markup_says_article(response: TextResponse) -> bool:
    """og:type article, JSON-LD (News)Article, or an <article> carrying a date."""
    og_type = response.xpath("//meta[@property='og:type']/@content").get("")
    if og_type.strip().lower() == "article":
        return True
    for block in response.xpath("//script[@type='application/ld+json']/text()").getall():
        if _ARTICLE_TYPES.search(block) or _ld_is_article(block):
            return True
    return bool(response.xpath("//article[.//time[@datetime] or .//*[@itemprop='datePublished']]"))


def _ld_is_article(block: str) -> bool:
    try:
        data = json.loads(block)
    except ValueError:
        return False
    items = data if isinstance(data, list) else data.get("@graph", [data]) if isinstance(
        data, dict) else []
    for item in items:
        kind = item.get("@type") if isinstance(item, dict) else None
        kinds = kind if isinstance(kind, list) else [kind]
        if any(isinstance(k, str) and k.endswith("Article") for k in kinds):
            return True
    return False
