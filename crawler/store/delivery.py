"""A crawl's files on their way to the archive store, and the manifest that commits the crawl.

Finished files are uploaded on one upload thread, in the order they were finished, so a crawl's
manifest always follows its files. A file leaves the spool only once the store has confirmed it;
when the store refuses, the files stay in the spool and the next run delivers them. Every
finished file is also listed in the crawl's work directory, so a resumed crawl lists it too.
The manifest is committed only when every file it lists verifies.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from crawler.errors import ArchiveError, NewsarchiveError, StoreError
from crawler.files import sha256_file, write_durably
from crawler.health import judge
from crawler.job import CrawlJob
from crawler.layout import FILES_FILE, crawl_prefix, manifest_key
from crawler.records import FileEntry, crawl_health, crawl_manifest
from crawler.store.backends import ArchiveStore
from crawler.store.run_records import read_runs
from crawler.store.spool import Spool

logger = logging.getLogger(__name__)


class Delivery:
    def __init__(self, job: CrawlJob, store: ArchiveStore, spool: Spool) -> None:
        self.job = job
        self.store = store
        self.spool = spool
        self.files: list[FileEntry] = []
        self.counts: Counter = Counter()
        self.upload_failure: str | None = None
        self.uploads_pending = 0
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="upload")
        # a worker of a shared crawl (crawler.crawl.frontier) is told when a shard is finished,
        # before its upload (writer thread), and when its files are all in the store (upload
        # thread): then it lets go of the requests captured in them
        self.on_finished: Callable[[list[FileEntry]], None] | None = None
        self.on_delivered: Callable[[list[FileEntry]], None] | None = None

    def add(self, entries: list[FileEntry]) -> None:
        """Files the crawl finished: listed in its work directory, counted, queued for upload."""
        with open(self.job.jobdir / FILES_FILE, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(e.as_json()) + "\n" for e in entries)
        self._count(entries)
        if self.on_finished is not None:
            self.on_finished(entries)
        for entry in entries:
            self._queue_upload(entry)
        if self.on_delivered is not None:
            self.thread.submit(self._report_delivered, entries)

    def adopt(self, entries: list[FileEntry]) -> None:
        """Files a resumed crawl takes over from its interrupted run (or its repair): counted,
        and uploaded if they are still in the spool."""
        self._count(entries)
        for entry in entries:
            if self.spool.path(entry.key).exists():
                self._queue_upload(entry)

    def include(self, entries: list[FileEntry]) -> None:
        """Files other workers of a shared crawl delivered: counted and listed by the manifest
        this worker writes (they left their own spool verified)."""
        mine = {e.key for e in self.files}
        self._count([e for e in entries if e.key not in mine])

    def flush_spool(self) -> None:
        """Deliver what earlier runs left in the spool (upload thread)."""
        if not self.spool.pending():
            return
        try:
            sent, left = self.spool.flush(self.store)
        except Exception as exc:  # the crawl goes on; the files stay for a later run
            logger.warning("spool: delivery of earlier runs' files failed: %s", exc)
            return
        logger.info("spool: delivered %d file(s) left by earlier runs, %d still waiting", sent,
                    left)

    def commit(self, reason: str, stats: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest and upload it last (upload thread): the crawl is committed. Returns
        the manifest with what stayed in the spool (``spooled``, ``upload_failure``). `stats`
        are the crawl's counters: with the text shards' statistics, its extraction health.

        Raises `ArchiveError`, and commits nothing, when a listed file does not verify."""
        problems = self.unverified()
        if problems:
            raise ArchiveError(f"{len(problems)} file(s) do not match what the crawl wrote "
                               f"({problems[0]}): nothing committed")
        job = self.job
        ended = datetime.now(UTC)
        manifest = crawl_manifest(
            crawl_id=job.crawl_id, job=job.name, started=job.started, ended=ended,
            finish_reason=reason, archive=self.store.uri, config_digest=job.config_digest,
            outlets=[o.name for o in job.outlets], counts=self.counts, files=self.files,
            health=self.health(stats, ended))
        key = manifest_key(job.crawl_id)
        path = self.spool.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(path, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode())
        self.uploads_pending += 1
        self._upload(key, None)
        prefix = crawl_prefix(job.crawl_id)
        self.spool.prune(self.spool.path(prefix))
        # the files it lists and the manifest only: another crawl (or a killed worker of this
        # one) may have left files in the same spool
        mine = {e.key for e in self.files} | {key}
        manifest["spooled"] = [k for k in self.spool.pending() if k in mine]
        manifest["upload_failure"] = self.upload_failure
        return manifest

    def health(self, stats: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Each outlet's extraction figures and their ``flags``, judged against the outlet's
        earlier crawls (``state/runs.jsonl``; without it, only an outlet that found no article
        is flagged)."""
        health = crawl_health([o.name for o in self.job.outlets], stats,
                              (f for f in self.files if f.kind == "text"),
                              self.job.config.health.short_words)
        try:
            history = list(read_runs(self.store))
        except StoreError as exc:
            logger.warning("health: earlier runs not read (%s); judged without them", exc)
            history = []
        for outlet, flags in judge(health, history, self.job.config.health, now).items():
            health[outlet]["flags"] = flags
        return health

    def unverified(self) -> list[str]:
        """The listed files that do not verify. Those still in the spool are read again (size
        and sha256); the others were checked when they left it (`Spool.deliver`)."""
        problems = []
        for entry in self.files:
            path = self.spool.path(entry.key)
            if not path.exists():
                continue
            size, sha256 = path.stat().st_size, sha256_file(path)
            if (size, sha256) != (entry.size, entry.sha256):
                problems.append(f"{entry.key}: {size} bytes, sha256 {sha256}; listed as "
                                f"{entry.size} bytes, sha256 {entry.sha256}")
        return problems

    def _report_delivered(self, entries: list[FileEntry]) -> None:
        if self.on_delivered and not any(self.spool.path(e.key).exists() for e in entries):
            self.on_delivered(entries)

    def _count(self, entries: list[FileEntry]) -> None:
        self.files.extend(entries)
        for entry in entries:
            if entry.kind == "warc":
                self.counts["warc_files"] += 1
                self.counts["warc_bytes"] += entry.size
                self.counts["responses"] += entry.extra.get("records", 0)
                self.counts.update(entry.extra.get("revisits", {}))
            elif entry.kind == "text":
                self.counts["text_records"] += entry.extra.get("records", 0)

    def _queue_upload(self, entry: FileEntry) -> None:
        self.uploads_pending += 1
        self.thread.submit(self._upload, entry.key, entry.sha256)

    def _upload(self, key: str, sha256: str | None) -> None:
        try:
            if self.upload_failure is None:
                self.spool.deliver(self.store, key, sha256)
                self.counts["uploaded_files"] += 1
        except (NewsarchiveError, OSError) as exc:
            self.upload_failure = f"{key}: {exc}"
            logger.warning("upload failed, keeping files in the spool %s for the next run: %s",
                           self.spool.root, exc)
        finally:
            self.uploads_pending -= 1
