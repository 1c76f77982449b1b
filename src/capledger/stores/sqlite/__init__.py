"""``sqlite:///path``: the embedded default store."""

from .store import SQLiteStore

__all__ = ["SQLiteStore"]
