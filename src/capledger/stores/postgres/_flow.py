"""The PostgreSQL store's transactions, written once, without I/O.

A *plan* is a generator that yields ``Round`` s (statements to send in one pipelined round
trip) and receives each round's rows back. The sync and async drivers in ``store.py`` only
send rounds and hand rows back, as httpx drives its ``auth_flow``; everything else (which
rows to lock, running the core, what to write) lives here, once.

A batch is two round trips:

1. ``BEGIN``; lock the holds the operations name (sorted by id); lock every account row of
   every scope the batch can touch (sorted by key), including the scopes of those holds and
   of the oldest overdue holds; lock the overdue holds (``SKIP LOCKED``); read the server's
   clock and the transaction id.
2. Run ``apply_batch`` on a ``BufferedState`` served from those rows, then send every write
   (``unnest`` arrays: one statement per table, whatever the batch size) and ``COMMIT``.

If the core asks for a row the first round did not fetch (``SetLimit`` reads the journal and
the open holds; anything unforeseen), the plan fetches it in an extra round and runs the core
again from scratch on a fresh buffer: the core is pure, so a re-run is exact.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final, TypeAlias, TypeVar

from capledger._core import (
    Account,
    Config,
    Entry,
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
    apply_batch,
)
from capledger.bounds import MAX_EXPIRE_PER_STEP

from .._buffer import BufferedState
from .._sql import load_migrations, load_named_queries
from ..base import dumps

__all__ = [
    "MIGRATIONS_PACKAGE",
    "QUERIES",
    "Commit",
    "Plan",
    "Round",
    "Statement",
    "account_of",
    "batch_plan",
    "entry_of",
    "hold_of",
    "migration_plan",
    "schema_sql",
]

QUERIES: Final = load_named_queries("capledger.stores.postgres", "queries.sql")
MIGRATIONS_PACKAGE: Final = "capledger.stores.postgres.migrations"

Row: TypeAlias = tuple[Any, ...]
Rows: TypeAlias = list[Row]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement; ``fetch`` when its rows are wanted back."""

    sql: str
    params: Mapping[str, object] | None = None
    fetch: bool = False


@dataclass(frozen=True, slots=True)
class Commit:
    """Carried by the round that ends with ``COMMIT``.

    If the connection dies after that round was sent, the driver cannot know whether the
    commit happened; it asks the server about ``xid`` (``pg_xact_status``) and, if it did
    commit, returns ``result`` (what the committed transaction decided) instead of running
    the batch again.
    """

    xid: str
    result: object


@dataclass(frozen=True, slots=True)
class Round:
    """Statements sent together in one round trip (pipelined unless ``pipeline`` is False)."""

    statements: list[Statement]
    pipeline: bool = True
    commit: Commit | None = None


#: A plan yields rounds and receives, per statement, its rows (or None when not fetched).
Plan: TypeAlias = Generator[Round, list[Rows | None], _T]

_BEGIN: Final = Statement("BEGIN")
_COMMIT: Final = Statement("COMMIT")


# --- rows -------------------------------------------------------------------------------------


def account_of(row: Row) -> Account:
    """Decode an account row (the column order of the ``*_accounts`` queries)."""
    return Account(
        row[0],
        row[1],
        row[2],
        cap=row[3],
        spent=row[4],
        held=row[5],
        window_start_us=row[6],
        window_end_us=row[7],
        tz=row[8],
        anchor_us=row[9],
        alert_bp=row[10],
    )


def hold_of(row: Row) -> HoldRecord:
    """Decode a hold row (psycopg has already decoded its jsonb columns)."""
    return HoldRecord(
        row[0],
        request_id=row[1],
        scopes=tuple(row[2]),
        amounts=row[3],
        state=row[4],
        created_us=row[5],
        expires_us=row[6],
        tags=row[7],
        fingerprint=row[8],
        settled=row[9],
        closed_us=row[10],
        flags=row[11],
    )


def entry_of(row: Row) -> Entry:
    """Decode a journal row."""
    return Entry(row[0], row[1], row[2], row[3], tuple(row[4]), row[5], row[6], row[7])


# --- the batch transaction --------------------------------------------------------------------


class _Missing(Exception):
    """Raised inside the core when it asks for a row the first round did not fetch."""

    def __init__(self, kind: str, key: tuple[object, ...], statement: Statement) -> None:
        super().__init__(kind, key)
        self.kind = kind
        self.key = key
        self.statement = statement


@dataclass(slots=True)
class _Wanted:
    """What the first round locks and reads for a batch."""

    scopes: set[str] = field(default_factory=set)
    hold_ids: set[str] = field(default_factory=set)
    request_ids: set[str] = field(default_factory=set)
    #: Hold ids known not to exist without asking (a first attempt's own new hold ids).
    absent_ids: set[str] = field(default_factory=set)
    expire_limit: int = MAX_EXPIRE_PER_STEP


def _wanted(ops: Sequence[Op], first_attempt: bool, learned_scopes: Iterable[str]) -> _Wanted:
    wanted = _Wanted(scopes=set(learned_scopes))
    for op in ops:
        kind = type(op)
        if kind is Reserve:
            wanted.scopes.update(op.scopes)  # type: ignore[union-attr]
            if op.request_id is not None:  # type: ignore[union-attr]
                wanted.request_ids.add(op.request_id)  # type: ignore[union-attr]
            # A hold id is made by the client for this operation, so on a first attempt no
            # row can have it; a retry (after a lost COMMIT) must look, and then finds the
            # hold that the first attempt made rather than placing a second one.
            if first_attempt:
                wanted.absent_ids.add(op.hold_id)  # type: ignore[union-attr]
            else:
                wanted.hold_ids.add(op.hold_id)  # type: ignore[union-attr]
        elif kind is Settle or kind is Release or kind is Extend:
            wanted.hold_ids.add(op.hold_id)  # type: ignore[union-attr]
        elif kind is SetLimit or kind is RemoveLimit or kind is Inspect:
            wanted.scopes.add(op.scope)  # type: ignore[union-attr]
        elif kind is Sweep:
            wanted.expire_limit += op.limit  # type: ignore[union-attr]
    wanted.absent_ids -= wanted.hold_ids
    return wanted


class _Prefetched:
    """The ``RowSource`` of one batch: serves the rows the first round locked and read.

    Every call decodes fresh records, so that a re-run of the core (after a missing row was
    fetched) starts from the rows as stored, not from what the previous run changed.
    """

    def __init__(
        self,
        wanted: _Wanted,
        hold_rows: Rows,
        account_rows: Rows,
        overdue_rows: Rows,
    ) -> None:
        self._accounts: dict[str, Rows] = {scope: [] for scope in wanted.scopes}
        for row in account_rows:
            self._accounts.setdefault(row[0], []).append(row)
        self._holds: dict[str, Row | None] = dict.fromkeys(wanted.hold_ids | wanted.absent_ids)
        self._by_request: dict[str, Row | None] = dict.fromkeys(wanted.request_ids)
        for row in hold_rows:
            self._remember_hold(row)
        for hold_id in wanted.hold_ids:
            # The hold's scopes were locked by the same round (lock_accounts reads them).
            locked = self._holds.get(hold_id)
            if locked is not None:
                for scope in locked[2]:
                    self._accounts.setdefault(scope, [])
        # An overdue hold is expired here only if every account it touches is locked;
        # the rest stay counted as held (the safe side) for a later transaction.
        self._overdue = [row for row in overdue_rows if all(s in self._accounts for s in row[2])]
        self._overdue_served = 0
        self._open_on: dict[str, Rows] = {}
        self._spent: dict[tuple[str, str, int], int] = {}
        self.learned_scopes: set[str] = set()

    def _remember_hold(self, row: Row) -> None:
        self._holds[row[0]] = row
        if row[1] is not None:
            self._by_request[row[1]] = row

    def learn(self, missing: _Missing, rows: Rows) -> None:
        """Keep the rows fetched for ``missing``."""
        if missing.kind == "accounts":
            scope = str(missing.key[0])
            self._accounts[scope] = rows
            self.learned_scopes.add(scope)
        elif missing.kind == "hold":
            asked_id, asked_request = missing.key
            if asked_id is not None:
                self._holds.setdefault(str(asked_id), None)
            if asked_request is not None:
                self._by_request.setdefault(str(asked_request), None)
            for row in rows:
                self._remember_hold(row)
        elif missing.kind == "open_holds_on":
            self._open_on[str(missing.key[0])] = rows
        else:
            spent_scope, unit, since_us = missing.key
            key = (str(spent_scope), str(unit), int(str(since_us)))
            self._spent[key] = int(rows[0][0])

    # RowSource
    def load_accounts(self, scope: str) -> list[Account]:
        rows = self._accounts.get(scope)
        if rows is None:
            statement = Statement(QUERIES["lock_scope"], {"scope": scope}, True)
            raise _Missing("accounts", (scope,), statement)
        return [account_of(row) for row in rows]

    def _missing_hold(self, hold_id: str | None, request_id: str | None) -> _Missing:
        params = {"id": hold_id, "request_id": request_id}
        statement = Statement(QUERIES["lock_hold"], params, True)
        return _Missing("hold", (hold_id, request_id), statement)

    def load_hold(self, hold_id: str) -> HoldRecord | None:
        if hold_id not in self._holds:
            raise self._missing_hold(hold_id, None)
        row = self._holds[hold_id]
        return None if row is None else hold_of(row)

    def load_hold_by_request(self, request_id: str) -> HoldRecord | None:
        if request_id not in self._by_request:
            raise self._missing_hold(None, request_id)
        row = self._by_request[request_id]
        return None if row is None else hold_of(row)

    def load_overdue(self, now_us: int, limit: int) -> list[HoldRecord]:
        # Each call hands out the next holds: the core expires every open one it is given,
        # so a later call in the same batch (a Sweep) must not count them again.
        start = self._overdue_served
        served = self._overdue[start : start + limit]
        self._overdue_served = start + len(served)
        return [hold_of(row) for row in served if row[6] <= now_us]

    def load_open_holds_on(self, scope: str) -> list[HoldRecord]:
        rows = self._open_on.get(scope)
        if rows is None:
            statement = Statement(QUERIES["open_holds_on"], {"scope": scope}, True)
            raise _Missing("open_holds_on", (scope,), statement)
        return [hold_of(row) for row in rows]

    def spent_since(self, scope: str, unit: str, since_us: int) -> int:
        spent = self._spent.get((scope, unit, since_us))
        if spent is None:
            params = {"scope": scope, "unit": unit, "since_us": since_us}
            statement = Statement(QUERIES["spent_since"], params, True)
            raise _Missing("spent_since", (scope, unit, since_us), statement)
        return spent


def batch_plan(
    ops: Sequence[Op],
    config: Config,
    *,
    now_us: int | None,
    first_attempt: bool,
    learned_scopes: set[str],
) -> Plan[list[Outcome]]:
    """The transaction that applies ``ops``: lock, decide with the core, write, commit.

    Args:
        ops: the batch, applied in order.
        config: the core's settings.
        now_us: the injected clock's time, or None to use the server's clock (read after
            every lock is granted, so every host and process agrees on the order of time).
        first_attempt: False when retrying, so the batch's own hold ids are looked up.
        learned_scopes: scopes a previous attempt had to fetch late; locked up front now.
            The plan adds the ones it learns.
    """
    wanted = _wanted(ops, first_attempt, learned_scopes)
    lock_params = {
        "scopes": sorted(wanted.scopes),
        "ids": sorted(wanted.hold_ids),
        "now_us": now_us,
        "expire_limit": wanted.expire_limit,
    }
    statements = [_BEGIN]
    locks_holds = bool(wanted.hold_ids or wanted.request_ids)
    if wanted.request_ids:
        hold_params = {"ids": lock_params["ids"], "request_ids": sorted(wanted.request_ids)}
        statements.append(Statement(QUERIES["lock_holds_and_requests"], hold_params, True))
    elif wanted.hold_ids:
        statements.append(Statement(QUERIES["lock_holds"], {"ids": lock_params["ids"]}, True))
    statements += [
        Statement(QUERIES["lock_accounts"], lock_params, True),
        Statement(
            QUERIES["lock_overdue"],
            {"now_us": now_us, "expire_limit": wanted.expire_limit},
            True,
        ),
        Statement(QUERIES["clock"], None, True),
    ]
    replies = yield Round(statements)
    hold_rows = replies[1] if locks_holds else []
    account_rows, overdue_rows, clock_rows = replies[-3:]
    server_now_us, xid = clock_rows[0]  # type: ignore[index]
    source = _Prefetched(wanted, hold_rows or [], account_rows or [], overdue_rows or [])
    decided_at_us = server_now_us if now_us is None else now_us

    while True:
        state = BufferedState(source)
        try:
            outcomes = apply_batch(state, ops, decided_at_us, config)
        except _Missing as missing:
            (rows,) = yield Round([missing.statement])
            source.learn(missing, rows or [])
            learned_scopes.update(source.learned_scopes)
            continue
        break

    writes = _writes(state)
    writes.append(_COMMIT)
    yield Round(writes, commit=Commit(xid, outcomes))
    return outcomes


def _json_or_none(value: object) -> str | None:
    return None if value is None else dumps(value)


def _accounts_params(accounts: Iterable[Account]) -> dict[str, list[object]]:
    columns: dict[str, list[object]] = {
        name: []
        for name in (
            "scope", "unit", "period", "cap", "spent", "held", "window_start_us",
            "window_end_us", "tz", "anchor_us", "alert_bp",
        )
    }  # fmt: skip
    for a in accounts:
        columns["scope"].append(a.scope)
        columns["unit"].append(a.unit)
        columns["period"].append(a.period)
        columns["cap"].append(a.cap)
        columns["spent"].append(a.spent)
        columns["held"].append(a.held)
        columns["window_start_us"].append(a.window_start_us)
        columns["window_end_us"].append(a.window_end_us)
        columns["tz"].append(a.tz)
        columns["anchor_us"].append(a.anchor_us)
        columns["alert_bp"].append(a.alert_bp)
    return columns


def _writes(state: BufferedState) -> list[Statement]:
    """One statement per kind of change, each carrying every row as arrays (``unnest``)."""
    writes: list[Statement] = []
    if state.removed_accounts:
        keys = list(state.removed_accounts)
        params = {
            "scope": [k[0] for k in keys],
            "unit": [k[1] for k in keys],
            "period": [k[2] for k in keys],
        }
        writes.append(Statement(QUERIES["delete_accounts"], params))
    if state.new_accounts:
        params_new = _accounts_params(state.new_accounts.values())
        writes.append(Statement(QUERIES["insert_accounts"], params_new))
    if state.changed_accounts:
        params_changed = _accounts_params(state.changed_accounts.values())
        writes.append(Statement(QUERIES["update_accounts"], params_changed))
    if state.new_holds:
        holds = list(state.new_holds.values())
        writes.append(
            Statement(
                QUERIES["insert_holds"],
                {
                    "id": [h.id for h in holds],
                    "request_id": [h.request_id for h in holds],
                    "scopes": [dumps(h.scopes) for h in holds],
                    "amounts": [dumps(h.amounts) for h in holds],
                    "state": [h.state for h in holds],
                    "created_us": [h.created_us for h in holds],
                    "expires_us": [h.expires_us for h in holds],
                    "tags": [dumps(h.tags) for h in holds],
                    "fingerprint": [h.fingerprint for h in holds],
                    "settled": [_json_or_none(h.settled) for h in holds],
                    "closed_us": [h.closed_us for h in holds],
                    "flags": [h.flags for h in holds],
                },
            )
        )
    if state.changed_holds:
        holds = list(state.changed_holds.values())
        writes.append(
            Statement(
                QUERIES["update_holds"],
                {
                    "id": [h.id for h in holds],
                    "amounts": [dumps(h.amounts) for h in holds],
                    "state": [h.state for h in holds],
                    "expires_us": [h.expires_us for h in holds],
                    "tags": [dumps(h.tags) for h in holds],
                    "settled": [_json_or_none(h.settled) for h in holds],
                    "closed_us": [h.closed_us for h in holds],
                    "flags": [h.flags for h in holds],
                },
            )
        )
    if state.entries:
        entries = state.entries
        writes.append(
            Statement(
                QUERIES["insert_entries"],
                {
                    "ts_us": [e.ts_us for e in entries],
                    "kind": [e.kind for e in entries],
                    "hold_id": [e.hold_id for e in entries],
                    "request_id": [e.request_id for e in entries],
                    "scopes": [dumps(e.scopes) for e in entries],
                    "amounts": [dumps(e.amounts) for e in entries],
                    "tags": [dumps(e.tags) for e in entries],
                    "flags": [e.flags for e in entries],
                },
            )
        )
    return writes


# --- migrations -------------------------------------------------------------------------------


def schema_sql() -> str:
    """The complete schema at the latest migration (what a fresh database gets)."""
    return resources.files("capledger.stores.postgres").joinpath("schema.sql").read_text("utf-8")


def migration_plan(schema: str, create_schema_sql: str) -> Plan[list[str]]:
    """Bring ``schema`` up to date in one transaction; return the migrations applied.

    A transaction-scoped advisory lock makes concurrent first users of a fresh database queue
    instead of racing to create the same tables; the second one finds them done. A fresh
    schema gets ``schema.sql`` whole and every migration recorded as applied; an existing one
    gets the migrations it has not recorded, in order.

    Args:
        schema: the schema name (a parameter: it is only compared, never spliced).
        create_schema_sql: ``CREATE SCHEMA "name"``, quoted by the caller. Connections
            already have ``search_path`` set to the schema, so once it exists the unqualified
            tables below land in it.
    """
    migrations = load_migrations(MIGRATIONS_PACKAGE)
    replies = yield Round(
        [
            _BEGIN,
            Statement(QUERIES["migration_lock"], {"schema": schema}),
            Statement(QUERIES["schema_exists"], {"schema": schema}, True),
        ]
    )
    (exists,) = replies[2][0]  # type: ignore[index]
    setup = [] if exists else [Statement(create_schema_sql)]
    setup += [
        Statement(QUERIES["create_migrations_table"]),
        Statement(QUERIES["applied_migrations"], None, True),
    ]
    replies = yield Round(setup, pipeline=False)
    done = {row[0] for row in replies[-1] or []}
    pending = [(v, n, sql) for v, n, sql in migrations if v not in done]
    applied = [f"{version:04d}_{name}" for version, name, _ in pending]
    if not done and pending:
        # A fresh schema: the complete schema file is the migrations' sum (a test keeps it so).
        statements = [Statement(schema_sql())]
    else:
        statements = [Statement(sql) for _, _, sql in pending]
    statements += [
        Statement(QUERIES["record_migration"], {"version": version, "name": name})
        for version, name, _ in pending
    ]
    statements.append(_COMMIT)
    # No Commit marker: a migration whose COMMIT was lost is simply run again; the advisory
    # lock and the recorded versions make a second run apply nothing twice.
    yield Round(statements, pipeline=False)
    return applied
