"""Outlet templates: text blocks that repeat across many pages of one outlet in one crawl.

Footers, promos, "subscribe" lines and fixed disclaimers that no generic rule recognises are
still the same text on page after page. Workers return a fingerprint of every paragraph they
extracted; the main process counts, per outlet, on how many pages each fingerprint was seen
(``TemplateLearner``, a few set operations per page, light enough for the reactor) and hands
the fingerprints seen on ``MIN_PAGES`` pages or more back to the workers, which drop those
paragraphs (``without_templates``).

A block seen on fewer pages (one page only, in particular) is never removed this way, and a
page is never cut by more than half: a page made mostly of known blocks is a copy of another
page (the same article under two URLs), not a page with a template.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Iterable

MIN_PAGES = 3        # distinct pages a block must appear on to count as the outlet's template
MAX_SHARE = 0.5      # at most this share of a page's text is removed as template
# Fingerprints counted per outlet (~2.5 MB); then the blocks not yet seen MIN_PAGES times are
# forgotten. A crawl's pages bring ~10 new fingerprints each, so a block must repeat within about
# the last 2,000 pages to be learned: an outlet's templates repeat on most of its pages, and the
# memory of a long crawl stays flat (it no longer grows with every article's paragraphs).
CAPACITY = 20_000


def fingerprint(paragraph: str) -> int:
    """64-bit fingerprint of a paragraph, blind to case and whitespace."""
    key = " ".join(paragraph.split()).casefold().encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def without_templates(paragraphs: list[str], prints: list[int],
                      templates: Collection[int]) -> list[str]:
    """The paragraphs that are not template blocks (all of them if templates would take more
    than ``MAX_SHARE`` of the text)."""
    if not templates:
        return paragraphs
    kept = [p for p, f in zip(paragraphs, prints, strict=True) if f not in templates]
    total = sum(map(len, paragraphs))
    if total - sum(map(len, kept)) > MAX_SHARE * total:
        return paragraphs
    return kept


class TemplateLearner:
    """Per-outlet counts of the pages each paragraph fingerprint was seen on; memory stays
    bounded (``CAPACITY`` counts per outlet)."""

    def __init__(self, min_pages: int = MIN_PAGES, capacity: int = CAPACITY) -> None:
        self.min_pages = min_pages
        self.capacity = capacity
        self._counts: dict[str, Counter[int]] = {}
        self._templates: dict[str, frozenset[int]] = {}
        self._pages: dict[str, set[int]] = {}

    def templates(self, outlet: str) -> frozenset[int]:
        """The outlet's template fingerprints, as learned so far."""
        return self._templates.get(outlet, frozenset())

    def observe(self, outlet: str, prints: Iterable[int]) -> None:
        """Count one page's paragraphs; a page with exactly the paragraphs of a page already
        seen (a copy under another URL) is not counted twice."""
        unique = frozenset(prints)
        if not unique:
            return
        pages = self._pages.setdefault(outlet, set())
        page_key = hash(unique)
        if page_key in pages:
            return
        pages.add(page_key)
        counts = self._counts.setdefault(outlet, Counter())
        counts.update(unique)
        new = {f for f in unique if counts[f] >= self.min_pages}
        if new - self.templates(outlet):
            self._templates[outlet] = self.templates(outlet) | new
        if len(counts) > self.capacity:
            self._forget(outlet)

    def _forget(self, outlet: str) -> None:
        """Full: forget the blocks not (yet) templates; templates stay templates."""
        self._counts[outlet] = Counter({f: n for f, n in self._counts[outlet].items()
                                        if n >= self.min_pages})
        if len(self._pages[outlet]) > self.capacity:
            self._pages[outlet].clear()
