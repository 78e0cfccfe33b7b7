"""`newsarchive crawl`, `demo` and `ls`: crawl outlets into the archive, archive the bundled
sample outlet, list the archive's crawls."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from crawler.cli.main import EXIT_FAILED, EXIT_NO_TEXT, EXIT_OK, EXIT_SPOOLED
from crawler.config import Config, load_config, parse_config, parse_since, redis_url_problem
from crawler.errors import NewsarchiveError, UsageError
from crawler.health import alert_lines, flagged
from crawler.job import CrawlJob
from crawler.jobs.cluster import join_crawl
from crawler.jobs.crawl import run_crawl
from crawler.jobs.resume import interrupted_jobdir
from crawler.layout import crawl_prefix, worker_files_key
from crawler.readers.listing import complete_crawls, list_crawls, text_records
from crawler.records import extraction_failures
from crawler.store.backends import open_store
from crawler.store.run_records import print_last_runs


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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
    crawl.add_argument("--redis", metavar="URL",
                       help="run as one worker of the job's crawl shared through this Redis "
                       "(redis://HOST:6379/0; default: the config's [cluster] redis): workers "
                       "with the same job and Redis crawl one crawl together")
    crawl.set_defaults(func=cmd_crawl)

    demo = sub.add_parser("demo", parents=[common],
                          help="serve the bundled sample outlet on 127.0.0.1 and archive it")
    demo.set_defaults(func=cmd_demo)

    ls = sub.add_parser("ls", parents=[common], help="crawls in the archive")
    ls.add_argument("--json", action="store_true", help="one JSON object per crawl")
    ls.set_defaults(func=cmd_ls)


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
    redis = args.redis or config.cluster.redis
    if redis and args.resume:
        raise UsageError("--resume continues a crawl run alone; a shared crawl is continued by "
                         "starting its workers again")
    if args.redis and (problem := redis_url_problem(args.redis)):
        raise UsageError(f"--redis: {problem}")
    if redis:
        job = join_crawl(job, redis)
    if args.resume:
        job = CrawlJob.resumed(config, interrupted_jobdir(job, args.resume))
    return crawl_and_report(job, args.log_level)


def crawl_exit_code(result: dict[str, Any], stats: dict[str, Any]) -> int:
    """What a crawl exits with: failed if it never committed or a write error stopped it,
    spooled if files stay behind, no text if some articles lost their text to a failed
    extraction."""
    if not result or result.get("write_failure") or result.get("redis_lost"):
        return EXIT_FAILED
    if result.get("spooled"):
        return EXIT_SPOOLED
    return EXIT_NO_TEXT if extraction_failures(stats) else EXIT_OK


def crawl_and_report(job: CrawlJob, log_level: str = "WARNING", out: TextIO = sys.stdout) -> int:
    """Run one crawl job to the end and print its summary; the exit code says how it went."""
    outcome = run_crawl(job, log_level, exit_code=crawl_exit_code)
    run = outcome.run
    failure = run.failure if run else None
    if not outcome.result:
        if run and failure:
            raise NewsarchiveError(
                f"{failure}: crawl {job.crawl_id} stopped, nothing committed, "
                f"{len(run.delivery.files)} finished file(s) kept in {run.spool.root}; free "
                f"space, then `newsarchive crawl --resume {job.crawl_id}` completes it")
        raise NewsarchiveError(f"crawl {job.crawl_id} did not finish; see the log above")
    if "worker" in outcome.result:  # a worker of a shared crawl that did not write its manifest
        return _report_worker(job, outcome.run, outcome.stats, outcome.result, out)
    _print_summary(outcome.run, outcome.stats, outcome.result, out)
    if failure:
        raise NewsarchiveError(
            f"{failure}: crawl {job.crawl_id} stopped; its {len(outcome.result['files'])} "
            f"file(s) are committed, the next crawl fetches what it did not reach")
    return crawl_exit_code(outcome.result, outcome.stats)


def _report_worker(job: CrawlJob, run: Any, stats: dict[str, Any], result: dict[str, Any],
                   out: TextIO) -> int:
    """A worker's part of a shared crawl: what it archived; the manifest is the last worker's.
    A worker that lost Redis says so in one line and fails."""
    counts = result["counts"]
    print(f"worker {result['worker']} of crawl {result['crawl_id']}: "
          f"{counts.get('responses', 0)} pages fetched, {counts.get('text_records', 0)} articles,"
          f" {counts.get('warc_files', 0)} WARC file(s), finished: {result['finish_reason']}; "
          f"the manifest is written by the last worker to finish", file=out)
    for outlet in result["outlets"]:
        print("  " + outlet_summary(outlet, stats), file=out)
    if result.get("redis_lost"):
        raise NewsarchiveError(
            f"{result['redis_lost']}: worker {result['worker']} stopped; its "
            f"{len(result['files'])} file(s) are in {run.store.uri} and listed in "
            f"{worker_files_key(result['crawl_id'], result['worker'])}; crawl "
            f"{result['crawl_id']} is not complete: start the workers again (with Redis back)")
    return crawl_exit_code(result, stats)


def _print_summary(run: Any, stats: dict[str, Any], result: dict[str, Any], out: TextIO) -> None:
    counts = result["counts"]
    print(f"crawl {result['crawl_id']} ({', '.join(result['outlets'])}): "
          f"{counts.get('responses', 0)} responses (pages and what they load), "
          f"{counts.get('text_records', 0)} articles, {counts.get('warc_files', 0)} WARC file(s), "
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
    if failures := extraction_failures(stats):
        print(f"  WARNING: {failures} article(s) without text (extraction failed); the next "
              f"crawl extracts them again", file=out)
    for line in alert_lines(result["crawl_id"], result.get("health", {})):
        print(f"  WARNING: {line}", file=out)
    if result.get("spooled"):
        print(f"  WARNING: the archive store did not take every file ({result['upload_failure']})"
              f"; {len(result['spooled'])} file(s) kept in {run.spool.root} and uploaded by the "
              f"next run", file=out)
    else:
        print(f"  archived to {run.store.uri}/{crawl_prefix(result['crawl_id'])}/", file=out)


def outlet_summary(outlet: str, stats: dict[str, Any]) -> str:
    """One line of an outlet's crawl stats: candidates by source, fetched, articles, what pages
    loaded (requisites), skipped, refused and errors."""
    prefix = f"newsarchive/outlet/{outlet}/"
    mine = {k[len(prefix):]: v for k, v in stats.items() if k.startswith(prefix)}

    def group(name: str) -> str:
        items = sorted((k.split("/", 1)[1], v) for k, v in mine.items()
                       if k.startswith(name + "/"))
        return ", ".join(f"{k} {v}" for k, v in items) or "none"

    failed = mine.get("articles/failed", 0)
    return (f"{outlet}: candidates ({group('candidates')}); fetched {mine.get('fetched', 0)}; "
            f"articles {mine.get('articles', 0)} (+ {mine.get('articles/unchanged', 0)} "
            f"unchanged)"
            f"{f', {failed} without text (extraction failed)' if failed else ''}; "
            f"requisites ({group('requisites')}); "
            f"skipped ({group('skipped')}); "
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
        code = crawl_and_report(CrawlJob.create(config), args.log_level)
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
                              "broken": c.broken, "objects": c.objects, "bytes": c.size,
                              "counts": (c.manifest or {}).get("counts", {}),
                              "health_flags": flagged((c.manifest or {}).get("health", {}))}))
        return EXIT_OK
    if not crawls:
        print(f"no crawls in {store.uri}")
        return EXIT_OK
    print(f"{'crawl':<40} {'status':<10} {'pages':>7} {'articles':>8} {'size':>10}  outlets "
          f"(HEALTH: flags)")
    for c in crawls:
        m = c.manifest or {}
        counts = m.get("counts", {})
        status = "complete" if m else "BROKEN" if c.broken else "INCOMPLETE"
        print(f"{c.crawl_id:<40} {status:<10} "
              f"{counts.get('responses', '-'):>7} {counts.get('text_records', '-'):>8} "
              f"{c.size / 1e6:>8.2f}MB  {', '.join(m.get('outlets', []))}"
              + "".join(f" HEALTH {outlet}: {', '.join(flags)}"
                        for outlet, flags in flagged(m.get("health", {})).items()))
    for c in crawls:
        if c.broken:
            print(f"BROKEN: {c.broken}; readers skip crawl {c.crawl_id}")
    if any(c.manifest is None and not c.broken for c in crawls):
        print("INCOMPLETE: still running, or interrupted; `newsarchive crawl --resume CRAWL_ID` "
              "on the machine that ran it completes an interrupted crawl")
    print_last_runs(store, sys.stdout)
    return EXIT_OK
