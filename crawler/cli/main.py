"""The `newsarchive` command line.

Every command takes ``-c/--config`` (default ``newsarchive.toml`` when present) and ``--archive``
(default: the config's ``[archive] uri``, then ``./archive``). Failures exit non-zero with one
line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from crawler import __version__
from crawler.errors import NewsarchiveError

# EXIT_SPOOLED: committed, but files wait in the spool for the store; EXIT_NO_TEXT: committed,
# but some articles have no text (their extraction failed: the next crawl extracts them again)
EXIT_OK, EXIT_FAILED, EXIT_SPOOLED, EXIT_NO_TEXT = 0, 1, 3, 4


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


# The command groups, in the order `--help` lists them: each module has
# ``add_commands(subparsers, common)``, whose handlers take the parsed arguments and return the
# exit code.
COMMAND_MODULES: tuple[str, ...] = (
    "crawler.cli.crawl", "crawler.cli.replay", "crawler.cli.reextract", "crawler.cli.verify",
    "crawler.cli.wacz", "crawler.cli.dump", "crawler.cli.extract", "crawler.cli.schedule",
    "crawler.cli.edits", "crawler.cli.report", "crawler.cli.workers")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", help="config file (default: newsarchive.toml if present)")
    common.add_argument("--archive", help="archive URI: a directory or s3://bucket/prefix")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    common.add_argument("--log-level", default="WARNING", help="Scrapy log level (INFO, DEBUG..)")

    parser = argparse.ArgumentParser(prog="newsarchive", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"newsarchive {__version__}")
    sub = parser.add_subparsers(dest="command")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub, common)
    return parser


if __name__ == "__main__":
    logging.basicConfig()
    sys.exit(main())
