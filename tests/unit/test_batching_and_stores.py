"""Batching coalesces without changing results; store URLs and failures are typed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from capledger import (
    AsyncHold,
    AsyncLedger,
    BackendUnavailable,
    BudgetExceeded,
    ConfigurationError,
    HoldNotFound,
    IdempotencyConflict,
    Ledger,
)
from capledger._core import Config, Outcome
from capledger.clock import ManualClock, SystemClock
from capledger.stores.sqlite import SQLiteStore
from capledger.stores.sqlite import store as sqlite_store


class CountingStore(SQLiteStore):
    """Counts transactions and the operations in each."""

    batch_sizes: list[int]

    def execute(self, ops, config):  # type: ignore[no-untyped-def]
        self.batch_sizes.append(len(ops))
        return super().execute(ops, config)


def _counting_ledger(tmp_path: Path, kind: type) -> Ledger | AsyncLedger:
    store = CountingStore(f"sqlite:///{tmp_path}/l.db", SystemClock())
    store.batch_sizes = []
    ledger: Ledger | AsyncLedger = kind(store=store)
    return ledger


def test_a_ledger_takes_a_store_object_and_closes_it(tmp_path: Path) -> None:
    clock = ManualClock()
    store = CountingStore(f"sqlite:///{tmp_path}/l.db", clock)
    store.batch_sizes = []
    with Ledger(store=store) as ledger:
        assert ledger.url == store.url
        assert ledger._clock is clock
        ledger.set_limit("user:a", usd="1")
        ledger.reserve("user:a", usd="0.25").settle()
        assert store.batch_sizes == [1, 1, 1]  # the ledger's operations reach this store
    with pytest.raises(sqlite3.ProgrammingError):  # closed with the ledger
        store._connection.execute("SELECT 1")


def test_a_store_object_with_a_url_or_another_clock_is_refused(tmp_path: Path) -> None:
    store = CountingStore(f"sqlite:///{tmp_path}/l.db", ManualClock())
    with pytest.raises(ConfigurationError, match="not both"):
        Ledger("memory://", store=store)
    with pytest.raises(ConfigurationError, match="give the clock to the store"):
        AsyncLedger(store=store, clock=ManualClock())
    with pytest.raises(ConfigurationError, match=r"must be a capledger\.stores\.Store"):
        Ledger(store="memory://")  # type: ignore[arg-type]
    assert repr(Ledger(store=store, clock=store.clock)) == f"Ledger({store.url!r})"
    store.close()


def test_1000_concurrent_tasks_cost_a_handful_of_transactions(tmp_path: Path) -> None:
    async def main() -> list[int]:
        ledger = _counting_ledger(tmp_path, AsyncLedger)
        await ledger.set_limit("user:hot", usd="5.00")
        results = await asyncio.gather(
            *(ledger.reserve("user:hot", usd="0.10") for _ in range(1000)),
            return_exceptions=True,
        )
        granted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BudgetExceeded)]
        assert (len(granted), len(refused)) == (50, 950)
        sizes = ledger._store.batch_sizes
        await ledger.aclose()
        return sizes

    sizes = asyncio.run(main())
    assert sum(sizes[1:]) == 1000  # the first transaction was set_limit
    assert len(sizes) <= 12, sizes  # a handful of transactions, not a thousand


def test_threads_are_batched_too(tmp_path: Path) -> None:
    ledger = _counting_ledger(tmp_path, Ledger)
    start = threading.Barrier(16)

    def work() -> None:
        start.wait()
        for _ in range(20):
            ledger.reserve("user:a", usd="0.01").settle()

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sizes = ledger._store.batch_sizes
    assert sum(sizes) == 16 * 20 * 2
    assert max(sizes) > 1  # some operations shared a transaction
    [total] = ledger.balance("user:a")
    assert total.spent == Decimal("3.2")
    ledger.close()


class FailingStore(CountingStore):
    """A SQLite store whose transactions fail while ``failing`` is set, as when its disk
    goes: the error of one transaction, for every operation in it."""

    failing = False

    def execute(self, ops, config):  # type: ignore[no-untyped-def]
        if self.failing:
            self.batch_sizes.append(len(ops))
            raise BackendUnavailable("disk gone")
        return super().execute(ops, config)


def test_a_failed_transaction_reaches_every_caller_of_its_batch(tmp_path: Path) -> None:
    """Eight concurrent callers share one transaction; when it fails, each of them hears of
    it (none is left waiting, none told it succeeded) and nothing of it was written."""

    async def main() -> tuple[list[object], list[int], list[object]]:
        store = FailingStore(f"sqlite:///{tmp_path}/l.db", SystemClock())
        store.batch_sizes = []
        async with AsyncLedger(store=store) as ledger:
            store.failing = True
            results = await asyncio.gather(
                *(ledger.reserve(f"user:{index}", usd="0.1") for index in range(8)),
                return_exceptions=True,
            )
            store.failing = False
            return results, store.batch_sizes, await ledger.holds()

    results, sizes, holds = asyncio.run(main())
    assert sizes == [8], "the eight reserves were one transaction"
    assert [type(result) for result in results] == [BackendUnavailable] * 8
    assert holds == []


def test_one_failing_operation_of_a_batch_fails_alone(tmp_path: Path) -> None:
    """Concurrent callers in one transaction: the operations that are refused (a reused
    request id with another amount, an unknown hold, a reserve past its cap) get their own
    typed errors, and the others commit exactly as if they had run alone."""

    async def main() -> tuple[list[object], list[int], list[object]]:
        store = CountingStore(f"sqlite:///{tmp_path}/l.db", SystemClock())
        store.batch_sizes = []
        async with AsyncLedger(store=store) as ledger:
            await ledger.set_limit("user:capped", usd="0.05")
            await ledger.reserve("user:a", usd="0.1", request_id="r1")
            store.batch_sizes.clear()
            results = await asyncio.gather(
                *(ledger.reserve("user:b", usd="0.1") for _ in range(3)),
                ledger.reserve("user:a", usd="0.2", request_id="r1"),
                ledger.settle("h_no_such_hold", usd="0.1"),
                ledger.reserve("user:capped", usd="0.1"),
                *(ledger.reserve("user:b", usd="0.1") for _ in range(3)),
                return_exceptions=True,
            )
            return results, list(store.batch_sizes), await ledger.balance("user:b")

    results, sizes, balances = asyncio.run(main())
    assert sizes == [9], "the nine operations were one transaction"
    errors = [type(result) for result in results[3:6]]
    assert errors == [IdempotencyConflict, HoldNotFound, BudgetExceeded]
    placed = results[:3] + results[6:]
    assert all(isinstance(hold, AsyncHold) and hold.state == "open" for hold in placed)
    [total] = balances
    assert total.held == Decimal("0.6")


def test_a_busy_database_is_retried_until_the_other_writer_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own wait for a lock gives up (here after 10 ms, as after its 5 s busy
    timeout); the store then waits and retries the transaction until the other writer has
    committed, and its caller never sees the lock. The other writer commits when the store
    first pauses between attempts, so without the retry the reserve fails, every time."""
    monkeypatch.setattr(sqlite_store, "_BUSY_WAIT_MS", 10)
    path = tmp_path / "l.db"
    ledger = Ledger(f"sqlite:///{path}")
    ledger.balance("user:a")  # the file and its schema exist before the other writer
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    pauses: list[float] = []

    class PausesEndTheOtherWriter:
        """The store's ``time``: a pause between attempts lets the other writer commit."""

        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            pauses.append(seconds)
            if other.in_transaction:
                other.execute("COMMIT")

    monkeypatch.setattr(sqlite_store, "time", PausesEndTheOtherWriter)
    hold = ledger.reserve("user:a", usd="0.1")  # busy at first: waited out, no error
    assert hold.state == "open"
    assert pauses, "the first attempt met the other writer's lock"
    assert not other.in_transaction
    other.close()
    ledger.close()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://relative.db",
        "sqlite:///:memory:",
        "sqlite:///x.db?journal=off",
        "sqlite:///x.db?synchronous=sometimes",
        "sqlite:////no/such/folder/x.db",
        "mysql://localhost/db",
        "capledger.db",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Ledger(url)


def test_default_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPLEDGER_URL", f"sqlite:///{tmp_path}/env.db")
    with Ledger() as ledger:
        assert ledger.url == f"sqlite:///{tmp_path}/env.db"
    monkeypatch.delenv("CAPLEDGER_URL")
    monkeypatch.chdir(tmp_path)
    with Ledger() as ledger:
        assert ledger.url == "sqlite:///capledger.db"
        ledger.reserve("user:a", usd="1").settle()
    assert (tmp_path / "capledger.db").exists()


def test_driver_errors_become_backend_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    ledger = Ledger(f"sqlite:///{path}")
    ledger._store._connection.close()  # as if the file handle were lost
    with pytest.raises(BackendUnavailable) as raised:
        ledger.reserve("user:a", usd="0.1")
    assert isinstance(raised.value.__cause__, sqlite3.Error)


def test_a_closed_ledger_says_so(tmp_path: Path) -> None:
    ledger = Ledger("memory://")
    ledger.close()
    with pytest.raises(ConfigurationError, match="closed"):
        ledger.reserve("user:a", usd="1")


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    with Ledger(f"sqlite:///{tmp_path}/l.db") as ledger:
        assert ledger.migrate() == []  # applied on first use already
    connection = sqlite3.connect(tmp_path / "l.db")
    versions = connection.execute("SELECT version, name FROM capledger_migrations").fetchall()
    assert versions == [(1, "initial"), (2, "holds_by_id"), (3, "hold_deadlines")]


def test_a_version_1_file_keeps_its_holds_through_0002(tmp_path: Path) -> None:
    from capledger.stores._sql import load_migrations

    path = tmp_path / "old.db"
    [(version, _, initial), *_] = load_migrations("capledger.stores.sqlite.migrations")
    assert version == 1
    old = sqlite3.connect(path)  # what a version-1 release left behind, with two holds
    old.executescript(initial)
    old.executescript(
        "CREATE TABLE capledger_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_us INTEGER NOT NULL); INSERT INTO capledger_migrations VALUES (1, 'initial', 0);"
    )
    clock = ManualClock()
    for hold_id, request_id in (("h_old1", "req-1"), ("h_old2", None)):
        old.execute(
            "INSERT INTO capledger_holds VALUES (?, ?, '[\"user:a\"]', '{\"usd\": 100000000}', "
            "'open', ?, ?, '{}', '', NULL, NULL, '')",
            (hold_id, request_id, clock.now_us(), clock.now_us() + 60_000_000),
        )
    old.execute(
        "INSERT INTO capledger_accounts VALUES ('user:a', 'usd', 'total', 1000000000, 0, "
        "200000000, ?, NULL, 'UTC', ?, 0)",
        (clock.now_us(), clock.now_us()),
    )
    old.commit()
    old.close()

    with Ledger(f"sqlite:///{path}", clock=clock) as ledger:
        assert {hold.id for hold in ledger.holds()} == {"h_old1", "h_old2"}
        ledger.settle("h_old1", usd="0.05")
        ledger.release("h_old2")
        with pytest.raises(IdempotencyConflict):  # the request_id still belongs to h_old1
            ledger.reserve("user:a", usd="0.2", request_id="req-1")
        [total] = ledger.balance("user:a")
        assert (total.spent, total.held) == (Decimal("0.05"), 0)
    connection = sqlite3.connect(path)
    [(table_sql,)] = connection.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'capledger_holds'"
    ).fetchall()
    assert "WITHOUT ROWID" in table_sql
    indexes = {name for (name,) in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'capledger_holds' "
        "AND sql IS NOT NULL"
    )}  # fmt: skip
    assert indexes == {"capledger_holds_request", "capledger_holds_open_expiry"}


def test_outcomes_of_a_batch_match_one_by_one(tmp_path: Path) -> None:
    """The same operations, batched and unbatched, give the same answers."""
    from capledger._core import Reserve
    from capledger.clock import ManualClock

    def ops() -> list[Reserve]:
        return [
            Reserve(f"h{i}", ("user:a",), {"usd": 10**8}, 10**6, None, {}, "") for i in range(8)
        ]

    clock = ManualClock()
    batched = SQLiteStore(f"sqlite:///{tmp_path}/a.db", clock)
    single = SQLiteStore(f"sqlite:///{tmp_path}/b.db", clock)
    config = Config()
    from capledger._core import SetLimit

    for store in (batched, single):
        store.execute([SetLimit("user:a", "usd", "total", 5 * 10**8, "UTC")], config)
    together: list[Outcome] = batched.execute(ops(), config)
    apart = [single.execute([op], config)[0] for op in ops()]
    assert [type(o.error) for o in together] == [type(o.error) for o in apart]
    assert [o.error is None for o in together] == [True] * 5 + [False] * 3


def test_a_store_failure_while_closing_a_block_keeps_the_callers_exception(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path}/l.db")
    working = ledger._store.execute

    def broken(ops, config):  # type: ignore[no-untyped-def]
        raise BackendUnavailable("disk gone")

    with pytest.raises(KeyError), ledger.reserve("user:a", usd="0.1") as hold:
        ledger._store.execute = broken  # type: ignore[method-assign]
        raise KeyError("the caller's own error")
    assert "could not close hold" in caplog.text
    assert hold.state == "open"  # it will expire at its TTL

    ledger._store.execute = working  # type: ignore[method-assign]
    with pytest.raises(BackendUnavailable), ledger.reserve("user:b", usd="0.1") as other:
        other.observe(usd="0.05")
        ledger._store.execute = broken  # type: ignore[method-assign]
    # Without an exception in the block, a failure to settle is the caller's to see.
    ledger._store.execute = working  # type: ignore[method-assign]
    ledger.close()


def test_a_hold_id_placed_twice_on_sqlite_is_refused_and_charged_once(tmp_path: Path) -> None:
    # A first attempt skips looking its new hold ids up; were one ever sent again after it
    # committed, the primary key refuses it as a whole batch, and nothing is charged twice.
    from capledger._core import Reserve

    clock = ManualClock()
    store = SQLiteStore(f"sqlite:///{tmp_path}/l.db", clock)
    op = Reserve("h_once", ("user:a",), {"usd": 10**8}, 10**6, None, {}, "")
    [first] = store.execute([op], Config())
    assert first.hold is not None
    with pytest.raises(BackendUnavailable):
        store.execute([op], Config())
    [account] = store.accounts("user:a")
    assert account.held == 10**8
    assert [hold.id for hold in store.holds()] == ["h_once"]
    store.close()
