"""`newsarchive extract PATH...`: the crawl's extraction run on local HTML files, one JSON line
per file (crawler.readers.extract_files)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from crawler.cli.main import EXIT_OK
from crawler.errors import UsageError
from crawler.readers.extract_files import extract_files, files_under


def add_commands(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser
                 ) -> None:
    cmd = subparsers.add_parser(
        "extract", parents=[common],
        help="extract clean text from local HTML files (plain or .gz), one JSON line per file")
    cmd.add_argument("paths", nargs="+", metavar="PATH",
                     help="HTML files, .gz files, or directories (every file under them)")
    cmd.add_argument("--url", help="the page's URL (one file only; default: the page's "
                     "canonical link or og:url)")
    cmd.add_argument("--lang", help="the language you expect, recorded as language_expected "
                     "beside the detected one (as an outlet's `language`)")
    cmd.add_argument("--prune", action="append", default=[], metavar="SELECTOR",
                     help="CSS selector removed before extraction (repeatable)")
    cmd.add_argument("--body", metavar="SELECTOR", help="CSS selector of the article container")
    cmd.add_argument("--no-templates", action="store_true",
                     help="do not learn templates across the files")
    cmd.add_argument("-o", "--output", help="write to this file instead of stdout")
    cmd.set_defaults(func=cmd_extract)


def cmd_extract(args: argparse.Namespace) -> int:
    files = files_under(args.paths)
    if not files:
        raise UsageError("no files to extract")
    if args.url and len(files) > 1:
        raise UsageError("--url names one page: give it with a single file")
    records = extract_files(files, args.url, args.lang, tuple(args.prune), args.body,
                            learn_templates=not args.no_templates)
    out: TextIO = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        if args.output:
            out.close()
    return EXIT_OK
