"""A duration limit created in the same instant as a settle (an earlier operation of the same
batch) starts from that settle, and ``verify`` agrees (found by the state machine's batches)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from capledger import Ledger, ManualClock
from capledger._core import Config, Reserve, SetLimit, Settle


def test_a_duration_limit_set_right_after_a_settle_in_its_batch_counts_it_and_verifies() -> None:
    ledger = Ledger("memory://", clock=ManualClock(datetime(2026, 1, 5, 12, tzinfo=UTC)))
    tenth_of_a_dollar = 10**8
    outcomes = ledger._store.execute(
        [
            Reserve("hold-1", ("user:a",), {"usd": tenth_of_a_dollar}, 60 * 10**6, None, {}, ""),
            Settle("hold-1", {}, {}),
            SetLimit("user:a", "usd", "90m", 10**9, "UTC"),
        ],
        Config(),
    )
    assert [outcome.error for outcome in outcomes] == [None, None, None]
    (ninety_minutes,) = [b for b in ledger.balance("user:a") if b.period == "90m"]
    assert ninety_minutes.spent == Decimal("0.1")
    report = ledger.verify()
    assert not report.mismatches, report
