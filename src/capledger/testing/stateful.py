"""A hypothesis state machine that drives a ledger against a plain model.

The model is written independently of the core, as plainly as possible: dictionaries of
integers per unit, a list of settles, and the rules of DESIGN.md section 2 spelled out. The
machine draws every operation the ledger has, through its public API and, in batches,
through its store's batch path (``Store.execute``, several operations in one atomic step,
each outcome checked against the model applying them in order):

* reserve without a request id, with a fresh one, again with the same terms (the same hold,
  or ``IdempotentHoldClosed`` once it closed) and with different terms
  (``IdempotencyConflict``); in usd, tokens and requests, on one to three scopes;
* extend (amounts and/or TTL), observe (running totals that extend the hold), settle (again
  with the same amounts: a no-op; different ones: ``HoldClosed``), release, leaving a
  hold's ``with`` block (settled at what was observed, released after a failure);
* expiry (the clock passes a TTL: lazily at the next operation, or by ``sweep``, whose
  count is checked), NTP steps of the wall clock alone;
* set and remove limits on every unit, over total, every calendar period (UTC) and 90-minute
  windows; ``balance`` and ``report`` (by scope, and by scope and unit) through the API.

After every step the ledger's balances must equal the model's, the invariants must hold
(``spent + held <= cap`` unless the model recorded an overrun, or a cap lowered below what
was held, on that account in its window) and ``held`` must equal the sum of the open holds
the store itself lists, and ``verify`` must find the journal in agreement.

This module is longer than the 500 lines the package keeps to, on purpose: the machine is
one class whose rules share the model, the ledger under test and the checks after every
step, and a rule read apart from the model it must agree with would hide what it checks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from capledger import (
    BudgetExceeded,
    Hold,
    HoldClosed,
    HoldNotFound,
    IdempotencyConflict,
    IdempotentHoldClosed,
    InvalidInput,
    Ledger,
    ManualClock,
    UnsettledHoldWarning,
)
from capledger._core import (
    Config,
    Event,
    Extend,
    HoldRecord,
    Inspect,
    Op,
    Outcome,
    Release,
    RemoveLimit,
    Reserve,
    SetLimit,
    Settle,
    Sweep,
)
from capledger.clock import from_us, to_us
from capledger.stores import Store

__all__ = ["build_ledger_machine"]

_EVENTS = ("reserved", "settled", "released", "expired", "denied", "overrun", "threshold")

SCOPES = ("user:a", "user:b", "tenant:t")
UNITS = ("usd", "tokens", "requests")
PERIODS = ("total", "minute", "hour", "day", "week", "month", "year", "90m")
NANO = 10**9
# Two hours before a month's end: hour, day and month windows all roll within a few steps.
START = datetime(2026, 1, 31, 22, tzinfo=UTC)
_HOUR_US = 3_600 * 10**6
_DAY_US = 86_400 * 10**6
_NINETY_MINUTES_US = 90 * 60 * 10**6

# Per unit, in its smallest step: round values make exact sums (spent + held == cap)
# frequent, so the boundary is tested; arbitrary integers find the rest.
_ROUND = {
    "usd": (0, 10**8, 2 * 10**8, 3 * 10**8, 5 * 10**8, NANO),
    "tokens": (0, 100, 250, 500, 1_000),
    "requests": (0, 1, 2, 3),
}
_HOLD_MAX = {"usd": NANO // 2, "tokens": 1_000, "requests": 2}
_TOP_UP_MAX = {"usd": NANO // 4, "tokens": 500, "requests": 1}
_SPEND_MAX = {"usd": NANO, "tokens": 2_000, "requests": 4}
_CAP_MAX = {"usd": 2 * NANO, "tokens": 4_000, "requests": 8}

Amounts = dict[str, int]
AccountKey = tuple[str, str, str]  # scope, unit, period


def _amount(unit: str, upper: int) -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from([a for a in _ROUND[unit] if a <= upper]), st.integers(0, upper)
    )


def _amounts(upper: Mapping[str, int], *, min_units: int = 1) -> st.SearchStrategy[Amounts]:
    """Amounts in one to three units (or none, with ``min_units=0``), usd most often."""
    units = st.lists(st.sampled_from(UNITS), min_size=min_units, max_size=3, unique=True)
    return units.flatmap(
        lambda chosen: st.fixed_dictionaries({unit: _amount(unit, upper[unit]) for unit in chosen})
    )


def _to_api(unit: str, amount: int) -> Decimal | int:
    return Decimal(amount) / NANO if unit == "usd" else amount


def _from_api(unit: str, value: object) -> int:
    return int(Decimal(str(value)) * NANO) if unit == "usd" else int(str(value))


def _keywords(amounts: Amounts) -> dict[str, Any]:
    """``{"usd": Decimal, "tokens": int, ...}``: the keyword arguments of the API's calls."""
    return {unit: _to_api(unit, amount) for unit, amount in amounts.items()}


def _window_start(period: str, now_us: int, anchor_us: int) -> int:
    """Where the window of ``period`` containing ``now_us`` starts, in UTC (total: 0)."""
    if period == "total":
        return 0
    if period == "minute":
        return now_us - now_us % 60_000_000
    if period == "hour":
        return now_us - now_us % _HOUR_US
    if period == "day":
        return now_us - now_us % _DAY_US
    if period == "week":  # from Monday; 1970-01-01, day 0, was a Thursday
        day = now_us // _DAY_US
        return (day - (day + 3) % 7) * _DAY_US
    if period == "month":
        moment = from_us(now_us)
        return to_us(datetime(moment.year, moment.month, 1, tzinfo=UTC))
    if period == "year":
        return to_us(datetime(from_us(now_us).year, 1, 1, tzinfo=UTC))
    if period == "90m":
        return anchor_us + (now_us - anchor_us) // _NINETY_MINUTES_US * _NINETY_MINUTES_US
    raise AssertionError(f"the model has no window for {period!r}")


def _store_of(ledger: Ledger) -> Store:
    """The store under ``ledger``: batches go to it directly, and open holds are read there."""
    store: Store = ledger._store
    return store


# --- the model ------------------------------------------------------------------------------


@dataclass
class ModelAccount:
    cap: int | None
    anchor_us: int
    window_start_us: int
    spent: int = 0
    held: int = 0
    # An overrun, or a cap lowered below what was spent and held, put it past its cap in
    # this window: ``spent + held <= cap`` is not owed until the window resets.
    excused: bool = False


@dataclass
class ModelHold:
    scopes: tuple[str, ...]
    amounts: Amounts
    deadline_us: int  # on the clock deadlines are measured on (``ManualClock.deadline_now``)
    request_id: str | None
    terms: tuple[object, ...]  # what a reused request_id must match
    ttl_s: int
    asked: Amounts  # the amounts the reserve asked for
    state: str = "open"
    settled: Amounts | None = None
    late: bool = False
    overrun: bool = False


class Refused(Exception):
    """What the model expects an operation to fail with (its ``LedgerError`` type)."""

    def __init__(self, error: type[Exception]) -> None:
        super().__init__(error.__name__)
        self.error = error


@dataclass
class Model:
    """The ledger as plain dictionaries; each method is one operation, decided by the rules
    of DESIGN.md, raising ``Refused`` with the error the ledger must raise instead."""

    clock: ManualClock
    accounts: dict[AccountKey, ModelAccount] = field(default_factory=dict)
    holds: dict[str, ModelHold] = field(default_factory=dict)
    by_request: dict[str, str] = field(default_factory=dict)
    settles: list[tuple[int, ModelHold, Amounts]] = field(default_factory=list)

    def now(self) -> int:
        return self.clock.now_us()

    def tick(self) -> int:
        return self.clock.deadline_now()[1]

    def account(self, key: AccountKey) -> ModelAccount | None:
        """The account, rolled into the window containing now (spend starts again)."""
        account = self.accounts.get(key)
        if account is not None and key[2] != "total":
            start = _window_start(key[2], self.now(), account.anchor_us)
            if start != account.window_start_us:
                account.window_start_us = start
                account.spent = 0
                account.excused = account.cap is not None and account.held > account.cap
        return account

    def touch(self, scopes: tuple[str, ...], units: list[str]) -> list[tuple[str, ModelAccount]]:
        """(unit, account) for every account of ``scopes`` in ``units``, rolled to now;
        each (scope, unit) always has a total, created on first use."""
        touched = []
        for scope in scopes:
            for unit in units:
                if (scope, unit, "total") not in self.accounts:
                    self.accounts[(scope, unit, "total")] = ModelAccount(None, self.now(), 0)
                for period in PERIODS:
                    account = self.account((scope, unit, period))
                    if account is not None:
                        touched.append((unit, account))
        return touched

    def fits(self, scopes: tuple[str, ...], amounts: Amounts) -> bool:
        return all(
            account.cap is None or account.spent + account.held + amounts[unit] <= account.cap
            for unit, account in self.touch(scopes, list(amounts))
        )

    def _hold_more(self, scopes: tuple[str, ...], amounts: Amounts) -> None:
        for unit, account in self.touch(scopes, list(amounts)):
            account.held += amounts[unit]

    def _unhold(self, hold: ModelHold) -> None:
        for unit, account in self.touch(hold.scopes, list(hold.amounts)):
            account.held -= hold.amounts[unit]

    def expire_overdue(self) -> int:
        """Expire the open holds past their deadline; return how many."""
        now = self.tick()
        overdue = [h for h in self.holds.values() if h.state == "open" and h.deadline_us <= now]
        for hold in overdue:
            hold.state = "expired"
            self._unhold(hold)
        return len(overdue)

    def open_holds_on(self, scope: str) -> dict[str, ModelHold]:
        return {
            hold_id: hold
            for hold_id, hold in self.holds.items()
            if hold.state == "open" and scope in hold.scopes
        }

    # --- operations ---------------------------------------------------------------------

    def reserve(
        self,
        hold_id: str | None,
        scopes: tuple[str, ...],
        amounts: Amounts,
        ttl_s: int,
        request_id: str | None,
        terms: tuple[object, ...],
    ) -> str | None:
        """The id of the hold a reserve returns, or None for a new hold the ledger names
        (``hold_id`` None; ``place`` records it). Raises ``Refused``; a retry of a closed
        hold raises ``Refused(IdempotentHoldClosed)`` with the hold's id in ``.args[1]``."""
        if request_id is not None and request_id in self.by_request:
            existing_id = self.by_request[request_id]
            existing = self.holds[existing_id]
            if existing.terms != terms:
                raise Refused(IdempotencyConflict)
            if existing.state != "open":
                raise ClosedRetry(existing_id)
            return existing_id
        if not self.fits(scopes, amounts):
            raise Refused(BudgetExceeded)
        if hold_id is not None:
            self.place(hold_id, scopes, amounts, ttl_s, request_id, terms)
        return hold_id

    def place(
        self,
        hold_id: str,
        scopes: tuple[str, ...],
        amounts: Amounts,
        ttl_s: int,
        request_id: str | None,
        terms: tuple[object, ...],
    ) -> None:
        self._hold_more(scopes, amounts)
        deadline = self.tick() + ttl_s * 10**6
        self.holds[hold_id] = ModelHold(
            scopes, dict(amounts), deadline, request_id, terms, ttl_s, dict(amounts)
        )
        if request_id is not None:
            self.by_request[request_id] = hold_id

    def settle(self, hold_id: str, given: Amounts) -> ModelHold:
        hold = self.holds.get(hold_id)
        if hold is None:
            raise Refused(HoldNotFound)
        actual = {**hold.amounts, **given}  # units not given settle at their held amount
        if hold.state == "settled":
            if hold.settled != actual:
                raise Refused(HoldClosed)
            return hold  # the same settle again: a no-op
        # An expired or released hold's money went back when it closed; the spend is
        # recorded all the same, flagged late.
        late = hold.state != "open"
        over_cap = False
        for unit, account in self.touch(hold.scopes, list(actual)):
            if not late:
                account.held -= hold.amounts.get(unit, 0)
            account.spent += actual[unit]
            if account.cap is not None and account.spent + account.held > account.cap:
                account.excused = True
                over_cap = True
        beyond_hold = any(amount > hold.amounts.get(unit, 0) for unit, amount in actual.items())
        hold.state, hold.settled, hold.late = "settled", actual, late
        hold.overrun = (beyond_hold and not late) or over_cap
        self.settles.append((self.now(), hold, actual))
        return hold

    def release(self, hold_id: str) -> ModelHold:
        hold = self.holds.get(hold_id)
        if hold is None:
            raise Refused(HoldNotFound)
        if hold.state == "settled":
            raise Refused(HoldClosed)
        if hold.state == "open":
            self._unhold(hold)
            hold.state = "released"
        return hold  # released or expired already: a no-op

    def extend(self, hold_id: str, more: Amounts, ttl_s: int | None) -> ModelHold:
        hold = self.holds.get(hold_id)
        if hold is None:
            raise Refused(HoldNotFound)
        if hold.state != "open":
            raise Refused(HoldClosed)
        if not self.fits(hold.scopes, more):
            raise Refused(BudgetExceeded)
        self._hold_more(hold.scopes, more)
        hold.amounts = {u: hold.amounts.get(u, 0) + more.get(u, 0) for u in {*hold.amounts, *more}}
        if ttl_s is not None:
            hold.deadline_us = max(hold.deadline_us, self.tick() + ttl_s * 10**6)
        return hold

    def set_limit(self, scope: str, unit: str, period: str, cap: int) -> None:
        key = (scope, unit, period)
        account = self.account(key)
        if account is None:
            # A new limit starts from the truth: this window's spend, the open holds.
            start = _window_start(period, self.now(), self.now())
            account = self.accounts[key] = ModelAccount(None, self.now(), start)
            account.spent = sum(
                amounts.get(unit, 0)
                for ts, hold, amounts in self.settles
                if scope in hold.scopes and ts >= start
            )
            account.held = sum(h.amounts.get(unit, 0) for h in self.open_holds_on(scope).values())
        account.cap = cap
        if account.spent + account.held > cap:
            account.excused = True

    def remove_limit(self, scope: str, unit: str, period: str) -> bool:
        key = (scope, unit, period)
        account = self.accounts.get(key)
        if account is None or account.cap is None:
            return False
        if period == "total":
            account.cap, account.excused = None, False  # the lifetime total is kept
        else:
            del self.accounts[key]
        return True

    def report(self, by_unit: bool) -> list[dict[str, object]]:
        """``Ledger.report(group_by=["scope"])`` or ``["scope", "unit"]``: calls, spend,
        overruns and late settles per scope (per unit)."""
        groups: dict[tuple[str, str], dict[str, int]] = {}  # (scope, unit or "-")
        for _ts, hold, amounts in self.settles:
            for scope in hold.scopes:
                for unit in list(amounts) if by_unit else ["-"]:
                    key = (scope, unit)
                    counts = groups.setdefault(key, {"calls": 0, "overruns": 0, "late": 0})
                    counts["calls"] += 1
                    counts["overruns"] += hold.overrun
                    counts["late"] += hold.late
                    for spent_unit, amount in amounts.items():
                        if not by_unit or spent_unit == unit:
                            column = "spent" if by_unit else spent_unit
                            counts[column] = counts.get(column, 0) + amount
        rows: list[dict[str, object]] = []
        for key in sorted(groups):
            counts = groups[key]
            row: dict[str, object] = {"scope": key[0], "calls": counts["calls"]}
            if by_unit:
                row["unit"] = key[1]
                row["spent"] = _to_api(key[1], counts.get("spent", 0))
            else:
                row.update({unit: _to_api(unit, counts.get(unit, 0)) for unit in UNITS})
            row["overruns"], row["late"] = counts["overruns"], counts["late"]
            rows.append(row)
        return rows

    def balances(self, scope: str) -> dict[tuple[str, str], tuple[int, int, int | None, int]]:
        """(unit, period) -> (spent, held, cap, window start) of ``scope``'s accounts."""
        shown = {}
        for account_scope, unit, period in list(self.accounts):
            if account_scope == scope:
                account = self.account((scope, unit, period))
                assert account is not None
                start = 0 if period == "total" else account.window_start_us
                shown[(unit, period)] = (account.spent, account.held, account.cap, start)
        return shown


class ClosedRetry(Refused):
    """A reused request_id names a hold that has closed: ``IdempotentHoldClosed``."""

    def __init__(self, hold_id: str) -> None:
        super().__init__(IdempotentHoldClosed)
        self.hold_id = hold_id


def _agree(
    scope: str,
    expected: dict[tuple[str, str], tuple[int, int, int | None, int]],
    stored: dict[tuple[str, str], tuple[int, int, int | None, int]],
) -> None:
    """The store's accounts of ``scope`` equal the model's (a total the store has not made
    yet is one nothing was ever charged to)."""
    assert set(stored) <= set(expected), (scope, "accounts the model lacks", stored, expected)
    for key, (spent, held, cap, start) in expected.items():
        if key not in stored:
            assert key[1] == "total" and (spent, held, cap) == (0, 0, None), (scope, key)
            continue
        assert stored[key] == (spent, held, cap, start), (scope, key, stored[key], expected[key])


def _start_of(period: str, start_us: int) -> int:
    return 0 if period == "total" else start_us


# --- the machine ----------------------------------------------------------------------------


def build_ledger_machine(
    make_ledger: Callable[[ManualClock], Ledger],
    *,
    steps_wall: bool = False,
    check_each_step: bool = True,
) -> type[RuleBasedStateMachine]:
    """Return a state machine class testing ledgers from ``make_ledger(clock)``.

    Use it as ``TestMyStore = build_ledger_machine(factory).TestCase``. With ``steps_wall``
    the machine also steps the wall clock alone, which must expire no hold: for stores that
    measure deadlines on the clock's ``deadline_now`` (not PostgreSQL with an injected
    clock, whose expiry follows the injected wall clock).

    Balances are compared with the model after every step. The store's own open holds and
    ``verify`` are checked after every step too, or with ``check_each_step=False`` once, at
    the end of each example: for a store whose listing reads cost tens of milliseconds
    (PostgreSQL), so that hundreds of examples fit in CI.
    """

    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            self.clock = ManualClock(START)
            self.ledger = make_ledger(self.clock)
            self.store = _store_of(self.ledger)
            # The ledger listens to every event, so the core builds them all and settles are
            # checked; the batches listen to none, so the core builds only the rare ones.
            self.config = Config()
            self.events: list[Event] = []
            for kind in _EVENTS:
                self.ledger.on(kind, self.events.append)
            self.model = Model(self.clock)
            self.objects: dict[str, Hold] = {}  # holds placed through the API, by id
            self.observed: dict[str, Amounts] = {}  # what each Hold object observed
            self.api_requests: list[str] = []
            self.batch_requests: list[str] = []
            self.serial = 0

        def teardown(self) -> None:
            ledger = getattr(self, "ledger", None)
            if ledger is None:
                return
            try:
                if not check_each_step:
                    self.model.expire_overdue()
                    self.accounts_match_the_model()  # the store expires what the model did
                    self._check_store()
            finally:
                ledger.close()

        def _next(self, prefix: str) -> str:
            self.serial += 1
            return f"{prefix}-{self.serial}"

        def _hold_id(self, data: st.DataObject) -> str:
            return data.draw(st.sampled_from(sorted(self.model.holds)), label="hold")

        def _object(self, data: st.DataObject) -> tuple[str, Hold]:
            hold_id = data.draw(st.sampled_from(sorted(self.objects)), label="hold object")
            return hold_id, self.objects[hold_id]

        def _check_hold(self, hold: Hold | Any, expected: ModelHold) -> None:
            """A hold as the API shows it (``Hold`` or ``HoldInfo``) against the model's."""
            assert hold.state == expected.state, (hold, expected)
            amounts = {u: _from_api(u, v) for u, v in hold.amounts.items()}
            assert amounts == expected.amounts, (hold, expected)
            settled = hold.settled_amounts if isinstance(hold, Hold) else hold.settled
            if expected.settled is not None:
                assert settled is not None, (hold, expected)
                assert {u: _from_api(u, v) for u, v in settled.items()} == expected.settled
                assert ("late" in hold.flags) == expected.late, (hold.flags, expected)
                assert ("overrun" in hold.flags) == expected.overrun, (hold.flags, expected)

        # --- reserve ----------------------------------------------------------------------

        @rule(
            scopes=st.lists(st.sampled_from(SCOPES), min_size=1, max_size=3, unique=True),
            amounts=_amounts(_HOLD_MAX),
            ttl_s=st.integers(1, 7200),
            request=st.sampled_from(["none", "fresh", "same", "different"]),
            return_closed=st.booleans(),
            data=st.data(),
        )
        def reserve(
            self,
            scopes: list[str],
            amounts: Amounts,
            ttl_s: int,
            request: str,
            return_closed: bool,
            data: st.DataObject,
        ) -> None:
            """A reserve through the API: no request id, a fresh one, or one used before
            with the same terms (the same hold) or different ones (a conflict)."""
            self.model.expire_overdue()
            request_id: str | None = None
            if request in ("same", "different") and self.api_requests:
                request_id = data.draw(st.sampled_from(self.api_requests), label="reused")
                earlier = self.model.holds[self.model.by_request[request_id]]
                # The terms it was asked with: an extend may have changed its amounts since.
                scopes, amounts, ttl_s = list(earlier.scopes), earlier.asked, earlier.ttl_s
                if request == "different":
                    ttl_s += 1
            elif request != "none":
                request_id = self._next("req")
            terms = ("api", tuple(scopes), tuple(sorted(amounts.items())), ttl_s)

            def place() -> Hold:
                return self.ledger.reserve(
                    scopes,
                    **_keywords(amounts),
                    ttl=ttl_s,
                    request_id=request_id,
                    return_closed=return_closed,
                )

            try:
                existing = self.model.reserve(
                    None, tuple(scopes), amounts, ttl_s, request_id, terms
                )
            except ClosedRetry as closed:
                if return_closed:
                    hold = place()
                    assert hold.id == closed.hold_id
                    self._check_hold(hold, self.model.holds[hold.id])
                    self._adopt(hold)
                    return
                try:
                    place()
                except IdempotentHoldClosed as error:
                    assert error.hold is not None and error.hold.id == closed.hold_id
                    assert error.hold.state == self.model.holds[closed.hold_id].state
                    return
                raise AssertionError(
                    "a retry of a closed hold must raise IdempotentHoldClosed"
                ) from None
            except Refused as refused:
                try:
                    place()
                except refused.error:
                    return
                raise AssertionError(f"the ledger placed a hold; the model: {refused}") from None
            hold = place()
            if existing is not None:
                assert hold.id == existing, "a retry must return the hold it placed"
            else:
                assert hold.id not in self.model.holds
                self.model.place(hold.id, tuple(scopes), amounts, ttl_s, request_id, terms)
                if request_id is not None:
                    self.api_requests.append(request_id)
            self._check_hold(hold, self.model.holds[hold.id])
            self._adopt(hold)

        def _adopt(self, hold: Hold) -> None:
            """Keep the newest ``Hold`` object of each id (a retry returns a new one)."""
            self.objects[hold.id] = hold
            self.observed[hold.id] = {}

        # --- settle, release ----------------------------------------------------------------

        @precondition(lambda self: bool(self.model.holds))
        @rule(
            data=st.data(),
            given=_amounts(_SPEND_MAX, min_units=0),
            again=st.booleans(),
            by_id=st.booleans(),
            tags=st.sampled_from([None, {"feature": "chat"}]),
        )
        def settle(
            self,
            data: st.DataObject,
            given: Amounts,
            again: bool,
            by_id: bool,
            tags: dict[str, object] | None,
        ) -> None:
            """Settle any hold (an API one through its object or by id, a batch one by id);
            a settled one again with the same amounts (a no-op) or others (HoldClosed)."""
            self.model.expire_overdue()
            hold_id = self._hold_id(data)
            earlier = self.model.holds[hold_id].settled
            if again and earlier is not None:
                given = dict(earlier)
            settle: Callable[[], Any]
            if by_id or hold_id not in self.objects:
                settle = lambda: self.ledger.settle(hold_id, **_keywords(given), tags=tags)  # noqa: E731
            else:
                settle = lambda: self.objects[hold_id].settle(**_keywords(given), tags=tags)  # noqa: E731
            try:
                expected = self.model.settle(hold_id, given)
            except Refused as refused:
                try:
                    settle()
                except refused.error:
                    return
                raise AssertionError(f"the ledger settled; the model: {refused}") from None
            heard = len(self.events)
            self._check_hold(settle(), expected)
            settled_events = [e.hold_id for e in self.events[heard:] if e.kind == "settled"]
            assert all(e.at == from_us(self.clock.now_us()) for e in self.events[heard:])
            # One "settled" event for a settle, none for the same settle again.
            assert settled_events == ([] if earlier is not None else [hold_id]), settled_events

        @precondition(lambda self: bool(self.model.holds))
        @rule(data=st.data(), by_id=st.booleans())
        def release(self, data: st.DataObject, by_id: bool) -> None:
            self.model.expire_overdue()
            hold_id = self._hold_id(data)
            release: Callable[[], Any]
            if by_id or hold_id not in self.objects:
                release = lambda: self.ledger.release(hold_id)  # noqa: E731
            else:
                release = self.objects[hold_id].release
            try:
                expected = self.model.release(hold_id)
            except Refused as refused:
                try:
                    release()
                except refused.error:
                    return
                raise AssertionError(f"the ledger released; the model: {refused}") from None
            self._check_hold(release(), expected)

        # --- extend, observe, leaving a hold's block ------------------------------------------

        @precondition(lambda self: bool(self.objects))
        @rule(
            data=st.data(),
            more=_amounts(_TOP_UP_MAX, min_units=0),
            ttl_s=st.one_of(st.none(), st.integers(1, 7200)),
        )
        def extend(self, data: st.DataObject, more: Amounts, ttl_s: int | None) -> None:
            self.model.expire_overdue()
            hold_id, hold = self._object(data)
            if not more and ttl_s is None:
                try:
                    hold.extend()
                except InvalidInput:
                    return
                raise AssertionError("an extend of nothing must raise InvalidInput")
            try:
                expected = self.model.extend(hold_id, more, ttl_s)
            except Refused as refused:
                try:
                    hold.extend(**_keywords(more), ttl=ttl_s)
                except refused.error:
                    return
                raise AssertionError(f"the ledger extended; the model: {refused}") from None
            self._check_hold(hold.extend(**_keywords(more), ttl=ttl_s), expected)

        @precondition(lambda self: bool(self.objects))
        @rule(data=st.data(), running=_amounts(_SPEND_MAX))
        def observe(self, data: st.DataObject, running: Amounts) -> None:
            """Running totals: past the hold, the hold is extended (by at least the gap, and
            only within the caps), or ``BudgetExceeded`` if even the gap does not fit."""
            self.model.expire_overdue()
            hold_id, hold = self._object(data)
            observed = self.observed[hold_id]
            for unit, amount in running.items():
                if amount > observed.get(unit, 0):
                    observed[unit] = amount
            model_hold = self.model.holds[hold_id]
            gap = {
                u: a - model_hold.amounts.get(u, 0)
                for u, a in observed.items()
                if a > model_hold.amounts.get(u, 0)
            }
            if not gap or hold.state != "open":  # what the object last saw decides
                hold.observe(**_keywords(running))
                return
            if model_hold.state != "open":
                try:
                    hold.observe(**_keywords(running))
                except HoldClosed:
                    return
                raise AssertionError("observing past a closed hold must raise HoldClosed")
            gap_fits = self.model.fits(model_hold.scopes, gap)
            try:
                hold.observe(**_keywords(running))
            except BudgetExceeded:
                assert not gap_fits, "the ledger refused an extension the model allows"
                return
            assert gap_fits, "the ledger extended past a cap the model keeps"
            now = {u: _from_api(u, v) for u, v in hold.amounts.items()}
            extension = {u: now.get(u, 0) - model_hold.amounts.get(u, 0) for u in now}
            assert all(extension.get(u, 0) >= g for u, g in gap.items()), (extension, gap)
            extension = {u: e for u, e in extension.items() if e}
            assert self.model.fits(model_hold.scopes, extension), "headroom past a cap"
            self.model.extend(hold_id, extension, None)
            self._check_hold(hold, model_hold)

        @precondition(lambda self: bool(self.objects))
        @rule(data=st.data(), failed=st.booleans())
        def leave_block(self, data: st.DataObject, failed: bool) -> None:
            """Leave ``with hold:``: settle what was observed (the rest at its held amount),
            release after a failure with nothing observed, else settle in full and warn."""
            self.model.expire_overdue()
            hold_id, hold = self._object(data)
            observed = self.observed[hold_id]
            seen = hold.state  # what the object last saw decides, as in the block
            error = RuntimeError("the block failed") if failed else None

            def leave() -> None:
                hold.__exit__(type(error) if error else None, error, None)

            if seen == "settled":
                leave()
                return
            decide: Callable[[], object] | None
            if observed:
                decide = lambda: self.model.settle(hold_id, dict(observed))  # noqa: E731
            elif failed or seen == "released":
                decide = (lambda: self.model.release(hold_id)) if seen == "open" else None
            else:
                decide = lambda: self.model.settle(hold_id, {})  # noqa: E731
            warns = not observed and not failed and seen != "released"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UnsettledHoldWarning)
                try:
                    if decide is not None:
                        decide()
                except Refused as refused:
                    try:
                        leave()
                    except refused.error:
                        assert not failed, "a failed block's exception matters more"
                        return
                    assert failed, f"the ledger closed the hold; the model: {refused}"
                    return
                leave()
            assert any(w.category is UnsettledHoldWarning for w in caught) == warns

        @rule(scope=st.sampled_from(SCOPES), seconds=st.sampled_from([0, 0, 3600, 7200]))
        def balance(self, scope: str, seconds: int) -> None:
            """``Ledger.balance``: the accounts of a scope in the API's units, read right
            after the clock moves, before any operation expires what it made overdue."""
            self.clock.advance(timedelta(seconds=seconds))
            self.model.expire_overdue()
            stored = {
                (b.unit, b.period): (
                    _from_api(b.unit, b.spent),
                    _from_api(b.unit, b.held),
                    None if b.cap is None else _from_api(b.unit, b.cap),
                    _start_of(b.period, to_us(b.window_start)),
                )
                for b in self.ledger.balance(scope)
            }
            _agree(scope, self.model.balances(scope), stored)

        @precondition(lambda self: bool(self.model.settles))
        @rule(by_unit=st.booleans())
        def report(self, by_unit: bool) -> None:
            """``Ledger.report``: the journal's settles grouped, as the model counts them."""
            group_by = ["scope", "unit"] if by_unit else ["scope"]
            assert self.ledger.report(group_by) == self.model.report(by_unit)

        # --- limits -------------------------------------------------------------------------

        @rule(
            scope=st.sampled_from(SCOPES), period=st.sampled_from(PERIODS), caps=_amounts(_CAP_MAX)
        )
        def set_limit(self, scope: str, period: str, caps: Amounts) -> None:
            self.model.expire_overdue()
            self.ledger.set_limit(scope, period=period, **_keywords(caps))
            for unit, cap in caps.items():
                self.model.set_limit(scope, unit, period, cap)

        @rule(
            scope=st.sampled_from(SCOPES),
            period=st.sampled_from(PERIODS),
            unit=st.one_of(st.none(), st.sampled_from(UNITS)),
        )
        def remove_limit(self, scope: str, period: str, unit: str | None) -> None:
            self.model.expire_overdue()
            removed = self.ledger.remove_limit(scope, period=period, unit=unit)
            units = UNITS if unit is None else (unit,)
            assert removed == sum(self.model.remove_limit(scope, u, period) for u in units)

        # --- time -------------------------------------------------------------------------------

        @rule(seconds=st.sampled_from([1, 30, 600, 3600, 6 * 3600, 86_400]))
        def advance_clock(self, seconds: int) -> None:
            """Holds past their TTL expire lazily, at the next operation that runs."""
            self.clock.advance(timedelta(seconds=seconds))

        if steps_wall:

            @rule(seconds=st.sampled_from([1, 600, 3600, 86_400]))
            def step_wall_clock(self, seconds: int) -> None:
                """NTP steps the wall clock forward: windows move, deadlines do not."""
                self.clock.step_wall(timedelta(seconds=seconds))

        @rule(seconds=st.sampled_from([0, 60, 3600, 7200]))
        def sweep(self, seconds: int) -> None:
            """Advance the clock, then sweep: it expires exactly the overdue holds."""
            self.clock.advance(timedelta(seconds=seconds))
            assert self.ledger.sweep() == self.model.expire_overdue()

        # --- batches through the store ----------------------------------------------------------

        @rule(
            data=st.data(),
            size=st.integers(2, 6),
            seconds=st.sampled_from([0, 0, 60, 3600, 7200]),
        )
        def batch(self, data: st.DataObject, size: int, seconds: int) -> None:
            """Several operations in one ``Store.execute``: each outcome is the model's,
            applying them in order (a later one sees what an earlier one did)."""
            self.clock.advance(timedelta(seconds=seconds))
            expired = self.model.expire_overdue()  # a batch first expires the overdue holds
            ops: list[Op] = []
            checks: list[Callable[[Outcome], None]] = []
            for _ in range(size):
                op, check = self._batch_op(data, expired)
                if type(op) is Sweep:
                    expired = 0  # a later sweep of the batch finds none left
                ops.append(op)
                checks.append(check)
            outcomes = self.store.execute(ops, self.config)
            assert len(outcomes) == len(ops)
            for index, (op, outcome, check) in enumerate(zip(ops, outcomes, checks, strict=True)):
                try:
                    check(outcome)
                except AssertionError as failure:
                    raise AssertionError(f"op {index} of {ops}: {op}: {failure}") from failure

        def _batch_op(
            self, data: st.DataObject, expired: int
        ) -> tuple[Op, Callable[[Outcome], None]]:
            kinds = ["reserve", "set_limit", "remove_limit", "sweep", "inspect", "unknown"]
            if self.model.holds:
                kinds += ["settle", "release", "extend"]
            kind = data.draw(st.sampled_from(kinds), label="batch op")
            model = self.model
            if kind == "reserve":
                return self._batch_reserve(data)
            if kind == "set_limit":
                scope = data.draw(st.sampled_from(SCOPES))
                unit = data.draw(st.sampled_from(UNITS))
                period = data.draw(st.sampled_from(PERIODS))
                cap = data.draw(_amount(unit, _CAP_MAX[unit]))
                model.set_limit(scope, unit, period, cap)
                return SetLimit(scope, unit, period, cap, "UTC"), _answers(True)
            if kind == "remove_limit":
                scope = data.draw(st.sampled_from(SCOPES))
                unit = data.draw(st.sampled_from(UNITS))
                period = data.draw(st.sampled_from(PERIODS))
                removed = model.remove_limit(scope, unit, period)
                return RemoveLimit(scope, unit, period), _answers(removed)
            if kind == "sweep":
                return Sweep(1000), _answers(expired)
            if kind == "inspect":
                scope = data.draw(st.sampled_from(SCOPES))
                return Inspect(scope), _shows(scope, model.balances(scope))
            if kind == "unknown":
                unknown: list[Op] = [
                    Settle("no-such-hold", {}, {}),
                    Release("no-such-hold"),
                    Extend("no-such-hold", {"usd": 1}, None),
                ]
                return data.draw(st.sampled_from(unknown)), _fails(HoldNotFound)
            hold_id = self._hold_id(data)
            decide: Callable[[], ModelHold]
            op: Op
            if kind == "settle":
                given = data.draw(_amounts(_SPEND_MAX, min_units=0))
                earlier = model.holds[hold_id].settled
                if earlier is not None and data.draw(st.booleans(), label="same again"):
                    given = dict(earlier)
                op = Settle(hold_id, given, data.draw(st.sampled_from([{}, {"feature": "batch"}])))
                decide = lambda: model.settle(hold_id, given)  # noqa: E731
            elif kind == "release":
                op = Release(hold_id)
                decide = lambda: model.release(hold_id)  # noqa: E731
            else:
                more = data.draw(_amounts(_TOP_UP_MAX))
                ttl_s = data.draw(st.one_of(st.none(), st.integers(1, 7200)))
                op = Extend(hold_id, more, None if ttl_s is None else ttl_s * 10**6)
                decide = lambda: model.extend(hold_id, more, ttl_s)  # noqa: E731
            try:
                return op, _holds(decide())
            except Refused as refused:
                return op, _fails(refused.error)

        def _batch_reserve(self, data: st.DataObject) -> tuple[Op, Callable[[Outcome], None]]:
            request = data.draw(st.sampled_from(["none", "fresh", "same", "different"]))
            scopes = tuple(
                data.draw(st.lists(st.sampled_from(SCOPES), min_size=1, max_size=3, unique=True))
            )
            amounts = data.draw(_amounts(_HOLD_MAX))
            ttl_s = data.draw(st.integers(1, 7200))
            request_id: str | None = None
            if request in ("same", "different") and self.batch_requests:
                request_id = data.draw(st.sampled_from(self.batch_requests))
                earlier = self.model.holds[self.model.by_request[request_id]]
                scopes, amounts, ttl_s = earlier.scopes, earlier.asked, earlier.ttl_s
                if request == "different":
                    amounts = {**amounts, "requests": amounts.get("requests", 0) + 1}
            elif request != "none":
                request_id = self._next("batch-req")
            terms = ("batch", scopes, tuple(sorted(amounts.items())), ttl_s)
            # The store compares fingerprints as strings; the ledger's own digest is not
            # needed for that, and batch request ids never meet the API's.
            fingerprint = "" if request_id is None else repr(terms)
            hold_id = self._next("batch-hold")
            op = Reserve(hold_id, scopes, amounts, ttl_s * 10**6, request_id, {}, fingerprint)
            try:
                returned = self.model.reserve(hold_id, scopes, amounts, ttl_s, request_id, terms)
            except ClosedRetry as closed:
                return op, _fails(IdempotentHoldClosed, hold_id=closed.hold_id)
            except Refused as refused:
                return op, _fails(refused.error)
            if returned == hold_id and request_id is not None:
                self.batch_requests.append(request_id)
            assert returned is not None
            return op, _holds(self.model.holds[returned], hold_id=returned)

        # --- invariants -------------------------------------------------------------------------

        @invariant()
        def accounts_match_the_model(self) -> None:
            """Every scope's accounts, read in one batch (one round trip), equal the model's;
            a capped account is within its cap unless the model excused it."""
            self.model.expire_overdue()
            # Inspect rolls windows and, like every operation, expires the overdue holds.
            outcomes = self.store.execute([Inspect(scope) for scope in SCOPES], self.config)
            for scope, outcome in zip(SCOPES, outcomes, strict=True):
                expected = self.model.balances(scope)
                _shows(scope, expected)(outcome)
                for (unit, period), (spent, held, cap, _) in expected.items():
                    account = self.model.accounts[(scope, unit, period)]
                    if cap is not None and not account.excused:
                        assert spent + held <= cap, ("cap passed with no overrun", scope, unit)

        @invariant()
        def held_is_the_stores_open_holds_and_the_journal_agrees(self) -> None:
            if check_each_step:
                self._check_store()

        def _check_store(self) -> None:
            """``held`` is what the store's own open holds add up to, on every account, and
            ``verify`` finds the journal in agreement with the accounts."""
            accounts, open_holds, _now_us, _tick_us = self.store.snapshot(SCOPES)
            for scope in SCOPES:
                on_scope = [hold for hold in open_holds if scope in hold.scopes]
                assert {h.id for h in on_scope} == set(self.model.open_holds_on(scope)), scope
                for account in (a for a in accounts if a.scope == scope):
                    held = sum(h.amounts.get(account.unit, 0) for h in on_scope)
                    assert account.held == held, (account, held)
            report = self.ledger.verify()
            # Exposures (a late settle after its expired budget went to another hold) are
            # reported, not errors of the store: the machine settles expired holds on purpose.
            assert not report.mismatches and not report.breaches, report

    LedgerMachine.__name__ = "LedgerMachine"
    return LedgerMachine


# --- what a batch's outcomes must be ------------------------------------------------------------


def _fails(error: type[Exception], hold_id: str | None = None) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        assert type(outcome.error) is error, (outcome.error, error)
        if hold_id is not None:  # a retry of a closed hold comes with that hold
            assert outcome.hold is not None and outcome.hold.id == hold_id

    return check


def _answers(value: object) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        assert outcome.error is None, outcome.error
        assert outcome.value == value, (outcome.value, value)

    return check


def _holds(expected: ModelHold, hold_id: str | None = None) -> Callable[[Outcome], None]:
    # Snapshots: later operations of the batch change the model's hold.
    state, amounts, settled = expected.state, dict(expected.amounts), expected.settled
    late, overrun = expected.late, expected.overrun

    def check(outcome: Outcome) -> None:
        assert outcome.error is None, outcome.error
        record: HoldRecord | None = outcome.hold
        assert record is not None
        if hold_id is not None:
            assert record.id == hold_id, (record.id, hold_id)
        assert (record.state, record.amounts) == (state, amounts), (record, state, amounts)
        assert record.settled == settled, (record.settled, settled)
        if settled is not None:
            assert ("late" in record.flags, "overrun" in record.flags) == (late, overrun)

    return check


def _shows(
    scope: str, expected: dict[tuple[str, str], tuple[int, int, int | None, int]]
) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        assert outcome.error is None, outcome.error
        accounts = outcome.accounts()
        stored = {
            (a.unit, a.period): (a.spent, a.held, a.cap, _start_of(a.period, a.window_start_us))
            for a in accounts
        }
        _agree(scope, expected, stored)

    return check
