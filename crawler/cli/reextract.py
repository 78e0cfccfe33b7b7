"""`newsarchive reextract`: extraction re-run over stored WARCs, written as a new text version
(crawler.readers.reextract)."""

from __future__ import annotations

import argparse

from crawler.cli.main import EXIT_OK
from crawler.config import load_config
from crawler.errors import UsageError
from crawler.readers.listing import complete_crawls
from crawler.readers.reextract import reextract_crawls
from crawler.store.backends import open_store


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser("reextract", parents=[common],
                         help="re-run extraction over stored WARCs into a new text version")
    cmd.add_argument("--crawl", action="append", default=[],
                     help="only this crawl id (repeatable; default: every complete crawl)")
    cmd.add_argument("--workers", type=int, default=0,
                     help="extraction processes (default: one per CPU)")
    cmd.set_defaults(func=cmd_reextract)


def cmd_reextract(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    uri = args.archive or config.archive.uri
    store = open_store(config.archive, uri)
    manifests = complete_crawls(store, args.crawl)
    missing = set(args.crawl) - {m["crawl_id"] for m in manifests}
    if missing:
        raise UsageError(f"no complete crawl {', '.join(sorted(missing))} in {store.uri}")
    if not manifests:
        print(f"no complete crawls in {store.uri}")
        return EXIT_OK
    for result in reextract_crawls(store, manifests, config, uri, args.workers):
        print(result.summary())
    return EXIT_OK
