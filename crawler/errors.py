"""The errors newsarchive explains in one line.

They live here, below every layer, so that library code (config, store, readers, jobs) can fail
with a message meant for a person without depending on the command line: the CLI catches
`NewsarchiveError`, prints it and exits 1, and nothing else needs to know about the CLI.
"""

from __future__ import annotations


class NewsarchiveError(Exception):
    """A failure explained in one line: commands print it and exit 1."""


class ConfigError(NewsarchiveError, ValueError):
    """A config problem; str() is the one line shown to the user."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


class StoreError(NewsarchiveError, RuntimeError):
    """The store could not do what was asked (unreachable, denied, missing bucket...)."""


class PreconditionFailed(StoreError):
    """A conditional write lost: the object changed (or appeared) since it was read."""


class UsageError(NewsarchiveError):
    """Asked for something that is not there or cannot be done (no such crawl, file or port)."""


class ArchiveError(NewsarchiveError):
    """The archive holds something other than its manifests or text records say."""
