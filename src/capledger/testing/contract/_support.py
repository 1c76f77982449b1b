"""What the contract's tests share: the clock's start, the row count behind every
"nothing written" check, and small helpers on amounts and balances."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from capledger import AsyncLedger, Balance, Ledger
from capledger._core import Outcome, Reserve, Settle
from capledger.bounds import MAX_AMOUNT, NANO_PER_USD
from capledger.ledger._validate import new_hold_id

__all__ = ["START", "balance_of", "count_rows", "drive_spent", "usd"]

#: A Monday, noon UTC: day, week and month windows are all well inside their bounds.
START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def count_rows(ledger: Ledger | AsyncLedger) -> tuple[int, int, int]:
    """(accounts, holds, journal entries) in the ledger's store: 'nothing written' checks."""
    store = ledger._store
    return (
        len(store.accounts()),
        len(store.holds(states=("open", "settled", "released", "expired"), limit=10**9)),
        sum(1 for _ in store.journal()),
    )


def drive_spent(ledger: Ledger, scope: str, settles: int) -> None:
    """Settle ``settles`` holds of the largest usd amount on ``scope``, in store batches.

    The real path to a huge counter, fast enough for every store (a few thousand
    operations), instead of writing a counter row by hand.
    """
    largest = MAX_AMOUNT["usd"]
    ops: list[Reserve | Settle] = []
    for _ in range(settles):
        hold_id = new_hold_id()
        ops.append(Reserve(hold_id, (scope,), {"usd": largest}, 60_000_000, None, {}, ""))
        ops.append(Settle(hold_id, {"usd": largest}, {}))
    outcomes: list[Outcome] = ledger._execute_all(ops)
    assert [outcome.error for outcome in outcomes if outcome.error] == []


def usd(nano: int) -> Decimal:
    """Nano-USD as the API's dollars."""
    return Decimal(nano) / NANO_PER_USD


def balance_of(ledger: Ledger, scope: str, period: str = "total", unit: str = "usd") -> Balance:
    """The one balance of (scope, unit, period)."""
    found = [b for b in ledger.balance(scope) if b.period == period and b.unit == unit]
    assert len(found) == 1, f"no single {unit}/{period} balance for {scope}: {found}"
    return found[0]
