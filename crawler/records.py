"""The records the archive holds, each shaped in one place: the text record, a manifest's file
entry and its text-shard statistics, the crawl manifest, a re-extraction's manifest, the run
record. Writers build them here; readers read the fields named here."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from crawler import __version__

if TYPE_CHECKING:
    from crawler.job import CrawlJob

MANIFEST_FORMAT = "newsarchive-manifest/1"
VERSION_FORMAT = "newsarchive-text-version/1"
SOFTWARE = f"newsarchive/{__version__} (Scrapy {version('scrapy')})"

# The text record's core fields, in their order: what a dump gives when no fields are named.
CORE_FIELDS = ("url", "outlet", "crawl_id", "fetched_at", "status", "title", "author", "date",
               "date_modified", "language", "language_expected", "sitename", "text", "warc_file",
               "warc_offset", "warc_length", "warc_record_id", "payload_digest", "text_digest")
# The core fields that hold a day (YYYY-MM-DD): typed as dates where a format has the type.
DATE_FIELDS = ("date", "date_modified")
# Metadata beside the core fields, when the page states it (lists may be empty).
METADATA_FIELDS = ("authors", "description", "tags", "categories")


def iso(moment: datetime) -> str:
    """The archive's timestamps: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_pointer(warc_key: str, offset: int, length: int, record_id: str,
                   payload_digest: str | None, date: str) -> dict[str, Any]:
    """Where a response record is (its gzip member) and when it was fetched (its WARC-Date, to
    the second), as text records point at it."""
    return {"warc_file": warc_key, "warc_offset": offset, "warc_length": length,
            "warc_record_id": record_id, "payload_digest": payload_digest,
            "fetched_at": date[:19] + "Z"}


def text_record(page: Mapping[str, Any], extracted: Mapping[str, Any],
                crawl_id: str) -> dict[str, Any]:
    """The text record: page identity, extracted fields, pointer to the capture, revision.

    `page` is what the spider hands over (url, outlet, status, language, canonical_url,
    listed_date, previous_text, and ``capture``: a ``record_pointer``)."""
    capture = page["capture"]
    record = {
        "url": page["url"],
        "outlet": page["outlet"],
        "crawl_id": crawl_id,
        "fetched_at": capture["fetched_at"],
        "status": page["status"],
        **{k: extracted.get(k) for k in ("title", "author", "date", "date_modified", "language",
                                          "sitename", "text")},
        **{k: capture[k] for k in ("warc_file", "warc_offset", "warc_length", "warc_record_id",
                                   "payload_digest")},
        "text_digest": extracted["text_digest"],
    }
    record["language_expected"] = page.get("language")
    record["canonical_url"] = page.get("canonical_url")
    record["listed_date"] = page.get("listed_date")  # the feed/sitemap date, if any
    record.update({k: extracted.get(k) for k in METADATA_FIELDS})
    previous = page.get("previous_text")  # the archive's latest text of this URL, now edited
    record["revision"] = previous["revision"] + 1 if previous else 1
    record["previous_revision"] = {k: previous[k] for k in (
        "crawl_id", "warc_record_id", "fetched_at", "digest")} if previous else None
    return record


@dataclass(frozen=True)
class FileEntry:
    """One file of a manifest's ``files``: key, size, sha256, kind (warc, index, text) and what
    its kind adds (a WARC's record counts, a text shard's ``TextStats``)."""

    key: str
    size: int
    sha256: str
    kind: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "size": self.size, "sha256": self.sha256, "kind": self.kind,
                **self.extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileEntry:
        extra = {k: v for k, v in data.items() if k not in ("key", "size", "sha256", "kind")}
        return cls(data["key"], data["size"], data["sha256"], data["kind"], extra)


class TextStats:
    """What a text shard holds, for its manifest entry: dump picks shards without opening them."""

    def __init__(self) -> None:
        self.records = 0
        self.outlets: Counter = Counter()
        self.languages: Counter = Counter()
        self.dates: list[str] = []  # [min, max] published (or fetched) date

    def add(self, record: Mapping[str, Any]) -> None:
        self.records += 1
        self.outlets[record.get("outlet")] += 1
        self.languages[record.get("language") or "und"] += 1
        day = record.get("date") or (record.get("fetched_at") or "")[:10]
        if day:
            self.dates = [min(self.dates[0], day), max(self.dates[1], day)] if self.dates \
                else [day, day]

    def metadata(self) -> dict[str, Any]:
        return {"records": self.records,
                "outlets": dict(sorted((k, v) for k, v in self.outlets.items() if k)),
                "languages": dict(sorted(self.languages.items())),
                "date_range": self.dates or None}


def crawl_manifest(*, crawl_id: str, job: str, started: datetime, ended: datetime,
                   finish_reason: str, archive: str, config_digest: str, outlets: Iterable[str],
                   counts: Mapping[str, int], files: Iterable[FileEntry]) -> dict[str, Any]:
    """The crawl's manifest: written last, it commits the crawl."""
    return {
        "format": MANIFEST_FORMAT,
        "crawl_id": crawl_id,
        "job": job,
        "software": SOFTWARE,
        "started": iso(started),
        "ended": iso(ended),
        "finish_reason": finish_reason,
        "archive": archive,
        "config_digest": config_digest,
        "outlets": list(outlets),
        "counts": dict(sorted(counts.items())),
        "files": [f.as_json() for f in files],
    }


def text_version_manifest(*, crawl_id: str, version: int, extraction: Mapping[str, Any],
                          counts: Mapping[str, int], files: Iterable[FileEntry]
                          ) -> dict[str, Any]:
    """A re-extraction's manifest (``text/vN/manifest.json``): written last, it commits the
    version; its ``files`` are shaped as the crawl manifest's text entries."""
    return {
        "format": VERSION_FORMAT,
        "crawl_id": crawl_id,
        "version": version,
        "created": iso(datetime.now(UTC)),
        "software": SOFTWARE,
        "extraction": dict(extraction),
        "counts": dict(counts),
        "files": [f.as_json() for f in files],
    }


def run_record(job: CrawlJob, result: Mapping[str, Any], stats: Mapping[str, Any],
               exit_code: int) -> dict[str, Any]:
    """The record of one finished (or failed) crawl in ``state/runs.jsonl``; `result` is the
    committed manifest, or empty when the crawl never committed."""
    fetch_errors = sum(v for k, v in stats.items()
                       if k.startswith("newsarchive/outlet/") and "/errors/" in k)
    errors: dict[str, Any] = {"fetch": fetch_errors, "logged": stats.get("log_count/ERROR", 0)}
    if result.get("upload_failure"):
        errors["upload"] = result["upload_failure"]
    if failures := extraction_failures(stats):
        errors["extraction"] = failures
    return {
        "job": job.name,
        "crawl_id": job.crawl_id,
        "outlets": [o.name for o in job.outlets],
        "start": iso(job.started),
        "end": result.get("ended") or iso(datetime.now(UTC)),
        "counts": result.get("counts", {}),
        "errors": errors,
        "exit_reason": result.get("finish_reason") or "failed",
        "exit_code": exit_code,
    }


def extraction_failures(stats: Mapping[str, Any]) -> int:
    """Articles of a crawl left without text: their extraction failed (an error, a timeout, a
    pool that broke on every try) or their text record could not be written."""
    return sum(v for k, v in stats.items()
               if k.startswith("newsarchive/outlet/") and k.endswith("/articles/failed"))
