"""A crawl job: which outlets, under which crawl id, into which archive."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from crawler.config import Config, OutletConfig
from crawler.spool import JOBS_DIR, default_spool_dir


def make_crawl_id(job: str, moment: datetime) -> str:
    """``{job}-{UTC yyyymmddThhmmssZ}``, the archive's name for one run of a job."""
    return f"{job}-{moment.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


@dataclass(frozen=True)
class CrawlJob:
    name: str
    config: Config
    outlets: tuple[OutletConfig, ...]
    archive_uri: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def create(cls, config: Config, outlet_names: list[str] | tuple[str, ...] = (),
               archive_uri: str | None = None, name: str | None = None) -> CrawlJob:
        """Select outlets (all when none are named); the job is named after a lone outlet."""
        outlets = config.select(outlet_names)
        if not name:
            name = outlets[0].name if len(outlets) == 1 else "all"
        return cls(name=name, config=config, outlets=outlets,
                   archive_uri=archive_uri or config.archive.uri)

    @property
    def crawl_id(self) -> str:
        return make_crawl_id(self.name, self.started)

    @property
    def jobdir(self) -> Path:
        """Scrapy's JOBDIR for this crawl: its request queue on disk (memory stays flat however
        many URLs a sitemap lists) and its seen-requests, beside the spool. Removed when the
        crawl finishes; an interrupted crawl's stays."""
        spool = default_spool_dir(self.config.archive, self.archive_uri)
        return spool / JOBS_DIR / self.crawl_id

    @property
    def config_digest(self) -> str:
        """sha256 of the outlets' effective settings, recorded in warcinfo and the manifest."""
        data = json.dumps([asdict(o) for o in self.outlets], sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(data.encode()).hexdigest()
