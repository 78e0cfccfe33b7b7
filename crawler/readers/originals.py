"""The full captures a crawl's revisit records stand on, found in the earlier crawls, so that a
package of that crawl alone (a WACZ) replays its unchanged pages and what they load.

An incremental crawl stores an unchanged page or image as a revisit: its payload is in the
capture it refers to, usually in an earlier crawl. pywb finds that capture across the whole
archive; a package of one crawl must carry it. A revisit's index line names its URL and the
payload digest of the capture it refers to; the original is the newest full capture with that
digest in an earlier crawl, under the same URL (a 304, or the same bytes again), or, for a
requisite that was the copy of another URL's payload, under any URL.

Earlier crawls are read newest first, one index file at a time, and only until every wanted
digest has its original under the same URL; what is wanted and found is kept in SQLite in the
work directory, so memory stays flat whatever the crawl's size. The originals are then read with
ranged reads, neighbours in one WARC coalesced into one read.
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
SPAN = 64 << 20


@dataclass(frozen=True)
class Original:
    line: bytes  # its index line, as its own crawl wrote it
    key: str  # its WARC's archive key
    offset: int
    length: int


class Originals:
    """The wanted digests (``want``), then the captures found for them (``search``)."""

    def __init__(self, work: Path) -> None:
        self._db = sqlite3.connect(work / "originals.sqlite")
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE wanted (digest TEXT, url TEXT, line BLOB, "
                         "same_url INTEGER, PRIMARY KEY (digest, url))")
        self._db.execute("CREATE TABLE present (digest TEXT, url TEXT, "
                         "PRIMARY KEY (digest, url))")
        self.unresolved = 0

    def want(self, lines: Iterable[bytes]) -> None:
        """Read a crawl's index lines: each revisit wants the capture of its URL with its
        digest, unless the crawl itself holds it."""
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
            if not self._open():
                break
            if not store.stat(manifest_key(crawl)):
                continue  # not complete: no reader takes it as part of the archive
            manifest = read_json(store, manifest_key(crawl))
            for entry in manifest["files"]:
                if entry["kind"] == "index":
                    with store.open(entry["key"]) as index, self._db:
                        self._match(index)
        # a revisit of a payload this crawl fetched first under another URL needs no original
        self.unresolved = self._count("line IS NULL AND digest NOT IN "
                                      "(SELECT digest FROM present)")

    def _open(self) -> int:
        """Wanted digests without a capture under their own URL yet."""
        return self._count("same_url IS NOT 1")

    def _count(self, where: str) -> int:
        return self._db.execute(f"SELECT count(*) FROM wanted WHERE {where}").fetchone()[0]

    def _match(self, index: IO[bytes]) -> None:
        """A full capture with a wanted digest becomes the original of each revisit with that
        digest that has none yet, or one under another URL while it is under the revisit's."""
        for line in index:
            fields = cdxj_fields(line)
            if fields.get("mime") == REVISIT_MIME:
                continue
            for url, found in self._db.execute(
                    "SELECT url, line FROM wanted WHERE digest = ? AND same_url IS NOT 1",
                    (fields["digest"],)).fetchall():
                same = fields["url"] == url
                if found is None or same:
                    self._db.execute("UPDATE wanted SET line = ?, same_url = ? "
                                     "WHERE digest = ? AND url = ?",
                                     (line, int(same), fields["digest"], url))

    def found(self) -> list[Original]:
        """The originals found, each once, in the order of their WARCs' bytes."""
        seen: dict[tuple[str, int], Original] = {}
        for (line,) in self._db.execute("SELECT line FROM wanted WHERE line IS NOT NULL"):
            fields = cdxj_fields(line)
            place = (fields["filename"], int(fields["offset"]))
            seen.setdefault(place, Original(bytes(line), place[0], place[1],
                                            int(fields["length"])))
        return sorted(seen.values(), key=lambda o: (o.key, o.offset))

    def close(self) -> None:
        self._db.close()


def read_originals(store: ArchiveStore, originals: list[Original]) -> Iterator[bytes]:
    """Each original's gzip member, in the given order (sorted by WARC and offset), read by
    coalesced ranged reads."""
    start = 0
    while start < len(originals):
        first = originals[start]
        end = start + 1
        while (end < len(originals) and originals[end].key == first.key
               and originals[end].offset - _end(originals[end - 1]) <= GAP
               and _end(originals[end]) - first.offset <= SPAN):
            end += 1
        span = store.read_range(first.key, first.offset, _end(originals[end - 1]) - first.offset)
        for original in originals[start:end]:
            member = span[original.offset - first.offset:_end(original) - first.offset]
            if len(member) != original.length:
                raise ArchiveError(f"{original.key} ends before the capture its index puts at "
                                   f"{original.offset}; run `newsarchive verify`")
            yield member
        start = end


def _end(original: Original) -> int:
    return original.offset + original.length

