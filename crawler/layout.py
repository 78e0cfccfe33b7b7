"""Where things live: every archive key and every local spool path is spelled here, and only here.

The archive (a local directory or an S3 prefix)::

    crawls/{crawl_id}/warc/{basename}.warc.gz       WARC/1.1, rotated
    crawls/{crawl_id}/index/{basename}.cdxj         its CDXJ index
    crawls/{crawl_id}/text/{basename}.jsonl.gz      its text records
    crawls/{crawl_id}/text/v{N}/{basename}.jsonl.gz a re-extraction, committed by
    crawls/{crawl_id}/text/v{N}/manifest.json       its manifest
    crawls/{crawl_id}/manifest.json                 the crawl's commit marker, written last
    state/urls/{outlet}/{0-f}.jsonl.gz              what the archive holds per URL
    state/runs.jsonl                                one line per crawl run
    state/workers/{crawl_id}/{worker}.json          the files one worker of a shared crawl
                                                    delivered (read by the manifest's writer)

The spool (local) mirrors archive keys for files that wait for the store, beside directories that
are never uploaded: ``jobs/{crawl_id}/`` (a crawl's work directory) and ``tmp/`` (readers'
scratch files).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from crawler.config import ArchiveConfig

CRAWLS = "crawls/"
MANIFEST_NAME = "manifest.json"
STATE_URLS = "state/urls"
RUNS_KEY = "state/runs.jsonl"
WORKERS_STATE = "state/workers"

JOBS_DIR = "jobs"  # in the spool: crawls' work directories (job, journal, Scrapy JOBDIR)
TMP_DIR = "tmp"  # in the spool: scratch files of readers (reextract)
LOCAL_DIRS = (JOBS_DIR, TMP_DIR)  # spool directories that are never uploaded
UNFINISHED = (".open", ".part", ".unsorted")  # files being written: never uploaded as they are

# In a crawl's work directory (``jobs/{crawl_id}/``):
JOB_FILE = "job.json"  # the job's description, read by --resume
JOURNAL_FILE = "state.jsonl"  # the crawl's state observations, merged into state/urls/
FILES_FILE = "files.jsonl"  # the files the crawl finished
STATE_INDEX_FILE = "state.sqlite"  # the archive's URL state, copied when the crawl opens
PAYLOADS_FILE = "payloads.sqlite"  # the first capture of each requisite payload in the crawl
QUEUE_DIR = "queue"  # Scrapy's JOBDIR

SHARD_SUFFIXES = {"warc": ".warc.gz", "index": ".cdxj", "text": ".jsonl.gz"}


# ---------------------------------------------------------------- archive keys


def crawl_prefix(crawl_id: str) -> str:
    return f"crawls/{crawl_id}"


def manifest_key(crawl_id: str) -> str:
    return f"crawls/{crawl_id}/{MANIFEST_NAME}"


def shard_basename(crawl_id: str, serial: int, host: str) -> str:
    """``{crawl_id}-{serial:05d}-{host}``: a WARC, its index and its text shard share it."""
    return f"{crawl_id}-{serial:05d}-{host}"


def shard_keys(crawl_id: str, basename: str) -> dict[str, str]:
    """The three files of one shard: ``warc``, ``index``, ``text``."""
    return {kind: f"crawls/{crawl_id}/{kind}/{basename}{suffix}"
            for kind, suffix in SHARD_SUFFIXES.items()}


def basename(key: str) -> str:
    """``crawls/ID/warc/NAME.warc.gz`` (or its index or text shard) -> ``NAME``."""
    name = key.rsplit("/", 1)[-1]
    for suffix in SHARD_SUFFIXES.values():
        name = name.removesuffix(suffix)
    return name


def crawl_id_of(key: str) -> str | None:
    """The crawl a key belongs to (``crawls/ID/...``), else None."""
    parts = key.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == CRAWLS.rstrip("/") else None


def text_versions_prefix(crawl_id: str) -> str:
    """Listing this finds every re-extraction of a crawl."""
    return f"crawls/{crawl_id}/text/v"


def text_version_key(crawl_id: str, version: int, basename: str) -> str:
    return f"crawls/{crawl_id}/text/v{version}/{basename}{SHARD_SUFFIXES['text']}"


def text_version_manifest_key(crawl_id: str, version: int) -> str:
    return f"crawls/{crawl_id}/text/v{version}/{MANIFEST_NAME}"


def committed_text_version(key: str) -> int | None:
    """N when `key` is the manifest of re-extraction N (``crawls/ID/text/vN/manifest.json``)."""
    parts = key.split("/")
    if len(parts) == 5 and parts[2] == "text" and parts[4] == MANIFEST_NAME \
            and parts[3][:1] == "v" and parts[3][1:].isdigit():
        return int(parts[3][1:])
    return None


def state_prefix(outlet: str) -> str:
    return f"{STATE_URLS}/{outlet}/"


def state_outlet_of(key: str) -> str | None:
    """The outlet of a state shard's key (``state/urls/{outlet}/{h}.jsonl.gz``), else None."""
    parts = key.split("/")
    return parts[2] if len(parts) == 4 and "/".join(parts[:2]) == STATE_URLS else None


def worker_files_key(crawl_id: str, worker: str) -> str:
    """The files one worker of a shared crawl delivered: the manifest's writer lists them, so
    the crawl's file list never lives in Redis alone."""
    return f"{WORKERS_STATE}/{crawl_id}/{worker}.json"


def worker_files_prefix(crawl_id: str) -> str:
    return f"{WORKERS_STATE}/{crawl_id}/"


def state_shard_key(outlet: str, url: str, digits: int = 1) -> str:
    """An outlet's state is sharded by the first hex digit(s) of the URL's sha1."""
    digit = hashlib.sha1(url.encode()).hexdigest()[:digits]
    return f"{STATE_URLS}/{outlet}/{digit}.jsonl.gz"


# ---------------------------------------------------------------- the local spool


def default_spool_dir(config: ArchiveConfig, uri: str) -> Path:
    """``[archive] spool``, else ``ARCHIVE/.spool`` for a local archive (same filesystem, so
    delivery is a rename), else a per-bucket directory under ``$XDG_STATE_HOME/newsarchive``."""
    if config.spool:
        return Path(config.spool).expanduser()
    if not uri.startswith("s3://"):
        return Path(uri.removeprefix("file://")).expanduser() / ".spool"
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    slug = uri.removeprefix("s3://").strip("/").replace("/", "_") or "bucket"
    suffix = hashlib.sha1((config.endpoint_url or "aws").encode()).hexdigest()[:8]
    return Path(state) / "newsarchive" / "spool" / f"{slug}-{suffix}"


def jobs_dir(spool: Path) -> Path:
    return spool / JOBS_DIR


def job_dir(spool: Path, crawl_id: str, worker: str | None = None) -> Path:
    """A crawl's work directory: kept until the crawl is committed and its state merged. Each
    worker of a shared crawl has its own, inside the crawl's (``jobs/{crawl_id}/{worker}``)."""
    crawl = spool / JOBS_DIR / crawl_id
    return crawl / worker if worker else crawl


def job_files(spool: Path) -> list[tuple[str, Path]]:
    """``(crawl_id, job.json)`` of every work directory in the spool (workers' included)."""
    jobs = jobs_dir(spool)
    found = [(f.parent.name, f) for f in jobs.glob(f"*/{JOB_FILE}")]
    found += [(f.parent.parent.name, f) for f in jobs.glob(f"*/*/{JOB_FILE}")]
    return sorted(found, key=lambda pair: str(pair[1]))


def tmp_dir(spool: Path) -> Path:
    """Scratch space on the spool's filesystem that no delivery ever picks up."""
    return spool / TMP_DIR


# ---------------------------------------------------------------- Redis (a shared crawl's frontier)

REDIS_PREFIX = "newsarchive"


def redis_job_key(job: str) -> str:
    """Which crawl the workers of a job join: ``{crawl_id, started}`` (deleted at the commit)."""
    return f"{REDIS_PREFIX}:job:{job}"


def redis_job_pattern() -> str:
    return f"{REDIS_PREFIX}:job:*"


def redis_crawl_key(crawl_id: str, name: str) -> str:
    """One of a shared crawl's keys: ``requests`` and ``dupefilter`` (scrapy-redis's layout),
    ``leases``, ``busy``, ``workers``, ``running``, ``files``, ``seeder``, ``seeded``, ``hosts``,
    ``host:{netloc}``, ``committed``."""
    return f"{REDIS_PREFIX}:{crawl_id}:{name}"
