"""End to end into a local archive: `newsarchive crawl` over a fixture outlet, checked with an
independent reader (warcio) and against the pages' expected text."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from tests.conftest import EXPECTED, Outlet, read_text_shards, run_cli, write_config


@pytest.fixture(scope="module")
def crawl(outlet: Outlet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("local")
    archive = work / "archive"
    config = write_config(work / "outlets.toml", outlet.url, str(archive))
    result = run_cli("crawl", "-c", str(config))
    assert result.returncode == 0, result.stderr + result.stdout
    (crawl_dir,) = (archive / "crawls").iterdir()
    return {"result": result, "archive": archive, "dir": crawl_dir,
            "manifest": json.loads((crawl_dir / "manifest.json").read_text()),
            "warcs": sorted((crawl_dir / "warc").glob("*.warc.gz")),
            "texts": read_text_shards(sorted((crawl_dir / "text").glob("*.jsonl.gz")))}


def warc_records(path: Path) -> list[dict[str, Any]]:
    """Every record of a WARC, as warcio reads it."""
    out = []
    with open(path, "rb") as f:
        it = ArchiveIterator(f)
        for record in it:
            out.append({
                "type": record.rec_type,
                "uri": record.rec_headers.get_header("WARC-Target-URI"),
                "headers": record.rec_headers,
                "http": record.http_headers,
                "raw_payload": record.raw_stream.read(),
                "offset": it.get_record_offset(),
            })
    return out


def test_summary_and_layout(crawl: dict[str, Any]) -> None:
    assert "5 articles" in crawl["result"].stdout
    names = {p.relative_to(crawl["dir"]).as_posix() for p in crawl["dir"].rglob("*")
             if p.is_file()}
    (warc,) = crawl["warcs"]
    base = warc.name.removesuffix(".warc.gz")
    assert base.startswith(crawl["dir"].name + "-00000-")
    assert names == {f"warc/{base}.warc.gz", f"index/{base}.cdxj", f"text/{base}.jsonl.gz",
                     "manifest.json"}
    assert not list(crawl["archive"].glob(".spool/**/*.*")), "spool not emptied after delivery"


def test_warcio_check_accepts_every_file(crawl: dict[str, Any]) -> None:
    for warc in crawl["warcs"]:
        check = subprocess.run([str(Path(sys.executable).parent / "warcio"), "check", "-v",
                                str(warc)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "digest pass" in check.stdout


def test_every_exchange_is_a_request_response_pair(crawl: dict[str, Any]) -> None:
    records = warc_records(crawl["warcs"][0])
    assert records[0]["type"] == "warcinfo"
    info = records[0]["raw_payload"].decode()
    for field in ("software: newsarchive/", "hostname:", "isPartOf: ", "robots: obey",
                  "format: WARC File Format 1.1", "config-digest: sha256:"):
        assert field in info
    responses = {r["headers"].get_header("WARC-Record-ID"): r for r in records
                 if r["type"] == "response"}
    requests = [r for r in records if r["type"] == "request"]
    assert len(requests) == len(responses) >= 14
    for request in requests:
        response = responses[request["headers"].get_header("WARC-Concurrent-To")]
        assert response["uri"] == request["uri"]
        assert response["headers"].get_header("WARC-IP-Address") == "127.0.0.1"
        assert records[0]["headers"].get_header("WARC-Record-ID") == \
            response["headers"].get_header("WARC-Warcinfo-ID")
    assert all(r["headers"].protocol == "WARC/1.1" for r in records)
    uris = {r["uri"].split("/", 3)[3] for r in responses.values()}
    # robots.txt, a redirect, an error status and a query URL are all captured ...
    assert {"robots.txt", "ru", "ru/", "missing.html", "uk/?section=ai&page=2"} <= uris
    # ... and robots.txt is obeyed
    assert "private/secret.html" not in uris


def _response(crawl: dict[str, Any], suffix: str) -> dict[str, Any]:
    return next(r for r in warc_records(crawl["warcs"][0])
                if r["type"] == "response" and r["uri"].endswith(suffix))


def test_statuses_are_recorded_as_received(crawl: dict[str, Any]) -> None:
    redirect = _response(crawl, "/ru")
    assert redirect["http"].statusline.startswith("301")
    assert redirect["http"].get_header("Location").endswith("/ru/")
    assert _response(crawl, "/missing.html")["http"].statusline == "404 File not found"


def test_gzip_body_is_stored_as_received(crawl: dict[str, Any], outlet: Outlet) -> None:
    article = EXPECTED["articles"][0]
    response = _response(crawl, article["path"])
    assert response["http"].get_header("Content-Encoding") == "gzip"
    assert response["raw_payload"][:2] == b"\x1f\x8b"
    original = (outlet.root / article["path"].lstrip("/")).read_bytes()
    assert gzip.decompress(response["raw_payload"]) == original


def test_heads_are_the_wire_heads(crawl: dict[str, Any]) -> None:
    chunked = _response(crawl, "/special/chunked.html")
    http = chunked["http"]
    assert http.statusline == "200 Fine Thanks"
    assert http.protocol == "HTTP/1.1"
    names = [name for name, _ in http.headers]
    assert names.index("X-Trace") > names.index("Set-Cookie")  # order as sent
    assert [v for n, v in http.headers if n == "Set-Cookie"] == ["a=1; Path=/", "b=2; Path=/"]
    assert "Transfer-Encoding" not in names  # the body is stored de-chunked
    assert chunked["raw_payload"].startswith(b"<html lang='en'>")
    assert chunked["raw_payload"].endswith(b"</html>")

    request = next(r for r in warc_records(crawl["warcs"][0]) if r["type"] == "request"
                   and r["uri"].endswith("page=2"))
    assert request["http"].protocol == "GET"
    assert request["http"].statusline == "/uk/?section=ai&page=2 HTTP/1.1"
    sent = dict(request["http"].headers)
    assert sent["Accept-Encoding"] == "gzip, deflate"
    assert sent["User-Agent"].startswith("newsarchive-tests/0.1")
    assert sent["Host"].startswith("127.0.0.1:")


def test_text_records_point_at_their_response(crawl: dict[str, Any]) -> None:
    texts = crawl["texts"]
    assert len(texts) == len(EXPECTED["articles"])
    for record in texts:
        warc = crawl["dir"].parent.parent / record["warc_file"]
        with open(warc, "rb") as f:
            f.seek(record["warc_offset"])
            member = f.read(record["warc_length"])
        (response,) = list(ArchiveIterator(io.BytesIO(member)))
        assert response.rec_type == "response"
        assert response.rec_headers.get_header("WARC-Target-URI") == record["url"]
        assert response.rec_headers.get_header("WARC-Record-ID") == record["warc_record_id"]
        assert response.rec_headers.get_header("WARC-Payload-Digest") == record["payload_digest"]


def test_text_records_have_the_design_schema(crawl: dict[str, Any]) -> None:
    fields = {"url", "outlet", "crawl_id", "fetched_at", "status", "title", "author", "date",
              "date_modified", "language", "sitename", "text", "warc_file", "warc_offset",
              "warc_length", "warc_record_id", "payload_digest", "text_digest"}
    by_path = {a["path"]: a for a in EXPECTED["articles"]}
    for record in crawl["texts"]:
        assert fields <= set(record)
        expected = by_path["/" + record["url"].split("/", 3)[3]]
        assert record["outlet"] == "techwire"
        assert record["crawl_id"] == crawl["dir"].name
        assert record["status"] == 200
        assert record["title"] == expected["title"]
        assert record["date"] == expected["date"]
        assert record["language"] == expected["language"]
        assert record["fetched_at"].endswith("Z")


@pytest.mark.parametrize("article", EXPECTED["articles"], ids=lambda a: a["path"].split("/")[-1])
def test_article_text_is_complete_and_clean(crawl: dict[str, Any], article: dict) -> None:
    record = next(r for r in crawl["texts"] if r["url"].endswith(article["path"]))
    text = record["text"]
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    for expected in article["paragraphs"]:
        assert " ".join(expected.split()) in paragraphs, f"missing paragraph: {expected[:60]}"
    for phrase in article["boilerplate"]:
        assert phrase not in text, f"boilerplate leaked: {phrase}"
    assert not text.startswith(article["title"])


def test_manifest_lists_every_file_with_fixity(crawl: dict[str, Any]) -> None:
    import hashlib

    manifest = crawl["manifest"]
    assert manifest["crawl_id"] == crawl["dir"].name
    assert manifest["outlets"] == ["techwire"]
    assert manifest["counts"]["text_records"] == len(EXPECTED["articles"])
    listed = {f["key"]: f for f in manifest["files"]}
    on_disk = {p.relative_to(crawl["archive"]).as_posix(): p for p in crawl["dir"].rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    assert set(listed) == set(on_disk)
    for key, path in on_disk.items():
        assert listed[key]["size"] == path.stat().st_size
        assert listed[key]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_cdxj_index_is_sorted_and_points_at_records(crawl: dict[str, Any]) -> None:
    (index,) = (crawl["dir"] / "index").glob("*.cdxj")
    lines = index.read_bytes().splitlines()
    assert lines == sorted(lines)
    warc = crawl["warcs"][0].read_bytes()
    for line in lines:
        surt, timestamp, data = line.decode().split(" ", 2)
        fields = json.loads(data)
        assert len(timestamp) == 14 and surt.startswith("1,0,0,127:")
        member = warc[int(fields["offset"]):int(fields["offset"]) + int(fields["length"])]
        (record,) = list(ArchiveIterator(io.BytesIO(member)))
        assert record.rec_headers.get_header("WARC-Target-URI") == fields["url"]
        assert record.rec_headers.get_header("WARC-Payload-Digest") == "sha1:" + fields["digest"]
        assert fields["filename"] == crawl["warcs"][0].relative_to(crawl["archive"]).as_posix()


def test_ls_and_dump(crawl: dict[str, Any]) -> None:
    archive = str(crawl["archive"])
    ls = run_cli("ls", "--archive", archive)
    assert ls.returncode == 0
    assert crawl["dir"].name in ls.stdout and "complete" in ls.stdout
    dump = run_cli("dump", "--archive", archive)
    records = [json.loads(line) for line in dump.stdout.splitlines()]
    assert {r["url"] for r in records} == {r["url"] for r in crawl["texts"]}
    txt = run_cli("dump", "--archive", archive, "--format", "txt", "--lang", "pl")
    (polish,) = [a for a in EXPECTED["articles"] if a["language"] == "pl"]
    assert txt.stdout.count("\n\n\n") == 1
    assert polish["title"] in txt.stdout.splitlines()[0]
    assert polish["paragraphs"][0] in txt.stdout


def test_incomplete_crawl_is_not_dumped(crawl: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    archive = tmp_path / "archive"
    shutil.copytree(crawl["archive"], archive)
    (crawl_dir,) = (archive / "crawls").iterdir()
    (crawl_dir / "manifest.json").unlink()
    dump = run_cli("dump", "--archive", str(archive))
    assert dump.returncode == 0 and dump.stdout == ""
    assert "INCOMPLETE" in run_cli("ls", "--archive", str(archive)).stdout
