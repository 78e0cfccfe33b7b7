"""`newsarchive verify` on a real crawl of the fixture outlet, local and in S3 (SeaweedFS, with a
re-extracted text version): a good archive passes; a flipped byte, a missing object or a text
record pointing at the wrong record is found and named."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Outlet, crawl_local, crawl_s3, read_text_shards, run_cli, s3_env
from tests.s3server import S3Server


@pytest.fixture(scope="module")
def crawl(outlet: Outlet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("verify")
    return crawl_local(outlet, work)


def damaged_copy(crawl: dict[str, Any], tmp_path: Path) -> Path:
    archive = tmp_path / "archive"
    shutil.copytree(crawl["archive"], archive)
    return archive


def entries(crawl: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in crawl["manifest"]["files"] if e["kind"] == kind]


def verify(archive: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("verify", "--archive", archive, *extra)


def test_verify_passes_on_a_good_archive(crawl: dict[str, Any]) -> None:
    result = verify(str(crawl["archive"]), "--crawl", crawl["crawl_id"])
    assert result.returncode == 0, result.stdout + result.stderr
    for entry in crawl["manifest"]["files"]:
        assert f"ok  {entry['key']} ({entry['size']} bytes)" in result.stdout
    assert "PROBLEM" not in result.stdout
    records = sum(e["records"] for e in entries(crawl, "text"))
    assert f"{records} text records" in result.stdout
    assert "checks out" in result.stdout


def test_flipped_byte_in_a_record_payload_is_found(crawl: dict[str, Any], tmp_path: Path
                                                   ) -> None:
    archive = damaged_copy(crawl, tmp_path)
    (warc,) = entries(crawl, "warc")
    (text,) = entries(crawl, "text")
    article = read_text_shards([archive / text["key"]])[0]
    path = archive / warc["key"]
    data = bytearray(path.read_bytes())
    data[article["warc_offset"] + article["warc_length"] // 2] ^= 0x01  # mid-payload, compressed
    path.write_bytes(bytes(data))

    result = verify(str(archive))
    assert result.returncode == 1
    assert warc["key"] in result.stderr.splitlines()[-1]  # the one-line reason names the object
    assert f"PROBLEM {warc['key']}: record at offset {article['warc_offset']}" in result.stdout
    assert f"PROBLEM {warc['key']}: sha256 {hashlib.sha256(data).hexdigest()}" in result.stdout
    # the others are still fine: pointers to the sound records after the damaged one resolve
    (index,) = entries(crawl, "index")
    assert f"ok  {text['key']}" in result.stdout and f"ok  {index['key']}" in result.stdout


def test_missing_object_is_named(crawl: dict[str, Any], tmp_path: Path) -> None:
    archive = damaged_copy(crawl, tmp_path)
    (index,) = entries(crawl, "index")
    (archive / index["key"]).unlink()

    result = verify(str(archive))
    assert result.returncode == 1
    assert f"PROBLEM {index['key']}: missing" in result.stdout
    assert index["key"] in result.stderr


def test_text_record_pointing_at_the_wrong_record_is_found(crawl: dict[str, Any],
                                                           tmp_path: Path) -> None:
    """Fixity alone cannot catch a shard written wrong: the pointers are checked too."""
    archive = damaged_copy(crawl, tmp_path)
    (text,) = entries(crawl, "text")
    records = read_text_shards([archive / text["key"]])
    wrong = records[1]
    wrong["warc_offset"] = records[0]["warc_offset"]  # another article's response
    body = gzip.compress("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                 for r in records).encode())
    (archive / text["key"]).write_bytes(body)
    manifest_path = archive / "crawls" / crawl["crawl_id"] / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"]:
        if entry["key"] == text["key"]:
            entry.update(size=len(body), sha256=hashlib.sha256(body).hexdigest())
    manifest_path.write_text(json.dumps(manifest))

    result = verify(str(archive))
    assert result.returncode == 1
    assert f"PROBLEM {text['key']}: line 2 ({wrong['url']}): " in result.stdout
    assert "sha256" not in result.stdout  # the file itself matches its (rewritten) manifest


def test_verify_in_s3(outlet: Outlet, s3: S3Server, bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/news"
    config = crawl_s3(outlet, s3, tmp_path, uri)
    env = s3_env(s3)
    client = s3.client()
    (manifest_key,) = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]
                       if o["Key"].endswith("manifest.json")]
    manifest = json.loads(client.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())

    reextracted = run_cli("reextract", "-c", str(config), env=env)  # reads the WARCs from S3
    assert reextracted.returncode == 0, reextracted.stdout + reextracted.stderr
    version = json.loads(client.get_object(Bucket=bucket, Key=manifest_key.replace(
        "manifest.json", "text/v2/manifest.json"))["Body"].read())

    good = run_cli("verify", "-c", str(config), env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    for entry in manifest["files"] + version["files"]:
        assert f"ok  {entry['key']} ({entry['size']} bytes)" in good.stdout
    assert f"{2 * version['counts']['text_records']} text records" in good.stdout

    warc = next(e for e in manifest["files"] if e["kind"] == "warc")
    text = next(e for e in manifest["files"] if e["kind"] == "text")
    body = bytearray(client.get_object(Bucket=bucket, Key=f"news/{warc['key']}")["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=f"news/{warc['key']}", Body=bytes(body))
    client.delete_object(Bucket=bucket, Key=f"news/{text['key']}")

    bad = run_cli("verify", "-c", str(config), env=env)
    assert bad.returncode == 1
    assert f"PROBLEM {warc['key']}: sha256" in bad.stdout
    assert f"PROBLEM {text['key']}: missing" in bad.stdout
