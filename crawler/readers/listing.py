"""Reading the archive: completed crawls (those with a manifest) and their text records."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from isal import isal_zlib

from crawler.errors import ArchiveError, StoreError
from crawler.job import crawl_time
from crawler.layout import (
    CRAWLS,
    committed_text_version,
    crawl_id_of,
    manifest_key,
    text_version_manifest_key,
    text_versions_prefix,
)
from crawler.store.backends import ArchiveStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrawlListing:
    crawl_id: str
    manifest: dict[str, Any] | None  # None: incomplete (no commit marker yet), or broken
    objects: int
    size: int
    broken: str | None = None  # why its manifest cannot be read (empty, torn by a power cut)


def list_crawls(store: ArchiveStore) -> list[CrawlListing]:
    """Every crawl in the archive, complete or not, oldest first. A crawl whose manifest cannot
    be read is listed as broken, so that one bad file never hides the rest of the archive."""
    return list(iter_crawls(store))


def iter_crawls(store: ArchiveStore) -> Iterator[CrawlListing]:
    """`list_crawls` one crawl at a time: a reader of every manifest holds one at once."""
    objects = _crawl_objects(store)
    for crawl_id in _oldest_first(objects):
        key = manifest_key(crawl_id)
        manifest, broken = None, None
        if store.stat(key):
            try:
                manifest = read_json(store, key)
            except ArchiveError as exc:
                broken = str(exc)
        yield CrawlListing(crawl_id, manifest, len(objects[crawl_id]), sum(objects[crawl_id]),
                           broken)


def crawl_ids(store: ArchiveStore) -> list[str]:
    """Crawl ids with any object in the archive, complete or not, oldest first."""
    return _oldest_first(_crawl_objects(store))


def _crawl_objects(store: ArchiveStore) -> dict[str, list[int]]:
    """Each crawl's objects' sizes."""
    objects: dict[str, list[int]] = {}
    for info in store.list(CRAWLS):
        crawl_id = crawl_id_of(info.key)
        if crawl_id:
            objects.setdefault(crawl_id, []).append(info.size)
    return objects


def _oldest_first(crawl_ids: Iterable[str]) -> list[str]:
    return sorted(crawl_ids, key=lambda c: (crawl_time(c), c))


def read_json(store: ArchiveStore, key: str) -> dict[str, Any]:
    """A manifest (or another small JSON object) of the archive; `ArchiveError` when it is not
    a JSON object (empty, or torn)."""
    with store.open(key) as f:
        data = f.read()
    try:
        value = json.loads(data)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        what = "empty" if not data.strip() else f"not valid JSON ({exc})"
        raise ArchiveError(f"{key}: {what}") from None
    if not isinstance(value, dict):
        raise ArchiveError(f"{key}: not a JSON object")
    return value


def complete_crawls(store: ArchiveStore, crawl_ids: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Manifests of the completed crawls (all, or those named); incomplete ones are ignored,
    broken ones skipped with a warning."""
    return committed(list_crawls(store), crawl_ids)


def committed(listings: Iterable[CrawlListing], crawl_ids: Iterable[str] = ()
              ) -> list[dict[str, Any]]:
    """The manifests of the listed crawls that committed (all, or those named); a crawl whose
    manifest is broken is skipped with a one-line warning."""
    wanted = set(crawl_ids)
    manifests = []
    for c in listings:
        if wanted and c.crawl_id not in wanted:
            continue
        if c.broken:
            logger.warning("crawl %s skipped: its manifest is broken (%s)", c.crawl_id, c.broken)
        elif c.manifest is not None:
            manifests.append(c.manifest)
    return manifests


def text_entries(store: ArchiveStore, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The text shards readers use for a crawl: those of its newest complete re-extraction.

    The crawl's own manifest lists version 1 (``text/NAME.jsonl.gz``). ``reextract`` writes
    version N as ``text/vN/NAME.jsonl.gz`` and then ``text/vN/manifest.json`` (its commit
    marker, with the same per-shard ``files`` entries); a version without that marker is
    ignored, so a half-done re-extraction never hides the previous text.
    """
    versions = text_versions(store, manifest["crawl_id"])
    if versions:
        key = text_version_manifest_key(manifest["crawl_id"], versions[-1])
        return read_json(store, key)["files"]
    return [entry for entry in manifest["files"] if entry["kind"] == "text"]


def text_versions(store: ArchiveStore, crawl_id: str) -> list[int]:
    """The committed re-extraction versions of a crawl (those with their manifest), ascending."""
    return sorted(v for info in store.list(text_versions_prefix(crawl_id))
                  if (v := committed_text_version(info.key)) is not None)


def text_records(store: ArchiveStore, manifests: Iterable[dict[str, Any]],
                 outlets: Iterable[str] = (), languages: Iterable[str] = ()
                 ) -> Iterator[dict[str, Any]]:
    """Stream the text records of the given crawls; shards that cannot match are not opened."""
    outlets, languages = set(outlets), set(languages)
    for manifest in manifests:
        for entry in text_entries(store, manifest):
            if not entry.get("records"):
                continue
            if outlets and not outlets & set(entry.get("outlets", {})):
                continue
            if languages and not languages & set(entry.get("languages", {})):
                continue
            for lines in read_lines(store, entry["key"]):
                for line in lines:
                    record = json.loads(line)
                    if outlets and record.get("outlet") not in outlets:
                        continue
                    if languages and record.get("language") not in languages:
                        continue
                    yield record


def read_lines(store: ArchiveStore, key: str, chunk: int = 256 * 1024) -> Iterator[list[bytes]]:
    """The lines of a gzip-compressed JSON-lines object, in batches, as they are decompressed.

    The object is read as a stream (an S3 object chunk by chunk from its GET body), so memory
    holds one chunk and its lines, never the whole object. Concatenated gzip members are read
    as one stream, as gzip does. Inflation is ISA-L's (about twice zlib's speed).
    """
    with store.open(key) as raw:
        inflate = isal_zlib.decompressobj(isal_zlib.MAX_WBITS | 16)
        tail = b""
        while block := raw.read(chunk):
            try:
                data = inflate.decompress(block)
                while inflate.eof and inflate.unused_data:
                    rest = inflate.unused_data
                    inflate = isal_zlib.decompressobj(isal_zlib.MAX_WBITS | 16)
                    data += inflate.decompress(rest)
            except isal_zlib.error as exc:
                raise StoreError(f"{key}: not a valid gzip stream ({exc})") from exc
            lines = (tail + data).split(b"\n")
            tail = lines.pop()
            if lines:
                yield lines
        if not inflate.eof:
            raise StoreError(f"{key}: truncated gzip stream")
        if tail.strip():
            yield [tail]
