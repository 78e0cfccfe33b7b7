#!/usr/bin/env python3
"""Crawl speed and memory of the full pipeline (discovery + fetch + WARC + extraction pool +
local store).

Generates the synthetic outlet of ``../shared/benchmarks/site/make_site.py`` (N articles),
serves it with ``python -m http.server`` in its own process on 127.0.0.1, runs
``newsarchive crawl`` on it with politeness off, and prints pages/s, articles/s and the peak
memory of the crawl (RSS of its main process, PSS of its process tree; sampled from /proc every
0.1 s). Discovery is through the
site's sitemap (``--discovery sitemap``, the default) or by following section links
(``--discovery links``). ``--wget`` also runs ``wget --recursive --warc-file`` on the same site
in the same run, for the ratio. ``--again`` crawls each site a second time with ``--recheck``
(an incremental re-crawl: conditional requests, revisit records). ``--demo`` measures the
bundled sample outlet. ``--requisites`` generates the site with what its pages load (a shared
stylesheet, font, script and favicon on the outlet, a photo and ~15 thumbnails per article on a
CDN host served on 127.0.0.2), crawls it with requisites on and again with ``requisites =
false``, times the discovery of requisites per page (the markup read whole, requisites
included, against the head only that an article needs without them), and with ``--wget`` runs
``wget --page-requisites --span-hosts`` beside. ``--wacz`` (with ``--again``) times
``export-wacz`` of the first crawl and of the re-check, whose package carries the first crawl's
captures its revisits stand on.

usage: benchmarks/crawl.py [--articles 2000 10000 ...] [--discovery sitemap|links] [--wget]
                           [--again [--wacz]] [--demo] [--requisites] [--site-script PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import BIN, DEFAULT_SITE_SCRIPT, ROOT, free_port


def _proc_stat(pid: int) -> tuple[int, int, list[int]] | None:
    """(resident bytes, CPU ticks used, children) of a live process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return int(fields[21]) * os.sysconf("SC_PAGE_SIZE"), ticks, children


def _pss(pid: int, rss: int) -> int:
    """Proportional set size: pages shared with other processes (the extraction workers share
    what their fork server loaded) count once across them; RSS where it cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return rss


def measure(cmd: list[str], cwd: Path) -> dict[str, float]:
    """Wall time, peak memory (RSS of the main process, PSS of the whole tree) and CPU seconds
    (main process, its children) of a command, sampled from /proc every 0.1 s."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    peak_tree = peak_main = 0
    cpu: dict[int, int] = {}  # last CPU ticks seen per process
    while proc.poll() is None:
        tree, todo = 0, [proc.pid]
        while todo:
            pid = todo.pop()
            stat = _proc_stat(pid)
            if stat is None:
                continue
            rss, ticks, children = stat
            tree += _pss(pid, rss)
            cpu[pid] = ticks
            todo.extend(children)
            if pid == proc.pid:
                peak_main = max(peak_main, rss)
        peak_tree = max(peak_tree, tree)
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"crawl failed ({proc.returncode}):\n{err[-3000:]}\n{out}")
    hz = os.sysconf("SC_CLK_TCK")
    main_cpu = cpu.pop(proc.pid, 0) / hz
    return {"seconds": time.monotonic() - start, "peak_rss_tree": peak_tree,
            "peak_rss_main": peak_main, "cpu_main": main_cpu,
            "cpu_children": sum(cpu.values()) / hz, "stdout": out}


def crawl(source: str, work: Path, name: str, allow: str, *options: str) -> dict[str, Any]:
    """`source` is an outlet's discovery lines, e.g. ``sitemaps = ["..."]`` (and any other
    outlet settings); `options` go to ``newsarchive crawl``."""
    config = work / f"{name}.toml"
    config.write_text(f"""
[archive]
uri = "{work / 'archive'}"
[crawl]
user_agent = "newsarchive-bench/0.1 (+https://example.org/contact)"
# politeness off: the server is ours, on 127.0.0.1
autothrottle = false
concurrency = 16
depth = 3
[[outlets]]
name = "{name}"
{source}
allow = ['{allow}']
""")
    figures = measure([str(BIN / "newsarchive"), "crawl", "-c", str(config), *options], work)
    crawl_dir = max(d for d in (work / "archive" / "crawls").iterdir()
                    if d.name.startswith(name + "-"))  # the newest: crawl ids sort by time
    counts = json.loads((crawl_dir / "manifest.json").read_text())["counts"]
    requisites = re.search(r"requisites \((?:[^)]*, )?fetched (\d+)", figures["stdout"])
    figures.update(crawl_id=crawl_dir.name, pages=counts["responses"],
                   articles=counts["text_records"],
                   warc_mb=counts["warc_bytes"] / 1e6,
                   requisites=int(requisites.group(1)) if requisites else 0,
                   revisits=sum(v for k, v in counts.items() if k.startswith("revisits/")))
    return figures


def wget(url: str, work: Path, *options: str) -> dict[str, float]:
    """wget's recursive crawl with a gzip WARC, as the reference (it extracts nothing)."""
    out = Path(tempfile.mkdtemp(prefix="wget-", dir=work))
    figures = measure(["wget", "--recursive", "--level=inf", "--no-parent", "--quiet",
                       "--no-verbose", "-e", "robots=off", "--warc-file=" + str(out / "site"),
                       "--no-warc-keep-log", "-P", str(out), *options, url], work)
    figures["pages"] = sum(1 for p in out.rglob("*") if p.is_file() and p.suffix != ".gz")
    return figures


def discovery_cost(site: Path, pages: int = 300) -> dict[str, float]:
    """Milliseconds of CPU per page that finding requisites costs: in the crawl process, for a
    page it reads whole anyway (a section page: read with requisites against without), and
    in an extraction worker, for an article (read from the tree it parses anyway)."""
    sys.path.insert(0, str(ROOT))
    from crawler.discovery.css import InlineStyles
    from crawler.discovery.markup import read_markup, tree_requisites
    from crawler.extraction.document import parse_html

    files = sorted((site / "www" / "news").rglob("*.html"))[:pages]
    bodies = [(f.read_bytes(), "http://127.0.0.1/" + f.name) for f in files]
    trees = [(parse_html(body), url) for body, url in bodies]
    styles = InlineStyles()

    def per_page(read: Callable[[Any, str], Any], inputs: list[tuple[Any, str]]) -> float:
        start = time.process_time()
        for page, url in inputs:
            read(page, url)
        return (time.process_time() - start) * 1000 / len(inputs)

    return {"whole": per_page(read_markup, bodies),
            "whole_with": per_page(lambda b, u: read_markup(b, u, styles=styles), bodies),
            "worker": per_page(lambda t, u: tree_requisites(t, u, styles), trees)}


def export(work: Path, crawl_id: str, label: str) -> None:
    """`newsarchive export-wacz` of one crawl: time, peak memory, the package and what it
    says it carries."""
    package = work / f"{crawl_id}.wacz"
    f = measure([str(BIN / "newsarchive"), "export-wacz", "--archive", str(work / "archive"),
                 "--crawl", crawl_id, "-o", str(package)], work)
    carried = re.search(r"(\d+) capture\(s\) of earlier crawls", f["stdout"])
    print(f"  export-wacz, {label}: {f['seconds']:.1f} s, peak RSS "
          f"{f['peak_rss_main'] / 2**20:.0f} MiB, {package.stat().st_size / 1e6:.1f} MB, "
          f"{carried.group(1) if carried else '?'} originals carried")
    package.unlink()


def cpu_seconds(pid: int) -> float:
    """CPU time a live process has used so far."""
    stat = _proc_stat(pid)
    return stat[1] / os.sysconf("SC_CLK_TCK") if stat else 0.0


def served(server: subprocess.Popen, run: Callable[..., dict[str, float]], *args: Any
           ) -> dict[str, float]:
    """`run(*args)`'s figures plus the CPU the server spent answering it (it shares the
    cores)."""
    before = cpu_seconds(server.pid)
    figures = run(*args)
    figures["cpu_server"] = cpu_seconds(server.pid) - before
    return figures


def report(label: str, f: dict[str, float]) -> None:
    requisites = f.get("requisites", 0)
    rate = f", {requisites} requisites ({requisites / f['seconds']:.1f}/s)" if requisites else ""
    print(f"{label}: {f['pages']} pages ({f['articles']} articles) in {f['seconds']:.1f} s = "
          f"{f['pages'] / f['seconds']:.1f} pages/s, {f['articles'] / f['seconds']:.1f} "
          f"articles/s{rate}; CPU ms/page: crawl process {f['cpu_main'] * 1000 / f['pages']:.1f}, "
          f"extraction workers {f['cpu_children'] * 1000 / f['pages']:.1f}, "
          f"server {f['cpu_server'] * 1000 / f['pages']:.1f}; "
          f"WARC {f['warc_mb']:.1f} MB; peak RSS main process "
          f"{f['peak_rss_main'] / 2**20:.0f} MiB, whole tree PSS (with extraction workers) "
          f"{f['peak_rss_tree'] / 2**20:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, nargs="*", default=[2000])
    ap.add_argument("--discovery", choices=("sitemap", "links"), default="sitemap")
    ap.add_argument("--wget", action="store_true", help="also time wget on the same site")
    ap.add_argument("--demo", action="store_true", help="also crawl the bundled sample outlet")
    ap.add_argument("--again", action="store_true",
                    help="crawl each site a second time with --recheck (every article "
                         "re-checked with a conditional request: revisit records)")
    ap.add_argument("--wacz", action="store_true",
                    help="with --again: time export-wacz of both crawls")
    ap.add_argument("--requisites", action="store_true",
                    help="pages load a stylesheet, font, script, favicon and CDN images: crawl "
                         "with requisites and without")
    ap.add_argument("--site-script", type=Path, default=DEFAULT_SITE_SCRIPT)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; server: python -m http.server in its own process")
    with tempfile.TemporaryDirectory(prefix="na-bench-") as tmp:
        work = Path(tmp)
        if args.demo:
            sys.path.insert(0, str(ROOT))
            from crawler.jobs.demo import SAMPLE_SITE

            port = free_port()
            server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind",
                                       "127.0.0.1", str(port), "-d", str(SAMPLE_SITE)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(0.5)
                report("demo outlet", served(server, crawl, f'start_urls = ["http://127.0.0.1:{port}/"]',
                                            work, "demo", r"/news/\d{4}/"))
            finally:
                server.terminate()
        for n in args.articles:
            port = free_port()
            site = work / f"site{n}"
            cdn_url = f"http://127.0.0.2:{port}"  # the same free port, on another address
            subprocess.run([sys.executable, str(args.site_script), "--out", str(site),
                            "--articles", str(n), "--base-url", f"http://127.0.0.1:{port}",
                            *(("--requisites", "--cdn-url", cdn_url) if args.requisites
                              else ())], check=True, stdout=subprocess.DEVNULL)
            server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind",
                                       "127.0.0.1", str(port), "-d", str(site / "www")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cdn = subprocess.Popen([sys.executable, "-m", "http.server", "--bind",
                                    "127.0.0.2", str(port), "-d", str(site / "cdn")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                                   ) if args.requisites else None
            try:
                time.sleep(0.5)
                base = f"http://127.0.0.1:{port}"
                source = (f'sitemaps = ["{base}/sitemap.xml"]' if args.discovery == "sitemap"
                          else f'start_urls = ["{base}/"]')
                ours = served(server, crawl, source, work, f"site{n}", "/news/")
                report(f"{n}-article site, {args.discovery} discovery", ours)
                if args.requisites:
                    without = served(server, crawl, source + "\nrequisites = false", work,
                                     f"bare{n}", "/news/")
                    report("  the same with requisites = false", without)
                    cost = discovery_cost(site)
                    print(f"  discovery of requisites, CPU ms per page: crawl process, a page "
                          f"read whole {cost['whole_with'] - cost['whole']:.2f} "
                          f"({cost['whole_with']:.2f} with, {cost['whole']:.2f} without), an "
                          f"article 0 (its head only, as without); extraction worker, an article "
                          f"{cost['worker']:.2f}")
                if args.wget:
                    options = ("--page-requisites", "--span-hosts",
                               "--domains=127.0.0.1,127.0.0.2") if args.requisites else ()
                    ref = served(server, wget, base + "/", work, *options)
                    ratio = (ours["pages"] / ours["seconds"]) / (ref["pages"] / ref["seconds"])
                    print(f"  wget: {ref['pages']} pages in {ref['seconds']:.1f} s = "
                          f"{ref['pages'] / ref['seconds']:.1f} pages/s, peak memory "
                          f"{ref['peak_rss_tree'] / 2**20:.0f} MiB, CPU ms/page: wget "
                          f"{ref['cpu_main'] * 1000 / ref['pages']:.1f}, server "
                          f"{ref['cpu_server'] * 1000 / ref['pages']:.1f}; newsarchive/wget "
                          f"pages/s = {ratio:.2f}")
                if args.again:
                    again = crawl(source, work, f"site{n}", "/news/", "--recheck")
                    print(f"  again, --recheck: {again['pages']} pages in "
                          f"{again['seconds']:.1f} s = {again['pages'] / again['seconds']:.1f} "
                          f"pages/s; {again['revisits']} revisit records, {again['articles']} "
                          f"new text records, WARC {again['warc_mb']:.1f} MB; CPU ms/page: "
                          f"crawl process {again['cpu_main'] * 1000 / again['pages']:.1f}; peak "
                          f"RSS main process {again['peak_rss_main'] / 2**20:.0f} MiB")
                    if args.wacz:
                        for label, crawled in (("first crawl", ours), ("re-check", again)):
                            export(work, crawled["crawl_id"], label)
            finally:
                server.terminate()
                if cdn is not None:
                    cdn.terminate()


if __name__ == "__main__":
    main()
