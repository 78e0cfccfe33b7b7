"""The local spool: files are written here first and leave only once the store confirms them.

The spool mirrors archive keys (``spool/crawls/ID/warc/NAME.warc.gz``). A closed file waits here
until it is uploaded; if the store is unreachable it stays, and the next run delivers it before
crawling. Manifests go last, and only once every other file of their crawl has left, so a reader
of the archive never sees a manifest whose files are missing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from crawler.errors import ArchiveError, StoreError
from crawler.files import sha256_file
from crawler.layout import (
    CRAWLS,
    LOCAL_DIRS,
    MANIFEST_NAME,
    UNFINISHED,
    crawl_id_of,
    crawl_prefix,
)
from crawler.store.backends import ArchiveStore, ObjectInfo

logger = logging.getLogger(__name__)


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / key

    def pending(self) -> list[str]:
        """Closed files waiting for upload, manifests last."""
        if not self.root.is_dir():
            return []
        keys = []
        for dirpath, dirs, files in os.walk(self.root):
            if Path(dirpath) == self.root:
                dirs[:] = [d for d in dirs if d not in LOCAL_DIRS]
            for name in files:
                if not name.endswith(UNFINISHED):
                    keys.append((Path(dirpath) / name).relative_to(self.root).as_posix())
        return sorted(keys, key=lambda k: (k.endswith(MANIFEST_NAME), k))

    def unfinished(self) -> list[str]:
        """Files a killed run left half-written (``*.open``): never uploaded as they are."""
        if not self.root.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*.open")
                      if p.relative_to(self.root).parts[0] not in LOCAL_DIRS)

    def deliver(self, store: ArchiveStore, key: str, sha256: str | None = None) -> ObjectInfo:
        """Upload one spooled file; it is removed from the spool only once the store has it.

        Its sha256 is computed from the file here, and must be `sha256` (what the crawl's
        manifest lists) when given: a file that does not verify never reaches the store."""
        path = self.path(key)
        actual = sha256_file(path)
        if sha256 and actual != sha256:
            raise ArchiveError(f"{path}: sha256 {actual} is not the {sha256} its crawl wrote; "
                               f"not uploaded")
        info = store.put_file(path, key, actual)
        path.unlink()
        return info

    def flush(self, store: ArchiveStore) -> tuple[int, int]:
        """Deliver what earlier runs left; stop at the first failure. Returns (sent, left).

        Only crawls that committed (their manifest is here) are delivered: a crawl still
        running beside this one (the spool is shared) or one that was killed has no manifest
        yet, and its files stay where they are."""
        keys = self.pending()
        committed = {k.rsplit("/", 1)[0] for k in keys if k.endswith("/" + MANIFEST_NAME)}
        sent = 0
        for key in keys:
            if key.startswith(CRAWLS) and crawl_prefix(crawl_id_of(key) or "") not in committed:
                continue
            if key.endswith(MANIFEST_NAME) and self._crawl_has_files(key):
                continue  # its crawl is not all delivered yet: keep the commit marker back
            try:
                self.deliver(store, key)
            except (StoreError, OSError) as exc:
                logger.warning("spool: %s not uploaded (%s); kept in %s", key, exc, self.root)
                break
            self.prune(self.path(key).parent)
            sent += 1
        return sent, len(self.pending())

    def _crawl_has_files(self, manifest_key: str) -> bool:
        crawl_dir = self.path(manifest_key).parent
        return any(p.is_file() and p.name != MANIFEST_NAME for p in crawl_dir.rglob("*"))

    def prune(self, directory: Path) -> None:
        """Remove `directory` and the empty directories above it. Only for a crawl that is no
        longer writing: its writer creates directories as it goes."""
        for dirpath, _, _ in os.walk(directory, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
        directory = directory.parent
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent
