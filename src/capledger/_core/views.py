"""What a read shows: accounts as the next operation would find them, computed, not written.

A read (``Ledger.balance``) takes a store's snapshot, with no write lock, and asks this
module what the write path would see at the same moment: each window rolled if it has
passed (``roll_window``, the same rule ``decide`` applies before deciding), and the open
holds past their expiry no longer held (as the next operation expires them). Nothing here
changes a stored row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .decide import roll_window
from .records import Account, HoldRecord

__all__ = ["accounts_as_of"]


def accounts_as_of(
    accounts: Iterable[Account], open_holds: Sequence[HoldRecord], now_us: int
) -> list[Account]:
    """Copies of ``accounts`` as they stand at ``now_us``.

    Args:
        accounts: accounts as stored (not rolled).
        open_holds: every open hold charged to any of their scopes, read at the same
            instant as ``accounts``.
        now_us: the moment to show, on the wall clock; a hold whose ``expires_us`` has come
            is shown as released, as expiring it would.
    """
    overdue = [hold for hold in open_holds if now_us >= hold.expires_us]
    shown: list[Account] = []
    for stored in accounts:
        account = stored.copy()
        roll_window(account, now_us)
        for hold in overdue:
            if account.scope in hold.scopes:
                account.held -= hold.amounts.get(account.unit, 0)
        shown.append(account)
    return shown
