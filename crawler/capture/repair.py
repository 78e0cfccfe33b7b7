"""Repair of the WARC and text shards a killed crawl left as ``NAME.open``.

A WARC is one gzip member per record and is written record by record, so everything up to the
last complete member is a valid WARC: keep that, cut the rest. A text shard is one gzip stream
that was never closed: keep the JSON lines that decompress whole and write them as a new file.
Both walks stream in bounded chunks: WARC files reach 1 GB and one record can be 20 MB+.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator

from crawler.capture.cdxj import REVISIT_MIME, cdxj_line, timestamp14
from crawler.capture.warc import HashingFile
from crawler.files import fsync_dir

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20  # compressed bytes read, and decompressed bytes produced, per step
_MAX_HEAD = 1 << 20  # a WARC header block larger than this is not ours: treat it as damage


@dataclass(frozen=True)
class RepairedWarc:
    records: int  # complete WARC records kept (all types, warcinfo included)
    size: int  # bytes kept
    cut: int  # bytes cut off the end (0 if none)
    sha256: str  # hex sha256 of the kept file


def repair_warc(open_path: Path, final_path: Path) -> RepairedWarc:
    """Keep the complete records of a WARC left open by a crash, cut a truncated tail (logged with
    the file name, offset and bytes cut), fsync, and rename to final_path.

    With no complete record at all the ``.open`` is deleted and nothing is renamed (records=0):
    an empty WARC is useless, and a zero-byte object would only confuse the archive.
    """
    with open(open_path, "rb") as f:
        total = os.fstat(f.fileno()).st_size
        records, kept, digest = _complete_members(f)
    cut = total - kept
    if cut:
        logger.warning("%s: truncated WARC, cutting %d byte(s) at offset %d (%d record(s) kept)",
                       open_path, cut, kept, records)
    if records == 0:
        open_path.unlink()
        return RepairedWarc(0, 0, cut, digest)
    if cut:
        os.truncate(open_path, kept)
    with open(open_path, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(open_path, final_path)
    fsync_dir(final_path.parent)
    return RepairedWarc(records, kept, cut, digest)


def index_lines(path: Path, warc_key: str) -> Iterator[str]:
    """CDXJ lines (``cdxj_line``) of the response and revisit records of a closed WARC,
    in file order (the caller sorts).

    Built the way ``CaptureWriter.write_exchange`` builds them, so a repaired WARC gets the index
    the crawl would have written.
    """
    with open(path, "rb") as f:
        records = ArchiveIterator(f)
        for record in records:
            if record.rec_type not in ("response", "revisit"):
                continue
            head, http = record.rec_headers, record.http_headers
            status = int(http.get_statuscode()) if http else None
            if record.rec_type == "revisit":
                mime = REVISIT_MIME
            else:  # as the capture records it: the media type, lowercased, no parameters
                mime = ((http.get_header("Content-Type") if http else None) or "")
                mime = mime.split(";")[0].strip().lower()
            url = head.get_header("WARC-Target-URI")
            date = head.get_header("WARC-Date")
            digest = head.get_header("WARC-Payload-Digest") or ""
            records.read_to_end()  # the member's span is known once its record is consumed
            yield cdxj_line(url, timestamp14(date), mime=mime, status=status, digest=digest,
                            length=records.get_record_length(),
                            offset=records.get_record_offset(), filename=warc_key)


def salvage_text(open_path: Path, final_path: Path) -> tuple[int, str]:
    """Keep the complete JSON lines of a text shard left open by a crash; write them as a proper
    gzip file at final_path (written as final_path + '.part', fsynced, renamed); delete open_path.
    Returns (records kept, sha256 hex of the new file)."""
    part = final_path.with_name(final_path.name + ".part")
    part.unlink(missing_ok=True)  # left by an earlier salvage that was itself interrupted
    out = HashingFile(part)
    kept = dropped = 0
    pending = b""
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:  # type: ignore[arg-type]
        with open(open_path, "rb") as f:
            try:
                for _, data, ended in _inflate(f):
                    *lines, pending = (pending + data).split(b"\n")
                    for line in lines:
                        if _json_object(line):
                            gz.write(line + b"\n")
                            kept += 1
                        else:
                            dropped += 1
                    if ended:  # the shard was closed after all: one stream only
                        break
            except zlib.error:
                pass  # damaged past this point: what came before is kept
    out.close()
    if pending or dropped:
        logger.warning("%s: text shard salvaged, %d record(s) kept, %d invalid line(s) and %d "
                       "byte(s) of an incomplete line dropped", open_path, kept, dropped,
                       len(pending))
    os.replace(part, final_path)
    fsync_dir(final_path.parent)
    open_path.unlink()
    return kept, out.sha256.hexdigest()


def _complete_members(f: BinaryIO) -> tuple[int, int, str]:
    """(records, bytes, sha256) of the leading gzip members that each hold one whole record."""
    records = kept = position = 0
    running = hashlib.sha256()
    kept_digest = running.hexdigest()
    check = _RecordCheck()
    try:
        for used, data, ended in _inflate(f):
            running.update(used)
            position += len(used)
            if not check.feed(data):
                break
            if ended:
                if not check.complete():
                    break
                records, kept, kept_digest = records + 1, position, running.hexdigest()
                check = _RecordCheck()
    except zlib.error:
        pass  # not gzip (e.g. zeros a crash left at the end): cut from the last good member
    return records, kept, kept_digest


def _inflate(f: BinaryIO) -> Iterator[tuple[bytes, bytes, bool]]:
    """Steps (compressed bytes consumed, bytes decompressed, member ended) over concatenated gzip
    members, each step bounded so that no member is ever held in memory whole."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    buf = b""
    at_eof = False
    while True:
        if not buf and not at_eof:
            buf = f.read(_CHUNK)
            at_eof = not buf
        data = inflater.decompress(buf, _CHUNK)
        rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        yield buf[: len(buf) - len(rest)], data, inflater.eof
        buf = rest
        if inflater.eof:
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif at_eof and not data:
            return  # the file ends inside a member (or exactly between two)


class _RecordCheck:
    """Whether the decompressed bytes of one member are exactly one WARC record: ``WARC/1.``,
    header block, ``Content-Length`` block bytes, ``\\r\\n\\r\\n`` and nothing more."""

    def __init__(self) -> None:
        self.head = b""
        self.length: int | None = None
        self.seen = 0
        self.tail = b""

    def feed(self, data: bytes) -> bool:
        """Take more bytes; False as soon as they cannot be (part of) one whole record."""
        if self.length is None:
            self.head += data
            if not b"WARC/1.".startswith(self.head[:7]):
                return False
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return len(self.head) <= _MAX_HEAD
            self.length = _content_length(self.head[:end])
            if self.length is None:
                return False
            data, self.head = self.head[end + 4 :], self.head[:end]
        self.seen += len(data)
        self.tail = (self.tail + data[-4:])[-4:]
        return self.seen <= self.length + 4

    def complete(self) -> bool:
        return self.length is not None and self.seen == self.length + 4 \
            and self.tail == b"\r\n\r\n"


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


def _json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both
        return False
