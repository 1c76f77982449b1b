"""What the PostgreSQL store's transactions are made of: statements sent in rounds.

A *plan* is a generator that yields ``Round`` s (statements sent in one pipelined round
trip) and receives each round's rows back, as httpx drives an ``auth_flow``: the plans in
``_plans.py`` decide what to send, and ``_retry.py`` sends it. The SQL lives in
``queries.sql`` as named blocks.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeVar

from .._sql import load_named_queries

__all__ = ["BEGIN", "COMMIT", "QUERIES", "Commit", "Plan", "Round", "Row", "Rows", "Statement"]

QUERIES: Final = load_named_queries("capledger.stores.postgres", "queries.sql")

Row: TypeAlias = tuple[Any, ...]
Rows: TypeAlias = list[Row]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement; ``fetch`` when its rows are wanted back."""

    sql: str
    params: Mapping[str, object] | None = None
    fetch: bool = False


@dataclass(frozen=True, slots=True)
class Commit:
    """Carried by the round that ends with ``COMMIT``.

    If the connection dies after that round was sent, the driver cannot know whether the
    commit happened; it asks the server about ``xid`` (``pg_xact_status``) and, if it did
    commit, returns ``result`` (what the committed transaction decided) instead of running
    the batch again. ``xid`` is None for the fast path's single round, which cannot learn
    its transaction id before it sends ``COMMIT``: the driver runs the operation again
    instead, which is safe because a fast-path operation is idempotent (a reserve carries
    its client-made hold id and a retry finds that hold; the same settle again is a no-op).
    """

    xid: str | None
    result: object


@dataclass(frozen=True, slots=True)
class Round:
    """Statements sent together in one round trip (pipelined unless ``pipeline`` is False)."""

    statements: list[Statement]
    pipeline: bool = True
    commit: Commit | None = None


#: A plan yields rounds and receives, per statement, its rows (or None when not fetched).
Plan: TypeAlias = Generator[Round, list[Rows | None], _T]

BEGIN: Final = Statement("BEGIN")
COMMIT: Final = Statement("COMMIT")
