"""`newsarchive replay`: the archive's captures in a browser, served by pywb; `newsarchive
setup-replay`: pywb installed for it (crawler.readers.replay)."""

from __future__ import annotations

import argparse

from crawler.cli.main import EXIT_OK
from crawler.config import load_config
from crawler.readers.replay import (
    COLLECTION,
    PYWB_VENV,
    Serving,
    find_wayback,
    serve,
    setup_pywb,
    user_pywb_venv,
)
from crawler.store.backends import open_store


def add_commands(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser
                 ) -> None:
    replay = subparsers.add_parser(
        "replay", parents=[common], help="serve the archive's captures in a browser with pywb")
    replay.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    replay.add_argument("--port", type=_port, default=8080, help="port (default: 8080)")
    replay.add_argument("--pywb", help="pywb's `wayback` program (default: the one "
                        f"setup-replay installed, then {PYWB_VENV}/bin/wayback beside this "
                        "installation's virtualenv, then $PATH)")
    replay.set_defaults(func=cmd_replay)
    setup = subparsers.add_parser(
        "setup-replay", parents=[common], help="install pywb for `replay` in its own virtualenv "
                             "($XDG_DATA_HOME/newsarchive/pywb-venv)")
    setup.set_defaults(func=cmd_setup_replay)


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return port


def cmd_replay(args: argparse.Namespace) -> int:
    wayback = find_wayback(args.pywb)
    config = load_config(args.config)
    store = open_store(config.archive, args.archive or config.archive.uri)

    def ready(serving: Serving) -> None:
        base = serving.base
        print(f"replaying {serving.crawls} crawl(s) of {store.uri}: {serving.captures} captures, "
              f"{serving.articles} articles\n"
              f"  articles:  {base}/\n"
              f"  captures:  {base}/{COLLECTION}/{{timestamp}}/{{url}}   "
              f"({{timestamp}}id_ for the original bytes)\n"
              f"Ctrl-C stops", flush=True)

    serve(store, config.archive, wayback, args.host, args.port, ready)
    return EXIT_OK


def cmd_setup_replay(args: argparse.Namespace) -> int:
    wayback = setup_pywb(user_pywb_venv())
    print(f"pywb installed: {wayback} (`newsarchive replay` uses it)")
    return EXIT_OK
