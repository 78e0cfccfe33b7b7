"""Crash safety: a crawl killed with SIGKILL in the middle, then `crawl --resume`. Real command, a
fixture outlet slow enough to be mid-crawl, a local archive; WARCs checked with warcio."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from crawler.jobs.demo import OutletServer
from tests.conftest import NEWSARCHIVE, read_text_shards, run_cli
from tests.discovery_site import LoggingHandler, build_site, logging_handler
from tests.test_crawl_local import warc_records
from tests.test_discovery import _free_port

ARTICLES = 40


class SlowHandler(LoggingHandler):
    def do_GET(self) -> None:  # noqa: N802
        time.sleep(0.05)
        super().do_GET()


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("resume", [("crawl", "--resume"), ("schedule", "--once")],
                         ids=["crawl-resume", "schedule-restart"])
def test_sigkill_mid_crawl_then_resume(tmp_path: Path, resume: tuple[str, str]) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    paths = build_site(tmp_path / "www", base, articles=ARTICLES, unlisted=0, per_page=5)
    handler = type("Handler", (SlowHandler,), dict(vars(logging_handler())))
    archive = tmp_path / "archive"
    config = tmp_path / "outlets.toml"
    config.write_text(f"""
[archive]
uri = "{archive}"
[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"
warc_max_size = "12KB"
[[outlets]]
name = "slow"
start_urls = ["{base}/section/"]
feeds = ["{base}/feeds/rss.xml", "{base}/feeds/atom.xml"]
sitemaps = ["{base}/sitemaps/index.xml"]
delay = 0.2
concurrency = 1
autothrottle = false
schedule = "0 0 1 1 *"
""")
    jobs = archive / ".spool" / "jobs"
    with OutletServer(tmp_path / "www", port=port, handler=handler):
        crawl = subprocess.Popen([NEWSARCHIVE, "crawl", "-c", str(config)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and crawl.poll() is None:
            journals = list(jobs.glob("*/state.jsonl"))
            # half the articles in, and a WARC being written: the kill cuts a shard short
            if journals and journals[0].read_text().count('"article": true') >= ARTICLES // 2 \
                    and any((archive / ".spool").rglob("*.warc.gz.open")):
                break
            time.sleep(0.05)
        assert crawl.poll() is None, "the crawl ended before it could be killed"
        pool = descendants(crawl.pid)  # the extraction pool: its forkserver and workers
        assert pool
        os.kill(crawl.pid, signal.SIGKILL)
        crawl.wait()
        gone_by = time.monotonic() + 10
        while any(alive(p) for p in pool) and time.monotonic() < gone_by:
            time.sleep(0.2)
        assert not [p for p in pool if alive(p)], "the killed crawl left processes behind"
        before_resume = len(handler.log)

        (crawl_dir,) = (archive / "crawls").iterdir()
        assert not (crawl_dir / "manifest.json").exists()
        assert "INCOMPLETE" in run_cli("ls", "--archive", str(archive)).stdout
        left_open = list((archive / ".spool").rglob("*.open"))
        assert any(p.name.endswith(".warc.gz.open") for p in left_open)
        assert list(crawl_dir.glob("warc/*.warc.gz")), "no shard was finished before the kill"

        resumed = run_cli(resume[0], "-c", str(config), resume[1])
        assert resumed.returncode == 0, resumed.stderr[-3000:] + resumed.stdout
    assert f"crawl {crawl_dir.name}" in resumed.stdout  # the same crawl, continued
    assert "repaired" in resumed.stderr
    assert " failed: " not in resumed.stderr and "ERROR" not in resumed.stderr, resumed.stderr
    assert f"resumed: {before_resume - 1} page(s)" in resumed.stdout or \
        f"resumed: {before_resume} page(s)" in resumed.stdout, resumed.stdout

    # every page archived exactly once, in WARCs warcio accepts
    warcs = sorted(crawl_dir.glob("warc/*.warc.gz"))
    captured: Counter = Counter()
    for path in warcs:
        check = subprocess.run([str(Path(sys.executable).parent / "warcio"), "check", str(path)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        captured.update(r["uri"] for r in warc_records(path) if r["type"] == "response")
    assert captured and max(captured.values()) == 1, captured.most_common(3)
    pages = {base + p for p in paths["listed"]}
    assert pages <= set(captured)
    served = Counter(p for _, p in handler.log)
    assert {base + p for p in served} == set(captured)  # nothing fetched is missing
    # fetched twice only what was in flight when the crawl was killed (concurrency 1)
    assert len(handler.log) - len(served) <= 1, before_resume

    # every article's text once; the manifest lists every file, with its fixity
    texts = read_text_shards(sorted(crawl_dir.glob("text/*.jsonl.gz")))
    assert sorted(t["url"] for t in texts) == sorted(pages)
    manifest = json.loads((crawl_dir / "manifest.json").read_text())
    on_disk = {p.relative_to(archive).as_posix(): p for p in crawl_dir.rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    assert {f["key"] for f in manifest["files"]} == set(on_disk)
    for entry in manifest["files"]:
        data = on_disk[entry["key"]].read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["counts"]["responses"] == len(captured)
    assert manifest["counts"]["text_records"] == ARTICLES
    assert not list((archive / ".spool").rglob("*.open"))
    assert not jobs.exists() or not list(jobs.iterdir())  # committed, state merged

    # a second --resume has nothing left to do, and says so
    again = run_cli("crawl", "-c", str(config), "--resume")
    assert again.returncode == 1
    assert "no interrupted crawl of job 'slow' to resume" in again.stderr
