"""One crawl's output: WARC shards with their CDXJ index and text shard, their delivery to the
archive store, and the manifest that commits the crawl.

All file work happens on one writer thread (ordered, never on the reactor); uploads happen on
one upload thread, in the order files close, so a crawl's manifest always follows its files.
The components of a crawl (capture middleware, extraction pipeline, progress) share the run
through ``ArchiveRun.from_crawler``.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from weakref import WeakKeyDictionary

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

from crawler import __version__
from crawler.capture.cdxj import REVISIT_MIME, cdxj_line, timestamp14, write_sorted
from crawler.capture.warc import (
    GzipLines,
    HashingFile,
    WarcFile,
    WrittenRecord,
    sha1_digest,
    warc_date,
    warcinfo_fields,
)
from crawler.crawl.threads import run_in
from crawler.job import JOB_FILE, CrawlJob
from crawler.readers.listing import TextStats
from crawler.store.backends import ArchiveStore, StoreError, open_store, sha256_file
from crawler.store.spool import JOBS_DIR, MANIFEST_NAME, Spool, default_spool_dir
from crawler.store.state import Journal, StateIndex, merge_journal, read_state

logger = logging.getLogger(__name__)

JOURNAL_NAME = "state.jsonl"  # in the crawl's work directory: its state observations
FILES_NAME = "files.jsonl"  # in the crawl's work directory: the files it finished
STATE_INDEX_NAME = "state.sqlite"  # in the crawl's work directory: the archive's URL state

MANIFEST_FORMAT = "newsarchive-manifest/1"
REVISIT_IDENTICAL = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
REVISIT_NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
SOFTWARE = f"newsarchive/{__version__} (Scrapy {scrapy.__version__})"


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange as it crossed the wire, ready to be recorded."""

    url: str
    date: str
    ip_address: str | None
    status: int
    mime: str
    request_head: bytes
    request_body: bytes
    response_head: bytes
    response_body: bytes
    truncated: bool = False  # cut off at max_page_size
    outlet: str | None = None  # whose state this URL belongs to (None: robots.txt and such)
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class _TextShard:
    path: Path
    key: str
    hashing: HashingFile
    lines: GzipLines
    stats: TextStats = field(default_factory=TextStats)


@dataclass
class _Shard:
    basename: str
    warc: WarcFile
    warcinfo_id: str
    index_unsorted: Path
    index: IO[str]
    text: _TextShard
    pending_texts: int = 0
    responses: int = 0
    revisits: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class FileEntry:
    key: str
    size: int
    sha256: str
    kind: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "size": self.size, "sha256": self.sha256, "kind": self.kind,
                **self.extra}


_RUNS: WeakKeyDictionary[Crawler, ArchiveRun] = WeakKeyDictionary()


class ArchiveRun:
    def __init__(self, job: CrawlJob, store: ArchiveStore, spool: Spool, warc_max_size: int,
                 hostname: str | None = None) -> None:
        self.job = job
        self.crawl_id = job.crawl_id
        self.store = store
        self.spool = spool
        self.warc_max_size = warc_max_size
        self.hostname = _safe_host(hostname or socket.gethostname())
        self.started = job.started
        self.files: list[FileEntry] = []
        self.counts: Counter = Counter()
        self.upload_failure: str | None = None
        self.state = StateIndex(job.jobdir / STATE_INDEX_NAME)  # built when the spider opens
        self.journal = Journal(job.jobdir / JOURNAL_NAME)
        self.uploads_pending = 0
        self._serial = 0
        self._shard: _Shard | None = None
        self._closed_shards: list[_Shard] = []
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="warc-writer")
        self._uploader = ThreadPoolExecutor(1, thread_name_prefix="upload")
        self.result: dict[str, Any] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchiveRun:
        """The crawler's run, created on first use and shared by its components."""
        run = _RUNS.get(crawler)
        if run is None:
            job: CrawlJob = crawler.spider.job
            archive = job.config.archive
            store = open_store(archive, job.archive_uri)
            spool = Spool(default_spool_dir(archive, job.archive_uri))
            max_size = crawler.settings.getint("NEWSARCHIVE_WARC_MAX_SIZE") or min(
                o.crawl.warc_max_size for o in job.outlets)
            run = cls(job, store, spool, max_size)
            crawler.signals.connect(run.spider_opened, signal=signals.spider_opened)
            crawler.signals.connect(run.spider_closed, signal=signals.spider_closed)
            _RUNS[crawler] = run
        return run

    @property
    def prefix(self) -> str:
        return f"crawls/{self.crawl_id}"

    # ---------------------------------------------------------------- reactor-facing API

    async def spider_opened(self, spider: scrapy.Spider) -> None:
        logger.info("crawl %s -> %s (spool %s)", self.crawl_id, self.store.uri, self.spool.root)
        unfinished = self.spool.unfinished()
        if unfinished:
            logger.warning("spool: %d file(s) being written by another crawl, or left by an "
                           "interrupted one (`crawl --resume` completes it), are left as they "
                           "are (%s ...)", len(unfinished), unfinished[0])
        if not self.job.resume:
            await maybe_deferred_to_future(run_in(self._writer, self.job.save))
        await maybe_deferred_to_future(run_in(self._uploader, self._flush_spool))
        await maybe_deferred_to_future(run_in(self._uploader, self._merge_earlier_state))
        await maybe_deferred_to_future(run_in(self._uploader, self._load_state))

    def write_exchange(self, exchange: Exchange) -> Deferred:
        """Record an exchange (response, then request); fires with the response's location."""
        return run_in(self._writer, self._write_exchange, exchange)

    def begin_text(self, warc_key: str) -> Deferred:
        """Announce a text record for a capture; fires with the text shard it will go to."""
        return run_in(self._writer, self._begin_text, warc_key)

    def add_text(self, text_key: str, record: dict[str, Any] | None,
                 state: dict[str, Any] | None = None) -> Deferred:
        """Deliver an announced text record (None: no new text), and what the URL's state
        learns from it."""
        return run_in(self._writer, self._add_text, text_key, record, state)

    async def spider_closed(self, spider: scrapy.Spider, reason: str) -> None:
        """Close the last shard, wait for the uploads, then commit the manifest."""
        try:
            await maybe_deferred_to_future(run_in(self._writer, self._close_all))
            self.result = await maybe_deferred_to_future(
                run_in(self._uploader, self._commit, reason))
            # committed: no resume, so neither the queue nor the state's local copy is needed
            shutil.rmtree(self.job.queue_dir, ignore_errors=True)
            self.state.path.unlink(missing_ok=True)
            if not self.result["spooled"]:  # else the next run merges it, once files are up
                self.result["state_urls"] = await maybe_deferred_to_future(
                    run_in(self._uploader, merge_pending_state, self.store, self.job.jobdir))
        finally:
            self._writer.shutdown(wait=False)
            self._uploader.shutdown(wait=False)

    # ---------------------------------------------------------------- writer thread

    def _current(self) -> _Shard:
        if self._shard is None:
            self._shard = self._open_shard()
        return self._shard

    def _open_shard(self) -> _Shard:
        basename = f"{self.crawl_id}-{self._serial:05d}-{self.hostname}"
        self._serial += 1
        warc_key = f"{self.prefix}/warc/{basename}.warc.gz"
        warc = WarcFile(self.spool.path(warc_key), warc_key)
        info = warcinfo_fields({
            "software": SOFTWARE,
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "hostname": socket.gethostname(),
            "operating-system": platform.platform(),
            "isPartOf": self.crawl_id,
            "outlets": ", ".join(o.name for o in self.job.outlets),
            "robots": _robots_policy(self.job),
            "http-header-user-agent": " | ".join(sorted({o.crawl.user_agent
                                                           for o in self.job.outlets})),
            "config-digest": self.job.config_digest,
        })
        written = warc.write_record("warcinfo", [("WARC-Date", warc_date()),
                                                 ("WARC-Filename", f"{basename}.warc.gz")],
                                    (info,), content_type="application/warc-fields",
                                    digests=False)
        index_unsorted = self.spool.path(f"{self.prefix}/index/{basename}.cdxj.unsorted")
        index_unsorted.parent.mkdir(parents=True, exist_ok=True)
        text_key = f"{self.prefix}/text/{basename}.jsonl.gz"
        text_path = self.spool.path(text_key)
        text_path.parent.mkdir(parents=True, exist_ok=True)
        hashing = HashingFile(text_path.with_name(text_path.name + ".open"))
        text = _TextShard(text_path, text_key, hashing, GzipLines(hashing))
        return _Shard(basename, warc, written.record_id, index_unsorted,
                      open(index_unsorted, "w", encoding="utf-8"), text)

    def _write_exchange(self, ex: Exchange) -> WrittenRecord:
        """The response as a full record, or as a revisit when the archive already holds its
        payload (identical digest) or the server says it has not changed (304); then the
        request. The URL's state learns what happened."""
        shard = self._current()
        common = [("WARC-Date", ex.date), ("WARC-Target-URI", ex.url),
                  ("WARC-IP-Address", ex.ip_address), ("WARC-Warcinfo-ID", shard.warcinfo_id)]
        digest = sha1_digest(ex.response_body)
        previous = self.state.get(ex.url) if ex.outlet else None
        profile = revisit_profile(ex, digest, previous)
        if profile and previous:
            response = shard.warc.write_record(
                "revisit",
                _fields(*common, ("WARC-Profile", profile),
                        ("WARC-Refers-To", previous["record_id"]),
                        ("WARC-Refers-To-Target-URI", previous["url"]),
                        ("WARC-Refers-To-Date", previous["captured_at"]),
                        ("WARC-Payload-Digest", previous["digest"])),
                (ex.response_head,), content_type="application/http; msgtype=response")
            response = replace(response, payload_digest=previous["digest"], profile=profile)
            shard.revisits[f"revisits/{profile.rsplit('/', 1)[1]}"] += 1
        else:
            response = shard.warc.write_record(
                "response",
                _fields(*common, ("WARC-Truncated", "length" if ex.truncated else None)),
                (ex.response_head, ex.response_body),
                content_type="application/http; msgtype=response", payload_digest=digest)
        shard.warc.write_record(
            "request",
            _fields(("WARC-Date", ex.date), ("WARC-Target-URI", ex.url),
                    ("WARC-Concurrent-To", response.record_id),
                    ("WARC-Warcinfo-ID", shard.warcinfo_id)),
            (ex.request_head, ex.request_body) if ex.request_body else (ex.request_head,),
            content_type="application/http; msgtype=request",
        )
        shard.index.write(cdxj_line(ex.url, timestamp14(ex.date),
                                    mime=REVISIT_MIME if profile else ex.mime,
                                    status=ex.status, digest=response.payload_digest or "",
                                    length=response.length, offset=response.offset,
                                    filename=response.warc_key))
        shard.responses += 1
        if ex.outlet and (profile or (ex.status == 200 and not ex.truncated)):
            self.journal.write(state_update(ex, response, profile))
        if shard.warc.size >= self.warc_max_size:
            self._rotate()
        return response

    def _rotate(self) -> None:
        shard = self._shard
        if shard is None:
            return
        self._shard = None
        shard.warc.close()
        shard.index.close()
        self._closed_shards.append(shard)
        self._finish_ready_shards()

    def _begin_text(self, warc_key: str) -> str:
        shard = self._shard_for(warc_key) or self._current()
        shard.pending_texts += 1
        return shard.text.key

    def _add_text(self, text_key: str, record: dict[str, Any] | None,
                  state: dict[str, Any] | None) -> None:
        if state:
            self.journal.write(state)
        shard = next((s for s in (self._shard, *self._closed_shards)
                      if s is not None and s.text.key == text_key), None)
        if shard is None:
            raise RuntimeError(f"text shard {text_key} is already closed")
        shard.pending_texts -= 1
        if record is not None:
            text = shard.text
            text.lines.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
            text.stats.add(record)
        self._finish_ready_shards()

    def _shard_for(self, warc_key: str) -> _Shard | None:
        for shard in (self._shard, *self._closed_shards):
            if shard is not None and shard.warc.key == warc_key:
                return shard
        return None

    def _finish_ready_shards(self) -> None:
        for shard in [s for s in self._closed_shards if s.pending_texts == 0]:
            self._closed_shards.remove(shard)
            self._finish_shard(shard)

    def _finish_shard(self, shard: _Shard) -> None:
        """Close the text shard, sort the index, and queue the three files for upload."""
        text = shard.text
        text.lines.close()
        text.path.with_name(text.path.name + ".open").replace(text.path)
        index_key = f"{self.prefix}/index/{shard.basename}.cdxj"
        index_path = self.spool.path(index_key)
        write_sorted(shard.index_unsorted, index_path)
        shard.index_unsorted.unlink()
        entries = [
            FileEntry(shard.warc.key, shard.warc.path.stat().st_size, shard.warc.sha256, "warc",
                      {"records": shard.responses, "revisits": dict(shard.revisits)}),
            FileEntry(index_key, index_path.stat().st_size, sha256_file(index_path), "index"),
            FileEntry(text.key, text.path.stat().st_size, text.hashing.sha256.hexdigest(), "text",
                      text.stats.metadata()),
        ]
        self._files_journal(entries)
        self._count_files(entries)
        for entry in entries:
            self._queue_upload(entry)

    def _files_journal(self, entries: list[FileEntry]) -> None:
        """The crawl's finished files, in its work directory: a resumed crawl lists them too."""
        with open(self.job.jobdir / FILES_NAME, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(e.as_json()) + "\n" for e in entries)

    def _count_files(self, entries: list[FileEntry]) -> None:
        self.files.extend(entries)
        for entry in entries:
            if entry.kind == "warc":
                self.counts["warc_files"] += 1
                self.counts["warc_bytes"] += entry.size
                self.counts["responses"] += entry.extra.get("records", 0)
                self.counts.update(entry.extra.get("revisits", {}))
            elif entry.kind == "text":
                self.counts["text_records"] += entry.extra.get("records", 0)

    def adopt(self, entries: list[FileEntry], next_serial: int) -> Deferred:
        """A resumed crawl takes over the files its interrupted run finished (or its repair
        produced): listed in the manifest, uploaded if they are still in the spool."""
        return run_in(self._writer, self._adopt, entries, next_serial)

    def _adopt(self, entries: list[FileEntry], next_serial: int) -> None:
        self._serial = max(self._serial, next_serial)
        self._count_files(entries)
        for entry in entries:
            if self.spool.path(entry.key).exists():
                self._queue_upload(entry)

    def _close_all(self) -> None:
        self._rotate()
        self.journal.close()
        for shard in list(self._closed_shards):
            if shard.pending_texts:
                logger.error("%s: %d text records never arrived; closing the shard without them",
                             shard.basename, shard.pending_texts)
            shard.pending_texts = 0
        self._finish_ready_shards()

    # ---------------------------------------------------------------- upload thread

    def _queue_upload(self, entry: FileEntry) -> None:
        self.uploads_pending += 1
        self._uploader.submit(self._upload, entry.key, entry.sha256)

    def _upload(self, key: str, sha256: str | None) -> None:
        try:
            if self.upload_failure is None:
                self.spool.deliver(self.store, key, sha256)
                self.counts["uploaded_files"] += 1
        except (StoreError, OSError) as exc:
            self.upload_failure = f"{key}: {exc}"
            logger.warning("upload failed, keeping files in the spool %s for the next run: %s",
                           self.spool.root, exc)
        finally:
            self.uploads_pending -= 1

    def _flush_spool(self) -> None:
        if not self.spool.pending():
            return
        try:
            sent, left = self.spool.flush(self.store)
        except Exception as exc:  # the crawl goes on; the files stay for a later run
            logger.warning("spool: delivery of earlier runs' files failed: %s", exc)
            return
        logger.info("spool: delivered %d file(s) left by earlier runs, %d still waiting", sent,
                    left)

    def _merge_earlier_state(self) -> None:
        """Journals of earlier crawls that committed while the store was away (their work
        directories go with them)."""
        for job_file in sorted((self.spool.root / JOBS_DIR).glob(f"*/{JOB_FILE}")):
            crawl_id = job_file.parent.name
            try:
                committed = self.store.stat(f"crawls/{crawl_id}/{MANIFEST_NAME}") is not None
            except StoreError:
                return
            if crawl_id != self.crawl_id and committed:
                merge_pending_state(self.store, job_file.parent)

    def _load_state(self) -> None:
        outlets = [o.name for o in self.job.outlets]
        try:
            self.state = StateIndex.build(self.state.path, read_state(self.store, outlets))
        except StoreError as exc:  # the crawl goes on, capturing in full
            logger.warning("incremental state not read (%s): every page is captured in full", exc)
            self.state = StateIndex.build(self.state.path, ())
            return
        logger.info("state: %d archived URLs of %s", len(self.state), ", ".join(outlets))

    def _commit(self, reason: str) -> dict[str, Any]:
        """Write the manifest last: the commit marker of the crawl."""
        ended = datetime.now(UTC)
        manifest = {
            "format": MANIFEST_FORMAT,
            "crawl_id": self.crawl_id,
            "job": self.job.name,
            "software": SOFTWARE,
            "started": _iso(self.started),
            "ended": _iso(ended),
            "finish_reason": reason,
            "archive": self.store.uri,
            "config_digest": self.job.config_digest,
            "outlets": [o.name for o in self.job.outlets],
            "counts": dict(sorted(self.counts.items())),
            "files": [f.as_json() for f in self.files],
        }
        key = f"{self.prefix}/{MANIFEST_NAME}"
        path = self.spool.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        partial.replace(path)
        self.uploads_pending += 1
        self._upload(key, None)
        self.spool.prune(self.spool.path(self.prefix))
        # this crawl's files only: another crawl may be writing into the same spool right now
        manifest["spooled"] = [k for k in self.spool.pending() if k.startswith(self.prefix + "/")]
        manifest["upload_failure"] = self.upload_failure
        return manifest


def revisit_profile(ex: Exchange, digest: str, previous: dict[str, Any] | None) -> str | None:
    """The revisit profile an exchange gets, if any: the server said "not modified", or sent the
    archived payload again (an empty payload is no copy worth saving)."""
    if previous is None or not previous.get("record_id"):
        return None
    if ex.status == 304:
        return REVISIT_NOT_MODIFIED
    if ex.status == 200 and ex.response_body and not ex.truncated \
            and digest == previous.get("digest"):
        return REVISIT_IDENTICAL
    return None


def state_update(ex: Exchange, written: WrittenRecord, profile: str | None) -> dict[str, Any]:
    """What the URL's state learns from an exchange: a full capture replaces the archived
    one; a revisit only marks the check (and refreshes the validators)."""
    update: dict[str, Any] = {"url": ex.url, "outlet": ex.outlet, "last_checked": ex.date,
                              "first_seen": ex.date}
    if ex.etag or ex.last_modified or not profile:
        update.update(etag=ex.etag, last_modified=ex.last_modified)
    if not profile:
        update.update(digest=written.payload_digest, warc_file=written.warc_key,
                      warc_offset=written.offset, warc_length=written.length,
                      record_id=written.record_id, captured_at=ex.date)
    return update


def merge_pending_state(store: ArchiveStore, jobdir: Path) -> int | None:
    """Merge a committed crawl's journal into the archive's state, then drop its work directory
    (what is left of it); None when the store refused (the journal waits for the next run)."""
    journal = jobdir / JOURNAL_NAME
    try:
        merged = merge_journal(store, journal)
    except StoreError as exc:
        logger.warning("state: %s not merged yet (%s); the next run retries", journal, exc)
        return None
    shutil.rmtree(jobdir, ignore_errors=True)
    return merged


def _fields(*pairs: tuple[str, str | None]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in pairs if v]


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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
