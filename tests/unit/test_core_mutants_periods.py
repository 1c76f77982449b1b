"""Limit windows and period names (``capledger._core.periods``), edge by edge.

Written against the survivors of mutation testing (docs/testing.md): every calendar period
at its bounds, time zones ahead of and behind UTC, fixed durations around their anchor, and
the longest duration accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from capledger._core.periods import (
    duration_us,
    parse_period,
    parse_timezone,
    retimed_end,
    window,
)
from capledger.clock import from_us, to_us
from capledger.errors import InvalidPeriod


def bounds(
    period: str, now: datetime, tz: str = "UTC", anchor: datetime | None = None
) -> tuple[datetime, datetime | None]:
    start, end = window(period, tz, to_us(anchor or now), to_us(now))
    return from_us(start), None if end is None else from_us(end)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[misc]


NOW = utc(2026, 12, 31, 23, 34, 56, 789)  # a Thursday, the last day of the year


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("minute", utc(2026, 12, 31, 23, 34), utc(2026, 12, 31, 23, 35)),
        ("hour", utc(2026, 12, 31, 23), utc(2027, 1, 1)),
        ("day", utc(2026, 12, 31), utc(2027, 1, 1)),
        ("week", utc(2026, 12, 28), utc(2027, 1, 4)),
        ("month", utc(2026, 12, 1), utc(2027, 1, 1)),
        ("year", utc(2026, 1, 1), utc(2027, 1, 1)),
    ],
)
def test_calendar_windows_in_utc(period: str, start: datetime, end: datetime) -> None:
    assert bounds(period, NOW) == (start, end)


def test_a_window_includes_its_start_and_excludes_its_end() -> None:
    for period in ("minute", "hour", "day", "week", "month", "year"):
        start, end = bounds(period, NOW)
        assert end is not None
        assert bounds(period, start) == (start, end), period
        assert bounds(period, end - timedelta(microseconds=1)) == (start, end), period
        assert bounds(period, end)[0] == end, period


def test_a_week_that_starts_today_starts_at_midnight() -> None:
    monday_noon = utc(2026, 1, 5, 12)
    assert bounds("week", monday_noon) == (utc(2026, 1, 5), utc(2026, 1, 12))


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        # Asia/Kolkata is UTC+05:30: its 2027-01-01 began at 2026-12-31 18:30 UTC.
        ("minute", utc(2026, 12, 31, 23, 34), utc(2026, 12, 31, 23, 35)),
        ("hour", utc(2026, 12, 31, 23, 30), utc(2027, 1, 1, 0, 30)),
        ("day", utc(2026, 12, 31, 18, 30), utc(2027, 1, 1, 18, 30)),
        ("week", utc(2026, 12, 27, 18, 30), utc(2027, 1, 3, 18, 30)),
        ("month", utc(2026, 12, 31, 18, 30), utc(2027, 1, 31, 18, 30)),
        ("year", utc(2026, 12, 31, 18, 30), utc(2027, 12, 31, 18, 30)),
    ],
)
def test_calendar_windows_follow_the_limits_time_zone(
    period: str, start: datetime, end: datetime
) -> None:
    assert bounds(period, NOW, "Asia/Kolkata") == (start, end)


def test_a_week_across_a_daylight_saving_change_keeps_its_midnights() -> None:
    # New York moves its clocks forward on Sunday 2026-03-08: that week is 167 hours long.
    start, end = bounds("week", utc(2026, 3, 10, 12), "America/New_York")
    assert (start, end) == (utc(2026, 3, 9, 4), utc(2026, 3, 16, 4))
    start, end = bounds("week", utc(2026, 3, 5, 12), "America/New_York")
    assert (start, end) == (utc(2026, 3, 2, 5), utc(2026, 3, 9, 4))


def test_an_hour_and_a_minute_are_real_time_in_a_zone_with_daylight_saving() -> None:
    summer = utc(2026, 7, 1, 10, 15, 30)
    assert bounds("hour", summer, "Europe/Paris") == (utc(2026, 7, 1, 10), utc(2026, 7, 1, 11))
    assert bounds("minute", summer, "Europe/Paris") == (
        utc(2026, 7, 1, 10, 15),
        utc(2026, 7, 1, 10, 16),
    )


def test_fixed_durations_run_back_to_back_from_the_anchor() -> None:
    anchor = utc(2026, 1, 1, 6)
    assert bounds("90s", anchor, anchor=anchor) == (anchor, anchor + timedelta(seconds=90))
    third = anchor + timedelta(seconds=180)
    assert bounds("90s", third, anchor=anchor) == (third, third + timedelta(seconds=90))
    just_before = third - timedelta(microseconds=1)
    assert bounds("90s", just_before, anchor=anchor)[0] == anchor + timedelta(seconds=90)


def test_a_moment_before_the_anchor_falls_in_the_first_window() -> None:
    anchor = utc(2026, 1, 1, 6)
    earlier = anchor - timedelta(days=45)
    assert bounds("30d", earlier, anchor=anchor) == (anchor, anchor + timedelta(days=30))


def test_the_total_window_never_ends() -> None:
    assert window("total", "UTC", 123, 456) == (0, None)


@pytest.mark.parametrize(
    ("period", "length_s"),
    [("90s", 90), ("15m", 900), ("12h", 43_200), ("30d", 2_592_000), ("2w", 1_209_600)],
)
def test_duration_lengths(period: str, length_s: int) -> None:
    assert duration_us(period) == length_s * 1_000_000


@pytest.mark.parametrize("period", ["total", "minute", "hour", "day", "week", "month", "year"])
def test_calendar_periods_and_total_have_no_fixed_length(period: str) -> None:
    assert duration_us(period) is None


@pytest.mark.parametrize(
    ("period", "canonical"),
    [
        ("60s", "1m"),
        ("61s", "61s"),
        ("3600s", "1h"),
        ("86400s", "1d"),
        ("604800s", "1w"),
        ("1209600s", "2w"),
        ("90m", "90m"),
        ("48h", "2d"),
        ("8d", "8d"),
        ("3660d", "3660d"),  # ten years of 366 days: the longest accepted
        ("TOTAL", "total"),
        (" Week\t", "week"),
    ],
)
def test_period_names_are_canonical(period: str, canonical: str) -> None:
    assert parse_period(period) == canonical


@pytest.mark.parametrize(
    "period", ["3661d", "523w", "87841h", "999999999s", "1 d", "d", "1", "1D5"]
)
def test_periods_past_ten_years_or_malformed_are_refused(period: str) -> None:
    with pytest.raises(InvalidPeriod):
        parse_period(period)


def test_a_period_must_be_text() -> None:
    with pytest.raises(InvalidPeriod):
        parse_period(30)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_an_unknown_time_zone_is_refused(name: str) -> None:
    with pytest.raises(InvalidPeriod):
        parse_timezone(name)


def test_a_known_time_zone_is_returned() -> None:
    assert parse_timezone("Asia/Kolkata").utcoffset(datetime(2026, 1, 1)) == timedelta(
        hours=5, minutes=30
    )


def test_an_hour_across_a_fall_back_is_one_real_hour() -> None:
    # Paris repeats 02:00-03:00 on 2026-10-25 (00:00-02:00 UTC): each pass is its own hour.
    first_pass = utc(2026, 10, 25, 0, 30)
    assert bounds("hour", first_pass, "Europe/Paris") == (utc(2026, 10, 25), utc(2026, 10, 25, 1))
    assert bounds("minute", utc(2026, 10, 25, 0, 59, 30), "Europe/Paris") == (
        utc(2026, 10, 25, 0, 59),
        utc(2026, 10, 25, 1),
    )


def test_a_retimed_window_ends_at_the_nearer_boundary_of_the_new_zone() -> None:
    start, end = to_us(utc(2026, 1, 5)), to_us(utc(2026, 1, 6))
    # New York's day ends 5 hours later: the window stretches to it.
    assert retimed_end("day", "America/New_York", start, end) == to_us(utc(2026, 1, 6, 5))
    # Kolkata's day ended 5.5 hours earlier, 18.5 hours before its next end: the window
    # keeps its end, and the first Kolkata day starts there.
    assert retimed_end("day", "Asia/Kolkata", start, end) == end
    # Twelve hours either way: the later boundary, so no window is cut short.
    assert retimed_end("day", "Etc/GMT-12", start, end) == to_us(utc(2026, 1, 6, 12))


def test_a_day_whose_midnight_is_skipped_starts_when_its_date_first_shows() -> None:
    # Santiago springs forward at midnight on 2026-09-06: 23:59:59 -04 is followed by
    # 01:00 -03 (04:00 UTC), so the 6th starts then and is 23 hours long.
    assert bounds("day", utc(2026, 9, 6, 12), "America/Santiago") == (
        utc(2026, 9, 6, 4),
        utc(2026, 9, 7, 3),
    )
    assert bounds("day", utc(2026, 9, 6, 3, 30), "America/Santiago") == (
        utc(2026, 9, 5, 4),
        utc(2026, 9, 6, 4),
    )


def test_a_minute_follows_a_wall_clock_that_is_seconds_off_utc() -> None:
    # Monrovia kept UTC-00:44:30 until 1972: its minutes began at :30 seconds UTC.
    assert bounds("minute", utc(1970, 6, 1, 12, 0, 45), "Africa/Monrovia") == (
        utc(1970, 6, 1, 12, 0, 30),
        utc(1970, 6, 1, 12, 1, 30),
    )
