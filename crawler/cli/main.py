"""The `newsarchive` command line.

Every command takes ``-c/--config`` (default ``newsarchive.toml`` when present) and ``--archive``
(default: the config's ``[archive] uri``, then ``./archive``). Failures exit non-zero with one
line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from crawler import __version__
from crawler.config import Config, load_config, parse_config, parse_since
from crawler.errors import NewsarchiveError, UsageError
from crawler.job import CrawlJob
from crawler.readers.listing import complete_crawls, list_crawls, text_records
from crawler.store.backends import open_store
from crawler.store.run_records import print_last_runs

EXIT_OK, EXIT_FAILED, EXIT_SPOOLED = 0, 1, 3


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_FAILED
    try:
        return args.func(args)
    except NewsarchiveError as exc:
        if args.debug:
            raise
        print(f"newsarchive: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


# Modules that add commands of their own: each has ``add_commands(subparsers, common)``, whose
# handlers take the parsed arguments and return the exit code.
COMMAND_MODULES: tuple[str, ...] = (
    "crawler.cli.replay", "crawler.cli.reextract", "crawler.cli.verify", "crawler.cli.wacz",
    "crawler.cli.dump", "crawler.cli.extract", "crawler.cli.schedule")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", help="config file (default: newsarchive.toml if present)")
    common.add_argument("--archive", help="archive URI: a directory or s3://bucket/prefix")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    common.add_argument("--log-level", default="WARNING", help="Scrapy log level (INFO, DEBUG..)")

    parser = argparse.ArgumentParser(prog="newsarchive", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"newsarchive {__version__}")
    sub = parser.add_subparsers(dest="command")

    crawl = sub.add_parser("crawl", parents=[common], help="crawl outlets into the archive")
    crawl.add_argument("outlets", nargs="*", help="outlet names (default: all in the config)")
    crawl.add_argument("--job", help="job name used in the crawl id (default: the lone outlet's"
                       " name, else 'all')")
    crawl.add_argument("--max-pages", type=int, help="override every outlet's max_pages")
    crawl.add_argument("--since", help="skip feed/sitemap entries dated before this: a date "
                       "(2025-08-01) or a window back from now (2d, 12h, 1w)")
    crawl.add_argument("--recheck", action="store_true",
                       help="re-check every archived article of the job now (conditional "
                       "requests), whatever the outlets' recheck policy says")
    crawl.add_argument("--resume", nargs="?", const="latest", metavar="CRAWL_ID",
                       help="continue the job's crawl that was killed before it finished (or "
                       "the crawl CRAWL_ID) under its own crawl id, outlets and options")
    crawl.set_defaults(func=cmd_crawl)

    demo = sub.add_parser("demo", parents=[common],
                          help="serve the bundled sample outlet on 127.0.0.1 and archive it")
    demo.set_defaults(func=cmd_demo)

    ls = sub.add_parser("ls", parents=[common], help="crawls in the archive")
    ls.add_argument("--json", action="store_true", help="one JSON object per crawl")
    ls.set_defaults(func=cmd_ls)

    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub, common)
    return parser


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def _archive_uri(args: argparse.Namespace, config: Config) -> str:
    return args.archive or config.archive.uri


# ---------------------------------------------------------------- crawl


def cmd_crawl(args: argparse.Namespace) -> int:
    config = _config(args)
    if not config.outlets:
        raise UsageError(f"{config.source}: no [[outlets]] to crawl")
    overrides: dict[str, Any] = {}
    if args.max_pages is not None:
        overrides["max_pages"] = args.max_pages
    if args.since:
        try:
            parse_since(args.since)
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from None
        overrides["since"] = args.since
    job = CrawlJob.create(config, args.outlets, args.archive, args.job, overrides=overrides,
                          recheck=args.recheck)
    if args.resume:
        job = CrawlJob.resumed(config, interrupted_jobdir(job, args.resume))
    return run_crawl(job, args.log_level)


def interrupted_jobdir(job: CrawlJob, which: str) -> Path:
    """The work directory of the interrupted crawl to resume, or a one-line error."""
    from crawler.crawl.resume import find_interrupted

    jobdir = find_interrupted(job, which, open_store(job.config.archive, job.archive_uri))
    if jobdir is None:
        what = f"crawl {which}" if which != "latest" else f"crawl of job {job.name!r}"
        raise UsageError(f"no interrupted {what} to resume (nothing left unfinished in "
                         f"{job.jobdir.parent})")
    return jobdir


def run_crawl(job: CrawlJob, log_level: str = "WARNING", out: TextIO = sys.stdout) -> int:
    """Run one crawl job to the end and print its summary; the exit code says how it went."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.crawl.settings")
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.project import get_project_settings

    from crawler.crawl.archiving import ArchiveRun
    from crawler.crawl.spider import OutletSpider
    from crawler.store.run_records import record_run, run_record

    store = open_store(job.config.archive, job.archive_uri)  # a bad URI fails before any fetch
    settings = get_project_settings()
    settings.set("LOG_LEVEL", log_level.upper(), priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(OutletSpider)
    process.crawl(crawler, job=job)
    process.start()
    run = ArchiveRun.from_crawler(crawler)
    result: dict[str, Any] = getattr(run, "result", None) or {}
    code = EXIT_FAILED if not result else EXIT_SPOOLED if result.get("spooled") else EXIT_OK
    record_run(store, run_record(job, result, crawler.stats.get_stats(), code))
    if not result:
        raise NewsarchiveError(f"crawl {job.crawl_id} did not finish; see the log above")
    _print_summary(run, crawler.stats.get_stats(), result, out)
    return code


def _print_summary(run: Any, stats: dict[str, Any], result: dict[str, Any], out: TextIO) -> None:
    counts = result["counts"]
    print(f"crawl {result['crawl_id']} ({', '.join(result['outlets'])}): "
          f"{counts.get('responses', 0)} pages fetched, {counts.get('text_records', 0)} articles,"
          f" {counts.get('warc_files', 0)} WARC file(s), "
          f"{counts.get('warc_bytes', 0) / 1e6:.2f} MB, "
          f"{sum(v for k, v in counts.items() if k.startswith('revisits/'))} revisit records, "
          f"finished: {result['finish_reason']}",
          file=out)
    for outlet in result["outlets"]:
        print("  " + outlet_summary(outlet, stats), file=out)
    if stats.get("newsarchive/resumed/from_archive"):
        print(f"  resumed: {stats['newsarchive/resumed/from_archive']} page(s) captured before "
              f"the interruption were read back from the crawl's own WARCs, not fetched again",
              file=out)
    if result.get("spooled"):
        print(f"  WARNING: the archive store did not take every file ({result['upload_failure']})"
              f"; {len(result['spooled'])} file(s) kept in {run.spool.root} and uploaded by the "
              f"next run", file=out)
    else:
        print(f"  archived to {run.store.uri}/crawls/{result['crawl_id']}/", file=out)


def outlet_summary(outlet: str, stats: dict[str, Any]) -> str:
    """One line of an outlet's crawl stats: candidates by source, fetched, articles, skipped,
    refused and errors."""
    prefix = f"newsarchive/outlet/{outlet}/"
    mine = {k[len(prefix):]: v for k, v in stats.items() if k.startswith(prefix)}

    def group(name: str) -> str:
        items = sorted((k.split("/", 1)[1], v) for k, v in mine.items()
                       if k.startswith(name + "/"))
        return ", ".join(f"{k} {v}" for k, v in items) or "none"

    return (f"{outlet}: candidates ({group('candidates')}); fetched {mine.get('fetched', 0)}; "
            f"articles {mine.get('articles', 0)} (+ {mine.get('articles/unchanged', 0)} "
            f"unchanged); skipped ({group('skipped')}); "
            f"refused ({group('refused')}); responses >= 300 ({group('status')}); "
            f"errors ({group('errors')}); feed/sitemap errors {mine.get('discovery_errors', 0)}")


# ---------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    from crawler.jobs.demo import OutletServer

    archive = args.archive or "./archive"
    with OutletServer() as server:
        config = parse_config({
            "archive": {"uri": archive},
            "crawl": {"user_agent": "newsarchive-demo/0.1 (+https://example.org/newsarchive)"},
            "outlets": [{"name": "techwire", "start_urls": [server.url],
                         "allow": [r"/news/\d{4}/\d{2}/"], "language": "ru"}],
        }, "(demo)")
        print(f"serving the bundled sample outlet at {server.url}")
        code = run_crawl(CrawlJob.create(config), args.log_level)
    store = open_store(config.archive, archive)
    # newest first: a second demo finds the articles archived already, with no new text
    sample = next(text_records(store, reversed(complete_crawls(store))), None)
    if sample:
        print(f"\nsample article: {sample['title']} ({sample['language']}, {sample['date']})")
        print(f"  {sample['url']}")
        print("  " + sample["text"][:300].replace("\n\n", "\n  ") + " ...")
        print(f"  capture: {sample['warc_file']} @ {sample['warc_offset']}")
    print(f"\nnext:\n  newsarchive ls --archive {archive}\n"
          f"  newsarchive dump --archive {archive} --format txt | less\n"
          f"  newsarchive replay --archive {archive}   # then open http://127.0.0.1:8080/")
    return code


# ---------------------------------------------------------------- ls


def cmd_ls(args: argparse.Namespace) -> int:
    config = _config(args)
    store = open_store(config.archive, _archive_uri(args, config))
    crawls = list_crawls(store)
    if args.json:
        for c in crawls:
            print(json.dumps({"crawl_id": c.crawl_id, "complete": c.manifest is not None,
                              "objects": c.objects, "bytes": c.size,
                              "counts": (c.manifest or {}).get("counts", {})}))
        return EXIT_OK
    if not crawls:
        print(f"no crawls in {store.uri}")
        return EXIT_OK
    print(f"{'crawl':<40} {'status':<10} {'pages':>7} {'articles':>8} {'size':>10}  outlets")
    for c in crawls:
        m = c.manifest or {}
        counts = m.get("counts", {})
        print(f"{c.crawl_id:<40} {'complete' if m else 'INCOMPLETE':<10} "
              f"{counts.get('responses', '-'):>7} {counts.get('text_records', '-'):>8} "
              f"{c.size / 1e6:>8.2f}MB  {', '.join(m.get('outlets', []))}")
    if any(c.manifest is None for c in crawls):
        print("INCOMPLETE: still running, or interrupted; `newsarchive crawl --resume CRAWL_ID` "
              "on the machine that ran it completes an interrupted crawl")
    print_last_runs(store, sys.stdout)
    return EXIT_OK


if __name__ == "__main__":
    logging.basicConfig()
    sys.exit(main())
