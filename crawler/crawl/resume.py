"""Resuming a crawl that was killed mid-way (``newsarchive crawl --resume``).

Scrapy's JOBDIR keeps its request queue consistent only across a clean stop; after a kill -9
it cannot be trusted. The crawl's own files can: WARC records are flushed one by one, text
records too, and every finished file is listed in the work directory. So a resumed crawl, under
the same crawl id:

1. repairs what the kill left half-written (``crawler.capture.repair``): complete records are
   kept, a torn trailing one is cut, the WARC is closed and indexed, its text shard salvaged; these
   files and those finished before the kill are listed in the manifest and uploaded;
2. runs discovery again from the start, but every URL it already captured is answered from its
   own WARC record instead of the network (``ArchivedResponseMiddleware``): feeds, sitemaps and
   sections yield the same links again, an article whose text is stored is not extracted twice,
   one whose text the kill lost is extracted from its capture. Nothing is fetched twice; what
   was not fetched yet is fetched now.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import threads

from crawler.capture.cdxj import REVISIT_MIME, cdxj_fields, is_not_modified_revisit, write_sorted
from crawler.capture.repair import index_lines, repair_warc, salvage_text
from crawler.capture.stored import StoredResponse, read_stored_response
from crawler.capture.writer import REVISIT_NOT_MODIFIED
from crawler.crawl.archiving import ArchivingExtension
from crawler.crawl.warc_capture import ARCHIVED_FLAG, CAPTURE_META
from crawler.extraction.decoding import decoded_page
from crawler.files import sha256_file
from crawler.job import CrawlJob
from crawler.layout import (
    FILES_FILE,
    SHARD_SUFFIXES,
    UNFINISHED,
    crawl_prefix,
    shard_keys,
)
from crawler.records import FileEntry, TextStats, record_pointer

logger = logging.getLogger(__name__)

_SERIAL = re.compile(r"-(\d{5})-[^/]*$")


# ---------------------------------------------------------------- repair of the crawl's files


def recover_files(run: ArchivingExtension) -> tuple[list[FileEntry], int]:
    """The crawl's finished files (from its file list) plus those its shards left unfinished,
    repaired; and the next free shard serial."""
    listed = {e.key: e for e in _listed_files(run.job.jobdir / FILES_FILE)}
    spool_dir = run.spool.path(crawl_prefix(run.crawl_id))
    basenames = {_basename(p.name) for p in spool_dir.glob("*/*") if _basename(p.name)}
    basenames |= {_basename(k.rsplit("/", 1)[1]) for k in listed}
    entries = list(listed.values())
    for basename in sorted(basenames):
        keys = shard_keys(run.crawl_id, basename)
        if all(k in listed for k in keys.values()):
            continue
        entries.extend(e for e in _finish_unfinished(run, basename, keys) if e.key not in listed)
    serials = [int(m.group(1)) for b in basenames if (m := _SERIAL.search(b))]
    return entries, max(serials, default=-1) + 1


def _finish_unfinished(run: ArchivingExtension, basename: str, keys: dict[str, str]
                       ) -> Iterator[FileEntry]:
    """Close, index and salvage one shard the kill interrupted."""
    warc = run.spool.path(keys["warc"])
    open_warc = warc.with_name(warc.name + ".open")
    if open_warc.exists():
        repaired = repair_warc(open_warc, warc)
        logger.warning("%s: repaired, %d record(s) kept, %d byte(s) cut", keys["warc"],
                       repaired.records, repaired.cut)
    index = run.spool.path(keys["index"])
    unsorted = index.with_name(index.name + ".unsorted")
    text = run.spool.path(keys["text"])
    open_text = text.with_name(text.name + ".open")
    if not warc.exists():  # nothing of it survived (or it was uploaded: then it is listed)
        for leftover in (unsorted, open_text):
            leftover.unlink(missing_ok=True)
        return
    lines = list(index_lines(warc, keys["warc"]))
    if unsorted.exists() or not index.exists():
        unsorted.write_text("".join(lines), "utf-8")
        write_sorted(unsorted, index)
        unsorted.unlink()
    if open_text.exists():
        salvage_text(open_text, text)
    elif not text.exists():
        text.write_bytes(gzip.compress(b"", mtime=0))
    revisits = Counter("revisits/" + ("server-not-modified" if is_not_modified_revisit(f)
                                      else "identical-payload-digest")
                       for f in map(cdxj_fields, lines) if f["mime"] == REVISIT_MIME)
    yield FileEntry(keys["warc"], warc.stat().st_size, sha256_file(warc), "warc",
                    {"records": len(lines), "revisits": dict(revisits)})
    yield FileEntry(keys["index"], index.stat().st_size, sha256_file(index), "index")
    yield FileEntry(keys["text"], text.stat().st_size, sha256_file(text), "text",
                    _text_metadata(text))


def _listed_files(path: Path) -> Iterator[FileEntry]:
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue  # torn by the kill: that shard is finished again from its files
        yield FileEntry.from_json(data)


def _basename(name: str) -> str | None:
    for suffix in SHARD_SUFFIXES.values():
        for tail in ("", *UNFINISHED):
            if name.endswith(suffix + tail):
                return name[: -len(suffix + tail)]
    return None


def _text_metadata(path: Path) -> dict[str, Any]:
    stats = TextStats()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            stats.add(json.loads(line))
    return stats.metadata()


# ---------------------------------------------------------------- what the crawl already holds


@dataclass(frozen=True)
class Captured:
    warc_file: str
    offset: int
    length: int


class CrawlContents:
    """The URLs a crawl captured (from its CDXJ indexes) and those it has text for."""

    def __init__(self, run: ArchivingExtension, entries: list[FileEntry]) -> None:
        self.captures: dict[str, Captured] = {}
        self.texts: set[str] = set()
        for entry in entries:
            if entry.kind == "index":
                for line in _read(run, entry.key).splitlines():
                    fields = cdxj_fields(line)
                    self.captures.setdefault(fields["url"], Captured(
                        fields["filename"], int(fields["offset"]), int(fields["length"])))
            elif entry.kind == "text":
                self.texts.update(json.loads(line)["url"] for line in
                                  gzip.decompress(_read(run, entry.key)).splitlines())


def _read(run: ArchivingExtension, key: str) -> bytes:
    """A small file of the crawl: from the spool while it waits there, else from the store."""
    path = run.spool.path(key)
    if path.exists():
        return path.read_bytes()
    with run.store.open(key) as f:
        return f.read()


def read_response(run: ArchivingExtension, warc_file: str, offset: int,
                  length: int) -> StoredResponse:
    """One response (or revisit) record of the crawl: from the spool while its WARC waits
    there, else from the store."""
    path = run.spool.path(warc_file)
    if path.exists():
        with open(path, "rb") as f:
            f.seek(offset)
            return read_stored_response(f.read(length))
    return read_stored_response(run.store.read_range(warc_file, offset, length))


def archived_page(run: ArchivingExtension, entry: dict[str, Any]) -> tuple[bytes, str]:
    """The body and encoding of a URL's archived capture (its state entry), as the spider saw
    them when it was fetched."""
    stored = read_response(run, entry["warc_file"], entry["warc_offset"], entry["warc_length"])
    return decoded_page(stored.payload, stored.header("Content-Encoding"),
                        stored.header("Content-Type"))


# ---------------------------------------------------------------- the middleware


class ArchivedResponseMiddleware:
    """In a resumed crawl, answer the URLs the crawl already captured from its own WARC."""

    def __init__(self, crawler: Crawler, run: ArchivingExtension) -> None:
        self.crawler = crawler
        self.run = run
        self.contents: CrawlContents | None = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivedResponseMiddleware:
        run = crawler.get_extension(ArchivingExtension)
        if run is None:
            raise NotConfigured("ArchivingExtension is not enabled: no crawl to resume")
        if not run.job.resume:
            raise NotConfigured  # a crawl that resumes nothing has nothing to answer
        return cls(crawler, run)

    async def spider_opened(self) -> None:
        entries, serial = await threads.deferToThread(recover_files, self.run)
        await maybe_deferred_to_future(self.run.adopt(entries, serial))
        self.contents = await threads.deferToThread(CrawlContents, self.run, entries)
        logger.info("resuming %s: %d file(s) kept, %d URL(s) already captured",
                    self.run.crawl_id, len(entries), len(self.contents.captures))

    async def process_request(self, request: Request) -> Response | None:
        captured = self.contents.captures.get(request.url) if self.contents else None
        if captured is None:
            return None
        response = await threads.deferToThread(self._archived_response, request, captured)
        self.crawler.stats.inc_value("newsarchive/resumed/from_archive")
        return response

    def _archived_response(self, request: Request, captured: Captured) -> Response:
        stored = read_response(self.run, captured.warc_file, captured.offset, captured.length)
        profile = stored.profile
        body = stored.payload
        if profile and profile != REVISIT_NOT_MODIFIED:  # the payload is the earlier capture's
            original = self.run.state.get(request.url) or {}
            if original.get("warc_file"):
                body = read_response(self.run, original["warc_file"], original["warc_offset"],
                                     original["warc_length"]).payload
        request.meta[CAPTURE_META] = {
            **record_pointer(captured.warc_file, captured.offset, captured.length,
                             stored.record_id, stored.payload_digest, stored.date),
            "revisit": profile,
            "text_stored": request.url in self.contents.texts,  # type: ignore[union-attr]
        }
        headers = Headers([(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers])
        cls = responsetypes.from_args(headers=headers, url=request.url, body=body)
        return cls(url=request.url, status=stored.status, headers=headers,
                   body=body, request=request, flags=[ARCHIVED_FLAG])


def reset_queue(job: CrawlJob) -> None:
    """Drop Scrapy's request queue of a killed crawl: its state on disk is only consistent
    after a clean stop. Discovery runs again instead (see the module docstring)."""
    shutil.rmtree(job.queue_dir, ignore_errors=True)
