"""Fixtures: real servers on 127.0.0.1 (fixture outlets over HTTP, SeaweedFS for S3) and the real
`newsarchive` command run in a subprocess, as a user runs it."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crawler.jobs.demo import SAMPLE_SITE, OutletRequestHandler, OutletServer
from tests.s3server import S3Server

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = json.loads((ROOT / "tests/fixtures/sample_site_expected.json").read_text("utf-8"))
NEWSARCHIVE = str(Path(sys.executable).parent / "newsarchive")


class FixtureHandler(OutletRequestHandler):
    """The sample outlet plus the awkward exchanges an archive must record faithfully."""

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        if self.path.startswith("/special/chunked.html"):
            body = ("<html lang='en'><head><title>Chunked</title></head><body><p>"
                    + "Chunked body. " * 50 + "</p></body></html>").encode()
            self.send_response(200, "Fine Thanks")
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Set-Cookie", "a=1; Path=/")
            self.send_header("X-Trace", "first")
            self.send_header("Set-Cookie", "b=2; Path=/")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 300):
                chunk = body[start:start + 300]
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        super().do_GET()


@dataclass
class Outlet:
    root: Path
    url: str


def make_fixture_site(root: Path) -> Path:
    """The bundled sample outlet, plus a redirect, a 404, a query URL and a chunked page."""
    shutil.copytree(SAMPLE_SITE, root)
    index = root / "index.html"
    extra = ('<ul id="test-links"><li><a href="/ru">ru (redirects)</a></li>'
             '<li><a href="/missing.html">missing</a></li>'
             '<li><a href="/uk/?section=ai&amp;page=2">uk page 2</a></li>'
             '<li><a href="/special/chunked.html">chunked</a></li></ul></body>')
    index.write_text(index.read_text("utf-8").replace("</body>", extra, 1), "utf-8")
    return root


@pytest.fixture(scope="session")
def outlet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outlet]:
    root = make_fixture_site(tmp_path_factory.mktemp("outlet") / "www")
    with OutletServer(root, handler=FixtureHandler) as server:
        yield Outlet(root, server.url)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3: S3Server) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    return name


def write_config(path: Path, outlet_url: str, archive: str, *, extra_archive: str = "",
                 extra_outlet: str = "", name: str = "techwire") -> Path:
    path.write_text(f"""
[archive]
uri = "{archive}"
{extra_archive}

[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"

[[outlets]]
name = "{name}"
start_urls = ["{outlet_url}"]
allow = ['/news/\\d{{4}}/']
language = "ru"
{extra_outlet}
""", "utf-8")
    return path


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NEWSARCHIVE, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def s3_archive(s3: S3Server, spool: Path, extra: str = "") -> str:
    """``[archive]`` lines for the S3 test server, with a spool of the test's own."""
    return (f'endpoint_url = "{s3.endpoint_url}"\naddressing_style = "path"\n'
            f'spool = "{spool}"\n{extra}')


def s3_env(s3: S3Server) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "AWS_DEFAULT_REGION": s3.region}


def crawl_local(outlet: Outlet, work: Path) -> dict[str, Any]:
    """Crawl the fixture outlet into `work`/archive; the crawl's archive, directory, id and
    manifest."""
    archive = work / "archive"
    result = run_cli("crawl", "-c", str(write_config(work / "outlets.toml", outlet.url,
                                                     str(archive))))
    assert result.returncode == 0, result.stderr + result.stdout
    (crawl_dir,) = (archive / "crawls").iterdir()
    return {"archive": archive, "dir": crawl_dir, "crawl_id": crawl_dir.name,
            "manifest": json.loads((crawl_dir / "manifest.json").read_text())}


def crawl_s3(outlet: Outlet, s3: S3Server, work: Path, uri: str) -> Path:
    """Crawl the fixture outlet into the S3 archive `uri` (its bucket exists); the config."""
    config = write_config(work / "outlets.toml", outlet.url, uri,
                          extra_archive=s3_archive(s3, work / "spool"))
    result = run_cli("crawl", "-c", str(config), env=s3_env(s3))
    assert result.returncode == 0, result.stderr + result.stdout
    return config


def read_text_shards(paths: list[Path]) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            records.extend(json.loads(line) for line in f)
    return records
