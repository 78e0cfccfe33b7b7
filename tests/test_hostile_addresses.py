"""Hostile outlets: names that resolve (or are rebound) to internal addresses, a subdomain on
another port, a response head without end. The outlet lives at ``news.example``, which the
crawl's resolver (tests/dns_settings.py) maps to 127.0.0.2; 127.0.0.3 stands in for the
addresses a page must not reach (a metadata service, the machine's own services)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from tests.conftest import NEWSARCHIVE, ROOT, read_text_shards
from tests.discovery_site import article_html
from tests.dns_settings import SCRIPT_ENV

OUTLET, OTHER = "127.0.0.2", "127.0.0.3"
HEAD_BOMB = 32 * 1024 * 1024  # bytes of header lines the hostile page streams


class Site(ThreadingHTTPServer):
    """Pages by path on one address; logs every request line it reads."""

    daemon_threads = True

    def __init__(self, address: str, port: int, pages: dict[str, Any],
                 keep_alive: bool = True) -> None:
        super().__init__((address, port), _Handler)
        self.pages = pages
        self.keep_alive = keep_alive
        self.log: list[str] = []

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Site

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self.server.log.append(self.path)
        page = self.server.pages.get(self.path)
        if callable(page):
            page(self)
            return
        status, headers, body = (200, {"Content-Type": "text/html; charset=utf-8"}, page) \
            if isinstance(page, str) else page if page else (404, {}, "not here")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if not self.server.keep_alive:
            self.send_header("Connection", "close")
            self.close_connection = True
        data = body.encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def stream_head_bomb(handler: BaseHTTPRequestHandler) -> None:
    """A 200 whose header lines never stop coming (until HEAD_BOMB bytes)."""
    handler.close_connection = True
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
    line = b"X-Filler: " + b"a" * 90 + b"\r\n"
    chunk = line * 1000
    try:
        for _ in range(HEAD_BOMB // len(chunk)):
            handler.wfile.write(chunk)
        handler.wfile.write(b"Content-Length: 2\r\n\r\nok")
    except OSError:
        pass  # the crawler hung up: what it should do


def links(*hrefs: str) -> str:
    items = "".join(f'<li><a href="{h}">{h}</a></li>' for h in hrefs)
    return f'<html lang="pl"><body><ul>{items}</ul></body></html>'


def article(n: int) -> str:
    return article_html(f"Artykuł {n}", date(2025, 8, 1), n)


@pytest.fixture
def servers() -> Iterator[Callable[..., Site]]:
    """Sites on 127.0.0.x; the first picks a free port, later ones take it on their address
    unless given another."""
    started: list[Site] = []

    def serve(address: str, pages: dict[str, Any], *, port: int | None = None,
              keep_alive: bool = True) -> Site:
        if port is None:
            port = started[0].port if started else 0
        site = Site(address, port, pages, keep_alive)
        threading.Thread(target=site.serve_forever, daemon=True).start()
        started.append(site)
        return site

    yield serve
    for site in started:
        site.shutdown()
        site.server_close()


def crawl(tmp: Path, port: int, dns: dict[str, list[str]], outlet: str = "") -> dict[str, Any]:
    """Crawl the outlet at news.example:`port` with the scripted resolver; the summary, the
    WARC's response URLs, the article URLs and the crawl's peak RSS (KiB)."""
    archive = tmp / "archive"
    config = tmp / "outlets.toml"
    config.write_text(f"""
[archive]
uri = "{archive}"
[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"
[[outlets]]
name = "news"
start_urls = ["http://news.example:{port}/"]
allow = ['/news/']
{outlet}
""")
    env = {**os.environ, SCRIPT_ENV: json.dumps(dns),
           "SCRAPY_SETTINGS_MODULE": "tests.dns_settings",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # the crawl runs as a child of a fresh interpreter, whose RUSAGE_CHILDREN is the crawl's
    measure = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
               " sys.exit(r.returncode)")
    result = subprocess.run([sys.executable, "-c", measure, NEWSARCHIVE, "crawl", "-c",
                             str(config), "--log-level", "WARNING"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout
    (crawl_dir,) = (archive / "crawls").iterdir()
    responses = []
    for warc in sorted((crawl_dir / "warc").glob("*.warc.gz")):
        with warc.open("rb") as f:
            responses += [r.rec_headers.get_header("WARC-Target-URI")
                          for r in ArchiveIterator(f) if r.rec_type == "response"]
    texts = read_text_shards(sorted((crawl_dir / "text").glob("*.jsonl.gz")))
    return {"stdout": result.stdout, "responses": responses,
            "articles": sorted(t["url"] for t in texts),
            "peak_rss_kib": int(result.stderr.strip().rsplit("\n", 1)[-1])}


def test_a_subdomain_or_redirect_resolving_to_an_internal_address_is_refused(
        servers: Callable[..., Site], tmp_path: Path) -> None:
    outlet = servers(OUTLET, {})
    port = outlet.port
    evil_url = f"http://evil.news.example:{port}/news"
    outlet.pages.update({
        "/": links("/news/1.html", "/news/2.html", "/go", f"{evil_url}/secret.html"),
        "/news/1.html": article(1), "/news/2.html": article(2),
        "/go": (301, {"Location": f"{evil_url}/landing.html"}, ""),
    })
    evil = servers(OTHER, {"/news/secret.html": article(3), "/news/landing.html": article(4),
                           "/robots.txt": "User-agent: *\n"})
    result = crawl(tmp_path, port, {"news.example": [OUTLET], "evil.news.example": [OTHER]},
                   "allow_subdomains = true")
    base = f"http://news.example:{port}"
    assert result["articles"] == [f"{base}/news/1.html", f"{base}/news/2.html"]
    assert f"{base}/go" in result["responses"]  # the redirect itself is captured
    assert not [u for u in result["responses"] if "evil" in u], result["responses"]
    assert evil.log == []  # not one request line reached 127.0.0.3
    assert "refused (internal 2)" in result["stdout"], result["stdout"]


def test_b_an_outlet_name_rebound_mid_crawl_is_refused(
        servers: Callable[..., Site], tmp_path: Path) -> None:
    pages = {"/": links("/news/1.html", "/news/2.html", "/news/3.html"),
             **{f"/news/{n}.html": article(n) for n in (1, 2, 3)}}
    outlet = servers(OUTLET, pages, keep_alive=False)  # every request looks the name up again
    other = servers(OTHER, dict(pages), keep_alive=False)
    # lookups: the crawl's own at the start, the start page's, then the rebound answer
    result = crawl(tmp_path, outlet.port, {"news.example": [OUTLET, OUTLET, OTHER]},
                   "obey_robots = false")
    assert outlet.log == ["/"]
    assert other.log == []
    assert result["responses"] == [f"http://news.example:{outlet.port}/"]
    assert result["articles"] == []
    assert "refused (internal 3)" in result["stdout"], result["stdout"]


def test_c_a_subdomain_on_another_port_is_not_the_outlet(
        servers: Callable[..., Site], tmp_path: Path) -> None:
    elsewhere = servers(OUTLET, {"/news/2.html": article(2)})
    outlet = servers(OUTLET, {
        "/": links("/news/1.html", f"http://sub.news.example:{elsewhere.port}/news/2.html"),
        "/news/1.html": article(1)}, port=0)
    result = crawl(tmp_path, outlet.port, {"news.example": [OUTLET],
                                           "sub.news.example": [OUTLET]},
                   "allow_subdomains = true")
    assert result["articles"] == [f"http://news.example:{outlet.port}/news/1.html"]
    assert elsewhere.log == []
    assert "skipped (offsite 1)" in result["stdout"], result["stdout"]


def test_d_a_response_head_without_end_is_refused_and_the_crawl_goes_on(
        servers: Callable[..., Site], tmp_path: Path) -> None:
    outlet = servers(OUTLET, {
        "/": links("/news/1.html", "/news/bomb.html", "/news/2.html"),
        "/news/1.html": article(1), "/news/2.html": article(2),
        "/news/bomb.html": stream_head_bomb})
    result = crawl(tmp_path, outlet.port, {"news.example": [OUTLET]})
    base = f"http://news.example:{outlet.port}"
    assert result["articles"] == [f"{base}/news/1.html", f"{base}/news/2.html"]
    assert f"{base}/news/bomb.html" not in result["responses"]
    assert outlet.log.count("/news/bomb.html") == 1  # failed, not retried
    assert "errors (ResponseHeadTooLarge 1)" in result["stdout"], result["stdout"]
    assert result["peak_rss_kib"] < 200 * 1024, result["peak_rss_kib"]  # ~90 MB; 32 MB of
    # header lines held by Twisted: ~260 MB


def test_e_embeds_on_internal_addresses_are_refused_at_the_url_and_the_connection(
        servers: Callable[..., Site], tmp_path: Path) -> None:
    """A public outlet's page may load images from any host, but not from an internal
    address, whether its URL names one or a public-looking name resolves to one."""
    outlet = servers(OUTLET, {})
    port = outlet.port
    embeds = (f'<img src="/own.png"><img src="http://{OTHER}:{port}/literal.png">'
              f'<img src="http://cdn.example:{port}/named.png">'
              f'<iframe src="http://cdn.example:{port}/frame.html"></iframe>')
    png = (200, {"Content-Type": "image/png"}, "not really a png")
    outlet.pages.update({"/": links("/news/1.html"),
                         "/news/1.html": article(1).replace("</body>", embeds + "</body>"),
                         "/own.png": png})
    other = servers(OTHER, {"/literal.png": png, "/named.png": png,
                            "/frame.html": "<html><body>internal</body></html>",
                            "/robots.txt": "User-agent: *\n"})
    result = crawl(tmp_path, port, {"news.example": [OUTLET], "cdn.example": [OTHER]})
    assert f"http://news.example:{port}/own.png" in result["responses"]  # its own host: fine
    assert other.log == []  # not one request line reached 127.0.0.3
    assert not [u for u in result["responses"] if OTHER in u or "cdn.example" in u]
    stdout = result["stdout"]
    assert "refused/internal 3" in stdout.split("requisites (")[1].split(")")[0], stdout


def test_f_a_dead_cdn_is_given_up_on_not_waited_for_image_by_image(
        servers: Callable[..., Site], tmp_path: Path) -> None:
    """Once a requisite host does not resolve, its other requisites are skipped, not each
    left to wait for the resolver (only those already waiting in its download slot fail)."""
    outlet = servers(OUTLET, {})
    port = outlet.port
    pages = range(1, 11)

    def images(n: int) -> str:
        return "".join(f'<img src="http://dead-cdn.example/{n}/{i}.png">' for i in range(10))

    outlet.pages.update({
        "/": links(*(f"/news/{n}.html" for n in pages)),
        **{f"/news/{n}.html": article(n).replace("</body>", images(n) + "</body>")
           for n in pages}})
    result = crawl(tmp_path, port, {"news.example": [OUTLET]})  # dead-cdn.example: no answer
    assert len(result["articles"]) == len(pages)
    requisites = result["stdout"].split("requisites (")[1].split(")")[0]
    assert "skipped/unreachable " in requisites, result["stdout"]
    skipped = int(requisites.split("skipped/unreachable ")[1].split(",")[0])
    assert skipped >= 50, requisites  # of 100: all but those already in the host's slot
