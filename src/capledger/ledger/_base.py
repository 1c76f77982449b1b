"""Everything ``Ledger`` and ``AsyncLedger`` share, with no I/O: the ledger's flows.

Each method of the API that needs more than one step, or decides between steps, is one
flow here (``capledger._flow``): a generator that checks the arguments, yields the steps it
needs of the store and makes the answer from their outcomes (events fired, errors raised,
views built). A step is an operation (batched with other callers' operations), operations
applied ``Together`` in one atomic step of their own, or a ``Read`` of the store. The
shells (``_sync``, ``_async``) only perform steps: with a call, or with an ``await``.

A method of exactly one operation (reserve, settle, release, extend) is that flow's two
halves without the generator: the base builds the operation and makes the answer from its
outcome, and the shell sends one to get the other. These are the hot path: driving a
generator for them cost memory:// about a fifth of its pairs per second
(``benchmarks/compare_commits.py --only memory --measure pairs``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any, Final, Generic, TypeAlias, TypeVar, Unpack

from capledger._core import HOLD_STATES, Config, Entry, Event, HoldRecord, Op, Outcome
from capledger._core.audit import REPORT_BUILTIN_KEYS, VerifyReport, build_report, verify
from capledger._core.periods import check_timezone_applies, parse_period, parse_timezone
from capledger._core.records import Release, RemoveLimit, Reserve, SetLimit, Settle, Sweep
from capledger._core.views import accounts_as_of
from capledger.bounds import DEFAULT_TTL_S, MAX_SWEEP_PER_STEP
from capledger.clock import Clock, SystemClock, to_us
from capledger.errors import ConfigurationError, IdempotentHoldClosed, InvalidInput
from capledger.money import UNITS, AmountLike, parse_unit
from capledger.scopes import parse_scope
from capledger.stores import Store, open_store

from ._options import SettleOptions
from ._validate import (
    amounts_of,
    caps_of,
    fingerprint,
    hold_id_of,
    hold_terms,
    moment_of,
    new_hold_id,
    request_id_of,
    tags_of,
    threshold_bps,
)
from ._views import (
    Balance,
    HoldInfo,
    Limit,
    Moment,
    api_amounts,
    balance_of,
    hold_info_of,
    limit_of,
)

__all__ = ["DEFAULT_URL", "EVENT_KINDS", "LedgerBase", "LedgerFlow", "Read", "Step", "Together"]

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
#: The largest ``holds(limit=...)`` passed on to a store (a larger one lists as many).
_MAX_LISTED: Final = 2**62
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Together:
    """Operations applied in one atomic step of their own, one outcome each."""

    ops: Sequence[Op]


@dataclass(frozen=True, slots=True)
class Read(Generic[_T]):
    """A read of the store: called as is, or in a worker thread under asyncio."""

    read: Callable[[], _T]


#: What a ledger flow yields; it is sent an ``Outcome``, a list of them, or what was read.
Step: TypeAlias = Op | Together | Read[Any]
#: A flow of the ledger (``capledger._flow``) returning ``_T``.
LedgerFlow: TypeAlias = Generator[Step, Any, _T]


def read(reading: Callable[[], _T]) -> LedgerFlow[_T]:
    """Read the store with ``reading``; typed by what it returns."""
    result: _T = yield Read(reading)
    return result


def settle_op(
    hold_id: str,
    *,
    usd: AmountLike | None = None,
    tokens: int | None = None,
    requests: int | None = None,
    tags: Mapping[str, object] | None = None,
) -> Settle:
    """The settle of ``hold_id``, checked: units not given settle at their held amount."""
    amounts = amounts_of(usd, tokens, requests, required=False)
    return Settle(hold_id, amounts, tags_of(tags) if tags else {})


def _plugged(store: object, clock: Clock | None) -> Store:
    """A store given as an object, checked: the ledger will own it."""
    if not isinstance(store, Store):
        raise ConfigurationError(
            f"store must be a capledger.stores.Store, not {type(store).__name__}; "
            "a URL goes first: Ledger('sqlite:///path')"
        )
    if clock is not None and clock is not store.clock:
        raise ConfigurationError(
            "a store keeps time on the clock it was made with: give the clock to the "
            "store, not to the ledger"
        )
    return store


class LedgerBase:
    """The state and the flows of a ledger; the shells perform the flows' steps."""

    def __init__(
        self,
        url: str | None = None,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
        thresholds: Sequence[float | Decimal | str] = (0.8, 0.95),
        timezone: str = "UTC",
    ) -> None:
        """See ``Ledger``."""
        self._config = Config(threshold_bps(thresholds))
        parse_timezone(timezone)
        self._timezone = timezone
        if store is None:
            self.url = url or os.environ.get("CAPLEDGER_URL") or DEFAULT_URL
            store = open_store(self.url, clock or SystemClock())
        elif url is None:
            store = _plugged(store, clock)
            self.url = store.url
        else:
            raise ConfigurationError(f"give a store URL ({url!r}) or store=, not both")
        self._store: Store = store
        self._clock = self._store.clock
        # The callbacks per event kind, apart from the config: a kind is listed while it has
        # a callback. Tuples replaced under the lock, never changed in place, so an event
        # being delivered in another thread goes on over the callbacks it started with.
        self._listeners: dict[str, tuple[Callable[[Event], object], ...]] = {}
        self._listeners_lock = threading.Lock()
        self._closed = False
        self._open()

    def _open(self) -> None:
        """Set up how the shell sends operations to the store (its batcher)."""
        raise NotImplementedError

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
        with self._listeners_lock:
            self._listeners[event] = (*self._listeners.get(event, ()), callback)
            self._listened_changed()
        return callback

    def off(self, event: str, callback: Callable[[Event], object]) -> None:
        """Stop calling ``callback`` for ``event``."""
        with self._listeners_lock:
            listeners = list(self._listeners.get(event, ()))
            if callback not in listeners:
                return
            listeners.remove(callback)  # the first registration, as on() added it
            if listeners:
                self._listeners[event] = tuple(listeners)
            else:
                del self._listeners[event]
            self._listened_changed()

    def _listened_changed(self) -> None:
        """Decide the operations after this one with a config naming the kinds listened to
        (called under the listeners' lock, so two changes cannot cross)."""
        listened = frozenset(self._listeners)
        if listened != self._config.listened:
            self._use_config(replace(self._config, listened=listened))

    def _use_config(self, config: Config) -> None:
        """Decide every later operation with ``config``; a batch under way keeps its own."""
        self._config = config

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

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError(f"this {type(self).__name__} is closed")

    # --- holds ------------------------------------------------------------------------------

    def _reserve_op(
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
    ) -> Reserve:
        """The operation ``reserve`` sends, its arguments checked (``return_closed`` is for
        ``placed``)."""
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
        op = Reserve(
            hold_id=new_hold_id(),
            scopes=scope_tuple,
            amounts=amounts,
            ttl_us=ttl_us,
            request_id=checked_request_id,
            tags=clean_tags,
            fingerprint=""
            if checked_request_id is None
            else fingerprint(scope_tuple, amounts, ttl_us, clean_tags),
        )
        return op

    def _placed(self, outcome: Outcome, return_closed: bool) -> HoldRecord:
        """The hold a reserve's outcome placed (or the closed one ``return_closed`` asks for)."""
        error = outcome.error
        if type(error) is IdempotentHoldClosed and outcome.hold is not None:
            if return_closed:
                return outcome.hold
            error.hold = hold_info_of(outcome.hold)
        if outcome.events or error is not None:
            self._unwrap(outcome)
        record = outcome.record()
        if self._listeners.get("reserved"):
            event = Event(
                "reserved",
                record.created_us,
                hold_id=record.id,
                scopes=record.scopes,
                amounts=api_amounts(record.amounts),
            )
            self._emit([event])
        return record

    def _hold_info(self, outcome: Outcome) -> HoldInfo:
        """What a settle or a release by id answers."""
        return hold_info_of(self._unwrap(outcome).record())

    @staticmethod
    def _settle_op(hold_id: str, **options: Unpack[SettleOptions]) -> Settle:
        """The operation of ``settle`` by id, its arguments checked."""
        return settle_op(hold_id_of(hold_id), **options)

    @staticmethod
    def _release_op(hold_id: str) -> Release:
        """The operation of ``release`` by id, its argument checked."""
        return Release(hold_id_of(hold_id))

    def _sweep(self, progress: Callable[[int], object] | None) -> LedgerFlow[int]:
        """Sweep in bounded steps until a step finds less than its bound to expire."""
        total = 0
        while True:
            outcome: Outcome = yield Sweep(MAX_SWEEP_PER_STEP)
            count = self._unwrap(outcome).count()
            total += count
            if progress is not None and count:
                progress(count)
            if count < MAX_SWEEP_PER_STEP:
                return total

    # --- limits and balances ----------------------------------------------------------------

    def _set_limit(
        self,
        scope: str,
        *,
        usd: AmountLike | None = None,
        tokens: int | None = None,
        requests: int | None = None,
        period: str = "total",
        tz: str | None = None,
    ) -> LedgerFlow[None]:
        """The flow of ``set_limit``: one limit per unit given, set together."""
        self._check_open()
        checked_scope = parse_scope(scope)
        canonical_period = parse_period(period)
        check_timezone_applies(canonical_period, tz)
        zone = tz or self._timezone
        parse_timezone(zone)
        caps = caps_of(usd, tokens, requests)
        ops = [SetLimit(checked_scope, u, canonical_period, cap, zone) for u, cap in caps.items()]
        outcomes: list[Outcome] = yield Together(ops)
        for outcome in outcomes:
            self._unwrap(outcome)

    def _remove_limit(self, scope: str, period: str, unit: str | None) -> LedgerFlow[int]:
        """The flow of ``remove_limit``: how many limits it removed."""
        self._check_open()
        checked_scope = parse_scope(scope)
        canonical_period = parse_period(period)
        units = UNITS if unit is None else (parse_unit(unit),)
        ops = [RemoveLimit(checked_scope, u, canonical_period) for u in units]
        outcomes: list[Outcome] = yield Together(ops)
        return sum(self._unwrap(outcome).changed() for outcome in outcomes)

    def _balance(self, scope: str, unit: str | None) -> LedgerFlow[list[Balance]]:
        """The flow of ``balance``: accounts in their current window, by unit and period."""
        self._check_open()
        if unit is not None:
            parse_unit(unit)
        # A read, not an operation: the store's snapshot takes no write lock, and the core
        # says what the write path would see now (windows rolled, overdue holds expired).
        snapshot = yield from read(partial(self._store.snapshot, [parse_scope(scope)]))
        accounts = accounts_as_of(snapshot)
        balances = [balance_of(a) for a in accounts if unit is None or a.unit == unit]
        order: dict[str, int] = {name: index for index, name in enumerate(UNITS)}
        balances.sort(key=lambda b: (order.get(b.unit, 9), b.period != "total", b.period))
        return balances

    def _limits(self, scope: str | None) -> LedgerFlow[list[Limit]]:
        """The flow of ``limits``."""
        if scope is not None:
            parse_scope(scope)
        accounts = yield from read(partial(self._store.accounts, scope))
        return [limit for limit in map(limit_of, accounts) if limit is not None]

    # --- reading back -----------------------------------------------------------------------

    def _holds(
        self,
        *,
        scope: str | None = None,
        state: str | None = "open",
        limit: int = 1000,
        newest_first: bool = False,
    ) -> LedgerFlow[list[HoldInfo]]:
        """The flow of ``holds``."""
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
        listed = min(limit, _MAX_LISTED)
        reader = self._store.newest_holds if newest_first else self._store.holds
        records = yield from read(partial(reader, scope=scope, states=states, limit=listed))
        return [hold_info_of(record) for record in records]

    def _report(
        self,
        group_by: Sequence[str],
        *,
        since: Moment | None = None,
        until: Moment | None = None,
    ) -> LedgerFlow[list[dict[str, object]]]:
        """The flow of ``report``."""
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

        def fold() -> list[dict[str, object]]:
            return build_report(settled(self._store.journal(since_us, until_us)), keys)

        rows = yield from read(fold)
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

    def _verify(self) -> LedgerFlow[VerifyReport]:
        """The flow of ``verify``: the audit reads one snapshot and folds it, off the loop."""

        def audit() -> VerifyReport:
            accounts, open_holds, entries = self._store.audit_snapshot()
            return verify(accounts, open_holds, entries)

        return (yield from read(audit))

    def _migrate(self) -> LedgerFlow[list[str]]:
        """The flow of ``migrate``."""
        return (yield from read(self._store.migrate))
