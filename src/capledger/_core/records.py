"""The records the core decides over, the operations it applies and what it answers.

Amounts are integers in each unit's smallest step (nano-USD for ``usd``). Records are plain
mutable objects with ``__slots__``: stores load them, the core changes them, stores write back
the ones the core marked changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Final, Literal, TypeAlias

from capledger.clock import from_us
from capledger.errors import LedgerInvariantError

__all__ = [
    "HOLD_STATES",
    "Account",
    "AccountKey",
    "Entry",
    "EntryFields",
    "EntryKind",
    "Event",
    "Extend",
    "Flag",
    "HoldRecord",
    "Inspect",
    "Op",
    "Outcome",
    "Release",
    "RemoveLimit",
    "Reserve",
    "SetLimit",
    "Settle",
    "Sweep",
    "flag_set",
]

HoldState: TypeAlias = Literal["open", "settled", "released", "expired"]
HOLD_STATES: Final[tuple[HoldState, ...]] = ("open", "settled", "released", "expired")

#: (scope, unit, period) identifies an account.
AccountKey: TypeAlias = tuple[str, str, str]

#: A mark on a settled hold: ``late`` (settled after it expired or was released) and
#: ``overrun`` (settled above its hold, or past a cap).
Flag: TypeAlias = Literal["late", "overrun"]

# Records and the journal keep a hold's flags as stored, comma-separated text ("",
# "late", "overrun", "late,overrun"); the API shows sets. Only these four texts are ever
# written, so each maps to one shared frozenset and reading flags builds nothing.
_FLAG_SETS: Final[dict[str, frozenset[Flag]]] = {
    "": frozenset(),
    "late": frozenset({"late"}),
    "overrun": frozenset({"overrun"}),
    "late,overrun": frozenset({"late", "overrun"}),
}


def flag_set(text: str) -> frozenset[Flag]:
    """The flags of stored text such as ``"late,overrun"``, as a set.

    The one place the storage format of flags is read. Text the core never writes (another
    order, an unknown flag) can only come from a damaged row: ``LedgerInvariantError``.
    """
    flags = _FLAG_SETS.get(text)
    if flags is None:
        raise LedgerInvariantError(
            f"a hold's flags read {text!r}; capledger writes only {sorted(_FLAG_SETS)}"
        )
    return flags


class Account:
    """The counter row for one (scope, unit, period): never a sum over the journal."""

    __slots__ = (
        "alert_bp",
        "anchor_us",
        "cap",
        "held",
        "period",
        "scope",
        "spent",
        "tz",
        "unit",
        "window_end_us",
        "window_start_us",
    )

    def __init__(
        self,
        scope: str,
        unit: str,
        period: str,
        cap: int | None,
        spent: int,
        held: int,
        window_start_us: int,
        window_end_us: int | None,
        tz: str,
        anchor_us: int,
        alert_bp: int = 0,
    ) -> None:
        self.scope = scope
        self.unit = unit
        self.period = period
        self.cap = cap
        self.spent = spent
        self.held = held
        self.window_start_us = window_start_us
        self.window_end_us = window_end_us
        self.tz = tz
        self.anchor_us = anchor_us
        # The highest threshold (in basis points of the cap) already announced this window.
        self.alert_bp = alert_bp

    @property
    def key(self) -> AccountKey:
        """The account's identity: (scope, unit, period)."""
        return (self.scope, self.unit, self.period)

    def copy(self) -> Account:
        """Return an independent copy (stores hand out copies, never live rows)."""
        return Account(
            self.scope,
            self.unit,
            self.period,
            cap=self.cap,
            spent=self.spent,
            held=self.held,
            window_start_us=self.window_start_us,
            window_end_us=self.window_end_us,
            tz=self.tz,
            anchor_us=self.anchor_us,
            alert_bp=self.alert_bp,
        )

    def __repr__(self) -> str:
        return (
            f"Account({self.scope!r}, {self.unit!r}, {self.period!r}, cap={self.cap}, "
            f"spent={self.spent}, held={self.held}, window_start_us={self.window_start_us})"
        )


class HoldRecord:
    """A hold as the store keeps it."""

    __slots__ = (
        "amounts",
        "closed_us",
        "created_us",
        "deadline_us",
        "expires_us",
        "fingerprint",
        "flags",
        "id",
        "request_id",
        "scopes",
        "settled",
        "state",
        "tags",
    )

    def __init__(
        self,
        id: str,
        request_id: str | None,
        scopes: tuple[str, ...],
        amounts: dict[str, int],
        state: HoldState,
        created_us: int,
        expires_us: int,
        tags: dict[str, object],
        fingerprint: str,
        settled: dict[str, int] | None = None,
        closed_us: int | None = None,
        flags: str = "",
        deadline_us: int | None = None,
    ) -> None:
        self.id = id
        self.request_id = request_id
        self.scopes = scopes
        # Dictionaries below are replaced, never changed in place (see ``copy``).
        self.amounts = amounts  # held per unit, the same on every scope
        self.state: HoldState = state
        self.created_us = created_us
        # ``expires_us`` is on the wall clock, for people to read; ``deadline_us`` decides, on
        # the clock the store measures deadlines on (see ``capledger.clock``), where a store
        # without one of its own (PostgreSQL's server time) keeps it equal to ``expires_us``.
        self.expires_us = expires_us
        self.deadline_us = expires_us if deadline_us is None else deadline_us
        self.tags = tags
        self.fingerprint = fingerprint  # what a repeated request_id must match
        self.settled = settled  # actual amounts once settled
        self.closed_us = closed_us
        self.flags = flags  # stored text, comma-separated: late, overrun (see flag_set)

    def copy(self) -> HoldRecord:
        """Return a snapshot that later changes to this record do not reach.

        Shallow on purpose: the core never changes ``amounts``, ``tags`` or ``settled`` in
        place, it replaces them, so sharing the dictionaries is safe and copying is cheap.
        """
        twin = HoldRecord.__new__(HoldRecord)
        twin.id = self.id
        twin.request_id = self.request_id
        twin.scopes = self.scopes
        twin.amounts = self.amounts
        twin.state = self.state
        twin.created_us = self.created_us
        twin.expires_us = self.expires_us
        twin.deadline_us = self.deadline_us
        twin.tags = self.tags
        twin.fingerprint = self.fingerprint
        twin.settled = self.settled
        twin.closed_us = self.closed_us
        twin.flags = self.flags
        return twin

    def __repr__(self) -> str:
        return (
            f"HoldRecord({self.id!r}, state={self.state!r}, scopes={self.scopes!r}, "
            f"amounts={self.amounts!r}, settled={self.settled!r})"
        )


EntryKind: TypeAlias = Literal[
    "reserved",
    "extended",
    "settled",
    "released",
    "expired",
    "overrun",
    "limit_set",
    "limit_removed",
]


#: A journal entry's fields, in the order of ``Entry``'s parameters: what the core hands a
#: store's ``State.append``.
EntryFields: TypeAlias = tuple[
    int, EntryKind, str | None, str | None, tuple[str, ...], dict[str, int], dict[str, object], str
]


class Entry:
    """One append-only journal entry.

    ``amounts`` means: held (reserved, expired, released), the top-up (extended), the actual
    spend (settled), the spend beyond the hold or the cap (overrun), or the cap (limit_set).
    """

    __slots__ = ("amounts", "flags", "hold_id", "kind", "request_id", "scopes", "tags", "ts_us")

    def __init__(
        self,
        ts_us: int,
        kind: EntryKind,
        hold_id: str | None,
        request_id: str | None,
        scopes: tuple[str, ...],
        amounts: dict[str, int],
        tags: dict[str, object],
        flags: str = "",
    ) -> None:
        self.ts_us = ts_us
        self.kind: EntryKind = kind
        self.hold_id = hold_id
        self.request_id = request_id
        self.scopes = scopes
        self.amounts = amounts
        self.tags = tags
        self.flags = flags

    def __repr__(self) -> str:
        return f"Entry({self.ts_us}, {self.kind!r}, {self.hold_id!r}, {self.amounts!r})"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, handed to ``ledger.on(...)`` callbacks.

    ``kind`` is one of reserved, settled, released, expired, denied, overrun, threshold.
    ``at`` is when, on the store's wall clock: an aware UTC ``datetime``, exact to the
    microsecond. ``amounts`` are in the API's units (``Decimal`` USD, ``int`` tokens and
    requests).
    """

    kind: str
    # The core decides in integer microseconds and builds events under the store's lock:
    # it passes the integer, and ``at`` makes the datetime only for a callback that reads it.
    _at_us: int
    hold_id: str | None = None
    scopes: tuple[str, ...] = ()
    amounts: Mapping[str, object] = field(default_factory=dict)
    scope: str | None = None
    unit: str | None = None
    period: str | None = None
    fraction: float | None = None  # the threshold crossed, for "threshold" events
    detail: str = ""

    @property
    def at(self) -> datetime:
        """When it happened: an aware UTC ``datetime``, exact to the microsecond."""
        return from_us(self._at_us)

    def __repr__(self) -> str:
        shown = [f"kind={self.kind!r}", f"at={self.at!r}"]
        shown += [
            f"{name}={getattr(self, name)!r}"
            for name in (f.name for f in fields(self))
            if name not in ("kind", "_at_us")
        ]
        return f"Event({', '.join(shown)})"


# --- operations -----------------------------------------------------------------------------
# Plain (not frozen) dataclasses: they are built on the hot path, and frozen ones build slower.


@dataclass(slots=True)
class Reserve:
    """Place a hold of ``amounts`` on every account of every scope, or on none."""

    hold_id: str
    scopes: tuple[str, ...]
    amounts: dict[str, int]
    ttl_us: int
    request_id: str | None
    tags: dict[str, object]
    fingerprint: str


@dataclass(slots=True)
class Extend:
    """Add ``amounts`` to an open hold (and push its expiry), or fail without change."""

    hold_id: str
    amounts: dict[str, int]
    ttl_us: int | None


@dataclass(slots=True)
class Settle:
    """Record the actual spend of a hold; units not given settle at their held amount."""

    hold_id: str
    amounts: dict[str, int]
    tags: Mapping[str, object]


@dataclass(slots=True)
class Release:
    """Give a hold's amounts back without spending them."""

    hold_id: str


@dataclass(slots=True)
class SetLimit:
    """Create or change the cap of (scope, unit, period)."""

    scope: str
    unit: str
    period: str
    cap: int
    tz: str


@dataclass(slots=True)
class RemoveLimit:
    """Remove the cap of (scope, unit, period); the spend record stays."""

    scope: str
    unit: str
    period: str


@dataclass(slots=True)
class Inspect:
    """Read the accounts of a scope (rolling windows that have passed)."""

    scope: str


@dataclass(slots=True)
class Sweep:
    """Expire up to ``limit`` overdue holds."""

    limit: int


Op: TypeAlias = Reserve | Extend | Settle | Release | SetLimit | RemoveLimit | Inspect | Sweep


class Outcome:
    """What one operation answered: a hold copy, another value, or an error; and events.

    The error is a typed ``LedgerError`` the decision returned, or the exception a decision
    raised (see ``apply_batch``): either way it is raised to that operation's caller alone.
    """

    __slots__ = ("error", "events", "hold", "value")

    def __init__(
        self,
        hold: HoldRecord | None = None,
        *,
        error: Exception | None = None,
        value: object = None,
        events: list[Event] | None = None,
    ) -> None:
        self.hold = hold
        self.error = error
        self.value = value
        self.events = events

    # Typed reads of what each kind of operation answers, checked: a store that answered
    # something else is a bug, reported as one rather than passed on.

    def record(self) -> HoldRecord:
        """The hold a ``Reserve``, ``Extend``, ``Settle`` or ``Release`` answered with."""
        if self.hold is None:
            raise LedgerInvariantError("a hold operation's outcome without a hold")
        return self.hold

    def accounts(self) -> list[Account]:
        """The accounts an ``Inspect`` read."""
        value = self.value
        if not isinstance(value, list) or not all(isinstance(a, Account) for a in value):
            raise LedgerInvariantError(f"an inspect outcome holding {value!r}, not accounts")
        return value

    def count(self) -> int:
        """How many holds a ``Sweep`` expired."""
        value = self.value
        if not isinstance(value, int) or isinstance(value, bool):
            raise LedgerInvariantError(f"a sweep outcome holding {value!r}, not a count")
        return value

    def changed(self) -> bool:
        """Whether a ``SetLimit`` or ``RemoveLimit`` found a limit to change."""
        value = self.value
        if not isinstance(value, bool):
            raise LedgerInvariantError(f"a limit outcome holding {value!r}, not a bool")
        return value
