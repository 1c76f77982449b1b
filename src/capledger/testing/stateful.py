"""A hypothesis state machine that drives a ledger against a plain model.

The model is written independently of the core, as plainly as possible: dictionaries of
integer nano-USD, a list of settles, and the rules of DESIGN.md section 2 spelled out. After
every step the ledger's balances must equal the model's, and the invariants must hold:
``spent + held <= cap`` unless the model recorded an overrun on that account in its window,
and ``held`` equals the sum of the open holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from capledger import BudgetExceeded, HoldClosed, IdempotentHoldClosed, Ledger, ManualClock
from capledger.ledger import Hold

__all__ = ["build_ledger_machine"]

SCOPES = ("user:a", "user:b", "tenant:t")
PERIODS = ("total", "day")
NANO = 10**9
START = datetime(2026, 1, 5, 12, tzinfo=UTC)


@dataclass
class ModelAccount:
    cap: int | None = None
    spent: int = 0
    held: int = 0
    window_start_us: int = 0
    excused: bool = False  # an overrun, or a lowered cap, put it past its cap this window


@dataclass
class ModelHold:
    scopes: tuple[str, ...]
    amount: int
    expires_us: int  # on the clock deadlines are measured on (``ManualClock.deadline_now``)
    state: str = "open"
    settled: int | None = None
    request_id: str = ""
    reserved: tuple[list[str], int, int] = ([], 0, 0)  # the reserve's scopes, amount, ttl_s


@dataclass
class Model:
    accounts: dict[tuple[str, str], ModelAccount] = field(default_factory=dict)
    holds: dict[str, ModelHold] = field(default_factory=dict)
    settles: list[tuple[int, tuple[str, ...], int]] = field(default_factory=list)


# Round amounts make exact sums (spent + held == cap) frequent, so the boundary is tested;
# arbitrary integers find the rest.
def _amounts(upper: int) -> st.SearchStrategy[int]:
    round_amounts = [0, 10**8, 2 * 10**8, 3 * 10**8, 5 * 10**8, NANO]
    return st.one_of(
        st.sampled_from([a for a in round_amounts if a <= upper]), st.integers(0, upper)
    )


def _day_start_us(now_us: int) -> int:
    day = 86_400 * 10**6
    return now_us - now_us % day


def build_ledger_machine(
    make_ledger: Callable[[ManualClock], Ledger],
    *,
    steps_wall: bool = False,
) -> type[RuleBasedStateMachine]:
    """Return a state machine class testing ledgers from ``make_ledger(clock)``.

    Use it as ``TestMyStore = build_ledger_machine(factory).TestCase``. With ``steps_wall``
    the machine also steps the wall clock alone, which must expire no hold: for stores that
    measure deadlines on the clock's ``deadline_now`` (not PostgreSQL with an injected
    clock, whose expiry follows the injected wall clock).
    """

    class LedgerMachine(RuleBasedStateMachine):
        holds = Bundle("holds")

        @initialize()
        def start(self) -> None:
            self.clock = ManualClock(START)
            self.ledger = make_ledger(self.clock)
            self.model = Model()
            self.refused = 0  # refused reserves, so that request ids stay unique

        def teardown(self) -> None:
            ledger = getattr(self, "ledger", None)
            if ledger is not None:
                ledger.close()

        # --- the model's rules --------------------------------------------------------------

        def _now(self) -> int:
            return self.clock.now_us()

        def _tick(self) -> int:
            return self.clock.deadline_now()[1]

        def _account(self, scope: str, period: str) -> ModelAccount:
            account = self.model.accounts.get((scope, period))
            if account is None:
                account = self.model.accounts[(scope, period)] = ModelAccount()
            if period == "day":
                start = _day_start_us(self._now())
                if account.window_start_us != start:
                    account.window_start_us = start
                    account.spent = 0
                    account.excused = False
            return account

        def _accounts(self, scopes: tuple[str, ...]) -> list[ModelAccount]:
            return [
                self._account(scope, period)
                for scope in scopes
                for period in PERIODS
                if period == "total" or (scope, period) in self.model.accounts
            ]

        def _expire_overdue(self) -> None:
            now = self._tick()
            for hold in self.model.holds.values():
                if hold.state == "open" and hold.expires_us <= now:
                    hold.state = "expired"
                    for account in self._accounts(hold.scopes):
                        account.held -= hold.amount

        # --- rules --------------------------------------------------------------------------

        @rule(
            scope=st.sampled_from(SCOPES),
            period=st.sampled_from(PERIODS),
            cap_nano=_amounts(2 * NANO),
        )
        def set_limit(self, scope: str, period: str, cap_nano: int) -> None:
            self.ledger.set_limit(scope, usd=Decimal(cap_nano) / NANO, period=period)
            self._expire_overdue()
            existed = (scope, period) in self.model.accounts
            account = self._account(scope, period)
            if not existed and period == "day":
                account.spent = sum(
                    amount
                    for ts, scopes, amount in self.model.settles
                    if scope in scopes and ts >= account.window_start_us
                )
                account.held = sum(
                    h.amount
                    for h in self.model.holds.values()
                    if h.state == "open" and scope in h.scopes
                )
            account.cap = cap_nano
            if account.spent + account.held > cap_nano:
                account.excused = True

        @rule(
            target=holds,
            scopes=st.lists(st.sampled_from(SCOPES), min_size=1, max_size=3, unique=True),
            amount=_amounts(NANO // 2),
            ttl_s=st.integers(1, 7200),
        )
        def reserve(self, scopes: list[str], amount: int, ttl_s: int) -> tuple[Hold, str] | None:
            self._expire_overdue()
            accounts = self._accounts(tuple(scopes))
            allowed = all(a.cap is None or a.spent + a.held + amount <= a.cap for a in accounts)
            request_id = f"req-{len(self.model.holds) + self.refused}"
            try:
                hold = self.ledger.reserve(
                    scopes, usd=Decimal(amount) / NANO, ttl=ttl_s, request_id=request_id
                )
            except BudgetExceeded:
                assert not allowed, "the ledger refused a hold the model allows"
                self.refused += 1
                return None
            assert allowed, "the ledger placed a hold the model refuses"
            for account in accounts:
                account.held += amount
            self.model.holds[hold.id] = ModelHold(
                tuple(scopes),
                amount,
                self._tick() + ttl_s * 10**6,
                request_id=request_id,
                reserved=(scopes, amount, ttl_s),
            )
            return (hold, hold.id)

        @precondition(lambda self: bool(self.model.holds))
        @rule(data=st.data(), return_closed=st.booleans())
        def retry_reserve(self, data: st.DataObject, return_closed: bool) -> None:
            """A retry with the same request_id and payload: the open hold, or a typed error
            for a closed one (or the closed hold itself, when asked for), never a new hold."""
            hold_id = data.draw(st.sampled_from(sorted(self.model.holds)))
            self._expire_overdue()
            model_hold = self.model.holds[hold_id]
            scopes, amount, ttl_s = model_hold.reserved
            retry = {
                "usd": Decimal(amount) / NANO,
                "ttl": ttl_s,
                "request_id": model_hold.request_id,
                "return_closed": return_closed,
            }
            if model_hold.state != "open" and not return_closed:
                try:
                    self.ledger.reserve(scopes, **retry)  # type: ignore[arg-type]
                except IdempotentHoldClosed as closed:
                    assert closed.hold is not None
                    assert (closed.hold.id, closed.hold.state) == (hold_id, model_hold.state)
                    return
                raise AssertionError("a retry of a closed hold must raise IdempotentHoldClosed")
            again = self.ledger.reserve(scopes, **retry)  # type: ignore[arg-type]
            assert (again.id, again.state) == (hold_id, model_hold.state)

        @rule(entry=consumes(holds), actual=_amounts(NANO))
        def settle(self, entry: tuple[Hold, str] | None, actual: int) -> None:
            if entry is None:
                return
            hold, hold_id = entry
            self._expire_overdue()
            model_hold = self.model.holds[hold_id]
            hold.settle(usd=Decimal(actual) / NANO)
            accounts = self._accounts(model_hold.scopes)
            # An expired or released hold's money went back when it closed; the spend is
            # recorded all the same, flagged late.
            late = model_hold.state in ("expired", "released")
            for account in accounts:
                if not late:
                    account.held -= model_hold.amount
                account.spent += actual
            for account in accounts:
                over_cap = account.cap is not None and account.spent + account.held > account.cap
                if over_cap or (actual > model_hold.amount and not late):
                    account.excused = account.excused or over_cap
            model_hold.state = "settled"
            model_hold.settled = actual
            self.model.settles.append((self._now(), model_hold.scopes, actual))
            assert ("late" in hold.flags) == late

        @rule(entry=holds)
        def release(self, entry: tuple[Hold, str] | None) -> None:
            if entry is None:
                return
            hold, hold_id = entry
            self._expire_overdue()
            model_hold = self.model.holds[hold_id]
            if model_hold.state == "settled":
                try:
                    hold.release()
                except HoldClosed:
                    return
                raise AssertionError("releasing a settled hold must raise HoldClosed")
            hold.release()
            if model_hold.state == "open":
                model_hold.state = "released"
                for account in self._accounts(model_hold.scopes):
                    account.held -= model_hold.amount

        @rule(entry=holds, more=_amounts(NANO // 4))
        def extend(self, entry: tuple[Hold, str] | None, more: int) -> None:
            if entry is None:
                return
            hold, hold_id = entry
            self._expire_overdue()
            model_hold = self.model.holds[hold_id]
            if model_hold.state != "open":
                try:
                    hold.extend(usd=Decimal(more) / NANO)
                except HoldClosed:
                    return
                raise AssertionError("extending a closed hold must raise HoldClosed")
            accounts = self._accounts(model_hold.scopes)
            allowed = all(a.cap is None or a.spent + a.held + more <= a.cap for a in accounts)
            try:
                hold.extend(usd=Decimal(more) / NANO)
            except BudgetExceeded:
                assert not allowed, "the ledger refused an extension the model allows"
                return
            assert allowed, "the ledger extended a hold the model refuses"
            model_hold.amount += more
            for account in accounts:
                account.held += more

        @rule(seconds=st.sampled_from([1, 30, 600, 3600, 6 * 3600, 86_400]))
        def advance_clock(self, seconds: int) -> None:
            self.clock.advance(timedelta(seconds=seconds))

        if steps_wall:

            @rule(seconds=st.sampled_from([1, 600, 3600, 86_400]))
            def step_wall_clock(self, seconds: int) -> None:
                """NTP steps the wall clock forward: windows move, deadlines do not."""
                self.clock.step_wall(timedelta(seconds=seconds))

        @precondition(lambda self: any(h.state == "open" for h in self.model.holds.values()))
        @rule()
        def sweep(self) -> None:
            self.ledger.sweep()
            self._expire_overdue()

        # --- invariants ---------------------------------------------------------------------

        @invariant()
        def balances_match_the_model(self) -> None:
            self._expire_overdue()
            for scope in SCOPES:
                stored = {b.period: b for b in self.ledger.balance(scope) if b.unit == "usd"}
                for period in PERIODS:
                    if (scope, period) not in self.model.accounts:
                        continue
                    account = self._account(scope, period)
                    if period == "total" and not stored:
                        assert account.spent == account.held == 0
                        continue
                    balance = stored[period]
                    spent = int(Decimal(balance.spent) * NANO)
                    held = int(Decimal(balance.held) * NANO)
                    assert (spent, held) == (account.spent, account.held), (
                        scope,
                        period,
                        balance,
                        account,
                    )
                    cap = None if account.cap is None else Decimal(account.cap) / NANO
                    assert balance.cap == cap
                    if account.cap is not None and not account.excused:
                        assert spent + held <= account.cap, "cap passed with no overrun"

        @invariant()
        def held_equals_the_open_holds(self) -> None:
            for (scope, _period), account in self.model.accounts.items():
                open_sum = sum(
                    h.amount
                    for h in self.model.holds.values()
                    if h.state == "open" and scope in h.scopes
                )
                assert account.held == open_sum

        @invariant()
        def the_journal_agrees(self) -> None:
            report = self.ledger.verify()
            # Exposures (a late settle after its expired budget went to another hold) are
            # reported, not errors of the store: the machine settles expired holds on purpose.
            assert not report.mismatches and not report.breaches, report

    LedgerMachine.__name__ = "LedgerMachine"
    return LedgerMachine
