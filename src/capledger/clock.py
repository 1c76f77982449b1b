"""Clocks. The core never reads the time itself: a clock is injected, so tests move time
by hand instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "from_us", "to_us"]


class Clock(Protocol):
    """Anything with ``now_us()``: the current UTC time in integer microseconds since 1970."""

    def now_us(self) -> int:
        """Return the current time in microseconds since the Unix epoch."""
        ...


class SystemClock:
    """The wall clock, made monotonic per process so a step back never reorders a journal."""

    def __init__(self) -> None:
        self._last_us = 0

    def now_us(self) -> int:
        """Return the wall-clock time, never earlier than a value returned before.

        No lock: two threads racing here may both see the same ``_last_us``, which is
        harmless, since each store reads the clock inside its own atomic step.
        """
        now = time.time_ns() // 1000
        last = self._last_us
        if now < last:
            return last
        self._last_us = now
        return now


class ManualClock:
    """A clock that only moves when told to: for tests and simulations."""

    def __init__(self, start: datetime | int = 1_767_225_600_000_000) -> None:
        # The default start is 2026-01-01T00:00:00Z.
        self._now_us = to_us(start) if isinstance(start, datetime) else start

    def now_us(self) -> int:
        """Return the clock's current time."""
        return self._now_us

    def advance(self, delta: timedelta | float) -> None:
        """Move the clock forward by ``delta`` (a timedelta or seconds)."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else delta
        if seconds < 0:
            raise ValueError("a ManualClock only moves forward")
        self._now_us += round(seconds * 1_000_000)

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (timezone-aware), which must not be in the clock's past."""
        target = to_us(when)
        if target < self._now_us:
            raise ValueError("a ManualClock only moves forward")
        self._now_us = target


def to_us(when: datetime) -> int:
    """Convert an aware datetime to integer microseconds since the epoch."""
    if when.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(moment_us: int) -> datetime:
    """Convert integer microseconds since the epoch to an aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=moment_us)
