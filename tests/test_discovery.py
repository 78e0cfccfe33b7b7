"""Finding an outlet's articles, politely: feeds, sitemaps, sections; robots.txt, Crawl-delay,
Retry-After, the time window, size limits and traps."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.discovery.feeds import Listing, NotADiscoveryDocument
from crawler.discovery.markup import read_markup
from crawler.jobs.demo import OutletServer
from tests.conftest import read_text_shards, run_cli
from tests.discovery_site import article_html, build_site, logging_handler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    root = tmp_path / "www"
    paths = build_site(root, base)
    handler = logging_handler()
    with OutletServer(root, port=port, handler=handler):
        yield {"base": base, "root": root, "paths": paths, "log": handler.log,
               "throttle": handler.throttle_once, "redirects": handler.redirects,
               "delays": handler.delays, "tmp": tmp_path}


def crawl(site: dict[str, Any], outlet: str, *args: str, crawl_opts: str = "") -> dict[str, Any]:
    archive = site["tmp"] / "archive"
    config = site["tmp"] / "outlets.toml"
    config.write_text(f"""
[archive]
uri = "{archive}"
[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"
{crawl_opts}
[[outlets]]
name = "fixture"
{outlet}
""")
    result = run_cli("crawl", "-c", str(config), "--log-level", "WARNING", *args)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout
    (crawl_dir,) = sorted((archive / "crawls").iterdir())[-1:]
    texts = read_text_shards(sorted((crawl_dir / "text").glob("*.jsonl.gz")))
    return {"stdout": result.stdout, "dir": crawl_dir,
            "articles": {t["url"].removeprefix(site["base"]) for t in texts}, "texts": texts}


def fetched_paths(site: dict[str, Any]) -> list[str]:
    return [path for _, path in site["log"]]


def test_feeds_only(site: dict[str, Any]) -> None:
    base = site["base"]
    result = crawl(site, f'feeds = ["{base}/feeds/rss.xml", "{base}/feeds/atom.xml"]')
    assert result["articles"] == set(site["paths"]["listed"])
    assert not {p for p in fetched_paths(site) if p.startswith("/section")}
    assert "candidates (feed 12)" in result["stdout"]


def test_sitemap_index_with_gzip_news_sitemap(site: dict[str, Any]) -> None:
    result = crawl(site, f'sitemaps = ["{site["base"]}/sitemaps/index.xml"]')
    assert result["articles"] == set(site["paths"]["listed"])
    dates = {t["url"].rsplit("-", 1)[-1]: t.get("date") for t in result["texts"]}
    assert all(dates.values())


def test_entries_are_fetched_in_the_order_listed(site: dict[str, Any]) -> None:
    """A sitemap lists its newest articles first (here, its oldest): one request at a time, the
    crawl fetches them in that order, so a bounded or interrupted crawl has the first listed."""
    crawl(site, f'sitemaps = ["{site["base"]}/sitemaps/index.xml"]', crawl_opts="concurrency = 1")
    fetched = [p for p in fetched_paths(site) if p.startswith("/news/")]
    assert fetched == site["paths"]["listed"]


def test_sitemap_listed_in_robots_txt(site: dict[str, Any]) -> None:
    robots = site["root"] / "robots.txt"
    robots.write_text(robots.read_text() + f"Sitemap: {site['base']}/sitemaps/index.xml\n")
    result = crawl(site, f'start_urls = ["{site["base"]}/about.html"]')
    assert result["articles"] == set(site["paths"]["listed"])


def test_paginated_sections_only(site: dict[str, Any]) -> None:
    result = crawl(site, f'start_urls = ["{site["base"]}/section/"]\nallow = ["/news/"]',
                   crawl_opts="depth = 1")
    # three section pages (pagination costs no depth) list all twelve; nothing else is an article
    assert result["articles"] == set(site["paths"]["listed"])
    assert {p for p in fetched_paths(site) if p.startswith("/section/page/")} == {
        "/section/page/2/", "/section/page/3/"}


def test_broken_feed_plus_working_sitemap(site: dict[str, Any]) -> None:
    base = site["base"]
    result = crawl(site, f'feeds = ["{base}/feeds/broken.xml"]\n'
                         f'sitemaps = ["{base}/sitemaps/index.xml"]')
    assert result["articles"] == set(site["paths"]["listed"])
    assert "feed/sitemap errors 1" in result["stdout"]


def test_feeds_announced_by_start_pages_and_markup_detection(site: dict[str, Any]) -> None:
    result = crawl(site, f'start_urls = ["{site["base"]}/"]', crawl_opts="depth = 0")
    assert result["articles"] == set(site["paths"]["rss"])  # the home page's alternate feed


def test_time_window_skips_old_entries_before_fetching(site: dict[str, Any]) -> None:
    base = site["base"]
    result = crawl(site, f'sitemaps = ["{base}/sitemaps/index.xml"]', "--since", "2025-08-08")
    expected = {p for p in site["paths"]["listed"] if p.split("/")[4] >= "08"}
    assert result["articles"] == expected and len(expected) == 5
    old = set(site["paths"]["listed"]) - expected
    assert not old & set(fetched_paths(site))
    assert "window 7" in result["stdout"]


def test_robots_disallow_and_crawl_delay(site: dict[str, Any]) -> None:
    (site["root"] / "robots.txt").write_text(
        "User-agent: *\nDisallow: /news/2025/08/01/\nCrawl-delay: 1\n")
    result = crawl(site, f'feeds = ["{site["base"]}/feeds/rss.xml"]')
    assert "/news/2025/08/01/story-0.html" not in fetched_paths(site)
    assert result["articles"] == set(site["paths"]["rss"]) - {"/news/2025/08/01/story-0.html"}
    times = [t for t, p in site["log"] if p != "/robots.txt"]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) >= 5 and min(gaps) >= 0.9, gaps


def test_429_is_retried_after_retry_after(site: dict[str, Any]) -> None:
    target = site["paths"]["rss"][2]
    site["throttle"][target] = 2
    result = crawl(site, f'feeds = ["{site["base"]}/feeds/rss.xml"]')
    hits = [t for t, p in site["log"] if p == target]
    assert len(hits) == 2 and hits[1] - hits[0] >= 1.9
    assert target in result["articles"]
    assert "429 1" in result["stdout"]


def test_redirect_off_outlet_is_recorded_not_followed(site: dict[str, Any]) -> None:
    other_handler = logging_handler()
    with OutletServer(site["root"], handler=other_handler) as other:
        site["redirects"]["/go"] = f"{other.url}news/2025/08/01/story-0.html"
        (site["root"] / "section" / "index.html").write_text(
            f'<html><body><a href="{other.url}about.html">away</a>'
            '<a href="http://10.1.2.3/internal">internal</a>'
            '<a href="/go">redirect</a></body></html>')
        result = crawl(site, f'start_urls = ["{site["base"]}/section/"]')
    assert other_handler.log == []  # neither the link nor the redirect left the outlet
    # links off the outlet are skipped; the redirect away from it is refused
    assert "skipped (offsite 2)" in result["stdout"], result["stdout"]
    assert "refused (offsite 1)" in result["stdout"], result["stdout"]
    warc = next((result["dir"] / "warc").glob("*.warc.gz"))
    with open(warc, "rb") as f:
        responses = {r.rec_headers.get_header("WARC-Target-URI"): r.http_headers.statusline
                     for r in ArchiveIterator(f) if r.rec_type == "response"}
    assert responses[f"{site['base']}/go"].startswith("301")  # the redirect itself is kept
    assert not any("10.1.2.3" in u for u in responses)


def test_meta_refresh_is_followed(site: dict[str, Any]) -> None:
    """A page that moved by <meta http-equiv="refresh">, in UTF-8 or in UTF-16 (whose bytes
    never spell "refresh" in ASCII), leads to its article; pages without one are not held up."""
    root, (first, second) = site["root"], site["paths"]["unlisted"][:2]
    refresh = '<html><head><meta http-equiv="Refresh" content="0; url={}"></head></html>'
    (root / "moved.html").write_text(refresh.format(first), "utf-8")
    (root / "moved16.html").write_bytes(refresh.format(second).encode("utf-16"))
    (root / "section" / "index.html").write_text(
        '<html><body><a href="/moved.html">moved</a> <a href="/moved16.html">moved too</a>'
        f'<a href="{site["paths"]["listed"][0]}">story</a></body></html>')
    result = crawl(site, f'start_urls = ["{site["base"]}/section/"]\nallow = ["/news/"]')
    assert result["articles"] == {first, second, site["paths"]["listed"][0]}
    assert {"/moved.html", "/moved16.html", first, second} <= set(fetched_paths(site))


def test_page_size_limit_cuts_off_and_marks_truncated(site: dict[str, Any]) -> None:
    root, base = site["root"], site["base"]
    (root / "big.htm").write_text(article_html("Big", date(2025, 8, 20), 99).replace(
        "</article>", "<p>" + "x" * 300_000 + "</p></article>"))  # served as is: 300 kB
    bomb = site["paths"]["rss"][1]  # served gzip-encoded: 1 kB that decodes to 300 kB
    path = root / bomb.lstrip("/")
    path.write_text(path.read_text().replace("</article>", "<p>" + "x" * 300_000 + "</p>"
                                                            "</article>"))
    rss = root / "feeds" / "rss.xml"
    rss.write_text(rss.read_text().replace("<item>", f"<item><link>{base}/big.htm</link>"
                                           "</item><item>", 1))
    result = crawl(site, f'feeds = ["{base}/feeds/rss.xml"]', crawl_opts='max_page_size = "100kB"')
    assert "too_large 2" in result["stdout"], result["stdout"]
    assert not {f"{base}/big.htm", base + bomb} & {t["url"] for t in result["texts"]}
    warc = next((result["dir"] / "warc").glob("*.warc.gz"))
    with open(warc, "rb") as f:
        records = {r.rec_headers.get_header("WARC-Target-URI"): (
            r.rec_headers.get_header("WARC-Truncated"), len(r.content_stream().read()))
            for r in ArchiveIterator(f) if r.rec_type == "response"}
    truncated, size = records[f"{base}/big.htm"]
    assert truncated == "length" and size < 100_000  # cut off (here at its Content-Length)
    assert records[base + bomb][0] is None  # the compressed body is complete in the WARC


def test_query_string_traps_are_bounded(site: dict[str, Any]) -> None:
    links = "".join(f'<a href="/calendar.html?day={n}">{n}</a>' for n in range(40))
    (site["root"] / "calendar.html").write_text(f"<html><body>{links}</body></html>")
    (site["root"] / "section" / "index.html").write_text(
        '<html><body><a href="/calendar.html">calendar</a></body></html>')
    result = crawl(site, f'start_urls = ["{site["base"]}/section/"]',
                   crawl_opts="max_query_variants = 10\ndepth = 3")
    calendar = [p for p in fetched_paths(site) if p.startswith("/calendar.html?")]
    assert len(calendar) == 10
    assert "query_trap 30" in result["stdout"]


def test_user_agent_without_contact_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "o.toml"
    config.write_text('[crawl]\nuser_agent = "mybot"\n[[outlets]]\nname = "x"\n'
                      'start_urls = ["http://127.0.0.1:9/"]\n')
    result = run_cli("crawl", "-c", str(config))
    assert result.returncode == 1
    assert "crawl.user_agent: 'mybot' has no contact URL" in result.stderr


def parse_document(body: bytes) -> tuple[str, list[Any]]:
    listing = Listing(body, max_entries=50_000)
    return listing.kind, listing.next_batch(50_000)


def test_parse_document_kinds() -> None:
    rdf = (b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax'
           b'-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
           b'<item rdf:about="https://n.example/a"><link>https://n.example/a</link>'
           b"<dc:date>2025-08-14T09:00:00+02:00</dc:date></item></rdf:RDF>")
    kind, entries = parse_document(rdf)
    assert kind == "feed" and entries[0].url == "https://n.example/a"
    assert entries[0].date == "2025-08-14"
    wrong_ns = b'<rss><channel><item><link>https://n.example/b</link></item></channel></rss>'
    assert parse_document(gzip.compress(wrong_ns))[1][0].url == "https://n.example/b"
    with pytest.raises(NotADiscoveryDocument):
        parse_document(b"<html><body>Not found</body></html>")
    with pytest.raises(NotADiscoveryDocument):
        parse_document(b"\x00\x01 not xml at all")
    page = b'<link type="application/atom+xml" rel="alternate" href="/a.xml">'
    assert read_markup(page, "https://n.example/").feeds == ["https://n.example/a.xml"]


UNDATED = ('<html lang="pl"><head><title>{title}</title></head><body><article><h1>{title}</h1>'
           + "<p>" + " ".join(["Rada miasta obradowała do późnej nocy nad budżetem."] * 6)
           + "</p></article></body></html>")


@pytest.mark.parametrize("first", ["link", "feed"])
def test_listing_date_whatever_found_the_article_first(site: dict[str, Any], first: str
                                                       ) -> None:
    """An article a start page links to and a feed lists gets the feed's date (as written, in
    its own time zone) whichever of the two queued it first; an article no listing names gets
    no date, never the crawl's."""
    root, base = site["root"] / "undated", site["base"]
    root.mkdir()
    (root / "index.html").write_text('<html><body><a href="/undated/story.html">a</a> '
                                     '<a href="/undated/other.html">b</a></body></html>')
    (root / "story.html").write_text(UNDATED.format(title="Budżet bez daty"), "utf-8")
    (root / "other.html").write_text(UNDATED.format(title="Inny tekst bez daty"), "utf-8")
    (root / "feed.xml").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>F</title><item><title>t'
        f'</title><link>{base}/undated/story.html</link><pubDate>Wed, 20 Aug 2025 00:30:00 '
        f'+0200</pubDate></item></channel></rss>')
    if first == "link":  # the start page's link queues the story while the feed is slow
        site["delays"].update({"/undated/feed.xml": 1.0, "/undated/story.html": 2.5})
    else:                # the feed queues the story while the start page is slow
        site["delays"].update({"/undated/": 1.5})
    result = crawl(site, f'start_urls = ["{base}/undated/"]\nfeeds = ["{base}/undated/feed.xml"]'
                   '\nallow = ["/undated/[a-z]+\\\\.html"]')
    arrived = {path: at for at, path in site["log"]}
    if first == "link":
        assert arrived["/undated/story.html"] < arrived["/undated/feed.xml"] + 1.0
    else:
        assert arrived["/undated/story.html"] < arrived["/undated/"] + 1.5
    records = {t["url"].removeprefix(base): t for t in result["texts"]}
    story, other = records["/undated/story.html"], records["/undated/other.html"]
    assert (story["listed_date"], story["date"], story["date_modified"]) == (
        "2025-08-20", "2025-08-20", None)
    assert (other["listed_date"], other["date"], other["date_modified"]) == (None, None, None)
    assert other["fetched_at"]  # fetched, but the fetch is no publication
