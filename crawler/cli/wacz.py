"""`newsarchive export-wacz`: one crawl as a WACZ package, for ReplayWeb.page
(crawler.readers.wacz)."""

from __future__ import annotations

import argparse
from pathlib import Path

from crawler.cli.main import EXIT_OK
from crawler.config import load_config
from crawler.errors import UsageError
from crawler.readers.listing import complete_crawls
from crawler.readers.wacz import WACZ_VERSION, export_wacz
from crawler.store.backends import open_store


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser("export-wacz", parents=[common],
                         help="a crawl as a WACZ package (WARCs, index, pages with their text)")
    cmd.add_argument("--crawl", required=True, help="the crawl id")
    cmd.add_argument("-o", "--output", required=True, help="the .wacz file to write")
    cmd.add_argument("--title", help="the package's title (default: the crawl id and outlets)")
    cmd.set_defaults(func=cmd_export_wacz)


def cmd_export_wacz(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = open_store(config.archive, args.archive or config.archive.uri)
    manifests = complete_crawls(store, [args.crawl])
    if not manifests:
        raise UsageError(f"no complete crawl {args.crawl} in {store.uri}")
    try:
        package = export_wacz(store, manifests[0], Path(args.output), args.title)
    except OSError as exc:
        raise UsageError(f"export-wacz: {args.output}: {exc.strerror or exc}") from exc
    print(f"{args.output}: WACZ {WACZ_VERSION} of crawl {args.crawl}: "
          f"{package['warcs']} WARC file(s), {package['originals']} capture(s) of earlier "
          f"crawls its revisits stand on, {package['captures']} index lines, "
          f"{package['pages']} pages with text, {Path(args.output).stat().st_size / 1e6:.2f} MB")
    if package["unresolved"]:
        print(f"  {package['unresolved']} revisit(s) stand on captures no earlier crawl in "
              f"{store.uri} holds (a crawl deleted?): those pages do not replay from it")
    return EXIT_OK
