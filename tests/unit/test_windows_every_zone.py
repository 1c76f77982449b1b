"""Every window of every period, in every IANA zone, across every offset change of 2024-2030.

A window must contain "now", start and end at its period's boundaries, and abut its
neighbours (the windows partition time). The offset changes are found once per zone by
scanning UTC offsets a week apart and bisecting to the second.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import given, settings
from hypothesis import strategies as st

from capledger._core.periods import window
from capledger.clock import from_us, to_us

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
CALENDAR = ("minute", "hour", "day", "week", "month", "year")
DURATIONS = {"30d": 30 * DAY_US, "90m": 90 * MINUTE_US}
ZONES = sorted(available_timezones())
SCAN_FROM = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
SCAN_TO = int(datetime(2031, 1, 1, tzinfo=UTC).timestamp())
# Just before, at and just after a change, and a few seconds and a minute around it.
AROUND_US = (-MINUTE_US - 1, -SECOND_US, -1, 0, 1, SECOND_US, MINUTE_US + 1)


def offset_s(zone: ZoneInfo, seconds: int) -> int:
    offset = datetime.fromtimestamp(seconds, zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def offset_us(zone: ZoneInfo, moment_us: int) -> int:
    offset = from_us(moment_us).astimezone(zone).utcoffset()
    assert offset is not None
    return (offset.days * 86_400 + offset.seconds) * SECOND_US + offset.microseconds


def changes(zone: ZoneInfo) -> tuple[int, ...]:
    """The instants (whole seconds) where the zone's UTC offset changes, 2024-2030."""
    found = []
    step = 7 * 86_400
    before = offset_s(zone, SCAN_FROM)
    for seconds in range(SCAN_FROM + step, SCAN_TO + step, step):
        after = offset_s(zone, seconds)
        if after != before:
            lo, hi = seconds - step, seconds  # offset(lo) == before != offset(hi)
            while hi - lo > 1:
                middle = (lo + hi) // 2
                if offset_s(zone, middle) == before:
                    lo = middle
                else:
                    hi = middle
            found.append(hi)
            before = after
    return tuple(found)


@functools.cache
def distinct_zones() -> dict[str, tuple[int, ...]]:
    """Every zone's offset changes, one zone for each distinct set.

    Windows depend on a zone only through its UTC offset at each instant, so zones whose
    offsets agree at every instant of the scan (aliases, and zones that share rules) have
    the same windows there: each set is checked once, named by its first zone. Zones that
    never change their offset are checked at a few instants.
    """
    seen: set[tuple[int, ...]] = set()
    result = {}
    for name in ZONES:
        zone = ZoneInfo(name)
        found = changes(zone)
        key = (offset_s(zone, SCAN_FROM), *found, *(offset_s(zone, t) for t in found))
        if key not in seen:
            seen.add(key)
            result[name] = found
    return result


def first_day(period: str, day: date) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def check_window(name: str, period: str, now_us: int, anchor_us: int) -> None:
    zone = ZoneInfo(name)
    start, end = window(period, name, anchor_us, now_us)
    where = f"{name} {period} at {from_us(now_us).isoformat()}"
    assert end is not None, where
    assert start <= now_us < end, where
    # Windows partition time: the next one starts at this one's end, the one before ends
    # at its start (before a duration's anchor, every moment falls in its first window).
    assert window(period, name, anchor_us, end)[0] == end, where
    if start > anchor_us or period not in DURATIONS:
        assert window(period, name, anchor_us, start - 1)[1] == start, where
    if period in DURATIONS:
        assert end - start == DURATIONS[period], where
        assert (start - anchor_us) % DURATIONS[period] == 0, where
        return
    if period in ("minute", "hour"):
        unit = MINUTE_US if period == "minute" else HOUR_US
        # A real minute or hour starting when the wall clock shows :00, unless an offset
        # change that moves the alignment cuts it (it then starts or ends at the change).
        for edge in (start, end):
            on_the_clock = (edge + offset_us(zone, edge)) % unit == 0
            at_a_change = offset_us(zone, edge - 1) != offset_us(zone, edge)
            assert on_the_clock or at_a_change, where
        cut = any(offset_us(zone, edge - 1) != offset_us(zone, edge) for edge in (start, end))
        assert end - start == unit or (cut and end - start < unit), where
        return
    # Calendar days: each edge is the first instant of its period's first local date.
    for edge in (start, end):
        local = from_us(edge).astimezone(zone)
        before = from_us(edge - 1).astimezone(zone)
        assert first_day(period, local.date()) == local.date(), where
        midnight = datetime(local.year, local.month, local.day)
        assert local.replace(tzinfo=None) == midnight or (
            offset_us(zone, edge - 1) != offset_us(zone, edge)  # midnight was skipped
            and before.replace(tzinfo=None) < midnight
        ), where
        assert before.replace(tzinfo=None) < midnight, where
    lengths = {"day": (1, 1), "week": (7, 7), "month": (28, 31), "year": (365, 366)}
    shortest, longest = lengths[period]
    # Real length: the wall-clock length give or take the offset changes inside (a day has
    # 23 or 25 real hours across a daylight-saving change).
    assert shortest * DAY_US - DAY_US <= end - start <= longest * DAY_US + DAY_US, where


def test_the_scan_finds_the_changes_it_should() -> None:
    new_york = changes(ZoneInfo("America/New_York"))
    assert len(new_york) == 14  # two a year, 2024-2030
    assert to_us(datetime(2026, 11, 1, 6, tzinfo=UTC)) // SECOND_US in new_york
    assert changes(ZoneInfo("Asia/Kolkata")) == ()
    found = distinct_zones()
    with_changes = {name for name, changes_of_zone in found.items() if changes_of_zone}
    assert len(with_changes) > 30
    assert {"Africa/Casablanca", "America/Santiago", "Antarctica/Troll"} <= with_changes
    checked = {found[name] for name in with_changes}
    for name in ("Australia/Lord_Howe", "Pacific/Chatham"):  # a 30-minute change; +12:45
        assert changes(ZoneInfo(name)) in checked


FIXED_ZONE_INSTANTS_US = tuple(
    to_us(datetime(2026, month, 1, hour, 30, tzinfo=UTC)) for month in (1, 7) for hour in (0, 12)
)


def test_every_window_across_every_offset_change_of_every_zone() -> None:
    checked = 0
    for name, found in distinct_zones().items():
        instants = [change_s * SECOND_US + delta_us for change_s in found for delta_us in AROUND_US]
        for now_us in instants or FIXED_ZONE_INSTANTS_US:
            for period in CALENDAR:
                check_window(name, period, now_us, now_us)
            for period in DURATIONS:
                check_window(name, period, now_us, now_us - 10 * DAY_US - 7)
            checked += 1
    assert checked > 1000


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(ZONES),
    now_us=st.integers(
        min_value=to_us(datetime(1900, 1, 1, tzinfo=UTC)),
        max_value=to_us(datetime(2100, 1, 1, tzinfo=UTC)),
    ),
    period=st.sampled_from((*CALENDAR, *DURATIONS)),
    anchor_back_us=st.integers(min_value=0, max_value=400 * DAY_US),
)
def test_any_window_in_any_zone(name: str, now_us: int, period: str, anchor_back_us: int) -> None:
    check_window(name, period, now_us, now_us - anchor_back_us)
