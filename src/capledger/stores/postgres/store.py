"""``postgresql://...``: many processes and hosts sharing one set of budgets.

The store only moves rows: every decision is the Python core's (``apply_batch``), run
inside one PostgreSQL transaction per batch. The transactions themselves are written once,
without I/O, in ``_plans.py``; this module sends their rounds over psycopg 3, synchronously
(``ConnectionPool``, for ``execute`` and every read) or with asyncio (``AsyncConnectionPool``,
one per event loop, for ``aexecute``). Both pools are created on first use.

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

import asyncio
import contextlib
import itertools
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.pq import TransactionStatus

from capledger._core import Account, Config, Entry, HoldRecord, Op, Outcome
from capledger.bounds import STORE_RETRY_DEADLINE_S
from capledger.clock import Clock, SystemClock
from capledger.errors import BackendUnavailable, ConfigurationError

from ..base import Store, account_of, entry_of, hold_of
from . import _wire
from ._failures import (
    CONNECT_RETRY_DEADLINE_S,
    Retry,
    final_error,
    is_pool_timeout,
    is_race,
    status_pause,
)
from ._plans import batch_plan, fast_plan, migration_plan
from ._rounds import QUERIES, Commit, Plan, Round, Rows, Statement

__all__ = ["PostgresStore"]

_T = TypeVar("_T")

DEFAULT_SCHEMA: Final = "public"
DEFAULT_POOL_SIZE: Final = 4
MAX_POOL_SIZE: Final = 100
MAX_IDENTIFIER_LENGTH: Final = 63  # PostgreSQL's NAMEDATALEN - 1
_OPTIONS: Final = ("schema", "pool_size", "retry_s", "connect_retry_s", "migrate", "fast_path")
#: libpq's shortest ``connect_timeout``: the one connection made to explain a pool timeout.
_DIAGNOSE_TIMEOUT_S: Final = 2
#: Journal entries fetched per round trip by a read (``journal``, ``audit_snapshot``).
_JOURNAL_BATCH: Final = 2000


@dataclass(frozen=True, slots=True)
class _Options:
    conninfo: str
    schema: str
    pool_size: int
    retry_s: float
    connect_retry_s: float
    auto_migrate: bool
    fast_path: bool


def _parse_url(url: str) -> _Options:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(f"not a PostgreSQL URL: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {key: value for key, value in query if key in _OPTIONS}
    libpq = [(key, value) for key, value in query if key not in _OPTIONS]
    names = {key for key, _ in libpq}
    # Name our connections so that an operator (or a fault test) can find them, and do not
    # let a dead host stall a connection attempt for the kernel's TCP timeout.
    if "application_name" not in names:
        libpq.append(("application_name", "capledger"))
    if "connect_timeout" not in names:
        libpq.append(("connect_timeout", "5"))
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(libpq), ""))

    schema = options.get("schema", DEFAULT_SCHEMA)
    if not schema or len(schema) > MAX_IDENTIFIER_LENGTH or not schema.isprintable():
        raise ConfigurationError(
            f"schema must be 1 to {MAX_IDENTIFIER_LENGTH} printable characters, not {schema!r}"
        )
    try:
        pool_size = int(options.get("pool_size", DEFAULT_POOL_SIZE))
        retry_s = float(options.get("retry_s", STORE_RETRY_DEADLINE_S))
        connect_retry_s = float(
            options.get("connect_retry_s", min(CONNECT_RETRY_DEADLINE_S, retry_s))
        )
    except ValueError as error:
        raise ConfigurationError(f"bad PostgreSQL URL option: {error}") from None
    if not 1 <= pool_size <= MAX_POOL_SIZE:
        raise ConfigurationError(f"pool_size must be 1 to {MAX_POOL_SIZE}, not {pool_size}")
    for name, seconds in (("retry_s", retry_s), ("connect_retry_s", connect_retry_s)):
        if not 0 <= seconds <= 3600:  # also refuses nan
            raise ConfigurationError(f"{name} must be 0 to 3600 seconds, not {seconds}")
    migrate = options.get("migrate", "auto")
    if migrate not in ("auto", "off"):
        raise ConfigurationError(f"migrate must be auto or off, not {migrate!r}")
    fast_path = options.get("fast_path", "on")
    if fast_path not in ("on", "off"):
        raise ConfigurationError(f"fast_path must be on or off, not {fast_path!r}")
    return _Options(
        conninfo,
        schema,
        pool_size,
        retry_s,
        connect_retry_s,
        migrate == "auto",
        fast_path == "on",
    )


# --- fork() ----------------------------------------------------------------------------------

#: Every open store, so that a child made by ``fork()`` can drop the pools it inherited.
_STORES: Final[weakref.WeakSet[PostgresStore]] = weakref.WeakSet()
#: The pools a child inherited: kept alive so that their connections (the parent's sessions)
#: are never closed from the child.
_INHERITED: Final[list[object]] = []


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_pools_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


# --- failures and retries ---------------------------------------------------------------------


class _CommitUnknown(Exception):
    """The ``COMMIT`` round failed in a way that may have come after the commit: ask."""

    def __init__(self, commit: Commit, error: psycopg.Error) -> None:
        super().__init__(commit.xid)
        self.commit = commit
        self.error = error


# --- the store --------------------------------------------------------------------------------


class PostgresStore(Store):
    """A PostgreSQL database shared by threads, tasks, processes and hosts.

    See the module docstring for the URL options, the clock and failure handling.
    """

    scheme = "postgresql"
    driver_errors = (psycopg.Error,)

    def __init__(self, url: str, clock: Clock) -> None:
        super().__init__(url, clock)
        self._options = _parse_url(url)
        self._server_clock = isinstance(clock, SystemClock)
        # A generic plan for every prepared statement: the locking query's custom plans
        # cost more to plan than to run. A generic plan is made once per connection, often
        # while the tables are still tiny, where a sequential scan is the cheapest plan; it
        # would then stay a sequential scan as the tables grow (a long-lived connection got
        # slower with every hold). Every hot-path query is an index lookup, so sequential
        # scans are ruled out on these sessions, and the plans stay index scans whatever
        # size the tables had when they were made.
        self._set_path = sql.SQL(
            "SET search_path TO {}; SET plan_cache_mode TO force_generic_plan; "
            "SET enable_seqscan TO off"
        ).format(sql.Identifier(self._options.schema))
        self._create_schema = sql.SQL("CREATE SCHEMA {}").format(
            sql.Identifier(self._options.schema)
        )
        self._lock = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._apools: dict[
            asyncio.AbstractEventLoop, asyncio.Task[psycopg_pool.AsyncConnectionPool[Any]]
        ] = {}
        #: True once the schema is known to be migrated (by ``migrate``, or checked).
        self._migrated = False
        self._closed = False
        #: How often the fast path decided (``fast``) or handed over (``fallback``).
        self.fast_path_counts: dict[str, int] = {}
        self._fast_path = self._options.fast_path
        _STORES.add(self)

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self._options.schema!r})"

    # --- pools ----------------------------------------------------------------------------------

    def _forget_pools_after_fork(self) -> None:
        """In a child made by ``fork()``: start afresh with no pool; never touch the parent's.

        The child inherits the parent's sockets, but not the pool's worker threads, so the
        inherited pool would never hand out a connection (a 60 s wait), and a connection
        used by both processes mixes their messages ("prepared statement ... does not
        exist"). The child opens its own pools on first use. The parent's pools are kept
        referenced, not closed: closing would end the parent's sessions on the server.
        """
        self._lock = threading.Lock()  # another thread may have held it at the fork
        _INHERITED.extend((self._pool, self._apools))
        self._pool = None
        self._apools = {}

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError("this PostgreSQL store is closed")

    def _configure(self, connection: psycopg.Connection[Any]) -> None:
        connection.execute(self._set_path)

    async def _aconfigure(self, connection: psycopg.AsyncConnection[Any]) -> None:
        await connection.execute(self._set_path)

    def _probe(self) -> None:
        """Connect once, directly, before a pool is made; raise if that cannot work.

        A pool connects in the background, logs every failure through ``psycopg.pool`` and
        only says "couldn't get a connection" when a caller times out; on a database that
        does not exist it would spin until ``retry_s``. So the first connection is made
        here: a final refusal (``_failures.final_error``) raises ``ConfigurationError`` at
        once, a recoverable one is retried for ``connect_retry_s``, then
        ``BackendUnavailable`` names the last error. No pool exists until this succeeds.
        """
        retry = Retry(self._options.connect_retry_s, connecting=True)
        while True:
            try:
                psycopg.Connection.connect(self._options.conninfo, autocommit=True).close()
                return
            except psycopg.Error as error:
                time.sleep(retry.pause_after(error))

    def _connect_error(self) -> psycopg.Error | None:
        """Why the pool hands out no connection: one direct attempt, for the final message."""
        try:
            psycopg.Connection.connect(
                self._options.conninfo, autocommit=True, connect_timeout=_DIAGNOSE_TIMEOUT_S
            ).close()
        except psycopg.Error as error:
            return error
        return None

    def _sync_pool(self) -> psycopg_pool.ConnectionPool[Any]:
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            self._check_open()
            if self._pool is None:
                self._probe()
                self._pool = psycopg_pool.ConnectionPool(
                    **self._pool_settings(),
                    configure=self._configure,
                    name="capledger",
                    open=True,
                )
            return self._pool

    def _pool_settings(self) -> dict[str, Any]:
        """What the sync and the async pools share."""
        return {
            "conninfo": self._options.conninfo,
            # autocommit: BEGIN and COMMIT are statements of our pipelines, so that a whole
            # transaction costs two round trips, not one more for BEGIN.
            "kwargs": {"autocommit": True, "prepare_threshold": None},
            "min_size": 1,
            "max_size": self._options.pool_size,
        }

    async def _async_pool(self) -> psycopg_pool.AsyncConnectionPool[Any]:
        loop = asyncio.get_running_loop()
        opening = self._apools.get(loop)
        if opening is None or (
            opening.done() and (opening.cancelled() or opening.exception() is not None)
        ):
            # None yet, or the last attempt failed (the server refused): try afresh.
            self._check_open()
            # A pool's workers belong to one event loop, so each loop gets its own pool;
            # concurrent first callers share the task that opens it.
            opening = self._apools[loop] = loop.create_task(self._open_async_pool())
        return await asyncio.shield(opening)

    async def _open_async_pool(self) -> psycopg_pool.AsyncConnectionPool[Any]:
        # Once per event loop, so a thread is cheaper than an async copy of ``_probe``.
        await asyncio.to_thread(self._probe)
        pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
            **self._pool_settings(),
            configure=self._aconfigure,
            name="capledger-async",
            open=False,
        )
        await pool.open()
        return pool

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

    def _diagnosed(self, error: psycopg.Error, retry: Retry) -> psycopg.Error:
        """``error``, or when it is a pool timeout that ends the retries, the reason why.

        Raises:
            ConfigurationError: the reason is final (the database was dropped, the role's
                login taken away): no retry can help.
        """
        if not (is_pool_timeout(error) and retry.expired()):
            return error
        reason = self._connect_error()
        if reason is None:
            return error
        final = final_error(reason, connecting=True)
        if final is not None:
            raise final from reason
        return reason

    def _run(self, make_plan: Callable[[bool], Plan[_T]], *, migrate: bool = True) -> _T:
        """Run the plan ``make_plan(first_attempt)`` to completion, retrying failures."""
        if migrate and not self._migrated:
            self._become_ready(self._run(self._readiness_plan, migrate=False))
        retry = Retry(self._options.retry_s)
        while True:
            plan = make_plan(retry.first)
            try:
                with self._sync_pool().connection(timeout=retry.remaining_s()) as connection:
                    return _drive(connection, plan)
            except _CommitUnknown as unknown:
                if unknown.commit.xid is not None and self._committed(unknown, retry):
                    return unknown.commit.result  # type: ignore[return-value]
                # It rolled back: run the batch again, within the same deadline and backoff
                # as any failure before COMMIT.
                time.sleep(retry.pause_after(unknown.error))
            except psycopg.Error as error:
                if self._lacks_fast_path(error):
                    continue
                time.sleep(retry.pause_after(self._diagnosed(error, retry)))

    def _lacks_fast_path(self, error: psycopg.Error) -> bool:
        """Turn the fast path off if the schema predates it (``migrate=off``, not migrated).

        The call failed before ``COMMIT`` ran, so the transaction rolled back and the batch
        can simply run again, on the Python path.
        """
        if self._fast_path and isinstance(error, pg_errors.UndefinedFunction):
            self._fast_path = False
            return True
        return False

    def _committed(self, unknown: _CommitUnknown, retry: Retry) -> bool:
        """Ask the server whether the transaction whose COMMIT was lost committed."""
        while True:
            try:
                with self._sync_pool().connection(timeout=retry.remaining_s()) as connection:
                    row = connection.execute(
                        QUERIES["xact_status"], {"xid": unknown.commit.xid}
                    ).fetchone()
                pause = status_pause(None if row is None else row[0])
                if pause is None:
                    return row is not None and row[0] == "committed"
            except psycopg.Error as error:
                try:
                    pause = retry.pause_after(error)
                except BackendUnavailable:
                    raise retry.outcome_unknown(error) from error
            time.sleep(pause)

    async def _arun(self, make_plan: Callable[[bool], Plan[_T]], *, migrate: bool = True) -> _T:
        """The async form of ``_run``."""
        if migrate and not self._migrated:
            self._become_ready(await self._arun(self._readiness_plan, migrate=False))
        retry = Retry(self._options.retry_s)
        while True:
            plan = make_plan(retry.first)
            try:
                pool = await self._async_pool()
                async with pool.connection(timeout=retry.remaining_s()) as connection:
                    return await _adrive(connection, plan)
            except _CommitUnknown as unknown:
                if unknown.commit.xid is not None and await self._acommitted(unknown, retry):
                    return unknown.commit.result  # type: ignore[return-value]
                await asyncio.sleep(retry.pause_after(unknown.error))
            except psycopg.Error as error:
                if self._lacks_fast_path(error):
                    continue
                if is_pool_timeout(error) and retry.expired():
                    error = await asyncio.to_thread(self._diagnosed, error, retry)
                await asyncio.sleep(retry.pause_after(error))

    async def _acommitted(self, unknown: _CommitUnknown, retry: Retry) -> bool:
        """The async form of ``_committed``."""
        while True:
            try:
                pool = await self._async_pool()
                async with pool.connection(timeout=retry.remaining_s()) as connection:
                    cursor = await connection.execute(
                        QUERIES["xact_status"], {"xid": unknown.commit.xid}
                    )
                    row = await cursor.fetchone()
                pause = status_pause(None if row is None else row[0])
                if pause is None:
                    return row is not None and row[0] == "committed"
            except psycopg.Error as error:
                try:
                    pause = retry.pause_after(error)
                except BackendUnavailable:
                    raise retry.outcome_unknown(error) from error
            await asyncio.sleep(pause)

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

    def snapshot(self, scopes: Sequence[str]) -> tuple[list[Account], list[HoldRecord]]:
        """Every account on ``scopes`` and every open hold charged to any of them, read at
        one instant without a write lock.

        One round trip: both reads between ``BEGIN ISOLATION LEVEL REPEATABLE READ READ
        ONLY`` and ``COMMIT``, with no ``FOR UPDATE``, so a balance never queues behind a
        reserve, nor a reserve behind a balance.
        """
        params = {"scopes": list(dict.fromkeys(scopes))}

        def plan(first_attempt: bool) -> Plan[tuple[Rows, Rows]]:
            replies = yield Round(
                [
                    Statement("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
                    Statement(QUERIES["snapshot_accounts"], params, True),
                    Statement(QUERIES["snapshot_holds"], params, True),
                    Statement("COMMIT"),
                ]
            )
            return replies[1] or [], replies[2] or []

        account_rows, hold_rows = self._run(plan)
        return [account_of(row) for row in account_rows], [hold_of(row) for row in hold_rows]

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
            pool = self._sync_pool()
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
                time.sleep(retry.pause_after(self._diagnosed(error, retry)))
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

    def close(self) -> None:
        """Close both pools; the store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            apools, self._apools = self._apools, {}
        if pool is not None:
            pool.close()
        for loop, opening in apools.items():
            _close_elsewhere(loop, opening)

    async def aclose(self) -> None:
        """Close both pools, awaiting this event loop's."""
        current = asyncio.get_running_loop()
        opening = self._apools.pop(current, None)
        if opening is not None:
            try:
                pool = await opening
            except Exception:  # it never opened: nothing to close
                pool = None
            if pool is not None:
                await pool.close()
        await asyncio.to_thread(self.close)


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


def _close_elsewhere(
    loop: asyncio.AbstractEventLoop, opening: asyncio.Task[psycopg_pool.AsyncConnectionPool[Any]]
) -> None:
    """Close the async pool of another event loop, as well as that loop's state allows."""
    if not opening.done() or opening.cancelled() or opening.exception() is not None:
        return
    pool = opening.result()
    if not loop.is_closed() and not loop.is_running():
        loop.run_until_complete(pool.close())


# --- sending rounds ---------------------------------------------------------------------------


def _maybe_committed(error: psycopg.Error, closed: bool) -> bool:
    """Whether a failed COMMIT round may have committed all the same.

    A statement error (a constraint, a lost race) aborts the pipeline before the COMMIT
    runs. A lost connection may come after it, and so may a server's FATAL message
    (``pg_terminate_backend``, a shutdown), which arrives as an ``OperationalError`` before
    libpq marks the connection closed: in either case only the server can tell.
    """
    return closed or (isinstance(error, psycopg.OperationalError) and not is_race(error))


def _discard(connection: psycopg.Connection[Any]) -> None:
    """Close a connection whose transaction failed; the pool replaces it.

    Closing ends the transaction on the server (a rollback) and leaves no half-read pipeline
    or half-failed transaction for the next user of the connection. Failures are rare (a
    lost race, a lost connection), so a new connection costs little.
    """
    with contextlib.suppress(psycopg.Error):  # already dead
        connection.close()


async def _adiscard(connection: psycopg.AsyncConnection[Any]) -> None:
    """The async form of ``_discard``."""
    with contextlib.suppress(psycopg.Error):
        await connection.close()


def _send(connection: psycopg.Connection[Any], round_: Round) -> list[Rows | None]:
    if round_.pipeline:
        pgconn = connection.pgconn
        sending = _wire.exchange(connection, pgconn, round_)
        results = connection.wait(_wire.communicate(pgconn, sending))
        return _wire.replies(connection, sending, results)
    replies: list[Rows | None] = []
    for statement in round_.statements:
        cursor = connection.execute(statement.sql, statement.params)
        replies.append(cursor.fetchall() if statement.fetch else None)
    return replies


async def _asend(connection: psycopg.AsyncConnection[Any], round_: Round) -> list[Rows | None]:
    if round_.pipeline:
        pgconn = connection.pgconn
        sending = _wire.exchange(connection, pgconn, round_)
        results = await connection.wait(_wire.communicate(pgconn, sending))
        return _wire.replies(connection, sending, results)
    replies: list[Rows | None] = []
    for statement in round_.statements:
        cursor = await connection.execute(statement.sql, statement.params)
        replies.append(await cursor.fetchall() if statement.fetch else None)
    return replies


def _drive(connection: psycopg.Connection[Any], plan: Plan[_T]) -> _T:
    """Send a plan's rounds on ``connection`` and return what the plan returns."""
    round_ = next(plan)
    while True:
        try:
            replies = _send(connection, round_)
        except psycopg.Error as error:
            commit = round_.commit if _maybe_committed(error, connection.closed) else None
            _discard(connection)
            if commit is not None:
                raise _CommitUnknown(commit, error) from error
            raise
        except BaseException:
            _discard(connection)
            raise
        try:
            round_ = plan.send(replies)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except BaseException:  # the core refused to go on (an invariant): leave nothing open
            _discard(connection)
            raise


async def _adrive(connection: psycopg.AsyncConnection[Any], plan: Plan[_T]) -> _T:
    """The async form of ``_drive``."""
    round_ = next(plan)
    while True:
        try:
            replies = await _asend(connection, round_)
        except psycopg.Error as error:
            commit = round_.commit if _maybe_committed(error, connection.closed) else None
            await _adiscard(connection)
            if commit is not None:
                raise _CommitUnknown(commit, error) from error
            raise
        except BaseException:
            await _adiscard(connection)
            raise
        try:
            round_ = plan.send(replies)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except BaseException:
            await _adiscard(connection)
            raise
