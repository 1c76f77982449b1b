"""capledger: hold before the call (check and hold in one atomic step), settle after.

One contender per store: ``--store memory``, ``sqlite`` (a fresh file per run) or
``postgresql`` (database ``capledger_bench`` on 127.0.0.1:5432, created if missing; a fresh
scope per run). The stores that live outside the process (SQLite, PostgreSQL) also run the
process mode: 8 OS processes, each with its own ``Ledger(url)``, sharing one cap.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any

import harness

from capledger import AsyncLedger, BudgetExceeded, Ledger

PG_SERVER = os.environ.get("CAPLEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PG_DATABASE = "capledger_bench"
THREADS_PER_PROCESS = harness.THREADS // harness.PROCESSES


def _attempt(ledger: Ledger, scope: str, provider: harness.FakeProvider) -> None:
    try:
        hold = ledger.reserve(scope, usd=harness.CALL_USD, ttl=300)
    except BudgetExceeded as error:
        raise harness.Refused(str(error)) from error
    with hold:
        provider.call()
        hold.settle(usd=harness.CALL_USD)


async def _aattempt(ledger: AsyncLedger, scope: str, provider: harness.FakeProvider) -> None:
    try:
        hold = await ledger.reserve(scope, usd=harness.CALL_USD, ttl=300)
    except BudgetExceeded as error:
        raise harness.Refused(str(error)) from error
    async with hold:
        await provider.acall()
        await hold.settle(usd=harness.CALL_USD)


def _spent(balances: list[Any]) -> Any:
    [total] = [b for b in balances if b.unit == "usd" and b.period == "total"]
    return total.spent


class Store:
    """Where each run's ledger lives: a URL and a scope nobody else has used."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._directory = tempfile.TemporaryDirectory(prefix="capledger-bench-")
        if kind == "postgresql":
            self._ensure_database()

    def fresh(self) -> tuple[str, str]:
        run = uuid.uuid4().hex[:12]
        scope = f"user:bench-{run}"
        if self.kind == "memory":
            return "memory://", scope
        if self.kind == "sqlite":
            return f"sqlite:///{self._directory.name}/{run}.db", scope
        return f"{PG_SERVER}/{PG_DATABASE}", scope

    def describe(self) -> str:
        """The server or library that stores the ledger, and how durably it commits."""
        if self.kind == "sqlite":
            import sqlite3

            return (
                f"SQLite {sqlite3.sqlite_version}, a fresh file per run in a temporary directory."
            )
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/{PG_DATABASE}", connect_timeout=5) as db:
            version, synchronous_commit, fsync = (
                db.execute(f"SHOW {name}").fetchone()[0]
                for name in ("server_version", "synchronous_commit", "fsync")
            )
        return (
            f"PostgreSQL {version} on 127.0.0.1 (synchronous_commit={synchronous_commit}, "
            f"fsync={fsync}), database {PG_DATABASE}, a fresh scope per run."
        )

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as db:
            found = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,))
            if found.fetchone() is None:
                db.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        url, _ = self.fresh()
        with Ledger(url) as ledger:
            ledger.migrate()


@contextmanager
def _trial(store: Store, provider: harness.FakeProvider) -> Iterator[harness.Trial]:
    url, scope = store.fresh()
    with Ledger(url) as ledger:
        ledger.set_limit(scope, usd=harness.CAP_USD)
        yield partial(_attempt, ledger, scope, provider), lambda: _spent(ledger.balance(scope))


@asynccontextmanager
async def _atrial(store: Store, provider: harness.FakeProvider) -> AsyncIterator[harness.Trial]:
    url, scope = store.fresh()
    async with AsyncLedger(url) as ledger:
        await ledger.set_limit(scope, usd=harness.CAP_USD)

        async def recorded() -> Any:
            return _spent(await ledger.balance(scope))

        yield partial(_aattempt, ledger, scope, provider), recorded


def _process_worker(url: str, scope: str, attempts: int, barrier: Any, results: Any) -> None:
    provider, tally = harness.FakeProvider(), harness.Tally()
    with Ledger(url) as ledger:
        ledger.balance(scope)  # open the store before the start line
        barrier.wait()
        started = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on Linux
        harness.thread_attempts(
            partial(_attempt, ledger, scope, provider),
            tally,
            threads=THREADS_PER_PROCESS,
            attempts=attempts,
        )
        ended = time.monotonic()
    results.put((provider.calls, tally.ok, tally.refused, tally.errors, started, ended))


def _run_processes(store: Store, *, attempts: int) -> harness.Run:
    """``attempts`` split over 8 spawned processes of 4 threads each, one cap."""
    url, scope = store.fresh()
    with Ledger(url) as ledger:
        ledger.set_limit(scope, usd=harness.CAP_USD)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(harness.PROCESSES)
    results = context.Queue()
    shares = [len(range(i, attempts, harness.PROCESSES)) for i in range(harness.PROCESSES)]
    workers = [
        context.Process(target=_process_worker, args=(url, scope, share, barrier, results))
        for share in shares
    ]
    for worker in workers:
        worker.start()
    parts = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join()
    tally = harness.Tally()
    for _calls, ok, refused, errors, _started, _ended in parts:
        tally.ok += ok
        tally.refused += refused
        tally.errors.extend(errors)
    seconds = max(p[5] for p in parts) - min(p[4] for p in parts)
    with Ledger(url) as ledger:
        spent = _spent(ledger.balance(scope))
    return tally.run(sum(p[0] for p in parts), spent, seconds)


def _pairs(store: Store) -> float:
    url, scope = store.fresh()
    with Ledger(url) as ledger:
        ledger.set_limit(scope, usd=harness.PAIRS_CAP_USD)

        def pair() -> None:
            with ledger.reserve(scope, usd=harness.CALL_USD, ttl=300) as hold:
                hold.settle(usd=harness.CALL_USD)

        return harness.time_pairs(pair)


def build(args: Any) -> harness.Contender:
    kind = args.store
    if kind not in ("memory", "sqlite", "postgresql"):
        raise ValueError(f"--store must be memory, sqlite or postgresql, not {kind!r}")
    try:
        store = Store(kind)
    except Exception as error:
        if kind != "postgresql":
            raise
        message = " ".join(str(error).split())
        raise RuntimeError(f"no usable PostgreSQL at {PG_SERVER} ({message}); skipped") from error
    modes = {
        "asyncio": partial(harness.run_asyncio, partial(_atrial, store)),
        "threads": partial(harness.run_threads, partial(_trial, store)),
        "sequential": partial(harness.run_sequential, partial(_trial, store)),
    }
    not_run = {}
    if kind == "memory":
        not_run["processes"] = "memory:// lives in one process by design"
    else:
        modes["processes"] = partial(_run_processes, store)
    packages = ("capledger", "psycopg", "psycopg-pool") if kind == "postgresql" else ("capledger",)
    notes = [store.describe()] if kind != "memory" else []
    return harness.Contender(
        key=f"capledger-{kind}",
        label=f"capledger {kind}://",
        packages=packages,
        pattern="with ledger.reserve(scope, usd=0.10) as hold: call(); hold.settle(usd=0.10)",
        modes=modes,
        not_run=not_run,
        pairs=partial(_pairs, store),
        notes=notes,
    )


if __name__ == "__main__":
    harness.main(build)
