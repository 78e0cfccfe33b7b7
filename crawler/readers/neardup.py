"""Which documents a deduplicated dump keeps: the latest version of each URL, then one document
per group of near-duplicates across URLs (the earliest published).

Near-duplicates are found with MinHash over word 5-gram shingles: one-permutation hashing into
128 bins (densified by rotation, so short texts get a full signature), LSH banding (25 bands of
5 rows) to propose candidate pairs, and a check of each candidate on the 4-bit MinHash signature
(b-bit minwise hashing) against `SIMILARITY`. Only fingerprints are held, never texts: about
200 bytes per document, in flat arrays (some 4 MB for 20,000 documents, 200 MB for a million).
Texts are fingerprinted in batches, all words of a batch at once with numpy, so a document costs
some tens of microseconds.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

SHINGLE_WORDS = 5
BINS = 128
BANDS, ROWS = 25, 5
SIMILARITY = 0.7  # estimated Jaccard similarity of the shingle sets that makes a near-duplicate
WINDOW = 8  # members of an LSH bucket compared with each other, in sorted order

_U64 = np.uint64
_BIN_SHIFT = _U64(64 - 7)  # top 7 bits: the bin (128 bins)
_VALUE_MASK = _U64((1 << 57) - 1)
# ASCII separators and punctuation become spaces; letters, digits and the bytes of UTF-8
# sequences (any other script) are word bytes.
_WORD_BYTES = bytes(
    c if (0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A or c >= 0x80) else 0x20
    for c in range(256))
_rng = np.random.Generator(np.random.PCG64(20250814))
_SHINGLE_MULT = _rng.integers(1, 2**63, SHINGLE_WORDS, dtype=np.uint64) * _U64(2) + _U64(1)
_BAND_MULT = _rng.integers(1, 2**63, ROWS, dtype=np.uint64) * _U64(2) + _U64(1)
_ROTATE_MULT = _U64(0x9E3779B97F4A7C15)
_FULL = np.iinfo(np.uint64).max
_LENGTH_MASK = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1],
                        dtype=np.uint64)
_WORD_MULT = _rng.integers(1, 2**63, 3, dtype=np.uint64) * _U64(2) + _U64(1)


def _mix(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser, in place: every input bit reaches every output bit."""
    h ^= h >> _U64(33)
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


def minhashes(texts: list[str]) -> np.ndarray:
    """The 128-value MinHash signatures (57-bit values) of a batch of texts, one row each; a
    text without words gets a row of ``2**64 - 1``.

    Shingles are word 5-grams (a text of fewer words is one shingle); words are runs of letters
    and digits of any script, so punctuation and spacing do not matter. A word is hashed from its
    first and last 8 bytes and its length, all words of the batch at once. One-permutation
    hashing: the top 7 bits of a shingle's hash choose its bin, each bin keeps its smallest value;
    an empty bin borrows from the next non-empty one (densification by rotation).
    """
    encoded = [t.encode("utf-8").translate(_WORD_BYTES) for t in texts]
    lengths = np.fromiter((len(e) + 1 for e in encoded), dtype=np.int64, count=len(encoded))
    doc_starts = np.cumsum(lengths) - lengths + 1  # where each text starts in `data`
    data = b" " + b" ".join(encoded) + b" " * 9  # spaces around words, 8 readable bytes after
    space = np.frombuffer(data, dtype=np.uint8) == 0x20
    edges = np.flatnonzero(space[1:] != space[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]  # word k is data[starts[k]:ends[k]]
    eight = np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    length = ends - starts
    mask = _LENGTH_MASK[np.minimum(length, 8)]
    doc = np.searchsorted(doc_starts, starts, side="right") - 1
    with np.errstate(over="ignore"):
        words = (eight[starts] & mask) * _WORD_MULT[0] \
            + (eight[np.maximum(ends - 8, starts)] & mask) * _WORD_MULT[1] \
            + length.astype(np.uint64) * _WORD_MULT[2]
        n = max(len(words) - SHINGLE_WORDS + 1, 0)
        shingles = words[:n] * _SHINGLE_MULT[0]
        for k in range(1, SHINGLE_WORDS):
            shingles += words[k : n + k] * _SHINGLE_MULT[k]
        inside = doc[:n] == doc[SHINGLE_WORDS - 1 :]
        hashes, owner = shingles[inside], doc[:n][inside]
        counts = np.bincount(doc, minlength=len(texts))
        short = np.flatnonzero((counts > 0) & (counts < SHINGLE_WORDS))
        if len(short):  # texts of 1-4 words: the whole text is the shingle
            first = np.searchsorted(doc, short)
            whole = [(words[f : f + c] * _SHINGLE_MULT[:c]).sum()
                     for f, c in zip(first.tolist(), counts[short].tolist(), strict=True)]
            hashes = np.concatenate((hashes, np.array(whole, dtype=np.uint64)))
            owner = np.concatenate((owner, short))
        hashes = _mix(hashes)
    signatures = np.full(len(texts) * BINS, _FULL, dtype=np.uint64)
    np.minimum.at(signatures, owner * BINS + (hashes >> _BIN_SHIFT).astype(np.int64),
                  hashes & _VALUE_MASK)
    return _densify(signatures.reshape(len(texts), BINS))


def _densify(signatures: np.ndarray) -> np.ndarray:
    """Fill each empty bin from the next non-empty bin to its right (circularly), offset by
    the distance, so that equal texts still get equal signatures and short ones full rows."""
    filled = signatures != _FULL
    if filled.all():
        return signatures
    columns = np.arange(2 * BINS)
    candidates = np.where(np.concatenate((filled, filled), axis=1), columns, 4 * BINS)
    nearest = np.minimum.accumulate(candidates[:, ::-1], axis=1)[:, ::-1][:, :BINS]
    empty_row = nearest[:, 0] >= 4 * BINS
    nearest[empty_row] = columns[:BINS]
    distance = (nearest - columns[:BINS]).astype(np.uint64)
    with np.errstate(over="ignore"):
        dense = np.take_along_axis(signatures, nearest % BINS, axis=1)
        dense = (dense + distance * _ROTATE_MULT) & _VALUE_MASK
    dense[empty_row] = _FULL
    return dense


def fingerprints(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LSH band keys (n x 25, 32 bits: a rare chance collision only costs a signature check),
    4-bit signatures (n x 128, two values a byte) and whether each text has words at all."""
    signatures = minhashes(texts)
    has = signatures[:, 0] != _FULL
    with np.errstate(over="ignore"):
        mixed = (signatures[:, : BANDS * ROWS].reshape(-1, BANDS, ROWS) * _BAND_MULT).sum(axis=2)
    bands = (mixed >> _U64(32)).astype(np.uint32)
    low = (signatures & _U64(0xF)).astype(np.uint8)
    return bands, low[:, 0::2] | (low[:, 1::2] << 4), has


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity from 4-bit signatures (rows of `a` against rows of `b`):
    the share of equal values, less the 1/16 that are equal by chance."""
    diff = a ^ b
    equal = (np.count_nonzero(diff & 0xF == 0, axis=-1)
             + np.count_nonzero(diff >> 4 == 0, axis=-1)) / BINS
    return (equal - 1 / 16) / (1 - 1 / 16)


@dataclass
class Decision:
    keep: np.ndarray  # sorted indices of the documents to keep
    documents: int
    old_versions: int  # dropped as older versions of a URL
    near_duplicates: int  # dropped as near-duplicates of an earlier publication (all versions)


class Deduplicator:
    """Collects one compact fingerprint per document (`add`), then decides what stays.

    Documents are identified by the caller's index (their position in the dump's input).
    """

    def __init__(self, keep_versions: bool = False) -> None:
        self.keep_versions = keep_versions
        self._index = array("q")
        self._url = array("q")
        self._fetched = array("q")
        self._day = array("i")
        self._has_fp = bytearray()
        self._bands = bytearray()
        self._sigs = bytearray()

    def __len__(self) -> int:
        return len(self._index)

    def add(self, indices: list[int], records: list[dict[str, Any]]) -> None:
        """Fingerprint a batch of documents (the larger the batch, the cheaper a document)."""
        if not records:
            return
        self._index.extend(indices)
        for record in records:
            fetched = record.get("fetched_at") or ""
            self._url.append(hash(record.get("url") or ""))  # compared within this process only
            self._fetched.append(_epoch_us(fetched))
            self._day.append(_day(record.get("date") or fetched[:10]))
        bands, signatures, has = fingerprints([r.get("text") or "" for r in records])
        self._has_fp += has.tobytes()
        self._bands += bands.tobytes()
        self._sigs += signatures.tobytes()

    def decide(self) -> Decision:
        """Keep the latest version of each URL (every version with `keep_versions`), and of
        each group of near-duplicate URLs the earliest published (then earliest fetched)."""
        n = len(self._index)
        index = np.frombuffer(self._index, dtype=np.int64)
        url = np.frombuffer(self._url, dtype=np.int64)
        fetched = np.frombuffer(self._fetched, dtype=np.int64)
        if not n:
            return Decision(index.copy(), 0, 0, 0)
        order = np.lexsort((index, fetched, url))
        last = np.ones(n, dtype=bool)
        last[:-1] = url[order[1:]] != url[order[:-1]]
        latest = np.sort(order[last])
        dropped = self._near_duplicates(latest)
        survivors = np.setdiff1d(latest, dropped, assume_unique=True)
        if self.keep_versions:
            keep = np.flatnonzero(np.isin(url, url[survivors]))
            return Decision(np.sort(index[keep]), n, 0, n - len(keep))
        return Decision(np.sort(index[survivors]), n, n - len(latest), len(dropped))

    def _near_duplicates(self, rows: np.ndarray) -> np.ndarray:
        """Rows (among `rows`) that are near-duplicates of an earlier publication."""
        rows = rows[np.frombuffer(self._has_fp, dtype=bool)[rows]]
        bands = np.frombuffer(self._bands, dtype=np.uint32).reshape(-1, BANDS)
        sigs = np.frombuffer(self._sigs, dtype=np.uint8).reshape(-1, BINS // 2)
        pairs = []
        for band in range(BANDS):
            keys = bands[rows, band]
            order = np.argsort(keys, kind="stable")
            keys, members = keys[order], rows[order]
            for step in range(1, min(WINDOW, len(keys) - 1) + 1):
                same = np.flatnonzero(keys[step:] == keys[:-step])
                if len(same):
                    pairs.append(np.stack((members[same], members[same + step]), axis=1))
        if not pairs:
            return np.zeros(0, dtype=np.int64)
        pairs = np.unique(np.concatenate(pairs), axis=0)
        pairs = pairs[similarity(sigs[pairs[:, 0]], sigs[pairs[:, 1]]) >= SIMILARITY]
        parent: dict[int, int] = {}

        def find(x: int) -> int:
            while parent.get(x, x) != x:
                parent[x] = parent.get(parent[x], parent[x])
                x = parent[x]
            return x

        for a, b in pairs.tolist():
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        if not parent:
            return np.zeros(0, dtype=np.int64)
        members = np.array(sorted(set(parent) | set(parent.values())), dtype=np.int64)
        roots = np.array([find(m) for m in members.tolist()], dtype=np.int64)
        day = np.frombuffer(self._day, dtype=np.int32)
        fetched = np.frombuffer(self._fetched, dtype=np.int64)
        index = np.frombuffer(self._index, dtype=np.int64)
        order = np.lexsort((index[members], fetched[members], day[members], roots))
        first = np.ones(len(order), dtype=bool)
        first[1:] = roots[order[1:]] != roots[order[:-1]]
        return np.sort(members[order[~first]])


def _epoch_us(moment: str) -> int:
    try:
        return int(datetime.fromisoformat(moment).timestamp() * 1_000_000)
    except ValueError:
        return 0


def _day(day: str) -> int:
    """The day's ordinal; a document without a readable date is never the earliest."""
    try:
        return date.fromisoformat(day).toordinal()
    except ValueError:
        return 2**31 - 1
