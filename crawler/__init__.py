"""newsarchive: an archival crawler for news outlets."""

__version__ = "0.1.0"
