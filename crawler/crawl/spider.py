"""OutletSpider: one generic spider, driven by the outlets' config.

An outlet's articles are found from four sources: its feeds (and feeds its start pages
announce), its sitemaps (and those robots.txt lists; indexes and news sitemaps included), and
its section pages (start URLs, followed through pagination and links up to ``depth`` hops).
Feed and sitemap entries are articles by definition and need no link extraction; a page reached
by links is an article when it matches ``allow`` (or, without ``allow``, when its markup says
so). Every fetch is captured in the WARC; only articles go to extraction.

Every page's requisites (what a browser loads to render it: stylesheets, scripts, images, fonts,
frames, media) are fetched too, from any host, once per crawl, up to ``requisite_hops``
transclusions: a stylesheet's imports, fonts and images and a frame's own requisites are one hop
further. A requisite never leads to a page: a frame's links are not followed.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial
from typing import Any
from urllib.parse import urljoin

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import DeferredSemaphore
from twisted.python.failure import Failure

from crawler.config import OutletConfig, load_config, parse_since
from crawler.crawl.archiving import ArchivingExtension
from crawler.crawl.politeness import outlet_stat
from crawler.crawl.resolve import resolve
from crawler.crawl.resume import archived_page, reset_queue
from crawler.crawl.threads import run_in
from crawler.crawl.warc_capture import CAPTURE_META
from crawler.discovery.css import InlineStyles
from crawler.discovery.digests import DigestSet
from crawler.discovery.feeds import Candidate, Listing, NotADiscoveryDocument
from crawler.discovery.listed import ListedDates
from crawler.discovery.markup import (
    ASSET,
    FRAME,
    MEDIA,
    STYLESHEET,
    Markup,
    Requisite,
    read_markup,
    stylesheet_requisites,
)
from crawler.discovery.urls import HostScope, canonical_url
from crawler.errors import ArchiveError, NewsarchiveError
from crawler.job import CrawlJob
from crawler.store.state import StateIndex, conditional_headers, recheck_due

logger = logging.getLogger(__name__)

_PAGE_NUMBER = re.compile(r"(?:[?&](?:page|p|pg|paged|start|offset)=\d+|/page/\d+/?|/\d{1,4}/?)$",
                          re.IGNORECASE)
# a page's requisites are fetched soon after it, so that what replay shows is of one moment
_PRIORITY = {"requisite": 40, "sitemap": 30, "feed": 30, "start": 20, "link": 10,
             "candidate": 0, "recheck": 0}
_BATCH = 1000  # feed or sitemap entries parsed per hop to the parsing thread
# archived pages of 304'd articles read back at once: a 304 is tiny to Scrapy's scraper, which
# lets thousands of them in together, and each read holds its page in memory
_ARCHIVED_READS = 2


class OutletSpider(scrapy.Spider):
    name = "outlet"

    def __init__(self, job: CrawlJob, since: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.outlets = {o.name: o for o in job.outlets}
        self._allow = {o.name: [re.compile(p) for p in o.allow] for o in job.outlets}
        self._deny = {o.name: [re.compile(p) for p in o.deny] for o in job.outlets}
        self._requisites_deny = {o.name: [re.compile(p) for p in o.crawl.requisites_deny]
                                 for o in job.outlets}
        self._styles = InlineStyles()  # used in the markup thread only
        self._since: dict[str, date | None] = {
            o.name: parse_since(since or o.crawl.since) if (since or o.crawl.since) else None
            for o in job.outlets}
        self._pages: dict[str, int] = dict.fromkeys(self.outlets, 0)
        self.scopes = {o.name: HostScope((*o.start_urls, *o.feeds, *o.sitemaps),
                                         o.crawl.allow_subdomains) for o in job.outlets}
        self._seen = DigestSet()  # digests of canonical URLs: one fetch each
        self._listed_dates = ListedDates()  # of URLs a link queued before a listing named them
        self._archive: ArchivingExtension | None = None
        # pages' markup is read off the reactor, in one thread of its own: in the reactor's
        # pool each thread keeps a malloc arena (20 MB more RSS in benchmarks/crawl.py)
        self._markup_reader = ThreadPoolExecutor(1, thread_name_prefix="markup")
        self._archived_reads = DeferredSemaphore(_ARCHIVED_READS)
        self._archived_reader = ThreadPoolExecutor(1, thread_name_prefix="archived")

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
        crawler.settings.set("USER_AGENT", job.outlets[0].crawl.user_agent, priority="spider")
        crawler.settings.set("ROBOTSTXT_OBEY", any(o.crawl.obey_robots for o in job.outlets),
                             priority="spider")
        if not crawler.settings.get("JOBDIR"):
            if job.resume:
                reset_queue(job)
            crawler.settings.set("JOBDIR", str(job.queue_dir), priority="spider")
        crawler.signals.connect(spider.robots_parsed, signal=signals.robots_parsed)
        return spider

    # ---------------------------------------------------------------- requests

    async def start(self) -> AsyncIterator[scrapy.Request]:
        await self._resolve_own_hosts()
        for outlet in self.job.outlets:
            for url in outlet.sitemaps:
                if request := self._request(outlet, url, "sitemap", callback=self.parse_listing):
                    yield request
            for url in outlet.feeds:
                if request := self._request(outlet, url, "feed", callback=self.parse_listing):
                    yield request
            for url in outlet.start_urls:
                if request := self._request(outlet, url, "start", depth=0):
                    yield request
        for entry in self.archived.articles():
            outlet = self.outlets.get(entry.get("outlet", ""))
            if outlet and (self.job.recheck or recheck_due(entry, outlet.crawl.recheck)):
                if request := self._request(outlet, entry["url"], "recheck"):
                    yield request

    async def _resolve_own_hosts(self) -> None:
        """The addresses each outlet's own hosts resolve to before anything is fetched: the only
        internal addresses its connections may reach (crawler.crawl.http), however its names
        (or a subdomain's) resolve later."""
        for name, scope in self.scopes.items():
            for host in scope.hostnames:
                scope.addresses |= await resolve(host)
            logger.debug("%s lives on %s", name, ", ".join(sorted(scope.addresses)))

    @property
    def archiving(self) -> ArchivingExtension:
        """The crawl's archive (the capture writer and the URL state)."""
        if self._archive is None:
            self._archive = self.crawler.get_extension(ArchivingExtension)
            if self._archive is None:
                raise RuntimeError("the outlet spider needs crawler.crawl.archiving."
                                   "ArchivingExtension in EXTENSIONS")
        return self._archive

    @property
    def archived(self) -> StateIndex:
        """What the archive holds for each URL (read when the crawl opened)."""
        return self.archiving.state

    def _request(self, outlet: OutletConfig, url: str, source: str, *, depth: int = 0,
                 callback: Any = None, listed: Candidate | None = None
                 ) -> scrapy.Request | None:
        """A request for a canonical URL not fetched yet in this crawl, within max_pages."""
        url = canonical_url(url)
        verdict = self.scopes[outlet.name].verdict(url)
        if verdict:
            self._count(outlet, f"skipped/{verdict}")
            return None
        digest = hashlib.blake2b(url.encode(), digest_size=8).digest()
        if digest in self._seen:
            self._count(outlet, "skipped/duplicate")
            if listed is not None:
                self._listed_dates.remember(url, listed.date)
            return None
        is_page = callback is None
        if is_page and outlet.crawl.max_pages and self._pages[outlet.name] >= \
                outlet.crawl.max_pages:
            self._count(outlet, "skipped/max_pages")
            return None
        self._seen.add(digest)
        archived = self.archived.get(url) if is_page else None
        if archived and archived.get("article"):
            if not (self.job.recheck or source == "recheck"
                    or recheck_due(archived, outlet.crawl.recheck)):
                self._count(outlet, "skipped/archived")
                return None
        if is_page:
            self._pages[outlet.name] += 1
            self._count(outlet, f"candidates/{source}")
        headers = {"User-Agent": outlet.crawl.user_agent}
        meta = {"outlet": outlet.name, "source": source, "hops": depth,
                "download_timeout": outlet.crawl.download_timeout,
                "max_page_size": outlet.crawl.max_page_size,
                "download_maxsize": outlet.crawl.max_page_size}
        if archived and archived.get("article"):
            if conditional := conditional_headers(archived):
                headers.update(conditional)
                meta["handle_httpstatus_list"] = [304]  # parse_not_modified
            meta["previous_text"] = archived.get("text")  # the text a new revision follows
        if listed is not None:
            meta["listed_date"] = listed.date
        if not outlet.crawl.obey_robots:
            meta["dont_obey_robotstxt"] = True
        # a page's callback is left to Scrapy (parse): a disk queue then stores no callback name,
        # which Scrapy finds by walking all the spider's attributes for every request
        return scrapy.Request(url, callback=callback, errback=self.failed,
                              meta=meta, priority=_PRIORITY["candidate" if listed else source],
                              headers=headers)

    def _requisite(self, outlet: OutletConfig, found: Requisite, hops: int, referer: str
                   ) -> scrapy.Request | None:
        """A request for a requisite not fetched yet in this crawl, from any host (internal
        addresses only for an outlet that lives on one), unless denied or beyond the hops.
        Its URL is fetched as the page wrote it: replay looks that very URL up."""
        url = found.url
        digest = hashlib.blake2b(url.encode(), digest_size=8).digest()
        if digest in self._seen:
            return None
        self._seen.add(digest)  # decided once: fetched, or skipped and counted once
        if found.kind == MEDIA and not outlet.crawl.media:
            self._count(outlet, "requisites/skipped/media")
            return None
        verdict = self.scopes[outlet.name].embed_verdict(url)
        if verdict:
            self._count(outlet, f"requisites/refused/{verdict}")
            return None
        if any(p.search(url) for p in self._requisites_deny[outlet.name]):
            self._count(outlet, "requisites/skipped/denied")
            return None
        headers = {"User-Agent": outlet.crawl.user_agent, "Referer": referer}
        archived = self.archived.get(url)
        if archived and found.kind in (ASSET, MEDIA):
            # a leaf: a 304 is all it needs. A stylesheet or frame is fetched whole (an
            # unchanged one is still a revisit record): what it loads is read from its body
            headers.update(conditional_headers(archived))
        meta = {"outlet": outlet.name, "source": "requisite", "requisite": found.kind,
                "hops": hops, "download_timeout": outlet.crawl.download_timeout,
                "max_page_size": outlet.crawl.requisite_max_size,
                "download_maxsize": outlet.crawl.requisite_max_size}
        if not outlet.crawl.obey_robots:
            meta["dont_obey_robotstxt"] = True
        self._count(outlet, "requisites/queued")
        return scrapy.Request(url, errback=self.failed, meta=meta,
                              priority=_PRIORITY["requisite"], headers=headers)

    def requisites(self, outlet: OutletConfig, found: list[Requisite], hops: int,
                   referer: str) -> Iterator[scrapy.Request]:
        """Requests for what a page (or stylesheet, or frame) `hops` - 1 away loads."""
        if hops > outlet.crawl.requisite_hops:
            return
        for requisite in found:
            if request := self._requisite(outlet, requisite, hops, referer):
                yield request

    def closed(self, reason: str) -> None:
        """Scrapy calls this when the crawl ends: the markup thread ends with it."""
        self._markup_reader.shutdown()

    def failed(self, failure: Failure) -> None:
        """Count what did not reach a callback: a body over max_page_size once decoded (a
        gzip bomb: its compressed capture is in the WARC), other refusals, errors."""
        request = failure.request  # type: ignore[attr-defined]
        outlet = self.outlets.get(request.meta.get("outlet", ""))
        if outlet is None:
            return
        if failure.check(IgnoreRequest) and "DOWNLOAD_MAXSIZE" in str(failure.value):
            self._count(outlet, "requisites/refused/too_large" if request.meta.get("requisite")
                        else "refused/too_large")
        elif failure.check(HttpError):
            if failure.value.response.status == 304:  # type: ignore[union-attr]
                # a requisite's revisit record (an article's goes to parse_not_modified)
                self._count(outlet, "requisites/unchanged")
            # other statuses are counted where they were downloaded
        elif not failure.check(IgnoreRequest):
            logger.warning("%s: %s failed: %s", outlet.name, request.url, failure.value)

    def robots_parsed(self, robotparser: Any, request: scrapy.Request) -> None:
        """Sitemaps listed in robots.txt become discovery sources of the outlet."""
        outlet = self.outlets.get(request.meta.get("outlet", ""))
        sitemaps = getattr(getattr(robotparser, "rp", None), "sitemaps", None)
        if outlet is None or not sitemaps:
            return
        for url in sitemaps:
            sitemap = self._request(outlet, urljoin(request.url, url), "sitemap",
                                    callback=self.parse_listing)
            if sitemap is not None:
                self.crawler.engine.crawl(sitemap)

    def _count(self, outlet: OutletConfig, name: str, count: int = 1) -> None:
        self.crawler.stats.inc_value(outlet_stat(outlet.name, name), count)

    # ---------------------------------------------------------------- feeds and sitemaps

    async def parse_listing(self, response: Response) -> AsyncIterator[scrapy.Request]:
        """A feed, sitemap or sitemap index: its entries become requests as they are parsed, a
        batch at a time, in the order listed (Scrapy queues them on disk); parsing stays off the
        reactor, in a thread of the document's own (lxml's parser belongs to one thread)."""
        outlet = self.outlets[response.meta["outlet"]]
        parsing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="listing")
        try:
            try:
                listing = await run_in(parsing, Listing, response.body,
                                       outlet.crawl.max_sitemap_entries)
            except NotADiscoveryDocument as exc:
                logger.warning("%s: skipped %s (%s)", outlet.name, response.url, exc)
                self._count(outlet, "discovery_errors")
                return
            since = self._since[outlet.name]
            while batch := await run_in(parsing, listing.next_batch, _BATCH):
                for entry in batch:
                    if since and entry.date and date.fromisoformat(entry.date) < since:
                        self._count(outlet, "skipped/window")
                        continue
                    if listing.kind == "sitemapindex":
                        request = self._request(outlet, entry.url, "sitemap",
                                                callback=self.parse_listing)
                    else:
                        request = self._request(outlet, entry.url, listing.kind, listed=entry)
                    if request is not None:
                        yield request
        finally:
            parsing.shutdown(wait=False)
        self._read_in_part(outlet, response.url, listing)

    def _read_in_part(self, outlet: OutletConfig, url: str, listing: Listing) -> None:
        """Counted, and logged once per document: what the caps on a listing left unread."""
        if listing.skipped:
            self._count(outlet, "skipped/sitemap_cap", listing.skipped)
        if listing.cut:
            self._count(outlet, "skipped/sitemap_cut")
        if listing.skipped or listing.cut:
            logger.warning("%s: %s read in part: %s entries past max_sitemap_entries (%s) "
                           "skipped%s", outlet.name, url, listing.skipped,
                           outlet.crawl.max_sitemap_entries,
                           f"; cut short, {listing.cut}" if listing.cut else "")

    # ---------------------------------------------------------------- pages

    async def parse(self, response: Response) -> AsyncIterator[Any]:
        outlet = self.outlets[response.meta["outlet"]]
        if "download_stopped" in response.flags:
            return  # cut off at its size limit: captured as truncated, not read
        if response.meta.get("requisite"):
            async for request in self.parse_requisite(outlet, response):
                yield request
            return
        text_follows = False
        try:
            async for output in self.parse_page(outlet, response):
                text_follows = text_follows or isinstance(output, dict)
                yield output
        finally:
            # the shard of the page's capture waits for this word before it finishes, so that
            # an article's text goes into it (crawler.capture.writer); an article says it when
            # its text is announced
            capture = response.meta.get(CAPTURE_META)
            if not text_follows and capture and capture.get("awaits_spider"):
                self.archiving.decided(capture["warc_file"])

    async def parse_page(self, outlet: OutletConfig, response: Response) -> AsyncIterator[Any]:
        """A page: an article's item (and requisites), or a section page's links."""
        if response.status == 304:
            async for request in self.parse_not_modified(outlet, response):
                yield request
            return
        if not isinstance(response, TextResponse) or b"html" not in (
                response.headers.get(b"Content-Type") or b"text/html"):
            return
        source = response.meta["source"]
        article = self.url_says_article(outlet, response.url,
                                        source in ("feed", "sitemap", "recheck"))
        # an article its extraction will read needs its head only: the extraction, which parses
        # the whole page anyway, reads its requisites too (crawler.crawl.extraction_pipeline)
        extracted = bool(article) and _to_extract(response)
        styles = self._styles if outlet.crawl.requisites and not extracted else None
        # however hostile the markup, other outlets' requests go on meanwhile
        markup: Markup = await run_in(self._markup_reader, partial(
            read_markup, response.body, response.url, response.encoding,
            head_only=bool(article) and styles is None, styles=styles))
        for request in self.requisites(outlet, markup.requisites, 1, response.url):
            yield request
        if article or (article is None and markup.says_article):
            if item := self.article_item(outlet, response, markup):
                item["requisites"] = outlet.crawl.requisites and extracted
                yield item
            return  # articles are leaves: their links are not followed
        if source == "start":
            for href in markup.feeds:
                if feed := self._request(outlet, href, "feed", callback=self.parse_listing):
                    yield feed
        for request in self.follow(outlet, response, markup):
            yield request

    async def parse_not_modified(self, outlet: OutletConfig, response: Response
                                 ) -> AsyncIterator[scrapy.Request]:
        """An archived article that answered 304: no new text, but what it loads is read from
        the capture it stands for and checked again, so this crawl holds the page's look too
        (its WACZ replays it). When that capture cannot be read, that is counted."""
        self._count(outlet, "articles/unchanged")
        if not outlet.crawl.requisites:
            return
        entry = self.archived.get(response.url)
        await maybe_deferred_to_future(self._archived_reads.acquire())
        try:
            if not (entry and entry.get("warc_file")):
                raise ArchiveError("no archived capture in the URL's state")
            body, encoding = await run_in(self._archived_reader, archived_page, self.archiving,
                                          entry)
            markup: Markup = await run_in(self._markup_reader, partial(
                read_markup, body, response.url, encoding, styles=self._styles))
        except (OSError, NewsarchiveError) as exc:
            logger.warning("%s: the archived capture of %s could not be read for its "
                           "requisites: %s", outlet.name, response.url, exc)
            self._count(outlet, "requisites/skipped/unread_304")
            return
        finally:
            self._archived_reads.release()
        for request in self.requisites(outlet, markup.requisites, 1, response.url):
            yield request

    async def parse_requisite(self, outlet: OutletConfig, response: Response
                              ) -> AsyncIterator[scrapy.Request]:
        """What a stylesheet (its imports, fonts, images) or a frame (its requisites, never its
        links) loads in turn, one hop further; other requisites are leaves."""
        kind, hops = response.meta["requisite"], response.meta["hops"]
        if hops >= outlet.crawl.requisite_hops or response.status != 200:
            return
        content_type = (response.headers.get(b"Content-Type") or b"").lower()
        if kind == STYLESHEET and b"html" not in content_type:
            found = await run_in(self._markup_reader, _stylesheet_requisites, response)
        elif kind == FRAME and isinstance(response, TextResponse) and b"html" in content_type:
            markup = await run_in(self._markup_reader, partial(
                read_markup, response.body, response.url, response.encoding,
                styles=self._styles))
            found = markup.requisites
        else:
            return
        for request in self.requisites(outlet, found, hops + 1, response.url):
            yield request

    def article_item(self, outlet: OutletConfig, response: TextResponse, markup: Markup
                     ) -> dict[str, Any] | None:
        """The item extraction gets; None when the archive holds this very payload already."""
        # the date of a listing that named the URL after a link had queued it
        listed_later = self._listed_dates.pop(response.meta.get("redirect_urls",
                                                                [response.url])[0])
        capture = response.meta[CAPTURE_META]
        if not _to_extract(response):
            if capture["revisit"]:  # the archive holds this very payload: no new text
                self._count(outlet, "articles/unchanged")
            return None  # or a resumed crawl's, extracted before the interruption
        self._count(outlet, "articles")
        return {
            "url": response.url,
            "outlet": outlet.name,
            "status": response.status,
            "body": response.body,
            "encoding": response.encoding,
            "language": outlet.language,
            "prune": outlet.prune,
            "listed_date": response.meta.get("listed_date") or listed_later,
            "canonical_url": canonical_url(markup.canonical) if markup.canonical else None,
            "capture": capture,
            "previous_text": response.meta.get("previous_text"),
        }

    def follow(self, outlet: OutletConfig, response: TextResponse, markup: Markup
               ) -> Iterator[scrapy.Request]:
        """Links of a section page, up to the outlet's depth; pagination costs no depth."""
        depth = response.meta.get("hops", 0)
        next_pages = {canonical_url(u) for u in markup.next_pages}
        here = _without_page_number(response.url)
        for url in markup.links:
            paging = url in next_pages or (
                _PAGE_NUMBER.search(url) is not None and _without_page_number(url) == here)
            hops = depth if paging else depth + 1
            if hops > outlet.crawl.depth:
                continue
            if request := self._request(outlet, url, "link", depth=hops):
                yield request

    def url_says_article(self, outlet: OutletConfig, url: str, listed: bool) -> bool | None:
        """Not when `deny` matches; when the outlet has `allow`, whether it matches; else a feed
        or sitemap entry is, and None for a page reached by links: its markup says."""
        if any(p.search(url) for p in self._deny[outlet.name]):
            return False
        if self._allow[outlet.name]:
            return any(p.search(url) for p in self._allow[outlet.name])
        return True if listed else None


def _to_extract(response: Response) -> bool:
    """Whether an article's response goes to extraction: not when the archive holds this
    very payload (a revisit), nor when a resumed crawl extracted it before the interruption."""
    capture = response.meta[CAPTURE_META]
    return not (capture["revisit"] or capture.get("text_stored"))


def _stylesheet_requisites(response: Response) -> list[Requisite]:
    """What a stylesheet loads. Decoded as a browser does without ``@charset`` support: the
    HTTP charset, else UTF-8."""
    text = response.text if isinstance(response, TextResponse) else response.body.decode(
        "utf-8", "replace")
    return stylesheet_requisites(text, response.url)


def _without_page_number(url: str) -> str:
    return _PAGE_NUMBER.sub("", canonical_url(url).rstrip("/"))

