"""`newsarchive schedule` and run records, with the real command, real crawls of the fixture outlet
(under two outlet names), a local archive and the real S3 server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from crawler.config import ArchiveConfig
from crawler.errors import PreconditionFailed
from crawler.layout import RUNS_KEY
from crawler.store.backends import ArchiveStore, LocalStore, S3Store
from crawler.store.run_records import append_run, read_runs
from tests.conftest import NEWSARCHIVE, run_cli, s3_env


def schedule_config(path: Path, outlet_url: str, archive: str, crons: tuple[str, str], *,
                    delay: float = 0.0, endpoint: str = "") -> Path:
    """Outlets alpha and beta (the fixture outlet) on `crons`, and an unscheduled one."""
    outlets = "".join(f"""
[[outlets]]
name = "{name}"
start_urls = ["{outlet_url}"]
allow = ['/news/\\d{{4}}/']
{f'schedule = "{cron}"' if cron else ''}
delay = {delay}
autothrottle = false
""" for name, cron in zip(("alpha", "beta", "manual"), (*crons, None), strict=True))
    path.write_text(f"""
[archive]
uri = "{archive}"
{f'endpoint_url = "{endpoint}"{chr(10)}addressing_style = "path"' if endpoint else ''}

[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"
{outlets}""", "utf-8")
    return path


def test_bad_cron_is_refused_with_one_line(tmp_path: Path, outlet) -> None:
    config = schedule_config(tmp_path / "outlets.toml", outlet.url, str(tmp_path / "a"),
                             ("61 * * * *", "0 3 * *"))
    done = run_cli("schedule", "-c", str(config), "--once", timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"{config}: outlets[0].schedule: '61 * * * *'" in lines[0]
    assert not (tmp_path / "a").exists()  # nothing ran

    schedule_config(config, outlet.url, str(tmp_path / "a"), ("* * * * *", "0 3 * *"))
    done = run_cli("schedule", "-c", str(config), timeout=60)
    assert done.returncode != 0
    assert "outlets[1].schedule: '0 3 * *' is not a cron expression" in done.stderr


def test_every_minute_runs_both_outlets_and_stops_cleanly(tmp_path: Path, outlet) -> None:
    archive = tmp_path / "archive"
    config = schedule_config(tmp_path / "outlets.toml", outlet.url, str(archive),
                             ("* * * * *", "* * * * *"), delay=1.0)
    to_boundary = 60 - time.time() % 60
    if to_boundary > 4:  # start a few seconds before the minute the cron fires at
        time.sleep(to_boundary - 4)
    proc = subprocess.Popen([NEWSARCHIVE, "schedule", "-c", str(config)],
                            stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    started = threading.Event()

    def read_log() -> None:
        for line in proc.stderr:
            log.append(line)
            if sum("crawl started" in x for x in log) == 2:
                started.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        assert started.wait(70), "".join(log)
        deadline = time.monotonic() + 60
        while len(list(archive.glob(".spool/crawls/*/warc/*.open"))) < 2:  # both are crawling
            assert time.monotonic() < deadline, "".join(log)
            time.sleep(0.2)
        time.sleep(2)  # both crawls are mid-way (17 fetches, 1 s apart)
        pids = [int(x.split("pid ")[1].rstrip(")\n")) for x in log if "crawl started" in x]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0, "".join(log)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    text = "".join(log)
    assert "manual: no schedule; not scheduled" in text
    for pid in pids:  # no orphan crawl left behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    manifests = [json.loads(p.read_text()) for p in archive.glob("crawls/*/manifest.json")]
    assert sorted(m["job"] for m in manifests) == ["alpha", "beta"]
    assert {m["finish_reason"] for m in manifests} == {"shutdown"}
    store = LocalStore(archive)
    runs = list(read_runs(store))
    assert sorted((r["job"], r["exit_reason"], r["exit_code"]) for r in runs) == [
        ("alpha", "shutdown", 0), ("beta", "shutdown", 0)]
    assert {r["crawl_id"] for r in runs} == {m["crawl_id"] for m in manifests}
    for r in runs:
        assert r["counts"]["responses"] > 0 and r["start"] <= r["end"]

    listing = run_cli("ls", "-c", str(config), timeout=60)
    assert listing.returncode == 0, listing.stderr
    for r in runs:
        line = next(x for x in listing.stdout.splitlines() if x.startswith(r["job"] + " "))
        assert r["crawl_id"] in line and "shutdown" in line


def test_once_runs_due_outlets_into_s3_and_records_each_run(tmp_path: Path, outlet, s3,
                                                            bucket: str, monkeypatch) -> None:
    # a yearly schedule: never-run outlets are due now, and then not again this year
    config = schedule_config(tmp_path / "outlets.toml", outlet.url, f"s3://{bucket}/news",
                             ("0 0 1 1 *", "0 0 1 1 *"), endpoint=s3.endpoint_url)
    first = run_cli("schedule", "-c", str(config), "--once", env=s3_env(s3))
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("crawl started") == 2

    for name, value in s3_env(s3).items():
        monkeypatch.setenv(name, value)
    store = S3Store(f"s3://{bucket}/news", ArchiveConfig(endpoint_url=s3.endpoint_url,
                                                         addressing_style="path"))
    runs = list(read_runs(store))
    assert sorted(r["job"] for r in runs) == ["alpha", "beta"]
    assert {r["exit_reason"] for r in runs} == {"finished"}
    for r in runs:
        assert store.stat(f"crawls/{r['crawl_id']}/manifest.json") is not None

    again = run_cli("schedule", "-c", str(config), "--once", env=s3_env(s3))
    assert again.returncode == 0, again.stderr
    assert "crawl started" not in again.stderr
    assert again.stderr.count("not due") == 2
    assert len(list(read_runs(store))) == 2


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> ArchiveStore:
    if request.param == "local":
        return LocalStore(tmp_path / "archive")
    s3 = request.getfixturevalue("s3")
    bucket = request.getfixturevalue("bucket")
    for name, value in s3_env(s3).items():
        monkeypatch.setenv(name, value)
    return S3Store(f"s3://{bucket}/a", ArchiveConfig(endpoint_url=s3.endpoint_url,
                                                     addressing_style="path"))


def test_conditional_write_refuses_a_stale_writer(store: ArchiveStore) -> None:
    store.put_bytes_if("state/x", b"one\n", None)
    with pytest.raises(PreconditionFailed):
        store.put_bytes_if("state/x", b"other\n", None)  # it exists now
    data, etag = store.get_versioned("state/x")
    store.put_bytes_if("state/x", data + b"two\n", etag)
    with pytest.raises(PreconditionFailed):
        store.put_bytes_if("state/x", data + b"stale\n", etag)  # read before "two" was added
    assert store.get_versioned("state/x")[0] == b"one\ntwo\n"
    assert [o.key for o in store.list("state/")] == ["state/x"]


def test_concurrent_appends_all_land(store: ArchiveStore) -> None:
    threads = [threading.Thread(target=append_run, args=(store, {"crawl_id": f"c{i}"}))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["crawl_id"] for r in read_runs(store)) == [f"c{i}" for i in range(6)]
    assert store.get_versioned(RUNS_KEY)[0].count(b"\n") == 6
