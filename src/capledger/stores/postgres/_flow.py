"""The PostgreSQL store's transactions, written once, without I/O.

A *plan* is a generator that yields ``Round`` s (statements to send in one pipelined round
trip) and receives each round's rows back. The sync and async drivers in ``store.py`` only
send rounds and hand rows back, as httpx drives its ``auth_flow``; everything else (which
rows to lock, running the core, what to write) lives here, once.

A batch is two round trips:

1. ``BEGIN``; lock the holds the operations name (sorted by id); lock every account row of
   every scope the batch can touch (sorted by key), including the scopes of those holds and
   of the oldest overdue holds, then read them again (see ``lock_accounts`` in
   ``queries.sql``: a statement that waited for a lock does not see rows added meanwhile);
   lock the overdue holds (``SKIP LOCKED``); read the server's clock and the transaction id.
2. Run ``apply_isolated`` on a ``BufferedState`` served from those rows, then send every write
   as one statement (writable CTEs, one JSON array of rows per table, whatever the batch
   size) and ``COMMIT``.

If the core asks for a row the first round did not fetch (``SetLimit`` reads the journal and
the open holds; anything unforeseen), the plan fetches it in an extra round and runs the core
again from scratch on a fresh buffer: the core is pure, so a re-run is exact.

A scope that had no account when the first round locked them (a brand-new scope) is such a
row too: its extra round first takes the scope's advisory lock (``lock_new_scopes``), so
that whatever creates a scope's first account queues behind every transaction that found
it empty, and none of them misses the accounts or the holds another one adds.
"""

from __future__ import annotations

import json
import re
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
    apply_isolated,
)
from capledger.bounds import MAX_EXPIRE_PER_STEP

from .._buffer import BufferedState
from .._sql import load_migrations, load_named_queries
from ..base import account_of, entry_of, hold_of

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
    "fast_plan",
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
    the batch again. ``xid`` is None for the fast path's single round, which cannot learn
    its transaction id before it sends ``COMMIT``: the driver runs the operation again
    instead, which is safe because a fast-path operation is idempotent (a reserve carries
    its client-made hold id and a retry finds that hold; the same settle again is a no-op).
    """

    xid: str | None
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


# --- the batch transaction --------------------------------------------------------------------


class _Missing(Exception):
    """Raised inside the core when it asks for a row the first round did not fetch."""

    def __init__(self, kind: str, key: tuple[object, ...], *statements: Statement) -> None:
        super().__init__(kind, key)
        self.kind = kind
        self.key = key
        #: Sent in one round; the last one's rows are the answer.
        self.statements = list(statements)


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
        locked_rows: Rows,
        account_rows: Rows,
        overdue_rows: Rows,
    ) -> None:
        # Only the scopes the first lock_accounts found rows of are known whole (every row
        # of theirs is in the second one's answer, and locked); any other scope, named or
        # not, is asked for in an extra round that takes its advisory lock first.
        known = {row[0] for row in locked_rows}
        self._accounts: dict[str, Rows] = {scope: [] for scope in known}
        for row in account_rows:
            if row[0] in known:
                self._accounts[row[0]].append(row)
        self._holds: dict[str, Row | None] = dict.fromkeys(wanted.hold_ids)
        self._by_request: dict[str, Row | None] = dict.fromkeys(wanted.request_ids)
        for row in hold_rows:
            self._remember_hold(row)
        #: Scopes the batch is known to touch with no account locked yet, fetched together.
        self._unknown = set(wanted.scopes)
        for hold_id in wanted.hold_ids:
            locked = self._holds.get(hold_id)
            if locked is not None:
                self._unknown.update(locked[2])
        self._unknown -= known
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

    def restart(self) -> None:
        """Start a run of the core afresh: hand out the overdue holds from the first again.

        Without this, a re-run after a missing row was fetched got no overdue holds (the
        first run had taken them), so it did not expire what the core would have expired.
        """
        self._overdue_served = 0

    def learn(self, missing: _Missing, rows: Rows) -> None:
        """Keep the rows fetched for ``missing``."""
        if missing.kind == "accounts":
            scopes = [str(scope) for scope in missing.key]
            for scope in scopes:
                self._accounts[scope] = []
            for row in rows:
                self._accounts[row[0]].append(row)
            self._unknown.difference_update(scopes)
            self.learned_scopes.update(scopes)
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
            params = {"scopes": sorted(self._unknown | {scope})}
            raise _Missing(
                "accounts",
                tuple(params["scopes"]),
                Statement(QUERIES["lock_new_scopes"], params),
                Statement(QUERIES["lock_scopes"], params),
                Statement(QUERIES["lock_scopes"], params, True),
            )
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
    counts: dict[str, int] | None = None,
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
        counts: unused (``fast_plan`` takes the same arguments).
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
    locked_rows, account_rows, overdue_rows, clock_rows = replies[-4:]
    server_now_us, xid = clock_rows[0]  # type: ignore[index]
    source = _Prefetched(
        wanted, hold_rows or [], locked_rows or [], account_rows or [], overdue_rows or []
    )
    decided_at_us = server_now_us if now_us is None else now_us

    def fresh() -> BufferedState:
        source.restart()
        return BufferedState(source, wanted.absent_ids)

    # Each run starts from the rows as read: a run that asked for a missing row, or in which
    # an operation failed (``apply_isolated`` decides again without it), leaves nothing
    # behind.
    while True:
        try:
            state, outcomes = apply_isolated(fresh, ops, decided_at_us, config)
        except _Missing as missing:
            replies = yield Round(missing.statements)
            source.learn(missing, replies[-1] or [])
            learned_scopes.update(source.learned_scopes)
            continue
        break

    writes = _writes(state)
    statements = [_one_statement(writes)] if writes else []
    statements.append(_COMMIT)
    yield Round(statements, commit=Commit(xid, outcomes))
    return outcomes


def _fast_statement(op: Op, config: Config, now_us: int | None) -> Statement | None:
    """The fast path's call for ``op``, or None when ``op`` is never a fast-path case."""
    kind = type(op)
    if kind is Reserve:
        reserve: Reserve = op  # type: ignore[assignment]
        params: dict[str, object] = {
            "id": reserve.hold_id,
            "request_id": reserve.request_id,
            "scopes": _rows_json(reserve.scopes),
            "amounts": _rows_json(reserve.amounts),
            "ttl_us": reserve.ttl_us,
            "tags": _rows_json(reserve.tags),
            "fingerprint": reserve.fingerprint,
            "now_us": now_us,
        }
        return Statement(QUERIES["fast_reserve"], params, True)
    if kind is Settle:
        settle: Settle = op  # type: ignore[assignment]
        params = {
            "id": settle.hold_id,
            "amounts": _rows_json(settle.amounts),
            "tags": _rows_json(dict(settle.tags)),
            "threshold_bps": list(config.threshold_bps),
            "now_us": now_us,
        }
        return Statement(QUERIES["fast_settle"], params, True)
    return None


def fast_plan(
    ops: Sequence[Op],
    config: Config,
    *,
    now_us: int | None,
    first_attempt: bool,
    learned_scopes: set[str],
    counts: dict[str, int] | None = None,
) -> Plan[list[Outcome]]:
    """``batch_plan``, with one round trip instead of two in the common case.

    A single reserve or settle with no event listened to is first sent to its stored
    function (``capledger_reserve_v1``, ``capledger_settle_v1``) as ``BEGIN``, the call and
    ``COMMIT`` in one round. The function decides exactly as the core would in the common
    case; in any other case it writes nothing and returns no row, and this plan goes on as
    ``batch_plan`` (one more round trip than the Python path alone, in a rare case). A retry
    (``first_attempt`` False) always takes the Python path, which looks up the batch's own
    hold ids. ``counts`` (if given) counts ``fast`` and ``fallback`` decisions.
    """
    statement = None
    if first_attempt and len(ops) == 1 and not config.listened:
        statement = _fast_statement(ops[0], config, now_us)
    if statement is not None:
        replies = yield Round([_BEGIN, statement, _COMMIT], commit=Commit(None, None))
        rows = replies[1]
        if rows:
            if counts is not None:
                counts["fast"] = counts.get("fast", 0) + 1
            return [Outcome(hold_of(rows[0]))]
        if counts is not None:
            counts["fallback"] = counts.get("fallback", 0) + 1
    return (
        yield from batch_plan(
            ops,
            config,
            now_us=now_us,
            first_attempt=first_attempt,
            learned_scopes=learned_scopes,
        )
    )


_PARAMETER: Final = re.compile(r"%\((\w+)\)s")
_END: Final = re.compile(r";[ \t]*(--[^\n]*)?\s*$")
_COMPOSED: dict[tuple[str, ...], str] = {}


def _composed(names: tuple[str, ...]) -> str:
    """The write queries ``names`` as one statement: each but the last in a writable CTE.

    Parameters are renamed ``w<i>_<name>`` so that the queries' own names cannot collide.
    PostgreSQL runs every CTE to completion whether or not it is read, all on one snapshot
    and in no guaranteed order; that is fine here because the writes of one batch never
    touch the same row twice (``BufferedState`` keeps a key in at most one of new, changed
    and removed), and the journal's order comes from its own ``ORDER BY`` alone.
    """
    sql = _COMPOSED.get(names)
    if sql is None:
        bodies = [
            _PARAMETER.sub(rf"%(w{i}_\1)s", _END.sub("", QUERIES[name]))
            for i, name in enumerate(names)
        ]
        ctes = ",\n".join(f"w{i} AS (\n{body}\n)" for i, body in enumerate(bodies[:-1]))
        sql = _COMPOSED.setdefault(names, f"WITH {ctes}\n{bodies[-1]}" if ctes else bodies[-1])
    return sql


def _one_statement(writes: list[tuple[str, Mapping[str, object]]]) -> Statement:
    """Every write of a batch as one statement: one Bind/Execute, however many tables."""
    names = tuple(name for name, _ in writes)
    params = {
        f"w{i}_{key}": value for i, (_, given) in enumerate(writes) for key, value in given.items()
    }
    return Statement(_composed(names), params)


def _account_row(a: Account) -> dict[str, object]:
    return {
        "scope": a.scope, "unit": a.unit, "period": a.period, "cap": a.cap, "spent": a.spent,
        "held": a.held, "window_start_us": a.window_start_us, "window_end_us": a.window_end_us,
        "tz": a.tz, "anchor_us": a.anchor_us, "alert_bp": a.alert_bp,
    }  # fmt: skip


def _new_hold_row(h: HoldRecord) -> dict[str, object]:
    return {
        "id": h.id, "request_id": h.request_id, "scopes": h.scopes, "amounts": h.amounts,
        "state": h.state, "created_us": h.created_us, "expires_us": h.expires_us,
        "tags": h.tags, "fingerprint": h.fingerprint, "settled": h.settled,
        "closed_us": h.closed_us, "flags": h.flags,
    }  # fmt: skip


def _changed_hold_row(h: HoldRecord) -> dict[str, object]:
    return {
        "id": h.id, "amounts": h.amounts, "state": h.state, "expires_us": h.expires_us,
        "tags": h.tags, "settled": h.settled, "closed_us": h.closed_us, "flags": h.flags,
    }  # fmt: skip


def _entry_row(e: Entry) -> dict[str, object]:
    return {
        "ts_us": e.ts_us, "kind": e.kind, "hold_id": e.hold_id, "request_id": e.request_id,
        "scopes": e.scopes, "amounts": e.amounts, "tags": e.tags, "flags": e.flags,
    }  # fmt: skip


#: The writes' JSON: compact, keys in any order (the server turns it into rows and jsonb, so
#: sorting keys would only cost time), with one encoder made once.
_rows_json: Final = json.JSONEncoder(separators=(",", ":")).encode


def _writes(state: BufferedState) -> list[tuple[str, Mapping[str, object]]]:
    """Per kind of change, its query's name and parameters: every row in one JSON array."""
    writes: list[tuple[str, Mapping[str, object]]] = []
    if state.removed_accounts:
        keys = list(state.removed_accounts)
        removed = [{"scope": k[0], "unit": k[1], "period": k[2]} for k in keys]
        scopes = sorted({k[0] for k in keys})
        writes.append(("delete_accounts", {"rows": _rows_json(removed), "scopes": scopes}))
    if state.new_accounts:
        rows = [_account_row(a) for a in state.new_accounts.values()]
        writes.append(("insert_accounts", {"rows": _rows_json(rows)}))
    if state.changed_accounts:
        changed = list(state.changed_accounts.values())
        rows = [_account_row(a) for a in changed]
        scopes = sorted({a.scope for a in changed})
        writes.append(("update_accounts", {"rows": _rows_json(rows), "scopes": scopes}))
    if state.new_holds:
        rows = [_new_hold_row(h) for h in state.new_holds.values()]
        writes.append(("insert_holds", {"rows": _rows_json(rows)}))
    if state.changed_holds:
        holds = list(state.changed_holds.values())
        rows = [_changed_hold_row(h) for h in holds]
        ids = [h.id for h in holds]
        writes.append(("update_holds", {"rows": _rows_json(rows), "ids": ids}))
    if state.entries:
        rows = [_entry_row(e) for e in state.entries]
        writes.append(("insert_entries", {"rows": _rows_json(rows)}))
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
