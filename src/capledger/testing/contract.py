"""The contract every store must keep, as a pytest base class.

Subclass ``LedgerContract`` in a store's test module and implement ``make_ledger`` (a fresh,
empty ledger on that store, using the given clock). Every test asserts exact amounts, the
refusals as carefully as the successes, and that refused or invalid calls write nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from capledger import (
    AsyncLedger,
    Balance,
    BudgetExceeded,
    CounterLimitReached,
    Event,
    Hold,
    HoldClosed,
    HoldNotFound,
    IdempotencyConflict,
    IdempotentHoldClosed,
    InvalidAmount,
    InvalidInput,
    InvalidPeriod,
    InvalidScope,
    InvalidTag,
    InvalidTTL,
    InvalidUnit,
    Ledger,
    ManualClock,
    UnsettledHoldWarning,
)
from capledger._core import Outcome, Reserve, Settle
from capledger._validate import new_hold_id
from capledger.bounds import COUNTER_STORAGE_MAX, MAX_AMOUNT, MAX_COUNTER, NANO_PER_USD
from capledger.clock import Clock

__all__ = ["AsyncLedgerContract", "LedgerContract", "count_rows"]

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


class LedgerContract:
    """The store contract. Subclasses implement ``make_ledger``."""

    def make_ledger(self, clock: Clock, tmp_path: Path) -> Ledger:
        """Return a fresh, empty ledger on the store under test."""
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(START)

    @pytest.fixture
    def ledger(self, clock: ManualClock, tmp_path: Path) -> Iterator[Ledger]:
        ledger = self.make_ledger(clock, tmp_path)
        yield ledger
        ledger.close()

    # --- holding and the cap ---------------------------------------------------------------

    def test_hold_up_to_the_cap_exactly_then_refuse(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="0.30")
        holds = [ledger.reserve("user:a", usd="0.10") for _ in range(3)]
        with pytest.raises(BudgetExceeded) as refused:
            ledger.reserve("user:a", usd="0.000000001")
        assert refused.value.scope == "user:a"
        assert refused.value.unit == "usd"
        assert refused.value.period == "total"
        assert refused.value.available == Decimal(0)
        assert refused.value.requested == Decimal("0.000000001")
        assert refused.value.retry_after is None  # a total limit never resets
        balance = balance_of(ledger, "user:a")
        assert (balance.held, balance.spent, balance.available) == (
            Decimal("0.3"),
            Decimal(0),
            Decimal(0),
        )
        for hold in holds:
            hold.settle(usd="0.10")
        balance = balance_of(ledger, "user:a")
        assert (balance.held, balance.spent) == (Decimal(0), Decimal("0.3"))

    def test_multi_scope_reserve_is_all_or_nothing(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="1.00")
        ledger.set_limit("tenant:t", usd="0.15")
        ledger.reserve(["user:a", "tenant:t"], usd="0.10")
        before = count_rows(ledger)
        with pytest.raises(BudgetExceeded) as refused:
            ledger.reserve(["user:a", "tenant:t", "feature:f"], usd="0.10")
        assert refused.value.scope == "tenant:t"
        assert refused.value.available == Decimal("0.05")
        assert balance_of(ledger, "user:a").held == Decimal("0.1")  # not 0.2
        assert count_rows(ledger)[1:] == before[1:]  # no hold, no journal entry

    def test_scopes_in_any_order_and_duplicates_count_once(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="0.10")
        ledger.reserve(["tenant:t", "user:a", "user:a"], usd="0.10")
        assert balance_of(ledger, "user:a").held == Decimal("0.1")

    def test_every_limit_of_a_scope_is_enforced(self, ledger: Ledger, clock: ManualClock) -> None:
        ledger.set_limit("user:a", usd="1.00", period="day")
        ledger.set_limit("user:a", usd="1.50", period="month")
        ledger.reserve("user:a", usd="1.00").settle()
        with pytest.raises(BudgetExceeded) as refused:
            ledger.reserve("user:a", usd="0.01")
        assert refused.value.period == "day"
        assert refused.value.retry_after == timedelta(hours=12)  # noon to midnight
        clock.advance(timedelta(days=1))
        ledger.reserve("user:a", usd="0.50").settle()
        with pytest.raises(BudgetExceeded) as refused:
            ledger.reserve("user:a", usd="0.01")
        assert refused.value.period == "month"

    def test_units_tokens_and_requests(self, ledger: Ledger) -> None:
        ledger.set_limit("key:k", tokens=1000, requests=2)
        hold = ledger.reserve("key:k", tokens=600, requests=1)
        with pytest.raises(BudgetExceeded) as refused:
            ledger.reserve("key:k", tokens=600, requests=1)
        assert refused.value.unit == "tokens"
        hold.settle(tokens=400)  # requests settle at the held 1
        ledger.reserve("key:k", tokens=600, requests=1).settle(tokens=600)
        with pytest.raises(BudgetExceeded) as refused:
            ledger.reserve("key:k", requests=1)
        assert refused.value.unit == "requests"
        balances = {b.unit: b for b in ledger.balance("key:k")}
        assert balances["tokens"].spent == 1000
        assert balances["requests"].spent == 2

    def test_float_amounts_go_through_str(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd=0.3)
        for _ in range(3):
            ledger.reserve("user:a", usd=0.1).settle()
        assert balance_of(ledger, "user:a").spent == Decimal("0.3")

    def test_sub_nano_amounts_round_up(self, ledger: Ledger) -> None:
        hold = ledger.reserve("user:a", usd="0.0000000001")
        assert hold.amounts == {"usd": Decimal("1E-9")}

    # --- settling -------------------------------------------------------------------------

    def test_settle_below_releases_the_rest(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="1")
        hold = ledger.reserve("user:a", usd="0.50")
        hold.settle(usd="0.20")
        balance = balance_of(ledger, "user:a")
        assert (balance.spent, balance.held, balance.available) == (
            Decimal("0.2"),
            Decimal(0),
            Decimal("0.8"),
        )
        assert hold.state == "settled"
        assert hold.flags == ""

    def test_settle_above_the_hold_is_recorded_in_full(self, ledger: Ledger) -> None:
        events: list[Event] = []
        ledger.on("overrun", events.append)
        ledger.set_limit("user:a", usd="1.00")
        hold = ledger.reserve("user:a", usd="0.90")
        hold.settle(usd="1.20")
        assert "overrun" in hold.flags
        balance = balance_of(ledger, "user:a")
        assert balance.spent == Decimal("1.2")  # the money was spent: all of it is recorded
        assert balance.available == Decimal(0)
        assert [e.kind for e in events] == ["overrun"]
        assert events[0].amounts == {"usd": Decimal("0.3")}
        with pytest.raises(BudgetExceeded):  # over its cap: no new holds, not even tiny ones
            ledger.reserve("user:a", usd="0")
        report = ledger.verify()
        assert report.ok, report.mismatches
        assert report.overruns == ["user:a usd/total"]

    def test_settle_twice_same_is_noop_different_is_refused(self, ledger: Ledger) -> None:
        hold = ledger.reserve("user:a", usd="0.50")
        hold.settle(usd="0.25")
        hold.settle(usd="0.25")
        assert balance_of(ledger, "user:a").spent == Decimal("0.25")
        before = count_rows(ledger)
        with pytest.raises(HoldClosed):
            hold.settle(usd="0.30")
        with pytest.raises(HoldClosed):
            hold.release()
        assert count_rows(ledger) == before

    def test_extend_a_released_hold_is_refused(self, ledger: Ledger) -> None:
        hold = ledger.reserve("user:a", usd="0.50")
        hold.release()
        hold.release()  # twice: a no-op
        before = count_rows(ledger)
        with pytest.raises(HoldClosed):
            hold.extend(usd="0.10")
        assert count_rows(ledger) == before
        assert balance_of(ledger, "user:a").held == Decimal(0)

    def test_settling_a_released_hold_records_spend_late(self, ledger: Ledger) -> None:
        events: list[Event] = []
        ledger.on("overrun", events.append)
        ledger.set_limit("user:a", usd="1.00")
        hold = ledger.reserve("user:a", usd="0.50")
        hold.release()  # e.g. a cleanup that raced the call, which did spend
        ledger.reserve("user:a", usd="0.50")  # takes the released room
        hold.settle(usd="0.70")  # money spent: recorded, never refused
        assert (hold.state, hold.settled_amounts) == ("settled", {"usd": Decimal("0.7")})
        assert set(hold.flags.split(",")) == {"late", "overrun"}  # 0.70 + 0.50 held > 1.00
        assert [e.kind for e in events] == ["overrun"]
        balance = balance_of(ledger, "user:a")
        assert (balance.spent, balance.held) == (Decimal("0.7"), Decimal("0.5"))
        before = count_rows(ledger)
        hold.settle(usd="0.70")  # the same settle again: a no-op
        with pytest.raises(HoldClosed):
            hold.settle(usd="0.71")
        with pytest.raises(HoldClosed):
            hold.release()
        assert count_rows(ledger) == before
        with pytest.raises(BudgetExceeded):  # over its cap: no new holds
            ledger.reserve("user:a", usd="0")
        report = ledger.verify()
        assert report.ok, (report.mismatches, report.breaches)
        assert [(r["late"], r["overruns"]) for r in ledger.report(["scope"])] == [(1, 1)]

    def test_a_late_settle_within_the_cap_is_late_only(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="1.00")
        released = ledger.reserve("user:a", usd="0.50")
        released.release()
        released.settle(usd="0.60")  # above the released hold, within the cap
        assert released.flags == "late"
        assert balance_of(ledger, "user:a").spent == Decimal("0.6")
        assert ledger.verify().ok

    def test_unknown_hold_id(self, ledger: Ledger) -> None:
        with pytest.raises(HoldNotFound):
            ledger.settle("h_missing", usd="0.1")
        with pytest.raises(HoldNotFound):
            ledger.release("h_missing")

    def test_settle_by_id_from_elsewhere(self, ledger: Ledger) -> None:
        hold = ledger.reserve("user:a", usd="0.50", tags={"model": "m"})
        info = ledger.settle(hold.id, usd="0.40", tags={"output_tokens": 12})
        assert info.state == "settled"
        assert info.settled == {"usd": Decimal("0.4")}
        assert info.tags == {"model": "m", "output_tokens": 12}

    # --- expiry ---------------------------------------------------------------------------

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
        assert set(hold.flags.split(",")) == {"late", "overrun"}  # 0.08 + 0.10 held > 0.15
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
        assert hold.flags == ""  # not late

    def test_an_extended_hold_expires_once(self, ledger: Ledger, clock: ManualClock) -> None:
        hold = ledger.reserve("user:a", usd="0.10", ttl=10)
        hold.extend(usd="0.05")
        hold.extend(usd="0.05", ttl=5)
        clock.advance(11)
        assert ledger.sweep() == 1
        assert balance_of(ledger, "user:a").held == Decimal(0)
        assert ledger.verify().ok

    # --- extend and observe ---------------------------------------------------------------

    def test_extend_tops_up_or_fails_without_change(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="1.00")
        hold = ledger.reserve("user:a", usd="0.50")
        hold.extend(usd="0.30")
        assert hold.amounts == {"usd": Decimal("0.8")}
        before = count_rows(ledger)
        with pytest.raises(BudgetExceeded):
            hold.extend(usd="0.30")
        assert count_rows(ledger)[1:] == before[1:]
        assert balance_of(ledger, "user:a").held == Decimal("0.8")

    def test_observe_extends_then_refuses(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="1.00")
        with pytest.raises(BudgetExceeded), ledger.reserve("user:a", usd="0.40") as hold:
            hold.observe(usd="0.30")
            assert hold.amounts == {"usd": Decimal("0.4")}  # no extension needed
            hold.observe(usd="0.60")  # past the hold: extended
            assert hold.amounts["usd"] >= Decimal("0.6")
            hold.observe(usd="1.10")  # the budget cannot pay: the caller must stop
        # The exception left the block after spending was observed: it is settled, not released
        assert hold.state == "settled"
        assert hold.settled_amounts == {"usd": Decimal("1.1")}
        assert balance_of(ledger, "user:a").spent == Decimal("1.1")

    # --- the context manager ---------------------------------------------------------------

    def test_block_exception_without_observation_releases(self, ledger: Ledger) -> None:
        with pytest.raises(RuntimeError), ledger.reserve("user:a", usd="0.10") as hold:
            raise RuntimeError("provider error before any output")
        assert hold.state == "released"
        assert balance_of(ledger, "user:a").held == Decimal(0)

    def test_block_exception_after_observation_settles_it(self, ledger: Ledger) -> None:
        with pytest.raises(ConnectionError), ledger.reserve("user:a", usd="0.10") as hold:
            hold.observe(usd="0.04")
            raise ConnectionError("stream dropped")
        assert hold.state == "settled"
        assert balance_of(ledger, "user:a").spent == Decimal("0.04")

    def test_block_exit_unsettled_settles_in_full_with_a_warning(self, ledger: Ledger) -> None:
        with pytest.warns(UnsettledHoldWarning), ledger.reserve("user:a", usd="0.10") as hold:
            pass
        assert hold.state == "settled"
        assert balance_of(ledger, "user:a").spent == Decimal("0.1")

    def test_block_exit_observed_settles_observed(self, ledger: Ledger) -> None:
        with ledger.reserve("user:a", usd="0.10") as hold:
            hold.observe(usd="0.02")
            hold.observe(usd="0.01")  # running totals never go back
        assert hold.settled_amounts == {"usd": Decimal("0.02")}

    # --- counter bounds --------------------------------------------------------------------

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
        assert late.settle(usd=usd(largest)).flags == "late"  # recorded, though past the bound
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

    # --- idempotency ----------------------------------------------------------------------

    def test_same_request_id_returns_the_same_hold(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="0.10")
        first = ledger.reserve("user:a", usd="0.10", request_id="req-1")
        again = ledger.reserve("user:a", usd="0.10", request_id="req-1")
        assert again.id == first.id
        assert balance_of(ledger, "user:a").held == Decimal("0.1")
        first.settle(usd="0.05")
        after_settle = ledger.reserve("user:a", usd="0.10", request_id="req-1", return_closed=True)
        assert (after_settle.id, after_settle.state) == (first.id, "settled")

    @pytest.mark.parametrize("closed_by", ["settle", "release", "expiry"])
    def test_a_retry_that_finds_its_hold_closed_says_so(
        self, ledger: Ledger, clock: ManualClock, closed_by: str
    ) -> None:
        ledger.set_limit("user:a", usd="1.00")
        first = ledger.reserve("user:a", usd="0.50", request_id="req-1", ttl=10)
        if closed_by == "settle":
            first.settle(usd="0.20")
        elif closed_by == "release":
            first.release()
        else:
            clock.advance(10)
            assert ledger.sweep() == 1
        state = {"settle": "settled", "release": "released", "expiry": "expired"}[closed_by]
        before = count_rows(ledger)
        with pytest.raises(IdempotentHoldClosed) as closed:
            ledger.reserve("user:a", usd="0.50", request_id="req-1", ttl=10)
        assert isinstance(closed.value, HoldClosed)
        assert (closed.value.hold_id, closed.value.state) == (first.id, state)
        assert closed.value.request_id == "req-1"
        assert closed.value.hold is not None
        assert (closed.value.hold.id, closed.value.hold.state) == (first.id, state)
        assert "req-1" in str(closed.value) and state in str(closed.value)
        # Asked for, the closed hold is returned as it is; nothing is held either way.
        returned = ledger.reserve(
            "user:a", usd="0.50", request_id="req-1", ttl=10, return_closed=True
        )
        assert (returned.id, returned.state) == (first.id, state)
        assert count_rows(ledger) == before
        assert balance_of(ledger, "user:a").held == Decimal(0)
        with pytest.raises(IdempotencyConflict):  # a different payload still conflicts
            ledger.reserve("user:a", usd="0.40", request_id="req-1", return_closed=True)

    def test_a_retry_that_takes_a_released_hold_still_records_its_spend(
        self, ledger: Ledger
    ) -> None:
        first = ledger.reserve("user:a", usd="0.50", request_id="req-1")
        first.release()
        with ledger.reserve("user:a", usd="0.50", request_id="req-1", return_closed=True) as hold:
            hold.observe(usd="0.40")  # the retried call streams, under the closed hold
        assert (hold.state, hold.settled_amounts, hold.flags) == (
            "settled",
            {"usd": Decimal("0.4")},
            "late",
        )
        assert balance_of(ledger, "user:a").spent == Decimal("0.4")
        second = ledger.reserve("user:b", usd="0.50", request_id="req-2")
        second.release()
        retried = ledger.reserve("user:b", usd="0.50", request_id="req-2", return_closed=True)
        retried.settle(usd="0.70")
        assert (retried.state, retried.flags) == ("settled", "late")
        assert balance_of(ledger, "user:b").spent == Decimal("0.7")
        assert ledger.verify().ok

    def test_a_block_whose_hold_closed_under_it_settles_what_it_observed(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        with ledger.reserve("user:a", usd="0.50", ttl=10) as hold:
            hold.observe(usd="0.10")
            hold.release()  # released by mistake mid-stream: the spend is still recorded
            hold.observe(usd="0.30")
        assert (hold.settled_amounts, hold.flags) == ({"usd": Decimal("0.3")}, "late")
        first = ledger.reserve("user:b", usd="0.50", ttl=10, request_id="req-b")
        clock.advance(11)
        ledger.sweep()
        with (
            pytest.warns(UnsettledHoldWarning),
            ledger.reserve(
                "user:b", usd="0.50", ttl=10, request_id="req-b", return_closed=True
            ) as expired,
        ):
            assert expired.id == first.id
        # An expired hold left unsettled settles its held amount, as an open one does.
        assert (expired.settled_amounts, expired.flags) == ({"usd": Decimal("0.5")}, "late")
        assert balance_of(ledger, "user:b").spent == Decimal("0.5")
        released = ledger.reserve("user:c", usd="0.50")
        with released:
            released.release()  # released by the caller, nothing observed: left alone
        assert released.state == "released"
        assert ledger.verify().ok

    def test_same_request_id_different_payload_conflicts(self, ledger: Ledger) -> None:
        ledger.reserve("user:a", usd="0.10", request_id="req-1", tags={"model": "a"})
        before = count_rows(ledger)
        for changed in (
            {"usd": "0.11"},
            {"scopes": ["user:b"]},
            {"tags": {"model": "b"}},
            {"ttl": 61},
        ):
            arguments: dict[str, Any] = {
                "usd": "0.10",
                "request_id": "req-1",
                "tags": {"model": "a"},
            }
            arguments.update(changed)
            scopes = arguments.pop("scopes", "user:a")
            with pytest.raises(IdempotencyConflict):
                ledger.reserve(scopes, **arguments)
        assert count_rows(ledger) == before

    # --- windows and limits ---------------------------------------------------------------

    def test_window_rolls_and_holds_stay_held(self, ledger: Ledger, clock: ManualClock) -> None:
        ledger.set_limit("user:a", usd="1.00", period="day")
        ledger.reserve("user:a", usd="0.70").settle()
        open_hold = ledger.reserve("user:a", usd="0.20", ttl=86_400)
        clock.advance(timedelta(hours=13))  # past midnight
        balance = balance_of(ledger, "user:a", "day")
        assert (balance.spent, balance.held) == (Decimal(0), Decimal("0.2"))
        assert balance.window_start == datetime(2026, 1, 6, tzinfo=UTC)
        open_hold.settle(usd="0.20")
        assert balance_of(ledger, "user:a", "day").spent == Decimal("0.2")
        assert balance_of(ledger, "user:a").spent == Decimal("0.9")  # the lifetime total
        assert ledger.verify().ok

    def test_calendar_windows_follow_the_time_zone(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        ledger.set_limit("user:a", usd="1", period="day", tz="Asia/Tokyo")  # UTC+9
        balance = balance_of(ledger, "user:a", "day")
        # noon UTC is 21:00 in Tokyo: the day began at the previous 15:00 UTC
        assert balance.window_start == datetime(2026, 1, 4, 15, tzinfo=UTC)
        assert balance.window_end == datetime(2026, 1, 5, 15, tzinfo=UTC)

    def test_fixed_duration_windows_anchor_at_creation(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        ledger.set_limit("user:a", usd="1", period="30d")
        clock.advance(timedelta(days=31))
        balance = balance_of(ledger, "user:a", "30d")
        assert balance.window_start == START + timedelta(days=30)
        assert balance.window_end == START + timedelta(days=60)

    def test_a_limit_re_asserted_in_a_zone_behind_keeps_its_window_and_spend(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        ledger.set_limit("user:a", usd="1.00", period="day")  # UTC: 2026-01-05
        ledger.reserve("user:a", usd="0.60").settle()
        ledger.reserve("user:a", usd="0.20", ttl=86_400)
        ledger.set_limit("user:a", usd="1.00", period="day", tz="America/New_York")
        # The window keeps its start and spend; it runs on to New York's next midnight,
        # five hours after UTC's, so that no five-hour window gets a cap of its own.
        balance = balance_of(ledger, "user:a", "day")
        assert (balance.spent, balance.held) == (Decimal("0.6"), Decimal("0.2"))
        assert (balance.window_start, balance.window_end) == (
            datetime(2026, 1, 5, tzinfo=UTC),
            datetime(2026, 1, 6, 5, tzinfo=UTC),
        )
        assert ledger.verify().ok
        clock.set(datetime(2026, 1, 6, 2, tzinfo=UTC))  # past UTC midnight: same window
        with pytest.raises(BudgetExceeded):
            ledger.reserve("user:a", usd="0.30")
        clock.set(datetime(2026, 1, 6, 5, tzinfo=UTC))  # New York's midnight: a new day
        balance = balance_of(ledger, "user:a", "day")
        assert (balance.spent, balance.held) == (Decimal(0), Decimal("0.2"))
        assert balance.window_end == datetime(2026, 1, 7, 5, tzinfo=UTC)
        ledger.reserve("user:a", usd="0.30").settle()
        assert ledger.verify().ok

    def test_a_limit_re_asserted_in_a_zone_ahead_keeps_its_window_and_spend(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        ledger.set_limit("user:a", usd="1.00", period="day")
        ledger.reserve("user:a", usd="0.90").settle()
        ledger.set_limit("user:a", usd="1.00", period="day", tz="Asia/Tokyo")
        # Tokyo's nearest midnight (15:00 UTC) is nine hours before UTC's: the window keeps
        # its end, and the first Tokyo window runs from there to Tokyo's next midnight.
        balance = balance_of(ledger, "user:a", "day")
        assert balance.spent == Decimal("0.9")
        assert balance.window_end == datetime(2026, 1, 6, tzinfo=UTC)
        with pytest.raises(BudgetExceeded):
            ledger.reserve("user:a", usd="0.20")
        clock.set(datetime(2026, 1, 6, 1, tzinfo=UTC))
        balance = balance_of(ledger, "user:a", "day")
        assert balance.spent == Decimal(0)
        assert (balance.window_start, balance.window_end) == (
            datetime(2026, 1, 6, tzinfo=UTC),
            datetime(2026, 1, 6, 15, tzinfo=UTC),
        )
        ledger.reserve("user:a", usd="0.20").settle()
        clock.set(datetime(2026, 1, 6, 16, tzinfo=UTC))
        balance = balance_of(ledger, "user:a", "day")
        assert (balance.window_start, balance.window_end) == (
            datetime(2026, 1, 6, 15, tzinfo=UTC),
            datetime(2026, 1, 7, 15, tzinfo=UTC),
        )
        assert ledger.verify().ok

    def test_a_duration_limit_re_asserted_from_a_ledger_in_another_zone_keeps_its_anchor(
        self, ledger: Ledger, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ledger.set_limit("user:a", usd="100", period="30d")
        ledger.reserve("user:a", usd="100").settle()
        clock.advance(timedelta(days=10))
        # As a service built with Ledger(timezone="Europe/Paris") re-asserting the limit.
        monkeypatch.setattr(ledger, "_timezone", "Europe/Paris")
        ledger.set_limit("user:a", usd="100", period="30d")
        balance = balance_of(ledger, "user:a", "30d")
        assert (balance.spent, balance.window_start) == (Decimal(100), START)
        with pytest.raises(BudgetExceeded):
            ledger.reserve("user:a", usd="1")
        assert ledger.verify().ok

    def test_a_minute_cap_holds_in_the_repeated_hour_of_a_fall_back(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        # New York falls back at 06:00 UTC on 2026-11-01: 01:00-02:00 local happens twice.
        clock.set(datetime(2026, 11, 1, 5, 58, 30, tzinfo=UTC))
        ledger.set_limit("user:a", requests=5, period="minute", tz="America/New_York")
        ledger.set_limit("user:a", requests=400, period="hour", tz="America/New_York")
        granted = []
        for _ in range(5):  # 05:58:30, 05:59:30, then three minutes of the repeated hour
            count = 0
            for _ in range(8):
                try:
                    ledger.reserve("user:a", requests=1).settle()
                except BudgetExceeded:
                    continue
                count += 1
            granted.append(count)
            clock.advance(60)
        assert granted == [5, 5, 5, 5, 5]
        hour = balance_of(ledger, "user:a", "hour", unit="requests")
        assert hour.window_end is not None
        assert hour.window_end - hour.window_start == timedelta(hours=1)
        assert hour.window_start == datetime(2026, 11, 1, 6, tzinfo=UTC)
        assert ledger.verify().ok

    def test_verify_agrees_with_hour_windows_across_a_fall_back(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        clock.set(datetime(2026, 11, 1, 5, 20, tzinfo=UTC))  # 01:20 EDT, an hour before
        ledger.set_limit("user:a", usd="1.00", period="hour", tz="America/New_York")
        spent_in_hour = []
        for _ in range(6):  # every 20 minutes through the first and the repeated 01:00
            ledger.reserve("user:a", usd="0.10").settle()
            spent_in_hour.append(balance_of(ledger, "user:a", "hour").spent)
            assert ledger.verify().ok
            clock.advance(timedelta(minutes=20))
        # One real hour per window: 05:00-06:00 UTC, then 06:00-07:00 UTC (01:00 EST).
        assert spent_in_hour == [Decimal(n) / 10 for n in (1, 2, 1, 2, 3, 1)]

    def test_lowering_a_cap_mid_window_strands_nothing(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="1.00")
        hold = ledger.reserve("user:a", usd="0.80")
        ledger.set_limit("user:a", usd="0.50")
        with pytest.raises(BudgetExceeded):
            ledger.reserve("user:a", usd="0.01")
        hold.settle(usd="0.30")  # the hold still settles normally and frees its money
        balance = balance_of(ledger, "user:a")
        assert (balance.cap, balance.spent, balance.held, balance.available) == (
            Decimal("0.5"),
            Decimal("0.3"),
            Decimal(0),
            Decimal("0.2"),
        )
        ledger.set_limit("user:a", usd="2.00")
        ledger.reserve("user:a", usd="1.70")

    def test_a_new_limit_starts_from_the_truth(self, ledger: Ledger, clock: ManualClock) -> None:
        ledger.reserve("user:a", usd="0.40").settle()
        clock.advance(timedelta(days=1))
        ledger.reserve("user:a", usd="0.30").settle()
        open_hold = ledger.reserve("user:a", usd="0.20")
        ledger.set_limit("user:a", usd="1.00", period="day")
        balance = balance_of(ledger, "user:a", "day")
        assert (balance.spent, balance.held) == (Decimal("0.3"), Decimal("0.2"))
        open_hold.release()
        assert balance_of(ledger, "user:a", "day").held == Decimal(0)
        assert ledger.verify().ok

    def test_remove_limit(self, ledger: Ledger) -> None:
        ledger.set_limit("user:a", usd="0.10", period="day")
        ledger.set_limit("user:a", usd="0.10")
        assert ledger.remove_limit("user:a", period="day") == 1
        assert ledger.remove_limit("user:a", period="day") == 0
        assert [(limit.period, limit.cap) for limit in ledger.limits("user:a")] == [
            ("total", Decimal("0.1"))
        ]
        assert ledger.remove_limit("user:a", period="total", unit="usd") == 1
        ledger.reserve("user:a", usd="5")  # no cap left
        assert ledger.limits() == []

    # --- events, reports, verification -----------------------------------------------------

    def test_threshold_events_fire_once_per_window(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        events: list[Event] = []
        ledger.on("threshold", events.append)
        ledger.set_limit("user:a", usd="1.00", period="day")
        ledger.reserve("user:a", usd="0.85").settle()
        ledger.reserve("user:a", usd="0.05").settle()
        ledger.reserve("user:a", usd="0.06").settle()
        assert [(e.scope, e.period, e.fraction) for e in events] == [
            ("user:a", "day", 0.8),
            ("user:a", "day", 0.95),
        ]
        clock.advance(timedelta(days=1))
        ledger.reserve("user:a", usd="0.90").settle()
        assert [e.fraction for e in events] == [0.8, 0.95, 0.8]

    def test_events_reach_callbacks_and_a_failing_callback_is_contained(
        self, ledger: Ledger, caplog: pytest.LogCaptureFixture
    ) -> None:
        seen: list[str] = []

        def broken(event: Event) -> None:
            raise ValueError("callback bug")

        for kind in ("reserved", "settled", "released", "denied"):
            ledger.on(kind, lambda event: seen.append(event.kind))
        ledger.on("settled", broken)
        ledger.set_limit("user:a", usd="0.10")
        with caplog.at_level(logging.ERROR, logger="capledger"):
            ledger.reserve("user:a", usd="0.10").settle(usd="0.05")
        ledger.reserve("user:a", usd="0.05").release()
        with pytest.raises(BudgetExceeded):
            ledger.reserve("user:a", usd="0.10")
        assert seen == ["reserved", "settled", "reserved", "released", "denied"]
        assert "callback bug" in caplog.text
        with pytest.raises(InvalidInput):
            ledger.on("exploded", seen.append)  # type: ignore[arg-type]

    def test_report_groups_spend(self, ledger: Ledger, clock: ManualClock) -> None:
        ledger.reserve(["user:a", "tenant:t"], usd="0.30", tags={"model": "m1"}).settle(
            usd="0.25", tokens=100
        )
        ledger.reserve(["user:b", "tenant:t"], usd="0.30", tags={"model": "m2"}).settle(usd="0.10")
        clock.advance(timedelta(days=1))
        ledger.reserve(["user:a", "tenant:t"], usd="0.30", tags={"model": "m1"}).settle(usd="0.05")
        by_scope = {row["scope"]: row for row in ledger.report(["scope"])}
        assert by_scope["tenant:t"]["usd"] == Decimal("0.4")
        assert by_scope["tenant:t"]["calls"] == 3
        assert by_scope["user:a"]["tokens"] == 100
        by_kind_model = ledger.report(["kind", "model"])
        assert [(r["kind"], r["model"], r["usd"]) for r in by_kind_model] == [
            ("tenant", "m1", Decimal("0.3")),
            ("tenant", "m2", Decimal("0.1")),
            ("user", "m1", Decimal("0.3")),
            ("user", "m2", Decimal("0.1")),
        ]
        by_day = ledger.report(["day"], since=START + timedelta(hours=1))
        assert [(r["day"], r["usd"], r["calls"]) for r in by_day] == [
            ("2026-01-06", Decimal("0.05"), 1)
        ]
        by_unit = ledger.report(["unit"])
        assert [(r["unit"], r["spent"]) for r in by_unit] == [
            ("tokens", 100),
            ("usd", Decimal("0.4")),
        ]

    def test_verify_passes_after_a_mixed_history(self, ledger: Ledger, clock: ManualClock) -> None:
        ledger.set_limit("user:a", usd="1", period="day")
        ledger.set_limit("tenant:t", usd="2", period="month")
        for index in range(10):
            hold = ledger.reserve(["user:a", "tenant:t"], usd="0.05", ttl=5)
            if index % 3 == 0:
                hold.settle(usd="0.04")
            elif index % 3 == 1:
                hold.release()
            clock.advance(1)
        clock.advance(10)
        ledger.sweep()
        report = ledger.verify()
        assert report.ok, report.mismatches
        assert report.accounts_checked == 4
        assert report.open_holds == 0

    def test_holds_listing(self, ledger: Ledger, clock: ManualClock) -> None:
        a = ledger.reserve("user:a", usd="0.1", request_id="r-a", tags={"model": "x"})
        clock.advance(1)
        b = ledger.reserve("user:b", usd="0.2")
        b.settle()
        open_holds = ledger.holds()
        assert [(h.id, h.request_id, h.scopes, h.tags) for h in open_holds] == [
            (a.id, "r-a", ("user:a",), {"model": "x"})
        ]
        assert [h.id for h in ledger.holds(state=None)] == [a.id, b.id]
        assert [h.id for h in ledger.holds(scope="user:b", state="settled")] == [b.id]

    # --- bad input: a typed error each, and nothing written --------------------------------

    @pytest.mark.parametrize(
        ("arguments", "error"),
        [
            ({"usd": float("nan")}, InvalidAmount),
            ({"usd": "NaN"}, InvalidAmount),
            ({"usd": Decimal("sNaN")}, InvalidAmount),
            ({"usd": math.inf}, InvalidAmount),
            ({"usd": "-Infinity"}, InvalidAmount),
            ({"usd": "-0.01"}, InvalidAmount),
            ({"usd": Decimal("-0.0000000001")}, InvalidAmount),
            ({"usd": "1000000.01"}, InvalidAmount),
            ({"usd": "abc"}, InvalidAmount),
            ({"usd": True}, InvalidAmount),
            ({"usd": [1]}, InvalidAmount),
            ({"tokens": 1.5}, InvalidAmount),
            ({"tokens": -1}, InvalidAmount),
            ({"requests": 10**10}, InvalidAmount),
            ({}, InvalidAmount),
            ({"usd": "1", "ttl": 0}, InvalidTTL),
            ({"usd": "1", "ttl": -5}, InvalidTTL),
            ({"usd": "1", "ttl": 86_401}, InvalidTTL),
            ({"usd": "1", "ttl": math.nan}, InvalidTTL),
            ({"usd": "1", "tags": {"k": "v" * 513}}, InvalidTag),
            ({"usd": "1", "tags": {f"k{i}": i for i in range(33)}}, InvalidTag),
            ({"usd": "1", "tags": {"k" * 65: 1}}, InvalidTag),
            ({"usd": "1", "tags": {"k": [1, 2]}}, InvalidTag),
            ({"usd": "1", "tags": {"k": math.inf}}, InvalidTag),
            ({"usd": "1", "request_id": ""}, InvalidInput),
            ({"usd": "1", "request_id": "x" * 201}, InvalidInput),
        ],
    )
    def test_bad_reserve_arguments(
        self, ledger: Ledger, arguments: dict[str, object], error: type[Exception]
    ) -> None:
        ledger.set_limit("user:a", usd="5")
        before = count_rows(ledger)
        with pytest.raises(error):
            ledger.reserve("user:a", **arguments)  # type: ignore[arg-type]
        assert count_rows(ledger) == before

    @pytest.mark.parametrize(
        "scopes",
        [[], "", "user", "user:", ":id", "User:a", "user:a b", "user:" + "x" * 201,
         "k" * 33 + ":a", ["user:a", 7], 42, [f"user:{i}" for i in range(17)]],
    )  # fmt: skip
    def test_bad_scopes(self, ledger: Ledger, scopes: object) -> None:
        before = count_rows(ledger)
        with pytest.raises(InvalidScope):
            ledger.reserve(scopes, usd="0.1")  # type: ignore[arg-type]
        with pytest.raises(InvalidScope):
            ledger.set_limit(scopes, usd="1")  # type: ignore[arg-type]
        assert count_rows(ledger) == before

    @pytest.mark.parametrize(
        ("call", "error"),
        [
            (lambda ledger, hold: ledger.settle(hold.id + "\x00junk", usd="0.1"), InvalidInput),
            (lambda ledger, hold: ledger.settle(hold.id + "\ud800", usd="0.1"), InvalidInput),
            (lambda ledger, hold: ledger.release(hold.id + "\x00"), InvalidInput),
            (lambda ledger, hold: ledger.release("h\x00"), InvalidInput),
            (lambda ledger, hold: ledger.release("h\udfff"), InvalidInput),
            (lambda ledger, hold: hold.settle(usd="0.1", tags={"k": "v\x00"}), InvalidTag),
            (lambda ledger, hold: hold.settle(usd="0.1", tags={"k\ud800": "v"}), InvalidTag),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", tags={"k": "\ud800"}),
             InvalidTag),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", tags={"k\x00": "v"}),
             InvalidTag),
            (lambda ledger, hold: ledger.reserve("user:a\ud800", usd="0.1"), InvalidScope),
            (lambda ledger, hold: ledger.reserve(["user:b", "user:a\x00"], usd="0.1"),
             InvalidScope),
            (lambda ledger, hold: ledger.set_limit("user:\ud800", usd="1"), InvalidScope),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", request_id="r\x00"),
             InvalidInput),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", request_id="r\ud800"),
             InvalidInput),
        ],
        ids=["settle-id-nul", "settle-id-surrogate", "release-id-nul", "release-nul",
             "release-surrogate", "settle-tag-nul", "settle-tag-key-surrogate",
             "reserve-tag-surrogate", "reserve-tag-key-nul", "scope-surrogate", "scope-nul",
             "limit-scope-surrogate", "request-id-nul", "request-id-surrogate"],
    )  # fmt: skip
    def test_text_no_store_can_keep_is_refused_before_any_write(
        self, ledger: Ledger, call: Callable[[Ledger, Hold], object], error: type[Exception]
    ) -> None:
        # PostgreSQL's text and jsonb refuse NUL, and libpq sends text parameters as C strings
        # (a hold id "id\x00junk" would reach the server as "id"); a lone surrogate has no
        # UTF-8 form. Every store refuses them the same way, before anything is written.
        self._refused_before_any_write(ledger, call, error)

    @pytest.mark.parametrize(
        ("call", "error"),
        [
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", tags={"n": 10**5000}),
             InvalidTag),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", tags={"n": 2**63}),
             InvalidTag),
            (lambda ledger, hold: hold.settle(usd="0.1", tags={"n": -(10**5000)}), InvalidTag),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", ttl=10**5000), InvalidTTL),
            (lambda ledger, hold: ledger.reserve("user:a", usd="0.1", request_id=10**5000),
             InvalidInput),
            (lambda ledger, hold: hold.extend(ttl=-(10**5000)), InvalidTTL),
            (lambda ledger, hold: ledger.release(object()), InvalidInput),
            (lambda ledger, hold: ledger.release([hold.id]), InvalidInput),
            (lambda ledger, hold: ledger.release(""), InvalidInput),
            (lambda ledger, hold: ledger.settle(12, usd="0.1"), InvalidInput),
            (lambda ledger, hold: ledger.settle([hold.id], usd="0.1"), InvalidInput),
            (lambda ledger, hold: ledger.settle(hold.id + "x" * 200, usd="0.1"), InvalidInput),
            (lambda ledger, hold: ledger.holds(limit="x"), InvalidInput),
            (lambda ledger, hold: ledger.holds(limit=0), InvalidInput),
            (lambda ledger, hold: ledger.holds(limit=1.5), InvalidInput),
            (lambda ledger, hold: ledger.holds(limit=True), InvalidInput),
            (lambda ledger, hold: ledger.holds(limit=-(10**5000)), InvalidInput),
            (lambda ledger, hold: ledger.holds(state=["open"]), InvalidInput),
            (lambda ledger, hold: ledger.holds(scope=12), InvalidScope),
            (lambda ledger, hold: ledger.report(since=datetime(2026, 1, 1)), InvalidInput),
            (lambda ledger, hold: ledger.report(until=datetime(2026, 1, 1)), InvalidInput),
            (lambda ledger, hold: ledger.report(since=1_767_225_600), InvalidInput),
            (lambda ledger, hold: ledger.report(group_by=5), InvalidInput),
            (lambda ledger, hold: ledger.set_limit("user:a", usd="1", period=["day"]),
             InvalidPeriod),
            (lambda ledger, hold: ledger.set_limit("user:a", usd="1", period="day", tz=["UTC"]),
             InvalidPeriod),
            (lambda ledger, hold: ledger.remove_limit("user:a", period={"day": 1}),
             InvalidPeriod),
            (lambda ledger, hold: ledger.balance(object()), InvalidScope),
        ],
        ids=["reserve-tag-10**5000", "reserve-tag-2**63", "settle-tag-huge", "reserve-ttl-huge",
             "reserve-request-id-10**5000",
             "extend-ttl-huge", "release-object", "release-list", "release-empty",
             "settle-int", "settle-list", "settle-long-id", "holds-limit-text",
             "holds-limit-0", "holds-limit-float", "holds-limit-bool", "holds-limit-huge",
             "holds-state-list", "holds-scope-int", "report-since-naive",
             "report-until-naive", "report-since-int", "report-group-by-int",
             "limit-period-list", "limit-tz-list", "remove-limit-period-dict",
             "balance-scope-object"],
    )  # fmt: skip
    def test_bad_arguments_of_any_type_raise_typed_errors(
        self, ledger: Ledger, call: Callable[[Ledger, Hold], object], error: type[Exception]
    ) -> None:
        # Never a raw TypeError, ValueError (str() of a 5,001-digit int), OverflowError or
        # BackendUnavailable (a driver refusing a parameter), and nothing written.
        self._refused_before_any_write(ledger, call, error)

    @staticmethod
    def _refused_before_any_write(
        ledger: Ledger, call: Callable[[Ledger, Hold], object], error: type[Exception]
    ) -> None:
        """``call`` on a ledger with one open $0.50 hold raises ``error`` and writes nothing."""
        ledger.set_limit("user:a", usd="5")
        hold = ledger.reserve("user:a", usd="0.5")
        before = count_rows(ledger)
        with pytest.raises(error):
            call(ledger, hold)
        assert count_rows(ledger) == before
        assert [h.state for h in ledger.holds()] == ["open"]
        assert balance_of(ledger, "user:a").held == Decimal("0.5")

    def test_a_holds_limit_past_any_count_lists_them_all(self, ledger: Ledger) -> None:
        held = [ledger.reserve("user:a", usd="0.1").id for _ in range(3)]
        assert [h.id for h in ledger.holds(limit=10**30)] == held
        assert [h.id for h in ledger.holds(limit=2**63, newest_first=True)] == held[::-1]

    def test_bad_limit_arguments(self, ledger: Ledger) -> None:
        before = count_rows(ledger)
        with pytest.raises(InvalidPeriod):
            ledger.set_limit("user:a", usd="1", period="fortnight")
        with pytest.raises(InvalidPeriod):
            ledger.set_limit("user:a", usd="1", period="0d")
        with pytest.raises(InvalidPeriod):
            ledger.set_limit("user:a", usd="1", period="day", tz="Mars/Olympus")
        with pytest.raises(InvalidAmount):
            ledger.set_limit("user:a", usd="-1")
        with pytest.raises(InvalidAmount):
            ledger.set_limit("user:a", usd="1e10")  # past the cap bound
        with pytest.raises(InvalidInput):
            ledger.set_limit("user:a")
        with pytest.raises(InvalidUnit):
            ledger.remove_limit("user:a", unit="gallons")
        with pytest.raises(InvalidUnit):
            ledger.balance("user:a", unit="gallons")
        assert count_rows(ledger) == before

    def test_bad_settle_and_extend_arguments(self, ledger: Ledger) -> None:
        hold = ledger.reserve("user:a", usd="0.5")
        before = count_rows(ledger)
        with pytest.raises(InvalidAmount):
            hold.settle(usd="-0.1")
        with pytest.raises(InvalidAmount):
            hold.settle(usd=math.nan)
        with pytest.raises(InvalidAmount):
            hold.extend(usd="inf")
        with pytest.raises(InvalidInput):
            hold.extend()
        with pytest.raises(InvalidTTL):
            hold.extend(ttl=0)
        with pytest.raises(InvalidTag):
            hold.settle(usd="0.1", tags={"x": object()})
        assert count_rows(ledger) == before
        assert hold.state == "open"


class AsyncLedgerContract:
    """The contract through ``AsyncLedger``: the same decisions, awaited."""

    def make_async_ledger(self, clock: Clock, tmp_path: Path) -> AsyncLedger:
        """Return a fresh, empty async ledger on the store under test."""
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(START)

    @pytest.fixture
    async def aledger(self, clock: ManualClock, tmp_path: Path) -> AsyncLedger:  # type: ignore[misc]
        ledger = self.make_async_ledger(clock, tmp_path)
        yield ledger
        await ledger.aclose()

    async def test_async_reserve_settle_and_refuse(self, aledger: AsyncLedger) -> None:
        await aledger.set_limit("user:a", usd="0.20")
        async with aledger.reserve("user:a", usd="0.10") as hold:
            await hold.settle(usd="0.10")
        held = await aledger.reserve("user:a", usd="0.10")
        with pytest.raises(BudgetExceeded):
            await aledger.reserve("user:a", usd="0.01")
        await held.release()
        [total] = await aledger.balance("user:a")
        assert (total.spent, total.held) == (Decimal("0.1"), Decimal(0))
        assert (await aledger.verify()).ok

    async def test_async_block_semantics(self, aledger: AsyncLedger) -> None:
        with pytest.raises(RuntimeError):
            async with aledger.reserve("user:a", usd="0.10") as hold:
                await hold.observe(usd="0.03")
                raise RuntimeError("stream broke")
        assert hold.settled_amounts == {"usd": Decimal("0.03")}
        with pytest.raises(RuntimeError):
            async with aledger.reserve("user:a", usd="0.10") as released:
                raise RuntimeError("failed before output")
        assert released.state == "released"

    async def test_async_retry_of_a_closed_hold(self, aledger: AsyncLedger) -> None:
        first = await aledger.reserve("user:a", usd="0.50", request_id="req-1")
        await first.release()
        with pytest.raises(IdempotentHoldClosed) as closed:
            await aledger.reserve("user:a", usd="0.50", request_id="req-1")
        assert closed.value.hold is not None and closed.value.hold.id == first.id
        with pytest.raises(IdempotentHoldClosed):
            async with aledger.reserve("user:a", usd="0.50", request_id="req-1"):
                raise AssertionError("the block must not run")
        async with aledger.reserve(
            "user:a", usd="0.50", request_id="req-1", return_closed=True
        ) as hold:
            assert hold.state == "released"
            await hold.observe(usd="0.40")
        assert (hold.settled_amounts, hold.flags) == ({"usd": Decimal("0.4")}, "late")
        [total] = await aledger.balance("user:a")
        assert (total.spent, total.held) == (Decimal("0.4"), Decimal(0))
        assert (await aledger.verify()).ok

    async def test_async_bad_input_raises_before_anything(self, aledger: AsyncLedger) -> None:
        with pytest.raises(InvalidAmount):
            aledger.reserve("user:a", usd="nan")
        with pytest.raises(InvalidScope):
            aledger.reserve("nope", usd="1")
        assert count_rows(aledger) == (0, 0, 0)

    async def test_async_bad_arguments_raise_typed_errors(self, aledger: AsyncLedger) -> None:
        hold = await aledger.reserve("user:a", usd="0.5")
        before = count_rows(aledger)
        with pytest.raises(InvalidTag):
            aledger.reserve("user:a", usd="0.1", tags={"n": 10**5000})
        with pytest.raises(InvalidTag):
            await hold.settle(usd="0.1", tags={"n": 10**5000})
        with pytest.raises(InvalidInput):
            await aledger.release(object())  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            await aledger.settle([hold.id], usd="0.1")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            await aledger.holds(limit="x")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            await aledger.report(since=datetime(2026, 1, 1))  # naive: refused
        assert [h.id for h in await aledger.holds(limit=10**30)] == [hold.id]
        assert count_rows(aledger) == before
        assert hold.state == "open"

    async def test_async_reports(self, aledger: AsyncLedger) -> None:
        hold = await aledger.reserve("user:a", usd="0.10", tags={"model": "m"})
        await hold.settle(usd="0.07")
        assert [(r["model"], r["usd"]) for r in await aledger.report(["model"])] == [
            ("m", Decimal("0.07"))
        ]
        assert await aledger.holds() == []
        await aledger.set_limit("user:a", usd="1")
        assert [limit.cap for limit in await aledger.limits()] == [Decimal(1)]
        assert await aledger.sweep() == 0
