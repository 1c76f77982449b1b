"""Where a sequential reserve+settle pair's time goes on PostgreSQL.

Runs sequential pairs on a fresh database (created and dropped here) and reports, per kind
of round trip, the client-measured median time (statements sent, reply received), then the
pair's wall time against the client's own CPU time and the time spent waiting for the
server. Reference points on the same connection: an empty round (``SELECT 1``), and a
one-row ``UPDATE`` + ``COMMIT`` round (what a durable commit costs here).

    python benchmarks/postgres_rounds.py --server postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from decimal import Decimal
from typing import Any

from _common import machine
from postgres_cap_correctness import create, drop, with_database

import capledger.stores.postgres._retry as pg_retry
from capledger import Ledger
from capledger.stores.postgres import PostgresStore
from capledger.stores.postgres._rounds import QUERIES, Round, Statement

PRICE = Decimal("0.01")


_NAMES = {sql: name for name, sql in QUERIES.items()}


def _label(round_: Round) -> str:
    words = [
        _NAMES.get(s.sql) or ("writes" if s.sql.startswith("WITH") else s.sql.split()[0])
        for s in round_.statements
    ]
    return ", ".join(words)


def measure(url: str, pairs: int) -> None:
    """Print per-round medians and the pair's time split for ``pairs`` sequential pairs."""
    times: dict[str, list[int]] = {}
    real_send = pg_retry.send

    def timed_send(connection: Any, round_: Round) -> Any:
        started = time.perf_counter_ns()
        try:
            return real_send(connection, round_)
        finally:
            times.setdefault(_label(round_), []).append(time.perf_counter_ns() - started)

    scopes = ["user:bench", "tenant:acme"]
    with Ledger(url) as ledger:
        store = ledger._store
        assert isinstance(store, PostgresStore)
        with store._sync_pool().connection() as connection:
            connection.execute("CREATE TABLE bench_counter (id int PRIMARY KEY, n bigint)")
            connection.execute("INSERT INTO bench_counter VALUES (1, 0)")
        for _ in range(100):  # open the connection and prepare the statements first
            with ledger.reserve(scopes, usd=PRICE) as hold:
                hold.settle(usd=PRICE)
        pg_retry.send = timed_send  # type: ignore[assignment]
        try:
            started, cpu = time.perf_counter(), os.times()
            for _ in range(pairs):
                with ledger.reserve(scopes, usd=PRICE) as hold:
                    hold.settle(usd=PRICE)
            wall_s, cpu_end = time.perf_counter() - started, os.times()
            in_rounds = {label: list(values) for label, values in times.items()}
            times.clear()
            ping = Round([Statement("SELECT 1", None, True)])
            update = Round(
                [
                    Statement("BEGIN"),
                    Statement("UPDATE bench_counter SET n = n + 1 WHERE id = 1"),
                    Statement("COMMIT"),
                ]
            )
            with store._sync_pool().connection() as connection:
                for _ in range(pairs):
                    timed_send(connection, ping)
                    timed_send(connection, update)
        finally:
            pg_retry.send = real_send
    per_pair = wall_s / pairs * 1e6
    user = (cpu_end.user - cpu.user) / pairs * 1e6
    system = (cpu_end.system - cpu.system) / pairs * 1e6
    print(f"{pairs} sequential pairs: {pairs / wall_s:.0f} pairs/s, {per_pair:.0f} us per pair\n")
    print("| round trip | count per pair | median (us) |")
    print("|---|---|---|")
    total_rounds = 0.0
    for label, values in sorted(in_rounds.items()):
        median = statistics.median(values) / 1000
        count = len(values) / pairs
        total_rounds += median * count
        print(f"| {label} | {count:.0f} | {median:.0f} |")
    for label, values in times.items():
        print(f"| reference, {label} | - | {statistics.median(values) / 1000:.0f} |")
    print(
        f"\nper pair: {per_pair:.0f} us wall = {total_rounds:.0f} us in round trips (medians)"
        f" + {per_pair - total_rounds:.0f} us between them; client CPU {user:.0f} us user"
        f" + {system:.0f} us system"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--pairs", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    name = f"capledger_bench_{uuid.uuid4().hex[:10]}"
    create(args.server, name)
    try:
        measure(with_database(args.server, name), args.pairs)
    finally:
        drop(args.server, name)


if __name__ == "__main__":
    main()
