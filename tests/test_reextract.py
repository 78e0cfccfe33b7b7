"""`newsarchive reextract` over a real crawl of the fixture outlet: without fetching, it gives
the crawl's own text back (same records, field for field), writes it as a new version that
`dump` reads while the old one is kept, and really re-runs extraction (a new prune selector
shows in the new version)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.config import load_config
from crawler.layout import default_spool_dir
from crawler.readers.listing import complete_crawls
from crawler.readers.reextract import reextract_crawls
from crawler.records import TextStats
from crawler.store.backends import open_store
from crawler.store.spool import Spool
from tests.conftest import (
    EXPECTED,
    Outlet,
    crawl_local,
    read_text_shards,
    run_cli,
    write_config,
)


@pytest.fixture(scope="module")
def crawl(outlet: Outlet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    crawl = crawl_local(outlet, tmp_path_factory.mktemp("reextract"))
    return {**crawl, "outlet": outlet,
            "texts": [e for e in crawl["manifest"]["files"] if e["kind"] == "text"]}


def copy_archive(crawl: dict[str, Any], tmp_path: Path) -> Path:
    archive = tmp_path / "archive"
    shutil.copytree(crawl["archive"], archive)
    return archive


def version_records(archive: Path, crawl_id: str, version: int) -> dict[int, dict[str, Any]]:
    shards = sorted((archive / "crawls" / crawl_id / "text" / f"v{version}").glob("*.jsonl.gz"))
    return {r["warc_offset"]: r for r in read_text_shards(shards)}


def dump(archive: Path) -> dict[str, dict[str, Any]]:
    result = run_cli("dump", "--archive", str(archive))
    assert result.returncode == 0, result.stderr
    return {r["url"]: r for r in map(json.loads, result.stdout.splitlines())}


def test_stored_bodies_are_content_encoded(crawl: dict[str, Any]) -> None:
    """The premise of the next test: reextract must undo the Content-Encoding itself."""
    records = read_text_shards([crawl["archive"] / e["key"] for e in crawl["texts"]])
    record = records[0]
    with open(crawl["archive"] / record["warc_file"], "rb") as f:
        f.seek(record["warc_offset"])
        response = next(ArchiveIterator(io.BytesIO(f.read(record["warc_length"]))))
    assert response.http_headers.get_header("Content-Encoding") == "gzip"


def test_reextract_gives_the_crawls_own_text(crawl: dict[str, Any], tmp_path: Path) -> None:
    archive = copy_archive(crawl, tmp_path)
    crawl_id = crawl["crawl_id"]
    result = run_cli("reextract", "--archive", str(archive), "--crawl", crawl_id)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "text v2 written" in result.stdout

    own = {r["warc_offset"]: r for r in read_text_shards(
        [archive / e["key"] for e in crawl["texts"]])}
    again = version_records(archive, crawl_id, 2)
    assert len(own) == len(EXPECTED["articles"])
    assert sorted(again) == sorted(own)
    for offset, record in own.items():
        assert again[offset] == record, record["url"]  # every field: text, title, date, ...

    version_dir = archive / "crawls" / crawl_id / "text" / "v2"
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["format"] == "newsarchive-text-version/1"
    assert (manifest["crawl_id"], manifest["version"]) == (crawl_id, 2)
    for entry, old in zip(manifest["files"], crawl["texts"], strict=True):
        data = (archive / entry["key"]).read_bytes()
        assert entry["key"] == old["key"].replace("/text/", "/text/v2/")
        assert (entry["size"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert {k: v for k, v in entry.items() if k not in ("key", "size", "sha256")} == \
               {k: v for k, v in old.items() if k not in ("key", "size", "sha256")}
    for old in crawl["texts"]:  # version 1 is kept as it was
        assert hashlib.sha256((archive / old["key"]).read_bytes()).hexdigest() == old["sha256"]

    verified = run_cli("verify", "--archive", str(archive))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"ok  {manifest['files'][0]['key']}" in verified.stdout


def test_new_extraction_settings_make_a_version_that_dump_reads(crawl: dict[str, Any],
                                                                tmp_path: Path) -> None:
    """An extraction change (here a prune selector dropping each article's first paragraph)
    shows in the new version, `dump` reads it, and the older versions stay."""
    archive = copy_archive(crawl, tmp_path)
    crawl_id = crawl["crawl_id"]
    pruned = write_config(tmp_path / "pruned.toml", crawl["outlet"].url, str(archive),
                          extra_outlet='prune = ["article p:first-of-type"]')
    result = run_cli("reextract", "-c", str(pruned))
    assert result.returncode == 0, result.stderr + result.stdout

    by_path = {a["path"]: a for a in EXPECTED["articles"]}
    dumped = dump(archive)
    assert len(dumped) == len(by_path)
    own = {r["url"]: r for r in read_text_shards([archive / e["key"] for e in crawl["texts"]])}
    for url, record in dumped.items():
        expected = by_path[url.removeprefix(crawl["outlet"].url.rstrip("/"))]
        first, last = expected["paragraphs"][0], expected["paragraphs"][-1]
        assert first not in record["text"] and last in record["text"], url
        assert first in own[url]["text"], url  # version 1 still holds it
        assert record["title"] == expected["title"] and record["date"] == expected["date"]
    v2 = json.loads((archive / "crawls" / crawl_id / "text/v2/manifest.json").read_text())
    assert v2["extraction"]["techwire"]["prune"] == ["article p:first-of-type"]

    plain = write_config(tmp_path / "plain.toml", crawl["outlet"].url, str(archive))
    result = run_cli("reextract", "-c", str(plain), "--crawl", crawl_id)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "text v3 written" in result.stdout
    assert {u: r["text"] for u, r in dump(archive).items()} == \
           {u: r["text"] for u, r in own.items()}
    assert version_records(archive, crawl_id, 2)  # v2 kept beside v3


def test_unknown_crawl_is_refused(crawl: dict[str, Any]) -> None:
    result = run_cli("reextract", "--archive", str(crawl["archive"]), "--crawl", "nope-1")
    assert result.returncode == 1
    assert result.stderr.strip() == f"newsarchive: no complete crawl nope-1 in " \
                                     f"{crawl['archive'].resolve()}"


def test_a_crawl_running_beside_reextract_delivers_none_of_its_scratch_files(
        crawl: dict[str, Any], tmp_path: Path) -> None:
    """reextract writes its shards in the archive's spool filesystem before uploading them; a
    crawl starting meanwhile delivers what its spool holds. It must never deliver reextract's
    scratch files (they once landed in the archive as ``reextract-XXXX/NAME.jsonl.gz``)."""
    archive = copy_archive(crawl, tmp_path)
    config = load_config(write_config(tmp_path / "outlets.toml", crawl["outlet"].url,
                                      str(archive)))
    store = open_store(config.archive, str(archive))
    spool = Spool(default_spool_dir(config.archive, str(archive)))
    put_file = store.put_file
    flushed: list[tuple[int, int]] = []

    def put_file_while_a_crawl_starts(path: Path, key: str, sha256: str) -> Any:
        assert path.exists()  # the shard waits in the spool's filesystem, complete
        flushed.append(spool.flush(store))  # what a crawl does first
        return put_file(path, key, sha256)

    store.put_file = put_file_while_a_crawl_starts  # type: ignore[method-assign]
    manifests = complete_crawls(store, [crawl["crawl_id"]])
    (result,) = reextract_crawls(store, manifests, config, str(archive), workers=1)
    assert flushed and result.records == len(EXPECTED["articles"])
    stored = [info.key for info in store.list("")]
    assert all(key.startswith(("crawls/", "state/")) for key in stored), stored
    assert not list(spool.root.rglob("*.jsonl.gz"))  # and none is left behind


def test_a_text_record_in_the_next_warcs_shard_is_reextracted(outlet: Outlet,
                                                              tmp_path: Path) -> None:
    """An article's text is written after its response, and the WARC may rotate in between:
    its text record then lands in the next WARC's text shard, still pointing at its capture.
    reextract finds it there (it once stopped with "points into ..., not ...")."""
    archive = tmp_path / "archive"
    config = write_config(tmp_path / "o.toml", outlet.url, str(archive),
                          extra_outlet='warc_max_size = "12kB"')
    assert run_cli("crawl", "-c", str(config)).returncode == 0
    (crawl_dir,) = (archive / "crawls").iterdir()
    manifest_path = crawl_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    texts = [e for e in manifest["files"] if e["kind"] == "text"]
    shards = {e["key"]: read_text_shards([archive / e["key"]]) for e in texts}
    source = next(k for k in shards if shards[k])  # a shard with a record, and the next one
    target = texts[[e["key"] for e in texts].index(source) + 1]["key"]
    moved = shards[source].pop(0)
    shards[target].append(moved)
    for entry in texts:  # rewrite both shards and their manifest entries, as a crawl would
        if entry["key"] in (source, target):
            stats = TextStats()
            lines = b""
            for record in shards[entry["key"]]:
                stats.add(record)
                lines += json.dumps(record, ensure_ascii=False).encode() + b"\n"
            data = gzip.compress(lines, mtime=0)
            (archive / entry["key"]).write_bytes(data)
            entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                         **stats.metadata())
    manifest_path.write_text(json.dumps(manifest))

    result = run_cli("reextract", "--archive", str(archive))
    assert result.returncode == 0, result.stderr + result.stdout
    again = {(r["warc_file"], r["warc_offset"]): r for r in read_text_shards(
        sorted((crawl_dir / "text" / "v2").glob("*.jsonl.gz")))}
    own = [r for records in shards.values() for r in records]
    assert len(again) == len(own) == len(EXPECTED["articles"])
    for record in own:
        assert again[record["warc_file"], record["warc_offset"]] == record, record["url"]
    moved_base = moved["warc_file"].rsplit("/", 1)[1].removesuffix(".warc.gz")
    assert moved["url"] in {r["url"] for r in read_text_shards(
        [crawl_dir / "text" / "v2" / f"{moved_base}.jsonl.gz"])}  # back beside its WARC
