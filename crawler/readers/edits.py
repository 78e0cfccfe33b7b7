"""Articles edited after their first capture, and what changed: silent edits are what news
archivists look for.

The list comes from the archive's URL state (``state/urls/``: one small entry per URL, with its
latest text's revision), not from the texts. A diff reads the text records of the revisions it
compares, following each record's ``previous_revision`` back to the crawl that holds the one
before; only the shards of the URL's outlet in those crawls are opened.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from crawler.errors import UsageError
from crawler.layout import manifest_key
from crawler.readers.listing import read_json, text_records
from crawler.store.backends import ArchiveStore
from crawler.store.state import read_state, state_outlets, url_state

CONTEXT_WORDS = 8  # unchanged words shown on each side of a change


@dataclass(frozen=True)
class Edited:
    """An article whose text changed after its first capture."""

    url: str
    outlet: str
    revisions: int        # its latest text's revision: 2 after one edit
    first_seen: str       # when it was first captured (to the second)
    last_edit: str        # when the latest revision was fetched
    crawl_id: str         # the crawl that holds the latest revision
    record_id: str        # the WARC record of its latest capture


def edited_articles(store: ArchiveStore, outlets: Iterable[str] = (), since: str | None = None
                    ) -> Iterator[Edited]:
    """The edited articles of the outlets (all when none are named), streamed from the URL
    state; `since` (``YYYY-MM-DD...``): only those whose latest edit was fetched then or later."""
    for entry in read_state(store, list(outlets) or state_outlets(store)):
        text = entry.get("text") or {}
        if (text.get("revision") or 1) < 2:
            continue
        fetched = text.get("fetched_at") or ""
        if since and fetched[:len(since)] < since:
            continue
        first_seen = entry.get("first_seen") or ""
        yield Edited(entry["url"], entry.get("outlet", ""), text["revision"],
                     first_seen[:19] + "Z" if first_seen else "", fetched,
                     text.get("crawl_id", ""), text.get("warc_record_id", ""))


def two_revisions(store: ArchiveStore, url: str, old: int | None = None,
                  new: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The text records of revisions `old` and `new` of `url` (default: its latest and the one
    before), read by walking back from its latest text through ``previous_revision``."""
    entry = url_state(store, url)
    if entry is None or not entry.get("text"):
        raise UsageError(f"{url}: no archived text of this URL in {store.uri}")
    latest = entry["text"].get("revision") or 1
    new = latest if new is None else new
    old = new - 1 if old is None else old
    if not 1 <= old < new <= latest:
        raise UsageError(f"{url}: no revisions {old} and {new} to compare: its text has "
                         f"revision{'s 1 to' if latest > 1 else ''} {latest}")
    found: dict[int, dict[str, Any]] = {}
    crawl_id: str | None = entry["text"].get("crawl_id")
    revision = latest
    while crawl_id and revision >= old:
        record = _record_in(store, crawl_id, url, entry.get("outlet", ""), revision)
        if record is None:
            break
        found[revision] = record
        crawl_id, revision = (record.get("previous_revision") or {}).get("crawl_id"), revision - 1
    if old not in found or new not in found:
        raise UsageError(f"{url}: revision {old if old not in found else new} is not in a "
                         "committed crawl of the archive")
    return found[old], found[new]


def word_diff(old: str, new: str, context: int = CONTEXT_WORDS) -> Iterator[str]:
    """The changes from `old` to `new`, word by word, one line per change with `context`
    unchanged words around it: removed words as ``[-...-]``, added ones as ``{+...+}``."""
    a, b = old.split(), new.split()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        parts = []
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                parts.append(" ".join(a[i1:i2]))
            removed = f"[-{' '.join(a[i1:i2])}-]" if tag in ("delete", "replace") else ""
            added = f"{{+{' '.join(b[j1:j2])}+}}" if tag in ("insert", "replace") else ""
            parts.append(removed + added)
        yield " ".join(p for p in parts if p)


def _record_in(store: ArchiveStore, crawl_id: str, url: str, outlet: str, revision: int
               ) -> dict[str, Any] | None:
    if store.stat(manifest_key(crawl_id)) is None:
        return None  # an uncommitted crawl's record is no revision readers know
    manifest = read_json(store, manifest_key(crawl_id))
    for record in text_records(store, [manifest], outlets=[outlet] if outlet else ()):
        if record.get("url") == url and (record.get("revision") or 1) == revision:
            return record
    return None
