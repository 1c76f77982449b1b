"""What a batch of operations reads: declared by the core, so that a store loads it at once.

``reads(ops)`` names every row the decisions of ``ops`` (and the lazy expiry before them)
may ask their ``State`` for. A store with a round trip per query (PostgreSQL) loads all of
it in one round before it runs the decisions, and runs them once; a store whose rows are at
hand (memory, SQLite) need not look at it. A decision that asks for a row its operation did
not declare is a bug of this module, never a case to fetch lazily: a store raises
``UndeclaredRead`` (outside ``OPERATION_ERRORS``, so the whole batch fails and says so), and
``tests/unit/test_core_reads.py`` runs every scenario of the contract and the state machine
through a ``State`` that refuses anything undeclared.

Two reads hang on what is only known while the batch runs, and are declared so that a
store can still fetch them with the first round:

* the accounts of a hold named by id (``Extend``, ``Settle``, ``Release``) are on the
  hold's scopes: ``hold_ids`` means the hold *and* every account of its scopes, which SQL
  reaches with a join on the hold row (a hold's scopes never change);
* a new limit starts from the journal's spend since its window began, and that window
  depends on the time of the decision: ``spent_since`` names (scope, unit, period, time
  zone), and ``window_start`` turns it into the instant once the time is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from capledger.bounds import MAX_EXPIRE_PER_STEP
from capledger.errors import LedgerInvariantError

from .periods import window
from .records import Extend, Inspect, Op, Release, RemoveLimit, Reserve, SetLimit, Settle, Sweep

__all__ = ["NewLimit", "Reads", "UndeclaredRead", "reads", "window_start"]


class UndeclaredRead(RuntimeError):
    """A decision asked its state for a row that ``reads`` did not declare: a bug in
    ``capledger._core.reads``, never an operating error (so no ``OPERATION_ERRORS`` type)."""


@dataclass(frozen=True, slots=True)
class NewLimit:
    """The journal's settled ``unit`` on ``scope`` since the start of the window of a
    ``period`` limit in ``tz`` created at the decision's time (``window_start``)."""

    scope: str
    unit: str
    period: str
    tz: str


@dataclass(slots=True)
class Reads:
    """Every row a batch may read, by kind."""

    #: Every account of these scopes.
    scopes: set[str] = field(default_factory=set)
    #: These holds by id, and every account of each one's scopes.
    hold_ids: set[str] = field(default_factory=set)
    #: The ids reserves place. Read in case the reserve ran before (a store's retry after a
    #: lost commit finds the hold its first attempt made); a store that knows the batch is a
    #: first attempt knows they are absent, as the ids are made by the client.
    reserve_ids: set[str] = field(default_factory=set)
    #: The holds placed with these request ids (without the accounts of their scopes: a
    #: reserve that finds one only answers with it).
    request_ids: set[str] = field(default_factory=set)
    #: The open holds charged to each of these scopes.
    open_holds_on: set[str] = field(default_factory=set)
    #: Journal spend since a new limit's window began.
    spent_since: set[NewLimit] = field(default_factory=set)
    #: How many overdue open holds (oldest deadline first), and every account of their
    #: scopes: lazy expiry before the batch, and each ``Sweep``'s limit.
    overdue: int = MAX_EXPIRE_PER_STEP


def reads(ops: Iterable[Op]) -> Reads:
    """What applying ``ops`` as one batch (``apply_batch``, ``apply_one``) may read.

    Raises:
        LedgerInvariantError: one of ``ops`` is not an operation.
    """
    declared = Reads()
    for op in ops:
        match op:
            case Reserve():
                declared.scopes.update(op.scopes)
                declared.reserve_ids.add(op.hold_id)
                if op.request_id is not None:
                    declared.request_ids.add(op.request_id)
            case Settle() | Release() | Extend():
                declared.hold_ids.add(op.hold_id)
            case SetLimit():
                declared.scopes.add(op.scope)
                # Read only when the limit is new, which only the stored rows can tell.
                declared.open_holds_on.add(op.scope)
                declared.spent_since.add(NewLimit(op.scope, op.unit, op.period, op.tz))
            case RemoveLimit() | Inspect():
                declared.scopes.add(op.scope)
            case Sweep():
                declared.overdue += op.limit
            case _:
                raise LedgerInvariantError(f"unknown operation {op!r}")
    return declared


def window_start(limit: NewLimit, now_us: int) -> int:
    """Where the window of ``limit`` created at ``now_us`` starts (as ``new_account``)."""
    return window(limit.period, limit.tz, now_us, now_us)[0]
