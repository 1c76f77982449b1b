"""Running a plan: one flow that retries what is provably safe, and its two performers.

``attempts`` is a ``capledger._flow`` flow: it runs a plan's rounds on a pooled connection,
retries a failure that a retry can mend (``_failures.Retry``), explains a pool timeout that
ends the retries, and resolves a ``COMMIT`` of unknown outcome by asking the server
(``pg_xact_status``) rather than applying a batch twice. It yields small steps (take a
connection, send a round, run a statement, give the connection back, pause, try one direct
connection); ``SyncSteps`` performs them with psycopg's blocking calls for ``run``, and
``AsyncSteps`` with its asyncio calls for ``arun``. Every decision is in the flow, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import psycopg
import psycopg_pool

from capledger.errors import BackendUnavailable

from . import _wire
from ._failures import Retry, final_error, is_pool_timeout, is_race, status_pause
from ._pools import Pools
from ._rounds import QUERIES, Commit, Plan, Round, Rows, Statement

__all__ = ["AsyncSteps", "Flow", "SyncSteps", "attempts", "diagnosed", "send"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Connect:
    """Take a connection from the pool (waiting at most ``timeout_s``)."""

    timeout_s: float


@dataclass(frozen=True, slots=True)
class Send:
    """Send a pipelined round on the connection taken; its rows come back."""

    round: Round


@dataclass(frozen=True, slots=True)
class Execute:
    """Run one statement on its own (a migration's SQL may hold several); rows or None."""

    statement: Statement


@dataclass(frozen=True, slots=True)
class GiveBack:
    """Return the connection to the pool, closed first when ``discard`` (a failed
    transaction leaves nothing for the next user). Answers whether it had been closed."""

    discard: bool


@dataclass(frozen=True, slots=True)
class Pause:
    """Wait before the next attempt."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Probe:
    """Connect once, directly: the error that says why the pool hands out none, or None."""


Step: TypeAlias = Connect | Send | Execute | GiveBack | Pause | Probe
Flow: TypeAlias = Generator[Step, Any, _T]


class _CommitUnknown(Exception):
    """The ``COMMIT`` round failed in a way that may have come after the commit: ask."""

    def __init__(self, commit: Commit, error: psycopg.Error) -> None:
        super().__init__(commit.xid)
        self.commit = commit
        self.error = error


def _maybe_committed(error: psycopg.Error, closed: bool) -> bool:
    """Whether a failed COMMIT round may have committed all the same.

    A statement error (a constraint, a lost race) aborts the pipeline before the COMMIT
    runs. A lost connection may come after it, and so may a server's FATAL message
    (``pg_terminate_backend``, a shutdown), which arrives as an ``OperationalError`` before
    libpq marks the connection closed: in either case only the server can tell.
    """
    return closed or (isinstance(error, psycopg.OperationalError) and not is_race(error))


def _attempt(plan: Plan[_T], retry: Retry) -> Flow[_T]:
    """One run of ``plan`` on one connection; a failed one is closed, never reused.

    A plan that refuses to go on (an invariant) leaves with the connection taken: the
    driver's ``give_back(discard=True)`` closes it once the flow has ended.
    """
    yield Connect(retry.remaining_s())
    round_ = next(plan)
    while True:
        try:
            if round_.pipeline:
                replies = yield Send(round_)
            else:
                replies = []
                for statement in round_.statements:
                    replies.append((yield Execute(statement)))
        except psycopg.Error as error:
            closed = yield GiveBack(discard=True)
            if round_.commit is not None and _maybe_committed(error, closed):
                raise _CommitUnknown(round_.commit, error) from error
            raise
        try:
            round_ = plan.send(replies)
        except StopIteration as stop:
            yield GiveBack(discard=False)
            result: _T = stop.value
            return result


def _status_plan(xid: str) -> Plan[str | None]:
    (rows,) = yield Round([Statement(QUERIES["xact_status"], {"xid": xid}, True)])
    return None if not rows else str(rows[0][0])


def _committed(xid: str, retry: Retry) -> Flow[bool]:
    """Ask the server whether the transaction whose COMMIT was lost committed."""
    while True:
        try:
            status = yield from _attempt(_status_plan(xid), retry)
            pause = status_pause(status)
            if pause is None:
                return status == "committed"
        except psycopg.Error as error:
            try:
                pause = retry.pause_after(error)
            except BackendUnavailable:
                raise retry.outcome_unknown(error) from error
        yield Pause(pause)


def diagnosed(error: psycopg.Error, retry: Retry) -> Flow[psycopg.Error]:
    """``error``, or when it is a pool timeout that ends the retries, the reason why.

    Raises:
        ConfigurationError: the reason is final (the database was dropped, the role's
            login taken away): no retry can help.
    """
    if not (is_pool_timeout(error) and retry.expired()):
        return error
    reason = yield Probe()
    if reason is None:
        return error
    final = final_error(reason, connecting=True)
    if final is not None:
        raise final from reason
    return reason  # type: ignore[no-any-return]


def attempts(
    make_plan: Callable[[bool], Plan[_T]],
    retry_s: float,
    lacks_fast_path: Callable[[psycopg.Error], bool],
) -> Flow[_T]:
    """Run the plan ``make_plan(first_attempt)`` to completion, retrying failures.

    Args:
        make_plan: a fresh plan per attempt (False once an attempt failed).
        retry_s: how long recoverable failures are retried.
        lacks_fast_path: True when an error says the schema has no fast-path functions
            (the store then turns the fast path off, and the batch runs again at once).
    """
    retry = Retry(retry_s)
    while True:
        plan = make_plan(retry.first)
        try:
            return (yield from _attempt(plan, retry))
        except _CommitUnknown as unknown:
            xid = unknown.commit.xid
            if xid is not None and (yield from _committed(xid, retry)):
                result: _T = unknown.commit.result  # type: ignore[assignment]
                return result
            # It rolled back: run the batch again, within the same deadline and backoff
            # as any failure before COMMIT.
            yield Pause(retry.pause_after(unknown.error))
        except psycopg.Error as error:
            if lacks_fast_path(error):
                continue
            error = yield from diagnosed(error, retry)
            yield Pause(retry.pause_after(error))


# --- the performers ---------------------------------------------------------------------------


def send(connection: psycopg.Connection[Any], round_: Round) -> list[Rows | None]:
    """Send a pipelined round and return its replies (see ``_wire``)."""
    sending = _wire.exchange(connection, connection.pgconn, round_)
    results = connection.wait(_wire.communicate(connection.pgconn, sending))
    return _wire.replies(connection, sending, results)


class SyncSteps:
    """Performs a flow's steps with blocking calls; ``close`` when the flow has ended."""

    def __init__(self, pools: Pools) -> None:
        self._pools = pools
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._connection: psycopg.Connection[Any] | None = None

    def __call__(self, step: Step) -> object:
        """Perform ``step``."""
        if type(step) is Send:
            return send(self._connection, step.round)  # type: ignore[arg-type]
        if type(step) is Connect:
            self._pool = self._pools.sync_pool()
            self._connection = self._pool.getconn(timeout=step.timeout_s)
        elif type(step) is Execute:
            cursor = self._connection.execute(step.statement.sql, step.statement.params)  # type: ignore[union-attr]
            return cursor.fetchall() if step.statement.fetch else None
        elif type(step) is GiveBack:
            return self.give_back(discard=step.discard)
        elif type(step) is Pause:
            time.sleep(step.seconds)
        elif type(step) is Probe:
            return self._pools.connect_error()
        return None

    def give_back(self, *, discard: bool) -> bool:
        """Return the connection taken, if any; whether it had been closed."""
        connection, self._connection = self._connection, None
        if connection is None or self._pool is None:
            return False
        closed = connection.closed
        if discard:
            with contextlib.suppress(psycopg.Error):  # already dead
                connection.close()
        self._pool.putconn(connection)
        return closed


class AsyncSteps:
    """``SyncSteps`` with asyncio calls, on the running event loop's pool."""

    def __init__(self, pools: Pools) -> None:
        self._pools = pools
        self._pool: psycopg_pool.AsyncConnectionPool[Any] | None = None
        self._connection: psycopg.AsyncConnection[Any] | None = None

    async def __call__(self, step: Step) -> object:
        """Perform ``step``."""
        connection = self._connection
        if type(step) is Send and connection is not None:
            sending = _wire.exchange(connection, connection.pgconn, step.round)
            results = await connection.wait(_wire.communicate(connection.pgconn, sending))
            return _wire.replies(connection, sending, results)
        if type(step) is Connect:
            self._pool = await self._pools.async_pool()
            self._connection = await self._pool.getconn(timeout=step.timeout_s)
        elif type(step) is Execute and connection is not None:
            cursor = await connection.execute(step.statement.sql, step.statement.params)
            return await cursor.fetchall() if step.statement.fetch else None
        elif type(step) is GiveBack:
            return await self.give_back(discard=step.discard)
        elif type(step) is Pause:
            await asyncio.sleep(step.seconds)
        elif type(step) is Probe:
            # Once per exhausted retry budget, so a thread is cheaper than an async copy.
            return await asyncio.to_thread(self._pools.connect_error)
        return None

    async def give_back(self, *, discard: bool) -> bool:
        """Return the connection taken, if any; whether it had been closed."""
        connection, self._connection = self._connection, None
        if connection is None or self._pool is None:
            return False
        closed = connection.closed
        if discard:
            with contextlib.suppress(psycopg.Error):
                await connection.close()
        await self._pool.putconn(connection)
        return closed
