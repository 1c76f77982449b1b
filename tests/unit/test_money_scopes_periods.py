"""Exact money, scope validation and window arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capledger._core.periods import parse_period, window
from capledger.bounds import MAX_AMOUNT
from capledger.clock import ManualClock, from_us, to_us
from capledger.errors import InvalidAmount, InvalidPeriod, InvalidScope, InvalidUnit
from capledger.money import from_units, parse_unit, to_units
from capledger.scopes import parse_scope, parse_scopes


@pytest.mark.parametrize(
    ("value", "nano"),
    [
        ("0.10", 100_000_000),
        (0.1, 100_000_000),  # through str: exactly a tenth
        (Decimal("0.000000001"), 1),
        ("0.0000000001", 1),  # rounded up, never down
        ("0.0000000019", 2),
        (3, 3_000_000_000),
        ("1e-3", 1_000_000),
        (" 2.5 ", 2_500_000_000),
        ("0", 0),
    ],
)
def test_usd_to_nano(value: object, nano: int) -> None:
    assert to_units("usd", value) == nano  # type: ignore[arg-type]


@given(st.decimals(min_value=0, max_value=1_000_000, places=9))
def test_usd_round_trips_exactly(amount: Decimal) -> None:
    assert from_units("usd", to_units("usd", amount)) == amount


@given(st.decimals(min_value=0, max_value=1000, places=12))
def test_rounding_never_loses_money(amount: Decimal) -> None:
    stored = from_units("usd", to_units("usd", amount))
    assert stored >= amount
    assert stored - amount < Decimal("1e-9")


def test_bounds_are_inclusive() -> None:
    assert to_units("usd", from_units("usd", MAX_AMOUNT["usd"])) == MAX_AMOUNT["usd"]
    with pytest.raises(InvalidAmount):
        to_units("usd", from_units("usd", MAX_AMOUNT["usd"] + 1))
    assert to_units("tokens", MAX_AMOUNT["tokens"]) == MAX_AMOUNT["tokens"]
    with pytest.raises(InvalidAmount):
        to_units("tokens", MAX_AMOUNT["tokens"] + 1)


@pytest.mark.parametrize("value", ["1.5", Decimal("0.1"), 2.5, "x", None, float("nan")])
def test_tokens_must_be_whole(value: object) -> None:
    with pytest.raises(InvalidAmount):
        to_units("tokens", value)  # type: ignore[arg-type]


def test_units() -> None:
    assert parse_unit("usd") == "usd"
    with pytest.raises(InvalidUnit):
        parse_unit("USD")
    with pytest.raises(InvalidUnit):
        parse_unit("gallons")


@pytest.mark.parametrize(
    "scope", ["user:u_42", "tenant:acme", "key:sk-abc:123", "user:a@b.com", "f.x-y:z"]
)
def test_valid_scopes(scope: str) -> None:
    assert parse_scope(scope) == scope


def test_scope_lists() -> None:
    assert parse_scopes("user:a") == ("user:a",)
    assert parse_scopes(["user:a", "tenant:t", "user:a"]) == ("user:a", "tenant:t")
    with pytest.raises(InvalidScope):
        parse_scopes([])


@pytest.mark.parametrize(
    ("period", "canonical"),
    [("month", "month"), (" Day ", "day"), ("720h", "30d"), ("90s", "90s"), ("120m", "2h"),
     ("14d", "2w"), ("total", "total")],
)  # fmt: skip
def test_period_names(period: str, canonical: str) -> None:
    assert parse_period(period) == canonical


@pytest.mark.parametrize("period", ["", "0d", "-1d", "1y", "fortnight", "3.5d", "99999999999d"])
def test_bad_periods(period: str) -> None:
    with pytest.raises(InvalidPeriod):
        parse_period(period)


def _window(period: str, tz: str, now: datetime, anchor: datetime | None = None) -> tuple:
    start, end = window(period, tz, to_us(anchor or now), to_us(now))
    return from_us(start), None if end is None else from_us(end)


def test_calendar_windows() -> None:
    now = datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)
    assert _window("month", "UTC", now) == (
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    assert _window("week", "UTC", now) == (  # 2026-02-28 is a Saturday
        datetime(2026, 2, 23, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert _window("year", "UTC", now)[1] == datetime(2027, 1, 1, tzinfo=UTC)
    assert _window("total", "UTC", now) == (datetime(1970, 1, 1, tzinfo=UTC), None)


def test_a_daylight_saving_day_is_23_hours() -> None:
    now = datetime(2026, 3, 29, 12, tzinfo=UTC)  # the day Paris moves to summer time
    start, end = _window("day", "Europe/Paris", now)
    assert end is not None
    assert (end - start).total_seconds() == 23 * 3600


def test_fixed_durations_repeat_from_the_anchor() -> None:
    anchor = datetime(2026, 1, 1, 6, tzinfo=UTC)
    now = datetime(2026, 3, 5, tzinfo=UTC)
    assert _window("30d", "UTC", now, anchor) == (
        datetime(2026, 3, 2, 6, tzinfo=UTC),
        datetime(2026, 4, 1, 6, tzinfo=UTC),
    )


def test_manual_clock_only_moves_forward() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.advance(1.5)
    assert from_us(clock.now_us()) == datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)
    with pytest.raises(ValueError):
        clock.advance(-1)
