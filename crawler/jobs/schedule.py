"""Start each outlet's crawl on its cron ``schedule`` (`newsarchive schedule`).

Every run is ``newsarchive crawl OUTLET`` in a subprocess of its own: a Scrapy CrawlerProcess
runs once per Python process, and a crashing crawl cannot take the scheduler (or another
outlet's crawl) down with it. Crawls run in their own session, so a Ctrl-C in the terminal
reaches only the scheduler, which forwards it once: each crawl then stops gracefully (in-flight
requests finish, files are closed, uploaded and committed with finish_reason "shutdown").

Cron expressions are the standard five fields (or ``@hourly``, ``@daily``...), evaluated in the
machine's local time zone, like cron.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import CroniterError, croniter

from crawler.config import Config
from crawler.errors import ConfigError, StoreError
from crawler.health import alert_lines
from crawler.jobs.resume import interrupted_crawls
from crawler.layout import default_spool_dir
from crawler.store.backends import ArchiveStore, open_store
from crawler.store.run_records import last_runs, parse_iso
from crawler.store.spool import Spool

logger = logging.getLogger("newsarchive.schedule")

# What the `newsarchive` console script runs, with this interpreter (`python -m crawler.cli.main`
# would also configure logging, and show the crawls' debug logs).
_MAIN = "import sys; from crawler.cli.main import main; sys.exit(main())"


@dataclass
class ScheduledJob:
    outlet: str
    cron: str
    next_due: datetime | None = None
    process: subprocess.Popen | None = None
    started: float = 0.0
    started_at: datetime | None = None  # wall clock, to know the run record of this run
    forwarded: int = 0             # stop signals passed on to the running crawl
    codes: list[int] = field(default_factory=list)


def run_schedule(config: Config, archive_uri: str, crawl_options: list[str],
                 once: bool = False, metrics_port: int | None = None) -> int:
    """Run the outlets' crawls on their schedules: until stopped, or (`once`) the due ones and
    wait for them. Each crawl gets `crawl_options` on its command line; `metrics_port` serves
    Prometheus metrics on 127.0.0.1. 0 if all went well."""
    jobs = scheduled_jobs(config)
    if not jobs:
        logger.warning("%s: no outlet has a schedule; nothing to do", config.source)
        return 0
    store = open_store(config.archive, archive_uri)
    metrics = None
    if metrics_port is not None:
        from crawler.jobs.metrics import ScheduleMetrics

        metrics = ScheduleMetrics(metrics_port,
                                  Spool(default_spool_dir(config.archive, archive_uri)))
        logger.info("metrics at http://127.0.0.1:%d/metrics", metrics.server.server_port)
    scheduler = Scheduler(jobs, crawl_options, _interrupted(config, archive_uri, store),
                          store=store, metrics=metrics)
    try:
        if once:
            return scheduler.run_once(last_runs(store))
        return scheduler.run_forever()
    finally:
        if metrics is not None:
            metrics.close()


def _interrupted(config: Config, uri: str, store: ArchiveStore) -> set[str]:
    """Outlets whose last crawl was killed before it committed: resumed before anything else."""
    try:
        crawls = interrupted_crawls(config.archive, uri, store)
    except StoreError as exc:
        logger.warning("interrupted crawls not looked for (%s)", exc)
        return set()
    return {c["job"] for c in crawls}


def scheduled_jobs(config: Config) -> list[ScheduledJob]:
    """A job per outlet with a schedule; every cron expression is checked before anything runs."""
    jobs = []
    for i, outlet in enumerate(config.outlets):
        if outlet.schedule is None:
            logger.info("%s: no schedule; not scheduled", outlet.name)
            continue
        jobs.append(ScheduledJob(outlet.name,
                                 check_cron(outlet.schedule, config.source,
                                            f"outlets[{i}].schedule")))
    return jobs


def check_cron(expr: str, source: str, key: str) -> str:
    """The expression, if it is a standard cron expression; else a ConfigError naming `key`."""
    fields = expr.split()
    if not (len(fields) == 5 or (len(fields) == 1 and expr.strip().startswith("@"))):
        raise ConfigError(source, key, f"{expr!r} is not a cron expression: it needs 5 fields "
                          "(minute hour day-of-month month day-of-week) or @hourly, @daily...")
    try:
        croniter(expr)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ConfigError(source, key, f"{expr!r} is not a valid cron expression: {exc}") from None
    return expr.strip()


def cron_due(cron: str, last_start: datetime | None, now: datetime) -> bool:
    """True if the schedule matched at least once after `last_start` and up to `now`."""
    if last_start is None:
        return True
    return croniter(cron, now).get_prev(datetime) > last_start


class Scheduler:
    """Starts crawls as subprocesses, never two of one outlet at a time, and stops them cleanly."""

    def __init__(self, jobs: list[ScheduledJob], crawl_options: list[str],
                 interrupted: Iterable[str] = (), store: ArchiveStore | None = None,
                 metrics: Any = None) -> None:
        self.jobs = jobs
        self.crawl_options = crawl_options
        self.interrupted = set(interrupted)  # outlets whose killed crawl is resumed first
        self.stop_signals: list[int] = []
        self.store = store  # where each ended crawl's run record is read (health, metrics)
        self.metrics = metrics

    # ---------------------------------------------------------------- modes

    def run_forever(self) -> int:
        self._handle_signals()
        now = _now()
        for job in self.jobs:
            job.next_due = croniter(job.cron, now).get_next(datetime)
            logger.info("%s: schedule %r, next run at %s", job.outlet, job.cron,
                        job.next_due.isoformat(timespec="seconds"))
        self._resume_interrupted()
        while not self.stop_signals:
            self._reap()
            now = _now()
            for job in self.jobs:
                assert job.next_due is not None
                if job.next_due > now or self.stop_signals:
                    continue
                if job.process is not None:
                    logger.warning("%s: the run started %.0f s ago is still going; skipping the "
                                   "run due at %s", job.outlet, time.monotonic() - job.started,
                                   job.next_due.isoformat(timespec="seconds"))
                else:
                    self._start(job)
                job.next_due = croniter(job.cron, now).get_next(datetime)
            wait = min(j.next_due for j in self.jobs if j.next_due) - _now()
            time.sleep(min(1.0, max(wait.total_seconds(), 0.05)))
        self._wait_all()
        return 0

    def run_once(self, last: dict[str, dict[str, Any]]) -> int:
        """Start every due job (see `cron_due`), wait for all of them, exit."""
        self._handle_signals()
        self._resume_interrupted()
        now = _now()
        for job in self.jobs:
            record = last.get(job.outlet)
            started = parse_iso(record["start"]) if record and record.get("start") else None
            if job.process is not None:
                continue  # resuming its interrupted crawl
            if not cron_due(job.cron, started, now):
                logger.info("%s: not due (last run %s, schedule %r)", job.outlet,
                            record["crawl_id"] if record else "-", job.cron)
            elif not self.stop_signals:
                self._start(job)
        self._wait_all()
        return 1 if any(c != 0 for job in self.jobs for c in job.codes) else 0

    # ---------------------------------------------------------------- processes

    def _resume_interrupted(self) -> None:
        for job in self.jobs:
            if job.outlet in self.interrupted and not self.stop_signals:
                self._start(job, resume=True)

    def _start(self, job: ScheduledJob, resume: bool = False) -> None:
        command = [sys.executable, "-c", _MAIN, "crawl", job.outlet, *self.crawl_options,
                   *(["--resume"] if resume else [])]
        job.started_at = datetime.now(UTC).replace(microsecond=0)
        job.process = subprocess.Popen(command, start_new_session=True)
        job.started = time.monotonic()
        job.forwarded = 0
        logger.info("%s: crawl %s (pid %d)", job.outlet,
                    "resumed after an interruption" if resume else "started", job.process.pid)
        self._forward()  # a stop signal may have come while it was starting

    def _reap(self) -> None:
        for job in self.jobs:
            if job.process is None or (code := job.process.poll()) is None:
                continue
            took = time.monotonic() - job.started
            how = f"exit code {code}" if code >= 0 else f"killed by signal {-code}"
            log = logger.info if code == 0 else logger.warning
            log("%s: crawl (pid %d) ended after %.0f s, %s", job.outlet, job.process.pid, took,
                how)
            job.codes.append(code)
            job.process = None
            self._ended(job, code)

    def _ended(self, job: ScheduledJob, code: int) -> None:
        """A crawl ended: its health flags as warning lines (``HEALTH outlet=...``), its figures
        to the metrics; both from its run record."""
        if self.store is None:
            return
        try:
            record = last_runs(self.store).get(job.outlet)
        except StoreError as exc:
            logger.warning("%s: run record not read (%s)", job.outlet, exc)
            record = None
        if record and job.started_at and parse_iso(record.get("start") or "1970-01-01T00:00:00Z"
                                                   ) < job.started_at:
            record = None  # an earlier run's: this one left none
        if record:
            for line in alert_lines(record["crawl_id"],
                                    {job.outlet: (record.get("health") or {}).get(job.outlet)
                                     or {}}):
                logger.warning("%s", line)
        if self.metrics is not None:
            self.metrics.crawl_ended(job.outlet, code, record)

    def _wait_all(self) -> None:
        running = [j.outlet for j in self.jobs if j.process is not None]
        if running:
            logger.info("waiting for %s to finish", ", ".join(running))
        while any(j.process is not None for j in self.jobs):
            self._reap()
            time.sleep(0.2)
        if self.stop_signals:
            logger.info("stopped")

    # ---------------------------------------------------------------- signals

    def _handle_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop_signals.append(signum)
        name = signal.Signals(signum).name
        if len(self.stop_signals) == 1:
            logger.info("%s: no new crawls; running crawls are asked to stop gracefully", name)
        else:
            logger.warning("%s again: running crawls are asked to stop NOW (unclean)", name)
        self._forward()

    def _forward(self) -> None:
        """Pass every stop signal received so far to each running crawl, exactly once."""
        for job in self.jobs:
            while job.process is not None and job.forwarded < len(self.stop_signals):
                job.process.send_signal(self.stop_signals[job.forwarded])
                job.forwarded += 1


def _now() -> datetime:
    return datetime.now().astimezone()
