"""Which crawl ``crawl --resume`` continues: crawls killed before they committed are found by
the work directories they left beside the spool (their ``job.json``), without a manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crawler.config import ArchiveConfig
from crawler.errors import UsageError
from crawler.job import CrawlJob
from crawler.layout import JOB_FILE, default_spool_dir, jobs_dir, manifest_key
from crawler.store.backends import ArchiveStore, open_store


def interrupted_crawls(archive: ArchiveConfig, uri: str, store: ArchiveStore
                       ) -> list[dict[str, Any]]:
    """Crawls killed before they committed, oldest first: their saved job (``job.json``) with
    ``jobdir``. A crawl whose manifest exists (here or in the store) is not one of them."""
    spool = default_spool_dir(archive, uri)
    found = []
    for job_file in sorted(jobs_dir(spool).glob(f"*/{JOB_FILE}")):
        crawl_id = job_file.parent.name
        manifest = manifest_key(crawl_id)
        if (spool / manifest).exists() or store.stat(manifest) is not None:
            continue
        try:
            saved = json.loads(job_file.read_text("utf-8"))
        except ValueError:
            continue
        found.append({**saved, "jobdir": job_file.parent})
    return sorted(found, key=lambda s: s["started"])


def find_interrupted(job: CrawlJob, which: str, store: ArchiveStore) -> Path | None:
    """The work directory of the crawl to resume: `which` is a crawl id, or ``latest`` for the
    newest interrupted crawl of the job's name."""
    crawls = interrupted_crawls(job.config.archive, job.archive_uri, store)
    if which != "latest":
        return next((c["jobdir"] for c in crawls if c["crawl_id"] == which), None)
    mine = [c for c in crawls if c["job"] == job.name]
    return mine[-1]["jobdir"] if mine else None


def interrupted_jobdir(job: CrawlJob, which: str) -> Path:
    """The work directory of the interrupted crawl to resume, or a one-line error."""
    jobdir = find_interrupted(job, which, open_store(job.config.archive, job.archive_uri))
    if jobdir is None:
        what = f"crawl {which}" if which != "latest" else f"crawl of job {job.name!r}"
        raise UsageError(f"no interrupted {what} to resume (nothing left unfinished in "
                         f"{job.jobdir.parent})")
    return jobdir
