"""A bad config is refused before any fetch, with one line naming the file, key and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.config import load_config, parse_size
from crawler.errors import ConfigError
from tests.conftest import run_cli

GOOD = """
[archive]
uri = "s3://news-archive/v1"
endpoint_url = "http://127.0.0.1:9000"

[crawl]
user_agent = "newsarchive/0.1 (+https://example.org/contact)"
max_pages = 100
warc_max_size = "1GB"

[[outlets]]
name = "serverflow"
start_urls = ["https://example.org/blog/"]
feeds = ["https://example.org/rss"]
allow = ["/blog/"]
deny = ["/tag/", "/page/"]
language = "ru"
schedule = "0 */6 * * *"
prune = [".comments", ".price-list"]
max_pages = 5
"""


def test_good_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "outlets.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.archive.uri == "s3://news-archive/v1"
    (outlet,) = config.outlets
    assert outlet.crawl.max_pages == 5  # outlet override
    assert outlet.crawl.warc_max_size == 1_000_000_000  # inherited from [crawl]
    assert outlet.crawl.user_agent.startswith("newsarchive/0.1")
    assert outlet.deny == ("/tag/", "/page/")
    assert outlet.domains == ("example.org",)
    assert outlet.crawl.recheck == (3600, 6 * 3600, 86400, 7 * 86400)  # the default policy
    assert config.cluster.redis is None  # a crawl runs alone unless [cluster] names a Redis


@pytest.mark.parametrize(("change", "key", "problem"), [
    (("[crawl]", "[crawl]\nmax_page = 3"), "crawl.max_page", "unknown key"),
    (('name = "serverflow"', 'name = "serverflow"\ncolour = "red"'), "outlets[0].colour",
     "unknown key"),
    (("max_pages = 100", 'max_pages = "many"'), "crawl.max_pages", "expected an integer"),
    (('allow = ["/blog/"]', 'allow = ["/blog/(("]'), "outlets[0].allow[0]", "invalid regex"),
    (('name = "serverflow"', 'name = "Server Flow"'), "outlets[0].name", "must match"),
    (('start_urls = ["https://example.org/blog/"]', 'start_urls = ["ftp://example.org/"]'),
     "outlets[0].start_urls[0]", "not an http(s) URL"),
    (('warc_max_size = "1GB"', 'warc_max_size = "big"'), "crawl.warc_max_size", "not a size"),
    (('prune = [".comments", ".price-list"]', 'prune = ["div[["]'), "outlets[0].prune[0]",
     "invalid CSS selector"),
    (('uri = "s3://news-archive/v1"', "uri = 5"), "archive.uri", "expected a non-empty string"),
    (("max_pages = 100", 'max_pages = 100\nrecheck = ["1h", "soon"]'), "crawl.recheck",
     "'soon' is not a duration"),
    (('name = "serverflow"', 'name = "serverflow"\nrecheck = ["1d", "6h"]'),
     "outlets[0].recheck", "durations must grow"),
    # patterns are searched in the whole URL: one anchored at the path's start never matches
    (('allow = ["/blog/"]', 'allow = ["^/blog/"]'), "outlets[0].allow[0]",
     "'^/blog/' can never match: patterns are searched in the whole URL (https://host/path...)"
     ", so one anchored at '^/' matches nothing; write '/blog/', or '^https?://[^/]+/blog/'"),
    (('deny = ["/tag/", "/page/"]', "deny = [\"/tag/\", '^\\/page/']"), "outlets[0].deny[1]",
     "can never match"),
    (("[crawl]", "[health]\nshare_jump = 30\n\n[crawl]"), "health.share_jump",
     "expected a fraction up to 1, got 30"),
    (("[crawl]", "[health]\nmin_history = 0\n\n[crawl]"), "health.min_history",
     "must be at least 1"),
    (("[crawl]", "[health]\nshort = 5\n\n[crawl]"), "health.short", "unknown key"),
    (("[crawl]", '[cluster]\nredis = "http://127.0.0.1:6379"\n[crawl]'), "cluster.redis",
     "is not a Redis URL"),
    (("[crawl]", '[cluster]\nredis = "redis://r:6379/0"\nlease_timeout = 0\n[crawl]'),
     "cluster.lease_timeout", "expected a positive number"),
    (("[crawl]", '[cluster]\nredis_url = "redis://r:6379/0"\n[crawl]'), "cluster.redis_url",
     "unknown key"),
])
def test_bad_config_names_file_key_and_problem(tmp_path: Path, change: tuple[str, str],
                                               key: str, problem: str) -> None:
    path = tmp_path / "outlets.toml"
    path.write_text(GOOD.replace(*change, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}: ")
    assert problem in message
    assert "\n" not in message


def test_duplicate_outlet_name(tmp_path: Path) -> None:
    path = tmp_path / "outlets.toml"
    path.write_text(GOOD + GOOD[GOOD.index("[[outlets]]"):])
    with pytest.raises(ConfigError, match=r"outlets\[1\]\.name: duplicate outlet name"):
        load_config(path)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "outlets.toml"
    path.write_text("[archive\nuri = 1")
    with pytest.raises(ConfigError, match=r"outlets\.toml: invalid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_cli_refuses_bad_config_before_any_fetch(tmp_path: Path) -> None:
    path = tmp_path / "outlets.toml"
    # the start URL points at a port nobody listens on: a fetch would show up as an error
    path.write_text(GOOD.replace('deny = ["/tag/", "/page/"]', 'deny = ["(unclosed"]'))
    result = run_cli("crawl", "-c", str(path), "--archive", str(tmp_path / "archive"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"newsarchive: {path}: outlets[0].deny[0]: invalid regex '(unclosed': missing ), "
        "unterminated subpattern at position 0"]
    assert not (tmp_path / "archive").exists()


def test_unknown_outlet_on_command_line(tmp_path: Path) -> None:
    path = tmp_path / "outlets.toml"
    path.write_text(GOOD)
    result = run_cli("crawl", "nosuch", "-c", str(path))
    assert result.returncode == 1
    assert "no outlet named 'nosuch' (known: serverflow)" in result.stderr


def test_sizes() -> None:
    assert parse_size("1GB") == 1_000_000_000
    assert parse_size("64MiB") == 64 * 1024 * 1024
    assert parse_size("500 kb") == 500_000
    assert parse_size(1234) == 1234
    with pytest.raises(ValueError):
        parse_size("0MB")
