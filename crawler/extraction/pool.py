"""The process pool extraction runs in (the crawl's and ``reextract``'s): never on the reactor,
workers forked warm from a preloaded fork server, and gone with the process that made them;
a pool that breaks is replaced, and a page that runs too long is stopped (``ExtractionPool``)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from typing import Any

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


@dataclass(eq=False)
class _Task:
    """One page's extraction across the pools it is tried on."""

    call: Callable[[], Any]
    future: Future                       # what the caller holds: the page's final outcome
    attempts: int                        # tries left after a pool broke under it
    executor: ProcessPoolExecutor | None = None
    attempt: Future | None = None        # the current try, in `executor`
    started: float | None = None         # when the current try reached a worker (about)
    timed_out: bool = False
    spared: bool = False                 # its pool was killed for another page's timeout


class ExtractionPool(Executor):
    """The extraction pool of a crawl or a re-extraction, kept working whatever a page does.

    A pool that loses a worker (the OOM killer) takes no more work and fails every page it
    held: it is replaced, and those pages are tried again on the new one, each at most
    `attempts` times in all. A page still running `timeout` seconds after it reached a worker
    fails with ``TimeoutError``: a process pool cannot cancel a running task, so its workers are
    killed and the pool replaced; the other pages it held are tried again at no cost."""

    def __init__(self, workers: int, timeout: float | None = None, attempts: int = 3) -> None:
        self.workers = workers
        self.timeout = timeout
        self.attempts = attempts
        self._lock = threading.RLock()
        self._executor, self._ready = self._new_pool()
        self._tasks: set[_Task] = set()
        self._closed = threading.Event()
        if timeout:
            threading.Thread(target=self._watch, daemon=True, name="extraction-watch").start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        task = _Task(partial(fn, *args, **kwargs), Future(), self.attempts)
        self._try(task)
        return task.future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed.set()
        with self._lock:
            executor = self._executor
        executor.shutdown(wait=wait, cancel_futures=cancel_futures)

    def _try(self, task: _Task) -> None:
        with self._lock:
            while True:
                executor = self._executor
                try:
                    attempt = executor.submit(task.call)
                    break
                except BrokenProcessPool:  # broken since its pages came back: replace it now
                    self._replace(executor)
            task.executor, task.attempt, task.started, task.spared = executor, attempt, None, False
            self._tasks.add(task)
        attempt.add_done_callback(partial(self._finished, task))

    def _finished(self, task: _Task, attempt: Future) -> None:
        """A try ended (on the pool's own thread): the page's outcome, or another try."""
        if attempt.cancelled():
            task.future.cancel()
            return
        error = attempt.exception()
        if isinstance(error, BrokenProcessPool) and not task.timed_out:
            if not task.spared:
                task.attempts -= 1
            if task.attempts > 0:
                try:
                    with self._lock:
                        self._replace(task.executor)
                    self._try(task)
                    return
                except RuntimeError as exc:  # shut down meanwhile
                    error = exc
        with self._lock:
            self._tasks.discard(task)
        if error is None:
            task.future.set_result(attempt.result())
        elif task.timed_out:
            task.future.set_exception(TimeoutError(
                f"extraction still running after {self.timeout:g} s: stopped"))
        else:
            task.future.set_exception(error)

    def _replace(self, broken: ProcessPoolExecutor | None) -> None:
        """(lock held) A new pool in place of `broken`, once however many of its pages ask;
        whatever still runs in it is killed."""
        if broken is not self._executor:
            return
        if self._closed.is_set():  # no new pool once shut down: the page fails
            raise RuntimeError("cannot schedule new futures after shutdown")
        self._executor, self._ready = self._new_pool()
        # ProcessPoolExecutor has no public way to stop a worker before Python 3.14
        for process in list((broken._processes or {}).values()):
            process.kill()

    def _new_pool(self) -> tuple[ProcessPoolExecutor, Future]:
        """A pool, and a no-op task whose end says its first worker is up (pages wait for it
        in the pool's queue: that wait is no page's extraction time)."""
        executor = extraction_pool(self.workers)
        return executor, executor.submit(int)

    def _watch(self) -> None:
        """Every fraction of the timeout: the page running longest, if overdue, is stopped."""
        assert self.timeout is not None
        while not self._closed.wait(min(1.0, self.timeout / 4)):
            now = time.monotonic()
            with self._lock:
                if not self._ready.done():
                    continue
                current = [t for t in self._tasks if t.executor is self._executor]
                for task in current:
                    if task.started is None and task.attempt is not None and \
                            task.attempt.running():
                        task.started = now
                running = [t for t in current if t.started is not None]
                oldest = min(running, key=lambda t: t.started or now, default=None)
                if oldest is None or now - (oldest.started or now) <= self.timeout:
                    continue
                oldest.timed_out = True
                for task in current:
                    task.spared = task is not oldest
                self._replace(self._executor)
