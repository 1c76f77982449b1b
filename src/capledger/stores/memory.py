"""``memory://``: the ledger in this process's memory.

Thread-safe and asyncio-safe: every operation runs under one lock without awaiting, so a
batch is as atomic as a database transaction. Nothing survives the process; use it for
tests and single-process apps. The core works on the live rows directly (no copies), which
is safe because every decision checks before it changes anything.
"""

from __future__ import annotations

import bisect
import heapq
import threading
from collections.abc import Iterator, Sequence

from capledger._core import Account, Config, Entry, HoldRecord, Op, Outcome, apply_batch
from capledger.clock import Clock

from .base import Store

__all__ = ["MemoryStore"]


class _LiveRows:
    """The core's ``State`` over the live rows (only touched under the store's lock)."""

    def __init__(self) -> None:
        self.accounts_by_scope: dict[str, list[Account]] = {}
        self.holds: dict[str, HoldRecord] = {}
        self.by_request: dict[str, HoldRecord] = {}
        # Open holds by the millisecond they expire in (rounded up), and a heap of those
        # milliseconds: a reserve appends to a list instead of sifting a heap of holds.
        self.expiry_buckets: dict[int, list[str]] = {}
        self.bucket_heap: list[int] = []
        self.journal: list[Entry] = []
        self.journal_ts: list[int] = []

    def accounts(self, scope: str) -> list[Account]:
        """Every live account of ``scope``."""
        found = self.accounts_by_scope.get(scope)
        if found is None:
            found = self.accounts_by_scope[scope] = []
        return found

    def add_account(self, account: Account) -> None:
        """Store a new account."""
        self.accounts(account.scope).append(account)

    def remove_account(self, account: Account) -> None:
        """Delete an account."""
        self.accounts(account.scope).remove(account)

    def account_changed(self, account: Account) -> None:
        """Nothing to do: the row is live."""

    def hold(self, hold_id: str) -> HoldRecord | None:
        """The hold with this id."""
        return self.holds.get(hold_id)

    def hold_by_request(self, request_id: str) -> HoldRecord | None:
        """The hold placed with this request_id."""
        return self.by_request.get(request_id)

    def add_hold(self, hold: HoldRecord) -> None:
        """Store a new hold and schedule its expiry."""
        self.holds[hold.id] = hold
        if hold.request_id is not None:
            self.by_request[hold.request_id] = hold
        self._schedule(hold)

    def _schedule(self, hold: HoldRecord) -> None:
        bucket_ms = -(-hold.expires_us // 1000)
        bucket = self.expiry_buckets.get(bucket_ms)
        if bucket is None:
            self.expiry_buckets[bucket_ms] = [hold.id]
            heapq.heappush(self.bucket_heap, bucket_ms)
        else:
            bucket.append(hold.id)

    def hold_changed(self, hold: HoldRecord) -> None:
        """Reschedule an extended hold's expiry; the row itself is live."""
        if hold.state == "open":
            self._schedule(hold)

    def overdue_holds(self, now_us: int, limit: int) -> list[HoldRecord]:
        """Open holds whose expiry has passed, found through the expiry buckets.

        A bucket is opened once its last microsecond has passed, so a hold is found here
        at most a millisecond after it expired (settling or releasing it checks exactly).
        Stale ids (settled, or extended and scheduled again) are skipped.
        """
        heap = self.bucket_heap
        if not heap or heap[0] * 1000 > now_us:
            return []  # nothing due: the usual case, answered without building anything
        overdue: dict[str, HoldRecord] = {}  # an extended hold can sit in two buckets
        while heap and heap[0] * 1000 <= now_us and len(overdue) < limit:
            bucket = self.expiry_buckets[heap[0]]
            while bucket and len(overdue) < limit:
                hold = self.holds[bucket.pop()]
                if hold.state == "open" and hold.expires_us <= now_us:
                    overdue[hold.id] = hold
            if not bucket:
                del self.expiry_buckets[heapq.heappop(heap)]
        return list(overdue.values())

    def open_holds_on(self, scope: str) -> list[HoldRecord]:
        """Every open hold on ``scope`` (a scan: only limit changes ask)."""
        return [h for h in self.holds.values() if h.state == "open" and scope in h.scopes]

    def spent_since(self, scope: str, unit: str, since_us: int) -> int:
        """Sum settled spend from the journal's tail back to ``since_us``."""
        start = bisect.bisect_left(self.journal_ts, since_us)
        return sum(
            entry.amounts.get(unit, 0)
            for entry in self.journal[start:]
            if entry.kind == "settled" and scope in entry.scopes
        )

    def append(self, entry: Entry) -> None:
        """Append a journal entry."""
        self.journal.append(entry)
        self.journal_ts.append(entry.ts_us)


class MemoryStore(Store):
    """An in-process store (see the module docstring)."""

    scheme = "memory"
    batches = False  # a lock is already one "transaction"; batching would only add latency

    def __init__(self, url: str, clock: Clock) -> None:
        super().__init__(url, clock)
        self._lock = threading.Lock()
        self._rows = _LiveRows()

    def execute(self, ops: Sequence[Op], config: Config) -> list[Outcome]:
        """Apply ``ops`` under the store's lock."""
        with self._lock:
            return apply_batch(self._rows, ops, self.clock.now_us(), config)

    async def aexecute(self, ops: Sequence[Op], config: Config) -> list[Outcome]:
        """Apply ``ops`` at once: nothing here waits on I/O."""
        return self.execute(ops, config)

    def accounts(self, scope: str | None = None) -> list[Account]:
        """Copies of the accounts (of ``scope`` if given)."""
        with self._lock:
            if scope is not None:
                return [a.copy() for a in self._rows.accounts_by_scope.get(scope, [])]
            return [a.copy() for rows in self._rows.accounts_by_scope.values() for a in rows]

    def holds(
        self, *, scope: str | None = None, states: Sequence[str] = ("open",), limit: int = 1000
    ) -> list[HoldRecord]:
        """Copies of up to ``limit`` holds, oldest first."""
        with self._lock:
            found = [
                hold.copy()
                for hold in self._rows.holds.values()
                if hold.state in states and (scope is None or scope in hold.scopes)
            ]
        found.sort(key=lambda hold: (hold.created_us, hold.id))
        return found[:limit]

    def audit_snapshot(self) -> tuple[list[Account], list[HoldRecord], Iterator[Entry]]:
        """Copies of accounts, open holds and the journal, taken under one lock."""
        with self._lock:
            rows = self._rows
            accounts = [a.copy() for found in rows.accounts_by_scope.values() for a in found]
            holds = [h.copy() for h in rows.holds.values() if h.state == "open"]
            entries = list(rows.journal)
        return accounts, holds, iter(entries)

    def journal(self, since_us: int | None = None, until_us: int | None = None) -> Iterator[Entry]:
        """Journal entries in ``[since_us, until_us)``."""
        with self._lock:
            start = 0 if since_us is None else bisect.bisect_left(self._rows.journal_ts, since_us)
            end = (
                len(self._rows.journal)
                if until_us is None
                else bisect.bisect_left(self._rows.journal_ts, until_us)
            )
            entries = self._rows.journal[start:end]
        return iter(entries)
