"""cap_correctness on PostgreSQL: 1000 concurrent reservations of $0.10 against $5.00.

Each attempt holds $0.10, waits 1 ms (the fake LLM call), then settles $0.10, all from one
``AsyncLedger``. Every run gets a fresh database (created and dropped here). The cap must
hold exactly: 50 granted, $5.00 spent, nothing held, no errors, ``verify()`` clean.

    python benchmarks/postgres_cap_correctness.py --server postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import psycopg
from _common import machine
from psycopg import sql

from capledger import AsyncLedger
from capledger.testing.workload import run_async, total_usd

CAP = Decimal("5.00")
PRICE = Decimal("0.10")


def with_database(server: str, name: str) -> str:
    """``server`` pointed at database ``name``."""
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def create(server: str, name: str) -> None:
    """Create an empty database."""
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop(server: str, name: str) -> None:
    """Drop a database made by this script."""
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


async def one_run(url: str, attempts: int, latency_s: float) -> tuple[float, int, Decimal, int]:
    """One cap run on a migrated, warmed-up ledger; (seconds, granted, spent, errors)."""
    ledger = AsyncLedger(url)
    await ledger.set_limit("user:hot", usd=CAP)
    # Open the pool and prepare the statements before the clock starts, as a running
    # service would have.
    warm = await ledger.reserve("user:warm", usd="0.01")
    await warm.settle()
    result = await run_async(ledger, [["user:hot"]] * attempts, PRICE, latency_s)
    total = total_usd(await ledger.balance("user:hot"))
    report = await ledger.verify()
    await ledger.aclose()
    if total.held != 0 or not report.ok:
        raise SystemExit(f"cap check failed: {total}, {report}")
    return result.seconds, result.granted, total.spent, len(result.errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--attempts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=1.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        f"{args.attempts} concurrent asyncio reservations of ${PRICE} against ${CAP}, "
        f"{args.latency_ms} ms fake call, {args.runs} runs, a fresh database per run\n"
    )
    seconds, granted, spent, errors = [], set(), set(), 0
    for _ in range(args.runs):
        name = f"capledger_bench_{uuid.uuid4().hex[:10]}"
        create(args.server, name)
        try:
            run = asyncio.run(
                one_run(with_database(args.server, name), args.attempts, args.latency_ms / 1000)
            )
        finally:
            drop(args.server, name)
        seconds.append(run[0])
        granted.add(run[1])
        spent.add(run[2])
        errors += run[3]
    exact = granted == {int(CAP / PRICE)} and spent == {CAP} and errors == 0
    print("| store | granted | spent | errors | cap held | wall time median (s) | all runs (s) |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| postgresql | {', '.join(map(str, sorted(granted)))} | "
        f"${', '.join(map(str, sorted(spent)))} | {errors} | {'yes' if exact else 'NO'} | "
        f"{statistics.median(seconds):.3f} | {', '.join(f'{s:.3f}' for s in seconds)} |"
    )


if __name__ == "__main__":
    main()
