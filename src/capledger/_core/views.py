"""What a read shows: accounts as the next operation would find them, computed, not written.

A read (``Ledger.balance``) takes a store's snapshot, with no write lock, and asks this
module what the write path would see at the same moment: each window rolled if it has
passed (``roll_window``, the same rule ``decide`` applies before deciding), and the open
holds past their expiry no longer held (as the next operation expires them). Nothing here
changes a stored row.
"""

from __future__ import annotations

from typing import NamedTuple

from .decide import roll_window
from .records import Account, HoldRecord

__all__ = ["Snapshot", "accounts_as_of"]


class Snapshot(NamedTuple):
    """A store's read of a few scopes at one instant, with no write lock.

    ``now_us`` and ``tick_us`` are the two clocks the store's write path would decide with
    at that instant: the wall clock (windows) and the clock hold deadlines are measured on
    (``HoldRecord.deadline_us``; the wall clock again on stores without a steadier one).
    """

    #: Every account of the scopes, as stored (not rolled).
    accounts: list[Account]
    #: Every open hold charged to any of the scopes, oldest first.
    open_holds: list[HoldRecord]
    now_us: int
    tick_us: int


def accounts_as_of(snapshot: Snapshot) -> list[Account]:
    """Copies of the snapshot's accounts as the write path would find them at its instant:
    windows rolled, and the holds past their deadline no longer held, as expiring them
    would (the same test as ``decide``'s: ``tick_us >= deadline_us``)."""
    now_us, tick_us = snapshot.now_us, snapshot.tick_us
    overdue = [hold for hold in snapshot.open_holds if tick_us >= hold.deadline_us]
    shown: list[Account] = []
    for stored in snapshot.accounts:
        account = stored.copy()
        roll_window(account, now_us)
        for hold in overdue:
            if account.scope in hold.scopes:
                account.held -= hold.amounts.get(account.unit, 0)
        shown.append(account)
    return shown
