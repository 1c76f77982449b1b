"""The contract of holding up to a cap and settling: exact amounts, all-or-nothing holds,
settles below, above and after a hold closed, extend and observe, and the ``with`` block."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from capledger import (
    BudgetExceeded,
    Event,
    HoldClosed,
    HoldNotFound,
    Ledger,
    ManualClock,
    UnsettledHoldWarning,
)
from capledger.testing.contract._support import balance_of, count_rows

__all__ = ["ReserveSettleContract"]


class ReserveSettleContract:
    """Holding and the cap, settling, extend and observe, and the context manager."""

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
        assert hold.flags == frozenset()

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
        assert hold.flags == {"late", "overrun"}  # 0.70 + 0.50 held > 1.00
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
        assert released.flags == {"late"}
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
