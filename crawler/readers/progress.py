"""One status line on stderr for a reader that takes a while (dump, report), when stderr is a
terminal: rewritten at most 4 times a second, so it costs nothing when called often."""

from __future__ import annotations

import time
from typing import IO


class Progress:
    def __init__(self, stream: IO[str], command: str) -> None:
        self.stream = stream
        self.command = command
        self.enabled = stream.isatty()
        self.started = self.shown = time.monotonic()

    def show(self, status: str) -> None:
        now = time.monotonic()
        if self.enabled and now - self.shown >= 0.25:
            self.shown = now
            self.stream.write(f"\r{self.command}: {status}, {now - self.started:.0f}s   ")
            self.stream.flush()

    def done(self, summary: str) -> None:
        if self.enabled:
            self.stream.write(f"\r{self.command}: {summary} in "
                              f"{time.monotonic() - self.started:.1f}s\n")
            self.stream.flush()
