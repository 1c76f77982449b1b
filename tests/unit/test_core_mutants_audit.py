"""Reports and verification as pure folds over journal entries (``capledger._core.audit``).

Written against the survivors of mutation testing (docs/testing.md): every row is compared
whole, so a miscounted column, a lost flag or a wrong grouping fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from capledger import Ledger, ManualClock
from capledger._core.audit import Breach, Mismatch, VerifyReport, build_report, verify
from capledger._core.periods import window
from capledger._core.records import Account, Entry, HoldRecord

NOON_US = 1_767_614_400_000_000  # 2026-01-05 12:00 UTC
HOUR_US = 3_600 * 1_000_000
NANO = 1_000_000_000


def settled(
    scopes: tuple[str, ...],
    *,
    at_us: int = NOON_US,
    flags: str = "",
    tags: dict[str, object] | None = None,
    **amounts: int,
) -> Entry:
    return Entry(at_us, "settled", "h", None, scopes, amounts, tags or {}, flags)


def test_flags_are_counted_per_settled_hold() -> None:
    entries = [
        settled(("user:a",), flags="late,overrun", usd=NANO),
        settled(("user:a",), flags="overrun", usd=NANO),
        Entry(NOON_US, "overrun", "h", None, ("user:a",), {"usd": 5}, {}, "overrun"),
        settled(("user:a",), usd=NANO),
    ]
    assert build_report(entries, ["scope"]) == [
        {
            "scope": "user:a",
            "calls": 3,
            "usd": Decimal(3),
            "tokens": 0,
            "requests": 0,
            "overruns": 2,
            "late": 1,
        }
    ]


def test_a_group_with_no_flags_counts_none() -> None:
    assert build_report([settled(("user:a",), tokens=12)], ["scope"]) == [
        {
            "scope": "user:a",
            "calls": 1,
            "usd": Decimal(0),
            "tokens": 12,
            "requests": 0,
            "overruns": 0,
            "late": 0,
        }
    ]


def test_by_kind_a_hold_on_two_scopes_of_one_kind_counts_once() -> None:
    entries = [settled(("user:a", "user:b", "team:t"), flags="overrun", usd=2 * NANO)]
    rows = build_report(entries, ["kind"])
    assert [(row["kind"], row["calls"], row["usd"], row["overruns"]) for row in rows] == [
        ("team", 1, Decimal(2), 1),
        ("user", 1, Decimal(2), 1),
    ]


def test_the_kind_is_what_comes_before_the_first_colon() -> None:
    rows = build_report([settled(("key:sk-abc:123",), requests=1)], ["kind"])
    assert [row["kind"] for row in rows] == ["key"]


def test_by_unit_each_unit_is_its_own_row_with_its_spend() -> None:
    entries = [
        settled(("user:a",), usd=NANO // 2, tokens=40),
        settled(("user:a",), flags="late", tokens=2),
    ]
    assert build_report(entries, ["unit"]) == [
        {"unit": "tokens", "calls": 2, "spent": 42, "overruns": 0, "late": 1},
        {"unit": "usd", "calls": 1, "spent": Decimal("0.5"), "overruns": 0, "late": 0},
    ]


def test_time_groups_are_utc_day_hour_and_month() -> None:
    entries = [
        settled(("user:a",), at_us=NOON_US + HOUR_US // 2, usd=NANO),  # 12:30
        settled(("user:a",), at_us=NOON_US + 9 * HOUR_US, usd=NANO),  # 21:00
    ]
    assert [row["hour"] for row in build_report(entries, ["hour"])] == [
        "2026-01-05T12:00",
        "2026-01-05T21:00",
    ]
    assert [(row["day"], row["calls"]) for row in build_report(entries, ["day"])] == [
        ("2026-01-05", 2)
    ]
    assert [row["month"] for row in build_report(entries, ["month"])] == ["2026-01"]


@pytest.fixture
def tokyo_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone set to Asia/Tokyo (UTC+9) for one test."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("tokyo_local_time")
def test_time_groups_do_not_follow_the_machines_time_zone() -> None:
    late_evening = settled(("user:a",), at_us=NOON_US + 9 * HOUR_US, usd=NANO)  # 06:00 in Tokyo
    assert [row["day"] for row in build_report([late_evening], ["day"])] == ["2026-01-05"]


def test_a_tag_groups_by_its_text_and_an_untagged_hold_by_an_empty_string() -> None:
    entries = [
        settled(("user:a",), tags={"model": "m1", "attempt": 2}, usd=NANO),
        settled(("user:a",), usd=NANO),
    ]
    assert [(row["model"], row["calls"]) for row in build_report(entries, ["model"])] == [
        ("", 1),
        ("m1", 1),
    ]
    assert [row["attempt"] for row in build_report(entries, ["attempt"])] == ["", "2"]


def test_only_settled_entries_are_reported() -> None:
    entries = [
        Entry(NOON_US, kind, "h", None, ("user:a",), {"usd": NANO}, {}, "")
        for kind in ("reserved", "extended", "released", "expired", "overrun")
    ]
    assert build_report(entries, ["scope"]) == []


def test_a_mismatch_reads_as_one_line() -> None:
    assert (
        str(Mismatch("user:a", "usd", "day", "spent", 5, 7, "journal sum"))
        == "user:a usd/day: spent is 5, expected 7 (journal sum)"
    )
    assert str(Mismatch("user:a", "tokens", "total", "held", 0, 3)) == (
        "user:a tokens/total: held is 0, expected 3"
    )


def test_verify_replays_a_fixed_duration_window_from_its_anchor() -> None:
    clock = ManualClock()
    ledger = Ledger("memory://", clock=clock)
    ledger.reserve("user:a", usd="0.50").settle()  # before the limit: not in its window
    clock.advance(3_600)
    ledger.set_limit("user:a", usd="1.00", period="90s")
    ledger.reserve("user:a", usd="0.25").settle()
    clock.advance(100)  # the second 90-second window
    ledger.reserve("user:a", usd="0.125").settle()
    report = ledger.verify()
    assert report.ok, report
    assert (report.mismatches, report.breaches) == ([], [])


# --- verify ----------------------------------------------------------------------------------


def account(
    period: str = "total",
    *,
    cap: int | None = None,
    spent: int = 0,
    held: int = 0,
    scope: str = "user:a",
    unit: str = "usd",
    now_us: int = NOON_US,
) -> Account:
    start, end = window(period, "UTC", NOON_US, now_us)
    return Account(scope, unit, period, cap, spent, held, start, end, "UTC", NOON_US)


def entry(
    kind: str,
    hold_id: str | None,
    scopes: tuple[str, ...] = ("user:a",),
    *,
    flags: str = "",
    tags: dict[str, object] | None = None,
    **amounts: int,
) -> Entry:
    return Entry(NOON_US, kind, hold_id, None, scopes, amounts, tags or {}, flags)  # type: ignore[arg-type]


def limit_set(period: str, cap: int) -> Entry:
    return entry("limit_set", None, tags={"period": period, "tz": "UTC"}, usd=cap)


def open_hold(hold_id: str, scopes: tuple[str, ...] = ("user:a",), **amounts: int) -> HoldRecord:
    return HoldRecord(hold_id, None, scopes, amounts, "open", NOON_US, NOON_US + 60, {}, "")


def test_a_consistent_ledger_verifies_and_says_how_much_it_read() -> None:
    report = verify(
        [account(spent=2 * NANO, held=2 * NANO)],
        [open_hold("h2", usd=NANO), open_hold("h3", usd=NANO)],
        [
            entry("reserved", "h1", usd=2 * NANO),
            entry("settled", "h1", usd=2 * NANO),
            entry("reserved", "h2", usd=NANO),
            entry("reserved", "h3", usd=NANO),
        ],
    )
    assert report == VerifyReport(ok=True, accounts_checked=1, open_holds=2, entries_read=4)


def test_each_wrong_counter_is_named_with_what_it_should_be() -> None:
    report = verify(
        [account(spent=5, held=7)],
        [open_hold("h2", usd=NANO)],
        [
            entry("reserved", "h1", usd=2 * NANO),
            entry("settled", "h1", usd=2 * NANO),
            entry("reserved", "h2", usd=NANO),
        ],
    )
    assert not report.ok
    assert report.mismatches == [
        Mismatch("user:a", "usd", "total", "spent", 5, 2 * NANO, "journal sum"),
        Mismatch("user:a", "usd", "total", "held", 7, NANO, "open holds"),
    ]


def test_hold_rows_that_disagree_with_the_journal_are_a_mismatch() -> None:
    # The journal placed a hold that the hold rows no longer have (and the counter agrees
    # with the rows): only the replay can tell.
    report = verify([account()], [], [entry("reserved", "h1", usd=NANO)])
    assert report.mismatches == [
        Mismatch(
            "user:a",
            "usd",
            "total",
            "held",
            NANO,
            0,
            "the journal's open holds disagree with the hold rows",
        )
    ]
    assert not report.ok


def test_an_account_exactly_at_its_cap_has_not_overrun() -> None:
    entries = [
        limit_set("total", NANO),
        entry("reserved", "h1", usd=NANO),
        entry("settled", "h1", usd=NANO),
    ]
    report = verify([account(cap=NANO, spent=NANO)], [], entries)
    assert (report.ok, report.overruns, report.breaches) == (True, [], [])


def test_a_removed_cap_no_longer_limits_the_account() -> None:
    entries = [
        limit_set("total", NANO),
        entry("limit_removed", None, tags={"period": "total"}, usd=0),
        entry("reserved", "h1", usd=3 * NANO),
    ]
    report = verify([account(held=3 * NANO)], [open_hold("h1", usd=3 * NANO)], entries)
    assert (report.ok, report.breaches) == (True, [])


def test_an_uncapped_total_does_not_hide_a_capped_window() -> None:
    entries = [limit_set("day", NANO), entry("reserved", "h_forged", usd=2 * NANO)]
    accounts = [account(held=2 * NANO), account("day", cap=NANO, held=2 * NANO)]
    report = verify(accounts, [open_hold("h_forged", usd=2 * NANO)], entries)
    noon = datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert report.breaches == [
        Breach(noon, "reserved", "h_forged", "user:a", "usd", "day", 2 * NANO, NANO)
    ]
    assert not report.ok


def test_an_extension_past_the_cap_is_a_breach() -> None:
    entries = [
        limit_set("total", NANO),
        entry("reserved", "h1", usd=NANO // 2),
        entry("extended", "h1", usd=NANO),
    ]
    held = NANO // 2 + NANO
    report = verify([account(cap=NANO, held=held)], [open_hold("h1", usd=held)], entries)
    [breach] = report.breaches
    assert (breach.kind, breach.hold_id, breach.spent_and_held, breach.cap) == (
        "extended",
        "h1",
        held,
        NANO,
    )


def test_an_extension_may_add_a_unit_and_a_release_gives_it_all_back() -> None:
    entries = [
        entry("reserved", "h1", usd=NANO),
        entry("extended", "h1", tokens=10),
        entry("released", "h1", usd=NANO, tokens=10),
    ]
    report = verify([account(), account(unit="tokens")], [], entries)
    assert (report.ok, report.mismatches) == (True, [])


def test_a_journal_that_begins_mid_way_is_read_without_failing() -> None:
    # Holds whose reserve is not in the journal (and a scope with no account rows): the
    # replay counts what it sees and does not stop at what it does not.
    entries = [
        limit_set("total", NANO),
        entry("settled", "h_early", ("user:a", "team:no_rows"), usd=NANO),  # up to the cap
        entry("released", "h_gone"),
        entry("expired", "h_gone_too"),
        entry("extended", "h_old", tokens=5),
    ]
    report = verify(
        [account(cap=NANO, spent=NANO)],
        [open_hold("h_old", tokens=5), open_hold("h_elsewhere", ("team:no_rows",), usd=3)],
        entries,
    )
    assert report == VerifyReport(ok=True, accounts_checked=1, open_holds=2, entries_read=5)


def test_a_window_rolled_past_the_last_entry_has_spent_nothing() -> None:
    tomorrow = NOON_US + 24 * HOUR_US
    entries = [
        limit_set("day", 2 * NANO),
        entry("reserved", "h1", usd=NANO),
        entry("settled", "h1", usd=NANO),
    ]
    accounts = [account(spent=NANO), account("day", cap=2 * NANO, now_us=tomorrow)]
    report = verify(accounts, [], entries)
    assert (report.ok, report.mismatches) == (True, [])


def test_a_limit_recreated_in_another_time_zone_starts_from_what_the_store_counted() -> None:
    clock = ManualClock(datetime(2026, 1, 4, 19, tzinfo=UTC))  # 00:30 on the 5th in Kolkata
    ledger = Ledger("memory://", clock=clock)
    ledger.set_limit("user:a", usd="10", period="day", tz="Asia/Kolkata")
    clock.advance(timedelta(hours=1))
    ledger.reserve("user:a", usd="1").settle()  # in Kolkata's 5th, not in UTC's
    ledger.remove_limit("user:a", period="day")
    clock.advance(timedelta(hours=16))  # 12:00 UTC on the 5th
    ledger.set_limit("user:a", usd="10", period="day", tz="UTC")
    ledger.reserve("user:a", usd="0.5").settle()
    (day,) = [b for b in ledger.balance("user:a") if b.period == "day"]
    assert day.spent == Decimal("0.5")
    report = ledger.verify()
    assert (report.ok, report.mismatches, report.breaches) == (True, [], [])


def test_a_window_stretched_to_a_new_time_zone_is_replayed_as_the_store_kept_it() -> None:
    clock = ManualClock(datetime(2026, 1, 5, 12, tzinfo=UTC))
    ledger = Ledger("memory://", clock=clock)
    ledger.set_limit("user:a", usd="10", period="day")
    ledger.reserve("user:a", usd="1").settle()
    # New York's day ends at 05:00 UTC: the current window now runs until then.
    ledger.set_limit("user:a", usd="10", period="day", tz="America/New_York")
    clock.advance(timedelta(hours=14))  # 02:00 UTC on the 6th: still the same window
    ledger.reserve("user:a", usd="2").settle()
    (day,) = [b for b in ledger.balance("user:a") if b.period == "day"]
    assert day.spent == Decimal(3)
    report = ledger.verify()
    assert (report.ok, report.mismatches, report.breaches) == (True, [], [])


def test_spend_at_the_first_instant_of_a_window_counts_in_a_limit_set_later() -> None:
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))  # midnight: the day's first instant
    ledger = Ledger("memory://", clock=clock)
    ledger.reserve("user:a", usd="1").settle()
    clock.advance(timedelta(hours=1))
    ledger.set_limit("user:a", usd="10", period="day")
    (day,) = [b for b in ledger.balance("user:a") if b.period == "day"]
    assert day.spent == Decimal(1)
    report = ledger.verify()
    assert (report.ok, report.mismatches) == (True, [])


def test_a_total_limit_set_after_spending_keeps_the_lifetime_spend() -> None:
    ledger = Ledger("memory://", clock=ManualClock())
    ledger.reserve("user:a", usd="2").settle()
    ledger.set_limit("user:a", usd="10")
    ledger.reserve("user:a", usd="1").settle()
    (total,) = ledger.balance("user:a")
    assert total.spent == Decimal(3)
    report = ledger.verify()
    assert (report.ok, report.mismatches) == (True, [])


def test_a_removed_limit_leaves_nothing_to_replay() -> None:
    ledger = Ledger("memory://", clock=ManualClock())
    ledger.set_limit("user:a", usd="10", period="day")
    ledger.reserve("user:a", usd="1").settle()
    ledger.remove_limit("user:a", period="day")
    report = ledger.verify()
    assert (report.ok, report.accounts_checked, report.mismatches) == (True, 1, [])


def test_a_duration_removed_and_set_again_runs_from_its_new_start() -> None:
    clock = ManualClock()
    ledger = Ledger("memory://", clock=clock)
    ledger.set_limit("user:a", usd="10", period="90s")
    ledger.reserve("user:a", usd="1").settle()
    ledger.remove_limit("user:a", period="90s")
    clock.advance(30)
    ledger.reserve("user:a", usd="2").settle()  # between the two limits: in neither
    clock.advance(5)
    ledger.set_limit("user:a", usd="10", period="90s")
    clock.advance(10)
    ledger.reserve("user:a", usd="4").settle()
    (window,) = [b for b in ledger.balance("user:a") if b.period == "90s"]
    assert window.spent == Decimal(4)
    report = ledger.verify()
    assert (report.ok, report.mismatches) == (True, [])


def test_an_account_that_never_held_anything_verifies() -> None:
    report = verify([account(cap=NANO)], [], [limit_set("total", NANO)])
    assert report == VerifyReport(ok=True, accounts_checked=1, open_holds=0, entries_read=1)


def test_hold_rows_the_journal_never_placed_are_a_mismatch() -> None:
    report = verify([account(held=NANO)], [open_hold("h1", usd=NANO)], [])
    assert report.mismatches == [
        Mismatch(
            "user:a",
            "usd",
            "total",
            "held",
            0,
            NANO,
            "the journal's open holds disagree with the hold rows",
        )
    ]
