"""CDXJ index sorting: bytewise order (what pywb's binary search needs), in bounded memory."""

from __future__ import annotations

import random
from pathlib import Path

from crawler.capture.cdxj import cdxj_line, write_sorted


def test_a_long_index_is_sorted_from_runs_on_disk(tmp_path: Path) -> None:
    rng = random.Random(7)
    lines = [cdxj_line(f"http://example.org/news/{rng.randrange(10**6)}?p={i}",
                       f"2025081410{i % 60:02d}00", mime="text/html", status=200,
                       digest="sha1:ABC", length=100 + i, offset=i * 100, filename="a.warc.gz")
             for i in range(5000)]
    unsorted = tmp_path / "index.cdxj.unsorted"
    unsorted.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "index.cdxj"

    write_sorted(unsorted, out, run_bytes=20_000)  # ~50 runs merged

    assert out.read_bytes() == b"".join(sorted(line.encode() for line in lines))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.cdxj", "index.cdxj.unsorted"]
