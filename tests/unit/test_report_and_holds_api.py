"""``report()``'s times and keys, ``holds(newest_first=True)`` and a time zone on ``total``.

Each refusal is a typed ``InvalidInput`` raised before anything is read or written.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from capledger import (
    AsyncLedger,
    ConfigurationError,
    InvalidInput,
    InvalidPeriod,
    Ledger,
    ManualClock,
)

JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'l.db'}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(JAN_1)


@pytest.fixture
def ledger(url: str, clock: ManualClock) -> Iterator[Ledger]:
    """One call settled on Jan 1 and one on Jan 3, both tagged with a model."""
    with Ledger(url, clock=clock) as opened:
        opened.reserve("user:a", usd="0.10", tags={"model": "m1"}).settle(usd="0.05")
        clock.advance(timedelta(days=2))
        opened.reserve("user:a", usd="0.10", tags={"model": "m2"}).settle(usd="0.07")
        yield opened


# --- since / until ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "since",
    [
        "2026-01-02",
        "2026-01-02T00:00:00",
        "2026-01-02T00:00:00Z",
        "2026-01-02T01:00:00+01:00",
        date(2026, 1, 2),
        datetime(2026, 1, 2, tzinfo=UTC),
        datetime(2026, 1, 2, 1, tzinfo=timezone(timedelta(hours=1))),
    ],
    ids=repr,
)
def test_since_takes_iso_strings_dates_and_aware_datetimes(ledger: Ledger, since: object) -> None:
    rows = ledger.report(["model"], since=since)  # type: ignore[arg-type]
    assert [(row["model"], row["usd"]) for row in rows] == [("m2", Decimal("0.07"))]


def test_until_takes_the_same_and_is_exclusive(ledger: Ledger) -> None:
    assert [row["model"] for row in ledger.report(["model"], until="2026-01-02")] == ["m1"]
    assert [row["model"] for row in ledger.report(["model"], until=date(2026, 1, 3))] == ["m1"]
    assert ledger.report(["model"], until=JAN_1) == []


@pytest.mark.parametrize(
    ("since", "words"),
    [
        (datetime(2026, 1, 2), "has no time zone"),  # naive: the point of the test
        ("yesterday", "'yesterday' is not an ISO 8601 date or time"),
        ("2026-13-01", "is not an ISO 8601 date or time"),
        (1_767_225_600, "is not a time"),
        (b"2026-01-01", "is not a time"),
    ],
    ids=repr,
)
def test_since_refuses_naive_datetimes_garbage_and_other_types(
    ledger: Ledger, since: object, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words) as raised:
        ledger.report(["model"], since=since)  # type: ignore[arg-type]
    assert str(raised.value).startswith("since=")
    with pytest.raises(InvalidInput, match=words):
        ledger.report(["model"], until=since)  # type: ignore[arg-type]


def test_since_must_come_before_until(ledger: Ledger) -> None:
    with pytest.raises(InvalidInput, match="must be before until"):
        ledger.report(since="2026-01-03", until=date(2026, 1, 3))


async def test_the_async_report_normalises_the_same_way(url: str, clock: ManualClock) -> None:
    async with AsyncLedger(url, clock=clock) as ledger:
        hold = await ledger.reserve("user:a", usd="0.10", tags={"model": "m1"})
        await hold.settle(usd="0.05")
        rows = await ledger.report(["model"], since="2026-01-01", until=date(2026, 1, 2))
        assert [row["model"] for row in rows] == ["m1"]
        with pytest.raises(InvalidInput, match="has no time zone"):
            await ledger.report(since=datetime(2026, 1, 1))
        with pytest.raises(InvalidInput, match="unknown group-by key 'modle'"):
            await ledger.report(["modle"])


# --- group_by ---------------------------------------------------------------------------------


def test_an_unknown_group_by_key_is_refused_with_the_valid_ones(ledger: Ledger) -> None:
    with pytest.raises(InvalidInput) as raised:
        ledger.report(["scope", "modle"])
    assert str(raised.value) == (
        "unknown group-by key 'modle': use scope, kind, unit, day, hour, month, "
        "or a tag of the settled calls in that range (model)"
    )


def test_tag_keys_and_built_in_keys_are_accepted(ledger: Ledger) -> None:
    for keys in (["model"], ["scope", "model"], ["kind", "unit", "day", "hour", "month"]):
        assert ledger.report(keys)


def test_with_nothing_settled_in_range_any_key_gives_no_rows(ledger: Ledger) -> None:
    # No settled call to tell a tag from a typo: nothing is grouped either way.
    assert ledger.report(["model"], since="2027-01-01") == []


@pytest.mark.parametrize("group_by", [[], ["scope", "scope"], [1], None, 5], ids=repr)
def test_malformed_group_by_is_refused(ledger: Ledger, group_by: object) -> None:
    with pytest.raises(InvalidInput, match="group_by needs one or more distinct key names"):
        ledger.report(group_by)  # type: ignore[arg-type]


# --- holds, newest first ----------------------------------------------------------------------


def test_newest_first_finds_the_latest_hold_past_the_default_limit(
    url: str, clock: ManualClock
) -> None:
    with Ledger(url, clock=clock) as ledger:
        for index in range(1005):
            clock.advance(0.001)
            ledger.reserve("user:a", usd="0.01", request_id=f"r{index}")
        oldest_first = ledger.holds(state=None)
        assert len(oldest_first) == 1000
        assert oldest_first[-1].request_id == "r999"  # the old idiom: wrong past 1,000
        latest = ledger.holds(state=None, limit=1, newest_first=True)
        assert [hold.request_id for hold in latest] == ["r1004"]
        newest = ledger.holds(scope="user:a", limit=3, newest_first=True)
        assert [hold.request_id for hold in newest] == ["r1004", "r1003", "r1002"]


async def test_async_newest_first(url: str, clock: ManualClock) -> None:
    async with AsyncLedger(url, clock=clock) as ledger:
        for index in range(3):
            clock.advance(1)
            await ledger.reserve("user:a", usd="0.01", request_id=f"r{index}")
        latest = await ledger.holds(state=None, limit=1, newest_first=True)
        assert [hold.request_id for hold in latest] == ["r2"]


@pytest.mark.parametrize("limit", [0, -1, True, 1.5], ids=repr)
def test_holds_refuses_a_bad_limit(ledger: Ledger, limit: object) -> None:
    with pytest.raises(InvalidInput, match="limit must be a positive whole number"):
        ledger.holds(limit=limit)  # type: ignore[arg-type]


# --- a time zone on a period without a calendar ----------------------------------------------


@pytest.mark.parametrize("period", ["total", "30d", "12h"])
def test_a_time_zone_on_a_period_without_a_calendar_is_refused(ledger: Ledger, period: str) -> None:
    with pytest.raises(InvalidPeriod, match="applies only to calendar periods"):
        ledger.set_limit("user:b", usd="5", period=period, tz="Europe/Paris")
    assert ledger.limits("user:b") == []


def test_a_time_zone_on_a_calendar_period_and_no_zone_on_total_are_fine(ledger: Ledger) -> None:
    ledger.set_limit("user:b", usd="5", period="month", tz="Europe/Paris")
    ledger.set_limit("user:b", usd="50")
    assert {(limit.period, limit.tz) for limit in ledger.limits("user:b")} == {
        ("month", "Europe/Paris"),
        ("total", "UTC"),
    }


# --- SQLite: open an existing ledger only -----------------------------------------------------


def test_sqlite_mode_rw_refuses_a_missing_file_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(ConfigurationError, match="there is no ledger at") as raised:
        Ledger(f"sqlite:///{path}?mode=rw")
    assert str(path) in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_sqlite_mode_rw_opens_an_existing_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/with%20space%3Fand%23marks.db"  # quoted in the URL
    with Ledger(url) as ledger:
        ledger.set_limit("user:a", usd="1")
    assert (tmp_path / "with space?and#marks.db").exists()
    with Ledger(url + "?mode=rw") as ledger:
        assert [limit.cap for limit in ledger.limits()] == [Decimal(1)]


def test_sqlite_mode_must_be_known(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="mode must be one of"):
        Ledger(f"sqlite:///{tmp_path / 'x.db'}?mode=ro")
    assert list(tmp_path.iterdir()) == []
