"""`newsarchive dump` over real crawls of the fixture outlet, local and in the SeaweedFS S3
server; and the README's recipes for reading the archive's text shards straight from S3 with
DuckDB (httpfs) and with pyarrow/pandas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from tests.conftest import (
    EXPECTED,
    Outlet,
    crawl_local,
    crawl_s3,
    read_text_shards,
    run_cli,
    s3_env,
)
from tests.s3server import S3Server


@pytest.fixture(scope="module")
def local(outlet: Outlet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("dump-local")
    crawl = crawl_local(outlet, work)
    return {"config": work / "outlets.toml", "dir": crawl["dir"],
            "texts": read_text_shards(sorted((crawl["dir"] / "text").glob("*.jsonl.gz")))}


@pytest.fixture(scope="module")
def remote(outlet: Outlet, s3: S3Server, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("dump-s3")
    bucket = "dump-tests"
    s3.client().create_bucket(Bucket=bucket)
    config = crawl_s3(outlet, s3, work, f"s3://{bucket}/news/v1")
    return {"config": config, "bucket": bucket, "prefix": "news/v1"}


def test_dump_of_a_crawl_is_its_text_records(local: dict[str, Any]) -> None:
    result = run_cli("dump", "-c", str(local["config"]))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(records, key=lambda r: r["url"]) == sorted(local["texts"],
                                                              key=lambda r: r["url"])
    assert {r["title"] for r in records} == {a["title"] for a in EXPECTED["articles"]}


def test_wet_refers_to_the_captured_response(local: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "crawl.wet.gz"
    result = run_cli("dump", "-c", str(local["config"]), "--format", "wet", "-o", str(out))
    assert result.returncode == 0, result.stderr
    responses = {}
    for warc in (local["dir"] / "warc").glob("*.warc.gz"):
        with open(warc, "rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type == "response":
                    responses[record.rec_headers.get_header("WARC-Record-ID")] = \
                        record.rec_headers.get_header("WARC-Target-URI")
    with open(out, "rb") as f:
        conversions = [(r.rec_headers, r.content_stream().read().decode())
                       for r in ArchiveIterator(f) if r.rec_type == "conversion"]
    assert len(conversions) == len(EXPECTED["articles"])
    for headers, content in conversions:
        uri = headers.get_header("WARC-Target-URI")
        assert responses[headers.get_header("WARC-Refers-To")] == uri
        (article,) = [a for a in EXPECTED["articles"] if uri.endswith(a["path"])]
        assert content.startswith(article["title"] + "\n\n")
        assert article["paragraphs"][0] in content
        assert not any(phrase in content for phrase in article["boilerplate"])


def test_dump_from_s3_streams_the_same_documents(local: dict[str, Any], remote: dict[str, Any],
                                                 s3: S3Server) -> None:
    result = run_cli("dump", "-c", str(remote["config"]), "--lang", "ru", "--lang", "uk",
                     env=s3_env(s3))
    assert result.returncode == 0, result.stderr
    got = {json.loads(line)["url"].split("/", 3)[3]: json.loads(line)["text"]
           for line in result.stdout.splitlines()}
    expected = {r["url"].split("/", 3)[3]: r["text"] for r in local["texts"]
                if r["language"] in ("ru", "uk")}
    assert got == expected and len(got) == 4
    stats = run_cli("dump", "-c", str(remote["config"]), "--stats", env=s3_env(s3))
    assert stats.returncode == 0, stats.stderr
    assert f"- documents: {len(EXPECTED['articles'])} " in stats.stdout


def _shards_url(remote: dict[str, Any]) -> str:
    return f"s3://{remote['bucket']}/{remote['prefix']}/crawls/*/text/*.jsonl.gz"


def test_duckdb_reads_the_text_shards_from_s3(remote: dict[str, Any], s3: S3Server) -> None:
    """The README's DuckDB recipe, against the S3 test server (httpfs from the
    duckdb-ext-httpfs wheel: nothing is downloaded)."""
    import duckdb
    import duckdb_ext

    con = duckdb_ext.init(duckdb.connect())
    con.execute("LOAD httpfs")
    con.execute("CREATE SECRET (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, "
                "URL_STYLE 'path', USE_SSL false)",
                [s3.access_key, s3.secret_key, s3.region,
                 s3.endpoint_url.removeprefix("http://")])
    rows = con.execute(
        f"SELECT language, count(*) AS articles, sum(len(string_split(text, ' '))) AS words "
        f"FROM read_json_auto('{_shards_url(remote)}') GROUP BY language ORDER BY language"
    ).fetchall()
    languages = sorted({a["language"] for a in EXPECTED["articles"]})
    assert [r[0] for r in rows] == languages
    assert sum(r[1] for r in rows) == len(EXPECTED["articles"])
    assert all(r[2] > 100 for r in rows)
    titles = {r[0] for r in con.execute(
        f"SELECT title FROM read_json_auto('{_shards_url(remote)}')").fetchall()}
    assert titles == {a["title"] for a in EXPECTED["articles"]}


def test_pyarrow_and_pandas_read_the_text_shards_from_s3(remote: dict[str, Any],
                                                          s3: S3Server) -> None:
    """The README's pyarrow/pandas recipe, against the S3 test server."""
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(access_key=s3.access_key, secret_key=s3.secret_key,
                           region=s3.region, endpoint_override=s3.endpoint_url)
    listing = fs.get_file_info(pafs.FileSelector(f"{remote['bucket']}/{remote['prefix']}/crawls",
                                                 recursive=True))
    shards = [f.path for f in listing
              if f.path.endswith(".jsonl.gz") and f.path.split("/")[-2] == "text"]
    assert shards
    frame = ds.dataset(shards, filesystem=fs, format="json").to_table().to_pandas()
    assert len(frame) == len(EXPECTED["articles"])
    assert set(frame["title"]) == {a["title"] for a in EXPECTED["articles"]}
    assert frame.groupby("language").size().to_dict() == {
        lang: sum(a["language"] == lang for a in EXPECTED["articles"])
        for lang in {a["language"] for a in EXPECTED["articles"]}}
    with fs.open_input_stream(shards[0]) as f:  # streamed, inflated by its extension
        first = json.loads(f.read().split(b"\n", 1)[0])
    assert first["url"] in set(frame["url"])
