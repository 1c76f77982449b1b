"""Limit periods and their windows: pure functions of (period, time zone, anchor, now).

Calendar periods (``minute`` … ``year``) follow the wall clock of the limit's time zone
(UTC unless set); weeks start on Monday. Fixed durations (``90s``, ``15m``, ``12h``, ``30d``,
``2w``; ``m`` is minutes) repeat back to back from the moment the limit was created.
``total`` never resets.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from capledger.clock import from_us, to_us
from capledger.errors import InvalidPeriod

__all__ = [
    "CALENDAR_PERIODS",
    "check_timezone_applies",
    "parse_period",
    "parse_timezone",
    "window",
]

CALENDAR_PERIODS: Final = ("minute", "hour", "day", "week", "month", "year")
_DURATION: Final = re.compile(r"([1-9][0-9]{0,8})(s|m|h|d|w)")
_SECONDS: Final = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_MAX_DURATION_S: Final = 10 * 366 * 86_400


@lru_cache(maxsize=256)
def parse_period(period: str) -> str:
    """Return the canonical name of ``period`` or raise ``InvalidPeriod``.

    Durations are written with the largest whole unit: ``"720h"`` becomes ``"30d"``.
    """
    if not isinstance(period, str):
        raise InvalidPeriod(f"period must be a string, not {period!r}")
    text = period.strip().lower()
    if text == "total" or text in CALENDAR_PERIODS:
        return text
    match = _DURATION.fullmatch(text)
    if match is None:
        raise InvalidPeriod(
            f"unknown period {period!r}: use total, minute, hour, day, week, month, year, "
            "or a duration such as 90s, 15m, 12h, 30d, 2w"
        )
    seconds = int(match.group(1)) * _SECONDS[match.group(2)]
    if seconds > _MAX_DURATION_S:
        raise InvalidPeriod(f"period {period!r} is longer than ten years")
    for suffix, size in _SECONDS.items():
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    raise AssertionError("unreachable: every duration is a whole number of seconds")


@lru_cache(maxsize=64)
def parse_timezone(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name`` or raise ``InvalidPeriod``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidPeriod(f"unknown time zone {name!r}") from None


def check_timezone_applies(period: str, tz: str | None) -> None:
    """Refuse a time zone named for a period that has no calendar (``InvalidPeriod``).

    ``total`` never resets and a fixed duration such as ``30d`` runs from the limit's
    creation, so a zone given with either would change nothing: taking it silently would
    let a caller believe their ``total`` cap resets at their midnight.
    """
    if tz is not None and period not in CALENDAR_PERIODS:
        what = "'total' never resets" if period == "total" else f"{period!r} runs from creation"
        raise InvalidPeriod(
            f"a time zone ({tz!r}) applies only to calendar periods "
            f"({', '.join(CALENDAR_PERIODS)}); {what}"
        )


def duration_us(period: str) -> int | None:
    """Return the length of a fixed-duration period in microseconds, else None."""
    if period == "total" or period in CALENDAR_PERIODS:
        return None
    return int(period[:-1]) * _SECONDS[period[-1]] * 1_000_000


def window(period: str, tz: str, anchor_us: int, now_us: int) -> tuple[int, int | None]:
    """Return ``(start_us, end_us)`` of the window of ``period`` that contains ``now_us``.

    ``end_us`` is None for ``total``. For fixed durations the windows are
    ``anchor + k * duration``; a ``now`` before the anchor falls in the first window.
    """
    if period == "total":
        return 0, None
    length_us = duration_us(period)
    if length_us is not None:
        elapsed = max(0, now_us - anchor_us)
        start = anchor_us + (elapsed // length_us) * length_us
        return start, start + length_us
    local = from_us(now_us).astimezone(parse_timezone(tz))
    start_local, end_local = _calendar_bounds(period, local)
    return to_us(start_local), to_us(end_local)


def _calendar_bounds(period: str, local: datetime) -> tuple[datetime, datetime]:
    zone = local.tzinfo
    if period == "minute":
        start = local.replace(second=0, microsecond=0)
        return start, _wall(start + timedelta(minutes=1))
    if period == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
        return start, _wall(start + timedelta(hours=1))
    day = datetime(local.year, local.month, local.day, tzinfo=zone)
    if period == "day":
        return day, _next_midnight(day, 1)
    if period == "week":
        monday = _next_midnight(day, -local.weekday()) if local.weekday() else day
        return monday, _next_midnight(monday, 7)
    if period == "month":
        start = datetime(local.year, local.month, 1, tzinfo=zone)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        return start, datetime(year, month, 1, tzinfo=zone)
    if period == "year":
        return datetime(local.year, 1, 1, tzinfo=zone), datetime(local.year + 1, 1, 1, tzinfo=zone)
    raise InvalidPeriod(f"not a calendar period: {period!r}")


def _next_midnight(midnight: datetime, days: int) -> datetime:
    # Add calendar days on the wall clock (not 24-hour steps), so DST changes keep midnights.
    moved = (midnight.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=midnight.tzinfo)
    return moved


def _wall(moment: datetime) -> datetime:
    # Minute and hour windows are measured in real time; normalise through UTC.
    return moment.astimezone(UTC).astimezone(moment.tzinfo)
