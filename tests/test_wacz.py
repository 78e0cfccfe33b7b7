"""`newsarchive export-wacz`: a crawl of the fixture outlet (local and in S3) packaged as WACZ
1.1.1, accepted by `wacz validate` (PyPI `wacz`), with the WARCs byte for byte, an index that
finds every capture inside the package, and the articles' text in pages.jsonl; memory stays flat
on a large crawl."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.capture.cdxj import cdxj_line, timestamp14
from crawler.capture.warc import WarcFile, warc_date
from crawler.errors import ArchiveError
from crawler.readers.originals import Original, read_originals
from crawler.store.backends import LocalStore
from tests.conftest import EXPECTED, Outlet, crawl_local, crawl_s3, run_cli, s3_env
from tests.s3server import S3Server

WACZ = str(Path(sys.executable).parent / "wacz")


@pytest.fixture(scope="module")
def crawl(outlet: Outlet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("wacz")
    return crawl_local(outlet, work)


@pytest.fixture(scope="module")
def package(crawl: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wacz-out") / "crawl.wacz"
    result = run_cli("export-wacz", "--archive", str(crawl["archive"]), "--crawl",
                     crawl["crawl_id"], "-o", str(out))
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"{len(EXPECTED['articles'])} pages with text" in result.stdout
    return out


def wacz_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WACZ, "validate", "-f", str(path)], capture_output=True, text=True,
                          timeout=300)


def test_wacz_validate_accepts_it(package: Path) -> None:
    result = wacz_validate(package)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation succeeded" in result.stdout


def test_warcs_are_stored_byte_for_byte(crawl: dict[str, Any], package: Path) -> None:
    warcs = [e for e in crawl["manifest"]["files"] if e["kind"] == "warc"]
    with zipfile.ZipFile(package) as zf:
        for entry in warcs:
            info = zf.getinfo("archive/" + entry["key"].rsplit("/", 1)[-1])
            assert info.compress_type == zipfile.ZIP_STORED  # replay reads records by range
            assert hashlib.sha256(zf.read(info)).hexdigest() == entry["sha256"]
        assert sorted(n for n in zf.namelist() if n.startswith("archive/")) == \
               sorted("archive/" + e["key"].rsplit("/", 1)[-1] for e in warcs)


def test_index_finds_every_capture_inside_the_package(crawl: dict[str, Any],
                                                      package: Path) -> None:
    captures = sum(len((crawl["archive"] / e["key"]).read_bytes().splitlines())
                   for e in crawl["manifest"]["files"] if e["kind"] == "index")
    with zipfile.ZipFile(package) as zf:
        lines = zf.read("indexes/index.cdxj").splitlines()
        assert len(lines) == captures
        assert lines == sorted(lines)
        for line in lines:
            fields = json.loads(line.split(b" ", 2)[2])
            assert "/" not in fields["filename"]  # relative to archive/, as WACZ requires
            with zf.open("archive/" + fields["filename"]) as warc:
                warc.seek(int(fields["offset"]))
                span = warc.read(int(fields["length"]))
            record = next(ArchiveIterator(io.BytesIO(span)))
            assert record.rec_headers.get_header("WARC-Target-URI") == fields["url"]
            assert record.rec_type == "response"


def test_pages_list_the_articles_with_their_text(crawl: dict[str, Any], package: Path) -> None:
    dumped = run_cli("dump", "--archive", str(crawl["archive"]), "--crawl", crawl["crawl_id"])
    articles = {r["url"]: r for r in map(json.loads, dumped.stdout.splitlines())}
    assert len(articles) == len(EXPECTED["articles"])
    with zipfile.ZipFile(package) as zf:
        header, *pages = map(json.loads, zf.read("pages/pages.jsonl").splitlines())
    assert header["format"] == "json-pages-1.0" and header["id"] == "pages"
    assert crawl["crawl_id"] in header["title"]
    assert {p["url"] for p in pages} == set(articles)
    for page in pages:
        article = articles[page["url"]]
        assert (page["ts"], page["title"], page["text"]) == \
               (article["fetched_at"], article["title"], article["text"])
        assert page["id"]


def test_datapackage_lists_every_file_with_its_digest(package: Path) -> None:
    with zipfile.ZipFile(package) as zf:
        datapackage = zf.read("datapackage.json")
        meta = json.loads(datapackage)
        digest = json.loads(zf.read("datapackage-digest.json"))
        assert meta["wacz_version"] == "1.1.1"
        assert digest == {"path": "datapackage.json",
                          "hash": "sha256:" + hashlib.sha256(datapackage).hexdigest()}
        listed = {r["path"]: r for r in meta["resources"]}
        assert set(listed) == set(zf.namelist()) - {"datapackage.json",
                                                    "datapackage-digest.json"}
        for path, resource in listed.items():
            data = zf.read(path)
            assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
            assert resource["bytes"] == len(data)


def test_damaged_warc_is_not_packaged(crawl: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    archive = tmp_path / "archive"
    shutil.copytree(crawl["archive"], archive)
    warc = next(e for e in crawl["manifest"]["files"] if e["kind"] == "warc")
    data = bytearray((archive / warc["key"]).read_bytes())
    data[len(data) // 2] ^= 0x01
    (archive / warc["key"]).write_bytes(bytes(data))
    out = tmp_path / "out.wacz"
    result = run_cli("export-wacz", "--archive", str(archive), "--crawl", crawl["crawl_id"],
                     "-o", str(out))
    assert result.returncode == 1
    assert warc["key"] in result.stderr
    assert not list(tmp_path.glob("out.wacz*"))  # no package, no partial file


def test_export_from_s3(outlet: Outlet, s3: S3Server, bucket: str, tmp_path: Path) -> None:
    config = crawl_s3(outlet, s3, tmp_path, f"s3://{bucket}/v1")
    env = s3_env(s3)
    listing = run_cli("ls", "--json", "-c", str(config), env=env)
    (crawl_id,) = [json.loads(line)["crawl_id"] for line in listing.stdout.splitlines()]
    out = tmp_path / "s3.wacz"
    result = run_cli("export-wacz", "-c", str(config), "--crawl", crawl_id, "-o", str(out),
                     env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    validated = wacz_validate(out)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    with zipfile.ZipFile(out) as zf:
        pages = zf.read("pages/pages.jsonl").splitlines()[1:]
    assert len(pages) == len(EXPECTED["articles"])


# ---------------------------------------------------------------- memory on a large crawl

_PEAK_RSS = ("import resource, subprocess, sys\n"
             "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")


def peak_rss_kb(*args: str) -> int:
    """Peak resident memory of one `newsarchive` run, measured in a process of its own."""
    measured = subprocess.run([sys.executable, "-c", _PEAK_RSS,
                               str(Path(sys.executable).parent / "newsarchive"), *args],
                              capture_output=True, text=True, timeout=600)
    code, peak = measured.stdout.split()
    assert code == "0", (args, measured.stderr)
    return int(peak)


def write_large_crawl(archive: Path, crawl_id: str, records: int, record_size: int) -> int:
    """A committed crawl with one large WARC, written with the project's own WARC writer."""
    base = f"{crawl_id}-00000-big"
    prefix = archive / "crawls" / crawl_id
    warc_key = f"crawls/{crawl_id}/warc/{base}.warc.gz"
    warc = WarcFile(archive / warc_key, warc_key, compress_level=1)
    lines = []
    for n in range(records):
        url, date = f"http://127.0.0.1/big/{n}.bin", warc_date()
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n" % record_size)
        written = warc.write_record("response", [("WARC-Date", date), ("WARC-Target-URI", url)],
                                    (head, os.urandom(record_size)),
                                    content_type="application/http; msgtype=response")
        lines.append(cdxj_line(url, timestamp14(date), mime="application/octet-stream",
                               status=200, digest=written.payload_digest or "",
                               length=written.length, offset=written.offset, filename=warc_key))
    warc.close()
    files = {f"warc/{base}.warc.gz": "warc", f"index/{base}.cdxj": "index",
             f"text/{base}.jsonl.gz": "text"}
    (prefix / "index").mkdir(parents=True)
    (prefix / f"index/{base}.cdxj").write_text("".join(sorted(lines)))
    (prefix / "text").mkdir()
    (prefix / f"text/{base}.jsonl.gz").write_bytes(gzip.compress(b""))
    entries = []
    for name, kind in files.items():
        data = (prefix / name).read_bytes()
        entries.append({"key": f"crawls/{crawl_id}/{name}", "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(), "kind": kind,
                        **({"records": records} if kind == "warc" else {}),
                        **({"records": 0} if kind == "text" else {})})
    (prefix / "manifest.json").write_text(json.dumps({
        "format": "newsarchive-manifest/1", "crawl_id": crawl_id, "job": "big",
        "started": "2025-08-14T10:00:00Z", "ended": "2025-08-14T10:10:00Z",
        "outlets": ["big"], "counts": {"responses": records}, "files": entries}))
    return warc.size


def test_memory_stays_flat_on_a_large_crawl(tmp_path: Path) -> None:
    archive, crawl_id = tmp_path / "archive", "big-20250814T100000Z"
    warc_size = write_large_crawl(archive, crawl_id, records=12, record_size=10 << 20)
    baseline = peak_rss_kb("ls", "--archive", str(archive))  # the same imports, no data
    exported = peak_rss_kb("export-wacz", "--archive", str(archive), "--crawl", crawl_id,
                           "-o", str(tmp_path / "big.wacz"))
    verified = peak_rss_kb("verify", "--archive", str(archive))
    for name, peak in (("export-wacz", exported), ("verify", verified)):
        grown = (peak - baseline) * 1024
        assert grown < warc_size / 4, f"{name}: {grown / 1e6:.0f} MB more than `ls` " \
                                      f"for a {warc_size / 1e6:.0f} MB WARC"
    assert (tmp_path / "big.wacz").stat().st_size > warc_size


class CountingStore(LocalStore):
    """A local archive that counts its ranged reads (each is a GET on S3)."""

    reads = 0

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        self.reads += 1
        return super().read_range(key, offset, length)


def test_originals_close_together_are_read_in_one_ranged_read(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    members = [gzip.compress(f"record {i} ".encode() * 50) for i in range(6)]
    (tmp_path / "a.warc.gz").write_bytes(b"".join(members[:4]))
    (tmp_path / "b.warc.gz").write_bytes(b"".join(members[4:]))
    offsets = [sum(len(m) for m in members[:i]) for i in range(4)] + [0, len(members[4])]
    keys = ["a.warc.gz"] * 4 + ["b.warc.gz"] * 2
    wanted = [Original(b"", keys[i], offsets[i], len(members[i])) for i in (0, 1, 3, 4, 5)]
    assert list(read_originals(store, wanted)) == [members[i] for i in (0, 1, 3, 4, 5)]
    assert store.reads == 2  # one per WARC: the gaps between them are small
    (tmp_path / "a.warc.gz").write_bytes(b"".join(members[:3]))  # the last one cut off
    with pytest.raises(ArchiveError, match="ends before the capture"):
        list(read_originals(store, wanted[2:3]))
