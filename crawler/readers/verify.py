"""Proof that the archive still holds what its manifests say (`newsarchive verify`).

Every object a manifest lists (the crawl's, and each committed text version's) is read back in
full, as a stream, once: its size and sha256 are compared with the manifest while its content is
checked on the same pass. WARC records get their block and payload digests checked (warcio);
every CDXJ line and every text record must point at a record of its URL in its WARC, by offset
and length. Problems name the object (and the record offset); the command then exits non-zero.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any, TextIO
from urllib.parse import urldefrag

from crawler.errors import StoreError
from crawler.layout import basename, crawl_prefix, manifest_key, text_version_manifest_key
from crawler.readers.listing import text_versions
from crawler.store.backends import ArchiveStore

_CHUNK = 1 << 20


# ---------------------------------------------------------------- reading with fixity


class FixityReader(io.RawIOBase):
    """A store stream read through once: bytes counted and hashed as the parsers read them.

    ``tell`` is what warcio needs to report record offsets on an unseekable (S3) stream.
    Closing it leaves the store stream to its owner.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.size = 0
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._take(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        pass

    def drain(self) -> None:
        while self._take(_CHUNK):
            pass

    def _take(self, n: int) -> bytes:
        data = self.raw.read(n)
        self.size += len(data)
        self.sha256.update(data)
        return data


@dataclass(frozen=True)
class StoredRecord:
    rec_type: str
    uri: str | None
    length: int
    record_id: str | None
    payload_digest: str | None


@dataclass
class WarcScan:
    """What one pass over a WARC found: its records by offset (for the pointer checks)."""

    key: str
    records: dict[int, StoredRecord] = field(default_factory=dict)
    responses: int = 0
    missing: bool = False  # the object is not there: pointers into it cannot be checked
    damaged: set[int] = field(default_factory=set)  # offsets of records that failed: the
    # pass may have lost its way after them


# ---------------------------------------------------------------- the checks


class Verifier:
    def __init__(self, store: ArchiveStore, out: TextIO = sys.stdout) -> None:
        self.store = store
        self.out = out
        self.problems: list[str] = []
        self.crawls = 0
        self.files = 0
        self.bytes = 0
        self.records = 0
        self.text_records = 0

    def problem(self, key: str, what: str) -> None:
        self.problems.append(f"{key}: {what}")
        print(f"  PROBLEM {key}: {what}", file=self.out)

    def note(self, text: str) -> None:
        print(f"  note: {text}", file=self.out)

    def summary(self) -> str:
        verdict = (f"{len(self.problems)} PROBLEM(S)" if self.problems
                   else "nothing to check" if not self.crawls
                   else "every size, sha256, record digest and pointer checks out")
        return (f"verified {self.crawls} crawl(s), {self.files} file(s), {self.bytes / 1e6:.2f}"
                f" MB, {self.records} WARC records, {self.text_records} text records: {verdict}")

    def verify_crawl(self, crawl_id: str, named: bool = False) -> None:
        prefix = crawl_prefix(crawl_id) + "/"
        stored = {info.key: info.size for info in self.store.list(prefix)}
        print(f"crawl {crawl_id}", file=self.out)
        commit_key = manifest_key(crawl_id)
        if commit_key not in stored:
            if named:
                self.problem(commit_key, "missing: the crawl is incomplete")
            else:
                self.note("incomplete (no manifest.json yet): not verified")
            return
        manifest = self._json(commit_key)
        if manifest is None:
            return
        self.crawls += 1
        listed = {commit_key}
        entries: list[dict[str, Any]] = list(manifest.get("files", []))
        for version in text_versions(self.store, crawl_id):
            key = text_version_manifest_key(crawl_id, version)
            listed.add(key)
            version_manifest = self._json(key)
            if version_manifest is not None:
                entries += version_manifest.get("files", [])
        listed.update(e["key"] for e in entries)
        for group in _by_basename(entries):
            scan = None
            for entry in group:
                if entry["kind"] == "warc":  # pointers into an unreadable WARC: not checkable
                    scan = WarcScan(entry["key"], missing=True)
                if entry["key"] not in stored:
                    self.problem(entry["key"], "missing (listed in a manifest)")
                elif entry["kind"] == "warc":
                    scan = self._check(entry, partial(self._warc, entry)) or scan
                elif entry["kind"] == "index":
                    self._check(entry, partial(self._index, entry, scan=scan))
                elif entry["kind"] == "text":
                    self._check(entry, partial(self._text, entry, scan=scan))
                else:
                    self._check(entry, lambda reader: None)
        for key in sorted(set(stored) - listed):
            self.note(f"{key} is not listed in any manifest (an unfinished re-extraction?)")

    def _json(self, key: str) -> dict[str, Any] | None:
        try:
            with self.store.open(key) as f:
                return json.load(f)
        except ValueError as exc:
            self.problem(key, f"not valid JSON: {exc}")
        except StoreError as exc:
            self.problem(key, f"unreadable: {exc}")
        return None

    def _check(self, entry: dict[str, Any], parse: Callable[[FixityReader], Any]) -> Any:
        """Read the object once: parse its content and check its size and sha256."""
        key = entry["key"]
        result = None
        problems = len(self.problems)
        try:
            with self.store.open(key) as raw:
                reader = FixityReader(raw)
                try:
                    result = parse(reader)
                except StoreError:
                    raise
                except Exception as exc:  # damaged content: say so, and still check fixity
                    self.problem(key, f"content unreadable ({_short(exc)})")
                reader.drain()
        except StoreError as exc:
            self.problem(key, f"unreadable: {exc}")
            return result
        self.files += 1
        self.bytes += reader.size
        if reader.size != entry["size"]:
            self.problem(key, f"size {reader.size} bytes, the manifest says {entry['size']}")
        if reader.sha256.hexdigest() != entry["sha256"]:
            self.problem(key, f"sha256 {reader.sha256.hexdigest()}, the manifest says "
                              f"{entry['sha256']}")
        if len(self.problems) == problems:
            print(f"  ok  {key} ({reader.size} bytes)", file=self.out)
        return result

    def _warc(self, entry: dict[str, Any], reader: FixityReader) -> WarcScan:
        """Every record's digests, and where each record is (for the pointer checks)."""
        from warcio.archiveiterator import ArchiveIterator

        key = entry["key"]
        scan = WarcScan(key)
        records = ArchiveIterator(reader, check_digests=True)
        try:
            for record in records:
                offset = records.offset
                while record.raw_stream.read(_CHUNK):
                    pass
                records.read_to_end()
                headers = record.rec_headers
                checker = record.digest_checker
                for problem in checker.problems:
                    scan.damaged.add(offset)
                    self.problem(key, f"record at offset {offset} ({record.rec_type} "
                                      f"{headers.get_header('WARC-Target-URI')}): {problem}")
                if checker.passed is None and record.rec_type != "revisit" and (
                        headers.get_header("WARC-Block-Digest")
                        or headers.get_header("WARC-Payload-Digest")):
                    self.problem(key, f"record at offset {offset}: digests not checked: the "
                                      "record is shorter than its Content-Length")
                scan.records[offset] = StoredRecord(
                    record.rec_type, headers.get_header("WARC-Target-URI"),
                    records.get_record_length(), headers.get_header("WARC-Record-ID"),
                    headers.get_header("WARC-Payload-Digest"))
                scan.responses += record.rec_type in ("response", "revisit")  # one per exchange
                self.records += 1
        except Exception as exc:  # any damage warcio trips over: name where, and go on
            from warcio.exceptions import ArchiveLoadFailed

            scan.damaged.add(records.offset)
            why = ("no WARC record here: its gzip member or headers are damaged"
                   if isinstance(exc, ArchiveLoadFailed) else f"unreadable: {_short(exc)}")
            self.problem(key, f"record at offset {records.offset}: {why}; the rest of the "
                              "file cannot be parsed")
        if not scan.damaged and "records" in entry and entry["records"] != scan.responses:
            self.problem(key, f"{scan.responses} response/revisit records, the manifest says "
                              f"{entry['records']}")
        return scan

    def _index(self, entry: dict[str, Any], reader: FixityReader, scan: WarcScan | None
               ) -> None:
        """Sorted CDXJ lines, each pointing at a capture of its URL (offset and length)."""
        key = entry["key"]
        previous = b""
        for number, line in enumerate(io.BufferedReader(reader, _CHUNK), 1):
            try:
                _surt, _timestamp, data = line.rstrip(b"\n").split(b" ", 2)
                fields = json.loads(data)
                offset, length = int(fields["offset"]), int(fields["length"])
                filename, url = fields["filename"], fields["url"]
            except (ValueError, KeyError) as exc:
                self.problem(key, f"line {number}: not a CDXJ line ({_short(exc)})")
                continue
            if line < previous:
                self.problem(key, f"line {number}: out of order (replay needs sorted lines)")
            previous = line
            found = self._record(scan, filename, offset, length)
            if found is _UNCHECKABLE:
                continue
            if found is None or found.rec_type not in ("response", "revisit", "resource"):
                self.problem(key, f"line {number} ({url}): no response record at {filename} "
                                  f"offset {offset}")
            elif found.length != length or not _same_url(found.uri, url):
                self.problem(key, f"line {number} ({url}): {filename} offset {offset} holds "
                                  f"{found.uri}, {found.length} bytes, not {length}")

    def _text(self, entry: dict[str, Any], reader: FixityReader, scan: WarcScan | None
              ) -> None:
        """Every text record points at the response record of its URL."""
        key = entry["key"]
        count = 0
        with gzip.GzipFile(fileobj=reader) as gz:
            for number, line in enumerate(gz, 1):
                count += 1
                try:
                    record = json.loads(line)
                    url, warc_key = record["url"], record["warc_file"]
                    offset, length = int(record["warc_offset"]), int(record["warc_length"])
                except (ValueError, KeyError, TypeError) as exc:
                    self.problem(key, f"line {number}: not a text record ({_short(exc)})")
                    continue
                self.text_records += 1
                found = self._record(scan, warc_key, offset, length)
                if found is _UNCHECKABLE:
                    continue
                if found is None or found.rec_type != "response":
                    self.problem(key, f"line {number} ({url}): no response record at {warc_key}"
                                      f" offset {offset}")
                elif (found.length != length or not _same_url(found.uri, url)
                      or found.record_id != record.get("warc_record_id", found.record_id)):
                    self.problem(key, f"line {number} ({url}): {warc_key} offset {offset} holds "
                                      f"{found.record_id} of {found.uri} ({found.length} bytes),"
                                      f" not {record.get('warc_record_id')} ({length} bytes)")
        if "records" in entry and entry["records"] != count:
            self.problem(key, f"{count} records, the manifest says {entry['records']}")

    def _record(self, scan: WarcScan | None, warc_key: str, offset: int,
                length: int) -> StoredRecord | None | object:
        """The record at a WARC offset: from this pass over the WARC, or by a ranged read (for
        another WARC, or past damage that may have thrown the pass off the record boundaries:
        one damaged gzip member must not hide the sound records after it)."""
        if scan is not None and scan.key == warc_key:
            if scan.missing or offset in scan.damaged:
                return _UNCHECKABLE  # nothing to say beyond the problem already reported
            if offset in scan.records or not scan.damaged:
                return scan.records.get(offset)
        return _read_one(self.store, warc_key, offset, length)


_UNCHECKABLE = object()  # the pointer leads to a missing WARC or a damaged record


def _read_one(store: ArchiveStore, warc_key: str, offset: int, length: int
              ) -> StoredRecord | None:
    from warcio.archiveiterator import ArchiveIterator

    try:
        data = store.read_range(warc_key, offset, length)
        records = ArchiveIterator(io.BytesIO(data))
        record = next(records)
        while record.raw_stream.read(_CHUNK):
            pass
        records.read_to_end()
    except Exception:  # a pointer to nothing readable
        return None
    headers = record.rec_headers
    return StoredRecord(record.rec_type, headers.get_header("WARC-Target-URI"),
                        records.get_record_length(), headers.get_header("WARC-Record-ID"),
                        headers.get_header("WARC-Payload-Digest"))


def _by_basename(entries: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Entries grouped by the WARC they belong to, the WARC first, then its index and texts."""
    order = {"warc": 0, "index": 1, "text": 2}
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(basename(entry["key"]), []).append(entry)
    for group in groups.values():
        yield sorted(group, key=lambda e: order.get(e["kind"], 3))


def _same_url(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and urldefrag(a)[0] == urldefrag(b)[0]


def _short(exc: BaseException) -> str:
    """One printable line of an exception (warcio quotes the binary it choked on)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = "".join(c if c.isprintable() else "?" for c in text)[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
