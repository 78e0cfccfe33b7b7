"""Extraction under hostile conditions, in real crawls of a fixture outlet on 127.0.0.1: a pool
worker killed with SIGKILL mid-crawl (as the OOM killer would), a page whose extraction runs far
too long, and pages holding characters no text record can hold (a lone surrogate in JSON-LD,
control characters in the body)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import trafilatura

from crawler.jobs.demo import OutletRequestHandler, OutletServer
from crawler.store.backends import LocalStore
from crawler.store.state import read_state
from tests.conftest import NEWSARCHIVE, read_text_shards, run_cli
from tests.discovery_site import build_site, logging_handler
from tests.test_incremental import captures

EXIT_NO_TEXT = 4


def write_config(path: Path, base: str, archive: Path, extract_timeout: float | None = None
                 ) -> Path:
    """The outlet discovered through its sitemap index: every article listed."""
    timeout = f"extract_timeout = {extract_timeout}" if extract_timeout else ""
    path.write_text(f"""
[archive]
uri = "{archive}"
[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"
autothrottle = false
{timeout}
[[outlets]]
name = "fixture"
sitemaps = ["{base}/sitemaps/index.xml"]
allow = ['/news/']
""", "utf-8")
    return path


def crawl_texts(archive: Path) -> list[list[dict[str, Any]]]:
    """Each crawl's text records, oldest crawl first."""
    return [read_text_shards(sorted((crawl / "text").glob("*.jsonl.gz")))
            for crawl in sorted((archive / "crawls").iterdir())]


def outlet_line(stdout: str) -> str:
    (line,) = [line for line in stdout.splitlines() if line.strip().startswith("fixture:")]
    return line


def children(pid: int) -> list[int]:
    """Live child processes of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def extraction_workers(crawl_pid: int) -> list[int]:
    """The crawl's pool workers: children of its forkserver, itself a child of the crawl."""
    workers = []
    for child in children(crawl_pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"forkserver" in cmdline:
            workers.extend(children(child))
    return workers


def test_killed_worker_costs_no_article_its_text(tmp_path: Path) -> None:
    served, gate = threading.Semaphore(0), threading.Event()

    class Gated(OutletRequestHandler):
        """After the 10th article, hold every request until the test has killed a worker."""

        articles = 0

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/news/"):
                type(self).articles += 1
                if type(self).articles > 10:
                    gate.wait(60)
                else:
                    served.release()
            super().do_GET()

    archive = tmp_path / "archive"
    with OutletServer(tmp_path / "www", handler=Gated) as server:
        base = server.url.rstrip("/")
        build_site(tmp_path / "www", base, articles=40, unlisted=0)
        config = write_config(tmp_path / "outlets.toml", base, archive)
        crawl = subprocess.Popen([NEWSARCHIVE, "crawl", "-c", str(config)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(10):
                assert served.acquire(timeout=60), "the crawl did not reach its 10th article"
            deadline = time.monotonic() + 60
            while not (workers := extraction_workers(crawl.pid)):
                assert time.monotonic() < deadline, "no extraction worker appeared"
                time.sleep(0.1)
            os.kill(workers[0], signal.SIGKILL)
            gate.set()
            stdout, stderr = crawl.communicate(timeout=180)
        finally:
            gate.set()
            if crawl.poll() is None:
                crawl.kill()
                crawl.wait()
    assert crawl.returncode == 0, stderr[-3000:] + stdout
    (texts,) = crawl_texts(archive)
    assert len({t["url"] for t in texts}) == len(texts) == 40
    assert all(t["text"] for t in texts)
    assert "40 articles" in stdout
    line = outlet_line(stdout)
    assert "articles 40 (+ 0 unchanged);" in line and "without text" not in line


def test_too_slow_extraction_is_a_failure_and_stays_due(tmp_path: Path) -> None:
    handler = logging_handler()
    archive = tmp_path / "archive"
    with OutletServer(tmp_path / "www", handler=handler) as server:
        base = server.url.rstrip("/")
        paths = build_site(tmp_path / "www", base, articles=6, unlisted=0)["listed"]
        slow = paths[0]  # ~30,000 paragraphs: several seconds of extraction
        paragraphs = "".join(f"<p>Akapit numer {i}, jeden z wielu w tym długim tekście.</p>"
                             for i in range(30_000))
        (tmp_path / "www" / slow.lstrip("/")).write_text(
            f'<html lang="pl"><head><title>Długi</title></head><body><article>{paragraphs}'
            f'</article></body></html>', "utf-8")
        config = write_config(tmp_path / "outlets.toml", base, archive, extract_timeout=2)
        first = run_cli("crawl", "-c", str(config))
        first_requests = len(handler.log)
        # a patient crawl next: the page is due, fetched in full again and extracted
        write_config(tmp_path / "outlets.toml", base, archive, extract_timeout=600)
        state = {e["url"]: e for e in read_state(LocalStore(archive), ["fixture"])}
        second = run_cli("crawl", "-c", str(config))
        again = [p for _, p in handler.log[first_requests:] if p.startswith("/news/")]

    assert first.returncode == EXIT_NO_TEXT, first.stderr[-3000:] + first.stdout
    assert "articles 6 (+ 0 unchanged), 1 without text (extraction failed);" in \
        outlet_line(first.stdout)
    assert "1 article(s) without text (extraction failed)" in first.stdout
    (run, _) = [json.loads(line) for line in (archive / "state" / "runs.jsonl").read_text()
                .splitlines()]
    assert run["exit_code"] == EXIT_NO_TEXT and run["errors"]["extraction"] == 1
    first_texts, second_texts = crawl_texts(archive)
    assert sorted(t["url"] for t in first_texts) == sorted(base + p for p in paths[1:])
    # not recorded as extracted: the state says its capture still needs its text
    assert state[base + slow]["needs_text"] is True
    assert all(state[base + p]["needs_text"] is False and state[base + p]["text"]
               for p in paths[1:])

    assert second.returncode == 0, second.stderr[-3000:] + second.stdout
    assert again == [slow]  # the others are archived and not due
    crawl_2 = sorted((archive / "crawls").iterdir())[-1]
    records = captures(sorted((crawl_2 / "warc").glob("*.warc.gz")))
    assert [r["type"] for r in records[base + slow]] == ["response"]
    (text,) = second_texts
    assert text["url"] == base + slow and "Akapit numer 29999" in text["text"]
    state = {e["url"]: e for e in read_state(LocalStore(archive), ["fixture"])}
    assert state[base + slow]["needs_text"] is False
    assert state[base + slow]["text"]["digest"] == text["text_digest"]


def test_unencodable_and_control_characters_keep_the_text(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    with OutletServer(tmp_path / "www") as server:
        base = server.url.rstrip("/")
        paths = build_site(tmp_path / "www", base, articles=4, unlisted=0)["listed"]
        surrogate, control = (tmp_path / "www" / p.lstrip("/") for p in paths[:2])
        ld = ('<script type="application/ld+json">{"@context": "https://schema.org", '
              '"@type": "NewsArticle", "headline": "Nagłówek \\ud800 z błędem"}</script>')
        surrogate.write_text(surrogate.read_text("utf-8").replace("</head>", ld + "</head>"),
                             "utf-8")
        html = control.read_text("utf-8")
        html = html.replace("rada ", "rada\x0b ").replace("budżet", "bud\x1bżet")
        control.write_text(html, "utf-8")
        result = run_cli("crawl", "-c", str(write_config(tmp_path / "outlets.toml", base,
                                                         archive)))
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout
    (texts,) = crawl_texts(archive)
    by_url = {t["url"]: t for t in texts}
    assert len(by_url) == 4

    record = by_url[base + paths[0]]
    assert record["title"] == "Nagłówek \ufffd z błędem"
    assert "uchwaliła" in record["text"]

    record = by_url[base + paths[1]]
    plain = trafilatura.extract(html)  # trafilatura alone finds the body, control chars aside
    body = [line for line in plain.splitlines() if "(1." in line]
    assert len(body) == 4
    assert record["text"].split("\n\n") == [line.replace("\x1b", "") for line in body]
