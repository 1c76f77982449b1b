"""One round trip on the wire: a round's statements as prepared libpq commands, one pipeline.

psycopg's cursors cost tens of microseconds per statement in pipeline mode (a cursor, query
conversion, per-list type discovery for every array parameter, a socket poll per
statement), which was most of a transaction's client time. A round here is sent on the
connection's ``pgconn`` directly: each statement is prepared once per connection under a
name derived from its text, and every later round sends only ``Bind``/``Execute`` messages
with text parameters, then one ``Sync``. Rows are decoded by psycopg's own ``Transformer``
(the same loaders as a cursor), and a failed statement raises psycopg's own exception for
its SQLSTATE, so error handling upstream sees exactly what psycopg would have raised.

The I/O is a generator over psycopg's own non-blocking steps (``generators.send``, then
``generators.fetch_many`` until the ``Sync``), so the sync driver runs it with
``connection.wait`` and the async one with ``await connection.wait``: one copy, two drivers.
Those two steps and ``wait`` are psycopg internals (stable since 3.1, used the same way by
psycopg's own pipeline); the tests in ``tests/postgres`` exercise them on every run.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeAlias

from psycopg import errors as pg_errors
from psycopg import generators, pq
from psycopg.adapt import Transformer

from capledger._text import unstorable_text
from capledger.errors import InvalidInput

from ._rounds import Round, Rows, Statement

__all__ = ["Exchange", "communicate", "exchange", "replies"]

_PIPELINE_SYNC: Final = pq.ExecStatus.PIPELINE_SYNC
_FATAL_ERROR: Final = pq.ExecStatus.FATAL_ERROR
_PIPELINE_ABORTED: Final = pq.ExecStatus.PIPELINE_ABORTED
_TUPLES_OK: Final = pq.ExecStatus.TUPLES_OK
_PLACEHOLDER: Final = re.compile(r"%\((\w+)\)s|%%")

#: What the generator hands back: per command sent, its results (the Sync's last).
Results: TypeAlias = list[list[Any]]


@dataclass(frozen=True, slots=True)
class _Prepared:
    name: bytes
    sql: bytes
    params: tuple[str, ...]


_PREPARED: dict[str, _Prepared] = {}


def _prepared(sql: str) -> _Prepared:
    """``sql`` with ``$n`` placeholders, under a name that depends only on its text.

    The name is a digest, not a counter, so that threads preparing concurrently can never
    give two texts one name.
    """
    found = _PREPARED.get(sql)
    if found is None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "%"  # psycopg's escaped percent sign
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        text = _PLACEHOLDER.sub(number, sql)
        digest = hashlib.blake2b(sql.encode(), digest_size=10).hexdigest()
        found = _PREPARED.setdefault(
            sql, _Prepared(f"capledger_{digest}".encode(), text.encode(), tuple(names))
        )
    return found


#: The statement names prepared on each connection (keyed weakly: a closed connection that
#: the pool dropped takes its names with it).
_PREPARED_ON: weakref.WeakKeyDictionary[object, set[bytes]] = weakref.WeakKeyDictionary()


def _refused(value: str) -> InvalidInput:
    return unstorable_text(value, "a text parameter") or InvalidInput(repr(value))


def _element(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        if "\x00" in value:
            raise _refused(value)
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"cannot send an array element of type {type(value).__name__}")


def _text(value: object) -> bytes | None:
    """A parameter in PostgreSQL's text format (the SQL casts give the types)."""
    if value is None:
        return None
    # libpq sends text parameters as C strings: a NUL would end the value early (a hold id
    # "id\x00junk" would name hold "id"), and a lone surrogate has no UTF-8 form. Callers'
    # text is checked long before (capledger.ledger._validate); this is the last line.
    if isinstance(value, str):
        if "\x00" in value:
            raise _refused(value)
        try:
            return value.encode()
        except UnicodeEncodeError:
            raise _refused(value) from None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    if isinstance(value, list | tuple):
        try:
            return ("{" + ",".join(map(_element, value)) + "}").encode()
        except UnicodeEncodeError:
            bad = (v for v in value if isinstance(v, str) and unstorable_text(v, "") is not None)
            raise _refused(next(bad, str(value))) from None
    raise TypeError(f"cannot send a parameter of type {type(value).__name__}")


@dataclass(slots=True)
class Exchange:
    """A round ready to send: the libpq commands and what to expect back."""

    commands: deque[Callable[[], None]]
    #: Per command but the Sync: the statement it executes (None for a ``Parse``), and the
    #: prepared statement's name.
    sent: list[tuple[Statement | None, bytes]]


def exchange(connection: object, pgconn: Any, round_: Round) -> Exchange:
    """The libpq commands for ``round_`` on ``connection``, preparing what it lacks."""
    prepared_here = _PREPARED_ON.get(connection)
    if prepared_here is None:
        prepared_here = _PREPARED_ON.setdefault(connection, set())
    commands: deque[Callable[[], None]] = deque()
    sent: list[tuple[Statement | None, bytes]] = []
    preparing: set[bytes] = set()
    for statement in round_.statements:
        prepared = _prepared(statement.sql)
        if prepared.name not in prepared_here and prepared.name not in preparing:
            commands.append(partial(pgconn.send_prepare, prepared.name, prepared.sql))
            sent.append((None, prepared.name))
            preparing.add(prepared.name)
        given = statement.params or {}
        params = [_text(given[name]) for name in prepared.params]
        commands.append(partial(pgconn.send_query_prepared, prepared.name, params))
        sent.append((statement, prepared.name))
    commands.append(pgconn.pipeline_sync)
    return Exchange(commands, sent)


def communicate(pgconn: Any, exchange_: Exchange) -> Generator[Any, Any, Results]:
    """Send the whole round at once, then collect every result up to the ``Sync``.

    libpq buffers the commands of a pipeline and ``PQpipelineSync`` flushes them, so the
    round leaves in one write and the server answers it in one go; psycopg's own pipeline
    flushes after every command, waking the server once per statement. A round too large
    for the socket buffer is flushed by ``send``, which reads while it waits, so neither
    side can block the other.
    """
    expected = len(exchange_.commands)
    pgconn.enter_pipeline_mode()
    for command in exchange_.commands:
        command()
    yield from generators.send(pgconn)
    results: Results = []
    while len(results) < expected:
        fetched = yield from generators.fetch_many(pgconn)
        if not fetched:  # the server went quiet before the Sync: treat as a lost link
            raise pg_errors.OperationalError("the server ended a pipeline early")
        results.append(fetched)
    pgconn.exit_pipeline_mode()
    return results


def replies(connection: Any, exchange_: Exchange, results: Results) -> list[Rows | None]:
    """Per statement of the round, its rows (or None); raise the first error psycopg's way.

    The names whose ``Parse`` succeeded are remembered even when a later statement failed,
    so that the connection never prepares a name twice.
    """
    prepared_here = _PREPARED_ON.get(connection)
    out: list[Rows | None] = []
    error: Exception | None = None
    transformer: Any = None
    for (statement, name), group in zip(exchange_.sent, results, strict=False):
        result = group[-1]
        status = result.status
        if status == _FATAL_ERROR:
            if error is None:
                error = pg_errors.error_from_result(result, encoding=connection.info.encoding)
        elif status == _PIPELINE_ABORTED:
            if error is None:
                error = pg_errors.PipelineAborted("pipeline aborted")
        elif statement is None:
            if prepared_here is not None:
                prepared_here.add(name)
        elif error is None:
            if statement.fetch and status == _TUPLES_OK:
                if transformer is None:
                    transformer = Transformer.from_context(connection)
                transformer.set_pgresult(result)
                out.append(transformer.load_rows(0, result.ntuples, tuple))
            else:
                out.append(None)
    if error is None and results[-1][0].status != _PIPELINE_SYNC:
        error = pg_errors.PipelineAborted("pipeline aborted")
    if error is not None:
        raise error
    return out
