"""``postgresql://...``: many processes and hosts sharing one set of budgets.

The store only moves rows: every decision is the Python core's (``apply_batch``), run
inside one PostgreSQL transaction per batch. The transactions themselves are written once,
without I/O, in ``_plans.py``, and run by one flow (``_retry.py``) over psycopg 3, performed
synchronously (``ConnectionPool``, for ``execute`` and every read) or with asyncio
(``AsyncConnectionPool``, one per event loop, for ``aexecute``); the pools (``_pools.py``) are
created on first use.

URL options (everything else in the URL is passed to libpq unchanged)::

    postgresql://user:password@host:5432/app?schema=public&pool_size=4&retry_s=60&connect_retry_s=10&migrate=auto&fast_path=on

* ``schema`` (default ``public``): where the ``capledger_*`` tables live. Each connection's
  ``search_path`` is set to it, so capledger can live inside an application's database.
* ``pool_size`` (default 4): the most connections each pool opens.
* ``retry_s`` (default ``STORE_RETRY_DEADLINE_S``): how long a lost connection or a restarting
  server is retried before ``BackendUnavailable``.
* ``connect_retry_s`` (default ``CONNECT_RETRY_DEADLINE_S``, or ``retry_s`` if shorter): how long
  the first connection (made before a pool exists) retries a refused connection, a server
  starting up or too many connections, before ``BackendUnavailable``.
* ``migrate`` (``auto`` or ``off``, default ``auto``): apply pending migrations on first use.
* ``fast_path`` (``on`` or ``off``, default ``on``): run a single reserve or settle in the
  common case as one stored-function call (one round trip instead of two); see
  ``fast_plan`` in ``_plans.py``. Everything else, and every retry, runs the Python core.

Time: with the default ``SystemClock`` every decision uses the database server's clock,
read in the locking round trip after every lock is granted, so all hosts agree on the
order of time and a transaction that waited for another never decides "before" it. Any
other clock (``ManualClock`` in tests) is used as given.

Failures (which are retried is decided in ``_failures.py``, once): a database or role that
does not exist, a refused login, a bad ``sslmode`` or another bad connection option raise
``ConfigurationError`` at once, with the server's words; no pool is made until a first
connection succeeded, so nothing spins in the background on a database that cannot be used.
With ``migrate=off``, a schema never migrated raises ``ConfigurationError`` saying to run
``capledger migrate``. A lost connection, a server restart or a pool timeout raises
``BackendUnavailable`` (the psycopg error is its ``__cause__``, the message names the last
one), after retrying for ``retry_s`` (``connect_retry_s`` for the first connection). Retrying
is safe:
a transaction that failed before its ``COMMIT`` was sent was rolled back by the server; if
the connection died after ``COMMIT`` was sent, the store asks the server whether that
transaction id committed (``pg_xact_status``) and returns what it decided if it did, so no
batch is ever applied twice. (Operations also carry client-made hold ids, so even a replayed
reserve finds its own hold and a replayed settle is a no-op.) The fast path's single round
cannot learn its transaction id before ``COMMIT``, so a lost fast-path ``COMMIT`` is resolved
the second way: the operation runs again on the Python path, which finds the hold the lost
commit made (a reserve) or sees the same settle again (a no-op).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.pq import TransactionStatus

from capledger._core import Account, Config, Entry, HoldRecord, Op, Outcome
from capledger._core.views import Snapshot
from capledger._flow import arun, run
from capledger.clock import Clock, SystemClock
from capledger.errors import ConfigurationError

from ..base import Store, account_of, entry_of, hold_of
from ._failures import Retry
from ._plans import batch_plan, fast_plan, migration_plan
from ._pools import Pools, parse_url
from ._retry import AsyncSteps, Flow, SyncSteps, attempts, diagnosed
from ._rounds import QUERIES, Plan, Round, Rows, Statement

__all__ = ["PostgresStore"]

_T = TypeVar("_T")

#: Journal entries fetched per round trip by a read (``journal``, ``audit_snapshot``).
_JOURNAL_BATCH: Final = 2000


# --- the store --------------------------------------------------------------------------------


class PostgresStore(Store):
    """A PostgreSQL database shared by threads, tasks, processes and hosts.

    See the module docstring for the URL options, the clock and failure handling.
    """

    scheme = "postgresql"
    driver_errors = (psycopg.Error,)

    def __init__(self, url: str, clock: Clock) -> None:
        super().__init__(url, clock)
        self._options = parse_url(url)
        self._server_clock = isinstance(clock, SystemClock)
        self._pools = Pools(self._options)
        self._create_schema = sql.SQL("CREATE SCHEMA {}").format(
            sql.Identifier(self._options.schema)
        )
        #: True once the schema is known to be migrated (by ``migrate``, or checked).
        self._migrated = False
        self._closed = False
        #: How often the fast path decided (``fast``) or handed over (``fallback``).
        self.fast_path_counts: dict[str, int] = {}
        self._fast_path = self._options.fast_path

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self._options.schema!r})"

    # --- drivers: send a plan's rounds, retry what is provably safe ---------------------------

    def _readiness_plan(self, first_attempt: bool) -> Plan[bool]:
        """Migrate (``migrate=auto``) or check that the schema was migrated (``off``)."""
        if self._options.auto_migrate:
            yield from self._migration_plan(first_attempt)
            return True
        params = {"schema": self._options.schema}
        (rows,) = yield Round([Statement(QUERIES["schema_migrated"], params, True)])
        return bool(rows and rows[0][0])

    def _become_ready(self, ready: bool) -> None:
        # Raised here, after the plan returned its connection cleanly: an error raised inside
        # a plan closes the connection, and the pool then logs "discarding closed connection".
        if not ready:
            raise ConfigurationError(
                f"schema {self._options.schema!r} has no capledger tables and the URL says "
                "migrate=off: run `capledger migrate` (or ledger.migrate()) once, with a role "
                "allowed to create tables, or drop migrate=off"
            )
        self._migrated = True

    def _flow(self, make_plan: Callable[[bool], Plan[_T]], migrate: bool) -> Flow[_T]:
        """Make the schema ready if not known to be (``migrate``), then run the plan."""
        if migrate and not self._migrated:
            ready = yield from attempts(self._readiness_plan, self._options.retry_s, _never)
            self._become_ready(ready)
        return (yield from attempts(make_plan, self._options.retry_s, self._lacks_fast_path))

    def _run(self, make_plan: Callable[[bool], Plan[_T]], *, migrate: bool = True) -> _T:
        """Run the plan ``make_plan(first_attempt)`` to completion, retrying failures."""
        steps = SyncSteps(self._pools)
        try:
            return run(self._flow(make_plan, migrate), steps, catch=psycopg.Error)
        finally:
            steps.give_back(discard=True)  # still taken only when the flow raised

    async def _arun(self, make_plan: Callable[[bool], Plan[_T]], *, migrate: bool = True) -> _T:
        """The async form of ``_run``, on the event loop's own pool."""
        steps = AsyncSteps(self._pools)
        try:
            return await arun(self._flow(make_plan, migrate), steps, catch=psycopg.Error)
        finally:
            await steps.give_back(discard=True)

    def _lacks_fast_path(self, error: psycopg.Error) -> bool:
        """Turn the fast path off if the schema predates it (``migrate=off``, not migrated).

        The call failed before ``COMMIT`` ran, so the transaction rolled back and the batch
        can simply run again, on the Python path.
        """
        if self._fast_path and isinstance(error, pg_errors.UndefinedFunction):
            self._fast_path = False
            return True
        return False

    # --- the store contract ---------------------------------------------------------------------

    def _batch(self, ops: Sequence[Op], config: Config) -> Callable[[bool], Plan[list[Outcome]]]:
        clock = None if self._server_clock else self.clock
        counts = self.fast_path_counts

        def make_plan(first_attempt: bool) -> Plan[list[Outcome]]:
            plan = fast_plan if self._fast_path else batch_plan
            return plan(
                ops,
                config,
                now_us=None if clock is None else clock.now_us(),
                first_attempt=first_attempt,
                counts=counts,
            )

        return make_plan

    def execute(self, ops: Sequence[Op], config: Config) -> list[Outcome]:
        """Apply ``ops`` in one transaction (one or two round trips); return their outcomes."""
        return self._run(self._batch(ops, config))

    async def aexecute(self, ops: Sequence[Op], config: Config) -> list[Outcome]:
        """The async form of ``execute``, on the event loop's own pool."""
        return await self._arun(self._batch(ops, config))

    def _migration_plan(self, first_attempt: bool) -> Plan[list[str]]:
        return migration_plan(self._options.schema, self._create_schema.as_string(None))

    def migrate(self) -> list[str]:
        """Apply the migrations the schema lacks (all of them as ``schema.sql`` when fresh)."""
        applied = self._run(self._migration_plan, migrate=False)
        self._migrated = True
        return applied

    def _select(self, name: str, params: dict[str, object]) -> Rows:
        def plan(first_attempt: bool) -> Plan[Rows]:
            (rows,) = yield Round([Statement(QUERIES[name], params, True)])
            return rows or []

        return self._run(plan)

    def accounts(self, scope: str | None = None) -> list[Account]:
        """Copies of the stored accounts (of ``scope`` if given), in key order."""
        if scope is None:
            return [account_of(row) for row in self._select("all_accounts", {})]
        return [account_of(row) for row in self._select("scope_accounts", {"scope": scope})]

    def holds(
        self, *, scope: str | None = None, states: Sequence[str] = ("open",), limit: int = 1000
    ) -> list[HoldRecord]:
        """Up to ``limit`` holds in ``states`` (charged to ``scope`` if given), oldest first."""
        params: dict[str, object] = {"states": list(states), "scope": scope, "limit": limit}
        return [hold_of(row) for row in self._select("list_holds", params)]

    def newest_holds(
        self, *, scope: str | None = None, states: Sequence[str] = ("open",), limit: int = 1000
    ) -> list[HoldRecord]:
        """Up to ``limit`` holds in ``states`` (charged to ``scope`` if given), newest first."""
        params: dict[str, object] = {"states": list(states), "scope": scope, "limit": limit}
        return [hold_of(row) for row in self._select("list_holds_newest", params)]

    def snapshot(self, scopes: Sequence[str]) -> Snapshot:
        """Every account on ``scopes`` and every open hold charged to any of them, read at
        one instant without a write lock.

        One round trip: both reads between ``BEGIN ISOLATION LEVEL REPEATABLE READ READ
        ONLY`` and ``COMMIT``, with no ``FOR UPDATE``, so a balance never queues behind a
        reserve, nor a reserve behind a balance. The time is the server's, read in the same
        transaction, as a batch decides by it (or the injected clock's, likewise); hold
        deadlines are on that clock too.
        """
        params = {"scopes": list(dict.fromkeys(scopes))}
        clock = None if self._server_clock else self.clock

        def plan(first_attempt: bool) -> Plan[tuple[Rows, Rows, Rows]]:
            replies = yield Round(
                [
                    Statement("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
                    Statement(QUERIES["snapshot_accounts"], params, True),
                    Statement(QUERIES["snapshot_holds"], params, True),
                    Statement(QUERIES["clock"], None, True),
                    Statement("COMMIT"),
                ]
            )
            return replies[1] or [], replies[2] or [], replies[3] or []

        account_rows, hold_rows, clock_rows = self._run(plan)
        now_us = int(clock_rows[0][0]) if clock is None else clock.now_us()
        accounts = [account_of(row) for row in account_rows]
        return Snapshot(accounts, [hold_of(row) for row in hold_rows], now_us, now_us)

    def journal(self, since_us: int | None = None, until_us: int | None = None) -> Iterator[Entry]:
        """Stream journal entries in ``[since_us, until_us)`` in order (a server-side cursor)."""
        params = {
            "since_us": since_us or 0,
            "until_us": until_us if until_us is not None else 2**62,
        }
        return self._stream("BEGIN READ ONLY", params)[2]

    def audit_snapshot(self) -> tuple[list[Account], list[HoldRecord], Iterator[Entry]]:
        """Accounts, open holds and the journal from one REPEATABLE READ snapshot."""
        accounts, holds, entries = self._stream(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            {"since_us": 0, "until_us": 2**62},
            snapshot=True,
        )
        return accounts, holds, entries

    def _stream(
        self, begin: str, params: Mapping[str, object], *, snapshot: bool = False
    ) -> tuple[list[Account], list[HoldRecord], Iterator[Entry]]:
        """Open a read-only transaction; read the snapshot's rows and the first entries.

        Everything up to the first batch of entries is retried as a write is (a connection
        the server terminated, a restart), within ``retry_s``. A connection lost later, while
        the caller reads the rest of a long journal, raises ``BackendUnavailable``: the
        entries already handed out cannot be taken back.
        """
        if not self._migrated:
            self._become_ready(self._run(self._readiness_plan, migrate=False))
        retry = Retry(self._options.retry_s)
        while True:
            pool = self._pools.sync_pool()
            connection = None
            try:
                connection = pool.getconn(timeout=retry.remaining_s())
                connection.execute(begin)
                accounts: list[Account] = []
                holds: list[HoldRecord] = []
                if snapshot:
                    accounts = [account_of(r) for r in connection.execute(QUERIES["all_accounts"])]
                    open_params = {"states": ["open"], "scope": None, "limit": 2**62}
                    holds = [
                        hold_of(r) for r in connection.execute(QUERIES["list_holds"], open_params)
                    ]
                cursor = connection.cursor(name="capledger_journal")
                cursor.itersize = _JOURNAL_BATCH
                cursor.execute(QUERIES["journal"], params)
                first = cursor.fetchmany(_JOURNAL_BATCH)
            except psycopg.Error as error:
                if connection is not None:
                    _give_back(pool, connection)
                time.sleep(retry.pause_after(run(diagnosed(error, retry), SyncSteps(self._pools))))
                continue
            except BaseException:
                if connection is not None:
                    _give_back(pool, connection)
                raise
            break
        if len(first) < _JOURNAL_BATCH:  # the whole journal came: no cursor left to read
            with contextlib.suppress(psycopg.Error):
                cursor.close()
            _give_back(pool, connection)
            return accounts, holds, iter([entry_of(row) for row in first])
        entries = self._entries(pool, connection, cursor, first)
        # Start the generator now, so that its ``finally`` (which gives the connection back)
        # runs even if the caller never reads an entry: a started generator is closed when
        # it is dropped, an unstarted one is not.
        head = next(entries)
        return accounts, holds, itertools.chain((head,), entries)

    def _entries(
        self,
        pool: psycopg_pool.ConnectionPool[Any],
        connection: psycopg.Connection[Any],
        cursor: psycopg.ServerCursor[Any],
        first: Rows,
    ) -> Iterator[Entry]:
        try:
            for row in first:
                yield entry_of(row)
            with cursor:  # a driver error here is mapped by Store, around the iteration
                for row in cursor:
                    yield entry_of(row)
        finally:
            _give_back(pool, connection)

    def _sync_pool(self) -> psycopg_pool.ConnectionPool[Any]:
        """The sync pool (opened on first use)."""
        return self._pools.sync_pool()

    def close(self) -> None:
        """Close both pools; the store cannot be used afterwards."""
        self._pools.close()

    async def aclose(self) -> None:
        """Close both pools, awaiting this event loop's."""
        await self._pools.aclose()


def _give_back(pool: psycopg_pool.ConnectionPool[Any], connection: psycopg.Connection[Any]) -> None:
    """End a read-only transaction and return the connection to the pool.

    COMMIT, not ROLLBACK: the two are the same for a read-only transaction, but psycopg
    empties its prepared-statement cache whenever it sees a ROLLBACK.
    """
    try:
        status = connection.info.transaction_status
        if status == TransactionStatus.INTRANS:
            connection.execute("COMMIT")
        elif status != TransactionStatus.IDLE:
            connection.close()  # failed or unknown: let the pool replace it
    except psycopg.Error:
        pass  # the pool discards a dead connection
    pool.putconn(connection)


def _never(error: psycopg.Error) -> bool:
    return False
