"""Politeness and guards, per outlet: where a request may go, how fast, and how much it may
bring back.

- ``OutletScopeMiddleware`` (downloader middleware, before robots.txt): refuses off-outlet and
  internal-network URLs (redirect targets included: they come back through here) and query-string
  traps (a requisite may come from any host, but not from an internal address, and not from a
  host found unreachable); counts what each outlet fetched, refused (connections the download
  handler refused for the address they reached included) and failed.
- ``OutletSlotMiddleware`` (after robots.txt): each outlet host gets its own download slot with
  the outlet's concurrency and delay, raised to robots.txt's Crawl-delay.
- ``RetryAfterMiddleware``: Scrapy's retry, honouring ``Retry-After`` on 429 and 503 by holding
  the host's slot for the time asked (bounded), with exponential backoff when none is given.
- ``PageSizeGuard`` (extension): stops a download past ``max_page_size`` (a requisite's:
  ``requisite_max_size``); the partial response is kept and marked truncated in the WARC (one
  whose Content-Length says it is too large: its head only).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    IgnoreRequest,
    StopDownload,
)
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import defer
from twisted.internet.error import ConnectError, DNSLookupError

from crawler.config import OutletConfig
from crawler.crawl.http import InternalAddressRefused

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER = 600.0  # seconds; a server asking for longer is retried after this
# a host that does not resolve or refuses connections (Scrapy's names, and Twisted's beneath)
_UNREACHABLE = (CannotResolveHostError, DownloadConnectionRefusedError, DNSLookupError,
                ConnectError)


def outlet_stat(outlet: str, name: str) -> str:
    return f"newsarchive/outlet/{outlet}/{name}"


def request_stat(outlet: str, request: Request, name: str) -> str:
    """An outlet's stat for what happened to a request: a requisite's under ``requisites/``,
    so the summary tells pages and what they load apart."""
    return outlet_stat(outlet, f"requisites/{name}" if request.meta.get("requisite") else name)


class _OutletMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> _OutletMiddleware:
        return cls(crawler)

    def _outlet(self, request: Request) -> OutletConfig | None:
        name = request.meta.get("outlet")
        spider = self.crawler.spider
        return spider.outlets.get(name) if name and hasattr(spider, "outlets") else None


class OutletScopeMiddleware(_OutletMiddleware):
    """Before anything is fetched (robots.txt included): where an outlet's requests may go."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.query_variants: dict[tuple[str, str], set[str]] = defaultdict(set)
        # requisite hosts that did not resolve or take a connection (after retries): a page's
        # dozen images on a dead CDN would each wait for the resolver or the connect timeout
        self.unreachable: set[str] = set()
        # every response, also those retry or redirect middlewares turn into a new request
        crawler.signals.connect(self.response_downloaded, signal=signals.response_downloaded)

    def process_request(self, request: Request) -> None:
        outlet = self._outlet(request)
        if outlet is None:
            return
        scope = self.crawler.spider.scopes[outlet.name]
        if request.meta.get("requisite"):  # from any host; it leads to no further pages
            if urlsplit(request.url).netloc in self.unreachable:
                self.stats.inc_value(request_stat(outlet.name, request, "skipped/unreachable"))
                raise IgnoreRequest(f"unreachable host: {request.url}")
            verdict = scope.embed_verdict(request.url)
        else:
            verdict = scope.verdict(request.url)
            if verdict is None and self._is_trap(outlet, request.url):
                verdict = "query_trap"
        if verdict:
            self.stats.inc_value(request_stat(outlet.name, request, f"refused/{verdict}"))
            raise IgnoreRequest(f"{verdict}: {request.url}")

    def _is_trap(self, outlet: OutletConfig, url: str) -> bool:
        parts = urlsplit(url)
        if not parts.query:
            return False
        variants = self.query_variants[(outlet.name, parts.netloc + parts.path)]
        if parts.query in variants:
            return False
        if len(variants) >= outlet.crawl.max_query_variants:
            return True
        variants.add(parts.query)
        return False

    def response_downloaded(self, response: Response, request: Request, spider: Any) -> None:
        outlet = self._outlet(request)
        if outlet is not None:
            self.stats.inc_value(request_stat(outlet.name, request, "fetched"))
            if response.status >= 300:
                self.stats.inc_value(request_stat(outlet.name, request,
                                                  f"status/{response.status}"))

    def process_exception(self, request: Request, exception: Exception) -> None:
        outlet = self._outlet(request)
        if outlet is None:
            return
        if isinstance(exception, InternalAddressRefused):
            self.stats.inc_value(request_stat(outlet.name, request, "refused/internal"))
            logger.warning("%s: refused %s: it connected to an %s", outlet.name, request.url,
                           exception)
            return
        if isinstance(exception, IgnoreRequest):
            if "robots.txt" in str(exception):
                self.stats.inc_value(request_stat(outlet.name, request, "skipped/robots"))
            return
        netloc = urlsplit(request.url).netloc
        if request.meta.get("requisite") and isinstance(exception, _UNREACHABLE) and \
                netloc not in self.unreachable:
            self.unreachable.add(netloc)
            logger.warning("%s: %s is unreachable (%s): its other requisites are skipped",
                           outlet.name, netloc, type(exception).__name__)
        self.stats.inc_value(request_stat(outlet.name, request,
                                          f"errors/{type(exception).__name__}"))


class OutletSlotMiddleware(_OutletMiddleware):
    """After robots.txt: each outlet host gets its own download slot, with the outlet's
    concurrency and a delay of at least the outlet's `delay` and robots.txt's Crawl-delay. Any
    other host (a CDN its pages load requisites from) gets one slot of its own, whichever
    outlets use it, with the limits of the first that did: N outlets on one CDN never load it
    N times harder."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.crawl_delays: dict[str, float] = {}   # netloc -> robots.txt Crawl-delay
        crawler.signals.connect(self.robots_parsed, signal=signals.robots_parsed)

    def process_request(self, request: Request) -> None:
        outlet = self._outlet(request)
        if outlet is None:
            return
        netloc = urlsplit(request.url).netloc
        own = not request.meta.get("requisite") or \
            self.crawler.spider.scopes[outlet.name].verdict(request.url) is None
        slot = f"{outlet.name}@{netloc}" if own else f"embeds@{netloc}"
        request.meta["download_slot"] = slot
        delay = max(outlet.crawl.delay, self.crawl_delays.get(netloc, 0.0))
        downloader = self.crawler.engine.downloader
        fixed = bool(delay) or not outlet.crawl.autothrottle
        if slot not in downloader.per_slot_settings:
            settings: dict[str, Any] = {"concurrency": outlet.crawl.concurrency}
            if fixed:  # a minimum: no jitter below it (else AutoThrottle's start delay applies)
                settings.update(delay=delay, jitter=0.0)
            downloader.per_slot_settings[slot] = settings
        if fixed:
            request.meta["autothrottle_dont_adjust_delay"] = True

    def robots_parsed(self, robotparser: Any, request: Request) -> None:
        """Record the host's Crawl-delay before any of its pages is requested."""
        user_agent = request.headers.get(b"User-Agent") or self.crawler.settings["USER_AGENT"]
        delay = robotparser.crawl_delay(user_agent)
        if delay:
            netloc = urlsplit(request.url).netloc
            self.crawl_delays[netloc] = float(delay)
            logger.info("robots.txt of %s asks for a Crawl-delay of %ss", netloc, delay)


class RetryAfterMiddleware(RetryMiddleware):
    """Retries 429 and 503 after the server's Retry-After (or an exponential backoff)."""

    async def process_response(self, request: Request, response: Response) -> Any:
        if response.status not in (429, 503) or request.meta.get("dont_retry"):
            return super().process_response(request, response)
        attempt = request.meta.get("retry_times", 0)
        if attempt >= request.meta.get("max_retry_times", self.max_retry_times):
            return response
        wait = retry_after_seconds(response.headers.get(b"Retry-After")) or min(
            2.0 ** attempt, 60.0)
        wait = min(wait, MAX_RETRY_AFTER)
        self._hold_slot(request, wait)
        await maybe_deferred_to_future(_sleep(wait))
        return self._retry(request, f"{response.status} (after {wait:.1f}s)") or response

    def _hold_slot(self, request: Request, wait: float) -> None:
        """No other request goes to this host before the wait is over."""
        downloader = self.crawler.engine.downloader
        slot = downloader.slots.get(request.meta.get("download_slot", ""))
        if slot is not None:
            slot.lastseen = max(slot.lastseen, time.monotonic() + wait - slot.delay)


def retry_after_seconds(value: bytes | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _sleep(seconds: float) -> defer.Deferred:
    from twisted.internet import reactor  # here: importing it installs the default reactor

    d: defer.Deferred = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class PageSizeGuard:
    """Stops downloads past the outlet's ``max_page_size``; the part received is kept."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        crawler.signals.connect(self.headers_received, signal=signals.headers_received)
        crawler.signals.connect(self.bytes_received, signal=signals.bytes_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageSizeGuard:
        return cls(crawler)

    def _limit(self, request: Request) -> int:
        return request.meta.get("max_page_size") or self.crawler.settings.getint(
            "DOWNLOAD_MAXSIZE")

    def headers_received(self, headers: Any, body_length: int, request: Request,
                         spider: Any = None) -> None:
        request.meta["bytes_received"] = 0  # a retried request starts again
        limit = self._limit(request)
        # Twisted's UNKNOWN_LENGTH (chunked, or no Content-Length) is a string
        if limit and isinstance(body_length, int) and body_length > limit:
            self._stop(request, f"Content-Length {body_length}")

    def bytes_received(self, data: bytes, request: Request, spider: Any = None) -> None:
        limit = self._limit(request)
        if not limit:
            return
        total = request.meta.get("bytes_received", 0) + len(data)
        request.meta["bytes_received"] = total
        if total > limit:
            self._stop(request, f"{total} bytes received")

    def _stop(self, request: Request, why: str) -> None:
        outlet = request.meta.get("outlet")
        if outlet:
            self.crawler.stats.inc_value(request_stat(outlet, request, "refused/too_large"))
        logger.warning("cut off %s at %s (%s)", request.url,
                       "requisite_max_size" if request.meta.get("requisite") else
                       "max_page_size", why)
        raise StopDownload(fail=False)
