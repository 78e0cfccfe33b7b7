"""What a crawl has seen, in flat memory: DigestSet and the request dupefilter built on it."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import scrapy
from scrapy.utils.test import get_crawler

from crawler.crawl.dupefilter import CompactDupeFilter
from crawler.discovery.digests import DigestSet


def digest(i: int) -> bytes:
    return hashlib.sha1(f"https://example.org/news/{i}".encode()).digest()


def test_every_added_digest_is_found_across_merges_and_no_other() -> None:
    seen = DigestSet()
    for i in range(50_000):  # many merges of the recent set into the sorted array
        seen.add(digest(i))
        seen.add(digest(i))  # twice: counted once
    assert len(seen) == 50_000
    assert all(digest(i) in seen for i in range(0, 50_000, 7))
    assert not any(digest(i) in seen for i in range(50_000, 60_000))


def test_seen_urls_cost_bytes_not_a_hundred_each() -> None:
    tracemalloc.start()
    seen = DigestSet(digest(i) for i in range(100_000))
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(seen) == 100_000
    assert held < 100_000 * 24  # a set of bytes objects: ~100 bytes each


def test_dupefilter_filters_repeats_and_keeps_jobdir_requests(tmp_path: Path) -> None:
    crawler = get_crawler(settings_dict={"JOBDIR": str(tmp_path)})
    first = CompactDupeFilter.from_crawler(crawler)
    request = scrapy.Request("https://example.org/a?b=1&a=2")
    assert not first.request_seen(request)
    assert first.request_seen(scrapy.Request("https://example.org/a?a=2&b=1"))  # same request
    assert not first.request_seen(scrapy.Request("https://example.org/b"))
    first.close("finished")

    again = CompactDupeFilter.from_crawler(crawler)  # a paused Scrapy job, started again
    assert again.request_seen(request)
    assert not again.request_seen(scrapy.Request("https://example.org/c"))
    again.close("finished")
