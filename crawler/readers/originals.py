"""The captures a crawl's revisit records stand on, found in the earlier crawls, so that a
package of that crawl alone (a WACZ) replays its unchanged pages and what they load.

An incremental crawl stores an unchanged page or image as a revisit: its payload is in the
capture it refers to, usually in an earlier crawl. pywb finds that capture across the whole
archive; a package of one crawl must carry it. A revisit's index line names its URL and the
payload digest of the capture it stands on. What it needs, for each (URL, digest):

- the URL's own newest earlier capture with that digest: a full one (a 304, or the same bytes
  again), or an identical-payload revisit (a requisite whose bytes were first fetched under
  another URL, a cache-busting query string), which replays from that other URL's capture;
- for the latter, or when the URL has no earlier capture of its own, a full capture of the
  payload under any URL.

Earlier crawls are read newest first, one index file at a time, and only until every revisit
has what it needs; what is wanted and found is kept in SQLite in the work directory, so memory
stays flat whatever the crawl's size. The captures are then read with ranged reads, neighbours in
one WARC coalesced into one read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from crawler.capture.cdxj import REVISIT_MIME, cdxj_fields
from crawler.errors import ArchiveError
from crawler.job import crawl_time
from crawler.layout import manifest_key
from crawler.readers.listing import crawl_ids, read_json
from crawler.store.backends import ArchiveStore

# neighbouring originals in one WARC closer than this are read in one ranged read, up to SPAN
GAP = 1 << 20
SPAN = 8 << 20  # bytes held at once: a ranged read of up to this much


@dataclass(frozen=True)
class Original:
    line: bytes  # its index line, as its own crawl wrote it
    key: str  # its WARC's archive key
    offset: int
    length: int


class Originals:
    """The captures wanted (``want``), then those found for them (``search``, ``found``).

    A wanted row is a revisit's (digest, url); ``own`` is the URL's own earlier capture with
    that digest (``own_full``: a full one, not a revisit), ``payload`` a full capture of the
    digest under any URL."""

    def __init__(self, work: Path) -> None:
        self._db = sqlite3.connect(work / "originals.sqlite")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE wanted (digest TEXT, url TEXT, own BLOB, "
                         "own_full INTEGER, payload BLOB, PRIMARY KEY (digest, url))")
        self._db.execute("CREATE TABLE present (digest TEXT, url TEXT, "
                         "PRIMARY KEY (digest, url))")
        self.unresolved = 0

    def want(self, lines: Iterable[bytes]) -> None:
        """Read a crawl's index lines: each revisit wants the captures it stands on, unless
        the crawl itself holds a full capture of its URL with its digest."""
        with self._db:
            for line in lines:
                fields = cdxj_fields(line)
                table = "wanted" if fields.get("mime") == REVISIT_MIME else "present"
                self._db.execute(f"INSERT OR IGNORE INTO {table} (digest, url) VALUES (?, ?)",
                                 (fields["digest"], fields["url"]))
            self._db.execute("DELETE FROM wanted WHERE (digest, url) IN "
                             "(SELECT digest, url FROM present)")

    def search(self, store: ArchiveStore, crawl_id: str) -> None:
        """Look for the wanted captures in the crawls before `crawl_id`, newest first."""
        earlier = [c for c in crawl_ids(store) if crawl_time(c) < crawl_time(crawl_id)]
        for crawl in reversed(earlier):
            if not self._count(_OPEN):
                break
            if not store.stat(manifest_key(crawl)):
                continue  # not complete: no reader takes it as part of the archive
            manifest = read_json(store, manifest_key(crawl))
            for entry in manifest["files"]:
                if entry["kind"] == "index":
                    with store.open(entry["key"]) as index, self._db:
                        self._match(index)
        # no payload anywhere (a crawl deleted?), unless this crawl fetched it under another URL
        self.unresolved = self._count("own_full IS NOT 1 AND payload IS NULL AND digest NOT IN "
                                      "(SELECT digest FROM present)")

    def _count(self, where: str) -> int:
        return self._db.execute(f"SELECT count(*) FROM wanted WHERE {where}").fetchone()[0]

    def _match(self, index: IO[bytes]) -> None:
        """Each line of an earlier crawl's index fills what the revisits with its digest still
        lack: under their URL, a full capture (or, failing one so far, a revisit that is not a
        304's); under any URL, a full capture for its payload."""
        for line in index:
            fields = cdxj_fields(line)
            full = fields.get("mime") != REVISIT_MIME
            if not full and fields.get("status") == "304":
                continue  # replays empty: never what a package serves
            for url, own, payload in self._db.execute(
                    f"SELECT url, own, payload FROM wanted WHERE digest = ? AND {_OPEN}",
                    (fields["digest"],)).fetchall():
                if fields["url"] == url and (full or own is None):
                    own = line
                if full and payload is None:
                    payload = line
                self._db.execute("UPDATE wanted SET own = ?, own_full = ?, payload = ? "
                                 "WHERE digest = ? AND url = ?",
                                 (own, int(full and own is line), payload, fields["digest"],
                                  url))

    def found(self) -> int:
        """Gather the captures found, each once (``carried``); how many."""
        self._db.execute("CREATE TABLE carried (key TEXT, offset INTEGER, length INTEGER, "
                         "line BLOB, PRIMARY KEY (key, offset))")
        with self._db:
            for own, own_full, payload in self._db.cursor().execute(
                    "SELECT own, own_full, payload FROM wanted"):  # a row at a time
                for line in (own, None if own_full else payload):
                    if line is not None:
                        fields = cdxj_fields(line)
                        self._db.execute("INSERT OR IGNORE INTO carried VALUES (?, ?, ?, ?)",
                                         (fields["filename"], int(fields["offset"]),
                                          int(fields["length"]), line))
        return self._db.execute("SELECT count(*) FROM carried").fetchone()[0]

    def carried(self) -> Iterator[Original]:
        """The captures found, in the order of their WARCs' bytes."""
        for key, offset, length, line in self._db.execute(
                "SELECT key, offset, length, line FROM carried ORDER BY key, offset"):
            yield Original(bytes(line), key, offset, length)

    def close(self) -> None:
        self._db.close()


# a revisit that still lacks what it stands on
_OPEN = "own_full IS NOT 1 AND (own IS NULL OR payload IS NULL)"


def read_originals(store: ArchiveStore, originals: Iterable[Original]) -> Iterator[bytes]:
    """Each original's gzip member, in the given order (sorted by WARC and offset), read by
    coalesced ranged reads."""
    group: list[Original] = []
    for original in originals:
        if group and not (original.key == group[0].key
                          and original.offset - _end(group[-1]) <= GAP
                          and _end(original) - group[0].offset <= SPAN):
            yield from _members(store, group)
            group = []
        group.append(original)
    if group:
        yield from _members(store, group)


def _members(store: ArchiveStore, group: list[Original]) -> Iterator[bytes]:
    """The members of neighbouring originals in one WARC, from one ranged read."""
    start = group[0].offset
    span = store.read_range(group[0].key, start, _end(group[-1]) - start)
    for original in group:
        member = span[original.offset - start:_end(original) - start]
        if len(member) != original.length:
            raise ArchiveError(f"{original.key} ends before the capture its index puts at "
                               f"{original.offset}; run `newsarchive verify`")
        yield member


def _end(original: Original) -> int:
    return original.offset + original.length

