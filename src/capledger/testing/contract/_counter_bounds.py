"""The contract at the counters' bounds: no hold or settle may take a counter past what
its store can keep."""

from __future__ import annotations

from decimal import Decimal

import pytest

from capledger import BudgetExceeded, CounterLimitReached, Event, Ledger, ManualClock
from capledger._core import Reserve, Settle
from capledger.bounds import COUNTER_STORAGE_MAX, MAX_AMOUNT, MAX_COUNTER
from capledger.ledger._validate import new_hold_id
from capledger.testing.contract._support import balance_of, drive_spent, usd

__all__ = ["CounterBoundContract"]


class CounterBoundContract:
    """No hold, extension or settle takes a counter past its bound."""

    def test_an_uncapped_counter_takes_no_hold_past_its_bound(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        largest = MAX_AMOUNT["usd"]
        settles = MAX_COUNTER // largest  # as many of the largest settles as fit under it
        room = MAX_COUNTER - settles * largest  # $686,018.427387904 left below the bound
        late = ledger.reserve("user:big", usd="0", ttl=10)  # to settle late, past the bound
        drive_spent(ledger, "user:big", settles)
        # In one store batch: the hold that would pass the bound is refused, typed, alone.
        too_much = Reserve(
            new_hold_id(), ("user:big",), {"usd": room + 1}, 60_000_000, None, {}, ""
        )
        other = Reserve(new_hold_id(), ("user:small",), {"usd": 10**8}, 60_000_000, None, {}, "")
        exact = Reserve(new_hold_id(), ("user:big",), {"usd": room}, 60_000_000, None, {}, "")
        refused, placed, fits = ledger._execute_all([too_much, other, exact])
        assert isinstance(refused.error, CounterLimitReached)
        assert isinstance(refused.error, BudgetExceeded)
        assert (refused.error.scope, refused.error.unit, refused.error.period) == (
            "user:big",
            "usd",
            "total",
        )
        assert (refused.error.requested, refused.error.available) == (usd(room + 1), usd(room))
        assert refused.error.bound == usd(MAX_COUNTER)
        assert placed.error is None and fits.error is None
        assert balance_of(ledger, "user:small").held == Decimal("0.1")
        balance = balance_of(ledger, "user:big")
        assert (balance.spent, balance.held) == (usd(settles * largest), usd(room))
        ledger.reserve("user:big", usd="0").release()  # exactly at the bound: nothing fits
        with pytest.raises(CounterLimitReached):
            ledger.reserve("user:big", usd="0.000000001")
        with pytest.raises(CounterLimitReached):
            ledger.reserve(["user:small", "user:big"], usd="0.000000001")
        assert balance_of(ledger, "user:small").held == Decimal("0.1")  # all or nothing
        # A settle above its hold at the bound is recorded in full: the money was spent.
        # (Listening only now: the reserves above take PostgreSQL's fast path, which only
        # runs with no listener.)
        events: list[Event] = []
        ledger.on("overrun", events.append)
        ledger.settle(fits.hold.id, usd=usd(largest))  # type: ignore[union-attr]
        assert [e.amounts for e in events] == [{"usd": usd(largest - room)}]
        with pytest.raises(CounterLimitReached):  # past the bound: not even nothing more
            ledger.reserve("user:big", usd="0")
        clock.advance(10)
        assert late.settle(usd=usd(largest)).flags == {"late"}  # recorded, though past the bound
        balance = balance_of(ledger, "user:big")
        expected = (settles + 2) * largest
        assert expected > MAX_COUNTER
        assert (balance.spent, balance.held) == (usd(expected), Decimal(0))
        report = ledger.verify()
        assert report.ok, (report.mismatches, report.breaches)

    def test_an_extension_past_the_bound_is_refused(self, ledger: Ledger) -> None:
        largest = MAX_AMOUNT["usd"]
        settles = MAX_COUNTER // largest
        room = MAX_COUNTER - settles * largest
        hold = ledger.reserve("user:big", usd="0")
        drive_spent(ledger, "user:big", settles)
        hold.extend(usd=usd(room))
        with pytest.raises(CounterLimitReached):
            hold.extend(usd="0.000000001")
        assert hold.amounts == {"usd": usd(room)}
        assert balance_of(ledger, "user:big").held == usd(room)

    def test_a_settle_that_would_overflow_its_counter_is_refused_alone(
        self, ledger: Ledger
    ) -> None:
        # Open holds settled above their holds past the bound, until the next one would not
        # fit in a 64-bit counter: thousands of the largest settles past $4.6e9.
        largest = MAX_AMOUNT["usd"]
        settles = MAX_COUNTER // largest
        fit = (COUNTER_STORAGE_MAX - settles * largest) // largest
        ops = [
            Reserve(new_hold_id(), ("user:big",), {"usd": 0}, 3_600_000_000, None, {}, "")
            for _ in range(fit + 1)
        ]
        assert all(outcome.error is None for outcome in ledger._execute_all(ops))
        drive_spent(ledger, "user:big", settles)
        settled = ledger._execute_all([Settle(op.hold_id, {"usd": largest}, {}) for op in ops])
        assert [outcome.error for outcome in settled[:fit]] == [None] * fit
        assert balance_of(ledger, "user:big").spent == usd((settles + fit) * largest)
        # The next one would overflow: refused, typed, and only it, in its batch.
        other = Reserve(new_hold_id(), ("user:small",), {"usd": 10**8}, 60_000_000, None, {}, "")
        refused, placed = ledger._execute_all(
            [Settle(ops[fit].hold_id, {"usd": largest}, {}), other]
        )
        assert isinstance(refused.error, CounterLimitReached)
        assert refused.error.bound == usd(COUNTER_STORAGE_MAX)
        assert placed.error is None
        assert balance_of(ledger, "user:big").spent == usd((settles + fit) * largest)
        assert ledger.verify().ok
