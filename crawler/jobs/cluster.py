"""Workers of one crawl job sharing a Redis: which crawl they join, and what `workers` shows.

The first worker of a job takes the job's key in Redis (a compare-and-set: WATCH, MULTI): its
crawl id is the crawl, and it seeds it. The others read the key and join that crawl under the
same id; a worker whose config differs from the crawl's is refused. The last worker to finish
deletes the key, so the job's next run is a new crawl. The frontier itself is the crawl's
(``crawler.crawl.frontier``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from redis import Redis, RedisError, WatchError

from crawler.errors import NewsarchiveError, UsageError
from crawler.job import CrawlJob
from crawler.layout import redis_crawl_key, redis_job_key, redis_job_pattern

# HSET workers WORKER <the server's time + ARGV[2]>: one clock for every worker's heartbeats,
# and a worker that is still starting (Scrapy, the extraction pool) is not taken for dead
_REGISTER = ("local t = redis.call('TIME') "
             "local beat = tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[2]) "
             "redis.call('HSET', KEYS[1], ARGV[1], tostring(beat)) "
             "redis.call('SADD', KEYS[2], ARGV[1]) return 1")
STARTUP_GRACE = 60.0  # seconds a registered worker has to send its first heartbeat


def connect(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)


def worker_id() -> str:
    """``{host}-{pid}``: unique among the workers of a crawl, readable in file names."""
    host = socket.gethostname().split(".")[0]
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in host) or "host"
    return f"{host}-{os.getpid()}"


def join_crawl(job: CrawlJob, url: str) -> CrawlJob:
    """This process as a worker of the job's crawl in Redis at `url`: the crawl running now
    (joined), or a new one (seeded by this worker)."""
    server = connect(url)
    worker = worker_id()
    key = redis_job_key(job.name)
    try:
        with server.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    current = pipe.get(key)
                    if current:
                        info = json.loads(current)
                        joined = replace(job, started=datetime.fromisoformat(info["started"]),
                                         redis=url, worker=worker, seeds=False)
                        if info["config_digest"] != joined.config_digest:
                            raise UsageError(
                                f"crawl {info['crawl_id']} of job {job.name!r} in {url} runs "
                                f"with another config (outlets or options); start this worker "
                                f"with the same config, or after that crawl is committed")
                    else:
                        joined = replace(job, redis=url, worker=worker, seeds=True)
                    crawl = joined.crawl_id
                    pipe.multi()
                    if joined.seeds:
                        pipe.set(key, json.dumps({"crawl_id": crawl,
                                                  "started": joined.started.isoformat(),
                                                  "config_digest": joined.config_digest}))
                        pipe.set(redis_crawl_key(crawl, "seeder"), worker)
                    pipe.eval(_REGISTER, 2, redis_crawl_key(crawl, "workers"),
                              redis_crawl_key(crawl, "running"), worker, STARTUP_GRACE)
                    pipe.execute()
                    return joined
                except WatchError:
                    continue
    except RedisError as exc:
        raise NewsarchiveError(f"cannot reach Redis at {url}: {exc}") from None


@dataclass
class CrawlStatus:
    """A shared crawl as Redis sees it now."""

    job: str
    crawl_id: str
    queued: int
    leased: int
    seen: int
    files: int
    seeded: bool
    workers: list[dict[str, Any]] = field(default_factory=list)
    hosts: dict[str, float] = field(default_factory=dict)  # requests/s per host


def cluster_status(url: str, sample: float = 1.0) -> list[CrawlStatus]:
    """Every crawl in Redis at `url`: its queue, leases, workers (last heartbeat, pages/s) and
    per-host request rates (measured over `sample` seconds)."""
    server = connect(url)
    try:
        crawls = []
        for key in sorted(server.scan_iter(redis_job_pattern())):
            info = json.loads(server.get(key) or "{}")
            if info:
                crawls.append((key.decode().rsplit(":", 1)[1], info["crawl_id"]))
        before = {c: _hosts(server, c) for _, c in crawls}
        if crawls:
            time.sleep(sample)
        now = _server_time(server)
        out = []
        for job, crawl in crawls:
            k = {n: redis_crawl_key(crawl, n) for n in (
                "requests", "leases", "dupefilter", "files", "seeded", "workers", "stats",
                "busy")}
            beats = {w.decode(): float(t) for w, t in server.hgetall(k["workers"]).items()}
            stats = {w.decode(): json.loads(s) for w, s in server.hgetall(k["stats"]).items()}
            busy = {w.decode(): int(b) for w, b in server.hgetall(k["busy"]).items()}
            workers = [{"worker": w, "heartbeat_age": round(now - beat, 1),
                        "busy": busy.get(w, 0), **stats.get(w, {})}
                       for w, beat in sorted(beats.items())]
            after = _hosts(server, crawl)
            hosts = {h: (n - before[crawl].get(h, 0)) / sample for h, n in sorted(after.items())}
            out.append(CrawlStatus(job, crawl, server.zcard(k["requests"]),
                                   server.hlen(k["leases"]), server.scard(k["dupefilter"]),
                                   server.hlen(k["files"]), bool(server.exists(k["seeded"])),
                                   workers, hosts))
        return out
    except RedisError as exc:
        raise NewsarchiveError(f"cannot reach Redis at {url}: {exc}") from None


def _hosts(server: Redis, crawl: str) -> dict[str, int]:
    return {h.decode(): int(n) for h, n in server.hgetall(redis_crawl_key(crawl, "hosts")).items()}


def _server_time(server: Redis) -> float:
    seconds, micros = server.time()
    return seconds + micros / 1e6
