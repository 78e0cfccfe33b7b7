"""Crawls into a real S3-compatible server (SeaweedFS over HTTP, signed requests), including an
outage: nothing is lost, the spool keeps the files and the next run uploads them."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from crawler.config import ArchiveConfig
from crawler.store.backends import S3Store
from crawler.store.spool import Spool
from tests.conftest import Outlet, run_cli, s3_archive, s3_env, write_config
from tests.s3server import S3Server


def _config(tmp_path: Path, outlet: Outlet, s3: S3Server, bucket: str, spool: Path) -> Path:
    return write_config(
        tmp_path / "outlets.toml", outlet.url, f"s3://{bucket}/news/v1",
        extra_archive=s3_archive(s3, spool, "max_attempts = 2"))


def _keys(s3: S3Server, bucket: str) -> dict[str, int]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def test_crawl_into_s3(tmp_path: Path, outlet: Outlet, s3: S3Server, bucket: str) -> None:
    spool = tmp_path / "spool"
    config = _config(tmp_path, outlet, s3, bucket, spool)
    result = run_cli("crawl", "-c", str(config), env=s3_env(s3))
    assert result.returncode == 0, result.stderr + result.stdout

    keys = _keys(s3, bucket)
    (manifest_key,) = [k for k in keys if k.endswith("manifest.json")]
    assert manifest_key.startswith("news/v1/crawls/techwire-")
    client = s3.client()
    manifest = json.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    kinds = sorted(f["kind"] for f in manifest["files"])
    assert kinds == ["index", "text", "warc"]
    for entry in manifest["files"]:
        key = f"news/v1/{entry['key']}"
        assert keys[key] == entry["size"]
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"]["sha256"] == entry["sha256"]
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
    assert not [p for p in spool.rglob("*") if p.is_file()], "spool not emptied"

    # a ranged GET of a text record's span is exactly its response record
    text_key = next(f["key"] for f in manifest["files"] if f["kind"] == "text")
    import gzip

    lines = gzip.decompress(client.get_object(Bucket=bucket, Key=f"news/v1/{text_key}")
                            ["Body"].read()).splitlines()
    record = json.loads(lines[0])
    span = client.get_object(Bucket=bucket, Key=f"news/v1/{record['warc_file']}",
                             Range=f"bytes={record['warc_offset']}-"
                                   f"{record['warc_offset'] + record['warc_length'] - 1}")
    (response,) = list(ArchiveIterator(io.BytesIO(span["Body"].read())))
    assert response.rec_headers.get_header("WARC-Target-URI") == record["url"]

    dump = run_cli("dump", "-c", str(config), env=s3_env(s3))
    assert len(dump.stdout.splitlines()) == manifest["counts"]["text_records"] == 5


def test_s3_outage_loses_nothing(tmp_path: Path, outlet: Outlet, s3: S3Server, bucket: str
                                 ) -> None:
    spool = tmp_path / "spool"
    config = _config(tmp_path, outlet, s3, bucket, spool)
    s3.stop(keep_data=True)
    try:
        down = run_cli("crawl", "-c", str(config), env=s3_env(s3))
    finally:
        s3.start()
    assert down.returncode == 3, down.stderr + down.stdout
    assert "kept in" in down.stdout and str(spool) in down.stdout
    left = sorted(p.relative_to(spool).as_posix() for p in spool.rglob("*") if p.is_file())
    spooled = [k for k in left if not k.startswith("jobs/")]
    # the crawl's state journal waits beside them, merged once its files are up
    assert [k.split("/", 2)[2] for k in left if k.startswith("jobs/")] == [
        "files.jsonl", "job.json", "state.jsonl"]
    assert [k.rsplit("/", 2)[-2] for k in spooled] == ["index", "text", "warc"] or \
        {k.split("/")[-2] for k in spooled} >= {"index", "text", "warc"}
    assert any(k.endswith("manifest.json") for k in spooled)
    first_crawl = spooled[0].split("/")[1]
    assert not _keys(s3, bucket), "nothing may reach the bucket while it is down"

    up = run_cli("crawl", "-c", str(config), env=s3_env(s3))
    assert up.returncode == 0, up.stderr + up.stdout
    keys = _keys(s3, bucket)
    for key in spooled:
        assert f"news/v1/{key}" in keys, f"{key} was not delivered by the next run"
    assert not [p for p in spool.rglob("*") if p.is_file()]  # the journal merged too
    assert any(k.startswith("news/v1/state/urls/techwire/") for k in keys)
    ls = run_cli("ls", "-c", str(config), env=s3_env(s3))
    assert ls.stdout.count(" complete ") == 2 and first_crawl in ls.stdout


def test_bad_credentials_keep_files_in_spool(tmp_path: Path, outlet: Outlet, s3: S3Server,
                                             bucket: str) -> None:
    spool = tmp_path / "spool"
    config = _config(tmp_path, outlet, s3, bucket, spool)
    env = {**s3_env(s3), "AWS_SECRET_ACCESS_KEY": "wrong-secret"}
    result = run_cli("crawl", "-c", str(config), env=env)
    assert result.returncode == 3
    assert "SignatureDoesNotMatch" in result.stdout + result.stderr
    assert any(p.name == "manifest.json" for p in spool.rglob("*"))
    assert not _keys(s3, bucket)


def test_spool_delivers_manifest_last(tmp_path: Path, s3: S3Server, bucket: str,
                                      monkeypatch) -> None:
    for name, value in s3_env(s3).items():
        monkeypatch.setenv(name, value)
    store = S3Store(f"s3://{bucket}/p", ArchiveConfig(endpoint_url=s3.endpoint_url,
                                                      addressing_style="path", max_attempts=1))
    spool = Spool(tmp_path / "spool")
    for key in ("crawls/a/manifest.json", "crawls/a/warc/a.warc.gz", "crawls/a/text/a.jsonl.gz"):
        spool.path(key).parent.mkdir(parents=True, exist_ok=True)
        spool.path(key).write_bytes(key.encode())
    spool.path("crawls/b/warc/b.warc.gz.open").parent.mkdir(parents=True)
    spool.path("crawls/b/warc/b.warc.gz.open").write_bytes(b"half")
    spool.path("crawls/b/manifest.json").write_bytes(b"{}")
    assert spool.pending()[-2:] == ["crawls/a/manifest.json", "crawls/b/manifest.json"]
    sent, left = spool.flush(store)
    assert sent == 3 and left == 1  # b's manifest waits: b still has a half-written file
    assert spool.unfinished() == ["crawls/b/warc/b.warc.gz.open"]
    assert store.read_range("crawls/a/warc/a.warc.gz", 9, 4) == b"warc"
    assert [o.key for o in store.list("crawls/")] == [
        "crawls/a/manifest.json", "crawls/a/text/a.jsonl.gz", "crawls/a/warc/a.warc.gz"]
    assert store.stat("crawls/b/manifest.json") is None


def test_multipart_upload_is_checksummed(tmp_path: Path, s3: S3Server, bucket: str,
                                         monkeypatch) -> None:
    for name, value in s3_env(s3).items():
        monkeypatch.setenv(name, value)
    store = S3Store(f"s3://{bucket}/m", ArchiveConfig(endpoint_url=s3.endpoint_url,
                                                      multipart_threshold=5 * 1024 * 1024))
    path = tmp_path / "big.warc.gz"
    data = os.urandom(17 * 1024 * 1024)
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    info = store.put_file(path, "crawls/x/warc/big.warc.gz", digest)
    assert info.size == len(data)
    head = s3.client().head_object(Bucket=bucket, Key="m/crawls/x/warc/big.warc.gz",
                                   ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].endswith("-3")  # verified per part by the server
    assert store.stat("crawls/x/warc/big.warc.gz").sha256 == digest
    body = store.open("crawls/x/warc/big.warc.gz").read()
    assert hashlib.sha256(body).hexdigest() == digest
