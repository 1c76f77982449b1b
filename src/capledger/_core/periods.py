"""Limit periods and their windows: pure functions of (period, time zone, anchor, now).

The windows of a period partition time: each instant lies in exactly one, every window has
``start <= now < end``, and the window after ``[start, end)`` starts at ``end``. All the
arithmetic is on integer microseconds since the epoch; the time zone is only consulted to
convert an instant to its wall-clock reading and a wall-clock reading to its instants, never
by adding a ``timedelta`` to an aware datetime (which keeps ``fold`` and breaks across
daylight-saving changes).

* ``minute`` and ``hour`` are real time: 60 and 3600 seconds, starting when the zone's wall
  clock shows ``:00`` (for every zone today a minute starts on a UTC minute; an hour starts
  on a UTC hour in whole-hour zones, at ``:30`` UTC in India, ``:15`` UTC in Nepal and
  Chatham). A daylight-saving change of a whole hour keeps that alignment, so an hour across
  a fall-back is one real hour, not two. A change that moves the alignment (Lord Howe's
  30-minute change) cuts the window it falls in there: that window is the part of the
  wall-clock hour that was on the clock, shorter than an hour.
* ``day``, ``week`` (from Monday), ``month`` and ``year`` run from the first instant of
  their first local date to the first instant of the next one: 23 or 25 real hours for a
  day with a daylight-saving change. A date starts at its local midnight; when midnight is
  repeated (a fall-back at midnight) at the first one, so the repeated hour belongs to the
  new date; when midnight is skipped (a spring-forward at midnight, as in Santiago) at the
  change itself, the first instant the clock shows that date.
* Fixed durations (``90s``, ``15m``, ``12h``, ``30d``, ``2w``; ``m`` is minutes) repeat back
  to back from the moment the limit was created, whatever the time zone.
* ``total`` never resets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from capledger.clock import from_us
from capledger.errors import InvalidPeriod

__all__ = [
    "CALENDAR_PERIODS",
    "check_timezone_applies",
    "next_window",
    "parse_period",
    "parse_timezone",
    "retimed_end",
    "window",
]

CALENDAR_PERIODS: Final = ("minute", "hour", "day", "week", "month", "year")
_DURATION: Final = re.compile(r"([1-9][0-9]{0,8})(s|m|h|d|w)")
_SECONDS: Final = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_MAX_DURATION_S: Final = 10 * 366 * 86_400
_MINUTE_US: Final = 60_000_000
_HOUR_US: Final = 3_600_000_000
_DAY_US: Final = 86_400_000_000
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def parse_period(period: str) -> str:
    """Return the canonical name of ``period`` or raise ``InvalidPeriod``.

    Durations are written with the largest whole unit: ``"720h"`` becomes ``"30d"``.
    """
    if not isinstance(period, str):
        raise InvalidPeriod(f"period must be a string, not {type(period).__name__}")
    # Not cached: only limit changes parse a period, and a cache here made no measurable
    # difference to reserve+settle pairs (memory://, benchmarks/compare_commits.py's pairs).
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


def parse_timezone(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name`` or raise ``InvalidPeriod``."""
    if not isinstance(name, str):
        raise InvalidPeriod(f"a time zone is a string, not {type(name).__name__}")
    try:  # ZoneInfo keeps the zones it loaded: no cache of ours is needed
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
    ``anchor + k * duration``; a ``now`` before the anchor falls in the first window. The
    calendar windows are defined in the module docstring.
    """
    if period == "total":
        return 0, None
    length_us = duration_us(period)
    if length_us is not None:
        elapsed = max(0, now_us - anchor_us)
        start = anchor_us + (elapsed // length_us) * length_us
        return start, start + length_us
    zone = parse_timezone(tz)
    if period == "minute":
        return _clock_window(zone, _MINUTE_US, now_us)
    if period == "hour":
        return _clock_window(zone, _HOUR_US, now_us)
    if period not in CALENDAR_PERIODS:
        raise InvalidPeriod(f"not a calendar period: {period!r}")
    return _calendar_window(period, zone, now_us)


def next_window(
    period: str, tz: str, anchor_us: int, previous_end_us: int, now_us: int
) -> tuple[int, int | None]:
    """The window a limit rolls into at ``now_us >= previous_end_us``: ``window``'s, but
    starting no earlier than the end of the window it follows.

    With one rule throughout windows partition time and this is ``window`` itself. After a
    limit changed its time zone, the new zone's window can begin before the old one ended:
    the part already counted in the old window is not counted again.
    """
    start, end = window(period, tz, anchor_us, now_us)
    return max(start, previous_end_us), end


def retimed_end(period: str, tz: str, start_us: int, end_us: int) -> int:
    """The end of the current window ``[start_us, end_us)`` when its limit moves to ``tz``.

    The window keeps its start, and so its spend. It ends at the new zone's boundary
    nearest to its old end: the one after it when that is no further than the one before
    (the window then lasts up to half a window longer, and the next one follows the new
    zone exactly), else at its old end (the first window in the new zone then starts there
    and is at least half a window long). So no spend is dropped, the cap is never exceeded
    within the current window, and no sliver of a window gets a cap of its own.
    """
    new_start, new_end = window(period, tz, start_us, end_us - 1)
    if new_end is not None and new_end - end_us <= end_us - new_start:
        return new_end
    return end_us


# --- the calendar ---------------------------------------------------------------------------


def _offset_us(zone: ZoneInfo, moment_us: int) -> int:
    """The zone's UTC offset at ``moment_us``."""
    return _timedelta_us(from_us(moment_us).astimezone(zone).utcoffset())


def _timedelta_us(delta: timedelta | None) -> int:
    if delta is None:  # never for a ZoneInfo; keeps mypy honest
        raise InvalidPeriod("a time zone without a UTC offset")
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _wall_us(zone: ZoneInfo, moment_us: int) -> int:
    """The zone's wall-clock reading at ``moment_us``, counted as if it were UTC."""
    return moment_us + _offset_us(zone, moment_us)


def _first_where(lo_us: int, hi_us: int, reached: Callable[[int], bool]) -> int:
    """The first microsecond in ``(lo_us, hi_us]`` where ``reached`` holds, by bisection,
    given it does not hold at ``lo_us`` and does at ``hi_us``."""
    while hi_us - lo_us > 1:
        middle = (lo_us + hi_us) // 2
        if reached(middle):
            hi_us = middle
        else:
            lo_us = middle
    return hi_us


def _clock_window(zone: ZoneInfo, unit_us: int, now_us: int) -> tuple[int, int]:
    """The minute or hour (``unit_us``) containing ``now_us``, aligned on the wall clock.

    The alignment is the UTC offset modulo the unit; where it changes inside the unit (an
    offset change that is not a whole number of units), the window is cut at the change.
    """
    phase = _offset_us(zone, now_us) % unit_us

    def aligned(moment_us: int) -> bool:
        return _offset_us(zone, moment_us) % unit_us == phase

    start = now_us - (now_us + phase) % unit_us
    end = start + unit_us
    if not aligned(start):
        start = _first_where(start, now_us, aligned)
    if not aligned(end - 1):
        end = _first_where(now_us, end - 1, lambda moment_us: not aligned(moment_us))
    return start, end


def _day_start_us(zone: ZoneInfo, day: date) -> int:
    """The first instant whose wall-clock reading is ``day`` 00:00 or later."""
    midnight_us = (day.toordinal() - _EPOCH_ORDINAL) * _DAY_US  # the reading, as if UTC
    earlier, later = sorted(
        midnight_us
        - _timedelta_us(datetime(day.year, day.month, day.day, tzinfo=zone, fold=fold).utcoffset())
        for fold in (0, 1)
    )
    for moment_us in (earlier, later):
        if _wall_us(zone, moment_us) == midnight_us:
            return moment_us  # midnight is on the clock (twice if repeated: the first)
    # Midnight is skipped: the date starts at the change, between the two readings of it.
    if not _wall_us(zone, earlier) < midnight_us <= _wall_us(zone, later):
        earlier, later = midnight_us - 2 * _DAY_US, midnight_us + 2 * _DAY_US
    return _first_where(earlier, later, lambda moment_us: _wall_us(zone, moment_us) >= midnight_us)


def _first_day(period: str, day: date) -> date:
    """The first date of the calendar ``period`` that contains ``day``."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _following_first_day(period: str, first: date) -> date:
    """The first date of the calendar ``period`` after the one starting on ``first``."""
    if period == "day":
        return first + timedelta(days=1)
    if period == "week":
        return first + timedelta(days=7)
    if period == "month":
        return (
            date(first.year + 1, 1, 1)
            if first.month == 12
            else first.replace(month=first.month + 1)
        )
    return date(first.year + 1, 1, 1)


def _calendar_window(period: str, zone: ZoneInfo, now_us: int) -> tuple[int, int]:
    today = date.fromordinal(_EPOCH_ORDINAL + _wall_us(zone, now_us) // _DAY_US)
    first = _first_day(period, today)
    start = _day_start_us(zone, first)
    # A date can begin before its local midnight's first reading is over: after a fall-back
    # across midnight the clock shows the previous date again, in the new date's window.
    for _ in range(4):
        if start <= now_us:
            break
        first = _first_day(period, first - timedelta(days=1))
        start = _day_start_us(zone, first)
    for _ in range(4):
        following = _following_first_day(period, first)
        end = _day_start_us(zone, following)
        if now_us < end:
            if not start <= now_us < end:
                break
            return start, end
        first, start = following, end
    raise InvalidPeriod(f"no {period} window of time zone {zone.key!r} contains {now_us} us")
