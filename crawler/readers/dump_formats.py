"""The formats of `newsarchive dump` and where they go.

Writers take batches of documents: the stored JSON lines, and the parsed records when the
writer asked for them (``needs_records``), so JSON Lines passes stored lines through untouched
and Parquet parses them in Arrow, not in Python. Output goes to stdout or to a file, written as
``FILE.part`` and renamed when complete, compressed by extension (``.gz``, ``.zst``).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import uuid
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import IO, Any, Protocol

from crawler import __version__
from crawler.capture.warc import (
    WARC_VERSION,
    new_record_id,
    sha1_digest,
    warc_date,
    warcinfo_fields,
)
from crawler.records import CORE_FIELDS, DATE_FIELDS

FORMATS = ("jsonl", "txt", "wet", "parquet")
COMPRESSIONS = {".gz": "gz", ".zst": "zst"}
ROW_GROUP_BYTES = 8 << 20  # JSON bytes per Parquet row group: bounds the memory a group takes
_REPEATED = {"outlet", "crawl_id", "status", "author", "language", "language_expected",
             "sitename", "warc_file"}


class Writer(Protocol):
    needs_records: bool

    def write(self, lines: list[bytes], records: list[dict[str, Any]] | None) -> None: ...
    def close(self) -> None: ...


class Output:
    """Stdout, or FILE written as ``FILE.part`` and renamed by `finish` (a failed dump leaves no
    FILE behind); a ``.gz`` or ``.zst`` FILE is compressed."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.compression = COMPRESSIONS.get(os.path.splitext(path or "")[1])
        self.raw: IO[bytes] = open(path + ".part", "wb") if path else sys.stdout.buffer
        self._stream: IO[bytes] | None = None

    def stream(self) -> IO[bytes]:
        """The (compressed, if asked) stream to write to."""
        if self._stream is None:
            if self.compression == "gz":
                self._stream = gzip.GzipFile(fileobj=self.raw, mode="wb", compresslevel=6,
                                             mtime=0)
            elif self.compression == "zst":
                self._stream = _zstd().ZstdFile(self.raw, "w")
            else:
                self._stream = self.raw
        return self._stream

    def finish(self) -> None:
        if self._stream is not None and self._stream is not self.raw:
            self._stream.close()
        self.raw.flush()
        if self.path:
            os.fsync(self.raw.fileno())
            self.raw.close()
            os.replace(self.path + ".part", self.path)

    def abort(self) -> None:
        if self.path:
            self.raw.close()
            os.unlink(self.path + ".part")


def _zstd() -> Any:
    try:
        from compression import zstd  # Python 3.14+
    except ImportError:
        from backports import zstd
    return zstd


class JsonlWriter:
    """One text record per line: the stored line itself, or the chosen `fields` in order."""

    def __init__(self, out: IO[bytes], fields: tuple[str, ...] | None = None) -> None:
        self.out = out
        self.fields = fields
        self.needs_records = fields is not None

    def write(self, lines: list[bytes], records: list[dict[str, Any]] | None) -> None:
        if self.fields is None:
            self.out.write(b"\n".join(lines) + b"\n")
            return
        assert records is not None
        self.out.write("".join(
            json.dumps({f: r.get(f) for f in self.fields}, ensure_ascii=False) + "\n"
            for r in records).encode("utf-8"))

    def close(self) -> None:
        self.out.flush()


def document_day(record: dict[str, Any]) -> str:
    """The published date, else the fetch date (YYYY-MM-DD; empty if neither is known)."""
    return record.get("date") or (record.get("fetched_at") or "")[:10]


_BLANK_LINES = re.compile(r"\n{3,}")
_LINE_BREAKS = re.compile(r"\s*[\r\n\t]+\s*")


class TxtWriter:
    """A block per document: ``url<TAB>date<TAB>title``, a blank line, the text (paragraphs
    separated by one blank line), then two blank lines. The date is the published date, else the
    fetch date."""

    needs_records = True

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, lines: list[bytes], records: list[dict[str, Any]] | None) -> None:
        assert records is not None
        self.out.write("".join(self._block(r) for r in records).encode("utf-8"))

    @staticmethod
    def _block(record: dict[str, Any]) -> str:
        header = "\t".join(_LINE_BREAKS.sub(" ", str(v or "")) for v in (
            record.get("url"), document_day(record), record.get("title")))
        text = _BLANK_LINES.sub("\n\n", (record.get("text") or "").strip())
        return f"{header}\n\n{text}\n\n\n"

    def close(self) -> None:
        self.out.flush()


class WetWriter:
    """WARC ``conversion`` records, as Common Crawl's WET files: the title and text as
    ``text/plain``, ``WARC-Refers-To`` the capture's response record, after a ``warcinfo``
    record. With a ``.gz`` output every record is its own gzip member, as WARC readers expect.
    Record ids derive from the capture and the text, so the same dump gives the same ids."""

    needs_records = True

    def __init__(self, output: Output, info: dict[str, str]) -> None:
        self.members = output.compression == "gz"
        self.out = output.raw if self.members else output.stream()
        self.warcinfo_id = new_record_id()
        block = warcinfo_fields({"software": f"newsarchive/{__version__}",
                                 "format": "WARC File Format 1.1", **info})
        self._record([("WARC-Type", "warcinfo"), ("WARC-Record-ID", self.warcinfo_id),
                      ("WARC-Date", warc_date())], block, "application/warc-fields")

    def write(self, lines: list[bytes], records: list[dict[str, Any]] | None) -> None:
        assert records is not None
        for record in records:
            title, text = record.get("title"), record.get("text") or ""
            block = (f"{title}\n\n{text}" if title else text).encode("utf-8")
            name = f"{record.get('warc_record_id')} {record.get('text_digest')}"
            fields = [("WARC-Type", "conversion"),
                      ("WARC-Record-ID", f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}>"),
                      ("WARC-Date", _warc_date(record.get("fetched_at"))),
                      ("WARC-Target-URI", record.get("url") or ""),
                      ("WARC-Refers-To", record.get("warc_record_id") or ""),
                      ("WARC-Warcinfo-ID", self.warcinfo_id)]
            self._record(fields, block, "text/plain; charset=utf-8")

    def _record(self, fields: list[tuple[str, str]], block: bytes, content_type: str) -> None:
        head = f"{WARC_VERSION}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields if v) + (
            f"WARC-Block-Digest: {sha1_digest(block)}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(block)}\r\n\r\n")
        data = head.encode("utf-8") + block + b"\r\n\r\n"
        if self.members:
            gz = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
            data = gz.compress(data) + gz.flush()
        self.out.write(data)

    def close(self) -> None:
        self.out.flush()


def _warc_date(fetched_at: str | None) -> str:
    """The capture's date, as WET records carry it (now, if the record has none)."""
    try:
        return warc_date(datetime.fromisoformat(fetched_at or ""))
    except ValueError:
        return warc_date()


class ParquetDocumentsWriter:
    """One row per document, typed columns (``fetched_at`` a UTC timestamp, ``date`` and
    ``date_modified`` dates, integers as integers, zstd-compressed), a row group per
    `ROW_GROUP_BYTES` of JSON.

    The stored lines are parsed by Arrow's JSON reader (in parallel blocks) and the group is
    encoded and written in a background thread (Arrow releases the GIL) while the next group
    is read; at most one group waits, so memory holds two groups at most.
    """

    needs_records = False

    def __init__(self, out: IO[bytes], fields: tuple[str, ...] | None = None) -> None:
        import pyarrow as pa
        import pyarrow.json as pj
        import pyarrow.parquet as pq

        self.pa, self.pj = pa, pj
        types = {"status": pa.int32(), "warc_offset": pa.int64(), "warc_length": pa.int64(),
                 "fetched_at": pa.timestamp("us", tz="UTC")}
        self.fields = fields or CORE_FIELDS
        self.read_schema = pa.schema([(f, types.get(f, pa.string())) for f in self.fields])
        self.schema = pa.schema([(f, pa.date32() if f in DATE_FIELDS
                                  else self.read_schema.field(f).type) for f in self.fields])
        self.dates = [f for f in self.fields if f in DATE_FIELDS]
        repeated = [f for f in self.fields if f in _REPEATED]  # worth a dictionary
        self.writer = pq.ParquetWriter(out, self.schema, compression="zstd", compression_level=1,
                                       use_dictionary=repeated,
                                       write_statistics=[f for f in self.fields if f != "text"])
        self.out = out
        # two buffers, reused: one fills while the worker converts the other (allocating a
        # fresh one per group fragments the heap, and memory creeps up group after group)
        self.buffers = [bytearray(ROW_GROUP_BYTES), bytearray(ROW_GROUP_BYTES)]
        self.used = 0
        self.longest = 0
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
        self.pending: Future[None] | None = None

    def write(self, lines: list[bytes], records: list[dict[str, Any]] | None) -> None:
        for line in lines:
            end = self.used + len(line) + 1
            if end > len(self.buffers[0]):
                self._flush()
                end = len(line) + 1
                if end > len(self.buffers[0]):  # a line longer than a group: a group of its own
                    self.buffers[0] = bytearray(end)
            self.buffers[0][self.used : end - 1] = line
            self.buffers[0][end - 1] = 0x0A
            self.used = end
            self.longest = max(self.longest, len(line))

    def _flush(self) -> None:
        if self.pending is not None:
            self.pending.result()  # one group at a time in the worker; errors surface here
            self.pending = None
        if self.used:
            block = max(1 << 20, self.longest + 1)  # a block holds whole lines
            data = memoryview(self.buffers[0])[: self.used]
            self.pending = self.worker.submit(self._write_group, data, block)
            self.buffers.reverse()
            self.used = self.longest = 0

    def _write_group(self, data: memoryview, block: int) -> None:
        table = self.pj.read_json(
            self.pa.BufferReader(self.pa.py_buffer(data)),
            read_options=self.pj.ReadOptions(block_size=block),
            parse_options=self.pj.ParseOptions(explicit_schema=self.read_schema,
                                               unexpected_field_behavior="ignore"))
        del data
        for name in self.dates:
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, table.column(index).cast(self.pa.date32()))
        self.writer.write_table(table, row_group_size=table.num_rows)
        del table
        self.pa.default_memory_pool().release_unused()  # or the pool keeps every group's peak

    def close(self) -> None:
        try:
            self._flush()
            self._flush()
        finally:
            self.worker.shutdown()
        self.writer.close()
        self.out.flush()
