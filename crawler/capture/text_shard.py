"""A text shard being written: the JSON lines of extracted articles beside a WARC, gzip-compressed
(a sync point after each line, so a crash leaves every whole line readable), its sha256 and the
statistics of its manifest entry computed on the way. Written as ``NAME.open``, renamed when
closed, as WARC files are. A line a full disk refused is cut off and the shard cannot go on
(see ``GzipLines``): it stays ``.open``, with its whole lines, for ``crawl --resume``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from crawler.capture.warc import GzipLines, HashingFile
from crawler.records import FileEntry, TextStats


class TextShard:
    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key
        self.open_path = path.with_name(path.name + ".open")
        self.open_path.parent.mkdir(parents=True, exist_ok=True)
        self._hashing = HashingFile(self.open_path)
        self._lines = GzipLines(self._hashing)
        self.stats = TextStats()

    def add(self, record: dict[str, Any]) -> None:
        self._lines.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self.stats.add(record)  # only once the line is in the file

    def close(self) -> FileEntry:
        """Finish the gzip stream, fsync, rename: the shard is complete; its manifest entry."""
        self._lines.close()
        os.replace(self.open_path, self.path)
        return FileEntry(self.key, self.path.stat().st_size, self._hashing.sha256.hexdigest(),
                         "text", self.stats.metadata())
