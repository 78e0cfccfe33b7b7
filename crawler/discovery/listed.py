"""The dates feeds and sitemaps list URLs with, kept for URLs a crawl queued before a listing
named them (reached by a link first), so an article's listing date does not depend on which
source found it first.

A URL a listing names first carries its date in its request; only the others are kept here,
about 100 bytes each, until their page is built into an item (``pop``).
"""

from __future__ import annotations

import hashlib
from datetime import date


class ListedDates:
    """Listing dates by URL (canonical form), the first listing's date winning."""

    def __init__(self) -> None:
        self._days: dict[int, int] = {}  # 8-byte URL digest -> proleptic ordinal of the day

    @staticmethod
    def _key(url: str) -> int:
        return int.from_bytes(hashlib.blake2b(url.encode(), digest_size=8).digest(), "big")

    def remember(self, url: str, day: str | None) -> None:
        """Keep `day` (``YYYY-MM-DD``) as `url`'s listing date unless it has one already."""
        if day:
            self._days.setdefault(self._key(url), date.fromisoformat(day).toordinal())

    def pop(self, url: str) -> str | None:
        """`url`'s listing date, forgotten once given (a page is built into an item once)."""
        day = self._days.pop(self._key(url), None)
        return date.fromordinal(day).isoformat() if day is not None else None

    def __len__(self) -> int:
        return len(self._days)
