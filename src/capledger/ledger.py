"""``Ledger`` and ``AsyncLedger``: the public API over a store.

All logic that is not I/O lives in ``_LedgerBase`` and ``_HoldBase``: argument checks, the
operations sent to the store, how an outcome becomes a return value or an error, events.
``Ledger``/``Hold`` and ``AsyncLedger``/``AsyncHold`` are thin shells that only differ in
how they wait for the store (a call, or an ``await``), as httpx does with its clients.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar

from capledger._batch import AsyncBatcher, Batcher
from capledger._core import (
    HOLD_STATES,
    Account,
    Config,
    Entry,
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
    parse_period,
    parse_timezone,
)
from capledger._core.audit import REPORT_BUILTIN_KEYS, VerifyReport, build_report, verify
from capledger._core.holds import closing_op, observe_extensions, running_amounts
from capledger._core.periods import check_timezone_applies
from capledger._flow import arun, run
from capledger._validate import (
    amounts_of,
    fingerprint,
    hold_id_of,
    hold_terms,
    moment_of,
    new_hold_id,
    request_id_of,
    tags_of,
    ttl_us_of,
)
from capledger.bounds import DEFAULT_TTL_S, MAX_SWEEP_PER_STEP
from capledger.clock import Clock, SystemClock, from_us, to_us
from capledger.errors import (
    BudgetExceeded,
    ConfigurationError,
    IdempotentHoldClosed,
    InvalidInput,
    LedgerError,
    LedgerInvariantError,
)
from capledger.money import UNITS, AmountLike, Unit, from_units, parse_unit, to_units
from capledger.scopes import parse_scope
from capledger.stores import Store, open_store

__all__ = [
    "DEFAULT_URL",
    "EVENT_KINDS",
    "AsyncHold",
    "AsyncLedger",
    "Balance",
    "Hold",
    "HoldInfo",
    "Ledger",
    "Limit",
    "UnsettledHoldWarning",
]

_LOG = logging.getLogger("capledger")
DEFAULT_URL: Final = "sqlite:///capledger.db"
EVENT_KINDS: Final = (
    "reserved",
    "settled",
    "released",
    "expired",
    "denied",
    "overrun",
    "threshold",
)
_T = TypeVar("_T")
_P = ParamSpec("_P")
_R = TypeVar("_R")
#: Thresholds are scaled to basis points here, not in the caller's decimal context.
_THRESHOLD_CONTEXT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])
#: The largest ``holds(limit=...)`` passed on to a store (a larger one lists as many).
_MAX_LISTED: Final = 2**62


class UnsettledHoldWarning(UserWarning):
    """A hold left its ``with`` block unsettled with nothing observed: it was settled in full."""


@dataclass(frozen=True, slots=True)
class Balance:
    """One account of a scope, in API units (``Decimal`` USD, ``int`` tokens and requests).

    ``available`` is ``cap - spent - held`` (never below zero), or None with no cap.
    ``window_end`` is None for the ``total`` period.
    """

    scope: str
    unit: str
    period: str
    cap: Decimal | int | None
    spent: Decimal | int
    held: Decimal | int
    available: Decimal | int | None
    window_start: datetime
    window_end: datetime | None


@dataclass(frozen=True, slots=True)
class Limit:
    """A cap on one (scope, unit, period)."""

    scope: str
    unit: str
    period: str
    cap: Decimal | int
    tz: str


@dataclass(frozen=True, slots=True)
class HoldInfo:
    """A read-only view of a hold, as listed by ``holds()``."""

    id: str
    request_id: str | None
    scopes: tuple[str, ...]
    amounts: dict[str, Decimal | int]
    state: str
    created_at: datetime
    expires_at: datetime
    settled: dict[str, Decimal | int] | None
    flags: str
    tags: dict[str, object]


def _api_amounts(amounts: Mapping[str, int]) -> dict[str, Decimal | int]:
    return {unit: from_units(unit, amount) for unit, amount in amounts.items()}


def _balance(account: Account) -> Balance:
    unit = account.unit
    cap = account.cap
    return Balance(
        scope=account.scope,
        unit=unit,
        period=account.period,
        cap=None if cap is None else from_units(unit, cap),
        spent=from_units(unit, account.spent),
        held=from_units(unit, account.held),
        available=None
        if cap is None
        else from_units(unit, max(0, cap - account.spent - account.held)),
        window_start=from_us(account.window_start_us),
        window_end=None if account.window_end_us is None else from_us(account.window_end_us),
    )


def _hold_info(record: HoldRecord) -> HoldInfo:
    return HoldInfo(
        id=record.id,
        request_id=record.request_id,
        scopes=record.scopes,
        amounts=_api_amounts(record.amounts),
        state=record.state,
        created_at=from_us(record.created_us),
        expires_at=from_us(record.expires_us),
        settled=None if record.settled is None else _api_amounts(record.settled),
        flags=record.flags,
        tags=dict(record.tags),
    )


def _settle_op(
    hold_id: str,
    usd: AmountLike | None,
    tokens: int | None,
    requests: int | None,
    tags: Mapping[str, object] | None,
) -> Settle:
    """The settle of ``hold_id``, checked: units not given settle at their held amount."""
    amounts = amounts_of(usd, tokens, requests, required=False)
    return Settle(hold_id, amounts, tags_of(tags) if tags else {})


def _release_op(hold_id: str) -> Release:
    """The release of ``hold_id`` given by a caller, checked."""
    return Release(hold_id_of(hold_id))


#: What ``report(since=..., until=...)`` accepts (see ``moment_of``).
Moment = str | date | datetime


#: A flow of several store steps written once: it yields operations and is sent their
#: outcomes (a sans-I/O generator, ``capledger._flow``); ``_run`` and ``_arun`` drive it
#: with or without await, and a ledger error of a step is the flow's to decide about.
_Flow = Generator[Op, Outcome, _T]


def _run(flow: _Flow[_T], execute: Callable[[Op], Outcome]) -> _T:
    return run(flow, execute, catch=LedgerError)


async def _arun(flow: _Flow[_T], execute: Callable[[Op], Awaitable[Outcome]]) -> _T:
    return await arun(flow, execute, catch=LedgerError)


class _LedgerBase:
    """Everything ``Ledger`` and ``AsyncLedger`` share: no I/O here."""

    def __init__(
        self,
        url: str | None = None,
        *,
        clock: Clock | None = None,
        thresholds: Sequence[float | Decimal | str] = (0.8, 0.95),
        timezone: str = "UTC",
    ) -> None:
        self._clock = clock or SystemClock()
        self._config = Config(_threshold_bps(thresholds))
        parse_timezone(timezone)
        self._timezone = timezone
        self.url = url or os.environ.get("CAPLEDGER_URL") or DEFAULT_URL
        self._store: Store = open_store(self.url, self._clock)
        self._listeners: dict[str, list[Callable[[Event], object]]] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # --- events -----------------------------------------------------------------------------

    def on(self, event: str, callback: Callable[[Event], object]) -> Callable[[Event], object]:
        """Call ``callback(event)`` whenever ``event`` happens; returns ``callback``.

        Events: reserved, settled, released, expired, denied, overrun, threshold. A callback
        that raises is logged and never breaks the ledger. Callbacks run in the thread (or
        task) whose operation caused the event.
        """
        if event not in EVENT_KINDS:
            raise InvalidInput(f"unknown event {event!r}; use one of {', '.join(EVENT_KINDS)}")
        self._listeners.setdefault(event, []).append(callback)
        self._config.listened.add(event)
        return callback

    def off(self, event: str, callback: Callable[[Event], object]) -> None:
        """Stop calling ``callback`` for ``event``."""
        listeners = self._listeners.get(event, [])
        if callback in listeners:
            listeners.remove(callback)
        if not listeners:
            self._config.listened.discard(event)

    def _emit(self, events: Iterable[Event]) -> None:
        for event in events:
            for callback in self._listeners.get(event.kind, ()):
                try:
                    callback(event)
                except Exception:
                    _LOG.exception("capledger %s callback %r failed", event.kind, callback)

    def _unwrap(self, outcome: Outcome) -> Outcome:
        """Fire the outcome's events, then raise its error if it has one."""
        if outcome.events:
            self._emit(outcome.events)
        if outcome.error is not None:
            raise outcome.error
        return outcome

    # --- building operations (validation happens here, before any I/O) ---------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError(f"this {type(self).__name__} is closed")

    def _reserve_op(
        self,
        scopes: str | Sequence[str],
        usd: AmountLike | None,
        tokens: int | None,
        requests: int | None,
        request_id: str | None,
        ttl: float | timedelta,
        tags: Mapping[str, object] | None,
    ) -> Reserve:
        if self._closed:
            self._check_open()
        if type(scopes) is list:
            scopes = tuple(scopes)  # hashable, so a list of scopes hits the cache too
        try:
            scope_tuple, cached_amounts, ttl_us = hold_terms(scopes, usd, tokens, requests, ttl)
        except TypeError:  # an unhashable argument, never a valid one: checked uncached
            terms = hold_terms.__wrapped__(scopes, usd, tokens, requests, ttl)
            scope_tuple, cached_amounts, ttl_us = terms
        amounts = dict(cached_amounts)  # the hold's own: the cached one is shared
        # The checks below are skipped when there is nothing to check: this is the hot path.
        clean_tags = tags_of(tags) if tags else {}
        checked_request_id = None if request_id is None else request_id_of(request_id)
        return Reserve(  # positional: a keyword call costs twice as much on this hot path
            new_hold_id(),
            scope_tuple,
            amounts,
            ttl_us,
            checked_request_id,
            clean_tags,
            ""
            if checked_request_id is None
            else fingerprint(scope_tuple, amounts, ttl_us, clean_tags),
        )

    def _reserved(self, outcome: Outcome, return_closed: bool) -> HoldRecord:
        error = outcome.error
        if type(error) is IdempotentHoldClosed and outcome.hold is not None:
            if return_closed:
                return outcome.hold
            error.hold = _hold_info(outcome.hold)
        if outcome.events or error is not None:
            self._unwrap(outcome)
        record = outcome.hold
        if record is None:
            raise LedgerInvariantError("a reserve outcome without a hold")
        if self._listeners.get("reserved"):
            self._emit(
                [
                    Event(
                        "reserved",
                        record.created_us,
                        hold_id=record.id,
                        scopes=record.scopes,
                        amounts=_api_amounts(record.amounts),
                    )
                ]
            )
        return record

    def _set_limit_ops(
        self,
        scope: str,
        usd: AmountLike | None,
        tokens: int | None,
        requests: int | None,
        period: str,
        tz: str | None,
    ) -> list[Op]:
        self._check_open()
        checked_scope = parse_scope(scope)
        canonical_period = parse_period(period)
        check_timezone_applies(canonical_period, tz)
        zone = tz or self._timezone
        parse_timezone(zone)
        caps: dict[str, int] = {}
        given: tuple[tuple[Unit, AmountLike | None], ...] = (
            ("usd", usd),
            ("tokens", tokens),
            ("requests", requests),
        )
        for unit, value in given:
            if value is not None:
                caps[unit] = to_units(unit, value, cap=True)
        if not caps:
            raise InvalidInput("give at least one cap: usd=, tokens= or requests=")
        return [
            SetLimit(checked_scope, unit, canonical_period, cap, zone) for unit, cap in caps.items()
        ]

    def _remove_limit_ops(self, scope: str, period: str, unit: str | None) -> list[Op]:
        self._check_open()
        checked_scope = parse_scope(scope)
        canonical_period = parse_period(period)
        units = UNITS if unit is None else (parse_unit(unit),)
        return [RemoveLimit(checked_scope, u, canonical_period) for u in units]

    def _balances(self, outcome: Outcome, unit: str | None) -> list[Balance]:
        accounts = self._unwrap(outcome).accounts()
        balances = [_balance(a) for a in accounts if unit is None or a.unit == unit]
        order: dict[str, int] = {name: index for index, name in enumerate(UNITS)}
        balances.sort(key=lambda b: (order.get(b.unit, 9), b.period != "total", b.period))
        return balances

    def _inspect_op(self, scope: str, unit: str | None) -> Op:
        self._check_open()
        if unit is not None:
            parse_unit(unit)
        return Inspect(parse_scope(scope))

    def _limits(self, scope: str | None) -> list[Limit]:
        if scope is not None:
            parse_scope(scope)
        return [
            Limit(a.scope, a.unit, a.period, from_units(a.unit, a.cap), a.tz)
            for a in self._store.accounts(scope)
            if a.cap is not None
        ]

    def _holds(
        self, scope: str | None, state: str | None, limit: int, newest_first: bool
    ) -> list[HoldInfo]:
        if scope is not None:
            parse_scope(scope)
        states = HOLD_STATES if state is None else (state,)
        if state is not None and state not in HOLD_STATES:
            raise InvalidInput(f"unknown hold state {state!r}; use one of {', '.join(HOLD_STATES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            huge = isinstance(limit, int) and limit.bit_length() > 64
            shown = "a huge negative integer" if huge else repr(limit)
            raise InvalidInput(f"limit must be a positive whole number, not {shown}")
        # A limit past any count of holds means all of them; the stores' integers are 64-bit.
        limit = min(limit, _MAX_LISTED)
        read = self._store.newest_holds if newest_first else self._store.holds
        return [_hold_info(r) for r in read(scope=scope, states=states, limit=limit)]

    def _report(
        self, group_by: Sequence[str], since: Moment | None, until: Moment | None
    ) -> list[dict[str, object]]:
        if isinstance(group_by, str):
            group_by = [group_by]
        keys = list(group_by) if isinstance(group_by, Iterable) else []
        if not keys or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
            raise InvalidInput(f"group_by needs one or more distinct key names, not {group_by!r}")
        since_us = None if since is None else to_us(moment_of(since, name="since"))
        until_us = None if until is None else to_us(moment_of(until, name="until"))
        if since_us is not None and until_us is not None and since_us >= until_us:
            raise InvalidInput(f"since ({since!r}) must be before until ({until!r})")
        tags_seen: set[str] = set()

        def settled(entries: Iterable[Entry]) -> Iterator[Entry]:
            for entry in entries:
                if entry.kind == "settled":
                    tags_seen.update(entry.tags)
                    yield entry

        rows = build_report(settled(self._store.journal(since_us, until_us)), keys)
        # A tag key no settled entry has would put every call in one blank group: a typo,
        # most likely. With no settled entries at all there is nothing to tell them apart.
        unknown = [k for k in keys if k not in REPORT_BUILTIN_KEYS and k not in tags_seen]
        if unknown and rows:
            tags = ", ".join(sorted(tags_seen)) or "none"
            raise InvalidInput(
                f"unknown group-by key {unknown[0]!r}: use {', '.join(REPORT_BUILTIN_KEYS)}, "
                f"or a tag of the settled calls in that range ({tags})"
            )
        return rows

    def _verify(self) -> VerifyReport:
        accounts, open_holds, entries = self._store.audit_snapshot()
        return verify(accounts, open_holds, entries)

    def _sweep_flow(self, progress: Callable[[int], object] | None) -> _Flow[int]:
        """Sweep in bounded steps until a step finds less than its bound to expire."""
        total = 0
        while True:
            count = self._unwrap((yield Sweep(MAX_SWEEP_PER_STEP))).count()
            total += count
            if progress is not None and count:
                progress(count)
            if count < MAX_SWEEP_PER_STEP:
                return total


def _threshold_bps(thresholds: Sequence[float | Decimal | str]) -> tuple[int, ...]:
    bps = []
    for fraction in thresholds:
        if isinstance(fraction, int) and fraction.bit_length() > 64:  # str() of a huge one raises
            size = f"an integer of {fraction.bit_length()} bits"
            raise ConfigurationError(f"thresholds are fractions in (0, 1], not {size}")
        try:
            value = Decimal(str(fraction))
        except ArithmeticError:
            raise ConfigurationError(f"threshold {fraction!r} is not a number") from None
        if not value.is_finite() or not 0 < value <= 1:
            raise ConfigurationError(f"thresholds are fractions in (0, 1], not {fraction!r}")
        scaled = value.scaleb(4, _THRESHOLD_CONTEXT)  # exact, whatever the caller's context
        if scaled != scaled.to_integral_value(context=_THRESHOLD_CONTEXT):
            # Truncating would move the threshold, or drop one below 0.0001 to nothing.
            raise ConfigurationError(
                f"thresholds are counted in steps of 0.0001 (one basis point), not {fraction!r}"
            )
        bps.append(int(scaled))
    return tuple(sorted(set(bps)))


class _HoldBase:
    """The state and decisions of a hold, shared by ``Hold`` and ``AsyncHold``."""

    __slots__ = ("_ledger", "_observed", "_record")

    def __init__(self, ledger: _LedgerBase, record: HoldRecord) -> None:
        self._ledger = ledger
        self._record = record
        self._observed: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state} {self.scopes} {self.amounts}>"

    @property
    def id(self) -> str:
        """The hold's id."""
        return self._record.id

    @property
    def request_id(self) -> str | None:
        """The request_id it was placed with, if any."""
        return self._record.request_id

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes it is charged to."""
        return self._record.scopes

    @property
    def amounts(self) -> dict[str, Decimal | int]:
        """The amounts held, per unit (``Decimal`` USD)."""
        return _api_amounts(self._record.amounts)

    @property
    def expires_at(self) -> datetime:
        """When the hold expires if it is neither settled nor released."""
        return from_us(self._record.expires_us)

    @property
    def state(self) -> str:
        """open, settled, released or expired (as last seen by this object)."""
        return self._record.state

    @property
    def settled_amounts(self) -> dict[str, Decimal | int] | None:
        """The actual amounts it settled at, once settled."""
        settled = self._record.settled
        return None if settled is None else _api_amounts(settled)

    @property
    def observed(self) -> dict[str, Decimal | int]:
        """The running amounts reported with ``observe()``."""
        return _api_amounts(self._observed)

    @property
    def flags(self) -> str:
        """``late`` and/or ``overrun`` once settled, comma-separated."""
        return self._record.flags

    @property
    def tags(self) -> dict[str, object]:
        """The attribution tags."""
        return dict(self._record.tags)

    def _update(self, outcome: Outcome) -> None:
        if outcome.events or outcome.error is not None:
            self._ledger._unwrap(outcome)
        record = outcome.hold
        if record is None:
            raise LedgerInvariantError("a hold outcome without a hold")
        self._record = record

    def _extend_op(
        self,
        usd: AmountLike | None,
        tokens: int | None,
        requests: int | None,
        ttl: float | timedelta | None,
    ) -> Extend:
        amounts = amounts_of(usd, tokens, requests, required=False)
        ttl_us = ttl_us_of(ttl)
        if not amounts and ttl_us is None:
            raise InvalidInput("extend needs an amount (usd=, tokens=, requests=) or a ttl")
        return Extend(self.id, amounts, ttl_us)

    def _observe_ops(
        self, usd: AmountLike | None, tokens: int | None, requests: int | None
    ) -> list[Extend]:
        """Record running amounts; return the extensions to try (see ``observe_extensions``)."""
        self._observed = running_amounts(self._observed, amounts_of(usd, tokens, requests))
        return observe_extensions(self._record, self._observed)

    def _exit_op(self, failed: bool) -> Op | None:
        """What leaving the ``with`` block does (see ``closing_op``), with a warning when an
        unsettled hold with nothing observed is settled in full."""
        op = closing_op(self._record, self._observed, failed=failed)
        if isinstance(op, Settle) and not op.amounts:
            warnings.warn(
                f"hold {self.id} left its block unsettled with nothing observed; "
                "it was settled at the full held amount",
                UnsettledHoldWarning,
                stacklevel=4,
            )
        return op

    def _observe_flow(
        self, usd: AmountLike | None, tokens: int | None, requests: int | None
    ) -> _Flow[None]:
        """Extend as ``_observe_ops`` proposes; raise the refusal if no extension fits."""
        refusal: BudgetExceeded | None = None
        for op in self._observe_ops(usd, tokens, requests):
            try:
                self._update((yield op))
                return
            except BudgetExceeded as error:
                refusal = error
        if refusal is not None:
            raise refusal

    def _exit_flow(self, exc: BaseException | None) -> _Flow[None]:
        """Close a hold its block left open (see ``_exit_op``).

        After an exception in the block, the caller's exception matters more: a failure to
        close the hold is logged, and the hold expires at its TTL.
        """
        op = self._exit_op(failed=exc is not None)
        if op is None:
            return
        try:
            self._update((yield op))
        except LedgerError:
            if exc is None:
                raise
            _LOG.exception("capledger could not close hold %s after an error", self.id)


# ---------------------------------------------------------------------------------------------
# The synchronous shells


class Hold(_HoldBase):
    """A hold placed by ``Ledger.reserve``; also a context manager (see DESIGN section 6)."""

    __slots__ = ()
    _ledger: Ledger

    def settle(
        self,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> Hold:
        """Record the actual spend; units not given settle at their held amount.

        A settle above the hold is recorded in full and flagged ``overrun``; settling an
        expired or released hold records the spend flagged ``late`` (money spent is never
        refused). Repeating the same settle is a no-op; a different one raises
        ``HoldClosed``.
        """
        self._update(
            self._ledger._execute(_settle_op(self._record.id, usd, tokens, requests, tags))
        )
        return self

    def release(self) -> Hold:
        """Give the held amounts back (nothing was spent); a no-op if already released."""
        self._update(self._ledger._execute(Release(self.id)))
        return self

    def extend(
        self,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        ttl: float | timedelta | None = None,
    ) -> Hold:
        """Add to the hold atomically (or raise ``BudgetExceeded``) and/or push its expiry
        to at least ``ttl`` seconds from now."""
        self._update(self._ledger._execute(self._extend_op(usd, tokens, requests, ttl)))
        return self

    def observe(
        self,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
    ) -> Hold:
        """Report the running cost while streaming (totals so far, not increments).

        When the running cost passes the hold, the hold is extended; if the budget cannot
        pay, ``BudgetExceeded`` is raised and the caller should stop the stream. What was
        observed is settled when the hold's block ends, even after an exception.
        """
        _run(self._observe_flow(usd, tokens, requests), self._ledger._execute)
        return self

    def __enter__(self) -> Hold:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _run(self._exit_flow(exc), self._ledger._execute)


class Ledger(_LedgerBase):
    """A cost ledger over a store, for threads and plain code.

    Args:
        url: ``sqlite:///path`` (default ``$CAPLEDGER_URL``, else ``sqlite:///capledger.db``),
            ``memory://`` or ``postgresql://...``.
        clock: where time comes from (``ManualClock`` in tests).
        thresholds: fractions of a cap whose crossing fires a ``threshold`` event, once per
            window.
        timezone: the IANA time zone of calendar periods when ``set_limit`` names none.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        clock: Clock | None = None,
        thresholds: Sequence[float | Decimal | str] = (0.8, 0.95),
        timezone: str = "UTC",
    ) -> None:
        super().__init__(url, clock=clock, thresholds=thresholds, timezone=timezone)
        self._batcher = Batcher(self._store, self._config) if self._store.batches else None
        # Run one operation: bound once here, since every call of the API goes through it.
        self._execute: Callable[[Op], Outcome] = (
            self._store.executor(self._config) if self._batcher is None else self._batcher.submit
        )

    def _execute_all(self, ops: Sequence[Op]) -> list[Outcome]:
        return self._store.execute(ops, self._config)

    def reserve(
        self,
        scopes: str | Sequence[str],
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        request_id: str | None = None,
        ttl: float | timedelta = DEFAULT_TTL_S,
        tags: Mapping[str, object] | None = None,
        return_closed: bool = False,
    ) -> Hold:
        """Hold ``usd`` / ``tokens`` / ``requests`` on every limit of every scope, or on none.

        Args:
            scopes: ``"kind:id"`` or a list of them (at most 16).
            usd: dollars as ``Decimal``, ``int``, ``str`` or ``float`` (taken through ``str``).
            tokens: whole tokens.
            requests: whole requests.
            request_id: makes the call idempotent: the same id returns the same open hold.
            ttl: seconds (at most a day) after which an unsettled hold expires.
            tags: attribution tags (model, feature, ...), journaled with every entry.
            return_closed: when ``request_id`` names a hold that is already settled,
                released or expired, return that closed hold instead of raising
                ``IdempotentHoldClosed``. It holds nothing; money settled or observed under
                it is still recorded, flagged ``late``.

        Raises:
            BudgetExceeded: a limit cannot pay; nothing was held anywhere.
            IdempotencyConflict: ``request_id`` was used with a different payload.
            IdempotentHoldClosed: ``request_id`` names a closed hold (``.hold``); nothing
                was held.
            InvalidInput: bad arguments (``InvalidAmount``, ``InvalidScope``, ...).
        """
        op = self._reserve_op(scopes, usd, tokens, requests, request_id, ttl, tags)
        return Hold(self, self._reserved(self._execute(op), return_closed))

    def settle(
        self,
        hold_id: str,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> HoldInfo:
        """Settle a hold by id (for a hold placed by another process); see ``Hold.settle``."""
        op = _settle_op(hold_id_of(hold_id), usd, tokens, requests, tags)
        return _hold_info(self._unwrap(self._execute(op)).record())

    def release(self, hold_id: str) -> HoldInfo:
        """Release a hold by id; see ``Hold.release``."""
        return _hold_info(self._unwrap(self._execute(_release_op(hold_id))).record())

    def set_limit(
        self,
        scope: str,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        period: str = "total",
        tz: str | None = None,
    ) -> None:
        """Cap ``scope`` per ``period`` (total, minute … year, or a duration like ``30d``).

        A new cap takes effect at once. A new limit starts from the truth: the spend its
        current window already has in the journal, and the open holds on the scope.
        """
        for outcome in self._execute_all(
            self._set_limit_ops(scope, usd, tokens, requests, period, tz)
        ):
            self._unwrap(outcome)

    def remove_limit(self, scope: str, *, period: str = "total", unit: str | None = None) -> int:
        """Remove the caps of ``scope`` for ``period`` (one ``unit`` or all); return how many."""
        outcomes = self._execute_all(self._remove_limit_ops(scope, period, unit))
        return sum(self._unwrap(outcome).changed() for outcome in outcomes)

    def limits(self, scope: str | None = None) -> list[Limit]:
        """Every cap (of ``scope`` if given)."""
        return self._limits(scope)

    def balance(self, scope: str, *, unit: str | None = None) -> list[Balance]:
        """The accounts of ``scope`` in their current window (of ``unit`` if given)."""
        return self._balances(self._execute(self._inspect_op(scope, unit)), unit)

    def holds(
        self,
        *,
        scope: str | None = None,
        state: str | None = "open",
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[HoldInfo]:
        """Up to ``limit`` holds, oldest first (or newest first).

        Args:
            scope: only holds charged to this scope.
            state: ``open`` (the default), ``settled``, ``released``, ``expired``, or None
                for every state.
            limit: at most this many.
            newest_first: list the most recent first: ``holds(state=None, limit=1,
                newest_first=True)[0]`` is the latest hold, however many there are.
        """
        return self._holds(scope, state, limit, newest_first)

    def report(
        self,
        group_by: Sequence[str] = ("scope",),
        *,
        since: Moment | None = None,
        until: Moment | None = None,
    ) -> list[dict[str, object]]:
        """Settled spend grouped by scope, kind, unit, day, hour, month or any tag name.

        Args:
            group_by: the keys; a key that is not built in must be a tag some settled call
                in the range has (``model``), else ``InvalidInput`` lists the valid ones.
            since: from this moment (inclusive): an ISO 8601 string, a ``date`` or an aware
                ``datetime``. A date, or a string without an offset, is UTC; a naive
                ``datetime`` is refused (``InvalidInput``).
            until: to this moment (exclusive), written the same way.
        """
        return self._report(group_by, since, until)

    def verify(self) -> VerifyReport:
        """Recompute every account from the journal and the open holds and compare."""
        return self._verify()

    def sweep(self, *, progress: Callable[[int], object] | None = None) -> int:
        """Expire every overdue hold now; return how many (expiry also happens lazily).

        It works in steps of at most 1000 holds, each its own transaction; ``progress`` is
        called with the number each step expired.
        """
        return _run(self._sweep_flow(progress), self._execute)

    def guard(self, **options: Any) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
        """Decorate a function so that each call is held, then settled.

        Options are those of ``capledger.integrations.guard`` (``scopes=``, ``estimate=``,
        ``actual=``, ``on_error=``, ...); the function may be sync or async. A call that
        raises is charged its estimate, unless ``on_error="release"``.
        """
        from capledger.integrations import guard  # noqa: PLC0415 - optional layer

        return guard(self, **options)

    def migrate(self) -> list[str]:
        """Apply pending schema migrations; return their names."""
        return self._store.migrate()

    def close(self) -> None:
        """Close the store's connections; the ledger cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# The asynchronous shells


class AsyncHold(_HoldBase):
    """A hold placed by ``AsyncLedger.reserve``; its methods are coroutines."""

    __slots__ = ()
    _ledger: AsyncLedger

    async def settle(
        self,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> AsyncHold:
        """Record the actual spend; see ``Hold.settle``."""
        self._update(
            await self._ledger._execute(_settle_op(self._record.id, usd, tokens, requests, tags))
        )
        return self

    async def release(self) -> AsyncHold:
        """Give the held amounts back; see ``Hold.release``."""
        self._update(await self._ledger._execute(Release(self.id)))
        return self

    async def extend(
        self,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        ttl: float | timedelta | None = None,
    ) -> AsyncHold:
        """Add to the hold atomically and/or push its expiry; see ``Hold.extend``."""
        self._update(await self._ledger._execute(self._extend_op(usd, tokens, requests, ttl)))
        return self

    async def observe(
        self,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
    ) -> AsyncHold:
        """Report the running cost while streaming; see ``Hold.observe``."""
        await _arun(self._observe_flow(usd, tokens, requests), self._ledger._execute)
        return self

    async def __aenter__(self) -> AsyncHold:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await _arun(self._exit_flow(exc), self._ledger._execute)


async def _place_hold(ledger: AsyncLedger, op: Reserve, return_closed: bool) -> AsyncHold:
    outcome = await ledger._execute(op)
    return AsyncHold(ledger, ledger._reserved(outcome, return_closed))


# A pending hold makes this coroutine at once, so a forgotten ``await`` is reported by
# Python's own mechanism when the unused coroutine is collected, under the name the caller
# wrote: "RuntimeWarning: coroutine 'AsyncLedger.reserve' was never awaited" (and where it
# was made, in asyncio's debug mode).
_place_hold.__qualname__ = "AsyncLedger.reserve"


class _PendingHold:
    """What ``AsyncLedger.reserve`` returns: await it, or enter it with ``async with``, once.

    Neither awaited nor entered, it holds nothing, and Python warns that it was never
    awaited, as for any coroutine.
    """

    __slots__ = ("_hold", "_placing")

    def __init__(self, ledger: AsyncLedger, op: Reserve, return_closed: bool) -> None:
        # Made now (not when awaited) so that one never awaited is reported; it refers to
        # the ledger and the operation, not to this object, so an unused one is collected
        # (and reported) as soon as it is dropped, with no reference cycle to wait for.
        self._placing = _place_hold(ledger, op, return_closed)
        self._hold: AsyncHold | None = None

    def __await__(self) -> Generator[Any, None, AsyncHold]:
        return self._placing.__await__()

    async def __aenter__(self) -> AsyncHold:
        self._hold = await self._placing
        return self._hold

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._hold is not None:
            await self._hold.__aexit__(exc_type, exc, traceback)


class AsyncLedger(_LedgerBase):
    """The same ledger for asyncio: every method of ``Ledger`` as a coroutine.

    ``reserve`` returns an object to ``await`` or to enter with ``async with``. Arguments are
    those of ``Ledger``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        clock: Clock | None = None,
        thresholds: Sequence[float | Decimal | str] = (0.8, 0.95),
        timezone: str = "UTC",
    ) -> None:
        super().__init__(url, clock=clock, thresholds=thresholds, timezone=timezone)
        self._batcher = AsyncBatcher(self._store, self._config) if self._store.batches else None
        self._execute_now = self._store.executor(self._config)

    async def _execute(self, op: Op) -> Outcome:
        if self._batcher is not None:
            return await self._batcher.submit(op)
        # A store that does not batch has no transaction to wait on (see ``_read``).
        return self._execute_now(op)

    async def _execute_all(self, ops: Sequence[Op]) -> list[Outcome]:
        return await self._store.aexecute(ops, self._config)

    async def _read(self, read: Callable[..., _T], *args: Any) -> _T:
        # Reads are synchronous on every store; keep the event loop free while they run.
        if not self._store.batches:
            return read(*args)
        return await asyncio.to_thread(read, *args)

    def reserve(
        self,
        scopes: str | Sequence[str],
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        request_id: str | None = None,
        ttl: float | timedelta = DEFAULT_TTL_S,
        tags: Mapping[str, object] | None = None,
        return_closed: bool = False,
    ) -> _PendingHold:
        """Hold budget on every scope, or on none; see ``Ledger.reserve``.

        Bad arguments raise at once; the hold is placed when the result is awaited or
        entered (once). A result neither awaited nor entered holds nothing, and Python warns
        "coroutine 'AsyncLedger.reserve' was never awaited" when it is collected.
        """
        return _PendingHold(
            self,
            self._reserve_op(scopes, usd, tokens, requests, request_id, ttl, tags),
            return_closed,
        )

    async def settle(
        self,
        hold_id: str,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> HoldInfo:
        """Settle a hold by id; see ``Ledger.settle``."""
        op = _settle_op(hold_id_of(hold_id), usd, tokens, requests, tags)
        return _hold_info(self._unwrap(await self._execute(op)).record())

    async def release(self, hold_id: str) -> HoldInfo:
        """Release a hold by id; see ``Ledger.release``."""
        return _hold_info(self._unwrap(await self._execute(_release_op(hold_id))).record())

    async def set_limit(
        self,
        scope: str,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        period: str = "total",
        tz: str | None = None,
    ) -> None:
        """Cap ``scope`` per ``period``; see ``Ledger.set_limit``."""
        ops = self._set_limit_ops(scope, usd, tokens, requests, period, tz)
        for outcome in await self._execute_all(ops):
            self._unwrap(outcome)

    async def remove_limit(
        self, scope: str, *, period: str = "total", unit: str | None = None
    ) -> int:
        """Remove caps of ``scope``; see ``Ledger.remove_limit``."""
        outcomes = await self._execute_all(self._remove_limit_ops(scope, period, unit))
        return sum(self._unwrap(outcome).changed() for outcome in outcomes)

    async def limits(self, scope: str | None = None) -> list[Limit]:
        """Every cap; see ``Ledger.limits``."""
        return await self._read(self._limits, scope)

    async def balance(self, scope: str, *, unit: str | None = None) -> list[Balance]:
        """The accounts of ``scope``; see ``Ledger.balance``."""
        return self._balances(await self._execute(self._inspect_op(scope, unit)), unit)

    async def holds(
        self,
        *,
        scope: str | None = None,
        state: str | None = "open",
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[HoldInfo]:
        """Holds; see ``Ledger.holds``."""
        return await self._read(self._holds, scope, state, limit, newest_first)

    async def report(
        self,
        group_by: Sequence[str] = ("scope",),
        *,
        since: Moment | None = None,
        until: Moment | None = None,
    ) -> list[dict[str, object]]:
        """Settled spend by group; see ``Ledger.report``."""
        return await self._read(self._report, group_by, since, until)

    async def verify(self) -> VerifyReport:
        """Recompute every account from the journal; see ``Ledger.verify``."""
        return await self._read(self._verify)

    async def sweep(self, *, progress: Callable[[int], object] | None = None) -> int:
        """Expire every overdue hold now; see ``Ledger.sweep``."""
        return await _arun(self._sweep_flow(progress), self._execute)

    def guard(self, **options: Any) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
        """Decorate a function so that each call is held, then settled.

        Options are those of ``capledger.integrations.guard`` (``scopes=``, ``estimate=``,
        ``actual=``, ``on_error=``, ...); the function may be sync or async. A call that
        raises is charged its estimate, unless ``on_error="release"``.
        """
        from capledger.integrations import guard  # noqa: PLC0415 - optional layer

        return guard(self, **options)

    async def migrate(self) -> list[str]:
        """Apply pending schema migrations; see ``Ledger.migrate``."""
        return await self._read(self._store.migrate)

    async def aclose(self) -> None:
        """Close the store's connections; the ledger cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            await self._store.aclose()

    async def __aenter__(self) -> AsyncLedger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
