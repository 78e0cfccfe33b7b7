"""Scrapy's request dupefilter, with each request fingerprint held in 8 bytes."""

from __future__ import annotations

from typing import Any

from scrapy.dupefilters import RFPDupeFilter

from crawler.discovery.digests import DigestSet


class CompactDupeFilter(RFPDupeFilter):
    """``RFPDupeFilter`` (same fingerprints, same ``requests.seen`` file in JOBDIR) whose
    in-memory set is a ``DigestSet``: ~8 bytes a request instead of ~100."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fingerprints = DigestSet(self._fingerprints)  # type: ignore[assignment]
