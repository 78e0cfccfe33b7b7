#!/usr/bin/env python3
"""A shared crawl (``crawl --redis``) with 1, 2, 3... workers: pages/s, and what Redis does per
URL.

Generates the synthetic outlet of ``../shared/benchmarks/site/make_site.py`` (N articles),
serves it with ``python -m http.server`` in its own process on 127.0.0.1, starts Debian's
``redis-server`` on a free port, and for each worker count crawls the site into a fresh archive
(sitemap discovery, politeness off: no delay, AutoThrottle off, concurrency 8 for the job) with
that many ``newsarchive crawl --redis`` processes started together. Prints wall time and pages/s
(from the first start to the last exit), and from Redis's ``INFO commandstats`` and ``INFO
stats``: commands per page (by command, those Lua scripts run included), network bytes per
page, Redis's own CPU time per page (``INFO cpu``, its main thread: the figure that says how
many pages/s one Redis carries), and the peak of ``used_memory`` above the empty server's, per
URL.

usage: benchmarks/cluster.py [--articles 2000] [--workers 1 2 3] [--site-script PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import BIN, DEFAULT_SITE_SCRIPT, free_port
from redis import Redis


def crawl(work: Path, site_url: str, redis_url: str, workers: int) -> dict[str, Any]:
    archive = work / f"archive-{workers}"
    config = work / f"outlets-{workers}.toml"
    config.write_text(f"""
[archive]
uri = "{archive}"
[cluster]
redis = "{redis_url}"
[crawl]
user_agent = "newsarchive-bench/0.1 (+https://example.org/contact)"
autothrottle = false
concurrency = 8
[[outlets]]
name = "bench"
sitemaps = ["{site_url}/sitemap.xml"]
allow = ['/news/']
""")
    server = Redis.from_url(redis_url)
    server.flushall()
    server.config_resetstat()
    base = int(server.info("memory")["used_memory"])
    cpu_before = _cpu(server)
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], int(server.info("memory")["used_memory"]))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.monotonic()
    procs = [subprocess.Popen([str(BIN / "newsarchive"), "crawl", "-c", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(workers)]
    outputs = [p.communicate() for p in procs]
    wall = time.monotonic() - start
    done.set()
    sampler.join()
    for p, (_, err) in zip(procs, outputs, strict=True):
        if p.returncode != 0:
            raise SystemExit(f"a worker failed ({p.returncode}): {err[-2000:]}")
    (manifest,) = archive.glob("crawls/*/manifest.json")
    counts = json.loads(manifest.read_text())["counts"]
    pages = counts["responses"]
    commands = {k.removeprefix("cmdstat_"): v["calls"]
                for k, v in server.info("commandstats").items()}
    stats = server.info("stats")
    cpu = _cpu(server) - cpu_before
    net = stats["total_net_input_bytes"] + stats["total_net_output_bytes"]
    return {"workers": workers, "wall_s": round(wall, 1), "pages": pages,
            "articles": counts["text_records"], "pages_per_s": round(pages / wall, 1),
            "commands_per_page": round(sum(commands.values()) / pages, 2),
            "by_command": {k: round(v / pages, 2) for k, v in sorted(
                commands.items(), key=lambda kv: -kv[1]) if v / pages >= 0.05},
            "net_bytes_per_page": round(net / pages),
            "redis_cpu_us_per_page": round(cpu / pages * 1e6),
            "peak_memory_per_url": round((peak[0] - base) / pages)}


def _cpu(server: Redis) -> float:
    """CPU seconds the Redis server has used (its main thread: commands and scripts)."""
    info = server.info("cpu")
    return float(info["used_cpu_sys_main_thread"]) + float(info["used_cpu_user_main_thread"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--site-script", type=Path, default=DEFAULT_SITE_SCRIPT)
    args = parser.parse_args()
    redis_server = shutil.which("redis-server")
    if not redis_server:
        raise SystemExit("redis-server is not installed (scripts/dev.sh setup installs it)")
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        work = Path(tmp)
        site_port, redis_port = free_port(), free_port()
        site_url = f"http://127.0.0.1:{site_port}"
        subprocess.run([sys.executable, str(args.site_script), "--out", str(work / "site"),
                        "--articles", str(args.articles), "--base-url", site_url], check=True,
                       stdout=subprocess.DEVNULL)
        site = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                 str(site_port)], cwd=work / "site" / "www",
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        redis = subprocess.Popen([redis_server, "--port", str(redis_port), "--bind",
                                  "127.0.0.1", "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            for workers in args.workers:
                print(json.dumps(crawl(work, site_url, f"redis://127.0.0.1:{redis_port}/0",
                                       workers)), flush=True)
        finally:
            site.terminate()
            redis.terminate()


if __name__ == "__main__":
    main()
