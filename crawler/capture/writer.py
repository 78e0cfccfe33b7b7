"""One crawl's capture files: WARC shards with their CDXJ index and text shard, rotated by size.

Nothing here knows Scrapy or the archive store: the writer is called on one thread (the crawl's
writer thread, so records are written in order and never on the reactor), writes into a local
directory that mirrors archive keys, and hands each finished shard's files to ``on_finished``
(which uploads them). A WARC is closed when it reaches its size; its index and text shard close
with it once the spider has had its word on every page captured in it and every text announced
for it has arrived (so an article's text is in the shard of its capture).

A write that fails (a full disk) raises ``OSError`` and leaves every file at its last whole
record: an exchange is written whole (response, request, index line) or cut off again, so the
WARC's size and sha256 always describe whole records. A shard that cannot be finished is left
as it is (``unfinished``) for ``crawl --resume`` to repair.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from crawler.capture.cdxj import REVISIT_MIME, cdxj_line, timestamp14, write_sorted
from crawler.capture.payloads import PayloadIndex
from crawler.capture.text_shard import TextShard
from crawler.capture.warc import (
    HashingFile,
    WarcFile,
    WrittenRecord,
    sha1_digest,
    warc_date,
    warcinfo_fields,
)
from crawler.files import sha256_file
from crawler.layout import shard_basename, shard_keys
from crawler.records import FileEntry

REVISIT_IDENTICAL = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
REVISIT_NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange as it crossed the wire, ready to be recorded."""

    url: str
    date: str
    ip_address: str | None
    status: int
    mime: str
    request_head: bytes
    request_body: bytes
    response_head: bytes
    response_body: bytes
    truncated: bool = False  # cut off at max_page_size
    outlet: str | None = None  # whose state this URL belongs to (None: robots.txt and such)
    requisite: bool = False  # loaded by a page: its payload may be stored under another URL
    # a whole page the spider reads next: its text, if it is an article, goes in this shard,
    # which waits for the spider's word (``begin_text`` or ``decided``) before it finishes
    awaits_spider: bool = False
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class _Shard:
    basename: str
    keys: dict[str, str]
    warc: WarcFile
    warcinfo_id: str
    index_unsorted: Path
    index: HashingFile
    text: TextShard
    pending_texts: int = 0
    undecided: int = 0  # pages captured here the spider has not yet said are articles or not
    responses: int = 0
    revisits: Counter = field(default_factory=Counter)


class CaptureWriter:
    """The crawl's open shard and those closed but waiting for texts.

    `previous(url)` is what the archive already holds for a URL (its state entry, or None);
    `observe(update)` records what the URL's state learns; `on_finished(entries)` takes a
    finished shard's three files; `payloads`, the crawl's first capture of each requisite
    payload, makes the same bytes under another URL a revisit."""

    def __init__(self, root: Path, crawl_id: str, hostname: str, warcinfo: dict[str, str],
                 max_size: int, *, previous: Callable[[str], dict[str, Any] | None],
                 observe: Callable[[dict[str, Any]], None],
                 on_finished: Callable[[list[FileEntry]], None],
                 payloads: PayloadIndex | None = None) -> None:
        self.root = root
        self.crawl_id = crawl_id
        self.hostname = hostname
        self.warcinfo = warcinfo
        self.max_size = max_size
        self.previous = previous
        self.observe = observe
        self.on_finished = on_finished
        self.payloads = payloads
        self.serial = 0
        self._shard: _Shard | None = None
        self._closed: list[_Shard] = []
        self.unfinished: list[str] = []  # shards a failed write left for repair

    def write_exchange(self, ex: Exchange) -> WrittenRecord:
        """The response as a full record, or as a revisit when the archive already holds its
        payload (identical digest: under this URL, or for a requisite under any URL of the
        crawl) or the server says it has not changed (304); then the request. The URL's state
        learns what happened."""
        shard = self._current()
        common = [("WARC-Date", ex.date), ("WARC-Target-URI", ex.url),
                  ("WARC-IP-Address", ex.ip_address), ("WARC-Warcinfo-ID", shard.warcinfo_id)]
        digest = sha1_digest(ex.response_body)
        own = self.previous(ex.url) if ex.outlet else None
        profile = revisit_profile(ex, digest, own)
        original = original_capture(own) if profile else None
        shared = self.payloads is not None and ex.requisite and _whole_payload(ex)
        if shared and profile is None and (first := self.payloads.first(digest)):
            original, profile = first, REVISIT_IDENTICAL
        marks = shard.warc.mark(), shard.index.mark()
        try:
            response = self._write_records(shard, ex, common, digest, profile, original)
        except OSError:
            shard.warc.rollback(marks[0])
            shard.index.rollback(marks[1])
            raise
        if shared and profile in (None, REVISIT_IDENTICAL):
            self.payloads.add(original or original_capture(
                {"url": ex.url, "captured_at": ex.date, "digest": digest,
                 "record_id": response.record_id, **_pointer(response)}))
        shard.responses += 1
        shard.undecided += ex.awaits_spider
        if profile:
            shard.revisits[f"revisits/{profile.rsplit('/', 1)[1]}"] += 1
        if ex.outlet and (profile or (ex.status == 200 and not ex.truncated)):
            self.observe(state_update(ex, response, profile, original, own))
        if shard.warc.size >= self.max_size:
            self.rotate()
        return response

    def _write_records(self, shard: _Shard, ex: Exchange, common: list[tuple[str, str | None]],
                       digest: str, profile: str | None, original: dict[str, Any] | None
                       ) -> WrittenRecord:
        """The exchange's response (or revisit) and request records and its index line."""
        if profile and original:
            response = shard.warc.write_record(
                "revisit",
                _fields(*common, ("WARC-Profile", profile),
                        ("WARC-Refers-To", original["record_id"]),
                        ("WARC-Refers-To-Target-URI", original["url"]),
                        ("WARC-Refers-To-Date", original["captured_at"]),
                        ("WARC-Payload-Digest", original["digest"]),
                        # WARC 1.1 6.7.2: an identical-digest revisit's block is the head only
                        ("WARC-Truncated", "length" if profile == REVISIT_IDENTICAL else None)),
                (ex.response_head,), content_type="application/http; msgtype=response")
            response = replace(response, payload_digest=original["digest"], profile=profile)
        else:
            response = shard.warc.write_record(
                "response",
                _fields(*common, ("WARC-Truncated", "length" if ex.truncated else None)),
                (ex.response_head, ex.response_body),
                content_type="application/http; msgtype=response", payload_digest=digest)
        shard.warc.write_record(
            "request",
            _fields(("WARC-Date", ex.date), ("WARC-Target-URI", ex.url),
                    ("WARC-Concurrent-To", response.record_id),
                    ("WARC-Warcinfo-ID", shard.warcinfo_id)),
            (ex.request_head, ex.request_body) if ex.request_body else (ex.request_head,),
            content_type="application/http; msgtype=request",
        )
        shard.index.write(cdxj_line(ex.url, timestamp14(ex.date),
                                    mime=REVISIT_MIME if profile else ex.mime,
                                    status=ex.status, digest=response.payload_digest or "",
                                    length=response.length, offset=response.offset,
                                    filename=response.warc_key).encode("utf-8"))
        return response

    def begin_text(self, warc_key: str) -> str:
        """Announce a text record for a capture: its shard stays open for it. Returns the text
        shard's key."""
        captured_in = self._shard_for(warc_key)
        if captured_in is not None and captured_in.undecided:
            captured_in.undecided -= 1  # the spider's word: an article
        shard = captured_in or self._current()
        shard.pending_texts += 1
        return shard.text.key

    def decided(self, warc_key: str) -> None:
        """The spider's word on a page captured in `warc_key`: no text follows (not an
        article, or nothing new); its shard may finish."""
        shard = self._shard_for(warc_key)
        if shard is not None and shard.undecided:
            shard.undecided -= 1
            self._finish_ready()

    def add_text(self, text_key: str, record: dict[str, Any] | None) -> None:
        """Deliver an announced text record (None: no new text after all)."""
        shard = next((s for s in (self._shard, *self._closed)
                      if s is not None and s.text.key == text_key), None)
        if shard is None:
            raise RuntimeError(f"text shard {text_key} is already closed")
        shard.pending_texts -= 1
        try:
            if record is not None:
                shard.text.add(record)
        finally:  # a record that cannot be written is not awaited: the shard may finish
            self._finish_ready()

    def rotate(self) -> None:
        """Close the open WARC; its shard finishes once its texts are in."""
        shard = self._shard
        if shard is None:
            return
        self._shard = None
        shard.warc.close()
        shard.index.close()
        self._closed.append(shard)
        self._finish_ready()

    def close(self) -> list[str]:
        """Close every shard, without the texts that never arrived; returns the names of shards
        that missed some. Raises ``OSError`` when a shard cannot be finished."""
        self.rotate()
        incomplete = []
        for shard in self._closed:
            if shard.pending_texts:
                incomplete.append(f"{shard.basename}: {shard.pending_texts}")
            shard.pending_texts = shard.undecided = 0
        self._finish_ready()
        return incomplete

    # ---------------------------------------------------------------- shards

    def _current(self) -> _Shard:
        if self._shard is None:
            self._shard = self._open_shard()
        return self._shard

    def _open_shard(self) -> _Shard:
        basename = shard_basename(self.crawl_id, self.serial, self.hostname)
        self.serial += 1
        keys = shard_keys(self.crawl_id, basename)
        warc = WarcFile(self.root / keys["warc"], keys["warc"])
        index_unsorted = self.root / (keys["index"] + ".unsorted")
        try:
            written = warc.write_record(
                "warcinfo", [("WARC-Date", warc_date()),
                             ("WARC-Filename", keys["warc"].rsplit("/", 1)[1])],
                (warcinfo_fields(self.warcinfo),), content_type="application/warc-fields",
                digests=False)
            index_unsorted.parent.mkdir(parents=True, exist_ok=True)
            return _Shard(basename, keys, warc, written.record_id, index_unsorted,
                          HashingFile(index_unsorted),
                          TextShard(self.root / keys["text"], keys["text"]))
        except OSError:  # a shard without a whole record is no shard
            warc.discard()
            index_unsorted.unlink(missing_ok=True)
            raise

    def _shard_for(self, warc_key: str) -> _Shard | None:
        for shard in (self._shard, *self._closed):
            if shard is not None and shard.warc.key == warc_key:
                return shard
        return None

    def _finish_ready(self) -> None:
        for shard in [s for s in self._closed if s.pending_texts == 0 and s.undecided == 0]:
            self._closed.remove(shard)
            try:
                entries = self._finish(shard)
            except OSError:
                self.unfinished.append(shard.basename)
                raise
            self.on_finished(entries)

    def _finish(self, shard: _Shard) -> list[FileEntry]:
        """Close the text shard and sort the index: the shard's three files are final."""
        text = shard.text.close()
        index_path = self.root / shard.keys["index"]
        write_sorted(shard.index_unsorted, index_path)
        shard.index_unsorted.unlink()
        return [
            FileEntry(shard.warc.key, shard.warc.path.stat().st_size, shard.warc.sha256, "warc",
                      {"records": shard.responses, "revisits": dict(shard.revisits)}),
            FileEntry(shard.keys["index"], index_path.stat().st_size, sha256_file(index_path),
                      "index"),
            text,
        ]


def revisit_profile(ex: Exchange, digest: str, previous: dict[str, Any] | None) -> str | None:
    """The revisit profile an exchange gets, if any: the server said "not modified", or sent the
    archived payload again (an empty payload is no copy worth saving). An archived capture
    whose text was never written (``needs_text``) gets none: the new one is extracted."""
    if previous is None or not previous.get("record_id") or previous.get("needs_text"):
        return None
    if ex.status == 304:
        return REVISIT_NOT_MODIFIED
    if _whole_payload(ex) and digest == previous.get("digest"):
        return REVISIT_IDENTICAL
    return None


def _whole_payload(ex: Exchange) -> bool:
    """A payload a revisit may stand for: whole, and not empty (no copy worth saving)."""
    return ex.status == 200 and bool(ex.response_body) and not ex.truncated


def original_capture(entry: dict[str, Any]) -> dict[str, Any]:
    """The full capture that holds a URL's archived payload, from its state entry: its own, or
    the one under another URL that its identical-payload revisit referred to (``refers_to``)."""
    return {"url": entry.get("refers_to") or entry["url"],
            **{k: entry.get(k) for k in ("captured_at", "record_id", "digest", *_POINTER)}}


def state_update(ex: Exchange, written: WrittenRecord, profile: str | None,
                 original: dict[str, Any] | None, own: dict[str, Any] | None) -> dict[str, Any]:
    """What the URL's state learns from an exchange: a full capture replaces the archived
    one; a revisit only marks the check (and refreshes the validators), but a revisit of
    another URL's payload makes that capture this URL's own (``refers_to`` it), so that the
    next crawl asks for it conditionally and its revisit refers to where the payload is."""
    update: dict[str, Any] = {"url": ex.url, "outlet": ex.outlet, "last_checked": ex.date,
                              "first_seen": ex.date}
    if ex.etag or ex.last_modified or not profile:
        update.update(etag=ex.etag, last_modified=ex.last_modified)
    if not profile:
        update.update(digest=written.payload_digest, record_id=written.record_id,
                      captured_at=ex.date, **_pointer(written))
        if own and own.get("refers_to"):
            update["refers_to"] = None
    elif original and original["url"] != ex.url:
        update.update(original, url=ex.url, refers_to=original["url"])
    return update


_POINTER = ("warc_file", "warc_offset", "warc_length")


def _pointer(written: WrittenRecord) -> dict[str, Any]:
    return dict(zip(_POINTER, (written.warc_key, written.offset, written.length), strict=True))


def _fields(*pairs: tuple[str, str | None]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in pairs if v]
