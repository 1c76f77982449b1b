"""The decisions: one copy of the ledger's logic, pure Python, no I/O, time passed in.

Every store runs ``apply_batch`` inside its own atomic step (a lock, ``BEGIN IMMEDIATE``, a
transaction with row locks). The store gives the core a ``State`` that reads and writes its
rows; the core changes only records it got from the state and tells the state which ones
changed. Within a batch, operations apply in order exactly as if each had its own
transaction, and each gets its own ``Outcome``.

Invariants kept after every operation, for every account with a cap:

* ``held`` equals the sum of the amounts of the open holds on that scope and unit;
* ``spent + held <= cap`` unless a settle above its hold or a late settle (an overrun)
  pushed it past; an account past its cap refuses every new hold until its window resets.

Each decision checks everything before it changes anything, so a refused or invalid
operation writes nothing (window roll-over and expiry, which are true whatever the operation
decides, may still be written).

This module is longer than the 500 lines the package keeps to, on purpose: it is the one
copy of the ledger's rules (each operation's effect on accounts and holds, and the batch
that applies them), read top to bottom as the specification, and the one the PostgreSQL
fast path translates and its tripwire test pins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from capledger.bounds import COUNTER_STORAGE_MAX, MAX_AMOUNT, MAX_COUNTER, MAX_EXPIRE_PER_STEP
from capledger.errors import (
    BackendUnavailable,
    BudgetExceeded,
    CounterLimitReached,
    HoldClosed,
    HoldNotFound,
    IdempotencyConflict,
    IdempotentHoldClosed,
    InvalidAmount,
    LedgerError,
    LedgerInvariantError,
)
from capledger.money import from_units

from .periods import CALENDAR_PERIODS, next_window, retimed_end, window
from .records import (
    Account,
    EntryFields,
    Event,
    Extend,
    HoldRecord,
    HoldState,
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

__all__ = [
    "OPERATION_ERRORS",
    "Config",
    "State",
    "apply_batch",
    "apply_isolated",
    "apply_one",
    "new_account",
    "roll_window",
]


class State(Protocol):
    """What a store offers the core inside one atomic step."""

    def accounts(self, scope: str) -> list[Account]:
        """Every account of ``scope`` (all units and periods); the core may change them."""
        ...

    def add_account(self, account: Account) -> None:
        """Store a new account."""
        ...

    def remove_account(self, account: Account) -> None:
        """Delete an account."""
        ...

    def account_changed(self, account: Account) -> None:
        """Mark an account from ``accounts`` as changed."""
        ...

    def hold(self, hold_id: str) -> HoldRecord | None:
        """The hold with this id, or None."""
        ...

    def hold_by_request(self, request_id: str) -> HoldRecord | None:
        """The hold placed with this request_id, or None."""
        ...

    def add_hold(self, hold: HoldRecord) -> None:
        """Store a new hold."""
        ...

    def hold_changed(self, hold: HoldRecord) -> None:
        """Mark a hold as changed."""
        ...

    def overdue_holds(self, now_us: int, limit: int) -> list[HoldRecord]:
        """Up to ``limit`` open holds whose ``deadline_us <= now_us``, oldest deadline first.

        ``now_us`` is the time on the clock deadlines are measured on (``tick_us`` below).
        """
        ...

    def open_holds_on(self, scope: str) -> list[HoldRecord]:
        """Every open hold charged to ``scope`` (used when a limit is created)."""
        ...

    def spent_since(self, scope: str, unit: str, since_us: int) -> int:
        """The sum of settled ``unit`` amounts on ``scope`` in the journal since ``since_us``."""
        ...

    def append(self, entry: EntryFields) -> None:
        """Append a journal entry, given as its fields in ``Entry``'s order (a tuple, so
        that a store keeping rows need not build an ``Entry`` first)."""
        ...


@dataclass(frozen=True, slots=True)
class Config:
    """Settings the decisions read; immutable.

    ``threshold_bps``: the threshold fractions in basis points (stored ascending).
    ``listened``: the event kinds someone listens to; the frequent events (one per
    operation) are only built when listened to, the rare ones (denied, expired, overrun,
    threshold) always are.

    A store is handed the config with each batch, and nothing changes it: a ledger whose
    listeners change makes a new one (``dataclasses.replace``) for the batches after, while
    a batch under way decides with the one it began with, whole.
    """

    threshold_bps: tuple[int, ...] = (8000, 9500)
    listened: frozenset[str] = frozenset()
    #: From the highest threshold an account has announced, the next one to watch for, so
    #: that a settle checks one product instead of every threshold. Past the last threshold
    #: there is nothing to watch; a level this ledger does not know (another ledger's
    #: thresholds) maps to nothing here and is checked in full. Derived, never passed.
    next_threshold_bp: Mapping[int, int | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: the derived and normalised fields are set once, here.
        ascending = tuple(sorted(self.threshold_bps))
        object.__setattr__(self, "threshold_bps", ascending)
        object.__setattr__(self, "listened", frozenset(self.listened))
        levels = (0, *ascending)
        next_threshold_bp = {
            level: next((bp for bp in ascending if bp > level), None) for level in levels
        }
        object.__setattr__(self, "next_threshold_bp", next_threshold_bp)


def apply_batch(
    state: State,
    ops: Sequence[Op],
    now_us: int,
    config: Config,
    failed: dict[int, Outcome] | None = None,
    tick_us: int | None = None,
) -> list[Outcome]:
    """Apply ``ops`` in order at ``now_us``; return one outcome per operation.

    ``now_us`` is the wall clock: it stamps the journal and places calendar windows.
    ``tick_us`` is the time on the clock hold deadlines are measured on, one that never
    steps (see ``capledger.clock``); a store that measures deadlines on ``now_us`` itself
    (PostgreSQL's server time) leaves it out. Only the source of the two times differs
    between stores: the decisions are the same.

    The batch first expires a bounded number of overdue holds (lazy expiry, so no sweeper is
    needed for correctness).

    One operation's failure is its own: a decision that raises one of ``OPERATION_ERRORS``
    (never ``BackendUnavailable``, a failure of the store) gives its operation an outcome
    carrying that exception, and the batch goes on. ``failed`` maps the index of each
    operation that failed so to that outcome, and an operation already in it is not decided
    again: ``apply_isolated`` decides the batch again without them, so that nothing a failed
    decision changed before it raised is kept.
    """
    if tick_us is None:
        tick_us = now_us
    if failed is None:
        if len(ops) == 1:
            return [apply_one(state, ops[0], now_us, config, tick_us)]
        failed = {}
    expired = expire_overdue(state, now_us, MAX_EXPIRE_PER_STEP, tick_us)
    outcomes = []
    for index, op in enumerate(ops):
        outcome = failed.get(index)
        if outcome is not None:
            pass  # it failed in an earlier run: left out of this one
        elif type(op) is Sweep:  # a sweep counts the holds this batch already expired
            outcome = Outcome(value=expired + expire_overdue(state, now_us, op.limit, tick_us))
            expired = 0
        else:
            try:
                outcome = _DECISIONS[type(op)](state, op, now_us, config, tick_us)
            except OPERATION_ERRORS as error:
                if isinstance(error, BackendUnavailable):
                    raise
                outcome = failed[index] = Outcome(error=error)
        outcomes.append(outcome)
    return outcomes


#: What a decision may raise that fails its own operation alone (see ``apply_batch``): a
#: typed error, or what bad data in an operation built past the ledger's checks would raise.
#: Anything else (a store's driver error, a row the store must fetch first, an error of the
#: interpreter) is the batch's, and fails or restarts it whole.
OPERATION_ERRORS: tuple[type[Exception], ...] = (
    LedgerError,
    LedgerInvariantError,
    TypeError,
    ValueError,
    LookupError,
    ArithmeticError,
    AttributeError,
)

_S = TypeVar("_S", bound=State)


def apply_isolated(
    fresh: Callable[[], _S],
    ops: Sequence[Op],
    now_us: int,
    config: Config,
    tick_us: int | None = None,
) -> tuple[_S, list[Outcome]]:
    """``apply_batch`` on ``fresh()``, decided again without the operations that failed.

    A decision that raised may have changed rows before it did; a run on a fresh state
    without it keeps nothing of that, so the other operations commit exactly as if the
    failed ones had never been sent (each failed one's caller gets its exception). It runs
    again until no operation fails anew: at most once more per failed operation, and only
    when one failed.

    Args:
        fresh: a new state over the rows as stored, with nothing of an earlier run.

    Returns:
        The state of the last run (what the store writes back) and the outcomes.
    """
    failed: dict[int, Outcome] = {}
    while True:
        state = fresh()
        known = len(failed)
        outcomes = apply_batch(state, ops, now_us, config, failed, tick_us)
        if len(failed) == known:
            return state, outcomes


def apply_one(
    state: State, op: Op, now_us: int, config: Config, tick_us: int | None = None
) -> Outcome:
    """``apply_batch`` of one operation, without the lists (the in-memory store's path)."""
    if tick_us is None:
        tick_us = now_us
    # ``expire_overdue`` written out: this runs before every operation, and the call to
    # the helper cost more than its loop, which usually has nothing to expire.
    overdue = state.overdue_holds(tick_us, MAX_EXPIRE_PER_STEP)
    for hold in overdue:
        _expire(state, hold, now_us)
    if type(op) is Sweep:
        return Outcome(value=len(overdue) + expire_overdue(state, now_us, op.limit, tick_us))
    return _DECISIONS[type(op)](state, op, now_us, config, tick_us)


def _inspect(state: State, op: Inspect, now_us: int, config: Config, tick_us: int) -> Outcome:
    accounts = [_current(state, account, now_us) for account in state.accounts(op.scope)]
    return Outcome(value=[account.copy() for account in accounts])


def _sweep(state: State, op: Sweep, now_us: int, config: Config, tick_us: int) -> Outcome:
    return Outcome(value=expire_overdue(state, now_us, op.limit, tick_us))


# --- accounts -------------------------------------------------------------------------------


def new_account(
    scope: str, unit: str, period: str, *, cap: int | None, tz: str, now_us: int
) -> Account:
    """A fresh account whose window contains ``now_us`` (anchored there for durations)."""
    start, end = window(period, tz, now_us, now_us)
    return Account(
        scope,
        unit,
        period,
        cap=cap,
        spent=0,
        held=0,
        window_start_us=start,
        window_end_us=end,
        tz=tz,
        anchor_us=now_us,
    )


def roll_window(account: Account, now_us: int) -> bool:
    """Move ``account`` into the window containing ``now_us`` if its window has passed;
    return whether it moved.

    Spend starts again from zero; open holds stay counted as held, because the money they
    hold has not been spent or released yet.
    """
    end = account.window_end_us
    if end is None or now_us < end:
        return False
    account.window_start_us, account.window_end_us = next_window(
        account.period, account.tz, account.anchor_us, end, now_us
    )
    account.spent = 0
    account.alert_bp = 0
    return True


def _current(state: State, account: Account, now_us: int) -> Account:
    """``account`` in the window containing ``now_us`` (rolled, and written, if it passed)."""
    # This runs for every account of every operation, and windows rarely pass: the cheap
    # test comes first, sparing a call (memory:// pairs, benchmarks/compare_commits.py).
    end = account.window_end_us
    if end is not None and now_us >= end and roll_window(account, now_us):
        state.account_changed(account)
    return account


def _accounts_for(
    state: State, scopes: tuple[str, ...], units: Iterable[str], now_us: int
) -> list[Account]:
    """Every current account of ``scopes`` in ``units``, creating the untracked totals.

    Each (scope, unit) always has a ``total`` account, capped or not, so that every spend is
    counted from the first use and a limit created later starts from the truth.
    """
    touched: list[Account] = []
    for scope in scopes:
        accounts = state.accounts(scope)
        for unit in units:
            has_total = False
            for account in accounts:
                if account.unit == unit:
                    end = account.window_end_us
                    if end is None:  # only the total period has no end
                        has_total = True
                    elif now_us >= end:
                        _current(state, account, now_us)
                    touched.append(account)
            if not has_total:
                total = new_account(scope, unit, "total", cap=None, tz="UTC", now_us=now_us)
                state.add_account(total)
                touched.append(total)
    return touched


def _refusal(account: Account, amount: int, now_us: int) -> BudgetExceeded:
    """Why ``account`` (which has a cap) cannot take ``amount`` more."""
    cap = account.cap
    if cap is None or account.spent + account.held + amount <= cap:
        raise LedgerInvariantError(f"{account!r} can take {amount}: nothing to refuse")
    retry_after = None
    end = account.window_end_us
    if end is not None and account.held + amount <= cap:
        # Spend resets at the window's end; held money does not, so a reset helps only if
        # the holds plus this request fit under the cap on their own.
        retry_after = timedelta(microseconds=end - now_us)
    return BudgetExceeded(
        scope=account.scope,
        unit=account.unit,
        period=account.period,
        requested=from_units(account.unit, amount),
        available=from_units(account.unit, max(0, cap - account.spent - account.held)),
        retry_after=retry_after,
    )


def _counter_refusal(account: Account, used: int, amount: int, bound: int) -> CounterLimitReached:
    """Why ``account``, ``used`` up to now, cannot record ``amount`` more below ``bound``."""
    unit = account.unit
    return CounterLimitReached(
        scope=account.scope,
        unit=unit,
        period=account.period,
        requested=from_units(unit, amount),
        available=from_units(unit, max(0, bound - used)),
        bound=from_units(unit, bound),
    )


def _check_and_hold(
    state: State, accounts: list[Account], amounts: dict[str, int], now_us: int
) -> BudgetExceeded | None:
    """Add ``amounts`` to ``held`` on every account, or on none and return the refusal.

    A capped account is bounded by its cap (never above ``MAX_COUNTER``, checked at import);
    an uncapped one by ``MAX_COUNTER`` itself, so that every settle has room to be recorded.
    """
    for account in accounts:
        cap = account.cap  # checked here first: _refusal builds the error, rarely needed
        if cap is not None:
            if account.spent + account.held + amounts[account.unit] > cap:
                return _refusal(account, amounts[account.unit], now_us)
        elif account.spent + account.held + amounts[account.unit] > MAX_COUNTER:
            used = account.spent + account.held
            return _counter_refusal(account, used, amounts[account.unit], MAX_COUNTER)
    for account in accounts:
        account.held += amounts[account.unit]
        state.account_changed(account)
    return None


def _take_off(account: Account, amount: int, hold: HoldRecord) -> None:
    if account.held < amount:
        raise LedgerInvariantError(f"{account!r} holds less than open hold {hold.id} ({amount})")
    account.held -= amount


def _unhold(state: State, hold: HoldRecord, accounts: list[Account]) -> None:
    """Take an open hold's amounts off ``accounts`` (its scopes' accounts)."""
    for account in accounts:
        _take_off(account, hold.amounts.get(account.unit, 0), hold)
        state.account_changed(account)


def _close(state: State, hold: HoldRecord, new_state: HoldState, now_us: int) -> None:
    hold.state = new_state
    hold.closed_us = now_us
    state.hold_changed(hold)


# --- holds ----------------------------------------------------------------------------------


def expire_overdue(state: State, now_us: int, limit: int, tick_us: int) -> int:
    """Expire up to ``limit`` open holds past their deadline; return how many were expired."""
    overdue = state.overdue_holds(tick_us, limit)
    for hold in overdue:
        _expire(state, hold, now_us)
    return len(overdue)


def _expire(state: State, hold: HoldRecord, now_us: int) -> None:
    _unhold(state, hold, _accounts_for(state, hold.scopes, list(hold.amounts), now_us))
    _close(state, hold, "expired", now_us)
    state.append(
        (now_us, "expired", hold.id, hold.request_id, hold.scopes, hold.amounts, hold.tags, "")
    )


def _expire_if_overdue(
    state: State, hold: HoldRecord, now_us: int, tick_us: int
) -> list[Event] | None:
    if hold.state == "open" and tick_us >= hold.deadline_us:
        _expire(state, hold, now_us)
        return [_hold_event("expired", hold, hold.amounts, now_us)]
    return None


def _hold_event(kind: str, hold: HoldRecord, amounts: dict[str, int], now_us: int) -> Event:
    return Event(
        kind,
        now_us,
        hold_id=hold.id,
        scopes=hold.scopes,
        amounts={unit: from_units(unit, amount) for unit, amount in amounts.items()},
    )


def _reserve(state: State, op: Reserve, now_us: int, config: Config, tick_us: int) -> Outcome:
    # A retried hold id is this very reserve, retried by the store after a lost commit: it
    # returns the hold it made, in any state (the caller has not seen it yet).
    existing = state.hold(op.hold_id)
    by_request = False
    if existing is None and op.request_id is not None:
        existing = state.hold_by_request(op.request_id)
        by_request = True
    if existing is not None:
        if existing.fingerprint != op.fingerprint:
            return Outcome(
                error=IdempotencyConflict(
                    f"request_id {op.request_id!r} was used before with a different payload"
                )
            )
        if by_request and existing.state != "open":
            # A caller's retry of a closed hold holds nothing: money spent under it now
            # would be recorded nowhere if the retry took the closed hold for a live one.
            # The hold comes with the error, for a caller who asked to receive it.
            return Outcome(existing.copy(), error=_closed_retry(existing))
        return Outcome(existing.copy())

    accounts = _accounts_for(state, op.scopes, op.amounts, now_us)
    refusal = _check_and_hold(state, accounts, op.amounts, now_us)
    if refusal is not None:
        return Outcome(
            error=refusal,
            events=[
                Event(
                    "denied",
                    now_us,
                    scopes=op.scopes,
                    amounts={u: from_units(u, a) for u, a in op.amounts.items()},
                    scope=refusal.scope,
                    unit=refusal.unit,
                    period=refusal.period,
                    detail=str(refusal),
                )
            ],
        )
    hold = HoldRecord(  # positional: this is the hot path (see HoldRecord.__init__)
        op.hold_id,
        op.request_id,
        op.scopes,
        op.amounts,  # ops are not reused, and records never change it in place
        "open",
        now_us,
        now_us + op.ttl_us,  # expires_us
        op.tags,
        op.fingerprint,
        None,
        None,
        "",
        tick_us + op.ttl_us,  # deadline_us
    )
    state.add_hold(hold)
    state.append(
        (now_us, "reserved", hold.id, hold.request_id, hold.scopes, op.amounts, hold.tags, "")
    )
    return Outcome(hold.copy())


def _closed_retry(hold: HoldRecord) -> IdempotentHoldClosed:
    settled = hold.settled or {}
    return IdempotentHoldClosed(
        request_id=hold.request_id,
        hold_id=hold.id,
        state=hold.state,
        settled={unit: from_units(unit, amount) for unit, amount in settled.items()},
    )


def _extend(state: State, op: Extend, now_us: int, config: Config, tick_us: int) -> Outcome:
    hold = state.hold(op.hold_id)
    if hold is None:
        return Outcome(error=HoldNotFound(f"no hold has id {op.hold_id!r}"))
    events = _expire_if_overdue(state, hold, now_us, tick_us)
    if hold.state != "open":
        return Outcome(
            error=HoldClosed(f"hold {hold.id} is {hold.state}; only an open hold can extend"),
            events=events,
        )
    for unit, amount in op.amounts.items():
        if hold.amounts.get(unit, 0) + amount > MAX_AMOUNT[unit]:
            return Outcome(error=InvalidAmount(f"the hold's {unit} would pass the bound"))
    accounts = _accounts_for(state, hold.scopes, list(op.amounts), now_us)
    refusal = _check_and_hold(state, accounts, op.amounts, now_us)
    if refusal is not None:
        return Outcome(error=refusal)
    topped_up = dict(hold.amounts)
    for unit, amount in op.amounts.items():
        topped_up[unit] = topped_up.get(unit, 0) + amount
    hold.amounts = topped_up  # replaced, not changed in place: copies share the old one
    if op.ttl_us is not None:
        hold.deadline_us = max(hold.deadline_us, tick_us + op.ttl_us)
        hold.expires_us = now_us + (hold.deadline_us - tick_us)  # for display
    state.hold_changed(hold)
    state.append(
        (now_us, "extended", hold.id, hold.request_id, hold.scopes, op.amounts, hold.tags, "")
    )
    return Outcome(hold.copy())


def _settle(state: State, op: Settle, now_us: int, config: Config, tick_us: int) -> Outcome:
    hold = state.hold(op.hold_id)
    if hold is None:
        return Outcome(error=HoldNotFound(f"no hold has id {op.hold_id!r}"))
    events: list[Event] = []
    if hold.state == "open" and tick_us >= hold.deadline_us:
        events = _expire_if_overdue(state, hold, now_us, tick_us) or []
    held = hold.amounts
    actual = op.amounts
    for unit in held:
        if unit not in actual:  # units not given settle at their held amount
            actual = {**held, **actual}
            break
    if hold.state == "settled":
        if hold.settled == actual:
            return Outcome(hold.copy())  # the same settle again: a no-op
        settled = hold.settled or {}
        return Outcome(
            error=HoldClosed(
                hold_id=hold.id,
                state=hold.state,
                settled={unit: from_units(unit, amount) for unit, amount in settled.items()},
            )
        )

    # An expired or released hold gave its held money back when it closed; money spent under
    # it is still spent, so it is recorded all the same, flagged late (never refused).
    late = hold.state != "open"
    accounts = _accounts_for(state, hold.scopes, actual, now_us)
    for account in accounts:
        # Holds keep every counter under MAX_COUNTER, and the headroom above it takes
        # thousands of the largest settles (see bounds.py); only past all of them would a
        # counter overflow its storage. Refuse that one settle, typed, rather than let the
        # store's write fail the whole batch.
        amount = actual[account.unit]
        if account.spent + amount > COUNTER_STORAGE_MAX:
            refusal = _counter_refusal(account, account.spent, amount, COUNTER_STORAGE_MAX)
            return Outcome(error=refusal, events=events or None)
    over_cap: list[Account] = []
    crossing = False  # whether some account may have crossed an alert threshold
    next_threshold_bp = config.next_threshold_bp
    for account in accounts:
        unit = account.unit
        if not late:
            _take_off(account, held.get(unit, 0), hold)
        account.spent += actual[unit]
        state.account_changed(account)
        cap = account.cap
        if cap is not None:
            if account.spent + account.held > cap:
                over_cap.append(account)
            watch_bp = next_threshold_bp.get(account.alert_bp, 0)
            if watch_bp is not None and account.spent * 10_000 >= watch_bp * cap:
                crossing = True
    beyond_hold: dict[str, int] = {}
    for unit, amount in actual.items():
        if amount > held.get(unit, 0):
            beyond_hold[unit] = amount - held.get(unit, 0)
    overrun = (bool(beyond_hold) and not late) or bool(over_cap)
    hold.settled = actual
    hold.flags = ("late,overrun" if overrun else "late") if late else ("overrun" if overrun else "")
    if op.tags:
        hold.tags = {**hold.tags, **op.tags}
    _close(state, hold, "settled", now_us)
    state.append(
        (now_us, "settled", hold.id, hold.request_id, hold.scopes, actual, hold.tags, hold.flags)
    )
    if "settled" in config.listened:
        events.append(_hold_event("settled", hold, actual, now_us))
    if overrun:
        state.append(
            (
                now_us,
                "overrun",
                hold.id,
                hold.request_id,
                hold.scopes,
                beyond_hold,
                hold.tags,
                hold.flags,
            )
        )
        detail = ", ".join(f"{a.scope} {a.unit}/{a.period}" for a in over_cap)
        events.append(
            Event(
                "overrun",
                now_us,
                hold_id=hold.id,
                scopes=hold.scopes,
                amounts={u: from_units(u, a) for u, a in beyond_hold.items()},
                detail=f"over cap: {detail}" if detail else "settled above the hold",
            )
        )
    if crossing:
        events.extend(_crossed_thresholds(state, accounts, now_us, config))
    # A settled hold never changes again, so its outcome can share the record: no copy.
    return Outcome(hold, events=events or None)


def _crossed_thresholds(
    state: State, accounts: list[Account], now_us: int, config: Config
) -> list[Event]:
    events: list[Event] = []
    for account in accounts:
        cap = account.cap
        if not cap:
            continue
        for bp in config.threshold_bps:
            if account.alert_bp < bp and account.spent * 10_000 >= bp * cap:
                account.alert_bp = bp
                state.account_changed(account)
                events.append(
                    Event(
                        "threshold",
                        now_us,
                        scope=account.scope,
                        unit=account.unit,
                        period=account.period,
                        fraction=bp / 10_000,
                        amounts={
                            "spent": from_units(account.unit, account.spent),
                            "cap": from_units(account.unit, cap),
                        },
                    )
                )
    return events


def _release(state: State, op: Release, now_us: int, config: Config, tick_us: int) -> Outcome:
    hold = state.hold(op.hold_id)
    if hold is None:
        return Outcome(error=HoldNotFound(f"no hold has id {op.hold_id!r}"))
    events = _expire_if_overdue(state, hold, now_us, tick_us)
    if hold.state == "settled":
        return Outcome(error=HoldClosed(f"hold {hold.id} is settled; it cannot be released"))
    if hold.state == "open":
        _unhold(state, hold, _accounts_for(state, hold.scopes, list(hold.amounts), now_us))
        _close(state, hold, "released", now_us)
        state.append(
            (now_us, "released", hold.id, hold.request_id, hold.scopes, hold.amounts, hold.tags, "")
        )
        if "released" in config.listened:
            events = [_hold_event("released", hold, hold.amounts, now_us)]
    return Outcome(hold.copy(), events=events)  # released or expired already: a no-op


# --- limits ---------------------------------------------------------------------------------


def _set_limit(state: State, op: SetLimit, now_us: int, config: Config, tick_us: int) -> Outcome:
    """Create a limit, or change one in place.

    A new cap takes effect at once; held money stays held, so nothing is stranded. A
    calendar limit re-asserted with another time zone keeps its current window's start,
    spent and held; the window ends at ``retimed_end`` and the windows after it follow the
    new zone. A duration keeps its anchor (a time zone changes nothing for it). The row is
    changed in place, never removed and added again.
    """
    accounts = state.accounts(op.scope)
    existing = next((a for a in accounts if a.unit == op.unit and a.period == op.period), None)
    tags: dict[str, object] = {"period": op.period, "tz": op.tz}
    if existing is not None:
        account = _current(state, existing, now_us)
        account.cap = op.cap
        end = account.window_end_us
        if account.tz != op.tz and op.period in CALENDAR_PERIODS and end is not None:
            account.window_end_us = retimed_end(op.period, op.tz, account.window_start_us, end)
            account.tz = op.tz
        state.account_changed(account)
    else:
        account = new_account(op.scope, op.unit, op.period, cap=op.cap, tz=op.tz, now_us=now_us)
        # Start from the truth: what this window has already spent, and what is held now.
        account.spent = state.spent_since(op.scope, op.unit, account.window_start_us)
        account.held = sum(hold.amounts.get(op.unit, 0) for hold in state.open_holds_on(op.scope))
        state.add_account(account)
        # Recorded so that an audit can start from it even when the journal before it was
        # counted in another time zone's windows.
        tags["spent"] = str(account.spent)
    state.append((now_us, "limit_set", None, None, (op.scope,), {op.unit: op.cap}, tags, ""))
    return Outcome(value=True)


def _remove_limit(
    state: State, op: RemoveLimit, now_us: int, config: Config, tick_us: int
) -> Outcome:
    for account in state.accounts(op.scope):
        if account.unit == op.unit and account.period == op.period and account.cap is not None:
            if account.period == "total":
                account.cap = None  # the lifetime total is kept: it tracks all spend
                state.account_changed(account)
            else:
                state.remove_account(account)
            state.append(
                (
                    now_us,
                    "limit_removed",
                    None,
                    None,
                    (op.scope,),
                    {op.unit: 0},
                    {"period": op.period},
                    "",
                )
            )
            return Outcome(value=True)
    return Outcome(value=False)


#: One decision per operation type (a dictionary lookup, not a chain of type tests).
_DECISIONS: dict[type, Callable[[State, Any, int, Config, int], Outcome]] = {
    Reserve: _reserve,
    Settle: _settle,
    Release: _release,
    Extend: _extend,
    SetLimit: _set_limit,
    RemoveLimit: _remove_limit,
    Inspect: _inspect,
    Sweep: _sweep,
}
