"""`newsarchive verify`: proof that the archive still holds what its manifests say
(crawler.readers.verify)."""

from __future__ import annotations

import argparse

from crawler.cli.main import EXIT_OK
from crawler.config import load_config
from crawler.errors import ArchiveError, UsageError
from crawler.readers.listing import crawl_ids
from crawler.readers.verify import Verifier
from crawler.store.backends import open_store


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser("verify", parents=[common],
                         help="re-read stored files and check every digest against the manifests")
    cmd.add_argument("--crawl", action="append", default=[],
                     help="only this crawl id (repeatable; default: every complete crawl)")
    cmd.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = open_store(config.archive, args.archive or config.archive.uri)
    verifier = Verifier(store)
    known = crawl_ids(store)
    unknown = sorted(set(args.crawl) - set(known))
    if unknown:
        raise UsageError(f"no crawl {', '.join(unknown)} in {store.uri}")
    for crawl_id in args.crawl or known:
        verifier.verify_crawl(crawl_id, named=bool(args.crawl))
    print(verifier.summary())
    if verifier.problems:
        raise ArchiveError(f"verify: {len(verifier.problems)} problem(s), the first: "
                           f"{verifier.problems[0]}")
    return EXIT_OK
