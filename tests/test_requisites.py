"""Page requisites: what a page loads to render (stylesheets and what they import, fonts,
images of every kind, scripts, frames and their embeds, media) is captured with it, from the
outlet and from a CDN on another host (127.0.0.2), once per crawl; what only looks like a link
is never fetched; a second crawl stores none of it again; and the replayed page looks like the
live one in Chromium, without a request escaping to the live web."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.discovery.css import InlineStyles, declarations_references, stylesheet_references
from crawler.discovery.markup import (
    ASSET,
    FRAME,
    MEDIA,
    STYLESHEET,
    read_markup,
    srcset_urls,
    tree_requisites,
)
from crawler.extraction.document import parse_html
from crawler.jobs.demo import OutletServer
from tests.conftest import run_cli
from tests.requisites_site import (
    ARTICLES,
    REQUISITE_MAX_SIZE,
    RecordingHandler,
    article_html,
    build,
    recording,
)

CDN_HOST = "127.0.0.2"


@dataclass
class Site:
    outlet: OutletServer
    cdn: OutletServer
    www: Path
    cdn_root: Path
    outlet_log: list[tuple[str, dict[str, str]]]
    cdn_log: list[tuple[str, dict[str, str]]]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("requisites-site")
    (root / "www").mkdir()
    (root / "cdn").mkdir()
    with OutletServer(root / "cdn", handler=RecordingHandler, host=CDN_HOST) as cdn, \
            OutletServer(root / "www", handler=RecordingHandler) as outlet:
        www, cdn_root = build(root, cdn.url)
        yield Site(outlet, cdn, www, cdn_root, recording(outlet), recording(cdn))


def write_config(work: Path, site: Site, extra: str = "") -> Path:
    config = work / "outlets.toml"
    config.write_text(f"""
[archive]
uri = "{work / 'archive'}"
[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"
[[outlets]]
name = "fixture"
start_urls = ["{site.outlet.url}"]
requisites_deny = ["/ads/"]
requisite_max_size = {REQUISITE_MAX_SIZE}
{extra}
""")
    return config


def records(crawl_dir: Path) -> dict[str, list[Any]]:
    """Response and revisit records of a crawl by URL: (type, headers, payload length)."""
    found: dict[str, list[Any]] = defaultdict(list)
    for warc in sorted((crawl_dir / "warc").glob("*.warc.gz")):
        with warc.open("rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type in ("response", "revisit"):
                    url = record.rec_headers.get_header("WARC-Target-URI")
                    found[url].append((record.rec_type, record.rec_headers,
                                       len(record.content_stream().read())))
    return found


def crawl(work: Path, site: Site, *args: str, extra: str = "") -> dict[str, Any]:
    site.outlet_log.clear()
    site.cdn_log.clear()
    result = run_cli("crawl", "-c", str(write_config(work, site, extra)), *args)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout
    crawls = sorted((work / "archive" / "crawls").iterdir())
    return {"stdout": result.stdout, "dir": crawls[-1], "records": records(crawls[-1]),
            "outlet_log": list(site.outlet_log), "cdn_log": list(site.cdn_log)}


@pytest.fixture(scope="module")
def first(site: Site, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("requisites-crawl")
    return {**crawl(work, site), "work": work}


def expected_requisites(site: Site) -> set[str]:
    """Every requisite URL the pages load, directly or through a stylesheet or the frame,
    except those denied (ads), disallowed by robots.txt (private) or beyond the size limit."""
    urls = {site.outlet.url.rstrip("/") + "/" + str(p.relative_to(site.www))
            for p in (site.www / "req").iterdir()}
    urls |= {site.cdn.url.rstrip("/") + "/" + str(p.relative_to(site.cdn_root))
             for p in (site.cdn_root / "req").iterdir()}
    logo = site.outlet.url + "req/logo.png"
    urls -= {logo, site.cdn.url + "req/big.webm"}
    return urls | {logo + "?v=1", logo + "?v=2", site.outlet.url + "req/stream.ogg"}


def test_every_requisite_kind_is_captured_from_both_hosts(first: dict[str, Any],
                                                          site: Site) -> None:
    expected = expected_requisites(site)
    captured = {url for url in first["records"] if "/req/" in url}
    assert expected - captured == set(), "requisites not captured"
    assert {u for u in captured if "big.webm" not in u} == expected
    for url in expected:
        (kind, headers, length), = first["records"][url]
        if "logo.png" not in url and "stream.ogg" not in url:
            assert kind == "response" and length > 0, url
    # the articles are still extracted; the requisites are not
    texts = run_cli("dump", "--archive", str(first["work"] / "archive"))
    assert texts.returncode == 0, texts.stderr
    assert sorted(json.loads(line)["url"] for line in texts.stdout.splitlines()) == sorted(
        f"{site.outlet.url}articles/{name}.html" for name in ARTICLES)
    assert "requisites (" in first["stdout"] and "skipped/denied 1" in first["stdout"]


def test_each_shared_requisite_is_fetched_once(first: dict[str, Any], site: Site) -> None:
    fetched = [path for path, _ in first["outlet_log"] + first["cdn_log"]]
    shared = ["/req/site.css", "/req/fixture-serif.ttf", "/req/app.js", "/req/favicon.png",
              "/req/imported.css", "/req/header.png", "/req/widget.html"]
    for path in shared:
        assert fetched.count(path) == 1, (path, fetched)
    for log in (first["outlet_log"], first["cdn_log"]):  # nothing at all is fetched twice
        paths = [path for path, _ in log]
        assert len(paths) == len(set(paths)), sorted(paths)
    # a page's requisite carries the page as its Referer, as a browser sends it
    referers = {path: headers.get("Referer") for path, headers in first["cdn_log"]}
    assert referers["/req/photo-0.png"] == f"{site.outlet.url}articles/first.html"


def test_what_only_looks_like_a_link_is_never_fetched(first: dict[str, Any]) -> None:
    fetched = [path for path, _ in first["outlet_log"] + first["cdn_log"]]
    assert [p for p in fetched if "/trap/" in p] == []
    assert "/hop3/deep.png" not in fetched  # three transclusions away: past requisite_hops
    assert not [u for u in first["records"] if "/trap/" in u or u.startswith(("mailto", "tel"))]


def test_denied_and_robots_disallowed_requisites_are_not_fetched(first: dict[str, Any]) -> None:
    fetched = [path for path, _ in first["cdn_log"]]
    assert "/robots.txt" in fetched
    assert not [p for p in fetched if p.startswith(("/ads/", "/private/"))], fetched
    assert "skipped/robots 1" in first["stdout"], first["stdout"]


def test_a_payload_under_a_second_url_is_a_revisit_of_the_first(first: dict[str, Any],
                                                               site: Site) -> None:
    logos = {v: first["records"][f"{site.outlet.url}req/logo.png?v={v}"][0] for v in (1, 2)}
    (original,) = [v for v in logos if logos[v][0] == "response"]
    (copy,) = [v for v in logos if logos[v][0] == "revisit"]
    kind, headers, length = logos[copy]
    assert headers.get_header("WARC-Profile").endswith("/revisit/identical-payload-digest")
    assert headers.get_header("WARC-Refers-To-Target-URI") == \
        f"{site.outlet.url}req/logo.png?v={original}"
    assert headers.get_header("WARC-Refers-To-Date") == \
        logos[original][1].get_header("WARC-Date")
    assert headers.get_header("WARC-Payload-Digest") == \
        logos[original][1].get_header("WARC-Payload-Digest")


def test_requisites_past_their_size_limit_are_not_fetched_or_are_cut(
        first: dict[str, Any], site: Site) -> None:
    (big,) = first["records"][site.cdn.url + "req/big.webm"]
    assert big[1].get_header("WARC-Truncated") == "length" and big[2] == 0
    (stream,) = first["records"][site.outlet.url + "req/stream.ogg"]
    assert stream[1].get_header("WARC-Truncated") == "length"
    assert REQUISITE_MAX_SIZE < stream[2] < REQUISITE_MAX_SIZE + 64 * 1024
    assert "refused/too_large 2" in first["stdout"], first["stdout"]


@pytest.fixture(scope="module")
def again(first: dict[str, Any], site: Site) -> dict[str, Any]:
    """A second crawl into the same archive that re-checks every article, one of them edited:
    the others answer 304."""
    article = site.www / "articles" / "first.html"
    original = article.read_text("utf-8")
    article.write_text(original.replace("a third one that ends here", "a third one, edited"),
                       "utf-8")
    try:
        return crawl(first["work"], site, "--recheck")
    finally:
        article.write_text(original, "utf-8")


def test_a_second_crawl_stores_no_requisite_again(first: dict[str, Any], again: dict[str, Any],
                                                 site: Site, tmp_path: Path) -> None:
    requisites = {u: r for u, r in again["records"].items() if "/req/" in u}
    assert requisites, "the edited article's requisites were not checked again"
    assert site.outlet.url + "req/site.css" in requisites
    # an unchanged article answers 304: what it loads is read from its archived capture and
    # checked again too (the logo's second URL is on that article alone)
    (second,) = again["records"][site.outlet.url + "articles/second.html"]
    assert second[1].get_header("WARC-Profile").endswith("/server-not-modified")
    assert site.outlet.url + "req/logo.png?v=2" in requisites
    stored_again = {u for u, r in requisites.items() if r[0][0] == "response" and r[0][2]
                    and "stream.ogg" not in u}  # a truncated stream is no payload to compare
    assert stored_again == set()
    # leaves are asked for conditionally; stylesheets and frames whole (their embeds are read)
    asked = {path: headers for path, headers in again["outlet_log"] + again["cdn_log"]}
    assert "If-Modified-Since" in asked["/req/fixture-serif.ttf"]
    assert "If-Modified-Since" not in asked["/req/site.css"]
    assert "unchanged" in again["stdout"]
    # the second crawl's WACZ alone holds every requisite's payload: its own captures and the
    # first crawl's that its revisits stand on
    wacz = tmp_path / "again.wacz"
    exported = run_cli("export-wacz", "--archive", str(first["work"] / "archive"), "--crawl",
                       again["dir"].name, "-o", str(wacz))
    assert exported.returncode == 0, exported.stderr + exported.stdout
    with zipfile.ZipFile(wacz) as package:
        index = [json.loads(line.split(b" ", 2)[2])
                 for line in package.read("indexes/index.cdxj").splitlines()]
    assert expected_requisites(site) <= {f["url"] for f in index}
    payloads = {f["digest"] for f in index if f["mime"] != "warc/revisit"}
    assert {f["digest"] for f in index if f["mime"] == "warc/revisit"} <= payloads


def test_a_304_whose_archived_capture_is_gone_is_counted_and_the_crawl_goes_on(
        first: dict[str, Any], site: Site, tmp_path: Path) -> None:
    shutil.copytree(first["work"] / "archive", tmp_path / "archive")
    for warc in (tmp_path / "archive" / "crawls").glob("*/warc/*.warc.gz"):
        warc.unlink()  # as if deleted from the store since
    again = crawl(tmp_path, site, "--recheck")
    unchanged = int(re.search(r"\(\+ (\d+) unchanged\)", again["stdout"]).group(1))  # 304s
    assert unchanged and re.search(rf"skipped/unread_304 {unchanged}\b", again["stdout"]), \
        again["stdout"]
    assert site.outlet.url + "req/site.css" in again["records"]  # the section page's


def test_verify_and_the_wacz_see_the_requisites(first: dict[str, Any], site: Site,
                                               tmp_path: Path) -> None:
    verified = run_cli("verify", "--archive", str(first["work"] / "archive"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    wacz = tmp_path / "crawl.wacz"
    exported = run_cli("export-wacz", "--archive", str(first["work"] / "archive"), "--crawl",
                       first["dir"].name, "-o", str(wacz))
    assert exported.returncode == 0, exported.stderr + exported.stdout
    with zipfile.ZipFile(wacz) as package:
        index = package.read("indexes/index.cdxj").decode()
        pages = package.read("pages/pages.jsonl").decode()
    indexed = {json.loads(line.split(" ", 2)[2])["url"] for line in index.splitlines()}
    assert expected_requisites(site) <= indexed
    assert "/req/" not in pages  # the pages are the articles, not what they load


def test_requisites_can_be_switched_off(site: Site, tmp_path: Path) -> None:
    bare = crawl(tmp_path, site, extra="requisites = false")
    assert not [p for p, _ in bare["outlet_log"] if "/req/" in p] and bare["cdn_log"] == []


def test_media_bodies_can_be_left_out_posters_are_kept(site: Site, tmp_path: Path) -> None:
    result = crawl(tmp_path, site, extra="media = false")
    fetched = {p for p, _ in result["outlet_log"] + result["cdn_log"]}
    assert "/req/poster.png" in fetched
    assert not fetched & {"/req/clip.webm", "/req/stream.ogg", "/req/big.webm"}
    assert "skipped/media 3" in result["stdout"], result["stdout"]


class SlowRobotsHandler(RecordingHandler):
    """A host whose robots.txt (``Disallow: /private/``) takes a second to come."""

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        if self.path == "/robots.txt":
            time.sleep(1)
        super().do_GET()


def test_every_request_waiting_for_a_hosts_robots_txt_obeys_it(tmp_path: Path) -> None:
    """Five images under a path the CDN's robots.txt disallows, asked for at once while that
    robots.txt is slow to come: none is fetched (Scrapy 2.19's own middleware lets all but
    the first through)."""
    (tmp_path / "cdn" / "private").mkdir(parents=True)
    (tmp_path / "cdn" / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
    (tmp_path / "www").mkdir()
    with OutletServer(tmp_path / "cdn", handler=SlowRobotsHandler, host=CDN_HOST) as cdn, \
            OutletServer(tmp_path / "www") as outlet:
        images = "".join(f'<img src="{cdn.url}private/{n}.png">' for n in range(5))
        (tmp_path / "www" / "index.html").write_text(
            f"<html><head><title>Home</title></head><body>{images}</body></html>")
        asked = recording(cdn)
        config = tmp_path / "outlets.toml"
        config.write_text(f"""
[archive]
uri = "{tmp_path / 'archive'}"
[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"
[[outlets]]
name = "robots"
start_urls = ["{outlet.url}"]
""")
        result = run_cli("crawl", "-c", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert [path for path, _ in asked] == ["/robots.txt"]
    assert "skipped/robots 5" in result.stdout, result.stdout


# ---------------------------------------------------------------- the readers' parts


@pytest.mark.parametrize(("srcset", "urls"), [
    ("a.png 1x, b.png 2x", ["a.png", "b.png"]),
    ("a.png,, b.png 2x,", ["a.png", "b.png"]),
    ("/img/x,y.png 100w, /z.png 200w", ["/img/x,y.png", "/z.png"]),
    (" a.png (x, y) 1x , b.png", ["a.png", "b.png"]),
])
def test_srcset_candidates_follow_the_html_rules(srcset: str, urls: list[str]) -> None:
    assert srcset_urls(srcset) == urls


def test_the_tokenizer_and_the_tree_find_the_same_requisites() -> None:
    """A section page's requisites are read by the crawl's tokenizer pass, an article's from
    its extraction's tree: the same, every kind found, no trap taken."""
    page = article_html("third", "http://cdn.test", 2).encode()
    url = "http://outlet.test/articles/third.html"
    by_tokens = read_markup(page, url, styles=InlineStyles()).requisites
    by_tree = tree_requisites(parse_html(page), url, InlineStyles())
    assert set(by_tokens) == set(by_tree)
    assert len(by_tree) == 28 and not [r for r in by_tree if "/trap/" in r.url]
    kinds = {r.url.rsplit("/", 1)[1]: r.kind for r in by_tree}
    assert (kinds["site.css"], kinds["widget.html"], kinds["clip.webm"], kinds["poster.png"]) \
        == (STYLESHEET, FRAME, MEDIA, ASSET)


def test_css_references_are_read_from_tokens_not_text() -> None:
    css = ('@import "a.css"; @import url(b.css) print;\n'
           '@font-face { src: url("f.woff2") format("woff2"), url(f.woff); }\n'
           '/* url(comment.png) */ .x::before { content: "url(string.png)"; }\n'
           '.y { background: image-set("s1.png" 1x, url(s2.png) 2x), url(\\62 g.png); }\n'
           '@media print { .z { background: url(nested.png) } }')
    refs = stylesheet_references(css)
    assert [(r.url, r.imported) for r in refs] == [
        ("a.css", True), ("b.css", True), ("f.woff2", False), ("f.woff", False),
        ("s1.png", False), ("s2.png", False), ("bg.png", False), ("nested.png", False)]
    assert declarations_references("background: url( 'x.png' ) no-repeat") == ["x.png"]


# ---------------------------------------------------------------- replay


class RefusingProxy(ThreadingHTTPServer):
    """The browser's only way out: requests to the replay server pass, any other is refused
    and recorded (a replayed page must load nothing from the live web)."""

    daemon_threads = True

    def __init__(self, allowed: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.allowed = allowed  # host:port
        self.refused: list[str] = []


class _ProxyHandler(BaseHTTPRequestHandler):
    server: RefusingProxy

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        if f"//{self.server.allowed}/" not in self.path:
            self.server.refused.append(self.path)
            self.send_error(403, "no escape")
            return
        upstream = HTTPConnection(self.server.allowed, timeout=60)
        try:
            path = "/" + self.path.split("//", 1)[1].split("/", 1)[1]
            upstream.request("GET", path, headers={k: v for k, v in self.headers.items()
                                                   if k.lower() != "proxy-connection"})
            answer = upstream.getresponse()
            body = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:  # noqa: N802 (stdlib name)
        self.server.refused.append(self.path)
        self.send_error(403, "no escape")


def screenshot(path: Path, url: str, profile: Path, *flags: str) -> None:
    """The page at `url` as Chromium draws it in a 1000x1400 frame. A frame of a local page,
    for the live page and the replayed one alike: a top-level ``mp_`` page of pywb sends the
    browser on to pywb's framed view, with its banner; in a frame it is the page alone."""
    from tests.test_replay import CHROMIUM_FLAGS
    browser = shutil.which("chromium")
    assert browser, "Debian chromium is not installed (scripts/dev.sh setup installs it)"
    frame = path.with_suffix(".html")
    frame.write_text('<!DOCTYPE html><html><body style="margin:0">'
                     f'<iframe src="{url}" style="border:0;width:1000px;height:1400px">'
                     '</iframe></body></html>', "utf-8")
    shot = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1000,1400",
         "--hide-scrollbars", "--virtual-time-budget=15000", "--force-device-scale-factor=1",
         f"--screenshot={path}", *flags, frame.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert shot.returncode == 0 and path.exists(), shot.stderr[-2000:]


def identical_share(live: Path, replayed: Path) -> float:
    """The share of the live screenshot's non-white pixels that the replayed one has alike."""
    from PIL import Image, ImageChops
    a, b = (Image.open(p).convert("RGB") for p in (live, replayed))
    assert a.size == b.size
    painted = a.convert("L").point(lambda v: 255 if v < 250 else 0)
    differs = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v > 8 else 0)
    total = painted.histogram()[255]
    wrong = ImageChops.multiply(painted, differs).histogram()[255]
    return 1 - wrong / total


def test_replayed_article_looks_like_the_live_one(first: dict[str, Any], site: Site,
                                                  tmp_path: Path) -> None:
    from tests.test_replay import start_replay
    article = f"{site.outlet.url}articles/first.html"
    live = tmp_path / "live.png"
    screenshot(live, article, tmp_path / "profile-live")
    replay = start_replay("--archive", str(first["work"] / "archive"),
                          log=tmp_path / "replay.log")
    proxy = RefusingProxy(replay.url.removeprefix("http://"))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        replayed = tmp_path / "replayed.png"
        timestamp = first["dir"].name.rsplit("-", 1)[1].replace("T", "").rstrip("Z")
        screenshot(replayed, f"{replay.url}/archive/{timestamp}mp_/{article}",
                   tmp_path / "profile-replay",
                   f"--proxy-server=http://127.0.0.1:{proxy.server_address[1]}",
                   "--proxy-bypass-list=<-loopback>")
    finally:
        proxy.shutdown()
        replay.stop()
    live_hosts = (site.outlet.url, site.cdn.url)  # where everything the page loads lives
    assert [u for u in proxy.refused if u.startswith(live_hosts)] == [], \
        "the replayed page reached out to the live web"
    share = identical_share(live, replayed)
    assert share >= 0.98, f"{share:.1%} of the live page's pixels came back"


# what the replayed page must show: every sized image decoded, the web font loaded, the
# stylesheet applied (the header's border) and its imported stylesheet (the title's colour)
RENDERED = """(() => {
  const images = Array.from(document.images).filter(i => i.width > 1);
  const font = Array.from(document.fonts).some(
    f => f.family.replace(/"/g, "") === "Fixture Serif" && f.status === "loaded");
  return document.readyState === "complete" && images.length >= 6 &&
    images.every(i => i.complete && i.naturalWidth > 0) && font &&
    getComputedStyle(document.querySelector("header")).borderBottomWidth === "6px" &&
    getComputedStyle(document.querySelector("h1")).color === "rgb(181, 137, 0)";
})()"""


@pytest.mark.parametrize("which", ["first", "again"])
def test_the_wacz_replays_with_its_requisites_in_replaywebpage(
        which: str, first: dict[str, Any], site: Site, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    """The first crawl's WACZ, and the second's, where the article and most of what it loads
    answered 304: that package holds the first crawl's captures they stand on."""
    from tests.test_interop import DevTools, replay_until, replaywebpage_site
    article = f"{site.outlet.url}articles/second.html"
    crawl_dir = request.getfixturevalue(which)["dir"]
    with replaywebpage_site(tmp_path / "site", first["work"] / "archive", crawl_dir.name,
                            article, height=1400) as base:
        browser = DevTools(tmp_path / "profile")
        rendered = False
        try:
            rendered = replay_until(browser, f"{base}/index.html", lambda: any(
                _evaluate(browser, frame, RENDERED)
                for frame in _frames(browser) if frame["url"].endswith(article)))
        finally:
            browser.screenshot(tmp_path / "replaywebpage.png")  # what a person would have seen
            browser.close()
    assert rendered, "the article replayed without its images, font or stylesheets"


def _frames(browser: Any) -> list[dict[str, Any]]:
    frames, found = [browser.call("Page.getFrameTree")["frameTree"]], []
    while frames:
        node = frames.pop()
        frames.extend(node.get("childFrames", []))
        found.append(node["frame"])
    return found


def _evaluate(browser: Any, frame: dict[str, Any], expression: str) -> Any:
    from tests.test_interop import DevToolsError
    try:
        world = browser.call("Page.createIsolatedWorld", frameId=frame["id"])
        result = browser.call("Runtime.evaluate", contextId=world["executionContextId"],
                              expression=expression)
    except DevToolsError:  # the frame navigated meanwhile
        return None
    return result["result"].get("value")
