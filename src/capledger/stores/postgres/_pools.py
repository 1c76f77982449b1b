"""The PostgreSQL store's URL options and connection pools (sync, and async per event loop).

Both pools are created on first use, after one direct connection succeeded (``_probe``), so
that nothing spins in the background on a database that cannot be used. Each session's
``search_path`` is the configured schema.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool
from psycopg import sql

from capledger.bounds import STORE_RETRY_DEADLINE_S
from capledger.errors import ConfigurationError

from ._failures import CONNECT_RETRY_DEADLINE_S, Retry

__all__ = ["DEFAULT_POOL_SIZE", "DEFAULT_SCHEMA", "MAX_POOL_SIZE", "Options", "Pools", "parse_url"]

DEFAULT_SCHEMA: Final = "public"
DEFAULT_POOL_SIZE: Final = 4
MAX_POOL_SIZE: Final = 100
MAX_IDENTIFIER_LENGTH: Final = 63  # PostgreSQL's NAMEDATALEN - 1
_OPTIONS: Final = ("schema", "pool_size", "retry_s", "connect_retry_s", "migrate", "fast_path")
#: libpq's shortest ``connect_timeout``: the one connection made to explain a pool timeout.
_DIAGNOSE_TIMEOUT_S: Final = 2


@dataclass(frozen=True, slots=True)
class Options:
    conninfo: str
    schema: str
    pool_size: int
    retry_s: float
    connect_retry_s: float
    auto_migrate: bool
    fast_path: bool


def parse_url(url: str) -> Options:
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
    return Options(
        conninfo,
        schema,
        pool_size,
        retry_s,
        connect_retry_s,
        migrate == "auto",
        fast_path == "on",
    )


# --- fork() ----------------------------------------------------------------------------------

#: Every store's pools, so that a child made by ``fork()`` can drop the ones it inherited.
_POOLS: Final[weakref.WeakSet[Pools]] = weakref.WeakSet()
#: The pools a child inherited: kept alive so that their connections (the parent's sessions)
#: are never closed from the child.
_INHERITED: Final[list[object]] = []


def _after_fork_in_child() -> None:
    for pools in list(_POOLS):
        pools.forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Pools:
    """The sync pool and the async pools (one per event loop) of one store."""

    def __init__(self, options: Options) -> None:
        self.options = options
        # A generic plan for every prepared statement: the locking query's custom plans
        # cost more to plan than to run. (A batch's own transaction rules sequential scans
        # out for its statements: index_scans in queries.sql says why.)
        self._set_path = sql.SQL(
            "SET search_path TO {}; SET plan_cache_mode TO force_generic_plan"
        ).format(sql.Identifier(options.schema))
        self._lock = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._apools: dict[
            asyncio.AbstractEventLoop, asyncio.Task[psycopg_pool.AsyncConnectionPool[Any]]
        ] = {}
        self._closed = False
        _POOLS.add(self)

    def forget_after_fork(self) -> None:
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

    def check_open(self) -> None:
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
        retry = Retry(self.options.connect_retry_s, connecting=True)
        while True:
            try:
                psycopg.Connection.connect(self.options.conninfo, autocommit=True).close()
                return
            except psycopg.Error as error:
                time.sleep(retry.pause_after(error))

    def connect_error(self) -> psycopg.Error | None:
        """Why the pool hands out no connection: one direct attempt, for the final message."""
        try:
            psycopg.Connection.connect(
                self.options.conninfo, autocommit=True, connect_timeout=_DIAGNOSE_TIMEOUT_S
            ).close()
        except psycopg.Error as error:
            return error
        return None

    def sync_pool(self) -> psycopg_pool.ConnectionPool[Any]:
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            self.check_open()
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
            "conninfo": self.options.conninfo,
            # autocommit: BEGIN and COMMIT are statements of our pipelines, so that a whole
            # transaction costs two round trips, not one more for BEGIN.
            "kwargs": {"autocommit": True, "prepare_threshold": None},
            "min_size": 1,
            "max_size": self.options.pool_size,
        }

    async def async_pool(self) -> psycopg_pool.AsyncConnectionPool[Any]:
        loop = asyncio.get_running_loop()
        opening = self._apools.get(loop)
        if opening is None or (
            opening.done() and (opening.cancelled() or opening.exception() is not None)
        ):
            # None yet, or the last attempt failed (the server refused): try afresh.
            self.check_open()
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

    def close(self) -> None:
        """Close both pools; they cannot be used afterwards."""
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


def _close_elsewhere(
    loop: asyncio.AbstractEventLoop, opening: asyncio.Task[psycopg_pool.AsyncConnectionPool[Any]]
) -> None:
    """Close the async pool of another event loop, as well as that loop's state allows."""
    if not opening.done() or opening.cancelled() or opening.exception() is not None:
        return
    pool = opening.result()
    if not loop.is_closed() and not loop.is_running():
        loop.run_until_complete(pool.close())
