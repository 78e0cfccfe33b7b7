"""The archive's clean text, filtered, deduplicated, as JSON Lines, text, WET or Parquet; or, with
``--stats``, a dataset card of what the dump would hold (`newsarchive dump`).

Only complete crawls (those with a manifest) are read, each in its newest committed text
version. Shards are chosen from the manifests before any is opened: a shard whose outlets,
languages or date range cannot match is skipped, and one whose metadata proves that every
document matches is passed through without a per-document check. Shards are streamed (from S3,
chunk by chunk from the GET body). A deduplicated dump reads the chosen shards twice: the first
pass keeps a small fingerprint per document (`crawler.readers.neardup`), the second writes the kept
documents, stopping at a shard's last kept line.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from fnmatch import translate
from typing import IO, TYPE_CHECKING, Any

from crawler.errors import StoreError, UsageError
from crawler.extraction.scripts import word_count
from crawler.readers.dump_formats import (
    JsonlWriter,
    Output,
    ParquetDocumentsWriter,
    TxtWriter,
    WetWriter,
    Writer,
    document_day,
)
from crawler.readers.listing import committed, list_crawls, read_lines, text_entries
from crawler.store.backends import ArchiveStore

if TYPE_CHECKING:  # numpy is imported when a dump runs, not with every command
    from crawler.readers.neardup import Decision, Deduplicator


def complete_manifests(store: ArchiveStore, crawl_ids: list[str]) -> list[dict[str, Any]]:
    """Manifests of the complete crawls (all, or those named: a named crawl that is incomplete
    or absent is an error, not an empty dump)."""
    listings = {c.crawl_id: c for c in list_crawls(store)}
    for crawl_id in crawl_ids:
        if crawl_id not in listings:
            raise UsageError(f"no crawl {crawl_id} in {store.uri}")
        if listings[crawl_id].broken:
            raise UsageError(f"crawl {crawl_id}: {listings[crawl_id].broken}: not dumped")
        if listings[crawl_id].manifest is None:
            raise UsageError(f"crawl {crawl_id} is incomplete (no manifest yet): not dumped")
    return committed(listings.values(), crawl_ids)


def _writer(fmt: str, output: Output, fields: tuple[str, ...] | None, uri: str,
            selection: Selection, dedup: Deduplicator | None) -> Writer:
    if fmt == "jsonl":
        return JsonlWriter(output.stream(), fields)
    if fmt == "txt":
        return TxtWriter(output.stream())
    if fmt == "parquet":
        return ParquetDocumentsWriter(output.stream(), fields)
    return WetWriter(output, {"description": "clean article text (newsarchive dump)",
                              "isPartOf": uri, "selection": selection.describe(),
                              "deduplication": _dedup_description(dedup)})


# ---------------------------------------------------------------- selection


@dataclass
class Selection:
    """The dump's filters, applied to a shard's manifest entry first, then to its documents."""

    outlets: set[str] = field(default_factory=set)
    languages: set[str] = field(default_factory=set)
    since: str | None = None
    until: str | None = None
    min_words: int = 0
    url_globs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._url = re.compile("|".join(translate(g) for g in self.url_globs)) \
            if self.url_globs else None

    def shard(self, entry: dict[str, Any]) -> bool | None:
        """False: no document of the shard can match; True: every one does (its metadata says
        so); None: its documents must be checked one by one."""
        records = entry.get("records")
        if records == 0:
            return False
        proven = records is not None and not self.min_words and not self._url
        for wanted, counts in ((self.outlets, entry.get("outlets")),
                               (self.languages, entry.get("languages"))):
            if not wanted:
                continue
            if counts is None:
                proven = False
                continue
            if not wanted & set(counts):
                return False
            proven = proven and set(counts) <= wanted and sum(counts.values()) == records
        if self.since or self.until:
            span = entry.get("date_range")
            if not span:
                return None
            low, high = span
            if (self.since and high[:len(self.since)] < self.since) or \
                    (self.until and low[:len(self.until)] > self.until):
                return False
            proven = proven and self._in_dates(low) and self._in_dates(high)
        return True if proven else None

    def _in_dates(self, day: str) -> bool:
        return (not self.since or day[:len(self.since)] >= self.since) and \
            (not self.until or day[:len(self.until)] <= self.until)

    def matches(self, record: dict[str, Any]) -> bool:
        if self.outlets and record.get("outlet") not in self.outlets:
            return False
        if self.languages and (record.get("language") or "und") not in self.languages:
            return False
        if (self.since or self.until) and not self._in_dates(document_day(record)):
            return False
        if self.min_words and word_count(record.get("text") or "") < self.min_words:
            return False
        return not self._url or bool(self._url.match(record.get("url") or ""))

    def describe(self) -> str:
        parts = [f"outlet {', '.join(sorted(self.outlets))}" if self.outlets else "",
                 f"language {', '.join(sorted(self.languages))}" if self.languages else "",
                 f"since {self.since}" if self.since else "",
                 f"until {self.until}" if self.until else "",
                 f"at least {self.min_words} words" if self.min_words else "",
                 f"URL {' or '.join(self.url_globs)}" if self.url_globs else ""]
        text = "; ".join(p for p in parts if p) or "everything"
        if self.since or self.until:
            text += " (dates: published, else fetched)"
        return text


@dataclass(frozen=True)
class Shard:
    crawl_id: str
    key: str
    check: bool  # its documents are checked against the selection one by one


def select_shards(store: ArchiveStore, manifests: list[dict[str, Any]],
                  selection: Selection) -> list[Shard]:
    """The text shards that can hold selected documents, from the manifests alone."""
    shards = []
    for manifest in manifests:
        for entry in text_entries(store, manifest):
            verdict = selection.shard(entry)
            if verdict is not False:
                shards.append(Shard(manifest["crawl_id"], entry["key"], verdict is None))
    return shards


# ---------------------------------------------------------------- the dump


@dataclass
class DumpResult:
    selected: int = 0  # documents that passed the selection
    written: int = 0
    decision: Decision | None = None

    def summary(self) -> str:
        if self.decision is None:
            return f"{self.selected} selected, not deduplicated"
        d = self.decision
        return (f"{self.selected} selected; dropped {d.old_versions} older version(s) and "
                f"{d.near_duplicates} near-duplicate(s)")


def write_dump(store: ArchiveStore, manifests: list[dict[str, Any]], shards: list[Shard],
               selection: Selection, output: Output, progress: Progress, fmt: str = "jsonl",
               fields: tuple[str, ...] | None = None, stats: bool = False,
               dedup: Deduplicator | None = None) -> DumpResult:
    """Dump the selected documents of `shards` to `output` in format `fmt` (only `fields`, if
    given), or with `stats` the dataset card of `manifests`; `output` is finished when all is
    written, and aborted on any failure."""
    try:
        if stats:
            card = DatasetCard()
            result = run_dump(store, shards, selection, card, dedup, progress)
            output.stream().write(card.render(store.uri, manifests, selection, dedup,
                                              result).encode("utf-8"))
        else:
            writer = _writer(fmt, output, fields, store.uri, selection, dedup)
            result = run_dump(store, shards, selection, writer, dedup, progress)
            writer.close()
        output.finish()
    except BaseException:
        output.abort()
        raise
    progress.done(result)
    return result


def run_dump(store: ArchiveStore, shards: list[Shard], selection: Selection, writer: Writer,
             dedup: Deduplicator | None, progress: Progress) -> DumpResult:
    """Write the selected documents (each once, with `dedup`) of `shards` to `writer`."""
    result = DumpResult()
    if dedup is None:
        for n, shard in enumerate(shards):
            for lines, records in _selected(store, shard, selection, writer.needs_records):
                writer.write(lines, records)
                result.selected += len(lines)
                progress.show("writing", n, len(shards), result.selected)
        result.written = result.selected
        return result

    spans = []
    index = 0
    for n, shard in enumerate(shards):
        start = index
        for lines in read_lines(store, shard.key):
            records = _parse(lines, shard)
            chosen = [i for i, r in enumerate(records) if selection.matches(r)] if shard.check \
                else range(len(records))
            dedup.add([index + i for i in chosen], [records[i] for i in chosen])
            index += len(lines)
            progress.show("fingerprinting", n, len(shards), len(dedup))
        spans.append((start, index))
    result.selected = len(dedup)
    result.decision = decision = dedup.decide()
    keep = decision.keep.tolist()
    k = 0
    for n, (shard, (start, end)) in enumerate(zip(shards, spans, strict=True)):
        wanted = []
        while k < len(keep) and keep[k] < end:
            wanted.append(keep[k] - start)
            k += 1
        if not wanted:
            continue
        for lines in _kept(store, shard, wanted):
            writer.write(lines, _parse(lines, shard) if writer.needs_records else None)
            result.written += len(lines)
            progress.show("writing", n, len(shards), result.written)
    return result


def _parse(lines: list[bytes], shard: Shard) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in lines]
    except ValueError as exc:
        raise StoreError(f"{shard.key}: not a JSON text record ({exc})") from exc


def _selected(store: ArchiveStore, shard: Shard, selection: Selection, parse: bool
              ) -> Iterator[tuple[list[bytes], list[dict[str, Any]] | None]]:
    """Batches of a shard's selected lines (and their records, if `parse`)."""
    for lines in read_lines(store, shard.key):
        records = _parse(lines, shard) if parse or shard.check else None
        if shard.check:
            assert records is not None
            chosen = [i for i, record in enumerate(records) if selection.matches(record)]
            if len(chosen) < len(lines):
                lines = [lines[i] for i in chosen]
                records = [records[i] for i in chosen]
        if lines:
            yield lines, records if parse else None


def _kept(store: ArchiveStore, shard: Shard, wanted: list[int]) -> Iterator[list[bytes]]:
    """Batches of the shard's lines at the (sorted) positions `wanted`; reading stops after
    the last one."""
    position = k = 0
    with closing(read_lines(store, shard.key)) as batches:
        for lines in batches:
            end = position + len(lines)
            chosen = []
            while k < len(wanted) and wanted[k] < end:
                chosen.append(lines[wanted[k] - position])
                k += 1
            position = end
            if chosen:
                yield chosen
            if k == len(wanted):
                return


class Progress:
    """One status line on stderr, rewritten at most 4 times a second, when it is a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = self.shown = time.monotonic()

    def show(self, phase: str, shard: int, shards: int, documents: int) -> None:
        now = time.monotonic()
        if self.enabled and now - self.shown >= 0.25:
            self.shown = now
            self.stream.write(f"\rdump: {phase}, shard {shard + 1}/{shards}, "
                              f"{documents} documents, {now - self.started:.0f}s   ")
            self.stream.flush()

    def done(self, result: DumpResult) -> None:
        if self.enabled:
            self.stream.write(f"\rdump: {result.written} documents ({result.summary()}) in "
                              f"{time.monotonic() - self.started:.1f}s\n")
            self.stream.flush()


# ---------------------------------------------------------------- dataset card


def _dedup_description(dedup: Deduplicator | None) -> str:
    from crawler.readers.neardup import SHINGLE_WORDS, SIMILARITY

    if dedup is None:
        return "none (every version and near-duplicate kept)"
    versions = "every version of each URL" if dedup.keep_versions else \
        "the latest version of each URL"
    return (f"{versions}; near-duplicates across URLs (MinHash over word {SHINGLE_WORDS}-grams, "
            f"estimated Jaccard similarity >= {SIMILARITY}) collapsed to the earliest published")


class DatasetCard:
    """Counts of the dump's documents and words by outlet, language and month (`--stats`)."""

    needs_records = True

    def __init__(self) -> None:
        self.documents: dict[str, Counter] = {"outlet": Counter(), "language": Counter(),
                                              "month": Counter()}
        self.words: dict[str, Counter] = {k: Counter() for k in self.documents}
        self.days: list[str] = []

    def write(self, lines: list[bytes], records: list[dict[str, Any]] | None) -> None:
        assert records is not None
        for record in records:
            words = word_count(record.get("text") or "")
            day = document_day(record)
            keys = {"outlet": record.get("outlet") or "-",
                    "language": record.get("language") or "und",
                    "month": day[:7] or "unknown"}
            for kind, key in keys.items():
                self.documents[kind][key] += 1
                self.words[kind][key] += words
            if day:
                self.days = [min(self.days[0], day), max(self.days[1], day)] if self.days \
                    else [day, day]

    def close(self) -> None:
        pass

    def render(self, uri: str, manifests: list[dict[str, Any]], selection: Selection,
               dedup: Deduplicator | None, result: DumpResult) -> str:
        documents = sum(self.documents["outlet"].values())
        words = sum(self.words["outlet"].values())
        crawls = [m["crawl_id"] for m in manifests]
        lines = [
            "# newsarchive dump: dataset card", "",
            f"- archive: {uri}",
            f"- crawls: {len(crawls)} complete" + (f" ({', '.join(crawls)})" if crawls else ""),
            f"- selection: {selection.describe()}",
            f"- deduplication: {_dedup_description(dedup)}",
            f"- documents: {documents} ({result.summary()})",
            f"- words: {words} ({words / documents if documents else 0:.0f} per document)",
            f"- dates: {' to '.join(self.days) if self.days else 'none'} "
            "(published, else fetched)",
        ]
        for kind, title in (("outlet", "By outlet"), ("language", "By language"),
                            ("month", "By month")):
            lines += ["", f"## {title}", "", f"| {kind} | documents | words |",
                      "|---|---:|---:|"]
            keys = sorted(self.documents[kind]) if kind == "month" else \
                sorted(self.documents[kind], key=lambda k: (-self.documents[kind][k], k))
            lines += [f"| {k} | {self.documents[kind][k]} | {self.words[kind][k]} |"
                      for k in keys]
        return "\n".join(lines) + "\n"
