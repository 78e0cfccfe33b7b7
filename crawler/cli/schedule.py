"""`newsarchive schedule`: each outlet's crawl on its cron schedule (crawler.jobs.schedule)."""

from __future__ import annotations

import argparse
import logging
import sys

from crawler.config import Config, load_config
from crawler.jobs.schedule import logger, run_schedule


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    schedule = sub.add_parser("schedule", parents=[common],
                              help="run each outlet's crawl on its cron schedule")
    schedule.add_argument("--once", action="store_true",
                          help="start every outlet whose schedule matched since its last "
                               "recorded run (or that never ran), wait for them, exit")
    schedule.add_argument("--metrics-port", type=int, metavar="PORT",
                          help="serve Prometheus metrics at http://127.0.0.1:PORT/metrics")
    schedule.set_defaults(func=cmd_schedule)


def cmd_schedule(args: argparse.Namespace) -> int:
    _log_to_stderr()
    config = load_config(args.config)
    return run_schedule(config, args.archive or config.archive.uri, _crawl_options(args, config),
                        once=args.once, metrics_port=args.metrics_port)


def _crawl_options(args: argparse.Namespace, config: Config) -> list[str]:
    """The options every crawl gets from the scheduler's own command line."""
    command: list[str] = []
    if args.config or config.source != "(no config file)":
        command += ["-c", args.config or config.source]
    if args.archive:
        command += ["--archive", args.archive]
    return command + ["--log-level", args.log_level] + (["--debug"] if args.debug else [])


def _log_to_stderr() -> None:
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s schedule %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
