"""Incremental-crawl state: what the archive already holds for every URL, kept in the archive.

``state/urls/{outlet}/{h}.jsonl.gz`` (``h``: first hex digit of the URL's sha1, 16 shards per
outlet) holds one JSON object per URL: its latest full capture (payload digest, archive key,
offset, length, record id, WARC-Date), the validators the server gave (ETag, Last-Modified),
when it was first seen and last checked, whether it is an article, and its latest text
(revision, digest, the capture it came from).

A crawl copies its outlets' shards into a local index (SQLite) when it opens, and appends what
it learns to a local journal as it goes (a flushed line per observation, so a killed crawl
keeps what it captured). Once its manifest is committed, the journal is merged into the shards,
each with a compare-and-swap (``update_object``): two crawls of a job, or several workers of
one, never lose each other's updates, and no truth lives only in memory.
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from crawler.errors import StoreError
from crawler.layout import (
    JOURNAL_FILE,
    STATE_URLS,
    job_files,
    manifest_key,
    state_outlet_of,
    state_prefix,
    state_shard_key,
)
from crawler.store.backends import ArchiveStore, update_object

logger = logging.getLogger(__name__)

def state_outlets(store: ArchiveStore) -> list[str]:
    """The outlets the archive holds URL state for."""
    return sorted({o for info in store.list(STATE_URLS + "/")
                   if (o := state_outlet_of(info.key))})


def url_state(store: ArchiveStore, url: str) -> dict[str, Any] | None:
    """The entry of one URL, whichever outlet holds it (one small shard read per outlet)."""
    for outlet in state_outlets(store):
        current = store.get_versioned(state_shard_key(outlet, url))
        for entry in _entries(current[0] if current else b""):
            if entry["url"] == url:
                return entry
    return None


def read_state(store: ArchiveStore, outlets: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Every URL's entry for the given outlets, shard by shard."""
    for outlet in outlets:
        for info in store.list(state_prefix(outlet)):
            current = store.get_versioned(info.key)
            if current:
                yield from _entries(current[0])


class StateIndex:
    """The archive's URL state for a crawl's outlets, copied into a local SQLite file when the
    crawl opens: looked up by URL from any thread, never held in memory (an outlet's state
    grows with its archive, month after month)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    @classmethod
    def build(cls, path: Path, entries: Iterable[dict[str, Any]]) -> StateIndex:
        path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path)) as db, db:
            db.execute("CREATE TABLE state (url TEXT PRIMARY KEY, article INTEGER, data TEXT)")
            db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?, ?)", (
                (e["url"], bool(e.get("article")), json.dumps(e, ensure_ascii=False))
                for e in entries))
        return cls(path)

    def get(self, url: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT data FROM state WHERE url = ?", (url,)).fetchone()
        return json.loads(row[0]) if row else None

    def articles(self) -> Iterator[dict[str, Any]]:
        """Every archived article's entry (streamed)."""
        with closing(sqlite3.connect(self.path)) as db:
            for (data,) in db.execute("SELECT data FROM state WHERE article"):
                yield json.loads(data)

    def __len__(self) -> int:
        return self._db().execute("SELECT count(*) FROM state").fetchone()[0]

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:  # one connection per thread, as sqlite3 wants; the file is never
            # written once built: no locking and change checks (two syscalls) per lookup
            db = self._local.db = sqlite3.connect(
                self.path.resolve().as_uri() + "?immutable=1", uri=True)
        return db


def merge_entry(old: dict[str, Any] | None, update: dict[str, Any]) -> dict[str, Any]:
    """An observation applied to an entry: newer fields win, ``first_seen`` stays the first."""
    merged = {**(old or {}), **update}
    if old and old.get("first_seen"):
        merged["first_seen"] = min(old["first_seen"], update.get("first_seen") or "~")
    return merged


def merge_journal(store: ArchiveStore, journal: Path) -> int:
    """Merge a crawl's journal into the archive's state; returns the number of URLs updated.

    The journal is first split by state shard (beside it, on disk), then each shard's updates
    are merged in turn: memory holds one shard's share of the crawl, however large the crawl."""
    merged = 0
    with tempfile.TemporaryDirectory(prefix="merge-", dir=journal.parent) as work:
        parts: dict[str, IO[str]] = {}
        try:
            for update in read_journal(journal):
                key = state_shard_key(update["outlet"], update["url"])
                if key not in parts:
                    parts[key] = open(Path(work) / f"{len(parts)}.jsonl", "w", encoding="utf-8")
                parts[key].write(json.dumps(update, ensure_ascii=False) + "\n")
        finally:
            for part in parts.values():
                part.close()
        for key, part in sorted(parts.items()):
            updates: dict[str, dict[str, Any]] = {}
            for update in read_journal(Path(part.name)):
                updates[update["url"]] = merge_entry(updates.get(update["url"]), update)
            update_object(store, key, lambda data, updates=updates: _apply(data, updates))
            merged += len(updates)
    return merged


def read_journal(path: Path) -> Iterator[dict[str, Any]]:
    """The journal's observations; a line torn by a crash is skipped."""
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            try:
                update = json.loads(line)
            except ValueError:
                continue
            if isinstance(update, dict) and update.get("url") and update.get("outlet"):
                yield update


class Journal:
    """The crawl's local log of state observations, appended on the writer thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def write(self, update: dict[str, Any]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(update, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def load_index(store: ArchiveStore, path: Path, outlets: list[str]) -> StateIndex:
    """The outlets' archived state copied into a local index for a crawl; an empty one when the
    store cannot be read (the crawl goes on, capturing in full)."""
    try:
        index = StateIndex.build(path, read_state(store, outlets))
    except StoreError as exc:
        logger.warning("incremental state not read (%s): every page is captured in full", exc)
        return StateIndex.build(path, ())
    logger.info("state: %d archived URLs of %s", len(index), ", ".join(outlets))
    return index


def merge_pending_state(store: ArchiveStore, jobdir: Path) -> int | None:
    """Merge a committed crawl's journal into the archive's state, then drop its work directory
    (what is left of it); None when the store refused, or the local disk is full (the journal
    waits for the next run)."""
    journal = jobdir / JOURNAL_FILE
    try:
        merged = merge_journal(store, journal)
    except (StoreError, OSError) as exc:
        logger.warning("state: %s not merged yet (%s); the next run retries", journal, exc)
        return None
    shutil.rmtree(jobdir, ignore_errors=True)
    return merged


def merge_earlier_journals(store: ArchiveStore, spool: Path, running: str) -> None:
    """Journals of earlier crawls that committed while the store was away (their work
    directories go with them); `running` is the crawl that asks, whose journal is still open."""
    for crawl_id, job_file in job_files(spool):
        try:
            committed = store.stat(manifest_key(crawl_id)) is not None
        except StoreError:
            return
        if crawl_id != running and committed:
            merge_pending_state(store, job_file.parent)


def article_state(url: str, outlet: str, text: dict[str, Any] | None = None, *,
                  extracted: bool = True) -> dict[str, Any]:
    """What an article's entry learns from its extraction: it is an article, its latest text
    (when the capture gave a new one), and ``needs_text`` when its capture has no text record
    because the extraction failed or the record was not written: such an entry stays due, and
    its next check fetches it in full (no validators, no revisit) to extract it again."""
    update: dict[str, Any] = {"url": url, "outlet": outlet, "article": True,
                              "needs_text": not extracted}
    if text:
        update["text"] = text
    return update


def next_check(entry: dict[str, Any], intervals: Iterable[int]) -> datetime | None:
    """When an archived article is next due for a re-check: the first point of the decaying
    schedule (``first_seen`` + each interval) after its last check; None once all have passed."""
    first, last = entry.get("first_seen"), entry.get("last_checked")
    if not first:
        return None
    first_seen, last_checked = _parse(first), _parse(last or first)
    points = (first_seen + timedelta(seconds=s) for s in intervals)
    return next((p for p in points if p > last_checked), None)


def recheck_due(entry: dict[str, Any], intervals: Iterable[int],
                now: datetime | None = None) -> bool:
    """An archived article is due for a re-check (its next point in `intervals` has passed, or
    its latest capture still needs its text)."""
    if entry.get("needs_text"):
        return True
    due = next_check(entry, intervals)
    return due is not None and due <= (now or datetime.now(UTC))


def conditional_headers(entry: dict[str, Any]) -> dict[str, str]:
    """If-None-Match / If-Modified-Since from the validators of the archived capture (none for
    one that needs its text: a 304 has no page to extract; none without a full capture of its
    own for a 304's revisit record to refer to)."""
    headers: dict[str, str] = {}
    if entry.get("needs_text") or not entry.get("record_id"):
        return headers
    if entry.get("etag"):
        headers["If-None-Match"] = entry["etag"]
    if entry.get("last_modified"):
        headers["If-Modified-Since"] = entry["last_modified"]
    return headers


def _apply(data: bytes, updates: dict[str, dict[str, Any]]) -> bytes:
    entries = {e["url"]: e for e in _entries(data)}
    for url, update in updates.items():
        entries[url] = merge_entry(entries.get(url), update)
    lines = (json.dumps(entries[url], ensure_ascii=False, sort_keys=True) + "\n"
             for url in sorted(entries))
    return gzip.compress("".join(lines).encode("utf-8"), mtime=0)


def _entries(data: bytes) -> Iterator[dict[str, Any]]:
    if not data:
        return
    for line in gzip.decompress(data).splitlines():
        entry = json.loads(line)
        if isinstance(entry, dict) and entry.get("url"):
            yield entry


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
