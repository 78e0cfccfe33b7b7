"""The process pool extraction runs in (the crawl's and ``reextract``'s): never on the reactor,
workers forked warm from a preloaded fork server, and gone with the process that made them."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from crawler.extraction.document import detect_language, extract_document


def extraction_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool for ``extract_document``, whose workers exit with the process that made it.

    Workers are forked from a fork server that has loaded trafilatura and the language model
    once (``crawler.extraction.preload``): each starts warm and shares that memory, instead of
    spending ~1 s of CPU loading its own while the crawl starts."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["crawler.extraction.preload"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=_start_worker, initargs=(os.getpid(),))


def warm_up() -> None:
    """Import and initialise the heavy parts (trafilatura, the language model) in this process."""
    detect_language("warm up the language model with a sentence of plain text")
    extract_document("<html><body><article><p>" + "Warm up. " * 40 + "</p></article></body></html>")


def _start_worker(parent_pid: int) -> None:
    """A pool worker exits once the process that started the pool is gone (a killed crawl
    leaves no orphaned pool); it is warm already when forked from the preloaded server."""
    threading.Thread(target=_exit_without, args=(parent_pid,), daemon=True,
                     name="parent-watch").start()
    warm_up()


def _exit_without(pid: int, every: float = 1.0) -> None:
    """A pool worker of a process killed with SIGKILL waits on its task queue forever (and keeps
    the forkserver alive): leave when the process that started the pool is gone."""
    while True:
        time.sleep(every)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid was reused by another user's process
            os._exit(1)
