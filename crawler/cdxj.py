"""CDXJ index lines as pywb reads them: ``SURT TIMESTAMP {json}``, sorted bytewise.

Every line carries ``offset``, ``length`` and ``filename`` (the WARC's archive key), so a replay
engine reads exactly one gzip member with a ranged GET.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from surt import surt


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


def timestamp14(warc_date: str) -> str:
    """``2025-08-14T10:00:00.123456Z`` -> ``20250814100000``."""
    return "".join(c for c in warc_date if c.isdigit())[:14]


def write_sorted(lines_path: Path, out_path: Path) -> None:
    """Sort an unsorted index (bounded by one WARC's record count) into `out_path`."""
    with open(lines_path, "rb") as f:
        lines = f.readlines()
    lines.sort()
    partial = out_path.with_name(out_path.name + ".part")
    with open(partial, "wb") as f:
        f.writelines(lines)
    partial.replace(out_path)
