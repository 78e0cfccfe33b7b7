#!/usr/bin/env python3
"""`newsarchive report` time and memory against the size of the archive's history.

Builds local archives of N committed crawls (8 outlets, a crawl per outlet every few hours:
manifests with their counts, health figures and a hundred file entries each, the run records,
and URL state with some edited articles), then times the real command (each run its own
process; peak RSS is the process's own VmHWM, read as it exits). The report reads manifests one
at a time and keeps a few numbers per crawl, so its memory should grow far slower than the
archive's manifests.

usage: benchmarks/report.py [--crawls 1000 10000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import NEWSARCHIVE, ROOT

sys.path.insert(0, str(ROOT))

from crawler.layout import RUNS_KEY, manifest_key, state_shard_key  # noqa: E402
from crawler.records import MANIFEST_FORMAT, iso  # noqa: E402

OUTLETS = [f"outlet{i}" for i in range(8)]
FILES_PER_CRAWL = 100


def build(root: Path, crawls: int, seed: int = 1) -> int:
    """An archive of `crawls` committed crawls; returns the bytes of its manifests."""
    rnd = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    manifest_bytes = 0
    runs = []
    for n in range(crawls):
        outlet = OUTLETS[n % len(OUTLETS)]
        started = start + timedelta(hours=3 * n / len(OUTLETS))
        crawl_id = f"{outlet}-{started:%Y%m%dT%H%M%SZ}"
        new = rnd.randint(20, 60)
        health = {outlet: {
            "fetched": new + 40, "found": new + 30, "extracted": new, "texts": new,
            "new": new - 2, "edited": 2, "no_text": rnd.randint(0, 2), "short": rnd.randint(0, 3),
            "untitled": 0, "undated": rnd.randint(0, 5), "median_words": rnd.randint(300, 700),
            "short_words": 50, "flags": {} if rnd.random() > 0.02 else {
                "no_text": "90% of 40 articles gave no text (earlier crawls: 1%)"}}}
        counts = {"responses": new + 40, "text_records": new, "warc_bytes": 5_000_000,
                  "warc_files": 1, "revisits/server-not-modified": 30}
        files = [{"key": f"crawls/{crawl_id}/text/{crawl_id}-{i:05d}-host.jsonl.gz",
                  "size": 40_000, "sha256": f"{rnd.getrandbits(256):064x}", "kind": "text",
                  "records": 40, "outlets": {outlet: 40}, "languages": {"en": 40},
                  "date_range": ["2025-01-01", "2025-01-02"]} for i in range(FILES_PER_CRAWL)]
        manifest = {"format": MANIFEST_FORMAT, "crawl_id": crawl_id, "job": outlet,
                    "software": "benchmark", "started": iso(started),
                    "ended": iso(started + timedelta(minutes=4)), "finish_reason": "finished",
                    "archive": str(root), "config_digest": "", "outlets": [outlet],
                    "counts": counts, "health": health, "files": files}
        data = json.dumps(manifest, indent=1).encode()
        path = root / manifest_key(crawl_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        manifest_bytes += len(data)
        runs.append({"job": outlet, "crawl_id": crawl_id, "outlets": [outlet],
                     "start": manifest["started"], "end": manifest["ended"], "counts": counts,
                     "health": health, "errors": {"fetch": 0, "logged": 0},
                     "outlet_errors": {outlet: {}}, "exit_reason": "finished", "exit_code": 0})
    (root / RUNS_KEY).parent.mkdir(parents=True, exist_ok=True)
    (root / RUNS_KEY).write_text("".join(json.dumps(r) + "\n" for r in runs))
    shards: dict[str, list[str]] = {}
    for n in range(crawls * 20):  # the URL state: 20 articles per crawl, 1 in 20 edited
        outlet = OUTLETS[n % len(OUTLETS)]
        url = f"https://{outlet}.example/news/{n}.html"
        text = {"revision": 2 if n % 20 == 0 else 1, "digest": "sha256:x", "crawl_id": "c",
                "warc_record_id": "<urn:uuid:x>", "fetched_at": "2025-02-01T00:00:00Z"}
        shards.setdefault(state_shard_key(outlet, url), []).append(json.dumps(
            {"url": url, "outlet": outlet, "article": True, "first_seen": "2025-01-01T00:00:00Z",
             "text": text}))
    for key, lines in shards.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return manifest_bytes


def run(archive: Path, out: Path) -> tuple[float, int]:
    """Seconds and peak RSS (kB) of one `newsarchive report`."""
    began = time.monotonic()
    done = subprocess.run([*NEWSARCHIVE, "report", "--archive", str(archive), "-o", str(out)],
                          capture_output=True, text=True, cwd=archive.parent)
    took = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    peak = int(done.stderr.split("VmHWM:")[1].split()[0])
    return took, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crawls", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"{'crawls':>7} {'manifests MB':>12} {'seconds':>8} {'peak RSS MiB':>12} "
          f"{'report KB':>9}")
    for crawls in args.crawls:
        with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
            archive = Path(tmp) / "archive"
            size = build(archive, crawls)
            results = [run(archive, Path(tmp) / "report.html") for _ in range(args.repeat)]
            took = min(r[0] for r in results)
            peak = max(r[1] for r in results)
            print(f"{crawls:>7} {size / 1e6:>12.1f} {took:>8.2f} {peak / 1024:>12.1f} "
                  f"{(Path(tmp) / 'report.html').stat().st_size / 1e3:>9.0f}")


if __name__ == "__main__":
    main()
