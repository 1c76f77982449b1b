"""``snapshot`` reads without a write lock: it never waits for a writer's row locks."""

from __future__ import annotations

import threading
from decimal import Decimal

import psycopg
import pytest

from capledger import Ledger
from capledger._core import Config, Inspect
from capledger.stores.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def _store(ledger: Ledger) -> PostgresStore:
    store = ledger._store
    assert isinstance(store, PostgresStore)
    return store


def test_snapshot_reads_accounts_and_open_holds_of_the_scopes(pg_url: str) -> None:
    with Ledger(pg_url) as ledger:
        ledger.set_limit("team:a", usd="10", period="day")
        shared = ledger.reserve(["user:x", "team:a"], usd="1")
        ledger.reserve(["user:y"], usd="2")
        ledger.reserve(["user:x"], usd="3").settle(usd="3")
        accounts, holds, _now, _tick = _store(ledger).snapshot(["team:a", "user:x", "team:a"])
        assert [(a.scope, a.unit, a.period) for a in accounts] == [
            ("team:a", "usd", "day"),
            ("team:a", "usd", "total"),
            ("user:x", "usd", "total"),
        ]
        assert [hold.id for hold in holds] == [shared.id]
        assert [a.held for a in accounts] == [10**9] * 3
        assert _store(ledger).snapshot(["nobody"])[:2] == ([], [])


def test_snapshot_takes_no_row_lock(pg_url: str) -> None:
    with Ledger(pg_url) as ledger:
        ledger.set_limit("team:a", usd="10")
        ledger.reserve(["team:a"], usd=Decimal(1))
        store = _store(ledger)
        # Another session holds every account and hold row FOR UPDATE, as a writer does.
        with psycopg.connect(pg_url.split("?", maxsplit=1)[0], autocommit=False) as writer:
            writer.execute("SELECT 1 FROM capledger_accounts FOR UPDATE").fetchall()
            writer.execute("SELECT 1 FROM capledger_holds FOR UPDATE").fetchall()
            read: list[object] = []
            reader = threading.Thread(target=lambda: read.append(store.snapshot(["team:a"])))
            reader.start()
            reader.join(10)
            assert not reader.is_alive(), "snapshot waited for a writer's row lock"
            [(accounts, holds, _now, _tick)] = read  # type: ignore[misc]
            assert len(accounts) == 1 and len(holds) == 1
            # The write path's read does wait: the same lock blocks it (the test can fail).
            inspected: list[object] = []
            config = Config()
            inspector = threading.Thread(
                target=lambda: inspected.append(store.execute([Inspect("team:a")], config))
            )
            inspector.start()
            inspector.join(0.5)
            assert inspector.is_alive() and not inspected
            writer.rollback()
        inspector.join(10)
        assert inspected
