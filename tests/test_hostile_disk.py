"""A hostile disk: a spool that fills mid-crawl, manifests a power cut left empty or torn, and
names that would write outside the archive or be read as options."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.jobs.demo import OutletServer
from tests.conftest import Outlet, crawl_local, run_cli, write_config

PAGES = 60  # ~90 KB each on the wire, incompressible: ~5.5 MB for a 3 MB disk


def big_site(root: Path) -> Path:
    """An outlet whose articles carry ~90 KB of random data (gzip cannot shrink them)."""
    rnd = random.Random(7)
    links = []
    for i in range(PAGES):
        path = root / "news" / "2025" / f"story-{i}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f'<html lang="en"><head><title>Story {i}</title>'
            f'<meta property="og:type" content="article"></head><body><article><h1>Story {i}'
            f'</h1><p>{"The council approved the city budget after a long debate. " * 20}</p>'
            f'<p>Story number {i}.</p></article><div hidden>'
            f'{b64encode(rnd.randbytes(68_000)).decode()}</div></body></html>', "utf-8")
        links.append(f'<li><a href="/news/2025/story-{i}.html">Story {i}</a></li>')
    (root / "index.html").write_text(f"<html><body><ul>{''.join(links)}</ul></body></html>")
    return root


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def one_line_failure(result: subprocess.CompletedProcess[str], starts: str) -> str:
    """The command failed with one line that starts with `starts`, and no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("newsarchive:")]
    assert len(lines) == 1 and lines[0].startswith(starts), result.stderr[-3000:]
    assert result.stderr.rstrip().endswith(lines[0])
    return lines[0]


def read_to_end(path: Path) -> int:
    """warcio reads every record of the WARC, content included, to the end of the file."""
    records = 0
    with open(path, "rb") as f:
        for record in ArchiveIterator(f):
            record.content_stream().read()
            records += 1
        assert f.read() == b""
    return records


def test_disk_fills_mid_crawl_then_frees(tmp_path: Path, small_disk: Path) -> None:
    archive = small_disk / "archive"
    config = tmp_path / "outlets.toml"
    with OutletServer(big_site(tmp_path / "www")) as server:
        write_config(config, server.url, str(archive), name="big",
                     extra_outlet="autothrottle = false")
        full = run_cli("crawl", "-c", str(config))
        message = one_line_failure(full, "newsarchive: disk full writing to ")
        assert "crawl big-" in message and " stopped" in message

        # what the full disk left ends at a record boundary, and what it committed verifies
        warcs = sorted(archive.rglob("*.warc.gz*"))
        assert warcs and sum(read_to_end(w) for w in warcs) > 1
        committed = list((archive / "crawls").glob("*/manifest.json"))
        if committed:
            assert "committed" in message
            verified = run_cli("verify", "--archive", str(archive))
            assert verified.returncode == 0, verified.stdout + verified.stderr
        else:
            assert "--resume" in message

        # space comes back: the crawl completes (resumed, or the next one) and verifies
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        again = run_cli("crawl", "-c", str(config), *([] if committed else ["--resume"]))
        assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    verified = run_cli("verify", "--archive", str(archive))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert list((archive / "crawls").glob("*/manifest.json"))
    dump = run_cli("dump", "--archive", str(archive), "--no-dedup")
    assert dump.returncode == 0, dump.stderr
    urls = {json.loads(line)["url"] for line in dump.stdout.splitlines()}
    assert urls == {f"{server.url.rstrip('/')}/news/2025/story-{i}.html" for i in range(PAGES)}


@pytest.mark.parametrize("damage", ["empty", "torn"])
def test_broken_manifest_is_reported_not_fatal(outlet: Outlet, tmp_path: Path,
                                               damage: str) -> None:
    crawl = crawl_local(outlet, tmp_path)
    broken_id = "broken-" + crawl["crawl_id"].rsplit("-", 1)[1]
    broken = crawl["dir"].parent / broken_id
    shutil.copytree(crawl["dir"], broken)
    manifest = (broken / "manifest.json").read_bytes()
    (broken / "manifest.json").write_bytes(b"" if damage == "empty"
                                           else manifest[: len(manifest) // 2])
    archive = str(crawl["archive"])

    ls = run_cli("ls", "--archive", archive)
    assert ls.returncode == 0 and "Traceback" not in ls.stderr, ls.stdout + ls.stderr
    assert f"{crawl['crawl_id']}" in ls.stdout
    rows = [line for line in ls.stdout.splitlines() if line.startswith(broken_id)]
    assert len(rows) == 1 and "BROKEN" in rows[0], ls.stdout
    notes = [line for line in ls.stdout.splitlines() if line.startswith("BROKEN:")]
    assert len(notes) == 1 and f"{broken_id}/manifest.json" in notes[0], ls.stdout

    dump = run_cli("dump", "--archive", archive, "--no-dedup")
    assert dump.returncode == 0 and "Traceback" not in dump.stderr, dump.stderr
    records = [json.loads(line) for line in dump.stdout.splitlines()]
    assert records and {r["crawl_id"] for r in records} == {crawl["crawl_id"]}
    warnings = [line for line in dump.stderr.splitlines() if broken_id in line]
    assert len(warnings) == 1 and "manifest" in warnings[0], dump.stderr

    named = run_cli("dump", "--archive", archive, "--crawl", broken_id)
    one_line_failure(named, f"newsarchive: crawl {broken_id}: ")


def test_job_name_outside_the_archive_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "outlets.toml", "http://127.0.0.2:9/",
                          str(tmp_path / "a" / "b" / "archive"))
    result = run_cli("crawl", "-c", str(config), "--job", "../../x")
    one_line_failure(result, "newsarchive: job name '../../x' must match ")
    assert not (tmp_path / "a" / "b" / "archive").exists()
    assert not list(tmp_path.rglob("x-*"))


@pytest.mark.parametrize("name", ["--recheck", "foo\\n", "-x"])
def test_outlet_names_read_as_options_are_refused(tmp_path: Path, name: str) -> None:
    config = write_config(tmp_path / "outlets.toml", "http://127.0.0.2:9/",
                          str(tmp_path / "archive"), name=name)
    for command in (["crawl"], ["schedule", "--once"]):
        result = run_cli(*command, "-c", str(config))
        line = one_line_failure(result, f"newsarchive: {config}: outlets[0].name: ")
        assert "must match [a-z0-9][a-z0-9_-]*" in line
    assert not (tmp_path / "archive").exists()
