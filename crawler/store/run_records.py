"""Run records: one JSON line per crawl run in the archive's ``state/runs.jsonl``.

They live in the archive, not on the machine, so any machine with the archive URI sees what ran
when and how it ended (``newsarchive ls``, and ``schedule --once`` to decide what is due).
Appending is a read-modify-write with a conditional put, retried on conflict: two crawls ending
at the same moment both get their line, on a local disk and on S3 alike.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from crawler.errors import StoreError
from crawler.layout import RUNS_KEY
from crawler.store.backends import ArchiveStore, update_object

logger = logging.getLogger(__name__)


def append_run(store: ArchiveStore, record: dict[str, Any]) -> None:
    """Append one record to ``state/runs.jsonl``; a concurrent writer makes us re-read and retry."""
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
    update_object(store, RUNS_KEY, lambda data: data + line)


def read_runs(store: ArchiveStore) -> Iterator[dict[str, Any]]:
    """The run records, oldest first (lines that do not parse are skipped)."""
    current = store.get_versioned(RUNS_KEY)
    for line in (current[0] if current else b"").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def last_runs(store: ArchiveStore) -> dict[str, dict[str, Any]]:
    """The latest run record of every outlet (a run of several outlets counts for each)."""
    latest: dict[str, dict[str, Any]] = {}
    for record in read_runs(store):
        for outlet in record.get("outlets") or []:
            latest[outlet] = record
    return latest


def record_run(store: ArchiveStore, record: dict[str, Any]) -> None:
    """Append the record; a store that refuses it costs a warning, not the crawl's result."""
    try:
        append_run(store, record)
    except StoreError as exc:
        logger.warning("run record of %s not written: %s", record["crawl_id"], exc)


def print_last_runs(store: ArchiveStore, out: TextIO) -> None:
    """The short table of ``newsarchive ls``: each outlet's last run."""
    latest = last_runs(store)
    if not latest:
        return
    print(f"\n{'outlet':<20} {'last run':<40} {'started':<20} {'reason':<22} {'exit':>4} "
          f"{'pages':>7} {'articles':>8} {'errors':>6}  health", file=out)
    for outlet, r in sorted(latest.items()):
        counts, errors = r.get("counts") or {}, r.get("errors") or {}
        n_errors = sum(v for v in errors.values() if isinstance(v, int)) + ("upload" in errors)
        mine = (r.get("health") or {}).get(outlet)
        health = "-" if mine is None else \
            "HEALTH " + ", ".join(mine["flags"]) if mine.get("flags") else "ok"
        print(f"{outlet:<20} {r.get('crawl_id', '-'):<40} {r.get('start', '-'):<20} "
              f"{r.get('exit_reason', '-'):<22} {r.get('exit_code', '-'):>4} "
              f"{counts.get('responses', '-'):>7} {counts.get('text_records', '-'):>8} "
              f"{n_errors:>6}  {health}", file=out)


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)
