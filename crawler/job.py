"""A crawl job: which outlets, under which crawl id, into which archive.

A running crawl keeps a description of itself (``job.json``) in its local work directory, so a
crawl killed mid-way can be resumed under the same crawl id with the same outlets and overrides.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawler.config import NAME_RULE, OUTLET_NAME, Config, OutletConfig
from crawler.errors import ConfigError, UsageError
from crawler.files import write_durably
from crawler.layout import JOB_FILE, QUEUE_DIR, default_spool_dir, job_dir


def make_crawl_id(job: str, moment: datetime) -> str:
    """``{job}-{UTC yyyymmddThhmmssZ}``, the archive's name for one run of a job."""
    return f"{job}-{moment.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def crawl_time(crawl_id: str) -> str:
    """``job-20260807T101500Z`` -> ``20260807T101500Z``: when it started, sorting as time."""
    return crawl_id.rsplit("-", 1)[-1]


@dataclass(frozen=True)
class CrawlJob:
    name: str
    config: Config
    outlets: tuple[OutletConfig, ...]
    archive_uri: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    recheck: bool = False  # re-check every archived article now, whatever the policy says
    overrides: tuple[tuple[str, Any], ...] = ()  # command-line crawl settings for every outlet
    resume: bool = False  # continue the interrupted crawl of this id
    # one worker of a crawl shared through Redis (crawler.jobs.cluster): the Redis URL, this
    # worker's id (in its file names) and whether it seeds the crawl or joins it
    redis: str | None = None
    worker: str | None = None
    seeds: bool = True

    @classmethod
    def create(cls, config: Config, outlet_names: list[str] | tuple[str, ...] = (),
               archive_uri: str | None = None, name: str | None = None, *,
               overrides: dict[str, Any] | None = None, recheck: bool = False) -> CrawlJob:
        """Select outlets (all when none are named); the job is named after a lone outlet.
        `overrides` replace crawl settings of every outlet (``--max-pages``, ``--since``).
        A job name is checked as outlet names are: it becomes the crawl id, a path and a key."""
        if name and not OUTLET_NAME.fullmatch(name):
            raise UsageError(f"job name {name!r} {NAME_RULE}")
        outlets = config.select(outlet_names)
        if overrides:
            outlets = tuple(replace(o, crawl=replace(o.crawl, **overrides)) for o in outlets)
        if not name:
            name = outlets[0].name if len(outlets) == 1 else "all"
        return cls(name=name, config=config, outlets=outlets,
                   archive_uri=archive_uri or config.archive.uri, recheck=recheck,
                   overrides=tuple(sorted((overrides or {}).items())))

    @classmethod
    def resumed(cls, config: Config, jobdir: Path) -> CrawlJob:
        """The interrupted crawl described in `jobdir`, with today's config of its outlets."""
        source = jobdir / JOB_FILE
        try:
            saved = json.loads(source.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(str(source), "", f"cannot resume from it: {exc}") from None
        job = cls.create(config, saved["outlets"], saved["archive"], saved["job"],
                         overrides=dict(saved.get("overrides") or {}),
                         recheck=saved.get("recheck", False))
        return replace(job, started=datetime.fromisoformat(saved["started"]), resume=True)

    def save(self) -> None:
        """Write ``job.json`` into the work directory (whole and durably): what ``resumed``
        reads."""
        self.jobdir.mkdir(parents=True, exist_ok=True)
        data = {"crawl_id": self.crawl_id, "job": self.name, "started": self.started.isoformat(),
                "outlets": [o.name for o in self.outlets], "archive": self.archive_uri,
                "overrides": dict(self.overrides), "recheck": self.recheck}
        write_durably(self.jobdir / JOB_FILE, json.dumps(data, indent=1).encode("utf-8"))

    @property
    def crawl_id(self) -> str:
        return make_crawl_id(self.name, self.started)

    @property
    def jobdir(self) -> Path:
        """The crawl's local work directory, beside the spool: its description, state journal,
        file list and request queue (a shared crawl's worker has its own, inside the crawl's).
        Removed once the crawl is committed and its state merged; a killed crawl's stays for
        ``--resume``."""
        return job_dir(default_spool_dir(self.config.archive, self.archive_uri), self.crawl_id,
                       self.worker)

    @property
    def queue_dir(self) -> Path:
        """Scrapy's JOBDIR: the request queue on disk, so memory stays flat however many URLs a
        sitemap lists."""
        return self.jobdir / QUEUE_DIR

    @property
    def config_digest(self) -> str:
        """sha256 of the outlets' effective settings, recorded in warcinfo and the manifest."""
        data = json.dumps([asdict(o) for o in self.outlets], sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(data.encode()).hexdigest()
