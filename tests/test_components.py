"""The crawl's Scrapy components, each built from a crawler the Scrapy way and called directly."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request, Spider, signals
from scrapy.core.downloader import Slot
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured, StopDownload
from scrapy.extension import ExtensionManager
from scrapy.http import HtmlResponse, Response
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.conf import build_component_list
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy.utils.reactor import install_reactor, is_reactor_installed
from scrapy.utils.test import get_crawler
from twisted.internet import defer
from twisted.python.failure import Failure
from twisted.web.iweb import UNKNOWN_LENGTH
from warcio.archiveiterator import ArchiveIterator

from crawler.capture.warc import sha1_digest
from crawler.capture.writer import REVISIT_IDENTICAL
from crawler.config import parse_config
from crawler.crawl import archiving, politeness
from crawler.crawl import settings as project_settings
from crawler.crawl.archiving import ArchivingExtension
from crawler.crawl.dupefilter import CompactDupeFilter
from crawler.crawl.extraction_pipeline import ExtractionPipeline
from crawler.crawl.http import WireRecordingDownloadHandler, _WireRecordingFactory
from crawler.crawl.politeness import (
    OutletScopeMiddleware,
    OutletSlotMiddleware,
    PageSizeGuard,
    RetryAfterMiddleware,
)
from crawler.crawl.refresh import LeanMetaRefreshMiddleware
from crawler.crawl.resume import ArchivedResponseMiddleware
from crawler.crawl.spider import OutletSpider
from crawler.crawl.stats import CrawlStatsCollector
from crawler.crawl.warc_capture import CAPTURE_META, WarcCaptureMiddleware
from crawler.discovery.digests import DigestSet
from crawler.job import CrawlJob
from crawler.store.state import StateIndex, read_journal

ROOT = Path(__file__).resolve().parent.parent
SITE = "https://news.example"
PROJECT = {"STATS_CLASS": project_settings.STATS_CLASS}


@pytest.fixture
def make_crawler(tmp_path: Path) -> Iterator[Callable[..., Crawler]]:
    """Crawlers of the outlet ``wire`` (its crawl settings as keywords), with the spider,
    extensions and engine a crawl has, on the reactor ``newsarchive crawl`` installs."""
    if not is_reactor_installed():
        install_reactor(project_settings.TWISTED_REACTOR)
    made: list[Crawler] = []

    def make(settings: dict[str, Any] | None = None, *, resume: bool = False,
             **crawl: Any) -> Crawler:
        config = parse_config({
            "crawl": {"user_agent": "newsarchive-tests/0.1 (+https://example.org/contact)"},
            "outlets": [{"name": "wire", "start_urls": [SITE + "/"], **crawl}]}, "(test)")
        crawler = get_crawler(OutletSpider, settings_dict={**PROJECT, **(settings or {})})
        job = CrawlJob.create(config, archive_uri=str(tmp_path))
        crawler.spider = OutletSpider(job=replace(job, resume=resume))
        crawler.spider._set_crawler(crawler)
        # get_crawler built the extensions before there was a spider; a crawl builds them once
        # it exists (Crawler.crawl), and ArchivingExtension needs the spider's job
        crawler.extensions = build_from_crawler(ExtensionManager, crawler)
        crawler.engine = crawler._create_engine()
        made.append(crawler)
        return crawler

    yield make
    for crawler in made:
        crawler.engine.downloader.close()
        archive = crawler.get_extension(ArchivingExtension)
        if archive is not None:  # its threads, which spider_closed would stop
            archive._thread.shutdown()
            archive.delivery.thread.shutdown()
            archive.journal.close()


def wire_request(path: str = "/news/1", **meta: Any) -> Request:
    return Request(SITE + path, meta={"outlet": "wire", **meta})


def outlet_stats(crawler: Crawler) -> dict[str, Any]:
    prefix = "newsarchive/outlet/wire/"
    return {k.removeprefix(prefix): v for k, v in crawler.stats.get_stats().items()
            if k.startswith(prefix)}


def fired(d: defer.Deferred) -> Any:
    """The result of an already-fired Deferred (its exception raised)."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


# ------------------------------------------------------------------------------ scope


@pytest.mark.parametrize(("url", "verdict"), [
    ("https://elsewhere.example/news/1", "offsite"),
    ("http://127.0.0.1/admin", "internal"),
    ("http://10.1.2.3/", "internal"),
    ("http://[::1]:8080/", "internal"),
    ("http://localhost/", "internal"),
    ("ftp://news.example/file", "scheme"),
])
def test_scope_refuses_offsite_and_internal_urls_and_counts_them(
        make_crawler: Callable[..., Crawler], url: str, verdict: str) -> None:
    crawler = make_crawler()
    mw = OutletScopeMiddleware.from_crawler(crawler)
    assert mw.process_request(wire_request()) is None  # the outlet's own page goes ahead
    with pytest.raises(IgnoreRequest, match=verdict):
        mw.process_request(Request(url, meta={"outlet": "wire"}))
    assert outlet_stats(crawler) == {f"refused/{verdict}": 1}


def test_scope_refuses_query_variants_past_the_outlets_limit(
        make_crawler: Callable[..., Crawler]) -> None:
    crawler = make_crawler(max_query_variants=2)
    mw = OutletScopeMiddleware.from_crawler(crawler)
    for query in ("page=1", "page=2", "page=1"):  # a known variant is not a new one
        mw.process_request(wire_request(f"/list?{query}"))
    mw.process_request(wire_request("/other?page=3"))  # each path has its own budget
    with pytest.raises(IgnoreRequest, match="query_trap"):
        mw.process_request(wire_request("/list?page=3"))
    assert outlet_stats(crawler) == {"refused/query_trap": 1}


def test_scope_counts_fetches_statuses_robots_skips_and_errors(
        make_crawler: Callable[..., Crawler]) -> None:
    crawler = make_crawler()
    mw = OutletScopeMiddleware.from_crawler(crawler)
    for status in (200, 404):
        crawler.signals.send_catch_log(signals.response_downloaded, request=wire_request(),
                                       response=Response(SITE + "/news/1", status=status),
                                       spider=crawler.spider)
    mw.process_exception(wire_request(), IgnoreRequest("Forbidden by robots.txt"))
    mw.process_exception(wire_request(), TimeoutError())
    assert outlet_stats(crawler) == {"fetched": 2, "status/404": 1, "skipped/robots": 1,
                                     "errors/TimeoutError": 1}


# ------------------------------------------------------------------------------ slots


def test_each_host_gets_its_own_slot_with_the_outlets_concurrency_and_delay(
        make_crawler: Callable[..., Crawler]) -> None:
    crawler = make_crawler(concurrency=3, delay=1.5, allow_subdomains=True)
    mw = OutletSlotMiddleware.from_crawler(crawler)
    slots = {}
    for url in (SITE + "/a", SITE + "/b", "https://www.news.example/c"):
        request = Request(url, meta={"outlet": "wire"})
        mw.process_request(request)
        assert request.meta["autothrottle_dont_adjust_delay"]  # a fixed delay stays fixed
        key, slot = crawler.engine.downloader._get_slot(request)
        slots[key] = (slot.concurrency, slot.delay, slot.jitter)
    assert slots == {"wire@news.example": (3, 1.5, 0.0), "wire@www.news.example": (3, 1.5, 0.0)}


def test_robots_crawl_delay_raises_the_slot_delay_and_autothrottle_keeps_the_rest(
        make_crawler: Callable[..., Crawler]) -> None:
    crawler = make_crawler()  # no delay set: AutoThrottle adjusts it
    mw = OutletSlotMiddleware.from_crawler(crawler)
    free = wire_request()
    mw.process_request(free)
    assert "autothrottle_dont_adjust_delay" not in free.meta
    assert crawler.engine.downloader.per_slot_settings["wire@news.example"] == {"concurrency": 2}

    robots = type("Robots", (), {"crawl_delay": lambda self, agent: 7})()
    crawler.signals.send_catch_log(signals.robots_parsed, robotparser=robots,
                                   request=Request("https://slow.example/robots.txt"))
    slow = Request("https://slow.example/a", meta={"outlet": "wire"})
    mw.process_request(slow)
    assert crawler.engine.downloader._get_slot(slow)[1].delay == 7.0
    assert slow.meta["autothrottle_dont_adjust_delay"]


# ------------------------------------------------------------------------------ retry


@pytest.mark.parametrize(("status", "retry_after", "retry_times", "wait"), [
    (429, "30", 0, 30.0),
    (503, timedelta(minutes=2), 0, 120.0),  # an HTTP date
    (429, "86400", 0, 600.0),  # capped at 10 minutes
    (503, None, 1, 2.0),  # none given: exponential backoff
])
def test_retry_after_waits_as_asked_holding_the_host(
        make_crawler: Callable[..., Crawler], monkeypatch: pytest.MonkeyPatch, status: int,
        retry_after: str | timedelta | None, retry_times: int, wait: float) -> None:
    waits: list[float] = []
    monkeypatch.setattr(politeness, "_sleep", lambda s: waits.append(s) or defer.succeed(None))
    crawler = make_crawler()
    mw = RetryAfterMiddleware.from_crawler(crawler)
    slot = crawler.engine.downloader.slots["wire@news.example"] = Slot(2, 1.0, 0.0)
    if isinstance(retry_after, timedelta):
        retry_after = format_datetime(datetime.now(UTC) + retry_after, usegmt=True)
    request = wire_request(download_slot="wire@news.example", retry_times=retry_times)
    response = Response(request.url, status=status,
                        headers={"Retry-After": retry_after} if retry_after else {})

    retried = fired(defer.ensureDeferred(mw.process_response(request, response)))
    assert waits == [pytest.approx(wait, abs=2)]
    # the host's next request leaves no earlier than the wait's end
    assert slot.lastseen + slot.delay == pytest.approx(time.monotonic() + wait, abs=2)
    assert isinstance(retried, Request) and retried.url == request.url
    assert retried.meta["retry_times"] == retry_times + 1 and retried.dont_filter


def test_retry_after_gives_up_after_the_retries_allowed(
        make_crawler: Callable[..., Crawler], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(politeness, "_sleep", lambda s: pytest.fail("waited"))
    mw = RetryAfterMiddleware.from_crawler(make_crawler({"RETRY_TIMES": 2}))
    response = Response(SITE + "/news/1", status=429, headers={"Retry-After": "5"})
    for meta in ({"retry_times": 2}, {"dont_retry": True}):
        request = wire_request(**meta)
        assert fired(defer.ensureDeferred(mw.process_response(request, response))) is response


# ------------------------------------------------------------------------------ page size


def stopped(crawler: Crawler, signal: object, request: Request, **kwargs: Any) -> bool:
    """Whether a handler of `signal` stopped the download keeping what arrived, as Scrapy's
    download handlers check it."""
    results = crawler.signals.send_catch_log(signal, request=request, spider=crawler.spider,
                                             **kwargs)
    stops = [r.value for _, r in results if isinstance(r, Failure) and r.check(StopDownload)]
    assert all(not stop.fail for stop in stops)  # the partial response is kept
    return bool(stops)


def test_page_size_guard_cuts_off_past_max_page_size(
        make_crawler: Callable[..., Crawler]) -> None:
    crawler = make_crawler()
    _guard = PageSizeGuard.from_crawler(crawler)  # held: signals keep weak references
    request = wire_request(max_page_size=1000)
    assert stopped(crawler, signals.headers_received, request, headers={}, body_length=1001)
    # chunked (no length): counted as it arrives; a retry starts the count again
    for _attempt in range(2):
        assert not stopped(crawler, signals.headers_received, request, headers={},
                           body_length=UNKNOWN_LENGTH)
        assert not stopped(crawler, signals.bytes_received, request, data=b"x" * 600)
    assert stopped(crawler, signals.bytes_received, request, data=b"x" * 401)
    assert outlet_stats(crawler) == {"refused/too_large": 2}


# ------------------------------------------------------------------------------ meta refresh


class UndecodableResponse(HtmlResponse):
    @property
    def text(self) -> str:
        raise AssertionError("the page was decoded")


def test_meta_refresh_followed_from_a_utf8_or_utf16_head(
        make_crawler: Callable[..., Crawler]) -> None:
    mw = LeanMetaRefreshMiddleware.from_crawler(make_crawler())
    head = ('<html><head><title>Новости</title><meta http-equiv="Refresh" '
            'content="0; url=/news/moved"></head><body>Статья</body></html>')
    for encoding in ("utf-8", "utf-16"):
        request = wire_request("/news/old")
        response = HtmlResponse(request.url, body=head.encode(encoding),
                                headers={"Content-Type": f"text/html; charset={encoding}"})
        redirected = mw.process_response(request, response)
        assert isinstance(redirected, Request), encoding
        assert redirected.url == SITE + "/news/moved"
        assert redirected.meta["redirect_urls"] == [request.url]


def test_meta_refresh_leaves_pages_without_one_undecoded(
        make_crawler: Callable[..., Crawler]) -> None:
    mw = LeanMetaRefreshMiddleware.from_crawler(make_crawler())
    request = wire_request()
    response = UndecodableResponse(request.url, body=b"<html><head><title>T</title></head>"
                                   + b"<body>" + b"<p>text</p>" * 10_000 + b"</body></html>")
    assert mw.process_response(request, response) is response


# ------------------------------------------------------------------------------ stats, dupes


def test_stats_collector_counts_sets_and_reads_values(
        make_crawler: Callable[..., Crawler]) -> None:
    stats = make_crawler().stats  # built from STATS_CLASS
    assert isinstance(stats, CrawlStatsCollector)
    assert stats.get_value("pages") is None and stats.get_value("pages", 0) == 0
    stats.inc_value("pages")
    stats.inc_value("pages", 2)
    stats.inc_value("bytes", 10, start=100)
    stats.set_value("state", "open")
    stats.set_value("state", "closed")
    stats.max_value("largest", 5)
    stats.max_value("largest", 3)
    assert stats.get_stats() == {"pages": 3, "bytes": 110, "state": "closed", "largest": 5}
    # called as plain methods, not through Scrapy's per-access deprecation wrapper
    assert stats.inc_value.__func__ is MemoryStatsCollector.inc_value


def test_dupefilter_from_settings_holds_seen_requests_compactly_without_jobdir(
        make_crawler: Callable[..., Crawler]) -> None:
    crawler = make_crawler({"DUPEFILTER_CLASS": project_settings.DUPEFILTER_CLASS})
    dupefilter = load_object(crawler.settings["DUPEFILTER_CLASS"]).from_crawler(crawler)
    assert isinstance(dupefilter, CompactDupeFilter) and dupefilter.file is None
    assert isinstance(dupefilter._fingerprints, DigestSet)
    assert not dupefilter.request_seen(wire_request("/a"))
    assert dupefilter.request_seen(wire_request("/a#comments"))  # the same resource
    assert not dupefilter.request_seen(Request(SITE + "/a", method="POST"))


# ------------------------------------------------------------------------------ settings


def test_project_settings_put_the_components_where_they_act(
        make_crawler: Callable[..., Crawler]) -> None:
    settings = Settings()
    settings.setmodule(project_settings)
    order = build_component_list(settings.getwithbase("DOWNLOADER_MIDDLEWARES"))
    position = {path.rsplit(".", 1)[1]: i for i, path in enumerate(order)}
    scope, robots, slot = (position[name] for name in (
        "OutletScopeMiddleware", "RobotsTxtMiddleware", "OutletSlotMiddleware"))
    assert scope < robots < slot
    assert "scrapy.downloadermiddlewares.retry.RetryMiddleware" not in order
    assert "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware" not in order
    assert {"RetryAfterMiddleware", "LeanMetaRefreshMiddleware"} <= position.keys()

    crawler = make_crawler({"DOWNLOAD_HANDLERS": project_settings.DOWNLOAD_HANDLERS})
    handler = crawler.engine.downloader.handlers._get_handler("https")
    assert isinstance(handler, WireRecordingDownloadHandler)
    # its connections record the heads
    assert handler._pool._factory.func is _WireRecordingFactory


def test_importing_the_package_installs_no_reactor() -> None:
    """A crawl's TWISTED_REACTOR (asyncio's, say) can still be installed after the spider and
    settings modules are imported."""
    code = ("import pkgutil, importlib, sys, crawler\n"
            "for m in pkgutil.walk_packages(crawler.__path__, 'crawler.'):\n"
            "    importlib.import_module(m.name)\n"
            "assert 'crawler.crawl.politeness' in sys.modules\n"
            "assert 'twisted.internet.reactor' not in sys.modules, 'a reactor was installed'\n"
            "from scrapy.utils.reactor import install_reactor\n"
            "install_reactor('twisted.internet.asyncioreactor.AsyncioSelectorReactor')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------ archive

ARCHIVING = {"EXTENSIONS": project_settings.EXTENSIONS, "NEWSARCHIVE_EXTRACT_WORKERS": 1}
NO_ARCHIVING = {"EXTENSIONS": {**project_settings.EXTENSIONS,
                               "crawler.crawl.archiving.ArchivingExtension": None}}


def test_project_settings_enable_the_archive_that_the_components_share(
        make_crawler: Callable[..., Crawler]) -> None:
    crawler = make_crawler(ARCHIVING, resume=True)
    archive = crawler.get_extension(ArchivingExtension)
    assert isinstance(archive, ArchivingExtension) and archive.job is crawler.spider.job
    pipeline = ExtractionPipeline.from_crawler(crawler)
    try:
        assert pipeline.archive is archive
        assert WarcCaptureMiddleware.from_crawler(crawler).archive is archive
        assert ArchivedResponseMiddleware.from_crawler(crawler).run is archive
    finally:
        pipeline.close_spider()


def test_the_resume_middleware_is_off_unless_the_crawl_resumes(
        make_crawler: Callable[..., Crawler]) -> None:
    """A crawl that resumes nothing spares every request a pass through it."""
    with pytest.raises(NotConfigured):
        ArchivedResponseMiddleware.from_crawler(make_crawler(ARCHIVING))


@pytest.mark.parametrize("component", [
    WarcCaptureMiddleware, ExtractionPipeline, ArchivedResponseMiddleware])
def test_components_are_not_configured_without_the_archive(
        make_crawler: Callable[..., Crawler], component: type) -> None:
    crawler = make_crawler(NO_ARCHIVING)
    assert crawler.get_extension(ArchivingExtension) is None
    with pytest.raises(NotConfigured, match="ArchivingExtension is not enabled"):
        component.from_crawler(crawler)


def test_the_archive_is_not_configured_for_a_spider_without_a_crawl_job(
        make_crawler: Callable[..., Crawler]) -> None:
    crawler = make_crawler()
    crawler.spider = Spider("plain")
    with pytest.raises(NotConfigured, match="no newsarchive crawl job"):
        ArchivingExtension.from_crawler(crawler)


def capturing(crawler: Crawler, monkeypatch: pytest.MonkeyPatch,
              archived: tuple[dict[str, Any], ...] = ()) -> WarcCaptureMiddleware:
    """The capture middleware of an opened crawl whose archive holds `archived`; the writer
    thread's work is done in place, and finished files stay in the spool (no upload)."""
    archive = crawler.get_extension(ArchivingExtension)
    archive.state = StateIndex.build(archive.state.path, archived)  # as spider_opened does
    monkeypatch.setattr(archiving, "run_in",
                        lambda _thread, fn, *args: defer.maybeDeferred(fn, *args))
    archive.writer.on_finished = lambda entries: None
    return WarcCaptureMiddleware.from_crawler(crawler)


def spooled_record(archive: ArchivingExtension, pointer: dict[str, Any]) -> Any:
    """The record a capture pointer points at, read from the crawl's spool."""
    with open(archive.spool.path(pointer["warc_file"]), "rb") as f:
        f.seek(pointer["warc_offset"])
        data = f.read(pointer["warc_length"])
    (record,) = [(r.rec_type, r.rec_headers, r.http_headers.get_statuscode(),
                  r.raw_stream.read()) for r in ArchiveIterator(io.BytesIO(data))]
    return record


def test_capture_leaves_the_request_a_pointer_to_its_response_record(
        make_crawler: Callable[..., Crawler], monkeypatch: pytest.MonkeyPatch) -> None:
    crawler = make_crawler(ARCHIVING)
    mw = capturing(crawler, monkeypatch)
    archive = mw.archive
    request = wire_request("/news/1")
    body = "<html><title>Новости</title><p>Статья</p></html>".encode()
    response = HtmlResponse(request.url, body=body, request=request,
                            headers={"Content-Type": "text/html; charset=utf-8"})
    assert fired(defer.ensureDeferred(mw.process_response(request, response))) is response

    pointer = request.meta[CAPTURE_META]
    assert pointer["revisit"] is None and pointer["payload_digest"] == sha1_digest(body)
    archive.writer.close()  # the WARC is complete, in the spool
    record_type, headers, status, payload = spooled_record(archive, pointer)
    assert (record_type, status, payload) == ("response", "200", body)
    assert headers.get_header("WARC-Target-URI") == request.url
    assert headers.get_header("WARC-Record-ID") == pointer["warc_record_id"]
    # the URL's state learns where its capture is
    archive.journal.close()
    (update,) = read_journal(archive.journal.path)
    assert (update["warc_file"], update["warc_offset"]) == (pointer["warc_file"],
                                                            pointer["warc_offset"])


def test_capture_of_a_payload_the_archive_holds_points_at_a_revisit(
        make_crawler: Callable[..., Crawler], monkeypatch: pytest.MonkeyPatch) -> None:
    request = wire_request("/news/1")
    body = b"<html><p>The same story</p></html>"
    archived = {"url": request.url, "outlet": "wire", "digest": sha1_digest(body),
                "record_id": "<urn:uuid:00000000-0000-4000-8000-000000000001>",
                "captured_at": "2025-08-01T10:00:00.000000Z",
                "warc_file": "crawls/wire-20250801T100000Z/warc/x.warc.gz",
                "warc_offset": 0, "warc_length": 900}
    mw = capturing(make_crawler(ARCHIVING), monkeypatch, (archived,))
    response = HtmlResponse(request.url, body=body, request=request)
    fired(defer.ensureDeferred(mw.process_response(request, response)))

    pointer = request.meta[CAPTURE_META]
    assert pointer["revisit"] == REVISIT_IDENTICAL
    assert pointer["payload_digest"] == archived["digest"]
    mw.archive.writer.close()
    record_type, headers, _status, payload = spooled_record(mw.archive, pointer)
    assert (record_type, payload) == ("revisit", b"")
    assert headers.get_header("WARC-Refers-To") == archived["record_id"]
