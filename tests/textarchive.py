"""Synthetic archives for dump tests and benchmarks: text shards and manifests written in the
archive layout (the manifest last, as a crawl commits), through a real store."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from crawler.records import MANIFEST_FORMAT, VERSION_FORMAT
from crawler.store.backends import ArchiveStore


def document(url: str, outlet: str, text: str, *, date: str | None = None,
             date_modified: str | None = None, fetched_at: str = "2025-08-15T10:00:00Z",
             language: str | None = "ru", title: str | None = None, crawl_id: str = "",
             offset: int = 0) -> dict[str, Any]:
    """A text record with every field a crawl writes."""
    return {"url": url, "outlet": outlet, "crawl_id": crawl_id, "fetched_at": fetched_at,
            "status": 200, "title": title if title is not None else url.rsplit("/", 1)[-1],
            "author": None, "date": date, "date_modified": date_modified, "language": language,
            "sitename": outlet,
            "text": text, "warc_file": "", "warc_offset": offset, "warc_length": 1000,
            "warc_record_id": f"<urn:uuid:{uuid.uuid4()}>",
            "payload_digest": "sha1:" + hashlib.sha1(url.encode()).hexdigest()[:32].upper(),
            "text_digest": "sha256:" + hashlib.sha256(text.encode()).hexdigest(),
            "language_expected": language}


def write_shard(store: ArchiveStore, key: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Write a gzip JSON-lines text shard and return its manifest ``files`` entry."""
    outlets: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    days: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shard.jsonl.gz"
        with gzip.open(path, "wb", compresslevel=6) as gz:
            for record in records:
                gz.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
                outlets[record["outlet"]] += 1
                languages[record.get("language") or "und"] += 1
                day = record.get("date") or record["fetched_at"][:10]
                days = [min(days[0], day), max(days[1], day)] if days else [day, day]
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        info = store.put_file(path, key, sha256)
    return {"key": key, "size": info.size, "sha256": sha256, "kind": "text",
            "records": len(records), "outlets": dict(sorted(outlets.items())),
            "languages": dict(sorted(languages.items())), "date_range": days or None}


def write_crawl(store: ArchiveStore, crawl_id: str, shards: list[list[dict[str, Any]]], *,
                commit: bool = True) -> dict[str, Any]:
    """A crawl of text shards (one per inner list); `commit` writes its manifest, last."""
    entries = []
    for serial, records in enumerate(shards):
        base = f"{crawl_id}-{serial:05d}-outlet.example"
        for offset, record in enumerate(records):
            record.update(crawl_id=crawl_id, warc_file=f"crawls/{crawl_id}/warc/{base}.warc.gz",
                          warc_offset=record["warc_offset"] or 1000 * offset)
        entries.append(write_shard(store, f"crawls/{crawl_id}/text/{base}.jsonl.gz", records))
    manifest = {"format": MANIFEST_FORMAT, "crawl_id": crawl_id,
                "job": crawl_id.rsplit("-", 1)[0], "software": "newsarchive-tests",
                "started": "2025-08-15T10:00:00Z", "ended": "2025-08-15T11:00:00Z",
                "finish_reason": "finished", "archive": store.uri, "config_digest": "",
                "outlets": sorted({r["outlet"] for s in shards for r in s}),
                "counts": {"text_records": sum(len(s) for s in shards)}, "files": entries}
    if commit:
        store.put_bytes(f"crawls/{crawl_id}/manifest.json",
                        json.dumps(manifest, indent=1, ensure_ascii=False).encode())
    return manifest


def write_text_version(store: ArchiveStore, crawl_id: str, version: int,
                       shards: list[list[dict[str, Any]]], *, commit: bool = True) -> None:
    """Text version N of a crawl (what `reextract` writes); `commit` writes its manifest."""
    entries = [write_shard(store, f"crawls/{crawl_id}/text/v{version}/"
                                  f"{crawl_id}-{serial:05d}-outlet.example.jsonl.gz", records)
               for serial, records in enumerate(shards)]
    if commit:
        store.put_bytes(f"crawls/{crawl_id}/text/v{version}/manifest.json", json.dumps(
            {"format": VERSION_FORMAT, "crawl_id": crawl_id, "version": version,
             "created": "2025-08-16T10:00:00Z", "software": "newsarchive-tests",
             "files": entries}).encode())


class Prose:
    """Deterministic pseudo-text with a Zipf-like vocabulary per language, so documents have
    realistic lengths, word frequencies and compressibility, and are not near-duplicates of
    each other unless made so."""

    ALPHABETS = {"ru": "абвгдежзийклмнопрстуфхцчшщыьэюя", "uk": "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя",
                 "pl": "aąbcćdeęfghijklłmnńoóprsśtuwyzźż", "en": "abcdefghijklmnopqrstuvwxyz"}

    def __init__(self, seed: int = 7, vocabulary: int = 20_000) -> None:
        self.random = random.Random(seed)
        self.words = {lang: [self._word(alphabet) for _ in range(vocabulary)]
                      for lang, alphabet in self.ALPHABETS.items()}
        self.weights = [1 / (rank + 10) for rank in range(vocabulary)]

    def _word(self, alphabet: str) -> str:
        return "".join(self.random.choices(alphabet, k=self.random.randint(2, 11)))

    def text(self, language: str = "ru", words: int = 500) -> str:
        """Paragraphs of sentences, about `words` words long."""
        tokens = self.random.choices(self.words[language], self.weights, k=words)
        paragraphs, sentence, paragraph = [], [], []
        for token in tokens:
            sentence.append(token)
            if len(sentence) >= self.random.randint(8, 20):
                paragraph.append(" ".join(sentence).capitalize() + ".")
                sentence = []
                if len(paragraph) >= self.random.randint(3, 6):
                    paragraphs.append(" ".join(paragraph))
                    paragraph = []
        if sentence:
            paragraph.append(" ".join(sentence).capitalize() + ".")
        if paragraph:
            paragraphs.append(" ".join(paragraph))
        return "\n\n".join(paragraphs)

    def edit(self, text: str, changes: int = 3, language: str = "ru") -> str:
        """A near-duplicate: a new first sentence, a few words replaced, a line appended."""
        words = text.split(" ")
        for _ in range(changes):
            words[self.random.randrange(len(words))] = self.random.choice(self.words[language])
        lead = " ".join(self.random.choices(self.words[language], k=12)).capitalize() + ". "
        tail = "\n\n" + " ".join(self.random.choices(self.words[language], k=8)) + "."
        return lead + " ".join(words) + tail
