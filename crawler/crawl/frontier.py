"""One crawl shared by several workers through Redis: the frontier, leases, shared politeness.

Built on scrapy-redis: its scheduler and dupefilter, on its key layout (the request queue a
sorted set by priority, ``requests``; the seen fingerprints a set, ``dupefilter``). What its
defaults do not give, and a shared archival crawl needs, is here:

- ``LeasingScheduler``: scrapy-redis's scheduler whose dupefilter check and queue push are one
  Lua script (its own are two commands: a Redis lost between them loses the request).
- ``LeasedPriorityQueue``: a request taken from the queue is *leased*, not popped for good: one
  script moves it to ``leases`` (owner and priority kept). The worker lets go of it only once
  the engine is done with it (its links queued) and the shard holding its capture is in the
  archive store; a finished shard is recorded in Redis (``shards``) before its upload and its
  leases tagged with it. The requests a worker held when it died (no heartbeat for
  ``lease_timeout``) go back to the queue, except those whose shard reached the store.
- ``ClusterWorker`` (extension): the worker's registration, heartbeat, leases and commit. The
  crawl is done when it is seeded, the queue is empty, no worker is busy with a request
  (``busy``, counted by the same scripts that lease and release) and every worker gave a
  heartbeat lately. Each worker then commits its own files (``files`` in Redis, and its list
  in the store: Redis is never their only record); the last one to finish writes the crawl's
  manifest listing them all.
- ``SharedHostSlotMiddleware``: per-host ``delay`` (robots.txt's Crawl-delay included),
  ``concurrency`` and Retry-After holds for the job as a whole: a token and slots per host in
  Redis, so N workers never hit a site N times harder.
- ``SeedingMiddleware``: only the worker that took the seed lock queues the start requests
  (start URLs, feeds, sitemaps, re-checks due); the others join. A seeder that dies before it
  is done is replaced by a joiner.

A worker that loses Redis stops taking work, finishes the requests it holds, commits its files
and says so in one line (``lost``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from redis import Redis, RedisError
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet import defer
from twisted.internet.task import LoopingCall

from crawler.crawl.archiving import ArchivingExtension
from crawler.crawl.politeness import retry_after_seconds
from crawler.crawl.warc_capture import CAPTURE_META
from crawler.job import CrawlJob
from crawler.layout import (
    basename,
    redis_crawl_key,
    redis_job_key,
    shard_keys,
    worker_files_key,
    worker_files_prefix,
)
from crawler.records import FileEntry

logger = logging.getLogger(__name__)

# Redis connection parameters: a server that is gone is noticed within seconds
REDIS_PARAMS = {"socket_timeout": 10, "socket_connect_timeout": 5, "retry_on_timeout": False}
SWEEP_EVERY = 60  # heartbeats between two sweeps of every lease (else: only when one died)
MAX_HOLD = 600.0  # seconds: the longest Retry-After hold a host gets (as RetryAfterMiddleware)

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 "

# KEYS dupefilter, requests; ARGV fingerprint ('' for a request that is never filtered),
# request, score -> 1 when queued. One script: a fingerprint is never seen without its request
# queued (scrapy-redis sends SADD and ZADD apart; Redis lost between them loses the request).
_PUSH = """
if ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""

# KEYS requests, leases, busy; ARGV worker -> {member, score} or {}
_LEASE = """
local got = redis.call('ZPOPMIN', KEYS[1])
if #got == 0 then return {} end
redis.call('HSET', KEYS[2], got[1], ARGV[1] .. ' ' .. got[2])
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
return got
"""

# A lease's value: "{worker} {priority score}", and once the shard holding its capture is
# finished, " {warc key} {1 when the engine was done with it, else 0}".
# KEYS workers, running, busy, leases, requests, hosts; ARGV timeout, the host slots' key
# (prefix, suffix), '1' to sweep the leases even when no worker died (leases of workers that
# are gone, left by a reclaimer that died before it settled them) -> {workers declared dead,
# {lease, warc, score} of theirs whose capture may be in the store}. Their other leases go back
# to the queue: not captured, or captured before their links were queued.
_RECLAIM = _NOW + """
local dead, found, check = {}, {}, {}
local beats = redis.call('HGETALL', KEYS[1])
for i = 1, #beats, 2 do
  if now - tonumber(beats[i + 1]) > tonumber(ARGV[1]) then
    dead[beats[i]] = true
    table.insert(found, beats[i])
    redis.call('HDEL', KEYS[1], beats[i])
    redis.call('SREM', KEYS[2], beats[i])
    redis.call('HDEL', KEYS[3], beats[i])
  else
    dead[beats[i]] = false
  end
end
if #found == 0 and ARGV[4] ~= '1' then return {found, check} end
if #found > 0 then  -- the hosts' slots they held are free again
  local hosts = redis.call('HKEYS', KEYS[6])
  for h = 1, #hosts do
    local slots = ARGV[2] .. hosts[h] .. ARGV[3]
    local held = redis.call('ZRANGE', slots, 0, -1)
    for i = 1, #held do
      if dead[string.match(held[i], '^(.*):[^:]*$')] then redis.call('ZREM', slots, held[i]) end
    end
  end
end
local leases = redis.call('HGETALL', KEYS[4])
for i = 1, #leases, 2 do
  local owner, score, warc, done = string.match(leases[i + 1], '^(%S+) (%S+) ?(%S*) ?(%S*)$')
  if dead[owner] ~= false then
    if warc ~= '' and done == '1' then
      table.insert(check, {leases[i], warc, score})
    else
      redis.call('ZADD', KEYS[5], score, leases[i])
      redis.call('HDEL', KEYS[4], leases[i])
    end
  end
end
return {found, check}
"""

# KEYS workers, running, busy, stats; ARGV worker, released, stats -> 0 when declared dead
_BEAT = _NOW + """
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], tostring(now))
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
if tonumber(ARGV[2]) > 0 then redis.call('HINCRBY', KEYS[3], ARGV[1], -tonumber(ARGV[2])) end
return 1
"""

# KEYS seeded, requests, busy, workers; ARGV suspect -> 1 when the crawl has nothing left to
# fetch or in hand, and every worker still in it gave a heartbeat lately (one that did not may
# be dead with captures that never reach the store: its leases are reclaimed first)
_DONE = _NOW + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
local busy = redis.call('HVALS', KEYS[3])
for i = 1, #busy do if tonumber(busy[i]) > 0 then return 0 end end
local beats = redis.call('HVALS', KEYS[4])
for i = 1, #beats do if now - tonumber(beats[i]) > tonumber(ARGV[1]) then return 0 end end
return 1
"""

# KEYS running, workers, busy, requests, leases, seeded, committed; ARGV worker
# -> 1 when this worker is the last to finish a done crawl: it writes the manifest; -1 when it
# is the last but requests are left (queued or leased)
_FINISH = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('SCARD', KEYS[1]) > 0 then return 0 end
if redis.call('ZCARD', KEYS[4]) > 0 or redis.call('HLEN', KEYS[5]) > 0
    or redis.call('EXISTS', KEYS[6]) == 0 then return -1 end
return redis.call('SETNX', KEYS[7], ARGV[1])
"""

# KEYS seeded, seeder, running; ARGV worker -> 1 when this worker now seeds the crawl
_TAKE_SEEDING = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seeder = redis.call('GET', KEYS[2])
if seeder and redis.call('SISMEMBER', KEYS[3], seeder) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""

# KEYS next, slots, hosts; ARGV delay, concurrency, token, slot_ttl, netloc
# -> seconds to wait (0: the request may go now, holding a slot)
_TAKE_SLOT = _NOW + """
local ready = tonumber(redis.call('GET', KEYS[1]) or '0')
if ready > now then return tostring(ready - now) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return '0.1' end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[4])))
if tonumber(ARGV[1]) > 0 then
  redis.call('SET', KEYS[1], tostring(now + tonumber(ARGV[1])), 'PX',
             math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
redis.call('HINCRBY', KEYS[3], ARGV[5], 1)
return '0'
"""

# KEYS next; ARGV seconds -> the host takes no request before now + seconds
_HOLD = _NOW + """
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""

CRAWL_KEYS = ("requests", "dupefilter", "leases", "busy", "workers", "running", "stats",
              "files", "shards", "seeder", "seeded", "hosts")


def host_key(netloc: str, what: str) -> str:
    """The name (within the crawl's keys) of a host's request token (``next``) or its slots."""
    return f"host:{netloc}:{what}"


def cluster_settings(job: CrawlJob) -> dict[str, Any]:
    """The Scrapy settings of a worker of a shared crawl: scrapy-redis's scheduler and
    dupefilter on the crawl's keys, with the leasing queue, the cluster extension and the
    shared politeness middleware."""
    from crawler.crawl import settings as base

    return {
        "REDIS_URL": job.redis,
        "REDIS_PARAMS": REDIS_PARAMS,
        "SCHEDULER": "crawler.crawl.frontier.LeasingScheduler",
        "SCHEDULER_QUEUE_CLASS": "crawler.crawl.frontier.LeasedPriorityQueue",
        "SCHEDULER_QUEUE_KEY": redis_crawl_key(job.crawl_id, "requests"),
        "SCHEDULER_DUPEFILTER_KEY": redis_crawl_key(job.crawl_id, "dupefilter"),
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": True,  # the last worker clears the crawl's keys, once committed
        "EXTENSIONS": {**base.EXTENSIONS, "crawler.crawl.frontier.ClusterWorker": 1},
        "DOWNLOADER_MIDDLEWARES": {**base.DOWNLOADER_MIDDLEWARES,
                                   # after OutletSlotMiddleware (its delay), before
                                   # RetryAfterMiddleware (550) sleeps on a 429 or 503
                                   "crawler.crawl.frontier.SharedHostSlotMiddleware": 560},
        "SPIDER_MIDDLEWARES": {**base.SPIDER_MIDDLEWARES,
                               "crawler.crawl.frontier.SeedingMiddleware": 10},
    }


class ClusterWorker:
    """This worker's part in a shared crawl: registration, heartbeat, leases, commit.

    A lease ends (``HDEL leases``) once the engine is done with its request (its links are
    queued) and the shard holding its capture is in the store. A finished shard's files are
    recorded in Redis (``shards``) before their upload and its leases tagged with it, so the
    worker that reclaims a dead worker's leases acknowledges those whose shard did reach the
    store (and lists its files) instead of fetching them again."""

    def __init__(self, crawler: Crawler, job: CrawlJob, server: Redis, timeout: float) -> None:
        self.crawler = crawler
        self.job = job
        self.worker = job.worker or ""
        self.server = server
        self.timeout = timeout
        self.interval = min(1.0, timeout / 4)  # between heartbeats
        # requests leased at a time: what the outlets' hosts take at once, twice over; the
        # rest stays in the shared queue for the other workers
        self.max_held = max(4, 2 * sum(o.crawl.concurrency for o in job.outlets))
        self.keys = {name: redis_crawl_key(job.crawl_id, name) for name in CRAWL_KEYS}
        self.ready = False  # the outlets' own addresses are resolved: requests may go out
        self.lost: str | None = None  # why this worker stopped talking to Redis
        self.pages = 0
        self._rate = (time.monotonic(), 0)
        self._pages_per_s = 0.0
        # leased requests the engine is working on -> (lease, priority score)
        self._held: dict[Request, tuple[bytes, str]] = {}
        # the writer and upload threads see leases too; Redis is updated under the lock, so a
        # lease ended by one thread is never written back by another
        self._lock = threading.RLock()
        self._score: dict[bytes, str] = {}
        self._by_warc: dict[str, dict[bytes, bool]] = {}  # WARC -> its leases: engine done?
        self._finished_warcs: set[str] = set()  # recorded in Redis, leases tagged
        self._delivered: set[str] = set()  # in the store
        self._released = 0  # requests done since the last heartbeat (busy to decrement)
        self._finished = False
        self._beats = 0
        self._scripts = {name: server.register_script(source) for name, source in (
            ("push", _PUSH), ("lease", _LEASE), ("reclaim", _RECLAIM), ("beat", _BEAT),
            ("done", _DONE), ("finish", _FINISH), ("take_seeding", _TAKE_SEEDING),
            ("take_slot", _TAKE_SLOT), ("hold", _HOLD))}
        self.heartbeat = LoopingCall(self.beat)
        self.archive: ArchivingExtension | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ClusterWorker:
        job: CrawlJob | None = getattr(crawler.spider, "job", None)
        if job is None or not job.redis:
            raise NotConfigured("not a worker of a shared crawl")
        from scrapy_redis.connection import get_redis_from_settings

        ext = cls(crawler, job, get_redis_from_settings(crawler.settings),
                  job.config.cluster.lease_timeout)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        return ext

    def script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self._scripts[name](keys=keys, args=args)

    # ---------------------------------------------------------------- reactor side

    def spider_opened(self) -> None:
        """This worker commits its part of the crawl, and lets go of leases as its files reach
        the store."""
        self.archive = archive = self.crawler.get_extension(ArchivingExtension)
        archive.commit = self.commit
        archive.delivery.on_finished = self.finished
        archive.delivery.on_delivered = self.delivered
        self._watch_engine()
        self.heartbeat.start(self.interval, now=True)

    def response_received(self) -> None:
        self.pages += 1

    def lease(self, queue: LeasedPriorityQueue) -> Request | None:
        """The next request of the frontier, leased to this worker; None when there is none
        or this worker takes no more work."""
        if self.lost or not self.ready or len(self._held) >= self.max_held:
            return None
        try:
            got = self.script("lease", [queue.key, self.keys["leases"], self.keys["busy"]],
                              [self.worker])
        except RedisError as exc:
            self.lose(exc)
            return None
        if not got:
            return None
        request = queue.decode(got[0])
        self._held[request] = (got[0], got[1].decode() if isinstance(got[1], bytes)
                               else str(got[1]))
        return request

    def captured(self, request: Request) -> None:
        """A leased request's exchange is in a WARC: its lease waits for that WARC."""
        held = self._held.get(request)
        warc = (request.meta.get(CAPTURE_META) or {}).get("warc_file")
        if held is None or not warc:
            return
        with self._lock:
            self._by_warc.setdefault(warc, {}).setdefault(held[0], False)
            self._score[held[0]] = held[1]
            if warc in self._finished_warcs and warc not in self._delivered:
                # its shard finished before this callback ran
                self._redis(lambda pipe: pipe.hset(self.keys["leases"], held[0],
                                                   self._tag(held[0], warc, False)))

    def beat(self) -> None:
        """Every second: the heartbeat, and the leases of dead workers."""
        if self._finished or self.lost:
            return
        now = time.monotonic()
        since, pages = self._rate
        if now - since >= 5:
            self._pages_per_s, self._rate = (self.pages - pages) / (now - since), (now, self.pages)
        stats = json.dumps({"pages": self.pages, "pages_per_s": round(self._pages_per_s, 1),
                            "held": len(self._held), "captured": self._waiting()})
        try:
            with self._lock:
                released, self._released = self._released, 0
            alive = self.script("beat", [self.keys["workers"], self.keys["running"],
                                         self.keys["busy"], self.keys["stats"]],
                                [self.worker, released, stats])
            if not alive:
                self.lose(f"this worker was taken for dead (no heartbeat for {self.timeout:g} s)"
                          f" and its requests were handed to others")
                return
            self._beats += 1
            dead, check = self.script("reclaim", [
                self.keys["workers"], self.keys["running"], self.keys["busy"],
                self.keys["leases"], self.keys["requests"], self.keys["hosts"]],
                [self.timeout, *redis_crawl_key(self.job.crawl_id,
                                                host_key("\n", "slots")).split("\n"),
                 int(self._beats % SWEEP_EVERY == 0)])
            for worker in dead:
                logger.warning("worker %s gave no heartbeat for %gs: its leased requests are "
                               "back in the frontier", worker.decode(), self.timeout)
            if check:
                self._settle(check)
        except RedisError as exc:
            self.lose(exc)
            return
        engine = self.crawler.engine
        if engine is not None and engine._slot is not None:  # noqa: SLF001
            engine._slot.nextcall.schedule()  # noqa: SLF001 (work other workers queued)

    def _settle(self, check: list[list[bytes]]) -> None:
        """A dead worker's captured leases: acknowledged when their shard reached the store
        (its files listed for the manifest), else back to the queue."""
        store = self.archive.delivery.store
        by_warc: dict[str, list[tuple[bytes, bytes]]] = {}
        for lease, warc, score in check:
            by_warc.setdefault(warc.decode(), []).append((lease, score))
        for warc, leases in by_warc.items():
            text = shard_keys(self.job.crawl_id, basename(warc))["text"]
            entries = self.server.hget(self.keys["shards"], warc)
            with self.server.pipeline(transaction=True) as pipe:
                if entries and store.stat(text) is not None:
                    for entry in json.loads(entries):
                        pipe.hset(self.keys["files"], entry["key"], json.dumps(entry))
                    pipe.hdel(self.keys["shards"], warc)
                else:
                    for lease, score in leases:
                        pipe.zadd(self.keys["requests"], {lease: float(score)})
                pipe.hdel(self.keys["leases"], *(lease for lease, _ in leases))
                pipe.execute()

    def _watch_engine(self) -> None:
        """Be told the moment the engine is done with a request (its response processed, links
        queued): Scrapy keeps such requests in its slot's ``inprogress`` set and sends no signal
        when one leaves it, so the set is swapped for one that tells."""
        slot = self.crawler.engine._slot  # noqa: SLF001
        slot.inprogress = _WatchedSet(slot.inprogress, self._left_engine)

    def _left_engine(self, request: Request) -> None:
        if request in self._held:
            self._release([request])

    def _release(self, done: list[Request]) -> None:
        """Leases of requests the engine is done with: they end now when their capture is in
        the store (or there is none), else when it gets there."""
        ack: list[bytes] = []
        retag: list[tuple[bytes, str]] = []

        def update(pipe: Any) -> None:
            if ack:
                pipe.hdel(self.keys["leases"], *ack)
            for lease, warc in retag:
                pipe.hset(self.keys["leases"], lease, self._tag(lease, warc, True))

        with self._lock:
            for request in done:
                lease, score = self._held.pop(request)
                warc = (request.meta.get(CAPTURE_META) or {}).get("warc_file")
                if not warc or warc in self._delivered:
                    ack.append(lease)
                    self._by_warc.get(warc or "", {}).pop(lease, None)
                    self._score.pop(lease, None)
                    continue
                self._by_warc.setdefault(warc, {})[lease] = True
                self._score[lease] = score
                if warc in self._finished_warcs:
                    retag.append((lease, warc))
            self._released += len(done)
            if ack or retag:
                self._redis(update)

    def _tag(self, lease: bytes, warc: str, done: bool) -> str:
        return f"{self.worker} {self._score.get(lease, '0')} {warc} {int(done)}"

    def _redis(self, commands: Any) -> None:
        """Commands in one transaction; a Redis failure stops this worker."""
        try:
            with self.server.pipeline(transaction=True) as pipe:
                commands(pipe)
                pipe.execute()
        except RedisError as exc:
            self.lose(exc)

    def _waiting(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._by_warc.values())

    def spider_idle(self) -> None:
        """Nothing to do here: the crawl goes on while it has requests queued or in hand."""
        if self.lost:
            return
        try:
            with self._lock:
                released, self._released = self._released, 0
            if released:
                self.server.hincrby(self.keys["busy"], self.worker, -released)
            done = self.script("done", [self.keys["seeded"], self.keys["requests"],
                                        self.keys["busy"], self.keys["workers"]],
                               [self.interval * 3])
        except RedisError as exc:
            self.lose(exc)
            return
        if not done:
            raise DontCloseSpider

    def lose(self, why: Exception | str) -> None:
        """Redis is gone (or took this worker for dead): no new work; what is in hand is
        finished and committed."""
        if self.lost:
            return
        self.lost = f"lost Redis at {self.job.redis} ({why})" if isinstance(why, Exception) \
            else why
        logger.error("%s: taking no new work, finishing %d request(s) in hand and committing "
                     "this worker's files", self.lost, len(self._held))
        from twisted.internet import reactor

        if threading.current_thread() is threading.main_thread():
            self._close()
        else:
            reactor.callFromThread(self._close)

    def _close(self) -> None:
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None:
            deferred_from_coro(engine.close_spider_async(reason="redis_lost"))

    # ---------------------------------------------------------------- seeding

    def seeded(self) -> bool:
        return bool(self.server.exists(self.keys["seeded"]))

    def mark_seeded(self) -> None:
        self.server.set(self.keys["seeded"], self.worker)

    def take_over_seeding(self) -> bool:
        return bool(self.script("take_seeding", [self.keys["seeded"], self.keys["seeder"],
                                                 self.keys["running"]], [self.worker]))

    # ---------------------------------------------------------------- writer and upload threads

    def finished(self, entries: list[FileEntry]) -> None:
        """A shard is finished, not uploaded yet: its files are recorded and its leases
        tagged with it (writer thread)."""
        warc = next(e.key for e in entries if e.kind == "warc")

        def record(pipe: Any) -> None:
            pipe.hset(self.keys["shards"], warc, json.dumps([e.as_json() for e in entries]))
            for lease, done in self._by_warc.get(warc, {}).items():
                pipe.hset(self.keys["leases"], lease, self._tag(lease, warc, done))

        with self._lock:
            self._finished_warcs.add(warc)
            if not self.lost:
                self._redis(record)

    def delivered(self, entries: list[FileEntry]) -> None:
        """A shard's files are in the store (upload thread): they are listed for the crawl's
        manifest, and the leases of its captures the engine is done with end, at once."""
        warc = next(e.key for e in entries if e.kind == "warc")
        done: list[bytes] = []

        def record(pipe: Any) -> None:
            for entry in entries:
                pipe.hset(self.keys["files"], entry.key, json.dumps(entry.as_json()))
            pipe.hdel(self.keys["shards"], warc)
            if done:
                pipe.hdel(self.keys["leases"], *done)

        with self._lock:
            self._delivered.add(warc)
            leases = self._by_warc.get(warc, {})
            done.extend(lease for lease, finished in leases.items() if finished)
            for lease in done:
                del leases[lease]
                self._score.pop(lease, None)
            if not leases:
                self._by_warc.pop(warc, None)
            if not self.lost:
                self._redis(record)

    def commit(self, reason: str, stats: dict[str, Any]) -> dict[str, Any]:
        """This worker's files are delivered: its list goes to the store, it leaves the crawl,
        and, when it is the last to finish a crawl that is done, writes the manifest (its
        extraction health from this worker's `stats` and every worker's text shards)."""
        from twisted.internet import reactor

        delivery = self.archive.delivery
        self._finished = True
        reactor.callFromThread(self._stop_heartbeat)
        own = [e.as_json() for e in delivery.files]
        store = delivery.store
        store.put_bytes(worker_files_key(self.job.crawl_id, self.worker),
                        json.dumps({"worker": self.worker, "files": own}).encode())
        last = 0  # 1: this worker writes the manifest (the _FINISH script)
        if not self.lost:
            with self._lock:  # every shard is delivered: what the engine left is done too
                leftover = [lease for w in self._delivered for lease in self._by_warc.pop(w, {})]
            if leftover:
                self._redis(lambda pipe: pipe.hdel(self.keys["leases"], *leftover))
            try:
                last = not self.lost and self.script("finish", [
                    self.keys[k] for k in ("running", "workers", "busy", "requests", "leases",
                                           "seeded")] + [redis_crawl_key(self.job.crawl_id,
                                                                          "committed")],
                    [self.worker])
            except RedisError as exc:
                self.lost = self.lost or f"lost Redis at {self.job.redis} ({exc})"
        if last == -1:
            logger.warning("crawl %s is left with requests queued or leased and no worker: the "
                           "next worker of the job completes it", self.job.crawl_id)
        if last == 1:
            delivery.include(self._crawl_files(store))
            manifest = delivery.commit(reason, stats)
            self._clear()
            return manifest
        return {"crawl_id": self.job.crawl_id, "worker": self.worker, "finish_reason": reason,
                "outlets": [o.name for o in self.job.outlets], "counts": dict(delivery.counts),
                "files": own, "spooled": [e["key"] for e in own
                                          if delivery.spool.path(e["key"]).exists()],
                "upload_failure": delivery.upload_failure, "redis_lost": self.lost}

    def _stop_heartbeat(self) -> None:
        if self.heartbeat.running:
            self.heartbeat.stop()

    def _crawl_files(self, store: Any) -> list[FileEntry]:
        """Every worker's delivered files: those listed in Redis (killed workers' included)
        and those in the workers' lists in the store."""
        found = {k.decode(): json.loads(v) for k, v in
                 self.server.hgetall(self.keys["files"]).items()}
        for info in store.list(worker_files_prefix(self.job.crawl_id)):
            with store.open(info.key) as f:
                found.update((e["key"], e) for e in json.load(f)["files"])
        return [FileEntry.from_json(found[k]) for k in sorted(found)]

    def _clear(self) -> None:
        """The crawl is committed: its keys go, and the job's next run is a new crawl."""
        try:
            with self.server.pipeline(transaction=True) as pipe:
                pipe.delete(*self.keys.values())
                pipe.expire(redis_crawl_key(self.job.crawl_id, "committed"), 86400)
                pipe.delete(redis_job_key(self.job.name))
                pipe.execute()
            for key in self.server.scan_iter(redis_crawl_key(self.job.crawl_id, "host:*")):
                self.server.delete(key)
        except RedisError as exc:
            logger.warning("the committed crawl's Redis keys were not cleared: %s", exc)


class _WatchedSet(set):
    """A set that calls `on_remove` with each item removed from it."""

    def __init__(self, items: set, on_remove: Any) -> None:
        super().__init__(items)
        self.on_remove = on_remove

    def remove(self, item: Any) -> None:
        super().remove(item)
        self.on_remove(item)


class LeasedPriorityQueue(PriorityQueue):
    """scrapy-redis's priority queue whose pop leases the request to this worker."""

    def __init__(self, server: Redis, spider: Any, key: str, serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        self.cluster: ClusterWorker = spider.crawler.get_extension(ClusterWorker)

    def encode(self, request: Request) -> bytes:
        return self._encode_request(request)

    def decode(self, data: bytes) -> Request:
        return self._decode_request(data)

    def pop(self, timeout: int = 0) -> Request | None:
        return self.cluster.lease(self)


class LeasingScheduler(Scheduler):
    """scrapy-redis's scheduler, on the leasing queue, its dupefilter check and push made one
    step; a Redis failure stops this worker cleanly instead of raising into the engine."""

    def enqueue_request(self, request: Request) -> bool:
        """scrapy-redis's dupefilter check and queue push, in one script."""
        fingerprint = "" if request.dont_filter else self.df.request_fingerprint(request)
        try:
            queued = self.queue.cluster.script(
                "push", [self.df.key, self.queue.key],
                [fingerprint, self.queue.encode(request), -request.priority])
        except RedisError as exc:
            self.queue.cluster.lose(exc)
            self.stats.inc_value("newsarchive/cluster/not_queued")
            return False
        if not queued:
            self.df.log(request, self.spider)
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def has_pending_requests(self) -> bool:
        cluster = self.queue.cluster
        if cluster.lost:
            return False
        try:
            return super().has_pending_requests()
        except RedisError as exc:
            cluster.lose(exc)
            return False


class SharedHostSlotMiddleware:
    """Per-host politeness for the whole job: before a request goes out, it takes the host's
    token in Redis (spaced by the outlet's delay or robots.txt's Crawl-delay) and one of its
    ``concurrency`` slots; a 429 or 503 holds the host for every worker. The local download
    slot keeps its concurrency but no delay of its own: the token spaces the requests."""

    def __init__(self, crawler: Crawler, cluster: ClusterWorker) -> None:
        self.crawler = crawler
        self.cluster = cluster
        self._serial = 0
        self._delays: dict[str, float] = {}  # download slot -> its delay, now the token's
        # one request per host and worker asks Redis at a time; the others wait here
        self._gates: dict[str, defer.DeferredLock] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedHostSlotMiddleware:
        cluster = crawler.get_extension(ClusterWorker)
        if cluster is None:
            raise NotConfigured("not a worker of a shared crawl")
        mw = cls(crawler, cluster)
        # however the download ended (a response, a redirect, an error), its slot is free
        crawler.signals.connect(mw.release, signal=signals.request_left_downloader)
        return mw

    async def process_request(self, request: Request) -> None:
        slot_name = request.meta.get("download_slot")
        settings = self.crawler.engine.downloader.per_slot_settings.get(slot_name)
        if settings is None or self.cluster.lost:
            return
        if slot_name not in self._delays:  # before the downloader builds the slot from them
            self._delays[slot_name] = settings.get("delay", 0.0)
            settings["delay"] = 0.0
        netloc = urlsplit(request.url).netloc
        gate = self._gates.setdefault(netloc, defer.DeferredLock())
        await maybe_deferred_to_future(gate.acquire())
        try:
            await self._take(request, netloc, self._delays[slot_name],
                             settings.get("concurrency", 1))
        finally:
            gate.release()

    async def _take(self, request: Request, netloc: str, delay: float, concurrency: int
                    ) -> None:
        self._serial += 1
        token = f"{self.cluster.worker}:{self._serial}"
        ttl = (request.meta.get("download_timeout") or 180) + 30
        while not self.cluster.lost:
            try:
                wait = float(self.cluster.script("take_slot", [
                    self._key(netloc, "next"), self._key(netloc, "slots"),
                    self.cluster.keys["hosts"]], [delay, concurrency, token, ttl, netloc]))
            except RedisError as exc:
                self.cluster.lose(exc)
                return
            if wait <= 0:
                request.meta["shared_slot"] = (netloc, token)
                return
            await maybe_deferred_to_future(_sleep(min(wait, MAX_HOLD)))

    def process_response(self, request: Request, response: Response) -> Response:
        self.cluster.captured(request)  # WarcCaptureMiddleware (950) has written it
        if response.status in (429, 503):
            wait = retry_after_seconds(response.headers.get(b"Retry-After"))
            if wait:
                self._hold(urlsplit(request.url).netloc, min(wait, MAX_HOLD))
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        self.release(request)  # refused before it reached the downloader

    def _hold(self, netloc: str, seconds: float) -> None:
        try:
            self.cluster.script("hold", [self._key(netloc, "next")], [seconds])
        except RedisError as exc:
            self.cluster.lose(exc)

    def release(self, request: Request) -> None:
        held = request.meta.pop("shared_slot", None)
        if held and not self.cluster.lost:
            try:
                self.cluster.server.zrem(self._key(held[0], "slots"), held[1])
            except RedisError as exc:
                self.cluster.lose(exc)

    def _key(self, netloc: str, what: str) -> str:
        return redis_crawl_key(self.cluster.job.crawl_id, host_key(netloc, what))


class SeedingMiddleware:
    """Start requests (start URLs, feeds, sitemaps, re-checks due) are queued by the worker
    that holds the seed lock only; the others read them (the spider resolves its outlets'
    addresses on the way) and drop them. A joiner takes over when the seeder died first."""

    def __init__(self, cluster: ClusterWorker) -> None:
        self.cluster = cluster

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SeedingMiddleware:
        cluster = crawler.get_extension(ClusterWorker)
        if cluster is None:
            raise NotConfigured("not a worker of a shared crawl")
        return cls(cluster)

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        cluster = self.cluster
        seeding = cluster.job.seeds
        first = await anext(start, None)  # the outlets' addresses are resolved by now
        cluster.ready = True
        try:
            while not seeding and not cluster.lost and not cluster.seeded():
                seeding = cluster.take_over_seeding()
                if seeding:
                    logger.warning("the crawl's seeder died before it was done: this worker "
                                   "seeds the crawl")
                else:
                    await maybe_deferred_to_future(_sleep(1.0))
        except RedisError as exc:
            cluster.lose(exc)
            return
        if first is None:
            if seeding:
                cluster.mark_seeded()
            return
        if seeding:
            yield first
        async for item in start:
            if seeding:
                yield item
        if seeding and not cluster.lost:
            try:
                cluster.mark_seeded()
            except RedisError as exc:
                cluster.lose(exc)


def _sleep(seconds: float) -> defer.Deferred:
    from twisted.internet import reactor  # here: importing it installs the default reactor

    d: defer.Deferred = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
