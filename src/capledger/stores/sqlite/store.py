"""``sqlite:///path``: a SQLite file, the embedded default.

Many threads, asyncio tasks and OS processes may share one file. Every write transaction
starts with ``BEGIN IMMEDIATE`` (the write lock is taken up front, so two writers never
deadlock upgrading a read lock), the file is in WAL mode (readers never block the writer),
and a busy database is waited on and retried until ``STORE_RETRY_DEADLINE_S``: "database is
locked" never reaches a caller. The batcher above coalesces concurrent operations of one
process into one transaction, so the lock and the commit are paid once per batch.

Durability: WAL with ``synchronous=NORMAL`` (the default here) survives any crash of the
process; a power loss may lose the last transactions. Add ``?synchronous=full`` to the URL to
survive power loss too, at the cost of an fsync per transaction.

Opening: ``?mode=rwc`` (the default) creates the file if it is missing; ``?mode=rw`` opens
an existing file only and raises ``ConfigurationError`` when there is none, so a mistyped
path cannot leave an empty ledger behind (the CLI's read-only commands open it this way).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

from capledger._core import (
    Account,
    Config,
    Entry,
    HoldRecord,
    Op,
    Outcome,
    Reserve,
    apply_isolated,
)
from capledger._core.views import Snapshot
from capledger.bounds import STORE_RETRY_DEADLINE_S
from capledger.clock import Clock, deadline_now
from capledger.errors import ConfigurationError

from .._buffer import BufferedState
from .._sql import load_migrations, load_named_queries
from ..base import Store, account_of, dumps, entry_of, hold_of, loads

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")
_Q = load_named_queries("capledger.stores.sqlite", "queries.sql")
_BUSY_WAIT_MS = 5_000
_CACHE_KIB = 16_384
_SYNCHRONOUS = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}
#: ``?mode=``: whether opening may create the file (SQLite's own URI vocabulary).
_MODES = ("rwc", "rw")


def _is_busy(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


class _Rows:
    """Reads rows inside the current write transaction (the ``RowSource``).

    Hold deadlines are handed to the core on this process's deadline clock (``at`` sets it
    for the transaction): a hold of this boot as stored; a hold measured on the wall clock
    (boot id ``""``: written before schema version 3, or by a clock without a deadline
    clock) at its wall-clock expiry; a hold of another boot due at once, since the host
    restarted and the process that held it is gone.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.boot_id, self.tick_us, self.now_us = "", 0, 0

    def at(self, boot_id: str, tick_us: int, now_us: int) -> None:
        """Set the clocks of the transaction about to run."""
        self.boot_id, self.tick_us, self.now_us = boot_id, tick_us, now_us

    def _hold(self, row: Sequence[Any]) -> HoldRecord:
        hold = hold_of(row, loads)
        boot_id = row[13]
        if boot_id != self.boot_id:
            if boot_id == "" or self.boot_id == "":
                hold.deadline_us = self.tick_us + (hold.expires_us - self.now_us)
            else:
                hold.deadline_us = min(hold.deadline_us, self.tick_us)
        return hold

    def load_accounts(self, scope: str) -> list[Account]:
        return [account_of(r) for r in self._connection.execute(_Q["load_accounts"], (scope,))]

    def load_hold(self, hold_id: str) -> HoldRecord | None:
        row = self._connection.execute(_Q["load_hold"], (hold_id,)).fetchone()
        return None if row is None else self._hold(row)

    def load_hold_by_request(self, request_id: str) -> HoldRecord | None:
        row = self._connection.execute(_Q["load_hold_by_request"], (request_id,)).fetchone()
        return None if row is None else self._hold(row)

    def load_overdue(self, now_us: int, limit: int) -> list[HoldRecord]:
        # The query may return a hold twice (a boot id of "" matches two of its parts) or
        # one not yet due (a wall-only clock); ``BufferedState`` keeps those that are due.
        params = (self.boot_id, now_us, self.now_us, limit)
        found: dict[str, HoldRecord] = {}
        for row in self._connection.execute(_Q["load_overdue"], params):
            found.setdefault(row[0], self._hold(row))
        return sorted(found.values(), key=lambda hold: hold.deadline_us)

    def load_open_holds_on(self, scope: str) -> list[HoldRecord]:
        return [self._hold(r) for r in self._connection.execute(_Q["load_open_holds_on"], (scope,))]

    def spent_since(self, scope: str, unit: str, since_us: int) -> int:
        rows = self._connection.execute(_Q["spent_since"], (since_us, scope))
        return sum(int(loads(amounts).get(unit, 0)) for (amounts,) in rows)


class SQLiteStore(Store):
    """A SQLite file shared by threads, tasks and processes (see the module docstring)."""

    scheme = "sqlite"
    driver_errors = (sqlite3.Error,)

    def __init__(self, url: str, clock: Clock) -> None:
        super().__init__(url, clock)
        self.path, self._synchronous, self._mode = _parse_url(url)
        self._lock = threading.Lock()
        self._connection = self._connect()
        self._rows = _Rows(self._connection)
        self.migrate()

    def _connect(self) -> sqlite3.Connection:
        # A URI names the mode, so "must exist" is checked by SQLite itself, atomically.
        target = f"file:{quote(self.path)}?mode={self._mode}"
        try:
            connection = sqlite3.connect(
                target,
                uri=True,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,  # the store's lock serialises its use
                timeout=_BUSY_WAIT_MS / 1000,
            )
        except sqlite3.OperationalError as error:
            if self._mode == "rw" and not Path(self.path).exists():
                raise ConfigurationError(
                    f"there is no ledger at {self.path!r} (mode=rw opens an existing file only)"
                ) from error
            raise ConfigurationError(f"cannot open SQLite file {self.path!r}: {error}") from error
        self._retry(lambda: self._configure(connection))
        return connection

    def _configure(self, connection: sqlite3.Connection) -> None:
        connection.execute(f"PRAGMA busy_timeout = {_BUSY_WAIT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {self._synchronous}")
        # A larger page cache keeps the indexes' hot pages in memory as the journal grows.
        connection.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")

    def _retry(self, step: Callable[[], _T]) -> _T:
        """Run ``step``, waiting out a busy database until the deadline."""
        deadline = time.monotonic() + STORE_RETRY_DEADLINE_S
        pause_s = 0.001
        while True:
            try:
                return step()
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() > deadline:
                    raise self._unavailable(error) from error
                time.sleep(pause_s)
                pause_s = min(pause_s * 2, 0.05)
            except sqlite3.Error as error:
                raise self._unavailable(error) from error

    def _transaction(self, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``body(connection)`` inside BEGIN IMMEDIATE ... COMMIT, retried when busy."""
        connection = self._connection

        def attempt() -> _T:
            try:
                # Every write goes through here under the lock, so a transaction already
                # open was left by an attempt interrupted before its ROLLBACK: nothing of it
                # was committed. BEGIN is inside the try for the same reason.
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                connection.execute("BEGIN IMMEDIATE")
                result = body(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            return result

        with self._lock:
            return self._retry(attempt)

    def execute(self, ops: Sequence[Op], config: Config) -> list[Outcome]:
        """Apply ``ops`` in one ``BEGIN IMMEDIATE`` transaction."""

        # A reserve's hold id was made for it in this process, so on a first attempt no row
        # can have it and its lookup is skipped (the PostgreSQL store hands BufferedState its
        # absent ids the same way). A retry, after a busy database rolled the first attempt
        # back, looks: the core's second line of defence against placing one hold twice.
        new_hold_ids = [op.hold_id for op in ops if type(op) is Reserve]
        attempts = 0

        def body(connection: sqlite3.Connection) -> list[Outcome]:
            nonlocal attempts
            attempts += 1
            absent = new_hold_ids if attempts == 1 else ()
            # Read inside the transaction, so that the clocks of two processes' transactions
            # are in the order of the transactions.
            now_us = self.clock.now_us()
            boot_id, tick_us = deadline_now(self.clock)
            self._rows.at(boot_id, tick_us, now_us)
            # Nothing is written before the decisions end, so a fresh buffer re-reads the
            # rows as stored: an operation that fails leaves nothing behind it. Rows are read
            # as the core asks, not ahead from ``capledger._core.reads``: a query here costs
            # microseconds, not a round trip, and reading a batch's rows ahead (one query per
            # table) made sequential pairs 0.90x as fast (5,081 vs 5,678 per CPU-second, 11
            # ABBA runs) and a 1000-hold burst no faster beyond the machine's noise.
            state, outcomes = apply_isolated(
                lambda: BufferedState(self._rows, absent), ops, now_us, config, tick_us
            )
            _write(connection, state, boot_id)
            return outcomes

        return self._transaction(body)

    def migrate(self) -> list[str]:
        """Apply the migrations this file has not seen yet; return their names."""
        migrations = load_migrations("capledger.stores.sqlite.migrations")

        def body(connection: sqlite3.Connection) -> list[str]:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS capledger_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us INTEGER NOT NULL)"
            )
            done = {v for (v,) in connection.execute("SELECT version FROM capledger_migrations")}
            applied = []
            for version, name, sql in migrations:
                if version in done:
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(
                    "INSERT INTO capledger_migrations VALUES (?, ?, ?)",
                    (version, name, self.clock.now_us()),
                )
                applied.append(f"{version:04d}_{name}")
            return applied

        return self._transaction(body)

    # --- reads (each on its own connection: WAL readers never wait for the writer) -------------

    def _reader(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=_BUSY_WAIT_MS / 1000)
        connection.execute("PRAGMA query_only = ON")
        return connection

    def _begin_read(self) -> sqlite3.Connection:
        """A reader in a deferred transaction: in WAL mode its first read fixes the snapshot
        every later read of it sees, and it neither takes the write lock nor waits for it."""
        connection = self._reader()
        try:
            connection.execute("BEGIN")  # deferred: a read transaction, never IMMEDIATE
        except BaseException:
            connection.close()
            raise
        return connection

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """``_begin_read``, closed on leaving (which ends the read transaction)."""
        connection = self._begin_read()
        try:
            yield connection
        finally:
            connection.close()

    def snapshot(self, scopes: Sequence[str]) -> Snapshot:
        """Every account on ``scopes`` and every open hold charged to any of them, read at
        one instant without a write lock (one read transaction).

        Hold deadlines are on this process's deadline clock, as ``execute`` hands them to
        the core (see ``_Rows``).
        """
        wanted = list(dict.fromkeys(scopes))
        with self._read() as connection:
            rows = _Rows(connection)
            boot_id, tick_us = deadline_now(self.clock)
            now_us = self.clock.now_us()
            rows.at(boot_id, tick_us, now_us)
            accounts = [account for scope in wanted for account in rows.load_accounts(scope)]
            holds = {hold.id: hold for scope in wanted for hold in rows.load_open_holds_on(scope)}
        open_holds = sorted(holds.values(), key=lambda hold: (hold.created_us, hold.id))
        return Snapshot(accounts, open_holds, now_us, tick_us)

    def accounts(self, scope: str | None = None) -> list[Account]:
        """Copies of the stored accounts (of ``scope`` if given)."""
        with self._read() as connection:
            if scope is None:
                rows = connection.execute(_Q["all_accounts"]).fetchall()
            else:
                rows = connection.execute(_Q["load_accounts"], (scope,)).fetchall()
        return [account_of(row) for row in rows]

    def holds(
        self, *, scope: str | None = None, states: Sequence[str] = ("open",), limit: int = 1000
    ) -> list[HoldRecord]:
        """Up to ``limit`` holds in ``states``, oldest first."""
        return self._list_holds("list_holds", scope, states, limit)

    def newest_holds(
        self, *, scope: str | None = None, states: Sequence[str] = ("open",), limit: int = 1000
    ) -> list[HoldRecord]:
        """Up to ``limit`` holds in ``states``, newest first."""
        return self._list_holds("list_holds_newest", scope, states, limit)

    def _list_holds(
        self, query: str, scope: str | None, states: Sequence[str], limit: int
    ) -> list[HoldRecord]:
        with self._read() as connection:
            rows = connection.execute(
                _Q[query], (dumps(list(states)), scope, scope, limit)
            ).fetchall()
        return [hold_of(row, loads) for row in rows]

    def audit_snapshot(self) -> tuple[list[Account], list[HoldRecord], Iterator[Entry]]:
        """Accounts, open holds and the journal from one read transaction."""
        connection = self._begin_read()
        try:
            accounts = [account_of(r) for r in connection.execute(_Q["all_accounts"])]
            holds = [
                hold_of(r, loads)
                for r in connection.execute(_Q["list_holds"], ('["open"]', None, None, 2**62))
            ]
        except BaseException:
            connection.close()
            raise

        def entries() -> Iterator[Entry]:
            try:
                yield from _entries(connection, 0, 2**62)
            finally:
                connection.close()

        return accounts, holds, entries()

    def journal(self, since_us: int | None = None, until_us: int | None = None) -> Iterator[Entry]:
        """Stream journal entries in ``[since_us, until_us)`` in order."""
        with self._read() as connection:
            yield from _entries(
                connection, since_us or 0, until_us if until_us is not None else 2**62
            )

    def close(self) -> None:
        """Close the write connection."""
        with self._lock:
            self._connection.close()


def _entries(connection: sqlite3.Connection, since_us: int, until_us: int) -> Iterator[Entry]:
    """The journal entries in ``[since_us, until_us)``, read a thousand rows at a time."""
    cursor = connection.execute(_Q["journal"], (since_us, until_us))
    while rows := cursor.fetchmany(1000):
        yield from (entry_of(row, loads) for row in rows)


def _write(connection: sqlite3.Connection, state: BufferedState, boot_id: str) -> None:
    """Write back what the core created, changed and removed; the holds' deadlines are on
    the deadline clock of the boot ``boot_id``."""
    execute = connection.execute
    for scope, unit, period in state.removed_accounts:
        execute(_Q["delete_account"], (scope, unit, period))
    for a in state.new_accounts.values():
        execute(
            _Q["insert_account"],
            (a.scope, a.unit, a.period, a.cap, a.spent, a.held, a.window_start_us,
             a.window_end_us, a.tz, a.anchor_us, a.alert_bp),
        )  # fmt: skip
    if state.changed_accounts:  # one call for all: an operation changes several accounts
        connection.executemany(
            _Q["update_account"],
            [
                (a.cap, a.spent, a.held, a.window_start_us, a.window_end_us, a.tz, a.anchor_us,
                 a.alert_bp, a.scope, a.unit, a.period)
                for a in state.changed_accounts.values()
            ],
        )  # fmt: skip
    for h in state.new_holds.values():
        execute(
            _Q["insert_hold"],
            (h.id, h.request_id, dumps(h.scopes), dumps(h.amounts), h.state, h.created_us,
             h.expires_us, dumps(h.tags), h.fingerprint,
             None if h.settled is None else dumps(h.settled), h.closed_us, h.flags,
             h.deadline_us, boot_id),
        )  # fmt: skip
    for h in state.changed_holds.values():
        execute(
            _Q["update_hold"],
            (dumps(h.amounts), h.state, h.expires_us, dumps(h.tags),
             None if h.settled is None else dumps(h.settled), h.closed_us, h.flags,
             h.deadline_us, boot_id, h.id),
        )  # fmt: skip
    if state.entries:
        connection.executemany(
            _Q["insert_entry"],
            [
                (e.ts_us, e.kind, e.hold_id, e.request_id, dumps(e.scopes), dumps(e.amounts),
                 dumps(e.tags), e.flags)
                for e in state.entries
            ],
        )  # fmt: skip


def _parse_url(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or not parts.path.startswith("/"):
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute.db"
        )
    path = unquote(parts.path[1:])
    if not path or path == ":memory:":
        raise ConfigurationError(
            "an in-memory SQLite database cannot be shared by connections; use memory://"
        )
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    synchronous = options.pop("synchronous", "normal").lower()
    if synchronous not in _SYNCHRONOUS:
        raise ConfigurationError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}")
    mode = options.pop("mode", "rwc").lower()
    if mode not in _MODES:
        raise ConfigurationError(f"mode must be one of {list(_MODES)}, not {mode!r}")
    if options:
        raise ConfigurationError(f"unknown SQLite URL options: {sorted(options)}")
    if not Path(path).parent.exists():
        raise ConfigurationError(f"the folder of SQLite file {path!r} does not exist")
    return path, _SYNCHRONOUS[synchronous], mode
