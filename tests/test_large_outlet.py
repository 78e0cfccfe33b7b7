"""A 2,000-article outlet (the shared benchmark site generator), discovered through its sitemap,
is fully archived: every article captured and extracted, nothing else taken for an article."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from crawler.jobs.demo import OutletServer
from tests.conftest import ROOT, read_text_shards, run_cli

MAKE_SITE = ROOT.parent / "shared" / "benchmarks" / "site" / "make_site.py"
ARTICLES = 2000


def test_sitemap_outlet_is_fully_archived(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    subprocess.run([sys.executable, str(MAKE_SITE), "--out", str(tmp_path / "site"),
                    "--articles", str(ARTICLES), "--base-url", base], check=True,
                   stdout=subprocess.DEVNULL)
    truth = [json.loads(line) for line in
             (tmp_path / "site" / "ground_truth.jsonl").read_text("utf-8").splitlines()]
    archive = tmp_path / "archive"
    config = tmp_path / "outlets.toml"
    config.write_text(f"""
[archive]
uri = "{archive}"
[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"
autothrottle = false
concurrency = 8
[[outlets]]
name = "bench"
sitemaps = ["{base}/sitemap.xml"]
allow = ['/news/']
requisites = false  # its pages load images from img.cdn.invalid: no lookups outside
""")
    with OutletServer(tmp_path / "site" / "www", port=port, handler=SimpleHTTPRequestHandler):
        result = run_cli("crawl", "-c", str(config), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (crawl,) = (archive / "crawls").iterdir()
    texts = {t["url"]: t for t in read_text_shards(sorted((crawl / "text").glob("*.jsonl.gz")))}
    assert set(texts) == {a["url"] for a in truth}
    for article in truth:
        record = texts[article["url"]]
        assert record["title"] == article["title"]
        assert record["date"] == article["date"][:10]
    kept = sum(p in texts[a["url"]]["text"] for a in truth for p in a["paragraphs"])
    total = sum(len(a["paragraphs"]) for a in truth)
    assert kept / total >= 0.99, f"{kept}/{total} paragraphs kept"
    manifest = json.loads((crawl / "manifest.json").read_text())
    assert manifest["counts"]["text_records"] == ARTICLES
