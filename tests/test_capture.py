"""The capture writer on its own (no Scrapy, no store): WARC shards with their CDXJ index and
text shard, rotated by size, handed over when finished, and the revisit policy."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from crawler.capture.cdxj import REVISIT_MIME, cdxj_fields
from crawler.capture.payloads import PayloadIndex
from crawler.capture.warc import sha1_digest, warc_date
from crawler.capture.writer import (
    REVISIT_IDENTICAL,
    REVISIT_NOT_MODIFIED,
    CaptureWriter,
    Exchange,
)
from crawler.records import FileEntry
from crawler.store.state import conditional_headers

CRAWL_ID = "wire-20250814T100000Z"
SITE = "https://news.example"
REASONS = {200: "OK", 304: "Not Modified", 404: "Not Found"}


def exchange(path: str, body: bytes = b"<html><p>Story</p></html>", *, status: int = 200,
             outlet: str | None = "wire", etag: str | None = None) -> Exchange:
    return Exchange(
        url=SITE + path, date=warc_date(), ip_address="192.0.2.7", status=status,
        mime="text/html",
        request_head=f"GET {path} HTTP/1.1\r\nHost: news.example\r\n\r\n".encode(),
        request_body=b"",
        response_head=(f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: text/html\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode(),
        response_body=body, outlet=outlet, etag=etag)


def noise(seed: int, size: int = 1500) -> bytes:
    """A body gzip cannot shrink: the WARC grows by about its size."""
    return random.Random(seed).randbytes(size)


class Capture:
    """A writer into `root`, with what it hands out: finished shards and state updates. It
    looks archived URLs up in `archived`."""

    def __init__(self, root: Path, max_size: int = 1 << 20,
                 payloads: PayloadIndex | None = None) -> None:
        self.root = root
        self.archived: dict[str, dict[str, Any]] = {}
        self.finished: list[list[FileEntry]] = []
        self.observed: list[dict[str, Any]] = []
        self.writer = CaptureWriter(root, CRAWL_ID, "host", {"isPartOf": CRAWL_ID}, max_size,
                                    previous=self.archived.get, observe=self.observed.append,
                                    on_finished=self.finished.append, payloads=payloads)


def read_warc(path: Path) -> list[tuple[str, dict[str, str], bytes]]:
    """Each record's type, WARC headers and block (for HTTP records: the payload as stored),
    its digests checked."""
    records = []
    with open(path, "rb") as f:
        for record in ArchiveIterator(f, check_digests="raise"):
            records.append((record.rec_type, dict(record.rec_headers.headers),
                            record.raw_stream.read()))
    return records


def read_member(path: Path, offset: int, length: int) -> Any:
    """The one record at `offset` (`length` bytes: its gzip member), payload read."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    (record,) = [(r.rec_type, dict(r.rec_headers.headers), r.http_headers.get_statuscode(),
                  r.raw_stream.read()) for r in ArchiveIterator(io.BytesIO(data))]
    return record


def write_rotating(root: Path) -> tuple[Capture, list[list[Exchange]]]:
    """Five exchanges into WARCs of 3,000 bytes: two fill a shard, the last is closed by
    `close`. Each shard's second URL sorts before its first."""
    capture = Capture(root, max_size=3000)
    shards: list[list[Exchange]] = [[], [], []]
    for i in range(5):
        ex = exchange(f"/news/{9 - i}", noise(i))
        capture.writer.write_exchange(ex)
        shards[i // 2].append(ex)
    assert len(capture.finished) == 2  # the full ones; the third is still open
    assert capture.writer.close() == []
    return capture, shards


def test_each_full_shard_hands_over_its_warc_index_and_text_as_they_are_on_disk(
        tmp_path: Path) -> None:
    capture, shards = write_rotating(tmp_path)
    assert len(capture.finished) == 3
    for serial, entries in enumerate(capture.finished):
        base = f"{CRAWL_ID}-{serial:05d}-host"
        assert [(e.kind, e.key) for e in entries] == [
            ("warc", f"crawls/{CRAWL_ID}/warc/{base}.warc.gz"),
            ("index", f"crawls/{CRAWL_ID}/index/{base}.cdxj"),
            ("text", f"crawls/{CRAWL_ID}/text/{base}.jsonl.gz")]
        for entry in entries:
            data = (tmp_path / entry.key).read_bytes()
            assert (entry.size, entry.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert entries[0].extra == {"records": len(shards[serial]), "revisits": {}}
    # nothing half-written is left beside them
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        e.key.rsplit("/", 1)[1] for entries in capture.finished for e in entries)


def test_a_warc_reads_back_as_warcinfo_then_response_and_request_pairs(
        tmp_path: Path) -> None:
    capture, shards = write_rotating(tmp_path)
    for entries, exchanges in zip(capture.finished, shards, strict=True):
        warc_key = entries[0].key
        (info_type, info, _), *pairs = read_warc(tmp_path / warc_key)
        assert info_type == "warcinfo"
        assert info["WARC-Filename"] == warc_key.rsplit("/", 1)[1]
        assert len(pairs) == 2 * len(exchanges)
        for ex, response, request in zip(exchanges, pairs[::2], pairs[1::2], strict=True):
            assert [response[0], request[0]] == ["response", "request"]
            assert response[1]["WARC-Target-URI"] == request[1]["WARC-Target-URI"] == ex.url
            assert request[1]["WARC-Concurrent-To"] == response[1]["WARC-Record-ID"]
            assert response[1]["WARC-Warcinfo-ID"] == info["WARC-Record-ID"]
            assert response[1]["WARC-Payload-Digest"] == sha1_digest(ex.response_body)
            assert response[2] == ex.response_body
            assert request[2] == b""  # a GET: the request head only


def test_the_index_is_sorted_and_each_line_points_at_its_response_record(
        tmp_path: Path) -> None:
    capture, shards = write_rotating(tmp_path)
    indexed = []
    for (warc, index, _text), exchanges in zip(capture.finished, shards, strict=True):
        lines = (tmp_path / index.key).read_bytes().splitlines()
        assert lines == sorted(lines) and len(lines) == len(exchanges)
        for line in lines:
            fields = cdxj_fields(line)
            assert fields["filename"] == warc.key
            record_type, headers, status, payload = read_member(
                tmp_path / warc.key, int(fields["offset"]), int(fields["length"]))
            assert record_type == "response" and headers["WARC-Target-URI"] == fields["url"]
            assert status == fields["status"] == "200"
            assert "sha1:" + fields["digest"] == sha1_digest(payload)
            indexed.append(fields["url"])
    assert sorted(indexed) == sorted(ex.url for exchanges in shards for ex in exchanges)


def test_a_shard_is_finished_only_once_its_announced_text_has_arrived(
        tmp_path: Path) -> None:
    capture = Capture(tmp_path)
    writer = capture.writer
    article = writer.write_exchange(exchange("/news/1"))
    text_key = writer.begin_text(article.warc_key)  # the page is being extracted ...
    writer.rotate()  # ... when its WARC is closed, and the next one opened
    later = writer.write_exchange(exchange("/news/2"))
    assert later.warc_key != article.warc_key
    # another page of the closed WARC, announced now, goes to its text shard too
    assert writer.begin_text(article.warc_key) == text_key
    assert capture.finished == []

    record = {"url": SITE + "/news/1", "outlet": "wire", "language": "en", "title": "Story",
              "text": "Story.", "fetched_at": "2025-08-14T10:00:00Z"}
    writer.add_text(text_key, record)
    assert capture.finished == []  # one announced text is still to come
    writer.add_text(text_key, None)  # no new text for the other page after all
    ((warc, _index, text),) = capture.finished
    assert (warc.key, text.key) == (article.warc_key, text_key)
    with gzip.open(tmp_path / text_key, "rt", encoding="utf-8") as f:
        assert [json.loads(line) for line in f] == [record]
    assert text.extra["records"] == 1 and text.extra["outlets"] == {"wire": 1}
    assert writer.close() == []


def test_a_shard_waits_for_the_spiders_word_on_its_pages_so_texts_join_their_capture(
        tmp_path: Path) -> None:
    """A page's WARC may fill up before the spider has read the page: its shard does not
    finish until the spider said whether a text follows (an article's text announced, or
    ``decided``), so the text goes into the shard of its capture, not a later one."""
    capture = Capture(tmp_path)
    writer = capture.writer
    article = writer.write_exchange(replace(exchange("/news/1"), awaits_spider=True))
    section = writer.write_exchange(replace(exchange("/section/"), awaits_spider=True))
    writer.rotate()  # the WARC is full before the spider read either page
    assert capture.finished == []
    writer.write_exchange(exchange("/robots.txt"))  # the crawl goes on in the next WARC
    writer.decided(section.warc_key)  # not an article
    assert capture.finished == []
    text_key = writer.begin_text(article.warc_key)  # an article: its text joins its capture
    assert capture.finished == []
    writer.add_text(text_key, None)
    ((warc, _index, text),) = capture.finished
    assert (warc.key, text.key) == (article.warc_key, text_key)


def test_closing_finishes_a_shard_whose_text_never_arrived_and_names_it(
        tmp_path: Path) -> None:
    capture = Capture(tmp_path)
    article = capture.writer.write_exchange(exchange("/news/1"))
    capture.writer.begin_text(article.warc_key)
    assert capture.writer.close() == [f"{CRAWL_ID}-00000-host: 1"]
    ((_warc, _index, text),) = capture.finished
    assert text.extra["records"] == 0 and (tmp_path / text.key).exists()


def test_an_archived_payload_or_a_304_is_recorded_as_a_revisit(tmp_path: Path) -> None:
    capture = Capture(tmp_path)
    writer = capture.writer
    body = b"<html><p>The same story</p></html>"
    first = writer.write_exchange(exchange("/news/1", body, etag='"v1"'))
    (full,) = capture.observed
    # a full capture's update is what the archive needs to find it again
    assert full == {"url": SITE + "/news/1", "outlet": "wire", "etag": '"v1"',
                    "last_modified": None, "digest": sha1_digest(body),
                    "warc_file": first.warc_key, "warc_offset": first.offset,
                    "warc_length": first.length, "record_id": first.record_id,
                    "captured_at": full["last_checked"], "last_checked": full["last_checked"],
                    "first_seen": full["last_checked"]}
    capture.archived[full["url"]] = full  # as the next crawl finds it in the archive's state

    same = writer.write_exchange(exchange("/news/1", body))
    not_modified = writer.write_exchange(exchange("/news/1", b"", status=304, etag='"v2"'))
    changed = writer.write_exchange(exchange("/news/1", body + b"<p>Update</p>"))
    robots = writer.write_exchange(exchange("/robots.txt", body, outlet=None))
    assert [same.profile, not_modified.profile, changed.profile, robots.profile] == [
        REVISIT_IDENTICAL, REVISIT_NOT_MODIFIED, None, None]
    assert same.payload_digest == not_modified.payload_digest == full["digest"]

    _, *updates = capture.observed  # robots.txt is no outlet's: no state update
    assert [sorted(u) for u in updates[:2]] == [
        ["first_seen", "last_checked", "outlet", "url"],  # checked, nothing else learnt
        ["etag", "first_seen", "last_checked", "last_modified", "outlet", "url"]]
    assert updates[1]["etag"] == '"v2"'  # the server's new validator is kept
    assert updates[2]["warc_offset"] == changed.offset and len(updates) == 3

    writer.close()
    ((warc, index, _text),) = capture.finished
    records = [r for r in read_warc(tmp_path / warc.key) if r[0] != "request"]
    revisits = [headers for kind, headers, _ in records if kind == "revisit"]
    assert [headers["WARC-Profile"] for headers in revisits] == [
        REVISIT_IDENTICAL, REVISIT_NOT_MODIFIED]
    for headers in revisits:
        assert headers["WARC-Refers-To"] == first.record_id
        assert headers["WARC-Refers-To-Target-URI"] == SITE + "/news/1"
        assert headers["WARC-Payload-Digest"] == full["digest"]
    assert [kind for kind, *_ in records] == [
        "warcinfo", "response", "revisit", "revisit", "response", "response"]
    assert all(block == b"" for kind, _, block in records if kind == "revisit")  # head only
    mimes = sorted((int(cdxj_fields(line)["offset"]), cdxj_fields(line)["mime"])
                   for line in (tmp_path / index.key).read_bytes().splitlines())
    assert [mime for _, mime in mimes] == [
        "text/html", REVISIT_MIME, REVISIT_MIME, "text/html", "text/html"]
    assert warc.extra["revisits"] == {"revisits/identical-payload-digest": 1,
                                      "revisits/server-not-modified": 1}


def test_a_requisite_payload_under_another_url_is_stored_once_in_this_crawl_and_the_next(
        tmp_path: Path) -> None:
    """A logo behind two cache-busting URLs: the second is a revisit of the first, and its URL
    takes the first's capture as its own, so that the next crawl, whichever URL it asks for
    first, asks conditionally and stores no copy again."""
    logo = noise(7)
    last_modified = "Mon, 07 Dec 2026 04:00:00 GMT"

    def requisite(path: str, body: bytes, status: int = 200) -> Exchange:
        return replace(exchange(path, body, status=status), requisite=True,
                       last_modified=last_modified)

    crawl = Capture(tmp_path / "first", payloads=PayloadIndex(tmp_path / "first.sqlite"))
    original = crawl.writer.write_exchange(requisite("/logo.png?v=2", logo))
    copy = crawl.writer.write_exchange(requisite("/logo.png?v=1", logo))
    assert (original.profile, copy.profile) == (None, REVISIT_IDENTICAL)
    _, copied = crawl.observed
    assert copied["refers_to"] == SITE + "/logo.png?v=2"
    assert (copied["record_id"], copied["warc_file"], copied["warc_offset"]) == (
        original.record_id, original.warc_key, original.offset)
    assert conditional_headers(copied) == {"If-Modified-Since": last_modified}

    again = Capture(tmp_path / "again", payloads=PayloadIndex(tmp_path / "again.sqlite"))
    again.archived.update({update["url"]: update for update in crawl.observed})
    not_modified = again.writer.write_exchange(requisite("/logo.png?v=1", b"", status=304))
    resent = again.writer.write_exchange(requisite("/logo.png?v=1", logo))
    assert (not_modified.profile, resent.profile) == (REVISIT_NOT_MODIFIED, REVISIT_IDENTICAL)
    again.writer.close()
    ((warc, _index, _text),) = again.finished
    revisits = [headers for kind, headers, _ in read_warc(again.root / warc.key)
                if kind == "revisit"]
    for headers in revisits:  # where the payload is, not the URL asked for
        assert headers["WARC-Refers-To"] == original.record_id
        assert headers["WARC-Refers-To-Target-URI"] == SITE + "/logo.png?v=2"
    assert len(revisits) == 2

    # new bytes under the copy's URL are its own capture again
    again.archived.update({update["url"]: update for update in again.observed})
    changed = again.writer.write_exchange(requisite("/logo.png?v=1", noise(8)))
    assert changed.profile is None
    assert again.observed[-1]["refers_to"] is None
