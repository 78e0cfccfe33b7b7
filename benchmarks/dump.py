#!/usr/bin/env python3
"""Dump speed and memory on archives in a real S3 server (SeaweedFS, as in the tests).

Builds synthetic archives of N documents (several outlets and languages, realistic article
lengths; two crawls, so some URLs have two versions; syndicated near-duplicates and exact
copies across outlets) in the archive layout, in a SeaweedFS bucket; then times the real
`newsarchive dump` command (each run its own process; peak RSS from wait4) in jsonl and parquet,
with and without deduplication, and DuckDB's ``read_json_auto`` over the same shards (httpfs from
the duckdb-ext-httpfs wheel) as the reference. Startup (an empty archive) is timed too, so the
figures are given with and without it. Peak memory is the process's own VmHWM, read by the
process as it exits (a child's ru_maxrss would include the pages of this process it was forked
from).

Each run is repeated (--repeat): the fastest time and the highest peak are reported, since the
machine may be shared.

usage: benchmarks/dump.py [--documents 20000 5000] [--shard 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import NEWSARCHIVE, ROOT

sys.path.insert(0, str(ROOT))

from crawler.config import ArchiveConfig  # noqa: E402
from crawler.store.backends import S3Store  # noqa: E402
from tests.s3server import S3Server  # noqa: E402
from tests.textarchive import Prose, document, write_crawl  # noqa: E402

LANGUAGES = (("ru", 0.5), ("uk", 0.2), ("pl", 0.2), ("en", 0.1))
OUTLETS = [f"outlet{i}" for i in range(8)]
RUNS = (("jsonl, --no-dedup", ["--format", "jsonl", "--no-dedup"]),
        ("jsonl, dedup", ["--format", "jsonl"]),
        ("parquet, --no-dedup", ["--format", "parquet", "--no-dedup"]),
        ("parquet, dedup", ["--format", "parquet"]))


def build(store: S3Store, documents: int, shard: int, seed: int) -> dict[str, int]:
    """A two-crawl archive of `documents` text records; returns what it planted."""
    prose = Prose(seed=seed)
    rnd = prose.random
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    planted = {"versions": 0, "near_duplicates": 0, "exact_copies": 0}
    while len(first) + len(second) < documents:
        n = len(first)
        lang = rnd.choices([c for c, _ in LANGUAGES], [w for _, w in LANGUAGES])[0]
        words = max(60, min(2500, int(rnd.lognormvariate(math.log(380), 0.5))))
        text = prose.text(lang, words)
        outlet = rnd.choice(OUTLETS)
        day = f"2025-{rnd.randint(1, 8):02d}-{rnd.randint(1, 28):02d}"
        date = day if rnd.random() > 0.1 else None
        url = f"https://{outlet}.example/news/{day.replace('-', '/')}/{n}.html"
        first.append(document(url, outlet, text, date=date, language=lang,
                              fetched_at=f"{day}T{rnd.randint(0, 23):02d}:00:00Z",
                              title=f"Article {n}"))
        roll = rnd.random()
        if roll < 0.04:  # the URL fetched again by the second crawl, text updated
            second.append(document(url, outlet, prose.edit(text, 2, lang), date=date,
                                   language=lang, fetched_at="2025-08-30T12:00:00Z",
                                   title=f"Article {n} (updated)"))
            planted["versions"] += 1
        elif roll < 0.08:  # syndicated: another outlet, a day later, lightly edited
            other = rnd.choice([o for o in OUTLETS if o != outlet])
            first.append(document(f"https://{other}.example/wire/{n}.html", other,
                                  prose.edit(text, 3, lang), date=date, language=lang,
                                  fetched_at=f"{day}T23:00:00Z", title=f"Wire {n}"))
            planted["near_duplicates"] += 1
        elif roll < 0.09:  # the same article under a second URL
            first.append(document(url + "?amp=1", outlet, text, date=date, language=lang,
                                  fetched_at=f"{day}T23:30:00Z", title=f"Article {n}"))
            planted["exact_copies"] += 1
    rnd.shuffle(first)
    first = first[: documents - len(second)]
    write_crawl(store, "bench-20250815T000000Z",
                [first[i : i + shard] for i in range(0, len(first), shard)])
    write_crawl(store, "bench-20250830T000000Z",
                [second[i : i + shard] for i in range(0, len(second), shard)])
    return planted


def measure(cmd: list[str], env: dict[str, str], stdout: Path, repeat: int
            ) -> dict[str, float]:
    """Fastest wall time and highest peak RSS (the VmHWM line the command prints last on
    stderr) of `repeat` runs."""
    seconds, peak = [], []
    for _ in range(repeat):
        start = time.monotonic()
        with open(stdout, "wb") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        seconds.append(time.monotonic() - start)
        err = proc.stderr.decode()
        if proc.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{err[-3000:]}")
        peak.append(int(err.split()[-2]) / 1024)
    return {"seconds": min(seconds), "peak_rss_mb": max(peak)}


DUCKDB_SCRIPT = """
import sys, duckdb, duckdb_ext
con = duckdb_ext.init(duckdb.connect())
con.execute("LOAD httpfs")
con.execute("CREATE SECRET (TYPE s3, KEY_ID ?, SECRET ?, REGION 'us-east-1', ENDPOINT ?, "
            "URL_STYLE 'path', USE_SSL false)", sys.argv[1:4])
if sys.argv[4] != "-":  # "-": start only (connect, load httpfs), to time the startup
    con.execute(f"COPY (SELECT * FROM read_json_auto('{sys.argv[4]}')) TO '{sys.argv[5]}' "
                f"({sys.argv[6]})")
print([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0], file=sys.stderr)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, nargs="+", default=[20_000, 5_000])
    parser.add_argument("--shard", type=int, default=1000, help="documents per text shard")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    args = parser.parse_args()
    with S3Server() as s3, tempfile.TemporaryDirectory(prefix="dump-bench-") as tmp:
        work = Path(tmp)
        s3.client().create_bucket(Bucket="bench")
        os.environ.update(AWS_ACCESS_KEY_ID=s3.access_key, AWS_SECRET_ACCESS_KEY=s3.secret_key,
                          AWS_DEFAULT_REGION=s3.region)
        env = dict(os.environ)
        config = work / "bench.toml"
        config.write_text(f'[archive]\nuri = "s3://bench/empty"\n'
                          f'endpoint_url = "{s3.endpoint_url}"\naddressing_style = "path"\n')
        archive_config = ArchiveConfig(uri="s3://bench/empty", endpoint_url=s3.endpoint_url,
                                       addressing_style="path")
        startup = measure([*NEWSARCHIVE, "dump", "-c", str(config)], env, work / "empty",
                          args.repeat)
        duck = [sys.executable, "-c", DUCKDB_SCRIPT, s3.access_key, s3.secret_key,
                s3.endpoint_url.removeprefix("http://")]
        duck_startup = measure([*duck, "-", "", ""], env, work / "empty", args.repeat)
        print(f"startup: newsarchive dump of an empty archive {startup['seconds']:.2f}s, "
              f"{startup['peak_rss_mb']:.0f} MB peak RSS; duckdb (connect, load httpfs) "
              f"{duck_startup['seconds']:.2f}s")
        print("(seconds: wall time of the fastest run, process start included; 'w/o start': "
              "documents/s with the startup above taken off)")
        peaks: dict[str, dict[int, float]] = {}
        for n in args.documents:
            uri = f"s3://bench/n{n}"
            t0 = time.monotonic()
            planted = build(S3Store(uri, archive_config), n, args.shard, seed=n)
            size = sum(o["Size"] for page in s3.client().get_paginator("list_objects_v2")
                       .paginate(Bucket="bench", Prefix=f"n{n}/") for o in page.get("Contents", []))
            print(f"\n{n} documents in {uri}: {size / 1e6:.1f} MB of gzip text shards "
                  f"({math.ceil(n / args.shard)}+ shards), planted {planted}; built in "
                  f"{time.monotonic() - t0:.0f}s")
            print(f"  {'run':<22} {'seconds':>8} {'docs/s':>8} {'w/o start':>10} {'written':>8}"
                  f" {'peak RSS':>9}")
            jsonl: dict[str, float] = {}
            for name, extra in RUNS:
                out = work / f"out-{n}"
                m = measure([*NEWSARCHIVE, "dump", "-c", str(config), "--archive", uri,
                             "-o", str(out) + (".parquet" if "parquet" in name else ".jsonl"),
                             *extra], env, work / "stdout", args.repeat)
                written = int((work / "stdout").read_text().split()[0])
                rate = n / m["seconds"]
                net = n / max(m["seconds"] - startup["seconds"], 1e-6)
                ratio = ""
                if name.startswith("jsonl"):
                    jsonl[name.split(", ")[1]] = m["seconds"]
                else:
                    base, start = jsonl[name.split(", ")[1]], startup["seconds"]
                    net_ratio = f"{(m['seconds'] - start) / (base - start):.2f}x" \
                        if min(m["seconds"], base) > start else "n/a"
                    ratio = f"  ({m['seconds'] / base:.2f}x jsonl; w/o start {net_ratio})"
                peaks.setdefault(name, {})[n] = m["peak_rss_mb"]
                print(f"  {name:<22} {m['seconds']:>8.2f} {rate:>8.0f} {net:>10.0f} "
                      f"{written:>8} {m['peak_rss_mb']:>7.0f}MB{ratio}")
            for fmt, options in (("jsonl", "FORMAT json"), ("parquet", "FORMAT parquet")):
                m = measure([*duck, f"s3://bench/n{n}/crawls/*/text/*.jsonl.gz",
                             str(work / f"duck-{n}.{fmt}"), options], env, work / "stdout",
                            args.repeat)
                net = n / max(m["seconds"] - duck_startup["seconds"], 1e-6)
                print(f"  {'duckdb -> ' + fmt:<22} {m['seconds']:>8.2f} {n / m['seconds']:>8.0f}"
                      f" {net:>10.0f} {n:>8} {m['peak_rss_mb']:>7.0f}MB")
        if len(args.documents) > 1:
            big, small = max(args.documents), min(args.documents)
            print(f"\npeak RSS, {big} vs {small} documents:")
            for name, by_n in peaks.items():
                print(f"  {name:<22} {by_n[big]:.0f} MB vs {by_n[small]:.0f} MB: "
                      f"{by_n[big] / by_n[small]:.3f}x")


if __name__ == "__main__":
    main()
