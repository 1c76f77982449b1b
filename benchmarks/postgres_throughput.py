"""PostgreSQL throughput: sequential reserve+settle pairs, history, and several processes.

Three measurements, each on fresh databases created (and dropped) here:

* ``sequential``: reserve + settle pairs per second from one thread on one connection, on an
  empty ledger and on one whose history holds 1,000,000 settled holds (2,000,000 journal
  entries: reserved + settled), bulk-loaded with ``generate_series`` and then VACUUM
  ANALYZEd as autovacuum would. Runs alternate between the two databases so that a change
  in the machine's load hits both alike.
* ``processes``: 4 OS processes, each with its own ``Ledger`` and one sequential loop,
  hammering one hot scope, against 1 process doing the same. The hot scope's cap is exactly
  what the pairs need, so it must end exactly full, and one more reserve must be refused.

``--compare-fast-path`` runs every sequential measurement twice per run, interleaved: with
the stored-function fast path off (``?fast_path=off``, the Python core decides: two round
trips per reserve) and on (the default: one round trip per reserve and per settle).
``--fast-path off`` turns it off for every measurement instead.

    python benchmarks/postgres_throughput.py --server postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import uuid
from decimal import Decimal

import psycopg
from _common import machine
from postgres_cap_correctness import create, drop, with_database

from capledger import BudgetExceeded, Ledger

PRICE = Decimal("0.01")

_HISTORY_SQL = """
INSERT INTO capledger_holds
    (id, request_id, scopes, amounts, state, created_us, expires_us, tags, fingerprint,
     settled, closed_us, flags)
SELECT 'h_hist_' || i, NULL, jsonb_build_array('tenant:acme', 'user:h' || (i %% 1000)),
       '{"usd": 10000000}', 'settled', %(start)s + i * 1000, %(start)s + i * 1000 + 60000000,
       '{"model": "gpt-4o-mini"}', '', '{"usd": 7000000}', %(start)s + i * 1000 + 500, ''
  FROM generate_series(1, %(n)s) AS i;
INSERT INTO capledger_journal (ts_us, kind, hold_id, request_id, scopes, amounts, tags, flags)
SELECT %(start)s + i * 1000 + (k - 1) * 500, CASE k WHEN 1 THEN 'reserved' ELSE 'settled' END,
       'h_hist_' || i, NULL, jsonb_build_array('tenant:acme', 'user:h' || (i %% 1000)),
       CASE k WHEN 1 THEN '{"usd": 10000000}'::jsonb ELSE '{"usd": 7000000}'::jsonb END,
       '{"model": "gpt-4o-mini"}', ''
  FROM generate_series(1, %(n)s) AS i, generate_series(1, 2) AS k
 ORDER BY 1;
INSERT INTO capledger_accounts
    (scope, unit, period, cap, spent, held, window_start_us, window_end_us, tz, anchor_us)
SELECT scope, 'usd', 'total', NULL, sum(7000000), 0, 0, NULL, 'UTC', %(start)s
  FROM (SELECT 'user:h' || (i %% 1000) AS scope FROM generate_series(1, %(n)s) AS i
        UNION ALL SELECT 'tenant:acme' FROM generate_series(1, %(n)s)) AS s
 GROUP BY scope;
"""


def with_option(url: str, key: str, value: str) -> str:
    """``url`` with one more query option."""
    return f"{url}{'&' if '?' in url else '?'}{key}={value}"


def load_history(url: str, settled: int) -> float:
    """Bulk-load ``settled`` settled holds into a migrated database; return the seconds."""
    started = time.perf_counter()
    with Ledger(url) as ledger:
        ledger.migrate()
    start_us = int((time.time() - 86_400) * 1_000_000)
    with psycopg.connect(url, autocommit=True) as connection:
        with connection.transaction():
            for statement in _HISTORY_SQL.split(";"):
                if statement.strip():
                    connection.execute(statement, {"n": settled, "start": start_us})  # type: ignore[call-overload]
        connection.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def pairs_per_second(url: str, pairs: int, scopes: list[str]) -> float:
    """Reserve + settle ``pairs`` times in a row from one thread; return pairs per second."""
    with Ledger(url) as ledger:
        for _ in range(50):  # open the connection and prepare the statements first
            with ledger.reserve(scopes, usd=PRICE) as hold:
                hold.settle(usd=PRICE)
        started = time.perf_counter()
        for _ in range(pairs):
            with ledger.reserve(scopes, usd=PRICE) as hold:
                hold.settle(usd=PRICE)
        return pairs / (time.perf_counter() - started)


def _process(url: str, pairs: int, barrier: multiprocessing.synchronize.Barrier) -> float:
    with Ledger(url) as ledger:
        with ledger.reserve("user:warm", usd=PRICE) as warm:
            warm.settle()
        barrier.wait()
        started = time.perf_counter()
        for _ in range(pairs):
            with ledger.reserve(["user:hot", "tenant:acme"], usd=PRICE) as hold:
                hold.settle(usd=PRICE)
        return time.perf_counter() - started


def hot_scope(server: str, processes: int, pairs: int, fast_path: str) -> tuple[float, bool]:
    """(aggregate pairs/s, cap exact) for ``processes`` processes on one hot scope."""
    name = f"capledger_bench_{uuid.uuid4().hex[:10]}"
    create(server, name)
    url = with_option(with_database(server, name), "fast_path", fast_path)
    try:
        with Ledger(url) as ledger:
            ledger.set_limit("user:hot", usd=PRICE * pairs * processes)
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            barrier = manager.Barrier(processes)
            with context.Pool(processes) as pool:
                started = time.perf_counter()
                pool.starmap(_process, [(url, pairs, barrier)] * processes)
                seconds = time.perf_counter() - started
        with Ledger(url) as ledger:
            [total] = [b for b in ledger.balance("user:hot") if b.period == "total"]
            try:
                ledger.reserve("user:hot", usd="0.000000001")
                refused = False
            except BudgetExceeded:
                refused = True
            exact = (
                total.spent == total.cap == PRICE * pairs * processes
                and total.held == 0
                and refused
                and ledger.verify().ok
            )
    finally:
        drop(server, name)
    return processes * pairs / seconds, exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--skip", choices=["sequential", "processes"], action="append", default=[])
    parser.add_argument("--fast-path", choices=["on", "off"], default="on")
    parser.add_argument("--compare-fast-path", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    scopes = ["user:bench", "tenant:acme"]

    if "sequential" not in args.skip:
        empty, full = (f"capledger_bench_{uuid.uuid4().hex[:10]}" for _ in range(2))
        create(args.server, empty)
        create(args.server, full)
        try:
            empty_url, full_url = (
                with_database(args.server, empty),
                with_database(args.server, full),
            )
            with Ledger(empty_url) as ledger:
                ledger.migrate()
            load_s = load_history(full_url, args.history)
            print(f"history: {args.history:,} settled holds loaded in {load_s:.1f} s\n")
            modes = ["off", "on"] if args.compare_fast_path else [args.fast_path]
            # (label, url): every mode on both ledgers, measured in turn within each run.
            variants = [
                (f"{ledger}, fast path {mode}", with_option(url, "fast_path", mode))
                for ledger, url in (
                    ("empty", empty_url),
                    (f"{args.history:,} settled holds", full_url),
                )
                for mode in modes
            ]
            rates: dict[str, list[float]] = {label: [] for label, _ in variants}
            for _ in range(args.runs):
                for label, url in variants:
                    rates[label].append(pairs_per_second(url, args.pairs, scopes))
        finally:
            drop(args.server, empty)
            drop(args.server, full)
        print(f"sequential reserve+settle pairs, one connection, {args.pairs} pairs per run")
        print("| ledger | pairs/s median | all runs | ratio to empty (same mode) |")
        print("|---|---|---|---|")
        for index, (label, _) in enumerate(variants):
            median = statistics.median(rates[label])
            base = statistics.median(rates[variants[index % len(modes)][0]])
            runs = ", ".join(f"{rate:.0f}" for rate in rates[label])
            print(f"| {label} | {median:.0f} | {runs} | {median / base:.2f} |")
        print()

    if "processes" not in args.skip:
        single: list[float] = []
        many: list[float] = []
        exact = True
        for _ in range(args.runs):
            rate, ok = hot_scope(args.server, 1, args.pairs, args.fast_path)
            single.append(rate)
            exact = exact and ok
            rate, ok = hot_scope(args.server, args.processes, args.pairs, args.fast_path)
            many.append(rate)
            exact = exact and ok
        print(f"one hot scope, {args.pairs} pairs per process, cap = exactly what the pairs need")
        print("| processes | pairs/s median (aggregate) | all runs | cap exact | ratio to 1 |")
        print("|---|---|---|---|---|")
        for count, rates_list in ((1, single), (args.processes, many)):
            median = statistics.median(rates_list)
            runs = ", ".join(f"{rate:.0f}" for rate in rates_list)
            ratio = median / statistics.median(single)
            print(f"| {count} | {median:.0f} | {runs} | {'yes' if exact else 'NO'} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
