"""One crawl as a WACZ 1.1.1 package, for ReplayWeb.page (`newsarchive export-wacz`).

The package holds the crawl's WARCs (``archive/``, stored uncompressed in the zip so a replay
tool reads records by range), one sorted CDXJ index whose ``filename`` fields name those WARCs
relative to ``archive/`` (``indexes/index.cdxj``), the articles with their extracted text
(``pages/pages.jsonl``), and ``datapackage.json`` with every file's sha256 and size, itself
digested in ``datapackage-digest.json``. Everything is streamed: WARCs go from the store into
the zip in chunks, the per-WARC indexes are merged line by line.

Every entry's size is known before it is written (a WARC's from the manifest; the index and the
pages are first written to a temporary file), so an entry gets ZIP64 fields only when its size
needs them, in its local header and the central directory alike: ReplayWeb.page takes an entry
without extra fields in the central directory to have none in its local header either.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from crawler import __version__
from crawler.capture.cdxj import cdxj_fields, merge_lines, replays_empty, write_sorted
from crawler.errors import ArchiveError
from crawler.readers.listing import text_records
from crawler.readers.originals import Originals, read_originals
from crawler.store.backends import ArchiveStore

WACZ_VERSION = "1.1.1"
_CHUNK = 1 << 20


def export_wacz(store: ArchiveStore, manifest: dict[str, Any], output: Path,
                title: str | None = None) -> dict[str, int]:
    """Write the package to `output` (atomically: a ``.part`` file renamed when complete)."""
    partial = output.with_name(output.name + ".part")
    stamp = _zip_time(manifest.get("ended") or manifest["started"])
    try:
        with zipfile.ZipFile(partial, "w", allowZip64=True) as zf, \
                tempfile.TemporaryDirectory(prefix="wacz-") as work:
            package = _Package(zf, stamp, Path(work))
            warcs = [e for e in manifest["files"] if e["kind"] == "warc"]
            names = {e["key"]: e["key"].rsplit("/", 1)[-1] for e in warcs}
            for entry in warcs:
                package.copy_warc(store, entry, names[entry["key"]])
            indexes = package.fetch_indexes(store, [e for e in manifest["files"]
                                                    if e["kind"] == "index"], names)
            originals = package.originals(store, manifest["crawl_id"], indexes)
            captures = package.index(indexes)
            pages = package.pages(text_records(store, [manifest]),
                                  title or _title(manifest))
            package.datapackage(title or _title(manifest), manifest)
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return {"warcs": len(warcs), "captures": captures, "pages": pages, **originals}


class _Package:
    """Entries written into the zip, each hashed on the way in for datapackage.json."""

    def __init__(self, zf: zipfile.ZipFile, stamp: tuple[int, ...], work: Path) -> None:
        self.zf = zf
        self.stamp = stamp
        self.work = work
        self.resources: list[dict[str, Any]] = []

    def add(self, path: str, size: int, chunks: Iterable[bytes],
            compress: int = zipfile.ZIP_DEFLATED) -> None:
        """An entry of `size` bytes, written chunk by chunk; with ZIP64 fields only when the size
        needs them (not zipfile's guess, which allows for deflate growing data by 5%)."""
        info = self._info(path, compress)
        digest, written = hashlib.sha256(), 0
        with self.zf.open(info, "w", force_zip64=size > zipfile.ZIP64_LIMIT) as dst:
            for chunk in chunks:
                dst.write(chunk)
                digest.update(chunk)
                written += len(chunk)
        self.resources.append({"name": _resource_name(path), "path": path,
                               "hash": f"sha256:{digest.hexdigest()}", "bytes": written})

    @contextmanager
    def entry(self, path: str) -> Iterator[Callable[[bytes], None]]:
        """A deflated entry of a size not known in advance: written to a temporary file first."""
        spooled = self.work / "entry"
        with open(spooled, "wb") as out:
            yield out.write
        with open(spooled, "rb") as src:
            self.add(path, spooled.stat().st_size, _chunks(src))
        spooled.unlink()

    def copy_warc(self, store: ArchiveStore, entry: dict[str, Any], name: str) -> None:
        """A WARC, byte for byte and stored (not deflated), checked against the manifest."""
        with store.open(entry["key"]) as src:
            self.add(f"archive/{name}", entry["size"], _chunks(src), zipfile.ZIP_STORED)
        copied = self.resources[-1]
        if copied["bytes"] != entry["size"] or copied["hash"] != f"sha256:{entry['sha256']}":
            raise ArchiveError(f"{entry['key']} differs from its manifest entry (size or "
                               f"sha256); run `newsarchive verify --crawl ...`")

    def fetch_indexes(self, store: ArchiveStore, indexes: list[dict[str, Any]],
                      names: dict[str, str]) -> list[Path]:
        """The crawl's index files, copied to the work directory with ``filename`` turned
        into the WARC's name in the zip."""
        parts = self.work / "indexes"
        parts.mkdir()
        local = []
        for number, entry in enumerate(indexes):
            local.append(parts / f"{number}.cdxj")
            with store.open(entry["key"]) as src, open(local[-1], "wb") as dst:
                dst.writelines(_relative(src, names))
        return local

    def originals(self, store: ArchiveStore, crawl_id: str, indexes: list[Path]
                  ) -> dict[str, int]:
        """``archive/{crawl}-originals.warc.gz``: the earlier crawls' captures that this
        crawl's revisits stand on, so the package replays alone; their index lines join
        `indexes`. The number of originals, and of revisits whose original no earlier crawl
        holds (a deleted crawl)."""
        originals = Originals(self.work)
        try:
            for path in indexes:
                with open(path, "rb") as lines:
                    originals.want(lines)
            originals.search(store, crawl_id)
            found = originals.found()
            if found:
                name = f"{crawl_id}-originals.warc.gz"
                unsorted = self.work / "originals.unsorted"
                with open(unsorted, "wb") as out:
                    offset = 0
                    for original in originals.carried():
                        out.write(_moved(original.line, name, offset))
                        offset += original.length
                self.add(f"archive/{name}", offset, read_originals(store, originals.carried()),
                         zipfile.ZIP_STORED)
                indexes.append(self.work / "originals.cdxj")
                write_sorted(unsorted, indexes[-1])
            return {"originals": found, "unresolved": originals.unresolved}
        finally:
            originals.close()

    def index(self, indexes: list[Path]) -> int:
        """One sorted CDXJ of every WARC in the package, but for its 304 revisits: the page
        replays from the capture they stand on (``cdxj.replays_empty``)."""
        with self.entry("indexes/index.cdxj") as write, ExitStack() as stack:
            files = [stack.enter_context(open(p, "rb")) for p in indexes]
            lines = merge_lines([(line for line in f if not replays_empty(line))
                                 for f in files], write)
        return lines

    def pages(self, records: Iterable[dict[str, Any]], title: str) -> int:
        """``pages/pages.jsonl``: the articles, with their title and extracted text."""
        count = 0
        with self.entry("pages/pages.jsonl") as write:
            write(_jsonl({"format": "json-pages-1.0", "id": "pages", "title": title,
                          "hasText": True}))
            for record in records:
                write(_jsonl({"id": _page_id(record), "url": record["url"],
                              "ts": record["fetched_at"], "title": record.get("title") or "",
                              "text": record.get("text") or ""}))
                count += 1
        return count

    def datapackage(self, title: str, manifest: dict[str, Any]) -> None:
        package = {
            "profile": "data-package",
            "resources": self.resources,
            "wacz_version": WACZ_VERSION,
            "title": title,
            "description": f"newsarchive crawl {manifest['crawl_id']} "
                           f"({', '.join(manifest.get('outlets', []))}), "
                           f"{manifest.get('started')} to {manifest.get('ended')}",
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "software": f"newsarchive {__version__}",
        }
        data = json.dumps(package, indent=1, ensure_ascii=False).encode("utf-8")
        self.zf.writestr(self._info("datapackage.json"), data)
        digest = {"path": "datapackage.json", "hash": f"sha256:{hashlib.sha256(data).hexdigest()}"}
        self.zf.writestr(self._info("datapackage-digest.json"),
                         json.dumps(digest, indent=1).encode("utf-8"))

    def _info(self, path: str, compress: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=self.stamp)  # type: ignore[arg-type]
        info.compress_type = compress
        return info


def _chunks(src: IO[bytes]) -> Iterator[bytes]:
    while chunk := src.read(_CHUNK):
        yield chunk


def _relative(lines: Iterable[bytes], names: dict[str, str]) -> Iterator[bytes]:
    """CDXJ lines with ``filename`` turned from an archive key into the WARC's name in the zip.

    Only the json's last field changes, so each input stays sorted and the merge is too.
    """
    for line in lines:
        fields = cdxj_fields(line)
        if fields["filename"] not in names:
            raise ArchiveError(f"index line for {fields.get('url')} points at "
                               f"{fields.get('filename')}, not a WARC of this crawl")
        yield _rewritten(line, {**fields, "filename": names[fields["filename"]]})


def _moved(line: bytes, name: str, offset: int) -> bytes:
    """An original's index line, pointing at its copy in the package."""
    return _rewritten(line, {**cdxj_fields(line), "filename": name, "offset": str(offset)})


def _rewritten(line: bytes, fields: dict[str, Any]) -> bytes:
    surt, timestamp, _ = line.split(b" ", 2)
    return b" ".join((surt, timestamp, json.dumps(fields, ensure_ascii=False).encode())) + b"\n"


def _jsonl(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n"


def _page_id(record: dict[str, Any]) -> str:
    """Stable: the response record's UUID (one page per capture)."""
    record_id = record.get("warc_record_id") or record["url"]
    return re.sub(r"[^0-9a-zA-Z-]", "", record_id.removeprefix("<urn:uuid:"))


def _resource_name(path: str) -> str:
    """Frictionless resource names are lower-case ``[-a-z0-9._/]``."""
    return re.sub(r"[^-a-z0-9._]", "-", path.rsplit("/", 1)[-1].lower())


def _title(manifest: dict[str, Any]) -> str:
    return f"{manifest['crawl_id']} ({', '.join(manifest.get('outlets', []))})"


def _zip_time(iso: str) -> tuple[int, ...]:
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute,
            moment.second)
