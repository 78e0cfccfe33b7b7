"""CDXJ index lines as pywb reads them: ``SURT TIMESTAMP {json}``, sorted bytewise.

Every line carries ``offset``, ``length`` and ``filename`` (the WARC's archive key), so a replay
engine reads exactly one gzip member with a ranged GET.
"""

from __future__ import annotations

import heapq
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from surt import surt

from crawler.files import fsync_dir


def cdxj_line(
    url: str,
    timestamp: str,
    *,
    mime: str,
    status: int | None,
    digest: str,
    length: int,
    offset: int,
    filename: str,
) -> str:
    """One index line; `timestamp` is the 14-digit WARC-Date, `digest` a ``sha1:`` digest."""
    fields = {"url": url, "mime": mime or "unk"}
    if status is not None:
        fields["status"] = str(status)
    fields.update(digest=digest.removeprefix("sha1:"), length=str(length), offset=str(offset),
                  filename=filename)
    return f"{surt(url)} {timestamp} {json.dumps(fields, ensure_ascii=False)}\n"


REVISIT_MIME = "warc/revisit"  # the mime of a revisit record's line, as pywb expects


def cdxj_fields(line: bytes | str) -> dict[str, Any]:
    """The JSON block of an index line (after SURT and timestamp)."""
    space = b" " if isinstance(line, bytes) else " "
    return json.loads(line.split(space, 2)[2])  # type: ignore[arg-type]


def is_not_modified_revisit(fields: dict[str, Any]) -> bool:
    """A revisit for a 304 (profile server-not-modified): it has no payload of its own."""
    return fields.get("mime") == REVISIT_MIME and fields.get("status") == "304"


def replays_empty(line: bytes) -> bool:
    """A 304 revisit's line: pywb and ReplayWeb.page replay it as an empty 304 (ReplayWeb.page
    takes it for a redirect), so a replay index leaves it out and the nearest full capture, the
    same payload, is served instead (the archive's own index keeps it)."""
    return _REVISIT_MIME_BYTES in line and is_not_modified_revisit(cdxj_fields(line))


_REVISIT_MIME_BYTES = REVISIT_MIME.encode()  # a cheap look before a line's JSON is parsed


def timestamp14(warc_date: str) -> str:
    """``2025-08-14T10:00:00.123456Z`` -> ``20250814100000``."""
    return "".join(c for c in warc_date if c.isdigit())[:14]


# Index bytes sorted in memory at a time; a longer index is merged from sorted runs on disk, so
# closing a WARC of 100,000 records costs no more memory than one of 5,000.
SORT_RUN_BYTES = 2 * 2**20


def write_sorted(lines_path: Path, out_path: Path, run_bytes: int = SORT_RUN_BYTES) -> None:
    """Sort an unsorted index into `out_path` (written to a ``.part`` file, fsynced, then
    renamed), in memory bounded by `run_bytes`. A failed write (a full disk) leaves no part."""
    partial = out_path.with_name(out_path.name + ".part")
    try:
        with open(lines_path, "rb") as source, ExitStack() as runs:
            sorted_runs: list[IO[bytes]] = []
            while lines := source.readlines(run_bytes):
                lines.sort()
                run = runs.enter_context(tempfile.TemporaryFile(dir=out_path.parent))
                run.writelines(lines)
                run.seek(0)
                sorted_runs.append(run)
            with open(partial, "wb") as out:
                merge_lines(sorted_runs, out.write)
                out.flush()
                os.fsync(out.fileno())
    except OSError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out_path)
    fsync_dir(out_path.parent)


def merge_lines(sources: Iterable[Iterable[bytes]], write: Callable[[bytes], object]) -> int:
    """Merge sorted index lines (files, or line iterators) into one sorted stream through
    `write`, a line at a time; returns the number of lines."""
    lines = 0
    for line in heapq.merge(*sources):
        write(line if line.endswith(b"\n") else line + b"\n")
        lines += 1
    return lines
