"""The contract of windows and limits: rolling windows, time zones, fixed durations,
re-asserted and lowered limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from capledger import BudgetExceeded, Ledger, ManualClock
from capledger.testing.contract._support import START, balance_of

__all__ = ["WindowContract"]


class WindowContract:
    """Windows roll in their time zone; limits can be re-asserted, lowered and removed."""

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
