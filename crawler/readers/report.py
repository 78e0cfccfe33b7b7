"""The operator's report (`newsarchive report`): one self-contained HTML file over the archive.

Per outlet: new articles per day, extraction health crawl by crawl (with the flags that judged
it), pages fetched and errors by kind; the crawl runs with their durations and exit codes; the
articles edited after their first capture. It reads the manifests one at a time (their counts
and ``health``), the run records and the URL state, never a text: its memory grows with the
number of crawls, not with the archive. The plots are matplotlib's, as inline SVG: the file has
no external asset and opens offline.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any

from crawler.health import SHARES, flagged
from crawler.job import crawl_time
from crawler.readers.edits import Edited, edited_articles
from crawler.readers.listing import iter_crawls
from crawler.readers.progress import Progress
from crawler.records import iso
from crawler.store.backends import ArchiveStore
from crawler.store.run_records import read_runs

EDITS_SHOWN = 500  # rows of the edited-articles table; the rest are counted
CRAWLS_SHOWN = 50  # latest crawls in an outlet's table (its plots show them all)
RUNS_SHOWN = 200  # latest runs in the crawl runs table


@dataclass
class OutletCrawl:
    """One outlet in one committed crawl: its health figures (and flags) and errors."""

    crawl_id: str
    started: str
    health: dict[str, Any]
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class ReportData:
    uri: str
    since: str | None
    outlets: dict[str, list[OutletCrawl]] = field(default_factory=lambda: defaultdict(list))
    runs: list[dict[str, Any]] = field(default_factory=list)
    crawls: dict[str, dict[str, Any]] = field(default_factory=dict)  # crawl id -> counts
    incomplete: list[str] = field(default_factory=list)
    edits: list[Edited] = field(default_factory=list)
    edits_total: int = 0


def gather(store: ArchiveStore, since: str | None, progress: Progress) -> ReportData:
    """What the report shows, read from the manifests, run records and URL state; `since`
    (``YYYY-MM-DD...``) keeps crawls started on that day or later."""
    data = ReportData(store.uri, since)
    outlet_errors: dict[str, dict[str, dict[str, int]]] = {}
    for run in read_runs(store):
        if _in_period(run.get("start"), since):
            data.runs.append({k: run.get(k) for k in (
                "job", "crawl_id", "outlets", "start", "end", "counts", "errors", "exit_reason",
                "exit_code")})
            outlet_errors[run.get("crawl_id", "")] = run.get("outlet_errors") or {}
    for n, listing in enumerate(iter_crawls(store)):
        progress.show(f"{n + 1} crawls read")
        manifest = listing.manifest
        if manifest is None:
            if not listing.broken and _in_period(_crawl_start(listing.crawl_id), since):
                data.incomplete.append(listing.crawl_id)
            continue
        if not _in_period(manifest.get("started"), since):
            continue
        counts = manifest.get("counts", {})
        data.crawls[listing.crawl_id] = {"bytes": listing.size, "counts": counts}
        for outlet, health in (manifest.get("health") or {}).items():
            data.outlets[outlet].append(OutletCrawl(
                listing.crawl_id, manifest["started"], health,
                outlet_errors.get(listing.crawl_id, {}).get(outlet, {})))
    for edit in edited_articles(store, since=since):
        data.edits_total += 1
        if len(data.edits) < EDITS_SHOWN:
            data.edits.append(edit)
    data.edits.sort(key=lambda e: e.last_edit, reverse=True)
    return data


def write_report(store: ArchiveStore, since: str | None, replay_url: str | None,
                 progress: Progress) -> str:
    """The report's HTML."""
    data = gather(store, since, progress)
    html = render(data, replay_url)
    progress.done(f"{sum(len(c) for c in data.outlets.values())} outlet crawls, "
                  f"{len(data.runs)} runs, {data.edits_total} edited articles")
    return html


# ---------------------------------------------------------------- HTML


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px;
       color: #1d2329; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 1px solid
#ccd; } h3 { margin-bottom: .3em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 3px 8px; text-align: right; }
th { background: #f3f5f7; } td.l, th.l { text-align: left; }
tr.flagged td { background: #fff1f0; }
.flag { color: #b42318; font-weight: 600; } .ok { color: #18794e; }
.alerts { border: 1px solid #f0b3ad; background: #fff6f5; padding: .5em 1em; }
.alerts h2 { margin-top: .3em; }
.alerts code { white-space: pre-wrap; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } .plots figure { margin: 0; }
figcaption { font-size: 12px; color: #555; }
.muted { color: #666; }
"""


def render(data: ReportData, replay_url: str | None) -> str:
    replay = replay_url.rstrip("/") if replay_url else None
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>newsarchive report: {escape(data.uri)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>newsarchive report</h1>",
        f'<p class="muted">Archive <b>{escape(data.uri)}</b>, generated '
        f"{iso(datetime.now(UTC))}"
        f"{f', crawls started on {escape(data.since)} or later' if data.since else ''}"
        f"{f', replay at <a href={_attr(replay)}>{escape(replay)}</a>' if replay else ''}.</p>",
        _alerts(data),
        _outlet_overview(data),
    ]
    for outlet, crawls in sorted(data.outlets.items()):
        parts.append(_outlet_section(outlet, crawls, data, replay))
    parts += [_runs_section(data), _edits_section(data, replay), "</body></html>"]
    return "\n".join(parts)


def _alerts(data: ReportData) -> str:
    latest = {o: c[-1] for o, c in data.outlets.items() if c}
    lines = [f"{o}: {flag}: {message} (crawl {c.crawl_id})"
             for o, c in sorted(latest.items())
             for flag, message in flagged({o: c.health}).get(o, {}).items()]
    if not lines:
        return ('<section id="alerts"><p class="ok">No health alerts: every outlet\'s latest '
                "crawl is in line with its history.</p></section>")
    items = "".join(f"<li><code>{escape(line)}</code></li>" for line in lines)
    return (f'<section id="alerts" class="alerts"><h2>Health alerts</h2><p>In the latest '
            f"crawl of each outlet:</p><ul>{items}</ul></section>")


def _outlet_overview(data: ReportData) -> str:
    rows = []
    for outlet, crawls in sorted(data.outlets.items()):
        last = crawls[-1]
        flags = last.health.get("flags") or {}
        rows.append(
            f'<tr class="{"flagged" if flags else ""}">'
            f'<td class="l"><a href="#outlet-{outlet}">{escape(outlet)}</a></td>'
            f"<td>{len(crawls)}</td><td class=l>{escape(last.started)}</td>"
            f"<td>{sum(c.health.get('new', 0) for c in crawls)}</td>"
            f"<td>{sum(c.health.get('edited', 0) for c in crawls)}</td>"
            f"<td>{sum(c.health.get('fetched', 0) for c in crawls)}</td>"
            f"<td>{sum(sum(c.errors.values()) for c in crawls)}</td>"
            f"<td class=l>{_flags_html(flags)}</td></tr>")
    return ('<h2>Outlets</h2><table id="outlets"><tr><th class=l>outlet</th><th>crawls</th>'
            "<th class=l>last crawl</th><th>new articles</th><th>edits</th><th>pages fetched"
            "</th><th>fetch errors</th><th class=l>health of the last crawl</th></tr>"
            + "".join(rows) + "</table>")


def _outlet_section(outlet: str, crawls: list[OutletCrawl], data: ReportData,
                    replay: str | None) -> str:
    per_day: Counter = Counter()
    for c in crawls:
        per_day[c.started[:10]] += c.health.get("new", 0)
    days = sorted(per_day)
    plots = [
        _figure(articles_per_day_svg(outlet, days, [per_day[d] for d in days]),
                f"New articles per day ({len(days)} day(s) with a crawl)"),
        _figure(health_svg(outlet, crawls), "Extraction health per crawl: share of extracted "
                "articles without text or with a short one, of texts without title or date"),
    ]
    rows = []
    for c in crawls[:-CRAWLS_SHOWN - 1:-1]:
        h = c.health
        crawl = data.crawls.get(c.crawl_id, {})
        flags = h.get("flags") or {}
        errors = ", ".join(f"{k} {v}" for k, v in sorted(c.errors.items())) or "0"
        rows.append(
            f'<tr class="{"flagged" if flags else ""}"><td class=l>{escape(c.started)}</td>'
            f"<td class=l>{escape(c.crawl_id)}</td><td>{h.get('fetched', 0)}</td>"
            f"<td>{h.get('found', 0)}</td><td>{h.get('new', 0)}</td>"
            f"<td>{h.get('edited', 0)}</td><td>{_share(h, 'no_text', 'extracted')}</td>"
            f"<td>{_share(h, 'short', 'extracted')}</td>"
            f"<td>{_share(h, 'untitled', 'texts')}</td><td>{_share(h, 'undated', 'texts')}</td>"
            f"<td>{h.get('median_words') if h.get('median_words') is not None else '-'}</td>"
            f"<td class=l>{escape(errors)}</td>"
            f"<td>{_revisits(crawl.get('counts', {}))}</td>"
            f"<td>{crawl.get('bytes', 0) / 1e6:.2f}</td>"
            f"<td class=l>{_flags_html(flags, messages=False)}</td>"
            "</tr>")
    link = (f' <a class="muted" href={_attr(replay + "/")}>replay</a>' if replay else "")
    earlier = (f'<p class="muted">and {len(crawls) - CRAWLS_SHOWN} earlier crawls (in the '
               "plots)</p>" if len(crawls) > CRAWLS_SHOWN else "")
    return (f'<section id="outlet-{outlet}"><h2>{escape(outlet)}{link}</h2>'
            f'<div class="plots">{"".join(plots)}</div>'
            f"<table><tr><th class=l>started</th><th class=l>crawl</th><th>pages fetched</th>"
            f"<th>articles found</th><th>new</th><th>edited</th><th>no text</th>"
            f"<th>short</th><th>untitled</th><th>undated</th><th>median words</th>"
            f"<th class=l>fetch errors</th><th>crawl's revisit records</th>"
            f"<th>crawl's MB stored</th><th class=l>health</th></tr>{''.join(rows)}</table>"
            f"{earlier}</section>")


def _runs_section(data: ReportData) -> str:
    rows = []
    for run in data.runs[:-RUNS_SHOWN - 1:-1]:
        counts = run.get("counts") or {}
        errors = run.get("errors") or {}
        crawl = data.crawls.get(run.get("crawl_id") or "", {})
        failed = run.get("exit_code") not in (0, None)
        rows.append(
            f'<tr class="{"flagged" if failed else ""}"><td class=l>{escape(run.get("job") or "")}'
            f"</td><td class=l>{escape(run.get('crawl_id') or '')}</td>"
            f"<td class=l>{escape(run.get('start') or '')}</td>"
            f"<td>{_duration(run.get('start'), run.get('end'))}</td>"
            f"<td>{run.get('exit_code')}</td><td class=l>{escape(str(run.get('exit_reason')))}"
            f"</td><td>{counts.get('responses', 0)}</td><td>{counts.get('text_records', 0)}</td>"
            f"<td>{_revisits(counts)}</td>"
            f"<td>{crawl.get('bytes', counts.get('warc_bytes', 0)) / 1e6:.2f}</td>"
            f"<td>{errors.get('fetch', 0)}</td><td>{errors.get('logged', 0)}</td></tr>")
    earlier = (f'<p class="muted">and {len(data.runs) - RUNS_SHOWN} earlier runs</p>'
               if len(data.runs) > RUNS_SHOWN else "")
    incomplete = (f'<p class="muted">Incomplete (running, or interrupted: '
                  f'<code>newsarchive crawl --resume CRAWL_ID</code>): '
                  f"{escape(', '.join(data.incomplete))}</p>" if data.incomplete else "")
    return ('<section id="runs"><h2>Crawl runs</h2><table><tr><th class=l>job</th>'
            "<th class=l>crawl</th><th class=l>started</th><th>duration</th><th>exit code</th>"
            "<th class=l>reason</th><th>pages fetched</th><th>text records</th>"
            "<th>revisit records</th><th>MB stored</th><th>fetch errors</th>"
            f"<th>errors logged</th></tr>{''.join(rows)}</table>{earlier}{incomplete}"
            "</section>")


def _edits_section(data: ReportData, replay: str | None) -> str:
    rows = []
    for e in data.edits:
        url = escape(e.url)
        if replay and e.last_edit:
            stamp = "".join(ch for ch in e.last_edit if ch.isdigit())[:14]
            url = f"<a href={_attr(f'{replay}/archive/{stamp}/{e.url}')}>{url}</a>"
        rows.append(f"<tr><td class=l>{url}</td><td class=l>{escape(e.outlet)}</td>"
                    f"<td>{e.revisions}</td><td class=l>{escape(e.first_seen)}</td>"
                    f"<td class=l>{escape(e.last_edit)}</td></tr>")
    more = (f'<p class="muted">and {data.edits_total - len(data.edits)} more: '
            "<code>newsarchive edits</code> lists them all.</p>"
            if data.edits_total > len(data.edits) else "")
    body = ("<table><tr><th class=l>article</th><th class=l>outlet</th><th>revisions</th>"
            "<th class=l>first captured</th><th class=l>last edited</th></tr>"
            + "".join(rows) + "</table>") if rows else "<p>No article was edited after its " \
        "first capture.</p>"
    return (f'<section id="edits"><h2>Edited articles ({data.edits_total})</h2>'
            '<p class="muted">Articles whose text changed after their first capture; '
            "<code>newsarchive diff URL</code> shows the changed words.</p>"
            f"{body}{more}</section>")


# ---------------------------------------------------------------- plots


def articles_per_day_svg(outlet: str, days: list[str], counts: list[int]) -> str:
    """A bar per day with a crawl of `outlet`: its new articles (bars ``articles-OUTLET-N``)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(5.2, 2.6))
    ax = fig.add_subplot()
    x = [date.fromisoformat(d) for d in days]
    bars = ax.bar(x, counts, width=0.8, color="#3b6fb6")
    for i, bar in enumerate(bars):
        bar.set_gid(f"articles-{outlet}-{i}")
    if x:  # a day on each side: a few days' axis is labelled by day, not by hour
        ax.set_xlim(x[0] - timedelta(days=1), x[-1] + timedelta(days=1))
    locator = AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_ylim(0, max(max(counts, default=0), 1) * 1.1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("new articles")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig, f"articles-{outlet}")


def health_svg(outlet: str, crawls: list[OutletCrawl]) -> str:
    """Each share of `SHARES` per crawl, where the crawl had articles to count it among (lines
    ``health-OUTLET-FLAG``, one marker per crawl)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 2.6))
    ax = fig.add_subplot()
    for flag, counted, among, label in SHARES:
        points = [(_moment(c.started), 100 * c.health.get(counted, 0) / c.health[among])
                  for c in crawls if c.health.get(among)]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        (line,) = ax.plot(xs, ys, marker="o", markersize=4, label=label)
        line.set_gid(f"health-{outlet}-{flag}")
    ax.set_ylim(-3, 103)
    ax.set_ylabel("% of articles")
    ax.spines[["top", "right"]].set_visible(False)
    if ax.lines:
        ax.legend(fontsize=7, loc="upper left", frameon=False)
        fig.autofmt_xdate()
    else:
        ax.set_xticks([])
        ax.text(0.5, 0.5, "no article extracted yet", transform=ax.transAxes, ha="center",
                color="#666")
    return _svg(fig, f"health-{outlet}")


def _svg(fig: Any, salt: str) -> str:
    """The figure as an inline ``<svg>``: text kept as text, ids salted per plot so that the
    plots of one page never share one."""
    from matplotlib import rc_context

    out = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = out.getvalue()
    return svg[svg.index("<svg"):]


# ---------------------------------------------------------------- helpers


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _flags_html(flags: dict[str, str], messages: bool = True) -> str:
    """The flags, each with its message (or with it as a tooltip only)."""
    if not flags:
        return '<span class="ok">ok</span>'
    return "; ".join(f'<span class="flag" title="{escape(m)}">{escape(f)}</span>'
                     + (f": {escape(m)}" if messages else "") for f, m in flags.items())


def _share(health: dict[str, Any], counted: str, among: str) -> str:
    n = health.get(among, 0)
    return f"{health.get(counted, 0) / n:.0%}" if n else "-"


def _revisits(counts: dict[str, int]) -> int:
    return sum(v for k, v in counts.items() if k.startswith("revisits/"))


def _attr(value: str) -> str:
    return f'"{escape(value, quote=True)}"'


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    seconds = (_moment(end) - _moment(start)).total_seconds()
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _in_period(moment: str | None, since: str | None) -> bool:
    return not since or (moment or "")[:len(since)] >= since


def _crawl_start(crawl_id: str) -> str:
    """``job-20260807T101500Z`` -> ``2026-08-07``: when a crawl without manifest started."""
    stamp = crawl_time(crawl_id)
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"

