"""The contract of expiry: holds expire lazily at their TTL, a sweep clears what is overdue,
and extending pushes the expiry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from capledger import BudgetExceeded, Event, HoldClosed, Ledger, ManualClock
from capledger.testing.contract._support import balance_of

__all__ = ["ExpiryContract"]


class ExpiryContract:
    """Holds expire at their TTL, lazily or by a sweep, once."""

    def test_holds_expire_lazily_at_their_ttl(self, ledger: Ledger, clock: ManualClock) -> None:
        events: list[Event] = []
        ledger.on("expired", events.append)
        ledger.set_limit("user:a", usd="0.10")
        hold = ledger.reserve("user:a", usd="0.10", ttl=30)
        clock.advance(29.999)
        with pytest.raises(BudgetExceeded):
            ledger.reserve("user:a", usd="0.10")
        clock.advance(0.001)
        ledger.reserve("user:a", usd="0.10")  # the first hold expired in this very step
        assert [h.state for h in ledger.holds(state="expired")] == ["expired"]
        assert ledger.holds(state="expired")[0].id == hold.id

    def test_settling_an_expired_hold_records_spend_late(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        ledger.set_limit("user:a", usd="0.15")
        hold = ledger.reserve("user:a", usd="0.10", ttl=10)
        clock.advance(11)
        ledger.reserve("user:a", usd="0.10")  # takes the expired hold's room
        hold.settle(usd="0.08")
        assert hold.state == "settled"
        assert hold.flags == {"late", "overrun"}  # 0.08 + 0.10 held > 0.15
        balance = balance_of(ledger, "user:a")
        assert (balance.spent, balance.held) == (Decimal("0.08"), Decimal("0.1"))
        hold.settle(usd="0.08")  # the same late settle again: a no-op
        with pytest.raises(HoldClosed):
            hold.settle(usd="0.09")
        # Spent within its hold, yet past the cap: its budget went to another hold while it
        # was still spending. The record is right; G2 was exposed, and verify says so.
        report = ledger.verify()
        assert not report.ok and not report.mismatches and not report.breaches
        assert len(report.exposures) == 1 and f"hold {hold.id}" in report.exposures[0]

    def test_sweep_expires_everything_overdue(self, ledger: Ledger, clock: ManualClock) -> None:
        for index in range(5):
            ledger.reserve(f"user:u{index}", usd="0.01", ttl=1)
        clock.advance(2)
        assert ledger.sweep() == 5
        assert ledger.holds() == []
        assert ledger.sweep() == 0

    def test_sweep_clears_a_large_backlog(self, ledger: Ledger, clock: ManualClock) -> None:
        count = 1500  # more than one lazy step and one sweep step together
        for index in range(count):
            ledger.reserve(f"user:u{index % 7}", usd="0.01", ttl=1)
        clock.advance(2)
        steps: list[int] = []
        assert ledger.sweep(progress=steps.append) == count
        assert sum(steps) == count and len(steps) >= 2  # reported step by step
        assert ledger.holds(limit=10) == []

    def test_extend_pushes_the_expiry(self, ledger: Ledger, clock: ManualClock) -> None:
        hold = ledger.reserve("user:a", usd="0.10", ttl=10)
        clock.advance(8)
        hold.extend(ttl=10)
        clock.advance(8)
        hold.settle(usd="0.10")
        assert hold.flags == frozenset()  # not late

    def test_an_extended_hold_expires_once(self, ledger: Ledger, clock: ManualClock) -> None:
        hold = ledger.reserve("user:a", usd="0.10", ttl=10)
        hold.extend(usd="0.05")
        hold.extend(usd="0.05", ttl=5)
        clock.advance(11)
        assert ledger.sweep() == 1
        assert balance_of(ledger, "user:a").held == Decimal(0)
        assert ledger.verify().ok
