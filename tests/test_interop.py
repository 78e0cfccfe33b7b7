"""The archive read by third-party tools: an exported WACZ opens in ReplayWeb.page (its embed,
in headless Chromium) and replays an archived article; revisit records say what the WARC spec
asks and warcio and pywb still read them; `setup-replay` installs the pywb `replay` runs."""

from __future__ import annotations

import base64
import fcntl
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crawler.capture.cdxj import REVISIT_MIME, cdxj_fields
from crawler.capture.writer import REVISIT_IDENTICAL, REVISIT_NOT_MODIFIED
from tests.conftest import EXPECTED, ROOT, Outlet, crawl_local, run_cli, write_config
from tests.test_crawl_local import warc_records
from tests.test_replay import ACCEPT, CHROMIUM_FLAGS, fetch, home_rows, start_replay
from tests.test_wacz import wacz_validate

REPLAYWEBPAGE = ROOT / ".replaywebpage" / "package"  # scripts/dev.sh setup_replay unpacks it
REPLAY_DEADLINE = 60.0


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single byte ranges, as ReplayWeb.page reads a WACZ from a web server."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass

    def send_head(self):  # noqa: ANN201 (stdlib signature)
        self.range_length: int | None = None
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not match or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first, last = match.groups()
        start = int(first) if first else max(size - int(last), 0)
        end = min(int(last), size - 1) if first and last else size - 1
        f = open(path, "rb")  # the handler closes it
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.range_length = end - start + 1
        return f

    def copyfile(self, source: Any, outputfile: Any) -> None:
        if self.range_length is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(self.range_length))


class DevToolsError(Exception):
    """A DevTools command failed (for one, on a frame that navigated away meanwhile)."""


class DevTools:
    """Chromium driven over its DevTools pipe (fds 3 and 4, NUL-terminated JSON messages)."""

    def __init__(self, profile: Path) -> None:
        browser = shutil.which("chromium")
        assert browser, "Debian chromium is not installed (scripts/dev.sh setup installs it)"
        to_browser, self._writer = os.pipe()
        self._reader, from_browser = os.pipe()

        def wire() -> None:
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [browser, *CHROMIUM_FLAGS, "--disable-quic", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "--window-size=1280,1000", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=wire)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._id = 0
        self.session = ""

    def call(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._writer, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                data = os.read(self._reader, 1 << 16)
                assert data, "chromium closed its DevTools pipe"
                self._buffer += data
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise DevToolsError(method, answer["error"])
                return answer["result"]

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", session=False, url=url)["targetId"]
        self.session = self.call("Target.attachToTarget", session=False, targetId=target,
                                 flatten=True)["sessionId"]

    def frame_texts(self) -> dict[str, str]:
        """Every frame of the page (same-origin iframes included, in shadow roots too): its
        URL and rendered text."""
        texts = {}
        frames = [self.call("Page.getFrameTree")["frameTree"]]
        while frames:
            node = frames.pop()
            frames.extend(node.get("childFrames", []))
            frame = node["frame"]
            try:
                world = self.call("Page.createIsolatedWorld", frameId=frame["id"])
                result = self.call("Runtime.evaluate", contextId=world["executionContextId"],
                                   expression="document.body ? document.body.innerText : ''")
            except DevToolsError:  # the replay reloads its frames as it starts
                continue
            texts[frame["url"]] = result["result"].get("value", "")
        return texts

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot")["data"]))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._writer)
        os.close(self._reader)


@pytest.fixture(scope="module")
def crawl(outlet: Outlet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A crawl of the fixture outlet, then a second one that re-checks every article: its
    unchanged pages are revisit records (identical payload, or a 304)."""
    first = crawl_local(outlet, work := tmp_path_factory.mktemp("interop"))
    recheck = run_cli("crawl", "-c", str(write_config(work / "outlets.toml", outlet.url,
                                                      str(first["archive"]))),
                      "--job", "recheck", "--recheck")
    assert recheck.returncode == 0, recheck.stderr + recheck.stdout
    (second,) = first["archive"].glob("crawls/recheck-*")
    return first | {"recheck": second}


@contextmanager
def replaywebpage_site(root: Path, archive: Path, crawl_id: str, url: str, height: int = 950
                       ) -> Iterator[str]:
    """ReplayWeb.page's embed page (its ``ui.js``, its service worker under ``replay/``)
    opening `url` from the crawl's exported WACZ, served from 127.0.0.1 with byte ranges; the
    site's base URL."""
    assert (REPLAYWEBPAGE / "sw.js").is_file(), \
        "ReplayWeb.page is not unpacked (scripts/dev.sh setup installs it)"
    (root / "replay").mkdir(parents=True)
    shutil.copy(REPLAYWEBPAGE / "ui.js", root / "ui.js")
    shutil.copy(REPLAYWEBPAGE / "sw.js", root / "replay" / "sw.js")
    exported = run_cli("export-wacz", "--archive", str(archive), "--crawl", crawl_id,
                       "-o", str(root / "crawl.wacz"))
    assert exported.returncode == 0, exported.stderr + exported.stdout
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    (root / "index.html").write_text(
        '<!doctype html><html><head><meta charset="utf-8"><script src="ui.js"></script></head>'
        f'<body><replay-web-page source="{base}/crawl.wacz" url="{url}" replayBase="replay/"'
        f' embed="replayonly" style="display:block;width:100%;height:{height}px">'
        "</replay-web-page></body></html>", "utf-8")
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


def replay_until(browser: DevTools, url: str, replayed: Callable[[], Any]) -> bool:
    """Open a ReplayWeb.page site and wait until `replayed()` says so. On a busy machine the
    player's frame can load before its service worker took over (the server's directory
    listing): the page is reloaded once, as a person would."""
    browser.open(url)
    start, reloaded = time.monotonic(), False
    while time.monotonic() < start + 2 * REPLAY_DEADLINE:
        time.sleep(1)
        if replayed():
            return True
        if not reloaded and time.monotonic() > start + REPLAY_DEADLINE:
            browser.call("Page.reload")
            reloaded = True
    return False


def showing(browser: DevTools, url: str, sentence: str) -> dict[str, str]:
    """The frames' texts once one of them shows `sentence` (replayed)."""
    texts: dict[str, str] = {}

    def shown() -> bool:
        texts.update(browser.frame_texts())
        return any(sentence in text for text in texts.values())

    assert replay_until(browser, url, shown), f"not replayed: {texts}"
    return texts


def test_wacz_replays_in_replaywebpage(crawl: dict[str, Any], outlet: Outlet,
                                       tmp_path: Path) -> None:
    article = EXPECTED["articles"][0]
    url = outlet.url.rstrip("/") + article["path"]
    sentence = article["paragraphs"][0][:80]
    with replaywebpage_site(tmp_path / "site", crawl["archive"], crawl["crawl_id"], url) as base:
        browser = DevTools(tmp_path / "profile")
        try:
            texts = showing(browser, f"{base}/index.html", sentence)
        finally:
            browser.screenshot(tmp_path / "replaywebpage.png")  # what a person would have seen
            browser.close()
    replayed = next(frame for frame, text in texts.items() if sentence in text)
    assert replayed.startswith(f"{base}/replay/") and replayed.endswith(url), replayed


def test_a_recrawls_wacz_carries_the_captures_its_revisits_stand_on(
        crawl: dict[str, Any], outlet: Outlet, tmp_path: Path) -> None:
    """In the re-check crawl the article is a 304 revisit and the home page an identical-payload
    one: its WACZ carries the first crawl's captures of both, and ReplayWeb.page replays the
    article from that package alone."""
    article = EXPECTED["articles"][0]
    url = outlet.url.rstrip("/") + article["path"]
    sentence = article["paragraphs"][0][:80]
    recheck = crawl["recheck"].name
    with replaywebpage_site(tmp_path / "site", crawl["archive"], recheck, url) as base:
        with zipfile.ZipFile(tmp_path / "site" / "crawl.wacz") as package:
            index = [cdxj_fields(line) for line in
                     package.read("indexes/index.cdxj").splitlines()]
            names = set(package.namelist())
        assert f"archive/{recheck}-originals.warc.gz" in names
        full = {(f["url"], f["digest"]) for f in index if f["mime"] != REVISIT_MIME}
        revisits = [f for f in index if f["mime"] == REVISIT_MIME]
        assert outlet.url in {f["url"] for f in revisits}
        assert all((f["url"], f["digest"]) in full for f in revisits)
        # a 304 revisit replays empty in ReplayWeb.page: the index serves its original instead
        assert not [f for f in revisits if f["status"] == "304"]
        assert url in {f["url"] for f in index if f["mime"] != REVISIT_MIME}
        browser = DevTools(tmp_path / "profile")
        try:
            showing(browser, f"{base}/index.html", sentence)
        finally:
            browser.screenshot(tmp_path / "replaywebpage.png")
            browser.close()
    assert wacz_validate(tmp_path / "site" / "crawl.wacz").returncode == 0


def test_a_recrawls_wacz_says_which_revisits_stand_on_a_deleted_crawl(
        crawl: dict[str, Any], tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    shutil.copytree(crawl["archive"], archive)
    shutil.rmtree(archive / "crawls" / crawl["crawl_id"])
    exported = run_cli("export-wacz", "--archive", str(archive), "--crawl",
                       crawl["recheck"].name, "-o", str(tmp_path / "crawl.wacz"))
    assert exported.returncode == 0, exported.stderr
    assert "0 capture(s) of earlier crawls" in exported.stdout
    revisits = sum(1 for r in warc_records(next(crawl["recheck"].glob("warc/*.warc.gz")))
                   if r["type"] == "revisit")
    assert f"{revisits} revisit(s) stand on captures no earlier crawl" in exported.stdout, \
        exported.stdout


def test_identical_payload_revisits_declare_their_truncation(crawl: dict[str, Any],
                                                             outlet: Outlet,
                                                             tmp_path: Path) -> None:
    """WARC 1.1 6.7.2: "A WARC-Truncated header with reason 'length' shall be used for any
    identical-digest truncation"; a 304's revisit truncates nothing."""
    (warc,) = crawl["recheck"].glob("warc/*.warc.gz")
    revisits = [r for r in warc_records(warc) if r["type"] == "revisit"]
    profiles = {r["headers"].get_header("WARC-Profile") for r in revisits}
    assert profiles == {REVISIT_IDENTICAL, REVISIT_NOT_MODIFIED}
    for record in revisits:
        identical = record["headers"].get_header("WARC-Profile") == REVISIT_IDENTICAL
        assert record["headers"].get_header("WARC-Truncated") == \
            ("length" if identical else None), record["uri"]
    checked = subprocess.run([str(Path(sys.executable).parent / "warcio"), "check", "-v",
                              str(warc)], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # pywb replays an identical-payload revisit with its original's bytes
    home = next(r for r in revisits if r["uri"] == outlet.url)
    assert home["headers"].get_header("WARC-Profile") == REVISIT_IDENTICAL
    timestamp = re.sub(r"\D", "", home["headers"].get_header("WARC-Date"))[:14]
    replay = start_replay("--archive", str(crawl["archive"]), log=tmp_path / "replay.log")
    try:
        status, headers, body = fetch(f"{replay.url}/archive/{timestamp}id_/{home['uri']}",
                                      ACCEPT)
    finally:
        assert replay.stop(signal.SIGTERM) == 0, replay.output()
    assert status == 200, body[:300]
    assert gzip.decompress(body) == (outlet.root / "index.html").read_bytes()


def test_setup_replay_installs_the_pywb_replay_uses(crawl: dict[str, Any],
                                                    tmp_path: Path) -> None:
    """A user without a checkout: pywb in $XDG_DATA_HOME/newsarchive/pywb-venv."""
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    wayback = tmp_path / "data" / "newsarchive" / "pywb-venv" / "bin" / "wayback"
    setup = run_cli("setup-replay", env=env, timeout=600)
    assert setup.returncode == 0, setup.stderr[-3000:] + setup.stdout[-3000:]
    assert str(wayback) in setup.stdout
    replay = start_replay("--archive", str(crawl["archive"]), log=tmp_path / "replay.log",
                          env=env)
    try:
        command = Path(f"/proc/{replay.pywb_pid}/cmdline").read_bytes().split(b"\0")
        assert str(wayback).encode() in command, command
        assert home_rows(replay)
    finally:
        assert replay.stop(signal.SIGTERM) == 0, replay.output()


def test_replay_without_pywb_names_the_command_that_installs_it(tmp_path: Path) -> None:
    missing = run_cli("replay", "--archive", str(tmp_path), "--pywb", str(tmp_path / "wayback"))
    assert missing.returncode == 1
    assert "`newsarchive setup-replay` installs it" in missing.stderr, missing.stderr
