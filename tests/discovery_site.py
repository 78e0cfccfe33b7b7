"""Fixture outlets for discovery tests: articles, paginated sections, feeds and sitemaps, written
for the project; and a server that logs when each request arrived."""

from __future__ import annotations

import gzip
import time
from datetime import date, timedelta
from html import escape
from pathlib import Path

from crawler.jobs.demo import OutletRequestHandler

WORDS = ("rada uchwaliła budżet miasta na przyszły rok po długiej debacie radnych oraz "
         "mieszkańców którzy przyszli na sesję aby bronić swoich postulatów").split()


def article_html(title: str, day: date, n: int) -> str:
    body = "".join(f"<p>{' '.join(WORDS[(n + i) % 7:] + WORDS[: (n + i) % 7])} ({n}.{i})</p>"
                   for i in range(4))
    return (f'<!DOCTYPE html><html lang="pl"><head><meta charset="utf-8"><title>{escape(title)}'
            f'</title><meta property="og:type" content="article"></head><body>'
            f'<nav><a href="/">Start</a> <a href="/section/">Sekcja</a></nav>'
            f'<article><h1>{escape(title)}</h1><time datetime="{day}">{day}</time>{body}'
            f'</article><footer>© Fixture Outlet</footer></body></html>')


def build_site(root: Path, base_url: str, articles: int = 12, unlisted: int = 3,
               per_page: int = 5, start: date = date(2025, 8, 1)) -> dict[str, list[str]]:
    """Write the site; return the article paths by where they are listed."""
    root.mkdir(parents=True, exist_ok=True)
    paths, dates = [], []
    for n in range(articles + unlisted):
        day = start + timedelta(days=n)
        path = f"/news/{day:%Y/%m/%d}/story-{n}.html"
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(article_html(f"Artykuł numer {n}", day, n), "utf-8")
        paths.append(path)
        dates.append(day)
    listed, hidden = paths[:articles], paths[articles:]
    # paginated section: /section/ then /section/page/2/ ...
    pages = [listed[i:i + per_page] for i in range(0, len(listed), per_page)]
    for i, chunk in enumerate(pages, 1):
        page_dir = root / "section" if i == 1 else root / "section" / "page" / str(i)
        page_dir.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in chunk)
        nav = f'<a rel="next" href="/section/page/{i + 1}/">dalej</a>' if i < len(pages) else ""
        (page_dir / "index.html").write_text(
            f'<html lang="pl"><body><nav><a href="/">Start</a></nav><ul>{links}</ul>{nav}'
            f'</body></html>', "utf-8")
    (root / "index.html").write_text(
        '<html lang="pl"><head><link rel="alternate" type="application/rss+xml" '
        'href="/feeds/rss.xml"></head><body><a href="/section/">Sekcja</a> '
        '<a href="/about.html">O nas</a></body></html>', "utf-8")
    (root / "about.html").write_text('<html><body><p>Redakcja.</p></body></html>', "utf-8")
    feeds = root / "feeds"
    feeds.mkdir(exist_ok=True)
    half = len(listed) // 2
    items = "".join(f"<item><title>t{n}</title><link>{base_url}{p}</link><pubDate>"
                    f"{dates[n]:%a, %d %b %Y} 10:00:00 +0000</pubDate></item>"
                    for n, p in enumerate(listed[:half]))
    (feeds / "rss.xml").write_text(f'<?xml version="1.0"?><rss version="2.0"><channel>'
                                   f'<title>F</title>{items}</channel></rss>', "utf-8")
    entries = "".join(f'<entry><title>t{n}</title><link rel="alternate" href="{base_url}{p}"/>'
                      f"<published>{dates[n]}T10:00:00Z</published></entry>"
                      for n, p in enumerate(listed[half:], half))
    (feeds / "atom.xml").write_text('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/'
                                    f'Atom"><title>F</title>{entries}</feed>', "utf-8")
    (feeds / "broken.xml").write_text("<html><body><h1>502 Bad Gateway</h1></body></html>")
    news = "".join(f"<url><loc>{base_url}{p}</loc><news:news><news:publication><news:name>F"
                   f"</news:name><news:language>pl</news:language></news:publication>"
                   f"<news:publication_date>{dates[n]}T10:00:00+02:00</news:publication_date>"
                   f"<news:title>t{n}</news:title></news:news></url>"
                   for n, p in enumerate(listed))
    sitemaps = root / "sitemaps"
    sitemaps.mkdir(exist_ok=True)
    (sitemaps / "news.xml.gz").write_bytes(gzip.compress(
        ('<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
         'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + news + "</urlset>"
         ).encode(), mtime=0))
    (sitemaps / "index.xml").write_text(
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{base_url}/sitemaps/news.xml.gz</loc><lastmod>2025-08-31</lastmod>"
        "</sitemap></sitemapindex>", "utf-8")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n", "utf-8")
    return {"listed": listed, "unlisted": hidden, "rss": listed[:half], "atom": listed[half:]}


class LoggingHandler(OutletRequestHandler):
    """Serves the site; logs (time, path) of every request; answers 429 once where told, and
    late where told (seconds by path)."""

    log: list[tuple[float, str]]
    throttle_once: dict[str, int]
    redirects: dict[str, str]
    delays: dict[str, float]

    def do_GET(self) -> None:  # noqa: N802
        self.log.append((time.monotonic(), self.path))
        time.sleep(self.delays.get(self.path, 0))
        if self.path in self.redirects:
            self.send_response(301)
            self.send_header("Location", self.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        wait = self.throttle_once.pop(self.path, None)
        if wait is not None:
            self.send_response(429)
            self.send_header("Retry-After", str(wait))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


def logging_handler() -> type[LoggingHandler]:
    """A handler class with its own request log (one per server)."""
    return type("Handler", (LoggingHandler,), {"log": [], "throttle_once": {}, "redirects": {},
                                               "delays": {}})
