"""The PostgreSQL store's wire layer and query plans: what the hot path depends on."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

import capledger.stores.postgres._wire as wire
from capledger import InvalidInput, Ledger
from capledger._core import Config, Release, Settle
from capledger.stores.postgres import PostgresStore
from capledger.stores.postgres._plans import _composed
from capledger.stores.postgres._retry import send as _send
from capledger.stores.postgres._rounds import QUERIES, Round, Statement

pytestmark = pytest.mark.postgres

#: The queries a batch runs, and the writes composed as a reserve and a settle send them.
_HOT = [
    QUERIES[name]
    for name in (
        "lock_holds",
        "lock_holds_and_requests",
        "lock_accounts_new",
        "lock_accounts",
        "lock_overdue",
        "lock_scopes",
        "delete_accounts",
        "update_accounts",
        "update_holds",
    )
] + [
    _composed(("update_accounts", "insert_holds", "insert_entries")),
    _composed(("insert_accounts", "insert_holds", "insert_entries")),
    _composed(("update_accounts", "update_holds", "insert_entries")),
    _composed(("delete_accounts", "insert_accounts", "update_accounts", "update_holds")),
]


def _store_connection(ledger: Ledger) -> Any:
    store = ledger._store
    assert isinstance(store, PostgresStore)
    return store._sync_pool().connection()


def _assert_index_scans(connection: Any) -> None:
    for number, sql in enumerate(_HOT):
        prepared = wire._prepared(sql)
        connection.execute(f"PREPARE plan_{number} AS {prepared.sql.decode()}")
        nulls = ", ".join("NULL" for _ in prepared.params)
        explain = f"EXPLAIN EXECUTE plan_{number}({nulls})" if nulls else ""
        plan = "\n".join(row[0] for row in connection.execute(explain))
        assert "Seq Scan on capledger_" not in plan, (sql, plan)
        connection.execute(f"DEALLOCATE plan_{number}")


def test_generic_plans_on_tiny_tables_are_index_scans(pg_url: str) -> None:
    # A generic plan is made once per connection, often while the tables are tiny, where a
    # sequential scan is the cheapest plan; kept, it made every transaction of a connection
    # slower as the holds table grew, until autovacuum analyzed it. A batch's transaction
    # rules it out for its own statements (index_scans), and only there.
    with Ledger(pg_url) as ledger:
        with ledger.reserve(["user:a", "tenant:t"], usd="0.01") as hold:
            hold.settle()
        with _store_connection(ledger) as connection:
            connection.execute("BEGIN")
            connection.execute(QUERIES["index_scans"])
            _assert_index_scans(connection)
            connection.execute("ROLLBACK")


_FILL = """
INSERT INTO capledger_accounts
SELECT 'user:' || i, 'usd', 'total', NULL, 0, 0, 0, NULL, 'UTC', 0, 0
  FROM generate_series(1, 10000) AS i;
INSERT INTO capledger_holds
SELECT 'h' || i, 'r' || i, jsonb_build_array('user:' || i), '{"usd": 1}',
       CASE WHEN i % 100 = 0 THEN 'open' ELSE 'settled' END, i, 1000000000000000 + i, '{}', '',
       NULL, NULL, ''
  FROM generate_series(1, 10000) AS i;
ANALYZE capledger_accounts, capledger_holds;
"""


def test_plans_at_ten_thousand_rows_are_index_scans_without_a_setting(pg_url: str) -> None:
    # Sessions plan as PostgreSQL sees fit (no enable_seqscan): at a realistic size every
    # query of a batch is an index lookup on its own.
    with Ledger(pg_url) as ledger:
        ledger.reserve(["user:a"], usd="0.01").settle()
        with _store_connection(ledger) as connection:
            connection.execute(_FILL)
            assert connection.execute("SHOW enable_seqscan").fetchone() == ("on",)
            _assert_index_scans(connection)


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["plain", "with space", "comma,and}brace{", 'quote"inside', "back\\slash", "NULL"],
        [None, "", "ünïcode ✓", "tab\tnew\nline"],
    ],
)
def test_text_arrays_reach_the_server_intact(pg_url: str, values: list[str | None]) -> None:
    with Ledger(pg_url) as ledger, _store_connection(ledger) as connection:
        sql = "SELECT %(values)s::text[], %(n)s::bigint"
        [rows] = _send(connection, Round([Statement(sql, {"values": values, "n": 7}, True)]))
        assert rows == [(values, 7)]


def test_placeholders_become_numbered_parameters_once_per_name() -> None:
    prepared = wire._prepared("SELECT %(a)s, %(b)s, %(a)s, 100 %% 7")
    assert prepared.sql == b"SELECT $1, $2, $1, 100 % 7"
    assert prepared.params == ("a", "b")
    assert re.fullmatch(rb"capledger_[0-9a-f]{20}", prepared.name)


def test_a_failed_statement_raises_psycopgs_error_and_prepares_only_once(pg_url: str) -> None:
    with Ledger(pg_url) as ledger, _store_connection(ledger) as connection:
        statement = Statement("SELECT 1 / %(zero)s::integer", {"zero": 0}, True)
        with pytest.raises(psycopg.errors.DivisionByZero):
            _send(connection, Round([Statement("BEGIN"), statement, Statement("COMMIT")]))
        connection.execute("ROLLBACK")
        # The statement was prepared before it failed; sending it again must not prepare it
        # a second time ("prepared statement already exists") on this connection.
        again = Statement(statement.sql, {"zero": 1}, True)
        [_, rows, _] = _send(connection, Round([Statement("BEGIN"), again, Statement("COMMIT")]))
        assert rows == [(1,)]


@pytest.mark.parametrize(
    "text",
    ["{id}\x00junk", "h\x00", "{id}\ud800", "\udfff"],
    ids=["real-id-then-nul", "nul", "real-id-then-surrogate", "surrogate"],
)
def test_text_parameters_with_nul_or_a_lone_surrogate_never_reach_the_wire(
    pg_url: str, text: str
) -> None:
    # libpq sends parameters as C strings: "id\x00junk" reached the server as "id" and
    # settled the real hold, and "h\x00" in an array made a malformed literal. The ledger
    # refuses such text long before; the store refuses it too if an operation carries it.
    with Ledger(pg_url) as ledger:
        hold = ledger.reserve("user:a", usd="1")
        store = ledger._store
        hold_id = text.format(id=hold.id)
        for op in (Settle(hold_id, {"usd": 10**8}, {}), Release(hold_id)):
            with pytest.raises(InvalidInput, match="NUL or a lone surrogate"):
                store.execute([op], Config())
        with pytest.raises(InvalidInput, match="NUL or a lone surrogate"):
            store.execute([Release(hold.id), Release(hold_id)], Config())
        assert [h.state for h in ledger.holds()] == ["open"]
        assert ledger.verify().ok
