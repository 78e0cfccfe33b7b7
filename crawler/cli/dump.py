"""`newsarchive dump`: the archive's clean text, filtered, deduplicated, as JSON Lines, text, WET
or Parquet, or a dataset card (crawler.readers.dump)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date

from crawler.cli.main import EXIT_OK
from crawler.config import load_config
from crawler.errors import UsageError
from crawler.readers.dump import (
    Selection,
    complete_manifests,
    select_shards,
    write_dump,
)
from crawler.readers.dump_formats import FORMATS, Output
from crawler.readers.progress import Progress
from crawler.records import CORE_FIELDS
from crawler.store.backends import open_store

DATE_HELP = ("published date, or the fetch date for documents without one; YYYY-MM-DD, YYYY-MM "
             "or YYYY, inclusive")


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser(
        "dump", parents=[common], help="clean-text dump of the complete crawls",
        description="Clean article text of the archive's complete crawls, each article once "
                    "(the latest version of a URL; of near-duplicates across URLs, the earliest "
                    "published), to stdout or a file.")
    cmd.add_argument("--format", choices=FORMATS, default="jsonl",
                     help="jsonl: text records; txt: a block per document; wet: WARC conversion "
                          "records; parquet: typed columns (default: jsonl)")
    cmd.add_argument("-o", "--output", metavar="FILE",
                     help="write to FILE instead of stdout; FILE.gz and FILE.zst are compressed")
    cmd.add_argument("--fields", help="comma-separated columns for jsonl and parquet (default: "
                     "all): " + ",".join(CORE_FIELDS))
    cmd.add_argument("--outlet", action="append", default=[], metavar="NAME",
                     help="only this outlet (repeatable)")
    cmd.add_argument("--lang", action="append", default=[], metavar="CODE",
                     help="only this detected language (repeatable; 'und': not detected)")
    cmd.add_argument("--crawl", action="append", default=[], metavar="ID",
                     help="only this crawl (repeatable; default: every complete crawl)")
    cmd.add_argument("--since", type=_date_prefix, metavar="DATE",
                     help=f"only documents dated DATE or later: {DATE_HELP}")
    cmd.add_argument("--until", type=_date_prefix, metavar="DATE",
                     help=f"only documents dated DATE or earlier: {DATE_HELP}")
    cmd.add_argument("--min-words", type=int, default=0, metavar="N",
                     help="only documents whose text has at least N words")
    cmd.add_argument("--url-glob", action="append", default=[], metavar="GLOB",
                     help="only URLs matching this shell pattern, e.g. '*/news/2025/*' "
                          "(repeatable)")
    dedup = cmd.add_mutually_exclusive_group()
    dedup.add_argument("--no-dedup", action="store_true",
                       help="keep every document: every version, every near-duplicate")
    dedup.add_argument("--keep-versions", action="store_true",
                       help="keep every version of a URL (near-duplicates across URLs still go)")
    cmd.add_argument("--stats", action="store_true",
                     help="print a dataset card (documents and words by outlet, language and "
                          "month) instead of the texts")
    cmd.set_defaults(func=cmd_dump)


def _date_prefix(value: str) -> str:
    if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
        raise argparse.ArgumentTypeError(f"{value!r}: expected YYYY-MM-DD, YYYY-MM or YYYY")
    try:
        date.fromisoformat((value + "-01-01")[:10])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: not a date") from None
    return value


def cmd_dump(args: argparse.Namespace) -> int:
    from crawler.readers.neardup import Deduplicator  # numpy: only when a dump runs

    fields = tuple(f.strip() for f in args.fields.split(",") if f.strip()) if args.fields else None
    if fields:
        unknown = [f for f in fields if f not in CORE_FIELDS]
        if unknown:
            raise UsageError(f"--fields: unknown field(s) {', '.join(unknown)}; known: "
                             + ",".join(CORE_FIELDS))
        if args.format not in ("jsonl", "parquet") or args.stats:
            raise UsageError("--fields applies to the jsonl and parquet formats")
    output_path = args.output
    if args.format == "parquet" and not args.stats and output_path and \
            output_path.endswith((".gz", ".zst")):
        raise UsageError("parquet files are compressed inside: write FILE.parquet")
    config = load_config(args.config)
    store = open_store(config.archive, args.archive or config.archive.uri)
    manifests = complete_manifests(store, args.crawl)
    selection = Selection(set(args.outlet), set(args.lang), args.since, args.until,
                          args.min_words, tuple(args.url_glob))
    shards = select_shards(store, manifests, selection)
    dedup = None if args.no_dedup else Deduplicator(keep_versions=args.keep_versions)

    try:
        output = Output(output_path)
    except OSError as exc:
        raise UsageError(f"-o {output_path}: {exc.strerror}") from None
    result = write_dump(store, manifests, shards, selection, output, Progress(sys.stderr, "dump"),
                        args.format, fields, args.stats, dedup)
    if output_path and not args.stats:
        print(f"{result.written} documents written to {output_path} ({result.summary()})")
    return EXIT_OK
