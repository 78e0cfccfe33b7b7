"""`newsarchive replay`: pywb serves the archive's captures, from S3 (ranged GETs on the bucket)
and from a local directory; the replayed bytes are the bytes the outlet sent, a real browser
renders the replayed article, and stopping replay leaves no pywb behind."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from crawler.readers.replay import merge_sorted
from tests.conftest import EXPECTED, NEWSARCHIVE, Outlet, crawl_s3, run_cli, s3_env, write_config
from tests.s3server import S3Server, free_ports

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ACCEPT = {"Accept-Encoding": "gzip, deflate"}  # what the crawler asked the outlet for
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body exactly as sent (no decoding)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@dataclass
class Replay:
    """A running `newsarchive replay` and the pywb it started."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    pywb_pid: int
    workdir: Path

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal replay and wait: its exit code; pywb must be gone and its files removed."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        deadline = time.monotonic() + 15
        while running(self.pywb_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(self.pywb_pid), "pywb outlived replay"
        assert not self.workdir.exists(), "replay left its working directory behind"
        return code


def start_replay(*args: str, log: Path, env: dict[str, str] | None = None) -> Replay:
    (port,) = free_ports(1)
    with open(log, "wb") as out:
        proc = subprocess.Popen([NEWSARCHIVE, "replay", "--port", str(port), *args],
                                stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 120
    while "Ctrl-C stops" not in log.read_text("utf-8", errors="replace"):  # replay says it serves
        assert proc.poll() is None, f"replay exited early:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"replay did not serve:\n{log.read_text()}"
        time.sleep(0.2)
    url = f"http://127.0.0.1:{port}"
    (pywb_pid,) = children(proc.pid)
    return Replay(proc, url, log, pywb_pid, Path(os.readlink(f"/proc/{pywb_pid}/cwd")))


class _Rows(HTMLParser):
    """The home page's article table: one dict per row (cell texts and the title's link)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self._cells: list[str] | None = None
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._cells, self._href = [], None
        elif tag == "td" and self._cells is not None:
            self._cells.append("")
        elif tag == "a" and self._cells:
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._cells:
            self._cells[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._cells:
            date, title, outlet, url = (c.strip() for c in self._cells)
            self.rows.append({"date": date, "title": title, "outlet": outlet, "url": url,
                              "href": self._href})
            self._cells = None


def home_rows(replay: Replay) -> list[dict[str, Any]]:
    status, headers, body = fetch(replay.url + "/")
    assert status == 200, body[:500]
    parser = _Rows()
    parser.feed(body.decode("utf-8"))
    return parser.rows


def assert_lists_articles(rows: list[dict[str, Any]], outlet: Outlet, copies: int) -> None:
    for article in EXPECTED["articles"]:
        url = outlet.url.rstrip("/") + article["path"]
        mine = [r for r in rows if r["url"] == url]
        assert len(mine) == copies, (url, rows)
        for row in mine:
            assert (row["title"], row["date"], row["outlet"]) == (
                article["title"], article["date"], "techwire")
            assert row["href"].startswith("archive/") and row["href"].endswith("/" + url)
    assert len(rows) == copies * len(EXPECTED["articles"])


def replayed_original(replay: Replay, row: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """The capture behind a home page link, through pywb's ``id_`` (original bytes) mode."""
    timestamp, url = row["href"].removeprefix("archive/").split("/", 1)
    return fetch(f"{replay.url}/archive/{timestamp}id_/{url}", ACCEPT)


# ---------------------------------------------------------------- S3


@pytest.fixture(scope="module")
def s3_replay(outlet: Outlet, s3: S3Server, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Replay]:
    """The fixture outlet crawled into a SeaweedFS bucket, and `replay` serving that bucket."""
    work = tmp_path_factory.mktemp("replay-s3")
    bucket = f"replay-{os.getpid()}"
    s3.client().create_bucket(Bucket=bucket)
    config = crawl_s3(outlet, s3, work, f"s3://{bucket}/news/v1")
    replay = start_replay("-c", str(config), log=work / "replay.log", env=s3_env(s3))
    try:
        yield replay
    finally:
        code = replay.stop(signal.SIGTERM) if replay.proc.poll() is None else replay.proc.wait()
        assert code == 0, replay.output()


def test_s3_home_page_lists_the_articles(s3_replay: Replay, outlet: Outlet) -> None:
    assert_lists_articles(home_rows(s3_replay), outlet, copies=1)
    assert f"{s3_replay.url}/archive/" in s3_replay.output()


def test_s3_replay_gives_the_bytes_the_outlet_sent(s3_replay: Replay, outlet: Outlet) -> None:
    rows = home_rows(s3_replay)
    assert rows
    for row in rows:
        status, headers, body = replayed_original(s3_replay, row)
        live_status, live_headers, live_body = fetch(row["url"], ACCEPT)
        assert status == live_status == 200, body[:300]
        assert headers.get("Content-Encoding") == live_headers["Content-Encoding"] == "gzip"
        assert headers["Content-Type"] == live_headers["Content-Type"]
        assert body == live_body, row["url"]
        path = row["url"].removeprefix(outlet.url.rstrip("/"))
        assert gzip.decompress(body) == (outlet.root / path.lstrip("/")).read_bytes()
    # the WARCs stay in the bucket: pywb reads each capture with a ranged GET
    kept = [p.name for p in s3_replay.workdir.rglob("*") if p.is_file()]
    assert kept and not [name for name in kept if ".warc" in name], kept


def test_s3_replay_renders_in_chromium(s3_replay: Replay, tmp_path: Path) -> None:
    browser = shutil.which("chromium")
    assert browser, "Debian chromium is not installed (scripts/dev.sh setup installs it)"
    row = next(r for r in home_rows(s3_replay) if r["title"] == EXPECTED["articles"][0]["title"])
    page = urljoin(s3_replay.url + "/", row["href"])  # the link a person clicks
    _, _, served = fetch(page)
    assert row["title"].encode() not in served, "the frame page names the title by itself"

    def chromium(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
             "--window-size=1280,1000", "--virtual-time-budget=10000", *args, page],
            capture_output=True, text=True, timeout=180)

    # pywb's frame shows the replayed page's title once that page has rendered inside it
    dom = chromium("--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f"<title>Archived Page: {row['title']}" in dom.stdout, dom.stdout[-3000:]
    screenshot = tmp_path / "article.png"
    shot = chromium(f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 50_000, len(png)


# ---------------------------------------------------------------- local directory


@pytest.fixture(scope="module")
def local_archive(outlet: Outlet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two completed crawls of the fixture outlet (the second re-checks every article: revisit
    records), and an incomplete one (no manifest)."""
    work = tmp_path_factory.mktemp("replay-local")
    archive = work / "archive"
    config = write_config(work / "outlets.toml", outlet.url, str(archive))
    for job, options in (("morning", ()), ("evening", ("--recheck",))):
        time.sleep(1)  # a capture time of its own, to the second
        crawl = run_cli("crawl", "-c", str(config), "--job", job, *options)
        assert crawl.returncode == 0, crawl.stderr + crawl.stdout
    (evening,) = (archive / "crawls").glob("evening-*")
    unfinished = evening.with_name(evening.name.replace("evening", "night"))
    shutil.copytree(evening, unfinished)
    (unfinished / "manifest.json").unlink()
    return {"config": config, "archive": archive, "work": work}


def test_local_replay_serves_every_completed_crawl(local_archive: dict[str, Any],
                                                   outlet: Outlet, tmp_path: Path) -> None:
    replay = start_replay("-c", str(local_archive["config"]), log=tmp_path / "replay.log")
    try:
        rows = home_rows(replay)
        # one row per article text: the evening found every article unchanged (no new text),
        # and the unfinished crawl is not served
        assert_lists_articles(rows, outlet, copies=1)
        for row in rows:
            status, headers, body = replayed_original(replay, row)
            assert status == 200, body[:300]
            captured = parsedate_to_datetime(headers["Memento-Datetime"])
            assert captured.strftime("%Y%m%d%H%M%S") == row["href"].split("/")[1]
            path = row["url"].removeprefix(outlet.url.rstrip("/")).lstrip("/")
            assert gzip.decompress(body) == (outlet.root / path).read_bytes()
        # a capture of a non-article exchange replays too, with its real status
        timestamp = rows[0]["href"].split("/")[1]
        status, _, _ = fetch(f"{replay.url}/archive/{timestamp}id_/{outlet.url}missing.html")
        assert status == 404
        # the evening's revisits: an unchanged page replays with the morning's bytes at the
        # evening's time; an article the server said was not modified (304) replays as its
        # full capture, not as an empty 304
        (evening,) = local_archive["archive"].glob("crawls/evening-*")
        index = [json.loads(line.split(" ", 2)[2]) | {"ts": line.split(" ")[1]}
                 for path in evening.glob("index/*.cdxj") for line in path.read_text().splitlines()]
        revisits = {r["url"]: r for r in index if r["mime"] == "warc/revisit"}
        home = revisits[outlet.url]
        status, headers, body = fetch(f"{replay.url}/archive/{home['ts']}id_/{outlet.url}", ACCEPT)
        assert status == 200
        assert parsedate_to_datetime(headers["Memento-Datetime"]).strftime("%Y%m%d%H%M%S") == \
            home["ts"]
        assert gzip.decompress(body) == (outlet.root / "index.html").read_bytes()
        for article in EXPECTED["articles"]:
            url = outlet.url.rstrip("/") + article["path"]
            assert revisits[url]["status"] == "304"
            status, _, body = fetch(f"{replay.url}/archive/{revisits[url]['ts']}id_/{url}", ACCEPT)
            assert status == 200
            assert gzip.decompress(body) == (outlet.root / article["path"].lstrip("/")).read_bytes()
    finally:
        code = replay.stop(signal.SIGINT)  # Ctrl-C
    assert code == 0, replay.output()


def test_replay_killed_takes_pywb_with_it(local_archive: dict[str, Any], tmp_path: Path
                                          ) -> None:
    replay = start_replay("--archive", str(local_archive["archive"]), log=tmp_path / "log")
    replay.proc.kill()  # no chance to clean up: the kernel stops pywb
    replay.proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while running(replay.pywb_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(replay.pywb_pid), "pywb orphaned"
    shutil.rmtree(replay.workdir, ignore_errors=True)


def test_replay_refusals_are_one_line(local_archive: dict[str, Any], tmp_path: Path) -> None:
    empty = run_cli("replay", "--archive", str(tmp_path / "nothing-here"))
    assert empty.returncode == 1
    assert empty.stderr.strip().splitlines() == [
        f"newsarchive: no completed crawls in {tmp_path / 'nothing-here'}"]
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        taken = run_cli("replay", "--archive", str(local_archive["archive"]),
                        "--port", str(port))
    assert taken.returncode == 1
    assert len(taken.stderr.strip().splitlines()) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr


def test_index_merge_is_sorted_and_complete(tmp_path: Path) -> None:
    """Many crawl indexes merge into one sorted file, a few files open at a time."""
    rng = random.Random(6)
    lines = [f"org,example)/{rng.randrange(10**6):06d} 2025081{rng.randrange(10)}000000 "
             f'{{"n": {n}}}\n'.encode() for n in range(500)]
    parts = []
    for n in range(7):
        part = tmp_path / f"part{n}.cdxj"
        part.write_bytes(b"".join(sorted(lines[n::7])))
        parts.append(part)
    out = tmp_path / "merged.cdxj"
    assert merge_sorted(parts, out, fan_in=3) == len(lines)
    assert out.read_bytes() == b"".join(sorted(lines))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged.cdxj"]
