"""`newsarchive dump` on synthetic archives written in the archive layout: every filter, the
choice of shards from the manifests, deduplication (versions, exact and near-duplicates across
outlets), incomplete crawls, text versions, and every format read back by an independent reader
(warcio, pyarrow, gzip, zstd)."""

from __future__ import annotations

import gzip
import json
import os
import pty
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.readers.dump import Selection
from crawler.records import CORE_FIELDS
from crawler.store.backends import LocalStore
from tests.conftest import NEWSARCHIVE, run_cli
from tests.textarchive import Prose, document, write_crawl, write_text_version

FIRST, SECOND, UNFINISHED = ("wire-20250801T000000Z", "wire-20250815T000000Z",
                             "wire-20250820T000000Z")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three outlets in three shards, a second crawl with a new version of one URL, and an
    unfinished crawl. alpha's story is syndicated (edited) by beta a day later; beta republishes
    alpha's other article word for word; beta also has an article that shares a third of the
    story's text (a related article, not a duplicate)."""
    prose = Prose(seed=11)
    story = prose.text("ru", 300)
    other = prose.text("ru", 200)
    related_words = story.split(" ")
    related = " ".join(related_words[: len(related_words) // 3]) + " " + prose.text("ru", 200)
    docs = {
        "story": document("https://alpha.example/news/2025/07/story.html", "alpha", story,
                          date="2025-07-20", title="Story"),
        "other": document("https://alpha.example/news/2025/08/other.html", "alpha", other,
                          date="2025-08-05", title="Other"),
        "short": document("https://alpha.example/news/2025/08/short.html", "alpha",
                          prose.text("ru", 12), date=None, fetched_at="2025-08-01T09:00:00Z",
                          title="Short"),
        "updated_v1": document("https://alpha.example/news/2025/08/updated.html", "alpha",
                               prose.text("ru", 150), date="2025-08-02", title="Updated v1"),
        "syndicated": document("https://beta.example/uk/2025/07/wire-story.html", "beta",
                               prose.edit(story, 3), date="2025-07-21", title="Wire story"),
        "copy": document("https://beta.example/uk/2025/08/copy.html", "beta", other,
                         date="2025-08-06", title="Copy"),
        "uk": document("https://beta.example/uk/2025/08/uk.html", "beta", prose.text("uk", 250),
                       language="uk", date="2025-08-10", title="Ukrainian"),
        "related": document("https://beta.example/uk/2025/08/related.html", "beta", related,
                            date="2025-08-11", title="Related"),
        "pl1": document("https://gamma.example/pl/2025/06/a.html", "gamma", prose.text("pl", 220),
                        language="pl", date="2025-06-15", title="Polski A"),
        "pl2": document("https://gamma.example/pl/2025/06/b.html", "gamma", prose.text("pl", 180),
                        language="pl", date="2025-06-20", title="Polski B"),
        "updated_v2": document("https://alpha.example/news/2025/08/updated.html", "alpha",
                               prose.text("ru", 160), date="2025-08-02",
                               fetched_at="2025-08-15T10:00:00Z", title="Updated v2"),
        "unfinished": document("https://delta.example/news/x.html", "delta",
                               prose.text("ru", 100), date="2025-08-20", title="Unfinished"),
    }
    root = tmp_path_factory.mktemp("dump") / "archive"
    store = LocalStore(root)
    d = docs
    write_crawl(store, FIRST, [[d["story"], d["other"], d["short"], d["updated_v1"]],
                               [d["syndicated"], d["copy"], d["uk"], d["related"]],
                               [d["pl1"], d["pl2"]]])
    write_crawl(store, SECOND, [[d["updated_v2"]]])
    write_crawl(store, UNFINISHED, [[d["unfinished"]]], commit=False)
    return {"root": root, "docs": docs}


def dump(archive: dict[str, Any], *args: str) -> list[dict[str, Any]]:
    result = run_cli("dump", "--archive", str(archive["root"]), *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def names(archive: dict[str, Any], records: list[dict[str, Any]]) -> set[str]:
    """The fixture names of dumped records (by URL and text, so versions are told apart)."""
    found = set()
    for record in records:
        (name,) = [n for n, d in archive["docs"].items()
                   if d["url"] == record["url"] and d["text"] == record["text"]]
        found.add(name)
    return found


DEDUPED = {"story", "other", "short", "updated_v2", "uk", "related", "pl1", "pl2"}


def test_default_dump_has_each_article_once(archive: dict[str, Any]) -> None:
    records = dump(archive)
    # dropped: the older version of `updated`, the syndicated edit of `story` (published a
    # day later by another outlet) and the word-for-word `copy` of `other`; the related
    # article that shares a third of the story stays
    assert names(archive, records) == DEDUPED
    assert len(records) == len(DEDUPED)


def test_no_dedup_and_keep_versions(archive: dict[str, Any]) -> None:
    everything = set(archive["docs"]) - {"unfinished"}
    assert names(archive, dump(archive, "--no-dedup")) == everything
    assert len(dump(archive, "--no-dedup")) == len(everything)
    assert names(archive, dump(archive, "--keep-versions")) == DEDUPED | {"updated_v1"}


def test_earliest_publication_wins_whatever_the_order(tmp_path: Path) -> None:
    """The near-duplicate kept is the earliest published, not the first read."""
    prose = Prose(seed=5)
    text = prose.text("ru", 400)
    late = document("https://a.example/late.html", "a", text, date="2025-08-10")
    early = document("https://b.example/early.html", "b", prose.edit(text, 2), date="2025-08-01")
    store = LocalStore(tmp_path / "archive")
    write_crawl(store, "x-20250815T000000Z", [[late], [early]])
    (kept,) = dump({"root": tmp_path / "archive"})
    assert kept["url"] == early["url"]


def test_incomplete_crawl_is_not_dumped(archive: dict[str, Any]) -> None:
    everything = dump(archive, "--no-dedup")
    assert "delta" not in {r["outlet"] for r in everything}
    named = run_cli("dump", "--archive", str(archive["root"]), "--crawl", UNFINISHED)
    assert named.returncode == 1
    assert f"crawl {UNFINISHED} is incomplete" in named.stderr
    assert named.stdout == ""
    missing = run_cli("dump", "--archive", str(archive["root"]), "--crawl", "nope-20250101T0Z")
    assert missing.returncode == 1 and "no crawl nope-20250101T0Z" in missing.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["--outlet", "gamma"], {"pl1", "pl2"}),
    # filters apply before deduplication: beta's syndicated story and copy are beta's articles
    (["--outlet", "beta"], {"syndicated", "copy", "uk", "related"}),
    (["--outlet", "beta", "--outlet", "gamma"], {"syndicated", "copy", "uk", "related", "pl1",
                                                "pl2"}),
    (["--lang", "uk"], {"uk"}),
    (["--lang", "pl", "--lang", "uk"], {"pl1", "pl2", "uk"}),
    (["--since", "2025-08-05"], {"other", "uk", "related"}),
    # `short` has no published date: its fetch date (2025-08-01) counts
    (["--since", "2025-08", "--until", "2025-08-01"], {"short"}),
    (["--until", "2025-06"], {"pl1", "pl2"}),
    (["--since", "2025-07-21", "--until", "2025-07-31"], {"syndicated"}),
    (["--since", "2025-07-22", "--until", "2025-07-31"], set()),
    (["--min-words", "100"], DEDUPED - {"short"}),
    (["--url-glob", "*/news/2025/07/*"], {"story"}),
    (["--url-glob", "https://gamma.example/*", "--url-glob", "*/uk.html"], {"pl1", "pl2", "uk"}),
    (["--crawl", SECOND], {"updated_v2"}),
    (["--crawl", FIRST], {"story", "other", "short", "updated_v1", "uk", "related", "pl1",
                          "pl2"}),
])
def test_filters(archive: dict[str, Any], args: list[str], expected: set[str]) -> None:
    assert names(archive, dump(archive, *args)) == expected


def test_bad_dates_are_refused(archive: dict[str, Any]) -> None:
    result = run_cli("dump", "--archive", str(archive["root"]), "--since", "2025-13")
    assert result.returncode == 2 and "not a date" in result.stderr


def test_shards_are_chosen_from_the_manifests(archive: dict[str, Any], tmp_path: Path) -> None:
    """A shard whose manifest entry cannot match is never opened: here gamma's (Polish, June)
    shard is corrupted, and only dumps that need it fail."""
    root = tmp_path / "archive"
    shutil.copytree(archive["root"], root)
    (gamma,) = [p for p in root.glob(f"crawls/{FIRST}/text/*.jsonl.gz")
                if b"gamma" in gzip.decompress(p.read_bytes())]
    gamma.write_bytes(b"not a gzip stream")
    copy = {"root": root, "docs": archive["docs"]}
    assert names(copy, dump(copy, "--outlet", "alpha")) == {"story", "other", "short",
                                                            "updated_v2"}
    assert names(copy, dump(copy, "--lang", "uk")) == {"uk"}
    assert names(copy, dump(copy, "--since", "2025-07")) == DEDUPED - {"pl1", "pl2"}
    needs_it = run_cli("dump", "--archive", str(root), "--lang", "pl")
    assert needs_it.returncode == 1 and "newsarchive:" in needs_it.stderr


def test_newest_committed_text_version_is_dumped(tmp_path: Path) -> None:
    prose = Prose(seed=3)
    store = LocalStore(tmp_path / "archive")
    first = document("https://a.example/1.html", "a", prose.text("ru", 80))
    write_crawl(store, "a-20250815T000000Z", [[first]])
    v2 = dict(first, text=prose.text("ru", 90))
    v3 = dict(first, text=prose.text("ru", 95))
    write_text_version(store, "a-20250815T000000Z", 2, [[v2]])
    write_text_version(store, "a-20250815T000000Z", 3, [[v3]], commit=False)  # not committed
    (record,) = dump({"root": tmp_path / "archive"})
    assert record["text"] == v2["text"]


# ---------------------------------------------------------------- formats


def stored_lines(root: Path) -> set[bytes]:
    return {line for p in root.glob("crawls/*/text/*.jsonl.gz")
            for line in gzip.decompress(p.read_bytes()).splitlines()}


def test_jsonl_is_the_stored_text_record(archive: dict[str, Any]) -> None:
    result = run_cli("dump", "--archive", str(archive["root"]))
    lines = result.stdout.encode().splitlines()
    assert len(lines) == len(DEDUPED)
    assert set(lines) <= stored_lines(archive["root"])
    for record in map(json.loads, lines):
        assert set(CORE_FIELDS) <= set(record)


def test_jsonl_fields(archive: dict[str, Any]) -> None:
    records = dump(archive, "--fields", "url,date,title", "--lang", "pl")
    assert [list(r) for r in records] == [["url", "date", "title"]] * 2
    assert {(r["url"], r["date"], r["title"]) for r in records} == {
        (archive["docs"][n]["url"], archive["docs"][n]["date"], archive["docs"][n]["title"])
        for n in ("pl1", "pl2")}
    wrong = run_cli("dump", "--archive", str(archive["root"]), "--fields", "url,nope")
    assert wrong.returncode == 1 and "unknown field(s) nope" in wrong.stderr
    txt = run_cli("dump", "--archive", str(archive["root"]), "--fields", "url", "--format", "txt")
    assert txt.returncode == 1 and "jsonl and parquet" in txt.stderr


def test_txt_blocks(archive: dict[str, Any]) -> None:
    result = run_cli("dump", "--archive", str(archive["root"]), "--format", "txt")
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.split("\n\n\n")
    assert blocks[-1] == ""
    parsed = {}
    for block in blocks[:-1]:
        header, text = block.split("\n\n", 1)
        url, day, title = header.split("\t")
        parsed[url] = (day, title, text)
    assert len(parsed) == len(DEDUPED)
    for name in DEDUPED:
        doc = archive["docs"][name]
        # the published date, else the fetch date
        assert parsed[doc["url"]] == (doc["date"] or doc["fetched_at"][:10], doc["title"],
                                      doc["text"])


@pytest.mark.parametrize("name", ["out.wet", "out.warc.wet.gz"])
def test_wet_is_read_by_warcio(archive: dict[str, Any], tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    result = run_cli("dump", "--archive", str(archive["root"]), "--format", "wet", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f"{len(DEDUPED)} documents written to {out}" in result.stdout
    with open(out, "rb") as f:
        records = [(r.rec_type, r.rec_headers, r.content_stream().read().decode())
                   for r in ArchiveIterator(f)]
    assert records[0][0] == "warcinfo"
    assert "software: newsarchive/" in records[0][2]
    warcinfo_id = records[0][1].get_header("WARC-Record-ID")
    by_url = {archive["docs"][n]["url"]: archive["docs"][n] for n in DEDUPED}
    conversions = records[1:]
    assert len(conversions) == len(DEDUPED)
    for rec_type, headers, content in conversions:
        doc = by_url.pop(headers.get_header("WARC-Target-URI"))
        assert rec_type == "conversion"
        assert headers.get_header("WARC-Refers-To") == doc["warc_record_id"]
        assert headers.get_header("WARC-Warcinfo-ID") == warcinfo_id
        assert headers.get_header("WARC-Date").startswith(doc["fetched_at"][:19])
        assert headers.get_header("Content-Type").startswith("text/plain")
        assert content == f"{doc['title']}\n\n{doc['text']}"
    check = subprocess.run([str(Path(NEWSARCHIVE).parent / "warcio"), "check", "-v", str(out)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("digest pass") == len(DEDUPED) + 1
    if name.endswith(".gz"):  # a gzip member per record, as WARC readers expect
        with open(out, "rb") as f:
            offsets = [it.get_record_offset() for it in [ArchiveIterator(f)] for _ in it]
        assert len(set(offsets)) == len(DEDUPED) + 1 and offsets[0] == 0


def test_parquet_columns_are_typed(archive: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    result = run_cli("dump", "--archive", str(archive["root"]), "--format", "parquet", "-o",
                     str(out))
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.num_rows == len(DEDUPED)
    assert table.column_names == list(CORE_FIELDS)
    schema = table.schema
    assert schema.field("fetched_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("date").type == pa.date32()
    assert schema.field("date_modified").type == pa.date32()
    assert schema.field("status").type == pa.int32()
    assert schema.field("warc_offset").type == pa.int64()
    assert schema.field("text").type == pa.string()
    rows = {r["url"]: r for r in table.to_pylist()}
    for name in DEDUPED:
        doc = archive["docs"][name]
        row = rows[doc["url"]]
        assert row["text"] == doc["text"] and row["title"] == doc["title"]
        assert (row["date"].isoformat() if row["date"] else None) == doc["date"]
        assert row["fetched_at"].strftime("%Y-%m-%dT%H:%M:%SZ") == doc["fetched_at"]
    fields = run_cli("dump", "--archive", str(archive["root"]), "--format", "parquet",
                     "--fields", "url,date", "-o", str(tmp_path / "two.parquet"))
    assert fields.returncode == 0, fields.stderr
    assert pq.read_table(tmp_path / "two.parquet").column_names == ["url", "date"]
    compressed = run_cli("dump", "--archive", str(archive["root"]), "--format", "parquet",
                         "-o", str(tmp_path / "x.parquet.gz"))
    assert compressed.returncode == 1 and "compressed inside" in compressed.stderr


def test_parquet_is_written_in_row_groups(tmp_path: Path) -> None:
    """More JSON than one row group holds (8 MB): several groups, every row there once."""
    prose = Prose(seed=2)
    store = LocalStore(tmp_path / "archive")
    docs = [document(f"https://big.example/{i}.html", "big", prose.text("ru", 700))
            for i in range(1500)]
    write_crawl(store, "big-20250815T000000Z", [docs[:700], docs[700:]])
    out = tmp_path / "big.parquet"
    result = run_cli("dump", "--archive", str(tmp_path / "archive"), "--format", "parquet",
                     "--no-dedup", "-o", str(out))
    assert result.returncode == 0, result.stderr
    meta = pq.ParquetFile(out).metadata
    assert meta.num_rows == 1500 and meta.num_row_groups >= 2
    urls = pq.read_table(out, columns=["url"]).column("url").to_pylist()
    assert sorted(urls) == sorted(d["url"] for d in docs)


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_output_by_extension(archive: dict[str, Any], tmp_path: Path,
                                        suffix: str) -> None:
    plain = run_cli("dump", "--archive", str(archive["root"])).stdout.encode()
    out = tmp_path / f"out.jsonl{suffix}"
    result = run_cli("dump", "--archive", str(archive["root"]), "-o", str(out))
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    if suffix == ".gz":
        assert gzip.decompress(data) == plain
    else:
        try:
            from compression import zstd
        except ImportError:
            from backports import zstd
        assert data[:4] == b"\x28\xb5\x2f\xfd" and zstd.decompress(data) == plain
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no FILE.part left


def test_failed_dump_leaves_no_file(archive: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(archive["root"], root)
    for shard in root.glob(f"crawls/{FIRST}/text/*.jsonl.gz"):
        shard.write_bytes(shard.read_bytes()[:200])  # truncated
    out = tmp_path / "out.jsonl"
    result = run_cli("dump", "--archive", str(root), "-o", str(out))
    assert result.returncode == 1 and "newsarchive:" in result.stderr
    assert not out.exists() and not list(tmp_path.glob("out.jsonl*"))


def test_stats_is_a_dataset_card(archive: dict[str, Any]) -> None:
    result = run_cli("dump", "--archive", str(archive["root"]), "--stats")
    assert result.returncode == 0, result.stderr
    card = result.stdout
    records = dump(archive)
    words = {r["url"]: len(r["text"].split()) for r in records}
    assert f"- documents: {len(records)} (11 selected; dropped 1 older version(s) and 2 " \
           "near-duplicate(s))" in card
    assert f"- words: {sum(words.values())} " in card
    assert f"- crawls: 2 complete ({FIRST}, {SECOND})" in card

    def table(title: str) -> dict[str, tuple[int, int]]:
        section = card.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
        rows = re.findall(r"^\| (\S+) \| (\d+) \| (\d+) \|$", section, re.M)
        return {k: (int(d), int(w)) for k, d, w in rows}

    def expected(key: Any) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for r in records:
            d, w = out.get(key(r), (0, 0))
            out[key(r)] = (d + 1, w + words[r["url"]])
        return out

    assert table("By outlet") == expected(lambda r: r["outlet"])
    assert table("By language") == expected(lambda r: r["language"])
    assert table("By month") == expected(lambda r: (r["date"] or r["fetched_at"])[:7])
    versions = run_cli("dump", "--archive", str(archive["root"]), "--stats", "--keep-versions")
    assert "- documents: 9 (11 selected; dropped 0 older version(s) and 2 near-duplicate(s))" \
        in versions.stdout
    filtered = run_cli("dump", "--archive", str(archive["root"]), "--stats", "--lang", "pl")
    assert "- documents: 2 " in filtered.stdout and "- selection: language pl" in filtered.stdout


def test_progress_on_a_terminal_only(archive: dict[str, Any]) -> None:
    piped = run_cli("dump", "--archive", str(archive["root"]))
    assert piped.returncode == 0 and piped.stderr == ""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([NEWSARCHIVE, "dump", "--archive", str(archive["root"])],
                              stdout=subprocess.PIPE, stderr=follower, timeout=120)
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == len(DEDUPED)
    assert re.search(rb"dump: %d documents \(11 selected; dropped 1 older version\(s\) and 2 "
                     rb"near-duplicate\(s\)\) in [\d.]+s" % len(DEDUPED), seen), seen


def test_empty_selection_writes_valid_empty_outputs(archive: dict[str, Any],
                                                    tmp_path: Path) -> None:
    for fmt, name in (("parquet", "e.parquet"), ("wet", "e.wet.gz"), ("jsonl", "e.jsonl")):
        out = tmp_path / name
        result = run_cli("dump", "--archive", str(archive["root"]), "--outlet", "nobody",
                         "--format", fmt, "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert "0 documents written" in result.stdout
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0
    with open(tmp_path / "e.wet.gz", "rb") as f:
        assert [r.rec_type for r in ArchiveIterator(f)] == ["warcinfo"]
    assert (tmp_path / "e.jsonl").read_bytes() == b""


def test_min_words_counts_chinese_and_japanese_by_character() -> None:
    """"--min-words" on text written without spaces: each Han or kana character is a word."""
    chinese = {"text": "今年上半年国产芯片出货量同比增长近一倍。" * 2}  # 40 characters, one "word"
    assert Selection(min_words=30).matches(chinese)
    assert not Selection(min_words=50).matches(chinese)
    assert not Selection(min_words=3).matches({"text": "two words"})
