"""`newsarchive edits` and `newsarchive diff`: articles whose text changed after their first
capture, and what changed between two revisions (crawler.readers.edits)."""

from __future__ import annotations

import argparse
import sys

from crawler.cli.dump import _date_prefix
from crawler.cli.main import EXIT_OK
from crawler.config import load_config
from crawler.readers.edits import edited_articles, two_revisions, word_diff
from crawler.store.backends import ArchiveStore, open_store


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    edits = sub.add_parser("edits", parents=[common],
                           help="articles whose text changed after their first capture")
    edits.add_argument("--outlet", action="append", default=[], metavar="NAME",
                       help="only this outlet (repeatable)")
    edits.add_argument("--since", type=_date_prefix, metavar="DATE",
                       help="only edits fetched on DATE or later (YYYY-MM-DD, YYYY-MM or YYYY)")
    edits.set_defaults(func=cmd_edits)

    diff = sub.add_parser("diff", parents=[common],
                          help="word-level diff of an article between two of its revisions")
    diff.add_argument("url", help="the article's URL, as `edits` lists it")
    diff.add_argument("--from", dest="old", type=int, metavar="N",
                      help="the older revision (default: the one before --to)")
    diff.add_argument("--to", dest="new", type=int, metavar="N",
                      help="the newer revision (default: the latest)")
    diff.set_defaults(func=cmd_diff)


def _store(args: argparse.Namespace) -> ArchiveStore:
    config = load_config(args.config)
    return open_store(config.archive, args.archive or config.archive.uri)


def cmd_edits(args: argparse.Namespace) -> int:
    count = 0
    for edit in edited_articles(_store(args), args.outlet, args.since):
        if not count:
            print(f"{'revisions':>9}  {'first captured':<20}  {'last edited':<20}  "
                  f"{'outlet':<16}  url")
        count += 1
        print(f"{edit.revisions:>9}  {edit.first_seen:<20}  {edit.last_edit:<20}  "
              f"{edit.outlet:<16}  {edit.url}")
    print(f"{count} edited article(s)" if count else "no edited articles", file=sys.stderr)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    old, new = two_revisions(_store(args), args.url, args.old, args.new)
    for sign, record in (("---", old), ("+++", new)):
        print(f"{sign} revision {record.get('revision') or 1}, fetched {record['fetched_at']} "
              f"(crawl {record['crawl_id']}): {record['url']}")
    if (old.get("title") or "") != (new.get("title") or ""):
        print("title: " + " ".join(word_diff(old.get("title") or "", new.get("title") or "")))
    changes = list(word_diff(old.get("text") or "", new.get("text") or ""))
    for change in changes:
        print(f"@@ {change}")
    if not changes:
        print("(same words: only spacing or paragraph breaks changed)")
    return EXIT_OK
