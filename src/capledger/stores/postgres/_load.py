"""A batch's first round: lock and read every row the core declared (``reads``), at once.

The round, pipelined after ``BEGIN`` and ``index_scans`` (see ``queries.sql``):

1. ``lock_holds``: the holds named by id (and, on a retry, the reserves' own ids) and the
   holds of the reserves' request ids, locked in id order before any account.
2. ``lock_accounts_new``: every account of every scope the batch can touch (the scopes the
   operations name, the scopes of the holds locked above, the scopes of the oldest overdue
   holds), locked in key order, after taking the advisory lock of each named scope that has
   no account yet (a brand-new scope has no row to lock; whatever creates its first account
   queues on that lock, so no two transactions both find it empty).
3. ``lock_scopes``: the named scopes' rows again. A statement sees the rows committed when
   it started: a scope whose first account was committed while (2) waited for its advisory
   lock is locked here.
4. ``lock_accounts``: every row again, now that every lock is held, so that this read sees
   every account of each scope, including one added by a transaction (2) or (3) waited for;
   and none can be added before this transaction ends (an adder must lock them too).
5. ``lock_overdue`` (``SKIP LOCKED``), ``clock`` (the server's time, read after every lock
   is granted, and the transaction id), and, when the batch sets a limit, the open holds on
   its scopes and (with an injected clock) the journal's spend since the window began.

With the server's clock, a new limit's journal spend is only known once the clock is read:
it is read in a round of its own before anything is decided (``spent_since_round``). The
core then decides once, over ``Loaded``: a row it asks for that ``reads`` did not declare is
a bug, raised as ``UndeclaredRead``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from capledger._core import Account, HoldRecord, NewLimit, Reads, UndeclaredRead, window_start

from ..base import account_of, hold_of
from ._rounds import BEGIN, QUERIES, Row, Rows, Statement

__all__ = ["FirstRound", "Loaded", "SpentKey", "spent_since_statements"]

#: (scope, unit, since_us): a journal spend read.
SpentKey: TypeAlias = tuple[str, str, int]


class FirstRound:
    """The first round's statements, and where each answer is among the replies."""

    def __init__(self, declared: Reads, *, first_attempt: bool, now_us: int | None) -> None:
        self.declared = declared
        self.first_attempt = first_attempt
        #: The hold ids looked up: a reserve's own id only on a retry (on a first attempt no
        #: row can have an id the client just made).
        self.hold_ids = set(declared.hold_ids)
        if not first_attempt:
            self.hold_ids |= declared.reserve_ids
        #: The reserves' own ids known to be absent without a look.
        self.absent_ids = declared.reserve_ids - self.hold_ids if first_attempt else set()
        scopes = sorted(declared.scopes)
        ids = sorted(self.hold_ids)
        lock_params = {
            "scopes": scopes,
            "ids": ids,
            "now_us": now_us,
            "expire_limit": declared.overdue,
        }
        self.statements = [BEGIN, Statement(QUERIES["index_scans"])]
        self.holds_at = None
        if self.hold_ids or declared.request_ids:
            self.holds_at = len(self.statements)
            if declared.request_ids:
                params = {"ids": ids, "request_ids": sorted(declared.request_ids)}
                statement = Statement(QUERIES["lock_holds_and_requests"], params, True)
            else:
                statement = Statement(QUERIES["lock_holds"], {"ids": ids}, True)
            self.statements.append(statement)
        self.statements.append(Statement(QUERIES["lock_accounts_new"], lock_params, True))
        self.locked_at = len(self.statements) - 1
        if scopes:
            self.statements.append(Statement(QUERIES["lock_scopes"], {"scopes": scopes}))
        self.statements.append(Statement(QUERIES["lock_accounts"], lock_params, True))
        self.accounts_at = len(self.statements) - 1
        overdue_params = {"now_us": now_us, "expire_limit": declared.overdue}
        self.statements.append(Statement(QUERIES["lock_overdue"], overdue_params, True))
        self.statements.append(Statement(QUERIES["clock"], None, True))
        self.clock_at = len(self.statements) - 1
        self.open_at = None
        if declared.open_holds_on:
            self.open_at = len(self.statements)
            params = {"scopes": sorted(declared.open_holds_on)}
            self.statements.append(Statement(QUERIES["open_holds_on"], params, True))
        self.spent_at = len(self.statements)
        self.spent_keys: list[SpentKey] = []
        if now_us is not None:
            self.spent_keys, statements = spent_since_statements(declared.spent_since, now_us)
            self.statements += statements

    def loaded(self, replies: list[Rows | None]) -> tuple[Loaded, int, str]:
        """The rows read, the server's time and the transaction id."""
        clock_rows = replies[self.clock_at] or []
        server_now_us, xid = clock_rows[0]
        loaded = Loaded(
            self.declared,
            self.hold_ids,
            [] if self.holds_at is None else replies[self.holds_at] or [],
            replies[self.locked_at] or [],
            replies[self.accounts_at] or [],
            replies[self.clock_at - 1] or [],
            [] if self.open_at is None else replies[self.open_at] or [],
        )
        loaded.learn_spent(self.spent_keys, replies[self.spent_at :])
        return loaded, int(server_now_us), str(xid)


def spent_since_statements(
    limits: Iterable[NewLimit], now_us: int
) -> tuple[list[SpentKey], list[Statement]]:
    """The journal reads of new limits decided at ``now_us``: their keys and statements."""
    keys = sorted({(limit.scope, limit.unit, window_start(limit, now_us)) for limit in limits})
    statements = [
        Statement(QUERIES["spent_since"], {"scope": scope, "unit": unit, "since_us": since}, True)
        for scope, unit, since in keys
    ]
    return keys, statements


class Loaded:
    """The rows a batch's first round read, served to the core as a ``RowSource``.

    ``source()`` hands out a fresh view for each run of the core (``apply_isolated`` runs it
    again without an operation that raised), so that every run starts from the rows as
    read and is offered the same overdue holds.
    """

    def __init__(
        self,
        declared: Reads,
        hold_ids: set[str],
        hold_rows: Rows,
        first_locked_rows: Rows,
        account_rows: Rows,
        overdue_rows: Rows,
        open_rows: Rows,
    ) -> None:
        self.holds: dict[str, Row | None] = dict.fromkeys(hold_ids)
        self.by_request: dict[str, Row | None] = dict.fromkeys(declared.request_ids)
        for row in hold_rows:
            if row[0] in self.holds:
                self.holds[row[0]] = row
            if row[1] is not None and row[1] in self.by_request:
                self.by_request[row[1]] = row
        # Whole and locked: the scopes the first lock found rows of, and the named ones (each
        # locked by its rows or, when it had none, by its advisory lock).
        locked = {row[0] for row in first_locked_rows} | declared.scopes
        self.accounts: dict[str, Rows] = {scope: [] for scope in locked}
        for row in account_rows:
            if row[0] in locked:
                self.accounts[row[0]].append(row)
        # A hold's scopes always have accounts (its reserve made their totals); one found
        # without any is served empty, and the core's new total then loses a unique-key race
        # (retried) rather than be written unlocked.
        for hold_row in self.holds.values():
            if hold_row is not None:
                for scope in hold_row[2]:
                    self.accounts.setdefault(scope, [])
        # An overdue hold is expired here only if every account it touches is locked; the
        # rest stay counted as held (the safe side) for a later transaction.
        self.overdue = [row for row in overdue_rows if all(s in locked for s in row[2])]
        self.open_on: dict[str, Rows] = {scope: [] for scope in declared.open_holds_on}
        for row in open_rows:
            for scope in row[2]:
                if scope in self.open_on:
                    self.open_on[scope].append(row)
        self.spent: dict[SpentKey, int] = {}

    def learn_spent(self, keys: list[SpentKey], replies: list[Rows | None]) -> None:
        """Keep the journal spend read for ``keys``, one reply each, in their order."""
        for key, rows in zip(keys, replies, strict=True):
            self.spent[key] = int((rows or [(0,)])[0][0])

    def source(self) -> _Source:
        """A fresh ``RowSource`` over these rows, for one run of the core."""
        return _Source(self)


class _Source:
    """One run's ``RowSource``: decodes fresh records on every call, so that nothing one
    run changed reaches the next."""

    def __init__(self, loaded: Loaded) -> None:
        self._loaded = loaded
        self._overdue_served = 0

    def load_accounts(self, scope: str) -> list[Account]:
        rows = self._loaded.accounts.get(scope)
        if rows is None:
            raise UndeclaredRead(f"the accounts of scope {scope!r}")
        return [account_of(row) for row in rows]

    def load_hold(self, hold_id: str) -> HoldRecord | None:
        if hold_id not in self._loaded.holds:
            raise UndeclaredRead(f"hold {hold_id!r}")
        row = self._loaded.holds[hold_id]
        return None if row is None else hold_of(row)

    def load_hold_by_request(self, request_id: str) -> HoldRecord | None:
        if request_id not in self._loaded.by_request:
            raise UndeclaredRead(f"the hold of request_id {request_id!r}")
        row = self._loaded.by_request[request_id]
        return None if row is None else hold_of(row)

    def load_overdue(self, now_us: int, limit: int) -> list[HoldRecord]:
        # Each call hands out the next holds: the core expires every open one it is given,
        # so a later call in the same batch (a Sweep) must not count them again.
        start = self._overdue_served
        served = self._loaded.overdue[start : start + limit]
        self._overdue_served = start + len(served)
        return [hold_of(row) for row in served if row[6] <= now_us]

    def load_open_holds_on(self, scope: str) -> list[HoldRecord]:
        rows = self._loaded.open_on.get(scope)
        if rows is None:
            raise UndeclaredRead(f"the open holds on scope {scope!r}")
        return [hold_of(row) for row in rows]

    def spent_since(self, scope: str, unit: str, since_us: int) -> int:
        spent = self._loaded.spent.get((scope, unit, since_us))
        if spent is None:
            raise UndeclaredRead(f"the spend on {scope!r} in {unit} since {since_us}")
        return spent
