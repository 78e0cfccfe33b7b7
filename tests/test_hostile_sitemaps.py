"""Sitemaps a site may send that would take a crawl's memory: a million entries, an index of such
sitemaps, a gzip bomb, megabytes of elements that are no entries. Each crawl runs as a user runs
it, in a subprocess whose peak RSS is measured; it must finish, stay within a bound, and count
what the caps left unread."""

from __future__ import annotations

import gzip
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from crawler.discovery.feeds import MAX_DOCUMENT_BYTES
from crawler.jobs.demo import OutletServer
from tests.conftest import NEWSARCHIVE, read_text_shards
from tests.discovery_site import article_html

# the crawl process, all included: about 100 MB in each test here; the parser that held a whole
# document's entries took 170 to 500 MB in them
PEAK_RSS_MB = 160
MAX_ENTRIES = 50_000  # max_sitemap_entries' default
ARTICLES = 5
URLSET = b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
# the crawl, and the largest RSS it reached (ru_maxrss of the wrapper's children: its own tree)
_MEASURED = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
             "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN)"
             ".ru_maxrss // 1024)); sys.exit(code)")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An outlet with a few articles; the test adds its sitemaps to `root`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    root = tmp_path / "www"
    (root / "news").mkdir(parents=True)
    articles = [f"/news/story-{n}.html" for n in range(ARTICLES)]
    for n, path in enumerate(articles):
        (root / path.lstrip("/")).write_text(article_html(f"Story {n}", date(2025, 8, 1), n))
    with OutletServer(root, port=port):
        yield {"base": base, "root": root, "articles": articles, "tmp": tmp_path}


def write_sitemap(path: Path, base: str, entries: int, prefix: str = "",
                  first: Sequence[str] = ()) -> None:
    """A gzipped sitemap of `entries` URLs, the `first` listed first; written in slices."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(URLSET)
        out.write("".join(f"<url><loc>{base}{p}</loc></url>" for p in first).encode())
        for start in range(len(first), entries, 20_000):
            out.write("".join(f"<url><loc>{base}/{prefix}{n}</loc></url>"
                              for n in range(start, min(entries, start + 20_000))).encode())
        out.write(b"</urlset>")


def crawl(site: dict[str, Any], sitemaps: list[str], outlet: str = "") -> dict[str, Any]:
    """`newsarchive crawl` of the outlet at most ARTICLES pages deep; its output, its peak RSS
    in MB and the URLs it archived as articles."""
    archive, config = site["tmp"] / "archive", site["tmp"] / "outlets.toml"
    config.write_text(f"""
[archive]
uri = "{archive}"
[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"
max_pages = {ARTICLES}
[[outlets]]
name = "hostile"
sitemaps = {json.dumps([site["base"] + s for s in sitemaps])}
{outlet}
""")
    peak = site["tmp"] / "peak_rss"
    result = subprocess.run([sys.executable, "-c", _MEASURED, str(peak), NEWSARCHIVE, "crawl",
                             "-c", str(config), "--log-level", "WARNING"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout
    (crawl_dir,) = (archive / "crawls").iterdir()
    texts = read_text_shards(sorted((crawl_dir / "text").glob("*.jsonl.gz")))
    return {"stdout": result.stdout, "stderr": result.stderr, "peak_mb": int(peak.read_text()),
            "articles": [t["url"].removeprefix(site["base"]) for t in texts]}


def skipped(result: dict[str, Any], name: str) -> int:
    match = re.search(rf"skipped \([^)]*\b{name} (\d+)", result["stdout"])
    return int(match.group(1)) if match else 0


def test_million_entry_sitemap_is_read_to_the_cap_in_bounded_memory(
        site: dict[str, Any]) -> None:
    entries = 1_000_000
    write_sitemap(site["root"] / "sitemap.xml.gz", site["base"], entries,
                  first=site["articles"])
    result = crawl(site, ["/sitemap.xml.gz"])
    assert result["peak_mb"] < PEAK_RSS_MB, result["peak_mb"]
    assert sorted(result["articles"]) == site["articles"]  # the first listed
    assert skipped(result, "sitemap_cap") == entries - MAX_ENTRIES
    assert skipped(result, "max_pages") == MAX_ENTRIES - ARTICLES
    assert f"{site['base']}/sitemap.xml.gz read in part: {entries - MAX_ENTRIES} entries past " \
           f"max_sitemap_entries ({MAX_ENTRIES}) skipped" in result["stderr"]


def test_sitemap_index_of_large_sitemaps_stays_in_bounded_memory(site: dict[str, Any]) -> None:
    children, entries = 4, 400_000
    index = "".join(f"<sitemap><loc>{site['base']}/sitemap-{n}.xml.gz</loc></sitemap>"
                    for n in range(children))
    (site["root"] / "index.xml").write_text(
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{index}</sitemapindex>")
    for n in range(children):
        write_sitemap(site["root"] / f"sitemap-{n}.xml.gz", site["base"], entries,
                      prefix=f"s{n}/", first=site["articles"] if n == 0 else [])
    result = crawl(site, ["/index.xml"])
    assert result["peak_mb"] < PEAK_RSS_MB, result["peak_mb"]
    assert sorted(result["articles"]) == site["articles"]
    assert skipped(result, "sitemap_cap") == children * (entries - MAX_ENTRIES)


def test_gzip_bomb_sitemap_is_cut_at_the_byte_cap_and_the_crawl_goes_on(
        site: dict[str, Any]) -> None:
    """3.5 GB of <url> elements in 10 MB (gzip members, each inflating 350-fold) next to a
    sitemap of the articles: the bomb is read to 50 MB and no further."""
    entry = b"<url><loc>http://bomb.invalid/x</loc></url>"  # off the outlet: no page taken
    member = gzip.compress(entry * (10_000_000 // len(entry)))
    with open(site["root"] / "bomb.xml.gz", "wb") as out:
        out.write(gzip.compress(URLSET))
        for _ in range(360):
            out.write(member)
    write_sitemap(site["root"] / "sitemap.xml.gz", site["base"], ARTICLES,
                  first=site["articles"])
    result = crawl(site, ["/bomb.xml.gz", "/sitemap.xml.gz"])
    assert result["peak_mb"] < PEAK_RSS_MB, result["peak_mb"]
    assert sorted(result["articles"]) == site["articles"]
    assert skipped(result, "sitemap_cut") == 1
    within_cap = (MAX_DOCUMENT_BYTES - len(URLSET)) // len(entry)  # whole entries in 50 MB
    assert within_cap - MAX_ENTRIES - 1 <= skipped(result, "sitemap_cap") <= \
        within_cap - MAX_ENTRIES
    assert f"{site['base']}/bomb.xml.gz read in part" in result["stderr"]
    assert f"cut short, larger than {MAX_DOCUMENT_BYTES} bytes uncompressed" in result["stderr"]


def test_elements_between_entries_do_not_pile_up(site: dict[str, Any]) -> None:
    """A sitemap whose entries are few and far between: 20 MB of other elements around them."""
    links = [f"<url><loc>{site['base']}{p}</loc></url>".encode() for p in site["articles"]]
    with gzip.open(site["root"] / "sitemap.xml.gz", "wb", compresslevel=1) as out:
        out.write(URLSET)
        for link in links:
            out.write(link + b"<x/>" * 1_000_000)
        out.write(b"</urlset>")
    result = crawl(site, ["/sitemap.xml.gz"])
    assert result["peak_mb"] < PEAK_RSS_MB, result["peak_mb"]
    assert sorted(result["articles"]) == site["articles"]


def test_max_sitemap_entries_caps_feeds_too_and_is_checked(site: dict[str, Any]) -> None:
    items = "".join(f"<item><link>{site['base']}{p}</link></item>" for p in site["articles"])
    (site["root"] / "rss.xml").write_text(f"<rss><channel>{items}</channel></rss>")
    result = crawl(site, [], f'feeds = ["{site["base"]}/rss.xml"]\nmax_sitemap_entries = 3')
    assert sorted(result["articles"]) == site["articles"][:3]  # the first listed
    assert skipped(result, "sitemap_cap") == ARTICLES - 3
    config = site["tmp"] / "outlets.toml"
    config.write_text(config.read_text().replace("max_sitemap_entries = 3",
                                                 "max_sitemap_entries = 0"))
    refused = subprocess.run([NEWSARCHIVE, "crawl", "-c", str(config)], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1
    assert "outlets[0].max_sitemap_entries: must be at least 1, got 0" in refused.stderr
