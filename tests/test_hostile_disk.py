"""Names that would write outside the archive or be read as options."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_config


def one_line_failure(result: subprocess.CompletedProcess[str], starts: str) -> str:
    """The command failed with one line that starts with `starts`, and no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("newsarchive:")]
    assert len(lines) == 1 and lines[0].startswith(starts), result.stderr[-3000:]
    assert result.stderr.rstrip().endswith(lines[0])
    return lines[0]


def test_job_name_outside_the_archive_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "outlets.toml", "http://127.0.0.2:9/",
                          str(tmp_path / "a" / "b" / "archive"))
    result = run_cli("crawl", "-c", str(config), "--job", "../../x")
    one_line_failure(result, "newsarchive: job name '../../x' must be ")
    assert not (tmp_path / "a" / "b" / "archive").exists()
    assert not list(tmp_path.rglob("x-*"))


@pytest.mark.parametrize("name", ["--recheck", "foo\\n", "-x"])
def test_outlet_names_read_as_options_are_refused(tmp_path: Path, name: str) -> None:
    config = write_config(tmp_path / "outlets.toml", "http://127.0.0.2:9/",
                          str(tmp_path / "archive"), name=name)
    for command in (["crawl"], ["schedule", "--once"]):
        result = run_cli(*command, "-c", str(config))
        line = one_line_failure(result, f"newsarchive: {config}: outlets[0].name: ")
        assert "must be a-z, 0-9" in line
    assert not (tmp_path / "archive").exists()
