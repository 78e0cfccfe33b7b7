"""WARC rotation, max_pages, and `scrapy crawl outlet` from the project root."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from tests.conftest import EXPECTED, ROOT, Outlet, read_text_shards, run_cli, write_config


def test_rotation_gives_complete_shards(tmp_path: Path, outlet: Outlet) -> None:
    archive = tmp_path / "archive"
    config = write_config(tmp_path / "o.toml", outlet.url, str(archive),
                          extra_outlet='warc_max_size = "12kB"')
    result = run_cli("crawl", "-c", str(config))
    assert result.returncode == 0, result.stderr
    (crawl,) = (archive / "crawls").iterdir()
    warcs = sorted((crawl / "warc").glob("*.warc.gz"))
    assert len(warcs) >= 4
    serials = [int(w.name.split("-")[-2]) for w in warcs]
    assert serials == list(range(len(warcs)))
    for warc in warcs:
        base = warc.name.removesuffix(".warc.gz")
        assert (crawl / "index" / f"{base}.cdxj").exists()
        assert (crawl / "text" / f"{base}.jsonl.gz").exists()
        with open(warc, "rb") as f:
            types = [r.rec_type for r in ArchiveIterator(f)]
        assert types[0] == "warcinfo" and types.count("warcinfo") == 1
    assert not list(crawl.rglob("*.open"))
    texts = read_text_shards(sorted((crawl / "text").glob("*.jsonl.gz")))
    assert len(texts) == len(EXPECTED["articles"])
    for record in texts:
        with open(archive / record["warc_file"], "rb") as f:
            f.seek(record["warc_offset"])
            (response,) = list(ArchiveIterator(io.BytesIO(f.read(record["warc_length"]))))
        assert response.rec_headers.get_header("WARC-Target-URI") == record["url"]
    manifest = json.loads((crawl / "manifest.json").read_text())
    assert len(manifest["files"]) == 3 * len(warcs)


def test_max_pages_bounds_the_crawl(tmp_path: Path, outlet: Outlet) -> None:
    archive = tmp_path / "archive"
    config = write_config(tmp_path / "o.toml", outlet.url, str(archive),
                          extra_outlet="max_pages = 3")
    result = run_cli("crawl", "-c", str(config))
    assert result.returncode == 0, result.stderr
    (crawl,) = (archive / "crawls").iterdir()
    manifest = json.loads((crawl / "manifest.json").read_text())
    # three pages, plus the robots.txt fetch
    assert manifest["counts"]["responses"] == 4


def test_scrapy_crawl_from_the_project_root(tmp_path: Path, outlet: Outlet) -> None:
    archive = tmp_path / "archive"
    config = write_config(tmp_path / "o.toml", outlet.url, str(archive))
    scrapy = str(Path(sys.executable).parent / "scrapy")
    result = subprocess.run([scrapy, "crawl", "outlet", "-a", "outlet=techwire",
                             "-a", f"config={config}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=180, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    (crawl,) = (archive / "crawls").iterdir()
    assert crawl.name.startswith("techwire-")
    manifest = json.loads((crawl / "manifest.json").read_text())
    assert manifest["counts"]["text_records"] == len(EXPECTED["articles"])
