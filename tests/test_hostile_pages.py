"""Hostile section pages: tags opened and never closed (quadratic for regexes over the bytes),
links that are no links, JSON-LD nested past Python's recursion limit. A page's markup is read
in linear time and off the reactor, so one outlet's page does not hold up another's crawl."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler.jobs.demo import OutletServer
from tests.conftest import ROOT, read_text_shards, run_cli
from tests.discovery_site import build_site, logging_handler


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An outlet whose pages the tests write, served with a request log."""
    root = tmp_path / "hostile"
    root.mkdir()
    handler = logging_handler()
    with OutletServer(root, handler=handler) as server:
        yield {"root": root, "url": server.url.rstrip("/"), "log": handler.log}


def write_pages(root: Path, pages: dict[str, str | bytes]) -> None:
    for path, content in pages.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)


def crawl(tmp: Path, outlets: str, timeout: float = 180) -> dict[str, Any]:
    """`newsarchive crawl` of the `[[outlets]]` given; its output and text records."""
    archive = tmp / "archive"
    config = tmp / "outlets.toml"
    config.write_text(f'[archive]\nuri = "{archive}"\n[crawl]\nuser_agent = "newsarchive-tests'
                      f'/0.1 (+https://example.org/contact)"\n{outlets}')
    result = run_cli("crawl", "-c", str(config), "--log-level", "WARNING", timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout
    (crawl_dir,) = (archive / "crawls").iterdir()
    return {"stdout": result.stdout, "stderr": result.stderr,
            "texts": read_text_shards(sorted((crawl_dir / "text").glob("*.jsonl.gz")))}


def paths(log: list[tuple[float, str]]) -> set[str]:
    return {path for _, path in log}


class SlowAnswers:
    """Mixed into a request handler: 0.3 s over each answer, so its outlet's crawl lasts a few
    seconds."""

    def send_head(self):  # noqa: ANN201 (stdlib signature)
        time.sleep(0.3)
        return super().send_head()


def test_a_hostile_page_does_not_hold_up_another_outlet(tmp_path: Path,
                                                        hostile: dict[str, Any]) -> None:
    # outlet A: ~100 KB of "<a " and 34 KB of "<article ", never closed, after one real link
    write_pages(hostile["root"], {
        "/links.html": '<html><body><a href="/after-links.html">on</a>' + "<a " * 34_000,
        "/articles.html": '<html><body><a href="/after-articles.html">on</a>'
                          + "<article " * 3_800,
        "/after-links.html": "<html><body><p>After.</p></body></html>",
        "/after-articles.html": "<html><body><p>After.</p></body></html>"})
    # outlet B: a normal small outlet, slow enough to be still crawling while A's pages are read
    b_handler = logging_handler()
    with OutletServer(tmp_path / "b", handler=type("Slow", (SlowAnswers, b_handler), {})
                      ) as b_server:
        b_base = b_server.url.rstrip("/")
        listed = build_site(tmp_path / "b", b_base)["listed"]
        result = crawl(tmp_path, f"""
[[outlets]]
name = "a"
start_urls = ["{hostile['url']}/links.html", "{hostile['url']}/articles.html"]
[[outlets]]
name = "b"
start_urls = ["{b_base}/section/"]
""", timeout=400)
    assert {"/after-links.html", "/after-articles.html"} <= paths(hostile["log"])
    assert {t["url"] for t in result["texts"] if t["outlet"] == "b"} == {
        b_base + p for p in listed}
    # B's requests went on while A's pages were read: B was still crawling when A served them,
    # and no two consecutive requests of B were far apart (the regexes on the reactor held B
    # back for minutes; here B's server answers in 0.3 s)
    served = max(t for t, p in hostile["log"] if p in ("/links.html", "/articles.html"))
    b_times = sorted(t for t, _ in b_handler.log)
    assert b_times[-1] > served
    gaps = [later - earlier for earlier, later in zip(b_times, b_times[1:], strict=False)]
    assert max(gaps) < 20, f"outlet B waited {max(gaps):.0f} s while A's pages were read"


def test_a_megabyte_of_unclosed_tags_is_read_in_bounded_time() -> None:
    script = """
import json
from crawler.discovery.markup import read_markup
page = b'<html><head><link rel="next" href="/s/2"></head><body><a href="/real#x">real</a>'
for flood in (b"<a ", b"<article ", b"<link rel="):
    markup = read_markup(page + flood * (2**20 // len(flood)), "http://h.example/s/")
    print(json.dumps([markup.links, markup.next_pages, markup.canonical, markup.feeds,
                      markup.says_article]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = [["http://h.example/real"], ["http://h.example/s/2"], None, [], False]
    assert [json.loads(line) for line in result.stdout.splitlines()] == [expected] * 3


def test_links_that_are_no_links_are_not_followed(tmp_path: Path,
                                                  hostile: dict[str, Any]) -> None:
    hidden = ["/in-comment.html", "/in-textarea.html", "/in-template.html", "/in-xmp.html",
              "/in-script.html", "/in-title.html"]
    write_pages(hostile["root"], {
        "/section.html": f"""<html><head><title><a href="{hidden[5]}">t</a></title></head><body>
<!-- <a href="{hidden[0]}">commented out</a> -->
<textarea><a href="{hidden[1]}">typed</a></textarea>
<template><div><a href="{hidden[2]}">not rendered</a></div></template>
<xmp><a href="{hidden[3]}">shown as text</a></xmp>
<script>document.write('<a href="{hidden[4]}">written</a>');</script>
<a href="/real-1.html">one</a> <p><a href="/real-2.html">two</a></p></body></html>""",
        **{path: "<html><body><p>Page.</p></body></html>"
           for path in [*hidden, "/real-1.html", "/real-2.html"]}})
    crawl(tmp_path, f'[[outlets]]\nname = "a"\nstart_urls = ["{hostile["url"]}/section.html"]')
    fetched = paths(hostile["log"])
    assert {"/real-1.html", "/real-2.html"} <= fetched
    assert not set(hidden) & fetched


def test_deeply_nested_json_ld_is_no_crash_and_news_article_still_counts(
        tmp_path: Path, hostile: dict[str, Any]) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    story = " ".join(["The council passed the city budget after a long debate."] * 8)
    write_pages(hostile["root"], {
        "/section.html": '<html><body><a href="/deep.html">deep</a> '
                         '<a href="/story.html">story</a></body></html>',
        "/deep.html": f'<html><head><script type="application/ld+json">{deep}</script></head>'
                      '<body><a href="/after-deep.html">on</a></body></html>',
        "/after-deep.html": "<html><body><p>After.</p></body></html>",
        "/story.html": '<html><head><title>Budget passed</title><script type="application/ld+'
                       'json">{"@context": "https://schema.org", "@type": "NewsArticle", '
                       '"headline": "Budget passed"}</script></head><body><h1>Budget passed'
                       f'</h1><p>{story}</p><p>{story}</p></body></html>'})
    result = crawl(tmp_path, f'[[outlets]]\nname = "a"\n'
                             f'start_urls = ["{hostile["url"]}/section.html"]')
    assert "/after-deep.html" in paths(hostile["log"])  # the deep page was read through
    assert "Spider error" not in result["stderr"], result["stderr"][-3000:]
    assert [t["url"] for t in result["texts"]] == [hostile["url"] + "/story.html"]
