"""throughput: sequential reserve+settle pairs per second, and whether history slows it.

Measures pairs/s on an empty ledger, then again after ``--history`` settled holds are in
the journal. An operation touches counter rows only, so the two rates should match.

    python benchmarks/throughput.py --store sqlite --history 100000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from _common import machine

from capledger import AsyncLedger, Ledger


def pairs_per_second(ledger: Ledger, pairs: int) -> float:
    started = time.perf_counter()
    for _ in range(pairs):
        ledger.reserve(["user:u1", "tenant:t1"], usd="0.002").settle(usd="0.001")
    return pairs / (time.perf_counter() - started)


async def fill_history(url: str, settled: int) -> None:
    """Settle ``settled`` holds quickly: concurrent callers, batched into few transactions."""
    ledger = AsyncLedger(url)
    price = Decimal("0.001")

    async def worker(count: int, worker_id: int) -> None:
        for index in range(count):
            scopes = [f"user:h{(worker_id * 7 + index) % 500}", "tenant:history"]
            hold = await ledger.reserve(scopes, usd=price)
            await hold.settle(usd=price)

    workers = 200
    await asyncio.gather(*(worker(settled // workers, w) for w in range(workers)))
    await ledger.aclose()


def prepared(url: str) -> Ledger:
    ledger = Ledger(url)
    ledger.set_limit("user:u1", usd="1000000", period="month")
    ledger.set_limit("tenant:t1", usd="1000000", period="day")
    pairs_per_second(ledger, 200)  # warm up caches and statements
    return ledger


def measure_interleaved(
    empty_url: str, full_url: str, pairs: int, runs: int
) -> tuple[list[float], list[float]]:
    """Alternate the two ledgers run by run, so machine noise hits both alike."""
    empty, full = prepared(empty_url), prepared(full_url)
    try:
        empty_rates, full_rates = [], []
        for _ in range(runs):
            empty_rates.append(pairs_per_second(empty, pairs))
            full_rates.append(pairs_per_second(full, pairs))
        return empty_rates, full_rates
    finally:
        empty.close()
        full.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="sqlite", help="sqlite, or two URLs: EMPTY,FULL")
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as folder:
        if args.store == "sqlite":
            empty_url = f"sqlite:///{Path(folder)}/empty.db"
            full_url = f"sqlite:///{Path(folder)}/history.db"
        else:
            empty_url, _, full_url = args.store.partition(",")
        if empty_url == full_url:
            raise SystemExit("use --store sqlite (two files) to compare empty and full ledgers")
        started = time.perf_counter()
        asyncio.run(fill_history(full_url, args.history))
        fill_s = time.perf_counter() - started
        with Ledger(full_url) as ledger:
            entries = sum(1 for _ in ledger._store.journal())
        empty, full = measure_interleaved(empty_url, full_url, args.pairs, args.runs)
    empty_median = statistics.median(empty)
    full_median = statistics.median(full)
    print(
        f"store: {args.store}; {args.pairs} sequential pairs per run, {args.runs} runs; "
        f"history filled in {fill_s:.1f} s ({entries} journal entries)\n"
    )
    print("| journal | pairs/s median | all runs |")
    print("|---|---|---|")
    print(f"| empty | {empty_median:,.0f} | {', '.join(f'{v:,.0f}' for v in empty)} |")
    print(f"| {entries:,} entries | {full_median:,.0f} | {', '.join(f'{v:,.0f}' for v in full)} |")
    print(f"\nratio with history / empty: {full_median / empty_median:.2f}")


if __name__ == "__main__":
    main()
