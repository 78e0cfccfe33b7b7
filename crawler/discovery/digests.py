"""Sets of digests in about 8 bytes each: what a crawl has seen, for crawls of millions of URLs.

A Python set of digests costs ~100 bytes an entry (the bytes object and its slot); a crawl's
"seen" sets grow with every URL it meets, so they decided how a long crawl's memory grew.
``DigestSet`` keeps the first 8 bytes of each digest as a 64-bit integer in a sorted array, with
recent additions in a small set that is merged in when it reaches an eighth of the array (the
merge streams, so it never holds more than the old and the new array). Two different digests
of 1,000,000 URLs share their first 8 bytes with a probability of about 3 in 100 million.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable

MIN_RECENT = 4096  # additions kept in a plain set before the first merge


class DigestSet:
    """Membership of byte digests (8 bytes or longer; only the first 8 count)."""

    def __init__(self, digests: Iterable[bytes] = ()) -> None:
        self._merged = array("Q")
        self._recent: set[int] = set()
        self.update(digests)

    @staticmethod
    def _key(digest: bytes) -> int:
        return int.from_bytes(digest[:8], "big")

    def _has(self, key: int) -> bool:
        if key in self._recent:
            return True
        i = bisect_left(self._merged, key)
        return i < len(self._merged) and self._merged[i] == key

    def __contains__(self, digest: bytes) -> bool:
        return self._has(self._key(digest))

    def __len__(self) -> int:
        return len(self._merged) + len(self._recent)

    def add(self, digest: bytes) -> None:
        key = self._key(digest)
        if self._has(key):
            return
        self._recent.add(key)
        if len(self._recent) >= max(MIN_RECENT, len(self._merged) // 8):
            self._merged = array("Q", heapq.merge(self._merged, sorted(self._recent)))
            self._recent.clear()

    def update(self, digests: Iterable[bytes]) -> None:
        for digest in digests:
            self.add(digest)
