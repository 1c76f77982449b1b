"""``Store.snapshot``: the accounts and open holds of some scopes, read without a write lock."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from capledger import Ledger
from capledger.clock import ManualClock


@pytest.fixture(params=["memory", "sqlite"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/ledger.db"
    with Ledger(url, clock=ManualClock()) as opened:
        yield opened


def test_snapshot_reads_the_accounts_and_open_holds_of_its_scopes_only(ledger: Ledger) -> None:
    ledger.set_limit("user:a", usd="10")
    ledger.set_limit("user:a", usd="100", period="month")
    ledger.set_limit("team:t", usd="50")
    ledger.set_limit("user:b", usd="10")
    on_a = ledger.reserve("user:a", usd="1")
    on_both = ledger.reserve(["user:a", "team:t"], usd="2")
    ledger.reserve("user:b", usd="3")  # another scope: not read
    ledger.reserve("user:a", usd="4").settle(usd="4")  # closed: not read

    accounts, holds, _now, _tick = ledger._store.snapshot(["user:a", "team:t", "user:a"])

    assert sorted((a.scope, a.period) for a in accounts) == [
        ("team:t", "total"),
        ("user:a", "month"),
        ("user:a", "total"),
    ]
    assert [hold.id for hold in holds] == [on_a.id, on_both.id]  # once each, oldest first
    assert all(hold.state == "open" for hold in holds)
    held = {(a.scope, a.period): a.held for a in accounts}
    assert held[("user:a", "total")] == 3_000_000_000  # $1 + $2 in nano-USD


def test_snapshot_of_unknown_scopes_is_empty(ledger: Ledger) -> None:
    assert ledger._store.snapshot(["nobody"])[:2] == ([], [])


def test_sqlite_snapshot_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(f"sqlite:///{path}", clock=ManualClock()) as ledger:
        ledger.set_limit("user:a", usd="10")
        ledger.reserve("user:a", usd="1")
        writer = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            writer.execute("BEGIN IMMEDIATE")  # the write lock, held through the read
            writer.execute("UPDATE capledger_accounts SET held = 0")  # not committed
            started = time.monotonic()
            accounts, holds, _now, _tick = ledger._store.snapshot(["user:a"])
            waited_s = time.monotonic() - started
            # A write lock taken by the read would wait for the busy timeout (5 s) and fail.
            assert waited_s < 1.0
            assert [a.held for a in accounts] == [1_000_000_000]  # the committed state
            assert len(holds) == 1
        finally:
            writer.execute("ROLLBACK")
            writer.close()
