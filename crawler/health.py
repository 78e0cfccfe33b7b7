"""Extraction health: an outlet's figures in one crawl judged against its own recent crawls.

A redesign that empties the extracted text, a feed that stops, an ``allow`` pattern that matches
nothing: none of them fails a crawl, so each would go unnoticed for weeks. The figures
(``crawler.records.crawl_health``) are compared with the outlet's earlier crawls (their run
records), and what breaks from them is a flag: a code and a one-line message. An outlet's first
crawls (fewer than ``min_history`` with articles) are only checked for finding no article.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from statistics import median
from typing import Any

from crawler.config import HealthConfig

HISTORY_RUNS = 10  # an outlet's latest earlier crawls with articles: its baseline

# share flags: (flag, figure counted, what it is counted among, what the message calls it)
SHARES = (("no_text", "no_text", "extracted", "gave no text"),
          ("short_text", "short", "extracted", "have a short text"),
          ("untitled", "untitled", "texts", "have no title"),
          ("undated", "undated", "texts", "have no date"))


def judge(health: Mapping[str, dict[str, Any]], history: Iterable[Mapping[str, Any]],
          config: HealthConfig, now: datetime) -> dict[str, dict[str, str]]:
    """Each outlet's flags (code -> message) for one crawl's `health` figures; `history` are the
    archive's earlier run records, oldest first."""
    earlier: dict[str, list[tuple[datetime, dict[str, Any]]]] = {o: [] for o in health}
    for run in history:
        for outlet, figures in (run.get("health") or {}).items():
            if outlet in earlier and run.get("start"):
                earlier[outlet].append((_parse(run["start"]), figures))
    return {outlet: outlet_flags(figures, earlier[outlet], config, now)
            for outlet, figures in health.items()}


def outlet_flags(figures: Mapping[str, Any], earlier: list[tuple[datetime, dict[str, Any]]],
                 config: HealthConfig, now: datetime) -> dict[str, str]:
    """The flags of one outlet's crawl; `earlier`: its earlier crawls' (start, figures)."""
    flags: dict[str, str] = {}
    if not figures.get("found"):
        flags["no_articles"] = (f"no page was taken as an article ({figures.get('fetched', 0)} "
                                "pages fetched): check allow, deny, start_urls and feeds")
    productive = [f for _, f in earlier if f.get("extracted")][-HISTORY_RUNS:]
    if len(productive) < config.min_history:
        return flags
    for flag, counted, among, said in SHARES:
        now_n = figures.get(among, 0)
        past_n = sum(f.get(among, 0) for f in productive)
        if now_n < config.min_articles or not past_n:
            continue
        share = figures.get(counted, 0) / now_n
        past = sum(f.get(counted, 0) for f in productive) / past_n
        if share - past >= config.share_jump:
            flags[flag] = (f"{share:.0%} of {now_n} articles {said} (earlier crawls: "
                           f"{past:.0%})")
    medians = [f["median_words"] for f in productive if f.get("median_words")]
    words = figures.get("median_words")
    if figures.get("texts", 0) >= config.min_articles and medians and words is not None:
        past_words = median(medians)
        if words < config.words_drop * past_words:
            flags["fewer_words"] = (f"median text of {words} words (earlier crawls: "
                                    f"{past_words:.0f})")
    if not figures.get("new"):
        silence = _silence(earlier, config, now)
        if silence:
            flags["silent"] = silence
    return flags


def _silence(earlier: list[tuple[datetime, dict[str, Any]]], config: HealthConfig,
             now: datetime) -> str | None:
    """Why an outlet that gave new articles every day has gone quiet, or None."""
    dated_new = [(start, f.get("new", 0)) for start, f in earlier]
    last_new = max((start for start, n in dated_new if n), default=None)
    if last_new is None:
        return None
    quiet_days = (now - last_new).total_seconds() / 86400
    if quiet_days < config.silent_days:
        return None
    before = [(start, n) for start, n in dated_new if start <= last_new]
    span_days = max((last_new - before[0][0]).total_seconds() / 86400, 1.0)
    daily = sum(n for _, n in before) / span_days
    if daily < config.silent_min_daily:
        return None
    return (f"no new article for {quiet_days:.1f} days (it gave {daily:.0f} a day before "
            f"{last_new:%Y-%m-%d})")


def flagged(health: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """The outlets of a manifest's (or run record's) `health` that have flags, with them."""
    return {o: dict(f["flags"]) for o, f in sorted(health.items()) if f.get("flags")}


def alert_lines(crawl_id: str, health: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per flag, the same wherever it is printed or logged, so a log monitor can match
    ``HEALTH outlet=... flag=...``."""
    return [f"HEALTH outlet={outlet} flag={flag} crawl={crawl_id}: {message}"
            for outlet, flags in flagged(health).items() for flag, message in flags.items()]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
