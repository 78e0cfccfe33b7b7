"""`newsarchive report`: the operator's view of the archive as one HTML file
(crawler.readers.report)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from crawler.cli.dump import _date_prefix
from crawler.cli.main import EXIT_OK
from crawler.config import load_config
from crawler.errors import UsageError
from crawler.readers.progress import Progress
from crawler.readers.report import write_report
from crawler.store.backends import open_store


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    report = sub.add_parser(
        "report", parents=[common], help="an HTML report: articles per day, extraction health, "
        "crawl runs, edited articles",
        description="One self-contained HTML file over the archive's crawls (opens offline).")
    report.add_argument("-o", "--output", default="report.html", metavar="FILE",
                        help="where to write it (default: report.html)")
    report.add_argument("--since", type=_date_prefix, metavar="DATE",
                        help="only crawls started on DATE or later (YYYY-MM-DD, YYYY-MM, YYYY)")
    report.add_argument("--replay-url", metavar="URL",
                        help="where `newsarchive replay` serves this archive, e.g. "
                             "http://127.0.0.1:8080: edited articles link into it")
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = open_store(config.archive, args.archive or config.archive.uri)
    html = write_report(store, args.since, args.replay_url, Progress(sys.stderr, "report"))
    path = Path(args.output)
    part = path.with_name(path.name + ".part")
    try:
        part.write_text(html, "utf-8")
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise UsageError(f"-o {args.output}: {exc.strerror or exc}") from None
    print(f"report written to {path}")
    return EXIT_OK
