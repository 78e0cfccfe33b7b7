"""`newsarchive workers`: the crawls shared through a Redis, as their workers see them now."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from crawler.cli.main import EXIT_OK
from crawler.config import load_config, redis_url_problem
from crawler.errors import UsageError
from crawler.jobs.cluster import cluster_status


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    workers = sub.add_parser("workers", parents=[common],
                             help="live workers, queue and leases of crawls shared through Redis")
    workers.add_argument("--redis", metavar="URL",
                         help="the crawls' Redis (default: the config's [cluster] redis)")
    workers.add_argument("--json", action="store_true", help="one JSON object per crawl")
    workers.set_defaults(func=cmd_workers)


def cmd_workers(args: argparse.Namespace) -> int:
    url = args.redis or load_config(args.config).cluster.redis
    if not url:
        raise UsageError("workers: no Redis (give --redis URL or [cluster] redis in the config)")
    if problem := redis_url_problem(url):
        raise UsageError(f"--redis: {problem}")
    crawls = cluster_status(url)
    if args.json:
        for crawl in crawls:
            print(json.dumps(asdict(crawl)))
        return EXIT_OK
    if not crawls:
        print(f"no shared crawl running in {url}")
        return EXIT_OK
    for crawl in crawls:
        print(f"crawl {crawl.crawl_id} (job {crawl.job}): {crawl.queued} queued, "
              f"{crawl.leased} leased, {crawl.seen} seen, {crawl.files} files delivered"
              f"{'' if crawl.seeded else ', still seeding'}")
        print(f"  {'worker':<24} {'heartbeat':>9} {'pages':>7} {'pages/s':>7} {'busy':>5} "
              f"{'waiting':>7}")
        for w in crawl.workers:
            print(f"  {w['worker']:<24} {w['heartbeat_age']:>8.1f}s {w.get('pages', 0):>7} "
                  f"{w.get('pages_per_s', 0):>7} {w['busy']:>5} {w.get('captured', 0):>7}")
        for host, rate in crawl.hosts.items():
            print(f"  host {host}: {rate:.1f} requests/s")
    return EXIT_OK
