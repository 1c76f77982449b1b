"""Which PostgreSQL failures a retry can mend, and the one place they become capledger errors.

Three kinds of failure, three answers:

* **a lost race** (a unique violation on one of capledger's own keys, a serialization
  failure, a deadlock): another transaction got there first; run again at once.
* **recoverable** (connection refused, the server starting up or shutting down, too many
  connections, an administrator's shutdown, a lost connection, a pool timeout): retried
  with backoff until the budget runs out, then ``BackendUnavailable`` naming the budget,
  the number of attempts and the last underlying error.
* **final** (a database that does not exist, a role that does not exist or may not log in,
  a wrong password, no privilege to connect, a bad ``sslmode`` or another bad connection
  option, SSL required by the client but not offered by the server): retrying cannot
  help, so ``ConfigurationError`` is raised at once, with the server's (or libpq's) own
  words. Missing capledger tables are final too, and say to run ``capledger migrate``.

The decision is by SQLSTATE where psycopg has one (errors on an open connection). A
connection the server refuses during start-up carries no SQLSTATE through libpq (the server
sends one, but libpq only keeps the message), so there the server's message is matched
against the English text PostgreSQL sends for each SQLSTATE that matters, and libpq's own
messages decide the client-side option errors. A refusal not recognised (a server whose
``lc_messages`` is not English, say) is treated as recoverable: it is retried until the
budget ends, and the final message still carries the server's words.
"""

from __future__ import annotations

import random
import re
import time
from typing import Final

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from capledger.bounds import STORE_RETRY_DEADLINE_S
from capledger.errors import BackendUnavailable, ConfigurationError, LedgerInvariantError

__all__ = [
    "CONNECT_RETRY_DEADLINE_S",
    "FINAL_SQLSTATES",
    "MAX_BACKOFF_S",
    "MAX_RACE_RETRIES",
    "RECOVERABLE_SQLSTATES",
    "Retry",
    "final_error",
    "is_pool_timeout",
    "is_race",
    "is_transient",
    "one_line",
    "refusal_sqlstate",
    "status_pause",
]

#: How long opening a store retries a server that refuses or does not answer yet, before
#: ``BackendUnavailable`` (the default of the URL option ``connect_retry_s``, or ``retry_s``
#: if that is shorter). Short enough for a person at a terminal, long enough for a server that is
#: still starting.
CONNECT_RETRY_DEADLINE_S: Final = 10.0
if not 0 < CONNECT_RETRY_DEADLINE_S <= STORE_RETRY_DEADLINE_S:
    raise LedgerInvariantError("the first connection's retry budget must lie within retry_s's")
#: How many times a race that a retry resolves (two first users of an account, two reserves
#: with one request_id, a serialization failure) is retried before giving up.
MAX_RACE_RETRIES: Final = 16
#: The longest pause between two attempts on a lost or refused connection.
MAX_BACKOFF_S: Final = 0.5
#: Constraints whose violation means "another transaction got there first": a retry sees
#: its committed row and decides again.
_RACE_CONSTRAINTS: Final = frozenset(
    {"capledger_accounts_pkey", "capledger_holds_request_id_key", "capledger_holds_pkey"}
)

#: SQLSTATEs after which a retry can succeed: the server is busy, starting or stopping.
RECOVERABLE_SQLSTATES: Final = frozenset(
    {
        "53300",  # too_many_connections
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, shutting down, in recovery)
    }
)
#: SQLSTATEs after which no retry can succeed: the URL or the role is wrong.
FINAL_SQLSTATES: Final = frozenset(
    {
        "3D000",  # invalid_catalog_name: no such database
        "28000",  # invalid_authorization_specification: no such role, no pg_hba entry
        "28P01",  # invalid_password
        "42501",  # insufficient_privilege (no CONNECT on the database, no CREATE, ...)
        "42P01",  # undefined_table: the schema was never migrated
    }
)

#: What PostgreSQL says when it refuses a connection, per SQLSTATE (its English messages,
#: from ``postinit.c``, ``auth.c`` and ``postmaster.c``), for libpq errors that carry none.
#: A refusal listed here is final unless its SQLSTATE is in ``RECOVERABLE_SQLSTATES``
#: (``55000`` is a database with connections switched off, ``ALLOW_CONNECTIONS false``).
_REFUSALS: Final = (
    ("3D000", re.compile(r'FATAL: +database ".*" does not exist')),
    ("28000", re.compile(r'FATAL: +role ".*" does not exist')),
    ("28000", re.compile(r'FATAL: +role ".*" is not permitted to log in')),
    ("28000", re.compile(r"FATAL: +no pg_hba\.conf entry")),
    ("28000", re.compile(r"FATAL: +\w+ authentication failed for user")),
    ("28P01", re.compile(r"FATAL: +password authentication failed")),
    ("42501", re.compile(r"FATAL: +permission denied for database")),
    ("55000", re.compile(r'FATAL: +database ".*" is not currently accepting connections')),
    ("53300", re.compile(r"FATAL: +(sorry, )?too many (clients|connections)")),
    ("53300", re.compile(r"FATAL: +remaining connection slots are reserved")),
    ("57P01", re.compile(r"FATAL: +terminating connection due to administrator command")),
    ("57P03", re.compile(r"FATAL: +the database system is (starting|shutting|in recovery|not)")),
)
#: libpq's own words for a connection that can never be made as configured.
_CLIENT_FINAL: Final = re.compile(
    r"invalid \w+ value"  # invalid sslmode value, invalid integer value ... for "port"
    r"|invalid connection option"
    r"|invalid URI"
    r"|SSL was required"
    r"|does not support SSL"
    r"|no password supplied"
    r"|channel binding"
    r"|certificate"
)

_CONNECT_PREFIX: Final = re.compile(r"^connection (failed|is bad): ")


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (libpq adds indented hints on lines of their own),
    without psycopg's "connection failed: " before libpq's own "connection to ... failed"."""
    return _CONNECT_PREFIX.sub("", " ".join(str(error).split()))


def refusal_sqlstate(message: str) -> str | None:
    """The SQLSTATE of a refusal PostgreSQL sent during connection start-up, from its text."""
    for sqlstate, pattern in _REFUSALS:
        if pattern.search(message):
            return sqlstate
    return None


def final_error(error: BaseException, *, connecting: bool) -> ConfigurationError | None:
    """The ``ConfigurationError`` for an error that no retry can mend, else None.

    Args:
        error: what psycopg raised.
        connecting: True when ``error`` came from opening a connection, where an error with
            no SQLSTATE is a libpq message (and a ``ProgrammingError`` a bad option).
    """
    if not isinstance(error, psycopg.Error):
        return None
    message = one_line(error)
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate is None and connecting:
        refused = refusal_sqlstate(message)
        if refused is not None:
            if refused in RECOVERABLE_SQLSTATES:
                return None
            return ConfigurationError(
                f"PostgreSQL refused the connection, and retrying cannot help: {message}"
            )
        if isinstance(error, psycopg.ProgrammingError) or _CLIENT_FINAL.search(message):
            return ConfigurationError(
                f"cannot connect to PostgreSQL, and retrying cannot help: {message}"
            )
        return None
    if sqlstate == "42P01":
        return ConfigurationError(
            f"the capledger tables are missing ({message}): run `capledger migrate` "
            "(or ledger.migrate()) with a role allowed to create tables, or drop migrate=off"
        )
    if sqlstate in FINAL_SQLSTATES or (sqlstate is not None and sqlstate.startswith("28")):
        return ConfigurationError(f"PostgreSQL refused, and retrying cannot help: {message}")
    return None


def is_race(error: BaseException) -> bool:
    """Another transaction got there first: run again and see its committed rows."""
    if isinstance(error, pg_errors.UniqueViolation):
        return error.diag.constraint_name in _RACE_CONSTRAINTS
    return isinstance(error, pg_errors.SerializationFailure | pg_errors.DeadlockDetected)


def is_transient(error: BaseException) -> bool:
    """A lost or refused connection, a restarting or busy server, a pool timeout."""
    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)


class Retry:
    """The retry policy of one call, shared by the sync and the async driver.

    Args:
        budget_s: how long recoverable failures are retried, from now.
        connecting: True for the connection made before a pool exists (see
            ``final_error``).
    """

    def __init__(self, budget_s: float, *, connecting: bool = False) -> None:
        self.budget_s = budget_s
        self.connecting = connecting
        self.started = time.monotonic()
        self.deadline = self.started + budget_s
        self.first = True
        #: Attempts that failed so far (races and losses).
        self.failures = 0
        self._races = 0
        self._losses = 0

    def remaining_s(self) -> float:
        """What is left of the deadline (never zero: a pool needs a moment to hand out)."""
        return max(0.1, self.deadline - time.monotonic())

    def expired(self) -> bool:
        """Whether the budget is spent."""
        return time.monotonic() >= self.deadline

    def pause_after(self, error: BaseException) -> float:
        """Seconds to wait before the next attempt.

        Raises:
            ConfigurationError: ``error`` is final (``final_error``): no retry can mend it.
            BackendUnavailable: the budget is spent, or ``error`` is neither a race nor
                recoverable; it names the last error and keeps it as ``__cause__``.
        """
        self.first = False
        self.failures += 1
        if is_race(error) and self._races < MAX_RACE_RETRIES:
            self._races += 1
            # Lost a race: the winner has committed, so retry at once (jitter only for the
            # rare serialization failure, which should not recur in lockstep).
            if isinstance(error, pg_errors.UniqueViolation):
                return 0.0
            return random.random() / 200
        final = final_error(error, connecting=self.connecting)
        if final is not None:
            raise final from error
        if is_transient(error) and not self.expired():
            self._losses += 1
            # The first retry is immediate: a pool often holds more than one connection that
            # a restart or pg_terminate_backend killed, and a fresh one works at once.
            if self._losses == 1:
                return 0.0
            return min(MAX_BACKOFF_S, 0.005 * 2.0**self._losses) * (0.5 + random.random())
        raise self.unavailable(error) from error

    def unavailable(self, error: BaseException) -> BackendUnavailable:
        """The error for giving up: the budget, the attempts made and the last error."""
        if not is_transient(error):
            return BackendUnavailable(f"postgresql store unavailable: {one_line(error)}")
        elapsed_s = time.monotonic() - self.started
        return BackendUnavailable(
            f"postgresql store unavailable: gave up after {self.failures} failed "
            f"attempt{'s' if self.failures != 1 else ''} in {elapsed_s:.1f} s "
            f"(retry budget {self.budget_s:g} s); the last error: {one_line(error)}"
        )

    def outcome_unknown(self, error: BaseException) -> BackendUnavailable:
        """The error for a COMMIT whose outcome could not be learned before the deadline."""
        return BackendUnavailable(
            "postgresql store unavailable, and whether the last transaction committed is "
            f"unknown: {one_line(error)}. Retrying the same reserve (same request_id) or the "
            "same settle is safe."
        )


def status_pause(status: str | None) -> float | None:
    """None when a transaction status is final; else how long to wait before asking again."""
    if status in ("committed", "aborted"):
        return None
    if status == "in progress":
        # The server has not noticed the lost client yet; it will commit or abort shortly.
        return 0.02
    raise BackendUnavailable(f"the server does not know transaction status {status!r}")


def is_pool_timeout(error: BaseException) -> bool:
    """The pool handed out no connection in time (its message does not say why)."""
    return isinstance(error, psycopg_pool.PoolTimeout)
