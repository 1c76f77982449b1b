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


def test_generic_plans_on_tiny_tables_are_index_scans(pg_url: str) -> None:
    # A generic plan is made once per connection, usually while the tables are tiny, and a
    # sequential scan is the cheapest plan there; kept, it made every transaction of a
    # long-lived connection slower as the holds table grew. The sessions rule it out.
    with Ledger(pg_url) as ledger:
        with ledger.reserve(["user:a", "tenant:t"], usd="0.01") as hold:
            hold.settle()
        with _store_connection(ledger) as connection:
            for number, sql in enumerate(_HOT):
                prepared = wire._prepared(sql)
                connection.execute(f"PREPARE plan_{number} AS {prepared.sql.decode()}")
                nulls = ", ".join("NULL" for _ in prepared.params)
                explain = f"EXPLAIN EXECUTE plan_{number}({nulls})" if nulls else ""
                plan = "\n".join(row[0] for row in connection.execute(explain))
                assert "Seq Scan on capledger_" not in plan, (sql, plan)
                connection.execute(f"DEALLOCATE plan_{number}")


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
