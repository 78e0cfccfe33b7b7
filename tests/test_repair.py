"""Repair of the WARC and text shards a killed crawl leaves as ``*.open``, on files written by the
real writers (crawler.capture.warc.WarcFile, gzip.GzipFile as crawler.crawl.archiving uses it)."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import random
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse
from warcio.archiveiterator import ArchiveIterator

from crawler.capture.cdxj import cdxj_line, timestamp14
from crawler.capture.repair import index_lines, repair_warc, salvage_text
from crawler.capture.warc import WarcFile, WrittenRecord, warc_date, warcinfo_fields
from crawler.crawl.warc_capture import _mime

WARCIO = str(Path(sys.executable).parent / "warcio")
KEY = "crawls/c1/warc/c1-00000-host.warc.gz"


@dataclass
class Written:
    path: Path
    members: list[WrittenRecord]  # every record, in file order
    lines: list[str]  # CDXJ lines as a crawl writes them


def _write_response(warc: WarcFile, url: str, body: bytes, content_type: str,
                    info_id: str) -> tuple[WrittenRecord, WrittenRecord, str]:
    """A response/request pair and its index line, as CaptureWriter.write_exchange writes them."""
    date = warc_date()
    status = 200
    head = (f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    mime = _mime(HtmlResponse(url, status=status, headers={"Content-Type": content_type},
                              body=body))
    response = warc.write_record(
        "response", [("WARC-Date", date), ("WARC-Target-URI", url),
                     ("WARC-IP-Address", "127.0.0.1"), ("WARC-Warcinfo-ID", info_id)],
        (head, body), content_type="application/http; msgtype=response")
    request = warc.write_record(
        "request", [("WARC-Date", date), ("WARC-Target-URI", url),
                    ("WARC-Concurrent-To", response.record_id), ("WARC-Warcinfo-ID", info_id)],
        (f"GET {url} HTTP/1.1\r\nHost: example.org\r\n\r\n".encode(),),
        content_type="application/http; msgtype=request")
    line = cdxj_line(url, timestamp14(date), mime=mime, status=status,
                     digest=response.payload_digest or "", length=response.length,
                     offset=response.offset, filename=response.warc_key)
    return response, request, line


def _write_revisit(warc: WarcFile, url: str, status: int, profile: str, digest: str,
                   digests: bool) -> tuple[WrittenRecord, str]:
    date = warc_date()
    head = f"HTTP/1.1 {status} Whatever\r\nContent-Type: text/html\r\n\r\n".encode()
    record = warc.write_record(
        "revisit", [("WARC-Date", date), ("WARC-Target-URI", url), ("WARC-Profile", profile),
                    ("WARC-Refers-To-Target-URI", url),
                    ("WARC-Refers-To-Date", "2025-01-01T00:00:00Z"),
                    ("WARC-Payload-Digest", digest)],
        (head,), content_type="application/http; msgtype=response", digests=digests)
    line = cdxj_line(url, timestamp14(date), mime="warc/revisit", status=status, digest=digest,
                     length=record.length, offset=record.offset, filename=record.warc_key)
    return record, line


def write_warc(directory: Path, pairs: int = 4, revisits: bool = False) -> Written:
    """warcinfo + `pairs` exchanges (the last with a 3 MB incompressible body, bigger than the
    repair's read chunk) and optionally two revisits; closed, so its bytes are all on disk."""
    warc = WarcFile(directory / "c1-00000-host.warc.gz", KEY)
    info = warc.write_record("warcinfo", [("WARC-Date", warc_date()),
                                          ("WARC-Filename", "c1-00000-host.warc.gz")],
                             (warcinfo_fields({"software": "tests"}),),
                             content_type="application/warc-fields", digests=False)
    members, lines = [info], []
    rng = random.Random(1)
    for i in range(pairs):
        body = (rng.randbytes(3 << 20) if i == pairs - 1
                else f"<html><p>page {i}</p></html>".encode() * 50)
        response, request, line = _write_response(
            warc, f"https://example.org/news/2025/{i}.html", body,
            "Text/HTML; charset=UTF-8" if i % 2 else "text/html", info.record_id)
        members += [response, request]
        lines.append(line)
        if revisits and i == 0:
            for status, profile, digest, digests in [
                (304, "http://netpreserve.org/warc/1.1/revisit/server-not-modified",
                 response.payload_digest or "", False),
                (200, "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest",
                 response.payload_digest or "", True),
            ]:
                record, line = _write_revisit(warc, f"https://example.org/news/2025/{i}.html",
                                              status, profile, digest, digests)
                members.append(record)
                lines.append(line)
    warc.close()
    return Written(warc.path, members, lines)


def crashed_copy(written: Written, directory: Path, size: int, extra: bytes = b"") -> Path:
    """The ``.open`` a kill would leave: the first `size` bytes, then `extra`."""
    directory.mkdir()
    open_path = directory / (written.path.name + ".open")
    with open(written.path, "rb") as src, open(open_path, "wb") as dst:
        dst.write(src.read(size) + extra)
    return open_path


def count_records(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in ArchiveIterator(f))


def end(record: WrittenRecord) -> int:
    return record.offset + record.length


def incomplete_member() -> bytes:
    """A gzip member that is whole as gzip but holds a record cut short: Content-Length 1000,
    10 bytes of block."""
    gz = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    head = (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:x>\r\n"
            b"WARC-Date: 2025-01-01T00:00:00Z\r\nContent-Length: 1000\r\n\r\n")
    return gz.compress(head + b"0123456789") + gz.flush()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    return write_warc(tmp_path_factory.mktemp("warc"))


def _cases(w: Written) -> dict[str, tuple[int, bytes, int]]:
    """name -> (bytes kept from the real file, bytes appended, records expected to survive)."""
    last = w.members[-1]
    return {
        "member_end": (end(w.members[4]), b"", 5),
        "whole_file": (end(last), b"", len(w.members)),
        "mid_last_member": (last.offset + last.length // 2, b"", len(w.members) - 1),
        "mid_big_member": (w.members[-2].offset + 1_500_000, b"", len(w.members) - 2),
        "in_gzip_header": (last.offset + 5, b"", len(w.members) - 1),
        "in_warc_header": (last.offset + 40, b"", len(w.members) - 1),
        "incomplete_record": (end(last), incomplete_member(), len(w.members)),
        "zeros_after": (end(w.members[2]), b"\0" * 4096, 3),
        "in_warcinfo": (w.members[0].length - 3, b"", 0),
    }


@pytest.mark.parametrize("case", ["member_end", "whole_file", "mid_last_member", "mid_big_member",
                                  "in_gzip_header", "in_warc_header", "incomplete_record",
                                  "zeros_after", "in_warcinfo"])
def test_repair_warc(written: Written, tmp_path: Path, case: str,
                     caplog: pytest.LogCaptureFixture) -> None:
    size, extra, expected = _cases(written)[case]
    open_path = crashed_copy(written, tmp_path / case, size, extra)
    final = open_path.with_name(written.path.name)
    if case == "in_warc_header":  # the cut really falls inside the compressed WARC header
        partial = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(
            open_path.read_bytes()[written.members[-1].offset:])
        assert b"\r\n\r\n" not in partial

    with caplog.at_level(logging.WARNING, logger="crawler.capture.repair"):
        result = repair_warc(open_path, final)

    kept = end(written.members[expected - 1]) if expected else 0
    assert not open_path.exists()
    assert result.records == expected
    assert result.size == kept
    assert result.cut == size + len(extra) - kept
    if result.cut:
        assert f"{open_path}" in caplog.text and f"offset {kept}" in caplog.text
        assert f"cutting {result.cut} byte" in caplog.text
    else:
        assert not caplog.text
    if expected == 0:
        assert not final.exists()
        return
    data = final.read_bytes()
    assert data == written.path.read_bytes()[:kept]
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert count_records(final) == expected
    check = subprocess.run([WARCIO, "check", str(final)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_index_lines_match_the_crawl(tmp_path: Path) -> None:
    w = write_warc(tmp_path, pairs=3, revisits=True)
    assert list(index_lines(w.path, KEY)) == w.lines
    assert any('"mime": "warc/revisit", "status": "304"' in line for line in w.lines)


def test_index_lines_of_a_repaired_warc(written: Written, tmp_path: Path) -> None:
    last = written.members[-1]
    open_path = crashed_copy(written, tmp_path / "crash", last.offset + 100)
    final = open_path.with_name(written.path.name)
    repair_warc(open_path, final)
    # the last response survives, its request does not: every response keeps its line
    assert list(index_lines(final, KEY)) == written.lines


def _text_records(n: int) -> list[dict[str, object]]:
    rng = random.Random(2)
    return [{"url": f"https://example.org/news/2025/{i}.html", "language": "ru",
             "text": "Текст " + rng.randbytes(3000).hex()} for i in range(n)]


def _crashed_text(directory: Path, records: list[dict[str, object]], sync: bool) -> Path:
    """A text shard written as a crawl writes it and never closed; the bytes on disk."""
    path = directory / "shard.jsonl.gz.open"
    raw = open(path, "xb")
    gz = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)
    for record in records:
        gz.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        if sync:
            gz.flush(zlib.Z_SYNC_FLUSH)
    raw.flush()
    crashed = directory / "crashed" / path.name
    crashed.parent.mkdir()
    shutil.copyfile(path, crashed)  # the kill: what is on disk now is all there is
    gz.close()
    raw.close()
    return crashed


@pytest.mark.parametrize("sync", [False, True])
def test_salvage_text(tmp_path: Path, sync: bool) -> None:
    records = _text_records(50)
    open_path = _crashed_text(tmp_path, records, sync)
    final = open_path.with_name("shard.jsonl.gz")

    kept, sha256 = salvage_text(open_path, final)

    assert not open_path.exists()
    assert not final.with_name(final.name + ".part").exists()
    with gzip.open(final, "rt", encoding="utf-8") as f:
        recovered = [json.loads(line) for line in f]
    assert kept == len(recovered)
    assert recovered == records[:kept]
    assert kept == 50 if sync else 0 < kept < 50
    assert sha256 == hashlib.sha256(final.read_bytes()).hexdigest()


def test_salvage_text_of_a_closed_shard(tmp_path: Path) -> None:
    """Killed between closing the shard and renaming it: every record is kept."""
    records = _text_records(5)
    open_path = tmp_path / "shard.jsonl.gz.open"
    with gzip.GzipFile(open_path, mode="wb", mtime=0) as gz:
        for record in records:
            gz.write(json.dumps(record).encode() + b"\n")
    kept, _ = salvage_text(open_path, tmp_path / "shard.jsonl.gz")
    assert kept == 5
