"""The first capture of each payload in a crawl, so that the same bytes under another URL (a
stylesheet or logo behind a cache-busting query string) are stored once: the other URLs get an
identical-payload-digest revisit that refers to it, as Heritrix writes them.

Kept in a SQLite file in the crawl's work directory, not in memory: a crawl meets a few
distinct payloads per page, and memory must stay flat however long it runs. Used by the capture
writer's one thread only. A resumed crawl starts it afresh: a record written before the
interruption may have been cut off by the repair.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


class PayloadIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE payload (digest TEXT PRIMARY KEY, original TEXT)")

    def first(self, digest: str) -> dict[str, Any] | None:
        """The capture a revisit of this payload refers to (``writer.original_capture``)."""
        row = self._db.execute("SELECT original FROM payload WHERE digest = ?",
                               (digest,)).fetchone()
        return None if row is None else json.loads(row[0])

    def add(self, original: dict[str, Any]) -> None:
        self._db.execute("INSERT OR IGNORE INTO payload VALUES (?, ?)",
                         (original["digest"], json.dumps(original)))

    def close(self) -> None:
        """Closed with the crawl's last shard: nothing refers to it any more."""
        self._db.close()
        self.path.unlink(missing_ok=True)
