"""A hostile disk: manifests a power cut left empty or torn, and names that would write outside
the archive or be read as options."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Outlet, crawl_local, run_cli, write_config


def one_line_failure(result: subprocess.CompletedProcess[str], starts: str) -> str:
    """The command failed with one line that starts with `starts`, and no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("newsarchive:")]
    assert len(lines) == 1 and lines[0].startswith(starts), result.stderr[-3000:]
    assert result.stderr.rstrip().endswith(lines[0])
    return lines[0]


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
