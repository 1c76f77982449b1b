"""``postgresql://...``: the store for many processes and hosts sharing one set of budgets."""

from .store import PostgresStore

__all__ = ["PostgresStore"]
