"""The core's decisions, driven directly over a plain dictionary state.

Each test pins one decision of ``capledger._core.decide`` exactly: the outcome, the records
changed, the journal entries and the events. Written against the survivors of mutation
testing (docs/testing.md): each one fails if a comparison, a default or an argument of the
decision it covers is changed.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from decimal import Decimal

import pytest

from capledger._core import (
    Account,
    Config,
    Entry,
    EntryFields,
    Event,
    Extend,
    HoldRecord,
    Inspect,
    Outcome,
    Release,
    RemoveLimit,
    Reserve,
    SetLimit,
    Settle,
    Sweep,
    apply_batch,
    apply_isolated,
    apply_one,
    reads,
)
from capledger._core.decide import _DECISIONS, _refusal
from capledger.bounds import COUNTER_STORAGE_MAX, MAX_AMOUNT, MAX_COUNTER
from capledger.errors import (
    BudgetExceeded,
    CounterLimitReached,
    HoldClosed,
    HoldNotFound,
    IdempotentHoldClosed,
    InvalidAmount,
    LedgerInvariantError,
)

NOW_US = 1_767_614_400_000_000  # 2026-01-05 12:00 UTC, a Monday
SECOND_US = 1_000_000
HOUR_US = 3_600 * SECOND_US
NANO = 1_000_000_000  # nano-USD per USD


class Rows:
    """The core's ``State`` over plain dictionaries, recording what the core marks changed."""

    def __init__(self) -> None:
        self.by_scope: dict[str, list[Account]] = {}
        self.holds: dict[str, HoldRecord] = {}
        self.journal: list[EntryFields] = []
        self.changed_accounts: set[tuple[str, str, str]] = set()
        self.changed_holds: set[str] = set()

    def accounts(self, scope: str) -> list[Account]:
        return self.by_scope.setdefault(scope, [])

    def add_account(self, account: Account) -> None:
        self.by_scope.setdefault(account.scope, []).append(account)

    def remove_account(self, account: Account) -> None:
        self.by_scope[account.scope].remove(account)

    def account_changed(self, account: Account) -> None:
        self.changed_accounts.add(account.key)

    def hold(self, hold_id: str) -> HoldRecord | None:
        return self.holds.get(hold_id)

    def hold_by_request(self, request_id: str) -> HoldRecord | None:
        return next((h for h in self.holds.values() if h.request_id == request_id), None)

    def add_hold(self, hold: HoldRecord) -> None:
        self.holds[hold.id] = hold

    def hold_changed(self, hold: HoldRecord) -> None:
        self.changed_holds.add(hold.id)

    def overdue_holds(self, now_us: int, limit: int) -> list[HoldRecord]:
        overdue = [h for h in self.holds.values() if h.state == "open" and h.expires_us <= now_us]
        return sorted(overdue, key=lambda h: h.expires_us)[:limit]

    def open_holds_on(self, scope: str) -> list[HoldRecord]:
        return [h for h in self.holds.values() if h.state == "open" and scope in h.scopes]

    def spent_since(self, scope: str, unit: str, since_us: int) -> int:
        return sum(
            entry[5].get(unit, 0)
            for entry in self.journal
            if entry[1] == "settled" and scope in entry[4] and entry[0] >= since_us
        )

    def append(self, entry: EntryFields) -> None:
        self.journal.append(entry)

    # --- helpers for the tests -----------------------------------------------------------

    def account(self, scope: str, unit: str = "usd", period: str = "total") -> Account:
        found = [a for a in self.accounts(scope) if a.unit == unit and a.period == period]
        assert len(found) == 1, found
        return found[0]

    def forget_changes(self) -> None:
        self.changed_accounts.clear()
        self.changed_holds.clear()


def reserve(
    hold_id: str,
    scopes: tuple[str, ...] = ("user:a",),
    *,
    ttl_s: int = 60,
    request_id: str | None = None,
    fingerprint: str = "",
    **amounts: int,
) -> Reserve:
    return Reserve(hold_id, scopes, amounts, ttl_s * SECOND_US, request_id, {}, fingerprint)


def run(rows: Rows, op: object, now_us: int = NOW_US, config: Config | None = None) -> Outcome:
    """One decision alone, without the lazy expiry the batch drivers do first."""
    return _DECISIONS[type(op)](rows, op, now_us, config or Config(), now_us)


def held(rows: Rows, scope: str = "user:a", unit: str = "usd") -> int:
    return rows.account(scope, unit).held


# --- dispatch --------------------------------------------------------------------------------


def test_apply_dispatches_a_sweep_that_expires_up_to_its_limit_oldest_first() -> None:
    rows = Rows()
    run(rows, reserve("h_late", ttl_s=20, usd=NANO))
    run(rows, reserve("h_early", ttl_s=10, usd=2 * NANO))
    outcome = run(rows, Sweep(limit=1), NOW_US + 30 * SECOND_US)
    assert outcome.value == 1
    assert (rows.holds["h_early"].state, rows.holds["h_late"].state) == ("expired", "open")
    assert held(rows) == NANO
    assert rows.holds["h_early"].closed_us == NOW_US + 30 * SECOND_US
    assert rows.journal[-1] == (
        NOW_US + 30 * SECOND_US,
        "expired",
        "h_early",
        None,
        ("user:a",),
        {"usd": 2 * NANO},
        {},
        "",
    )


def test_reads_refuses_what_is_not_an_operation() -> None:
    with pytest.raises(LedgerInvariantError):
        reads([Sweep(limit=1), "reserve"])  # type: ignore[list-item]


def test_apply_passes_the_time_through() -> None:
    rows = Rows()
    outcome = run(rows, reserve("h1", ttl_s=5, usd=NANO), NOW_US + 7)
    assert outcome.hold is not None
    assert (outcome.hold.created_us, outcome.hold.expires_us) == (
        NOW_US + 7,
        NOW_US + 7 + 5_000_000,
    )


def test_a_batch_and_a_single_operation_both_expire_first() -> None:
    for drive in ("batch", "one"):
        rows = Rows()
        run(rows, reserve("h1", ttl_s=1, usd=NANO))
        later = NOW_US + 2 * SECOND_US
        op = reserve("h2", usd=3 * NANO)
        if drive == "batch":
            outcomes = apply_batch(rows, [op, Sweep(limit=10)], later, Config())
            assert outcomes[1].value == 1  # the batch's own expiry is counted by its sweep
        else:
            apply_one(rows, op, later, Config())
        assert rows.holds["h1"].state == "expired", drive
        assert held(rows) == 3 * NANO, drive


# --- events ----------------------------------------------------------------------------------


def listening(*kinds: str) -> Config:
    return Config(listened=frozenset(kinds))


def test_a_release_announces_the_amounts_it_gave_back() -> None:
    rows = Rows()
    run(rows, reserve("h1", ("user:a", "team:t"), usd=250_000_000, tokens=40))
    outcome = run(rows, Release("h1"), NOW_US + 5, listening("released"))
    assert outcome.events == [
        Event(
            "released",
            NOW_US + 5,
            hold_id="h1",
            scopes=("user:a", "team:t"),
            amounts={"usd": Decimal("0.25"), "tokens": 40},
        )
    ]
    assert run(Rows(), reserve("h2", usd=1)).events is None


def test_a_settle_announces_the_actual_amounts_when_listened_to() -> None:
    rows = Rows()
    run(rows, reserve("h1", usd=NANO))
    outcome = run(rows, Settle("h1", {"usd": 300_000_000}, {}), NOW_US + 9, listening("settled"))
    assert outcome.events == [
        Event(
            "settled",
            NOW_US + 9,
            hold_id="h1",
            scopes=("user:a",),
            amounts={"usd": Decimal("0.3")},
        )
    ]


def test_extending_an_overdue_hold_expires_it_and_says_so() -> None:
    rows = Rows()
    run(rows, reserve("h1", ttl_s=10, usd=NANO))
    at = NOW_US + 10 * SECOND_US  # exactly at its expiry: overdue
    outcome = run(rows, Extend("h1", {"usd": 1}, None), at)
    assert isinstance(outcome.error, HoldClosed)
    assert outcome.hold is None
    assert outcome.events == [
        Event("expired", at, hold_id="h1", scopes=("user:a",), amounts={"usd": Decimal(1)})
    ]
    assert rows.holds["h1"].state == "expired"
    assert rows.holds["h1"].closed_us == at
    assert held(rows) == 0
    assert [entry[1] for entry in rows.journal] == ["reserved", "expired"]


def test_releasing_an_overdue_hold_expires_it_and_says_so() -> None:
    rows = Rows()
    run(rows, reserve("h1", ttl_s=10, tokens=7))
    at = NOW_US + 11 * SECOND_US
    outcome = run(rows, Release("h1"), at, listening("released"))
    assert outcome.error is None
    assert outcome.hold is not None
    assert outcome.hold.state == "expired"  # already given back: no second release
    assert outcome.events == [
        Event("expired", at, hold_id="h1", scopes=("user:a",), amounts={"tokens": 7})
    ]
    assert [entry[1] for entry in rows.journal] == ["reserved", "expired"]


# --- extend ----------------------------------------------------------------------------------


def test_extending_an_unknown_hold_is_not_found() -> None:
    outcome = run(Rows(), Extend("h_missing", {"usd": 1}, None))
    assert isinstance(outcome.error, HoldNotFound)
    assert outcome.hold is None


def test_an_extension_may_reach_the_amount_bound_but_not_pass_it() -> None:
    bound = MAX_AMOUNT["tokens"]
    rows = Rows()
    run(rows, reserve("h1", tokens=bound - 5))
    outcome = run(rows, Extend("h1", {"tokens": 5}, None))
    assert outcome.error is None
    assert rows.holds["h1"].amounts == {"tokens": bound}

    journal = list(rows.journal)
    outcome = run(rows, Extend("h1", {"tokens": 1}, None))
    assert isinstance(outcome.error, InvalidAmount)
    assert rows.holds["h1"].amounts == {"tokens": bound}
    assert held(rows, unit="tokens") == bound
    assert rows.journal == journal


def test_an_extension_may_add_a_unit_the_hold_did_not_have() -> None:
    bound = MAX_AMOUNT["tokens"]
    rows = Rows()
    run(rows, reserve("h1", usd=NANO))
    outcome = run(rows, Extend("h1", {"tokens": bound}, 30 * SECOND_US))
    assert outcome.error is None
    assert outcome.hold is not None
    assert outcome.hold.amounts == {"usd": NANO, "tokens": bound}
    assert outcome.hold.expires_us == NOW_US + 60 * SECOND_US  # an expiry never moves back
    assert (held(rows), held(rows, unit="tokens")) == (NANO, bound)
    assert rows.journal[-1] == (
        NOW_US,
        "extended",
        "h1",
        None,
        ("user:a",),
        {"tokens": bound},
        {},
        "",
    )


# --- limits ----------------------------------------------------------------------------------


def test_removing_a_windowed_limit_deletes_its_account_and_journals_it() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "day", 5 * NANO, "UTC"))
    run(rows, SetLimit("user:a", "usd", "total", 9 * NANO, "UTC"))
    journal = len(rows.journal)
    outcome = run(rows, RemoveLimit("user:a", "usd", "day"), NOW_US + 3)
    assert outcome.value is True
    assert [a.period for a in rows.accounts("user:a")] == ["total"]
    assert rows.account("user:a").cap == 9 * NANO
    assert rows.journal[journal:] == [
        (NOW_US + 3, "limit_removed", None, None, ("user:a",), {"usd": 0}, {"period": "day"}, "")
    ]


def test_removing_the_total_limit_keeps_the_lifetime_spend() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "total", 5 * NANO, "UTC"))
    run(rows, SetLimit("user:a", "usd", "day", 5 * NANO, "UTC"))
    run(rows, reserve("h1", usd=2 * NANO))
    run(rows, Settle("h1", {}, {}))
    rows.forget_changes()
    outcome = run(rows, RemoveLimit("user:a", "usd", "total"))
    assert outcome.value is True
    total = rows.account("user:a")
    assert (total.cap, total.spent) == (None, 2 * NANO)
    assert rows.account("user:a", period="day").cap == 5 * NANO
    assert rows.changed_accounts == {("user:a", "usd", "total")}
    assert rows.journal[-1][1] == "limit_removed"


def test_removing_a_limit_that_is_not_there_changes_nothing() -> None:
    rows = Rows()
    run(rows, reserve("h1", usd=NANO))  # an uncapped total exists: not a limit
    journal = list(rows.journal)
    assert run(rows, RemoveLimit("user:a", "usd", "total")).value is False
    assert run(rows, RemoveLimit("user:a", "usd", "day")).value is False
    assert rows.journal == journal


def test_a_refused_reserve_changes_nothing() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "total", NANO, "UTC"))
    run(rows, reserve("h1", usd=NANO))
    rows.forget_changes()
    journal = list(rows.journal)
    outcome = run(rows, reserve("h2", ("team:t", "user:a"), usd=1))
    assert isinstance(outcome.error, BudgetExceeded)
    assert "h2" not in rows.holds
    assert rows.journal == journal
    assert held(rows) == NANO


def test_an_extension_rolls_a_passed_window_over_before_it_holds() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "day", 5 * NANO, "UTC"))
    run(rows, reserve("h0", usd=2 * NANO))
    run(rows, Settle("h0", {}, {}))
    evening = NOW_US + 12 * HOUR_US - 30 * SECOND_US  # 23:59:30
    run(rows, reserve("h1", ttl_s=60, usd=NANO), evening)
    after_midnight = evening + 40 * SECOND_US
    outcome = run(rows, Extend("h1", {"usd": NANO}, None), after_midnight)
    assert outcome.error is None
    day = rows.account("user:a", period="day")
    assert (day.window_start_us, day.spent, day.held) == (NOW_US + 12 * HOUR_US, 0, 2 * NANO)


def test_a_refused_extension_says_when_the_window_resets_and_changes_nothing() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "day", 5 * NANO, "UTC"))
    run(rows, reserve("h0", usd=3 * NANO))
    run(rows, Settle("h0", {}, {}))
    run(rows, reserve("h1", usd=NANO))
    rows.forget_changes()
    journal = list(rows.journal)
    outcome = run(rows, Extend("h1", {"usd": 2 * NANO}, 600 * SECOND_US), NOW_US + 10)
    assert isinstance(outcome.error, BudgetExceeded)
    # The spend resets at midnight, and the hold plus the top-up fit under the cap then.
    assert outcome.error.retry_after == timedelta(microseconds=12 * HOUR_US - 10)
    assert (outcome.error.requested, outcome.error.available) == (Decimal(2), Decimal(1))
    assert rows.holds["h1"].amounts == {"usd": NANO}
    assert rows.holds["h1"].expires_us == NOW_US + 60 * SECOND_US
    assert held(rows) == NANO
    assert rows.journal == journal
    assert rows.changed_holds == set()


def test_a_release_closes_the_hold_and_journals_its_amounts() -> None:
    rows = Rows()
    run(rows, reserve("h1", ("user:a", "team:t"), request_id="r1", usd=NANO))
    outcome = run(rows, Release("h1"), NOW_US + 4)
    assert outcome.hold is not None
    assert (outcome.hold.state, outcome.hold.closed_us) == ("released", NOW_US + 4)
    assert rows.changed_holds == {"h1"}
    assert (held(rows), held(rows, "team:t")) == (0, 0)
    assert rows.journal[-1] == (
        NOW_US + 4,
        "released",
        "h1",
        "r1",
        ("user:a", "team:t"),
        {"usd": NANO},
        {},
        "",
    )
    assert isinstance(run(rows, Release("h_missing")).error, HoldNotFound)


# --- thresholds ------------------------------------------------------------------------------


def threshold(at_us: int, scope: str, fraction: float, spent: str, cap: str) -> Event:
    return Event(
        "threshold",
        at_us,
        scope=scope,
        unit="usd",
        period="total",
        fraction=fraction,
        amounts={"spent": Decimal(spent), "cap": Decimal(cap)},
    )


def test_a_threshold_is_announced_when_spend_reaches_it_exactly() -> None:
    rows = Rows()
    run(rows, SetLimit("team:t", "usd", "total", 10 * NANO, "UTC"))
    # user:a comes first and has no cap: it is skipped, not the end of the search.
    run(rows, reserve("h1", ("user:a", "team:t"), usd=9 * NANO))
    outcome = run(rows, Settle("h1", {"usd": 8 * NANO}, {}), NOW_US + 3)
    assert outcome.events == [threshold(NOW_US + 3, "team:t", 0.8, "8", "10")]
    assert rows.account("team:t").alert_bp == 8000


def test_a_threshold_is_not_announced_a_nano_dollar_early() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "total", 100_000, "UTC"))  # a cap of 100000 nano-USD
    run(rows, reserve("h1", usd=94_999))
    outcome = run(rows, Settle("h1", {}, {}), NOW_US)
    # 94.999% of the cap: the 80% threshold is crossed, the 95% one is not.
    assert outcome.events == [threshold(NOW_US, "user:a", 0.8, "0.000094999", "0.0001")]


# --- windows and refusals --------------------------------------------------------------------


def test_inspect_hands_out_copies_with_every_field() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "30d", 10 * NANO, "UTC"), NOW_US - 5)
    run(rows, reserve("h1", usd=9 * NANO))
    run(rows, Settle("h1", {}, {}))
    live = rows.account("user:a", period="30d")
    copies = run(rows, Inspect("user:a")).value
    assert [a.period for a in copies] == ["30d", "total"]  # type: ignore[attr-defined]
    copy = copies[0]  # type: ignore[index]
    assert copy is not live
    assert (copy.key, copy.cap, copy.spent, copy.held, copy.tz) == (
        ("user:a", "usd", "30d"),
        10 * NANO,
        9 * NANO,
        0,
        "UTC",
    )
    assert (copy.window_start_us, copy.window_end_us) == (
        NOW_US - 5,
        NOW_US - 5 + 30 * 86_400 * SECOND_US,
    )
    assert (copy.anchor_us, copy.alert_bp) == (NOW_US - 5, 8000)


def test_a_window_rolls_over_at_its_end_exactly_and_forgets_its_alerts() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "day", 10 * NANO, "UTC"))
    run(rows, reserve("h1", usd=9 * NANO))
    run(rows, Settle("h1", {}, {}))
    run(rows, reserve("h2", ttl_s=86_400, usd=NANO))
    midnight = NOW_US + 12 * HOUR_US
    rows.forget_changes()
    accounts = run(rows, Inspect("user:a"), midnight - 1).value
    day = next(a for a in accounts if a.period == "day")  # type: ignore[attr-defined]
    assert (day.window_end_us, day.spent, day.alert_bp) == (midnight, 9 * NANO, 8000)
    assert rows.changed_accounts == set()
    accounts = run(rows, Inspect("user:a"), midnight).value
    day = next(a for a in accounts if a.period == "day")  # type: ignore[attr-defined]
    assert (day.window_start_us, day.spent, day.held, day.alert_bp) == (midnight, 0, NANO, 0)
    assert rows.changed_accounts == {("user:a", "usd", "day")}


def test_a_refusal_says_when_to_retry_only_if_a_reset_would_help() -> None:
    def refused(spent: int, held: int, amount: int) -> BudgetExceeded:
        rows = Rows()
        run(rows, SetLimit("user:a", "usd", "day", 5 * NANO, "UTC"))
        if spent:
            run(rows, reserve("h_spent", usd=spent))
            run(rows, Settle("h_spent", {}, {}))
        if held:
            run(rows, reserve("h_held", usd=held))
        outcome = run(rows, reserve("h_new", usd=amount), NOW_US + 1)
        assert isinstance(outcome.error, BudgetExceeded)
        assert "h_new" not in rows.holds
        return outcome.error

    to_midnight = timedelta(microseconds=12 * HOUR_US - 1)
    # Held money fills the cap on its own: a new window would not help.
    assert refused(0, 4 * NANO, 2 * NANO).retry_after is None
    # The holds and the request fit the cap exactly once the spend resets.
    error = refused(3 * NANO, 2 * NANO, 3 * NANO)
    assert error.retry_after == to_midnight
    assert (error.requested, error.available) == (Decimal(3), Decimal(0))
    assert refused(3 * NANO, 0, 3 * NANO).available == Decimal(2)


def test_explaining_a_refusal_that_is_not_one_is_a_bug() -> None:
    full = Account("user:a", "usd", "total", 5, 2, 1, 0, None, "UTC", 0)
    with pytest.raises(LedgerInvariantError):
        _refusal(full, 2, NOW_US)  # 2 + 1 + 2 == 5: it fits exactly
    uncapped = Account("user:a", "usd", "total", None, 2, 1, 0, None, "UTC", 0)
    with pytest.raises(LedgerInvariantError):
        _refusal(uncapped, 10**18, NOW_US)
    assert _refusal(full, 3, NOW_US).available == Decimal("2E-9")


def test_settling_an_overdue_hold_expires_it_first_and_records_the_spend_late() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "total", 10 * NANO, "UTC"))
    run(rows, reserve("h1", ttl_s=10, usd=2 * NANO))
    at = NOW_US + 10 * SECOND_US
    outcome = run(rows, Settle("h1", {"usd": NANO}, {}), at)
    assert outcome.error is None
    assert outcome.hold is not None
    assert (outcome.hold.state, outcome.hold.flags) == ("settled", "late")
    assert outcome.events == [
        Event("expired", at, hold_id="h1", scopes=("user:a",), amounts={"usd": Decimal(2)})
    ]
    total = rows.account("user:a")
    assert (total.spent, total.held) == (NANO, 0)
    assert [entry[1] for entry in rows.journal] == ["limit_set", "reserved", "expired", "settled"]


# --- settle ----------------------------------------------------------------------------------


def test_a_settle_within_the_hold_and_exactly_at_the_cap_is_no_overrun() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "total", 2 * NANO, "UTC"))
    run(rows, reserve("h1", usd=2 * NANO))
    outcome = run(rows, Settle("h1", {}, {"model": "m1"}), NOW_US + 8)
    assert outcome.hold is not None
    assert (outcome.hold.state, outcome.hold.flags, outcome.hold.closed_us) == (
        "settled",
        "",
        NOW_US + 8,
    )
    assert rows.journal[-1] == (
        NOW_US + 8,
        "settled",
        "h1",
        None,
        ("user:a",),
        {"usd": 2 * NANO},
        {"model": "m1"},
        "",
    )
    total = rows.account("user:a")
    assert (total.spent, total.held) == (2 * NANO, 0)


def test_a_settle_above_the_hold_is_an_overrun_even_without_a_cap() -> None:
    rows = Rows()
    run(rows, reserve("h1", usd=NANO))
    # tokens were not held at all: all of them are beyond the hold
    outcome = run(rows, Settle("h1", {"usd": 3 * NANO, "tokens": 1}, {}), NOW_US + 2)
    assert outcome.hold is not None
    assert outcome.hold.flags == "overrun"
    assert outcome.hold.settled == {"usd": 3 * NANO, "tokens": 1}
    assert rows.journal[-1] == (
        NOW_US + 2,
        "overrun",
        "h1",
        None,
        ("user:a",),
        {"usd": 2 * NANO, "tokens": 1},
        {},
        "overrun",
    )
    assert outcome.events == [
        Event(
            "overrun",
            NOW_US + 2,
            hold_id="h1",
            scopes=("user:a",),
            amounts={"usd": Decimal(2), "tokens": 1},
            detail="settled above the hold",
        )
    ]


def test_an_overrun_past_the_cap_names_every_account_it_passed() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "day", 2 * NANO, "UTC"))
    run(rows, SetLimit("team:t", "usd", "total", 2 * NANO, "UTC"))
    run(rows, reserve("h1", ("user:a", "team:t"), usd=2 * NANO))
    outcome = run(rows, Settle("h1", {"usd": 3 * NANO}, {}), NOW_US + 1)
    assert outcome.events is not None
    overrun = next(event for event in outcome.events if event.kind == "overrun")
    assert overrun.detail == "over cap: user:a usd/day, team:t usd/total"
    assert overrun.amounts == {"usd": Decimal(1)}


def test_a_late_settle_is_flagged_an_overrun_only_past_the_cap() -> None:
    def late_settle(cap: int, actual: int) -> str:
        rows = Rows()
        run(rows, SetLimit("user:a", "usd", "total", cap, "UTC"))
        run(rows, reserve("h1", ttl_s=1, usd=NANO))
        outcome = run(rows, Settle("h1", {"usd": actual}, {}), NOW_US + 5 * SECOND_US)
        assert outcome.hold is not None
        return outcome.hold.flags

    assert late_settle(5 * NANO, 2 * NANO) == "late"  # above the hold, but it had expired
    assert late_settle(NANO, 2 * NANO) == "late,overrun"


def test_settling_a_settled_hold_differently_is_refused_with_how_it_settled() -> None:
    rows = Rows()
    run(rows, reserve("h1", usd=NANO))
    run(rows, Settle("h1", {"usd": 300_000_000}, {}))
    journal = list(rows.journal)
    again = run(rows, Settle("h1", {"usd": 300_000_000}, {}))
    assert again.error is None  # the same settle twice is a no-op
    different = run(rows, Settle("h1", {"usd": 400_000_000}, {}))
    assert isinstance(different.error, HoldClosed)
    assert (different.error.hold_id, different.error.state) == ("h1", "settled")
    assert different.error.settled == {"usd": Decimal("0.3")}
    assert rows.journal == journal
    assert isinstance(run(rows, Settle("h_missing", {}, {})).error, HoldNotFound)


def test_a_threshold_set_by_another_ledger_is_checked_in_full() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "total", 10 * NANO, "UTC"))
    rows.account("user:a").alert_bp = 5000  # announced by a ledger with a 50% threshold
    run(rows, reserve("h1", usd=9 * NANO))
    outcome = run(rows, Settle("h1", {"usd": 8_500_000_000}, {}), NOW_US)
    assert outcome.events == [threshold(NOW_US, "user:a", 0.8, "8.5", "10")]


def test_past_the_last_threshold_a_settle_announces_nothing_more() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "total", 10 * NANO, "UTC"))
    run(rows, reserve("h1", usd=9_600_000_000))
    first = run(rows, Settle("h1", {}, {}), NOW_US)
    assert first.events == [
        threshold(NOW_US, "user:a", 0.8, "9.6", "10"),
        threshold(NOW_US, "user:a", 0.95, "9.6", "10"),
    ]
    run(rows, reserve("h2", usd=NANO // 10))
    assert run(rows, Settle("h2", {}, {}), NOW_US).events is None


def test_a_corrupted_counter_is_an_invariant_error_not_a_negative_balance() -> None:
    for close in (Release("h1"), Settle("h1", {}, {})):
        rows = Rows()
        run(rows, reserve("h1", usd=NANO))
        rows.account("user:a").held = NANO - 1  # less than the open hold it should contain
        with pytest.raises(LedgerInvariantError):
            run(rows, close)


# --- set_limit -------------------------------------------------------------------------------


def test_setting_a_limit_journals_it_and_starts_from_the_truth() -> None:
    rows = Rows()
    run(rows, reserve("h0", usd=NANO))
    run(rows, Settle("h0", {}, {}))
    run(rows, reserve("h1", usd=2 * NANO))
    run(rows, reserve("h2", tokens=50))  # holds no usd
    outcome = run(rows, SetLimit("user:a", "usd", "day", 9 * NANO, "Europe/Paris"), NOW_US + 1)
    assert outcome.value is True
    day = rows.account("user:a", period="day")
    assert (day.cap, day.spent, day.held, day.tz) == (9 * NANO, NANO, 2 * NANO, "Europe/Paris")
    entry = rows.journal[-1]
    assert entry[:6] == (NOW_US + 1, "limit_set", None, None, ("user:a",), {"usd": 9 * NANO})
    assert (entry[6]["period"], entry[6]["tz"], entry[7]) == ("day", "Europe/Paris", "")
    assert entry[6]["spent"] == str(NANO)  # where an audit of this window starts


def test_a_new_cap_keeps_the_window_and_what_it_announced() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "30d", 10 * NANO, "UTC"))
    run(rows, reserve("h1", usd=9 * NANO))
    run(rows, Settle("h1", {}, {}))
    later = NOW_US + 5 * HOUR_US
    assert run(rows, SetLimit("user:a", "usd", "30d", 20 * NANO, "UTC"), later).value is True
    account = rows.account("user:a", period="30d")
    assert (account.cap, account.spent, account.anchor_us, account.alert_bp) == (
        20 * NANO,
        9 * NANO,
        NOW_US,
        8000,
    )
    assert account.window_start_us == NOW_US


def test_a_new_cap_after_the_window_ended_applies_to_the_new_window() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "day", 10 * NANO, "UTC"))
    run(rows, reserve("h1", usd=9 * NANO))
    run(rows, Settle("h1", {}, {}))
    tomorrow = NOW_US + 24 * HOUR_US
    run(rows, SetLimit("user:a", "usd", "day", 5 * NANO, "UTC"), tomorrow)
    day = rows.account("user:a", period="day")
    assert (day.cap, day.spent, day.window_start_us) == (5 * NANO, 0, NOW_US + 12 * HOUR_US)


def test_a_new_time_zone_keeps_the_windows_start_and_spend() -> None:
    rows = Rows()
    midnight_utc = NOW_US - 12 * HOUR_US
    run(rows, SetLimit("user:a", "usd", "day", 10 * NANO, "UTC"))
    run(rows, reserve("h1", usd=NANO))
    run(rows, Settle("h1", {}, {}))
    day = rows.account("user:a", period="day")
    # New York's day ends 5 hours after UTC's: the current window stretches to it.
    run(rows, SetLimit("user:a", "usd", "day", 10 * NANO, "America/New_York"))
    assert rows.account("user:a", period="day") is day  # changed in place
    assert (day.tz, day.spent, day.window_start_us, day.window_end_us) == (
        "America/New_York",
        NANO,
        midnight_utc,
        midnight_utc + 29 * HOUR_US,
    )


def test_the_lifetime_total_keeps_its_account_whatever_the_time_zone() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "total", 10 * NANO, "UTC"))
    run(rows, reserve("h1", usd=9 * NANO))
    run(rows, Settle("h1", {}, {}))
    run(rows, SetLimit("user:a", "usd", "total", 20 * NANO, "Asia/Kolkata"))
    total = rows.account("user:a")
    assert (total.cap, total.spent, total.tz, total.alert_bp) == (20 * NANO, 9 * NANO, "UTC", 8000)


def test_an_entry_keeps_what_it_is_given_and_has_no_flags_by_default() -> None:
    entry = Entry(NOW_US, "reserved", "h1", "r1", ("user:a",), {"usd": 1}, {"k": "v"})
    assert (entry.ts_us, entry.kind, entry.hold_id, entry.request_id) == (
        NOW_US,
        "reserved",
        "h1",
        "r1",
    )
    assert (entry.scopes, entry.amounts, entry.tags, entry.flags) == (
        ("user:a",),
        {"usd": 1},
        {"k": "v"},
        "",
    )


# --- batches and retries ---------------------------------------------------------------------


def test_a_batch_is_decided_again_without_an_operation_that_raised() -> None:
    stored = Rows()
    run(stored, SetLimit("user:a", "usd", "total", 5 * NANO, "UTC"))
    # An amount of the wrong type, past the ledger's checks: the decision creates the
    # scope's accounts, then raises. Nothing it did may be kept.
    broken = Reserve("h_bad", ("team:bad", "user:a"), {"usd": "1"}, SECOND_US, None, {}, "")  # type: ignore[dict-item]
    ops = [reserve("h1", usd=NANO), broken, reserve("h2", usd=2 * NANO)]
    state, outcomes = apply_isolated(lambda: copy.deepcopy(stored), ops, NOW_US, Config())
    assert isinstance(outcomes[1].error, TypeError)
    assert [outcome.error for outcome in (outcomes[0], outcomes[2])] == [None, None]
    assert "team:bad" not in state.by_scope
    assert state.account("user:a").held == 3 * NANO
    assert sorted(state.holds) == ["h1", "h2"]


def test_a_batch_with_no_failure_is_decided_once() -> None:
    runs: list[Rows] = []

    def fresh() -> Rows:
        runs.append(Rows())
        return runs[-1]

    state, outcomes = apply_isolated(
        fresh, [reserve("h1", usd=1), reserve("h2", usd=2)], NOW_US, Config()
    )
    assert (len(runs), state) == (1, runs[0])
    assert [outcome.hold.id for outcome in outcomes] == ["h1", "h2"]  # type: ignore[union-attr]


def test_retrying_a_request_whose_hold_has_closed_says_how_it_closed() -> None:
    rows = Rows()
    run(rows, reserve("h1", request_id="r1", fingerprint="f", usd=NANO, tokens=10))
    run(rows, Settle("h1", {"usd": 300_000_000}, {}))
    outcome = run(rows, reserve("h_retry", request_id="r1", fingerprint="f", usd=NANO, tokens=10))
    error = outcome.error
    assert isinstance(error, IdempotentHoldClosed)
    assert (error.request_id, error.hold_id, error.state) == ("r1", "h1", "settled")
    assert error.settled == {"usd": Decimal("0.3"), "tokens": 10}
    assert outcome.hold is not None
    assert outcome.hold.id == "h1"
    assert "h_retry" not in rows.holds


def test_an_uncapped_counter_full_to_its_bound_has_nothing_available() -> None:
    rows = Rows()
    run(rows, reserve("h0", tokens=1))
    rows.account("user:a", "tokens").spent = MAX_COUNTER - 1  # one open token: full
    outcome = run(rows, reserve("h1", tokens=1))
    assert isinstance(outcome.error, CounterLimitReached)
    assert (outcome.error.requested, outcome.error.available) == (1, 0)
    assert "h1" not in rows.holds


def test_a_settle_may_fill_a_counters_storage_exactly_but_not_pass_it() -> None:
    def settle_onto(spent: int, at_us: int = NOW_US) -> Outcome:
        rows = Rows()
        run(rows, reserve("h1", ttl_s=1, tokens=10))
        rows.account("user:a", "tokens").spent = spent
        return run(rows, Settle("h1", {}, {}), at_us)

    assert settle_onto(COUNTER_STORAGE_MAX - 10).error is None
    refused = settle_onto(COUNTER_STORAGE_MAX - 9)
    assert isinstance(refused.error, CounterLimitReached)
    assert refused.events is None
    # Refused after the hold expired: the expiry stands, and is announced.
    late = settle_onto(COUNTER_STORAGE_MAX - 9, NOW_US + 2 * SECOND_US)
    assert isinstance(late.error, CounterLimitReached)
    assert late.events == [
        Event(
            "expired",
            NOW_US + 2 * SECOND_US,
            hold_id="h1",
            scopes=("user:a",),
            amounts={"tokens": 10},
        )
    ]


def test_a_hold_copy_carries_every_field_and_later_changes_do_not_reach_it() -> None:
    hold = HoldRecord(
        "h1",
        "r1",
        ("user:a",),
        {"usd": 5},
        "settled",
        NOW_US,
        NOW_US + 60,
        {"k": "v"},
        "fp",
        settled={"usd": 4},
        closed_us=NOW_US + 9,
        flags="late",
    )
    assert (hold.settled, hold.closed_us, hold.flags) == ({"usd": 4}, NOW_US + 9, "late")
    twin = hold.copy()
    fields = [
        "id", "request_id", "scopes", "amounts", "state", "created_us", "expires_us", "tags",
        "fingerprint", "settled", "closed_us", "flags",
    ]  # fmt: skip
    assert [getattr(twin, name) for name in fields] == [getattr(hold, name) for name in fields]
    hold.state = "open"
    assert twin.state == "settled"


def test_the_total_a_first_reserve_creates_is_uncapped_and_in_utc() -> None:
    rows = Rows()
    run(rows, reserve("h1", usd=1))
    total = rows.account("user:a")
    assert (total.cap, total.tz, total.window_start_us, total.window_end_us) == (
        None,
        "UTC",
        0,
        None,
    )


def test_a_retried_hold_id_returns_the_hold_it_made_in_any_state() -> None:
    rows = Rows()
    first = run(rows, reserve("h1", usd=NANO))
    again = run(rows, reserve("h1", usd=NANO))
    assert (again.error, again.hold.id) == (None, "h1")  # type: ignore[union-attr]
    assert again.hold is not first.hold
    assert held(rows) == NANO
    assert rows.journal == [(NOW_US, "reserved", "h1", None, ("user:a",), {"usd": NANO}, {}, "")]
    assert (first.hold.flags, first.hold.closed_us, first.hold.settled) == ("", None, None)  # type: ignore[union-attr]
    run(rows, Settle("h1", {}, {}))
    after_settle = run(rows, reserve("h1", usd=NANO))
    assert after_settle.error is None  # the store's own retry, not a caller's: no error
    assert after_settle.hold is not None
    assert after_settle.hold.state == "settled"


def test_a_refused_reserve_announces_the_denial() -> None:
    rows = Rows()
    run(rows, SetLimit("team:t", "usd", "day", NANO, "UTC"))
    outcome = run(rows, reserve("h1", ("user:a", "team:t"), usd=1_010_000_000), NOW_US + 6)
    assert isinstance(outcome.error, BudgetExceeded)
    assert outcome.events == [
        Event(
            "denied",
            NOW_US + 6,
            scopes=("user:a", "team:t"),
            amounts={"usd": Decimal("1.01")},
            scope="team:t",
            unit="usd",
            period="day",
            detail=str(outcome.error),
        )
    ]


def test_each_sweep_of_a_batch_counts_only_what_it_expired() -> None:
    rows = Rows()
    run(rows, reserve("h1", ttl_s=1, usd=1))
    later = NOW_US + 2 * SECOND_US
    outcomes = apply_batch(rows, [Sweep(limit=10), Sweep(limit=10)], later, Config())
    assert [outcome.value for outcome in outcomes] == [1, 0]


def test_a_batch_of_one_operation_uses_the_ledgers_settings() -> None:
    rows = Rows()
    run(rows, SetLimit("user:a", "usd", "total", 10 * NANO, "UTC"))
    run(rows, reserve("h1", usd=9 * NANO))
    (outcome,) = apply_batch(rows, [Settle("h1", {}, {})], NOW_US, listening("settled"))
    assert [event.kind for event in outcome.events or []] == ["settled", "threshold"]
