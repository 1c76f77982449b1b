"""The bound every counter is kept under, where it is written twice.

PostgreSQL's fast reserve (a stored function) hands a hold that would pass ``MAX_COUNTER``
over to the Python core; its literal must be the bound itself. The behaviour on every store
is in the contract suite (``test_an_uncapped_counter_takes_no_hold_past_its_bound``).
"""

from __future__ import annotations

from importlib import resources

from capledger.bounds import COUNTER_STORAGE_MAX, MAX_AMOUNT, MAX_CAP, MAX_COUNTER
from capledger.stores._sql import load_migrations


def _reserve_function(sql: str) -> str:
    start = sql.rindex("FUNCTION capledger_reserve_v1(")
    return sql[start : sql.index("$$;", start)]


def test_postgres_fast_reserve_hands_over_past_max_counter() -> None:
    package = "capledger.stores.postgres"
    schema = resources.files(package).joinpath("schema.sql").read_text()
    *_, (_, _, latest) = load_migrations(f"{package}.migrations")
    for sql in (schema, latest):
        assert f"coalesce(a.cap, {MAX_COUNTER})" in _reserve_function(sql)


def test_the_bounds_leave_room_for_settles_past_max_counter() -> None:
    for unit, amount in MAX_AMOUNT.items():
        assert MAX_CAP[unit] <= MAX_COUNTER
        # One settle of the largest amount past the bound always fits, and thousands more.
        assert (COUNTER_STORAGE_MAX - MAX_COUNTER) // amount >= 4096
