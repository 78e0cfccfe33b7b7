"""One crawl job run by three worker processes sharing a real redis-server: every article
archived exactly once, one manifest, the job-wide request rate; a worker killed with SIGKILL
mid-crawl and Redis stopped mid-crawl lose nothing; what pages load is captured once for the
whole crawl, and ls, dump and export-wacz see one crawl."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.jobs.demo import OutletRequestHandler, OutletServer
from tests.conftest import NEWSARCHIVE, ROOT, run_cli
from tests.redisserver import RedisServer, free_port

MAKE_SITE = ROOT.parent / "shared" / "benchmarks" / "site" / "make_site.py"
WORKERS = 3


class RecordingHandler(OutletRequestHandler):
    """Serves the outlet and notes when each request arrived."""

    arrivals: list[tuple[float, str]] = []
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        with self.lock:
            self.arrivals.append((time.monotonic(), self.path))
        super().do_GET()


class Site:
    """A generated outlet; with `cdn`, its pages load a stylesheet, font, script and favicon
    from it and their images from a CDN on 127.0.0.2."""

    def __init__(self, root: Path, articles: int, *, cdn: bool = False) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.cdn = f"http://127.0.0.2:{free_port()}" if cdn else None
        subprocess.run([sys.executable, str(MAKE_SITE), "--out", str(root), "--articles",
                        str(articles), "--base-url", self.base,
                        *(["--requisites", "--cdn-url", self.cdn] if self.cdn else [])],
                       check=True, stdout=subprocess.DEVNULL)
        self.root = root
        self.truth = {json.loads(line)["url"] for line in
                      (root / "ground_truth.jsonl").read_text("utf-8").splitlines()}


@pytest.fixture(scope="module")
def big_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return Site(tmp_path_factory.mktemp("cluster") / "site", 2000)


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return Site(tmp_path_factory.mktemp("cluster") / "site", 600)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", persist=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def serve(site: Site) -> OutletServer:
    RecordingHandler.arrivals = []
    return OutletServer(site.root / "www", port=site.port, handler=RecordingHandler)


def write_config(tmp_path: Path, site: Site, redis: RedisServer, *, delay: float = 0,
                 warc_max_size: str = "1MB") -> Path:
    # without a CDN of its own, its pages load images from img.cdn.invalid: no lookups outside
    requisites = "true" if site.cdn else "false"
    config = tmp_path / "outlets.toml"
    config.write_text(f"""
[archive]
uri = "{tmp_path / 'archive'}"
[cluster]
redis = "{redis.url}"
lease_timeout = 3
[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"
autothrottle = false
concurrency = 4
delay = {delay}
warc_max_size = "{warc_max_size}"
[[outlets]]
name = "bench"
sitemaps = ["{site.base}/sitemap.xml"]
allow = ['/news/']
requisites = {requisites}
""")
    return config


def start_workers(config: Path, n: int = WORKERS) -> list[subprocess.Popen[str]]:
    return [subprocess.Popen([NEWSARCHIVE, "crawl", "-c", str(config)], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=os.environ.copy()) for _ in range(n)]


def finish(workers: list[subprocess.Popen[str]], timeout: float = 300
           ) -> list[tuple[int, str, str]]:
    """Each worker's exit code, stdout and stderr, once it has exited."""
    outputs = [w.communicate(timeout=timeout) for w in workers]
    return [(w.returncode, *output) for w, output in zip(workers, outputs, strict=True)]


def the_crawl(archive: Path) -> Path:
    (crawl,) = (archive / "crawls").iterdir()
    return crawl


def responses(warcs: list[Path]) -> Counter:
    """Response (and revisit) records per URL in these WARCs."""
    found: Counter = Counter()
    for path in warcs:
        with open(path, "rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type in ("response", "revisit"):
                    found[record.rec_headers.get_header("WARC-Target-URI")] += 1
    return found


def listed(archive: Path, manifest: dict[str, Any], kind: str) -> list[Path]:
    return [archive / e["key"] for e in manifest["files"] if e["kind"] == kind]


def text_urls(paths: list[Path]) -> Counter:
    urls: Counter = Counter()
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            urls.update(json.loads(line)["url"] for line in f)
    return urls


def worker_of(key: str, crawl_id: str) -> str:
    """``crawls/ID/warc/ID-00003-host-1234.warc.gz`` -> ``host-1234``."""
    return key.rsplit("/", 1)[-1].removeprefix(crawl_id + "-").split("-", 1)[1].split(".")[0]


def pages(counts: Counter) -> Counter:
    """The outlet's pages, without each worker's own robots.txt."""
    return Counter({u: n for u, n in counts.items() if not u.endswith("/robots.txt")})


def test_three_workers_archive_each_article_once_at_the_jobs_rate(
        tmp_path: Path, big_site: Site, redis: RedisServer) -> None:
    delay = 0.04  # 25 requests/s for the job: three workers alone would go faster here
    config = write_config(tmp_path, big_site, redis, delay=delay)
    with serve(big_site):
        results = finish(start_workers(config))
    for code, _, err in results:
        assert code == 0, err[-3000:]
    archive = tmp_path / "archive"
    crawl = the_crawl(archive)
    manifests = list(archive.glob("crawls/*/manifest.json"))
    assert manifests == [crawl / "manifest.json"]
    manifest = json.loads(manifests[0].read_text())
    # one crawl, written by three workers, every WARC of it in the manifest
    warcs = listed(archive, manifest, "warc")
    assert sorted(warcs) == sorted((crawl / "warc").iterdir())
    assert len({worker_of(e["key"], crawl.name) for e in manifest["files"]}) == WORKERS
    assert sum("the manifest is written by the last worker" in out for _, out, _ in results) \
        == WORKERS - 1
    # every page once across all workers' WARCs, every article's text once
    captured = pages(responses(warcs))
    assert set(captured) >= big_site.truth
    assert max(captured.values()) == 1, [u for u, n in captured.items() if n > 1][:5]
    texts = text_urls(listed(archive, manifest, "text"))
    assert set(texts) == big_site.truth and max(texts.values()) == 1
    assert manifest["counts"]["text_records"] == len(big_site.truth)
    verify = run_cli("verify", "-c", str(config))
    assert verify.returncode == 0, verify.stdout[-2000:]
    # the outlet's delay holds for the job as a whole: its requests are spaced by it (a
    # worker's own slot would let three workers send three times as many). Measured where the
    # server receives them: a worker's send may lag its turn a little on a busy machine, so
    # the rate is checked over 5-second windows, the spacing on the median.
    times = sorted(t for t, path in RecordingHandler.arrivals if path != "/robots.txt")
    assert len(times) == sum(captured.values())
    busiest = max(sum(1 for u in times[i:i + 1000] if u < t + 5.0)
                  for i, t in enumerate(times))
    assert busiest <= 5 / delay * 1.05 + 4, f"{busiest} requests in 5 seconds"
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    assert gaps[len(gaps) // 2] >= delay * 0.9
    assert times[-1] - times[0] >= (len(times) - 1) * delay * 0.95


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def delivered_warcs(archive: Path) -> list[Path]:
    return sorted(archive.glob("crawls/*/warc/*.warc.gz"))


def test_a_worker_killed_mid_crawl_loses_nothing(
        tmp_path: Path, small_site: Site, redis: RedisServer) -> None:
    config = write_config(tmp_path, small_site, redis, warc_max_size="300KB")
    archive = tmp_path / "archive"
    with serve(small_site):
        workers = start_workers(config)
        victim = workers[0]
        mine = f"-{victim.pid}"

        def victim_shards() -> list[str]:
            """Basenames of the shards whose three files the victim delivered (text last)."""
            return [p.name.split(".")[0] for p in archive.glob("crawls/*/text/*.jsonl.gz")
                    if p.name.split(".")[0].endswith(mine)]

        def victim_mid_shard() -> bool:
            """A shard delivered, and captures in the WARC it is writing now."""
            return bool(victim_shards()) and any(
                p.stat().st_size > 20_000 for p in archive.glob(
                    f".spool/crawls/*/warc/*{mine}.warc.gz.open"))

        wait_for(victim_mid_shard, 120, "the first worker's first delivered shard and the next")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_files = {str(p.relative_to(archive)) for p in archive.glob("crawls/*/*/*")
                        if p.name.split(".")[0] in victim_shards()}
        results = finish(workers[1:])
    for code, _, err in results:
        assert code == 0, err[-3000:]
    crawl = the_crawl(archive)
    manifest = json.loads((crawl / "manifest.json").read_text())
    keys = {e["key"] for e in manifest["files"]}
    assert killed_files and killed_files <= keys  # the killed worker's delivered files
    captured = pages(responses(listed(archive, manifest, "warc")))
    # every article once (its text); a page is fetched twice only when the killed worker had
    # captured it without its text or links being safely in the archive
    texts = text_urls(listed(archive, manifest, "text"))
    assert set(texts) == small_site.truth and max(texts.values()) == 1
    assert set(captured) >= small_site.truth
    survivors = pages(responses([p for p in listed(archive, manifest, "warc")
                                 if not p.name.split(".")[0].endswith(mine)]))
    assert max(survivors.values()) == 1, [u for u, n in survivors.items() if n > 1][:5]
    # what it had captured in the WARC it was writing was fetched again by the others
    (left_open,) = archive.glob(f".spool/crawls/*/warc/*{mine}.warc.gz.open")
    unfinished = set()
    with open(left_open, "rb") as f, suppress(Exception):  # its last record may be torn
        for record in ArchiveIterator(f):
            if record.rec_type == "response":
                unfinished.add(record.rec_headers.get_header("WARC-Target-URI"))
    assert unfinished and unfinished <= set(captured)
    assert run_cli("verify", "-c", str(config)).returncode == 0


def test_redis_stopped_mid_crawl_loses_nothing_and_a_rerun_completes(
        tmp_path: Path, small_site: Site, redis: RedisServer) -> None:
    config = write_config(tmp_path, small_site, redis, warc_max_size="300KB")
    archive = tmp_path / "archive"
    with serve(small_site):
        workers = start_workers(config)
        wait_for(lambda: len(delivered_warcs(archive)) >= 3, 120, "three delivered WARCs")
        redis.stop()
        results = finish(workers, timeout=120)
        # every worker stops on its own and says why, in one line
        for code, _, err in results:
            assert code == 1
            last = err.strip().splitlines()[-1]
            assert last.startswith("newsarchive: lost Redis at " + redis.url), err[-2000:]
            assert "is not complete: start the workers again" in last
        # what they captured is closed and in the archive: nothing open, nothing left behind
        assert not list((archive / ".spool").glob("crawls/**/*.open"))
        first_run = {p.name for p in delivered_warcs(archive)}
        captured_before = pages(responses(delivered_warcs(archive)))
        assert not (archive / "crawls" / the_crawl(archive).name / "manifest.json").exists()
        # Redis back (with its data), the workers again: the same crawl completes
        redis.start()
        results = finish(start_workers(config))
    for code, _, err in results:
        assert code == 0, err[-3000:]
    crawl = the_crawl(archive)
    manifest = json.loads((crawl / "manifest.json").read_text())
    warcs = listed(archive, manifest, "warc")
    assert first_run <= {p.name for p in warcs}
    captured = pages(responses(warcs))
    assert set(captured) >= small_site.truth | set(captured_before)
    texts = text_urls(listed(archive, manifest, "text"))
    assert set(texts) == small_site.truth
    assert run_cli("verify", "-c", str(config)).returncode == 0


@pytest.fixture(scope="module")
def cdn_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return Site(tmp_path_factory.mktemp("cluster") / "site", 300, cdn=True)


def test_two_workers_capture_what_the_pages_load_once_for_the_whole_crawl(
        tmp_path: Path, cdn_site: Site, redis: RedisServer) -> None:
    config = write_config(tmp_path, cdn_site, redis)
    assert cdn_site.cdn is not None
    cdn_host, cdn_port = cdn_site.cdn.removeprefix("http://").split(":")
    with serve(cdn_site), OutletServer(cdn_site.root / "cdn", port=int(cdn_port),
                                       host=cdn_host):
        results = finish(start_workers(config, 2))
    for code, _, err in results:
        assert code == 0, err[-3000:]
    archive = tmp_path / "archive"
    manifest = json.loads((the_crawl(archive) / "manifest.json").read_text())
    warcs = listed(archive, manifest, "warc")
    assert len({worker_of(p.name, the_crawl(archive).name) for p in warcs}) == 2
    captured = pages(responses(warcs))
    # what the pages load (src attributes, stylesheet and icon links, the stylesheet's url()s;
    # not a preconnect's origin nor the logo their JSON-LD names), each fetched once by one of
    # the two workers: the shared frontier decides a requisite for the whole crawl
    www = cdn_site.root / "www"
    reference = re.compile(
        r'(?:src|rel="(?:stylesheet|icon)" href)="((?:/static/|http://127\.0\.0\.2)[^"]+)"')
    named = {m for page in www.rglob("*.html") for m in reference.findall(page.read_text())}
    named |= set(re.findall(r"url\(([^)]+)\)", (www / "static" / "site.css").read_text()))
    loaded = {cdn_site.base + url if url.startswith("/") else url for url in named}
    assert len(loaded) > 300
    assert loaded <= set(captured), sorted(loaded - set(captured))[:5]
    assert max(captured.values()) == 1, [u for u, n in captured.items() if n > 1][:5]
    texts = text_urls(listed(archive, manifest, "text"))
    assert set(texts) == cdn_site.truth and max(texts.values()) == 1
    assert run_cli("verify", "-c", str(config)).returncode == 0
    # the readers see one crawl, whatever the number of workers that wrote it
    crawl_id = the_crawl(archive).name
    listing = run_cli("ls", "-c", str(config)).stdout
    (row,) = [line for line in listing.splitlines() if line.startswith(crawl_id)]
    assert row.split()[1:4] == ["complete", str(sum(responses(warcs).values())), "300"], listing
    dumped = run_cli("dump", "-c", str(config)).stdout.splitlines()
    assert sorted(json.loads(line)["url"] for line in dumped) == sorted(cdn_site.truth)
    exported = run_cli("export-wacz", "-c", str(config), "--crawl", crawl_id,
                       "-o", str(tmp_path / "crawl.wacz"))
    assert exported.returncode == 0, exported.stderr
    with zipfile.ZipFile(tmp_path / "crawl.wacz") as package:
        packaged = {json.loads(line.split(b" ", 2)[2])["url"]
                    for line in package.read("indexes/index.cdxj").splitlines()}
        assert {n.removeprefix("archive/") for n in package.namelist()
                if n.startswith("archive/")} == {p.name for p in warcs}
    assert loaded | cdn_site.truth <= packaged
