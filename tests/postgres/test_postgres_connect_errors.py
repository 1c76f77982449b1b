"""Connection errors: fail at once where no retry can help, retry briefly where one can.

Every case counts the connection attempts (``psycopg.Connection.connect``, which both the
store's first connection and its pools use) instead of timing sleeps: a final error is one
attempt, a recoverable one is several, within a short ``connect_retry_s``. The elapsed-time
bounds are only generous sanity checks.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from pg_testing import ADMIN_URL, DATABASE_PREFIX, database_url, drop_database
from psycopg import errors as pg_errors
from psycopg import sql

from capledger import AsyncLedger, BackendUnavailable, ConfigurationError, Ledger
from capledger.cli import main
from capledger.stores.postgres._failures import Retry, final_error

pytestmark = pytest.mark.postgres

#: A fail-fast case must end well inside this; the budgets below are far longer.
FAST_S = 5.0


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every conninfo that psycopg was asked to connect to during the test."""
    calls: list[str] = []
    real = psycopg.Connection.connect

    def counting(conninfo: str = "", **kwargs: Any) -> Any:
        calls.append(conninfo)
        return real(conninfo, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "connect", staticmethod(counting))
    return calls


@pytest.fixture
def pool_warnings(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The warnings psycopg's pools logged (a pool spinning on a bad database logs them)."""
    caplog.set_level(logging.INFO, logger="psycopg")

    def found() -> list[str]:
        return [
            record.getMessage()
            for record in caplog.records
            if record.name.startswith("psycopg") and record.levelno >= logging.WARNING
        ]

    return found


@pytest.fixture
def role(pg_admin_url: str) -> Iterator[Callable[[str], str]]:
    """Make a role with the given options (``NOLOGIN``, ...); dropped after the test."""
    made: list[str] = []

    def make(options: str) -> str:
        name = "capledger_role_" + uuid.uuid4().hex[:10]
        with psycopg.connect(pg_admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(name)))
        made.append(name)
        return name

    yield make
    with psycopg.connect(pg_admin_url, autocommit=True) as connection:
        for name in made:
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _with_user(url: str, user: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://{user}@", 1)


def _database_exists(name: str) -> bool:
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def _tables(database: str) -> list[str]:
    """Every table outside the system schemas (what a migration would have made)."""
    with psycopg.connect(database_url(database), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    return [row[0] for row in rows]


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound and released just now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _fails(url: str, expected: type[Exception]) -> tuple[Exception, float]:
    """Open a ledger on ``url``, set a limit; the error raised and the seconds it took."""
    started = time.monotonic()
    with Ledger(url) as ledger, pytest.raises(expected) as raised:
        ledger.set_limit("user:a", usd="1")
    return raised.value, time.monotonic() - started


# --- final: one attempt, the server's words, nothing made --------------------------------------


def test_a_missing_database_fails_at_once(pg_admin_url: str, connects: list[str]) -> None:
    missing = DATABASE_PREFIX + "missing_" + uuid.uuid4().hex[:10]
    # A long budget: only classifying the refusal as final can make this fast.
    url = database_url(missing, pg_admin_url, retry_s=60, connect_retry_s=60)
    error, elapsed_s = _fails(url, ConfigurationError)
    assert f'database "{missing}" does not exist' in str(error)
    assert "retrying cannot help" in str(error)
    assert isinstance(error.__cause__, psycopg.OperationalError)
    assert len(connects) == 1
    assert elapsed_s < FAST_S
    assert not _database_exists(missing)


def test_a_missing_role_fails_at_once(
    pg_database: str, pg_admin_url: str, connects: list[str]
) -> None:
    nobody = "capledger_nobody_" + uuid.uuid4().hex[:10]
    url = _with_user(database_url(pg_database, pg_admin_url, retry_s=60), nobody)
    error, elapsed_s = _fails(url, ConfigurationError)
    assert f'role "{nobody}" does not exist' in str(error)
    assert len(connects) == 1
    assert elapsed_s < FAST_S
    assert _tables(pg_database) == []


def test_a_role_that_may_not_log_in_fails_at_once(
    pg_database: str, pg_admin_url: str, connects: list[str], role: Callable[[str], str]
) -> None:
    name = role("NOLOGIN")
    url = _with_user(database_url(pg_database, pg_admin_url, retry_s=60), name)
    error, elapsed_s = _fails(url, ConfigurationError)
    assert f'role "{name}" is not permitted to log in' in str(error)
    assert len(connects) == 1
    assert elapsed_s < FAST_S
    assert _tables(pg_database) == []


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("sslmode=bogus", 'invalid sslmode value: "bogus"'),
        ("sslmod=require", 'invalid URI query parameter: "sslmod"'),
        ("port=notaport", 'invalid integer value "notaport" for connection option "port"'),
    ],
    ids=["bad-sslmode", "unknown-option", "bad-port"],
)
def test_a_bad_connection_option_fails_at_once(
    pg_database: str, pg_admin_url: str, connects: list[str], query: str, words: str
) -> None:
    url = database_url(pg_database, pg_admin_url, retry_s=60) + "&" + query
    error, elapsed_s = _fails(url, ConfigurationError)
    assert words in str(error)
    assert len(connects) <= 1  # an option psycopg itself rejects never reaches libpq
    assert elapsed_s < FAST_S
    assert _tables(pg_database) == []


def test_ssl_required_of_a_server_without_it_fails_at_once(
    pg_database: str, pg_admin_url: str, connects: list[str]
) -> None:
    with psycopg.connect(pg_admin_url) as connection:
        ssl = connection.execute("SHOW ssl").fetchone()
    if ssl is not None and ssl[0] == "on":
        pytest.skip("this server offers SSL")
    url = database_url(pg_database, pg_admin_url, retry_s=60, sslmode="require")
    error, elapsed_s = _fails(url, ConfigurationError)
    assert "server does not support SSL, but SSL was required" in str(error)
    assert len(connects) == 1
    assert elapsed_s < FAST_S


# --- recoverable: retried within a short budget, then the last error ---------------------------


def test_a_closed_port_is_retried_then_names_the_refusal(connects: list[str]) -> None:
    port = _closed_port()
    url = f"postgresql://postgres@127.0.0.1:{port}/test?connect_retry_s=0.3"
    error, elapsed_s = _fails(url, BackendUnavailable)
    message = str(error)
    assert "Connection refused" in message
    assert f'"127.0.0.1", port {port}' in message
    assert "retry budget 0.3 s" in message
    assert isinstance(error.__cause__, psycopg.OperationalError)
    assert len(connects) >= 2  # retried: a server may be starting on that port
    assert elapsed_s < FAST_S


def test_too_many_connections_is_retried_then_named(
    pg_database: str, pg_admin_url: str, connects: list[str], role: Callable[[str], str]
) -> None:
    name = role("LOGIN CONNECTION LIMIT 0")
    url = _with_user(database_url(pg_database, pg_admin_url, connect_retry_s=0.3), name)
    error, elapsed_s = _fails(url, BackendUnavailable)
    assert f'too many connections for role "{name}"' in str(error)
    assert len(connects) >= 2
    assert elapsed_s < FAST_S


def test_the_connect_budget_defaults_to_at_most_retry_s(connects: list[str]) -> None:
    # retry_s=0.2 and no connect_retry_s: the first connection gets 0.2 s, not 10.
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/test?retry_s=0.2"
    error, elapsed_s = _fails(url, BackendUnavailable)
    assert "retry budget 0.2 s" in str(error)
    assert elapsed_s < FAST_S


def test_a_database_dropped_under_a_running_store_is_named(
    pg_database: str, pg_admin_url: str
) -> None:
    # The pool worked, then every new connection is refused: once retry_s is spent, the
    # error names why (one direct attempt), not only the pool's "couldn't get a connection".
    url = database_url(pg_database, pg_admin_url, retry_s=0.5)
    with Ledger(url) as ledger:
        ledger.set_limit("user:a", usd="1")
        drop_database(pg_admin_url, pg_database)
        started = time.monotonic()
        with pytest.raises(ConfigurationError) as raised:
            ledger.set_limit("user:a", usd="2")
        assert time.monotonic() - started < FAST_S
    assert f'database "{pg_database}" does not exist' in str(raised.value)


# --- migrate=off on a database never migrated ---------------------------------------------------


def test_migrate_off_on_an_unmigrated_database_says_to_migrate(
    pg_url: str, pg_database: str, pool_warnings: Callable[[], list[str]]
) -> None:
    error, elapsed_s = _fails(pg_url + "&migrate=off", ConfigurationError)
    message = str(error)
    assert "capledger migrate" in message
    assert "relation" not in message and "does not exist" not in message  # no raw SQL error
    assert error.__cause__ is None
    assert pool_warnings() == []  # no "discarding closed connection", no reconnect noise
    assert elapsed_s < FAST_S
    assert _tables(pg_database) == []


async def test_migrate_off_says_to_migrate_on_the_async_path_too(
    pg_url: str, pg_database: str, pool_warnings: Callable[[], list[str]]
) -> None:
    async with AsyncLedger(pg_url + "&migrate=off") as ledger:
        with pytest.raises(ConfigurationError, match="capledger migrate"):
            await ledger.set_limit("user:a", usd="1")
    assert pool_warnings() == []
    assert _tables(pg_database) == []


def test_migrate_off_works_once_migrated(pg_url: str) -> None:
    with Ledger(pg_url) as ledger:
        ledger.migrate()
    with Ledger(pg_url + "&migrate=off") as ledger:
        ledger.set_limit("user:a", usd="1")
        assert [b.cap for b in ledger.balance("user:a")] == [1]


# --- the async driver, and the CLI ----------------------------------------------------------------


async def test_the_async_driver_fails_at_once_and_asks_again_next_time(
    pg_admin_url: str, connects: list[str]
) -> None:
    missing = DATABASE_PREFIX + "missing_" + uuid.uuid4().hex[:10]
    url = database_url(missing, pg_admin_url, retry_s=60)
    started = time.monotonic()
    async with AsyncLedger(url) as ledger:
        for attempt in (1, 2):
            with pytest.raises(ConfigurationError, match=f'database "{missing}" does not exist'):
                await ledger.balance("user:a")
            # A failed first connection is not remembered: the next call tries again.
            assert len(connects) == attempt
    assert time.monotonic() - started < FAST_S
    assert not _database_exists(missing)


def test_the_cli_prints_the_servers_words_and_fails(pg_admin_url: str) -> None:
    missing = DATABASE_PREFIX + "missing_" + uuid.uuid4().hex[:10]
    url = database_url(missing, pg_admin_url)
    started = time.monotonic()
    result = CliRunner().invoke(main, ["--url", url, "balance", "user:a"])
    assert result.exit_code != 0
    assert f'database "{missing}" does not exist' in result.output
    assert "Traceback" not in result.output
    assert time.monotonic() - started < FAST_S
    assert not _database_exists(missing)


# --- the classification itself (no server needed) ---------------------------------------------


def _refused(message: str) -> psycopg.OperationalError:
    """What psycopg raises when libpq reports a failed connection (no SQLSTATE)."""
    return psycopg.OperationalError(
        f'connection failed: connection to server at "db", port 5432 failed: {message}'
    )


@pytest.mark.parametrize(
    "error",
    [
        _refused("Connection refused\n\tIs the server running on that host?"),
        _refused("FATAL:  the database system is starting up"),
        _refused("FATAL:  the database system is shutting down"),
        _refused("FATAL:  the database system is in recovery mode"),
        _refused("FATAL:  sorry, too many clients already"),
        _refused('FATAL:  too many connections for role "app"'),
        _refused("FATAL:  remaining connection slots are reserved for superusers"),
        _refused("FATAL:  terminating connection due to administrator command"),
        _refused("timeout expired"),
        _refused("FATAL:  Datenbank »app« existiert nicht"),  # not recognised: retried
        psycopg.OperationalError("failed to resolve host 'db': Name or service not known"),
        pg_errors.AdminShutdown("terminating connection due to administrator command"),
        pg_errors.CannotConnectNow("the database system is starting up"),
        pg_errors.TooManyConnections("sorry, too many clients already"),
    ],
    ids=repr,
)
def test_recoverable_errors_are_retried(error: psycopg.Error) -> None:
    assert final_error(error, connecting=True) is None
    retry = Retry(60, connecting=True)
    assert retry.pause_after(error) >= 0


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (_refused('FATAL:  database "app" does not exist'), 'database "app" does not exist'),
        (_refused('FATAL:  role "app" does not exist'), 'role "app" does not exist'),
        (
            _refused('FATAL:  password authentication failed for user "app"'),
            "password authentication failed",
        ),
        (_refused("FATAL:  no pg_hba.conf entry for host"), "no pg_hba.conf entry"),
        (
            _refused('FATAL:  permission denied for database "app"'),
            'permission denied for database "app"',
        ),
        (
            _refused('FATAL:  database "app" is not currently accepting connections'),
            "is not currently accepting connections",
        ),
        (
            psycopg.OperationalError('connection is bad: invalid sslmode value: "x"'),
            'invalid sslmode value: "x"',
        ),
        (
            psycopg.ProgrammingError('invalid URI query parameter: "sslmod"'),
            'invalid URI query parameter: "sslmod"',
        ),
        (pg_errors.InvalidCatalogName('database "app" does not exist'), "does not exist"),
        (pg_errors.InvalidPassword("password authentication failed"), "password"),
        (pg_errors.InvalidAuthorizationSpecification('role "app" does not exist'), "role"),
        (pg_errors.InsufficientPrivilege("permission denied for schema public"), "permission"),
    ],
    ids=repr,
)
def test_final_errors_raise_configuration_error_at_once(error: psycopg.Error, words: str) -> None:
    final = final_error(error, connecting=True)
    assert isinstance(final, ConfigurationError)
    assert words in str(final)
    retry = Retry(60, connecting=True)
    with pytest.raises(ConfigurationError) as raised:
        retry.pause_after(error)
    assert raised.value.__cause__ is error
    assert retry.failures == 1


def test_a_missing_table_says_to_migrate() -> None:
    error = pg_errors.UndefinedTable('relation "capledger_accounts" does not exist')
    final = final_error(error, connecting=False)
    assert isinstance(final, ConfigurationError)
    assert "capledger migrate" in str(final)


def test_an_unknown_refusal_ends_with_the_last_error_when_the_budget_is_spent() -> None:
    retry = Retry(0, connecting=True)
    error = _refused("FATAL:  Datenbank »app« existiert nicht")
    with pytest.raises(BackendUnavailable) as raised:
        retry.pause_after(error)
    assert "Datenbank »app« existiert nicht" in str(raised.value)
    assert "gave up after 1 failed attempt " in str(raised.value)
    assert raised.value.__cause__ is error


def test_client_side_messages_only_count_while_connecting() -> None:
    # An error on an open connection has a SQLSTATE (or none and is no option error):
    # a message that merely mentions a certificate is not a configuration error there.
    error = psycopg.OperationalError("server closed the connection: certificate expired")
    assert final_error(error, connecting=False) is None
    assert isinstance(final_error(error, connecting=True), ConfigurationError)
