"""Load and validate the TOML config (`[archive]`, `[crawl]`, `[[outlets]]`).

Everything is checked before any fetch: a bad file is refused with one line that names the file,
the key and what is wrong, so an unattended job fails loudly at start rather than mid-crawl.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.errors import ConfigError

DEFAULT_CONFIG_NAME = "newsarchive.toml"
DEFAULT_ARCHIVE_URI = "./archive"
_CONTACT = re.compile(r"https?://\S+|\S+@\S+\.\w+")
# A name becomes a path segment and a command-line argument (the scheduler runs
# `newsarchive crawl NAME`): never a leading '-', never a newline (hence fullmatch, not `$`).
OUTLET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
NAME_RULE = "must match [a-z0-9][a-z0-9_-]* (a-z, 0-9, '_', '-'; a letter or digit first)"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)


def parse_size(value: int | str) -> int:
    """Bytes from an int or a string such as "1GB", "500 MB", "64MiB"."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 1GB or a number of bytes")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("must be positive")
        return value
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a size such as 1GB, 500MB or 1048576")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    base = 1024 if "i" in unit else 1000
    power = "bkmgt".index(unit[0]) if unit else 0
    size = int(number * base**power)
    if size <= 0:
        raise ValueError("must be positive")
    return size


@dataclass(frozen=True)
class ArchiveConfig:
    uri: str = DEFAULT_ARCHIVE_URI
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"
    spool: str | None = None
    multipart_threshold: int = 64 * 1024 * 1024
    max_attempts: int = 5


@dataclass(frozen=True)
class CrawlConfig:
    """Crawl defaults; every outlet may override them."""

    user_agent: str | None = None      # required, with a contact URL or address
    obey_robots: bool = True
    max_pages: int = 0                 # 0 = unlimited
    warc_max_size: int = 1_000_000_000
    download_timeout: float = 30.0
    # seconds one page's extraction may run before its worker is killed and the page counted
    # as an extraction failure (one extraction pool per crawl: the largest of its outlets')
    extract_timeout: float = 60.0
    depth: int = 2                     # link hops followed from start URLs (pagination: free)
    since: str | None = None           # skip feed/sitemap entries dated before this
    delay: float = 0.0                 # seconds between requests to one host (at least)
    concurrency: int = 2               # parallel requests to one host
    autothrottle: bool = True          # adapt the delay to the server's latency
    max_page_size: int = 20 * 1024 * 1024  # larger responses are cut off (after decoding too)
    allow_subdomains: bool = False
    max_query_variants: int = 50       # distinct query strings per path (trap guard)
    # entries read per feed or sitemap (the sitemaps protocol's limit); those past it are counted
    max_sitemap_entries: int = 50_000
    # re-check an archived article for edits this long after its first capture (seconds, each
    # point once; after the last, never): news is edited soon after publication, rarely later
    recheck: tuple[int, ...] = (3600, 6 * 3600, 86400, 7 * 86400)
    # what pages load to render (stylesheets, fonts, images, scripts, frames) is captured too,
    # from any host, up to requisite_hops transclusions (page -> stylesheet or frame -> font or
    # image); requisites_deny: regexes of requisite URLs never fetched (ad and tracking hosts)
    requisites: bool = True
    requisite_hops: int = 2
    requisites_deny: tuple[str, ...] = ()
    media: bool = True                 # video and audio bodies (posters are always fetched)
    requisite_max_size: int = 50 * 1024 * 1024  # larger requisites are not fetched, or cut off


@dataclass(frozen=True)
class HealthConfig:
    """When an outlet's extraction figures break from its own history (``[health]``)."""

    short_words: int = 50              # a text under this many words counts as short
    min_history: int = 3               # earlier crawls with articles before figures are judged
    min_articles: int = 10             # extracted articles a crawl needs for its shares to count
    share_jump: float = 0.3            # flag a share (no text, short, untitled, undated) this
                                       # much above the outlet's recent crawls (0.3: 30 points)
    words_drop: float = 0.5            # flag a median word count under this part of its history
    silent_days: float = 3.0           # flag an outlet with no new article for this many days
    silent_min_daily: float = 5.0      # ... that gave at least this many a day before


@dataclass(frozen=True)
class ClusterConfig:
    """``[cluster]``: the Redis that workers of one crawl job share (none: a crawl runs alone)."""

    redis: str | None = None           # redis://HOST:6379/0
    # seconds after a worker's last heartbeat when its leased requests go back to the frontier
    lease_timeout: float = 30.0


REDIS_SCHEMES = ("redis", "rediss", "unix")


def redis_url_problem(url: str) -> str | None:
    """Why `url` is no Redis URL, or None."""
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES or not (parts.netloc or parts.path):
        return f"{url!r} is not a Redis URL such as redis://127.0.0.1:6379/0"
    return None


@dataclass(frozen=True)
class OutletConfig:
    name: str
    start_urls: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    language: str | None = None
    schedule: str | None = None
    prune: tuple[str, ...] = ()
    body: str | None = None            # CSS selector of the article container, when needed
    crawl: CrawlConfig = field(default_factory=CrawlConfig)

    @property
    def domains(self) -> tuple[str, ...]:
        """Host names (with port) of the outlet's own URLs: the crawl stays inside them."""
        urls = (*self.start_urls, *self.feeds, *self.sitemaps)
        hosts = {urlsplit(u).netloc.lower() for u in urls}
        return tuple(sorted(hosts))


@dataclass(frozen=True)
class Config:
    source: str
    archive: ArchiveConfig
    crawl: CrawlConfig
    outlets: tuple[OutletConfig, ...]
    health: HealthConfig = field(default_factory=HealthConfig)
    cluster: ClusterConfig = ClusterConfig()

    def select(self, names: list[str] | tuple[str, ...]) -> tuple[OutletConfig, ...]:
        """The named outlets (all when none are named); an unknown name is a ConfigError."""
        if not names:
            return self.outlets
        by_name = {o.name: o for o in self.outlets}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            known = ", ".join(by_name) or "none"
            raise ConfigError(self.source, "outlets",
                              f"no outlet named {unknown[0]!r} (known: {known})")
        return tuple(by_name[n] for n in names)


class _Reader:
    """Type-checks one TOML table against a dataclass, naming keys by their dotted path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, key, problem)

    def table(self, data: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(key, f"expected a table, got {_type_name(data)}")
        for name in data:
            if name not in allowed:
                raise self.fail(f"{key}.{name}" if key else name,
                                f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return data

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {_type_name(value)}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_type_name(value)}")
        return value

    def integer(self, value: Any, key: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_type_name(value)}")
        if value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def number(self, value: Any, key: str, allow_zero: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (
                value == 0 and not allow_zero):
            raise self.fail(key, f"expected a positive number, got {value!r}")
        return float(value)

    def size(self, value: Any, key: str) -> int:
        try:
            return parse_size(value)
        except (TypeError, ValueError) as exc:
            raise self.fail(key, str(exc)) from None

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of strings, got {_type_name(value)}")
        return tuple(self.string(v, f"{key}[{i}]") for i, v in enumerate(value))

    def urls(self, value: Any, key: str) -> tuple[str, ...]:
        urls = self.strings(value, key)
        for i, url in enumerate(urls):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise self.fail(f"{key}[{i}]", f"{url!r} is not an http(s) URL")
        return urls

    def regexes(self, value: Any, key: str) -> tuple[str, ...]:
        """URL patterns: valid regexes that can match an absolute URL."""
        patterns = self.strings(value, key)
        for i, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.fail(f"{key}[{i}]", f"invalid regex {pattern!r}: {exc}") from None
            if re.match(r"\^\\?/", pattern):
                raise self.fail(f"{key}[{i}]", (
                    f"{pattern!r} can never match: patterns are searched in the whole URL "
                    f"(https://host/path...), so one anchored at '^/' matches nothing; write "
                    f"{pattern[1:]!r}, or '^https?://[^/]+{pattern[1:]}' to anchor it at the "
                    "path's start"))
        return patterns


_CRAWL_KEYS = {f.name for f in fields(CrawlConfig)}
_OUTLET_KEYS = {f.name for f in fields(OutletConfig) if f.name != "crawl"} | _CRAWL_KEYS


def _read_archive(r: _Reader, data: Any) -> ArchiveConfig:
    t = r.table(data, "archive", {f.name for f in fields(ArchiveConfig)})
    values: dict[str, Any] = {}
    for name in ("uri", "endpoint_url", "region", "spool"):
        if name in t:
            values[name] = r.string(t[name], f"archive.{name}")
    if "addressing_style" in t:
        style = r.string(t["addressing_style"], "archive.addressing_style")
        if style not in ("auto", "path", "virtual"):
            raise r.fail("archive.addressing_style",
                         f"expected auto, path or virtual, got {style!r}")
        values["addressing_style"] = style
    if "multipart_threshold" in t:
        values["multipart_threshold"] = r.size(t["multipart_threshold"],
                                               "archive.multipart_threshold")
    if "max_attempts" in t:
        values["max_attempts"] = r.integer(t["max_attempts"], "archive.max_attempts", minimum=1)
    if "endpoint_url" in values and not urlsplit(values["endpoint_url"]).scheme:
        raise r.fail("archive.endpoint_url", "expected a URL such as http://127.0.0.1:9000")
    return ArchiveConfig(**values)


def _read_cluster(r: _Reader, data: Any) -> ClusterConfig:
    t = r.table(data, "cluster", {f.name for f in fields(ClusterConfig)})
    values: dict[str, Any] = {}
    if "redis" in t:
        url = r.string(t["redis"], "cluster.redis")
        if problem := redis_url_problem(url):
            raise r.fail("cluster.redis", problem)
        values["redis"] = url
    if "lease_timeout" in t:
        values["lease_timeout"] = r.number(t["lease_timeout"], "cluster.lease_timeout")
    return ClusterConfig(**values)


def _read_crawl(r: _Reader, t: dict[str, Any], prefix: str, base: CrawlConfig) -> CrawlConfig:
    values: dict[str, Any] = {}
    if "user_agent" in t:
        agent = r.string(t["user_agent"], f"{prefix}.user_agent")
        if not _CONTACT.search(agent):
            raise r.fail(f"{prefix}.user_agent", f"{agent!r} has no contact URL or address; "
                         "sites must be able to reach the operator, e.g. "
                         "'newsarchive/0.1 (+https://example.org/contact)'")
        values["user_agent"] = agent
    for name in ("obey_robots", "autothrottle", "allow_subdomains", "requisites", "media"):
        if name in t:
            values[name] = r.boolean(t[name], f"{prefix}.{name}")
    for name in ("max_pages", "depth"):
        if name in t:
            values[name] = r.integer(t[name], f"{prefix}.{name}")
    for name in ("concurrency", "max_query_variants", "max_sitemap_entries", "requisite_hops"):
        if name in t:
            values[name] = r.integer(t[name], f"{prefix}.{name}", minimum=1)
    for name in ("warc_max_size", "max_page_size", "requisite_max_size"):
        if name in t:
            values[name] = r.size(t[name], f"{prefix}.{name}")
    for name in ("download_timeout", "extract_timeout"):
        if name in t:
            values[name] = r.number(t[name], f"{prefix}.{name}")
    if "delay" in t:
        values["delay"] = r.number(t["delay"], f"{prefix}.delay", allow_zero=True)
    if "since" in t:
        since = r.string(str(t["since"]) if isinstance(t["since"], date) else t["since"],
                         f"{prefix}.since")
        try:
            parse_since(since)
        except ValueError as exc:
            raise r.fail(f"{prefix}.since", str(exc)) from None
        values["since"] = since
    if "requisites_deny" in t:
        values["requisites_deny"] = r.regexes(t["requisites_deny"], f"{prefix}.requisites_deny")
    if "recheck" in t:
        values["recheck"] = _durations(r, t["recheck"], f"{prefix}.recheck")
    return CrawlConfig(**{**base.__dict__, **values})


def parse_since(value: str, now: datetime | None = None) -> date:
    """``2025-08-01`` or a window back from now such as ``2d``, ``12h``, ``1w``."""
    value = value.strip()
    match = re.fullmatch(r"(\d+)\s*([hdw])", value, re.IGNORECASE)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        hours = amount * {"h": 1, "d": 24, "w": 168}[unit]
        return ((now or datetime.now(UTC)) - timedelta(hours=hours)).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is neither a date (2025-08-01) nor a window such as 2d, "
                         "12h or 1w") from None


_DURATION = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str) -> int:
    """Seconds from ``90s``, ``30m``, ``6h``, ``1d``, ``2w``."""
    match = _DURATION.fullmatch(value.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{value!r} is not a duration such as 30m, 6h, 1d or 2w")
    return int(match.group(1)) * _SECONDS[match.group(2).lower()]


def _durations(r: _Reader, value: Any, key: str) -> tuple[int, ...]:
    try:
        seconds = tuple(parse_duration(v) for v in r.strings(value, key))
    except ValueError as exc:
        raise r.fail(key, str(exc)) from None
    if list(seconds) != sorted(set(seconds)):
        raise r.fail(key, "durations must grow, e.g. [\"1h\", \"6h\", \"1d\", \"7d\"]")
    return seconds


def _read_outlet(r: _Reader, data: Any, key: str, crawl: CrawlConfig) -> OutletConfig:
    t = r.table(data, key, _OUTLET_KEYS)
    if "name" not in t:
        raise r.fail(f"{key}.name", "missing (every outlet needs a name)")
    name = r.string(t["name"], f"{key}.name")
    if not OUTLET_NAME.fullmatch(name):
        raise r.fail(f"{key}.name", f"{name!r} {NAME_RULE}")
    values: dict[str, Any] = {"name": name}
    for url_key in ("start_urls", "feeds", "sitemaps"):
        if url_key in t:
            values[url_key] = r.urls(t[url_key], f"{key}.{url_key}")
    for regex_key in ("allow", "deny"):
        if regex_key in t:
            values[regex_key] = r.regexes(t[regex_key], f"{key}.{regex_key}")
    for str_key in ("language", "schedule"):
        if str_key in t:
            values[str_key] = r.string(t[str_key], f"{key}.{str_key}")
    if "prune" in t:
        values["prune"] = _css_selectors(r, t["prune"], f"{key}.prune")
    if "body" in t:
        values["body"] = _css_selector(r, r.string(t["body"], f"{key}.body"), f"{key}.body")
    if not any(values.get(k) for k in ("start_urls", "feeds", "sitemaps")):
        raise r.fail(f"{key}.start_urls", "an outlet needs start_urls, feeds or sitemaps")
    values["crawl"] = _read_crawl(r, t, key, crawl)
    if not values["crawl"].user_agent:
        raise r.fail("crawl.user_agent", "missing: set a user agent with a contact URL, e.g. "
                     "user_agent = \"newsarchive/0.1 (+https://example.org/contact)\"")
    return OutletConfig(**values)


def _css_selectors(r: _Reader, value: Any, key: str) -> tuple[str, ...]:
    selectors = r.strings(value, key)
    for i, selector in enumerate(selectors):
        _css_selector(r, selector, f"{key}[{i}]")
    return selectors


def _css_selector(r: _Reader, selector: str, key: str) -> str:
    problem = css_selector_problem(selector)
    if problem:
        raise r.fail(key, problem)
    return selector


def css_selector_problem(selector: str) -> str | None:
    """Why `selector` is no CSS selector lxml can use (``prune``, ``body``), or None."""
    from cssselect import GenericTranslator, SelectorError

    try:
        GenericTranslator().css_to_xpath(selector)
    except SelectorError as exc:
        return f"invalid CSS selector {selector!r}: {exc}"
    return None


def parse_config(data: dict[str, Any], source: str) -> Config:
    """Validate already-parsed TOML data; `source` names the file in error messages."""
    r = _Reader(source)
    top = r.table(data, "", {"archive", "cluster", "crawl", "outlets", "health"})
    archive = _read_archive(r, top.get("archive", {}))
    cluster = _read_cluster(r, top.get("cluster", {}))
    crawl_table = r.table(top.get("crawl", {}), "crawl", _CRAWL_KEYS)
    crawl = _read_crawl(r, crawl_table, "crawl", CrawlConfig())
    raw_outlets = top.get("outlets", [])
    if not isinstance(raw_outlets, list):
        raise r.fail("outlets", "expected [[outlets]] tables")
    outlets: list[OutletConfig] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_outlets):
        outlet = _read_outlet(r, raw, f"outlets[{i}]", crawl)
        if outlet.name in seen:
            raise r.fail(f"outlets[{i}].name", f"duplicate outlet name {outlet.name!r}")
        seen.add(outlet.name)
        outlets.append(outlet)
    return Config(source=source, archive=archive, crawl=crawl, outlets=tuple(outlets),
                  health=_read_health(r, top.get("health", {})),
                  cluster=cluster)


def _read_health(r: _Reader, data: Any) -> HealthConfig:
    t = r.table(data, "health", {f.name for f in fields(HealthConfig)})
    values: dict[str, Any] = {}
    for name in ("short_words", "min_history", "min_articles"):
        if name in t:
            values[name] = r.integer(t[name], f"health.{name}", minimum=1)
    for name in ("share_jump", "words_drop"):
        if name in t:
            values[name] = r.number(t[name], f"health.{name}")
            if values[name] > 1:
                raise r.fail(f"health.{name}", f"expected a fraction up to 1, got {t[name]!r}")
    for name in ("silent_days", "silent_min_daily"):
        if name in t:
            values[name] = r.number(t[name], f"health.{name}")
    return HealthConfig(**values)


def load_config(path: str | Path | None = None) -> Config:
    """Load `path`, or `newsarchive.toml` in the working directory, or the empty default."""
    if path is None:
        default = Path(DEFAULT_CONFIG_NAME)
        if not default.exists():
            return parse_config({}, "(no config file)")
        path = default
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"invalid TOML: {exc}") from None
    return parse_config(data, str(path))


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
