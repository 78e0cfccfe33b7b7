"""Bridging executors (threads, processes) to Twisted without blocking the reactor."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure


def run_in(executor: Executor, fn: Callable[..., Any], *args: Any) -> Deferred:
    """Run ``fn(*args)`` in `executor`; the Deferred fires on the reactor thread."""
    from twisted.internet import reactor

    d: Deferred = Deferred()

    def done(future: Future) -> None:
        exc = future.exception()
        if exc is not None:
            reactor.callFromThread(d.errback, Failure(exc))
        else:
            reactor.callFromThread(d.callback, future.result())

    executor.submit(fn, *args).add_done_callback(done)
    return d
