"""Clocks. The core never reads the time itself: a clock is injected, so tests move time
by hand instead of sleeping.

A clock tells two times. ``now_us()`` is the wall clock: it stamps the journal and places
calendar windows, and it may step (NTP, an operator, another host running ahead).
``deadline_now()`` is a clock that never steps, with the id of the boot it counts from: hold
deadlines (TTLs) are measured on it, so a stepped wall clock never expires a live hold. A
deadline stamped under another boot id is past at once: the host restarted, so the process
that held it is gone.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "from_us", "to_us"]


class Clock(Protocol):
    """Anything with ``now_us()``: the current UTC time in integer microseconds since 1970.

    A clock may also have ``deadline_now()`` (see the module docstring); one without it has
    its hold deadlines measured on ``now_us()``, the wall clock, under the boot id ``""``.
    """

    def now_us(self) -> int:
        """Return the current time in microseconds since the Unix epoch."""
        ...


def _boot_id() -> str:
    """This host's boot id, from the kernel (Linux); ``""`` where the kernel gives none."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            return file.read().strip()
    except OSError:
        return ""


#: The id of this host's current boot (see ``_boot_id``).
BOOT_ID = _boot_id()
# The boot-time clock counts the time the host was suspended too (a TTL is real time).
# Without it or a boot id (macOS, Windows), no id could tell two processes whether they
# count from the same boot: TTLs there are measured on the wall clock, as before.
_STEADY_CLOCK: int | None = getattr(time, "CLOCK_BOOTTIME", None) if BOOT_ID else None


def deadline_now(clock: Clock) -> tuple[str, int]:
    """``clock``'s boot id and its time on the clock deadlines are measured on (microseconds).

    A clock without ``deadline_now`` measures deadlines on its wall clock, boot id ``""``.
    """
    method = getattr(clock, "deadline_now", None)
    if method is None:
        return "", clock.now_us()
    boot_id, tick_us = method()
    return str(boot_id), int(tick_us)


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

    def deadline_now(self) -> tuple[str, int]:
        """Return the boot id and the microseconds since boot, on a clock that never steps.

        Where the host has no boot-time clock with a boot id (outside Linux), this is
        ``("", wall-clock time)``: TTLs are measured on the wall clock.
        """
        if _STEADY_CLOCK is None:
            return "", self.now_us()
        return BOOT_ID, time.clock_gettime_ns(_STEADY_CLOCK) // 1000


class ManualClock:
    """A clock that only moves when told to: for tests and simulations.

    ``advance`` and ``set`` move the wall clock and the deadline clock together;
    ``step_wall`` moves the wall clock alone (an NTP step, a host running ahead), and
    ``reboot`` starts a new boot. Two manual clocks with the same ``boot_id`` and
    ``uptime_us`` behave as two processes on one host.
    """

    def __init__(
        self,
        start: datetime | int = 1_767_225_600_000_000,
        *,
        boot_id: str = "manual-boot",
        uptime_us: int = 1_000_000_000,
    ) -> None:
        # The default start is 2026-01-01T00:00:00Z.
        self._now_us = to_us(start) if isinstance(start, datetime) else start
        self._boot_id = boot_id
        self._uptime_us = uptime_us

    def now_us(self) -> int:
        """Return the clock's current time."""
        return self._now_us

    def deadline_now(self) -> tuple[str, int]:
        """Return the boot id and the time since boot."""
        return self._boot_id, self._uptime_us

    def advance(self, delta: timedelta | float) -> None:
        """Move the clock forward by ``delta`` (a timedelta or seconds)."""
        step_us = _forward_us(delta)
        self._now_us += step_us
        self._uptime_us += step_us

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (timezone-aware), which must not be in the clock's past."""
        target = to_us(when)
        if target < self._now_us:
            raise ValueError("a ManualClock only moves forward")
        self._uptime_us += target - self._now_us
        self._now_us = target

    def step_wall(self, delta: timedelta | float) -> None:
        """Step the wall clock forward by ``delta`` while the deadline clock stays put."""
        self._now_us += _forward_us(delta)

    def reboot(self, boot_id: str | None = None) -> None:
        """Start a new boot: a new boot id (random unless given), time since boot back to 0."""
        self._boot_id = boot_id if boot_id is not None else f"manual-{uuid.uuid4()}"
        self._uptime_us = 0


def _forward_us(delta: timedelta | float) -> int:
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else delta
    if seconds < 0:
        raise ValueError("a ManualClock only moves forward")
    return round(seconds * 1_000_000)


def to_us(when: datetime) -> int:
    """Convert an aware datetime to integer microseconds since the epoch."""
    if when.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(moment_us: int) -> datetime:
    """Convert integer microseconds since the epoch to an aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=moment_us)
