"""The PostgreSQL store's transactions, written once, without I/O (see ``_rounds.py``).

A batch is two round trips:

1. ``BEGIN`` and every lock and read the core declared for the batch (``reads``), in one
   pipelined round: see ``_load.py``.
2. ``apply_isolated`` over a ``BufferedState`` served from those rows (the core decides
   once; only an operation that raised is left out and the rest decided again), then every
   write as one statement (writable CTEs, one JSON array of rows per table, whatever the
   batch size) and ``COMMIT``.

With the server's clock, a batch that sets a limit reads the journal's spend since the
limit's window began in one more round, after the first, once the time of the decision is
known: the only read that hangs on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Final

from capledger._core import (
    Account,
    Config,
    Entry,
    HoldRecord,
    Op,
    Outcome,
    Reserve,
    Settle,
    apply_isolated,
    reads,
)

from .._buffer import BufferedState
from .._sql import load_migrations
from ..base import hold_of
from ._load import FirstRound, spent_since_statements
from ._rounds import BEGIN, COMMIT, QUERIES, Commit, Plan, Round, Statement

__all__ = ["MIGRATIONS_PACKAGE", "batch_plan", "fast_plan", "migration_plan", "schema_sql"]

MIGRATIONS_PACKAGE: Final = "capledger.stores.postgres.migrations"


def batch_plan(
    ops: Sequence[Op],
    config: Config,
    *,
    now_us: int | None,
    first_attempt: bool,
    counts: dict[str, int] | None = None,
) -> Plan[list[Outcome]]:
    """The transaction that applies ``ops``: lock and read, decide with the core, write.

    Args:
        ops: the batch, applied in order.
        config: the core's settings.
        now_us: the injected clock's time, or None to use the server's clock (read after
            every lock is granted, so every host and process agrees on the order of time).
        first_attempt: False when retrying, so the batch's own hold ids are looked up.
        counts: unused (``fast_plan`` takes the same arguments).
    """
    first = FirstRound(reads(ops), first_attempt=first_attempt, now_us=now_us)
    loaded, server_now_us, xid = first.loaded((yield Round(first.statements)))
    decided_at_us = server_now_us if now_us is None else now_us
    if now_us is None and first.declared.spent_since:
        keys, statements = spent_since_statements(first.declared.spent_since, decided_at_us)
        loaded.learn_spent(keys, (yield Round(statements)))

    def fresh() -> BufferedState:
        return BufferedState(loaded.source(), first.absent_ids)

    state, outcomes = apply_isolated(fresh, ops, decided_at_us, config)
    writes = _writes(state)
    statements = [_one_statement(writes)] if writes else []
    statements.append(COMMIT)
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
        replies = yield Round([BEGIN, statement, COMMIT], commit=Commit(None, None))
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
            BEGIN,
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
    statements.append(COMMIT)
    # No Commit marker: a migration whose COMMIT was lost is simply run again; the advisory
    # lock and the recorded versions make a second run apply nothing twice.
    yield Round(statements, pipeline=False)
    return applied
