"""The operator's view, with the real command: two crawls of three fixture outlets on 127.0.0.1
(one healthy, one whose second crawl serves a redesigned template trafilatura extracts nothing
from, one whose `allow` matches no article), then the health flags where an operator looks
(crawl summary, `ls`, run record, the HTML report in headless Chromium), `edits` and `diff`."""

from __future__ import annotations

import json
import random
import re
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crawler.config import HealthConfig
from crawler.health import judge
from crawler.jobs.demo import OutletServer
from tests.conftest import run_cli, s3_archive, s3_env
from tests.s3server import S3Server
from tests.test_interop import DevTools

WORDS = ("harbour council budget river energy station school minister report railway "
         "farmers market museum bridge festival winter summer election court hospital "
         "teachers factory workers airport weather storm flood village mayor police "
         "library concert league season coach stadium project tender contract tax "
         "prices fuel grain export import border customs bank loan credit startup "
         "software network signal tower satellite launch engine vessel port cargo").split()
PER_CRAWL = 8  # new articles per outlet and crawl
EDITED = 0  # the steady outlet's article edited between the crawls
EDIT_SENTENCE = "The ministry corrected the figure to forty two million on Tuesday."


def paragraphs(outlet: str, n: int) -> list[str]:
    rng = random.Random(f"{outlet}-{n}")
    return [" ".join(rng.choice(WORDS) for _ in range(60)).capitalize() + "." for _ in range(3)]


def article_page(outlet: str, n: int, *, redesigned: bool = False, edited: bool = False) -> str:
    title = f"{outlet.title()} story number {n}"
    if redesigned:  # a client-side app: the text arrives in a script, the body is empty
        state = json.dumps({"title": title, "body": paragraphs(outlet, n)})
        return (f"<!doctype html><html><head><title>{title}</title>"
                '<meta property="og:type" content="article"></head>'
                f'<body><div id="app"></div><script>window.__STATE__ = {state};</script>'
                "</body></html>")
    body = paragraphs(outlet, n)
    if edited:
        body[1] = body[1].replace(body[1].split()[0], "Officials", 1) + " " + EDIT_SENTENCE
    text = "".join(f"<p>{p}</p>" for p in body)
    return (f"<!doctype html><html lang='en'><head><title>{title}</title>"
            '<meta property="og:type" content="article">'
            f'<meta property="article:published_time" content="2026-11-{n % 28 + 1:02d}">'
            f"</head><body><article><h1>{title}</h1>{text}</article></body></html>")


def write_site(root: Path, outlet: str, count: int, *, redesigned: bool = False,
               edited: bool = False) -> None:
    """An outlet's front page linking `count` articles under /news/."""
    (root / "news").mkdir(parents=True, exist_ok=True)
    links = "".join(f'<li><a href="/news/{n}.html">story {n}</a></li>' for n in range(count))
    (root / "index.html").write_text(
        f"<!doctype html><html><head><title>{outlet}</title></head><body><ul>{links}</ul>"
        "</body></html>", "utf-8")
    for n in range(count):
        page = article_page(outlet, n, redesigned=redesigned, edited=edited and n == EDITED)
        path = root / "news" / f"{n}.html"
        if not path.exists() or path.read_text("utf-8") != page:
            path.write_text(page, "utf-8")


def config_text(archive: Path, urls: dict[str, str]) -> str:
    outlets = "".join(f"""
[[outlets]]
name = "{name}"
start_urls = ["{url}"]
allow = ['{'/nothing-here/' if name == 'misfit' else '/news/'}']
delay = 0
autothrottle = false
obey_robots = false
""" for name, url in urls.items())
    return f"""
[archive]
uri = "{archive}"

[crawl]
user_agent = "newsarchive-tests/0.1 (+https://example.org/contact)"

[health]
min_history = 1
min_articles = 5
{outlets}"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two crawls: in the second, `redesigned` serves its new and old articles in a template
    with no text in the markup, `steady` has new articles and one edited; `misfit`'s allow
    pattern matches nothing."""
    work = tmp_path_factory.mktemp("health")
    roots = {name: work / name for name in ("steady", "redesigned")}
    for name, root in roots.items():
        write_site(root, name, PER_CRAWL)
    with OutletServer(roots["steady"]) as steady, \
            OutletServer(roots["redesigned"]) as redesigned, \
            OutletServer(roots["steady"]) as misfit:
        urls = {"steady": steady.url, "redesigned": redesigned.url, "misfit": misfit.url}
        config = work / "outlets.toml"
        config.write_text(config_text(work / "archive", urls), "utf-8")
        first = run_cli("crawl", "-c", str(config), "--job", "all")
        assert first.returncode == 0, first.stderr + first.stdout
        time.sleep(1.1)  # crawl ids are to the second
        write_site(roots["steady"], "steady", 2 * PER_CRAWL, edited=True)
        write_site(roots["redesigned"], "redesigned", 2 * PER_CRAWL, redesigned=True)
        second = run_cli("crawl", "-c", str(config), "--job", "all", "--recheck")
        assert second.returncode == 0, second.stderr + second.stdout
        yield {"config": config, "archive": work / "archive", "first": first,
               "second": second, "urls": urls, "work": work}


def alerts(text: str) -> dict[str, set[str]]:
    """The health alert lines of a summary or log: outlet -> flags."""
    found: dict[str, set[str]] = {}
    for outlet, flag in re.findall(r"HEALTH outlet=(\S+) flag=(\S+) crawl=\S+: ", text):
        found.setdefault(outlet, set()).add(flag)
    return found


def test_redesign_is_flagged_in_the_crawl_summary(archive: dict[str, Any]) -> None:
    # the first crawl has no history to judge by: only the outlet that found nothing is flagged
    assert alerts(archive["first"].stdout) == {"misfit": {"no_articles"}}, archive["first"].stdout
    summary = archive["second"].stdout
    assert alerts(summary) == {"redesigned": {"no_text"}, "misfit": {"no_articles"}}, summary
    line = next(x for x in summary.splitlines() if "flag=no_text" in x)
    assert line.strip().startswith("WARNING: HEALTH outlet=redesigned")
    assert f"100% of {2 * PER_CRAWL} articles gave no text (earlier crawls: 0%)" in line


def test_redesign_is_flagged_in_the_run_record_and_manifest(archive: dict[str, Any]) -> None:
    runs = [json.loads(line) for line in
            (archive["archive"] / "state/runs.jsonl").read_text().splitlines()]
    assert len(runs) == 2
    health = runs[-1]["health"]
    assert set(health["redesigned"]["flags"]) == {"no_text"}
    assert health["steady"]["flags"] == {}
    # the figures behind them
    assert health["redesigned"]["no_text"] == health["redesigned"]["extracted"] == 2 * PER_CRAWL
    assert health["steady"]["new"] == PER_CRAWL and health["steady"]["edited"] == 1
    assert health["steady"]["no_text"] == 0 and health["steady"]["median_words"] >= 170
    assert health["misfit"]["found"] == 0 and health["misfit"]["fetched"] >= 1
    second = sorted((archive["archive"] / "crawls").iterdir())[-1]
    manifest = json.loads((second / "manifest.json").read_text())
    assert manifest["health"] == health  # kept in the manifest, copied to the run record


def test_ls_shows_the_flags(archive: dict[str, Any]) -> None:
    listing = run_cli("ls", "-c", str(archive["config"]))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    first, second = (x.split(" HEALTH ", 1)[1] for x in lines if x.startswith("all-"))
    assert first == "misfit: no_articles"
    assert second == "misfit: no_articles HEALTH redesigned: no_text"
    last_runs = {x.split()[0]: x for x in lines[lines.index(next(
        x for x in lines if x.startswith("outlet "))) + 1:]}
    assert last_runs["redesigned"].endswith("HEALTH no_text")
    assert last_runs["steady"].endswith(" ok")
    as_json = [json.loads(x) for x in run_cli("ls", "-c", str(archive["config"]),
                                              "--json").stdout.splitlines()]
    assert set(as_json[0]["health_flags"]) == {"misfit"}
    assert set(as_json[-1]["health_flags"]) == {"misfit", "redesigned"}
    assert set(as_json[-1]["health_flags"]["redesigned"]) == {"no_text"}


def test_edits_lists_the_edited_article_and_diff_shows_the_words(
        archive: dict[str, Any]) -> None:
    edited_url = archive["urls"]["steady"] + f"news/{EDITED}.html"
    edits = run_cli("edits", "-c", str(archive["config"]))
    assert edits.returncode == 0, edits.stderr
    rows = edits.stdout.splitlines()[1:]
    assert len(rows) == 1 and rows[0].split()[0] == "2" and rows[0].endswith(edited_url), rows
    assert run_cli("edits", "-c", str(archive["config"]), "--outlet", "redesigned"
                   ).stdout == ""
    assert run_cli("edits", "-c", str(archive["config"]), "--since", "2999").stdout == ""

    diff = run_cli("diff", "-c", str(archive["config"]), edited_url)
    assert diff.returncode == 0, diff.stderr
    old_first = paragraphs("steady", EDITED)[1].split()[0]
    assert f"[-{old_first}-]{{+Officials+}}" in diff.stdout, diff.stdout
    assert f"{{+{EDIT_SENTENCE}+}}" in diff.stdout, diff.stdout
    assert diff.stdout.startswith("--- revision 1, fetched ")
    assert diff.stdout.count("\n@@ ") == 2  # two changes, each with its context, nothing else

    unedited = run_cli("diff", "-c", str(archive["config"]),
                       archive["urls"]["steady"] + "news/1.html")
    assert unedited.returncode == 1
    assert "no revisions 0 and 1 to compare: its text has revision 1" in unedited.stderr


REPLAY = "http://127.0.0.1:8080"
# what the page shows, read in Chromium: plot elements with their marker positions, tables
READ_PAGE = """JSON.stringify({
  svgs: [...document.querySelectorAll("figure svg")].map(s => {
    const box = s.getBoundingClientRect(); return [box.width, box.height]; }),
  bars: Object.fromEntries(["steady", "redesigned", "misfit"].map(o =>
    [o, document.querySelectorAll(`g[id^="articles-${o}-"]`).length])),
  markers: Object.fromEntries([...document.querySelectorAll('g[id^="health-"]')].map(g =>
    [g.id, [...g.querySelectorAll("use")].map(u => +u.getAttribute("y"))])),
  alerts: document.querySelector("#alerts").innerText,
  flagged: [...document.querySelectorAll("#outlets tr.flagged td:first-child")]
    .map(td => td.innerText),
  edits: [...document.querySelectorAll("#edits td a")].map(a => a.href),
})"""


def test_report_renders_in_chromium(archive: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = run_cli("report", "-c", str(archive["config"]), "-o", str(out), "--replay-url",
                   REPLAY)
    assert done.returncode == 0, done.stderr
    html = out.read_text("utf-8")
    # self-contained: no script, stylesheet, image or frame to fetch; links only into replay
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", html, re.IGNORECASE)
    assert not re.search(r'\b(?:src|href)="(?!#|' + re.escape(REPLAY) + ")", html)

    browser = DevTools(tmp_path / "profile")
    try:
        browser.open(out.as_uri())
        for _ in range(100):
            state = browser.call("Runtime.evaluate", expression="location.href + ' ' + "
                                 "document.readyState")
            if state["result"].get("value") == f"{out.as_uri()} complete":
                break
            time.sleep(0.1)
        shown = browser.call("Runtime.evaluate", expression=READ_PAGE)
        assert "value" in shown["result"], shown
        page = json.loads(shown["result"]["value"])
        browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=2600,
                     deviceScaleFactor=1, mobile=False)
        browser.screenshot(tmp_path / "report.png")
    finally:
        browser.close()
    # each outlet: new articles per day (both crawls ran today: one bar) and health per crawl
    assert page["bars"] == {"steady": 1, "redesigned": 1, "misfit": 1}
    assert len(page["svgs"]) == 6 and all(w > 300 and h > 150 for w, h in page["svgs"])
    markers = page["markers"]
    # a marker per crawl with extracted articles; the redesign's share of no text jumps up
    # (SVG y grows downwards), the steady outlet's stays where it was
    low, high = markers["health-redesigned-no_text"]
    assert high < low - 50
    assert len(set(markers["health-steady-no_text"])) == 1
    assert len(markers["health-steady-no_text"]) == 2
    assert len(markers["health-redesigned-untitled"]) == 1  # its second crawl has no text
    assert not [k for k in markers if k.startswith("health-misfit")]  # nothing extracted
    assert "redesigned: no_text: 100% of 16 articles gave no text" in page["alerts"]
    assert "misfit: no_articles" in page["alerts"] and "steady" not in page["alerts"]
    assert sorted(page["flagged"]) == ["misfit", "redesigned"]
    (edit,) = page["edits"]
    assert re.fullmatch(re.escape(REPLAY) + r"/archive/\d{14}/" + re.escape(
        archive["urls"]["steady"] + f"news/{EDITED}.html"), edit)
    png = (tmp_path / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 50_000


def test_schedule_logs_a_matchable_line_per_flag(tmp_path: Path) -> None:
    write_site(tmp_path / "www", "misfit", 3)
    with OutletServer(tmp_path / "www") as server:
        config = tmp_path / "outlets.toml"
        config.write_text(config_text(tmp_path / "archive", {"misfit": server.url})
                          + 'schedule = "* * * * *"\n', "utf-8")
        done = run_cli("schedule", "-c", str(config), "--once")
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if "HEALTH" in x]
    assert re.fullmatch(r"\S+ \S+ schedule WARNING: HEALTH outlet=misfit flag=no_articles "
                        r"crawl=misfit-\d{8}T\d{6}Z: no page was taken as an article \(\d+ "
                        r"pages fetched\): check allow, deny, start_urls and feeds", line), line


def test_metrics_say_what_the_crawls_did(archive: dict[str, Any], tmp_path: Path) -> None:
    from crawler.jobs.metrics import ScheduleMetrics
    from crawler.store.spool import Spool

    (tmp_path / "spool/crawls/x").mkdir(parents=True)
    (tmp_path / "spool/crawls/x/manifest.json").write_text("{}")  # one file waiting
    runs = [json.loads(line) for line in
            (archive["archive"] / "state/runs.jsonl").read_text().splitlines()]
    metrics = ScheduleMetrics(0, Spool(tmp_path / "spool"))
    try:
        for run in runs:
            for outlet in run["outlets"]:
                metrics.crawl_ended(outlet, run["exit_code"], run)
        metrics.crawl_ended("steady", 1, None)  # a crawl that died without a run record
        port = metrics.server.server_port
        assert metrics.server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
    finally:
        metrics.close()
    values = {m.group(1): float(m.group(2)) for m in re.finditer(
        r"^(newsarchive_\S+) (\S+)$", text, re.MULTILINE)}
    assert values['newsarchive_crawls_total{outlet="steady",result="ok"}'] == 2
    assert values['newsarchive_crawls_total{outlet="steady",result="failed"}'] == 1
    assert values['newsarchive_health_flag{flag="no_text",outlet="redesigned"}'] == 1
    assert values['newsarchive_health_flag{flag="no_articles",outlet="misfit"}'] == 1
    assert not [k for k in values if k.startswith("newsarchive_health_flag") and "steady" in k]
    steady = [r["health"]["steady"] for r in runs]
    assert values['newsarchive_pages_total{outlet="steady"}'] == sum(h["fetched"] for h in steady)
    assert values['newsarchive_articles_total{outlet="steady"}'] == 2 * PER_CRAWL + 1
    assert values['newsarchive_warc_bytes_total{outlet="steady"}'] == sum(
        r["counts"]["warc_bytes"] for r in runs)
    assert values['newsarchive_last_success_timestamp_seconds{outlet="steady"}'] == \
        datetime.fromisoformat(runs[-1]["end"].replace("Z", "+00:00")).timestamp()
    assert values["newsarchive_spool_files"] == 1


# ---------------------------------------------------------------- the judging rules


def figures(new: int, *, no_text: int = 0, short: int = 0, untitled: int = 0,
            undated: int = 0, words: int | None = 400) -> dict[str, Any]:
    """One outlet's health figures in a crawl of `new` + `no_text` articles (and 20 found
    already archived)."""
    return {"fetched": new + no_text + 25, "found": new + no_text + 20, "extracted": new + no_text,
            "texts": new, "new": new, "edited": 0, "no_text": no_text, "short": short,
            "untitled": untitled, "undated": undated, "median_words": words if new else None}


def history(days_and_figures: list[tuple[float, dict[str, Any]]], now: datetime
            ) -> list[dict[str, Any]]:
    """Run records of one outlet, `days` before `now`."""
    return [{"start": (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "health": {"paper": f}} for days, f in days_and_figures]


NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def test_an_outlets_first_crawls_are_not_judged() -> None:
    broken = figures(2, no_text=48)
    config = HealthConfig()  # min_history 3
    past = history([(2, figures(50)), (1, figures(50))], NOW)
    assert judge({"paper": broken}, past, config, NOW) == {"paper": {}}
    past = history([(3, figures(50)), (2, figures(50)), (1, figures(50))], NOW)
    assert set(judge({"paper": broken}, past, config, NOW)["paper"]) == {"no_text"}


def test_shares_and_words_are_judged_against_the_outlets_own_history() -> None:
    past = history([(d, figures(50, untitled=1, short=2, words=420)) for d in (3, 2, 1)], NOW)
    config = HealthConfig()
    same = figures(48, untitled=2, short=3, words=390)
    assert judge({"paper": same}, past, config, NOW) == {"paper": {}}
    worse = figures(40, untitled=30, short=25, undated=39, words=120)
    flags = judge({"paper": worse}, past, config, NOW)["paper"]
    assert set(flags) == {"untitled", "short_text", "undated", "fewer_words"}
    assert flags["untitled"] == "75% of 40 articles have no title (earlier crawls: 2%)"
    assert flags["fewer_words"] == "median text of 120 words (earlier crawls: 420)"
    # too few articles to say anything about shares
    assert judge({"paper": figures(4, untitled=4)}, past, config, NOW) == {"paper": {}}
    # an outlet that always had no dates is not flagged for having none
    undated = history([(d, figures(50, undated=50)) for d in (3, 2, 1)], NOW)
    assert judge({"paper": figures(50, undated=50)}, undated, config, NOW) == {"paper": {}}


def test_a_feed_gone_quiet_is_flagged_after_silent_days() -> None:
    config = HealthConfig()  # silent after 3 days, for an outlet that gave 5+ a day
    busy = [(d, figures(50)) for d in (10, 9, 8, 7, 6)]
    quiet = [(d, figures(0)) for d in (4, 3, 2, 1)]
    flags = judge({"paper": figures(0)}, history(busy + quiet, NOW), config, NOW)["paper"]
    assert flags == {"silent": f"no new article for 6.0 days (it gave 62 a day before "
                               f"{NOW - timedelta(days=6):%Y-%m-%d})"}
    two_days = [(d, figures(50)) for d in (10, 9, 8, 7, 6, 5, 4, 3, 2)] + [(1, figures(0))]
    assert judge({"paper": figures(0)}, history(two_days, NOW), config, NOW) == {"paper": {}}
    slow = [(d, figures(1)) for d in (20, 15, 10, 6)] + quiet
    assert judge({"paper": figures(0)}, history(slow, NOW), config, NOW) == {"paper": {}}


def test_an_outlet_that_found_no_article_is_flagged_from_its_first_crawl() -> None:
    flags = judge({"paper": figures(0) | {"found": 0, "fetched": 2053}}, [], HealthConfig(),
                  NOW)["paper"]
    assert flags == {"no_articles": "no page was taken as an article (2053 pages fetched): "
                                    "check allow, deny, start_urls and feeds"}


def test_report_and_edits_read_an_s3_archive(archive: dict[str, Any], s3: S3Server,
                                             bucket: str, tmp_path: Path) -> None:
    client = s3.client()
    for path in sorted(archive["archive"].rglob("*")):
        key = path.relative_to(archive["archive"]).as_posix()
        if path.is_file() and not key.startswith(".spool"):
            client.upload_file(str(path), bucket, f"v1/{key}")
    config = tmp_path / "outlets.toml"
    config.write_text(archive["config"].read_text("utf-8").replace(
        f'uri = "{archive["archive"]}"',
        f'uri = "s3://{bucket}/v1"\n{s3_archive(s3, tmp_path / "spool")}'), "utf-8")
    out = tmp_path / "report.html"
    done = run_cli("report", "-c", str(config), "-o", str(out), env=s3_env(s3))
    assert done.returncode == 0, done.stderr
    html = out.read_text("utf-8")
    assert f"s3://{bucket}/v1" in html
    assert "redesigned: no_text: 100% of 16 articles gave no text" in html
    assert html.count('<g id="articles-') == 3
    edits = run_cli("edits", "-c", str(config), env=s3_env(s3))
    assert edits.stdout.splitlines()[1].endswith(archive["urls"]["steady"] + "news/0.html")
