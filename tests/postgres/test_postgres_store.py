"""The PostgreSQL store's own behaviour: schema and migrations, URL options, races, errors."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from pg_testing import create_database, database_url, drop_database

import capledger.stores.postgres._retry as pg_retry
from capledger import BackendUnavailable, ConfigurationError, Ledger, ManualClock
from capledger._core import Config, Reserve
from capledger.ledger._validate import new_hold_id
from capledger.stores._sql import load_migrations
from capledger.stores.postgres import PostgresStore
from capledger.stores.postgres._plans import MIGRATIONS_PACKAGE, batch_plan, schema_sql

pytestmark = pytest.mark.postgres

# Everything that makes two schemas differ: columns, constraints, indexes, defaults.
_CATALOG_QUERY = """
SELECT 'column', c.relname, a.attname,
       format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
  FROM pg_attribute AS a
  JOIN pg_class AS c ON c.oid = a.attrelid
  JOIN pg_namespace AS n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = %(schema)s AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'r'
UNION ALL
SELECT 'constraint', c.relname, k.conname, pg_get_constraintdef(k.oid)
  FROM pg_constraint AS k
  JOIN pg_class AS c ON c.oid = k.conrelid
  JOIN pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname = %(schema)s
UNION ALL
SELECT 'index', tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(schema)s
UNION ALL
SELECT 'sequence', sequencename, data_type::text, increment_by::text
  FROM pg_sequences WHERE schemaname = %(schema)s
UNION ALL
SELECT 'function', p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid)
  FROM pg_proc AS p
  JOIN pg_namespace AS n ON n.oid = p.pronamespace
 WHERE n.nspname = %(schema)s
ORDER BY 1, 2, 3, 4
"""


def _catalog(url: str, schema: str = "public") -> list[tuple[Any, ...]]:
    with psycopg.connect(url.partition("?")[0]) as connection:
        return connection.execute(_CATALOG_QUERY, {"schema": schema}).fetchall()


def _apply(url: str, *scripts: str) -> None:
    with psycopg.connect(url.partition("?")[0], autocommit=True) as connection:
        for script in scripts:
            connection.execute(script)  # type: ignore[call-overload]


@pytest.fixture
def second_url(pg_admin_url: str) -> Iterator[str]:
    """A second fresh database for tests that compare two."""
    name = "capledger_test_second_" + new_hold_id()[2:14]
    create_database(pg_admin_url, name)
    yield database_url(name, pg_admin_url)
    drop_database(pg_admin_url, name)


# --- schema and migrations --------------------------------------------------------------------


def test_schema_file_equals_every_migration_applied_in_order(pg_url: str, second_url: str) -> None:
    _apply(pg_url, schema_sql())
    _apply(second_url, *(sql for _, _, sql in load_migrations(MIGRATIONS_PACKAGE)))
    from_schema, from_migrations = _catalog(pg_url), _catalog(second_url)
    assert from_schema, "the schema created nothing"
    assert from_schema == from_migrations


def test_migrate_records_every_version_once(pg_url: str) -> None:
    store = PostgresStore(pg_url, ManualClock())
    try:
        assert store.migrate() == [
            "0001_initial",
            "0002_fast_path",
            "0003_new_scope_lock",
            "0004_counter_bound",
        ]
        assert store.migrate() == []
    finally:
        store.close()
    with psycopg.connect(pg_url.partition("?")[0]) as connection:
        versions = connection.execute("SELECT version FROM capledger_migrations").fetchall()
    assert sorted(versions) == [(1,), (2,), (3,), (4,)]


def test_migrate_applies_only_what_is_missing(pg_url: str, second_url: str) -> None:
    # An existing install that has every migration recorded gets nothing more, and its
    # schema is what a fresh migrate gives.
    with Ledger(pg_url) as ledger:
        ledger.migrate()
    _apply(second_url, *(sql for _, _, sql in load_migrations(MIGRATIONS_PACKAGE)))
    _apply(
        second_url,
        "CREATE TABLE capledger_migrations (version integer NOT NULL, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now(), "
        "CONSTRAINT capledger_migrations_pkey PRIMARY KEY (version))",
        "INSERT INTO capledger_migrations (version, name) VALUES (1, 'initial'), (2, 'fast_path'), "
        "(3, 'new_scope_lock'), (4, 'counter_bound')",
    )
    with Ledger(second_url) as ledger:
        assert ledger.migrate() == []
    assert _catalog(pg_url) == _catalog(second_url)


def test_concurrent_first_users_do_not_race_the_migration(pg_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def first_use() -> None:
        try:
            with Ledger(pg_url) as ledger:
                barrier.wait()
                ledger.set_limit("user:a", usd="1")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(pg_url.partition("?")[0]) as connection:
        assert connection.execute("SELECT count(*) FROM capledger_migrations").fetchone() == (4,)


def test_a_named_schema_holds_the_tables(pg_url: str) -> None:
    with Ledger(pg_url + "&schema=budgets") as ledger:
        ledger.set_limit("user:a", usd="1")
        ledger.reserve("user:a", usd="0.25").settle()
        assert ledger.verify().ok
    tables = {row[1] for row in _catalog(pg_url, "budgets") if row[0] == "column"}
    assert tables == {
        "capledger_accounts",
        "capledger_holds",
        "capledger_journal",
        "capledger_migrations",
    }
    assert _catalog(pg_url, "public") == []


def test_migrate_off_leaves_the_database_alone(pg_url: str) -> None:
    with Ledger(pg_url + "&migrate=off") as ledger, pytest.raises(ConfigurationError) as raised:
        ledger.set_limit("user:a", usd="1")  # no tables: the error says to migrate
    assert "capledger migrate" in str(raised.value)
    assert _catalog(pg_url) == []


# --- URL options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "pool_size=0",
        "pool_size=x",
        "retry_s=-1",
        "connect_retry_s=-1",
        "connect_retry_s=nan",
        "migrate=sometimes",
        "schema=",
    ],
)
def test_bad_url_options_are_configuration_errors(query: str) -> None:
    with pytest.raises(ConfigurationError):
        PostgresStore(f"postgresql://localhost/app?{query}", ManualClock())


def test_libpq_options_pass_through_and_postgres_scheme_works(pg_url: str) -> None:
    url = pg_url.replace("postgresql://", "postgres://") + "&application_name=mine"
    with Ledger(url) as ledger:
        ledger.set_limit("user:a", usd="1")
        store = ledger._store
        assert isinstance(store, PostgresStore)
        with store._sync_pool().connection() as connection:
            row = connection.execute("SHOW application_name").fetchone()
    assert row == ("mine",)


def test_import_capledger_does_not_import_psycopg() -> None:
    code = "import sys, capledger; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- races and failures -----------------------------------------------------------------------


def _race(first: Ledger, second: Ledger, key: str) -> tuple[dict[str, str], list[BaseException]]:
    """Reserve with request_id ``key`` from both ledgers at the same moment."""
    found: dict[str, str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def reserve(name: str, ledger: Ledger) -> None:
        try:
            barrier.wait()
            found[name] = ledger.reserve(["user:a", "tenant:t"], usd="0.5", request_id=key).id
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=reserve, args=("first", first)),
        threading.Thread(target=reserve, args=("second", second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found, errors


def test_two_processes_racing_one_request_id_get_the_same_hold(pg_url: str) -> None:
    # Two ledgers (two pools: as two processes would) reserve with one request_id at once,
    # many times over: every pair must get one hold, never an error or a double charge.
    with Ledger(pg_url) as first, Ledger(pg_url) as second:
        first.set_limit("user:a", usd="100")
        for round_ in range(30):
            found, errors = _race(first, second, f"req-{round_}")
            assert errors == []
            assert found["first"] == found["second"]
        [total] = [b for b in first.balance("user:a") if b.period == "total"]
        assert total.held == Decimal(15)  # 30 holds of 0.5, not 60
        assert first.verify().ok


def test_unreachable_server_raises_backend_unavailable_with_the_cause() -> None:
    url = "postgresql://postgres@127.0.0.1:9/nowhere?retry_s=0.3"
    with Ledger(url) as ledger, pytest.raises(BackendUnavailable) as raised:
        ledger.set_limit("user:a", usd="1")
    assert isinstance(raised.value.__cause__, psycopg.Error)


def _lose_connection_around_commit(monkeypatch: pytest.MonkeyPatch, *, after: bool) -> list[int]:
    """Make the next COMMIT round lose its connection, before or after the server got it."""
    real_send = pg_retry.send
    calls: list[int] = []

    def send(connection: psycopg.Connection[Any], round_: Any) -> Any:
        if round_.commit is None or calls:
            return real_send(connection, round_)
        calls.append(1)
        if after:
            real_send(connection, round_)  # the server commits ...
        else:
            connection.execute("ROLLBACK")  # ... or never sees the COMMIT
        connection.pgconn.finish()  # ... and the client loses the connection
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(pg_retry, "send", send)
    return calls


@pytest.mark.parametrize("after", [True, False], ids=["committed", "not-committed"])
def test_a_lost_commit_is_resolved_never_applied_twice(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, after: bool
) -> None:
    with Ledger(pg_url) as ledger:
        ledger.set_limit("user:a", usd="1")
        calls = _lose_connection_around_commit(monkeypatch, after=after)
        hold = ledger.reserve("user:a", usd="0.40")
        assert calls == [1]
        calls = _lose_connection_around_commit(monkeypatch, after=after)
        hold.extend(usd="0.10")  # not idempotent on its own: the xid check makes it safe
        assert calls == [1]
        calls = _lose_connection_around_commit(monkeypatch, after=after)
        hold.settle(usd="0.30")
        assert calls == [1]
        [total] = ledger.balance("user:a")
        assert (total.spent, total.held) == (Decimal("0.3"), Decimal(0))
        assert len(ledger.holds(state=None)) == 1
        kinds = [entry.kind for entry in ledger._store.journal()]
        assert kinds == ["limit_set", "reserved", "extended", "settled"]
        assert ledger.verify().ok


def test_a_retried_batch_finds_its_own_hold(pg_url: str) -> None:
    # The second line of defence: a reserve run again with its hold id (what a retry after
    # a lost COMMIT runs) returns the hold the first run made and charges once.
    clock = ManualClock()
    store = PostgresStore(pg_url, clock)
    config = Config()
    op = Reserve(new_hold_id(), ("user:a",), {"usd": 10**8}, 60_000_000, None, {}, "")
    try:
        [first] = store.execute([op], config)
        [again] = store._run(
            lambda _first: batch_plan([op], config, now_us=clock.now_us(), first_attempt=False)
        )
        assert first.hold is not None and again.hold is not None
        assert again.hold.id == first.hold.id
        [account] = store.accounts("user:a")
        assert account.held == 10**8
        assert len(store.holds()) == 1
    finally:
        store.close()
