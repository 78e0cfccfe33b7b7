"""The Scrapy extension that ties a crawl to its archive: capture writer, delivery, URL state.

Listed in ``EXTENSIONS``; the crawl's other components (capture middleware, extraction pipeline,
resume middleware, progress, the spider) reach it with
``crawler.get_extension(ArchivingExtension)``. File work happens on one writer thread (ordered,
never on the reactor), uploads on the delivery's upload thread; this extension only hands work
to them and wires the crawl's signals: the archive's state is read when the spider opens, the
files are closed, delivered and committed when it closes.

A write that fails (a full disk) stops the crawl: nothing new is captured (the exchanges in
flight are dropped), the spider closes with reason ``disk_full`` (or ``write_error``), the files
are closed at their last whole record and committed if they all verify; when something could not
be finished (a text record, a shard), nothing is committed and ``crawl --resume`` repairs it.
`failure` says what happened, in one line.
"""

from __future__ import annotations

import errno
import logging
import platform
import shutil
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from crawler.capture.payloads import PayloadIndex
from crawler.capture.writer import CaptureWriter, Exchange
from crawler.crawl.threads import run_in
from crawler.errors import NewsarchiveError
from crawler.job import CrawlJob
from crawler.layout import JOURNAL_FILE, PAYLOADS_FILE, STATE_INDEX_FILE, default_spool_dir
from crawler.records import SOFTWARE, FileEntry
from crawler.store.backends import open_store
from crawler.store.delivery import Delivery
from crawler.store.spool import Spool
from crawler.store.state import (
    Journal,
    StateIndex,
    article_state,
    load_index,
    merge_earlier_journals,
    merge_pending_state,
)

logger = logging.getLogger(__name__)


class ArchivingExtension:
    def __init__(self, job: CrawlJob, delivery: Delivery, warc_max_size: int,
                 hostname: str | None = None) -> None:
        self.job = job
        self.crawl_id = job.crawl_id
        self.delivery = delivery
        self.store = delivery.store
        self.spool = delivery.spool
        self.state = StateIndex(job.jobdir / STATE_INDEX_FILE)  # built when the spider opens
        self.journal = Journal(job.jobdir / JOURNAL_FILE)
        self.writer = CaptureWriter(
            self.spool.root, job.crawl_id, _safe_host(hostname or socket.gethostname()),
            warcinfo(job), warc_max_size, previous=lambda url: self.state.get(url),
            observe=self.journal.write, on_finished=delivery.add,
            payloads=PayloadIndex(job.jobdir / PAYLOADS_FILE))
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="warc-writer")
        self.result: dict[str, Any] | None = None
        self.crawler: Crawler | None = None
        self.failure: str | None = None  # the write error that stopped the crawl
        self._stop_reason: str | None = None
        self._lost = False  # a text record or state update not written: no commit
        # what commits the crawl once its files are delivered (upload thread): the manifest,
        # or, for a worker of a shared crawl, its part of it (crawler.crawl.frontier)
        self.commit: Callable[[str, dict[str, Any]], dict[str, Any]] = delivery.commit

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivingExtension:
        job: CrawlJob | None = getattr(crawler.spider, "job", None)
        if job is None:
            raise NotConfigured("the spider has no newsarchive crawl job")
        archive = job.config.archive
        delivery = Delivery(job, open_store(archive, job.archive_uri),
                            Spool(default_spool_dir(archive, job.archive_uri)))
        max_size = crawler.settings.getint("NEWSARCHIVE_WARC_MAX_SIZE") or min(
            o.crawl.warc_max_size for o in job.outlets)
        ext = cls(job, delivery, max_size, hostname=job.worker)
        ext.crawler = crawler
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    @property
    def counts(self) -> Any:
        return self.delivery.counts

    # ---------------------------------------------------------------- reactor-facing API

    async def spider_opened(self, spider: scrapy.Spider) -> None:
        logger.info("crawl %s -> %s (spool %s)", self.crawl_id, self.store.uri, self.spool.root)
        unfinished = self.spool.unfinished()
        if unfinished:
            logger.warning("spool: %d file(s) being written by another crawl, or left by an "
                           "interrupted one (`crawl --resume` completes it), are left as they "
                           "are (%s ...)", len(unfinished), unfinished[0])
        if not self.job.resume:
            await maybe_deferred_to_future(run_in(self._thread, self.job.save))
        uploads = self.delivery.thread
        await maybe_deferred_to_future(run_in(uploads, self.delivery.flush_spool))
        await maybe_deferred_to_future(run_in(
            uploads, merge_earlier_journals, self.store, self.spool.root, self.crawl_id))
        self.state = await maybe_deferred_to_future(run_in(
            uploads, load_index, self.store, self.state.path,
            [o.name for o in self.job.outlets]))

    def write_exchange(self, exchange: Exchange) -> Deferred:
        """Record an exchange (response, then request); fires with the response's
        ``WrittenRecord``, or fails with ``IgnoreRequest`` once a write has failed."""
        d = run_in(self._thread, self._write_exchange, exchange)
        d.addErrback(self._stop_on_failure)
        return d

    def begin_text(self, warc_key: str) -> Deferred:
        """Announce a text record for a capture; fires with the text shard it will go to."""
        return run_in(self._thread, self.writer.begin_text, warc_key)

    def decided(self, warc_key: str) -> Deferred:
        """The spider's word on a page captured in `warc_key`: no text follows."""
        return run_in(self._thread, self.writer.decided, warc_key)

    def add_text(self, text_key: str, record: dict[str, Any] | None,
                 state: dict[str, Any] | None = None) -> Deferred:
        """Deliver an announced text record (None: no new text), and what the URL's state
        learns from it; fires with False when the record could not be written."""
        d = run_in(self._thread, self._add_text, text_key, record, state)
        d.addBoth(self._stop_on_failure)
        return d

    def adopt(self, entries: list[FileEntry], next_serial: int) -> Deferred:
        """A resumed crawl takes over the files its interrupted run finished (or its repair
        produced): listed in the manifest, uploaded if they are still in the spool."""
        return run_in(self._thread, self._adopt, entries, next_serial)

    async def spider_closed(self, spider: scrapy.Spider, reason: str) -> None:
        """Close the last shard, wait for the uploads, then commit the manifest (not after a
        write error that left something unfinished: ``--resume`` repairs it)."""
        try:
            try:
                await maybe_deferred_to_future(run_in(self._thread, self._close))
                if self._lost or self.writer.unfinished:
                    return
                self.result = await maybe_deferred_to_future(run_in(
                    self.delivery.thread, self.commit, reason, spider.crawler.stats.get_stats()))
            except OSError as exc:  # closing or committing met the full disk too
                self._failed(exc)
                return
            except NewsarchiveError as exc:  # a file that does not verify
                self.failure = self.failure or str(exc)
                logger.error("%s", exc)
                return
            if self.failure:
                self.result["write_failure"] = self.failure
            # committed: no resume, so neither the queue nor the state's local copy is needed
            shutil.rmtree(self.job.queue_dir, ignore_errors=True)
            self.state.path.unlink(missing_ok=True)
            if not self.result["spooled"]:  # else the next run merges it, once files are up
                self.result["state_urls"] = await maybe_deferred_to_future(
                    run_in(self.delivery.thread, merge_pending_state, self.store,
                           self.job.jobdir))
        finally:
            self._thread.shutdown(wait=False)
            self.delivery.thread.shutdown(wait=False)

    def _stop_on_failure(self, result: Any) -> Any:
        """After a write error, close the spider (once): the crawl takes no new work."""
        if self.failure and self._stop_reason and self.crawler and self.crawler.engine:
            reason, self._stop_reason = self._stop_reason, None
            logger.error("%s: stopping the crawl", self.failure)
            deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))
        return result

    # ---------------------------------------------------------------- writer thread

    def _failed(self, exc: OSError) -> None:
        """The first write error is the crawl's: it says why the crawl stops."""
        if self.failure:
            return
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        self._stop_reason = "disk_full" if full else "write_error"
        self.failure = (f"disk full writing to {self.spool.root}" if full
                        else f"cannot write to {self.spool.root}: {exc.strerror or exc}")

    def _write_exchange(self, exchange: Exchange) -> Any:
        if not self.failure:
            try:
                return self.writer.write_exchange(exchange)
            except OSError as exc:  # the files end at their last whole record
                self._failed(exc)
        raise IgnoreRequest(f"not captured: {self.failure}")

    def _add_text(self, text_key: str, record: dict[str, Any] | None,
                  state: dict[str, Any] | None) -> bool:
        """The record first, then what the state learns: a record that could not be written
        leaves its URL due for another extraction, never a state that claims its text."""
        written = True
        try:
            self.writer.add_text(text_key, record)
        except OSError as exc:  # a text (or a shard) left for --resume to complete
            self._failed(exc)
            self._lost = True
            written = False
        except Exception:
            if record is None or state is None:
                raise
            logger.exception("text record of %s not written", record["url"])
            written = False
        if state and not written:
            state = article_state(state["url"], state["outlet"], extracted=False)
        if state:
            try:
                self.journal.write(state)
            except OSError as exc:
                self._failed(exc)
                self._lost = True
        return written

    def _adopt(self, entries: list[FileEntry], next_serial: int) -> None:
        self.writer.serial = max(self.writer.serial, next_serial)
        self.delivery.adopt(entries)

    def _close(self) -> None:
        for shard in self.writer.close():
            logger.error("%s text records never arrived; closing the shard without them", shard)
        self.journal.close()
        self.writer.payloads.close()


def warcinfo(job: CrawlJob) -> dict[str, str]:
    """The ``warcinfo`` record that opens each of the crawl's WARC files."""
    return {
        "software": SOFTWARE,
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/"
                      "warc-1.1/",
        "hostname": socket.gethostname(),
        "operating-system": platform.platform(),
        "isPartOf": job.crawl_id,
        "outlets": ", ".join(o.name for o in job.outlets),
        "robots": _robots_policy(job),
        "http-header-user-agent": " | ".join(sorted({o.crawl.user_agent for o in job.outlets})),
        "config-digest": job.config_digest,
    }


def _robots_policy(job: CrawlJob) -> str:
    policies = {o.crawl.obey_robots for o in job.outlets}
    if policies == {True}:
        return "obey"
    if policies == {False}:
        return "ignore"
    return "; ".join(f"{o.name}: {'obey' if o.crawl.obey_robots else 'ignore'}"
                     for o in job.outlets)


def _safe_host(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in name.split(".")[0]) or "host"

