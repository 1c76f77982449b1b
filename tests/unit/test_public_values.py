"""The values the API hands out say what they hold: times are ``datetime``s, a hold's flags a
set of literals."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from capledger import Event, Ledger, ManualClock
from capledger._core import flag_set
from capledger.errors import LedgerInvariantError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_an_event_says_when_as_an_exact_utc_datetime() -> None:
    # The last microsecond datetime can show: a float of seconds would round it away.
    last_us = 253_402_300_799_999_999
    event = Event("expired", last_us, hold_id="h1")
    assert event.at == datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert event.at.utcoffset() == timedelta(0)
    assert Event("expired", -1).at == EPOCH - timedelta(microseconds=1)


def test_an_event_shows_no_integer_time() -> None:
    event = Event("released", 1_767_225_600_000_000, hold_id="h1")
    public = {field.name for field in dataclasses.fields(event) if not field.name.startswith("_")}
    assert "at_us" not in public and not hasattr(event, "at_us")
    assert "at=datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)" in repr(event)
    assert "_at_us" not in repr(event)


def test_a_ledger_event_happens_at_the_clock_time_of_its_operation() -> None:
    clock = ManualClock(datetime(2026, 3, 1, 9, 30, 0, 123_456, tzinfo=UTC))
    seen: list[Event] = []
    with Ledger("memory://", clock=clock) as ledger:
        for kind in ("reserved", "settled"):
            ledger.on(kind, seen.append)
        hold = ledger.reserve("user:a", usd="0.10")
        clock.advance(timedelta(microseconds=7))
        hold.settle(usd="0.04")
    reserved, settled = seen
    assert (reserved.kind, reserved.at) == (
        "reserved",
        datetime(2026, 3, 1, 9, 30, 0, 123_456, tzinfo=UTC),
    )
    assert (settled.kind, settled.at, settled.amounts) == (
        "settled",
        datetime(2026, 3, 1, 9, 30, 0, 123_463, tzinfo=UTC),
        {"usd": Decimal("0.04")},
    )


def test_a_hold_and_its_listing_show_flags_as_a_frozenset() -> None:
    clock = ManualClock()
    with Ledger("memory://", clock=clock) as ledger:
        ledger.set_limit("user:a", usd="0.20")
        late = ledger.reserve("user:a", usd="0.10", ttl=1)
        on_time = ledger.reserve("user:b", usd="0.10")
        clock.advance(2)
        assert late.settle(usd="0.30").flags == frozenset({"late", "overrun"})
        assert on_time.settle(usd="0.10").flags == frozenset()
        listed = {info.scopes[0]: info.flags for info in ledger.holds(state="settled")}
    assert listed == {"user:a": frozenset({"late", "overrun"}), "user:b": frozenset()}
    assert all(type(flags) is frozenset for flags in listed.values())


@pytest.mark.parametrize(
    ("stored", "flags"),
    [
        ("", set()),
        ("late", {"late"}),
        ("overrun", {"overrun"}),
        ("late,overrun", {"late", "overrun"}),
    ],
)
def test_stored_flags_read_as_sets(stored: str, flags: set[str]) -> None:
    assert flag_set(stored) == flags


@pytest.mark.parametrize("stored", ["overrun,late", "late,", "LATE", "expired"])
def test_stored_flags_capledger_never_writes_are_damage(stored: str) -> None:
    with pytest.raises(LedgerInvariantError, match="capledger writes only"):
        flag_set(stored)
